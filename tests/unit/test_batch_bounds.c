/* test_batch_bounds.c — batch_layout_fits (cuda_engine.h), the per-image check every launch
 * runs before the resample kernels: it accepts every real batch layout (mixed sizes, crops,
 * padding, skipped passes, filters, dtypes) in buffers of exactly the layout's size, and
 * rejects a layout with any one descriptor or coefficient bound pointing outside them. */
#include "../../kernels/cuda_engine.h"
#include "mixed_batch.h"
#include "test.h"

static cuda_engine_sizes exact_sizes(const mixed_batch *mb)
{
    return (cuda_engine_sizes){.staging_bytes = mb->staging_bytes,
                               .tmp_bytes = mb->layout.tmp_bytes,
                               .out_bytes = mb->layout.out_bytes,
                               .coeff_ints = mb->layout.n_coeffs,
                               .max_images = mb->n,
                               .slots = 1};
}

/* Whether the layout still fits after f changed image i (then undone). */
typedef void (*corrupt_fn)(image_desc *d, int32_t *co, const cuda_engine_sizes *z);

static bool fits_after(mixed_batch *mb, int i, corrupt_fn f)
{
    cuda_engine_sizes z = exact_sizes(mb);
    image_desc saved = mb->layout.descs[i];
    int32_t *co = malloc(mb->layout.n_coeffs * sizeof *co);
    memcpy(co, mb->layout.coeffs, mb->layout.n_coeffs * sizeof *co);
    f(&mb->layout.descs[i], mb->layout.coeffs, &z);
    bool fits = batch_layout_fits(&z, &mb->layout, 2);
    mb->layout.descs[i] = saved;
    memcpy(mb->layout.coeffs, co, mb->layout.n_coeffs * sizeof *co);
    free(co);
    return fits;
}

static void src_past_staging(image_desc *d, int32_t *co, const cuda_engine_sizes *z)
{
    (void)co;
    d->src_off = z->staging_bytes - (uint64_t)d->src_w * d->src_h * 3 + 1;
}
static void out_past_output(image_desc *d, int32_t *co, const cuda_engine_sizes *z)
{
    (void)co;
    d->out_off = z->out_bytes - 8;
}
static void table_out_of_range(image_desc *d, int32_t *co, const cuda_engine_sizes *z)
{
    (void)co, (void)z;
    d->table = 2;
}
static void bad_dtype(image_desc *d, int32_t *co, const cuda_engine_sizes *z)
{
    (void)co, (void)z;
    d->dtype = 7;
}
static void tmp_past_intermediate(image_desc *d, int32_t *co, const cuda_engine_sizes *z)
{
    (void)co;
    d->tmp_off = z->tmp_bytes - 2;
}
static void h_first_past_row(image_desc *d, int32_t *co, const cuda_engine_sizes *z)
{
    (void)z;
    co[d->h_bounds + 2 * (d->x1 - d->x0 - 1)] = d->src_w; /* last column reads past the row */
}
static void h_too_many_taps(image_desc *d, int32_t *co, const cuda_engine_sizes *z)
{
    (void)z;
    co[d->h_bounds + 1] = d->h_ksize + 1;
}
static void h_bounds_past_coefficients(image_desc *d, int32_t *co, const cuda_engine_sizes *z)
{
    (void)co;
    d->h_k = (uint32_t)z->coeff_ints - 1;
}
static void rows_past_source(image_desc *d, int32_t *co, const cuda_engine_sizes *z)
{
    (void)co, (void)z;
    d->src_y1 = d->src_h + 1;
}
static void v_first_negative(image_desc *d, int32_t *co, const cuda_engine_sizes *z)
{
    (void)z;
    co[d->v_bounds] = -1;
}
static void v_rows_past_intermediate(image_desc *d, int32_t *co, const cuda_engine_sizes *z)
{
    (void)z;
    int last = d->y1 - d->y0 - 1;
    co[d->v_bounds + 2 * last] = (d->need_h ? d->src_y1 : d->src_h) - co[d->v_bounds + 2 * last + 1] + 1;
}
static void v_bounds_past_coefficients(image_desc *d, int32_t *co, const cuda_engine_sizes *z)
{
    (void)co;
    d->v_bounds = (uint32_t)z->coeff_ints;
}
static void copy_past_row(image_desc *d, int32_t *co, const cuda_engine_sizes *z)
{
    (void)co, (void)z;
    d->x1 = d->src_w + 1;
}
static void copy_rows_past_source(image_desc *d, int32_t *co, const cuda_engine_sizes *z)
{
    (void)co, (void)z;
    d->y1 = (d->need_h ? d->src_y1 : d->src_h) + 1;
}

