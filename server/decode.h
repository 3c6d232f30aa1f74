/* decode.h — encoded image bytes to 8-bit RGB, with the reference's (Pillow's) semantics.
 *
 * Two steps so that limits are checked before any pixel memory exists:
 *   decode_read_header()  cheap: format from magic bytes, stored width/height, EXIF orientation;
 *   decode_rgb()          full decode into a caller-provided buffer of width*height*3 bytes,
 *                         converted to RGB exactly as Pillow's Image.convert("RGB") would
 *                         (spec F), optionally EXIF-transposed (spec E).
 * Reentrant: no global state; safe to call from many threads at once. Never calls exit(). */
#ifndef CLIPPREP_DECODE_H
#define CLIPPREP_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum {
    IMAGE_FORMAT_UNKNOWN = 0,
    IMAGE_FORMAT_JPEG,
    IMAGE_FORMAT_PNG,
    IMAGE_FORMAT_WEBP,
    IMAGE_FORMAT_GIF,  /* first frame (decode_gif.c) */
    IMAGE_FORMAT_BMP,  /* decode_bmp.c */
    IMAGE_FORMAT_TIFF, /* first image (decode_tiff.c) */
    IMAGE_FORMAT_AVIF, /* decode_avif.c */
    IMAGE_FORMAT_HEIF, /* HEIC: decode_heif.c */
} image_format;

/* How Pillow's own mode of the opened image behaves under Image.resize (open_clip resizes before
 * convert("RGB")): whether that equals resizing the RGB conversion. */
typedef enum {
    NATIVE_AS_RGB = 0, /* RGB, L (any depth): resizing commutes with convert("RGB") */
    NATIVE_NEAREST,    /* "P", "1": Pillow resizes these with NEAREST */
    NATIVE_GRAY16,     /* "I;16": 16-bit resampler, then I;16 -> RGB */
    NATIVE_RGBA,       /* "RGBA", "LA": resized premultiplied (RGBa / La) */
    NATIVE_CMYK,       /* "CMYK": resized in CMYK, then CMYK -> RGB */
} native_class;

typedef struct {
    image_format format;
    int width, height; /* as stored in the file, before any EXIF orientation */
    int orientation;   /* EXIF orientation 1..8; 1 when absent or invalid */
    int64_t jpeg_blocks; /* JPEG: 8x8 coefficient blocks of all components (128 bytes each),
                            what the hybrid GPU decode stages (jpeg_coeffs.h); 0 otherwise */
    bool has_alpha;      /* an alpha channel or a PNG tRNS chunk: Pillow's "A" band or
                            info["transparency"] */
    native_class native; /* Pillow's mode class (open_clip) */
} image_header;

/* open_clip: resize in Pillow's own mode, crop, then convert("RGB") (native_mode.c). When on,
 * decode_rgb produces the final out_w x out_h RGB window instead of the decoded image. The
 * geometry is that of the oriented image (decode_output_size without this). */
typedef struct {
    bool on;
    int resized_w, resized_h; /* the full resize */
    int top, left;            /* crop origin in resized coordinates (negative: padding) */
    int out_w, out_h;
    int filter;               /* resample_filter */
} native_resize;

typedef struct {
    bool apply_orientation; /* transpose per hdr->orientation (spec E); swaps w/h for 5..8 */
    int max_scans;          /* progressive JPEG scan limit; 0 = no limit */
    int scale_denom;        /* JPEG only: 0/1 = full size (exact), 2, 4 or 8 = libjpeg's
                               DCT-domain downscaling to ceil(side/scale_denom) (fast mode) */
    int region_x0, region_x1, region_y0, region_y1; /* optional: only pixels in
                               [x0,x1)x[y0,y1) (output coordinates, after scaling, before any
                               orientation) must be exact; 0,0,0,0 = whole image. JPEG only and
                               only without an orientation transform, otherwise ignored. Outside
                               the region dst bytes are unspecified (partly left untouched).
                               Clamped to the image; an empty region means the whole image. */
    native_resize native;   /* see native_resize; off: {0} */
    bool alpha_onto_white;  /* transparency (alpha channel, PNG tRNS) composited onto white as
                               transformers 5's convert_to_rgb does (Pillow alpha_composite);
                               false: dropped, as Pillow's convert("RGB") */
} decode_options;

const char *image_format_name(image_format f); /* "jpeg", "png", "webp", "gif", "bmp", "tiff", "avif", "heic", "unknown" */
image_format decode_detect_format(const uint8_t *data, size_t len);

/* Fills hdr. Errors: CP_ERR_UNSUPPORTED_FORMAT (unknown magic, or a variant we refuse),
 * CP_ERR_INVALID_IMAGE (truncated/corrupt header). Allocates no pixel memory. */
bool decode_read_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err);

/* Output size after decode_options: (w,h) or (h,w) for orientations 5..8 when applied; the
 * native_resize window when that is on. */
void decode_output_size(const image_header *hdr, const decode_options *opt, int *w, int *h);

/* Decodes into dst (tightly packed RGB rows, out_w*3 bytes each). dst_size must be at least
 * out_w*out_h*3 (decode_output_size). Errors: CP_ERR_INVALID_IMAGE with the decoder's own
 * message (e.g. libjpeg's "Premature end of JPEG file" is an error here, not a warning). */
bool decode_rgb(const uint8_t *data, size_t len, const image_header *hdr,
                const decode_options *opt, uint8_t *dst, size_t dst_size, cp_error *err);

#endif
