/* profile_import.c — model configs as profiles: recognising the format, reading a Hugging Face
 * preprocessor_config.json the way transformers does (class defaults, old int/list sizes, null =
 * default) and an open_clip_config.json the way open_clip's factory + image_transform do
 * (image size from model_cfg, preprocess_cfg on top of PreprocessCfg defaults). What a library
 * accepts but clipprep cannot reproduce exactly is refused by key name, never approximated. */
#include "profile_import.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "vlm/vlm.h"

#define IMPORT_FILE_MAX (1 << 20)
#define MAX_SIDE 4096
#define RESCALE_1_255 0.00392156862745098

static const double OPENAI_MEAN[3] = {0.48145466, 0.4578275, 0.40821073};
static const double OPENAI_STD[3] = {0.26862954, 0.26130258, 0.27577711};
static const double HALF[3] = {0.5, 0.5, 0.5};

/* ---- format ----------------------------------------------------------------------------- */

static bool has(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static config_format format_of_json(const cJSON *root)
{
    if (!cJSON_IsObject(root)) return CONFIG_UNRECOGNISED;
    if (has(root, "name") || has(root, "resize")) return CONFIG_NATIVE;
    if (has(root, "model_cfg") || has(root, "preprocess_cfg")) return CONFIG_OPEN_CLIP;
    static const char *const hf_keys[] = {"image_processor_type", "feature_extractor_type",
                                          "do_resize", "image_mean", "image_std", "crop_size",
                                          "do_center_crop", "do_normalize", "processor_class",
                                          NULL};
    for (const char *const *k = hf_keys; *k; k++)
        if (has(root, *k)) return CONFIG_HF;
    return CONFIG_UNRECOGNISED;
}

config_format config_format_of(const char *json_text)
{
    cJSON *root = json_text ? cJSON_Parse(json_text) : NULL;
    config_format f = format_of_json(root);
    cJSON_Delete(root);
    return f;
}

const char *config_format_name(config_format f)
{
    switch (f) {
    case CONFIG_NATIVE: return "clipprep profile";
    case CONFIG_HF: return "Hugging Face " HF_CONFIG_FILE;
    case CONFIG_OPEN_CLIP: return "open_clip " OPEN_CLIP_CONFIG_FILE;
    default: return "unrecognised";
    }
}

/* ---- shared value readers ------------------------------------------------------------------ */

/* A member that is absent or JSON null reads as "not given" (both libraries: the default). */
static const cJSON *given(const cJSON *o, const char *k)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    return (j && !cJSON_IsNull(j)) ? j : NULL;
}

static bool side_value(const cJSON *j, const char *key, int *out, cp_error *err)
{
    double d = cJSON_IsNumber(j) ? j->valuedouble : NAN;
    if (!(d >= 1 && d <= MAX_SIDE && d == floor(d)))
        return cp_fail(err, CP_ERR_CONFIG, "key \"%s\": expected an integer 1..%d", key, MAX_SIDE);
    *out = (int)d;
    return true;
}

static bool bool_value(const cJSON *o, const char *key, bool dflt, bool *out, cp_error *err)
{
    const cJSON *j = given(o, key);
    if (!j) {
        *out = dflt;
        return true;
    }
    if (!cJSON_IsBool(j))
        return cp_fail(err, CP_ERR_CONFIG, "key \"%s\": expected true, false or null", key);
    *out = cJSON_IsTrue(j);
    return true;
}

/* A number (applied to all three channels, as both libraries do) or [R, G, B]. */
static bool stats_value(const cJSON *j, const char *key, bool positive, double out[3],
                        cp_error *err)
{
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
                       "RGB only",
                       key);
    }
    for (int i = 0; i < 3; i++)
        if (!isfinite(out[i]) || (positive && !(out[i] > 0)))
            return cp_fail(err, CP_ERR_CONFIG, "key \"%s\"[%d]: must be %s", key, i,
                           positive ? "> 0" : "finite");
    return true;
}

/* ---- Hugging Face preprocessor_config.json ---------------------------------------------- */

typedef struct {
    const char *family;     /* class name without Fast/Pil/FeatureExtractor */
    bool default_to_square; /* what an int size means: square (ViT) or shortest edge */
    int size_shortest, size_h, size_w; /* default size (shortest_edge or height x width) */
    bool do_center_crop;
    int crop;               /* default square crop */
    resample_filter filter;
    const double *mean, *std;
} hf_class;

