/* geometry.h — a profile's size rule and crop rounding applied to one image size (spec B.4,
 * B.6, C.3, D): the full resize target and the crop window origin (negative = zero padding). */
#ifndef CLIPPREP_GEOMETRY_H
#define CLIPPREP_GEOMETRY_H

#include <stdbool.h>

#include "decode.h"
#include "error.h"
#include "profile.h"

typedef struct {
    int resized_w, resized_h;
    int top, left;
    int out_w, out_h;
} image_geometry;

/* The largest resized side accepted: int arithmetic in the planner (window + crop) keeps
 * headroom below INT_MAX. Only absurd aspect ratios reach it (1:4.8 million at S=224). */
#define GEOMETRY_MAX_RESIZED_SIDE (1 << 30)

/* The full resize target in 64 bits (no overflow for any int source size). */
void geometry_resized_size(const profile *p, int src_w, int src_h, long long *w, long long *h);

/* false (413 image_too_large, saying why) when the resized size exceeds
 * GEOMETRY_MAX_RESIZED_SIDE: checked at admission so such images never reach a worker. */
bool geometry_check(const profile *p, int src_w, int src_h, cp_error *err);

/* Resized sizes over the limit come out as 0 (the plan then fails), never as overflowed ints. */
void geometry_compute(const profile *p, int src_w, int src_h, image_geometry *g);
/* For a job: an identity geometry when the decoder already produced the final window
 * (opt->native, native_mode.h), else geometry_compute_ref. */
void geometry_for_decode(const profile *p, reference_id ref, const decode_options *opt, int w,
                         int h, image_geometry *g);
/* The same, with the crop origin rounded as reference `ref` rounds it (reference.h). */
void geometry_compute_ref(const profile *p, reference_id ref, int src_w, int src_h,
                          image_geometry *g);

/* mode=fast: the largest JPEG scale denominator (8, 4, 2; else 1) that keeps the decoded short
 * side >= factor x the profile's target short side. */
int fast_scale_denom(const profile *p, int src_w, int src_h, int factor);

/* The crop origin along one axis for a resized length and crop length (exposed for tests). */
int crop_offset(crop_mode mode, int resized, int crop);
int crop_offset_rounded(crop_rounding rounding, int resized, int crop);

#endif
