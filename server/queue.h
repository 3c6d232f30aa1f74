/* queue.h — the bounded batch queue shared by all requests, drained with Triton's dynamic
 * batching rules: a batch is dispatched when it reaches max_batch_size (or a preferred size),
 * or when its oldest image has waited max_queue_delay_us. Full queue = refusal, never blocking. */
#ifndef CLIPPREP_QUEUE_H
#define CLIPPREP_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "job.h"

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job **ring;
    int capacity, head, count, reserved;
    int max_batch;
    uint64_t delay_ns;
    int preferred[16];
    int n_preferred;
    bool closed;
} batch_queue;

bool queue_init(batch_queue *q, int capacity, int max_batch, int max_queue_delay_us,
                const int *preferred, int n_preferred);
void queue_destroy(batch_queue *q);

/* Reserves room for n jobs; false when the queue cannot take them (overload). */
bool queue_reserve(batch_queue *q, int n);
void queue_unreserve(batch_queue *q, int n);
/* Pushes n reserved jobs (an array), in order. */
void queue_push_reserved(batch_queue *q, job *jobs, int n);

/* Blocks until a batch is due; fills out with at most min(limit, max_batch) jobs, oldest first.
 * Returns 0 only when the queue is closed and empty. */
int queue_pop_batch(batch_queue *q, job **out, int limit);

/* Wakes all waiters; remaining jobs are still handed out, then pops return 0. */
void queue_close(batch_queue *q);
int queue_depth(batch_queue *q);

#endif
