/* test_batch_twin.c — the batched per-thread bodies the CUDA kernels run (batch.h), executed by
 * their host twin, equal the CPU executor's loops byte for byte on batches mixing sizes, crops,
 * padding, skipped passes, filters, tables and dtypes. */
#include "mixed_batch.h"
#include "test.h"

TEST(host_twin_equals_cpu_loops_on_mixed_batches)
{
    for (unsigned seed = 1; seed <= 3; seed++) {
        mixed_batch mb;
        mixed_batch_make(&mb, 40, seed);
        uint8_t *tmp = malloc(mb.layout.tmp_bytes + 16);
        uint8_t *out = calloc(1, mb.layout.out_bytes);
        batch_run_host(&mb.layout, mb.staging, tmp, mb.tables, out);
        CHECK_EQ_INT(mixed_batch_count_mismatches(&mb, out), 0);
        free(tmp);
        free(out);
        mixed_batch_free(&mb);
    }
}

int main(void)
{
    RUN(host_twin_equals_cpu_loops_on_mixed_batches);
    return TEST_SUMMARY();
}
