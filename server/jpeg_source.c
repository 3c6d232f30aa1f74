/* jpeg_source.c — libjpeg plumbing shared by the JPEG decoders (see jpeg_source.h). */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>

#include "jpeg_source.h"

static void on_error_exit(j_common_ptr c)
{
    jerr_ctx *e = (jerr_ctx *)c->err;
    e->msg[0] = '\0';
    (*c->err->format_message)(c, e->msg);
    e->why = WHY_LIBJPEG;
    longjmp(e->jb, 1);
}

static void on_emit_message(j_common_ptr c, int level)
{
    /* Warnings (level < 0) and trace messages are ignored, as in Pillow. Our source never
     * produces JWRN_JPEG_EOF, but should a libjpeg build emit it, it is a truncation. */
    jerr_ctx *e = (jerr_ctx *)c->err;
    if (level < 0)
        e->warnings++;
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
        e->why = WHY_EOF;
        longjmp(e->jb, 1);
    }
}

static void on_output_message(j_common_ptr c)
{
    (void)c;
}

void jsrc_on_progress(j_common_ptr c)
{
    jprog_ctx *p = (jprog_ctx *)c->progress;
    if (c->is_decompressor && p->max_scans > 0 &&
        ((j_decompress_ptr)c)->input_scan_number > p->max_scans) {
        jerr_ctx *e = (jerr_ctx *)c->err;
        e->why = WHY_SCANS;
        longjmp(e->jb, 1);
    }
}


static void src_init(j_decompress_ptr c)
{
    (void)c;
}

static boolean src_fill(j_decompress_ptr c)
{
    (void)c;
    return FALSE; /* suspend; the caller exposes more data and retries (jsrc_resume) */
}

static void src_skip(j_decompress_ptr c, long n)
{
    feed_src *s = (feed_src *)c->src;
    if (n <= 0)
        return;
    if ((unsigned long)n > s->pub.bytes_in_buffer) {
        s->pending_skip += (size_t)n - s->pub.bytes_in_buffer;
        s->pub.next_input_byte += s->pub.bytes_in_buffer;
        s->pub.bytes_in_buffer = 0; /* the next read suspends */
    } else {
        s->pub.next_input_byte += n;
        s->pub.bytes_in_buffer -= (size_t)n;
    }
}

static void src_term(j_decompress_ptr c)
{
    (void)c;
}

/* After a suspension: expose the next block(s), as Pillow's load loop does. False at EOF. */
bool jsrc_resume(feed_src *s)
{
    do {
        if (s->exposed >= s->len)
            return false;
        size_t add = s->len - s->exposed < FEED_BLOCK ? s->len - s->exposed : FEED_BLOCK;
        s->exposed += add;
        s->pub.bytes_in_buffer += add;
        if (s->pending_skip > 0) {
            size_t k = s->pending_skip < s->pub.bytes_in_buffer ? s->pending_skip
                                                                 : s->pub.bytes_in_buffer;
            s->pub.next_input_byte += k;
            s->pub.bytes_in_buffer -= k;
            s->pending_skip -= k;
        }
    } while (s->pending_skip > 0);
    return true;
}

void jsrc_setup(struct jpeg_decompress_struct *cinfo, jerr_ctx *jerr, feed_src *src,
                  const uint8_t *data, size_t len)
{
    cinfo->err = jpeg_std_error(&jerr->pub);
    jerr->pub.error_exit = on_error_exit;
    jerr->pub.emit_message = on_emit_message;
    jerr->pub.output_message = on_output_message;
    jerr->why = 0;
    jerr->warnings = 0;
    jerr->msg[0] = '\0';
    src->pub.init_source = src_init;
    src->pub.fill_input_buffer = src_fill;
    src->pub.skip_input_data = src_skip;
    src->pub.resync_to_restart = jpeg_resync_to_restart;
    src->pub.term_source = src_term;
    src->data = data;
    src->len = len;
    src->exposed = len < FEED_BLOCK ? len : FEED_BLOCK;
    src->pending_skip = 0;
    src->pub.next_input_byte = data;
    src->pub.bytes_in_buffer = src->exposed;
}

bool jsrc_fail(const jerr_ctx *jerr, int max_scans, cp_error *err)
{
    switch (jerr->why) {
    case WHY_SCANS:
        return cp_fail(err, CP_ERR_INVALID_IMAGE,
                       "jpeg: too many progressive scans (more than %d)", max_scans);
    case WHY_EOF:
        return cp_fail(err, CP_ERR_INVALID_IMAGE,
                       "jpeg: Premature end of JPEG file (image file is truncated)");
    default:
        if (jerr->pub.msg_code == JERR_CANT_SUSPEND)
            return cp_fail(err, CP_ERR_INVALID_IMAGE,
                           "jpeg: %s (arithmetic-coded data across a 64 KiB block; "
                           "Pillow cannot decode this file either)", jerr->msg);
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "jpeg: %s",
                       jerr->msg[0] ? jerr->msg : "corrupt JPEG data");
    }
}

bool jsrc_fail_truncated(cp_error *err)
{
    return cp_fail(err, CP_ERR_INVALID_IMAGE,
                   "jpeg: Premature end of JPEG file (image file is truncated)");
}

/* Checks shared by header and decode: what Pillow's JpegImagePlugin accepts. */
bool jsrc_check_frame(const struct jpeg_decompress_struct *cinfo, cp_error *err)
{
    if (cinfo->data_precision != 8)
        return cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT, "jpeg: cannot handle %d-bit samples",
                       cinfo->data_precision);
    if (cinfo->num_components != 1 && cinfo->num_components != 3 && cinfo->num_components != 4)
        return cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT, "jpeg: cannot handle %d-component images",
                       cinfo->num_components);
    if (cinfo->image_width == 0 || cinfo->image_height == 0 ||
        cinfo->image_width > JPEG_MAX_DIMENSION || cinfo->image_height > JPEG_MAX_DIMENSION)
        return cp_fail(err, CP_ERR_INVALID_IMAGE,
                       "jpeg: unsupported image dimensions %ux%u (1..%ld per side)",
                       (unsigned)cinfo->image_width, (unsigned)cinfo->image_height,
                       (long)JPEG_MAX_DIMENSION);
    return true;
}
