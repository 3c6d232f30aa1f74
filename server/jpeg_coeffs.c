/* jpeg_coeffs.c — entropy decoding for the hybrid GPU decode, and who may take it.
 *
 * Eligibility (../shared/docs/hybrid-decode.md sections 1 and 3), decided here on the CPU:
 *   - JPEG, 8-bit (libjpeg-turbo 2.1.5 as built by Debian rejects 12-bit and lossless anyway),
 *     no DCT scaling (mode=fast uses libjpeg's reduced IDCTs; not modelled);
 *   - no libjpeg error and no warning (corrupt data, extraneous bytes, bad restart markers...):
 *     Pillow ignores warnings but libjpeg's output then depends on its recovery state, so the
 *     CPU decoder handles those files, as it handles truncation and every error message;
 *   - not smoothing-active: progressive files whose zigzag coefficients 1..9 did not all reach
 *     full precision (Al = 0) in some component would be block-smoothed by libjpeg. We route
 *     them to the CPU decoder instead of modelling the smoothing (it is version-specific and
 *     rare: standard progressive scripts refine everything);
 *   - a colour space and sampling libjpeg decodes (integral ratios; gray, YCbCr, RGB, CMYK,
 *     YCCK).
 * The IDCT guard (adversarial coefficients) is checked per block on the GPU and reported per
 * image; the caller then decodes that image on the CPU. */
#include "jpeg_coeffs.h"

#include <string.h>

#include "jpeg_source.h"

static const char *const REASONS[JPEG_HYBRID_REASONS] = {
    [JPEG_HYBRID_OK] = "ok",
    [JPEG_HYBRID_NOT_JPEG] = "not_jpeg",
    [JPEG_HYBRID_SCALED] = "scaled",
    [JPEG_HYBRID_TOO_LARGE] = "too_large",
    [JPEG_HYBRID_CORRUPT] = "corrupt",
    [JPEG_HYBRID_SMOOTHING] = "block_smoothing",
    [JPEG_HYBRID_LAYOUT] = "layout",
    [JPEG_HYBRID_GUARD] = "idct_guard",
};

const char *jpeg_hybrid_reason_name(jpeg_hybrid_reason r)
{
    return r >= 0 && r < JPEG_HYBRID_REASONS ? REASONS[r] : "unknown";
}

jpeg_hybrid_reason jpeg_hybrid_precheck(const image_header *hdr, const decode_options *opt,
                                        uint64_t max_blocks)
{
    if (hdr->format != IMAGE_FORMAT_JPEG || hdr->jpeg_blocks <= 0)
        return JPEG_HYBRID_NOT_JPEG;
    if (opt && opt->scale_denom > 1)
        return JPEG_HYBRID_SCALED;
    if (opt && opt->native.on)
        return JPEG_HYBRID_LAYOUT; /* open_clip CMYK: resized in CMYK on the CPU */
    if ((uint64_t)hdr->jpeg_blocks > max_blocks)
        return JPEG_HYBRID_TOO_LARGE;
    return JPEG_HYBRID_OK;
}

typedef struct {
    struct jpeg_decompress_struct cinfo;
    jerr_ctx jerr;
    jprog_ctx prog;
    feed_src src;
} coeff_job;

static int color_of(const struct jpeg_decompress_struct *ci)
{
    switch (ci->num_components) {
    case 1: return ci->jpeg_color_space == JCS_GRAYSCALE ? JH_COLOR_GRAY : -1;
    case 3: return ci->jpeg_color_space == JCS_YCbCr ? JH_COLOR_YCC
                   : ci->jpeg_color_space == JCS_RGB ? JH_COLOR_RGB : -1;
    case 4: return ci->jpeg_color_space == JCS_CMYK ? JH_COLOR_CMYK
                   : ci->jpeg_color_space == JCS_YCCK ? JH_COLOR_YCCK : -1;
    default: return -1;
    }
}

