/* exec_cuda.c — the CUDA executor (host side): one worker thread per GPU drains the batch
 * queue; each batch is decoded on every core straight into a slot's pinned staging buffer,
 * laid out (descriptors + coefficients, batch.h), launched on the slot's stream, and finished
 * (outputs copied to the requests, jobs completed) while the next batch is decoded. Images too
 * large for a slot take the CPU path, which gives the same bytes.
 *
 * Failures (docs/gpu.md): a failed launch, copy or wait never lets a result out of its slot;
 * the images it touched are redone on the CPU path (same bytes), and only an image whose
 * direct destination in device memory cannot be written any more fails (503). A sticky error
 * (the context is lost) or MAX_FAILURES_IN_A_ROW failed batches take that GPU out: its worker
 * stops taking batches while any healthy GPU is left (they serve the queue), and the last one
 * out serves the queue on the CPU path; /healthz then reports the loss so that the
 * orchestrator restarts the container (a new process gets a new context).
 *
 * Hybrid JPEG decode (decode_on_gpu, on by default here): eligible JPEGs are only entropy-
 * decoded on the CPU, into the slot's pinned coefficient buffer (jpeg_coeffs.c); the GPU does
 * the rest (jpeg_decode.cu) and writes their RGB where the resample passes read it, so only
 * the CPU-decoded images' pixels are uploaded. An image whose IDCT guard trips on the GPU is
 * redone on the CPU path when the batch finishes. */
#include "executor.h"

#ifndef CLIPPREP_WITH_CUDA

executor *executor_cuda_create(batch_queue *q, const cp_config *cfg, const normalize_table *tables,
                               int n_tables, size_t max_slot_bytes, cp_error *err)
{
    (void)q, (void)cfg, (void)tables, (void)n_tables, (void)max_slot_bytes;
    cp_fail(err, CP_ERR_UNAVAILABLE, "built without CUDA (nvcc was not found at build time)");
    return NULL;
}

#else

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../kernels/cuda_engine.h"
#include "geometry.h"
#include "image_work.h"
#include "jpeg_coeffs.h"
#include "log.h"
#include "metrics.h"
#include "parallel.h"

#define SLOTS 2
#define MAX_GPUS 16
/* Batches failing one after another on a GPU whose context still works (a missing kernel
 * image, a driver refusing every launch): after this many the GPU is taken out too. */
#define MAX_FAILURES_IN_A_ROW 8

typedef struct {
    job **jobs;              /* jobs launched in this slot */
    bool *ok;                /* per job: decoded and laid out */
    cp_error *errs;
    size_t *src_off;
    int n;
    batch_layout layout;
    resize_plan *plans;
    bool busy;
    bool launch_failed;      /* nothing of this launch may be used */
    bool copy_failed;        /* a direct copy failed (its job has redo set) */
    bool *redo;              /* per job: its GPU result is unusable, redo it on the CPU path */
    char why[256];           /* the launch's or copy's error */
    uint64_t launched_ns;
    /* hybrid JPEG decode, per job */
    uint64_t *coef_blk;      /* first coefficient block in the slot, NO_COEFS: not a candidate */
    jpeg_coeffs *coeffs;     /* the candidate's description, when decoded that way */
    jpeg_hybrid_reason *reason; /* JPEG_HYBRID_OK: its pixels come from the GPU decode */
    int *hybrid_image;       /* index into images (guard flags), -1 for pixels from the CPU */
    /* hybrid JPEG decode, per batch */
    jh_image *images;
    jh_plane *planes;
    staging_range *uploads;
} slot_state;

#define NO_COEFS UINT64_MAX

struct cuda_executor;

typedef struct {
    int device;
    struct cuda_executor *ex;
    batch_queue *q;
    const normalize_table *tables;
    cuda_engine *eng;
    cuda_engine_sizes sizes;
    parallel_pool *pool;
    pthread_t thread;
    atomic_bool lost;        /* taken out of service: its context is lost or it keeps failing */
    int failures_in_a_row;
    job **cpu_jobs;          /* the images of a slot redone on the CPU path */
    int max_batch;
    bool hybrid;             /* decode_on_gpu: eligible JPEGs are decoded on the GPU */
    uint64_t coef_blocks;    /* coefficient blocks per slot */
    slot_state slots[SLOTS];
    int next_slot;
    job **batch;
} gpu_worker;

