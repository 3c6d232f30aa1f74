/* test_kernels.c — the resampler against the spec's Pillow vectors (A.11), crop-only planning
 * (A.7) against full resize + crop, pass skipping, normalisation table (B.8), float16, geometry
 * (B.4, B.6, C.3). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/normalize.h"
#include "../../kernels/preprocess.h"
#include "../../kernels/resample_simd.h"
#include "../../server/geometry.h"
#include "test.h"

/* Resizes a w x h RGB image fully (no crop) and returns the u8 result. */
static uint8_t *resize_full(const uint8_t *src, int w, int h, int ow, int oh, resample_filter f)
{
    resize_plan p;
    if (!resize_plan_build(&p, w, h, ow, oh, 0, 0, ow, oh, f))
        return NULL;
    uint8_t *tmp = malloc(resize_plan_scratch_bytes(&p) + RESAMPLE_SIMD_PAD);
    uint8_t *out = malloc((size_t)ow * oh * 3);
    preprocess_image_cpu_u8(&p, src, (size_t)w * 3, out, tmp);
    free(tmp);
    resize_plan_free(&p);
    return out;
}

static uint8_t *gray_row_rgb(const int *v, int n)
{
    uint8_t *img = calloc(1, (size_t)n * 3 + RESAMPLE_SIMD_PAD);
    for (int i = 0; i < n; i++)
        img[3 * i] = img[3 * i + 1] = img[3 * i + 2] = (uint8_t)v[i];
    return img;
}

static int check_row(const uint8_t *out, const int *want, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            if (out[3 * i + c] != want[i]) {
                fprintf(stderr, "  pixel %d channel %d: %d, want %d\n", i, c, out[3 * i + c], want[i]);
                bad++;
            }
    return bad;
}

static const int stripes[8] = {0, 255, 0, 255, 0, 255, 0, 255};

TEST(spec_a11_bicubic_vectors)
{
    uint8_t *src = gray_row_rgb(stripes, 8);
    static const int want3[] = {112, 127, 143};
    static const int want13[] = {0, 109, 254, 71, 45, 246, 128, 9, 210, 184, 1, 146, 255};
    uint8_t *o3 = resize_full(src, 8, 1, 3, 1, FILTER_BICUBIC);
    uint8_t *o13 = resize_full(src, 8, 1, 13, 1, FILTER_BICUBIC);
    CHECK(check_row(o3, want3, 3) == 0);
    CHECK(check_row(o13, want13, 13) == 0);
    free(src);
    free(o3);
    free(o13);
}

TEST(spec_a11_bilinear_vectors)
{
    uint8_t *src = gray_row_rgb(stripes, 8);
    static const int want3[] = {121, 128, 134};
    static const int want13[] = {0, 108, 245, 88, 69, 226, 128, 29, 186, 167, 10, 147, 255};
    uint8_t *o3 = resize_full(src, 8, 1, 3, 1, FILTER_BILINEAR);
    uint8_t *o13 = resize_full(src, 8, 1, 13, 1, FILTER_BILINEAR);
    CHECK(check_row(o3, want3, 3) == 0);
    CHECK(check_row(o13, want13, 13) == 0);
    free(src);
    free(o3);
    free(o13);
}

