/* profile.c — preprocessing profiles: parsing and validating the JSON files in profiles_dir,
 * deriving the output tensor size, and describing a profile as JSON (GET /v1/profiles).
 * The file format is documented in docs/configuration.md; every key is checked, unknown keys
 * are errors, and nothing is guessed: a profile states its crop rounding and filter. */
#include "profile.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "vlm/vlm.h"

#include "log.h"
#include "profile_import.h"

#define PROFILE_FILE_MAX (1 << 20)
#define PROFILE_MAX_SIDE 4096
#define DEFAULT_RESCALE 0.00392156862745098 /* 1/255 as a double (spec B.7) */

static const char *json_type_name(const cJSON *j)
{
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    return "an invalid value";
}

/* Every member of obj must be one of the NULL-terminated allowed names, and appear once. */
static bool check_keys(const cJSON *obj, const char *const *allowed, const char *where,
                       cp_error *err)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, obj)
    {
        const char *name = item->string ? item->string : "";
        bool known = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, name) == 0) known = true;
        if (!known)
            return cp_fail(err, CP_ERR_CONFIG, "unknown key \"%s%.60s\"", where, name);
        for (const cJSON *prev = obj->child; prev != item; prev = prev->next)
            if (prev->string && strcmp(prev->string, name) == 0)
                return cp_fail(err, CP_ERR_CONFIG, "duplicate key \"%s%s\"", where, name);
    }
    return true;
}

/* An integer side length 1..4096; `key` names it in messages ("resize.height"). */
static bool get_side(const cJSON *obj, const char *member, const char *key, int *out,
                     cp_error *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, member);
    if (!j) return cp_fail(err, CP_ERR_CONFIG, "key \"%s\" is required", key);
    double d = cJSON_IsNumber(j) ? j->valuedouble : NAN;
    if (!cJSON_IsNumber(j) || !isfinite(d) || d != floor(d) || d < 1 || d > PROFILE_MAX_SIDE) {
        if (cJSON_IsNumber(j))
            return cp_fail(err, CP_ERR_CONFIG, "key \"%s\": expected an integer 1..%d, got %g",
                           key, PROFILE_MAX_SIDE, d);
        return cp_fail(err, CP_ERR_CONFIG, "key \"%s\": expected an integer 1..%d, got %s", key,
                       PROFILE_MAX_SIDE, json_type_name(j));
    }
    *out = (int)d;
    return true;
}

static bool get_text(const cJSON *root, const char *key, bool required, char *dst, size_t cap,
                     cp_error *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j) {
        if (required) return cp_fail(err, CP_ERR_CONFIG, "key \"%s\" is required", key);
        dst[0] = 0;
        return true;
    }
    if (!cJSON_IsString(j))
        return cp_fail(err, CP_ERR_CONFIG, "key \"%s\": expected a string, got %s", key,
                       json_type_name(j));
    size_t n = strlen(j->valuestring);
    if (n >= cap)
        return cp_fail(err, CP_ERR_CONFIG, "key \"%s\": at most %zu characters", key, cap - 1);
    memcpy(dst, j->valuestring, n + 1);
    return true;
}

static bool get_triple(const cJSON *root, const char *key, bool positive, double out[3],
                       cp_error *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j) return cp_fail(err, CP_ERR_CONFIG, "key \"%s\" is required", key);
    if (!cJSON_IsArray(j))
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"%s\": expected an array of 3 numbers (R, G, B), got %s", key,
                       json_type_name(j));
    if (cJSON_GetArraySize(j) != 3)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"%s\": expected exactly 3 numbers (R, G, B), got %d", key,
                       cJSON_GetArraySize(j));
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, j)
    {
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
            return cp_fail(err, CP_ERR_CONFIG, "key \"%s\"[%d]: expected a number, got %s", key,
                           i, json_type_name(e));
        if (positive && !(e->valuedouble > 0))
            return cp_fail(err, CP_ERR_CONFIG, "key \"%s\"[%d]: must be > 0, got %g", key, i,
                           e->valuedouble);
        out[i++] = e->valuedouble;
    }
    return true;
}

