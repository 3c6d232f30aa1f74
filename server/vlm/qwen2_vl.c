/* qwen2_vl.c — the Qwen2VL family (vlm.h): transformers 5.23 Qwen2VLImageProcessor (torchvision)
 * and Qwen2VLImageProcessorPil, which serve Qwen2-VL, Qwen2.5-VL and Qwen3-VL.
 *
 * One image = one tile: smart_resize picks (resized_h, resized_w), multiples of
 * factor = patch_size * merge_size with min_pixels <= h*w <= max_pixels (mostly), the whole image
 * is resized to it, normalised, and patchified into gh*gw rows of C*T*p*p values
 * (gh = resized_h / p, gw = resized_w / p), rows in the order (gh/m, gw/m, m, m), each row
 * (C, T, p, p) with the frame repeated T = temporal_patch_size times. Arrays:
 *   pixel_values    (sum of gh*gw over the batch, C*T*p*p)  the request's dtype
 *   image_grid_thw  (N, 3) int64: [1, gh, gw]
 * vision_tokens = gh*gw / m^2 (the processor's placeholder count per image).
 *
 * Fields of vlm_params read: patch_size, merge_size, temporal_patch_size, min_pixels
 * (size.shortest_edge), max_pixels (size.longest_edge). */
#include "hf_config.h"
#include "vlm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* the class defaults of Qwen2VLImageProcessor */
#define DEF_PATCH 14
#define DEF_MERGE 2
#define DEF_TEMPORAL 2
#define DEF_MIN_PIXELS (56LL * 56)
#define DEF_MAX_PIXELS (28LL * 28 * 1280)
#define PIXELS_HI (1LL << 40) /* profile sanity bound: keeps every product exact in a double */
/* What one resized image may be (not a library limit: a min_pixels branch can grow a tiny image
 * without bound; the daemon's own max_pixels applies to the source image) */
#define RESIZED_SIDE_MAX 65536
#define RESIZED_PIXELS_MAX (1LL << 27)

static const double OPENAI_MEAN[3] = {0.48145466, 0.4578275, 0.40821073};
static const double OPENAI_STD[3] = {0.26862954, 0.26130258, 0.27577711};
#define RESCALE_1_255 0.00392156862745098

/* ---- the profile file's "vlm" object ---------------------------------------------------- */

static const char *const VLM_KEYS[] = {"processor", "patch_size", "merge_size",
                                       "temporal_patch_size", "min_pixels", "max_pixels", NULL};

static bool parse(const cJSON *vlm, vlm_params *v, cp_error *err)
{
    if (!vlm_check_keys(vlm, VLM_KEYS, "vlm.", err)) return false;
    long long patch = DEF_PATCH, merge = DEF_MERGE, temporal = DEF_TEMPORAL;
    long long minp = DEF_MIN_PIXELS, maxp = DEF_MAX_PIXELS;
    if (!vlm_get_int(vlm, "patch_size", false, 1, 256, &patch, err) ||
        !vlm_get_int(vlm, "merge_size", false, 1, 16, &merge, err) ||
        !vlm_get_int(vlm, "temporal_patch_size", false, 1, 16, &temporal, err) ||
        !vlm_get_int(vlm, "min_pixels", false, 1, PIXELS_HI, &minp, err) ||
        !vlm_get_int(vlm, "max_pixels", false, 1, PIXELS_HI, &maxp, err))
        return false;
    v->patch_size = (int)patch;
    v->merge_size = (int)merge;
    v->temporal_patch_size = (int)temporal;
    v->min_pixels = minp;
    v->max_pixels = maxp;
    return true;
}

static void to_json(const vlm_params *v, cJSON *vlm)
{
    cJSON_AddNumberToObject(vlm, "patch_size", v->patch_size);
    cJSON_AddNumberToObject(vlm, "merge_size", v->merge_size);
    cJSON_AddNumberToObject(vlm, "temporal_patch_size", v->temporal_patch_size);
    cJSON_AddNumberToObject(vlm, "min_pixels", (double)v->min_pixels);
    cJSON_AddNumberToObject(vlm, "max_pixels", (double)v->max_pixels);
}

/* ---- preprocessor_config.json ---------------------------------------------------------- */

static const char *const HF_KEYS[] = {
    "image_processor_type", "processor_class", "auto_map", "_valid_processor_keys",
    "do_resize", "size", "resample", "do_rescale", "rescale_factor", "do_normalize",
    "image_mean", "image_std", "do_convert_rgb", "min_pixels", "max_pixels", "patch_size",
    "temporal_patch_size", "merge_size", "data_format", "input_data_format", "return_tensors",
    "disable_grouping", "device", NULL,
};

