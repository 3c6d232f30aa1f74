/* offload.c — the HTTP layer's worker threads (see offload.h): a FIFO of tasks. */
#include "offload.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct offload {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    offload_task *head, *tail;
    bool stopping;
    int n_threads;
    pthread_t *threads;
    void *(*thread_init)(void);
    void (*thread_fini)(void *);
};

static void *worker(void *arg)
{
    offload *o = arg;
    void *state = o->thread_init ? o->thread_init() : NULL;
    for (;;) {
        pthread_mutex_lock(&o->mu);
        while (!o->head && !o->stopping)
            pthread_cond_wait(&o->cv, &o->mu);
        offload_task *t = o->head;
        if (t) {
            o->head = t->next;
            if (!o->head)
                o->tail = NULL;
        }
        pthread_mutex_unlock(&o->mu);
        if (!t)
            break; /* stopping and nothing left */
        t->run(t, state);
    }
    if (o->thread_fini)
        o->thread_fini(state);
    return NULL;
}

offload *offload_create(int threads, void *(*thread_init)(void), void (*thread_fini)(void *))
{
    offload *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->thread_init = thread_init;
    o->thread_fini = thread_fini;
    o->threads = calloc((size_t)threads, sizeof *o->threads);
    if (!o->threads) {
        free(o);
        return NULL;
    }
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&o->threads[i], NULL, worker, o) != 0)
            break;
        o->n_threads++;
    }
    if (o->n_threads == 0) {
        offload_destroy(o);
        return NULL;
    }
    return o;
}

void offload_submit(offload *o, offload_task *t)
{
    t->next = NULL;
    pthread_mutex_lock(&o->mu);
    if (o->tail)
        o->tail->next = t;
    else
        o->head = t;
    o->tail = t;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

void offload_destroy(offload *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->mu);
    o->stopping = true;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    for (int i = 0; i < o->n_threads; i++)
        pthread_join(o->threads[i], NULL);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    free(o->threads);
    free(o);
}
