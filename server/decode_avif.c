/* decode_avif.c — AVIF via libavif (Debian's 0.11 with dav1d/libaom and libyuv), the first
 * image, handed over as Pillow's AvifImagePlugin does: avifImageYUVToRGB to 8-bit RGB, or RGBA
 * when the file has alpha (then has_alpha, and convert("RGB") drops it or transformers 5
 * composites it over white). Pillow's wheel bundles libavif 1.3: the AV1 decode is exact by
 * the AV1 spec, but the YUV -> RGB step may round differently; docs/exactness.md has the
 * measured difference. The EXIF orientation is the one Pillow reports: made from the irot /
 * imir boxes (Pillow writes an orientation there), applied only with exif=1. */
#include <stdlib.h>
#include <string.h>

#include <avif/avif.h>

#include "alpha.h"
#include "decode_internal.h"

bool decode_avif_is(const uint8_t *data, size_t len)
{
    if (len < 16 || memcmp(data + 4, "ftyp", 4) != 0)
        return false;
    size_t box = (size_t)data[0] << 24 | (size_t)data[1] << 16 | (size_t)data[2] << 8 | data[3];
    if (box < 16 || box > len)
        box = len < 64 ? len : 64;
    for (size_t at = 8; at + 4 <= box; at += at == 8 ? 8 : 4) /* major, then compatible */
        if (!memcmp(data + at, "avif", 4) || !memcmp(data + at, "avis", 4))
            return true;
    return false;
}

static avifDecoder *open_avif(const uint8_t *data, size_t len, cp_error *err)
{
    avifDecoder *dec = avifDecoderCreate();
    if (!dec) {
        cp_fail(err, CP_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    dec->maxThreads = 1;
    dec->imageDimensionLimit = DECODE_MAX_SIDE;
    avifResult rc = avifDecoderSetIOMemory(dec, data, len);
    if (rc == AVIF_RESULT_OK)
        rc = avifDecoderParse(dec);
    if (rc != AVIF_RESULT_OK) {
        cp_fail(err, rc == AVIF_RESULT_NO_CODEC_AVAILABLE ? CP_ERR_UNSUPPORTED_FORMAT
                                                           : CP_ERR_INVALID_IMAGE,
                "avif: %s", avifResultToString(rc));
        avifDecoderDestroy(dec);
        return NULL;
    }
    return dec;
}

/* Pillow's EXIF orientation of an AVIF: made from the irot / imir boxes (libavif's transform
 * flags), replacing whatever the Exif item says. Rotation comes first, then the mirror;
 * a left-right mirror (mode 1) after rotating by a equals a top-bottom one after a + 180. */
static int orientation_of(const avifImage *im)
{
    int a = (im->transformFlags & AVIF_TRANSFORM_IROT) ? im->irot.angle & 3 : 0;
    if (im->transformFlags & AVIF_TRANSFORM_IMIR) {
        static const int flipped[4] = {4, 5, 2, 7}; /* top-bottom flip after a x 90 ccw */
#if AVIF_VERSION_MAJOR >= 1
        int left_right = im->imir.axis == 1; /* (the same field, renamed in libavif 1.0) */
#else
        int left_right = im->imir.mode == 1;
#endif
        return flipped[(a + (left_right ? 2 : 0)) & 3];
    }
    static const int rotated[4] = {1, 8, 3, 6};
    return rotated[a];
}

bool decode_avif_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err)
{
    hdr->format = IMAGE_FORMAT_AVIF;
    avifDecoder *dec = open_avif(data, len, err);
    if (!dec)
        return false;
    hdr->width = (int)dec->image->width;
    hdr->height = (int)dec->image->height;
    hdr->has_alpha = dec->alphaPresent;
    hdr->native = dec->alphaPresent ? NATIVE_RGBA : NATIVE_AS_RGB;
    hdr->orientation = orientation_of(dec->image);
    avifDecoderDestroy(dec);
    if (hdr->width <= 0 || hdr->height <= 0)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "avif: empty image");
    return true;
}

typedef enum { OUT_RGB = 0, OUT_RGB_WHITE, OUT_RGBA } avif_out;

static bool avif_decode(const uint8_t *data, size_t len, const image_header *hdr, avif_out out,
                        uint8_t *dst, cp_error *err)
{
    avifDecoder *dec = open_avif(data, len, err);
    if (!dec)
        return false;
    avifResult rc = avifDecoderNextImage(dec);
    if (rc != AVIF_RESULT_OK) {
        avifDecoderDestroy(dec);
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "avif: %s", avifResultToString(rc));
    }
    if ((int)dec->image->width != hdr->width || (int)dec->image->height != hdr->height) {
        avifDecoderDestroy(dec);
        return cp_fail(err, CP_ERR_INTERNAL, "avif: header does not match the image data");
    }
    size_t w = (size_t)hdr->width, h = (size_t)hdr->height;
    bool rgba = dec->alphaPresent; /* Pillow's mode: RGBA or RGB */
    avifRGBImage rgb;
    avifRGBImageSetDefaults(&rgb, dec->image);
    rgb.depth = 8;
    rgb.format = rgba ? AVIF_RGB_FORMAT_RGBA : AVIF_RGB_FORMAT_RGB;
    rgb.rowBytes = (uint32_t)(w * (rgba ? 4 : 3));
    uint8_t *buf = rgba && out != OUT_RGBA ? malloc(w * h * 4) : dst;
    if (!buf) {
        avifDecoderDestroy(dec);
        return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
    }
    rgb.pixels = buf;
    rc = avifImageYUVToRGB(dec->image, &rgb);
    avifDecoderDestroy(dec);
    if (rc != AVIF_RESULT_OK) {
        if (buf != dst)
            free(buf);
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "avif: %s", avifResultToString(rc));
    }
    if (out == OUT_RGBA && !rgba) { /* (opaque: RGB spread to RGBA in place, from the end) */
        for (size_t i = w * h; i-- > 0;) {
            memmove(dst + 4 * i, dst + 3 * i, 3);
            dst[4 * i + 3] = 255;
        }
    } else if (buf != dst) {
        if (out == OUT_RGB_WHITE)
            rgba_over_white(buf, dst, w * h);
        else
            for (size_t i = 0; i < w * h; i++)
                memcpy(dst + 3 * i, buf + 4 * i, 3);
        free(buf);
    }
    return true;
}

bool decode_avif_pixels(const uint8_t *data, size_t len, const image_header *hdr,
                        bool alpha_onto_white, uint8_t *dst, cp_error *err)
{
    return avif_decode(data, len, hdr, alpha_onto_white ? OUT_RGB_WHITE : OUT_RGB, dst, err);
}

bool decode_avif_rgba(const uint8_t *data, size_t len, const image_header *hdr, uint8_t *dst,
                      cp_error *err)
{
    return avif_decode(data, len, hdr, OUT_RGBA, dst, err);
}
