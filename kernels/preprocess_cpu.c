/* preprocess_cpu.c — the CPU executor's loops around the KERNEL_FN pixel functions:
 * horizontal pass into a u8 intermediate (only source rows the kept output rows read, only kept
 * columns), then vertical pass fused with the table lookup and the CHW write. */
#include <string.h>

#include "preprocess.h"
#include "resample.h"
#include "resample_simd.h"

const char *tensor_dtype_name(tensor_dtype d) { return d == DTYPE_FLOAT16 ? "float16" : "float32"; }

/* The intermediate image: rows are source rows (origin = first row held), columns are the
 * kept output columns [x0, x1). */
typedef struct {
    const uint8_t *base;
    size_t stride;
    int origin;
} intermediate;

static intermediate horizontal_pass(const resize_plan *p, const uint8_t *rgb, size_t stride,
                                    uint8_t *tmp)
{
    intermediate im;
    if (!p->need_h) { /* identity: read the source columns in place */
        im.base = rgb + (size_t)p->x0 * 3;
        im.stride = stride;
        im.origin = 0;
        return im;
    }
    int cols = p->x1 - p->x0;
    size_t tstride = (size_t)cols * 3;
    hweights hw;
    bool simd = resample_simd_available() && hweights_build(&hw, &p->h);
    for (int y = p->src_y0; y < p->src_y1; y++) {
        const uint8_t *row = rgb + (size_t)y * stride;
        uint8_t *dst = tmp + (size_t)(y - p->src_y0) * tstride;
        if (simd) {
            resample_h_row_avx2(row, &hw, dst);
            continue;
        }
        for (int j = 0; j < cols; j++)
            resample_h_pixel(row, p->h.bounds[2 * j], p->h.bounds[2 * j + 1],
                             p->h.k + (size_t)j * p->h.ksize, dst + (size_t)j * 3);
    }
    if (simd)
        hweights_free(&hw);
    im.base = tmp;
    im.stride = tstride;
    im.origin = p->src_y0;
    return im;
}

/* Computes output row oy (resized row ry, inside [y0,y1)) as u8 RGB for kept columns. */
static void vertical_row(const resize_plan *p, const intermediate *im, int ry, uint8_t *row)
{
    int cols = p->x1 - p->x0;
    if (!p->need_v) {
        memcpy(row, im->base + (size_t)(ry - im->origin) * im->stride, (size_t)cols * 3);
        return;
    }
    int j = ry - p->y0;
    int lo = p->v.bounds[2 * j], taps = p->v.bounds[2 * j + 1];
    const int32_t *k = p->v.k + (size_t)j * p->v.ksize;
    const uint8_t *top = im->base + (size_t)(lo - im->origin) * im->stride;
    if (resample_simd_available()) {
        resample_v_row_avx2(top, im->stride, taps, k, cols * 3, row);
        return;
    }
    for (int x = 0; x < cols; x++)
        resample_v_pixel(top + (size_t)x * 3, im->stride, taps, k, row + (size_t)x * 3);
}

/* Walks output rows; emit(row_u8 or NULL for padding, oy) writes them. */
#define FOR_EACH_OUTPUT_ROW(p, im, rowbuf, oy, rowptr, BODY)                    \
    for (int oy = 0; oy < (p)->out_h; oy++) {                                   \
        int ry_ = (p)->top + oy;                                                \
        const uint8_t *rowptr = NULL;                                           \
        if (ry_ >= (p)->y0 && ry_ < (p)->y1) {                                  \
            vertical_row((p), (im), ry_, (rowbuf));                             \
            rowptr = (rowbuf);                                                  \
        }                                                                       \
        BODY                                                                    \
    }

void preprocess_image_cpu(const resize_plan *p, const uint8_t *rgb, size_t stride,
                          const normalize_table *t, tensor_dtype dtype, void *out,
                          uint8_t *tmp)
{
    size_t plane = (size_t)p->out_h * p->out_w;
    int cols = p->x1 - p->x0;
    intermediate im = {0};
    if (cols > 0)
        im = horizontal_pass(p, rgb, stride, tmp);
    /* One output row of u8 lives at the end of tmp. */
    uint8_t *rowbuf = tmp + resize_plan_tmp_bytes(p);
    int xin0 = p->x0 - p->left, xin1 = p->x1 - p->left; /* output columns with image data */

    FOR_EACH_OUTPUT_ROW(p, &im, rowbuf, oy, row, {
        for (int c = 0; c < 3; c++) {
            size_t base = (size_t)c * plane + (size_t)oy * p->out_w;
            if (dtype == DTYPE_FLOAT32) {
                float *o = (float *)out + base;
                const float *lut = t->f32[c];
                for (int x = 0; x < p->out_w; x++)
                    o[x] = (row && x >= xin0 && x < xin1) ? lut[row[(x - xin0) * 3 + c]]
                                                          : lut[t->fill[c]];
            } else {
                uint16_t *o = (uint16_t *)out + base;
                const uint16_t *lut = t->f16[c];
                for (int x = 0; x < p->out_w; x++)
                    o[x] = (row && x >= xin0 && x < xin1) ? lut[row[(x - xin0) * 3 + c]]
                                                          : lut[t->fill[c]];
            }
        }
    })
}

void preprocess_image_cpu_u8(const resize_plan *p, const uint8_t *rgb, size_t stride,
                             uint8_t *out, uint8_t *tmp)
{
    int cols = p->x1 - p->x0;
    intermediate im = {0};
    if (cols > 0)
        im = horizontal_pass(p, rgb, stride, tmp);
    uint8_t *rowbuf = tmp + resize_plan_tmp_bytes(p);
    int xin0 = p->x0 - p->left, xin1 = p->x1 - p->left;
    FOR_EACH_OUTPUT_ROW(p, &im, rowbuf, oy, row, {
        uint8_t *o = out + (size_t)oy * p->out_w * 3;
        for (int x = 0; x < p->out_w; x++)
            for (int c = 0; c < 3; c++)
                o[x * 3 + c] = (row && x >= xin0 && x < xin1) ? row[(x - xin0) * 3 + c] : 0;
    })
}
