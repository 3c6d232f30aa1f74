/* resample_simd.c — AVX2 horizontal and vertical passes (see resample_simd.h for exactness).
 * Compiled for the baseline ISA; the AVX2 functions carry a target attribute and are only
 * called after a run-time CPU check. */
#include "resample_simd.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

static int simd_enabled = 1;

void resample_simd_enable(bool on) { simd_enabled = on; }

bool resample_simd_available(void)
{
#if HAVE_X86
    return simd_enabled && __builtin_cpu_supports("avx2");
#else
    return false;
#endif
}

static void split(int32_t k, int16_t *hi, int16_t *lo)
{
    *hi = (int16_t)(k >> 11); /* arithmetic: floor */
    *lo = (int16_t)(k & 2047);
}

bool hweights_build(hweights *hw, const axis_coeffs *c)
{
    memset(hw, 0, sizeof *hw);
    hw->count = c->count;
    hw->lo = malloc(sizeof(int) * (size_t)c->count);
    hw->groups = malloc(sizeof(int) * (size_t)c->count);
    hw->w_off = malloc(sizeof(size_t) * (size_t)c->count);
    size_t total = 0;
    for (int j = 0; c->bounds && j < c->count; j++)
        total += (size_t)((c->bounds[2 * j + 1] + 3) / 4) * 32;
    hw->w = calloc(total ? total : 1, sizeof(int16_t));
    if (!hw->lo || !hw->groups || !hw->w_off || !hw->w) {
        hweights_free(hw);
        return false;
    }
    size_t off = 0;
    for (int j = 0; j < c->count; j++) {
        int taps = c->bounds[2 * j + 1], groups = (taps + 3) / 4;
        const int32_t *k = c->k + (size_t)j * c->ksize;
        hw->lo[j] = c->bounds[2 * j];
        hw->groups[j] = groups;
        hw->w_off[j] = off;
        for (int g = 0; g < groups; g++) {
            int16_t *hi = hw->w + off + (size_t)g * 32, *lo = hi + 16;
            for (int half = 0; half < 2; half++) /* 128-bit lane: taps 4g+2h, 4g+2h+1 */
                for (int p = 0; p < 3; p++)      /* R, G, B pairs; the 4th pair stays 0 */
                    for (int e = 0; e < 2; e++) {
                        int t = 4 * g + 2 * half + e;
                        int32_t kv = t < taps ? k[t] : 0;
                        split(kv, &hi[half * 8 + p * 2 + e], &lo[half * 8 + p * 2 + e]);
                    }
        }
        off += (size_t)groups * 32;
    }
    return true;
}

void hweights_free(hweights *hw)
{
    free(hw->lo);
    free(hw->groups);
    free(hw->w);
    free(hw->w_off);
    memset(hw, 0, sizeof *hw);
}

#if HAVE_X86
__attribute__((target("avx2"))) static inline __m128i finish_pixels(__m256i acc_h, __m256i acc_l)
{
    /* fold the two 128-bit lanes (taps pairs) and combine hi/lo parts exactly */
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc_h), _mm256_extracti128_si256(acc_h, 1));
    __m128i l = _mm_add_epi32(_mm256_castsi256_si128(acc_l), _mm256_extracti128_si256(acc_l, 1));
    __m128i v = _mm_add_epi32(_mm_add_epi32(_mm_slli_epi32(h, 11), l),
                              _mm_set1_epi32(1 << (RESAMPLE_PRECISION_BITS - 1)));
    v = _mm_srai_epi32(v, RESAMPLE_PRECISION_BITS);
    v = _mm_packs_epi32(v, v);
    return _mm_packus_epi16(v, v); /* clamp to 0..255, as clip8 */
}

