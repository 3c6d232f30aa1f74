/* request.h — one HTTP request's state, from the first header to the completed callback. A
 * /v1/preprocess request is suspended while its images are in flight; the worker finishing its
 * last image builds the response and resumes the connection. */
#ifndef CLIPPREP_REQUEST_H
#define CLIPPREP_REQUEST_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "job.h"
#include "server.h"
#include "tensor_encode.h"

typedef enum {
    ROUTE_NOT_FOUND = 0,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_PROFILES,
    ROUTE_PREPROCESS,
    ROUTE_METRICS,
} route_id;

typedef enum { REQ_RECEIVING = 0, REQ_PROCESSING, REQ_READY, REQ_ANSWERED } request_state;

typedef struct request {
    server_ctx *srv;
    struct MHD_Connection *conn;
    atomic_int refs;          /* the connection's, plus one while images are in flight */
    route_id route;
    char id[72];              /* X-Request-Id, echoed */
    uint64_t start_ns;
    int status;               /* HTTP status answered, for the access log */
    /* body */
    uint8_t *body;
    size_t len, cap;
    bool body_too_large;
    /* /v1/preprocess */
    const profile *prof;
    output_format fmt;
    tensor_dtype dtype;
    int n_images;
    bool accepted;            /* counted in srv->inflight until the connection completes */
    job *jobs;
    uint8_t *out_buf;         /* [npy header][N*3*H*W values] */
    size_t out_prefix, out_size;
    pthread_mutex_t mu;
    int remaining;
    atomic_bool failed;
    int err_index;
    cp_error err;
    struct MHD_Response *response; /* built by the finishing worker */
    int response_status;
    atomic_int state;
} request;

request *request_new(server_ctx *srv, struct MHD_Connection *conn, route_id route);
void request_unref(request *r);

/* /v1/preprocess, called by http.c on the MHD thread. */
enum MHD_Result preprocess_first_call(request *r);
enum MHD_Result preprocess_upload(request *r, const char *data, size_t *size);
enum MHD_Result preprocess_body_complete(request *r);
enum MHD_Result preprocess_send_ready(request *r);

#endif
