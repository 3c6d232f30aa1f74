/* preprocess_route.c — POST /v1/preprocess: receive the body, validate everything that can be
 * validated without decoding (parameters, multipart, headers, pixel limits), then hand the
 * images to the batch queue with the connection suspended; answer when the last one is done. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array_encode.h"
#include "geometry.h"
#include "image_work.h"
#include "http_util.h"
#include "log.h"
#include "mem_budget.h"
#include "plan_answer.h"
#include "metrics.h"
#include "kserve.h"
#include "multipart.h"
#include "preprocess_input.h"
#include "shm_pool.h"
#include "shm_regions.h"
#include "request.h"
#include "vlm/vlm.h"

request *request_new(server_ctx *srv, struct MHD_Connection *conn, route_id route)
{
    request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->srv = srv;
    r->conn = conn;
    r->route = route;
    atomic_init(&r->refs, 1);
    atomic_init(&r->failed, false);
    atomic_init(&r->state, REQ_RECEIVING);
    r->err_index = -1;
    r->start_ns = monotonic_ns();
    pthread_mutex_init(&r->mu, NULL);
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    size_t gl = given ? strlen(given) : 0;
    bool usable = gl > 0 && gl < sizeof r->id;
    for (size_t i = 0; usable && i < gl; i++)
        usable = given[i] > 0x20 && given[i] < 0x7f && given[i] != '"' && given[i] != '\\';
    if (usable)
        memcpy(r->id, given, gl + 1);
    else
        snprintf(r->id, sizeof r->id, "%016llx",
                 (unsigned long long)atomic_fetch_add(&srv->next_request_id, 1));
    return r;
}

void request_unref(request *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (r->response)
        MHD_destroy_response(r->response);
    if (r->kreq) {
        kserve_request_free(r->kreq);
        free(r->kreq);
    }
    shm_region_put(r->region);
    preprocess_input_free(r->input);
    pthread_mutex_destroy(&r->mu);
    free(r->body);
    free(r->jobs);
    free(r->vplans);
    free(r->part_off);
    free(r->out_buf);
    request_release_all(r);
    free(r);
}

/* Answers a request-level error (index null) at once, before the request is accepted. */
static enum MHD_Result answer_error(request *r, cp_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result answer_error(request *r, cp_status status, const char *fmt, ...)
{
    cp_error err = {.status = status};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    struct MHD_Response *resp = error_response(&err, -1, &r->status);
    atomic_store(&r->state, REQ_ANSWERED);
    return send_response(r->conn, r->status, resp, r->id);
}

static enum MHD_Result answer_cp_error(request *r, const cp_error *err, int index)
{
    struct MHD_Response *resp = error_response(err, index, &r->status);
    atomic_store(&r->state, REQ_ANSWERED);
    return send_response(r->conn, r->status, resp, r->id);
}

enum MHD_Result preprocess_first_call(request *r)
{
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (n > r->srv->cfg->max_body_bytes)
            return answer_error(r, CP_ERR_BODY_TOO_LARGE,
                                "request body too large: %llu bytes, limit %zu (max_body_bytes)",
                                n, r->srv->cfg->max_body_bytes);
        if (*end == '\0' && n > 0) {
            cp_error err = {0};
            if (!request_reserve(r, (size_t)n, "the request body", &err))
                return request_answer_error(r, &err, -1);
            r->body = malloc((size_t)n);
            if (!r->body)
                return answer_error(r, CP_ERR_OVERLOADED, "out of memory");
            r->cap = (size_t)n;
        }
    }
    return MHD_YES;
}

