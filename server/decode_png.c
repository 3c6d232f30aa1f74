/* decode_png.c — PNG via libpng 1.6 (full API), converted like Pillow 11.3's PngImagePlugin +
 * convert("RGB"):
 *
 *   gray 1 bit   -> 0 / 255            gray 2 / 4 bit -> value * 85 / * 17
 *   gray 8       -> R=G=B              gray 16 (I;16) -> min(value, 255), NOT the high byte
 *   gray+alpha 8 -> R=G=B, alpha dropped
 *   gray+alpha 16, RGB 16, RGBA 16 -> high byte of each sample (alpha dropped)
 *   RGB/RGBA 8   -> alpha dropped (no compositing)
 *   palette 1/2/4/8 bit -> PLTE lookup; indices past the PLTE are black (as in Pillow);
 *                  tRNS ignored
 *   tRNS colour keys, gAMA/iCCP/sRGB/sBIT/bKGD: ignored (no colour management)
 * With alpha_onto_white (transformers 5: convert("RGBA") then alpha_composite on white):
 *   gray+alpha, RGBA -> composited (16 bit: high bytes, as Pillow's ;16B unpackers)
 *   palette + tRNS   -> each entry composited with its tRNS alpha (255 past the tRNS list)
 *   gray/RGB + tRNS  -> Pillow's colour key on the converted 8-bit pixel: equal to the key's
 *                       low bytes (Pillow masks each key value with 0xff) -> white
 *   Adam7 interlacing supported.
 *
 * libpng only strips 16->8 (high byte) and alpha channels and unpacks sub-byte pixels, so every
 * decoded row has at most 3 bytes per pixel; it is read straight into its dst row and widened
 * to RGB in place (back to front). No full-size temporary.
 *
 * Header (decode_png_header) is our own chunk walk, no decompression: IHDR, CRCs of all chunks
 * before the first IDAT (Pillow checks those; libpng is then told not to re-check CRCs, since
 * Pillow never checks the CRCs of IDAT and later chunks), and the orientation sources Pillow
 * consults — the last eXIf chunk or tEXt "exif" (anywhere, Pillow loads the whole file before
 * exif_transpose), else tEXt "Raw profile type exif" (hex), else XMP from a tEXt/iTXt
 * "XML:com.adobe.xmp" chunk. zTXt and compressed iTXt chunks are not inflated (no zlib here),
 * so orientation stored only in those is not seen.
 *
 * APNG: the default image (IDAT) is decoded. That is Pillow's frame 0 whether or not the IDAT
 * is part of the animation; a first fcTL that does not cover the whole canvas (not allowed by
 * the APNG spec) is refused as INVALID_IMAGE.
 *
 * Like Pillow (which stops its zlib decoder once all rows are in), anything that goes wrong
 * after the last row has been decoded (missing IEND, truncated CRC, trailing garbage) is
 * ignored. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "alpha.h"
#include "decode_internal.h"
#include "exif.h"

/* ---- header: chunk walk ---------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void crc_table_init(uint32_t table[256])
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[n] = c;
    }
}

static uint32_t crc32_calc(const uint32_t table[256], const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static bool chunk_type_ok(const uint8_t *t)
{
    for (int i = 0; i < 4; i++) {
        uint8_t c = t[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            return false;
    }
    return true;
}

static bool valid_depth(int depth, int ctype)
{
    switch (ctype) {
    case 0: return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case 3: return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case 2: case 4: case 6: return depth == 8 || depth == 16;
    default: return false;
    }
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Pillow: bytes.fromhex("".join(text.split("\n")[3:])) then the EXIF parser. */
static int raw_profile_orientation(const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (int lines = 0; lines < 3; lines++) {
        const uint8_t *nl = memchr(p + i, '\n', n - i);
        if (!nl)
            return EXIF_ORIENTATION_ABSENT;
        i = (size_t)(nl - p) + 1;
    }
    uint8_t *buf = malloc((n - i) / 2 + 1);
    if (!buf)
        return EXIF_ORIENTATION_ABSENT;
    size_t out = 0;
    int result = EXIF_ORIENTATION_ABSENT;
    while (i < n) {
        uint8_t c = p[i];
        if (c == '\n') { /* the newlines were removed by join() */
            i++;
            continue;
        }
        if (is_space(c)) {
            i++;
            continue;
        }
        /* a pair may not contain whitespace, but may be split by a removed newline */
        int hi = hexval(c);
        size_t j = i + 1;
        while (j < n && p[j] == '\n')
            j++;
        if (hi < 0 || j >= n || hexval(p[j]) < 0)
            goto done; /* ValueError in Pillow: no usable EXIF */
        buf[out++] = (uint8_t)(hi * 16 + hexval(p[j]));
        i = j + 1;
    }
    result = exif_find_orientation(buf, out);
done:
    free(buf);
    return result;
}

