/* plan.c — builds a resize_plan: window intersection, pass skipping, kept-output coefficients. */
#include "plan.h"

#include <string.h>

static int max_int(int a, int b) { return a > b ? a : b; }
static int min_int(int a, int b) { return a < b ? a : b; }

bool resize_plan_build(resize_plan *p, int src_w, int src_h, int resized_w, int resized_h,
                       int top, int left, int out_w, int out_h, resample_filter filter)
{
    return resize_plan_build_kind(p, src_w, src_h, resized_w, resized_h, top, left, out_w, out_h,
                                  filter, COEFF_PILLOW);
}

bool resize_plan_build_kind(resize_plan *p, int src_w, int src_h, int resized_w, int resized_h,
                            int top, int left, int out_w, int out_h, resample_filter filter,
                            coeff_kind kind)
{
    memset(p, 0, sizeof *p);
    if (src_w <= 0 || src_h <= 0 || resized_w <= 0 || resized_h <= 0 || out_w <= 0 || out_h <= 0)
        return false;
    p->src_w = src_w;
    p->src_h = src_h;
    p->resized_w = resized_w;
    p->resized_h = resized_h;
    p->top = top;
    p->left = left;
    p->out_w = out_w;
    p->out_h = out_h;
    p->x0 = max_int(left, 0);
    p->x1 = min_int(left + out_w, resized_w);
    p->y0 = max_int(top, 0);
    p->y1 = min_int(top + out_h, resized_h);
    if (p->x0 >= p->x1 || p->y0 >= p->y1) {
        p->x0 = p->x1 = p->y0 = p->y1 = 0; /* all padding */
        return true;
    }
    /* Box is always the whole image, so a pass runs iff its size changes (spec A.6). */
    p->need_h = resized_w != src_w;
    p->need_v = resized_h != src_h;

    if (p->need_h) {
        if (!axis_coeffs_cached_kind(&p->h, src_w, resized_w, p->x0, p->x1 - p->x0, filter, kind))
            goto fail;
        axis_coeffs_source_range(&p->h, &p->src_x0, &p->src_x1);
    } else {
        p->src_x0 = p->x0;
        p->src_x1 = p->x1;
    }
    if (p->need_v) {
        if (!axis_coeffs_cached_kind(&p->v, src_h, resized_h, p->y0, p->y1 - p->y0, filter, kind))
            goto fail;
        axis_coeffs_source_range(&p->v, &p->src_y0, &p->src_y1);
    } else {
        p->src_y0 = p->y0;
        p->src_y1 = p->y1;
    }
    return true;
fail:
    resize_plan_free(p);
    return false;
}

void resize_plan_free(resize_plan *p)
{
    axis_coeffs_free(&p->h);
    axis_coeffs_free(&p->v);
}

size_t resize_plan_tmp_bytes(const resize_plan *p)
{
    return (size_t)(p->src_y1 - p->src_y0) * (size_t)(p->x1 - p->x0) * 3;
}

size_t resize_plan_scratch_bytes(const resize_plan *p)
{
    return resize_plan_tmp_bytes(p) + (size_t)(p->x1 - p->x0) * 3;
}
