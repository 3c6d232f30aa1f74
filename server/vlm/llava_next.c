/* llava_next.c — the LLaVA-NeXT family (vlm.h): transformers 5.23 LlavaNextImageProcessor
 * (torchvision) and LlavaNextImageProcessorPil ("anyres"), step for step:
 *   1. select_best_resolution((h, w), image_grid_pinpoints): for each (H, W) in order,
 *      scale = min(W/w, H/h), effective = min(int(w*scale) * int(h*scale), w*h),
 *      wasted = W*H - effective; the largest effective wins, ties to the least wasted, the
 *      first of equals (Python doubles = C doubles). Starting from max 0 and waste inf, a
 *      pinpoint is always chosen, even when every effective is 0 (a 1-pixel wide image taller
 *      than every pinpoint: int(w*scale) = 0): the library refuses no size;
 *   2. get_patch_output_size: scale_w = W/w, scale_h = H/h; scale_w < scale_h -> (H' =
 *      min(ceil(h*scale_w), H), W) else (H, W' = min(ceil(w*scale_h), W)); the image is
 *      resized (uint8, antialiased / Pillow) to W' x H';
 *   3. _pad_for_patching: zeros (u8) around it to W x H, paste at ((W-W')//2, (H-H')//2);
 *   4. divide_to_patches: T x T tiles (T = crop_size), rows then columns;
 *   5. the whole image resized (squashed) to S x S (S = size.shortest_edge) goes first;
 *   6. each of these is resized to shortest_edge S and center-cropped to T: identities, since
 *      clipprep requires S = T and every pinpoint side a multiple of T;
 *   7. rescale + normalise; _pad_for_batching: zero tiles up to the batch's largest count.
 * So tile 0 = the whole image resized to T x T, tile 1 + r*(W/T) + c = the W' x H' resize's
 * window (c*T - pad_x, r*T - pad_y, T, T), outside the resized image the u8 fill 0.
 * Arrays: pixel_values (N, max tiles in the batch, 3, T, T), image_sizes (N, 2) int64 =
 * (height, width) of the image as decoded.
 * vision_tokens (vision_patch_size p set): LlavaNextProcessor._get_number_of_features with
 * num_additional_image_tokens 1 and vision_feature_select_strategy "default" (the published
 * llava-hf processors): unpadded + newline features + (T/p)^2.
 *
 * Fields of vlm_params read: tile_size, pinpoints, n_pinpoints, vision_patch_size. */
#include "llava_common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

/* LlavaNextImageProcessor.image_grid_pinpoints (the class default), (height, width) */
static const int DEFAULT_PINPOINTS[][2] = {{336, 672}, {672, 336}, {672, 672}, {1008, 336},
                                           {336, 1008}};

/* Pinpoints: a list of [height, width], each a multiple of the tile side. */
static bool read_pinpoints(const cJSON *j, const char *key, int tile, vlm_params *v,
                           cp_error *err)
{
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) < 1 ||
        cJSON_GetArraySize(j) > VLM_MAX_PINPOINTS)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"%s\": expected a list of 1..%d [height, width] pairs", key,
                       VLM_MAX_PINPOINTS);
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, j)
    {
        int hw[2];
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2)
            return cp_fail(err, CP_ERR_CONFIG, "key \"%s\"[%d]: expected [height, width]", key,
                           n);
        for (int k = 0; k < 2; k++) {
            const cJSON *x = cJSON_GetArrayItem(e, k);
            double d = cJSON_IsNumber(x) ? x->valuedouble : NAN;
            if (!(d >= 1 && d <= 16 * LLAVA_MAX_SIDE && d == floor(d)))
                return cp_fail(err, CP_ERR_CONFIG, "key \"%s\"[%d][%d]: expected an integer "
                               "1..%d", key, n, k, 16 * LLAVA_MAX_SIDE);
            hw[k] = (int)d;
        }
        if (hw[0] % tile || hw[1] % tile)
            return cp_fail(err, CP_ERR_CONFIG,
                           "key \"%s\"[%d]: %dx%d is not a multiple of the tile side %d (the "
                           "processor would then resize partial tiles: not reproduced)",
                           key, n, hw[0], hw[1], tile);
        long long tiles = (long long)(hw[0] / tile) * (hw[1] / tile);
        if (tiles + 1 > VLM_MAX_TILES)
            return cp_fail(err, CP_ERR_CONFIG,
                           "key \"%s\"[%d]: %dx%d makes %lld tiles of %d, over clipprep's %d",
                           key, n, hw[0], hw[1], tiles, tile, VLM_MAX_TILES - 1);
        v->pinpoints[n][0] = hw[0];
        v->pinpoints[n][1] = hw[1];
        n++;
    }
    v->n_pinpoints = n;
    return true;
}