static bool import_hf(const cJSON *root, profile *p, cp_error *err)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, root)
    {
        bool known = false;
        for (const char *const *k = HF_KEYS; *k && !known; k++) known = !strcmp(*k, e->string);
        if (!known)
            return cp_fail(err, CP_ERR_CONFIG,
                           "unknown key \"%.60s\" (not a setting of transformers' "
                           "Qwen2VLImageProcessor that clipprep reproduces)", e->string);
    }
    bool do_resize, do_rescale, do_normalize, do_rgb;
    if (!hf_bool(root, "do_resize", true, &do_resize, err) ||
        !hf_bool(root, "do_rescale", true, &do_rescale, err) ||
        !hf_bool(root, "do_normalize", true, &do_normalize, err) ||
        !hf_bool(root, "do_convert_rgb", true, &do_rgb, err))
        return false;
    (void)do_rgb; /* decoding always yields RGB */
    if (!do_resize)
        return cp_fail(err, CP_ERR_CONFIG, "key \"do_resize\": false is not supported (patches "
                       "need sides that are multiples of patch_size * merge_size)");
    static const char *const fixed_meta[] = {"data_format", "input_data_format", "return_tensors",
                                             NULL};
    for (const char *const *k = fixed_meta; *k; k++) {
        const cJSON *j = hf_given(root, *k);
        if (j && !(cJSON_IsString(j) && (!strcmp(j->valuestring, "channels_first") ||
                                         !strcmp(j->valuestring, "pt") ||
                                         !strcmp(j->valuestring, "np"))))
            return cp_fail(err, CP_ERR_CONFIG,
                           "key \"%s\": only channels-first (CHW) tensors are produced", *k);
    }

    vlm_params *v = &p->vlm;
    memset(v, 0, sizeof *v);
    v->kind = VLM_QWEN2_VL;
    long long patch = DEF_PATCH, merge = DEF_MERGE, temporal = DEF_TEMPORAL;
    if (!vlm_get_int(root, "patch_size", false, 1, 256, &patch, err) ||
        !vlm_get_int(root, "merge_size", false, 1, 16, &merge, err) ||
        !vlm_get_int(root, "temporal_patch_size", false, 1, 16, &temporal, err))
        return false;
    v->patch_size = (int)patch;
    v->merge_size = (int)merge;
    v->temporal_patch_size = (int)temporal;

    /* __init__: size (else the class default {3136, 1003520}), then min_pixels / max_pixels
     * override its shortest_edge / longest_edge; resize() needs both, non-zero */
    long long minp = DEF_MIN_PIXELS, maxp = DEF_MAX_PIXELS;
    const cJSON *sz = hf_given(root, "size");
    if (sz) {
        if (!cJSON_IsObject(sz))
            return cp_fail(err, CP_ERR_CONFIG, "key \"size\": expected {\"shortest_edge\", "
                           "\"longest_edge\"} (pixel counts)");
        cJSON_ArrayForEach(e, sz)
        {
            if (strcmp(e->string, "shortest_edge") && strcmp(e->string, "longest_edge"))
                return cp_fail(err, CP_ERR_CONFIG, "key \"size.%.40s\": not supported "
                               "(Qwen2VLImageProcessor reads shortest_edge and longest_edge)",
                               e->string);
        }
        minp = maxp = 0;
        if (!vlm_get_int(sz, "shortest_edge", false, 0, PIXELS_HI, &minp, err) ||
            !vlm_get_int(sz, "longest_edge", false, 0, PIXELS_HI, &maxp, err))
            return false;
    }
    if (!vlm_get_int(root, "min_pixels", false, 1, PIXELS_HI, &minp, err) ||
        !vlm_get_int(root, "max_pixels", false, 1, PIXELS_HI, &maxp, err))
        return false;
    if (!minp || !maxp)
        return cp_fail(err, CP_ERR_CONFIG, "key \"size\": needs a non-zero %s (or \"%s\"); the "
                       "processor refuses a size without it",
                       !minp ? "shortest_edge" : "longest_edge",
                       !minp ? "min_pixels" : "max_pixels");
    v->min_pixels = minp;
    v->max_pixels = maxp;

        p->filter = FILTER_BICUBIC;
    if (!hf_resample(root, &p->filter, err))
        return false;

    p->rescale_factor = 1.0;
    if (do_rescale) {
        p->rescale_factor = RESCALE_1_255;
        if (!hf_rescale(root, &p->rescale_factor, err))
            return false;
    }
    memcpy(p->mean, OPENAI_MEAN, sizeof p->mean);
    memcpy(p->std, OPENAI_STD, sizeof p->std);
    if (!hf_stats(root, "image_mean", false, p->mean, err) ||
        !hf_stats(root, "image_std", true, p->std, err))
        return false;
    if (!do_normalize) {
        p->mean[0] = p->mean[1] = p->mean[2] = 0;
        p->std[0] = p->std[1] = p->std[2] = 1;
    }
    const cJSON *t = hf_given(root, "image_processor_type");
    snprintf(p->reference, sizeof p->reference,
             "transformers Qwen2VLImageProcessor (PIL path: Qwen2VLImageProcessorPil), from "
             "preprocessor_config.json");
    snprintf(p->description, sizeof p->description,
             "imported from a Hugging Face preprocessor_config.json (%.60s)",
             cJSON_IsString(t) ? t->valuestring : "Qwen2VLImageProcessor");
    p->exif = false; /* transformers does not apply EXIF orientation */
    return true;
}

