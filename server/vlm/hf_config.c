/* hf_config.c — the shared preprocessor_config.json readers (hf_config.h). */
#include "hf_config.h"

#include <math.h>

#include <cjson/cJSON.h>

const cJSON *hf_given(const cJSON *o, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return (j && !cJSON_IsNull(j)) ? j : NULL;
}

bool hf_bool(const cJSON *o, const char *key, bool dflt, bool *out, cp_error *err)
{
    const cJSON *j = hf_given(o, key);
    *out = dflt;
    if (!j)
        return true;
    if (!cJSON_IsBool(j))
        return cp_fail(err, CP_ERR_CONFIG, "key \"%s\": expected true, false or null", key);
    *out = cJSON_IsTrue(j);
    return true;
}

bool hf_stats(const cJSON *o, const char *key, bool positive, double out[3], cp_error *err)
{
    const cJSON *j = hf_given(o, key);
    if (!j)
        return true;
    if (cJSON_IsNumber(j)) {
        out[0] = out[1] = out[2] = j->valuedouble;
    } else if (cJSON_IsArray(j) && cJSON_GetArraySize(j) == 3) {
        for (int i = 0; i < 3; i++) {
            const cJSON *e = cJSON_GetArrayItem(j, i);
            if (!cJSON_IsNumber(e))
                return cp_fail(err, CP_ERR_CONFIG, "key \"%s\"[%d]: expected a number", key, i);
            out[i] = e->valuedouble;
        }
    } else {
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"%s\": expected a number or 3 numbers (R, G, B); clipprep prepares "
                       "RGB only", key);
    }
    for (int i = 0; i < 3; i++)
        if (!isfinite(out[i]) || (positive && !(out[i] > 0)))
            return cp_fail(err, CP_ERR_CONFIG, "key \"%s\"[%d]: must be %s", key, i,
                           positive ? "> 0" : "finite");
    return true;
}

bool hf_resample(const cJSON *o, resample_filter *filter, cp_error *err)
{
    static const char *const pil_names[] = {"NEAREST", "LANCZOS", "BILINEAR",
                                            "BICUBIC", "BOX", "HAMMING"};
    const cJSON *rs = hf_given(o, "resample");
    if (!rs)
        return true;
    double d = cJSON_IsNumber(rs) ? rs->valuedouble : NAN;
    if (!(d >= 0 && d <= 5 && d == floor(d)))
        return cp_fail(err, CP_ERR_CONFIG, "key \"resample\": expected a Pillow filter code 0..5");
    if (d == 2)
        *filter = FILTER_BILINEAR;
    else if (d == 3)
        *filter = FILTER_BICUBIC;
    else
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"resample\": %d (%s) is not supported; clipprep reproduces 2 "
                       "(BILINEAR) and 3 (BICUBIC)", (int)d, pil_names[(int)d]);
    return true;
}

bool hf_rescale(const cJSON *o, double *factor, cp_error *err)
{
    const cJSON *rf = hf_given(o, "rescale_factor");
    if (!rf)
        return true;
    if (!cJSON_IsNumber(rf) || !isfinite(rf->valuedouble) || !(rf->valuedouble > 0))
        return cp_fail(err, CP_ERR_CONFIG, "key \"rescale_factor\": expected a number > 0");
    *factor = rf->valuedouble;
    return true;
}
