/* decode_bmp.c — Windows BMP, read by hand (there is no library worth linking), reproducing
 * Pillow 11.3's BmpImagePlugin followed by convert("RGB"):
 *   - headers of 12 (OS/2 v1: 16-bit sizes, 3-byte palette entries) and 40/52/56/64/108/124
 *     bytes; a height whose top byte is 0xFF means top-down rows (Pillow's test), otherwise
 *     bottom-up; rows padded to 4 bytes;
 *   - 1/4/8-bit palettes (the palette follows the header; `colors` entries, 2^bits when 0),
 *     indices past the palette are black; 16-bit 5-5-5 (and 5-6-5 with
 *     BITFIELDS) scaled as v * 255 / 31 (or / 63); 24-bit BGR; 32-bit BGRX, or the byte
 *     layouts Pillow accepts for BITFIELDS (alpha, if any, dropped by convert("RGB"), or
 *     composited over white for alpha_onto_white);
 *   - the pixel offset from the file header, corrected like Pillow when it points at the
 *     palette instead of the pixels.
 * Refused (415), as Pillow refuses them or decodes them wrongly: RLE, JPEG/PNG-in-BMP, other
 * bitfield layouts, other depths, palettes over 256 entries, and grey palettes on depths
 * where Pillow would read the pixels with the wrong bit width. */
#include <string.h>

#include "alpha.h"
#include "decode_internal.h"

typedef struct {
    int width, height;
    bool top_down;
    int bits;
    size_t offset, stride;
    size_t palette_at;   /* where the palette starts */
    int entry;           /* palette entry size, 3 or 4 */
    int colors;
    int r, g, b, a;      /* 24/32-bit: byte index of each channel; a = -1: no alpha */
    bool grey;           /* a grey palette: Pillow's mode "1" (2 colours) or "L" */
    bool rgb565;         /* 16-bit: 5-6-5 instead of 5-5-5 */
} bmp_info;

static uint32_t u32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

bool decode_bmp_is(const uint8_t *data, size_t len)
{
    if (len < 18 || data[0] != 'B' || data[1] != 'M')
        return false;
    uint32_t h = u32(data + 14);
    return h == 12 || h == 40 || h == 52 || h == 56 || h == 64 || h == 108 || h == 124;
}

static bool unsupported(cp_error *err, const char *what)
{
    return cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT, "bmp: %s", what);
}

/* The 32-bit BITFIELDS layouts Pillow accepts (r, g, b, a masks) -> byte of R, G, B. */
static bool layout32(uint32_t rm, uint32_t gm, uint32_t bm, uint32_t am, bmp_info *bi)
{
    static const uint32_t ok[][4] = {
        {0xFF0000, 0xFF00, 0xFF, 0},        {0xFF000000, 0xFF0000, 0xFF00, 0},
        {0xFF000000, 0xFF00, 0xFF, 0},      {0xFF000000, 0xFF0000, 0xFF00, 0xFF},
        {0xFF, 0xFF00, 0xFF0000, 0xFF000000}, {0xFF0000, 0xFF00, 0xFF, 0xFF000000},
        {0xFF000000, 0xFF00, 0xFF, 0xFF0000},
    };
    if (!rm && !gm && !bm && !am) { /* Pillow reads all-zero masks as BGRA */
        bi->b = 0, bi->g = 1, bi->r = 2, bi->a = 3;
        return true;
    }
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (ok[i][0] == rm && ok[i][1] == gm && ok[i][2] == bm && ok[i][3] == am) {
            bi->r = __builtin_ctz(rm) / 8;
            bi->g = __builtin_ctz(gm) / 8;
            bi->b = __builtin_ctz(bm) / 8;
            bi->a = am ? __builtin_ctz(am) / 8 : -1;
            return true;
        }
    }
    return false;
}

