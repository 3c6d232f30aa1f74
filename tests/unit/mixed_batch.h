/* mixed_batch.h — a reproducible batch of random images with random geometries (sizes, crops,
 * padding, skipped passes, both filters, both dtypes, two tables), shared by the host-twin test
 * and the GPU test so both check the same cases against the CPU executor's loops. */
#ifndef CLIPPREP_TEST_MIXED_BATCH_H
#define CLIPPREP_TEST_MIXED_BATCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/batch.h"
#include "../../kernels/preprocess.h"
#include "../../kernels/resample_simd.h"
#include "../../server/geometry.h"

typedef struct {
    int n;
    resize_plan *plans;
    int *dtype, *table, (*wh)[2];
    size_t *src_off, staging_bytes;
    uint8_t *staging;
    normalize_table tables[2];
    batch_layout layout;
} mixed_batch;

static unsigned mixed_rng;
static int mixed_rnd(int lo, int hi) /* inclusive */
{
    mixed_rng = mixed_rng * 1103515245u + 12345u;
    return lo + (int)((mixed_rng >> 8) % (unsigned)(hi - lo + 1));
}

static void mixed_batch_make(mixed_batch *mb, int n, unsigned seed)
{
    memset(mb, 0, sizeof *mb);
    mixed_rng = seed;
    mb->n = n;
    mb->plans = calloc((size_t)n, sizeof *mb->plans);
    mb->dtype = calloc((size_t)n, sizeof *mb->dtype);
    mb->table = calloc((size_t)n, sizeof *mb->table);
    mb->wh = calloc((size_t)n, sizeof *mb->wh);
    mb->src_off = calloc((size_t)n, sizeof *mb->src_off);
    const double mean_a[3] = {0.48145466, 0.4578275, 0.40821073},
                 std_a[3] = {0.26862954, 0.26130258, 0.27577711}, half[3] = {0.5, 0.5, 0.5};
    normalize_table_build(&mb->tables[0], 0.00392156862745098, mean_a, std_a);
    normalize_table_build(&mb->tables[1], 0.00392156862745098, half, half);
    for (int i = 0; i < n; i++) {
        int w = mixed_rnd(1, 400), h = mixed_rnd(1, 400);
        profile p = {0};
        if (i % 3 == 0) {
            p.resize = RESIZE_EXACT;
            p.resize_width = mixed_rnd(1, 300);
            p.resize_height = mixed_rnd(1, 300);
        } else {
            p.resize = RESIZE_SHORTEST_EDGE;
            p.shortest_edge = mixed_rnd(8, 256);
            p.crop = i % 2 ? CROP_FLOOR : CROP_HALF_EVEN;
            p.crop_width = mixed_rnd(4, 300); /* sometimes larger than the image: padding */
            p.crop_height = mixed_rnd(4, 300);
        }
        if (i == 0) { w = 3000; h = 20; }
        if (i == 1) { w = 3; h = 1000; }
        if (i == 2) { /* no pass runs: a copy */
            w = h = 224;
            p.resize = RESIZE_EXACT;
            p.resize_width = p.resize_height = 224;
        }
        image_geometry g;
        geometry_compute(&p, w, h, &g);
        /* every other image with torchvision's weights (reference transformers5): the same
           kernel bodies, other tables */
        resize_plan_build_kind(&mb->plans[i], w, h, g.resized_w, g.resized_h, g.top, g.left,
                               g.out_w, g.out_h, i % 4 == 1 ? FILTER_BILINEAR : FILTER_BICUBIC,
                               (i / 2) % 2 ? COEFF_TORCHVISION : COEFF_PILLOW);
        mb->dtype[i] = i % 5 == 0 ? DTYPE_FLOAT16 : DTYPE_FLOAT32;
        mb->table[i] = i % 2;
        mb->wh[i][0] = w;
        mb->wh[i][1] = h;
        mb->src_off[i] = mb->staging_bytes;
        mb->staging_bytes += ((size_t)w * h * 3 + 15) & ~(size_t)15;
    }
    mb->staging = calloc(1, mb->staging_bytes + RESAMPLE_SIMD_PAD);
    for (size_t k = 0; k < mb->staging_bytes; k++) {
        mixed_rng = mixed_rng * 1103515245u + 12345u; /* saturated stripes + noise ring most */
        mb->staging[k] = (mixed_rng >> 16) & 1 ? ((mixed_rng >> 20) & 1 ? 255 : 0)
                                               : (uint8_t)(mixed_rng >> 23);
    }
    for (int i = 0; i < n; i++)
        batch_layout_add(&mb->layout, &mb->plans[i], mb->src_off[i], mb->table[i], mb->dtype[i]);
}

/* Bytes of image i's output slot. */
static size_t mixed_batch_slot_bytes(const mixed_batch *mb, int i)
{
    const resize_plan *p = &mb->plans[i];
    return (size_t)3 * p->out_h * p->out_w * tensor_dtype_size((tensor_dtype)mb->dtype[i]);
}

/* Counts images whose slot in out (laid out as mb->layout) differs from the CPU loops. */
static int mixed_batch_count_mismatches(const mixed_batch *mb, const uint8_t *out)
{
    int bad = 0;
    for (int i = 0; i < mb->n; i++) {
        const resize_plan *p = &mb->plans[i];
        size_t bytes = mixed_batch_slot_bytes(mb, i);
        uint8_t *want = malloc(bytes), *scratch = malloc(resize_plan_scratch_bytes(p) + RESAMPLE_SIMD_PAD);
        preprocess_image_cpu(p, mb->staging + mb->src_off[i], (size_t)mb->wh[i][0] * 3,
                             &mb->tables[mb->table[i]], (tensor_dtype)mb->dtype[i], want, scratch);
        if (memcmp(want, out + mb->layout.descs[i].out_off, bytes)) {
            fprintf(stderr, "  image %d (%dx%d -> %dx%d) differs\n", i, mb->wh[i][0], mb->wh[i][1],
                    p->out_w, p->out_h);
            bad++;
        }
        free(want);
        free(scratch);
    }
    return bad;
}

static void mixed_batch_free(mixed_batch *mb)
{
    for (int i = 0; i < mb->n; i++)
        resize_plan_free(&mb->plans[i]);
    free(mb->plans);
    free(mb->dtype);
    free(mb->table);
    free(mb->wh);
    free(mb->src_off);
    free(mb->staging);
    batch_layout_free(&mb->layout);
}

#endif
