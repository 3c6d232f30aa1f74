/* decode_jpeg.c — JPEG via libjpeg(-turbo)'s classic API, set up like Pillow's JpegDecode.c:
 * library defaults (JDCT_ISLOW, fancy upsampling, block smoothing), out_color_space
 * GRAYSCALE / RGB / CMYK for 1 / 3 / 4 components, warnings ignored.
 *
 * Data feeding reproduces Pillow's ImageFile.load() + JpegDecode.c exactly: libjpeg sees a
 * *suspending* source that exposes the file in 64 KiB blocks (ImageFile.MAXBLOCK). When a
 * libjpeg call suspends, the next block is exposed and the call repeated; when it suspends
 * with the whole file exposed, the image is truncated ("image file is truncated" in Pillow)
 * and we fail with INVALID_IMAGE. Consequences, all identical to Pillow 11.3:
 *   - no fabricated EOI (jpeg_mem_src would insert one with a JWRN_JPEG_EOF warning);
 *   - a suspension inside jpeg_finish_decompress() (e.g. a missing EOI after complete image
 *     data) is not an error, and no further data is read for it;
 *   - arithmetic-coded scans cannot suspend (libjpeg: "Suspension not allowed here"), so an
 *     arithmetic-coded JPEG fails when its entropy-coded data crosses a 64 KiB boundary
 *     (in practice: arithmetic JPEGs larger than 64 KiB). Pillow fails on exactly those.
 * Other libjpeg warnings (corrupt data, extraneous bytes) are ignored, as in Pillow.
 *
 * CMYK/YCCK (4 components): libjpeg converts YCCK to CMYK; Pillow then ALWAYS reads the
 * samples as inverted ("CMYK;I", JpegImagePlugin: "assume adobe conventions" — independent of
 * the presence of an Adobe APP14 marker) and converts CMYK to RGB with Convert.c cmyk2rgb. */
#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE and size_t */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "decode_internal.h"
#include "exif.h"

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int why; /* WHY_* below */
    char msg[JMSG_LENGTH_MAX];
} jerr_ctx;

enum { WHY_LIBJPEG = 1, WHY_EOF, WHY_SCANS };

typedef struct {
    struct jpeg_progress_mgr pub;
    int max_scans;
} jprog_ctx;

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
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
        jerr_ctx *e = (jerr_ctx *)c->err;
        e->why = WHY_EOF;
        longjmp(e->jb, 1);
    }
}

static void on_output_message(j_common_ptr c)
{
    (void)c;
}

static void on_progress(j_common_ptr c)
{
    jprog_ctx *p = (jprog_ctx *)c->progress;
    if (c->is_decompressor && p->max_scans > 0 &&
        ((j_decompress_ptr)c)->input_scan_number > p->max_scans) {
        jerr_ctx *e = (jerr_ctx *)c->err;
        e->why = WHY_SCANS;
        longjmp(e->jb, 1);
    }
}

/* Suspending in-memory source exposing the data block by block (see the top comment). */
#define FEED_BLOCK 65536u

typedef struct {
    struct jpeg_source_mgr pub; /* first member: cinfo->src points here */
    const uint8_t *data;
    size_t len;
    size_t exposed;      /* bytes of data made visible so far */
    size_t pending_skip; /* skip_input_data() beyond the visible data, applied on resume */
} feed_src;

static void src_init(j_decompress_ptr c)
{
    (void)c;
}