static const hf_class HF_CLASSES[] = {
    {"CLIP", false, 224, 0, 0, true, 224, FILTER_BICUBIC, OPENAI_MEAN, OPENAI_STD},
    {"Siglip", false, 0, 224, 224, false, 0, FILTER_BICUBIC, HALF, HALF},
    {"ViT", true, 0, 224, 224, false, 0, FILTER_BILINEAR, HALF, HALF},
};

static bool hf_class_of(const cJSON *root, const hf_class **cls, char *type, size_t cap,
                        cp_error *err)
{
    const char *key = "image_processor_type";
    const cJSON *t = given(root, key);
    if (!t) {
        key = "feature_extractor_type";
        t = given(root, key);
    }
    if (!t)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"image_processor_type\" is required (it names the transformers "
                       "class, e.g. \"CLIPImageProcessor\")");
    if (!cJSON_IsString(t))
        return cp_fail(err, CP_ERR_CONFIG, "key \"%s\": expected a string", key);
    snprintf(type, cap, "%s", t->valuestring);
    char base[64];
    snprintf(base, sizeof base, "%s", t->valuestring);
    size_t n = strlen(base);
    static const char *const suffixes[] = {"ImageProcessorFast", "ImageProcessorPil",
                                           "ImageProcessor", "FeatureExtractor", NULL};
    bool stripped = false;
    for (const char *const *s = suffixes; *s && !stripped; s++) {
        size_t sl = strlen(*s);
        if (n > sl && strcmp(base + n - sl, *s) == 0) {
            base[n - sl] = 0;
            stripped = true;
        }
    }
    if (stripped)
        for (size_t i = 0; i < sizeof HF_CLASSES / sizeof HF_CLASSES[0]; i++)
            if (strcmp(base, HF_CLASSES[i].family) == 0) {
                *cls = &HF_CLASSES[i];
                return true;
            }
    return cp_fail(err, CP_ERR_CONFIG,
                   "key \"%s\": \"%.60s\" is not supported (supported: CLIPImageProcessor, "
                   "SiglipImageProcessor, ViTImageProcessor, their Fast/Pil forms and "
                   "CLIPFeatureExtractor)",
                   key, t->valuestring);
}

/* size / crop_size: int, [h, w], {"height","width"}, {"shortest_edge"}; the other transformers
 * forms are refused by name. shortest = 0 means height x width. */
static bool hf_size(const cJSON *j, const char *key, bool int_is_square, int *shortest, int *h,
                    int *w, cp_error *err)
{
    char k[64];
    *shortest = *h = *w = 0;
    if (cJSON_IsNumber(j)) {
        int v;
        if (!side_value(j, key, &v, err)) return false;
        if (int_is_square)
            *h = *w = v;
        else
            *shortest = v;
        return true;
    }
    if (cJSON_IsArray(j)) {
        if (cJSON_GetArraySize(j) != 2)
            return cp_fail(err, CP_ERR_CONFIG, "key \"%s\": a list must be [height, width]", key);
        snprintf(k, sizeof k, "%s[0]", key);
        if (!side_value(cJSON_GetArrayItem(j, 0), k, h, err)) return false;
        snprintf(k, sizeof k, "%s[1]", key);
        return side_value(cJSON_GetArrayItem(j, 1), k, w, err);
    }
    if (!cJSON_IsObject(j))
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"%s\": expected an integer, [height, width] or an object", key);
    const cJSON *e;
    cJSON_ArrayForEach(e, j)
    {
        const char *m = e->string;
        if (strcmp(m, "height") && strcmp(m, "width") && strcmp(m, "shortest_edge") &&
            strcmp(m, "longest_edge"))
            return cp_fail(err, CP_ERR_CONFIG,
                           "key \"%s.%.40s\": not supported (clipprep reproduces {\"height\", "
                           "\"width\"} and {\"shortest_edge\"})",
                           key, m);
    }
    const cJSON *se = given(j, "shortest_edge"), *le = given(j, "longest_edge");
    const cJSON *hh = given(j, "height"), *ww = given(j, "width");
    if (le)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"%s.longest_edge\": not supported (%s); use {\"shortest_edge\"} or "
                       "{\"height\", \"width\"}",
                       key,
                       se ? "shortest_edge capped by longest_edge is an aspect-fit resize this "
                            "processor family does not use"
                          : "transformers' CLIP/SigLIP/ViT processors refuse a longest_edge-only "
                            "size");
    if (se && (hh || ww))
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"%s\": shortest_edge together with height/width contradict", key);
    if (se) {
        snprintf(k, sizeof k, "%s.shortest_edge", key);
        return side_value(se, k, shortest, err);
    }
    if (!hh || !ww)
        return cp_fail(err, CP_ERR_CONFIG, "key \"%s\": needs both height and width", key);
    snprintf(k, sizeof k, "%s.height", key);
    if (!side_value(hh, k, h, err)) return false;
    snprintf(k, sizeof k, "%s.width", key);
    return side_value(ww, k, w, err);
}

