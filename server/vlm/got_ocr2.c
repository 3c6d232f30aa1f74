/* got_ocr2.c — InternVL's tiling (vlm.h), as transformers 5.23's GotOcr2ImageProcessor
 * (torchvision backend) and GotOcr2ImageProcessorPil prepare images with crop_to_patches=True
 * (what InternVLProcessor passes on every call):
 *   1. get_optimal_tiled_canvas: among the grids (cols, rows) with
 *      min_patches <= cols*rows <= max_patches — listed width-major, then stably sorted by
 *      cols*rows — the first with the smallest |w/h - cols/rows| (doubles); on an exact tie a
 *      later grid wins while the image area > 0.5 * S*S*cols*rows. No grid: (1, 1).
 *   2. the image squashed (uint8, antialiased) to cols*S x rows*S and cut into S x S tiles in
 *      raster order; when there is more than one tile, the thumbnail (the whole image squashed
 *      to S x S) follows them;
 *   3. torchvision: each tile is "resized" again to S x S — an identity (tvF.resize returns the
 *      input when the size is unchanged); Pillow: no second resize (and max_patches <= 1 takes
 *      the plain path, a resize to S x S: the same single tile);
 *   4. rescale + normalise (ImageNet statistics for InternVL).
 * Arrays (return_tensors="np"): pixel_values (total tiles of the batch, 3, S, S) float, images
 * one after the other; num_patches (N,) int64, the tiles of each image (thumbnail included).
 *
 * Fields of vlm_params read: tile_size, min_patches, max_patches, thumbnail, image_seq_length
 * (tokens per tile, for vision_tokens; 0 = not counted). thumbnail false (never done by
 * transformers, whose use_thumbnail is always True) is InternVL's original use_thumbnail=False.
 * place_tile is NULL: each tile is 3 planes S x S, in order. */
#include "hf_config.h"
#include "vlm.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#define RESCALE_1_255 0.00392156862745098
#define MAX_TILE_SIDE 4096
/* the thumbnail takes the last tile of VLM_MAX_TILES */
#define MAX_PATCHES (VLM_MAX_TILES - 1)
/* (max_patches + thumbnail) * S*S pixels per image: at most 64 Mi (768 MiB of float32) */
#define MAX_IMAGE_PIXELS (1LL << 26)

static bool check_sizes(long long s, long long maxp, bool thumb, cp_error *err)
{
    long long tiles = maxp + (thumb && maxp > 1 ? 1 : 0);
    if (tiles * s * s > MAX_IMAGE_PIXELS)
        return cp_fail(err, CP_ERR_CONFIG,
                       "%lld tiles of %lldx%lld = %lld pixels per image is over clipprep's limit "
                       "of %lld",
                       tiles, s, s, tiles * s * s, MAX_IMAGE_PIXELS);
    return true;
}

static bool parse(const cJSON *vlm, vlm_params *v, cp_error *err)
{
    static const char *const keys[] = {"processor",  "tile_size", "min_patches",
                                       "max_patches", "thumbnail", "image_seq_length", NULL};
    long long s = 0, minp = 1, maxp = 12, seq = 0;
    bool thumb = true;
    if (!vlm_check_keys(vlm, keys, "vlm.", err) ||
        !vlm_get_int(vlm, "tile_size", true, 1, MAX_TILE_SIDE, &s, err) ||
        !vlm_get_int(vlm, "min_patches", false, 1, MAX_PATCHES, &minp, err) ||
        !vlm_get_int(vlm, "max_patches", false, 1, MAX_PATCHES, &maxp, err) ||
        !vlm_get_bool(vlm, "thumbnail", true, &thumb, err) ||
        !vlm_get_int(vlm, "image_seq_length", false, 0, 1 << 20, &seq, err) ||
        !check_sizes(s, maxp, thumb, err))
        return false;
    v->tile_size = (int)s;
    v->min_patches = (int)minp;
    v->max_patches = (int)maxp;
    v->thumbnail = thumb;
    v->image_seq_length = (int)seq;
    return true;
}

