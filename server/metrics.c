/* metrics.c — fixed-bucket histograms and a small route x status table. */
#include "metrics.h"

#include "conn_deadlines.h"

#include "jpeg_coeffs.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BUCKETS 16

typedef struct {
    const char *name, *help;
    int n;
    double bounds[MAX_BUCKETS];
    atomic_ullong counts[MAX_BUCKETS + 1]; /* last: +Inf */
    atomic_ullong sum_micro;               /* sum in millionths, integer for atomicity */
} histogram;

static histogram hists[HIST_COUNT] = {
    [HIST_REQUEST_SECONDS] = {.name = "clipprep_request_duration_seconds", .help = "Time from first byte to answer, /v1/preprocess", .n = 12,
        .bounds = {.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}},
    [HIST_QUEUE_WAIT_SECONDS] = {.name = "clipprep_queue_wait_seconds", .help = "Time an image waited in the batch queue", .n = 11,
        .bounds = {.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, 1}},
    [HIST_DECODE_SECONDS] = {.name = "clipprep_decode_seconds", .help = "Decode time per image", .n = 11,
        .bounds = {.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}},
    [HIST_COMPUTE_SECONDS] = {.name = "clipprep_compute_seconds", .help = "Resample + normalise time (per image on CPU, per batch on GPU)", .n = 11,
        .bounds = {.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, 1}},
    [HIST_BATCH_SIZE] = {.name = "clipprep_batch_size", .help = "Images per batch taken from the queue", .n = 10,
        .bounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 1024}},
    [HIST_FETCH_SECONDS] = {.name = "clipprep_fetch_seconds", .help = "Time to fetch one image URL (JSON input), redirects included", .n = 11,
        .bounds = {.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5}},
    [HIST_ANSWER_SECONDS] = {.name = "clipprep_answer_seconds", .help = "Time to build a /v1/preprocess response once its images are done", .n = 10,
        .bounds = {.00001, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .25}},
};

static const char *const routes[] = {"/v1/preprocess", "/v1/profiles", "/healthz", "/readyz",
                                     "/metrics", "other"};
#define N_ROUTES (sizeof routes / sizeof routes[0])
static const int statuses[] = {200, 400, 401, 404, 405, 413, 415, 500, 503};
#define N_STATUSES (sizeof statuses / sizeof statuses[0])
static atomic_ullong request_counts[N_ROUTES][N_STATUSES + 1]; /* last: any other status */
static atomic_ullong images_total;
static atomic_ullong pinned_bytes;
static atomic_ullong hybrid_counts[JPEG_HYBRID_REASONS];
static atomic_ullong gpu_failures[2], gpu_redone, gpus_lost;
static const char *const fetch_results[] = {"ok", "fetch_refused", "fetch_failed",
                                            "fetch_too_large", "fetch_timeout", "other"};
#define N_FETCH_RESULTS (sizeof fetch_results / sizeof fetch_results[0])
static atomic_ullong fetch_counts[N_FETCH_RESULTS];
static atomic_ullong cache_values[5]; /* hits, misses, evictions, entries, bytes */

void metrics_count_fetch(const char *result)
{
    size_t i = 0;
    while (i < N_FETCH_RESULTS - 1 && strcmp(fetch_results[i], result))
        i++;
    atomic_fetch_add_explicit(&fetch_counts[i], 1, memory_order_relaxed);
}

void metrics_set_cache(uint64_t hits, uint64_t misses, uint64_t evictions, uint64_t entries,
                       uint64_t bytes)
{
    atomic_store(&cache_values[0], hits);
    atomic_store(&cache_values[1], misses);
    atomic_store(&cache_values[2], evictions);
    atomic_store(&cache_values[3], entries);
    atomic_store(&cache_values[4], bytes);
}

