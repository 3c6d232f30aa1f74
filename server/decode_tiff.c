/* decode_tiff.c — TIFF via libtiff (the library Pillow itself uses for compressed TIFFs), for
 * the first image of the file, reproducing Pillow 11.3's TiffImagePlugin + convert("RGB") on
 * the layouts that matter:
 *   - 8-bit grey (MinIsBlack: v; MinIsWhite: 255 - v), grey + unassociated alpha (alpha
 *     dropped), 1-bit bilevel (0 / 255, MinIsWhite inverted);
 *   - 8-bit palette: Pillow keeps the high byte of each 16-bit colormap entry (v / 256);
 *   - 8-bit RGB, and RGB + one extra sample that is unassociated or unspecified alpha
 *     (dropped by convert("RGB"), composited over white for alpha_onto_white when it is
 *     unassociated alpha; Pillow reads "unspecified" as RGBX);
 *   - any lossless compression libtiff decodes (none, LZW, Deflate, PackBits, ...), horizontal
 *     predictor included, stored in strips, samples contiguous;
 *   - the Orientation tag (274) is applied on decode whatever the exif option, as Pillow
 *     transposes TIFFs on load (and drops the tag, so exif=1 adds nothing): the size is
 *     the transposed one and the header reports orientation 1.
 * Refused (415): JPEG / OJPEG compression (a different libjpeg than the wheel's), YCbCr, CMYK,
 * Lab, 16-bit and float samples, associated (premultiplied) alpha, planar-separate samples,
 * tiled images. libtiff's messages go to the error, never to stderr. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tiffio.h>

#include "alpha.h"
#include "decode_internal.h"

#define TIFF_MAX_ALLOC ((tmsize_t)256 << 20) /* libtiff's largest single allocation */

typedef struct {
    const uint8_t *data;
    size_t len, pos;
    char msg[160]; /* libtiff's first error */
} tiff_source;

static tmsize_t src_read(thandle_t h, void *buf, tmsize_t n)
{
    tiff_source *s = (tiff_source *)h;
    size_t left = s->pos < s->len ? s->len - s->pos : 0;
    size_t k = n < 0 ? 0 : (size_t)n < left ? (size_t)n : left;
    memcpy(buf, s->data + s->pos, k);
    s->pos += k;
    return (tmsize_t)k;
}

static tmsize_t src_write(thandle_t h, void *buf, tmsize_t n)
{
    (void)h, (void)buf, (void)n;
    return 0;
}

static toff_t src_seek(thandle_t h, toff_t off, int whence)
{
    tiff_source *s = (tiff_source *)h;
    uint64_t base = whence == SEEK_CUR ? s->pos : whence == SEEK_END ? s->len : 0;
    s->pos = (size_t)(base + off);
    return s->pos;
}

static int src_close(thandle_t h)
{
    (void)h;
    return 0;
}

static toff_t src_size(thandle_t h) { return ((tiff_source *)h)->len; }

static int on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif, (void)module;
    tiff_source *s = user;
    if (!s->msg[0])
        vsnprintf(s->msg, sizeof s->msg, fmt, ap);
    return 1;
}

static int on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif, (void)user, (void)module, (void)fmt, (void)ap;
    return 1; /* silent */
}

bool decode_tiff_is(const uint8_t *data, size_t len)
{
    return len >= 4 && ((data[0] == 'I' && data[1] == 'I' && (data[2] == 42 || data[2] == 43) &&
                         data[3] == 0) ||
                        (data[0] == 'M' && data[1] == 'M' && data[2] == 0 &&
                         (data[3] == 42 || data[3] == 43)));
}

typedef enum { T_GREY, T_GREY_ALPHA, T_BILEVEL, T_PALETTE, T_RGB, T_RGB_EXTRA } tiff_layout;

typedef struct {
    TIFF *tif;
    tiff_source src;
    uint32_t width, height;
    tiff_layout layout;
    bool invert;      /* MinIsWhite */
    bool alpha;       /* unassociated alpha: Pillow's "RGBA" / "LA" */
    int orientation;
} tiff_image;

