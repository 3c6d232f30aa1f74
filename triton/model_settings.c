/* model_settings.c — the model configuration JSON (Triton's serialisation of config.pbtxt) to
 * model_settings, with the checks that make a misconfigured model fail to load. */
#include "model_settings.h"

#include <cjson/cJSON.h>
#include "../server/reference.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool fail(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return false;
}

/* Triton writes int64 fields as JSON numbers; protobuf's own JSON writes them as strings. */
static bool json_int(const cJSON *v, long long *out)
{
    if (cJSON_IsNumber(v)) {
        *out = (long long)v->valuedouble;
        return true;
    }
    if (cJSON_IsString(v) && v->valuestring[0]) {
        char *end;
        errno = 0;
        *out = strtoll(v->valuestring, &end, 10);
        return !errno && !*end;
    }
    return false;
}

/* parameters { key: K value: { string_value: V } } -> "parameters":{"K":{"string_value":"V"}} */
static const char *parameter(const cJSON *config, const char *key)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(config, "parameters");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, key);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(v, "string_value");
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

static bool parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "1")) {
        *out = 1;
        return true;
    }
    if (!strcmp(v, "false") || !strcmp(v, "0")) {
        *out = 0;
        return true;
    }
    return false;
}

static bool parse_int_param(const cJSON *config, const char *key, long long lo, long long hi,
                            long long *out, char *err, size_t len)
{
    const char *v = parameter(config, key);
    if (!v || !*v)
        return true; /* keep the default */
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x < lo || x > hi)
        return fail(err, len, "parameter %s: expected an integer %lld..%lld, got \"%s\"", key,
                    lo, hi, v);
    *out = x;
    return true;
}

/* The one tensor named `name` in config[list], or NULL with err set. */
static const cJSON *tensor(const cJSON *config, const char *list, const char *name, char *err,
                           size_t len)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(config, list);
    int n = cJSON_GetArraySize(arr);
    const cJSON *t = cJSON_GetArrayItem(arr, 0);
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(t, "name");
    if (n != 1 || !cJSON_IsString(nm) || strcmp(nm->valuestring, name)) {
        fail(err, len, "the model must have exactly one %s, named \"%s\"", list, name);
        return NULL;
    }
    return t;
}

static int dims_of(const cJSON *t, long long *dims, int max)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(t, "dims");
    int n = cJSON_GetArraySize(d);
    if (n > max)
        return -1;
    for (int i = 0; i < n; i++)
        if (!json_int(cJSON_GetArrayItem(d, i), &dims[i]))
            return -1;
    return n;
}

static bool check_io(const cJSON *config, model_settings *s, char *err, size_t len)
{
    const cJSON *in = tensor(config, "input", "images", err, len);
    if (!in)
        return false;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(in, "data_type");
    long long dims[4];
    if (!cJSON_IsString(dt) || strcmp(dt->valuestring, "TYPE_STRING") ||
        dims_of(in, dims, 4) != 1 || dims[0] != 1)
        return fail(err, len, "input images must be data_type TYPE_STRING with dims [ 1 ] "
                              "(one encoded image per batch element)");
    const cJSON *out = tensor(config, "output", "pixel_values", err, len);
    if (!out)
        return false;
    dt = cJSON_GetObjectItemCaseSensitive(out, "data_type");
    if (cJSON_IsString(dt) && !strcmp(dt->valuestring, "TYPE_FP32"))
        s->dtype = DTYPE_FLOAT32;
    else if (cJSON_IsString(dt) && !strcmp(dt->valuestring, "TYPE_FP16"))
        s->dtype = DTYPE_FLOAT16;
    else
        return fail(err, len, "output pixel_values: data_type must be TYPE_FP32 or TYPE_FP16");
    if (dims_of(out, dims, 4) != 3 || dims[0] != 3 || dims[1] < 1 || dims[2] < 1 ||
        dims[1] > 65535 || dims[2] > 65535)
        return fail(err, len, "output pixel_values: dims must be [ 3, H, W ] with the "
                              "profile's output size");
    s->out_h = (int)dims[1];
    s->out_w = (int)dims[2];
    return true;
}