typedef struct {
    const uint8_t *p;
    size_t n;
    int kind; /* 0 none, 1 EXIF blob, 2 raw profile (hex text) */
} meta_ref;

bool decode_png_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err)
{
    hdr->format = IMAGE_FORMAT_PNG;
    if (len < 8 + 8 + 13 + 4)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "png: file truncated in IHDR");
    const uint8_t *ih = data + 8;
    if (be32(ih) != 13 || memcmp(ih + 4, "IHDR", 4) != 0)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "png: first chunk is not a valid IHDR");

    uint32_t table[256];
    crc_table_init(table);
    if (crc32_calc(table, ih + 4, 4 + 13) != be32(ih + 8 + 13))
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "png: bad IHDR checksum");

    uint32_t w = be32(ih + 8), h = be32(ih + 12);
    int depth = ih[16], ctype = ih[17];
    if (w == 0 || h == 0 || w > 0x7fffffffu || h > 0x7fffffffu)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "png: invalid dimensions %ux%u", w, h);
    if (!valid_depth(depth, ctype))
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "png: invalid bit depth %d for colour type %d",
                       depth, ctype);
    if (ih[18] != 0 || ih[19] != 0 || ih[20] > 1)
        return cp_fail(err, CP_ERR_INVALID_IMAGE,
                       "png: unknown compression, filter or interlace method");
    if (w > DECODE_MAX_SIDE || h > DECODE_MAX_SIDE)
        return cp_fail(err, CP_ERR_IMAGE_TOO_LARGE, "png: %ux%u exceeds %d pixels per side", w,
                       h, DECODE_MAX_SIDE);

    meta_ref exif = {NULL, 0, 0};
    const uint8_t *xmp = NULL;
    size_t xmp_len = 0;
    bool seen_idat = false, fctl_before_idat = false, actl_bad = false, trns = false;
    uint32_t actl_frames = 0; /* 0: no (valid) acTL */
    bool animated = false;

    size_t pos = 8 + 8 + 13 + 4;
    for (;;) {
        if (len - pos < 8) {
            if (!seen_idat)
                return cp_fail(err, CP_ERR_INVALID_IMAGE, "png: truncated before image data");
            break;
        }
        const uint8_t *c = data + pos;
        uint32_t clen = be32(c);
        const uint8_t *type = c + 4;
        bool ok_type = chunk_type_ok(type);
        if (ok_type && !seen_idat && memcmp(type, "IDAT", 4) == 0) {
            /* Pillow stops parsing here: the image data starts; its CRC is never checked */
            seen_idat = true;
            uint64_t frames = (uint64_t)actl_frames + (fctl_before_idat ? 0 : 1);
            animated = !actl_bad && actl_frames > 0 && frames > 1;
            if (clen > 0x7fffffffu || len - pos - 8 < (size_t)clen + 4)
                break; /* incomplete: whether the rows are all there is libpng's call */
            pos += 8 + (size_t)clen + 4;
            continue;
        }
        if (clen > 0x7fffffffu || !ok_type || len - pos - 8 < (size_t)clen + 4) {
            if (!seen_idat)
                return cp_fail(err, CP_ERR_INVALID_IMAGE,
                               "png: broken or truncated chunk before image data");
            break; /* Pillow stops reading trailing chunks here too */
        }
        const uint8_t *body = c + 8;
        if (!seen_idat && crc32_calc(table, type, 4 + (size_t)clen) != be32(body + clen))
            return cp_fail(err, CP_ERR_INVALID_IMAGE, "png: bad checksum in %.4s chunk",
                           (const char *)type);
        pos += 8 + (size_t)clen + 4;

        if (memcmp(type, "IEND", 4) == 0)
            break;
        if (memcmp(type, "IDAT", 4) == 0) {
            /* later IDATs: nothing to do */
        } else if (memcmp(type, "fcTL", 4) == 0) {
            if (seen_idat) {
                if (animated)
                    break; /* Pillow stops at the next frame */
            } else {
                if (clen < 26)
                    return cp_fail(err, CP_ERR_INVALID_IMAGE, "png: truncated fcTL chunk");
                if (be32(body + 4) != w || be32(body + 8) != h || be32(body + 12) != 0 ||
                    be32(body + 16) != 0)
                    return cp_fail(err, CP_ERR_INVALID_IMAGE,
                                   "png: APNG default image does not cover the canvas");
                fctl_before_idat = true;
            }
        } else if (memcmp(type, "acTL", 4) == 0 && !seen_idat) {
            if (clen < 8)
                return cp_fail(err, CP_ERR_INVALID_IMAGE, "png: truncated acTL chunk");
            uint32_t n = be32(body);
            if (actl_frames != 0 || n == 0 || n > 0x80000000u)
                actl_bad = true; /* Pillow: "Invalid APNG", uses the default image */
            else
                actl_frames = n;
        } else if (memcmp(type, "tRNS", 4) == 0 && !seen_idat) {
            trns = true; /* Pillow: info["transparency"] */
        } else if (memcmp(type, "eXIf", 4) == 0) {
            exif = (meta_ref){body, clen, 1};
        } else if (memcmp(type, "tEXt", 4) == 0 || memcmp(type, "iTXt", 4) == 0) {
            const uint8_t *nul = memchr(body, 0, clen);
            if (!nul)
                continue;
            size_t klen = (size_t)(nul - body);
            const uint8_t *v = nul + 1;
            size_t vlen = clen - klen - 1;
            if (type[0] == 't') {
                if (klen == 4 && memcmp(body, "exif", 4) == 0)
                    exif = (meta_ref){v, vlen, 1};
                else if (klen == 21 && memcmp(body, "Raw profile type exif", 21) == 0) {
                    if (exif.kind != 1)
                        exif = (meta_ref){v, vlen, 2};
                } else if (klen == 17 && memcmp(body, "XML:com.adobe.xmp", 17) == 0) {
                    xmp = v;
                    xmp_len = vlen;
                }
            } else if (klen == 17 && memcmp(body, "XML:com.adobe.xmp", 17) == 0) {
                /* iTXt: flag, method, language\0, translated keyword\0, text */
                if (vlen < 2)
                    continue;
                int compressed = v[0];
                const uint8_t *r = v + 2, *end = v + vlen;
                const uint8_t *z1 = memchr(r, 0, (size_t)(end - r));
                const uint8_t *z2 = z1 ? memchr(z1 + 1, 0, (size_t)(end - z1 - 1)) : NULL;
                if (!z2)
                    continue;
                if (compressed) {
                    xmp = NULL; /* a later packet we cannot inflate replaces earlier ones */
                    xmp_len = 0;
                } else {
                    xmp = z2 + 1;
                    xmp_len = (size_t)(end - z2 - 1);
                }
            }
        }
    }

    if (!seen_idat)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "png: no image data (IDAT)");

    int exif_value = EXIF_ORIENTATION_ABSENT;
    if (exif.kind == 1)
        exif_value = exif_find_orientation(exif.p, exif.n);
    else if (exif.kind == 2)
        exif_value = raw_profile_orientation(exif.p, exif.n);
    int xmp_value = EXIF_ORIENTATION_ABSENT;
    if (exif_value == EXIF_ORIENTATION_ABSENT && xmp)
        xmp_value = xmp_find_orientation(xmp, xmp_len);

    hdr->width = (int)w;
    hdr->height = (int)h;
    hdr->orientation = orientation_resolve(exif_value, xmp_value);
    hdr->has_alpha = (ctype & 4) != 0 || (trns && ctype != 4 && ctype != 6);
    hdr->native = ctype == 3 || (ctype == 0 && depth == 1) ? NATIVE_NEAREST
                  : ctype == 0 && depth == 16            ? NATIVE_GRAY16
                  : (ctype & 4)                          ? NATIVE_RGBA
                                                         : NATIVE_AS_RGB;
    return true;
}