static boolean src_fill(j_decompress_ptr c)
{
    (void)c;
    return FALSE; /* suspend; the caller exposes more data and retries (feed_resume) */
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
static bool feed_resume(feed_src *s)
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

static void setup(struct jpeg_decompress_struct *cinfo, jerr_ctx *jerr, feed_src *src,
                  const uint8_t *data, size_t len)
{
    cinfo->err = jpeg_std_error(&jerr->pub);
    jerr->pub.error_exit = on_error_exit;
    jerr->pub.emit_message = on_emit_message;
    jerr->pub.output_message = on_output_message;
    jerr->why = 0;
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

static bool fail_from(const jerr_ctx *jerr, int max_scans, cp_error *err)
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

static bool fail_truncated(cp_error *err)
{
    return cp_fail(err, CP_ERR_INVALID_IMAGE,
                   "jpeg: Premature end of JPEG file (image file is truncated)");
}

/* Checks shared by header and decode: what Pillow's JpegImagePlugin accepts. */
static bool check_frame(const struct jpeg_decompress_struct *cinfo, cp_error *err)
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

/* Orientation from the saved APP1 markers: EXIF segments concatenated like Pillow
 * (the first whole, later ones without their "Exif\0\0"), XMP (last one) as fallback. */
static int orientation_from_markers(const struct jpeg_decompress_struct *cinfo)
{
    static const char xmp_ns[] = "http://ns.adobe.com/xap/1.0/"; /* followed by NUL */
    const size_t xmp_ns_len = sizeof xmp_ns; /* including the NUL */
    const uint8_t *first = NULL, *xmp = NULL;
    size_t first_len = 0, total = 0, xmp_len = 0;
    int nexif = 0;

    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        if (m->marker != JPEG_APP0 + 1)
            continue;
        if (m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0) {
            if (nexif++ == 0) {
                first = m->data;
                first_len = m->data_length;
                total = first_len;
            } else {
                total += m->data_length - 6;
            }
        } else if (m->data_length >= xmp_ns_len && memcmp(m->data, xmp_ns, xmp_ns_len) == 0) {
            xmp = m->data + xmp_ns_len;
            xmp_len = m->data_length - xmp_ns_len;
        }
    }

    int exif_value = EXIF_ORIENTATION_ABSENT;
    if (nexif == 1) {
        exif_value = exif_find_orientation(first, first_len);
    } else if (nexif > 1) {
        uint8_t *joined = malloc(total);
        if (joined) {
            size_t off = 0;
            int k = 0;
            for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
                if (m->marker != JPEG_APP0 + 1 || m->data_length < 6 ||
                    memcmp(m->data, "Exif\0\0", 6) != 0)
                    continue;
                size_t skip = k++ == 0 ? 0 : 6;
                memcpy(joined + off, m->data + skip, m->data_length - skip);
                off += m->data_length - skip;
            }
            exif_value = exif_find_orientation(joined, off);
            free(joined);
        } else {
            exif_value = exif_find_orientation(first, first_len);
        }
    }
    int xmp_value = EXIF_ORIENTATION_ABSENT;
    if (exif_value == EXIF_ORIENTATION_ABSENT && xmp)
        xmp_value = xmp_find_orientation(xmp, xmp_len);
    return orientation_resolve(exif_value, xmp_value);
}

/* Per-call state. It lives in the frame of the function that calls the setjmp function, so
 * everything in it is well defined after a longjmp. */
typedef struct {
    struct jpeg_decompress_struct cinfo;
    jerr_ctx jerr;
    jprog_ctx prog;
    feed_src src;
    uint8_t *cmyk_row;
    int max_scans;
    int scale_denom; /* 1 = full size */
} jpeg_job;

static void job_init(jpeg_job *j, const uint8_t *data, size_t len)
{
    memset(j, 0, sizeof *j);
    j->scale_denom = 1;
    setup(&j->cinfo, &j->jerr, &j->src, data, len);
}

static void job_free(jpeg_job *j)
{
    jpeg_destroy_decompress(&j->cinfo);
    free(j->cmyk_row);
    j->cmyk_row = NULL;
}

/* Results of the setjmp functions below besides true/false. */
enum { RUN_OK = 0, RUN_LIBJPEG, RUN_TRUNCATED, RUN_CHECKED, RUN_MISMATCH, RUN_NOMEM };

static int header_run(jpeg_job *j, image_header *hdr, cp_error *err)
{
    if (setjmp(j->jerr.jb))
        return RUN_LIBJPEG;
    jpeg_create_decompress(&j->cinfo);
    j->cinfo.src = &j->src.pub;
    jpeg_save_markers(&j->cinfo, JPEG_APP0 + 1, 0xffff);
    while (jpeg_read_header(&j->cinfo, TRUE) == JPEG_SUSPENDED)
        if (!feed_resume(&j->src))
            return RUN_TRUNCATED;
    if (!check_frame(&j->cinfo, err))
        return RUN_CHECKED;
    hdr->width = (int)j->cinfo.image_width;
    hdr->height = (int)j->cinfo.image_height;
    hdr->orientation = orientation_from_markers(&j->cinfo);
    return RUN_OK;
}

static bool finish(jpeg_job *j, int rc, cp_error *err)
{
    job_free(j);
    switch (rc) {
    case RUN_OK: return true;
    case RUN_LIBJPEG: return fail_from(&j->jerr, j->max_scans, err);
    case RUN_TRUNCATED: return fail_truncated(err);
    case RUN_MISMATCH:
        return cp_fail(err, CP_ERR_INTERNAL, "jpeg: image data does not match its header");
    case RUN_NOMEM: return cp_fail(err, CP_ERR_INTERNAL, "jpeg: out of memory");
    default: return false; /* RUN_CHECKED: err already set */
    }
}