static bool open_tiff(const uint8_t *data, size_t len, tiff_image *t, cp_error *err)
{
    memset(t, 0, sizeof *t);
    t->src = (tiff_source){.data = data, .len = len};
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts)
        return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
    TIFFOpenOptionsSetMaxSingleMemAlloc(opts, TIFF_MAX_ALLOC);
    TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, &t->src);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, &t->src);
    t->tif = TIFFClientOpenExt("image", "rm", (thandle_t)&t->src, src_read, src_write, src_seek,
                               src_close, src_size, NULL, NULL, opts);
    TIFFOpenOptionsFree(opts);
    if (!t->tif)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "tiff: %s",
                       t->src.msg[0] ? t->src.msg : "cannot read the TIFF header");
    TIFF *tif = t->tif;
    uint16_t bits = 1, spp = 1, photo = 0, fmt = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG;
    uint16_t comp = COMPRESSION_NONE, orient = ORIENTATION_TOPLEFT;
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &t->width) ||
        !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &t->height) ||
        !TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo))
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "tiff: missing size or photometric tag");
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &comp);
    if (TIFFGetField(tif, TIFFTAG_ORIENTATION, &orient))
        t->orientation = orient;
    if (t->width == 0 || t->height == 0)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "tiff: empty image");
    if (t->width > DECODE_MAX_SIDE || t->height > DECODE_MAX_SIDE)
        return cp_fail(err, CP_ERR_IMAGE_TOO_LARGE, "tiff: %ux%u exceeds %d pixels per side",
                       t->width, t->height, DECODE_MAX_SIDE);
    if (comp == COMPRESSION_JPEG || comp == COMPRESSION_OJPEG)
        return cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT, "tiff: JPEG compression is not supported");
    if (!TIFFIsCODECConfigured(comp))
        return cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT, "tiff: compression %u is not supported",
                       comp);
    if (TIFFIsTiled(tif))
        return cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT, "tiff: tiled images are not supported");
    if (fmt != SAMPLEFORMAT_UINT || (planar != PLANARCONFIG_CONTIG && spp > 1))
        return cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT,
                       "tiff: only unsigned, contiguous samples are supported");
    uint16_t n_extra = 0, *extra = NULL;
    TIFFGetField(tif, TIFFTAG_EXTRASAMPLES, &n_extra, &extra);
    bool unassoc = n_extra == 1 && extra[0] == EXTRASAMPLE_UNASSALPHA;
    bool unspecified = n_extra == 1 && extra[0] == EXTRASAMPLE_UNSPECIFIED;
    t->invert = photo == PHOTOMETRIC_MINISWHITE;
    bool grey = photo == PHOTOMETRIC_MINISBLACK || photo == PHOTOMETRIC_MINISWHITE;
    if (grey && bits == 1 && spp == 1)
        t->layout = T_BILEVEL;
    else if (grey && bits == 8 && spp == 1)
        t->layout = T_GREY;
    else if (photo == PHOTOMETRIC_MINISBLACK && bits == 8 && spp == 2 && unassoc)
        t->layout = T_GREY_ALPHA;
    else if (photo == PHOTOMETRIC_PALETTE && bits == 8 && spp == 1)
        t->layout = T_PALETTE;
    else if (photo == PHOTOMETRIC_RGB && bits == 8 && spp == 3)
        t->layout = T_RGB;
    else if (photo == PHOTOMETRIC_RGB && bits == 8 && spp == 4 && (unassoc || unspecified))
        t->layout = T_RGB_EXTRA; /* unspecified: Pillow's "RGBX", no alpha */
    else
        return cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT,
                       "tiff: unsupported layout (photometric %u, %u x %u-bit samples)", photo,
                       spp, bits);
    t->alpha = unassoc;
    return true;
}

static void close_tiff(tiff_image *t)
{
    if (t->tif)
        TIFFClose(t->tif);
    t->tif = NULL;
}

bool decode_tiff_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err)
{
    hdr->format = IMAGE_FORMAT_TIFF;
    tiff_image t;
    bool ok = open_tiff(data, len, &t, err);
    if (ok) {
        bool swap = t.orientation >= 5 && t.orientation <= 8;
        hdr->width = (int)(swap ? t.height : t.width);
        hdr->height = (int)(swap ? t.width : t.height);
        hdr->orientation = 1;
        hdr->has_alpha = t.alpha;
        hdr->native = t.alpha                                            ? NATIVE_RGBA
                      : t.layout == T_BILEVEL || t.layout == T_PALETTE ? NATIVE_NEAREST
                                                                         : NATIVE_AS_RGB;
    }
    close_tiff(&t);
    return ok;
}

/* Pillow's exif_transpose of the w x h image src into dst, for orientation o (2..8): the
 * source pixel of each output pixel (x, y). */
static void orient_into(uint8_t *dst, const uint8_t *src, size_t w, size_t h, size_t bpp, int o)
{
    size_t ow = o >= 5 ? h : w, oh = o >= 5 ? w : h;
    for (size_t y = 0; y < oh; y++)
        for (size_t x = 0; x < ow; x++) {
            size_t sx, sy;
            switch (o) {
            case 2: sx = w - 1 - x, sy = y; break;
            case 3: sx = w - 1 - x, sy = h - 1 - y; break;
            case 4: sx = x, sy = h - 1 - y; break;
            case 5: sx = y, sy = x; break;
            case 6: sx = y, sy = h - 1 - x; break;
            case 7: sx = w - 1 - y, sy = h - 1 - x; break;
            default: sx = w - 1 - y, sy = x; break; /* 8 */
            }
            memcpy(dst + (y * ow + x) * bpp, src + (sy * w + sx) * bpp, bpp);
        }
}

