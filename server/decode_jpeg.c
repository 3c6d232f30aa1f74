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
#include "jpeg_source.h"

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
    jpeg_region *region; /* NULL = whole image */
    bool cmyk_out;       /* 4-component files: Pillow's CMYK (inverted samples), 4 bytes/px */
} jpeg_job;

static void job_init(jpeg_job *j, const uint8_t *data, size_t len)
{
    memset(j, 0, sizeof *j);
    j->scale_denom = 1;
    jsrc_setup(&j->cinfo, &j->jerr, &j->src, data, len);
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
        if (!jsrc_resume(&j->src))
            return RUN_TRUNCATED;
    if (!jsrc_check_frame(&j->cinfo, err))
        return RUN_CHECKED;
    hdr->width = (int)j->cinfo.image_width;
    hdr->height = (int)j->cinfo.image_height;
    hdr->orientation = orientation_from_markers(&j->cinfo);
    hdr->jpeg_blocks = 0;
    hdr->native = j->cinfo.num_components == 4 ? NATIVE_CMYK : NATIVE_AS_RGB;
    for (int c = 0; c < j->cinfo.num_components; c++)
        hdr->jpeg_blocks += (int64_t)j->cinfo.comp_info[c].width_in_blocks *
                            j->cinfo.comp_info[c].height_in_blocks;
    return RUN_OK;
}

