/* queue.c — ring buffer of job pointers with dynamic-batching pops. */
#include "queue.h"

#include "metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

bool queue_init(batch_queue *q, int capacity, int max_batch, int max_queue_delay_us,
                const int *preferred, int n_preferred)
{
    *q = (batch_queue){0};
    q->ring = calloc((size_t)capacity, sizeof *q->ring);
    if (!q->ring)
        return false;
    q->capacity = capacity;
    q->max_batch = max_batch;
    q->delay_ns = (uint64_t)max_queue_delay_us * 1000u;
    if (n_preferred > 16)
        n_preferred = 16;
    for (int i = 0; i < n_preferred; i++)
        q->preferred[i] = preferred[i];
    q->n_preferred = n_preferred;
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    return true;
}

void queue_destroy(batch_queue *q)
{
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q->ring);
    q->ring = NULL;
}

bool queue_reserve(batch_queue *q, int n)
{
    pthread_mutex_lock(&q->mu);
    bool ok = !q->closed && q->count + q->reserved + n <= q->capacity;
    if (ok)
        q->reserved += n;
    pthread_mutex_unlock(&q->mu);
    return ok;
}

void queue_unreserve(batch_queue *q, int n)
{
    pthread_mutex_lock(&q->mu);
    q->reserved -= n;
    pthread_cond_broadcast(&q->cv); /* a closing queue may have waited for this */
    pthread_mutex_unlock(&q->mu);
}

void queue_push_reserved(batch_queue *q, job *jobs, int n)
{
    uint64_t now = monotonic_ns();
    pthread_mutex_lock(&q->mu);
    for (int i = 0; i < n; i++) {
        jobs[i].enqueue_ns = now;
        q->ring[(q->head + q->count) % q->capacity] = &jobs[i];
        q->count++;
    }
    q->reserved -= n;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* The batch size to dispatch now, or 0 to keep waiting (called with mu held). */
static int due_batch_size(const batch_queue *q, int limit, uint64_t now)
{
    int cap = q->max_batch < limit ? q->max_batch : limit;
    if (q->count >= cap)
        return cap;
    if (q->n_preferred) { /* the largest preferred size the queue can fill now */
        int best = 0;
        for (int i = 0; i < q->n_preferred; i++)
            if (q->preferred[i] <= q->count && q->preferred[i] <= cap && q->preferred[i] > best)
                best = q->preferred[i];
        if (best > 0)
            return best;
    }
    const job *oldest = q->ring[q->head];
    if (q->closed || now >= oldest->enqueue_ns + q->delay_ns)
        return q->count;
    return 0;
}

int queue_pop_batch(batch_queue *q, job **out, int limit)
{
    pthread_mutex_lock(&q->mu);
    int n = 0;
    for (;;) {
        /* A reservation made before the close is pushed soon after it: the workers stay until
         * it is, so no accepted request is left suspended (the shutdown race of issue #13). */
        while (q->count == 0 && (!q->closed || q->reserved > 0))
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->count == 0)
            break; /* closed and drained */
        uint64_t now = monotonic_ns();
        n = due_batch_size(q, limit, now);
        if (n > 0)
            break;
        uint64_t deadline = q->ring[q->head]->enqueue_ns + q->delay_ns;
        struct timespec ts = {.tv_sec = (time_t)(deadline / 1000000000u),
                              .tv_nsec = (long)(deadline % 1000000000u)};
        pthread_cond_timedwait(&q->cv, &q->mu, &ts);
    }
    uint64_t now = monotonic_ns();
    for (int i = 0; i < n; i++) {
        out[i] = q->ring[q->head];
        metrics_observe_ns(HIST_QUEUE_WAIT_SECONDS, now - out[i]->enqueue_ns);
        q->head = (q->head + 1) % q->capacity;
        q->count--;
    }
    if (q->count > 0)
        pthread_cond_signal(&q->cv); /* another worker may take the rest */
    pthread_mutex_unlock(&q->mu);
    if (n > 0)
        metrics_observe(HIST_BATCH_SIZE, n);
    return n;
}

void queue_close(batch_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

int queue_depth(batch_queue *q)
{
    pthread_mutex_lock(&q->mu);
    int n = q->count;
    pthread_mutex_unlock(&q->mu);
    return n;
}