static void to_json(const vlm_params *v, cJSON *vlm)
{
    cJSON_AddNumberToObject(vlm, "tile_size", v->tile_size);
    cJSON_AddNumberToObject(vlm, "min_patches", v->min_patches);
    cJSON_AddNumberToObject(vlm, "max_patches", v->max_patches);
    cJSON_AddBoolToObject(vlm, "thumbnail", v->thumbnail);
    if (v->image_seq_length > 0)
        cJSON_AddNumberToObject(vlm, "image_seq_length", v->image_seq_length);
}

/* ---- preprocessor_config.json ------------------------------------------------------------ */

static bool side_of(const cJSON *j, const char *key, long long *out, cp_error *err)
{
    double d = cJSON_IsNumber(j) ? j->valuedouble : NAN;
    if (!(d >= 1 && d <= MAX_TILE_SIDE && d == floor(d)))
        return cp_fail(err, CP_ERR_CONFIG, "key \"%s\": expected an integer 1..%d", key,
                       MAX_TILE_SIDE);
    *out = (long long)d;
    return true;
}

/* size: an int (square: the class's default_to_square), [h, w] or {"height", "width"}; the
 * tiles are square here (tile_size), so height must equal width. */
static bool hf_tile_size(const cJSON *j, long long *s, cp_error *err)
{
    long long h = 0, w = 0;
    if (cJSON_IsNumber(j)) {
        if (!side_of(j, "size", &h, err))
            return false;
        w = h;
    } else if (cJSON_IsArray(j) && cJSON_GetArraySize(j) == 2) {
        if (!side_of(cJSON_GetArrayItem(j, 0), "size[0]", &h, err) ||
            !side_of(cJSON_GetArrayItem(j, 1), "size[1]", &w, err))
            return false;
    } else if (cJSON_IsObject(j)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, j)
        {
            if (strcmp(e->string, "height") && strcmp(e->string, "width") &&
                !cJSON_IsNull(e))
                return cp_fail(err, CP_ERR_CONFIG,
                               "key \"size.%.40s\": not supported (GotOcr2ImageProcessor tiles "
                               "need {\"height\", \"width\"})",
                               e->string);
        }
        const cJSON *hh = hf_given(j, "height"), *ww = hf_given(j, "width");
        if (!hh || !ww)
            return cp_fail(err, CP_ERR_CONFIG, "key \"size\": needs both height and width");
        if (!side_of(hh, "size.height", &h, err) || !side_of(ww, "size.width", &w, err))
            return false;
    } else {
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"size\": expected an integer, [height, width] or {\"height\", "
                       "\"width\"}");
    }
    if (h != w)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"size\": %lldx%lld tiles are not square; clipprep reproduces square "
                       "tiles (InternVL's 448x448)",
                       w, h);
    *s = h;
    return true;
}

/* Keys of a GotOcr2ImageProcessor config. crop_size and do_center_crop (false/null), pad and
 * format keys are not read by GotOcr2's _preprocess. */