static const char *const HF_KEYS[] = {
    "image_processor_type", "feature_extractor_type", "processor_class", "auto_map",
    "_valid_processor_keys", "do_resize", "size", "resample", "do_center_crop", "crop_size",
    "do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std", "do_convert_rgb",
    "default_to_square", "do_pad", "use_square_size", "data_format", "input_data_format",
    "return_tensors", NULL,
};

/* The transformers class base name (without Fast/Pil/ImageProcessor...) of a config; "" when
 * it names none. */
static void hf_class_base(const cJSON *root, char *base, size_t cap)
{
    const cJSON *t = given(root, "image_processor_type");
    if (!t)
        t = given(root, "feature_extractor_type");
    base[0] = 0;
    if (!cJSON_IsString(t))
        return;
    snprintf(base, cap, "%s", t->valuestring);
    size_t n = strlen(base);
    static const char *const suffixes[] = {"ImageProcessorFast", "ImageProcessorPil",
                                           "ImageProcessor", NULL};
    for (const char *const *s = suffixes; *s; s++) {
        size_t sl = strlen(*s);
        if (n > sl && strcmp(base + n - sl, *s) == 0) {
            base[n - sl] = 0;
            return;
        }
    }
    base[0] = 0;
}

static bool hf_parse(const cJSON *root, profile *p, cp_error *err)
{
    char base[64];
    hf_class_base(root, base, sizeof base);
    const vlm_family *vf = base[0] ? vlm_family_for_hf_class(base) : NULL;
    if (vf) { /* a vision-language processor: its family reads the whole file (vlm/vlm.h) */
        p->vlm.kind = vf->kind;
        return vf->import_hf(root, p, err);
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, root)
    {
        bool known = false;
        for (const char *const *k = HF_KEYS; *k && !known; k++) known = !strcmp(*k, e->string);
        if (!known)
            return cp_fail(err, CP_ERR_CONFIG,
                           "unknown key \"%.60s\" (not a setting of transformers' CLIP, SigLIP "
                           "or ViT image processors that clipprep reproduces)",
                           e->string);
    }
    const hf_class *cls = NULL;
    char type[64];
    if (!hf_class_of(root, &cls, type, sizeof type, err)) return false;

    bool do_resize, do_crop, do_rescale, do_normalize, do_rgb, do_pad, square_size;
    bool to_square = cls->default_to_square;
    if (!bool_value(root, "do_resize", true, &do_resize, err) ||
        !bool_value(root, "do_center_crop", cls->do_center_crop, &do_crop, err) ||
        !bool_value(root, "do_rescale", true, &do_rescale, err) ||
        !bool_value(root, "do_normalize", true, &do_normalize, err) ||
        !bool_value(root, "do_convert_rgb", true, &do_rgb, err) ||
        !bool_value(root, "do_pad", false, &do_pad, err) ||
        !bool_value(root, "use_square_size", false, &square_size, err) ||
        !bool_value(root, "default_to_square", to_square, &to_square, err))
        return false;
    (void)do_rgb; /* decoding always yields RGB; on RGB input both settings agree */
    if (!do_resize)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"do_resize\": false is not supported (the tensor size would follow "
                       "each image)");
    if (do_pad)
        return cp_fail(err, CP_ERR_CONFIG, "key \"do_pad\": true is not supported");
    static const char *const fixed_meta[] = {"data_format", "input_data_format", "return_tensors",
                                             NULL};
    for (const char *const *k = fixed_meta; *k; k++) {
        const cJSON *j = given(root, *k);
        if (j && !(cJSON_IsString(j) && (!strcmp(j->valuestring, "channels_first") ||
                                         !strcmp(j->valuestring, "pt") ||
                                         !strcmp(j->valuestring, "np"))))
            return cp_fail(err, CP_ERR_CONFIG,
                           "key \"%s\": only channels-first (CHW) tensors are produced", *k);
    }

    /* size */
    int se = cls->size_shortest, h = cls->size_h, w = cls->size_w;
    const cJSON *sz = given(root, "size");
    if (sz && !hf_size(sz, "size", to_square, &se, &h, &w, err)) return false;
    if (square_size && se) { /* CLIP's Kosmos-2 compatibility switch */
        h = w = se;
        se = 0;
    }
    if (se) {
        p->resize = RESIZE_SHORTEST_EDGE;
        p->shortest_edge = se;
    } else {
        p->resize = RESIZE_EXACT;
        p->resize_height = h;
        p->resize_width = w;
    }

    /* crop_size: an int is always square here */
    p->crop = CROP_NONE;
    if (do_crop) {
        int cse = 0, ch = cls->crop, cw = cls->crop;
        const cJSON *cs = given(root, "crop_size");
        if (cs && !hf_size(cs, "crop_size", true, &cse, &ch, &cw, err)) return false;
        if (cse)
            return cp_fail(err, CP_ERR_CONFIG,
                           "key \"crop_size\": needs height and width, not shortest_edge");
        if (!ch)
            return cp_fail(err, CP_ERR_CONFIG, "key \"crop_size\" is required with "
                                               "do_center_crop");
        p->crop = CROP_FLOOR; /* transformers' center_crop: floor offsets, odd pad top/left */
        p->crop_height = ch;
        p->crop_width = cw;
    } else if (p->resize == RESIZE_SHORTEST_EDGE) {
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"size\": shortest_edge with do_center_crop false gives a tensor size "
                       "that varies per image");
    }

    /* resample: Pillow codes */
    const cJSON *rs = given(root, "resample");
    p->filter = cls->filter;
    if (rs) {
        static const char *const pil_names[] = {"NEAREST", "LANCZOS", "BILINEAR",
                                                "BICUBIC", "BOX", "HAMMING"};
        double d = cJSON_IsNumber(rs) ? rs->valuedouble : NAN;
        if (!(d >= 0 && d <= 5 && d == floor(d)))
            return cp_fail(err, CP_ERR_CONFIG,
                           "key \"resample\": expected a Pillow filter code 0..5");
        if (d == 2)
            p->filter = FILTER_BILINEAR;
        else if (d == 3)
            p->filter = FILTER_BICUBIC;
        else
            return cp_fail(err, CP_ERR_CONFIG,
                           "key \"resample\": %d (%s) is not supported; clipprep reproduces 2 "
                           "(BILINEAR) and 3 (BICUBIC)",
                           (int)d, pil_names[(int)d]);
    }

    /* rescale and normalise */
    p->rescale_factor = 1.0;
    if (do_rescale) {
        p->rescale_factor = RESCALE_1_255;
        const cJSON *rf = given(root, "rescale_factor");
        if (rf) {
            if (!cJSON_IsNumber(rf) || !isfinite(rf->valuedouble) || !(rf->valuedouble > 0))
                return cp_fail(err, CP_ERR_CONFIG, "key \"rescale_factor\": expected a number > 0");
            p->rescale_factor = rf->valuedouble;
        }
    }
    memcpy(p->mean, cls->mean, sizeof p->mean);
    memcpy(p->std, cls->std, sizeof p->std);
    const cJSON *m = given(root, "image_mean"), *s = given(root, "image_std");
    if ((m && !stats_value(m, "image_mean", false, p->mean, err)) ||
        (s && !stats_value(s, "image_std", true, p->std, err)))
        return false;
    if (!do_normalize) {
        p->mean[0] = p->mean[1] = p->mean[2] = 0;
        p->std[0] = p->std[1] = p->std[2] = 1;
    }
    snprintf(p->reference, sizeof p->reference,
             "transformers %s%s (PIL path: %sImageProcessorPil), from %s", cls->family,
             "ImageProcessor", cls->family, HF_CONFIG_FILE);
    snprintf(p->description, sizeof p->description, "imported from a Hugging Face %s (%s)",
             HF_CONFIG_FILE, type);
    p->references = REF_ALL_MASK;
    p->default_ref_set = false; /* the daemon-wide default_reference applies */
    return true;
}

