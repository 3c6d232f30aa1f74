/* offload.h — a small pool of threads for the HTTP layer's own CPU work that can take long:
 * parsing a large JSON body (/v1 image lists of base64, up to max_body_bytes). The request is
 * suspended while its task runs, so the HTTP thread keeps serving other clients; the task
 * resumes it and libmicrohttpd calls the body handler again. */
#ifndef CLIPPREP_OFFLOAD_H
#define CLIPPREP_OFFLOAD_H

typedef struct offload_task {
    void (*run)(struct offload_task *t); /* on a pool thread, once */
    struct offload_task *next;           /* the pool's */
} offload_task;

typedef struct offload offload;

/* threads >= 1; NULL on failure. */
offload *offload_create(int threads);
void offload_submit(offload *o, offload_task *t);
/* Runs what is queued, then joins the threads. NULL is fine. */
void offload_destroy(offload *o);

#endif
