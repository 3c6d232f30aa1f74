/* llava.c — the LLaVA family (vlm.h): transformers 5.23 LlavaImageProcessor (torchvision) and
 * LlavaImageProcessorPil, as LLaVA-1.5 prepares images with do_pad (the original LLaVA's
 * image_aspect_ratio="pad"):
 *   1. pad_to_square (do_pad): a w x h image (w != h) is pasted on an M x M canvas, M =
 *      max(w, h), at ((M-w)//2, (M-h)//2), the rest filled with
 *      tuple(int(x * 255) for x in image_mean) (u8; OpenAI mean -> 122, 116, 104). Both
 *      backends place it alike (torchvision: tvF.pad left/top = (M-side)//2; Pillow backend:
 *      start = (M-side)//2 on the short axis);
 *   2. resize shortest_edge S (default_to_square False): the padded square becomes S x S (an
 *      unpadded image: short side S, long side int(S*long/short));
 *   3. center_crop crop x crop: the identity when crop = S on a square; otherwise a window
 *      rounded as the reference rounds it (torchvision int((L-c)/2), Pillow backend floor),
 *      zero (u8) outside;
 *   4. rescale + normalise (fused float32 in the torchvision backend).
 * Array: pixel_values (N, 3, crop, crop). One tile per image.
 * vision_tokens (when vision_patch_size is set): (crop / p)^2, LlavaProcessor's count for
 * vision_feature_select_strategy "default" with one additional (CLS) token (576 for LLaVA-1.5).
 *
 * Fields of vlm_params read: llava_pad, background, llava_shortest_edge, tile_size (the crop),
 * vision_patch_size. Also the shared config reader of llava_common.h (llava_next.c uses it). */
#include "llava_common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../geometry.h"
#include "hf_config.h"

#define RESCALE_1_255 0.00392156862745098
/* The pre-pad canvas is an M x M copy of the image made before any resize (the library does
 * the same); clipprep bounds it (402 MB of RGB). */
#define LLAVA_MAX_CANVAS_PIXELS (1LL << 27)

static const double OPENAI_MEAN[3] = {0.48145466, 0.4578275, 0.40821073};
static const double OPENAI_STD[3] = {0.26862954, 0.26130258, 0.27577711};

/* ---- preprocessor_config.json (shared with llava_next.c) -------------------------------- */

static bool side(const cJSON *j, const char *key, int *out, cp_error *err)
{
    double d = cJSON_IsNumber(j) ? j->valuedouble : NAN;
    if (!(d >= 1 && d <= LLAVA_MAX_SIDE && d == floor(d)))
        return cp_fail(err, CP_ERR_CONFIG, "key \"%s\": expected an integer 1..%d", key,
                       LLAVA_MAX_SIDE);
    *out = (int)d;
    return true;
}

/* size: {"shortest_edge": S} or an int (default_to_square false: the shortest edge). */
static bool read_size(const cJSON *root, bool to_square, int *se, cp_error *err)
{
    const cJSON *j = hf_given(root, "size");
    if (!j)
        return true;
    if (cJSON_IsNumber(j) && !to_square)
        return side(j, "size", se, err);
    const cJSON *s = cJSON_IsObject(j) ? hf_given(j, "shortest_edge") : NULL;
    if (!s || cJSON_GetArraySize(j) != 1)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"size\": only {\"shortest_edge\": N} is reproduced for the LLaVA "
                       "processors (what their published configs use)");
    return side(s, "size.shortest_edge", se, err);
}

