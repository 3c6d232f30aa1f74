/* siglip2_naflex.c — SigLIP 2 NaFlex (vlm.h), as transformers 5.23's Siglip2ImageProcessor
 * (torchvision backend) and Siglip2ImageProcessorPil prepare images:
 *   1. get_image_size_for_max_num_patches: a binary search (in double, eps 1e-5, scale in
 *      [1e-6, 100]) for the largest scale whose ceil-to-patch-multiple size has at most
 *      max_num_patches patches; the image is resized (uint8, antialiased) to that size. The
 *      aspect ratio is only roughly kept (each side rounds up to a patch multiple).
 *   2. rescale + normalise (0.5 / 0.5 by default);
 *   3. convert_image_to_patches: (C, nh*p, nw*p) -> reshape (C, nh, p, nw, p) -> permute
 *      (nh, nw, p, p, C) -> (nh*nw, p*p*C): patch rows in raster order, each patch's values
 *      y-major, then x, then channel (interleaved RGB);
 *   4. pad_along_first_dim to max_num_patches rows with 0.0, mask int32 1 for real rows.
 * Arrays (return_tensors="np"): pixel_values (N, max_num_patches, p*p*3) float,
 * pixel_attention_mask (N, max_num_patches) int32, spatial_shapes (N, 2) int64.
 *
 * Fields of vlm_params read: patch_size, max_num_patches.
 * One tile per image: the whole image resized, patchified by place_tile. */
#include "hf_config.h"
#include "vlm.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#define RESCALE_1_255 0.00392156862745098
/* Bounds of a profile: p*p*max_num_patches pixels per image (64 Mi) keeps one image's part
 * of pixel_values under 768 MiB of float32. */
#define MAX_PATCH 512
#define MAX_NUM_PATCHES 65536
#define MAX_IMAGE_PIXELS (1LL << 26)

static bool check_sizes(long long ps, long long mnp, cp_error *err)
{
    if (ps * ps * mnp > MAX_IMAGE_PIXELS)
        return cp_fail(err, CP_ERR_CONFIG,
                       "patch_size^2 * max_num_patches = %lld pixels per image is over "
                       "clipprep's limit of %lld",
                       ps * ps * mnp, MAX_IMAGE_PIXELS);
    return true;
}

static bool parse(const cJSON *vlm, vlm_params *v, cp_error *err)
{
    static const char *const keys[] = {"processor", "patch_size", "max_num_patches", NULL};
    long long ps = 0, mnp = 0;
    if (!vlm_check_keys(vlm, keys, "vlm.", err) ||
        !vlm_get_int(vlm, "patch_size", true, 1, MAX_PATCH, &ps, err) ||
        !vlm_get_int(vlm, "max_num_patches", true, 1, MAX_NUM_PATCHES, &mnp, err) ||
        !check_sizes(ps, mnp, err))
        return false;
    v->patch_size = (int)ps;
    v->max_num_patches = (int)mnp;
    return true;
}

static void to_json(const vlm_params *v, cJSON *vlm)
{
    cJSON_AddNumberToObject(vlm, "patch_size", v->patch_size);
    cJSON_AddNumberToObject(vlm, "max_num_patches", v->max_num_patches);
}

/* ---- preprocessor_config.json ------------------------------------------------------------ */

/* Keys of a Siglip2ImageProcessor config. Siglip2's _preprocess ignores size, crop_size,
 * do_center_crop, do_pad, pad_size and default_to_square (checked on transformers 5.23), so
 * they are accepted whatever their value (but do_center_crop true without crop_size, which
 * the library's validation refuses). */
static const char *const HF_KEYS[] = {
    "image_processor_type", "processor_class", "auto_map", "_valid_processor_keys",
    "do_resize", "resample", "do_rescale", "rescale_factor", "do_normalize", "image_mean",
    "image_std", "do_convert_rgb", "patch_size", "max_num_patches", "size", "crop_size",
    "do_center_crop", "do_pad", "pad_size", "default_to_square", "data_format",
    "input_data_format", "return_tensors", "device", "disable_grouping", NULL,
};