bool decode_jpeg_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err)
{
    jpeg_job job;
    hdr->format = IMAGE_FORMAT_JPEG;
    job_init(&job, data, len);
    return finish(&job, header_run(&job, hdr, err), err);
}

static int pixels_run(jpeg_job *j, const image_header *hdr, uint8_t *dst, cp_error *err)
{
    struct jpeg_decompress_struct *cinfo = &j->cinfo;
    if (setjmp(j->jerr.jb))
        return RUN_LIBJPEG;
    jpeg_create_decompress(cinfo);
    cinfo->src = &j->src.pub;
    while (jpeg_read_header(cinfo, TRUE) == JPEG_SUSPENDED)
        if (!feed_resume(&j->src))
            return RUN_TRUNCATED;
    if (!check_frame(cinfo, err))
        return RUN_CHECKED;
    if ((int)cinfo->image_width != hdr->width || (int)cinfo->image_height != hdr->height)
        return RUN_MISMATCH;
    const int ncomp = cinfo->num_components;
    cinfo->out_color_space = ncomp == 1 ? JCS_GRAYSCALE : ncomp == 3 ? JCS_RGB : JCS_CMYK;
    if (j->max_scans > 0) {
        j->prog.pub.progress_monitor = on_progress;
        j->prog.max_scans = j->max_scans;
        cinfo->progress = &j->prog.pub;
    }

    /* fast mode: libjpeg's DCT-domain scaling (a reduced IDCT), 1/2, 1/4 or 1/8 */
    cinfo->scale_num = 1;
    cinfo->scale_denom = (unsigned)j->scale_denom;
    while (!jpeg_start_decompress(cinfo))
        if (!feed_resume(&j->src))
            return RUN_TRUNCATED;
    const size_t w = cinfo->output_width, h = cinfo->output_height, stride = w * 3;
    const int d = j->scale_denom;
    if ((int)w != (hdr->width + d - 1) / d || (int)h != (hdr->height + d - 1) / d ||
        cinfo->output_components != ncomp)
        return RUN_MISMATCH;
    if (ncomp == 4) {
        j->cmyk_row = malloc(w * 4);
        if (!j->cmyk_row)
            return RUN_NOMEM;
    }

    while (cinfo->output_scanline < h) {
        size_t y = cinfo->output_scanline;
        JSAMPROW rows[8];
        JDIMENSION want = 1;
        if (ncomp == 4) {
            rows[0] = j->cmyk_row;
        } else {
            want = (JDIMENSION)(h - y < 8 ? h - y : 8);
            for (JDIMENSION i = 0; i < want; i++)
                rows[i] = dst + (y + i) * stride;
        }
        JDIMENSION got = jpeg_read_scanlines(cinfo, rows, want);
        if (got == 0) { /* suspended */
            if (!feed_resume(&j->src))
                return RUN_TRUNCATED; /* the data ended before the image did */
            continue;
        }
        if (ncomp == 1) {
            for (JDIMENSION i = 0; i < got; i++) {
                uint8_t *r = rows[i];
                for (size_t x = w; x-- > 0;) {
                    uint8_t v = r[x];
                    r[3 * x] = r[3 * x + 1] = r[3 * x + 2] = v;
                }
            }
        } else if (ncomp == 4) {
            const uint8_t *s = j->cmyk_row;
            uint8_t *o = dst + y * stride;
            for (size_t x = 0; x < w; x++, s += 4, o += 3) /* "CMYK;I": invert first */
                decode_cmyk_to_rgb(o, 255u - s[0], 255u - s[1], 255u - s[2], 255u - s[3]);
        }
    }
    /* Like Pillow: all rows are in; a suspension while looking for EOI ends decoding without
     * feeding more data, an error while reading trailing markers fails (Pillow's decoder
     * reports it as a broken data stream). */
    (void)jpeg_finish_decompress(cinfo);
    return RUN_OK;
}

bool decode_jpeg_pixels(const uint8_t *data, size_t len, const image_header *hdr, int max_scans,
                        int scale_denom, uint8_t *dst, cp_error *err)
{
    jpeg_job job;
    job_init(&job, data, len);
    job.max_scans = max_scans;
    job.scale_denom = scale_denom > 1 ? scale_denom : 1;
    return finish(&job, pixels_run(&job, hdr, dst, err), err);
}