static bool parse_resize(const cJSON *root, profile *p, cp_error *err)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "resize");
    if (!r) return cp_fail(err, CP_ERR_CONFIG, "key \"resize\" is required");
    if (!cJSON_IsObject(r))
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"resize\": expected an object {\"shortest_edge\": N}, "
                       "{\"longest_edge\": N} or {\"height\": H, \"width\": W}, got %s",
                       json_type_name(r));
    static const char *const allowed[] = {"shortest_edge", "longest_edge", "height", "width",
                                          "keep_aspect", NULL};
    if (!check_keys(r, allowed, "resize.", err)) return false;
    bool se = cJSON_GetObjectItemCaseSensitive(r, "shortest_edge") != NULL;
    bool le = cJSON_GetObjectItemCaseSensitive(r, "longest_edge") != NULL;
    bool h = cJSON_GetObjectItemCaseSensitive(r, "height") != NULL;
    bool w = cJSON_GetObjectItemCaseSensitive(r, "width") != NULL;
    const cJSON *ka = cJSON_GetObjectItemCaseSensitive(r, "keep_aspect");
    if ((se ? 1 : 0) + (le ? 1 : 0) + ((h || w) ? 1 : 0) > 1)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"resize\": give one of shortest_edge, longest_edge, or height and "
                       "width, not both");
    if (ka && !(h || w))
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"resize.keep_aspect\": only with height and width");
    if (se) {
        p->resize = RESIZE_SHORTEST_EDGE;
        return get_side(r, "shortest_edge", "resize.shortest_edge", &p->shortest_edge, err);
    }
    if (le) {
        /* open_clip resize_mode=longest with a square size: the box is N x N */
        p->resize = RESIZE_LONGEST;
        if (!get_side(r, "longest_edge", "resize.longest_edge", &p->resize_width, err))
            return false;
        p->resize_height = p->resize_width;
        return true;
    }
    if (!h && !w)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"resize\": expected {\"shortest_edge\": N}, {\"longest_edge\": N} "
                       "or {\"height\": H, \"width\": W}");
    p->resize = RESIZE_EXACT;
    if (ka) {
        /* "longest": aspect kept, fit inside height x width (open_clip ResizeKeepRatio) */
        if (!cJSON_IsString(ka) || strcmp(ka->valuestring, "longest") != 0)
            return cp_fail(err, CP_ERR_CONFIG,
                           "key \"resize.keep_aspect\": expected \"longest\" (fit inside "
                           "height x width), got %s",
                           cJSON_IsString(ka) ? ka->valuestring : json_type_name(ka));
        p->resize = RESIZE_LONGEST;
    }
    return get_side(r, "height", "resize.height", &p->resize_height, err) &&
           get_side(r, "width", "resize.width", &p->resize_width, err);
}

/* "fill": [R, G, B] u8 padding colour (default black). */
static bool parse_fill(const cJSON *root, profile *p, cp_error *err)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, "fill");
    memset(p->fill, 0, sizeof p->fill);
    if (!f) return true;
    if (!cJSON_IsArray(f) || cJSON_GetArraySize(f) != 3)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"fill\": expected an array of 3 integers 0..255 (R, G, B), got %s",
                       json_type_name(f));
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, f)
    {
        double d = cJSON_IsNumber(e) ? e->valuedouble : NAN;
        if (!(d >= 0 && d <= 255 && d == floor(d)))
            return cp_fail(err, CP_ERR_CONFIG, "key \"fill\"[%d]: expected an integer 0..255", i);
        p->fill[i++] = (unsigned char)d;
    }
    return true;
}

/* "models": the model ids this profile serves, listed by GET /v1/profiles. */
static bool parse_models(const cJSON *root, profile *p, cp_error *err)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "models");
    p->n_models = 0;
    if (!m) return true;
    if (!cJSON_IsArray(m))
        return cp_fail(err, CP_ERR_CONFIG, "key \"models\": expected an array of strings, got %s",
                       json_type_name(m));
    if (cJSON_GetArraySize(m) > PROFILE_MAX_MODELS)
        return cp_fail(err, CP_ERR_CONFIG, "key \"models\": at most %d entries",
                       PROFILE_MAX_MODELS);
    const cJSON *e;
    cJSON_ArrayForEach(e, m)
    {
        if (!cJSON_IsString(e) || !e->valuestring[0] ||
            strlen(e->valuestring) >= sizeof p->models[0])
            return cp_fail(err, CP_ERR_CONFIG,
                           "key \"models\"[%d]: expected a model id of 1..%zu characters",
                           p->n_models, sizeof p->models[0] - 1);
        memcpy(p->models[p->n_models++], e->valuestring, strlen(e->valuestring) + 1);
    }
    return true;
}