/* crop_size: {"height": c, "width": c}, [c, c] or an int: a square. */
static bool read_crop(const cJSON *root, int *crop, cp_error *err)
{
    const cJSON *j = hf_given(root, "crop_size");
    if (!j)
        return true;
    if (cJSON_IsNumber(j))
        return side(j, "crop_size", crop, err);
    int h = 0, w = 0;
    if (cJSON_IsObject(j) && cJSON_GetArraySize(j) == 2 && hf_given(j, "height") &&
        hf_given(j, "width")) {
        if (!side(hf_given(j, "height"), "crop_size.height", &h, err) ||
            !side(hf_given(j, "width"), "crop_size.width", &w, err))
            return false;
    } else if (cJSON_IsArray(j) && cJSON_GetArraySize(j) == 2) {
        if (!side(cJSON_GetArrayItem(j, 0), "crop_size[0]", &h, err) ||
            !side(cJSON_GetArrayItem(j, 1), "crop_size[1]", &w, err))
            return false;
    } else {
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"crop_size\": expected {\"height\", \"width\"}, [h, w] or an int");
    }
    if (h != w)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"crop_size\": %dx%d is not square; clipprep reproduces the square "
                       "crops of the LLaVA models",
                       h, w);
    *crop = h;
    return true;
}

bool llava_hf_read(const cJSON *root, profile *p, const char *cls, const char *const *keys,
                   bool pad_default, llava_hf_common *c, cp_error *err)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, root)
    {
        bool known = false;
        for (const char *const *k = keys; *k && !known; k++)
            known = !strcmp(*k, e->string);
        if (!known)
            return cp_fail(err, CP_ERR_CONFIG,
                           "unknown key \"%.60s\" (not a setting of transformers' %s that "
                           "clipprep reproduces)",
                           e->string, cls);
    }
    bool do_rescale, do_normalize, to_square;
    if (!hf_bool(root, "do_resize", true, &c->do_resize, err) ||
        !hf_bool(root, "do_center_crop", true, &c->do_center_crop, err) ||
        !hf_bool(root, "do_rescale", true, &do_rescale, err) ||
        !hf_bool(root, "do_normalize", true, &do_normalize, err) ||
        !hf_bool(root, "do_pad", pad_default, &c->do_pad, err) ||
        !hf_bool(root, "default_to_square", false, &to_square, err))
        return false;
    bool rgb;
    if (!hf_bool(root, "do_convert_rgb", true, &rgb, err))
        return false;
    (void)rgb; /* decoding always yields RGB; on RGB input both settings agree */
    if (!do_rescale || !do_normalize)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"%s\": false is not supported (clipprep reproduces %s with "
                       "rescale and normalise)",
                       do_rescale ? "do_normalize" : "do_rescale", cls);
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
    c->shortest_edge = 224;
    c->crop = 224;
    if (!read_size(root, to_square, &c->shortest_edge, err) || !read_crop(root, &c->crop, err))
        return false;

    p->filter = FILTER_BICUBIC;
        if (!hf_resample(root, &p->filter, err))
        return false;
    p->rescale_factor = RESCALE_1_255;
    if (!hf_rescale(root, &p->rescale_factor, err))
        return false;
    memcpy(p->mean, OPENAI_MEAN, sizeof p->mean);
    memcpy(p->std, OPENAI_STD, sizeof p->std);
    if (!hf_stats(root, "image_mean", false, p->mean, err) ||
        !hf_stats(root, "image_std", true, p->std, err))
        return false;
    memset(p->fill, 0, sizeof p->fill); /* tvF.pad / np.pad / center_crop pad with 0 */
    return true;
}

/* ---- the profile file's "vlm" object ---------------------------------------------------- */

static bool get_rgb(const cJSON *o, const char *key, unsigned char out[3], cp_error *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != 3)
        return cp_fail(err, CP_ERR_CONFIG, "key \"vlm.%s\": expected 3 integers 0..255", key);
    for (int i = 0; i < 3; i++) {
        const cJSON *e = cJSON_GetArrayItem(j, i);
        double d = cJSON_IsNumber(e) ? e->valuedouble : NAN;
        if (!(d >= 0 && d <= 255 && d == floor(d)))
            return cp_fail(err, CP_ERR_CONFIG, "key \"vlm.%s\"[%d]: expected an integer 0..255",
                           key, i);
        out[i] = (unsigned char)d;
    }
    return true;
}