enum MHD_Result preprocess_upload(request *r, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0; /* consumed (or discarded, once over the limit) */
    if (monotonic_ns() - r->start_ns > (uint64_t)r->srv->cfg->request_timeout_s * 1000000000u) {
        char esc[80];
        json_escape(r->id, esc, sizeof esc);
        log_event(LOG_WARN, "upload exceeded request_timeout_s: connection closed",
                  "\"request_id\":\"%s\",\"received\":%zu", esc, r->len);
        return MHD_NO; /* a client this slow is cut off (slow-loris) */
    }
    if (r->body_too_large)
        return MHD_YES;
    if (r->len + n > r->srv->cfg->max_body_bytes) {
        r->body_too_large = true; /* chunked upload: answer 413 once it ends */
        return MHD_YES;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 65536;
        while (cap < r->len + n)
            cap *= 2;
        if (cap > r->srv->cfg->max_body_bytes)
            cap = r->srv->cfg->max_body_bytes;
        if (!request_reserve(r, cap - r->cap, "the request body", &r->upload_err)) {
            r->body_too_large = true; /* answered (503 or 413) once the upload ends */
            return MHD_YES;
        }
        uint8_t *b = realloc(r->body, cap);
        if (!b) {
            r->body_too_large = true;
            return MHD_YES;
        }
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    return MHD_YES;
}

/* Query parameters: only known keys, each validated. */
typedef struct {
    request *r;
    const char *profile, *format, *dtype, *exif, *mode, *reference;
    char bad_key[64];
} query_args;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    query_args *q = cls;
    if (!strcmp(key, "profile"))
        q->profile = value ? value : "";
    else if (!strcmp(key, "format"))
        q->format = value ? value : "";
    else if (!strcmp(key, "dtype"))
        q->dtype = value ? value : "";
    else if (!strcmp(key, "exif"))
        q->exif = value ? value : "";
    else if (!strcmp(key, "mode"))
        q->mode = value ? value : "";
    else if (!strcmp(key, "reference"))
        q->reference = value ? value : "";
    else if (!q->bad_key[0])
        snprintf(q->bad_key, sizeof q->bad_key, "%s", key);
    return MHD_YES;
}

static enum MHD_Result parse_params(request *r, bool *exif)
{
    query_args q = {.r = r};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &q);
    if (q.bad_key[0])
        return answer_error(r, CP_ERR_INVALID_PARAMETER,
                            "unknown query parameter '%s' (known: profile, format, dtype, exif, mode, "
                            "reference)",
                            q.bad_key);
    const char *pname = q.profile ? q.profile : r->srv->cfg->default_profile;
    r->prof = profiles_find(&r->srv->profiles, pname);
    if (!r->prof)
        return answer_error(r, CP_ERR_UNKNOWN_PROFILE,
                            "unknown profile '%s' (GET /v1/profiles lists them)", pname);
    r->ref = r->prof->default_ref;
    if (q.reference) {
        if (!reference_parse(q.reference, &r->ref))
            return answer_error(r, CP_ERR_INVALID_PARAMETER, "reference must be one of %s, not '%.40s'",
                                reference_names_list(), q.reference);
        if (!(r->prof->references & (1u << r->ref)))
            return answer_error(r, CP_ERR_INVALID_PARAMETER,
                                "profile '%s' does not support reference '%s' (GET /v1/profiles)",
                                r->prof->name, q.reference);
    }
    bool vlm = r->prof->vlm.kind != VLM_NONE;
    r->fmt = vlm ? OUT_NPZ : OUT_NPY; /* a VLM answer has several arrays: all of them */
    if (q.format && !output_format_parse(q.format, &r->fmt))
        return answer_error(r, CP_ERR_INVALID_PARAMETER,
                            "format must be npy, npz, raw, json, shm or cuda_ipc, not '%s'",
                            q.format);
    if (vlm && r->fmt == OUT_CUDA_IPC)
        return answer_error(r, CP_ERR_INVALID_PARAMETER,
                            "format=cuda_ipc is not available for vision-language profiles "
                            "(profile '%s'): use npz, json or shm", r->prof->name);
    r->dtype = DTYPE_FLOAT32;
    if (q.dtype) {
        if (!strcmp(q.dtype, "float16"))
            r->dtype = DTYPE_FLOAT16;
        else if (strcmp(q.dtype, "float32"))
            return answer_error(r, CP_ERR_INVALID_PARAMETER,
                                "dtype must be float32 or float16, not '%s'", q.dtype);
    }
    r->fast = r->prof->fast;
    if (q.mode) {
        if (!strcmp(q.mode, "fast"))
            r->fast = true;
        else if (!strcmp(q.mode, "exact"))
            r->fast = false;
        else
            return answer_error(r, CP_ERR_INVALID_PARAMETER,
                                "mode must be exact or fast, not '%s'", q.mode);
    }
    if (vlm && r->fast)
        return answer_error(r, CP_ERR_INVALID_PARAMETER,
                            "mode=fast is not available for vision-language profiles");
    *exif = r->prof->exif;
    if (q.exif) {
        if (!strcmp(q.exif, "1") || !strcmp(q.exif, "true"))
            *exif = true;
        else if (!strcmp(q.exif, "0") || !strcmp(q.exif, "false"))
            *exif = false;
        else
            return answer_error(r, CP_ERR_INVALID_PARAMETER,
                                "exif must be 0 or 1, not '%s'", q.exif);
    }
    return MHD_YES;
}

