/* vlm.h — vision-language model profiles (issue #18). A VLM processor turns one image into
 * tiles, each a window of one resize of the (optionally pre-padded) image, normalised like
 * every other profile; the batch's tiles and per-image values are laid out as the arrays the
 * transformers processor returns (out_layout.h). The hot path stays decode -> one resize per
 * tile -> normalise; families only plan and place.
 *
 * One family per file (vlm/<family>.c) fills a vlm_family; vlm.c dispatches. */
#ifndef CLIPPREP_VLM_H
#define CLIPPREP_VLM_H

#include <stddef.h>
#include <stdint.h>

#include "../error.h"
#include "../out_layout.h"
#include "../profile.h"
#include "vlm_params.h"

struct cJSON;

#define VLM_MAX_TILES 64

/* One tile: the image (after EXIF and the optional pre-pad) resized to resized_w x resized_h,
 * then the w x h window at (left, top) of it; window pixels outside the resized image are the
 * profile's "fill" colour (u8, normalised like pixels). */
typedef struct {
    int resized_w, resized_h;
    int left, top;
    int w, h;
} vlm_tile;

/* How one image is processed, from its size alone (no pixels): also what POST /v1/plan
 * answers. */
typedef struct vlm_image_plan_s {
    int src_w, src_h;          /* the image as decoded (after EXIF orientation) */
    /* llava pad_to_square: the image is first pasted at (pad_x, pad_y) on a pad_w x pad_h
     * canvas of vlm.background; the tiles then resize that canvas. pad_w = 0: no pre-pad. */
    int pad_w, pad_h, pad_x, pad_y;
    int n_tiles;
    vlm_tile tiles[VLM_MAX_TILES];
    long long meta[4];         /* the family's per-image values (grid, sizes, count...) */
    long long rows;            /* the family's per-image row count (patches or tiles) */
    long long vision_tokens;   /* tokens the model makes of this image; -1: not known here */
} vlm_image_plan;

typedef struct vlm_family {
    vlm_kind kind;
    const char *name;          /* "processor" in a profile file: "qwen2_vl", ... */
    const char *hf_class;      /* transformers class base name imported: "Qwen2VL", ... */
    /* The family keys of a profile file's "vlm" object (all but "processor"); unknown keys
     * are errors naming them. */
    bool (*parse)(const struct cJSON *vlm, vlm_params *v, cp_error *err);
    /* Adds the family keys to a "vlm" object (GET /v1/profiles, profile import output). */
    void (*to_json)(const vlm_params *v, struct cJSON *vlm);
    /* A model's preprocessor_config.json (already known to be this family): fills the whole
     * profile but its name (filter, rescale_factor, mean, std, vlm); refuses what it cannot
     * reproduce, naming the key. */
    bool (*import_hf)(const struct cJSON *root, profile *p, cp_error *err);
    /* Plans one w x h image; refuses (CP_ERR_IMAGE_TOO_LARGE / CP_ERR_INVALID_IMAGE...) what
     * the library refuses, with its reason. */
    bool (*plan)(const profile *p, reference_id ref, int w, int h, vlm_image_plan *out,
                 cp_error *err);
    /* The batch's arrays (pixel_values first; out_layout_finish is left to the caller) and the
     * element offset of each image's part of pixel_values (image_elem[i]). */
    void (*batch)(const profile *p, const vlm_image_plan *plans, int n, out_layout *lay,
                  size_t *image_elem);
    /* Writes the integer arrays of the batch at base + offset (pixel_values' padding is
     * already zero). */
    void (*write_meta)(const profile *p, const vlm_image_plan *plans, int n,
                       const out_layout *lay, uint8_t *base);
    /* Places tile t (3 planes of h x w values of esize bytes) into the image's part of
     * pixel_values. NULL: tiles are written there directly, 3*h*w values each, in order. */
    void (*place_tile)(const profile *p, const vlm_image_plan *ip, int t, const uint8_t *planes,
                       size_t esize, uint8_t *image_part);
    /* Adds the per-image values of a plan to a /v1/plan entry (the names of the arrays). */
    void (*plan_json)(const profile *p, const vlm_image_plan *ip, struct cJSON *entry);
} vlm_family;

const vlm_family *vlm_family_of(vlm_kind k);
const vlm_family *vlm_family_named(const char *name);
/* The family importing this transformers class base name ("Qwen2VL"), or NULL. */
const vlm_family *vlm_family_for_hf_class(const char *base);
/* "qwen2_vl, llava, ..." for messages */
const char *vlm_family_names(void);

/* A profile file's "vlm" object. */
bool vlm_parse_profile_json(const struct cJSON *vlm, profile *p, cp_error *err);
/* The "vlm" object of a profile (caller adds it). */
struct cJSON *vlm_profile_json(const profile *p);

bool vlm_plan_image(const profile *p, reference_id ref, int w, int h, vlm_image_plan *out,
                    cp_error *err);
/* The batch layout, finished, and each image's byte offset from the start of pixel_values. */
void vlm_batch_layout(const profile *p, const vlm_image_plan *plans, int n, tensor_dtype dt,
                      out_layout *lay, size_t *image_byte);
/* The integer arrays of the batch, at base + each array's offset. */
void vlm_write_meta(const profile *p, const vlm_image_plan *plans, int n, const out_layout *lay,
                    uint8_t *base);

/* Family helpers: the shared key readers of the "vlm" object (a model's preprocessor config:
 * hf_config.h). */
bool vlm_get_int(const struct cJSON *o, const char *key, bool required, long long lo,
                 long long hi, long long *out, cp_error *err);
bool vlm_get_bool(const struct cJSON *o, const char *key, bool dflt, bool *out, cp_error *err);
bool vlm_check_keys(const struct cJSON *o, const char *const *allowed, const char *where,
                    cp_error *err);

extern const vlm_family vlm_qwen2_vl, vlm_llava, vlm_llava_next, vlm_got_ocr2,
    vlm_siglip2_naflex;

#endif
