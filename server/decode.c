/* decode.c — format detection, dispatch to the per-format decoders and EXIF orientation
 * (spec E: Pillow's ImageOps.exif_transpose permutations, applied after RGB conversion, which
 * commutes with a pure pixel permutation). */
#include "decode.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "decode_internal.h"
#include "native_mode.h"

static const uint8_t PNG_MAGIC[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
static const uint8_t JPEG_MAGIC[3] = {0xff, 0xd8, 0xff};
static const uint8_t GIF_MAGIC[4] = {'G', 'I', 'F', '8'}; /* then "7a" or "9a" */

const char *image_format_name(image_format f)
{
    switch (f) {
    case IMAGE_FORMAT_JPEG: return "jpeg";
    case IMAGE_FORMAT_PNG: return "png";
    case IMAGE_FORMAT_WEBP: return "webp";
    case IMAGE_FORMAT_GIF: return "gif";
    case IMAGE_FORMAT_BMP: return "bmp";
    case IMAGE_FORMAT_TIFF: return "tiff";
    case IMAGE_FORMAT_AVIF: return "avif";
    case IMAGE_FORMAT_HEIF: return "heic";
    default: return "unknown";
    }
}

image_format decode_detect_format(const uint8_t *data, size_t len)
{
    if (!data)
        return IMAGE_FORMAT_UNKNOWN;
    if (len >= sizeof JPEG_MAGIC && memcmp(data, JPEG_MAGIC, sizeof JPEG_MAGIC) == 0)
        return IMAGE_FORMAT_JPEG;
    if (len >= sizeof PNG_MAGIC && memcmp(data, PNG_MAGIC, sizeof PNG_MAGIC) == 0)
        return IMAGE_FORMAT_PNG;
    if (len >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0)
        return IMAGE_FORMAT_WEBP;
    if (len >= 6 && memcmp(data, GIF_MAGIC, 4) == 0 && (data[4] == '7' || data[4] == '9') &&
        data[5] == 'a')
        return IMAGE_FORMAT_GIF;
    if (decode_bmp_is(data, len))
        return IMAGE_FORMAT_BMP;
    if (decode_tiff_is(data, len))
        return IMAGE_FORMAT_TIFF;
    if (decode_avif_is(data, len))
        return IMAGE_FORMAT_AVIF;
    if (decode_heif_is(data, len)) /* after AVIF: an avif brand anywhere makes it AVIF */
        return IMAGE_FORMAT_HEIF;
    return IMAGE_FORMAT_UNKNOWN;
}

/* True when data (shorter than a full signature) is a prefix of a known signature. */
static bool truncated_magic(const uint8_t *data, size_t len)
{
    if (len < sizeof JPEG_MAGIC && memcmp(data, JPEG_MAGIC, len) == 0)
        return true;
    if (len < sizeof PNG_MAGIC && memcmp(data, PNG_MAGIC, len) == 0)
        return true;
    if (len < 12 && memcmp(data, "RIFF", len < 4 ? len : 4) == 0 &&
        (len <= 8 || memcmp(data + 8, "WEBP", len - 8) == 0))
        return true;
    if (len < 6 && memcmp(data, GIF_MAGIC, len < 4 ? len : 4) == 0)
        return true;
    return false;
}

bool decode_read_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err)
{
    if (!hdr)
        return cp_fail(err, CP_ERR_INTERNAL, "decode_read_header: no header struct");
    memset(hdr, 0, sizeof *hdr);
    hdr->orientation = 1;
    if (!data || len == 0)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "empty image data");

    bool ok;
    switch (decode_detect_format(data, len)) {
    case IMAGE_FORMAT_JPEG: ok = decode_jpeg_header(data, len, hdr, err); break;
    case IMAGE_FORMAT_PNG: ok = decode_png_header(data, len, hdr, err); break;
    case IMAGE_FORMAT_WEBP: ok = decode_webp_header(data, len, hdr, err); break;
    case IMAGE_FORMAT_GIF: ok = decode_gif_header(data, len, hdr, err); break;
    case IMAGE_FORMAT_BMP: ok = decode_bmp_header(data, len, hdr, err); break;
    case IMAGE_FORMAT_TIFF: ok = decode_tiff_header(data, len, hdr, err); break;
    case IMAGE_FORMAT_AVIF: ok = decode_avif_header(data, len, hdr, err); break;
    case IMAGE_FORMAT_HEIF: ok = decode_heif_header(data, len, hdr, err); break;
    default:
        if (truncated_magic(data, len))
            return cp_fail(err, CP_ERR_INVALID_IMAGE,
                           "image data truncated inside the file signature (%zu bytes)", len);
        return cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT,
                       "unsupported image format (not JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF or HEIC)");
    }
    if (!ok) {
        image_format f = hdr->format;
        memset(hdr, 0, sizeof *hdr);
        hdr->format = f;
        hdr->orientation = 1;
        return false;
    }
    if (hdr->orientation < 1 || hdr->orientation > 8)
        hdr->orientation = 1;
    return true;
}

