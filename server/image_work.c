/* image_work.c — decode into scratch, build the plan, run the CPU kernel bodies. */
#include "image_work.h"

#include <stdlib.h>

#include "../kernels/resample_simd.h"
#include "geometry.h"
#include "metrics.h"
#include "transpose.h"
#include "vlm/vlm_work.h"

bool scratch_grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return true;
    uint8_t *p = realloc(*buf, need);
    if (!p)
        return false;
    *buf = p;
    *cap = need;
    return true;
}

void job_apply_reference(job *j)
{
    j->dopt.alpha_onto_white = reference_alpha(j->ref) == ALPHA_ONTO_WHITE;
    if (reference_alpha(j->ref) != ALPHA_NATIVE_MODE || j->hdr.native == NATIVE_AS_RGB ||
        j->prof->vlm.kind != VLM_NONE)
        return;
    j->dopt.scale_denom = 0; /* exact: the own-mode resize is done at decode */
    j->dopt.native.on = false;
    int w, h;
    decode_output_size(&j->hdr, &j->dopt, &w, &h);
    image_geometry g;
    geometry_compute_ref(j->prof, j->ref, w, h, &g);
    j->dopt.native = (native_resize){.on = true, .resized_w = g.resized_w,
                                     .resized_h = g.resized_h, .top = g.top, .left = g.left,
                                     .out_w = g.out_w, .out_h = g.out_h,
                                     .filter = (int)j->prof->filter};
}

bool job_vertical_first(const job *j)
{
    if (j->vplan)
        return false; /* vlm_work.c orders each tile's passes */
    if (j->dopt.native.on)
        return false; /* native_mode.c orders its own passes */
    int w, h;
    decode_output_size(&j->hdr, &j->dopt, &w, &h);
    image_geometry g;
    geometry_for_decode(j->prof, j->ref, &j->dopt, w, h, &g);
    return reference_vertical_first(j->ref, w, h, g.resized_w, g.resized_h);
}

/* Pillow 13's vertical-first order: the image transposed, resized with the axes exchanged
 * (horizontal first on the transposed image is vertical first on the image), the tensor's
 * planes transposed back. */
static bool process_transposed(job *j, cpu_scratch *s, int w, int h, const image_geometry *g,
                               cp_error *err)
{
    size_t rgb_bytes = (size_t)w * h * 3;
    size_t esize = tensor_dtype_size(j->dtype);
    size_t plane = (size_t)g->out_w * g->out_h;
    if (!scratch_grow(&s->rgb, &s->rgb_cap, rgb_bytes + RESAMPLE_SIMD_PAD) ||
        !scratch_grow(&s->trans, &s->trans_cap, rgb_bytes + RESAMPLE_SIMD_PAD) ||
        !scratch_grow(&s->tout, &s->tout_cap, plane * 3 * esize))
        return cp_fail(err, CP_ERR_OVERLOADED, "out of memory for a %dx%d image", w, h);
    decode_options dopt = j->dopt; /* whole image: no region */
    uint64_t t0 = monotonic_ns();
    if (!decode_rgb(j->data, j->len, &j->hdr, &dopt, s->rgb, rgb_bytes, err))
        return false;
    uint64_t t1 = monotonic_ns();
    metrics_observe_ns(HIST_DECODE_SECONDS, t1 - t0);
    transpose_elems(s->rgb, w, h, 3, s->trans);
    resize_plan plan;
    if (!resize_plan_build_kind(&plan, h, w, g->resized_h, g->resized_w, g->left, g->top,
                                g->out_h, g->out_w, j->prof->filter, reference_coeffs(j->ref)))
        return cp_fail(err, CP_ERR_INTERNAL, "could not plan a %dx%d resize", w, h);
    bool ok = scratch_grow(&s->tmp, &s->tmp_cap, resize_plan_scratch_bytes(&plan) + RESAMPLE_SIMD_PAD);
    if (ok) {
        preprocess_image_cpu(&plan, s->trans, (size_t)h * 3, j->table, j->dtype, s->tout, s->tmp);
        for (int c = 0; c < 3; c++) /* planes of out_w rows x out_h columns -> out_h x out_w */
            transpose_elems(s->tout + c * plane * esize, g->out_h, g->out_w, esize,
                            (uint8_t *)j->out + c * plane * esize);
    }
    resize_plan_free(&plan);
    metrics_observe_ns(HIST_COMPUTE_SECONDS, monotonic_ns() - t1);
    if (!ok)
        return cp_fail(err, CP_ERR_OVERLOADED, "out of memory for resampling");
    return true;
}

bool process_job_cpu(job *j, cpu_scratch *s, cp_error *err)
{
    if (j->vplan)
        return vlm_process_job_cpu(j, s, err);
    int w, h;
    decode_output_size(&j->hdr, &j->dopt, &w, &h);
    size_t rgb_bytes = (size_t)w * (size_t)h * 3;

    /* Plan first: the decoder then only has to produce the pixels the passes read. */
    image_geometry g;
    geometry_for_decode(j->prof, j->ref, &j->dopt, w, h, &g);
    if (!j->dopt.native.on && reference_vertical_first(j->ref, w, h, g.resized_w, g.resized_h))
        return process_transposed(j, s, w, h, &g, err);
    if (!scratch_grow(&s->rgb, &s->rgb_cap, rgb_bytes + RESAMPLE_SIMD_PAD))
        return cp_fail(err, CP_ERR_OVERLOADED, "out of memory for a %dx%d image", w, h);
    resize_plan plan;
    if (!resize_plan_build_kind(&plan, w, h, g.resized_w, g.resized_h, g.top, g.left, g.out_w,
                                g.out_h, j->prof->filter, reference_coeffs(j->ref)))
        return cp_fail(err, CP_ERR_INTERNAL, "could not plan a %dx%d resize", w, h);
    decode_options dopt = j->dopt;
    if (plan.src_x1 > plan.src_x0 && plan.src_y1 > plan.src_y0) {
        dopt.region_x0 = plan.src_x0;
        dopt.region_x1 = plan.src_x1;
        dopt.region_y0 = plan.src_y0;
        dopt.region_y1 = plan.src_y1;
    }
    uint64_t t0 = monotonic_ns();
    if (!decode_rgb(j->data, j->len, &j->hdr, &dopt, s->rgb, rgb_bytes, err)) {
        resize_plan_free(&plan);
        return false;
    }
    uint64_t t1 = monotonic_ns();
    metrics_observe_ns(HIST_DECODE_SECONDS, t1 - t0);

    bool ok = scratch_grow(&s->tmp, &s->tmp_cap, resize_plan_scratch_bytes(&plan) + RESAMPLE_SIMD_PAD);
    if (ok)
        preprocess_image_cpu(&plan, s->rgb, (size_t)w * 3, j->table, j->dtype, j->out, s->tmp);
    resize_plan_free(&plan);
    metrics_observe_ns(HIST_COMPUTE_SECONDS, monotonic_ns() - t1);
    if (!ok)
        return cp_fail(err, CP_ERR_OVERLOADED, "out of memory for resampling");
    return true;
}

void cpu_scratch_free(cpu_scratch *s)
{
    free(s->rgb);
    free(s->tmp);
    free(s->trans);
    free(s->tout);
    free(s->canvas);
    free(s->tile);
    *s = (cpu_scratch){0};
}
