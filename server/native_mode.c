/* native_mode.c — open_clip's resize in Pillow's own image mode (see native_mode.h). Built
 * with -ffp-contract=off: the 16-bit resampler sums doubles exactly as Pillow's C does. */
#include "native_mode.h"

#include <stdlib.h>
#include <string.h>

#include "../kernels/jpeg_blocks.h"
#include "../kernels/plan.h"
#include "../kernels/preprocess.h"
#include "../kernels/resample_simd.h"
#include "decode_internal.h"
#include "reference.h"
#include "transpose.h"

static uint8_t clip8(int v) { return (uint8_t)(v <= 0 ? 0 : v < 256 ? v : 255); }

/* Pillow's MULDIV255 (ImagingUtils.h). */
static uint8_t muldiv255(unsigned a, unsigned b)
{
    unsigned t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

/* Stored pixels -> the EXIF-oriented image, bpp bytes per pixel (decode.c does 3). */
static uint8_t *orient(const uint8_t *src, int w, int h, int bpp, int o)
{
    uint8_t *out = malloc((size_t)w * h * bpp + RESAMPLE_SIMD_PAD);
    if (!out)
        return NULL;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            memcpy(out + (size_t)jh_oriented_index(o, w, h, x, y) * bpp,
                   src + ((size_t)y * w + x) * bpp, (size_t)bpp);
    return out;
}

/* ---- "P" / "1": NEAREST as Image.resize runs it (ImagingScaleAffine) -------------------- */

/* Source index per resized coordinate 0..n_out-1: x = COORD(o), o += step, from o = step/2;
 * -1 where it falls outside (Pillow leaves the fill value 0 there). */
static int *nearest_table(int n_in, int n_out)
{
    int *t = malloc(sizeof(int) * (size_t)n_out);
    if (!t)
        return NULL;
    double step = (double)((float)n_in - 0.0f) / n_out, o = 0.0 + step * 0.5;
    for (int i = 0; i < n_out; i++) {
        int v = o < 0.0 ? -1 : (int)o;
        t[i] = v >= 0 && v < n_in ? v : -1;
        o += step;
    }
    return t;
}

static bool resize_nearest(const uint8_t *rgb, int w, int h, const native_resize *nr,
                           uint8_t *dst)
{
    int *xt = nearest_table(w, nr->resized_w), *yt = nearest_table(h, nr->resized_h);
    bool ok = xt && yt;
    for (int oy = 0; ok && oy < nr->out_h; oy++)
        for (int ox = 0; ox < nr->out_w; ox++) {
            int rx = nr->left + ox, ry = nr->top + oy;
            uint8_t *o = dst + ((size_t)oy * nr->out_w + ox) * 3;
            int sx = rx >= 0 && rx < nr->resized_w ? xt[rx] : -1;
            int sy = ry >= 0 && ry < nr->resized_h ? yt[ry] : -1;
            if (sx < 0 || sy < 0)
                o[0] = o[1] = o[2] = 0;
            else
                memcpy(o, rgb + ((size_t)sy * w + sx) * 3, 3);
        }
    free(xt);
    free(yt);
    return ok;
}

/* ---- 8-bit resampler on two 3-channel images (RGBa + alpha, CMY + K) --------------------- */

/* The same resize with the axes exchanged (for Pillow 13's vertical-first order). */
static native_resize swapped(const native_resize *nr)
{
    native_resize t = *nr;
    t.resized_w = nr->resized_h;
    t.resized_h = nr->resized_w;
    t.top = nr->left;
    t.left = nr->top;
    t.out_w = nr->out_h;
    t.out_h = nr->out_w;
    return t;
}

static bool vertical_first(const native_resize *nr, int w, int h)
{
    return reference_vertical_first(REF_OPEN_CLIP, w, h, nr->resized_w, nr->resized_h);
}

static bool resize_pair_hfirst(const uint8_t *a, const uint8_t *b, int w, int h,
                               const native_resize *nr, uint8_t *out_a, uint8_t *out_b);

/* Resizes a and b (w x h, packed 3 bytes per pixel, RESAMPLE_SIMD_PAD readable after) with
 * Pillow's 8-bit resampler into the out window; out_a / out_b hold out_w*out_h*3. */
static bool resize_pair(const uint8_t *a, const uint8_t *b, int w, int h,
                        const native_resize *nr, uint8_t *out_a, uint8_t *out_b)
{
    if (!vertical_first(nr, w, h))
        return resize_pair_hfirst(a, b, w, h, nr, out_a, out_b);
    size_t n = (size_t)w * h * 3, m = (size_t)nr->out_w * nr->out_h * 3;
    uint8_t *ta = malloc(n + RESAMPLE_SIMD_PAD), *tb = malloc(n + RESAMPLE_SIMD_PAD);
    uint8_t *oa = malloc(m), *ob = malloc(m);
    native_resize t = swapped(nr);
    bool ok = ta && tb && oa && ob;
    if (ok) {
        transpose_elems(a, w, h, 3, ta);
        transpose_elems(b, w, h, 3, tb);
        ok = resize_pair_hfirst(ta, tb, h, w, &t, oa, ob);
    }
    if (ok) {
        transpose_elems(oa, t.out_w, t.out_h, 3, out_a);
        transpose_elems(ob, t.out_w, t.out_h, 3, out_b);
    }
    free(ta);
    free(tb);
    free(oa);
    free(ob);
    return ok;
}

static bool resize_pair_hfirst(const uint8_t *a, const uint8_t *b, int w, int h,
                               const native_resize *nr, uint8_t *out_a, uint8_t *out_b)
{
    resize_plan plan;
    if (!resize_plan_build(&plan, w, h, nr->resized_w, nr->resized_h, nr->top, nr->left,
                           nr->out_w, nr->out_h, (resample_filter)nr->filter))
        return false;
    uint8_t *tmp = malloc(resize_plan_scratch_bytes(&plan) + RESAMPLE_SIMD_PAD);
    if (tmp) {
        preprocess_image_cpu_u8(&plan, a, (size_t)w * 3, out_a, tmp);
        preprocess_image_cpu_u8(&plan, b, (size_t)w * 3, out_b, tmp);
    }
    free(tmp);
    resize_plan_free(&plan);
    return tmp != NULL;
}

/* px: w*h pixels of 4 bytes (RGBA, or Pillow's CMYK). */
static bool resize_four(const uint8_t *px, int w, int h, bool rgba, const native_resize *nr,
                        uint8_t *dst)
{
    size_t n = (size_t)w * h, m = (size_t)nr->out_w * nr->out_h;
    uint8_t *a = malloc(n * 3 + RESAMPLE_SIMD_PAD), *b = malloc(n * 3 + RESAMPLE_SIMD_PAD);
    uint8_t *ob = malloc(m * 3);
    bool ok = a && b && ob;
    for (size_t i = 0; ok && i < n; i++) {
        const uint8_t *p = px + 4 * i;
        if (rgba) { /* RGBA -> RGBa (Convert.c rgbA2rgba) */
            a[3 * i] = muldiv255(p[0], p[3]);
            a[3 * i + 1] = muldiv255(p[1], p[3]);
            a[3 * i + 2] = muldiv255(p[2], p[3]);
        } else {
            memcpy(a + 3 * i, p, 3);
        }
        b[3 * i] = b[3 * i + 1] = b[3 * i + 2] = p[3];
    }
    ok = ok && resize_pair(a, b, w, h, nr, dst, ob);
    for (size_t i = 0; ok && i < m; i++) {
        uint8_t *o = dst + 3 * i;
        unsigned k = ob[3 * i];
        if (!rgba) {
            jh_cmyk_to_rgb(o, o[0], o[1], o[2], k);
        } else if (k != 0 && k != 255) { /* RGBa -> RGBA (rgba2rgbA), then the alpha dropped */
            for (int c = 0; c < 3; c++)
                o[c] = clip8((int)((255 * (unsigned)o[c]) / k));
        }
    }
    free(a);
    free(b);
    free(ob);
    return ok;
}

/* ---- "I;16": the 16-bit resampler ---------------------------------------------------------- */

static int round_up(double f) { return (int)(f >= 0.0 ? f + 0.5F : f - 0.5F); }
static int clip16(int v) { return v <= 0 ? 0 : v < 65536 ? v : 65535; }

static bool resize_gray16_hfirst(const uint8_t *g, int w, int h, const native_resize *nr,
                                 uint8_t *dst);

/* g: w*h big-endian 16-bit samples as stored. */
static bool resize_gray16(const uint8_t *g, int w, int h, const native_resize *nr, uint8_t *dst)
{
    if (!vertical_first(nr, w, h))
        return resize_gray16_hfirst(g, w, h, nr, dst);
    native_resize t = swapped(nr);
    uint8_t *tg = malloc((size_t)w * h * 2), *td = malloc((size_t)nr->out_w * nr->out_h * 3);
    bool ok = tg && td;
    if (ok) {
        transpose_elems(g, w, h, 2, tg);
        ok = resize_gray16_hfirst(tg, h, w, &t, td);
    }
    if (ok)
        transpose_elems(td, t.out_w, t.out_h, 3, dst);
    free(tg);
    free(td);
    return ok;
}

static bool resize_gray16_hfirst(const uint8_t *g, int w, int h, const native_resize *nr,
                                 uint8_t *dst)
{
    resample_filter f = (resample_filter)nr->filter;
    int rw = nr->resized_w, rh = nr->resized_h;
    int x0 = nr->left > 0 ? nr->left : 0, x1 = nr->left + nr->out_w < rw ? nr->left + nr->out_w : rw;
    int y0 = nr->top > 0 ? nr->top : 0, y1 = nr->top + nr->out_h < rh ? nr->top + nr->out_h : rh;
    memset(dst, 0, (size_t)nr->out_w * nr->out_h * 3);
    if (x0 >= x1 || y0 >= y1)
        return true;
    bool need_h = rw != w, need_v = rh != h;
    int kx = axis_pillow_ksize(w, rw, f), ky = axis_pillow_ksize(h, rh, f);
    int cols = x1 - x0;
    int *hlo = malloc(sizeof(int) * (size_t)cols), *htaps = malloc(sizeof(int) * (size_t)cols);
    double *hw = malloc(sizeof(double) * (size_t)cols * kx), *vw = malloc(sizeof(double) * ky);
    /* horizontal pass over every source row (a row outside the vertical support costs only
       time, and images of this kind are rare) */
    uint16_t *mid = malloc(sizeof(uint16_t) * (size_t)cols * h);
    bool ok = hlo && htaps && hw && vw && mid;
    for (int c = 0; ok && c < cols; c++)
        htaps[c] = need_h ? axis_pillow_weights(w, rw, x0 + c, f, &hlo[c], hw + (size_t)c * kx) : 1;
    for (int y = 0; ok && y < h; y++) {
        const uint8_t *row = g + (size_t)y * w * 2;
        for (int c = 0; c < cols; c++) {
            if (!need_h) {
                int x = x0 + c;
                mid[(size_t)y * cols + c] = (uint16_t)(row[2 * x] << 8 | row[2 * x + 1]);
                continue;
            }
            const double *k = hw + (size_t)c * kx;
            double ss = 0.0;
            for (int t = 0; t < htaps[c]; t++) {
                int x = hlo[c] + t;
                ss += (row[2 * x + 1] + (row[2 * x] << 8)) * k[t];
            }
            mid[(size_t)y * cols + c] = (uint16_t)clip16(round_up(ss));
        }
    }
    for (int ry = y0; ok && ry < y1; ry++) {
        int lo = ry, taps = 1;
        if (need_v)
            taps = axis_pillow_weights(h, rh, ry, f, &lo, vw);
        for (int c = 0; c < cols; c++) {
            int v;
            if (!need_v) {
                v = mid[(size_t)ry * cols + c];
            } else {
                double ss = 0.0;
                for (int t = 0; t < taps; t++)
                    ss += mid[(size_t)(lo + t) * cols + c] * vw[t];
                v = clip16(round_up(ss));
            }
            uint8_t *o = dst + ((size_t)(ry - nr->top) * nr->out_w + (x0 + c - nr->left)) * 3;
            o[0] = o[1] = o[2] = (uint8_t)(v < 256 ? v : 255); /* Convert.c I16_RGB */
        }
    }
    free(hlo);
    free(htaps);
    free(hw);
    free(vw);
    free(mid);
    return ok;
}

/* ---- entry ---------------------------------------------------------------------------------- */

bool native_decode_resize(const uint8_t *data, size_t len, const image_header *hdr,
                          const decode_options *opt, uint8_t *dst, size_t dst_size,
                          cp_error *err)
{
    const native_resize *nr = &opt->native;
    if (dst_size < (size_t)nr->out_w * nr->out_h * 3)
        return cp_fail(err, CP_ERR_INTERNAL, "native resize: output buffer too small");
    decode_options plain = {.apply_orientation = opt->apply_orientation,
                            .max_scans = opt->max_scans};
    int w = hdr->width, h = hdr->height;
    int o = opt->apply_orientation ? hdr->orientation : 1;
    if (hdr->native == NATIVE_AS_RGB)
        return cp_fail(err, CP_ERR_INTERNAL, "native resize asked for an RGB-like image");
    if (hdr->native == NATIVE_NEAREST) { /* palette lookup commutes with NEAREST: RGB first */
        int ow, oh;
        decode_output_size(hdr, &plain, &ow, &oh);
        uint8_t *rgb = malloc((size_t)ow * oh * 3 + RESAMPLE_SIMD_PAD);
        if (!rgb)
            return cp_fail(err, CP_ERR_OVERLOADED, "out of memory for a %dx%d image", ow, oh);
        bool ok = decode_rgb(data, len, hdr, &plain, rgb, (size_t)ow * oh * 3, err);
        if (ok && !resize_nearest(rgb, ow, oh, nr, dst))
            ok = cp_fail(err, CP_ERR_OVERLOADED, "out of memory for resampling");
        free(rgb);
        return ok;
    }
    int bpp = hdr->native == NATIVE_GRAY16 ? 2 : 4;
    uint8_t *px = malloc((size_t)w * h * bpp + RESAMPLE_SIMD_PAD);
    if (!px)
        return cp_fail(err, CP_ERR_OVERLOADED, "out of memory for a %dx%d image", w, h);
    bool ok;
    if (hdr->native == NATIVE_CMYK)
        ok = decode_jpeg_cmyk(data, len, hdr, opt->max_scans, px, err);
    else if (hdr->native == NATIVE_GRAY16)
        ok = decode_png_native(data, len, hdr, PNG_NATIVE_GRAY16, px, err);
    else if (hdr->format == IMAGE_FORMAT_WEBP)
        ok = decode_webp_rgba(data, len, hdr, px, err);
    else if (hdr->format == IMAGE_FORMAT_BMP)
        ok = decode_bmp_rgba(data, len, hdr, px, err);
    else if (hdr->format == IMAGE_FORMAT_TIFF)
        ok = decode_tiff_rgba(data, len, hdr, px, err);
    else if (hdr->format == IMAGE_FORMAT_AVIF)
        ok = decode_avif_rgba(data, len, hdr, px, err);
    else if (hdr->format == IMAGE_FORMAT_HEIF)
        ok = decode_heif_rgba(data, len, hdr, px, err);
    else
        ok = decode_png_native(data, len, hdr, PNG_NATIVE_RGBA, px, err);
    if (ok && o != 1) {
        uint8_t *t = orient(px, w, h, bpp, o);
        free(px);
        px = t;
        if (o >= 5) {
            int s = w;
            w = h;
            h = s;
        }
        if (!px)
            ok = cp_fail(err, CP_ERR_OVERLOADED, "out of memory for orientation");
    }
    if (ok) {
        ok = hdr->native == NATIVE_GRAY16
                 ? resize_gray16(px, w, h, nr, dst)
                 : resize_four(px, w, h, hdr->native == NATIVE_RGBA, nr, dst);
        if (!ok)
            cp_fail(err, CP_ERR_OVERLOADED, "out of memory for resampling");
    }
    free(px);
    return ok;
}