static bool finish(jpeg_job *j, int rc, cp_error *err)
{
    job_free(j);
    switch (rc) {
    case RUN_OK: return true;
    case RUN_LIBJPEG: return jsrc_fail(&j->jerr, j->max_scans, err);
    case RUN_TRUNCATED: return jsrc_fail_truncated(err);
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

/* ---- region decoding ------------------------------------------------------------------
 *
 * With a region (decode_options.region_*, output coordinates) only the pixels inside it must
 * equal a full decode. libjpeg-turbo offers two tools:
 *   jpeg_crop_scanline()  columns: aligns the start down to an iMCU column (W output pixels)
 *                         and IDCTs / upsamples / converts only the cropped columns (the
 *                         entropy decoder still decodes every MCU: Huffman data is sequential);
 *   jpeg_skip_scanlines() rows: skips IDCT, upsampling and colour conversion of rows.
 * Neither may change a pixel inside the region, nor which files fail and how.
 *
 * Columns. The crop is widened by margin_x iMCU columns on each side (clamped to the image, the
 * start aligned down to an iMCU column), so the cropped edges, where the decoder sees an
 * artificial image edge, stay away from the region. What an artificial edge changes in
 * libjpeg-turbo 2.1.5:
 *   - fancy upsampling (h2v1, h2v2; h1v2 and box upsampling have no horizontal context): the
 *     outermost output pixel at each cropped edge, whose outer chroma neighbour is replaced by
 *     edge replication. Nothing else in a sequential file looks across block columns, so one
 *     iMCU column (W >= 4 output pixels whenever fancy upsampling is active) is enough:
 *     margin 1 for sequential files;
 *   - progressive block smoothing (decompress_smooth_data; only in progressive files, and only
 *     active where coefficients are incomplete: partial scan scripts, cut files): the first
 *     TWO block columns of every component at the cropped left edge, whose left DC neighbours
 *     are taken from the first block (the right side reads real neighbours). A component block
 *     spans W / h_samp <= W output pixels, so the damage ends within 2W pixels plus one pixel
 *     of upsampling context: margin 3 for progressive files.
 * The unit tests (test_decode_region.c) show both exact over a matrix of sampling factors x
 * coding modes x DCT scales x regions, and show that margin 0 (sequential) and margin 2
 * (progressive) are NOT. With DCT scaling, 2.1.5 computes the cropped width of a component with
 * a differently scaled IDCT wrongly (see crop_is_exact); such files are not cropped.
 *
 * Rows. Skipping is only used where ALL entropy-coded data is consumed before any output row,
 * so that skipping cannot touch the input side (libjpeg.txt: jpeg_skip_scanlines() does not
 * support suspending sources; in single-scan mode it calls decode_mcu() and ignores a
 * suspension, and skipping to the bottom marks EOI as reached without reading the rest):
 *   - multi-scan files (progressive, or non-interleaved sequential): jpeg_start_decompress()
 *     already reads everything up to EOI through our suspending source, exactly as before;
 *   - single-scan files in buffered-image mode: jpeg_consume_input() decodes every MCU into the
 *     coefficient buffer through the same suspending source, calling the same decode_mcu()
 *     sequence with the same exposed bytes as the one-pass decoder would (so suspensions,
 *     64 KiB feeding, truncation and the arithmetic-coding failure are unchanged); a
 *     suspension after the last MCU (while looking for EOI) ends input without error, like the
 *     suspension in jpeg_finish_decompress() of a one-pass decode. Output then comes from the
 *     coefficient buffer through the same IDCT / upsampling / colour conversion (block
 *     smoothing needs progressive mode). Writing and re-reading that buffer costs about a
 *     third of the entropy decoding, so it is only used with full-size IDCTs (no scale_denom)
 *     and when at least a third of the rows can be skipped; otherwise single-scan files are
 *     cropped and every row is decoded in one pass.
 * The band starts at y0 aligned down to an iMCU row (plus margin_y iMCU rows, default 0):
 * jpeg_skip_scanlines() itself decodes and discards the last iMCU row before its target in
 * context-upsampling modes, which gives the first kept row its upper chroma context; without
 * context upsampling rows are independent; block smoothing reads neighbouring block rows from
 * the coefficient buffer, which skipping does not touch. Rows after y1 are skipped to the
 * bottom (input is complete by then). */
#define REGION_MARGIN_X 1             /* sequential files: upsampling context only */
#define REGION_MARGIN_X_PROGRESSIVE 3 /* progressive files: block smoothing as well */
#define REGION_MARGIN_Y 0

typedef struct {
    bool crop;                 /* call jpeg_crop_scanline(xoff, xwidth) */
    bool skip;                 /* rows outside [y0, y1) are skipped */
    bool buffered;             /* single-scan file in buffered-image mode (implies skip) */
    JDIMENSION xoff, xwidth;   /* crop request, xoff iMCU-aligned as libjpeg requires */
    JDIMENSION iw;             /* iMCU column width in output pixels */
    JDIMENSION y0, y1;         /* rows decoded into dst when skipping */
    JDIMENSION conv_y0, conv_y1; /* rows whose gray / CMYK conversion is needed */
} region_plan;

static JDIMENSION clamp_sub(JDIMENSION a, JDIMENSION b)
{
    return a > b ? a - b : 0;
}

/* libjpeg-turbo 2.1.5's jpeg_crop_scanline() sets each component's downsampled_width to
 * ceil(cropped_width * h_samp / max_h_samp), ignoring the component's DCT scaling; that is
 * wrong for a component whose IDCT is scaled differently from the smallest one (DCT scaling of
 * e.g. 4:1:0, where chroma keeps an 8x8 IDCT while luma uses 4x4) and breaks the upsamplers
 * that use the width (fancy h2v1 / h2v2 / h1v2). Later libjpeg-turbo versions fixed the
 * formula. Such components are fine only when they need no upsampling at all. */
static bool crop_is_exact(const struct jpeg_decompress_struct *cinfo)
{
    const int m = cinfo->min_DCT_scaled_size;
    for (int ci = 0; ci < cinfo->num_components; ci++) {
        const jpeg_component_info *c = &cinfo->comp_info[ci];
        if (c->DCT_scaled_size == m)
            continue;
        if (c->h_samp_factor * c->DCT_scaled_size != cinfo->max_h_samp_factor * m ||
            c->v_samp_factor * c->DCT_scaled_size != cinfo->max_v_samp_factor * m)
            return false;
    }
    return true;
}

/* libjpeg-turbo's AVX2 YCbCr->RGB conversion writes a row with non-temporal stores when the
 * row starts 32-byte aligned; a row starting in the middle of a cache line (address = 32 mod
 * 64) then costs partial write-combining flushes (measured: a 640-pixel-wide decode 15-20 %
 * slower). A full decode gets whatever the caller's buffer gives; a crop moves its start left by
 * up to two iMCU columns (always exact: that only widens the margin) when that gives fewer such
 * rows. Rows repeat their alignment every 64 rows at most. */
static JDIMENSION crop_start_for_stores(JDIMENSION xoff, JDIMENSION iw, const uint8_t *dst,
                                        size_t stride)
{
    JDIMENSION best = xoff;
    int best_bad = 65;
    for (JDIMENSION k = 0; k <= 2 && k * iw <= xoff; k++) {
        const uint8_t *p = dst + (size_t)(xoff - k * iw) * 3;
        int bad = 0;
        for (size_t r = 0; r < 64; r++)
            bad += ((uintptr_t)(p + r * stride) & 63) == 32;
        if (bad < best_bad) {
            best = xoff - k * iw;
            best_bad = bad;
        }
        if (bad == 0)
            break;
    }
    return best;
}

/* After jpeg_calc_output_dimensions(): how to decode r (NULL = everything). */
static region_plan plan_region(const struct jpeg_decompress_struct *cinfo, const jpeg_region *r)
{
    const JDIMENSION w = cinfo->output_width, h = cinfo->output_height;
    region_plan p;
    memset(&p, 0, sizeof p);
    p.xwidth = w;
    p.y1 = h;
    p.conv_y1 = h;
    if (!r || r->x0 < 0 || r->y0 < 0 || r->x0 >= r->x1 || r->y0 >= r->y1 ||
        (JDIMENSION)r->x1 > w || (JDIMENSION)r->y1 > h)
        return p;
    /* iMCU column width and row height in output pixels, as jpeg_crop_scanline() and
     * jpeg_skip_scanlines() compute them */
    const JDIMENSION iw = (JDIMENSION)cinfo->min_DCT_scaled_size *
                          (cinfo->comps_in_scan == 1 && cinfo->num_components == 1
                               ? 1 : (JDIMENSION)cinfo->max_h_samp_factor);
    const JDIMENSION ih = (JDIMENSION)cinfo->min_DCT_scaled_size *
                          (JDIMENSION)cinfo->max_v_samp_factor;
    const JDIMENSION mx = (JDIMENSION)(r->margin_x >= 0         ? r->margin_x
                                       : cinfo->progressive_mode ? REGION_MARGIN_X_PROGRESSIVE
                                                                 : REGION_MARGIN_X);
    const JDIMENSION my = (JDIMENSION)(r->margin_y >= 0 ? r->margin_y : REGION_MARGIN_Y);

    JDIMENSION x0 = clamp_sub((JDIMENSION)r->x0, mx * iw);
    JDIMENSION x1 = (JDIMENSION)r->x1 + mx * iw;
    if (x1 > w)
        x1 = w;
    x0 -= x0 % iw;
    p.iw = iw;
    if ((x0 > 0 || x1 < w) && crop_is_exact(cinfo)) {
        p.crop = true;
        p.xoff = x0;
        p.xwidth = x1 - x0;
    }

    JDIMENSION y0 = clamp_sub((JDIMENSION)r->y0, my * ih);
    y0 -= y0 % ih;
    JDIMENSION y1 = (JDIMENSION)r->y1;
    p.conv_y0 = (JDIMENSION)r->y0;
    p.conv_y1 = y1;
    if (y0 > 0 || y1 < h) {
        bool multiscan = cinfo->progressive_mode || cinfo->comps_in_scan < cinfo->num_components;
        if (multiscan) {
            p.skip = true;
        } else if (cinfo->min_DCT_scaled_size == DCTSIZE &&
                   (uint64_t)(h - (y1 - y0)) * 3 >= h) {
            p.skip = p.buffered = true;
        }
        if (p.skip) {
            p.y0 = y0;
            p.y1 = y1;
        }
    }
    return p;
}

static int pixels_run(jpeg_job *j, const image_header *hdr, uint8_t *dst, cp_error *err)
{
    struct jpeg_decompress_struct *cinfo = &j->cinfo;
    if (setjmp(j->jerr.jb))
        return RUN_LIBJPEG;
    jpeg_create_decompress(cinfo);
    cinfo->src = &j->src.pub;
    while (jpeg_read_header(cinfo, TRUE) == JPEG_SUSPENDED)
        if (!jsrc_resume(&j->src))
            return RUN_TRUNCATED;
    if (!jsrc_check_frame(cinfo, err))
        return RUN_CHECKED;
    if ((int)cinfo->image_width != hdr->width || (int)cinfo->image_height != hdr->height)
        return RUN_MISMATCH;
    const int ncomp = cinfo->num_components;
    cinfo->out_color_space = ncomp == 1 ? JCS_GRAYSCALE : ncomp == 3 ? JCS_RGB : JCS_CMYK;
    if (j->max_scans > 0) {
        j->prog.pub.progress_monitor = jsrc_on_progress;
        j->prog.max_scans = j->max_scans;
        cinfo->progress = &j->prog.pub;
    }

    /* fast mode: libjpeg's DCT-domain scaling (a reduced IDCT), 1/2, 1/4 or 1/8 */
    cinfo->scale_num = 1;
    cinfo->scale_denom = (unsigned)j->scale_denom;
    jpeg_calc_output_dimensions(cinfo);
    const size_t w = cinfo->output_width, h = cinfo->output_height, stride = w * 3;
    const int d = j->scale_denom;
    if ((int)w != (hdr->width + d - 1) / d || (int)h != (hdr->height + d - 1) / d ||
        cinfo->output_components != ncomp)
        return RUN_MISMATCH;
    region_plan plan = plan_region(cinfo, j->region);
    if (plan.buffered)
        cinfo->buffered_image = TRUE;
    if (j->region)
        j->region->buffered = plan.buffered;

    while (!jpeg_start_decompress(cinfo))
        if (!jsrc_resume(&j->src))
            return RUN_TRUNCATED;
    if (plan.buffered) {
        /* all entropy-coded data first (see "Region decoding" above) */
        for (;;) {
            int rc = jpeg_consume_input(cinfo);
            if (rc == JPEG_REACHED_EOI)
                break;
            if (rc != JPEG_SUSPENDED)
                continue;
            if (cinfo->input_iMCU_row >= cinfo->total_iMCU_rows)
                break; /* scan complete, suspended looking for EOI: like finish_decompress */
            if (!jsrc_resume(&j->src))
                return RUN_TRUNCATED;
        }
        if (!jpeg_start_output(cinfo, cinfo->input_scan_number))
            return RUN_MISMATCH; /* cannot happen: no dummy passes without quantization */
    }
    if (cinfo->output_width != w || cinfo->output_height != h)
        return RUN_MISMATCH;
    if (ncomp == 4) {
        j->cmyk_row = malloc(w * 4);
        if (!j->cmyk_row)
            return RUN_NOMEM;
    }

    JDIMENSION xoff = 0, cw = (JDIMENSION)w;
    if (plan.crop) {
        xoff = plan.xoff;
        if (ncomp == 3 && j->region->margin_x < 0) /* (explicit margins: tests, exactly) */
            xoff = crop_start_for_stores(xoff, plan.iw, dst, stride);
        cw = plan.xwidth + (plan.xoff - xoff);
        jpeg_crop_scanline(cinfo, &xoff, &cw);
        if ((size_t)xoff + cw > w || cinfo->output_width != cw)
            return RUN_MISMATCH;
    }
    const JDIMENSION row_end = plan.skip ? plan.y1 : (JDIMENSION)h;
    if (plan.skip && plan.y0 > 0 && jpeg_skip_scanlines(cinfo, plan.y0) != plan.y0)
        return RUN_MISMATCH;
    if (j->region) {
        j->region->mode = plan.skip ? JPEG_REGION_CROP_SKIP
                          : plan.crop ? JPEG_REGION_CROP : JPEG_REGION_FULL;
        j->region->dec_x0 = (int)xoff;
        j->region->dec_x1 = (int)(xoff + cw);
        j->region->dec_y0 = (int)cinfo->output_scanline;
        j->region->dec_y1 = (int)row_end;
    }

    while (cinfo->output_scanline < row_end) {
        size_t y = cinfo->output_scanline;
        JSAMPROW rows[8];
        JDIMENSION want = 1;
        if (ncomp == 4) {
            rows[0] = j->cmyk_row;
        } else {
            want = (JDIMENSION)(row_end - y < 8 ? row_end - y : 8);
            for (JDIMENSION i = 0; i < want; i++)
                rows[i] = dst + (y + i) * stride + (size_t)xoff * 3;
        }
        JDIMENSION got = jpeg_read_scanlines(cinfo, rows, want);
        if (got == 0) { /* suspended */
            if (!jsrc_resume(&j->src))
                return RUN_TRUNCATED; /* the data ended before the image did */
            continue;
        }
        if (ncomp == 1) {
            for (JDIMENSION i = 0; i < got; i++) {
                if (y + i < plan.conv_y0 || y + i >= plan.conv_y1)
                    continue;
                uint8_t *r = rows[i];
                for (size_t x = cw; x-- > 0;) {
                    uint8_t v = r[x];
                    r[3 * x] = r[3 * x + 1] = r[3 * x + 2] = v;
                }
            }
        } else if (ncomp == 4 && j->cmyk_out) {
            const uint8_t *s = j->cmyk_row;
            uint8_t *o = dst + y * w * 4;
            for (size_t x = 0; x < (size_t)w * 4; x++) /* "CMYK;I" */
                o[x] = (uint8_t)(255u - s[x]);
        } else if (ncomp == 4 && y >= plan.conv_y0 && y < plan.conv_y1) {
            const uint8_t *s = j->cmyk_row;
            uint8_t *o = dst + y * stride + (size_t)xoff * 3;
            for (size_t x = 0; x < cw; x++, s += 4, o += 3) /* "CMYK;I": invert first */
                decode_cmyk_to_rgb(o, 255u - s[0], 255u - s[1], 255u - s[2], 255u - s[3]);
        }
    }
    if (plan.buffered)
        return RUN_OK; /* input was read to EOI (or its suspension) above */
    if (plan.skip && row_end < h)
        jpeg_skip_scanlines(cinfo, (JDIMENSION)(h - row_end)); /* input is complete */
    /* Like Pillow: all rows are in; a suspension while looking for EOI ends decoding without
     * feeding more data, an error while reading trailing markers fails (Pillow's decoder
     * reports it as a broken data stream). */
    (void)jpeg_finish_decompress(cinfo);
    return RUN_OK;
}

bool decode_jpeg_pixels(const uint8_t *data, size_t len, const image_header *hdr, int max_scans,
                        int scale_denom, jpeg_region *region, uint8_t *dst, cp_error *err)
{
    jpeg_job job;
    job_init(&job, data, len);
    job.max_scans = max_scans;
    job.scale_denom = scale_denom > 1 ? scale_denom : 1;
    job.region = region;
    if (region) {
        region->mode = JPEG_REGION_FULL;
        region->buffered = false;
        region->dec_x0 = region->dec_y0 = 0;
        region->dec_x1 = region->dec_y1 = 0;
    }
    return finish(&job, pixels_run(&job, hdr, dst, err), err);
}

bool decode_jpeg_cmyk(const uint8_t *data, size_t len, const image_header *hdr, int max_scans,
                      uint8_t *dst, cp_error *err)
{
    jpeg_job job;
    job_init(&job, data, len);
    job.max_scans = max_scans;
    job.cmyk_out = true;
    return finish(&job, pixels_run(&job, hdr, dst, err), err);
}