/* ---- pixels: libpng ----------------------------------------------------------------- */

/* Lives in the caller of the setjmp function, so it is well defined after a longjmp. */
typedef struct {
    const uint8_t *data;
    size_t len, pos;
    size_t rows_decoded;  /* rows that went through the transform stage */
    size_t rows_expected; /* 0 until known */
    uint8_t *dst;
    size_t w, h;
    int ctype, depth, passes, npal;
    png_colorp pal;
    /* alpha_onto_white */
    bool white;
    bool keep_alpha;      /* gray+alpha / RGBA rows carry their alpha */
    uint8_t *rgba;        /* RGBA rows (4 bytes per pixel do not fit a dst row): one row, or
                             the whole image when interlaced */
    bool key_on;          /* gray/RGB tRNS colour key */
    uint8_t key[3];
    png_color wpal[256];  /* palette entries composited with their tRNS alpha */
    png_native_out raw;   /* PNG_NATIVE_RGBA / _GRAY16: Pillow's own mode, not RGB */
    char msg[200];
} png_ctx;

/* Bytes per pixel of dst rows. */
static size_t dst_bpp(const png_ctx *c)
{
    return c->raw == PNG_NATIVE_RGBA ? 4 : c->raw == PNG_NATIVE_GRAY16 ? 2 : 3;
}

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "error");
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void on_png_read(png_structp png, png_bytep out, size_t n)
{
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->pos)
        png_error(png, "image file is truncated");
    memcpy(out, c->data + c->pos, n);
    c->pos += n;
    /* libpng refills its inflate input with reads of min(IDAT_read_size, rest of the IDAT
     * chunk) bytes. Near the end of the data, shrink that size so that a read never asks for
     * more than the data holds: a file truncated inside an IDAT chunk then fails only if its
     * rows really are incomplete — Pillow decodes whatever data there is, too. */
    size_t rest = c->len - c->pos;
    if (rest > 0 && rest < PNG_IDAT_READ_SIZE)
        png_set_compression_buffer_size(png, rest);
}