static bool parse_crop(const cJSON *root, profile *p, cp_error *err)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "crop");
    if (!c)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"crop\" is required (an object, or null for no crop)");
    if (cJSON_IsNull(c)) {
        p->crop = CROP_NONE;
        return true;
    }
    if (!cJSON_IsObject(c))
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"crop\": expected an object {\"height\", \"width\", \"rounding\"} "
                       "or null, got %s",
                       json_type_name(c));
    static const char *const allowed[] = {"height", "width", "rounding", NULL};
    if (!check_keys(c, allowed, "crop.", err)) return false;
    if (!get_side(c, "height", "crop.height", &p->crop_height, err) ||
        !get_side(c, "width", "crop.width", &p->crop_width, err))
        return false;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(c, "rounding");
    if (!r)
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"crop.rounding\" is required: \"floor\" (Hugging Face) or "
                       "\"half_even\" (torchvision / open_clip)");
    if (cJSON_IsString(r) && strcmp(r->valuestring, "floor") == 0)
        p->crop = CROP_FLOOR;
    else if (cJSON_IsString(r) && strcmp(r->valuestring, "half_even") == 0)
        p->crop = CROP_HALF_EVEN;
    else if (cJSON_IsString(r))
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"crop.rounding\": expected \"floor\" or \"half_even\", got \"%.40s\"",
                       r->valuestring);
    else
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"crop.rounding\": expected \"floor\" or \"half_even\", got %s",
                       json_type_name(r));
    return true;
}

static bool parse_resample(const cJSON *root, profile *p, cp_error *err)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "resample");
    if (!r) return cp_fail(err, CP_ERR_CONFIG, "key \"resample\" is required");
    if (cJSON_IsString(r)) {
        if (!resample_filter_parse(r->valuestring, &p->filter))
            return cp_fail(err, CP_ERR_CONFIG,
                           "key \"resample\": expected \"bicubic\" or \"bilinear\", got \"%.40s\"",
                           r->valuestring);
        return true;
    }
    if (cJSON_IsNumber(r)) {
        /* Pillow / Hugging Face integer codes: 2 = BILINEAR, 3 = BICUBIC */
        if (r->valuedouble == 3) {
            p->filter = FILTER_BICUBIC;
            return true;
        }
        if (r->valuedouble == 2) {
            p->filter = FILTER_BILINEAR;
            return true;
        }
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"resample\": unsupported Pillow filter code %g (only 3 = bicubic "
                       "and 2 = bilinear)",
                       r->valuedouble);
    }
    return cp_fail(err, CP_ERR_CONFIG,
                   "key \"resample\": expected \"bicubic\", \"bilinear\", 3 or 2, got %s",
                   json_type_name(r));
}

static const char *const profile_keys[] = {
    "name", "description", "reference", "resize", "crop", "resample",
    "rescale_factor", "mean", "std", "exif", "mode", "default_reference", "references",
    "fill", "models", "vlm", NULL,
};

/* "references": a non-empty array of reference names; "default_reference": one name. */
static bool parse_references(const cJSON *root, profile *p, cp_error *err)
{
    p->references = REF_ALL_MASK;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "references");
    if (list) {
        if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
            return cp_fail(err, CP_ERR_CONFIG,
                           "key \"references\": expected a non-empty array of names (%s)",
                           reference_names_list());
        p->references = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, list)
        {
            reference_id r;
            if (!cJSON_IsString(e) || !reference_parse(e->valuestring, &r))
                return cp_fail(err, CP_ERR_CONFIG, "key \"references\": expected names from %s",
                               reference_names_list());
            p->references |= 1u << r;
        }
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "default_reference");
    if (d) {
        if (!cJSON_IsString(d) || !reference_parse(d->valuestring, &p->default_ref))
            return cp_fail(err, CP_ERR_CONFIG, "key \"default_reference\": expected one of %s",
                           reference_names_list());
        p->default_ref_set = true;
    } else if (p->crop == CROP_HALF_EVEN) {
        /* before references existed, half_even rounding meant the open_clip transform */
        p->default_ref = REF_OPEN_CLIP;
        p->default_ref_set = true;
    }
    if (p->default_ref_set && !(p->references & (1u << p->default_ref)))
        return cp_fail(err, CP_ERR_CONFIG,
                       "key \"default_reference\": \"%s\" is not in \"references\"",
                       reference_name(p->default_ref));
    return true;
}