static bool parse(const uint8_t *data, size_t len, bmp_info *bi, cp_error *err)
{
    memset(bi, 0, sizeof *bi);
    if (!decode_bmp_is(data, len))
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "bmp: not a BMP header");
    uint32_t hsize = u32(data + 14);
    if (len < 14 + (size_t)hsize)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "bmp: image file is truncated (header)");
    const uint8_t *h = data + 18; /* the header after its size field */
    uint32_t compression = 0, colors = 0;
    size_t after = 14 + hsize; /* where masks (40-byte BITFIELDS) or the palette start */
    if (hsize == 12) {
        bi->width = u16(h);
        bi->height = u16(h + 2);
        bi->bits = u16(h + 6);
        bi->entry = 3;
    } else {
        bi->top_down = h[7] == 0xFF;
        bi->width = (int32_t)u32(h);
        uint32_t hh = u32(h + 4);
        bi->height = bi->top_down ? (int)(0u - hh) : (int32_t)hh;
        bi->bits = u16(h + 10);
        compression = u32(h + 12);
        colors = u32(h + 28);
        bi->entry = 4;
    }
    if (bi->width <= 0 || bi->height <= 0)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "bmp: bad size %dx%d", bi->width, bi->height);
    if (bi->width > DECODE_MAX_SIDE || bi->height > DECODE_MAX_SIDE)
        return cp_fail(err, CP_ERR_IMAGE_TOO_LARGE, "bmp: %dx%d exceeds %d pixels per side",
                       bi->width, bi->height, DECODE_MAX_SIDE);
    int bits = bi->bits;
    if (bits != 1 && bits != 4 && bits != 8 && bits != 16 && bits != 24 && bits != 32)
        return unsupported(err, "unsupported pixel depth");
    bi->r = 2, bi->g = 1, bi->b = 0, bi->a = -1; /* BGR(X) */
    if (compression == 3) { /* BITFIELDS */
        uint32_t m[4] = {0};
        const uint8_t *mp;
        if (hsize - 4 >= 48) {
            mp = h + 36;
            for (int i = 0; i < (hsize - 4 >= 52 ? 4 : 3); i++)
                m[i] = u32(mp + 4 * i);
        } else {
            if (len < after + 12)
                return cp_fail(err, CP_ERR_INVALID_IMAGE, "bmp: image file is truncated");
            for (int i = 0; i < 3; i++)
                m[i] = u32(data + after + 4 * i);
            after += 12;
        }
        if (bits == 32 && layout32(m[0], m[1], m[2], m[3], bi))
            ;
        else if (bits == 24 && m[0] == 0xFF0000 && m[1] == 0xFF00 && m[2] == 0xFF)
            ;
        else if (bits == 16 && m[0] == 0xF800 && m[1] == 0x7E0 && m[2] == 0x1F)
            bi->rgb565 = true;
        else if (!(bits == 16 && m[0] == 0x7C00 && m[1] == 0x3E0 && m[2] == 0x1F))
            return unsupported(err, "unsupported bitfields layout");
    } else if (compression == 1 || compression == 2) {
        return unsupported(err, "RLE compression is not supported");
    } else if (compression != 0) {
        return unsupported(err, "unsupported compression (JPEG or PNG inside BMP)");
    }
    bi->colors = colors ? (int)(colors > 65536 ? 65537 : colors) : 1 << (bits > 16 ? 16 : bits);
    size_t offset = u32(data + 10);
    if (offset == 14 + (size_t)hsize && bits <= 8)
        offset += 4 * (size_t)bi->colors; /* Pillow's fix for offsets at the palette */
    bi->palette_at = after;
    if (bits <= 8) {
        if (bi->colors > 256)
            return unsupported(err, "palette over 256 entries");
        size_t pal_end = after + (size_t)bi->entry * (size_t)bi->colors;
        if (pal_end > len)
            return cp_fail(err, CP_ERR_INVALID_IMAGE, "bmp: image file is truncated (palette)");
        /* Pillow drops a grey palette and reads the pixels as "1" / "L": right only for
         * 1-bit (black, white) and 8-bit (0..colors-1) */
        bool grey = true;
        for (int i = 0; i < bi->colors && grey; i++) {
            int v = bi->colors == 2 ? (i ? 255 : 0) : i;
            const uint8_t *e = data + after + (size_t)bi->entry * (size_t)i;
            grey = e[0] == v && e[1] == v && e[2] == v;
        }
        if (grey && ((bi->colors == 2 && bits != 1) || (bi->colors != 2 && bits != 8)))
            return unsupported(err, "grey palette on a depth Pillow misreads");
        bi->grey = grey;
        if (!offset)
            offset = pal_end;
    } else if (!offset) {
        offset = after;
    }
    bi->offset = offset;
    bi->stride = (((size_t)bi->width * (size_t)bits + 31) >> 3) & ~(size_t)3;
    if (offset > len || bi->stride * (size_t)bi->height > len - offset)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "bmp: image file is truncated");
    return true;
}