static const char *const VLM_KEYS[] = {"processor", "shortest_edge", "tile_size",
                                       "pad_to_square", "background", "vision_patch_size",
                                       NULL};

static bool parse(const cJSON *vlm, vlm_params *v, cp_error *err)
{
    long long se = 0, crop = 0, vp = 0;
    if (!vlm_check_keys(vlm, VLM_KEYS, "vlm.", err) ||
        !vlm_get_int(vlm, "shortest_edge", true, 1, LLAVA_MAX_SIDE, &se, err) ||
        !vlm_get_int(vlm, "tile_size", true, 1, LLAVA_MAX_SIDE, &crop, err) ||
        !vlm_get_int(vlm, "vision_patch_size", false, 1, LLAVA_MAX_SIDE, &vp, err))
        return false;
    const cJSON *pad = cJSON_GetObjectItemCaseSensitive(vlm, "pad_to_square");
    if (pad && !cJSON_IsBool(pad))
        return cp_fail(err, CP_ERR_CONFIG, "key \"vlm.pad_to_square\": expected true or false");
    v->llava_pad = !pad || cJSON_IsTrue(pad);
    const cJSON *bg = cJSON_GetObjectItemCaseSensitive(vlm, "background");
    if (v->llava_pad && !get_rgb(vlm, "background", v->background, err))
        return false;
    if (!v->llava_pad && bg)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"vlm.background\": only with \"pad_to_square\": true");
    v->llava_shortest_edge = (int)se;
    v->tile_size = (int)crop;
    v->vision_patch_size = (int)vp;
    return true;
}

static void to_json(const vlm_params *v, cJSON *vlm)
{
    cJSON_AddNumberToObject(vlm, "shortest_edge", v->llava_shortest_edge);
    cJSON_AddNumberToObject(vlm, "tile_size", v->tile_size);
    cJSON_AddBoolToObject(vlm, "pad_to_square", v->llava_pad);
    if (v->llava_pad) {
        cJSON *bg = cJSON_AddArrayToObject(vlm, "background");
        for (int i = 0; bg && i < 3; i++)
            cJSON_AddItemToArray(bg, cJSON_CreateNumber(v->background[i]));
    }
    if (v->vision_patch_size)
        cJSON_AddNumberToObject(vlm, "vision_patch_size", v->vision_patch_size);
}

/* ---- import ------------------------------------------------------------------------------ */

static bool import_hf(const cJSON *root, profile *p, cp_error *err)
{
    static const char *const keys[] = {LLAVA_HF_KEYS, "pad_size", NULL};
    llava_hf_common c;
    if (!llava_hf_read(root, p, "LlavaImageProcessor", keys, false, &c, err))
        return false;
    if (!c.do_resize)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"do_resize\": false is not supported (the tensor size would follow "
                       "each image)");
    if (!c.do_center_crop && !c.do_pad)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"do_center_crop\": false without do_pad is not supported (the "
                       "tensor size would follow each image)");
    memset(&p->vlm, 0, sizeof p->vlm);
    p->vlm.kind = VLM_LLAVA;
    p->vlm.llava_pad = c.do_pad;
    p->vlm.llava_shortest_edge = c.shortest_edge;
    /* without a crop the padded square is resized to S x S: a crop of S is the identity */
    p->vlm.tile_size = c.do_center_crop ? c.crop : c.shortest_edge;
    if (c.do_pad) {
        /* tuple(int(x * 255) for x in image_mean): a u8 fill only for means in [0, 1] */
        for (int i = 0; i < 3; i++) {
            double b = p->mean[i] * 255.0;
            if (!(b >= 0 && b < 256))
                return cp_fail(err, CP_ERR_CONFIG,
                               "key \"image_mean\"[%d]: with do_pad the background colour "
                               "int(mean*255) must be 0..255",
                               i);
            p->vlm.background[i] = (unsigned char)(int)b;
        }
    }
    snprintf(p->reference, sizeof p->reference,
             "transformers 5 LlavaImageProcessor (torchvision; Pillow: "
             "LlavaImageProcessorPil), from preprocessor_config.json");
    snprintf(p->description, sizeof p->description,
             "LLaVA (LlavaImageProcessor%s): shortest edge %d, crop %d (imported from a Hugging "
             "Face preprocessor_config.json)",
             c.do_pad ? " with do_pad, the image padded to a square of the mean colour" : "",
             c.shortest_edge, p->vlm.tile_size);
    return true;
}