bool profiles_apply_default_reference(profile_set *set, reference_id ref, cp_error *err)
{
    for (int i = 0; i < set->count; i++) {
        profile *p = &set->items[i];
        if (p->default_ref_set)
            continue;
        if (!(p->references & (1u << ref)))
            return cp_fail(err, CP_ERR_CONFIG,
                           "profile \"%s\" does not support default_reference \"%s\"; give it "
                           "a \"default_reference\"",
                           p->name, reference_name(ref));
        p->default_ref = ref;
    }
    return true;
}

bool profile_parse_json(const char *json_text, profile *p, cp_error *err)
{
    memset(p, 0, sizeof *p);
    if (!json_text) return cp_fail(err, CP_ERR_CONFIG, "no JSON text");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json_text, &end, true);
    if (!root) {
        int line = 1, col = 1;
        for (const char *s = json_text; end && s < end && *s; s++) {
            if (*s == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        return cp_fail(err, CP_ERR_CONFIG, "invalid JSON at line %d, column %d", line, col);
    }
    bool ok = false;
    if (!cJSON_IsObject(root)) {
        cp_fail(err, CP_ERR_CONFIG, "the top level must be a JSON object, got %s",
                json_type_name(root));
        goto done;
    }
    if (!check_keys(root, profile_keys, "", err)) goto done;
    if (!get_text(root, "name", true, p->name, sizeof p->name, err)) goto done;
    if (!p->name[0]) {
        cp_fail(err, CP_ERR_CONFIG, "key \"name\": must not be empty");
        goto done;
    }
    for (const char *s = p->name; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.') {
            cp_fail(err, CP_ERR_CONFIG,
                    "key \"name\": use only letters, digits, '-', '_' and '.', got \"%.60s\"",
                    p->name);
            goto done;
        }
    }
    const cJSON *vlm = cJSON_GetObjectItemCaseSensitive(root, "vlm");
    if (vlm) {
        /* the processor plans its own geometry (vlm/vlm.h) */
        if (cJSON_GetObjectItemCaseSensitive(root, "resize") ||
            cJSON_GetObjectItemCaseSensitive(root, "crop")) {
            cp_fail(err, CP_ERR_CONFIG, "keys \"resize\" and \"crop\" do not go with \"vlm\" "
                    "(the processor decides the geometry)");
            goto done;
        }
        if (!vlm_parse_profile_json(vlm, p, err)) goto done;
    }
    if (!get_text(root, "description", false, p->description, sizeof p->description, err) ||
        !get_text(root, "reference", false, p->reference, sizeof p->reference, err) ||
        (!vlm && !parse_resize(root, p, err)) || (!vlm && !parse_crop(root, p, err)) ||
        !parse_resample(root, p, err) || !get_triple(root, "mean", false, p->mean, err) ||
        !get_triple(root, "std", true, p->std, err) || !parse_fill(root, p, err) ||
        !parse_models(root, p, err) || !parse_references(root, p, err))
        goto done;

    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(root, "rescale_factor");
    p->rescale_factor = DEFAULT_RESCALE;
    if (rf) {
        if (!cJSON_IsNumber(rf) || !isfinite(rf->valuedouble) || !(rf->valuedouble > 0)) {
            if (cJSON_IsNumber(rf))
                cp_fail(err, CP_ERR_CONFIG, "key \"rescale_factor\": must be > 0, got %g",
                        rf->valuedouble);
            else
                cp_fail(err, CP_ERR_CONFIG, "key \"rescale_factor\": expected a number, got %s",
                        json_type_name(rf));
            goto done;
        }
        p->rescale_factor = rf->valuedouble;
    }

    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(root, "exif");
    p->exif = false;
    if (ex) {
        if (!cJSON_IsBool(ex)) {
            cp_fail(err, CP_ERR_CONFIG, "key \"exif\": expected true or false, got %s",
                    json_type_name(ex));
            goto done;
        }
        p->exif = cJSON_IsTrue(ex);
    }

    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(root, "mode");
    p->fast = false;
    if (mode) {
        if (!cJSON_IsString(mode) || (strcmp(mode->valuestring, "exact") &&
                                      strcmp(mode->valuestring, "fast"))) {
            cp_fail(err, CP_ERR_CONFIG, "key \"mode\": expected \"exact\" or \"fast\"");
            goto done;
        }
        p->fast = !strcmp(mode->valuestring, "fast");
    }

    if (!profile_finish(p, err)) goto done;
    ok = true;
done:
    cJSON_Delete(root);
    return ok;
}

