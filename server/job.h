/* job.h — one image of one request, as it travels through the batch queue to an executor. */
#ifndef CLIPPREP_JOB_H
#define CLIPPREP_JOB_H

#include <stdint.h>

#include "../kernels/normalize.h"
#include "../kernels/preprocess.h"
#include "decode.h"
#include "profile.h"

struct request;
struct vlm_image_plan_s;

typedef struct job {
    struct request *req;
    int index;                   /* image index within its request */
    const uint8_t *data;         /* encoded bytes (inside the request body) */
    size_t len;
    image_header hdr;            /* read when the request was accepted */
    decode_options dopt;
    const profile *prof;
    reference_id ref;            /* whose arithmetic (reference.h) */
    const normalize_table *table;
    tensor_dtype dtype;
    void *out;                   /* this image's 3*H*W slot in the request's output tensor */
    bool out_direct;             /* CUDA executor: copy the result straight to `out` on the
                                    batch's stream — device memory (format=cuda_ipc) or the
                                    shm pool registered as pinned memory (format=shm) */
    bool out_device;             /* `out` is device memory (format=cuda_ipc, a v2 CUDA region):
                                    a CPU-path result reaches it only through a CUDA copy */
    uint64_t enqueue_ns;         /* monotonic time it entered the queue */
    const struct vlm_image_plan_s *vplan; /* a vision-language profile's plan of this image
                                    (vlm/vlm.h; `out` is its part of pixel_values); NULL for
                                    classic profiles */
} job;

/* True once an earlier image of the job's request has failed: executors may skip the work. */
bool job_request_failed(const job *j);

/* Reports a finished job (err NULL on success). The request completes with its last job. */
void job_complete(job *j, const cp_error *err);

uint64_t monotonic_ns(void);

#endif