/* ---- the profile file's "vlm" object ---------------------------------------------------- */

static const char *const VLM_KEYS[] = {"processor", "tile_size", "pinpoints",
                                       "vision_patch_size", NULL};

static bool parse(const cJSON *vlm, vlm_params *v, cp_error *err)
{
    long long crop = 0, vp = 0;
    if (!vlm_check_keys(vlm, VLM_KEYS, "vlm.", err) ||
        !vlm_get_int(vlm, "tile_size", true, 1, LLAVA_MAX_SIDE, &crop, err) ||
        !vlm_get_int(vlm, "vision_patch_size", false, 1, LLAVA_MAX_SIDE, &vp, err))
        return false;
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(vlm, "pinpoints");
    if (!pp)
        return cp_fail(err, CP_ERR_CONFIG, "key \"vlm.pinpoints\" is required");
    if (!read_pinpoints(pp, "vlm.pinpoints", (int)crop, v, err))
        return false;
    v->tile_size = (int)crop;
    v->vision_patch_size = (int)vp;
    return true;
}

static void to_json(const vlm_params *v, cJSON *vlm)
{
    cJSON_AddNumberToObject(vlm, "tile_size", v->tile_size);
    cJSON *pp = cJSON_AddArrayToObject(vlm, "pinpoints");
    for (int i = 0; pp && i < v->n_pinpoints; i++) {
        cJSON *e = cJSON_CreateArray();
        if (!e)
            break;
        cJSON_AddItemToArray(e, cJSON_CreateNumber(v->pinpoints[i][0]));
        cJSON_AddItemToArray(e, cJSON_CreateNumber(v->pinpoints[i][1]));
        cJSON_AddItemToArray(pp, e);
    }
    if (v->vision_patch_size)
        cJSON_AddNumberToObject(vlm, "vision_patch_size", v->vision_patch_size);
}

/* ---- import ------------------------------------------------------------------------------ */

static bool import_hf(const cJSON *root, profile *p, cp_error *err)
{
    /* aspect_ratio_setting / image_split_resolution: in the published configs, not read by
     * the class (anyres is all it does) */
    static const char *const keys[] = {LLAVA_HF_KEYS, "image_grid_pinpoints",
                                       "aspect_ratio_setting", "image_split_resolution", NULL};
    llava_hf_common c;
    if (!llava_hf_read(root, p, "LlavaNextImageProcessor", keys, true, &c, err))
        return false;
    const cJSON *ars = cJSON_GetObjectItemCaseSensitive(root, "aspect_ratio_setting");
    if (ars && !cJSON_IsNull(ars) &&
        !(cJSON_IsString(ars) && !strcmp(ars->valuestring, "anyres")))
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"aspect_ratio_setting\": only \"anyres\" (what "
                       "LlavaNextImageProcessor does)");
    if (!c.do_pad)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"do_pad\": false is not supported (the processor then returns one "
                       "array per image, which only stacks when every image has as many tiles)");
    if (c.shortest_edge != c.crop)
        return cp_fail(err, CP_ERR_CONFIG,
                       "keys \"size\" and \"crop_size\": shortest_edge %d differs from the crop "
                       "%d; clipprep reproduces the LLaVA-NeXT configs where they are equal (the "
                       "tiles then pass the per-patch resize and crop unchanged)",
                       c.shortest_edge, c.crop);
    memset(&p->vlm, 0, sizeof p->vlm);
    p->vlm.kind = VLM_LLAVA_NEXT;
    p->vlm.tile_size = c.crop;
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "image_grid_pinpoints");
    if (pp && !cJSON_IsNull(pp)) {
        if (!read_pinpoints(pp, "image_grid_pinpoints", c.crop, &p->vlm, err))
            return false;
    } else {
        int n = (int)(sizeof DEFAULT_PINPOINTS / sizeof DEFAULT_PINPOINTS[0]);
        for (int i = 0; i < n; i++) {
            if (DEFAULT_PINPOINTS[i][0] % c.crop || DEFAULT_PINPOINTS[i][1] % c.crop)
                return cp_fail(err, CP_ERR_CONFIG,
                               "key \"crop_size\": %d does not divide the default "
                               "image_grid_pinpoints (give image_grid_pinpoints)",
                               c.crop);
            p->vlm.pinpoints[i][0] = DEFAULT_PINPOINTS[i][0];
            p->vlm.pinpoints[i][1] = DEFAULT_PINPOINTS[i][1];
        }
        p->vlm.n_pinpoints = n;
    }
    snprintf(p->reference, sizeof p->reference,
             "transformers 5 LlavaNextImageProcessor (torchvision; Pillow: "
             "LlavaNextImageProcessorPil), from preprocessor_config.json");
    snprintf(p->description, sizeof p->description,
             "LLaVA-NeXT anyres: tiles of %d from the best of %d grid resolutions, plus the "
             "whole image (imported from a Hugging Face preprocessor_config.json)",
             c.crop, p->vlm.n_pinpoints);
    return true;
}

