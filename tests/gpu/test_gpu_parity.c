/* test_gpu_parity.c — on a machine with a CUDA device: the GPU's output equals the CPU
 * executor's bit for bit on batches mixing sizes, crops, padding, filters and dtypes, and
 * repeated runs are identical (no races). Without a device it prints why and skips. */
#include "../../kernels/cuda_engine.h"
#include "../unit/mixed_batch.h"
#include "../unit/test.h"

static cuda_engine *engine_for(const mixed_batch *mb, char *err, size_t cap)
{
    cuda_engine_sizes z = {.staging_bytes = mb->staging_bytes + 64,
                           .tmp_bytes = mb->layout.tmp_bytes + 64,
                           .out_bytes = mb->layout.out_bytes + 64,
                           .coeff_ints = mb->layout.n_coeffs + 64,
                           .max_images = mb->n,
                           .slots = 2};
    return cuda_engine_create(0, &z, mb->tables, 2, err, cap);
}

static bool run_on_gpu(cuda_engine *e, int slot, const mixed_batch *mb, uint8_t *out, char *err,
                       size_t cap)
{
    memcpy(cuda_engine_staging(e, slot), mb->staging, mb->staging_bytes);
    if (!cuda_engine_launch(e, slot, &mb->layout, mb->staging_bytes, err, cap) ||
        !cuda_engine_wait(e, slot, err, cap))
        return false;
    memcpy(out, cuda_engine_output(e, slot), mb->layout.out_bytes);
    return true;
}

TEST(gpu_equals_cpu_on_mixed_batches)
{
    for (unsigned seed = 1; seed <= 6; seed++) {
        mixed_batch mb;
        mixed_batch_make(&mb, seed < 4 ? 40 : 200, seed);
        char err[256] = "";
        cuda_engine *e = engine_for(&mb, err, sizeof err);
        CHECK(e != NULL);
        if (!e) {
            fprintf(stderr, "  engine: %s\n", err);
            mixed_batch_free(&mb);
            return;
        }
        uint8_t *out = malloc(mb.layout.out_bytes), *again = malloc(mb.layout.out_bytes);
        CHECK(run_on_gpu(e, 0, &mb, out, err, sizeof err));
        CHECK_EQ_INT(mixed_batch_count_mismatches(&mb, out), 0);
        for (int rep = 0; rep < 5; rep++) { /* both slots, repeatedly: identical every time */
            CHECK(run_on_gpu(e, rep % 2, &mb, again, err, sizeof err));
            CHECK(memcmp(out, again, mb.layout.out_bytes) == 0);
        }
        free(out);
        free(again);
        cuda_engine_destroy(e);
        mixed_batch_free(&mb);
    }
}

int main(void)
{
    char name[128] = "", err[256] = "";
    if (cuda_device_count(name, sizeof name, err, sizeof err) <= 0) {
        printf("SKIP: GPU parity tests need a CUDA device (%s)\n", err[0] ? err : "none found");
        return 0;
    }
    printf("device: %s\n", name);
    RUN(gpu_equals_cpu_on_mixed_batches);
    return TEST_SUMMARY();
}