bool model_settings_parse(const char *json, size_t len, model_settings *s, char *err,
                          size_t err_len)
{
    *s = (model_settings){.exif = -1, .fast = -1, .max_pixels = 50000000, .max_scans = 256};
    snprintf(s->profile, sizeof s->profile, "clip-224");
    s->reference[0] = 0; /* the profile's default_reference, else transformers4 */
    cJSON *config = cJSON_ParseWithLength(json, len);
    if (!config)
        return fail(err, err_len, "the model configuration is not valid JSON");
    bool ok = false;
    long long mbs = 0;
    if (!json_int(cJSON_GetObjectItemCaseSensitive(config, "max_batch_size"), &mbs) || mbs < 1 ||
        mbs > 4096) {
        fail(err, err_len, "max_batch_size must be 1..4096: one image per batch element");
        goto out;
    }
    s->max_batch_size = (int)mbs;
    if (!check_io(config, s, err, err_len))
        goto out;

    static const char *const known[] = {"profile", "reference", "exif", "mode", "profiles_dir",
                                         "max_pixels", "max_scans", "threads",
                                         "staging_bytes"};
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(config, "parameters"))
    {
        size_t k = 0;
        while (k < sizeof known / sizeof *known && strcmp(item->string, known[k]))
            k++;
        if (k == sizeof known / sizeof *known) {
            fail(err, err_len, "unknown parameter \"%s\" (known: profile, reference, exif, "
                               "mode, profiles_dir, max_pixels, max_scans, threads, "
                               "staging_bytes)", item->string);
            goto out;
        }
    }
    const char *v;
    if ((v = parameter(config, "profile")) && *v) {
        if (strlen(v) >= sizeof s->profile) {
            fail(err, err_len, "parameter profile: name too long");
            goto out;
        }
        snprintf(s->profile, sizeof s->profile, "%s", v);
    }
    if ((v = parameter(config, "reference")) && *v) {
        reference_id ref;
        if (!reference_parse(v, &ref)) {
            fail(err, err_len, "parameter reference: \"%s\" is not one of %s", v,
                 reference_names_list());
            goto out;
        }
        snprintf(s->reference, sizeof s->reference, "%s", v);
    }
    if ((v = parameter(config, "exif")) && *v && !parse_bool(v, &s->exif)) {
        fail(err, err_len, "parameter exif: expected true or false, got \"%s\"", v);
        goto out;
    }
    if ((v = parameter(config, "mode")) && *v) {
        if (!strcmp(v, "fast") || !strcmp(v, "exact"))
            s->fast = !strcmp(v, "fast");
        else {
            fail(err, err_len, "parameter mode: expected exact or fast, got \"%s\"", v);
            goto out;
        }
    }
    if ((v = parameter(config, "profiles_dir")) && *v) {
        if (strlen(v) >= sizeof s->profiles_dir) {
            fail(err, err_len, "parameter profiles_dir: path too long");
            goto out;
        }
        snprintf(s->profiles_dir, sizeof s->profiles_dir, "%s", v);
    }
    long long threads = 0, scans = s->max_scans;
    if (!parse_int_param(config, "max_pixels", 1, 1LL << 40, &s->max_pixels, err, err_len) ||
        !parse_int_param(config, "max_scans", 0, 1000000, &scans, err, err_len) ||
        !parse_int_param(config, "threads", 0, 1024, &threads, err, err_len) ||
        !parse_int_param(config, "staging_bytes", 1 << 20, 1LL << 40, &s->staging_bytes, err,
                         err_len))
        goto out;
    s->threads = (int)threads;
    s->max_scans = (int)scans;
    ok = true;
out:
    cJSON_Delete(config);
    return ok;
}