static void on_row_transformed(png_structp png, png_row_infop info, png_bytep row)
{
    (void)info;
    (void)row;
    png_ctx *c = png_get_io_ptr(png);
    c->rows_decoded++;
}

static int on_unknown_chunk(png_structp png, png_unknown_chunkp chunk)
{
    (void)png;
    (void)chunk;
    return 1; /* handled: ignore it (Pillow ignores unknown chunks, critical or not) */
}

/* Ancillary chunks libpng would otherwise parse; none of them changes Pillow's pixels. */
static const png_byte IGNORED_CHUNKS[] = "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0"
                                         "pHYs\0sBIT\0sCAL\0sPLT\0sRGB\0sTER\0tEXt\0tIME\0tRNS\0"
                                         "zTXt\0";

/* Widens one decoded row (bpp bytes per pixel at the start of row) to RGB in place. */
static void widen_row(uint8_t *row, size_t w, int ctype, int depth, const png_color *pal,
                      int npal)
{
    switch (ctype) {
    case PNG_COLOR_TYPE_GRAY:
        if (depth == 16) {
            for (size_t x = w; x-- > 0;) {
                uint8_t v = row[2 * x] ? 255 : row[2 * x + 1]; /* big-endian sample */
                row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = v;
            }
        } else {
            unsigned mul = depth == 1 ? 255 : depth == 2 ? 85 : depth == 4 ? 17 : 1;
            for (size_t x = w; x-- > 0;) {
                uint8_t v = (uint8_t)(row[x] * mul);
                row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = v;
            }
        }
        break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: /* alpha stripped, 16 bit chopped: 1 byte per pixel */
        for (size_t x = w; x-- > 0;) {
            uint8_t v = row[x];
            row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = v;
        }
        break;
    case PNG_COLOR_TYPE_PALETTE:
        for (size_t x = w; x-- > 0;) {
            unsigned i = row[x];
            uint8_t *o = row + 3 * x;
            if ((int)i < npal) {
                o[0] = pal[i].red;
                o[1] = pal[i].green;
                o[2] = pal[i].blue;
            } else {
                o[0] = o[1] = o[2] = 0; /* Pillow: entries past the PLTE are black */
            }
        }
        break;
    default: /* RGB / RGBA: already 3 bytes per pixel */
        break;
    }
}