bool decode_bmp_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err)
{
    hdr->format = IMAGE_FORMAT_BMP;
    bmp_info bi;
    if (!parse(data, len, &bi, err))
        return false;
    hdr->width = bi.width;
    hdr->height = bi.height;
    hdr->has_alpha = bi.a >= 0;
    /* Pillow's mode: "P" and "1" resize with NEAREST, "RGBA" premultiplied, "L"/"RGB" as RGB */
    hdr->native = bi.bits <= 8 ? (bi.grey && bi.colors != 2 ? NATIVE_AS_RGB : NATIVE_NEAREST)
                  : bi.a >= 0  ? NATIVE_RGBA
                               : NATIVE_AS_RGB;
    return true;
}

static uint8_t scale5(unsigned v) { return (uint8_t)(v * 255 / 31); }
static uint8_t scale6(unsigned v) { return (uint8_t)(v * 255 / 63); }

typedef enum { OUT_RGB = 0, OUT_RGB_WHITE, OUT_RGBA } bmp_out;

static bool bmp_decode(const uint8_t *data, size_t len, const image_header *hdr, bmp_out out,
                       uint8_t *dst, cp_error *err)
{
    bmp_info bi;
    if (!parse(data, len, &bi, err))
        return false;
    if (bi.width != hdr->width || bi.height != hdr->height)
        return cp_fail(err, CP_ERR_INTERNAL, "bmp: header does not match the image data");
    uint8_t palette[256][3] = {{0}}; /* Pillow: black past the file's palette */
    if (bi.bits <= 8) {
        for (int i = 0; i < bi.colors; i++) {
            const uint8_t *e = data + bi.palette_at + (size_t)bi.entry * (size_t)i;
            palette[i][0] = e[2];
            palette[i][1] = e[1];
            palette[i][2] = e[0];
        }
    }
    size_t w = (size_t)bi.width;
    size_t px = out == OUT_RGBA ? 4 : 3;
    for (size_t y = 0; y < (size_t)bi.height; y++) {
        size_t file_row = bi.top_down ? y : (size_t)bi.height - 1 - y;
        const uint8_t *in = data + bi.offset + file_row * bi.stride;
        uint8_t *o = dst + y * w * px;
        for (size_t x = 0; x < w; x++, o += px) {
            if (out == OUT_RGBA)
                o[3] = 255; /* (overwritten below for an alpha bitfield) */
            switch (bi.bits) {
            case 1: memcpy(o, palette[(in[x >> 3] >> (7 - (x & 7))) & 1], 3); break;
            case 4: memcpy(o, palette[(in[x >> 1] >> ((x & 1) ? 0 : 4)) & 15], 3); break;
            case 8: memcpy(o, palette[in[x]], 3); break;
            case 16: {
                unsigned v = u16(in + 2 * x);
                if (bi.rgb565) {
                    o[0] = scale5(v >> 11 & 31), o[1] = scale6(v >> 5 & 63), o[2] = scale5(v & 31);
                } else {
                    o[0] = scale5(v >> 10 & 31), o[1] = scale5(v >> 5 & 31), o[2] = scale5(v & 31);
                }
                break;
            }
            default: {
                const uint8_t *p = in + x * (size_t)(bi.bits / 8);
                o[0] = p[bi.r], o[1] = p[bi.g], o[2] = p[bi.b];
                if (bi.a >= 0 && out == OUT_RGBA) {
                    o[3] = p[bi.a];
                } else if (bi.a >= 0 && out == OUT_RGB_WHITE) {
                    unsigned a = p[bi.a];
                    o[0] = alpha_over_white(o[0], a), o[1] = alpha_over_white(o[1], a),
                    o[2] = alpha_over_white(o[2], a);
                }
                break;
            }
            }
        }
    }
    return true;
}

bool decode_bmp_pixels(const uint8_t *data, size_t len, const image_header *hdr,
                       bool alpha_onto_white, uint8_t *dst, cp_error *err)
{
    return bmp_decode(data, len, hdr, alpha_onto_white ? OUT_RGB_WHITE : OUT_RGB, dst, err);
}

bool decode_bmp_rgba(const uint8_t *data, size_t len, const image_header *hdr, uint8_t *dst,
                     cp_error *err)
{
    return bmp_decode(data, len, hdr, OUT_RGBA, dst, err);
}
