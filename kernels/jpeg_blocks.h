/* jpeg_blocks.h — the GPU half of the hybrid JPEG decode: everything libjpeg-turbo 2.1.5 does
 * after entropy decoding with its default settings (ISLOW IDCT, fancy upsampling, no block
 * smoothing), as integer per-block and per-pixel bodies. The CPU entropy-decodes
 * (jpeg_read_coefficients, server/jpeg_coeffs.c); these bodies turn the coefficient blocks into
 * the bytes libjpeg's own decode would produce. Facts and constants:
 * ../shared/docs/hybrid-decode.md (sections 2-3), libjpeg-turbo jidctint.c, jdsample.c,
 * jdcolor.c. KERNEL_FN: the CUDA kernels (jpeg_decode.cu) and the host twin (jpeg_decode_host.c)
 * run the same code, and the CPU tests compare the twin with libjpeg byte for byte. */
#ifndef CLIPPREP_JPEG_BLOCKS_H
#define CLIPPREP_JPEG_BLOCKS_H

#include <stdbool.h>
#include <stdint.h>

#include "kernel_fn.h"

enum { JH_MAX_COMPONENTS = 4 };

/* libjpeg's upsampling method per component (jdsample.c jinit_upsampler) */
enum { JH_UP_FULL = 0, JH_UP_H2V1_FANCY, JH_UP_H1V2_FANCY, JH_UP_H2V2_FANCY, JH_UP_BOX };

/* source colour space of the file; the output is what Pillow's decode + convert("RGB") gives */
enum { JH_COLOR_GRAY = 0, JH_COLOR_YCC, JH_COLOR_RGB, JH_COLOR_CMYK, JH_COLOR_YCCK };

/* One component of one image: the IDCT's unit of work (a launch has one CTA row per plane). */
typedef struct {
    uint64_t coef_off;          /* int16 index of block (0,0); blocks are 64 int16, natural order,
                                   width_in_blocks per block row, no MCU padding */
    uint64_t plane_off;         /* byte offset of sample (0,0) in the plane buffer */
    int32_t wb, hb;             /* width_in_blocks, height_in_blocks; the plane is wb*8 wide */
    int32_t image;              /* index of its jh_image (for the guard flag) */
    int16_t quant[64];          /* natural order, cast to int16 as libjpeg's ISLOW table is */
} jh_plane;

/* One image: how its planes become RGB (upsampling, colour, EXIF orientation). */
typedef struct {
    int32_t width, height;      /* as stored */
    int32_t ncomp, color;       /* JH_COLOR_* */
    int32_t orientation;        /* 1..8, applied while writing (Pillow's exif_transpose) */
    int32_t plane[JH_MAX_COMPONENTS];  /* index into the jh_plane array */
    int32_t dw[JH_MAX_COMPONENTS], dh[JH_MAX_COMPONENTS]; /* downsampled_width/height */
    int32_t hr[JH_MAX_COMPONENTS], vr[JH_MAX_COMPONENTS]; /* max_h/h, max_v/v */
    int32_t method[JH_MAX_COMPONENTS]; /* JH_UP_* */
    uint64_t rgb_off;           /* packed RGB destination (after orientation), 3 bytes/pixel */
} jh_image;

/* ---- IDCT (jidctint.c jpeg_idct_islow; constants are FIX(x) at CONST_BITS = 13) ---------- */

/* Guard (hybrid-decode.md 2): inside it, int32 never overflows and libjpeg's C, SSE2 and AVX2
 * IDCTs agree, so "libjpeg's output" is well defined. Outside: CPU re-decode. */
#define JH_GUARD_IN 12680
#define JH_GUARD_OUT 511

/* One 1-D 8-point LLM pass (even part, odd part, butterflies), as jpeg_idct_islow writes it;
 * the caller descales. Inside the guard no partial sum leaves int32. */
KERNEL_FN void jh_idct_1d(const int32_t in[8], int32_t out[8])
{
    int32_t z2 = in[2], z3 = in[6];
    int32_t z1 = (z2 + z3) * 4433;
    int32_t tmp2 = z1 + z3 * -15137;
    int32_t tmp3 = z1 + z2 * 6270;
    int32_t tmp0 = (in[0] + in[4]) * 8192; /* << CONST_BITS, written as a multiply: no UB */
    int32_t tmp1 = (in[0] - in[4]) * 8192;
    int32_t tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3;
    int32_t tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;

    int32_t o0 = in[7], o1 = in[5], o2 = in[3], o3 = in[1];
    int32_t y1 = o0 + o3, y2 = o1 + o2, y3 = o0 + o2, y4 = o1 + o3;
    int32_t z5 = (y3 + y4) * 9633;
    o0 *= 2446;
    o1 *= 16819;
    o2 *= 25172;
    o3 *= 12299;
    y1 *= -7373;
    y2 *= -20995;
    y3 = y3 * -16069 + z5;
    y4 = y4 * -3196 + z5;
    o0 += y1 + y3;
    o1 += y2 + y4;
    o2 += y2 + y3;
    o3 += y1 + y4;

    out[0] = tmp10 + o3;
    out[7] = tmp10 - o3;
    out[1] = tmp11 + o2;
    out[6] = tmp11 - o2;
    out[2] = tmp12 + o1;
    out[5] = tmp12 - o1;
    out[3] = tmp13 + o0;
    out[4] = tmp13 - o0;
}