/* Splits the body into images: multipart parts, or the whole body as one image. */
static int split_images(request *r, multipart_part *parts, int max, cp_error *err)
{
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
    if (ct && multipart_is_form_data(ct)) {
        char boundary[128];
        if (!multipart_boundary(ct, boundary, sizeof boundary)) {
            cp_fail(err, CP_ERR_BAD_REQUEST, "multipart/form-data without a valid boundary");
            return -1;
        }
        int n = multipart_parse(r->body, r->len, boundary, parts, max, err);
        if (n == 0) {
            cp_fail(err, CP_ERR_BAD_REQUEST, "multipart body has no parts");
            return -1;
        }
        return n;
    }
    parts[0] = (multipart_part){.data = r->body, .len = r->len};
    return 1;
}

enum MHD_Result request_answer_error(request *r, const cp_error *err, int index)
{
    if (r->protocol == PROTO_V2) {
        char msg[400];
        if (index >= 0)
            snprintf(msg, sizeof msg, "image %d: %s", index, err->message);
        else
            snprintf(msg, sizeof msg, "%s", err->message);
        char *body = kserve_format_error(msg);
        r->status = cp_status_http(err->status) == 503 ? 503 : 400; /* as Triton answers */
        struct MHD_Response *resp = body ? json_response(body) : NULL;
        free(body);
        if (resp && r->status == 503)
            MHD_add_response_header(resp, "Retry-After", "1");
        atomic_store(&r->state, REQ_ANSWERED);
        return send_response(r->conn, r->status, resp, r->id);
    }
    return answer_cp_error(r, err, index);
}

enum MHD_Result preprocess_body_complete(request *r)
{
    const cp_config *cfg = r->srv->cfg;
    if (r->body_too_large && r->upload_err.status != CP_OK)
        return request_answer_error(r, &r->upload_err, -1);
    if (r->body_too_large)
        return answer_error(r, CP_ERR_BODY_TOO_LARGE,
                            "request body too large: limit %zu bytes (max_body_bytes)",
                            cfg->max_body_bytes);
    bool exif = false;
    if (parse_params(r, &exif) != MHD_YES || atomic_load(&r->state) == REQ_ANSWERED)
        return MHD_YES;
    if (preprocess_input_is_json(r)) /* also when back from its URL fetches */
        return preprocess_input_json(r, exif);
    if (r->len == 0)
        return answer_error(r, CP_ERR_BAD_REQUEST,
                            "empty request body: send an image, or multipart/form-data");
    multipart_part *parts = malloc(sizeof *parts * (size_t)cfg->max_images_per_request);
    image_ref *images = malloc(sizeof *images * (size_t)cfg->max_images_per_request);
    if (!parts || !images) {
        free(parts);
        free(images);
        return answer_error(r, CP_ERR_OVERLOADED, "out of memory");
    }
    cp_error err = {0};
    int n = split_images(r, parts, cfg->max_images_per_request, &err);
    for (int i = 0; i < n; i++)
        images[i] = (image_ref){parts[i].data, parts[i].len};
    free(parts);
    enum MHD_Result ret =
        n < 0 ? answer_cp_error(r, &err, -1) : preprocess_input_start(r, images, n, exif);
    free(images);
    return ret;
}