/* The executor: one gpu_worker (thread, engine, slots, decode pool) per device. */
typedef struct cuda_executor {
    executor base;
    int n;
    atomic_int healthy;      /* workers not lost */
    gpu_worker *workers[MAX_GPUS];
} cuda_executor;

static void fail_job(job *j, cp_status st, const char *msg)
{
    cp_error e;
    cp_fail(&e, st, "%s", msg);
    job_complete(j, &e);
}

/* Takes a GPU out of service (docs/gpu.md): healthy GPUs take the queue, or, when it was the
 * last, its worker serves the queue on the CPU path; /healthz reports the loss from now on. */
static void take_out(gpu_worker *ce, const char *why)
{
    if (ce->lost)
        return;
    ce->lost = true;
    int left = atomic_fetch_sub(&ce->ex->healthy, 1) - 1;
    atomic_fetch_add(&ce->ex->base.gpus_lost, 1);
    metrics_count_gpu_lost();
    char esc[300];
    json_escape(why, esc, sizeof esc);
    log_event(LOG_ERROR, "GPU taken out of service",
              "\"device\":%d,\"reason\":\"%s\",\"healthy_gpus\":%d,\"its_work\":\"%s\"",
              ce->device, esc, left, left > 0 ? "healthy GPUs" : "CPU path");
}

/* A launch, copy or wait failed: was it sticky (the context is lost) or about this batch?
 * `redo` images of the slot go to the CPU path. Only failed batches count towards
 * MAX_FAILURES_IN_A_ROW: a failed direct copy concerns its destination (a client's region),
 * and a client must not be able to take a GPU out that way. */
static void gpu_failure(gpu_worker *ce, const char *why, int redo, bool batch_failed)
{
    char probe[256] = "";
    bool healthy = cuda_engine_healthy(ce->eng, probe, sizeof probe);
    if (batch_failed)
        ce->failures_in_a_row++;
    char esc[300], pesc[300];
    json_escape(why, esc, sizeof esc);
    json_escape(probe, pesc, sizeof pesc);
    log_event(LOG_ERROR, "CUDA failure: the batch's images are redone on the CPU path",
              "\"device\":%d,\"error\":\"%s\",\"sticky\":%s,\"probe\":\"%s\","
              "\"failures_in_a_row\":%d", ce->device, esc, healthy ? "false" : "true", pesc,
              ce->failures_in_a_row);
    metrics_count_gpu_failure(!healthy, redo);
    if (!healthy)
        take_out(ce, probe);
    else if (ce->failures_in_a_row >= MAX_FAILURES_IN_A_ROW)
        take_out(ce, "every one of the last batches failed");
}

static bool process_cpu_path(gpu_worker *ce, job *j, cpu_scratch *scratch, cp_error *e);

typedef struct {
    gpu_worker *ce;
    job **jobs;
} cpu_ctx;

static void cpu_one(void *arg, int i)
{
    cpu_ctx *c = arg;
    job *j = c->jobs[i];
    if (job_request_failed(j)) { /* a sibling image failed: the request is answered anyway */
        job_complete(j, NULL);
        return;
    }
    cpu_scratch scratch = {0};
    cp_error e = {0};
    bool ok = process_cpu_path(c->ce, j, &scratch, &e);
    cpu_scratch_free(&scratch);
    axis_coeffs_cache_clear(); /* pool threads keep no tables past the image */
    job_complete(j, ok ? NULL : &e);
}

/* Images on the CPU path, on every decode thread (same bytes as the GPU). */
static void run_on_cpu(gpu_worker *ce, job **jobs, int n)
{
    cpu_ctx c = {ce, jobs};
    parallel_for(ce->pool, n, cpu_one, &c);
}

/* Waits for a slot's launch and hands results to their requests; a result of a failed
 * launch, copy or wait is never used: those images are redone on the CPU path. */