TEST(spec_a11_coefficients_8_to_3)
{
    axis_coeffs c;
    CHECK(axis_coeffs_build(&c, 8, 3, 0, 3, FILTER_BICUBIC));
    static const int32_t out0[] = {1357984, 1678094, 1096189, 261175, -104842, -91194, -3102};
    static const int32_t out1[] = {-113649, 59548, 732425, 1418827, 1418827, 732425, 59548, -113649};
    CHECK_EQ_INT(c.bounds[0], 0);
    CHECK_EQ_INT(c.bounds[1], 7);
    for (int i = 0; i < 7; i++)
        CHECK_EQ_INT(c.k[i], out0[i]);
    CHECK_EQ_INT(c.bounds[2], 0);
    CHECK_EQ_INT(c.bounds[3], 8);
    long sum = 0;
    for (int i = 0; i < 8; i++) {
        CHECK_EQ_INT(c.k[c.ksize + i], out1[i]);
        sum += c.k[c.ksize + i];
    }
    CHECK_EQ_INT(sum, 4194302); /* fixed-point weights are not renormalised */
    CHECK_EQ_INT(c.bounds[4], 1);
    CHECK_EQ_INT(c.bounds[5], 7);
    for (int i = 0; i < 7; i++) /* out 2 mirrors out 0 */
        CHECK_EQ_INT(c.k[2 * c.ksize + i], out0[6 - i]);
    axis_coeffs_free(&c);

    CHECK(axis_coeffs_build(&c, 8, 3, 0, 3, FILTER_BILINEAR));
    static const int32_t b0[] = {1214141, 1655646, 993388, 331129};
    static const int32_t b1[] = {99864, 699051, 1298237, 1298237, 699051, 99864};
    CHECK_EQ_INT(c.bounds[1], 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(c.k[i], b0[i]);
    CHECK_EQ_INT(c.bounds[2], 1);
    CHECK_EQ_INT(c.bounds[3], 6);
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(c.k[c.ksize + i], b1[i]);
    CHECK_EQ_INT(c.bounds[4], 4);
    axis_coeffs_free(&c);
}

TEST(large_downscale_ksize)
{
    axis_coeffs c; /* spec A.10: 4000 -> 224 bicubic: support 35.7, ksize 73 */
    CHECK(axis_coeffs_build(&c, 4000, 224, 0, 224, FILTER_BICUBIC));
    CHECK_EQ_INT(c.ksize, 73);
    axis_coeffs_free(&c);
}

static uint8_t *noise_image(int w, int h, unsigned seed)
{
    uint8_t *img = calloc(1, (size_t)w * h * 3 + RESAMPLE_SIMD_PAD);
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        seed = seed * 1103515245u + 12345u;
        /* saturated patterns ring the most; mix them with noise */
        img[i] = (seed >> 16) & 1 ? ((seed >> 20) & 1 ? 255 : 0) : (uint8_t)(seed >> 23);
    }
    return img;
}

/* Crop computed directly (A.7) equals full resize then crop, incl. padding windows. */
TEST(crop_plan_equals_resize_then_crop)
{
    static const int cases[][8] = {
        /* w, h, ow, oh, top, left, cw, ch */
        {640, 480, 298, 224, 0, 37, 224, 224},  {1000, 667, 335, 224, 0, 55, 224, 224},
        {20, 3000, 224, 33600, 16688, 0, 224, 224}, {3000, 20, 33600, 224, 0, 16688, 224, 224},
        {17, 9, 40, 21, -2, -3, 30, 30},        {224, 300, 224, 300, 38, 0, 224, 224},
        {50, 50, 224, 224, 10, 10, 100, 100},   {300, 224, 300, 224, 0, 38, 224, 224},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int *k = cases[t];
        int w = k[0], h = k[1], ow = k[2], oh = k[3], top = k[4], left = k[5], cw = k[6], ch = k[7];
        uint8_t *src = noise_image(w, h, (unsigned)t + 1);
        for (int f = 0; f < 2; f++) {
            uint8_t *full = resize_full(src, w, h, ow, oh, (resample_filter)f);
            resize_plan p;
            CHECK(resize_plan_build(&p, w, h, ow, oh, top, left, cw, ch, (resample_filter)f));
            uint8_t *tmp = malloc(resize_plan_scratch_bytes(&p) + RESAMPLE_SIMD_PAD);
            uint8_t *crop = malloc((size_t)cw * ch * 3);
            preprocess_image_cpu_u8(&p, src, (size_t)w * 3, crop, tmp);
            int diff = 0;
            for (int y = 0; y < ch; y++)
                for (int x = 0; x < cw; x++)
                    for (int c = 0; c < 3; c++) {
                        int ry = top + y, rx = left + x;
                        int want = (ry >= 0 && ry < oh && rx >= 0 && rx < ow)
                                       ? full[((size_t)ry * ow + rx) * 3 + c] : 0;
                        diff += crop[((size_t)y * cw + x) * 3 + c] != want;
                    }
            if (diff)
                fprintf(stderr, "  case %zu filter %d: %d samples differ\n", t, f, diff);
            CHECK_EQ_INT(diff, 0);
            free(tmp);
            free(crop);
            free(full);
            resize_plan_free(&p);
        }
        free(src);
    }
}

