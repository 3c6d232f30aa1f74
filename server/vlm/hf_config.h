/* hf_config.h — readers of a model's preprocessor_config.json that every VLM family's import
 * shares: a key given (absent or null means the class default), booleans, the mean/std
 * triples, the Pillow filter code and the rescale factor, each refusing by key name. */
#ifndef CLIPPREP_VLM_HF_CONFIG_H
#define CLIPPREP_VLM_HF_CONFIG_H

#include <stdbool.h>

#include "../../kernels/coeffs.h"
#include "../error.h"

struct cJSON;

/* The member, or NULL when absent or null. */
const struct cJSON *hf_given(const struct cJSON *o, const char *key);
bool hf_bool(const struct cJSON *o, const char *key, bool dflt, bool *out, cp_error *err);
/* A number (all three channels) or three numbers; positive: each > 0. Absent: *out kept. */
bool hf_stats(const struct cJSON *o, const char *key, bool positive, double out[3],
              cp_error *err);
/* "resample": 2 (bilinear) or 3 (bicubic); other Pillow codes are refused by name. Absent:
 * *filter (the class default) kept. */
bool hf_resample(const struct cJSON *o, resample_filter *filter, cp_error *err);
/* "rescale_factor": a number > 0. Absent: *factor kept. */
bool hf_rescale(const struct cJSON *o, double *factor, cp_error *err);

#endif