/* ---- open_clip open_clip_config.json ------------------------------------------------------ */

static bool oc_size(const cJSON *j, const char *key, int *h, int *w, cp_error *err)
{
    char k[80];
    if (cJSON_IsNumber(j)) {
        if (!side_value(j, key, h, err)) return false;
        *w = *h;
        return true;
    }
    if (cJSON_IsArray(j) && cJSON_GetArraySize(j) == 2) {
        snprintf(k, sizeof k, "%s[0]", key);
        if (!side_value(cJSON_GetArrayItem(j, 0), k, h, err)) return false;
        snprintf(k, sizeof k, "%s[1]", key);
        return side_value(cJSON_GetArrayItem(j, 1), k, w, err);
    }
    return cp_fail(err, CP_ERR_CONFIG, "key \"%s\": expected an integer or [height, width]", key);
}

static bool oc_string(const cJSON *o, const char *member, const char *key,
                      const char *const *allowed, const char *dflt, const char **out,
                      cp_error *err)
{
    const cJSON *j = given(o, member);
    *out = dflt;
    if (!j) return true;
    for (const char *const *a = allowed; cJSON_IsString(j) && *a; a++)
        if (!strcmp(*a, j->valuestring)) {
            *out = *a;
            return true;
        }
    char list[160] = "";
    for (const char *const *a = allowed; *a; a++) {
        strncat(list, a == allowed ? "\"" : ", \"", sizeof list - strlen(list) - 1);
        strncat(list, *a, sizeof list - strlen(list) - 1);
        strncat(list, "\"", sizeof list - strlen(list) - 1);
    }
    if (cJSON_IsString(j))
        return cp_fail(err, CP_ERR_CONFIG, "key \"%s\": \"%.40s\" is not supported (expected %s)",
                       key, j->valuestring, list);
    return cp_fail(err, CP_ERR_CONFIG, "key \"%s\": expected one of %s", key, list);
}