TEST(same_size_is_a_copy)
{
    uint8_t *src = noise_image(31, 17, 7);
    uint8_t *out = resize_full(src, 31, 17, 31, 17, FILTER_BICUBIC);
    CHECK(memcmp(src, out, 31 * 17 * 3) == 0);
    resize_plan p;
    CHECK(resize_plan_build(&p, 31, 17, 31, 17, 0, 0, 31, 17, FILTER_BICUBIC));
    CHECK(!p.need_h && !p.need_v);
    resize_plan_free(&p);
    /* width kept: only the vertical pass runs */
    CHECK(resize_plan_build(&p, 31, 17, 31, 40, 0, 0, 31, 40, FILTER_BICUBIC));
    CHECK(!p.need_h && p.need_v);
    resize_plan_free(&p);
    free(src);
    free(out);
}

TEST(normalize_table_matches_spec_b8)
{
    normalize_table t;
    const double mean[3] = {0.48145466, 0.4578275, 0.40821073};
    const double std[3] = {0.26862954, 0.26130258, 0.27577711};
    normalize_table_build(&t, 0.00392156862745098, mean, std);
    /* spec B.8 sample values (float32 printed as double) */
    CHECK(t.f32[0][0] == (float)-1.7922625541687012);
    CHECK(t.f32[1][0] == (float)-1.7520971298217773);
    CHECK(t.f32[2][0] == (float)-1.480219841003418);
    CHECK(t.f32[0][128] == (float)0.07633614540100098);
    CHECK(t.f32[1][128] == (float)0.16889731585979462);
    CHECK(t.f32[2][128] == (float)0.33994877338409424);
    CHECK(t.f32[0][255] == (float)1.9303361177444458);
    CHECK(t.f32[1][255] == (float)2.0748836994171143);
    CHECK(t.f32[2][255] == (float)2.1458969116210938);
    for (int c = 0; c < 3; c++)
        for (int u = 1; u < 256; u++)
            CHECK(t.f32[c][u] > t.f32[c][u - 1]); /* strictly increasing: u8 is recoverable */
}

TEST(float16_conversion)
{
    CHECK_EQ_INT(float_to_half(0.0f), 0x0000);
    CHECK_EQ_INT(float_to_half(-0.0f), 0x8000);
    CHECK_EQ_INT(float_to_half(1.0f), 0x3c00);
    CHECK_EQ_INT(float_to_half(-2.0f), 0xc000);
    CHECK_EQ_INT(float_to_half(65504.0f), 0x7bff);
    CHECK_EQ_INT(float_to_half(65520.0f), 0x7c00);             /* rounds to inf */
    CHECK_EQ_INT(float_to_half(1.0f + 1.0f / 2048), 0x3c00);   /* tie -> even */
    CHECK_EQ_INT(float_to_half(1.0f + 3.0f / 2048), 0x3c02);   /* tie -> even (up) */
    CHECK_EQ_INT(float_to_half(5.9604645e-08f), 0x0001);       /* smallest subnormal */
    CHECK_EQ_INT(float_to_half(2.9802322e-08f), 0x0000);       /* half of it: tie -> 0 */
    CHECK_EQ_INT(float_to_half(0.333333343f), 0x3555);
    for (uint32_t h = 0; h < 0x7c00; h++) /* every finite half round-trips */
        if (float_to_half(half_to_float((uint16_t)h)) != h) {
            CHECK_EQ_INT(float_to_half(half_to_float((uint16_t)h)), h);
            break;
        }
}

