/* resample_simd.h — AVX2 versions of the two passes for the CPU executor, chosen at run time
 * (scalar KERNEL_FN fallback). Exact: 22-bit weights are split k = kh*2^11 + kl so that each
 * part fits int16 for _mm256_madd_epi16; (Σp·kh << 11) + Σp·kl is the very integer the scalar
 * loop computes, so results are identical bit for bit (tested against the scalar path). */
#ifndef CLIPPREP_RESAMPLE_SIMD_H
#define CLIPPREP_RESAMPLE_SIMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coeffs.h"

/* Bytes of slack the SIMD passes may read past the last source/intermediate row and write
 * past the last output byte; buffers handed to them are allocated with this much extra. */
#define RESAMPLE_SIMD_PAD 64

bool resample_simd_available(void);   /* CPU has AVX2 and SIMD is enabled */
void resample_simd_enable(bool on);   /* tests compare both paths; default on */

/* Horizontal weights regrouped for the AVX2 loop (4 taps per group, hi/lo int16 parts). */
typedef struct {
    int count;          /* outputs */
    int *lo, *groups;   /* first source pixel and number of 4-tap groups per output */
    int16_t *w;         /* per output, per group: 16 hi + 16 lo int16 */
    size_t *w_off;      /* offset of each output's first group in w (int16 units) */
} hweights;

bool hweights_build(hweights *hw, const axis_coeffs *c);
void hweights_free(hweights *hw);

/* One source row (packed RGB) -> cols intermediate pixels (packed RGB). */
void resample_h_row_avx2(const uint8_t *src_row, const hweights *hw, uint8_t *dst);

/* Vertical pass for one output row: nbytes bytes (cols*3) from taps rows starting at top. */
void resample_v_row_avx2(const uint8_t *top, size_t stride, int taps, const int32_t *k,
                         int nbytes, uint8_t *dst);

#endif
