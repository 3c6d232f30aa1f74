/* plan.h — everything needed to turn one decoded RGB image into one output tensor slot:
 * the full resize size, the crop window (offsets may be negative: zero padding), which passes
 * run (spec A.6) and the coefficients of only the kept outputs (spec A.7). */
#ifndef CLIPPREP_PLAN_H
#define CLIPPREP_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "coeffs.h"

typedef struct {
    int src_w, src_h;       /* decoded image */
    int resized_w, resized_h;
    int top, left;          /* crop window origin in resized coordinates */
    int out_w, out_h;       /* tensor H, W */
    /* The part of the window that lies inside the resized image; the rest is zero padding. */
    int x0, x1, y0, y1;     /* resized coordinates, [x0,x1) x [y0,y1); empty if x0 >= x1 */
    bool need_h, need_v;    /* which passes run; a skipped pass is an exact identity */
    axis_coeffs h, v;       /* coefficients of kept outputs (only for passes that run) */
    int src_x0, src_x1;     /* source columns read */
    int src_y0, src_y1;     /* source rows read */
} resize_plan;

/* Returns false on allocation failure or nonsensical sizes. */
bool resize_plan_build(resize_plan *p, int src_w, int src_h, int resized_w, int resized_h,
                       int top, int left, int out_w, int out_h, resample_filter filter);
/* The same with the weights of `kind` (Pillow's or torchvision's, coeffs.h). */
bool resize_plan_build_kind(resize_plan *p, int src_w, int src_h, int resized_w, int resized_h,
                            int top, int left, int out_w, int out_h, resample_filter filter,
                            coeff_kind kind);
void resize_plan_free(resize_plan *p);

/* Bytes of the horizontal-pass output the plan needs. */
size_t resize_plan_tmp_bytes(const resize_plan *p);
/* Scratch preprocess_image_cpu needs: the horizontal-pass output plus one row. */
size_t resize_plan_scratch_bytes(const resize_plan *p);

#endif
