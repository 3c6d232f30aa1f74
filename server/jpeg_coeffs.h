/* jpeg_coeffs.h — the CPU half of the hybrid JPEG decode: entropy decoding only
 * (jpeg_read_coefficients), through the same Pillow-like suspending source as the pixel decoder,
 * plus the eligibility rules of ../shared/docs/hybrid-decode.md. An eligible image leaves here
 * as coefficient blocks + a jh_image/jh_plane description; the GPU (or its host twin) does
 * dequantisation, IDCT, upsampling and colour conversion (kernels/jpeg_blocks.h) and produces
 * exactly the bytes decode_rgb() would. Anything else takes decode_rgb(). */
#ifndef CLIPPREP_JPEG_COEFFS_H
#define CLIPPREP_JPEG_COEFFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode.h"
#include "jpeg_blocks.h"

typedef struct {
    jh_image image;      /* plane[c] = c, rgb_off = 0: the caller rebases into its batch */
    jh_plane planes[JH_MAX_COMPONENTS]; /* coef_off from dst, plane_off from 0, image = 0 */
    int n_planes;
    uint64_t blocks;     /* blocks written to dst (= hdr->jpeg_blocks) */
} jpeg_coeffs;

/* Why an image cannot take the hybrid path (also the metrics label). */
typedef enum {
    JPEG_HYBRID_OK = 0,
    JPEG_HYBRID_NOT_JPEG,        /* PNG / WebP */
    JPEG_HYBRID_SCALED,          /* mode=fast DCT scaling: other IDCTs, box upsampling */
    JPEG_HYBRID_TOO_LARGE,       /* the coefficients do not fit the staging buffer */
    JPEG_HYBRID_CORRUPT,         /* libjpeg error or warning, truncation: the CPU decoder
                                    reproduces Pillow's handling (and error message) */
    JPEG_HYBRID_SMOOTHING,       /* progressive with incomplete low-frequency AC precision:
                                    libjpeg would apply block smoothing */
    JPEG_HYBRID_LAYOUT,          /* colour space or sampling libjpeg would refuse or we do not
                                    model */
    JPEG_HYBRID_GUARD,           /* IDCT guard tripped (adversarial coefficients), seen later */
    JPEG_HYBRID_REASONS
} jpeg_hybrid_reason;

const char *jpeg_hybrid_reason_name(jpeg_hybrid_reason r);

/* Can hdr/opt take the hybrid path at all (format, no scaling, blocks <= max_blocks)? */
jpeg_hybrid_reason jpeg_hybrid_precheck(const image_header *hdr, const decode_options *opt,
                                        uint64_t max_blocks);

/* Entropy-decodes data into dst (hdr->jpeg_blocks blocks of 64 int16, components one after
 * the other, rows of width_in_blocks) and fills out. Returns JPEG_HYBRID_OK, or the reason the
 * image must take decode_rgb() instead (dst is then unspecified). opt: orientation and
 * max_scans as for decode_rgb. Reentrant. */
jpeg_hybrid_reason jpeg_coeffs_read(const uint8_t *data, size_t len, const image_header *hdr,
                                    const decode_options *opt, int16_t *dst, uint64_t dst_blocks,
                                    jpeg_coeffs *out);

/* Appends an image read by jpeg_coeffs_read() to a batch's descriptor arrays: its blocks were
 * written at block first_block of the batch's coefficient buffer (its samples then go to the
 * same offset x 64 bytes of the plane buffer), its RGB goes to rgb_off. Returns its image
 * index (the index of its guard flag). */
int jpeg_coeffs_append(const jpeg_coeffs *k, uint64_t first_block, uint64_t rgb_off,
                       jh_image *images, int *n_images, jh_plane *planes, int *n_planes);

/* One image of a batch: the hybrid path when enabled and eligible (coefficients into
 * coef_dst, *reason = JPEG_HYBRID_OK), otherwise decode_rgb() into rgb_dst (*reason says why;
 * JPEG_HYBRID_NOT_JPEG also when hybrid is off). False only when decode_rgb() fails (err). */
bool jpeg_hybrid_stage(const uint8_t *data, size_t len, const image_header *hdr,
                       const decode_options *opt, bool hybrid, int16_t *coef_dst,
                       uint64_t coef_blocks, jpeg_coeffs *coeffs, jpeg_hybrid_reason *reason,
                       uint8_t *rgb_dst, size_t rgb_size, cp_error *err);

#endif
