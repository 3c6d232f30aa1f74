/* tensor_encode.h — the response formats and the JSON of a classic (N,3,H,W) tensor. The tensor
 * is written by the executors straight into the buffer the response is served from; npy only
 * reserves room for its header in front. */
#ifndef CLIPPREP_TENSOR_ENCODE_H
#define CLIPPREP_TENSOR_ENCODE_H

#include <stddef.h>

#include "../kernels/preprocess.h"

typedef enum { OUT_NPY = 0, OUT_RAW, OUT_JSON, OUT_SHM, OUT_CUDA_IPC, OUT_NPZ } output_format;

bool output_format_parse(const char *s, output_format *f);
const char *output_format_content_type(output_format f);

/* (.npy headers of any array: array_encode.h) */

/* Formats {"profile":…,"shape":[…],"dtype":…,"data":[…]} into a malloc'd string. */
char *tensor_to_json(const char *profile, int n, int h, int w, tensor_dtype dtype,
                     const void *data, size_t *out_len);

#endif