static bool oc_parse(const cJSON *root, profile *p, char *note, size_t note_cap, cp_error *err)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, root)
    {
        if (strcmp(e->string, "model_cfg") && strcmp(e->string, "preprocess_cfg"))
            return cp_fail(err, CP_ERR_CONFIG,
                           "unknown key \"%.60s\" (an open_clip_config.json holds model_cfg and "
                           "preprocess_cfg)",
                           e->string);
    }
    const cJSON *pc = given(root, "preprocess_cfg");
    if (pc && !cJSON_IsObject(pc))
        return cp_fail(err, CP_ERR_CONFIG, "key \"preprocess_cfg\": expected an object");
    static const char *const pc_keys[] = {"size", "mode", "mean", "std", "interpolation",
                                          "resize_mode", "fill_color", NULL};
    if (pc)
        cJSON_ArrayForEach(e, pc)
        {
            bool known = false;
            for (const char *const *k = pc_keys; *k && !known; k++) known = !strcmp(*k, e->string);
            if (!known)
                return cp_fail(err, CP_ERR_CONFIG,
                               "unknown key \"preprocess_cfg.%.60s\" (open_clip's PreprocessCfg "
                               "has size, mode, mean, std, interpolation, resize_mode, "
                               "fill_color)",
                               e->string);
        }

    /* The image size: the vision tower's (open_clip's factory overrides preprocess_cfg.size
     * with model.visual.image_size); CLIPVisionCfg's default is 224. */
    int h = 224, w = 224;
    const cJSON *mc = given(root, "model_cfg");
    if (mc && !cJSON_IsObject(mc))
        return cp_fail(err, CP_ERR_CONFIG, "key \"model_cfg\": expected an object");
    const cJSON *vc = mc ? given(mc, "vision_cfg") : NULL;
    if (vc && !cJSON_IsObject(vc))
        return cp_fail(err, CP_ERR_CONFIG, "key \"model_cfg.vision_cfg\": expected an object");
    const cJSON *vis = vc ? given(vc, "image_size") : NULL;
    const cJSON *psz = pc ? given(pc, "size") : NULL;
    if (vis) {
        if (!oc_size(vis, "model_cfg.vision_cfg.image_size", &h, &w, err)) return false;
        int ph, pw;
        if (psz) {
            if (!oc_size(psz, "preprocess_cfg.size", &ph, &pw, err)) return false;
            if ((ph != h || pw != w) && note && note_cap)
                snprintf(note, note_cap,
                         "preprocess_cfg.size %dx%d differs from model_cfg.vision_cfg.image_size "
                         "%dx%d; open_clip uses the model's image size",
                         ph, pw, h, w);
        }
    } else if (psz && !oc_size(psz, "preprocess_cfg.size", &h, &w, err)) {
        return false;
    }

    static const char *const modes[] = {"RGB", NULL};
    static const char *const interps[] = {"bicubic", "bilinear", "random", NULL};
    static const char *const resize_modes[] = {"shortest", "longest", "squash", NULL};
    const char *mode, *interp, *rmode;
    if (!oc_string(pc, "mode", "preprocess_cfg.mode", modes, "RGB", &mode, err) ||
        !oc_string(pc, "interpolation", "preprocess_cfg.interpolation", interps, "bicubic",
                   &interp, err) ||
        !oc_string(pc, "resize_mode", "preprocess_cfg.resize_mode", resize_modes, "shortest",
                   &rmode, err))
        return false;
    (void)mode;
    /* image_transform: "random" is a training option; evaluation resizes with BICUBIC */
    p->filter = !strcmp(interp, "bilinear") ? FILTER_BILINEAR : FILTER_BICUBIC;

    memcpy(p->mean, OPENAI_MEAN, sizeof p->mean);
    memcpy(p->std, OPENAI_STD, sizeof p->std);
    const cJSON *m = pc ? given(pc, "mean") : NULL, *s = pc ? given(pc, "std") : NULL;
    if ((m && !stats_value(m, "preprocess_cfg.mean", false, p->mean, err)) ||
        (s && !stats_value(s, "preprocess_cfg.std", true, p->std, err)))
        return false;

    memset(p->fill, 0, sizeof p->fill);
    const cJSON *fc = pc ? given(pc, "fill_color") : NULL;
    if (fc) {
        double f[3];
        if (!stats_value(fc, "preprocess_cfg.fill_color", false, f, err)) return false;
        for (int i = 0; i < 3; i++) {
            if (!(f[i] >= 0 && f[i] <= 255 && f[i] == floor(f[i])))
                return cp_fail(err, CP_ERR_CONFIG,
                               "key \"preprocess_cfg.fill_color\": expected an integer 0..255 or "
                               "3 of them (a Pillow fill on the 8-bit image)");
            p->fill[i] = (unsigned char)f[i];
        }
    }

    p->crop = CROP_NONE;
    if (!strcmp(rmode, "squash")) {
        p->resize = RESIZE_EXACT;
        p->resize_height = h;
        p->resize_width = w;
    } else if (!strcmp(rmode, "longest")) {
        p->resize = RESIZE_LONGEST; /* ResizeKeepRatio(longest=1) + CenterCropOrPad(fill) */
        p->resize_height = h;
        p->resize_width = w;
        p->crop = CROP_HALF_EVEN;
        p->crop_height = h;
        p->crop_width = w;
    } else {
        if (h != w)
            return cp_fail(err, CP_ERR_CONFIG,
                           "key \"preprocess_cfg.resize_mode\": \"shortest\" with a non-square "
                           "image size %dx%d is not supported (open_clip then resizes with "
                           "ResizeKeepRatio and always bicubic)",
                           h, w);
        p->resize = RESIZE_SHORTEST_EDGE; /* Resize(int) + CenterCrop: half-even offsets */
        p->shortest_edge = h;
        p->crop = CROP_HALF_EVEN;
        p->crop_height = h;
        p->crop_width = w;
    }
    p->rescale_factor = RESCALE_1_255;
    snprintf(p->reference, sizeof p->reference,
             "open_clip image_transform(is_train=False, resize_mode=\"%s\", interpolation=\"%s\")",
             rmode, !strcmp(interp, "bilinear") ? "bilinear" : "bicubic");
    snprintf(p->description, sizeof p->description, "imported from an open_clip %s",
             OPEN_CLIP_CONFIG_FILE);
    p->references = REF_ALL_MASK;
    p->default_ref = REF_OPEN_CLIP;
    p->default_ref_set = true;
    return true;
}

