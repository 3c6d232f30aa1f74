/* offload.h — a small pool of threads for the HTTP layer's work that can take long: parsing a
 * large JSON body (/v1 image lists of base64, up to max_body_bytes) and fetching URLs
 * (fetch.c). The request is suspended while its task runs, so the HTTP thread keeps serving
 * other clients; the task resumes it and libmicrohttpd calls the body handler again. */
#ifndef CLIPPREP_OFFLOAD_H
#define CLIPPREP_OFFLOAD_H

typedef struct offload_task {
    /* on a pool thread, once; state: that thread's, from thread_init (NULL without one) */
    void (*run)(struct offload_task *t, void *state);
    struct offload_task *next; /* the pool's */
} offload_task;

typedef struct offload offload;

/* threads >= 1; thread_init / thread_fini (both optional) make and free each thread's state
 * (e.g. a libcurl handle reused across its fetches). NULL on failure. */
offload *offload_create(int threads, void *(*thread_init)(void), void (*thread_fini)(void *));
void offload_submit(offload *o, offload_task *t);
/* Runs what is queued, then joins the threads. NULL is fine. */
void offload_destroy(offload *o);

#endif