bool profile_finish(profile *p, cp_error *err)
{
    if (p->vlm.kind != VLM_NONE) {
        /* what transformers 5 reproduces: its torchvision (default) and Pillow backends */
        unsigned v5 = 1u << REF_TRANSFORMERS5 | 1u << REF_TRANSFORMERS5_PIL;
        if (!p->references) /* (an importer leaves it unset) */
            p->references = v5;
        if (p->references & ~v5) {
            if (p->references != REF_ALL_MASK)
                return cp_fail(err, CP_ERR_CONFIG, "key \"references\": a \"vlm\" profile "
                               "reproduces transformers5 and transformers5-pil only");
            p->references = v5;
        }
        if (!p->default_ref_set) {
            p->default_ref = REF_TRANSFORMERS5;
            p->default_ref_set = true;
        } else if (!(p->references & (1u << p->default_ref))) {
            return cp_fail(err, CP_ERR_CONFIG, "key \"default_reference\": a \"vlm\" profile "
                           "reproduces transformers5 and transformers5-pil only");
        }
        p->out_width = p->out_height = 0;
        return true;
    }
    if (p->crop != CROP_NONE) {
        p->out_width = p->crop_width;
        p->out_height = p->crop_height;
    } else if (p->resize == RESIZE_EXACT) {
        p->out_width = p->resize_width;
        p->out_height = p->resize_height;
    } else {
        return cp_fail(err, CP_ERR_CONFIG,
                       "resize.%s without a crop gives a tensor size that varies per image "
                       "(aspect ratio); add a \"crop\" or resize to an exact height and width",
                       p->resize == RESIZE_LONGEST ? "longest_edge" : "shortest_edge");
    }
    return true;
}