static void finish_slot(gpu_worker *ce, int si)
{
    slot_state *s = &ce->slots[si];
    if (!s->busy)
        return;
    char err[256] = "";
    bool waited = cuda_engine_wait(ce->eng, si, err, sizeof err);
    bool failed = s->launch_failed || !waited;
    if (failed || s->copy_failed) {
        int redo = 0;
        for (int i = 0; i < s->n; i++)
            redo += s->ok[i] && (failed || s->redo[i]);
        gpu_failure(ce, !waited && !s->launch_failed ? err : s->why, redo, failed);
    }
    if (!failed)
        ce->failures_in_a_row = 0;
    metrics_observe_ns(HIST_COMPUTE_SECONDS, monotonic_ns() - s->launched_ns);
    const uint8_t *out = cuda_engine_output(ce->eng, si);
    const int32_t *guard = cuda_engine_guard_flags(ce->eng, si);
    int d = 0, n_cpu = 0;
    for (int i = 0; i < s->n; i++) {
        job *j = s->jobs[i];
        if (!s->ok[i])
            continue; /* already completed with its decode error */
        int hi = s->hybrid_image[i];
        if (failed || s->redo[i]) {
            ce->cpu_jobs[n_cpu++] = j;
        } else if (hi >= 0 && guard && guard[hi]) {
            /* adversarial coefficients: libjpeg's own result is defined by its CPU code */
            metrics_count_hybrid_decode(JPEG_HYBRID_GUARD);
            ce->cpu_jobs[n_cpu++] = j;
        } else {
            if (hi >= 0)
                metrics_count_hybrid_decode(JPEG_HYBRID_OK);
            size_t bytes = (size_t)3 * j->prof->out_height * j->prof->out_width *
                           tensor_dtype_size(j->dtype);
            if (!j->out_direct) /* direct outputs were copied on the stream at launch */
                memcpy(j->out, out + s->layout.descs[d].out_off, bytes);
            job_complete(j, NULL);
        }
        resize_plan_free(&s->plans[d]);
        d++;
    }
    s->busy = false;
    s->n = 0;
    run_on_cpu(ce, ce->cpu_jobs, n_cpu);
}

typedef struct {
    gpu_worker *ce;
    slot_state *s;
    uint8_t *staging;
    int16_t *coefs;
} decode_ctx;

/* One image: entropy decoding only (hybrid candidates) or a full decode into staging. */
static void decode_one(void *arg, int i)
{
    decode_ctx *dc = arg;
    slot_state *s = dc->s;
    job *j = s->jobs[i];
    int w, h;
    decode_output_size(&j->hdr, &j->dopt, &w, &h);
    uint64_t t0 = monotonic_ns();
    bool candidate = s->coef_blk[i] != NO_COEFS;
    s->reason[i] = JPEG_HYBRID_NOT_JPEG;
    s->ok[i] = !job_request_failed(j) &&
               jpeg_hybrid_stage(j->data, j->len, &j->hdr, &j->dopt, candidate,
                                 candidate ? dc->coefs + s->coef_blk[i] * 64 : NULL,
                                 candidate ? (uint64_t)j->hdr.jpeg_blocks : 0, &s->coeffs[i],
                                 &s->reason[i], dc->staging + s->src_off[i], (size_t)w * h * 3,
                                 &s->errs[i]);
    if (dc->ce->hybrid && s->ok[i] && s->reason[i] != JPEG_HYBRID_OK) /* OK: when finished */
        metrics_count_hybrid_decode(candidate ? s->reason[i]
                                    : jpeg_hybrid_precheck(&j->hdr, &j->dopt, dc->ce->coef_blocks));
    metrics_observe_ns(HIST_DECODE_SECONDS, monotonic_ns() - t0);
}

static size_t align16(size_t v) { return (v + 15) & ~(size_t)15; }

/* Whether an image takes the hybrid decode, as far as its header tells. */
static bool hybrid_candidate(const gpu_worker *ce, const job *j)
{
    return ce->hybrid &&
           jpeg_hybrid_precheck(&j->hdr, &j->dopt, ce->coef_blocks) == JPEG_HYBRID_OK;
}