TEST(crop_offsets_both_roundings)
{
    /* HF floor vs torchvision round-half-even (spec C.3): differ when (L-S) % 4 == 3 */
    CHECK_EQ_INT(crop_offset(CROP_FLOOR, 335, 224), 55);
    CHECK_EQ_INT(crop_offset(CROP_HALF_EVEN, 335, 224), 56);
    CHECK_EQ_INT(crop_offset(CROP_FLOOR, 298, 224), 37);
    CHECK_EQ_INT(crop_offset(CROP_HALF_EVEN, 298, 224), 37);
    CHECK_EQ_INT(crop_offset(CROP_FLOOR, 336, 224), 56);
    CHECK_EQ_INT(crop_offset(CROP_HALF_EVEN, 336, 224), 56);
    CHECK_EQ_INT(crop_offset(CROP_HALF_EVEN, 225, 224), 0);  /* 0.5 -> 0 */
    CHECK_EQ_INT(crop_offset(CROP_HALF_EVEN, 227, 224), 2);  /* 1.5 -> 2 */
    /* padding: odd extra row top/left for HF, bottom/right for torchvision */
    CHECK_EQ_INT(crop_offset(CROP_FLOOR, 221, 224), -2);
    CHECK_EQ_INT(crop_offset(CROP_HALF_EVEN, 221, 224), -1);
    CHECK_EQ_INT(crop_offset(CROP_FLOOR, 222, 224), -1);
    CHECK_EQ_INT(crop_offset(CROP_HALF_EVEN, 222, 224), -1);
}

TEST(size_rule_edge_cases)
{
    profile p = {.resize = RESIZE_SHORTEST_EDGE, .shortest_edge = 224, .crop = CROP_FLOOR,
                 .crop_width = 224, .crop_height = 224};
    image_geometry g;
    geometry_compute(&p, 1000, 667, &g); /* trunc, not round: 335, not 336 */
    CHECK_EQ_INT(g.resized_w, 335);
    CHECK_EQ_INT(g.resized_h, 224);
    CHECK_EQ_INT(g.left, 55);
    geometry_compute(&p, 3000, 20, &g);
    CHECK_EQ_INT(g.resized_w, 33600);
    CHECK_EQ_INT(g.resized_h, 224);
    geometry_compute(&p, 1, 1, &g);
    CHECK_EQ_INT(g.resized_w, 224);
    CHECK_EQ_INT(g.resized_h, 224);
    geometry_compute(&p, 480, 640, &g); /* portrait: width is the short side */
    CHECK_EQ_INT(g.resized_w, 224);
    CHECK_EQ_INT(g.resized_h, 298);
    CHECK_EQ_INT(g.top, 37);
    /* exhaustive: trunc(S*l/s) in double equals integer division (spec B.4) */
    int mismatches = 0;
    for (int s = 1; s <= 2000; s++)
        for (int l = s; l <= s + 3000; l += 7) {
            geometry_compute(&p, l, s, &g);
            mismatches += g.resized_w != (224 * l) / s;
        }
    CHECK_EQ_INT(mismatches, 0);
    profile sq = {.resize = RESIZE_EXACT, .resize_width = 384, .resize_height = 384};
    geometry_compute(&sq, 640, 480, &g);
    CHECK_EQ_INT(g.out_w, 384);
    CHECK_EQ_INT(g.out_h, 384);
    CHECK_EQ_INT(g.top, 0);
}