/* ---- entry points --------------------------------------------------------------------------- */

static bool set_name(profile *p, const char *name, cp_error *err)
{
    if (!name || !name[0] || strlen(name) >= sizeof p->name)
        return cp_fail(err, CP_ERR_CONFIG, "profile name \"%.60s\": 1..%zu characters",
                       name ? name : "", sizeof p->name - 1);
    for (const char *s = name; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return cp_fail(err, CP_ERR_CONFIG,
                           "profile name \"%.60s\" (from the file or folder name): use only "
                           "letters, digits, '-', '_' and '.'",
                           name);
    snprintf(p->name, sizeof p->name, "%s", name);
    return true;
}

static bool from_config(const char *json_text, config_format f, const char *name, profile *p,
                        char *note, size_t note_cap, cp_error *err)
{
    if (f == CONFIG_NATIVE) {
        if (!profile_parse_json(json_text, p, err)) return false;
        if (name && strcmp(p->name, name) != 0)
            return cp_fail(err, CP_ERR_CONFIG,
                           "key \"name\" is \"%s\" but must equal the file name without .json "
                           "(\"%.60s\")",
                           p->name, name);
        return true;
    }
    memset(p, 0, sizeof *p);
    cJSON *root = cJSON_Parse(json_text);
    if (!root) return cp_fail(err, CP_ERR_CONFIG, "invalid JSON");
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return cp_fail(err, CP_ERR_CONFIG, "the top level must be a JSON object");
    }
    bool ok = set_name(p, name, err) &&
              (f == CONFIG_HF ? hf_parse(root, p, err)
                              : f == CONFIG_OPEN_CLIP ? oc_parse(root, p, note, note_cap, err)
                                                      : cp_fail(err, CP_ERR_CONFIG,
                                                                "unrecognised format")) &&
              profile_finish(p, err);
    cJSON_Delete(root);
    return ok;
}

