/* preprocess.h — run a resize_plan on the CPU: decoded RGB in, one normalised CHW tensor slot
 * out. This is the CPU executor's body; the CUDA kernels call the same KERNEL_FN pixel
 * functions (resample.h) per thread. */
#ifndef CLIPPREP_PREPROCESS_H
#define CLIPPREP_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "normalize.h"
#include "plan.h"

typedef enum { DTYPE_FLOAT32 = 0, DTYPE_FLOAT16 } tensor_dtype;

static inline size_t tensor_dtype_size(tensor_dtype d) { return d == DTYPE_FLOAT16 ? 2 : 4; }
const char *tensor_dtype_name(tensor_dtype d); /* "float32" | "float16" */

/* rgb: packed RGB rows of p->src_w pixels, row stride `stride` bytes, followed by at least
 * RESAMPLE_SIMD_PAD readable bytes. tmp: resize_plan_scratch_bytes(p) + RESAMPLE_SIMD_PAD. out: 3*out_h*out_w values of dtype (planes R, G, B). */
void preprocess_image_cpu(const resize_plan *p, const uint8_t *rgb, size_t stride,
                          const normalize_table *t, tensor_dtype dtype, void *out,
                          uint8_t *tmp);

/* Same geometry, u8 RGB output (out_h*out_w*3, packed) — the bit-exact stage, for tests. */
void preprocess_image_cpu_u8(const resize_plan *p, const uint8_t *rgb, size_t stride,
                             uint8_t *out, uint8_t *tmp);

#endif