void metrics_observe(metric_hist h, double value)
{
    histogram *m = &hists[h];
    int b = 0;
    while (b < m->n && value > m->bounds[b])
        b++;
    atomic_fetch_add_explicit(&m->counts[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_micro, (unsigned long long)(value * 1e6 + 0.5),
                              memory_order_relaxed);
}

void metrics_observe_ns(metric_hist h, uint64_t ns) { metrics_observe(h, (double)ns / 1e9); }

void metrics_count_request(const char *route, int status)
{
    size_t r = 0, s = 0;
    while (r < N_ROUTES - 1 && strcmp(routes[r], route))
        r++;
    while (s < N_STATUSES && statuses[s] != status)
        s++;
    atomic_fetch_add_explicit(&request_counts[r][s], 1, memory_order_relaxed);
}

void metrics_add_images(uint64_t n) { atomic_fetch_add_explicit(&images_total, n, memory_order_relaxed); }
void metrics_set_pinned_bytes(uint64_t bytes) { atomic_store(&pinned_bytes, bytes); }

static atomic_ullong budget_used, budget_peak, budget_limit;
void metrics_set_memory_budget(uint64_t used, uint64_t peak, uint64_t limit)
{
    atomic_store(&budget_used, used);
    atomic_store(&budget_peak, peak);
    atomic_store(&budget_limit, limit);
}

void metrics_count_hybrid_decode(int reason)
{
    if (reason >= 0 && reason < JPEG_HYBRID_REASONS)
        atomic_fetch_add_explicit(&hybrid_counts[reason], 1, memory_order_relaxed);
}

void metrics_count_gpu_failure(int sticky, int images_redone)
{
    atomic_fetch_add_explicit(&gpu_failures[sticky != 0], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&gpu_redone, (unsigned long long)images_redone,
                              memory_order_relaxed);
}

void metrics_count_gpu_lost(void) { atomic_fetch_add(&gpus_lost, 1); }

typedef struct {
    char *s;
    size_t len, cap;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n + 1;
        char *s = realloc(b->s, cap);
        if (!s)
            return;
        b->s = s;
        b->cap = cap;
    }
}

