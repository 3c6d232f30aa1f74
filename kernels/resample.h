/* resample.h — Pillow's 8-bit separable convolution (spec A.5) per output pixel, RGB.
 * Horizontal pass: one source row -> one u8 intermediate pixel. Vertical pass: a column of
 * intermediate pixels -> one u8 output pixel. Bias 2^21, arithmetic shift by 22, clamp to
 * 0..255 after each pass (the intermediate is u8, as in Pillow). KERNEL_FN: host and device. */
#ifndef CLIPPREP_RESAMPLE_H
#define CLIPPREP_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "coeffs.h"
#include "kernel_fn.h"

KERNEL_FN uint8_t resample_clip8(int32_t acc)
{
    int32_t v = acc >> RESAMPLE_PRECISION_BITS; /* arithmetic shift: floor, as Pillow */
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* src_row: packed RGB; lo/taps/k: this output pixel's coefficients. Writes 3 bytes to out. */
KERNEL_FN void resample_h_pixel(const uint8_t *src_row, int lo, int taps, const int32_t *k,
                                uint8_t *out)
{
    int32_t r = 1 << (RESAMPLE_PRECISION_BITS - 1), g = r, b = r;
    const uint8_t *p = src_row + (size_t)lo * 3;
    for (int j = 0; j < taps; j++) {
        int32_t w = k[j];
        r += (int32_t)p[3 * j + 0] * w;
        g += (int32_t)p[3 * j + 1] * w;
        b += (int32_t)p[3 * j + 2] * w;
    }
    out[0] = resample_clip8(r);
    out[1] = resample_clip8(g);
    out[2] = resample_clip8(b);
}

/* col: the intermediate pixel at row lo of this column; stride: bytes between rows. */
KERNEL_FN void resample_v_pixel(const uint8_t *col, size_t stride, int taps, const int32_t *k,
                                uint8_t *out)
{
    int32_t r = 1 << (RESAMPLE_PRECISION_BITS - 1), g = r, b = r;
    for (int j = 0; j < taps; j++) {
        const uint8_t *p = col + (size_t)j * stride;
        int32_t w = k[j];
        r += (int32_t)p[0] * w;
        g += (int32_t)p[1] * w;
        b += (int32_t)p[2] * w;
    }
    out[0] = resample_clip8(r);
    out[1] = resample_clip8(g);
    out[2] = resample_clip8(b);
}

#endif
