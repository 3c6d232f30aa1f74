/* batch_host.c — batch layout (descriptors, packed coefficients, buffer offsets) and the host
 * twin of the CUDA launches. */
#include <stdlib.h>
#include <string.h>

#include "batch.h"

void batch_layout_reset(batch_layout *b)
{
    b->count = 0;
    b->n_coeffs = 0;
    b->tmp_bytes = 0;
    b->out_bytes = 0;
}

void batch_layout_free(batch_layout *b)
{
    free(b->descs);
    free(b->coeffs);
    memset(b, 0, sizeof *b);
}

size_t batch_plan_coeff_ints(const resize_plan *p)
{
    size_t n = 0;
    if (p->need_h)
        n += (size_t)p->h.count * 2 + (size_t)p->h.count * p->h.ksize;
    if (p->need_v)
        n += (size_t)p->v.count * 2 + (size_t)p->v.count * p->v.ksize;
    return n;
}

static bool grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *p = realloc(*buf, c * elem);
    if (!p)
        return false;
    *buf = p;
    *cap = c;
    return true;
}

static uint32_t pack(batch_layout *b, const int32_t *v, size_t n)
{
    uint32_t at = (uint32_t)b->n_coeffs;
    memcpy(b->coeffs + b->n_coeffs, v, n * sizeof *v);
    b->n_coeffs += n;
    return at;
}

bool batch_layout_add(batch_layout *b, const resize_plan *p, uint64_t src_off, int table,
                      int dtype)
{
    size_t cap = (size_t)b->cap;
    if (!grow((void **)&b->descs, &cap, (size_t)b->count + 1, sizeof *b->descs))
        return false;
    b->cap = (int)cap;
    if (!grow((void **)&b->coeffs, &b->coeffs_cap, b->n_coeffs + batch_plan_coeff_ints(p),
              sizeof *b->coeffs))
        return false;
    image_desc *d = &b->descs[b->count++];
    memset(d, 0, sizeof *d);
    d->src_off = src_off;
    d->src_w = p->src_w;
    d->src_h = p->src_h;
    d->x0 = p->x0;
    d->x1 = p->x1;
    d->y0 = p->y0;
    d->y1 = p->y1;
    d->top = p->top;
    d->left = p->left;
    d->out_w = p->out_w;
    d->out_h = p->out_h;
    d->need_h = p->need_h;
    d->need_v = p->need_v;
    d->src_y0 = p->src_y0;
    d->src_y1 = p->src_y1;
    d->table = table;
    d->dtype = dtype;
    if (p->need_h) {
        d->h_ksize = p->h.ksize;
        d->h_bounds = pack(b, p->h.bounds, (size_t)p->h.count * 2);
        d->h_k = pack(b, p->h.k, (size_t)p->h.count * p->h.ksize);
        d->tmp_off = b->tmp_bytes;
        b->tmp_bytes += (resize_plan_tmp_bytes(p) + 15) & ~(size_t)15;
    }
    if (p->need_v) {
        d->v_ksize = p->v.ksize;
        d->v_bounds = pack(b, p->v.bounds, (size_t)p->v.count * 2);
        d->v_k = pack(b, p->v.k, (size_t)p->v.count * p->v.ksize);
    }
    d->out_off = b->out_bytes;
    size_t slot = (size_t)3 * p->out_h * p->out_w * (dtype == 1 ? 2 : 4);
    b->out_bytes += (slot + 15) & ~(size_t)15;
    return true;
}

void batch_run_host(const batch_layout *b, const uint8_t *staging, uint8_t *tmp,
                    const normalize_table *tables, void *out)
{
    for (int i = 0; i < b->count; i++) {
        const image_desc *d = &b->descs[i];
        for (int64_t t = 0; t < batch_h_threads(d); t++)
            batch_h_thread(d, staging, b->coeffs, tmp, t);
    }
    for (int i = 0; i < b->count; i++) {
        const image_desc *d = &b->descs[i];
        for (int64_t t = 0; t < batch_v_threads(d); t++)
            batch_v_thread(d, staging, b->coeffs, tmp, tables, out, t);
    }
}
