/* request.h — one HTTP request's state, from the first header to the completed callback. A
 * /v1/preprocess request is suspended while its images are in flight; the worker finishing its
 * last image builds the response and resumes the connection. */
#ifndef CLIPPREP_REQUEST_H
#define CLIPPREP_REQUEST_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "job.h"
#include "out_layout.h"
#include "server.h"
#include "tensor_encode.h"

typedef enum {
    ROUTE_NOT_FOUND = 0,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_PROFILES,
    ROUTE_PREPROCESS,
    ROUTE_METRICS,
    ROUTE_SHM,        /* GET /v1/shm */
    ROUTE_LEASE,      /* DELETE /v1/leases/{id} */
    ROUTE_V2,         /* /v2/... (triton_routes.c) */
    ROUTE_PLAN,       /* POST /v1/plan: /v1/preprocess's plan from the headers (plan_answer.c) */
} route_id;

typedef enum { REQ_RECEIVING = 0, REQ_PROCESSING, REQ_READY, REQ_ANSWERED } request_state;

typedef enum { PROTO_V1 = 0, PROTO_V2 } request_protocol;

struct shm_region;
struct kserve_request;
typedef struct preprocess_input preprocess_input;

typedef struct request {
    server_ctx *srv;
    struct MHD_Connection *conn;
    atomic_int refs;          /* the connection's, plus one while images are in flight */
    route_id route;
    char id[72];              /* X-Request-Id, echoed */
    char url[256];            /* the path, for routes with parameters */
    char method[16];
    uint64_t start_ns;
    int status;               /* HTTP status answered, for the access log */
    /* body */
    uint8_t *body;
    size_t len, cap;
    bool body_too_large;
    cp_error upload_err;      /* why a growing (chunked) body was refused, when not max_body_bytes */
    size_t mem_reserved;      /* this request's share of srv->budget (mem_budget.h) */
    /* /v1/preprocess and /v2/models/{m}/infer */
    request_protocol protocol;
    const profile *prof;
    reference_id ref;         /* reference= (v1) / parameters.reference (v2), else the profile's */
    output_format fmt;
    tensor_dtype dtype;
    bool fast;                /* mode=fast: JPEG DCT-domain downscaling first (not exact) */
    int n_images;
    int n_jobs;               /* images queued: n_images less the content cache's hits */
    preprocess_input *input;  /* JSON input, fetches, cache state (preprocess_input.c) */
    bool accepted;            /* counted in srv->inflight until the connection completes */
    job *jobs;
    out_layout layout;        /* the answer's arrays; offsets from out_ptr */
    struct vlm_image_plan_s *vplans; /* a vision-language profile: each image's plan */
    size_t *part_off;         /* ... and its part's byte offset in pixel_values */
    uint8_t *out_buf;         /* [npy header][N*3*H*W values] (NULL when written to shm) */
    size_t out_prefix, out_size;
    uint8_t *out_ptr;         /* where the tensor goes: in out_buf, a lease or a region */
    char lease_id[40];        /* format=shm / cuda_ipc: the lease holding the tensor */
    struct shm_pool *lease_pool; /* the pool of that lease */
    uint64_t lease_offset;
    struct shm_region *region; /* /v2 output into a client-registered region (a reference) */
    bool region_on_device;    /* that region is a client GPU buffer (v2/cudasharedmemory) */
    struct kserve_request *kreq; /* /v2: the parsed infer request */
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

/* Shared by both protocols once the images are known (pointers into the body): checks every
 * header, places the output (buffer, shm lease or registered region), queues the jobs with the
 * connection suspended, or answers an error at once. */
typedef struct {
    const uint8_t *data;
    size_t len;
} image_ref;
enum MHD_Result request_start(request *r, const image_ref *images, int n, bool exif);

/* Answers an error now (before acceptance); v1 or v2 error shape by r->protocol. */
enum MHD_Result request_answer_error(request *r, const cp_error *err, int index);

/* /v2 (triton_routes.c): the first call answers GETs and prepares POSTs; the body handler
 * serves infer and the shared-memory calls; the builder makes a finished infer's answer. */
enum MHD_Result triton_first_call(request *r);
enum MHD_Result triton_body_complete(request *r);
void triton_build_response(request *r);
/* A vision-language model's infer: checks the outputs it names against its arrays, packs
 * them for binary data and sets the binary header's size (request_start, once planned). */
bool triton_vlm_layout(request *r, cp_error *err);

#endif