/* Accepted: suspended until the last image is done, counted in flight until answered. */
static void accept_and_suspend(request *r)
{
    atomic_store(&r->state, REQ_PROCESSING);
    atomic_fetch_add(&r->refs, 1);
    if (!r->accepted) { /* (already counted while its URLs were fetched) */
        r->accepted = true;
        atomic_fetch_add(&r->srv->inflight, 1); /* until the answer is sent (http.c on_completed) */
    }
    MHD_suspend_connection(r->conn);
}

/* Builds the response, resumes the connection, drops the in-flight reference. Any thread. */
static void finish_request(request *r);

static void place_output(request *r, uint8_t *base)
{
    const profile *p = r->prof;
    size_t slot = (size_t)3 * p->out_height * p->out_width * tensor_dtype_size(r->dtype);
    r->out_ptr = base;
    uint8_t *pixels = base + r->layout.a[0].offset;
    if (r->vplans) { /* padding (rows, tiles, patches) is zero; the small arrays are known now */
        memset(base, 0, r->layout.total);
        vlm_write_meta(p, r->vplans, r->n_images, &r->layout, base);
    }
    for (int i = 0; i < r->n_jobs; i++) {
        int k = r->jobs[i].index;
        r->jobs[i].out = pixels + (r->vplans ? r->part_off[k] : slot * (size_t)k);
        r->jobs[i].out_direct =
            r->protocol == PROTO_V1
                ? r->fmt == OUT_CUDA_IPC || (r->fmt == OUT_SHM && r->srv->shm_pinned)
                : r->region_on_device;
        r->jobs[i].out_device =
            r->protocol == PROTO_V1 ? r->fmt == OUT_CUDA_IPC : r->region_on_device;
    }
    for (int i = 0; i < r->n_images; i++) { /* the content cache's hits (never device memory) */
        const uint8_t *hit = preprocess_input_cached(r, i);
        if (hit)
            memcpy(pixels + slot * (size_t)i, hit, slot);
    }
}

/* Queues the jobs of an accepted (suspended) request; on a full queue it fails the request. */
static void queue_jobs(request *r)
{
    server_ctx *srv = r->srv;
    if (r->n_jobs == 0) { /* every image came from the content cache */
        finish_request(r);
        return;
    }
    if (!queue_reserve(&srv->queue, r->n_jobs)) {
        cp_fail(&r->err, CP_ERR_OVERLOADED, "queue full (queue_capacity reached); retry later");
        finish_request(r);
        return;
    }
    queue_push_reserved(&srv->queue, r->jobs, r->n_jobs);
}

static void shm_granted(void *ctx, const shm_lease *lease)
{
    request *r = ctx;
    snprintf(r->lease_id, sizeof r->lease_id, "%s", lease->id); /* r->lease_pool set before */
    r->lease_offset = lease->offset;
    place_output(r, lease->ptr);
    queue_jobs(r);
}

static void shm_timed_out(void *ctx)
{
    request *r = ctx;
    cp_fail(&r->err, CP_ERR_OVERLOADED,
            "no free shm slot within request_timeout_s (leases are held; release them with "
            "DELETE /v1/leases/{id}); retry later");
    finish_request(r);
}

/* Admission checks of one image from its header (issue #13): a resize target that fits the
 * planner, and the request's running pixel sum (max_request_pixels). */
static bool admit_image(request *r, job *j, long long *request_pixels, cp_error *err)
{
    int w, h;
    decode_output_size(&j->hdr, &j->dopt, &w, &h);
    if (r->vplans) { /* the processor's plan: its sizes, tiles and refusals */
        if (!vlm_plan_image(r->prof, r->ref, w, h, &r->vplans[j->index], err))
            return false;
        j->vplan = &r->vplans[j->index];
        /* a pre-pad canvas (LLaVA's square) is decoded-size scratch: the same pixel limit */
        long long canvas = (long long)j->vplan->pad_w * j->vplan->pad_h;
        if (canvas > r->srv->cfg->max_pixels)
            return cp_fail(err, CP_ERR_IMAGE_TOO_LARGE,
                           "the image padded to a %dx%d square is %lld pixels, limit %lld "
                           "(max_pixels)", j->vplan->pad_w, j->vplan->pad_h, canvas,
                           r->srv->cfg->max_pixels);
    } else if (!geometry_check(r->prof, w, h, err)) {
        return false;
    }
    *request_pixels += (long long)j->hdr.width * j->hdr.height;
    if (*request_pixels > r->srv->cfg->max_request_pixels)
        return cp_fail(err, CP_ERR_IMAGE_TOO_LARGE,
                       "the request's images hold more than %lld pixels in all "
                       "(max_request_pixels)", r->srv->cfg->max_request_pixels);
    return true;
}