/* Adds the image decoded as coefficients in job slot i to the slot's hybrid batch. */
static void add_hybrid_image(slot_state *s, int i, hybrid_batch *hb)
{
    s->hybrid_image[i] = jpeg_coeffs_append(&s->coeffs[i], s->coef_blk[i], s->src_off[i],
                                            s->images, &hb->n_images, s->planes, &hb->n_planes);
}

/* Launches jobs[0..n) (already known to fit) in slot si. */
static void launch_chunk(gpu_worker *ce, int si, job **jobs, int n)
{
    slot_state *s = &ce->slots[si];
    s->n = n;
    s->launch_failed = s->copy_failed = false;
    s->why[0] = '\0';
    size_t off = 0;
    uint64_t blk = 0;
    for (int i = 0; i < n; i++) {
        int w, h;
        s->jobs[i] = jobs[i];
        s->redo[i] = false;
        s->errs[i] = (cp_error){0};
        s->hybrid_image[i] = -1;
        decode_output_size(&jobs[i]->hdr, &jobs[i]->dopt, &w, &h);
        s->src_off[i] = off;
        off += align16((size_t)w * h * 3);
        s->coef_blk[i] = NO_COEFS;
        if (hybrid_candidate(ce, jobs[i])) { /* run_batch checked that the blocks fit */
            s->coef_blk[i] = blk;
            blk += (uint64_t)jobs[i]->hdr.jpeg_blocks;
        }
    }
    decode_ctx dc = {ce, s, cuda_engine_staging(ce->eng, si), cuda_engine_coefs(ce->eng, si)};
    parallel_for(ce->pool, n, decode_one, &dc);
    hybrid_batch hb = {.images = s->images, .planes = s->planes, .coef_bytes = blk * 128};
    int n_uploads = 0;

    batch_layout_reset(&s->layout);
    int d = 0;
    for (int i = 0; i < n; i++) {
        job *j = s->jobs[i];
        if (!s->ok[i]) {
            if (job_request_failed(j) && s->errs[i].status == CP_OK)
                job_complete(j, NULL); /* skipped: a sibling image failed */
            else
                job_complete(j, &s->errs[i]);
            continue;
        }
        int w, h;
        decode_output_size(&j->hdr, &j->dopt, &w, &h);
        if (s->reason[i] == JPEG_HYBRID_OK) {
            add_hybrid_image(s, i, &hb);
        } else { /* decoded on the CPU: upload its pixels (coalesced with the previous) */
            size_t bytes = (size_t)w * h * 3;
            staging_range *last = n_uploads ? &s->uploads[n_uploads - 1] : NULL;
            if (last && align16(last->off + last->bytes) == s->src_off[i])
                last->bytes = s->src_off[i] + bytes - last->off;
            else
                s->uploads[n_uploads++] = (staging_range){s->src_off[i], bytes};
        }
        image_geometry g;
        geometry_for_decode(j->prof, j->ref, &j->dopt, w, h, &g);
        resize_plan *p = &s->plans[d];
        bool planned = resize_plan_build_kind(p, w, h, g.resized_w, g.resized_h, g.top, g.left,
                                              g.out_w, g.out_h, j->prof->filter,
                                              reference_coeffs(j->ref));
        if (!planned || !batch_layout_add(&s->layout, p, s->src_off[i],
                                          (int)(j->table - ce->tables), (int)j->dtype)) {
            if (planned)
                resize_plan_free(p);
            s->ok[i] = false;
            fail_job(j, CP_ERR_INTERNAL, "could not lay out the batch");
            continue;
        }
        d++;
    }
    char err[256] = "";
    s->busy = true;
    s->launched_ns = monotonic_ns();
    if (!cuda_engine_launch(ce->eng, si, &s->layout, s->uploads, n_uploads, &hb, s->why,
                            sizeof s->why)) {
        s->launch_failed = true; /* finish_slot waits for what was queued, then redoes all */
        return;
    }
    for (int i = 0, k = 0; i < n; i++) { /* format=cuda_ipc / pinned shm: on the same stream */
        job *j = s->jobs[i];
        if (!s->ok[i])
            continue;
        size_t bytes = (size_t)3 * j->prof->out_height * j->prof->out_width *
                       tensor_dtype_size(j->dtype);
        if (j->out_direct &&
            !cuda_engine_copy_out_to_device(ce->eng, si, j->out, s->layout.descs[k].out_off,
                                            bytes, err, sizeof err)) {
            s->redo[i] = true;
            if (!s->copy_failed)
                snprintf(s->why, sizeof s->why, "%s", err);
            s->copy_failed = true;
        }
        k++;
    }
}

