/* test_gpu_faults.c — on a CUDA device, the failure handling the emulated engine cannot show
 * (docs/gpu.md): a refused layout, a refused copy and an out-of-memory error are not sticky
 * (the engine's probe passes and the next batch is exact), a kernel writing to an illegal
 * address is (the probe fails, later launches or waits fail); cuMemGetAddressRange bounds a
 * client region; direct copies into device memory (the format=cuda_ipc path and the CPU path's
 * pinned copy) hold the batch's bytes when they return; cuda_sync="blocking" reaches the
 * device; and the start-up kernel check passes on this GPU (every engine here is created
 * through it). Without a device it prints why and skips, unless CLIPPREP_GPU_REQUIRE=1
 * (scripts/gpu-check.sh on a GPU machine), where that is a failure. */
#include "../../kernels/cuda_engine.h"
#include "../unit/mixed_batch.h"
#include "../unit/test.h"

bool gpu_test_lose_context(int device, char *err, size_t cap);
bool gpu_test_out_of_memory(int device, char *err, size_t cap);
void *gpu_test_malloc(int device, size_t bytes);
void gpu_test_free(void *p);
bool gpu_test_read(void *host, const void *dev, size_t bytes);
bool gpu_test_blocking_sync(int device);

static cuda_engine *engine_for(const mixed_batch *mb, int sync)
{
    char err[256] = "";
    cuda_engine_sizes z = {.staging_bytes = mb->staging_bytes + 64,
                           .tmp_bytes = mb->layout.tmp_bytes + 64,
                           .out_bytes = mb->layout.out_bytes + 64,
                           .coeff_ints = mb->layout.n_coeffs + 64,
                           .max_images = mb->n,
                           .slots = 2,
                           .sync = sync};
    cuda_engine *e = cuda_engine_create(0, &z, mb->tables, 2, err, sizeof err);
    if (!e)
        fprintf(stderr, "  engine: %s\n", err);
    return e;
}

/* One batch through slot `slot`: true when it ran and equals the CPU loops. */
static bool exact_batch(cuda_engine *e, int slot, const mixed_batch *mb)
{
    char err[256] = "";
    memcpy(cuda_engine_staging(e, slot), mb->staging, mb->staging_bytes);
    staging_range all = {0, mb->staging_bytes};
    if (!cuda_engine_launch(e, slot, &mb->layout, &all, 1, NULL, err, sizeof err) ||
        !cuda_engine_wait(e, slot, err, sizeof err)) {
        fprintf(stderr, "  batch: %s\n", err);
        return false;
    }
    return mixed_batch_count_mismatches(mb, cuda_engine_output(e, slot)) == 0;
}

TEST(blocking_sync_reaches_the_device) /* first: before anything else makes a context */
{
    mixed_batch mb;
    mixed_batch_make(&mb, 8, 11);
    cuda_engine *e = engine_for(&mb, CUDA_SYNC_BLOCKING);
    CHECK(e != NULL);
    if (e) {
        CHECK(gpu_test_blocking_sync(0));
        CHECK(exact_batch(e, 0, &mb));
        cuda_engine_destroy(e);
    }
    mixed_batch_free(&mb);
}

TEST(refused_work_and_out_of_memory_are_not_sticky)
{
    mixed_batch mb;
    mixed_batch_make(&mb, 24, 12);
    cuda_engine *e = engine_for(&mb, CUDA_SYNC_AUTO);
    CHECK(e != NULL);
    if (!e) {
        mixed_batch_free(&mb);
        return;
    }
    char err[256] = "";
    CHECK(exact_batch(e, 0, &mb));
    uint64_t saved = mb.layout.descs[3].src_off; /* an image past the staging buffer */
    mb.layout.descs[3].src_off = mb.staging_bytes;
    staging_range all = {0, mb.staging_bytes};
    CHECK(!cuda_engine_launch(e, 1, &mb.layout, &all, 1, NULL, err, sizeof err));
    mb.layout.descs[3].src_off = saved;
    CHECK(cuda_engine_healthy(e, err, sizeof err));
    CHECK(exact_batch(e, 1, &mb));
    void *dev = gpu_test_malloc(0, 4096); /* a copy outside the batch's output */
    CHECK(dev && !cuda_engine_copy_out_to_device(e, 1, dev, mb.layout.out_bytes, 16, err,
                                                 sizeof err));
    CHECK(cuda_engine_healthy(e, err, sizeof err));
    gpu_test_free(dev);
    CHECK(gpu_test_out_of_memory(0, err, sizeof err));
    fprintf(stderr, "  out of memory: %s\n", err);
    CHECK(cuda_engine_healthy(e, err, sizeof err));
    CHECK(exact_batch(e, 0, &mb));
    cuda_engine_destroy(e);
    mixed_batch_free(&mb);
}