/* Row y is complete: make it RGB in dst (widening, and the alpha_onto_white rules). */
static void finish_row(const png_ctx *c, size_t y)
{
    if (c->raw == PNG_NATIVE_GRAY16)
        return; /* big-endian samples as stored */
    if (c->raw == PNG_NATIVE_RGBA) {
        uint8_t *row = c->dst + y * c->w * 4;
        if (c->ctype == PNG_COLOR_TYPE_GRAY_ALPHA) /* L,A -> L,L,L,A back to front */
            for (size_t x = c->w; x-- > 0;) {
                uint8_t l = row[2 * x], a = row[2 * x + 1];
                row[4 * x] = row[4 * x + 1] = row[4 * x + 2] = l;
                row[4 * x + 3] = a;
            }
        return;
    }
    uint8_t *row = c->dst + y * c->w * 3;
    if (c->keep_alpha && c->ctype == PNG_COLOR_TYPE_RGB_ALPHA) {
        const uint8_t *src = c->rgba + (c->passes > 1 ? y * c->w * 4 : 0);
        rgba_over_white(src, row, c->w);
        return;
    }
    if (c->keep_alpha) { /* gray+alpha, 2 bytes per pixel, widened in place back to front */
        for (size_t x = c->w; x-- > 0;) {
            uint8_t v = alpha_over_white(row[2 * x], row[2 * x + 1]);
            row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = v;
        }
        return;
    }
    widen_row(row, c->w, c->ctype, c->depth, c->pal, c->npal);
    if (c->key_on)
        for (size_t x = 0; x < c->w; x++) {
            uint8_t *px = row + 3 * x;
            if (px[0] == c->key[0] && px[1] == c->key[1] && px[2] == c->key[2])
                px[0] = px[1] = px[2] = 255; /* alpha 0 composited: the white background */
        }
}

static void widen_all(const png_ctx *c)
{
    for (size_t y = 0; y < c->h; y++)
        finish_row(c, y);
}