static const char *const HF_KEYS[] = {
    "image_processor_type", "processor_class", "auto_map", "_valid_processor_keys",
    "do_resize", "size", "resample", "do_rescale", "rescale_factor", "do_normalize",
    "image_mean", "image_std", "do_convert_rgb", "crop_to_patches", "min_patches",
    "max_patches", "crop_size", "do_center_crop", "default_to_square", "data_format",
    "input_data_format", "return_tensors", "device", "disable_grouping", "image_seq_length",
    NULL,
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
                           "GotOcr2ImageProcessor that clipprep reproduces)",
                           e->string);
    }
    bool do_resize, do_rescale, do_normalize, do_crop, crop_patches;
    if (!hf_bool(root, "do_resize", true, &do_resize, err) ||
        !hf_bool(root, "do_rescale", true, &do_rescale, err) ||
        !hf_bool(root, "do_normalize", true, &do_normalize, err) ||
        !hf_bool(root, "do_center_crop", false, &do_crop, err) ||
        !hf_bool(root, "crop_to_patches", false, &crop_patches, err))
        return false;
    if (!do_resize)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"do_resize\": false is not supported (a single tile would keep "
                       "each image's own size)");
    if (!do_rescale || !do_normalize)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"%s\": false is not supported (clipprep reproduces "
                       "GotOcr2ImageProcessor with rescale and normalise)",
                       do_rescale ? "do_normalize" : "do_rescale");
    if (do_crop)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"do_center_crop\": true is not supported (GotOcr2ImageProcessor "
                       "does not crop)");
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
    const cJSON *dts = hf_given(root, "default_to_square");
    if (dts && !cJSON_IsBool(dts))
        return cp_fail(err, CP_ERR_CONFIG, "key \"default_to_square\": expected true or false");
    const cJSON *sz = hf_given(root, "size");
    if (dts && cJSON_IsFalse(dts) && sz && cJSON_IsNumber(sz))
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"size\": an integer with default_to_square false is a shortest "
                       "edge, which GotOcr2ImageProcessor cannot tile");

    /* InternVLProcessor calls the image processor with crop_to_patches=True whatever the
     * config says (its images_kwargs default); the image processor alone tiles only when the
     * config asks. Without tiling the output is one S x S tile per image: min = max = 1. */
    const cJSON *pc = hf_given(root, "processor_class");
    bool internvl = cJSON_IsString(pc) && !strcmp(pc->valuestring, "InternVLProcessor");
    bool tiling = crop_patches || internvl;

    /* the class defaults (GotOcr2ImageProcessor): 384x384, 1..12 patches, bicubic, CLIP stats */
    long long s = 384, minp = 1, maxp = 12, seq = 0;
    if (sz && !hf_tile_size(sz, &s, err))
        return false;
    if (!vlm_get_int(root, "min_patches", false, 1, MAX_PATCHES, &minp, err) ||
        !vlm_get_int(root, "max_patches", false, 1, MAX_PATCHES, &maxp, err) ||
        !vlm_get_int(root, "image_seq_length", false, 0, 1 << 20, &seq, err))
        return false;
    if (!tiling)
        minp = maxp = 1;
    if (!check_sizes(s, maxp, true, err))
        return false;
    memset(&p->vlm, 0, sizeof p->vlm);
    p->vlm.kind = VLM_GOT_OCR2;
    p->vlm.tile_size = (int)s;
    p->vlm.min_patches = (int)minp;
    p->vlm.max_patches = (int)maxp;
    p->vlm.thumbnail = true; /* crop_image_to_patches' use_thumbnail, never changed */
    p->vlm.image_seq_length = (int)seq;

    p->filter = FILTER_BICUBIC;
        if (!hf_resample(root, &p->filter, err))
        return false;
    p->rescale_factor = RESCALE_1_255;
    if (!hf_rescale(root, &p->rescale_factor, err))
        return false;
    static const double CLIP_MEAN[3] = {0.48145466, 0.4578275, 0.40821073};
    static const double CLIP_STD[3] = {0.26862954, 0.26130258, 0.27577711};
    memcpy(p->mean, CLIP_MEAN, sizeof p->mean);
    memcpy(p->std, CLIP_STD, sizeof p->std);
    if (!hf_stats(root, "image_mean", false, p->mean, err) ||
        !hf_stats(root, "image_std", true, p->std, err))
        return false;
    snprintf(p->reference, sizeof p->reference,
             "transformers 5 GotOcr2ImageProcessor%s (torchvision; Pillow: "
             "GotOcr2ImageProcessorPil), from preprocessor_config.json",
             tiling ? " with crop_to_patches" : "");
    snprintf(p->description, sizeof p->description,
             "%s: %dx%d tiles, %d..%d of them plus a thumbnail (imported from a Hugging Face "
             "preprocessor_config.json)",
             internvl ? "InternVL" : "GotOcr2ImageProcessor", p->vlm.tile_size, p->vlm.tile_size,
             p->vlm.min_patches, p->vlm.max_patches);
    return true;
}

/* ---- geometry ------------------------------------------------------------------------------ */