/* Reserves the output buffer and, for a JSON answer, its text, before any is allocated; a
 * JSON answer over max_json_output_bytes is refused outright. */
static bool reserve_output(request *r, size_t tensor, cp_error *err)
{
    bool json = r->protocol == PROTO_V1 ? r->fmt == OUT_JSON
                                        : !r->region && r->kreq && !r->kreq->binary_output;
    size_t text = 0;
    if (json) {
        text = r->vplans ? arrays_json_bytes(&r->layout)
                         : json_tensor_bytes(tensor / tensor_dtype_size(r->dtype));
        if (text > r->srv->cfg->max_json_output_bytes)
            return cp_fail(err, CP_ERR_TOO_MANY_IMAGES,
                           "the JSON answer would take about %zu bytes, more than "
                           "max_json_output_bytes (%zu): ask for fewer images or a binary "
                           "format", text, r->srv->cfg->max_json_output_bytes);
    }
    return request_reserve(r, r->out_size + text, "the output", err);
}

enum MHD_Result request_start(request *r, const image_ref *images, int n, bool exif)
{
    server_ctx *srv = r->srv;
    const cp_config *cfg = srv->cfg;
    cp_error err = {0};
    r->jobs = calloc((size_t)n, sizeof *r->jobs);
    bool vlm = r->prof->vlm.kind != VLM_NONE;
    if (vlm) {
        r->vplans = calloc((size_t)n, sizeof *r->vplans);
        r->part_off = calloc((size_t)n, sizeof *r->part_off);
    }
    if (!r->jobs || (vlm && (!r->vplans || !r->part_off))) {
        cp_fail(&err, CP_ERR_OVERLOADED, "out of memory");
        return request_answer_error(r, &err, -1);
    }
    const profile *p = r->prof;
    decode_options dopt = {.apply_orientation = exif, .max_scans = cfg->max_scans};
    int m = 0; /* jobs to queue: the images the content cache does not answer */
    long long request_pixels = 0;
    for (int i = 0; i < n; i++) {
        if (preprocess_input_cached(r, i))
            continue;
        job *j = &r->jobs[m++];
        if (!decode_read_header(images[i].data, images[i].len, &j->hdr, &err))
            return request_answer_error(r, &err, i);
        long long pixels = (long long)j->hdr.width * j->hdr.height;
        if (pixels > cfg->max_pixels) {
            cp_fail(&err, CP_ERR_IMAGE_TOO_LARGE, "image is %dx%d = %lld pixels, limit %lld",
                    j->hdr.width, j->hdr.height, pixels, cfg->max_pixels);
            return request_answer_error(r, &err, i);
        }
        *j = (job){.req = r, .index = i, .data = images[i].data, .len = images[i].len,
                   .hdr = j->hdr, .dopt = dopt, .prof = p, .ref = r->ref,
                   .table = server_table_for(srv, p, r->ref),
                   .dtype = r->dtype};
        if (r->fast)
            j->dopt.scale_denom =
                fast_scale_denom(p, j->hdr.width, j->hdr.height, cfg->fast_min_factor);
        job_apply_reference(j);
        if (!admit_image(r, j, &request_pixels, &err))
            return request_answer_error(r, &err, i);
    }
    r->n_images = n;
    r->n_jobs = m;
    r->remaining = m;
    if (vlm)
        vlm_batch_layout(p, r->vplans, n, r->dtype, &r->layout, r->part_off);
    else
        out_layout_classic(&r->layout, n, p->out_height, p->out_width, r->dtype);
    if (r->route == ROUTE_PLAN)
        return plan_answer(r);
    bool v1 = r->protocol == PROTO_V1;
    if (v1 && (r->fmt == OUT_NPY || r->fmt == OUT_RAW) && r->layout.n > 1) {
        cp_fail(&err, CP_ERR_INVALID_PARAMETER, "profile '%s' answers %d arrays; format=%s "
                "carries one: use npz, json or shm", p->name, r->layout.n,
                r->fmt == OUT_NPY ? "npy" : "raw");
        return request_answer_error(r, &err, -1);
    }
    if (v1 && r->fmt == OUT_NPZ)
        npz_layout(&r->layout, r->dtype); /* the arrays sit inside the zip file */
    if (!v1 && vlm && !triton_vlm_layout(r, &err))
        return request_answer_error(r, &err, -1);
    size_t tensor = r->layout.total;
    if (atomic_load(&srv->draining)) {
        cp_fail(&err, CP_ERR_UNAVAILABLE, "shutting down");
        return request_answer_error(r, &err, -1);
    }