/* alpha_onto_white: reads tRNS (after png_read_info) into the palette or the colour key. */
static void setup_transparency(png_structp png, png_infop info, png_ctx *c)
{
    png_bytep trans_alpha = NULL;
    int num_trans = 0;
    png_color_16p trans_color = NULL;
    if (c->ctype & PNG_COLOR_MASK_ALPHA) {
        c->keep_alpha = true;
        return;
    }
    if (!png_get_tRNS(png, info, &trans_alpha, &num_trans, &trans_color))
        return;
    if (c->ctype == PNG_COLOR_TYPE_PALETTE && c->pal) {
        for (int i = 0; i < c->npal && i < 256; i++) {
            unsigned a = i < num_trans && trans_alpha ? trans_alpha[i] : 255;
            c->wpal[i].red = alpha_over_white(c->pal[i].red, a);
            c->wpal[i].green = alpha_over_white(c->pal[i].green, a);
            c->wpal[i].blue = alpha_over_white(c->pal[i].blue, a);
        }
        c->pal = c->wpal;
    } else if (trans_color && c->ctype == PNG_COLOR_TYPE_GRAY) {
        c->key_on = true;
        c->key[0] = c->key[1] = c->key[2] = (uint8_t)(trans_color->gray & 0xff);
    } else if (trans_color && c->ctype == PNG_COLOR_TYPE_RGB) {
        c->key_on = true;
        c->key[0] = (uint8_t)(trans_color->red & 0xff);
        c->key[1] = (uint8_t)(trans_color->green & 0xff);
        c->key[2] = (uint8_t)(trans_color->blue & 0xff);
    }
}

/* Everything that can longjmp. Returns 0 on success, 1 on a libpng error (ctx->msg),
 * 2 when the image data disagrees with hdr. */
static int png_run(png_structp png, png_infop info, png_ctx *c, const image_header *hdr)
{
    if (setjmp(png_jmpbuf(png))) {
        if (c->rows_expected > 0 && c->rows_decoded >= c->rows_expected) {
            /* error after the last row (Pillow has its pixels too): finish widening */
            if (c->passes > 1)
                widen_all(c);
            else
                finish_row(c, c->h - 1);
            return 0;
        }
        return 1;
    }

    png_set_read_fn(png, c, on_png_read);
    png_set_user_limits(png, DECODE_MAX_SIDE, DECODE_MAX_SIDE);
    /* CRCs before IDAT were verified by decode_png_header; Pillow ignores the rest. */
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
    /* with alpha_onto_white tRNS is read (it is the list's last entry but one) */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, IGNORED_CHUNKS,
                                (int)(sizeof IGNORED_CHUNKS / 5));
    if (c->white)
        png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_AS_DEFAULT, (png_const_bytep) "tRNS", 1);
    png_set_read_user_chunk_fn(png, NULL, on_unknown_chunk);
    png_read_info(png, info);

    png_uint_32 w32, h32;
    int depth, ctype, interlace;
    png_get_IHDR(png, info, &w32, &h32, &depth, &ctype, &interlace, NULL, NULL);
    if ((int)w32 != hdr->width || (int)h32 != hdr->height)
        return 2;
    c->w = w32;
    c->h = h32;
    c->ctype = ctype;
    c->depth = depth;
    c->pal = NULL;
    c->npal = 0;
    if (ctype == PNG_COLOR_TYPE_PALETTE && !png_get_PLTE(png, info, &c->pal, &c->npal)) {
        c->pal = NULL;
        c->npal = 0;
    }

    if (c->raw == PNG_NATIVE_RGBA && !(ctype & PNG_COLOR_MASK_ALPHA))
        return 2;
    if (c->raw == PNG_NATIVE_GRAY16 && !(ctype == PNG_COLOR_TYPE_GRAY && depth == 16))
        return 2;
    if (c->white)
        setup_transparency(png, info, c);
    if (c->raw == PNG_NATIVE_RGBA)
        c->keep_alpha = true;
    size_t bpp; /* bytes per pixel of the rows libpng hands us */
    if (depth < 8)
        png_set_packing(png);
    switch (ctype) {
    case PNG_COLOR_TYPE_GRAY: bpp = depth == 16 ? 2 : 1; break;
    case PNG_COLOR_TYPE_PALETTE: bpp = 1; break;
    default: /* GRAY_ALPHA, RGB, RGB_ALPHA (16 bit: high bytes also in Pillow's own mode) */
        if (depth == 16)
            png_set_strip_16(png); /* high byte (truncating, like Pillow's ;16B unpackers) */
        if ((ctype & PNG_COLOR_MASK_ALPHA) && !c->keep_alpha)
            png_set_strip_alpha(png);
        bpp = ((ctype & PNG_COLOR_MASK_COLOR) ? 3 : 1) + (c->keep_alpha ? 1 : 0);
        break;
    }
    c->passes = png_set_interlace_handling(png);
    png_set_read_user_transform_fn(png, on_row_transformed);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != c->w * bpp)
        return 2;

    size_t expected = 0;
    if (c->passes > 1) {
        for (int p = 0; p < 7; p++)
            if (PNG_PASS_COLS(c->w, p) > 0)
                expected += PNG_PASS_ROWS(c->h, p);
    } else {
        expected = c->h;
    }
    c->rows_expected = expected;

    const size_t stride = c->w * dst_bpp(c);
    bool rgba_rows = c->keep_alpha && ctype == PNG_COLOR_TYPE_RGB_ALPHA && !c->raw;
    for (int p = 0; p < c->passes; p++) {
        for (size_t y = 0; y < c->h; y++) {
            uint8_t *row = rgba_rows ? c->rgba + (c->passes > 1 ? y * c->w * 4 : 0)
                                     : c->dst + y * stride;
            png_read_row(png, row, NULL);
            if (c->passes == 1)
                finish_row(c, y);
        }
    }
    if (c->passes > 1)
        widen_all(c);
    /* No png_read_end(): like Pillow, what follows the image data does not matter. */
    return 0;
}