/* get_optimal_tiled_canvas, transformers 5.23, step for step: (cols, rows). */
static void optimal_grid(int w, int h, int s, int minp, int maxp, int *cols, int *rows)
{
    const double aspect = (double)w / (double)h;
    const long long area = (long long)w * h;
    double best_diff = INFINITY;
    int bc = 1, br = 1;
    /* get_all_supported_aspect_ratios: width-major, then a stable sort by cols*rows */
    for (int prod = minp < 1 ? 1 : minp; prod <= maxp; prod++)
        for (int c = 1; c <= maxp; c++)
            for (int r = 1; r <= maxp; r++) {
                if (c * r != prod)
                    continue;
                double diff = fabs(aspect - (double)c / (double)r);
                if (diff < best_diff) {
                    best_diff = diff;
                    bc = c;
                    br = r;
                } else if (diff == best_diff) {
                    /* area > 0.5 * S * S * c * r (exact in doubles: compare doubled integers) */
                    if (2 * area > (long long)s * s * c * r) {
                        bc = c;
                        br = r;
                    }
                }
            }
    *cols = bc;
    *rows = br;
}

static bool plan(const profile *pr, reference_id ref, int w, int h, vlm_image_plan *out,
                 cp_error *err)
{
    (void)ref; /* both backends plan alike (see the file comment) */
    const vlm_params *v = &pr->vlm;
    const int s = v->tile_size;
    if (w < 1 || h < 1 || s < 1)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "image of %dx%d pixels", w, h);
    int cols, rows;
    optimal_grid(w, h, s, v->min_patches, v->max_patches, &cols, &rows);
    int n = cols * rows;
    for (int i = 0; i < n; i++) {
        vlm_tile *t = &out->tiles[i];
        t->resized_w = cols * s;
        t->resized_h = rows * s;
        t->left = (i % cols) * s;
        t->top = (i / cols) * s;
        t->w = t->h = s;
    }
    if (v->thumbnail && n != 1) {
        vlm_tile *t = &out->tiles[n++];
        t->resized_w = t->resized_h = t->w = t->h = s;
        t->left = t->top = 0;
    }
    out->n_tiles = n;
    out->meta[0] = cols;
    out->meta[1] = rows;
    out->rows = n;
    out->vision_tokens = v->image_seq_length > 0 ? (long long)n * v->image_seq_length : -1;
    return true;
}

/* ---- arrays -------------------------------------------------------------------------------- */

static void batch(const profile *pr, const vlm_image_plan *plans, int n, out_layout *lay,
                  size_t *image_elem)
{
    const long long s = pr->vlm.tile_size, per_tile = 3 * s * s;
    long long total = 0;
    for (int i = 0; i < n; i++) {
        image_elem[i] = (size_t)(total * per_tile);
        total += plans[i].rows;
    }
    long long pv[4] = {total, 3, s, s}, np_[1] = {n};
    out_layout_add(lay, "pixel_values", ARR_PIXELS, 4, pv);
    out_layout_add(lay, "num_patches", ARR_INT64, 1, np_);
}

static void write_meta(const profile *pr, const vlm_image_plan *plans, int n,
                       const out_layout *lay, uint8_t *base)
{
    (void)pr;
    const out_array *a = out_layout_find(lay, "num_patches");
    if (!a)
        return;
    int64_t *v = (int64_t *)(base + a->offset);
    for (int i = 0; i < n; i++)
        v[i] = plans[i].rows;
}

static void plan_json(const profile *pr, const vlm_image_plan *ip, cJSON *entry)
{
    cJSON_AddNumberToObject(entry, "num_patches", (double)ip->rows);
    cJSON *g = cJSON_AddObjectToObject(entry, "tile_grid");
    if (g) {
        cJSON_AddNumberToObject(g, "columns", (double)ip->meta[0]);
        cJSON_AddNumberToObject(g, "rows", (double)ip->meta[1]);
        cJSON_AddBoolToObject(g, "thumbnail",
                              pr->vlm.thumbnail && ip->meta[0] * ip->meta[1] != 1);
    }
}

const vlm_family vlm_got_ocr2 = {
    .kind = VLM_GOT_OCR2,
    .name = "got_ocr2",
    .hf_class = "GotOcr2",
    .parse = parse,
    .to_json = to_json,
    .import_hf = import_hf,
    .plan = plan,
    .batch = batch,
    .write_meta = write_meta,
    .place_tile = NULL,
    .plan_json = plan_json,
};