static bool import_hf(const cJSON *root, profile *p, cp_error *err)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, root)
    {
        bool known = false;
        for (const char *const *k = HF_KEYS; *k && !known; k++)
            known = !strcmp(*k, e->string);
        if (!known)
            return cp_fail(err, CP_ERR_CONFIG,
                           "unknown key \"%.60s\" (not a setting of transformers' "
                           "Siglip2ImageProcessor that clipprep reproduces)",
                           e->string);
    }
    bool do_resize, do_rescale, do_normalize, do_crop;
    if (!hf_bool(root, "do_resize", true, &do_resize, err) ||
        !hf_bool(root, "do_rescale", true, &do_rescale, err) ||
        !hf_bool(root, "do_normalize", true, &do_normalize, err) ||
        !hf_bool(root, "do_center_crop", false, &do_crop, err))
        return false;
    if (!do_resize)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"do_resize\": false is not supported (Siglip2ImageProcessor then "
                       "patchifies the image as it is, and fails unless both sides are patch "
                       "multiples)");
    if (!do_rescale || !do_normalize)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"%s\": false is not supported (clipprep reproduces "
                       "Siglip2ImageProcessor with rescale and normalise)",
                       do_rescale ? "do_normalize" : "do_rescale");
    if (do_crop && !hf_given(root, "crop_size"))
        return cp_fail(err, CP_ERR_CONFIG, "key \"do_center_crop\": true needs crop_size "
                                           "(transformers refuses it; Siglip2 crops nothing)");
    static const char *const fixed_meta[] = {"data_format", "input_data_format",
                                             "return_tensors", NULL};
    for (const char *const *k = fixed_meta; *k; k++) {
        const cJSON *j = hf_given(root, *k);
        if (j && !(cJSON_IsString(j) && (!strcmp(j->valuestring, "channels_first") ||
                                         !strcmp(j->valuestring, "pt") ||
                                         !strcmp(j->valuestring, "np"))))
            return cp_fail(err, CP_ERR_CONFIG,
                           "key \"%s\": only channels-first input and np/pt tensors are "
                           "reproduced",
                           *k);
    }
    const cJSON *dev = hf_given(root, "device");
    if (dev && !(cJSON_IsString(dev) && !strcmp(dev->valuestring, "cpu")))
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"device\": clipprep reproduces the processor run on the CPU");

    /* the class defaults (Siglip2ImageProcessor): patch 16, 256 patches, bilinear */
    long long ps = 16, mnp = 256;
    if (!vlm_get_int(root, "patch_size", false, 1, MAX_PATCH, &ps, err) ||
        !vlm_get_int(root, "max_num_patches", false, 1, MAX_NUM_PATCHES, &mnp, err) ||
        !check_sizes(ps, mnp, err))
        return false;
    memset(&p->vlm, 0, sizeof p->vlm);
    p->vlm.kind = VLM_SIGLIP2_NAFLEX;
    p->vlm.patch_size = (int)ps;
    p->vlm.max_num_patches = (int)mnp;

    p->filter = FILTER_BILINEAR;
        if (!hf_resample(root, &p->filter, err))
        return false;
    p->rescale_factor = RESCALE_1_255;
    if (!hf_rescale(root, &p->rescale_factor, err))
        return false;
    for (int i = 0; i < 3; i++)
        p->mean[i] = p->std[i] = 0.5;
    if (!hf_stats(root, "image_mean", false, p->mean, err) ||
        !hf_stats(root, "image_std", true, p->std, err))
        return false;
    snprintf(p->reference, sizeof p->reference,
             "transformers 5 Siglip2ImageProcessor (torchvision; Pillow: "
             "Siglip2ImageProcessorPil), from preprocessor_config.json");
    snprintf(p->description, sizeof p->description,
             "SigLIP 2 NaFlex, patch %d, at most %d patches (imported from a Hugging Face "
             "preprocessor_config.json)",
             p->vlm.patch_size, p->vlm.max_num_patches);
    return true;
}

/* ---- geometry ------------------------------------------------------------------------------ */

/* get_scaled_image_size: ceil(size * scale / p) * p, at least p (Python floats = doubles). */
static long long scaled_size(double scale, int size, int p)
{
    double s = (double)size * scale;
    long long v = (long long)ceil(s / (double)p) * p;
    return v < p ? p : v;
}

/* get_image_size_for_max_num_patches, transformers 5.23, step for step. */
static void size_for_max_num_patches(int h, int w, int p, int max_num_patches, long long *th,
                                     long long *tw)
{
    const double eps = 1e-5;
    double scale_min = eps / 10, scale_max = 100.0;
    while (scale_max - scale_min >= eps) {
        double scale = (scale_min + scale_max) / 2;
        long long a = scaled_size(scale, h, p), b = scaled_size(scale, w, p);
        double num_patches = ((double)a / p) * ((double)b / p);
        if (num_patches <= (double)max_num_patches)
            scale_min = scale;
        else
            scale_max = scale;
    }
    *th = scaled_size(scale_min, h, p);
    *tw = scaled_size(scale_min, w, p);
}