bool profile_from_config(const char *json_text, config_format f, const char *name, profile *p,
                         cp_error *err)
{
    return from_config(json_text, f, name, p, NULL, 0, err);
}

static bool read_file(const char *path, char **out, cp_error *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return cp_fail(err, CP_ERR_CONFIG, "cannot open %.150s: %s", path, strerror(errno));
    char *buf = malloc(IMPORT_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, IMPORT_FILE_MAX + 1, fp) : 0;
    bool bad = !buf || ferror(fp) || n > IMPORT_FILE_MAX || (buf && memchr(buf, 0, n));
    fclose(fp);
    if (bad) {
        free(buf);
        return cp_fail(err, CP_ERR_CONFIG, "%.150s: unreadable, larger than 1 MiB or binary",
                       path);
    }
    buf[n] = 0;
    *out = buf;
    return true;
}

/* The last `n` characters of a path, for messages that must keep the file's own name. */
static const char *path_tail(const char *path, size_t n)
{
    size_t len = strlen(path);
    return len > n ? path + len - n : path;
}

/* Loads one file as a profile; errors are prefixed with the file's path. */
static bool import_file(const char *path, const char *name, profile *p, char *note,
                        size_t note_cap, cp_error *err)
{
    char *text = NULL;
    if (!read_file(path, &text, err)) return false;
    config_format f = CONFIG_UNRECOGNISED;
    cJSON *root = cJSON_Parse(text);
    bool ok;
    if (!root) {
        ok = profile_parse_json(text, p, err); /* reports the line and column */
    } else {
        f = format_of_json(root);
        cJSON_Delete(root);
        ok = f != CONFIG_UNRECOGNISED
                 ? from_config(text, f, name, p, note, note_cap, err)
                 : cp_fail(err, CP_ERR_CONFIG,
                           "neither a clipprep profile, a Hugging Face " HF_CONFIG_FILE
                           " nor an open_clip " OPEN_CLIP_CONFIG_FILE " (no key of theirs)");
    }
    free(text);
    if (!ok) {
        char tmp[sizeof err->message];
        snprintf(tmp, sizeof tmp, "%s", err->message);
        cp_fail(err, CP_ERR_CONFIG, "%s%s: %s", strlen(path) > 90 ? "..." : "",
                path_tail(path, 90), tmp);
    }
    return ok;
}

static bool same_preprocessing(const profile *a, const profile *b)
{
    if (a->out_width != b->out_width || a->out_height != b->out_height ||
        a->resize != b->resize || a->filter != b->filter || (a->crop == CROP_NONE) !=
        (b->crop == CROP_NONE))
        return false;
    for (int c = 0; c < 3; c++)
        if ((float)a->mean[c] != (float)b->mean[c] || (float)a->std[c] != (float)b->std[c])
            return false;
    if (a->resize == RESIZE_SHORTEST_EDGE) return a->shortest_edge == b->shortest_edge;
    return a->resize_width == b->resize_width && a->resize_height == b->resize_height;
}

static void describe(const profile *p, char *out, size_t cap)
{
    char geo[96];
    if (p->resize == RESIZE_SHORTEST_EDGE)
        snprintf(geo, sizeof geo, "shortest edge %d", p->shortest_edge);
    else
        snprintf(geo, sizeof geo, "%s %dx%d",
                 p->resize == RESIZE_LONGEST ? "longest edge within" : "squash to",
                 p->resize_height, p->resize_width);
    char crop[48] = "no crop";
    if (p->crop != CROP_NONE)
        snprintf(crop, sizeof crop, "crop %dx%d", p->crop_height, p->crop_width);
    snprintf(out, cap, "%s + %s, %s, mean [%g, %g, %g], std [%g, %g, %g]", geo, crop,
             resample_filter_name(p->filter), p->mean[0], p->mean[1], p->mean[2], p->std[0],
             p->std[1], p->std[2]);
}

static const char *base_name(const char *path, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", path);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = 0;
    char *slash = strrchr(buf, '/');
    return slash ? slash + 1 : buf;
}