/* ---- loading a directory ------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool read_text_file(const char *path, char **out, cp_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return cp_fail(err, CP_ERR_CONFIG, "cannot open %s: %s", path, strerror(errno));
    char *buf = malloc(PROFILE_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return cp_fail(err, CP_ERR_CONFIG, "out of memory reading %s", path);
    }
    size_t n = fread(buf, 1, PROFILE_FILE_MAX + 1, f);
    bool rd_err = ferror(f);
    fclose(f);
    if (rd_err || n > PROFILE_FILE_MAX || memchr(buf, 0, n)) {
        free(buf);
        return cp_fail(err, CP_ERR_CONFIG, "%s: %s", path,
                       rd_err ? "read error" : n > PROFILE_FILE_MAX ? "larger than 1 MiB"
                                                                    : "contains a NUL byte");
    }
    buf[n] = 0;
    *out = buf;
    return true;
}

static void warn_import(const char *name, const char *warning)
{
    if (!warning[0]) return;
    char n[160], w[2048];
    json_escape(name, n, sizeof n);
    json_escape(warning, w, sizeof w);
    log_event(LOG_WARN, "profile configs disagree", "\"profile\":\"%s\",\"detail\":\"%s\"", n,
              w);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

bool profiles_load_dir(const char *dir, profile_set *set, cp_error *err)
{
    set->items = NULL;
    set->count = 0;
    if (!dir || !dir[0]) return cp_fail(err, CP_ERR_CONFIG, "profiles_dir is empty");
    DIR *d = opendir(dir);
    if (!d)
        return cp_fail(err, CP_ERR_CONFIG, "cannot open profiles_dir %s: %s", dir,
                       strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    bool ok = true;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.') continue;
        bool json = len > 5 && strcmp(de->d_name + len - 5, ".json") == 0;
        if (!json) { /* a model folder (preprocessor_config.json / open_clip_config.json)? */
            char sub[4096];
            struct stat sst;
            snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name);
            if (stat(sub, &sst) != 0 || !S_ISDIR(sst.st_mode)) continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = realloc(names, ncap * sizeof *nn);
            if (!nn) {
                ok = cp_fail(err, CP_ERR_CONFIG, "out of memory listing %s", dir);
                break;
            }
            names = nn;
            cap = ncap;
        }
        names[n] = strdup(de->d_name);
        if (!names[n]) {
            ok = cp_fail(err, CP_ERR_CONFIG, "out of memory listing %s", dir);
            break;
        }
        n++;
    }
    closedir(d);
    if (!ok) {
        free_names(names, n);
        return false;
    }
    if (n == 0) {
        free_names(names, n);
        return cp_fail(err, CP_ERR_CONFIG, "no profiles (*.json files) in profiles_dir %s", dir);
    }
    qsort(names, n, sizeof *names, cmp_str);

    profile *items = calloc(n, sizeof *items);
    if (!items) {
        free_names(names, n);
        return cp_fail(err, CP_ERR_CONFIG, "out of memory loading profiles");
    }
    size_t count = 0;
    for (size_t i = 0; i < n && ok; i++) {
        size_t plen = strlen(dir) + 1 + strlen(names[i]) + 1;
        char *path = malloc(plen);
        if (!path) {
            ok = cp_fail(err, CP_ERR_CONFIG, "out of memory loading profiles");
            break;
        }
        snprintf(path, plen, "%s/%s", dir, names[i]);
        struct stat st;
        size_t nlen = strlen(names[i]);
        bool is_json = nlen > 5 && strcmp(names[i] + nlen - 5, ".json") == 0;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && !is_json) {
            char warning[1024];
            if (!profile_import_path(path, names[i], &items[count], warning, sizeof warning,
                                     err)) {
                char tmp[sizeof err->message];
                snprintf(tmp, sizeof tmp, "%s", err->message);
                cp_fail(err, CP_ERR_CONFIG, "profile %s", tmp);
                ok = false;
            } else {
                warn_import(names[i], warning);
                count++;
            }
            free(path);
            continue;
        }
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            ok = cp_fail(err, CP_ERR_CONFIG, "profile %.200s: not a regular file", path);
            free(path);
            break;
        }
        char *text = NULL;
        if (!read_text_file(path, &text, err)) {
            free(path);
            ok = false;
            break;
        }
        profile *p = &items[count];
        config_format fmt = config_format_of(text);
        if (fmt == CONFIG_HF || fmt == CONFIG_OPEN_CLIP) {
            /* a model's own config saved as NAME.json: named after the file */
            char stem[256];
            snprintf(stem, sizeof stem, "%.*s", (int)(nlen - 5), names[i]);
            if (!profile_from_config(text, fmt, stem, p, err)) {
                char tmp[sizeof err->message];
                snprintf(tmp, sizeof tmp, "%s", err->message);
                cp_fail(err, CP_ERR_CONFIG, "profile %.100s (%s): %s", path,
                        config_format_name(fmt), tmp);
                ok = false;
            } else {
                count++;
            }
        } else if (!profile_parse_json(text, p, err)) {
            char tmp[sizeof err->message];
            snprintf(tmp, sizeof tmp, "%s", err->message);
            cp_fail(err, CP_ERR_CONFIG, "profile %.100s: %s", path, tmp);
            ok = false;
        } else {
            size_t stem = strlen(names[i]) - 5;
            if (strlen(p->name) != stem || strncmp(p->name, names[i], stem) != 0) {
                ok = cp_fail(err, CP_ERR_CONFIG,
                             "profile %.100s: key \"name\" is \"%s\" but must equal the file "
                             "name without .json (\"%.*s\")",
                             path, p->name, (int)(stem > 60 ? 60 : stem), names[i]);
            } else {
                count++;
            }
        }
        free(text);
        free(path);
    }
    free_names(names, n);
    if (!ok) {
        free(items);
        return false;
    }
    set->items = items;
    set->count = (int)count;
    return true;
}

const profile *profiles_find(const profile_set *set, const char *name)
{
    if (!set || !name) return NULL;
    for (int i = 0; i < set->count; i++)
        if (strcmp(set->items[i].name, name) == 0) return &set->items[i];
    return NULL;
}

void profiles_free(profile_set *set)
{
    if (!set) return;
    free(set->items);
    set->items = NULL;
    set->count = 0;
}

/* ---- description ---------------------------------------------------------------------------- */

static cJSON *triple(const double v[3])
{
    return cJSON_CreateDoubleArray(v, 3);
}