static bool plan(const profile *pr, reference_id ref, int w, int h, vlm_image_plan *out,
                 cp_error *err)
{
    (void)ref; /* both backends plan alike */
    const int p = pr->vlm.patch_size, mnp = pr->vlm.max_num_patches;
    if (w < 1 || h < 1 || p < 1 || mnp < 1)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "image of %dx%d pixels", w, h);
    long long th, tw;
    size_for_max_num_patches(h, w, p, mnp, &th, &tw);
    long long nh = th / p, nw = tw / p;
    /* Unreachable for decodable sizes (a side over 1.6e7 * patch_size): the search never
     * tests its lower bound, and the library would then fail to stack the batch. */
    if (nh * nw > mnp || th > (1 << 30) || tw > (1 << 30))
        return cp_fail(err, CP_ERR_IMAGE_TOO_LARGE,
                       "a %dx%d image does not fit %d patches of %d pixels", w, h, mnp, p);
    out->n_tiles = 1;
    vlm_tile *t = &out->tiles[0];
    t->resized_w = t->w = (int)tw;
    t->resized_h = t->h = (int)th;
    t->left = t->top = 0;
    out->meta[0] = nh;
    out->meta[1] = nw;
    out->rows = nh * nw;
    out->vision_tokens = nh * nw;
    return true;
}

/* ---- arrays -------------------------------------------------------------------------------- */

static void batch(const profile *pr, const vlm_image_plan *plans, int n, out_layout *lay,
                  size_t *image_elem)
{
    (void)plans;
    const long long p = pr->vlm.patch_size, mnp = pr->vlm.max_num_patches;
    long long pv[3] = {n, mnp, p * p * 3}, mask[2] = {n, mnp}, shapes[2] = {n, 2};
    out_layout_add(lay, "pixel_values", ARR_PIXELS, 3, pv);
    out_layout_add(lay, "pixel_attention_mask", ARR_INT32, 2, mask);
    out_layout_add(lay, "spatial_shapes", ARR_INT64, 2, shapes);
    for (int i = 0; i < n; i++)
        image_elem[i] = (size_t)i * (size_t)(mnp * p * p * 3);
}

static void write_meta(const profile *pr, const vlm_image_plan *plans, int n,
                       const out_layout *lay, uint8_t *base)
{
    const long long mnp = pr->vlm.max_num_patches;
    const out_array *m = out_layout_find(lay, "pixel_attention_mask");
    const out_array *s = out_layout_find(lay, "spatial_shapes");
    for (int i = 0; i < n; i++) {
        if (m) {
            int32_t *row = (int32_t *)(base + m->offset) + (size_t)i * (size_t)mnp;
            for (long long r = 0; r < mnp; r++)
                row[r] = r < plans[i].rows ? 1 : 0;
        }
        if (s) {
            int64_t *v = (int64_t *)(base + s->offset) + 2 * (size_t)i;
            v[0] = plans[i].meta[0];
            v[1] = plans[i].meta[1];
        }
    }
}

/* convert_image_to_patches: value (c, y, x) goes to row (y/p)*nw + x/p, column
 * ((y%p)*p + x%p)*3 + c. */
static void place_tile(const profile *pr, const vlm_image_plan *ip, int t, const uint8_t *planes,
                       size_t esize, uint8_t *image_part)
{
    (void)t;
    const size_t p = (size_t)pr->vlm.patch_size;
    const size_t w = (size_t)ip->tiles[0].w, h = (size_t)ip->tiles[0].h;
    const size_t nw = w / p, plane = w * h, row_len = p * p * 3;
    for (size_t y = 0; y < h; y++) {
        size_t y_off = (y / p) * nw * row_len + (y % p) * p * 3;
        for (size_t x = 0; x < w; x++) {
            size_t dst = y_off + (x / p) * row_len + (x % p) * 3;
            size_t src = y * w + x;
            if (esize == 4) {
                float *d = (float *)image_part + dst;
                const float *s = (const float *)planes + src;
                d[0] = s[0];
                d[1] = s[plane];
                d[2] = s[2 * plane];
            } else {
                for (size_t c = 0; c < 3; c++)
                    memcpy(image_part + (dst + c) * esize, planes + (c * plane + src) * esize,
                           esize);
            }
        }
    }
}

static void plan_json(const profile *pr, const vlm_image_plan *ip, cJSON *entry)
{
    (void)pr;
    cJSON *s = cJSON_AddArrayToObject(entry, "spatial_shapes");
    if (s) {
        cJSON_AddItemToArray(s, cJSON_CreateNumber((double)ip->meta[0]));
        cJSON_AddItemToArray(s, cJSON_CreateNumber((double)ip->meta[1]));
    }
    cJSON_AddNumberToObject(entry, "num_patches", (double)ip->rows);
}

const vlm_family vlm_siglip2_naflex = {
    .kind = VLM_SIGLIP2_NAFLEX,
    .name = "siglip2_naflex",
    .hf_class = "Siglip2",
    .parse = parse,
    .to_json = to_json,
    .import_hf = import_hf,
    .plan = plan,
    .batch = batch,
    .write_meta = write_meta,
    .place_tile = place_tile,
    .plan_json = plan_json,
};
