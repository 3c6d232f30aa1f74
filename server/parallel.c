/* parallel.c — fork-join over a generation counter; one parallel_for at a time per pool. */
#include "parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "../kernels/coeffs.h"

struct parallel_pool {
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    unsigned long generation;
    bool quit;
    int n, finished;
    atomic_int next;
    void (*fn)(void *, int);
    void *ctx;
    pthread_t *threads;
    int n_threads;
};

static void run_items(parallel_pool *p)
{
    int i, done = 0;
    while ((i = atomic_fetch_add(&p->next, 1)) < p->n) {
        p->fn(p->ctx, i);
        done++;
    }
    pthread_mutex_lock(&p->mu);
    p->finished += done;
    if (p->finished == p->n)
        pthread_cond_broadcast(&p->done);
    pthread_mutex_unlock(&p->mu);
}

static void *worker(void *arg)
{
    parallel_pool *p = arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen)
            pthread_cond_wait(&p->start, &p->mu);
        if (p->quit)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        run_items(p);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    axis_coeffs_cache_clear(); /* the thread's cached coefficient tables die with it */
    return NULL;
}

parallel_pool *parallel_pool_create(int extra_threads)
{
    parallel_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = calloc((size_t)(extra_threads > 0 ? extra_threads : 1), sizeof(pthread_t));
    for (int i = 0; p->threads && i < extra_threads; i++)
        if (pthread_create(&p->threads[i], NULL, worker, p) == 0)
            p->n_threads++;
    return p;
}

void parallel_for(parallel_pool *p, int n, void (*fn)(void *ctx, int i), void *ctx)
{
    if (n <= 0)
        return;
    pthread_mutex_lock(&p->mu);
    p->n = n;
    p->finished = 0;
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->next, 0);
    p->generation++;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    run_items(p);
    pthread_mutex_lock(&p->mu);
    while (p->finished < p->n)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void parallel_pool_destroy(parallel_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}