/* What one image needs from a slot; false if it can never fit (CPU path). */
static bool slot_needs(const gpu_worker *ce, const job *j, size_t *staging, size_t *tmp,
                       size_t *coeffs, size_t *out)
{
    int w, h;
    decode_output_size(&j->hdr, &j->dopt, &w, &h);
    image_geometry g;
    geometry_for_decode(j->prof, j->ref, &j->dopt, w, h, &g);
    resize_plan p;
    if (!resize_plan_build_kind(&p, w, h, g.resized_w, g.resized_h, g.top, g.left, g.out_w,
                                g.out_h, j->prof->filter, reference_coeffs(j->ref)))
        return false;
    *staging = align16((size_t)w * h * 3);
    *tmp = p.need_h ? align16(resize_plan_tmp_bytes(&p)) : 0;
    *coeffs = batch_plan_coeff_ints(&p);
    *out = align16((size_t)3 * g.out_w * g.out_h * tensor_dtype_size(j->dtype));
    resize_plan_free(&p);
    const cuda_engine_sizes *z = &ce->sizes;
    return *staging <= z->staging_bytes && *tmp <= z->tmp_bytes && *coeffs <= z->coeff_ints &&
           *out <= z->out_bytes;
}

/* A device whose context still works, for copies that any device can make (UVA). */
static int copy_device(const gpu_worker *ce)
{
    for (int i = 0; ce->lost && i < ce->ex->n; i++)
        if (!ce->ex->workers[i]->lost)
            return ce->ex->workers[i]->device;
    return ce->device;
}

/* The CPU path (an image too large for a slot, a guard trip, a failed batch, a lost GPU).
 * Host destinations (pinned shm included) are written directly; a destination in device
 * memory gets a copy through pinned memory, and fails the image (503) if that copy fails. */
static bool process_cpu_path(gpu_worker *ce, job *j, cpu_scratch *scratch, cp_error *e)
{
    if (!j->out_direct || !j->out_device)
        return process_job_cpu(j, scratch, e);
    size_t bytes = (size_t)3 * j->prof->out_height * j->prof->out_width *
                   tensor_dtype_size(j->dtype);
    void *device_out = j->out, *host = cuda_pinned_alloc(bytes);
    bool pinned = host != NULL; /* (a lost context cannot pin: the copy then fails below) */
    if (!pinned && !(host = malloc(bytes)))
        return cp_fail(e, CP_ERR_OVERLOADED, "out of memory");
    j->out = host;
    char err[256];
    bool ok = process_job_cpu(j, scratch, e);
    if (ok && !cuda_copy_to_direct(copy_device(ce), device_out, host, bytes, err, sizeof err))
        ok = cp_fail(e, CP_ERR_UNAVAILABLE, "GPU failure: the result could not be written to "
                     "its device memory: %s", err);
    j->out = device_out;
    if (pinned)
        cuda_pinned_free(host);
    else
        free(host);
    return ok;
}