__attribute__((target("avx2"))) void resample_h_row_avx2(const uint8_t *src_row,
                                                         const hweights *hw, uint8_t *dst)
{
    /* int16 lanes (R_t, R_t+1, G_t, G_t+1, B_t, B_t+1, 0, 0) for taps 0,1 | 2,3 of a group */
    const __m256i shuf = _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,
                                          6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1);
    for (int j = 0; j < hw->count; j++) {
        const uint8_t *p = src_row + (size_t)hw->lo[j] * 3;
        const __m256i *w = (const __m256i *)(hw->w + hw->w_off[j]);
        __m256i acc_h = _mm256_setzero_si256(), acc_l = _mm256_setzero_si256();
        for (int g = 0; g < hw->groups[j]; g++, p += 12) {
            __m256i px = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
            px = _mm256_shuffle_epi8(px, shuf);
            acc_h = _mm256_add_epi32(acc_h, _mm256_madd_epi16(px, _mm256_loadu_si256(w + 2 * g)));
            acc_l = _mm256_add_epi32(acc_l, _mm256_madd_epi16(px, _mm256_loadu_si256(w + 2 * g + 1)));
        }
        int32_t rgbx = _mm_cvtsi128_si32(finish_pixels(acc_h, acc_l));
        memcpy(dst + (size_t)j * 3, &rgbx, 4); /* the 4th byte is overwritten next / padding */
    }
}

__attribute__((target("avx2"))) void resample_v_row_avx2(const uint8_t *top, size_t stride,
                                                         int taps, const int32_t *k, int nbytes,
                                                         uint8_t *dst)
{
    const __m256i bias = _mm256_set1_epi32(1 << (RESAMPLE_PRECISION_BITS - 1));
    for (int x = 0; x < nbytes; x += 16) {
        __m256i a0h = _mm256_setzero_si256(), a0l = a0h, a1h = a0h, a1l = a0h;
        for (int t = 0; t < taps; t += 2) {
            __m256i ra = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(top + (size_t)t * stride + x)));
            __m256i rb = t + 1 < taps
                             ? _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(top + (size_t)(t + 1) * stride + x)))
                             : _mm256_setzero_si256();
            int16_t h0, l0, h1 = 0, l1 = 0;
            split(k[t], &h0, &l0);
            if (t + 1 < taps)
                split(k[t + 1], &h1, &l1);
            __m256i wh = _mm256_set1_epi32((int32_t)((uint32_t)(uint16_t)h0 | ((uint32_t)(uint16_t)h1 << 16)));
            __m256i wl = _mm256_set1_epi32((int32_t)((uint32_t)(uint16_t)l0 | ((uint32_t)(uint16_t)l1 << 16)));
            __m256i lo = _mm256_unpacklo_epi16(ra, rb), hi = _mm256_unpackhi_epi16(ra, rb);
            a0h = _mm256_add_epi32(a0h, _mm256_madd_epi16(lo, wh));
            a0l = _mm256_add_epi32(a0l, _mm256_madd_epi16(lo, wl));
            a1h = _mm256_add_epi32(a1h, _mm256_madd_epi16(hi, wh));
            a1l = _mm256_add_epi32(a1l, _mm256_madd_epi16(hi, wl));
        }
        __m256i v0 = _mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(_mm256_slli_epi32(a0h, 11), a0l), bias), RESAMPLE_PRECISION_BITS);
        __m256i v1 = _mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(_mm256_slli_epi32(a1h, 11), a1l), bias), RESAMPLE_PRECISION_BITS);
        __m256i w16 = _mm256_packs_epi32(v0, v1);      /* in-lane: x0-7 | x8-15 as int16 */
        __m256i b8 = _mm256_packus_epi16(w16, w16);    /* clamp 0..255 */
        b8 = _mm256_permute4x64_epi64(b8, 0x08);       /* qwords 0 and 2 -> bytes x0..15 */
        _mm_storeu_si128((__m128i *)(dst + x), _mm256_castsi256_si128(b8));
    }
}
#else
void resample_h_row_avx2(const uint8_t *src_row, const hweights *hw, uint8_t *dst)
{
    (void)src_row, (void)hw, (void)dst;
}
void resample_v_row_avx2(const uint8_t *top, size_t stride, int taps, const int32_t *k,
                         int nbytes, uint8_t *dst)
{
    (void)top, (void)stride, (void)taps, (void)k, (void)nbytes, (void)dst;
}
#endif