/* ---- geometry ------------------------------------------------------------------------------ */

/* select_best_resolution; false when best_fit stays None (only with no pinpoints, which a
 * profile cannot have). */
static bool best_resolution(const vlm_params *v, int w, int h, int *bh, int *bw)
{
    long long max_eff = 0;
    double min_waste = INFINITY;
    bool found = false;
    for (int i = 0; i < v->n_pinpoints; i++) {
        int H = v->pinpoints[i][0], W = v->pinpoints[i][1];
        double sw = (double)W / w, sh = (double)H / h;
        double scale = sh < sw ? sh : sw; /* min(width/ow, height/oh) */
        long long dw = (long long)((double)w * scale), dh = (long long)((double)h * scale);
        long long eff = dw * dh, orig = (long long)w * h;
        if (orig < eff)
            eff = orig;
        long long waste = (long long)W * H - eff;
        if (eff > max_eff || (eff == max_eff && (double)waste < min_waste)) {
            max_eff = eff;
            min_waste = (double)waste;
            *bh = H;
            *bw = W;
            found = true;
        }
    }
    return found;
}

/* get_patch_output_size: (height, width) */
static void patch_output_size(int w, int h, int H, int W, int *nh, int *nw)
{
    double sw = (double)W / w, sh = (double)H / h;
    if (sw < sh) {
        double c = ceil((double)h * sw);
        *nw = W;
        *nh = c < H ? (int)c : H;
    } else {
        double c = ceil((double)w * sh);
        *nh = H;
        *nw = c < W ? (int)c : W;
    }
}

/* int(round(x, 7)) for x >= 0: rounding to 7 decimals moves x to the next integer only when
 * its fraction is at least 0.99999995 (no double equals that decimal: no tie). */
static long long int_round7(double x)
{
    double f = floor(x);
    return (long long)f + (x - f >= 0.99999995 ? 1 : 0);
}

/* LlavaNextProcessor._get_number_of_features (+1 CLS, -1 for the "default" strategy) */
static long long vision_tokens(int tile, int patch, int oh, int ow, int bh, int bw)
{
    long long scale_h = bh / tile, scale_w = bw / tile;
    long long ph = tile / patch, pw = tile / patch;
    long long cur_h = ph * scale_h, cur_w = pw * scale_w;
    double orig_ar = (double)ow / oh, cur_ar = (double)cur_w / (double)cur_h;
    if (orig_ar > cur_ar) {
        long long nh = int_round7((double)oh * ((double)cur_w / ow));
        long long pad = (cur_h - nh) / 2; /* Python // on a possibly negative value */
        if ((cur_h - nh) < 0 && (cur_h - nh) % 2)
            pad -= 1;
        cur_h -= pad * 2;
    } else {
        long long nw = int_round7((double)ow * ((double)cur_h / oh));
        long long pad = (cur_w - nw) / 2;
        if ((cur_w - nw) < 0 && (cur_w - nw) % 2)
            pad -= 1;
        cur_w -= pad * 2;
    }
    return cur_h * cur_w + cur_h + ph * pw;
}