static void run_batch(gpu_worker *ce, job **jobs, int n)
{
    int i = 0;
    while (i < n) {
        int si = ce->next_slot;
        ce->next_slot = (ce->next_slot + 1) % SLOTS;
        finish_slot(ce, si);
        if (ce->lost) { /* the GPU was taken out: the rest of the batch on the CPU path */
            run_on_cpu(ce, jobs + i, n - i);
            return;
        }
        size_t st = 0, tm = 0, co = 0, ou = 0;
        uint64_t blocks = 0;
        int start = i, count = 0;
        job *chunk[4096];
        while (i < n && count < ce->sizes.max_images) {
            job *j = jobs[i];
            size_t a, b, c, d;
            if (job_request_failed(j)) {
                job_complete(j, NULL);
                i++;
                continue;
            }
            if (j->vplan || job_vertical_first(j) || !slot_needs(ce, j, &a, &b, &c, &d)) {
                /* rare: larger than a slot, or Pillow 13's vertical-first order; exact on the
                   CPU path too. Vision-language tiles run on the CPU path for now. */
                cpu_scratch scratch = {0};
                cp_error e = {0};
                bool ok = process_cpu_path(ce, j, &scratch, &e);
                cpu_scratch_free(&scratch);
                job_complete(j, ok ? NULL : &e);
                i++;
                continue;
            }
            uint64_t k = hybrid_candidate(ce, j) ? (uint64_t)j->hdr.jpeg_blocks : 0;
            if (st + a > ce->sizes.staging_bytes || tm + b > ce->sizes.tmp_bytes ||
                co + c > ce->sizes.coeff_ints || ou + d > ce->sizes.out_bytes ||
                blocks + k > ce->coef_blocks)
                break;
            st += a, tm += b, co += c, ou += d, blocks += k;
            chunk[count++] = j;
            i++;
        }
        (void)start;
        if (count)
            launch_chunk(ce, si, chunk, count);
    }
}

static void *cuda_worker(void *arg)
{
    gpu_worker *ce = arg;
    for (;;) {
        if (queue_depth(ce->q) == 0) /* nothing to overlap with: deliver what is in flight */
            for (int s = 0; s < SLOTS; s++)
                finish_slot(ce, s);
        /* a lost GPU takes no more batches while a healthy one is left (it would only slow
         * them down; a batch in hand when the loss shows is finished on the CPU path); the
         * last one out serves the queue on the CPU path */
        if (ce->lost && atomic_load(&ce->ex->healthy) > 0)
            break;
        int n = queue_pop_batch(ce->q, ce->batch, ce->max_batch);
        if (n == 0)
            break;
        run_batch(ce, ce->batch, n);
    }
    for (int s = 0; s < SLOTS; s++)
        finish_slot(ce, s);
    axis_coeffs_cache_clear();
    return NULL;
}

static void gpu_worker_destroy(gpu_worker *ce)
{
    cuda_engine_destroy(ce->eng);
    parallel_pool_destroy(ce->pool);
    for (int s = 0; s < SLOTS; s++) {
        free(ce->slots[s].jobs);
        free(ce->slots[s].ok);
        free(ce->slots[s].redo);
        free(ce->slots[s].errs);
        free(ce->slots[s].src_off);
        free(ce->slots[s].plans);
        free(ce->slots[s].coef_blk);
        free(ce->slots[s].coeffs);
        free(ce->slots[s].reason);
        free(ce->slots[s].hybrid_image);
        free(ce->slots[s].images);
        free(ce->slots[s].planes);
        free(ce->slots[s].uploads);
        batch_layout_free(&ce->slots[s].layout);
    }
    free(ce->batch);
    free(ce->cpu_jobs);
    free(ce);
}

static void cuda_stop(executor *e)
{
    cuda_executor *ex = (cuda_executor *)e;
    for (int i = 0; i < ex->n; i++)
        pthread_join(ex->workers[i]->thread, NULL);
}

static void cuda_destroy(executor *e)
{
    cuda_executor *ex = (cuda_executor *)e;
    for (int i = 0; i < ex->n; i++)
        gpu_worker_destroy(ex->workers[i]);
    free(ex);
}

static const executor_ops cuda_ops = {.stop = cuda_stop, .destroy = cuda_destroy};