    if (r->protocol == PROTO_V2 && r->region && r->region_on_device) { /* a client GPU buffer */
        place_output(r, r->out_ptr);
    } else if (r->fmt == OUT_SHM || r->fmt == OUT_CUDA_IPC) {
        bool ipc = r->fmt == OUT_CUDA_IPC;
        shm_pool *pool = ipc ? srv->ipc_pool : srv->shm;
        if (!pool) {
            if (ipc)
                cp_fail(&err, CP_ERR_INVALID_PARAMETER, "format=cuda_ipc is unavailable: %s",
                        srv->ipc_error);
            else /* (why is in the start-up log and GET /v1/shm; not every client's business) */
                cp_fail(&err, CP_ERR_UNAVAILABLE, "format=shm is unavailable on this server");
            return request_answer_error(r, &err, -1);
        }
        r->lease_pool = pool;
        shm_lease lease;
        bool never;
        if (shm_pool_acquire(pool, tensor, &lease, &never)) {
            snprintf(r->lease_id, sizeof r->lease_id, "%s", lease.id);
            r->lease_offset = lease.offset;
            place_output(r, lease.ptr);
        } else if (never) {
            cp_fail(&err, CP_ERR_TOO_MANY_IMAGES, "the tensor (%zu bytes) is larger than the %s",
                    tensor, ipc ? "CUDA IPC pool (cuda_ipc_bytes)" : "shm pool (shm_bytes)");
            return request_answer_error(r, &err, -1);
        } else { /* wait for room, suspended, up to the request deadline */
            accept_and_suspend(r);
            shm_pool_wait(pool, tensor,
                          r->start_ns + (uint64_t)cfg->request_timeout_s * 1000000000u,
                          shm_granted, shm_timed_out, r);
            return MHD_YES;
        }
    } else {
        /* npy reserves its header in front so the response body is one buffer */
        if (r->protocol == PROTO_V1) /* (v2 binary answers set their header size already) */
            r->out_prefix = r->fmt == OUT_NPY
                                ? npy_array_header_size(&r->layout.a[0], r->dtype) : 0;
        /* (a /v2 output into a client system region is computed here too, then written into
         * the region with pwrite: a region truncated meanwhile can never SIGBUS the daemon) */
        r->out_size = r->out_prefix + tensor;
        if (!reserve_output(r, tensor, &err))
            return request_answer_error(r, &err, -1);
        r->out_buf = malloc(r->out_size);
        if (!r->out_buf) {
            cp_fail(&err, CP_ERR_OVERLOADED, "out of memory for the output tensor");
            return request_answer_error(r, &err, -1);
        }
        place_output(r, r->out_buf + r->out_prefix);
    }

    if (!queue_reserve(&srv->queue, m)) {
        if (r->lease_id[0])
            shm_pool_release(r->lease_pool, r->lease_id);
        r->lease_id[0] = '\0';
        cp_fail(&err, CP_ERR_OVERLOADED, "queue full (queue_capacity reached); retry later");
        return request_answer_error(r, &err, -1);
    }
    /* Suspend before the jobs can complete, so the resume always finds us suspended. */
    accept_and_suspend(r);
    if (m == 0) /* every image came from the content cache */
        finish_request(r);
    else
        queue_push_reserved(&srv->queue, r->jobs, m);
    return MHD_YES;
}