static bool swaps_axes(const image_header *hdr, const decode_options *opt)
{
    return opt && opt->apply_orientation && hdr->orientation >= 5 && hdr->orientation <= 8;
}

/* The DCT scaling denominator that applies to this image (1 = none). */
static int scale_of(const image_header *hdr, const decode_options *opt)
{
    int d = opt ? opt->scale_denom : 1;
    return hdr->format == IMAGE_FORMAT_JPEG && (d == 2 || d == 4 || d == 8) ? d : 1;
}

void decode_output_size(const image_header *hdr, const decode_options *opt, int *w, int *h)
{
    if (opt && opt->native.on) {
        if (w)
            *w = opt->native.out_w;
        if (h)
            *h = opt->native.out_h;
        return;
    }
    int ow = hdr ? hdr->width : 0, oh = hdr ? hdr->height : 0;
    if (hdr) {
        int d = scale_of(hdr, opt);
        ow = (ow + d - 1) / d;
        oh = (oh + d - 1) / d;
    }
    if (hdr && swaps_axes(hdr, opt)) {
        int t = ow;
        ow = oh;
        oh = t;
    }
    if (w)
        *w = ow;
    if (h)
        *h = oh;
}

/* ---- orientation -------------------------------------------------------------------- */

static inline void px_copy(uint8_t *d, const uint8_t *s)
{
    d[0] = s[0];
    d[1] = s[1];
    d[2] = s[2];
}

static inline void px_swap(uint8_t *a, uint8_t *b)
{
    uint8_t t0 = a[0], t1 = a[1], t2 = a[2];
    a[0] = b[0];
    a[1] = b[1];
    a[2] = b[2];
    b[0] = t0;
    b[1] = t1;
    b[2] = t2;
}

static void mirror_rows(uint8_t *img, size_t w, size_t h)
{
    for (size_t y = 0; y < h; y++) {
        uint8_t *row = img + y * w * 3;
        for (size_t a = 0, b = w - 1; a < b; a++, b--)
            px_swap(row + a * 3, row + b * 3);
    }
}

static void flip_rows(uint8_t *img, size_t w, size_t h)
{
    size_t stride = w * 3;
    for (size_t a = 0, b = h - 1; a < b; a++, b--) {
        uint8_t *ra = img + a * stride, *rb = img + b * stride;
        for (size_t i = 0; i < stride; i++) {
            uint8_t t = ra[i];
            ra[i] = rb[i];
            rb[i] = t;
        }
    }
}

/* Orientations 5..8: out is h x w (width h). For each output pixel (x, y), the source pixel
 * (sx, sy) in the w x h input:
 *   5 TRANSPOSE   (y, x)                6 ROTATE_270 (cw)  (y, h-1-x)
 *   7 TRANSVERSE  (w-1-y, h-1-x)        8 ROTATE_90 (ccw)  (w-1-y, x)
 * Walked in tiles so that both sides stay cache-friendly. */