char *metrics_render(const char *version, const char *backend, int queue_depth, int inflight,
                     size_t *len)
{
    buf b = {malloc(8192), 0, 8192};
    if (!b.s)
        return NULL;
    b.s[0] = '\0';
    put(&b, "# HELP clipprep_build_info Version and backend of this daemon\n"
            "# TYPE clipprep_build_info gauge\nclipprep_build_info{version=\"%s\",backend=\"%s\"} 1\n",
        version, backend);
    put(&b, "# HELP clipprep_requests_total Requests answered, by route and HTTP status\n"
            "# TYPE clipprep_requests_total counter\n");
    for (size_t r = 0; r < N_ROUTES; r++)
        for (size_t s = 0; s <= N_STATUSES; s++) {
            unsigned long long v = atomic_load_explicit(&request_counts[r][s], memory_order_relaxed);
            if (v || (r == 0 && s == 0)) {
                if (s < N_STATUSES)
                    put(&b, "clipprep_requests_total{route=\"%s\",code=\"%d\"} %llu\n", routes[r], statuses[s], v);
                else
                    put(&b, "clipprep_requests_total{route=\"%s\",code=\"other\"} %llu\n", routes[r], v);
            }
        }
    put(&b, "# HELP clipprep_images_total Images preprocessed successfully\n"
            "# TYPE clipprep_images_total counter\nclipprep_images_total %llu\n",
        (unsigned long long)atomic_load(&images_total));
    put(&b, "# HELP clipprep_queue_depth Images waiting in the batch queue\n"
            "# TYPE clipprep_queue_depth gauge\nclipprep_queue_depth %d\n", queue_depth);
    put(&b, "# HELP clipprep_inflight_requests Preprocess requests accepted and not yet answered\n"
            "# TYPE clipprep_inflight_requests gauge\nclipprep_inflight_requests %d\n", inflight);
    put(&b, "# HELP clipprep_pinned_bytes Pinned host memory held by the CUDA executor\n"
            "# TYPE clipprep_pinned_bytes gauge\nclipprep_pinned_bytes %llu\n",
        (unsigned long long)atomic_load(&pinned_bytes));
    put(&b, "# HELP clipprep_memory_budget_used_bytes In-flight request memory reserved now "
            "(bodies, outputs, JSON answers)\n# TYPE clipprep_memory_budget_used_bytes gauge\n"
            "clipprep_memory_budget_used_bytes %llu\n"
            "# HELP clipprep_memory_budget_peak_bytes The most ever reserved at once\n"
            "# TYPE clipprep_memory_budget_peak_bytes gauge\nclipprep_memory_budget_peak_bytes %llu\n"
            "# HELP clipprep_memory_budget_bytes The budget (memory_budget_bytes)\n"
            "# TYPE clipprep_memory_budget_bytes gauge\nclipprep_memory_budget_bytes %llu\n",
        (unsigned long long)atomic_load(&budget_used), (unsigned long long)atomic_load(&budget_peak),
        (unsigned long long)atomic_load(&budget_limit));
    put(&b, "# HELP clipprep_connections_cut_total Connections cut for missing the header or "
            "response deadline (header_timeout_s, response_timeout_s)\n"
            "# TYPE clipprep_connections_cut_total counter\nclipprep_connections_cut_total %llu\n",
        conn_deadlines_cut_count());
    put(&b, "# HELP clipprep_gpu_decode_images_total Images of the hybrid JPEG decode (CUDA "
            "backend, decode_on_gpu): result=\"ok\" decoded on the GPU, otherwise why the CPU "
            "decoded it\n# TYPE clipprep_gpu_decode_images_total counter\n");
    for (int r = 0; r < JPEG_HYBRID_REASONS; r++)
        put(&b, "clipprep_gpu_decode_images_total{result=\"%s\"} %llu\n",
            jpeg_hybrid_reason_name((jpeg_hybrid_reason)r),
            (unsigned long long)atomic_load(&hybrid_counts[r]));
    put(&b, "# HELP clipprep_gpu_failures_total Failed GPU launches, copies or waits (CUDA "
            "backend); sticky=\"true\": the CUDA context was lost\n"
            "# TYPE clipprep_gpu_failures_total counter\n"
            "clipprep_gpu_failures_total{sticky=\"false\"} %llu\n"
            "clipprep_gpu_failures_total{sticky=\"true\"} %llu\n",
        (unsigned long long)atomic_load(&gpu_failures[0]),
        (unsigned long long)atomic_load(&gpu_failures[1]));
    put(&b, "# HELP clipprep_gpu_redone_images_total Images of failed GPU batches redone on the "
            "CPU path\n# TYPE clipprep_gpu_redone_images_total counter\n"
            "clipprep_gpu_redone_images_total %llu\n",
        (unsigned long long)atomic_load(&gpu_redone));
    put(&b, "# HELP clipprep_gpus_lost GPUs taken out of service (/healthz answers 503)\n"
            "# TYPE clipprep_gpus_lost gauge\nclipprep_gpus_lost %llu\n",
        (unsigned long long)atomic_load(&gpus_lost));
    put(&b, "# HELP clipprep_fetch_total Image URLs fetched (JSON input), by result\n"
            "# TYPE clipprep_fetch_total counter\n");
    for (size_t i = 0; i < N_FETCH_RESULTS; i++)
        put(&b, "clipprep_fetch_total{result=\"%s\"} %llu\n", fetch_results[i],
            (unsigned long long)atomic_load(&fetch_counts[i]));
    static const char *const cache_names[5][3] = {
        {"clipprep_cache_hits_total", "counter", "Images answered from the content cache"},
        {"clipprep_cache_misses_total", "counter", "Content cache look-ups that missed"},
        {"clipprep_cache_evictions_total", "counter", "Entries evicted to stay within cache_bytes"},
        {"clipprep_cache_entries", "gauge", "Tensors held by the content cache"},
        {"clipprep_cache_bytes", "gauge", "Bytes held by the content cache (with overhead)"}};
    for (int i = 0; i < 5; i++)
        put(&b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", cache_names[i][0], cache_names[i][2],
            cache_names[i][0], cache_names[i][1], cache_names[i][0],
            (unsigned long long)atomic_load(&cache_values[i]));
    for (int h = 0; h < HIST_COUNT; h++) {
        histogram *m = &hists[h];
        put(&b, "# HELP %s %s\n# TYPE %s histogram\n", m->name, m->help, m->name);
        unsigned long long cum = 0;
        for (int i = 0; i <= m->n; i++) {
            cum += atomic_load_explicit(&m->counts[i], memory_order_relaxed);
            if (i < m->n)
                put(&b, "%s_bucket{le=\"%g\"} %llu\n", m->name, m->bounds[i], cum);
            else
                put(&b, "%s_bucket{le=\"+Inf\"} %llu\n", m->name, cum);
        }
        put(&b, "%s_sum %.6f\n%s_count %llu\n", m->name,
            (double)atomic_load(&m->sum_micro) / 1e6, m->name, cum);
    }
    *len = b.len;
    return b.s;
}
