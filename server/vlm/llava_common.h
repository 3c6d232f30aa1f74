/* llava_common.h — what the llava and llava_next families share (defined in llava.c): the
 * preprocessor_config.json keys both LlavaImageProcessor and LlavaNextImageProcessor read, and
 * their "vlm" object readers. */
#ifndef CLIPPREP_VLM_LLAVA_COMMON_H
#define CLIPPREP_VLM_LLAVA_COMMON_H

#include "vlm.h"

/* The settings both classes share, as read from a config (class defaults filled in). */
typedef struct {
    bool do_pad, do_center_crop, do_resize;
    int shortest_edge; /* size.shortest_edge */
    int crop;          /* crop_size: square side */
} llava_hf_common;

/* Checks every key of a Llava or LlavaNext config against `keys` (NULL-terminated), reads the
 * shared settings into *c (defaults: shortest_edge 224, crop 224, do_pad `pad_default`) and the
 * profile's filter, rescale_factor, mean, std; refuses by name what it cannot reproduce.
 * `cls` names the class in messages. */
bool llava_hf_read(const struct cJSON *root, profile *p, const char *cls, const char *const *keys,
                   bool pad_default, llava_hf_common *c, cp_error *err);

/* The shared preprocessor_config.json keys (the caller adds its own). */
#define LLAVA_HF_KEYS                                                                          \
    "image_processor_type", "processor_class", "auto_map", "_valid_processor_keys",             \
        "do_resize", "size", "resample", "do_center_crop", "crop_size", "do_rescale",           \
        "rescale_factor", "do_normalize", "image_mean", "image_std", "do_convert_rgb",          \
        "do_pad", "default_to_square", "data_format", "input_data_format", "return_tensors",    \
        "device", "disable_grouping"

/* Largest tile / resize side a profile may name. */
#define LLAVA_MAX_SIDE 4096

#endif
