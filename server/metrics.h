/* metrics.h — Prometheus counters, gauges and histograms, lock-free (relaxed atomics), and
 * their text exposition for GET /metrics. */
#ifndef CLIPPREP_METRICS_H
#define CLIPPREP_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    HIST_REQUEST_SECONDS = 0, /* clipprep_request_duration_seconds */
    HIST_QUEUE_WAIT_SECONDS,  /* clipprep_queue_wait_seconds */
    HIST_DECODE_SECONDS,      /* clipprep_decode_seconds (per image) */
    HIST_COMPUTE_SECONDS,     /* clipprep_compute_seconds (per image on CPU, per batch on GPU) */
    HIST_BATCH_SIZE,          /* clipprep_batch_size */
    HIST_FETCH_SECONDS,       /* clipprep_fetch_seconds (per URL fetched, redirects included) */
    HIST_ANSWER_SECONDS,      /* clipprep_answer_seconds (building a /v1/preprocess response) */
    HIST_COUNT
} metric_hist;

void metrics_observe(metric_hist h, double value);
void metrics_observe_ns(metric_hist h, uint64_t ns); /* seconds histograms */
/* route: a short name such as "/v1/preprocess"; status: the HTTP status answered. */
void metrics_count_request(const char *route, int status);
void metrics_add_images(uint64_t n);
void metrics_set_pinned_bytes(uint64_t bytes);
/* The in-flight memory budget (mem_budget.c): bytes reserved now, the most ever, the limit. */
void metrics_set_memory_budget(uint64_t used, uint64_t peak, uint64_t limit);
/* Hybrid JPEG decode (CUDA backend): one image decoded on the GPU (JPEG_HYBRID_OK) or the
 * jpeg_hybrid_reason it took the CPU decoder for. */
void metrics_count_hybrid_decode(int reason);
/* GPU failures (docs/gpu.md): a failed launch/copy/wait (sticky: the context was lost), the
 * images of failed batches redone on the CPU path, and a GPU taken out of service. */
void metrics_count_gpu_failure(int sticky, int images_redone);
void metrics_count_gpu_lost(void);

/* URL fetches by result ("ok" or the error code) and the content cache's counters. */
void metrics_count_fetch(const char *result);
void metrics_set_cache(uint64_t hits, uint64_t misses, uint64_t evictions, uint64_t entries,
                       uint64_t bytes);

/* Renders the exposition text into a malloc'd string; the caller supplies the gauges. */
char *metrics_render(const char *version, const char *backend, int queue_depth, int inflight,
                     size_t *len);

#endif
