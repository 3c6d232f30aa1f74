/* jpeg_source.h — libjpeg plumbing shared by the JPEG decoders (decode_jpeg.c: pixels,
 * jpeg_coeffs.c: coefficients for the hybrid GPU decode): error handling without exit(), the
 * scan-limit progress monitor, and the suspending source that feeds libjpeg like Pillow's
 * ImageFile.load() (64 KiB blocks; see decode_jpeg.c's top comment). */
#ifndef CLIPPREP_JPEG_SOURCE_H
#define CLIPPREP_JPEG_SOURCE_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h> /* jpeglib.h needs FILE and size_t */

#include <jpeglib.h>

#include "error.h"

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int why; /* WHY_* below */
    long warnings; /* corrupt-data warnings seen (ignored by Pillow; the hybrid decode
                      routes such files to the CPU decoder) */
    char msg[JMSG_LENGTH_MAX];
} jerr_ctx;

enum { WHY_LIBJPEG = 1, WHY_EOF, WHY_SCANS };

typedef struct {
    struct jpeg_progress_mgr pub;
    int max_scans;
} jprog_ctx;

/* Suspending in-memory source exposing the data block by block (see decode_jpeg.c). */
#define FEED_BLOCK 65536u

typedef struct {
    struct jpeg_source_mgr pub; /* first member: cinfo->src points here */
    const uint8_t *data;
    size_t len;
    size_t exposed;      /* bytes of data made visible so far */
    size_t pending_skip; /* skip_input_data() beyond the visible data, applied on resume */
} feed_src;

/* Installs the error handler and the source on cinfo (before jpeg_create_decompress). */
void jsrc_setup(struct jpeg_decompress_struct *cinfo, jerr_ctx *jerr, feed_src *src,
                const uint8_t *data, size_t len);
/* After a suspension: exposes the next block(s). False when the data is exhausted. */
bool jsrc_resume(feed_src *s);
/* Progress monitor enforcing jprog_ctx.max_scans (longjmps with WHY_SCANS). */
void jsrc_on_progress(j_common_ptr c);
/* The cp_error for a longjmp'd failure, and for data that ended before the image did. */
bool jsrc_fail(const jerr_ctx *jerr, int max_scans, cp_error *err);
bool jsrc_fail_truncated(cp_error *err);
/* What Pillow's JpegImagePlugin accepts: 8-bit, 1/3/4 components, sane dimensions. */
bool jsrc_check_frame(const struct jpeg_decompress_struct *cinfo, cp_error *err);

#endif