bool job_request_failed(const job *j)
{
    /* Only images after the failing one may be skipped: an earlier one could still fail and
     * must then be the one reported (lowest index wins). */
    request *r = j->req;
    if (!atomic_load(&r->failed))
        return false;
    pthread_mutex_lock(&r->mu);
    bool later = j->index > r->err_index;
    pthread_mutex_unlock(&r->mu);
    return later;
}

static void add_tensor_headers(request *r, struct MHD_Response *resp, const char *content_type)
{
    const profile *p = r->prof;
    char shape[128] = "";
    const out_array *px = &r->layout.a[0]; /* pixel_values */
    for (int d = 0; d < px->ndim; d++)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? "," : "",
                 px->shape[d]);
    if (content_type) /* (json_response already set it) */
        MHD_add_response_header(resp, "Content-Type", content_type);
    MHD_add_response_header(resp, "X-Profile", p->name);
    MHD_add_response_header(resp, "X-Tensor-Shape", shape);
    MHD_add_response_header(resp, "X-Tensor-Dtype", tensor_dtype_name(r->dtype));
    MHD_add_response_header(resp, "X-Preprocess-Mode", r->fast ? "fast" : "exact");
    preprocess_input_headers(r, resp);
}

static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = i + 1 < n ? abc[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? abc[v & 63] : '=';
    }
    out[o] = '\0';
}

/* format=shm / cuda_ipc: where the tensor is, and the lease that keeps it there. */
static struct MHD_Response *shm_answer(request *r)
{
    const profile *p = r->prof;
    uint64_t ttl_ms = 0;
    shm_pool_renew(r->lease_pool, r->lease_id, &ttl_ms); /* the ttl runs from the answer */
    char where[400], body[2400];
    size_t bytes = r->layout.total;
    if (r->fmt == OUT_CUDA_IPC) {
        char handle[96];
        base64(r->srv->ipc_handle, 64, handle);
        snprintf(where, sizeof where,
                 "\"cuda\":{\"raw_handle\":\"%s\",\"device_id\":%d,\"offset\":%llu,\"byte_size\":%zu,"
                 "\"pool_id\":\"%s\"}",
                 handle, r->srv->ipc_device, (unsigned long long)r->lease_offset, bytes,
                 shm_pool_id(r->lease_pool));
    } else {
        char key[300];
        json_escape(shm_pool_key(r->lease_pool), key, sizeof key);
        snprintf(where, sizeof where,
                 "\"shm\":{\"key\":\"%s\",\"offset\":%llu,\"byte_size\":%zu,\"pool_id\":\"%s\"}",
                 key, (unsigned long long)r->lease_offset, bytes, shm_pool_id(r->lease_pool));
    }
    if (r->vplans) { /* every array's place in the slot */
        char arrays[1200];
        size_t o = 0;
        for (int i = 0; i < r->layout.n; i++) {
            const out_array *a = &r->layout.a[i];
            o += (size_t)snprintf(arrays + o, sizeof arrays - o, "%s{\"name\":\"%s\",\"shape\":[",
                                  i ? "," : "", a->name);
            for (int d = 0; d < a->ndim; d++)
                o += (size_t)snprintf(arrays + o, sizeof arrays - o, d ? ",%lld" : "%lld",
                                      a->shape[d]);
            o += (size_t)snprintf(arrays + o, sizeof arrays - o,
                                  "],\"dtype\":\"%s\",\"offset\":%zu,\"byte_size\":%zu}",
                                  array_type_name(a->type, r->dtype), a->offset, a->bytes);
        }
        snprintf(body, sizeof body,
                 "{\"profile\":\"%s\",\"arrays\":[%s],%s,\"lease\":{\"id\":\"%s\","
                 "\"expires_in_ms\":%llu}}",
                 p->name, arrays, where, r->lease_id, (unsigned long long)ttl_ms);
        return json_response(body);
    }
    snprintf(body, sizeof body,
             "{\"profile\":\"%s\",\"shape\":[%d,3,%d,%d],\"dtype\":\"%s\",\"layout\":\"NCHW\","
             "%s,\"lease\":{\"id\":\"%s\",\"expires_in_ms\":%llu}}",
             p->name, r->n_images, p->out_height, p->out_width, tensor_dtype_name(r->dtype), where,
             r->lease_id, (unsigned long long)ttl_ms);
    return json_response(body);
}