KERNEL_FN int32_t jh_abs(int32_t v) { return v < 0 ? -v : v; }

/* Dequantises and inverse-transforms one block into 8 rows of out (stride bytes apart).
 * Returns false (and writes nothing) when the guard trips. */
KERNEL_FN bool jh_idct_block(const int16_t *coef, const int16_t *quant, uint8_t *out,
                             int64_t stride)
{
    int32_t ws[64];
    for (int i = 0; i < 64; i++) {
        int32_t d = (int32_t)coef[i] * quant[i];
        if (jh_abs(d) > JH_GUARD_IN)
            return false;
        ws[i] = d;
    }
    int32_t v[8], r[8];
    for (int c = 0; c < 8; c++) { /* pass 1: columns, descaled by CONST_BITS - PASS1_BITS */
        for (int k = 0; k < 8; k++)
            v[k] = ws[k * 8 + c];
        jh_idct_1d(v, r);
        for (int k = 0; k < 8; k++) {
            int32_t p = (r[k] + (1 << 10)) >> 11;
            if (jh_abs(p) > JH_GUARD_IN)
                return false;
            ws[k * 8 + c] = p;
        }
    }
    uint8_t rows[64];
    for (int k = 0; k < 8; k++) { /* pass 2: rows, descaled by CONST_BITS + PASS1_BITS + 3 */
        jh_idct_1d(ws + k * 8, r);
        for (int c = 0; c < 8; c++) {
            /* in int64: near the guard's edge r + 2^17 could pass INT32_MAX */
            int32_t x = (int32_t)(((int64_t)r[c] + (1 << 17)) >> 18);
            if (jh_abs(x) > JH_GUARD_OUT)
                return false;
            x += 128;
            rows[k * 8 + c] = (uint8_t)(x < 0 ? 0 : x > 255 ? 255 : x);
        }
    }
    for (int k = 0; k < 8; k++)
        for (int c = 0; c < 8; c++)
            out[k * stride + c] = rows[k * 8 + c];
    return true;
}

/* Block b (row-major in the plane) of plane p. False when the guard trips. */
KERNEL_FN bool jh_idct_thread(const jh_plane *p, const int16_t *coefs, uint8_t *planes, int64_t b)
{
    int64_t by = b / p->wb, bx = b % p->wb;
    int64_t stride = (int64_t)p->wb * 8;
    return jh_idct_block(coefs + p->coef_off + (uint64_t)b * 64, p->quant,
                         planes + p->plane_off + by * 8 * stride + bx * 8, stride);
}

/* ---- upsampling (jdsample.c) ---------------------------------------------------------- */

KERNEL_FN int jh_clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Component c of image m at full-resolution pixel (x, y). Edges use the real (downsampled)
 * samples only, as libjpeg's context rows and edge columns do. */
KERNEL_FN int jh_sample(const jh_image *m, const jh_plane *planes, const uint8_t *buf, int c,
                        int x, int y)
{
    const jh_plane *p = &planes[m->plane[c]];
    const uint8_t *s = buf + p->plane_off;
    const int64_t st = (int64_t)p->wb * 8;
    const int dw = m->dw[c], dh = m->dh[c];
    switch (m->method[c]) {
    case JH_UP_FULL: return s[y * st + x];
    case JH_UP_H2V1_FANCY: {
        int cx = x >> 1, nb = jh_clampi((x & 1) ? cx + 1 : cx - 1, 0, dw - 1);
        const uint8_t *row = s + y * st;
        return (3 * row[cx] + row[nb] + 1 + (x & 1)) >> 2;
    }
    case JH_UP_H1V2_FANCY: {
        int cy = y >> 1, nb = jh_clampi((y & 1) ? cy + 1 : cy - 1, 0, dh - 1);
        return (3 * s[cy * st + x] + s[nb * st + x] + 1 + (y & 1)) >> 2;
    }
    case JH_UP_H2V2_FANCY: {
        int cx = x >> 1, cy = y >> 1;
        int nx = jh_clampi((x & 1) ? cx + 1 : cx - 1, 0, dw - 1);
        int ny = jh_clampi((y & 1) ? cy + 1 : cy - 1, 0, dh - 1);
        const uint8_t *r0 = s + cy * st, *r1 = s + ny * st;
        int here = 3 * r0[cx] + r1[cx], next = 3 * r0[nx] + r1[nx];
        return (3 * here + next + 8 - (x & 1)) >> 4;
    }
    default: return s[(y / m->vr[c]) * st + x / m->hr[c]]; /* box (int_upsample & co.) */
    }
}

/* ---- colour (jdcolor.c; tables are (FIX(k) * x + ONE_HALF) >> 16 at SCALEBITS = 16) ------- */

