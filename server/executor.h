/* executor.h — the backend interface: a small struct of function pointers, as ggml's backends.
 * An executor drains the batch queue with its own threads and completes jobs; callers never
 * test which implementation they hold. */
#ifndef CLIPPREP_EXECUTOR_H
#define CLIPPREP_EXECUTOR_H

#include <stdatomic.h>

#include "../kernels/normalize.h"
#include "config.h"
#include "error.h"
#include "queue.h"

typedef struct executor executor;

typedef struct {
    /* Called after queue_close: finishes every queued job, then joins the threads. */
    void (*stop)(executor *e);
    void (*destroy)(executor *e);
} executor_ops;

struct executor {
    const executor_ops *ops;
    const char *backend;    /* "cpu" | "cuda" */
    int workers;
    char device[128];       /* e.g. "2 CPU workers" or the GPU's name */
};

executor *executor_cpu_create(batch_queue *q, int workers, cp_error *err);

/* NULL with err set where CUDA is not compiled in or no device is usable. tables: the
 * normalisation tables (jobs point into this array); max_slot_bytes: the largest output slot of
 * any profile and dtype; ready is cleared when the device fails. */
executor *executor_cuda_create(batch_queue *q, const cp_config *cfg, const normalize_table *tables,
                               int n_tables, size_t max_slot_bytes, atomic_bool *ready,
                               cp_error *err);

#endif