/* ---- planning --------------------------------------------------------------------------- */

/* Python's repr() of a finite float ("201.0", "250.33333333333334"): the shortest digits that
 * read back, positional from 1e-4 to below 1e16, ".0" added to an integral value. */
static void py_float_repr(double d, char *out, size_t cap)
{
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(out, cap, "%.*e", prec - 1, d);
        if (strtod(out, NULL) == d) break;
    }
    int x = atoi(strchr(out, 'e') + 1);
    if (x < -4 || x >= 16) return;
    snprintf(out, cap, "%.*f", prec - 1 - x > 0 ? prec - 1 - x : 0, d);
    if (!strchr(out, '.')) snprintf(out + strlen(out), cap - strlen(out), ".0");
}

/* smart_resize of transformers 5.23 (qwen2_vl/image_processing_qwen2_vl.py), in the same double
 * arithmetic: Python's round() is half-even (rint in the default rounding mode), int / int is
 * the correctly rounded quotient (exact operands here: both below 2^53). */
static bool smart_resize(long long height, long long width, long long factor, long long min_pixels,
                         long long max_pixels, long long *rh, long long *rw, cp_error *err)
{
    double ratio = (double)(height > width ? height : width) /
                   (double)(height < width ? height : width);
    if (ratio > 200) {
        char r[40];
        py_float_repr(ratio, r, sizeof r);
        return cp_fail(err, CP_ERR_INVALID_IMAGE,
                       "absolute aspect ratio must be smaller than 200, got %s (%lldx%lld; "
                       "Qwen2VLImageProcessor refuses it)", r, width, height);
    }
    double f = (double)factor;
    long long h_bar = (long long)rint((double)height / f) * factor;
    long long w_bar = (long long)rint((double)width / f) * factor;
    if (h_bar * w_bar > max_pixels) {
        double beta = sqrt((double)(height * width) / (double)max_pixels);
        h_bar = (long long)floor((double)height / beta / f) * factor;
        w_bar = (long long)floor((double)width / beta / f) * factor;
        if (h_bar < factor) h_bar = factor;
        if (w_bar < factor) w_bar = factor;
    } else if (h_bar * w_bar < min_pixels) {
        double beta = sqrt((double)min_pixels / (double)(height * width));
        double hc = ceil((double)height * beta / f), wc = ceil((double)width * beta / f);
        if (hc * f > RESIZED_SIDE_MAX || wc * f > RESIZED_SIDE_MAX)
            return cp_fail(err, CP_ERR_IMAGE_TOO_LARGE,
                           "min_pixels %lld resizes this %lldx%lld image beyond %d pixels a side",
                           min_pixels, width, height, RESIZED_SIDE_MAX);
        h_bar = (long long)hc * factor;
        w_bar = (long long)wc * factor;
    }
    if (h_bar > RESIZED_SIDE_MAX || w_bar > RESIZED_SIDE_MAX ||
        h_bar * w_bar > RESIZED_PIXELS_MAX)
        return cp_fail(err, CP_ERR_IMAGE_TOO_LARGE,
                       "resized to %lldx%lld by smart_resize: over the %lld pixels clipprep "
                       "prepares per image", w_bar, h_bar, RESIZED_PIXELS_MAX);
    *rh = h_bar;
    *rw = w_bar;
    return true;
}