static void transpose_into(uint8_t *out, const uint8_t *in, size_t w, size_t h, int orientation)
{
    const size_t T = 64;
    const size_t ow = h, oh = w;
    for (size_t ty = 0; ty < oh; ty += T) {
        size_t yend = ty + T < oh ? ty + T : oh;
        for (size_t tx = 0; tx < ow; tx += T) {
            size_t xend = tx + T < ow ? tx + T : ow;
            for (size_t y = ty; y < yend; y++) {
                uint8_t *o = out + (y * ow + tx) * 3;
                size_t sx = (orientation == 5 || orientation == 6) ? y : w - 1 - y;
                for (size_t x = tx; x < xend; x++, o += 3) {
                    size_t sy = (orientation == 5 || orientation == 8) ? x : h - 1 - x;
                    px_copy(o, in + (sy * w + sx) * 3);
                }
            }
        }
    }
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* The requested region clamped to the w x h output; false when there is none (0,0,0,0), when it
 * is empty after clamping, or when it covers the whole image: then everything is decoded. */
static bool region_of(const decode_options *opt, size_t w, size_t h, jpeg_region *r)
{
    if (!opt || (opt->region_x0 == 0 && opt->region_x1 == 0 && opt->region_y0 == 0 &&
                 opt->region_y1 == 0))
        return false;
    if (w > (size_t)INT_MAX || h > (size_t)INT_MAX)
        return false;
    memset(r, 0, sizeof *r);
    r->x0 = clampi(opt->region_x0, 0, (int)w);
    r->x1 = clampi(opt->region_x1, 0, (int)w);
    r->y0 = clampi(opt->region_y0, 0, (int)h);
    r->y1 = clampi(opt->region_y1, 0, (int)h);
    r->margin_x = r->margin_y = JPEG_REGION_MARGIN_DEFAULT;
    if (r->x0 >= r->x1 || r->y0 >= r->y1)
        return false;
    return !(r->x0 == 0 && r->y0 == 0 && r->x1 == (int)w && r->y1 == (int)h);
}

bool decode_rgb(const uint8_t *data, size_t len, const image_header *hdr,
                const decode_options *opt, uint8_t *dst, size_t dst_size, cp_error *err)
{
    if (!hdr || !dst)
        return cp_fail(err, CP_ERR_INTERNAL, "decode_rgb: missing header or output buffer");
    if (hdr->width <= 0 || hdr->height <= 0)
        return cp_fail(err, CP_ERR_INTERNAL, "decode_rgb: header has no dimensions");
    if (opt && opt->native.on)
        return native_decode_resize(data, len, hdr, opt, dst, dst_size, err);

    int scale = scale_of(hdr, opt);
    size_t w = ((size_t)hdr->width + (size_t)scale - 1) / (size_t)scale;
    size_t h = ((size_t)hdr->height + (size_t)scale - 1) / (size_t)scale;
    if (w > SIZE_MAX / 3 / h)
        return cp_fail(err, CP_ERR_INTERNAL, "decode_rgb: image size overflows");
    size_t need = w * h * 3;
    if (dst_size < need)
        return cp_fail(err, CP_ERR_INTERNAL, "decode_rgb: output buffer too small (%zu < %zu)",
                       dst_size, need);

    /* Re-read the header from the data itself (cheap) so that a header that does not belong
     * to these bytes can never make a decoder write outside dst. */
    image_header actual;
    if (!decode_read_header(data, len, &actual, err))
        return false;
    if (actual.format != hdr->format || actual.width != hdr->width ||
        actual.height != hdr->height)
        return cp_fail(err, CP_ERR_INTERNAL, "decode_rgb: header does not match the image data");

    int orientation = (opt && opt->apply_orientation) ? hdr->orientation : 1;
    if (orientation < 1 || orientation > 8)
        orientation = 1;
    int max_scans = opt ? opt->max_scans : 0;
    bool white = opt && opt->alpha_onto_white && hdr->has_alpha;

    uint8_t *target = dst, *tmp = NULL;
    if (orientation >= 5) {
        tmp = malloc(need);
        if (!tmp)
            return cp_fail(err, CP_ERR_INTERNAL, "out of memory (%zu bytes for orientation)",
                           need);
        target = tmp;
    }

    bool ok;
    switch (hdr->format) {
    case IMAGE_FORMAT_JPEG: {
        jpeg_region region;
        bool use_region = orientation == 1 && region_of(opt, w, h, &region);
        ok = decode_jpeg_pixels(data, len, hdr, max_scans, scale, use_region ? &region : NULL,
                                target, err);
        break;
    }
    case IMAGE_FORMAT_PNG: ok = decode_png_pixels(data, len, hdr, white, target, err); break;
    case IMAGE_FORMAT_WEBP: ok = decode_webp_pixels(data, len, hdr, white, target, err); break;
    case IMAGE_FORMAT_GIF: ok = decode_gif_pixels(data, len, hdr, white, target, err); break;
    case IMAGE_FORMAT_BMP: ok = decode_bmp_pixels(data, len, hdr, white, target, err); break;
    case IMAGE_FORMAT_TIFF: ok = decode_tiff_pixels(data, len, hdr, white, target, err); break;
    case IMAGE_FORMAT_AVIF: ok = decode_avif_pixels(data, len, hdr, white, target, err); break;
    case IMAGE_FORMAT_HEIF: ok = decode_heif_pixels(data, len, hdr, white, target, err); break;
    default: ok = cp_fail(err, CP_ERR_INTERNAL, "decode_rgb: unknown format"); break;
    }

    if (ok) {
        switch (orientation) {
        case 2: mirror_rows(dst, w, h); break;
        case 3:
            mirror_rows(dst, w, h);
            flip_rows(dst, w, h);
            break;
        case 4: flip_rows(dst, w, h); break;
        case 5: case 6: case 7: case 8: transpose_into(dst, tmp, w, h, orientation); break;
        default: break;
        }
    }
    free(tmp);
    return ok;
}
