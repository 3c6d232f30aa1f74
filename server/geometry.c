/* geometry.c — resize targets and crop offsets, with each reference's own rounding. */
#include "geometry.h"

#include <math.h>

static int floor_div2(int v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

int crop_offset(crop_mode mode, int resized, int crop)
{
    int d = resized - crop;
    if (mode == CROP_HALF_EVEN) {
        /* torchvision: pad floor(deficit/2) before; else round((L-c)/2) with ties to even */
        if (d < 0)
            return -((-d) / 2);
        int half = d / 2;
        if ((d & 1) && (half & 1))
            half++; /* x.5 rounds to the even neighbour */
        return half;
    }
    /* HF: floor((L-c)/2); when padding, this puts the odd zero row top/left (spec B.6) */
    return floor_div2(d);
}

/* open_clip ResizeKeepRatio(longest=1): ratio = max(h/th, w/tw) in double, each side
 * round(side / ratio) with Python's round (ties to even: rint). A side that rounds to 0 (an
 * image over ~2*box:1) is kept at 1 pixel; open_clip's Pillow resize refuses such an image. */
static void fit_longest(const profile *p, int src_w, int src_h, int *out_w, int *out_h)
{
    double rh = (double)src_h / (double)p->resize_height;
    double rw = (double)src_w / (double)p->resize_width;
    double ratio = rh > rw ? rh : rw;
    double h = rint((double)src_h / ratio), w = rint((double)src_w / ratio);
    *out_h = h < 1 ? 1 : (int)h;
    *out_w = w < 1 ? 1 : (int)w;
}

int crop_offset_rounded(crop_rounding rounding, int resized, int crop)
{
    switch (rounding) {
    case CROP_ROUND_HALF_EVEN: return crop_offset(CROP_HALF_EVEN, resized, crop);
    case CROP_ROUND_TRUNC: {
        /* int((L-c)/2.0); when padding, (c-L)//2 zero rows before, the odd one after */
        int d = resized - crop;
        return d >= 0 ? d / 2 : -((-d) / 2);
    }
    default: return crop_offset(CROP_FLOOR, resized, crop);
    }
}

int fast_scale_denom(const profile *p, int src_w, int src_h, int factor)
{
    int target = p->resize == RESIZE_EXACT
                     ? (p->resize_width < p->resize_height ? p->resize_width : p->resize_height)
                     : p->shortest_edge;
    if (p->resize == RESIZE_LONGEST) {
        int w, h;
        fit_longest(p, src_w, src_h, &w, &h);
        target = w < h ? w : h;
    }
    long long need = (long long)factor * target;
    int shortside = src_w < src_h ? src_w : src_h;
    for (int d = 8; d >= 2; d /= 2)
        if ((shortside + d - 1) / d >= need)
            return d;
    return 1;
}

void geometry_for_decode(const profile *p, reference_id ref, const decode_options *opt, int w,
                         int h, image_geometry *g)
{
    if (opt && opt->native.on) {
        *g = (image_geometry){.resized_w = w, .resized_h = h, .out_w = w, .out_h = h};
        return;
    }
    geometry_compute_ref(p, ref, w, h, g);
}

void geometry_compute_ref(const profile *p, reference_id ref, int src_w, int src_h,
                          image_geometry *g)
{
    geometry_compute(p, src_w, src_h, g);
    if (p->crop != CROP_NONE) {
        g->top = crop_offset_rounded(reference_crop(ref), g->resized_h, p->crop_height);
        g->left = crop_offset_rounded(reference_crop(ref), g->resized_w, p->crop_width);
    }
}

void geometry_resized_size(const profile *p, int src_w, int src_h, long long *w, long long *h)
{
    if (p->resize == RESIZE_EXACT) {
        *w = p->resize_width;
        *h = p->resize_height;
        return;
    }
    if (p->resize == RESIZE_LONGEST) { /* never larger than the box */
        int lw, lh;
        fit_longest(p, src_w > 0 ? src_w : 1, src_h > 0 ? src_h : 1, &lw, &lh);
        *w = lw;
        *h = lh;
        return;
    }
    /* short side -> S, long side trunc(S*long/short) in double, as Python's int(S*l/s); in
     * 64 bits: a 1x6400000 image at S=336 is 2150400000 rows, past int */
    long long s = p->shortest_edge;
    if (src_w <= 0 || src_h <= 0) {
        *w = *h = 0;
    } else if (src_w <= src_h) {
        *w = s;
        *h = (long long)((double)(s * src_h) / (double)src_w);
    } else {
        *h = s;
        *w = (long long)((double)(s * src_w) / (double)src_h);
    }
}

bool geometry_check(const profile *p, int src_w, int src_h, cp_error *err)
{
    long long w, h;
    geometry_resized_size(p, src_w, src_h, &w, &h);
    if (w <= GEOMETRY_MAX_RESIZED_SIDE && h <= GEOMETRY_MAX_RESIZED_SIDE)
        return true;
    return cp_fail(err, CP_ERR_IMAGE_TOO_LARGE,
                   "aspect ratio too extreme: profile %s would resize this %dx%d image to "
                   "%lldx%lld, more than %d per side",
                   p->name, src_w, src_h, w, h, GEOMETRY_MAX_RESIZED_SIDE);
}

void geometry_compute(const profile *p, int src_w, int src_h, image_geometry *g)
{
    long long w, h;
    geometry_resized_size(p, src_w, src_h, &w, &h);
    if (w > GEOMETRY_MAX_RESIZED_SIDE || h > GEOMETRY_MAX_RESIZED_SIDE)
        w = h = 0; /* refused at admission (geometry_check); 0 makes any plan fail, never UB */
    g->resized_w = (int)w;
    g->resized_h = (int)h;
    if (p->crop == CROP_NONE) {
        g->top = g->left = 0;
        g->out_w = g->resized_w;
        g->out_h = g->resized_h;
    } else {
        g->out_w = p->crop_width;
        g->out_h = p->crop_height;
        g->top = crop_offset(p->crop, g->resized_h, p->crop_height);
        g->left = crop_offset(p->crop, g->resized_w, p->crop_width);
    }
}