static bool plan(const profile *p, reference_id ref, int w, int h, vlm_image_plan *out,
                 cp_error *err)
{
    (void)ref; /* both backends plan alike */
    const vlm_params *v = &p->vlm;
    if (w < 1 || h < 1)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "empty image (%dx%d)", w, h);
    long long factor = (long long)v->patch_size * v->merge_size, rh = 0, rw = 0;
    if (!smart_resize(h, w, factor, v->min_pixels, v->max_pixels, &rh, &rw, err)) return false;
    long long gh = rh / v->patch_size, gw = rw / v->patch_size;
    out->n_tiles = 1;
    out->tiles[0] = (vlm_tile){.resized_w = (int)rw, .resized_h = (int)rh, .left = 0, .top = 0,
                               .w = (int)rw, .h = (int)rh};
    out->meta[0] = 1;
    out->meta[1] = gh;
    out->meta[2] = gw;
    out->rows = gh * gw;
    out->vision_tokens = gh * gw / ((long long)v->merge_size * v->merge_size);
    return true;
}

static long long row_len(const vlm_params *v)
{
    return 3LL * v->temporal_patch_size * v->patch_size * v->patch_size;
}

static void batch(const profile *p, const vlm_image_plan *plans, int n, out_layout *lay,
                  size_t *image_elem)
{
    long long rows = 0, rl = row_len(&p->vlm);
    for (int i = 0; i < n; i++) {
        image_elem[i] = (size_t)(rows * rl);
        rows += plans[i].rows;
    }
    const long long pv[2] = {rows, rl}, grid[2] = {n, 3};
    out_layout_add(lay, "pixel_values", ARR_PIXELS, 2, pv);
    out_layout_add(lay, "image_grid_thw", ARR_INT64, 2, grid);
}

static void write_meta(const profile *p, const vlm_image_plan *plans, int n,
                       const out_layout *lay, uint8_t *base)
{
    (void)p;
    const out_array *a = out_layout_find(lay, "image_grid_thw");
    if (!a) return;
    uint8_t *dst = base + a->offset;
    for (int i = 0; i < n; i++) {
        int64_t thw[3] = {plans[i].meta[0], plans[i].meta[1], plans[i].meta[2]};
        memcpy(dst + (size_t)i * sizeof thw, thw, sizeof thw); /* little-endian hosts */
    }
}

/* patchify: row ((by * gw/m + bx) * m + my) * m + mx holds, for each channel c and frame t
 * (the same frame T times), the p x p patch at pixel ((by*m + my) * p, (bx*m + mx) * p):
 * values at ((c * T + t) * p + py) * p + px. */
static void place_tile(const profile *pr, const vlm_image_plan *ip, int t, const uint8_t *planes,
                       size_t esize, uint8_t *image_part)
{
    const vlm_params *v = &pr->vlm;
    const int P = v->patch_size, M = v->merge_size, T = v->temporal_patch_size;
    const int w = ip->tiles[t].w, h = ip->tiles[t].h;
    const int gw = w / P, bwn = gw / M;
    const size_t rl = (size_t)row_len(v), run = (size_t)P * esize;
    (void)t;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++) {
            const int gy = y / P, py = y % P, by = gy / M, my = gy % M;
            const uint8_t *src = planes + ((size_t)c * h + y) * w * esize;
            for (int gx = 0; gx < gw; gx++) {
                const int bx = gx / M, mx = gx % M;
                const size_t row = (((size_t)by * bwn + bx) * M + my) * M + mx;
                uint8_t *dst = image_part + (row * rl + ((size_t)c * T * P + py) * P) * esize;
                for (int k = 0; k < T; k++)
                    memcpy(dst + (size_t)k * P * P * esize, src + (size_t)gx * run, run);
            }
        }
}

static void plan_json(const profile *p, const vlm_image_plan *ip, cJSON *entry)
{
    (void)p;
    cJSON *g = cJSON_AddArrayToObject(entry, "image_grid_thw");
    for (int i = 0; g && i < 3; i++) cJSON_AddItemToArray(g, cJSON_CreateNumber((double)ip->meta[i]));
}

const vlm_family vlm_qwen2_vl = {
    .kind = VLM_QWEN2_VL,
    .name = "qwen2_vl",
    .hf_class = "Qwen2VL",
    .parse = parse,
    .to_json = to_json,
    .import_hf = import_hf,
    .plan = plan,
    .batch = batch,
    .write_meta = write_meta,
    .place_tile = place_tile,
    .plan_json = plan_json,
};
