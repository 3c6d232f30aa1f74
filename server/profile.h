/* profile.h — a preprocessing profile is data: how one model family's reference prepares an
 * image (size rule, crop and its rounding, filter, rescale, mean/std, EXIF). Each profile is
 * a JSON file in profiles_dir; a new model family needs a new file, not new code. */
#ifndef CLIPPREP_PROFILE_H
#define CLIPPREP_PROFILE_H

#include <stdbool.h>

#include "../kernels/coeffs.h"
#include "error.h"
#include "reference.h"
#include "vlm/vlm_params.h"

typedef enum {
    RESIZE_SHORTEST_EDGE = 0, /* short side -> size, long side trunc(size*long/short) (spec B.4) */
    RESIZE_EXACT,             /* squash to width x height (SigLIP, spec D) */
    RESIZE_LONGEST,           /* open_clip resize_mode=longest: aspect kept, the image fits the
                                 resize_width x resize_height box (ResizeKeepRatio, longest=1) */
} resize_mode;

typedef enum {
    CROP_NONE = 0,
    CROP_FLOOR,     /* HF: offset floor((L-c)/2); when padding, odd extra zero row top/left */
    CROP_HALF_EVEN, /* torchvision/open_clip: round-half-even((L-c)/2); odd pad row bottom/right */
} crop_mode;

#define PROFILE_MAX_MODELS 24

typedef struct {
    char name[64];
    char description[256];
    char reference[256];     /* which reference implementation this profile reproduces */
    resize_mode resize;
    int shortest_edge;       /* RESIZE_SHORTEST_EDGE */
    int resize_width, resize_height; /* RESIZE_EXACT; the box of RESIZE_LONGEST */
    crop_mode crop;
    int crop_width, crop_height;
    resample_filter filter;
    double rescale_factor;   /* 1/255 as a double (0.00392156862745098) */
    double mean[3], std[3];
    bool exif;               /* apply EXIF orientation by default (requests may override) */
    bool fast;               /* "mode": "fast" — JPEG DCT-domain downscaling before the exact
                                resampler (not exact; never the shipped default) */
    int out_width, out_height; /* derived: the tensor's H and W */
    unsigned references;     /* bit per reference_id this profile may be run with ("references";
                                default all) */
    reference_id default_ref; /* "default_reference"; else implied by crop.rounding half_even
                                (open_clip); else the daemon's default_reference */
    bool default_ref_set;    /* default_ref came from the file (not the daemon default) */
    /* Added for model-config import (server/profile_import.c): */
    unsigned char fill[3];   /* u8 colour of padding (open_clip fill_color), before normalising */
    char models[PROFILE_MAX_MODELS][96]; /* model ids this profile serves (GET /v1/profiles) */
    int n_models;
    /* A vision-language profile ("vlm"; vlm/vlm.h): the processor plans tiles and arrays
     * itself; resize, crop and out_width/out_height are unused. kind VLM_NONE otherwise. */
    vlm_params vlm;
} profile;

typedef struct {
    profile *items;
    int count;
} profile_set;

/* Loads every *.json in dir (sorted by name); a file's "name" must equal its file stem.
 * A *.json may also be a model's own Hugging Face preprocessor_config.json or open_clip
 * open_clip_config.json, and a sub-folder NAME/ holding those files as downloaded with the model
 * (server/profile_import.h); such profiles are named after the file or folder.
 * Unknown keys and invalid values are errors naming the file and the key. */
bool profiles_load_dir(const char *dir, profile_set *set, cp_error *err);
bool profile_parse_json(const char *json_text, profile *p, cp_error *err);
const profile *profiles_find(const profile_set *set, const char *name);
/* Gives every profile that names no default reference the daemon's (config default_reference).
 * Fails, naming the profile, when a profile does not support that reference. */
bool profiles_apply_default_reference(profile_set *set, reference_id ref, cp_error *err);
void profiles_free(profile_set *set);

/* A cJSON object describing p with all settings (GET /v1/profiles). Caller frees with
 * cJSON_Delete. Returned as void* to keep cJSON out of this header. */
void *profile_to_cjson(const profile *p);
/* The same without the derived "output": a native profile file that loads back unchanged
 * (`clipprepd profile import`). */
void *profile_to_native_cjson(const profile *p);
/* Checks the settings of a profile built in code (the importer) and derives its output size:
 * the rules profile_parse_json applies. */
bool profile_finish(profile *p, cp_error *err);

#endif
