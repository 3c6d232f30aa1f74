/* pipeline_bench.c — the in-process baseline: the same exact work the daemon does (decode,
 * crop-only Pillow resample, table normalise), without HTTP, on all cores or one. Reports
 * CPU-ms per image (getrusage) and images/s. Modes: --mode full (default) | fast (as
 * mode=fast) | decode (JPEG decode floor) | entropy (what the hybrid decode leaves on the CPU:
 * jpeg_read_coefficients + the copy into staging) | cuda (decode on the CPU cores, resample on
 * the GPU in batches) | cuda-hybrid (entropy decoding on the CPU cores, the rest of the decode
 * and the resample on the GPU).
 *   bin/pipeline-bench [--mode M] [--profile NAME] [--profiles DIR] [--threads N]
 *                      [--batch B] [--seconds S] FILE... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../../kernels/normalize.h"
#include "../../server/geometry.h"
#include "../../server/image_work.h"
#include "../../server/jpeg_coeffs.h"
#include "../../server/parallel.h"
#include "../../server/profile.h"
#ifdef CLIPPREP_WITH_CUDA
#include "../../kernels/cuda_engine.h"
#include "../../server/geometry.h"
#endif

typedef struct {
    uint8_t *data;
    size_t len;
    image_header hdr;
} encoded;

static encoded *files;
static int n_files;
static const profile *prof;
static normalize_table table;
static cpu_scratch *scratch; /* per thread, indexed by a thread slot */
static const char *mode = "full";
static uint8_t *outputs;
static size_t slot_bytes;
static int16_t **coef_bufs; /* per thread (mode entropy) */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static uint64_t max_blocks; /* the largest file's coefficient blocks */
static __thread int thread_slot = -1;
static int next_thread_slot;