KERNEL_FN uint8_t jh_clamp255(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

KERNEL_FN void jh_ycc_to_rgb(int y, int cb, int cr, int rgb[3])
{
    cb -= 128;
    cr -= 128;
    rgb[0] = y + ((91881 * cr + 32768) >> 16);
    rgb[1] = y + ((-22554 * cb - 46802 * cr + 32768) >> 16);
    rgb[2] = y + ((116130 * cb + 32768) >> 16);
}

/* What libjpeg hands out at pixel (x, y) of the stored image with out_color_space GRAYSCALE /
 * RGB / CMYK (1, 3 or 4 components, the last for CMYK and YCCK files). Returns the count. */
KERNEL_FN int jh_pixel_samples(const jh_image *m, const jh_plane *planes, const uint8_t *buf,
                               int x, int y, uint8_t out[4])
{
    int v[JH_MAX_COMPONENTS];
    for (int c = 0; c < m->ncomp; c++)
        v[c] = jh_sample(m, planes, buf, c, x, y);
    switch (m->color) {
    case JH_COLOR_GRAY: out[0] = (uint8_t)v[0]; return 1;
    case JH_COLOR_RGB:
    case JH_COLOR_CMYK:
        for (int c = 0; c < m->ncomp; c++)
            out[c] = (uint8_t)v[c];
        return m->ncomp;
    case JH_COLOR_YCC: {
        int rgb[3];
        jh_ycc_to_rgb(v[0], v[1], v[2], rgb);
        for (int c = 0; c < 3; c++)
            out[c] = jh_clamp255(rgb[c]);
        return 3;
    }
    default: { /* YCCK -> CMYK: 255 - the YCbCr->RGB result, K unchanged */
        int rgb[3];
        jh_ycc_to_rgb(v[0], v[1], v[2], rgb);
        for (int c = 0; c < 3; c++)
            out[c] = jh_clamp255(255 - rgb[c]);
        out[3] = (uint8_t)v[3];
        return 4;
    }
    }
}

/* Pillow's CMYK -> RGB (Convert.c cmyk2rgb) for one pixel of Pillow's CMYK values. */
KERNEL_FN void jh_cmyk_to_rgb(uint8_t *out, unsigned c, unsigned m, unsigned y, unsigned k)
{
    int nk = 255 - (int)k;
    unsigned in[3] = {c, m, y};
    for (int i = 0; i < 3; i++) {
        int t = (int)in[i] * nk + 128;
        int v = nk - (((t >> 8) + t) >> 8);
        out[i] = jh_clamp255(v);
    }
}

/* Where stored pixel (x, y) lands after EXIF orientation o (see decode.c transpose_into). */
KERNEL_FN int64_t jh_oriented_index(int o, int w, int h, int x, int y)
{
    switch (o) {
    case 2: return (int64_t)y * w + (w - 1 - x);
    case 3: return (int64_t)(h - 1 - y) * w + (w - 1 - x);
    case 4: return (int64_t)(h - 1 - y) * w + x;
    case 5: case 6: case 7: case 8: { /* output is h wide */
        int dx = (o == 5 || o == 8) ? y : h - 1 - y;
        int dy = (o == 5 || o == 6) ? x : w - 1 - x;
        return (int64_t)dy * h + dx;
    }
    default: return (int64_t)y * w + x;
    }
}

KERNEL_FN int64_t jh_pixel_threads(const jh_image *m) { return (int64_t)m->width * m->height; }

/* Pixel t of image m as the pipeline needs it: RGB like Pillow's decode + convert("RGB")
 * (gray replicated; CMYK read as inverted "CMYK;I" then cmyk2rgb), EXIF-oriented, written to
 * rgb + m->rgb_off. */
KERNEL_FN void jh_pixel_thread(const jh_image *m, const jh_plane *planes, const uint8_t *buf,
                               uint8_t *rgb, int64_t t)
{
    int x = (int)(t % m->width), y = (int)(t / m->width);
    uint8_t s[4] = {0, 0, 0, 0};
    int n = jh_pixel_samples(m, planes, buf, x, y, s);
    uint8_t *o = rgb + m->rgb_off + jh_oriented_index(m->orientation, m->width, m->height, x, y) * 3;
    if (n == 1) {
        o[0] = o[1] = o[2] = s[0];
    } else if (n == 3) {
        o[0] = s[0];
        o[1] = s[1];
        o[2] = s[2];
    } else {
        jh_cmyk_to_rgb(o, 255u - s[0], 255u - s[1], 255u - s[2], 255u - s[3]);
    }
}

/* Host twin of the CUDA launches (jpeg_decode.cu): every block, then every pixel. Images with
 * a tripped guard get guard[image] = 1 (their RGB is then unspecified: decode them on the CPU).
 * The coefficient, plane and RGB buffers are laid out by the caller (jh_plane / jh_image). */
void jh_idct_host(const jh_plane *planes, int n_planes, const int16_t *coefs, uint8_t *plane_buf,
                  int32_t *guard);
void jh_pixels_host(const jh_image *imgs, int n_imgs, const jh_plane *planes,
                    const uint8_t *plane_buf, uint8_t *rgb);

#endif
