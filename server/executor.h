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
    atomic_int gpus_lost;   /* CUDA: GPUs taken out of service (docs/gpu.md); /healthz is 503
                               from the first on, so that the orchestrator restarts us */
    int ipc_device;         /* CUDA: the device of the format=cuda_ipc pool (first used GPU) */
};

executor *executor_cpu_create(batch_queue *q, int workers, cp_error *err);

/* NULL with err set where CUDA is not compiled in, no device is usable, a cuda_devices entry
 * does not exist or the kernels cannot run on a device. tables: the normalisation tables
 * (jobs point into this array); max_slot_bytes: the largest output slot of any profile and
 * dtype. A GPU that fails later is handled inside (docs/gpu.md): gpus_lost counts them. */
executor *executor_cuda_create(batch_queue *q, const cp_config *cfg, const normalize_table *tables,
                               int n_tables, size_t max_slot_bytes, cp_error *err);

#endif