TEST(real_layouts_fit_exactly_sized_buffers)
{
    for (unsigned seed = 1; seed <= 4; seed++) {
        mixed_batch mb;
        mixed_batch_make(&mb, 60, seed);
        cuda_engine_sizes z = exact_sizes(&mb);
        CHECK(batch_layout_fits(&z, &mb.layout, 2));
        /* and those buffers are enough: the twin of the kernels gives the CPU's bytes */
        uint8_t *tmp = malloc(z.tmp_bytes + 1), *out = malloc(z.out_bytes);
        batch_run_host(&mb.layout, mb.staging, tmp, mb.tables, out);
        CHECK_EQ_INT(mixed_batch_count_mismatches(&mb, out), 0);
        free(tmp);
        free(out);
        CHECK(!batch_layout_fits(&z, &mb.layout, 1)); /* some image uses table 1 */
        z.max_images = mb.n - 1;
        CHECK(!batch_layout_fits(&z, &mb.layout, 2));
        z = exact_sizes(&mb);
        z.out_bytes--;
        CHECK(!batch_layout_fits(&z, &mb.layout, 2));
        mixed_batch_free(&mb);
    }
}

TEST(any_out_of_bounds_descriptor_is_rejected)
{
    int tried_h = 0, tried_v = 0, tried_copy = 0;
    for (unsigned seed = 1; seed <= 3; seed++) {
        mixed_batch mb;
        mixed_batch_make(&mb, 40, seed);
        for (int i = 0; i < mb.n; i++) {
            const image_desc *d = &mb.layout.descs[i];
            CHECK(!fits_after(&mb, i, src_past_staging));
            CHECK(!fits_after(&mb, i, out_past_output));
            CHECK(!fits_after(&mb, i, table_out_of_range));
            CHECK(!fits_after(&mb, i, bad_dtype));
            if (d->x0 >= d->x1 || d->y0 >= d->y1)
                continue; /* all padding: nothing is read */
            if (d->need_h) {
                tried_h++;
                CHECK(!fits_after(&mb, i, tmp_past_intermediate));
                CHECK(!fits_after(&mb, i, h_first_past_row));
                CHECK(!fits_after(&mb, i, h_too_many_taps));
                CHECK(!fits_after(&mb, i, h_bounds_past_coefficients));
                CHECK(!fits_after(&mb, i, rows_past_source));
            } else {
                tried_copy++;
                CHECK(!fits_after(&mb, i, copy_past_row));
            }
            if (d->need_v) {
                tried_v++;
                CHECK(!fits_after(&mb, i, v_first_negative));
                CHECK(!fits_after(&mb, i, v_rows_past_intermediate));
                CHECK(!fits_after(&mb, i, v_bounds_past_coefficients));
            } else {
                CHECK(!fits_after(&mb, i, copy_rows_past_source));
            }
        }
        mixed_batch_free(&mb);
    }
    CHECK(tried_h > 10 && tried_v > 10 && tried_copy > 0);
}

int main(void)
{
    RUN(real_layouts_fit_exactly_sized_buffers);
    RUN(any_out_of_bounds_descriptor_is_rejected);
    return TEST_SUMMARY();
}