/* Builds the response on the finishing worker's thread (JSON formatting can take a while). */
static void build_response(request *r)
{
    const profile *p = r->prof;
    if (r->err.status != CP_OK && r->lease_id[0]) { /* a failed request holds no lease */
        shm_pool_release(r->lease_pool, r->lease_id);
        r->lease_id[0] = '\0';
    }
    if (r->protocol == PROTO_V2) {
        triton_build_response(r);
        if (r->response_status == 200)
            metrics_add_images((uint64_t)r->n_images);
        return;
    }
    if (r->err.status != CP_OK) {
        r->response = error_response(&r->err, r->err_index, &r->response_status);
        return;
    }
    struct MHD_Response *resp = NULL;
    if (r->fmt == OUT_SHM || r->fmt == OUT_CUDA_IPC) {
        resp = shm_answer(r);
    } else if (r->fmt == OUT_JSON) {
        size_t len;
        char *text = r->vplans ? arrays_to_json(p->name, &r->layout, r->dtype, r->out_ptr, &len)
                               : tensor_to_json(p->name, r->n_images, p->out_height,
                                                p->out_width, r->dtype, r->out_ptr, &len);
        if (text)
            resp = MHD_create_response_from_buffer_with_free_callback(len, text, free);
        if (!resp)
            free(text);
    } else {
        if (r->fmt == OUT_NPY)
            npy_array_header_write((char *)r->out_buf, &r->layout.a[0], r->dtype);
        else if (r->fmt == OUT_NPZ)
            npz_finish(r->out_buf, &r->layout, r->dtype);
        resp = MHD_create_response_from_buffer_with_free_callback(r->out_size, r->out_buf, free);
        if (resp)
            r->out_buf = NULL; /* now owned by the response */
    }
    if (!resp) {
        cp_error err;
        cp_fail(&err, CP_ERR_INTERNAL, "could not build the response");
        r->response = error_response(&err, -1, &r->response_status);
        return;
    }
    add_tensor_headers(r, resp, r->fmt == OUT_SHM || r->fmt == OUT_CUDA_IPC
                                    ? NULL : output_format_content_type(r->fmt));
    r->response = resp;
    r->response_status = 200;
    metrics_add_images((uint64_t)r->n_images);
}

static void finish_request(request *r)
{
    uint64_t t0 = monotonic_ns();
    build_response(r);
    if (r->protocol == PROTO_V1)
        metrics_observe_ns(HIST_ANSWER_SECONDS, monotonic_ns() - t0);
    atomic_store(&r->state, REQ_READY);
    MHD_resume_connection(r->conn);
    request_unref(r);
}

void job_complete(job *j, const cp_error *err)
{
    request *r = j->req;
    /* (a job skipped because a sibling failed also completes without error: not stored) */
    if (!err && r->input && !atomic_load(&r->failed))
        preprocess_input_job_done(r, j->index, j->out, (size_t)3 * r->prof->out_height *
                                  r->prof->out_width * tensor_dtype_size(r->dtype));
    pthread_mutex_lock(&r->mu);
    if (err && (r->err_index < 0 || j->index < r->err_index)) {
        r->err = *err;
        r->err_index = j->index;
        atomic_store(&r->failed, true);
    }
    bool last = --r->remaining == 0;
    pthread_mutex_unlock(&r->mu);
    if (last)
        finish_request(r);
}

enum MHD_Result preprocess_send_ready(request *r)
{
    struct MHD_Response *resp = r->response;
    r->response = NULL;
    r->status = r->response_status;
    atomic_store(&r->state, REQ_ANSWERED);
    return send_response(r->conn, r->status, resp, r->id);
}