/* jdsample.c jinit_upsampler with do_fancy_upsampling and full-size IDCTs. */
static int method_of(int hr, int vr, int dw)
{
    if (hr == 1 && vr == 1)
        return JH_UP_FULL;
    if (hr == 2 && vr == 1)
        return dw > 2 ? JH_UP_H2V1_FANCY : JH_UP_BOX;
    if (hr == 1 && vr == 2)
        return JH_UP_H1V2_FANCY;
    if (hr == 2 && vr == 2)
        return dw > 2 ? JH_UP_H2V2_FANCY : JH_UP_BOX;
    return JH_UP_BOX;
}

/* libjpeg's decompress_smooth_data would run (jdcoefct.c smoothing_ok), conservatively: any
 * progressive file with a low-frequency coefficient short of full precision, or without DC. */
static bool smoothing_possible(const struct jpeg_decompress_struct *ci)
{
    if (!ci->progressive_mode || !ci->coef_bits)
        return false;
    for (int c = 0; c < ci->num_components; c++)
        for (int k = 0; k < 10; k++)
            if (ci->coef_bits[c][k] != 0)
                return true;
    return false;
}

/* The layout of the decoded file into out; false if libjpeg would not decode it this way. */
static bool describe(const struct jpeg_decompress_struct *ci, int orientation, jpeg_coeffs *out)
{
    int color = color_of(ci);
    if (color < 0)
        return false;
    jh_image *m = &out->image;
    memset(out, 0, sizeof *out);
    m->width = (int32_t)ci->image_width;
    m->height = (int32_t)ci->image_height;
    m->ncomp = ci->num_components;
    m->color = color;
    m->orientation = orientation;
    uint64_t at = 0;
    for (int c = 0; c < ci->num_components; c++) {
        const jpeg_component_info *cp = &ci->comp_info[c];
        if (!cp->quant_table || cp->h_samp_factor <= 0 || cp->v_samp_factor <= 0 ||
            ci->max_h_samp_factor % cp->h_samp_factor != 0 ||
            ci->max_v_samp_factor % cp->v_samp_factor != 0)
            return false;
        jh_plane *p = &out->planes[c];
        p->coef_off = at * 64;
        p->plane_off = at * 64;
        p->wb = (int32_t)cp->width_in_blocks;
        p->hb = (int32_t)cp->height_in_blocks;
        p->image = 0;
        for (int k = 0; k < 64; k++)
            p->quant[k] = (int16_t)cp->quant_table->quantval[k];
        at += (uint64_t)p->wb * p->hb;
        m->plane[c] = c;
        m->dw[c] = (int32_t)cp->downsampled_width;
        m->dh[c] = (int32_t)cp->downsampled_height;
        m->hr[c] = ci->max_h_samp_factor / cp->h_samp_factor;
        m->vr[c] = ci->max_v_samp_factor / cp->v_samp_factor;
        m->method[c] = method_of(m->hr[c], m->vr[c], m->dw[c]);
        if (m->dw[c] <= 0 || m->dh[c] <= 0 || m->dw[c] > p->wb * 8 || m->dh[c] > p->hb * 8)
            return false;
    }
    out->n_planes = ci->num_components;
    out->blocks = at;
    return true;
}

