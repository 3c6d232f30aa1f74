/* decode_internal.h — private interface between decode.c and the per-format decoders.
 *
 * Each format provides:
 *   *_read_header(): fills hdr (format, stored width/height, orientation) without decoding
 *                    pixels; errors INVALID_IMAGE / UNSUPPORTED_FORMAT / IMAGE_TOO_LARGE.
 *   *_decode():      decodes into dst, tightly packed RGB at the STORED size (hdr->width x
 *                    hdr->height x 3 bytes, caller-checked), converted like Pillow's
 *                    convert("RGB"). No orientation handling (decode.c does that).
 * All of them are reentrant and never print. */
#ifndef CLIPPREP_DECODE_INTERNAL_H
#define CLIPPREP_DECODE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode.h"
#include "error.h"
#include "jpeg_blocks.h"

/* Largest width or height accepted for PNG and WebP (JPEG: libjpeg's own 65500). */
#define DECODE_MAX_SIDE (1 << 24)

/* Region decoding for JPEG (decode_options.region_*; see decode_jpeg.c "Region decoding").
 * In: the region in output (scaled) coordinates, already clamped to the output size and
 * non-empty; margin_x / margin_y: safety margins in iMCU columns / rows, or
 * JPEG_REGION_MARGIN_DEFAULT for the defaults that the unit tests prove exact (other values
 * exist so that the tests can show that smaller margins are NOT exact).
 * Out (filled by decode_jpeg_pixels): what was actually decoded. */
#define JPEG_REGION_MARGIN_DEFAULT (-1)

typedef enum {
    JPEG_REGION_FULL = 0,      /* whole image decoded (region covers it, or fallback) */
    JPEG_REGION_CROP,          /* columns cropped, every row decoded (single-scan, one pass) */
    JPEG_REGION_CROP_SKIP,     /* rows outside the band skipped, columns cropped if useful */
} jpeg_region_mode;

typedef struct {
    int x0, x1, y0, y1;        /* in */
    int margin_x, margin_y;    /* in */
    jpeg_region_mode mode;     /* out */
    int dec_x0, dec_x1;        /* out: columns libjpeg decoded [dec_x0, dec_x1) */
    int dec_y0, dec_y1;        /* out: rows written to dst [dec_y0, dec_y1) */
    bool buffered;             /* out: single-scan file decoded in buffered-image mode */
} jpeg_region;

bool decode_jpeg_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err);
/* region: NULL = whole image. */
bool decode_jpeg_pixels(const uint8_t *data, size_t len, const image_header *hdr, int max_scans,
                        int scale_denom, jpeg_region *region, uint8_t *dst, cp_error *err);

/* 4-component JPEG in Pillow's own CMYK mode (open_clip resizes in it): 4 bytes per pixel,
 * the samples inverted as Pillow's "CMYK;I" reads them; whole image, full size. */
bool decode_jpeg_cmyk(const uint8_t *data, size_t len, const image_header *hdr, int max_scans,
                      uint8_t *dst, cp_error *err);

bool decode_png_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err);
bool decode_png_pixels(const uint8_t *data, size_t len, const image_header *hdr,
                       bool alpha_onto_white, uint8_t *dst, cp_error *err);
/* Pillow's own mode instead of RGB (open_clip resizes in it): RGBA or LA as 4 bytes per pixel
 * R,G,B,A (L,L,L,A); 16-bit gray as 2 bytes per pixel, big-endian. Other layouts: error. */
typedef enum { PNG_NATIVE_NONE = 0, PNG_NATIVE_RGBA, PNG_NATIVE_GRAY16 } png_native_out;
bool decode_png_native(const uint8_t *data, size_t len, const image_header *hdr,
                       png_native_out raw, uint8_t *dst, cp_error *err);

/* RGBA as Pillow opens an alpha WebP (open_clip resizes in RGBA), 4 bytes per pixel. */
bool decode_webp_rgba(const uint8_t *data, size_t len, const image_header *hdr, uint8_t *dst,
                      cp_error *err);

bool decode_webp_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err);
bool decode_webp_pixels(const uint8_t *data, size_t len, const image_header *hdr,
                        bool alpha_onto_white, uint8_t *dst, cp_error *err);

bool decode_gif_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err);
bool decode_gif_pixels(const uint8_t *data, size_t len, const image_header *hdr,
                       bool alpha_onto_white, uint8_t *dst, cp_error *err);

bool decode_bmp_is(const uint8_t *data, size_t len); /* "BM" and a known header size */
bool decode_bmp_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err);
bool decode_bmp_pixels(const uint8_t *data, size_t len, const image_header *hdr,
                       bool alpha_onto_white, uint8_t *dst, cp_error *err);
/* RGBA as Pillow opens a BMP with an alpha bitfield (open_clip resizes in RGBA), 4 bytes per
 * pixel. */
bool decode_bmp_rgba(const uint8_t *data, size_t len, const image_header *hdr, uint8_t *dst,
                     cp_error *err);

bool decode_tiff_is(const uint8_t *data, size_t len); /* "II*\0", "MM\0*" (or BigTIFF) */
bool decode_tiff_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err);
bool decode_tiff_pixels(const uint8_t *data, size_t len, const image_header *hdr,
                        bool alpha_onto_white, uint8_t *dst, cp_error *err);
/* RGBA (LA as L,L,L,A) as Pillow opens a TIFF with unassociated alpha, 4 bytes per pixel,
 * already transposed by its Orientation tag. */
bool decode_tiff_rgba(const uint8_t *data, size_t len, const image_header *hdr, uint8_t *dst,
                      cp_error *err);

bool decode_avif_is(const uint8_t *data, size_t len); /* ISOBMFF "ftyp" with an avif brand */
bool decode_avif_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err);
bool decode_avif_pixels(const uint8_t *data, size_t len, const image_header *hdr,
                        bool alpha_onto_white, uint8_t *dst, cp_error *err);
bool decode_avif_rgba(const uint8_t *data, size_t len, const image_header *hdr, uint8_t *dst,
                      cp_error *err);

/* HEIC as pillow-heif opens it (decode_heif.c): libde265 + libheif 1.20's transforms and
 * YCbCr -> RGB; the orientation is always 1 (pillow-heif applies irot/imir itself). */
bool decode_heif_is(const uint8_t *data, size_t len); /* ftyp major brand heic, mif1, ... */
bool decode_heif_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err);
bool decode_heif_pixels(const uint8_t *data, size_t len, const image_header *hdr,
                        bool alpha_onto_white, uint8_t *dst, cp_error *err);
bool decode_heif_rgba(const uint8_t *data, size_t len, const image_header *hdr, uint8_t *dst,
                      cp_error *err);

/* Pillow's CMYK -> RGB (Convert.c cmyk2rgb) for one pixel of *Pillow's* CMYK values; the same
 * body the hybrid GPU decode runs. */
static inline void decode_cmyk_to_rgb(uint8_t *out, unsigned c, unsigned m, unsigned y,
                                      unsigned k)
{
    jh_cmyk_to_rgb(out, c, m, y, k);
}

#endif