typedef enum { OUT_RGB = 0, OUT_RGB_WHITE, OUT_RGBA } tiff_out;

static bool tiff_decode(const uint8_t *data, size_t len, const image_header *hdr, tiff_out out,
                        uint8_t *dst, cp_error *err)
{
    tiff_image t;
    if (!open_tiff(data, len, &t, err)) {
        close_tiff(&t);
        return false;
    }
    int o = t.orientation >= 1 && t.orientation <= 8 ? t.orientation : 1;
    if ((int)(o >= 5 ? t.height : t.width) != hdr->width ||
        (int)(o >= 5 ? t.width : t.height) != hdr->height) {
        close_tiff(&t);
        return cp_fail(err, CP_ERR_INTERNAL, "tiff: header does not match the image data");
    }
    uint8_t palette[256][3] = {{0}};
    if (t.layout == T_PALETTE) {
        uint16_t *r, *g, *b;
        if (!TIFFGetField(t.tif, TIFFTAG_COLORMAP, &r, &g, &b)) {
            close_tiff(&t);
            return cp_fail(err, CP_ERR_INVALID_IMAGE, "tiff: palette image without a colormap");
        }
        for (int i = 0; i < 256; i++) /* Pillow: the high byte of each entry */
            palette[i][0] = (uint8_t)(r[i] >> 8), palette[i][1] = (uint8_t)(g[i] >> 8),
            palette[i][2] = (uint8_t)(b[i] >> 8);
    }
    tmsize_t line_size = TIFFScanlineSize(t.tif);
    uint8_t *line = line_size > 0 ? malloc((size_t)line_size) : NULL;
    if (!line) {
        close_tiff(&t);
        return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
    }
    size_t w = t.width, h = t.height, bpp = out == OUT_RGBA ? 4 : 3;
    uint8_t *img = dst; /* the stored orientation; transposed into dst at the end */
    if (o != 1 && !(img = malloc(w * h * bpp))) {
        free(line);
        close_tiff(&t);
        return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
    }
    bool ok = true;
    for (uint32_t y = 0; y < t.height && ok; y++) {
        if (TIFFReadScanline(t.tif, line, y, 0) < 0) {
            ok = cp_fail(err, CP_ERR_INVALID_IMAGE, "tiff: %s",
                         t.src.msg[0] ? t.src.msg : "image file is truncated");
            break;
        }
        uint8_t *px = img + (size_t)y * w * bpp;
        for (size_t x = 0; x < w; x++, px += bpp) {
            unsigned a = 255;
            uint8_t v;
            switch (t.layout) {
            case T_BILEVEL:
                v = (line[x >> 3] >> (7 - (x & 7))) & 1 ? 255 : 0;
                px[0] = px[1] = px[2] = t.invert ? (uint8_t)(255 - v) : v;
                break;
            case T_GREY:
                v = t.invert ? (uint8_t)(255 - line[x]) : line[x];
                px[0] = px[1] = px[2] = v;
                break;
            case T_GREY_ALPHA:
                px[0] = px[1] = px[2] = line[2 * x];
                a = line[2 * x + 1];
                break;
            case T_PALETTE: memcpy(px, palette[line[x]], 3); break;
            case T_RGB: memcpy(px, line + 3 * x, 3); break;
            case T_RGB_EXTRA:
                memcpy(px, line + 4 * x, 3);
                a = t.alpha ? line[4 * x + 3] : 255;
                break;
            }
            if (out == OUT_RGBA)
                px[3] = (uint8_t)a;
            else if (out == OUT_RGB_WHITE && t.alpha)
                px[0] = alpha_over_white(px[0], a), px[1] = alpha_over_white(px[1], a),
                px[2] = alpha_over_white(px[2], a);
        }
    }
    if (ok && o != 1)
        orient_into(dst, img, w, h, bpp, o);
    if (img != dst)
        free(img);
    free(line);
    close_tiff(&t);
    return ok;
}

bool decode_tiff_pixels(const uint8_t *data, size_t len, const image_header *hdr,
                        bool alpha_onto_white, uint8_t *dst, cp_error *err)
{
    return tiff_decode(data, len, hdr, alpha_onto_white ? OUT_RGB_WHITE : OUT_RGB, dst, err);
}

bool decode_tiff_rgba(const uint8_t *data, size_t len, const image_header *hdr, uint8_t *dst,
                      cp_error *err)
{
    return tiff_decode(data, len, hdr, OUT_RGBA, dst, err);
}