static bool png_decode(const uint8_t *data, size_t len, const image_header *hdr,
                       bool alpha_onto_white, png_native_out raw, uint8_t *dst, cp_error *err);

bool decode_png_pixels(const uint8_t *data, size_t len, const image_header *hdr,
                       bool alpha_onto_white, uint8_t *dst, cp_error *err)
{
    return png_decode(data, len, hdr, alpha_onto_white, PNG_NATIVE_NONE, dst, err);
}

bool decode_png_native(const uint8_t *data, size_t len, const image_header *hdr,
                       png_native_out raw, uint8_t *dst, cp_error *err)
{
    return png_decode(data, len, hdr, false, raw, dst, err);
}

static bool png_decode(const uint8_t *data, size_t len, const image_header *hdr,
                       bool alpha_onto_white, png_native_out raw, uint8_t *dst, cp_error *err)
{
    png_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.data = data;
    ctx.len = len;
    ctx.dst = dst;
    ctx.white = alpha_onto_white;
    ctx.raw = raw;
    if (alpha_onto_white && hdr->has_alpha) {
        /* RGBA rows: one row, or the whole image if interlaced (known only later: IHDR byte) */
        const uint8_t *ih = data + 8;
        bool interlaced = len > 8 + 8 + 13 && ih[8 + 12] == 1;
        size_t rows = interlaced ? (size_t)hdr->height : 1;
        ctx.rgba = malloc((size_t)hdr->width * 4 * rows);
        if (!ctx.rgba)
            return cp_fail(err, CP_ERR_OVERLOADED, "png: out of memory for the alpha rows");
    }

    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, on_png_error,
                                             on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        free(ctx.rgba);
        return cp_fail(err, CP_ERR_INTERNAL, "png: cannot create decoder");
    }
    int rc = png_run(png, info, &ctx, hdr);
    png_destroy_read_struct(&png, &info, NULL);
    free(ctx.rgba);
    if (rc == 1)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "png: %s", ctx.msg[0] ? ctx.msg : "corrupt data");
    if (rc == 2)
        return cp_fail(err, CP_ERR_INTERNAL, "png: image data does not match its header");
    return true;
}
