/* tensor_encode.h — the response encodings of a (N,3,H,W) tensor: .npy, raw, JSON. The tensor
 * is written by the executors straight into the buffer the response is served from; npy only
 * reserves room for its header in front. */
#ifndef CLIPPREP_TENSOR_ENCODE_H
#define CLIPPREP_TENSOR_ENCODE_H

#include <stddef.h>

#include "../kernels/preprocess.h"

typedef enum { OUT_NPY = 0, OUT_RAW, OUT_JSON, OUT_SHM, OUT_CUDA_IPC, OUT_NPZ } output_format;

bool output_format_parse(const char *s, output_format *f);
const char *output_format_content_type(output_format f);

/* Length of the .npy header for this shape and dtype (a multiple of 64). */
size_t npy_header_size(int n, int h, int w, tensor_dtype dtype);
/* Writes exactly npy_header_size() bytes. */
void npy_header_write(char *dst, int n, int h, int w, tensor_dtype dtype);

/* Formats {"profile":…,"shape":[…],"dtype":…,"data":[…]} into a malloc'd string. */
char *tensor_to_json(const char *profile, int n, int h, int w, tensor_dtype dtype,
                     const void *data, size_t *out_len);

#endif