bool profile_import_path(const char *path, const char *name, profile *p, char *warning,
                         size_t warning_cap, cp_error *err)
{
    if (warning && warning_cap) warning[0] = 0;
    struct stat st;
    if (stat(path, &st) != 0)
        return cp_fail(err, CP_ERR_CONFIG, "%.150s: %s", path, strerror(errno));
    char buf[4096], dname[4096];
    if (S_ISREG(st.st_mode)) {
        const char *base = base_name(path, buf, sizeof buf);
        char stem[256];
        snprintf(stem, sizeof stem, "%s", base);
        size_t n = strlen(stem);
        if (n > 5 && !strcmp(stem + n - 5, ".json")) stem[n - 5] = 0;
        if (!name && (!strcmp(base, HF_CONFIG_FILE) || !strcmp(base, OPEN_CLIP_CONFIG_FILE))) {
            /* a config inside a model folder is named after the folder */
            snprintf(dname, sizeof dname, "%s", path);
            char *slash = strrchr(dname, '/');
            if (slash) *slash = 0;
            snprintf(stem, sizeof stem, "%s",
                     slash ? base_name(dname, buf, sizeof buf) : "model");
        }
        return import_file(path, name ? name : stem, p, warning, warning_cap, err);
    }
    if (!S_ISDIR(st.st_mode))
        return cp_fail(err, CP_ERR_CONFIG, "%.150s: not a file or folder", path);
    const char *folder = name ? name : base_name(path, dname, sizeof dname);
    char oc_path[4200], hf_path[4200];
    snprintf(oc_path, sizeof oc_path, "%s/%s", path, OPEN_CLIP_CONFIG_FILE);
    snprintf(hf_path, sizeof hf_path, "%s/%s", path, HF_CONFIG_FILE);
    bool has_oc = stat(oc_path, &st) == 0 && S_ISREG(st.st_mode);
    bool has_hf = stat(hf_path, &st) == 0 && S_ISREG(st.st_mode);
    if (!has_oc && !has_hf)
        return cp_fail(err, CP_ERR_CONFIG,
                       "folder %.150s holds neither " OPEN_CLIP_CONFIG_FILE " nor " HF_CONFIG_FILE,
                       path);
    if (!import_file(has_oc ? oc_path : hf_path, folder, p, warning, warning_cap, err))
        return false;
    if (has_oc && has_hf) {
        profile other;
        cp_error e2;
        char a[200], b[200];
        if (!import_file(hf_path, folder, &other, NULL, 0, &e2)) {
            if (warning && warning_cap)
                snprintf(warning, warning_cap, "%s is used; %s is not (%s)",
                         OPEN_CLIP_CONFIG_FILE, HF_CONFIG_FILE, e2.message);
        } else if (!same_preprocessing(p, &other) && warning && warning_cap) {
            describe(p, a, sizeof a);
            describe(&other, b, sizeof b);
            snprintf(warning, warning_cap,
                     "%.100s: the model's two configs disagree: %s says %s; %s says %s. "
                     "Using %s (in a model folder the open_clip config wins)",
                     path, OPEN_CLIP_CONFIG_FILE, a, HF_CONFIG_FILE, b, OPEN_CLIP_CONFIG_FILE);
        }
    }
    return true;
}

/* ---- clipprepd profile import ---------------------------------------------------------------- */

int profile_cli_main(int argc, char **argv)
{
    const char *path = NULL, *name = NULL;
    bool usage = argc < 3 || strcmp(argv[2], "import") != 0;
    for (int i = 3; !usage && i < argc; i++) {
        if (!strcmp(argv[i], "--name") && i + 1 < argc)
            name = argv[++i];
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else
            usage = true;
    }
    if (usage || !path) {
        fprintf(stderr,
                "usage: %s profile import PATH [--name NAME]\n"
                "  PATH: a preprocessor_config.json, an open_clip_config.json, a clipprep "
                "profile, or a model folder holding the first two.\n"
                "  Prints the resolved clipprep profile (JSON) for profiles_dir.\n",
                argv[0]);
        return 2;
    }
    profile *p = calloc(1, sizeof *p);
    if (!p) return 1;
    char warning[1024];
    cp_error err = {0};
    if (!profile_import_path(path, name, p, warning, sizeof warning, &err)) {
        fprintf(stderr, "%s: profile import: %s\n", argv[0], err.message);
        free(p);
        return 1;
    }
    if (warning[0]) fprintf(stderr, "warning: %s\n", warning);
    cJSON *o = profile_to_native_cjson(p);
    char *text = o ? cJSON_Print(o) : NULL;
    int rc = text ? 0 : 1;
    if (text) printf("%s\n", text);
    free(text);
    cJSON_Delete(o);
    free(p);
    return rc;
}
