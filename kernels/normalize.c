/* normalize.c — builds the normalisation table and converts float32 to float16. Built with
 * -ffp-contract=off; on x86-64 float arithmetic is evaluated in float32 (FLT_EVAL_METHOD 0). */
#include "normalize.h"

#include <string.h>

void normalize_table_build(normalize_table *t, double rescale, const double mean[3],
                           const double std[3])
{
    for (int c = 0; c < 3; c++) {
        volatile float m = (float)mean[c], s = (float)std[c];
        for (int u = 0; u < 256; u++) {
            volatile float x = (float)((double)u * rescale);
            volatile float d = x - m;
            volatile float y = d / s;
            t->f32[c][u] = y;
            t->f16[c][u] = float_to_half(y);
        }
    }
    memset(t->fill, 0, sizeof t->fill);
}

void normalize_table_build_fused(normalize_table *t, double rescale, const double mean[3],
                                 const double std[3])
{
    volatile float k = (float)(1.0 / rescale); /* Python float 1/rescale, a float32 scalar */
    for (int c = 0; c < 3; c++) {
        volatile float m0 = (float)mean[c], s0 = (float)std[c];
        volatile float m = m0 * k, s = s0 * k;
        for (int u = 0; u < 256; u++) {
            volatile float d = (float)u - m;
            volatile float y = d / s;
            t->f32[c][u] = y;
            t->f16[c][u] = float_to_half(y);
        }
    }
    memset(t->fill, 0, sizeof t->fill);
}

uint16_t float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t exp = (x >> 23) & 0xff;
    uint32_t man = x & 0x7fffff;

    if (exp == 0xff) /* inf or NaN */
        return sign | 0x7c00 | (man ? 0x200 | (uint16_t)(man >> 13) : 0);
    int e = (int)exp - 127 + 15;
    if (e >= 0x1f)
        return sign | 0x7c00; /* overflow to inf */
    if (e <= 0) {
        /* subnormal half (or zero): shift the full mantissa, round half to even */
        if (e < -10)
            return sign;
        man |= 0x800000;
        int shift = 14 - e;
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
        half++; /* may carry into the exponent, up to inf: correct */
    return sign | (uint16_t)half;
}

float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, x;
    if (exp == 0x1f) {
        x = sign | 0x7f800000 | (man << 13);
    } else if (exp == 0) {
        if (!man) {
            x = sign;
        } else { /* normalise the subnormal */
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while (!(man & 0x400));
            x = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else {
        x = sign | ((exp - 15 + 127) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}