/* The AVX2 passes give the scalar passes' bytes on random geometry and saturated content. */
TEST(simd_equals_scalar)
{
    if (!resample_simd_available()) {
        fprintf(stderr, "  (no AVX2 here: nothing to compare)\n");
        return;
    }
    unsigned seed = 99;
    int differing = 0;
    for (int t = 0; t < 300; t++) {
        seed = seed * 1103515245u + 12345u;
        int w = 1 + (int)(seed >> 8) % 700, h = 1 + (int)(seed >> 4) % 500;
        seed = seed * 1103515245u + 12345u;
        int ow = 1 + (int)(seed >> 8) % 400, oh = 1 + (int)(seed >> 3) % 400;
        int cw = 1 + (int)(seed >> 12) % 300, ch = 1 + (int)(seed >> 14) % 300;
        int left = (ow - cw) / 2, top = (oh - ch) / 2;
        resample_filter f = t % 3 ? FILTER_BICUBIC : FILTER_BILINEAR;
        uint8_t *src = noise_image(w, h, seed);
        resize_plan p;
        /* both weight kinds: Pillow's and torchvision's (shifted int16) */
        CHECK(resize_plan_build_kind(&p, w, h, ow, oh, top, left, cw, ch, f,
                                     t % 2 ? COEFF_TORCHVISION : COEFF_PILLOW));
        uint8_t *tmp = malloc(resize_plan_scratch_bytes(&p) + RESAMPLE_SIMD_PAD);
        uint8_t *a = malloc((size_t)cw * ch * 3), *b = malloc((size_t)cw * ch * 3);
        preprocess_image_cpu_u8(&p, src, (size_t)w * 3, a, tmp);
        resample_simd_enable(false);
        preprocess_image_cpu_u8(&p, src, (size_t)w * 3, b, tmp);
        resample_simd_enable(true);
        if (memcmp(a, b, (size_t)cw * ch * 3)) {
            fprintf(stderr, "  %dx%d -> %dx%d crop %dx%d differs\n", w, h, ow, oh, cw, ch);
            differing++;
        }
        free(src);
        free(tmp);
        free(a);
        free(b);
        resize_plan_free(&p);
    }
    CHECK_EQ_INT(differing, 0);
}

/* torchvision's tables: int16 weights at the axis' precision, stored << (22 - precision); the
 * precision comes from the largest weight of the WHOLE axis, so a window's table does not
 * depend on which outputs are kept. */
TEST(torchvision_weights_are_shifted_int16)
{
    static const int cases[][2] = {{640, 224}, {333, 224}, {3000, 20}, {20, 224}, {7, 3}, {1, 5}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int n_in = cases[c][0], n_out = cases[c][1];
        axis_coeffs full, part;
        CHECK(axis_coeffs_build_kind(&full, n_in, n_out, 0, n_out, FILTER_BICUBIC,
                                     COEFF_TORCHVISION));
        int first = n_out / 3, count = n_out - first;
        CHECK(axis_coeffs_build_kind(&part, n_in, n_out, first, count, FILTER_BICUBIC,
                                     COEFF_TORCHVISION));
        int32_t or_bits = 0;
        for (int j = 0; j < full.count * full.ksize; j++)
            or_bits |= full.k[j];
        CHECK(or_bits != 0);
        /* every weight is an int16 shifted left by the same count */
        int shift = __builtin_ctz((unsigned)or_bits);
        for (int j = 0; j < full.count * full.ksize; j++) {
            int32_t q = full.k[j] >> shift;
            CHECK(q >= -32768 && q <= 32767);
        }
        for (int j = 0; j < count; j++) {
            CHECK_EQ_INT(part.bounds[2 * j], full.bounds[2 * (first + j)]);
            CHECK_EQ_INT(part.bounds[2 * j + 1], full.bounds[2 * (first + j) + 1]);
            CHECK(!memcmp(part.k + (size_t)j * part.ksize, full.k + (size_t)(first + j) * full.ksize,
                          sizeof(int32_t) * (size_t)part.ksize));
        }
        axis_coeffs_free(&full);
        axis_coeffs_free(&part);
    }
}

/* The per-thread cache returns the same tables as a fresh build, and tables in use stay valid
 * while many other sizes pass through the cache. */