static jpeg_hybrid_reason read_run(coeff_job *j, const image_header *hdr, int orientation,
                                   int16_t *dst, uint64_t dst_blocks, jpeg_coeffs *out)
{
    struct jpeg_decompress_struct *ci = &j->cinfo;
    if (setjmp(j->jerr.jb))
        return JPEG_HYBRID_CORRUPT;
    jpeg_create_decompress(ci);
    ci->src = &j->src.pub;
    if (j->prog.max_scans > 0) {
        j->prog.pub.progress_monitor = jsrc_on_progress;
        ci->progress = &j->prog.pub;
    }
    while (jpeg_read_header(ci, TRUE) == JPEG_SUSPENDED)
        if (!jsrc_resume(&j->src))
            return JPEG_HYBRID_CORRUPT;
    cp_error e;
    if (!jsrc_check_frame(ci, &e) || (int)ci->image_width != hdr->width ||
        (int)ci->image_height != hdr->height)
        return JPEG_HYBRID_CORRUPT;
    jvirt_barray_ptr *arrays;
    /* A suspension with all data exposed (truncated, or no EOI after the last scan) goes to the
     * CPU decoder, which decides between Pillow's "truncated" error and a clean finish. */
    while (!(arrays = jpeg_read_coefficients(ci)))
        if (!jsrc_resume(&j->src))
            return JPEG_HYBRID_CORRUPT;
    if (j->jerr.warnings > 0)
        return JPEG_HYBRID_CORRUPT;
    if (smoothing_possible(ci))
        return JPEG_HYBRID_SMOOTHING;
    if (!describe(ci, orientation, out))
        return JPEG_HYBRID_LAYOUT;
    if (out->blocks > dst_blocks || (int64_t)out->blocks != hdr->jpeg_blocks)
        return JPEG_HYBRID_TOO_LARGE;
    for (int c = 0; c < ci->num_components; c++) {
        const jh_plane *p = &out->planes[c];
        size_t row_bytes = (size_t)p->wb * 64 * sizeof(int16_t);
        for (int32_t by = 0; by < p->hb; by++) {
            JBLOCKARRAY rows = (*ci->mem->access_virt_barray)((j_common_ptr)ci, arrays[c],
                                                              (JDIMENSION)by, 1, FALSE);
            memcpy(dst + p->coef_off + (uint64_t)by * p->wb * 64, rows[0][0], row_bytes);
        }
    }
    return JPEG_HYBRID_OK;
}

jpeg_hybrid_reason jpeg_coeffs_read(const uint8_t *data, size_t len, const image_header *hdr,
                                    const decode_options *opt, int16_t *dst, uint64_t dst_blocks,
                                    jpeg_coeffs *out)
{
    jpeg_hybrid_reason r = jpeg_hybrid_precheck(hdr, opt, dst_blocks);
    if (r != JPEG_HYBRID_OK)
        return r;
    int orientation = opt && opt->apply_orientation ? hdr->orientation : 1;
    if (orientation < 1 || orientation > 8)
        orientation = 1;
    coeff_job job;
    memset(&job, 0, sizeof job);
    job.prog.max_scans = opt ? opt->max_scans : 0;
    jsrc_setup(&job.cinfo, &job.jerr, &job.src, data, len);
    r = read_run(&job, hdr, orientation, dst, dst_blocks, out);
    jpeg_destroy_decompress(&job.cinfo);
    return r;
}

bool jpeg_hybrid_stage(const uint8_t *data, size_t len, const image_header *hdr,
                       const decode_options *opt, bool hybrid, int16_t *coef_dst,
                       uint64_t coef_blocks, jpeg_coeffs *coeffs, jpeg_hybrid_reason *reason,
                       uint8_t *rgb_dst, size_t rgb_size, cp_error *err)
{
    *reason = hybrid ? jpeg_coeffs_read(data, len, hdr, opt, coef_dst, coef_blocks, coeffs)
                     : JPEG_HYBRID_NOT_JPEG;
    if (*reason == JPEG_HYBRID_OK)
        return true;
    return decode_rgb(data, len, hdr, opt, rgb_dst, rgb_size, err);
}

int jpeg_coeffs_append(const jpeg_coeffs *k, uint64_t first_block, uint64_t rgb_off,
                       jh_image *images, int *n_images, jh_plane *planes, int *n_planes)
{
    int at = (*n_images)++;
    jh_image m = k->image;
    for (int c = 0; c < k->n_planes; c++) {
        jh_plane p = k->planes[c];
        p.coef_off += first_block * 64;  /* int16 elements */
        p.plane_off += first_block * 64; /* bytes: one sample per coefficient */
        p.image = at;
        m.plane[c] = *n_planes;
        planes[(*n_planes)++] = p;
    }
    m.rgb_off = rgb_off;
    images[at] = m;
    return at;
}
