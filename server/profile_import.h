/* profile_import.h — a model's own preprocessing config as a clipprep profile: a Hugging Face
 * preprocessor_config.json (CLIP, SigLIP, ViT image processors) or an open_clip
 * open_clip_config.json (preprocess_cfg + model_cfg.vision_cfg.image_size), recognised from its
 * keys. Every key those libraries read is understood or refused by name; the result is the same
 * `profile` a native file gives (docs/configuration.md, "Model configs"). */
#ifndef CLIPPREP_PROFILE_IMPORT_H
#define CLIPPREP_PROFILE_IMPORT_H

#include <stddef.h>

#include "error.h"
#include "profile.h"

typedef enum {
    CONFIG_NATIVE = 0, /* a clipprep profile file ("name", "resize", ...) */
    CONFIG_HF,         /* transformers preprocessor_config.json */
    CONFIG_OPEN_CLIP,  /* open_clip open_clip_config.json */
    CONFIG_UNRECOGNISED,
} config_format;

#define HF_CONFIG_FILE "preprocessor_config.json"
#define OPEN_CLIP_CONFIG_FILE "open_clip_config.json"

/* The format of a JSON text, from its top-level keys (CONFIG_UNRECOGNISED for non-objects). */
config_format config_format_of(const char *json_text);
const char *config_format_name(config_format f);

/* A profile named `name` from one config text of format `f`. Errors name the key. */
bool profile_from_config(const char *json_text, config_format f, const char *name, profile *p,
                         cp_error *err);

/* Imports `path`: a *.json file of any of the three formats, or a folder holding
 * open_clip_config.json and/or preprocessor_config.json (open_clip's wins: the library the model
 * was trained with; when both resolve to different preprocessing, `warning` says how). `name`
 * may be NULL: then the file's stem or the folder's name. Errors name the file and the key. */
bool profile_import_path(const char *path, const char *name, profile *p, char *warning,
                         size_t warning_cap, cp_error *err);

/* `clipprepd profile import PATH [--name NAME]`: prints the resolved native profile JSON on
 * stdout, warnings on stderr. Returns the process exit status. */
int profile_cli_main(int argc, char **argv);

#endif