void *profile_to_cjson(const profile *p)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    bool ok = cJSON_AddStringToObject(o, "name", p->name) &&
              cJSON_AddStringToObject(o, "description", p->description) &&
              cJSON_AddStringToObject(o, "reference", p->reference);
    cJSON *resize = ok && p->vlm.kind == VLM_NONE ? cJSON_AddObjectToObject(o, "resize") : NULL;
    if (p->vlm.kind != VLM_NONE) {
        cJSON *v = ok ? vlm_profile_json(p) : NULL;
        ok = v && cJSON_AddItemToObject(o, "vlm", v);
    } else if (resize) {
        if (p->resize == RESIZE_SHORTEST_EDGE) {
            ok = cJSON_AddNumberToObject(resize, "shortest_edge", p->shortest_edge) != NULL;
        } else if (p->resize == RESIZE_LONGEST && p->resize_width == p->resize_height) {
            ok = cJSON_AddNumberToObject(resize, "longest_edge", p->resize_width) != NULL;
        } else {
            ok = cJSON_AddNumberToObject(resize, "height", p->resize_height) &&
                 cJSON_AddNumberToObject(resize, "width", p->resize_width);
            if (ok && p->resize == RESIZE_LONGEST)
                ok = cJSON_AddStringToObject(resize, "keep_aspect", "longest") != NULL;
        }
    } else {
        ok = false;
    }
    if (ok && p->vlm.kind == VLM_NONE) {
        if (p->crop == CROP_NONE) {
            ok = cJSON_AddNullToObject(o, "crop") != NULL;
        } else {
            cJSON *crop = cJSON_AddObjectToObject(o, "crop");
            ok = crop && cJSON_AddNumberToObject(crop, "height", p->crop_height) &&
                 cJSON_AddNumberToObject(crop, "width", p->crop_width) &&
                 cJSON_AddStringToObject(crop, "rounding",
                                         p->crop == CROP_FLOOR ? "floor" : "half_even");
        }
    }
    if (ok)
        ok = cJSON_AddStringToObject(o, "resample", resample_filter_name(p->filter)) &&
             cJSON_AddNumberToObject(o, "rescale_factor", p->rescale_factor);
    if (ok) {
        cJSON *m = triple(p->mean), *s = m ? triple(p->std) : NULL;
        if (m && s) {
            cJSON_AddItemToObject(o, "mean", m);
            cJSON_AddItemToObject(o, "std", s);
        } else {
            cJSON_Delete(m);
            ok = false;
        }
    }
    if (ok) ok = cJSON_AddBoolToObject(o, "exif", p->exif) != NULL;
    if (ok) ok = cJSON_AddStringToObject(o, "mode", p->fast ? "fast" : "exact") != NULL;
    if (ok)
        ok = cJSON_AddStringToObject(o, "default_reference", reference_name(p->default_ref)) != NULL;
    if (ok) {
        cJSON *refs = cJSON_AddArrayToObject(o, "references");
        ok = refs != NULL;
        for (int r = 0; ok && r < REF_COUNT; r++)
            if (p->references & (1u << r))
                ok = cJSON_AddItemToArray(refs, cJSON_CreateString(reference_name((reference_id)r)));
    }
    if (ok) {
        int fill[3] = {p->fill[0], p->fill[1], p->fill[2]};
        cJSON *f = cJSON_CreateIntArray(fill, 3);
        ok = f && cJSON_AddItemToObject(o, "fill", f);
    }
    if (ok) {
        cJSON *m = cJSON_AddArrayToObject(o, "models");
        ok = m != NULL;
        for (int i = 0; ok && i < p->n_models; i++) {
            cJSON *id = cJSON_CreateString(p->models[i]);
            ok = id && cJSON_AddItemToArray(m, id);
        }
    }
    if (ok && p->vlm.kind == VLM_NONE) {
        cJSON *out = cJSON_AddObjectToObject(o, "output");
        ok = out && cJSON_AddNumberToObject(out, "channels", 3) &&
             cJSON_AddNumberToObject(out, "height", p->out_height) &&
             cJSON_AddNumberToObject(out, "width", p->out_width);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

void *profile_to_native_cjson(const profile *p)
{
    cJSON *o = profile_to_cjson(p);
    if (o) cJSON_DeleteItemFromObjectCaseSensitive(o, "output");
    /* a default the daemon would fill in is not part of the file */
    if (o && !p->default_ref_set) cJSON_DeleteItemFromObjectCaseSensitive(o, "default_reference");
    return o;
}