TEST(direct_copies_into_device_memory_are_complete)
{
    mixed_batch mb;
    mixed_batch_make(&mb, 16, 13);
    cuda_engine *e = engine_for(&mb, CUDA_SYNC_AUTO);
    CHECK(e != NULL);
    if (!e) {
        mixed_batch_free(&mb);
        return;
    }
    char err[256] = "";
    size_t n = mb.layout.out_bytes;
    uint8_t *dev = gpu_test_malloc(0, n), *back = malloc(n);
    memcpy(cuda_engine_staging(e, 0), mb.staging, mb.staging_bytes);
    staging_range all = {0, mb.staging_bytes};
    bool ok = dev && cuda_engine_launch(e, 0, &mb.layout, &all, 1, NULL, err, sizeof err);
    for (int i = 0; ok && i < mb.n; i++) {
        size_t off = mb.layout.descs[i].out_off;
        ok = cuda_engine_copy_out_to_device(e, 0, dev + off, off, mixed_batch_slot_bytes(&mb, i),
                                            err, sizeof err);
    }
    ok = ok && cuda_engine_wait(e, 0, err, sizeof err) && gpu_test_read(back, dev, n);
    CHECK(ok);
    if (ok)
        CHECK_EQ_INT(mixed_batch_count_mismatches(&mb, back), 0);
    /* the CPU path's copy: pinned host memory into device memory, complete on return */
    uint8_t *pinned = cuda_pinned_alloc(n);
    CHECK(pinned != NULL);
    if (pinned && dev) {
        for (size_t k = 0; k < n; k++)
            pinned[k] = (uint8_t)(k * 131 + 7);
        CHECK(cuda_copy_to_direct(0, dev, pinned, n, err, sizeof err));
        CHECK(gpu_test_read(back, dev, n) && memcmp(back, pinned, n) == 0);
    }
    cuda_pinned_free(pinned);
    gpu_test_free(dev);
    free(back);
    cuda_engine_destroy(e);
    mixed_batch_free(&mb);
}

TEST(region_sizes_are_checked_against_the_allocation)
{
    char err[256] = "";
    size_t mib = (size_t)1 << 20;
    uint8_t *p = gpu_test_malloc(0, mib);
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK(cuda_region_check(0, p, mib, err, sizeof err));
    CHECK(!cuda_region_check(0, p, mib + 1, err, sizeof err));
    CHECK(strstr(err, "larger than the allocation") != NULL);
    CHECK(cuda_region_check(0, p + 4096, mib - 4096, err, sizeof err));
    CHECK(!cuda_region_check(0, p + 4096, mib - 4095, err, sizeof err));
    int on_host = 0; /* not device memory at all */
    CHECK(!cuda_region_check(0, &on_host, 4, err, sizeof err));
    gpu_test_free(p);
}

TEST(a_lost_context_is_detected) /* last: nothing works in this process afterwards */
{
    mixed_batch mb;
    mixed_batch_make(&mb, 8, 14);
    cuda_engine *e = engine_for(&mb, CUDA_SYNC_AUTO);
    CHECK(e != NULL);
    if (!e) {
        mixed_batch_free(&mb);
        return;
    }
    char err[256] = "";
    CHECK(exact_batch(e, 0, &mb));
    CHECK(cuda_engine_healthy(e, err, sizeof err));
    CHECK(gpu_test_lose_context(0, err, sizeof err));
    fprintf(stderr, "  illegal address: %s\n", err);
    staging_range all = {0, mb.staging_bytes};
    bool launched = cuda_engine_launch(e, 1, &mb.layout, &all, 1, NULL, err, sizeof err);
    bool waited = cuda_engine_wait(e, 1, err, sizeof err);
    CHECK(!launched || !waited);
    CHECK(!cuda_engine_healthy(e, err, sizeof err));
    fprintf(stderr, "  probe after the fault: %s\n", err);
    mixed_batch_free(&mb); /* the engine's buffers go with the process (context lost) */
}

int main(void)
{
    char name[128] = "", err[256] = "";
    if (cuda_device_count(name, sizeof name, err, sizeof err) <= 0) {
        const char *req = getenv("CLIPPREP_GPU_REQUIRE");
        printf("%s: GPU fault tests need a CUDA device (%s)\n",
               req && *req == '1' ? "FAIL" : "SKIP", err[0] ? err : "none found");
        return req && *req == '1';
    }
    printf("device: %s\n", name);
    RUN(blocking_sync_reaches_the_device);
    RUN(refused_work_and_out_of_memory_are_not_sticky);
    RUN(direct_copies_into_device_memory_are_complete);
    RUN(region_sizes_are_checked_against_the_allocation);
    RUN(a_lost_context_is_detected);
    return TEST_SUMMARY();
}