static gpu_worker *gpu_worker_create(cuda_executor *ex, int device, int decode_threads,
                                     batch_queue *q, const cp_config *cfg,
                                     const normalize_table *tables, int n_tables,
                                     size_t max_slot_bytes, cp_error *err)
{
    gpu_worker *ce = calloc(1, sizeof *ce);
    if (!ce) {
        cp_fail(err, CP_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    char cerr[256] = "";
    ce->device = device;
    ce->ex = ex;
    ce->q = q;
    ce->tables = tables;
    ce->max_batch = cfg->max_batch_size;
    ce->hybrid = cfg->decode_on_gpu != GPU_DECODE_OFF;
    int per_slot = cfg->max_batch_size < 4096 ? cfg->max_batch_size : 4096;
    ce->sizes = (cuda_engine_sizes){
        .staging_bytes = cfg->staging_bytes / SLOTS,
        .tmp_bytes = cfg->staging_bytes / SLOTS / 2,
        .out_bytes = align16(max_slot_bytes) * (size_t)per_slot,
        .coeff_ints = (size_t)4 << 20,
        .max_images = per_slot,
        .slots = SLOTS,
        /* as much coefficient room as pixel room: a 4:2:0 image needs 3 bytes per pixel of
         * either; 4:4:4 needs 6 (larger ones take the CPU decode; docs/configuration.md) */
        .coef_bytes = ce->hybrid ? cfg->staging_bytes / SLOTS : 0,
        .plane_bytes = ce->hybrid ? cfg->staging_bytes / SLOTS / 2 : 0,
        .max_planes = ce->hybrid ? per_slot * JH_MAX_COMPONENTS : 0,
        .sync = !strcmp(cfg->cuda_sync, "spin")       ? CUDA_SYNC_SPIN
                : !strcmp(cfg->cuda_sync, "yield")    ? CUDA_SYNC_YIELD
                : !strcmp(cfg->cuda_sync, "blocking") ? CUDA_SYNC_BLOCKING
                                                      : CUDA_SYNC_AUTO,
    };
    ce->coef_blocks = ce->sizes.coef_bytes / 128;
    ce->eng = cuda_engine_create(device, &ce->sizes, tables, n_tables, cerr, sizeof cerr);
    ce->pool = parallel_pool_create(decode_threads - 1);
    ce->batch = calloc((size_t)cfg->max_batch_size, sizeof *ce->batch);
    ce->cpu_jobs = calloc((size_t)per_slot, sizeof *ce->cpu_jobs);
    bool ok = ce->eng && ce->pool && ce->batch && ce->cpu_jobs;
    for (int s = 0; ok && s < SLOTS; s++) {
        slot_state *st = &ce->slots[s];
        st->jobs = calloc((size_t)per_slot, sizeof *st->jobs);
        st->ok = calloc((size_t)per_slot, sizeof *st->ok);
        st->redo = calloc((size_t)per_slot, sizeof *st->redo);
        st->errs = calloc((size_t)per_slot, sizeof *st->errs);
        st->src_off = calloc((size_t)per_slot, sizeof *st->src_off);
        st->plans = calloc((size_t)per_slot, sizeof *st->plans);
        st->coef_blk = calloc((size_t)per_slot, sizeof *st->coef_blk);
        st->coeffs = calloc((size_t)per_slot, sizeof *st->coeffs);
        st->reason = calloc((size_t)per_slot, sizeof *st->reason);
        st->hybrid_image = calloc((size_t)per_slot, sizeof *st->hybrid_image);
        st->images = calloc((size_t)per_slot, sizeof *st->images);
        st->planes = calloc((size_t)per_slot * JH_MAX_COMPONENTS, sizeof *st->planes);
        st->uploads = calloc((size_t)per_slot, sizeof *st->uploads);
        ok = st->jobs && st->ok && st->redo && st->errs && st->src_off && st->plans && st->coef_blk &&
             st->coeffs && st->reason && st->hybrid_image && st->images && st->planes &&
             st->uploads;
    }
    if (!ok) {
        cp_fail(err, CP_ERR_UNAVAILABLE, "CUDA start on device %d failed: %s", device,
                cerr[0] ? cerr : "out of memory");
        gpu_worker_destroy(ce);
        return NULL;
    }
    return ce;
}

/* cuda_devices: "" or "all" = every visible device, else "0,2" (checked by config_validate). */
static int device_list(const char *spec, int visible, int *out, cp_error *err)
{
    int n = 0;
    if (!spec[0] || !strcmp(spec, "all")) {
        for (int d = 0; d < visible && d < MAX_GPUS; d++)
            out[n++] = d;
        return n;
    }
    for (const char *p = spec; *p;) {
        char *end;
        long d = strtol(p, &end, 10);
        if (end == p || d < 0 || d >= visible) {
            cp_fail(err, CP_ERR_UNAVAILABLE, "cuda_devices \"%.60s\": device %ld is not one of "
                    "the %d visible (0..%d; CUDA_VISIBLE_DEVICES renumbers them)", spec, d,
                    visible, visible - 1);
            return -1;
        }
        if (n < MAX_GPUS)
            out[n++] = (int)d;
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

executor *executor_cuda_create(batch_queue *q, const cp_config *cfg, const normalize_table *tables,
                               int n_tables, size_t max_slot_bytes, cp_error *err)
{
    char name[128] = "", cerr[256] = "";
    int visible = cuda_device_count(name, sizeof name, cerr, sizeof cerr);
    if (visible <= 0) {
        cp_fail(err, CP_ERR_UNAVAILABLE, "no usable CUDA device (%s)", cerr[0] ? cerr : "none found");
        return NULL;
    }
    int devices[MAX_GPUS];
    int n_dev = device_list(cfg->cuda_devices, visible, devices, err);
    if (n_dev <= 0)
        return NULL;
    cuda_executor *ex = calloc(1, sizeof *ex);
    if (!ex) {
        cp_fail(err, CP_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int decode_threads = (int)(cores / n_dev > 1 ? cores / n_dev : 1);
    for (int k = 0; k < n_dev; k++) {
        gpu_worker *w = gpu_worker_create(ex, devices[k], decode_threads, q, cfg, tables,
                                          n_tables, max_slot_bytes, err);
        if (!w) {
            cuda_destroy(&ex->base);
            return NULL;
        }
        ex->workers[ex->n++] = w;
    }
    atomic_init(&ex->healthy, ex->n);
    atomic_init(&ex->base.gpus_lost, 0);
    /* format=cuda_ipc's pool lives on the first device; the others copy into it directly
     * where peer access is possible (else CUDA stages the copy through the host) */
    ex->base.ipc_device = devices[0];
    for (int k = 1; k < n_dev; k++)
        if (!cuda_peer_access(devices[k], devices[0]))
            log_event(LOG_INFO, "no peer access: copies into the cuda_ipc pool go through the host",
                      "\"device\":%d,\"pool_device\":%d", devices[k], devices[0]);
    cuda_device_name(devices[0], name, sizeof name);
    ex->base.ops = &cuda_ops;
    ex->base.backend = "cuda";
    ex->base.workers = ex->n;
    snprintf(ex->base.device, sizeof ex->base.device, "%dx %.100s", ex->n, name);
    const cuda_engine_sizes *z = &ex->workers[0]->sizes;
    metrics_set_pinned_bytes((uint64_t)ex->n * SLOTS *
                             (z->staging_bytes + z->out_bytes + z->coef_bytes));
    log_event(LOG_INFO, "CUDA executor", "\"devices\":%d,\"decode_on_gpu\":%s,"
              "\"coefficient_bytes_per_slot\":%zu", ex->n,
              ex->workers[0]->hybrid ? "true" : "false", z->coef_bytes);
    for (int i = 0; i < ex->n; i++)
        if (pthread_create(&ex->workers[i]->thread, NULL, cuda_worker, ex->workers[i]) != 0) {
            cp_fail(err, CP_ERR_INTERNAL, "could not start the CUDA worker for device %d", i);
            queue_close(q); /* workers already started drain and exit */
            for (int j = i; j < ex->n; j++)
                gpu_worker_destroy(ex->workers[j]);
            ex->n = i;
            cuda_stop(&ex->base);
            cuda_destroy(&ex->base);
            return NULL;
        }
    return &ex->base;
}

#endif
