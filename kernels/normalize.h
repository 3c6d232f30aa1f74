/* normalize.h — rescale + normalise as a 3x256 table (spec B.7, B.8). The value for (channel,
 * u8) is computed once on the host with the reference's float32 arithmetic; kernels only look
 * it up, so every executor and dtype gives identical results by construction. */
#ifndef CLIPPREP_NORMALIZE_H
#define CLIPPREP_NORMALIZE_H

#include <stdint.h>

typedef struct {
    float f32[3][256];
    uint16_t f16[3][256]; /* IEEE binary16 bits of f32, round-to-nearest-even (numpy astype) */
    uint8_t fill[4];      /* u8 value of padding per channel (profile "fill"; build sets 0) */
} normalize_table;

/* x = f32(f64(u) * rescale); y = (x - f32(mean)) / f32(std), each op in float32. */
void normalize_table_build(normalize_table *t, double rescale, const double mean[3],
                           const double std[3]);
/* transformers 5's fused rescale+normalise (torchvision backend):
 * m = f32(f32(mean) * f32(1/rescale)), s likewise; y = (f32(u) - m) / s in float32. */
void normalize_table_build_fused(normalize_table *t, double rescale, const double mean[3],
                                 const double std[3]);

uint16_t float_to_half(float f); /* round to nearest even, overflow to inf, NaN kept */
float half_to_float(uint16_t h);

#endif