TEST(coefficient_cache_is_transparent)
{
    for (int round = 0; round < 3; round++)
        for (int n = 5; n < 60; n += 3) {
            axis_coeffs fresh, cached;
            CHECK(axis_coeffs_build(&fresh, n * 7, n, 0, n, FILTER_BICUBIC));
            CHECK(axis_coeffs_cached(&cached, n * 7, n, 0, n, FILTER_BICUBIC));
            CHECK(cached.borrowed && cached.ksize == fresh.ksize);
            CHECK(memcmp(cached.bounds, fresh.bounds, sizeof(int) * 2 * (size_t)n) == 0);
            CHECK(memcmp(cached.k, fresh.k, sizeof(int32_t) * (size_t)n * fresh.ksize) == 0);
            axis_coeffs_free(&cached); /* borrowed: must not free the cache's memory */
            axis_coeffs_free(&fresh);
        }
    enum { N = 30 }; /* more plans alive at once than the cache has entries */
    resize_plan p[N];
    for (int i = 0; i < N; i++)
        CHECK(resize_plan_build(&p[i], 300 + i, 200 + i % 5, 224, 224, 0, 0, 224, 224, FILTER_BICUBIC));
    for (int i = 0; i < N; i++) {
        axis_coeffs fh, fv;
        axis_coeffs_build(&fh, 300 + i, 224, 0, 224, FILTER_BICUBIC);
        axis_coeffs_build(&fv, 200 + i % 5, 224, 0, 224, FILTER_BICUBIC);
        CHECK(memcmp(p[i].h.k, fh.k, sizeof(int32_t) * 224 * (size_t)fh.ksize) == 0);
        CHECK(memcmp(p[i].v.k, fv.k, sizeof(int32_t) * 224 * (size_t)fv.ksize) == 0);
        axis_coeffs_free(&fh);
        axis_coeffs_free(&fv);
    }
    for (int i = 0; i < N; i++)
        resize_plan_free(&p[i]);
}

TEST(fast_mode_scale_choice)
{
    profile p = {.resize = RESIZE_SHORTEST_EDGE, .shortest_edge = 224};
    CHECK_EQ_INT(fast_scale_denom(&p, 4000, 3000, 2), 4); /* 750 >= 448; 375 is not */
    CHECK_EQ_INT(fast_scale_denom(&p, 1920, 1080, 2), 2); /* 540 >= 448 */
    CHECK_EQ_INT(fast_scale_denom(&p, 640, 480, 2), 1);   /* 240 < 448: full size */
    CHECK_EQ_INT(fast_scale_denom(&p, 8000, 6000, 1), 8);
    CHECK_EQ_INT(fast_scale_denom(&p, 896, 1000, 2), 2);  /* exactly 448 qualifies */
    profile sq = {.resize = RESIZE_EXACT, .resize_width = 384, .resize_height = 384};
    CHECK_EQ_INT(fast_scale_denom(&sq, 4000, 3000, 2), 2); /* 1500 >= 768; 750 is not */
}

int main(void)
{
    RUN(fast_mode_scale_choice);
    RUN(torchvision_weights_are_shifted_int16);
    RUN(coefficient_cache_is_transparent);
    RUN(simd_equals_scalar);
    resample_simd_enable(false); /* the spec vectors through the scalar path, then SIMD */
    RUN(spec_a11_bicubic_vectors);
    RUN(spec_a11_bilinear_vectors);
    RUN(crop_plan_equals_resize_then_crop);
    resample_simd_enable(true);
    RUN(spec_a11_bicubic_vectors);
    RUN(spec_a11_bilinear_vectors);
    RUN(spec_a11_coefficients_8_to_3);
    RUN(large_downscale_ksize);
    RUN(crop_plan_equals_resize_then_crop);
    RUN(same_size_is_a_copy);
    RUN(normalize_table_matches_spec_b8);
    RUN(float16_conversion);
    RUN(crop_offsets_both_roundings);
    RUN(size_rule_edge_cases);
    return TEST_SUMMARY();
}
