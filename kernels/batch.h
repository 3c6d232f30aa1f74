/* batch.h — a batch of differently sized images as flat buffers for one launch per pass:
 * per-image descriptors, packed coefficient tables, staged pixels, intermediate and output.
 * The per-thread bodies are KERNEL_FN: the CUDA kernels call them from thread indices, and the
 * host twin (batch_run_host) calls them in loops, so CPU tests exercise the GPU's arithmetic. */
#ifndef CLIPPREP_BATCH_H
#define CLIPPREP_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "kernel_fn.h"
#include "normalize.h"
#include "plan.h"
#include "resample.h"

typedef struct {
    uint64_t src_off;            /* byte offset of packed RGB in the staging buffer */
    int32_t src_w, src_h;
    int32_t x0, x1, y0, y1;      /* kept window in resized coordinates (see resize_plan) */
    int32_t top, left, out_w, out_h;
    int32_t need_h, need_v;
    int32_t src_y0, src_y1;
    uint64_t tmp_off;            /* byte offset of this image's intermediate */
    int32_t h_ksize, v_ksize;
    uint32_t h_bounds, h_k;      /* int offsets into the coefficient buffer */
    uint32_t v_bounds, v_k;
    uint64_t out_off;            /* byte offset of this image's 3*out_h*out_w slot (16-aligned) */
    int32_t table;               /* index of its normalisation table */
    int32_t dtype;               /* tensor_dtype */
} image_desc;

/* Threads the horizontal pass needs for image d (one per intermediate pixel). */
KERNEL_FN int64_t batch_h_threads(const image_desc *d)
{
    return d->need_h ? (int64_t)(d->src_y1 - d->src_y0) * (d->x1 - d->x0) : 0;
}

KERNEL_FN int64_t batch_v_threads(const image_desc *d) { return (int64_t)d->out_h * d->out_w; }

KERNEL_FN void batch_h_thread(const image_desc *d, const uint8_t *staging, const int32_t *coeffs,
                              uint8_t *tmp, int64_t t)
{
    int cols = d->x1 - d->x0;
    int r = (int)(t / cols), j = (int)(t % cols);
    const uint8_t *row = staging + d->src_off + (size_t)(d->src_y0 + r) * d->src_w * 3;
    const int32_t *b = coeffs + d->h_bounds;
    resample_h_pixel(row, b[2 * j], b[2 * j + 1], coeffs + d->h_k + (size_t)j * d->h_ksize,
                     tmp + d->tmp_off + ((size_t)r * cols + j) * 3);
}

/* Row `row` (a source row index) of the intermediate image, at kept column 0. */
KERNEL_FN const uint8_t *batch_intermediate_row(const image_desc *d, const uint8_t *staging,
                                                const uint8_t *tmp, int row, size_t *stride)
{
    if (d->need_h) {
        *stride = (size_t)(d->x1 - d->x0) * 3;
        return tmp + d->tmp_off + (size_t)(row - d->src_y0) * *stride;
    }
    *stride = (size_t)d->src_w * 3;
    return staging + d->src_off + (size_t)row * *stride + (size_t)d->x0 * 3;
}

KERNEL_FN void batch_v_thread(const image_desc *d, const uint8_t *staging, const int32_t *coeffs,
                              const uint8_t *tmp, const normalize_table *tables, void *out,
                              int64_t t)
{
    int oy = (int)(t / d->out_w), ox = (int)(t % d->out_w);
    int ry = d->top + oy, rx = d->left + ox;
    const normalize_table *tb = &tables[d->table];
    uint8_t px[3] = {tb->fill[0], tb->fill[1], tb->fill[2]}; /* padding colour */
    if (ry >= d->y0 && ry < d->y1 && rx >= d->x0 && rx < d->x1) {
        int xi = rx - d->x0;
        size_t stride;
        if (d->need_v) {
            int j = ry - d->y0;
            const int32_t *b = coeffs + d->v_bounds;
            const uint8_t *col = batch_intermediate_row(d, staging, tmp, b[2 * j], &stride);
            resample_v_pixel(col + (size_t)xi * 3, stride, b[2 * j + 1],
                             coeffs + d->v_k + (size_t)j * d->v_ksize, px);
        } else {
            const uint8_t *p = batch_intermediate_row(d, staging, tmp, ry, &stride) + (size_t)xi * 3;
            px[0] = p[0];
            px[1] = p[1];
            px[2] = p[2];
        }
    }
    size_t plane = (size_t)d->out_h * d->out_w, at = (size_t)oy * d->out_w + ox;
    uint8_t *slot = (uint8_t *)out + d->out_off;
    for (int c = 0; c < 3; c++) {
        if (d->dtype == 1 /* DTYPE_FLOAT16 */)
            ((uint16_t *)slot)[c * plane + at] = tb->f16[c][px[c]];
        else
            ((float *)slot)[c * plane + at] = tb->f32[c][px[c]];
    }
}

/* Host side: lays out a batch. Offsets are assigned in the order images are added. */
typedef struct {
    image_desc *descs;
    int count, cap;
    int32_t *coeffs;             /* packed bounds and weights of every image */
    size_t n_coeffs, coeffs_cap;
    size_t tmp_bytes;            /* intermediate bytes needed so far */
    size_t out_bytes;            /* output bytes so far */
} batch_layout;

void batch_layout_reset(batch_layout *b);
void batch_layout_free(batch_layout *b);
/* Adds an image whose pixels sit at src_off in staging. Returns false on allocation failure. */
bool batch_layout_add(batch_layout *b, const resize_plan *p, uint64_t src_off, int table,
                      int dtype);
/* Coefficient ints a plan adds (to check buffer room before adding). */
size_t batch_plan_coeff_ints(const resize_plan *p);

/* The host twin of the two CUDA launches: every thread body in a loop. */
void batch_run_host(const batch_layout *b, const uint8_t *staging, uint8_t *tmp,
                    const normalize_table *tables, void *out);

#endif
