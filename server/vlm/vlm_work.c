/* vlm_work.c — decode a VLM job's image once, pre-pad it when the plan says so, then run each
 * tile through the exact resampler (the same kernel bodies as every profile) and let the
 * family place it. */
#include "vlm_work.h"

#include <stdlib.h>
#include <string.h>

#include "../../kernels/resample_simd.h"
#include "../metrics.h"
#include "../transpose.h"
#include "vlm.h"

/* One tile of src (sw x sh RGB) into dst: 3 planes of t->h x t->w values. */
static bool run_tile(const job *j, cpu_scratch *s, const uint8_t *src, int sw, int sh,
                     const vlm_tile *t, uint8_t *dst, cp_error *err)
{
    size_t esize = tensor_dtype_size(j->dtype);
    coeff_kind kind = reference_coeffs(j->ref);
    bool vfirst = reference_vertical_first(j->ref, sw, sh, t->resized_w, t->resized_h);
    resize_plan plan;
    bool planned =
        vfirst ? resize_plan_build_kind(&plan, sh, sw, t->resized_h, t->resized_w, t->left,
                                        t->top, t->h, t->w, j->prof->filter, kind)
               : resize_plan_build_kind(&plan, sw, sh, t->resized_w, t->resized_h, t->top,
                                        t->left, t->w, t->h, j->prof->filter, kind);
    if (!planned)
        return cp_fail(err, CP_ERR_INTERNAL, "could not plan a %dx%d -> %dx%d resize", sw, sh,
                       t->resized_w, t->resized_h);
    size_t plane = (size_t)t->w * t->h;
    bool ok = scratch_grow(&s->tmp, &s->tmp_cap, resize_plan_scratch_bytes(&plan) + RESAMPLE_SIMD_PAD);
    if (ok && !vfirst) {
        preprocess_image_cpu(&plan, src, (size_t)sw * 3, j->table, j->dtype, dst, s->tmp);
    } else if (ok) {
        /* Pillow 13's vertical-first order by transposition (image_work.c does the same) */
        size_t bytes = (size_t)sw * sh * 3;
        ok = scratch_grow(&s->trans, &s->trans_cap, bytes + RESAMPLE_SIMD_PAD) &&
             scratch_grow(&s->tout, &s->tout_cap, plane * 3 * esize);
        if (ok) {
            transpose_elems(src, sw, sh, 3, s->trans);
            preprocess_image_cpu(&plan, s->trans, (size_t)sh * 3, j->table, j->dtype, s->tout,
                                 s->tmp);
            for (int c = 0; c < 3; c++)
                transpose_elems(s->tout + c * plane * esize, t->h, t->w, esize,
                                dst + c * plane * esize);
        }
    }
    resize_plan_free(&plan);
    if (!ok)
        return cp_fail(err, CP_ERR_OVERLOADED, "out of memory for resampling");
    return true;
}

bool vlm_process_job_cpu(job *j, cpu_scratch *s, cp_error *err)
{
    const vlm_image_plan *ip = j->vplan;
    const vlm_family *fam = vlm_family_of(j->prof->vlm.kind);
    int w, h;
    decode_output_size(&j->hdr, &j->dopt, &w, &h);
    size_t rgb_bytes = (size_t)w * h * 3;
    if (!scratch_grow(&s->rgb, &s->rgb_cap, rgb_bytes + RESAMPLE_SIMD_PAD))
        return cp_fail(err, CP_ERR_OVERLOADED, "out of memory for a %dx%d image", w, h);
    decode_options dopt = j->dopt; /* the whole image: several tiles read it */
    dopt.region_x0 = dopt.region_x1 = dopt.region_y0 = dopt.region_y1 = 0;
    uint64_t t0 = monotonic_ns();
    if (!decode_rgb(j->data, j->len, &j->hdr, &dopt, s->rgb, rgb_bytes, err))
        return false;
    uint64_t t1 = monotonic_ns();
    metrics_observe_ns(HIST_DECODE_SECONDS, t1 - t0);

    const uint8_t *src = s->rgb;
    int sw = w, sh = h;
    if (ip->pad_w) { /* LLaVA's pad to square: paste on a canvas of the background colour */
        size_t cbytes = (size_t)ip->pad_w * ip->pad_h * 3;
        if (!scratch_grow(&s->canvas, &s->canvas_cap, cbytes + RESAMPLE_SIMD_PAD))
            return cp_fail(err, CP_ERR_OVERLOADED, "out of memory for a %dx%d canvas",
                           ip->pad_w, ip->pad_h);
        const unsigned char *bg = j->prof->vlm.background;
        for (size_t i = 0; i < (size_t)ip->pad_w * ip->pad_h; i++)
            memcpy(s->canvas + i * 3, bg, 3);
        for (int y = 0; y < h; y++)
            memcpy(s->canvas + ((size_t)(y + ip->pad_y) * ip->pad_w + ip->pad_x) * 3,
                   s->rgb + (size_t)y * w * 3, (size_t)w * 3);
        src = s->canvas;
        sw = ip->pad_w;
        sh = ip->pad_h;
    }
    size_t esize = tensor_dtype_size(j->dtype);
    uint8_t *part = j->out;
    for (int t = 0; t < ip->n_tiles; t++) {
        const vlm_tile *tile = &ip->tiles[t];
        size_t tile_bytes = (size_t)3 * tile->w * tile->h * esize;
        uint8_t *dst = part;
        if (fam->place_tile) {
            if (!scratch_grow(&s->tile, &s->tile_cap, tile_bytes))
                return cp_fail(err, CP_ERR_OVERLOADED, "out of memory for a tile");
            dst = s->tile;
        }
        if (!run_tile(j, s, src, sw, sh, tile, dst, err))
            return false;
        if (fam->place_tile)
            fam->place_tile(j->prof, ip, t, s->tile, esize, j->out);
        else
            part += tile_bytes;
    }
    metrics_observe_ns(HIST_COMPUTE_SECONDS, monotonic_ns() - t1);
    return true;
}