/* ---- geometry ------------------------------------------------------------------------------ */

static bool plan(const profile *pr, reference_id ref, int w, int h, vlm_image_plan *out,
                 cp_error *err)
{
    const vlm_params *v = &pr->vlm;
    if (w < 1 || h < 1)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "image of %dx%d pixels", w, h);
    int sw = w, sh = h;
    if (v->llava_pad && w != h) {
        long long m = w > h ? w : h;
        if (m * m > LLAVA_MAX_CANVAS_PIXELS)
            return cp_fail(err, CP_ERR_IMAGE_TOO_LARGE,
                           "a %dx%d image padded to a square is %lldx%lld pixels, over "
                           "clipprep's limit of %lld for that canvas",
                           w, h, m, m, LLAVA_MAX_CANVAS_PIXELS);
        out->pad_w = out->pad_h = (int)m;
        out->pad_x = (int)((m - w) / 2);
        out->pad_y = (int)((m - h) / 2);
        sw = sh = (int)m;
    }
    /* resize shortest_edge S, default_to_square False: short -> S, long -> int(S*long/short) */
    profile g = {0};
    g.resize = RESIZE_SHORTEST_EDGE;
    g.shortest_edge = v->llava_shortest_edge;
    long long rw, rh;
    geometry_resized_size(&g, sw, sh, &rw, &rh);
    if (rw < 1 || rh < 1 || rw > GEOMETRY_MAX_RESIZED_SIDE || rh > GEOMETRY_MAX_RESIZED_SIDE)
        return cp_fail(err, CP_ERR_IMAGE_TOO_LARGE,
                       "a %dx%d image resizes to %lldx%lld pixels (aspect ratio too extreme)",
                       w, h, rw, rh);
    const int c = v->tile_size;
    crop_rounding cr = reference_crop(ref);
    vlm_tile *t = &out->tiles[0];
    out->n_tiles = 1;
    t->resized_w = (int)rw;
    t->resized_h = (int)rh;
    t->left = crop_offset_rounded(cr, (int)rw, c);
    t->top = crop_offset_rounded(cr, (int)rh, c);
    t->w = t->h = c;
    out->rows = 1;
    if (v->vision_patch_size) {
        long long n = c / v->vision_patch_size;
        out->vision_tokens = n * n;
    }
    return true;
}

/* ---- arrays -------------------------------------------------------------------------------- */

static void batch(const profile *pr, const vlm_image_plan *plans, int n, out_layout *lay,
                  size_t *image_elem)
{
    (void)plans;
    const long long c = pr->vlm.tile_size;
    long long pv[4] = {n, 3, c, c};
    out_layout_add(lay, "pixel_values", ARR_PIXELS, 4, pv);
    for (int i = 0; i < n; i++)
        image_elem[i] = (size_t)i * (size_t)(3 * c * c);
}

static void write_meta(const profile *pr, const vlm_image_plan *plans, int n,
                       const out_layout *lay, uint8_t *base)
{
    (void)pr, (void)plans, (void)n, (void)lay, (void)base; /* pixel_values only */
}

const vlm_family vlm_llava = {
    .kind = VLM_LLAVA,
    .name = "llava",
    .hf_class = "Llava",
    .parse = parse,
    .to_json = to_json,
    .import_hf = import_hf,
    .plan = plan,
    .batch = batch,
    .write_meta = write_meta,
    .place_tile = NULL,
    .plan_json = NULL,
};