static bool plan(const profile *pr, reference_id ref, int w, int h, vlm_image_plan *out,
                 cp_error *err)
{
    (void)ref; /* both backends plan alike */
    const vlm_params *v = &pr->vlm;
    const int T = v->tile_size;
    if (w < 1 || h < 1)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "image of %dx%d pixels", w, h);
    int bh = 0, bw = 0;
    if (!best_resolution(v, w, h, &bh, &bw))
        return cp_fail(err, CP_ERR_INVALID_IMAGE,
                       "a %dx%d image: no image_grid_pinpoints to choose from",
                       w, h);
    int nh, nw;
    patch_output_size(w, h, bh, bw, &nh, &nw);
    int pad_x = (bw - nw) / 2, pad_y = (bh - nh) / 2;
    int rows = bh / T, cols = bw / T;
    out->n_tiles = 1 + rows * cols;
    vlm_tile *t = &out->tiles[0];
    t->resized_w = t->resized_h = t->w = t->h = T; /* the whole image, squashed */
    t->left = t->top = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            t = &out->tiles[1 + r * cols + c];
            t->resized_w = nw;
            t->resized_h = nh;
            t->left = c * T - pad_x;
            t->top = r * T - pad_y;
            t->w = t->h = T;
        }
    out->meta[0] = h; /* image_sizes: (height, width) */
    out->meta[1] = w;
    out->meta[2] = bh; /* the chosen resolution (for /v1/plan) */
    out->meta[3] = bw;
    out->rows = out->n_tiles;
    if (v->vision_patch_size)
        out->vision_tokens = vision_tokens(T, v->vision_patch_size, h, w, bh, bw);
    return true;
}

/* ---- arrays -------------------------------------------------------------------------------- */

static void batch(const profile *pr, const vlm_image_plan *plans, int n, out_layout *lay,
                  size_t *image_elem)
{
    const long long T = pr->vlm.tile_size;
    long long most = 0;
    for (int i = 0; i < n; i++)
        if (plans[i].n_tiles > most)
            most = plans[i].n_tiles;
    long long pv[5] = {n, most, 3, T, T}, sizes[2] = {n, 2};
    out_layout_add(lay, "pixel_values", ARR_PIXELS, 5, pv);
    out_layout_add(lay, "image_sizes", ARR_INT64, 2, sizes);
    for (int i = 0; i < n; i++)
        image_elem[i] = (size_t)i * (size_t)(most * 3 * T * T);
}

static void write_meta(const profile *pr, const vlm_image_plan *plans, int n,
                       const out_layout *lay, uint8_t *base)
{
    (void)pr;
    const out_array *s = out_layout_find(lay, "image_sizes");
    for (int i = 0; s && i < n; i++) {
        int64_t *v = (int64_t *)(base + s->offset) + 2 * (size_t)i;
        v[0] = plans[i].meta[0];
        v[1] = plans[i].meta[1];
    }
}

static void plan_json(const profile *pr, const vlm_image_plan *ip, cJSON *entry)
{
    (void)pr;
    cJSON *s = cJSON_AddArrayToObject(entry, "image_sizes");
    if (s) {
        cJSON_AddItemToArray(s, cJSON_CreateNumber((double)ip->meta[0]));
        cJSON_AddItemToArray(s, cJSON_CreateNumber((double)ip->meta[1]));
    }
    cJSON *b = cJSON_AddArrayToObject(entry, "best_resolution");
    if (b) {
        cJSON_AddItemToArray(b, cJSON_CreateNumber((double)ip->meta[2]));
        cJSON_AddItemToArray(b, cJSON_CreateNumber((double)ip->meta[3]));
    }
    cJSON_AddNumberToObject(entry, "num_tiles", ip->n_tiles);
}

const vlm_family vlm_llava_next = {
    .kind = VLM_LLAVA_NEXT,
    .name = "llava_next",
    .hf_class = "LlavaNext",
    .parse = parse,
    .to_json = to_json,
    .import_hf = import_hf,
    .plan = plan,
    .batch = batch,
    .write_meta = write_meta,
    .place_tile = NULL,
    .plan_json = plan_json,
};