static void work_one(void *ctx, int i)
{
    (void)ctx;
    if (thread_slot < 0)
        thread_slot = __atomic_fetch_add(&next_thread_slot, 1, __ATOMIC_SEQ_CST);
    encoded *e = &files[i % n_files];
    cpu_scratch *s = &scratch[thread_slot];
    cp_error err;
    if (!strcmp(mode, "entropy")) {
        if (!coef_bufs[thread_slot])
            coef_bufs[thread_slot] = malloc(max_blocks * 128);
        jpeg_coeffs k;
        /* (buffers are sized for the largest file on the first call, see main) */
        jpeg_hybrid_reason r = jpeg_coeffs_read(e->data, e->len, &e->hdr, NULL,
                                                coef_bufs[thread_slot], max_blocks, &k);
        if (r != JPEG_HYBRID_OK)
            fprintf(stderr, "not eligible for the hybrid decode: %s\n", jpeg_hybrid_reason_name(r));
        return;
    }
    if (!strcmp(mode, "decode")) {
        size_t need = (size_t)e->hdr.width * e->hdr.height * 3;
        if (s->rgb_cap < need) {
            s->rgb = realloc(s->rgb, need);
            s->rgb_cap = need;
        }
        decode_options o = {0};
        if (!decode_rgb(e->data, e->len, &e->hdr, &o, s->rgb, need, &err))
            fprintf(stderr, "decode failed: %s\n", err.message);
        return;
    }
    job j = {.data = e->data, .len = e->len, .hdr = e->hdr, .prof = prof, .table = &table,
             .dtype = DTYPE_FLOAT32, .out = outputs + slot_bytes * (size_t)thread_slot};
    if (!strcmp(mode, "fast")) /* as mode=fast with the default fast_min_factor */
        j.dopt.scale_denom = fast_scale_denom(prof, e->hdr.width, e->hdr.height, 2);
    if (!process_job_cpu(&j, s, &err))
        fprintf(stderr, "process failed: %s\n", err.message);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

#ifdef CLIPPREP_WITH_CUDA
/* Decodes batches on the CPU pool into pinned staging, resamples on the GPU. */
typedef struct {
    uint8_t *staging;
    size_t *off;
    int first;
    bool hybrid;
    int16_t *coefs;
    uint64_t *blk;
    jpeg_coeffs *k;
    jpeg_hybrid_reason *why;
} cuda_decode_ctx;

static void cuda_decode_one(void *arg, int i)
{
    cuda_decode_ctx *c = arg;
    encoded *e = &files[(c->first + i) % n_files];
    decode_options o = {0};
    cp_error err;
    if (!jpeg_hybrid_stage(e->data, e->len, &e->hdr, &o, c->hybrid,
                           c->hybrid ? c->coefs + c->blk[i] * 64 : NULL,
                           (uint64_t)e->hdr.jpeg_blocks, &c->k[i], &c->why[i],
                           c->staging + c->off[i], (size_t)e->hdr.width * e->hdr.height * 3, &err))
        fprintf(stderr, "decode failed: %s\n", err.message);
}

/* The executor's work without the daemon: decode (or entropy-decode, hybrid) a batch on the
 * pool into one slot while the other slot's batch runs on the GPU. */
static int run_cuda(parallel_pool *pool, int batch, double seconds, bool hybrid, long *images)
{
    size_t max_pixels = 0;
    for (int i = 0; i < n_files; i++) {
        size_t px = (size_t)files[i].hdr.width * files[i].hdr.height * 3;
        if (px > max_pixels)
            max_pixels = px;
    }
    cuda_engine_sizes z = {.staging_bytes = (max_pixels + 16) * batch,
                           .tmp_bytes = (max_pixels + 16) * batch,
                           .out_bytes = (slot_bytes + 16) * batch,
                           .coeff_ints = (size_t)batch << 16,
                           .max_images = batch,
                           .slots = 2,
                           .coef_bytes = hybrid ? (max_blocks * 128 + 16) * batch : 0,
                           .plane_bytes = hybrid ? (max_blocks * 64 + 16) * batch : 0,
                           .max_planes = hybrid ? batch * JH_MAX_COMPONENTS : 0};
    char err[256] = "";
    cuda_engine *eng = cuda_engine_create(0, &z, &table, 1, err, sizeof err);
    if (!eng) {
        fprintf(stderr, "cuda: %s\n", err);
        return 1;
    }
    batch_layout layouts[2] = {{0}};
    resize_plan *plans = calloc((size_t)batch * 2, sizeof *plans);
    size_t *off = calloc((size_t)batch, sizeof *off);
    uint64_t *blk = calloc((size_t)batch, sizeof *blk);
    jpeg_coeffs *ks = calloc((size_t)batch, sizeof *ks);
    jpeg_hybrid_reason *why = calloc((size_t)batch, sizeof *why);
    jh_image *images_h = calloc((size_t)batch, sizeof *images_h);
    jh_plane *planes_h = calloc((size_t)batch * JH_MAX_COMPONENTS, sizeof *planes_h);
    staging_range *uploads = calloc((size_t)batch, sizeof *uploads);
    bool busy[2] = {false, false};
    double t0 = now_s();
    long done = 0;
    int k = 0;
    for (int it = 0; now_s() - t0 < seconds; it++, k ^= 1) {
        if (busy[k]) {
            if (!cuda_engine_wait(eng, k, err, sizeof err)) {
                fprintf(stderr, "batch: %s\n", err);
                return 1;
            }
            for (int i = 0; i < layouts[k].count; i++)
                resize_plan_free(&plans[k * batch + i]);
            done += layouts[k].count;
        }
        size_t used = 0;
        uint64_t blocks = 0;
        for (int i = 0; i < batch; i++) {
            encoded *e = &files[(it * batch + i) % n_files];
            off[i] = used;
            used += ((size_t)e->hdr.width * e->hdr.height * 3 + 15) & ~(size_t)15;
            blk[i] = blocks;
            blocks += (uint64_t)e->hdr.jpeg_blocks;
        }
        cuda_decode_ctx c = {cuda_engine_staging(eng, k), off, it * batch, hybrid,
                             cuda_engine_coefs(eng, k), blk, ks, why};
        parallel_for(pool, batch, cuda_decode_one, &c);
        hybrid_batch hb = {.images = images_h, .planes = planes_h, .coef_bytes = blocks * 128};
        int n_up = 0;
        batch_layout_reset(&layouts[k]);
        for (int i = 0; i < batch; i++) {
            encoded *e = &files[(it * batch + i) % n_files];
            if (why[i] == JPEG_HYBRID_OK) {
                jpeg_coeffs_append(&ks[i], blk[i], off[i], images_h, &hb.n_images, planes_h,
                                   &hb.n_planes);
            } else {
                uploads[n_up++] = (staging_range){off[i], (size_t)e->hdr.width * e->hdr.height * 3};
            }
            image_geometry g;
            geometry_compute(prof, e->hdr.width, e->hdr.height, &g);
            resize_plan *p = &plans[k * batch + i];
            resize_plan_build(p, e->hdr.width, e->hdr.height, g.resized_w, g.resized_h, g.top,
                              g.left, g.out_w, g.out_h, prof->filter);
            batch_layout_add(&layouts[k], p, off[i], 0, DTYPE_FLOAT32);
        }
        if (!cuda_engine_launch(eng, k, &layouts[k], uploads, n_up, &hb, err, sizeof err)) {
            fprintf(stderr, "launch: %s\n", err);
            return 1;
        }
        busy[k] = true;
    }
    for (int s = 0; s < 2; s++)
        if (busy[s]) {
            if (!cuda_engine_wait(eng, s, err, sizeof err)) {
                fprintf(stderr, "batch: %s\n", err);
                return 1;
            }
            done += layouts[s].count;
        }
    *images = done;
    cuda_engine_destroy(eng);
    free(blk);
    free(ks);
    free(why);
    free(images_h);
    free(planes_h);
    free(uploads);
    return 0;
}
#endif

int main(int argc, char **argv)
{
    const char *pname = "clip-224", *pdir = "config/profiles";
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN), batch = 32;
    double seconds = 3;
    int first = 1;
    for (; first < argc && !strncmp(argv[first], "--", 2); first += 2) {
        if (first + 1 >= argc)
            break;
        const char *k = argv[first], *v = argv[first + 1];
        if (!strcmp(k, "--mode")) mode = v;
        else if (!strcmp(k, "--profile")) pname = v;
        else if (!strcmp(k, "--profiles")) pdir = v;
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else if (!strcmp(k, "--batch")) batch = atoi(v);
        else if (!strcmp(k, "--seconds")) seconds = atof(v);
        else {
            fprintf(stderr, "unknown option %s\n", k);
            return 2;
        }
    }
    n_files = argc - first;
    if (n_files <= 0 || threads < 1 || batch < 1) {
        fprintf(stderr, "usage: %s [--mode full|fast|decode|entropy|cuda|cuda-hybrid] [--profile P] [--threads N] "
                        "[--batch B] [--seconds S] FILE...\n", argv[0]);
        return 2;
    }
    profile_set set;
    cp_error err;
    if (!profiles_load_dir(pdir, &set, &err) || !(prof = profiles_find(&set, pname))) {
        fprintf(stderr, "profile %s: %s\n", pname, err.message);
        return 2;
    }
    normalize_table_build(&table, prof->rescale_factor, prof->mean, prof->std);
    slot_bytes = (size_t)3 * prof->out_width * prof->out_height * sizeof(float);
    files = calloc((size_t)n_files, sizeof *files);
    for (int i = 0; i < n_files; i++) {
        files[i].data = read_file(argv[first + i], &files[i].len);
        if (!files[i].data || !decode_read_header(files[i].data, files[i].len, &files[i].hdr, &err)) {
            fprintf(stderr, "%s: unreadable (%s)\n", argv[first + i], files[i].data ? err.message : "io");
            return 2;
        }
    }
    scratch = calloc((size_t)threads + 1, sizeof *scratch);
    outputs = malloc(slot_bytes * ((size_t)threads + 1));
    parallel_pool *pool = parallel_pool_create(threads - 1);

    for (int i = 0; i < n_files; i++)
        if ((uint64_t)files[i].hdr.jpeg_blocks > max_blocks)
            max_blocks = (uint64_t)files[i].hdr.jpeg_blocks;
    coef_bufs = calloc((size_t)threads + 1, sizeof *coef_bufs);
    bool on_gpu = !strncmp(mode, "cuda", 4);
    if (!on_gpu) /* warm-up: every thread's scratch, every file once */
        parallel_for(pool, n_files * threads, work_one, NULL);
    double c0 = cpu_s(), t0 = now_s();
    long images = 0;
    if (on_gpu) {
#ifdef CLIPPREP_WITH_CUDA
        if (run_cuda(pool, batch, seconds, !strcmp(mode, "cuda-hybrid"), &images))
            return 1;
#else
        fprintf(stderr, "built without CUDA\n");
        return 2;
#endif
    } else {
        while (now_s() - t0 < seconds) {
            int n = threads * 4;
            parallel_for(pool, n, work_one, NULL);
            images += n;
        }
    }
    double wall = now_s() - t0, cpu = cpu_s() - c0;
    printf("{\"mode\":\"%s\",\"profile\":\"%s\",\"threads\":%d,\"batch\":%d,\"images\":%ld,"
           "\"wall_s\":%.3f,\"cpu_ms_per_image\":%.3f,\"images_per_s\":%.1f}\n",
           mode, prof->name, threads, batch, images, wall, cpu * 1000 / images, images / wall);
    parallel_pool_destroy(pool);
    return 0;
}
