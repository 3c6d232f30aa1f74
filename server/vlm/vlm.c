/* vlm.c — dispatch to the VLM families, the "vlm" object of profile files, batch layouts. */
#include "vlm.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

static const vlm_family *const FAMILIES[] = {
    &vlm_qwen2_vl, &vlm_llava, &vlm_llava_next, &vlm_got_ocr2, &vlm_siglip2_naflex,
};
#define N_FAMILIES (sizeof FAMILIES / sizeof FAMILIES[0])

const vlm_family *vlm_family_of(vlm_kind k)
{
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (FAMILIES[i]->kind == k)
            return FAMILIES[i];
    return NULL;
}

const vlm_family *vlm_family_named(const char *name)
{
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (!strcmp(FAMILIES[i]->name, name) && FAMILIES[i]->plan)
            return FAMILIES[i];
    return NULL;
}

const vlm_family *vlm_family_for_hf_class(const char *base)
{
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (!strcmp(FAMILIES[i]->hf_class, base) && FAMILIES[i]->import_hf)
            return FAMILIES[i];
    return NULL;
}

const char *vlm_family_names(void)
{
    static char list[160];
    if (!list[0])
        for (size_t i = 0; i < N_FAMILIES; i++)
            if (FAMILIES[i]->plan)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         list[0] ? ", " : "", FAMILIES[i]->name);
    return list;
}

void vlm_write_meta(const profile *p, const vlm_image_plan *plans, int n, const out_layout *lay,
                    uint8_t *base)
{
    const vlm_family *f = vlm_family_of(p->vlm.kind);
    if (f->write_meta)
        f->write_meta(p, plans, n, lay, base);
}

bool vlm_check_keys(const cJSON *o, const char *const *allowed, const char *where, cp_error *err)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, o)
    {
        bool known = false;
        for (const char *const *k = allowed; *k && !known; k++)
            known = !strcmp(*k, e->string);
        if (!known)
            return cp_fail(err, CP_ERR_CONFIG, "unknown key \"%s%.60s\"", where, e->string);
    }
    return true;
}

bool vlm_get_int(const cJSON *o, const char *key, bool required, long long lo, long long hi,
                 long long *out, cp_error *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) {
        if (required)
            return cp_fail(err, CP_ERR_CONFIG, "key \"%s\" is required", key);
        return true;
    }
    double d = cJSON_IsNumber(j) ? j->valuedouble : NAN;
    if (!cJSON_IsNumber(j) || !isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi)
        return cp_fail(err, CP_ERR_CONFIG, "key \"%s\": expected an integer from %lld to %lld",
                       key, lo, hi);
    *out = (long long)d;
    return true;
}

bool vlm_get_bool(const cJSON *o, const char *key, bool dflt, bool *out, cp_error *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = dflt;
    if (!j || cJSON_IsNull(j))
        return true;
    if (!cJSON_IsBool(j))
        return cp_fail(err, CP_ERR_CONFIG, "key \"%s\": expected true or false", key);
    *out = cJSON_IsTrue(j);
    return true;
}

bool vlm_parse_profile_json(const cJSON *vlm, profile *p, cp_error *err)
{
    if (!cJSON_IsObject(vlm))
        return cp_fail(err, CP_ERR_CONFIG, "key \"vlm\": expected an object");
    const cJSON *proc = cJSON_GetObjectItemCaseSensitive(vlm, "processor");
    if (!cJSON_IsString(proc))
        return cp_fail(err, CP_ERR_CONFIG, "key \"vlm.processor\" is required: one of %s",
                       vlm_family_names());
    const vlm_family *f = vlm_family_named(proc->valuestring);
    if (!f)
        return cp_fail(err, CP_ERR_CONFIG, "key \"vlm.processor\": \"%.40s\" is not one of %s",
                       proc->valuestring, vlm_family_names());
    memset(&p->vlm, 0, sizeof p->vlm);
    p->vlm.kind = f->kind;
    return f->parse(vlm, &p->vlm, err);
}

cJSON *vlm_profile_json(const profile *p)
{
    const vlm_family *f = vlm_family_of(p->vlm.kind);
    cJSON *o = cJSON_CreateObject();
    if (!o || !f)
        return o;
    cJSON_AddStringToObject(o, "processor", f->name);
    f->to_json(&p->vlm, o);
    return o;
}

bool vlm_plan_image(const profile *p, reference_id ref, int w, int h, vlm_image_plan *out,
                    cp_error *err)
{
    const vlm_family *f = vlm_family_of(p->vlm.kind);
    memset(out, 0, sizeof *out);
    out->src_w = w;
    out->src_h = h;
    out->vision_tokens = -1;
    if (!f || !f->plan)
        return cp_fail(err, CP_ERR_INTERNAL, "profile '%s' has no VLM processor", p->name);
    return f->plan(p, ref, w, h, out, err);
}

void vlm_batch_layout(const profile *p, const vlm_image_plan *plans, int n, tensor_dtype dt,
                      out_layout *lay, size_t *image_byte)
{
    const vlm_family *f = vlm_family_of(p->vlm.kind);
    memset(lay, 0, sizeof *lay);
    f->batch(p, plans, n, lay, image_byte); /* (element offsets) */
    out_layout_finish(lay, dt);
    for (int i = 0; i < n; i++)
        image_byte[i] *= tensor_dtype_size(dt);
}
