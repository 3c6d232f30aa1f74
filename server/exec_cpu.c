/* exec_cpu.c — the CPU executor: a pool of workers (default one per core), each popping from
 * the batch queue and running the per-image path. Batching buys nothing on a CPU core, so each
 * worker takes one image at a time; the queue's batching rules still bound what waits. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "executor.h"
#include "image_work.h"

typedef struct {
    executor base;
    batch_queue *q;
    pthread_t *threads;
    int n;
} cpu_executor;

static void *cpu_worker(void *arg)
{
    cpu_executor *ce = arg;
    cpu_scratch scratch = {0};
    job *batch[1];
    while (queue_pop_batch(ce->q, batch, 1) > 0) {
        job *j = batch[0];
        if (job_request_failed(j)) { /* a sibling image already failed: skip the work */
            job_complete(j, NULL);
            continue;
        }
        cp_error err = {0};
        bool ok = process_job_cpu(j, &scratch, &err);
        job_complete(j, ok ? NULL : &err);
    }
    cpu_scratch_free(&scratch);
    axis_coeffs_cache_clear();
    return NULL;
}

static void cpu_stop(executor *e)
{
    cpu_executor *ce = (cpu_executor *)e;
    for (int i = 0; i < ce->n; i++)
        pthread_join(ce->threads[i], NULL);
    ce->n = 0;
}

static void cpu_destroy(executor *e)
{
    cpu_executor *ce = (cpu_executor *)e;
    free(ce->threads);
    free(ce);
}

static const executor_ops cpu_ops = {.stop = cpu_stop, .destroy = cpu_destroy};

executor *executor_cpu_create(batch_queue *q, int workers, cp_error *err)
{
    cpu_executor *ce = calloc(1, sizeof *ce);
    if (ce)
        ce->threads = calloc((size_t)workers, sizeof(pthread_t));
    if (!ce || !ce->threads) {
        free(ce);
        cp_fail(err, CP_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    ce->base.ops = &cpu_ops;
    ce->base.backend = "cpu";
    ce->base.workers = workers;
    snprintf(ce->base.device, sizeof ce->base.device, "%d CPU workers", workers);
    ce->q = q;
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&ce->threads[i], NULL, cpu_worker, ce) != 0) {
            cp_fail(err, CP_ERR_INTERNAL, "could not start CPU worker %d", i);
            queue_close(q);
            ce->n = i;
            cpu_stop(&ce->base);
            cpu_destroy(&ce->base);
            return NULL;
        }
        ce->n = i + 1;
    }
    return &ce->base;
}
