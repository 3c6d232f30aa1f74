/* preprocess_route.c — POST /v1/preprocess: receive the body, validate everything that can be
 * validated without decoding (parameters, multipart, headers, pixel limits), then hand the
 * images to the batch queue with the connection suspended; answer when the last one is done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geometry.h"
#include "http_util.h"
#include "log.h"
#include "metrics.h"
#include "multipart.h"
#include "request.h"

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
    pthread_mutex_destroy(&r->mu);
    free(r->body);
    free(r->jobs);
    free(r->out_buf);
    free(r);
}

static enum MHD_Result answer_error(request *r, cp_status status, int index, const char *fmt,
                                    const char *detail)
{
    cp_error err;
    cp_fail(&err, status, fmt, detail ? detail : "");
    struct MHD_Response *resp = error_response(&err, index, &r->status);
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
        if (n > r->srv->cfg->max_body_bytes) {
            char detail[96];
            snprintf(detail, sizeof detail, "%llu bytes, limit %zu", n, r->srv->cfg->max_body_bytes);
            return answer_error(r, CP_ERR_BODY_TOO_LARGE, -1, "request body too large: %s", detail);
        }
        if (*end == '\0' && n > 0) {
            r->body = malloc((size_t)n);
            if (!r->body)
                return answer_error(r, CP_ERR_OVERLOADED, -1, "out of memory%s", NULL);
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
    const char *profile, *format, *dtype, *exif;
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
    else if (!q->bad_key[0])
        snprintf(q->bad_key, sizeof q->bad_key, "%s", key);
    return MHD_YES;
}

static enum MHD_Result parse_params(request *r, bool *exif)
{
    query_args q = {.r = r};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &q);
    if (q.bad_key[0])
        return answer_error(r, CP_ERR_INVALID_PARAMETER, -1,
                            "unknown query parameter '%s' (known: profile, format, dtype, exif)",
                            q.bad_key);
    const char *pname = q.profile ? q.profile : r->srv->cfg->default_profile;
    r->prof = profiles_find(&r->srv->profiles, pname);
    if (!r->prof)
        return answer_error(r, CP_ERR_UNKNOWN_PROFILE, -1,
                            "unknown profile '%s' (GET /v1/profiles lists them)", pname);
    r->fmt = OUT_NPY;
    if (q.format && !output_format_parse(q.format, &r->fmt))
        return answer_error(r, CP_ERR_INVALID_PARAMETER, -1,
                            "format must be npy, raw or json, not '%s'", q.format);
    r->dtype = DTYPE_FLOAT32;
    if (q.dtype) {
        if (!strcmp(q.dtype, "float16"))
            r->dtype = DTYPE_FLOAT16;
        else if (strcmp(q.dtype, "float32"))
            return answer_error(r, CP_ERR_INVALID_PARAMETER, -1,
                                "dtype must be float32 or float16, not '%s'", q.dtype);
    }
    *exif = r->prof->exif;
    if (q.exif) {
        if (!strcmp(q.exif, "1") || !strcmp(q.exif, "true"))
            *exif = true;
        else if (!strcmp(q.exif, "0") || !strcmp(q.exif, "false"))
            *exif = false;
        else
            return answer_error(r, CP_ERR_INVALID_PARAMETER, -1,
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

enum MHD_Result preprocess_body_complete(request *r)
{
    server_ctx *srv = r->srv;
    const cp_config *cfg = srv->cfg;
    if (r->body_too_large) {
        char detail[64];
        snprintf(detail, sizeof detail, "limit %zu bytes", cfg->max_body_bytes);
        return answer_error(r, CP_ERR_BODY_TOO_LARGE, -1, "request body too large: %s", detail);
    }
    bool exif = false;
    if (parse_params(r, &exif) != MHD_YES || atomic_load(&r->state) == REQ_ANSWERED)
        return MHD_YES;
    if (r->len == 0)
        return answer_error(r, CP_ERR_BAD_REQUEST, -1,
                            "empty request body: send an image, or multipart/form-data%s", NULL);

    multipart_part *parts = malloc(sizeof *parts * (size_t)cfg->max_images_per_request);
    if (!parts)
        return answer_error(r, CP_ERR_OVERLOADED, -1, "out of memory%s", NULL);
    cp_error err = {0};
    int n = split_images(r, parts, cfg->max_images_per_request, &err);
    if (n < 0) {
        free(parts);
        return answer_cp_error(r, &err, -1);
    }

    r->jobs = calloc((size_t)n, sizeof *r->jobs);
    if (!r->jobs) {
        free(parts);
        return answer_error(r, CP_ERR_OVERLOADED, -1, "out of memory%s", NULL);
    }
    const profile *p = r->prof;
    decode_options dopt = {.apply_orientation = exif, .max_scans = cfg->max_scans};
    for (int i = 0; i < n; i++) {
        job *j = &r->jobs[i];
        if (!decode_read_header(parts[i].data, parts[i].len, &j->hdr, &err)) {
            free(parts);
            return answer_cp_error(r, &err, i);
        }
        long long pixels = (long long)j->hdr.width * j->hdr.height;
        if (pixels > cfg->max_pixels) {
            free(parts);
            cp_fail(&err, CP_ERR_IMAGE_TOO_LARGE, "image is %dx%d = %lld pixels, limit %lld",
                    j->hdr.width, j->hdr.height, pixels, cfg->max_pixels);
            return answer_cp_error(r, &err, i);
        }
        j->req = r;
        j->index = i;
        j->data = parts[i].data;
        j->len = parts[i].len;
        j->dopt = dopt;
        j->prof = p;
        j->table = server_table_for(srv, p);
        j->dtype = r->dtype;
    }
    free(parts);

    /* The output tensor; npy reserves its header in front so the body is one buffer. */
    size_t slot = (size_t)3 * p->out_height * p->out_width * tensor_dtype_size(r->dtype);
    r->out_prefix = r->fmt == OUT_NPY ? npy_header_size(n, p->out_height, p->out_width, r->dtype) : 0;
    r->out_size = r->out_prefix + slot * (size_t)n;
    r->out_buf = malloc(r->out_size);
    if (!r->out_buf)
        return answer_error(r, CP_ERR_OVERLOADED, -1, "out of memory for the output tensor%s", NULL);
    for (int i = 0; i < n; i++)
        r->jobs[i].out = r->out_buf + r->out_prefix + slot * (size_t)i;
    r->n_images = n;
    r->remaining = n;

    if (atomic_load(&srv->draining))
        return answer_error(r, CP_ERR_UNAVAILABLE, -1, "shutting down%s", NULL);
    if (!queue_reserve(&srv->queue, n))
        return answer_error(r, CP_ERR_OVERLOADED, -1,
                            "queue full (%s); retry later", "queue_capacity reached");
    /* Suspend before the jobs can complete, so the resume always finds us suspended. */
    atomic_store(&r->state, REQ_PROCESSING);
    atomic_fetch_add(&r->refs, 1);
    r->accepted = true;
    atomic_fetch_add(&srv->inflight, 1); /* until the answer is sent (http.c on_completed) */
    MHD_suspend_connection(r->conn);
    queue_push_reserved(&srv->queue, r->jobs, n);
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

/* Builds the response on the finishing worker's thread (JSON formatting can take a while). */
static void build_response(request *r)
{
    const profile *p = r->prof;
    if (r->err.status != CP_OK) {
        r->response = error_response(&r->err, r->err_index, &r->response_status);
        return;
    }
    struct MHD_Response *resp = NULL;
    if (r->fmt == OUT_JSON) {
        size_t len;
        char *text = tensor_to_json(p->name, r->n_images, p->out_height, p->out_width, r->dtype,
                                    r->out_buf, &len);
        if (text)
            resp = MHD_create_response_from_buffer_with_free_callback(len, text, free);
        if (!resp)
            free(text);
    } else {
        if (r->fmt == OUT_NPY)
            npy_header_write((char *)r->out_buf, r->n_images, p->out_height, p->out_width, r->dtype);
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
    char shape[64];
    snprintf(shape, sizeof shape, "%d,3,%d,%d", r->n_images, p->out_height, p->out_width);
    MHD_add_response_header(resp, "Content-Type", output_format_content_type(r->fmt));
    MHD_add_response_header(resp, "X-Profile", p->name);
    MHD_add_response_header(resp, "X-Tensor-Shape", shape);
    MHD_add_response_header(resp, "X-Tensor-Dtype", tensor_dtype_name(r->dtype));
    r->response = resp;
    r->response_status = 200;
    metrics_add_images((uint64_t)r->n_images);
}

void job_complete(job *j, const cp_error *err)
{
    request *r = j->req;
    pthread_mutex_lock(&r->mu);
    if (err && (r->err_index < 0 || j->index < r->err_index)) {
        r->err = *err;
        r->err_index = j->index;
        atomic_store(&r->failed, true);
    }
    bool last = --r->remaining == 0;
    pthread_mutex_unlock(&r->mu);
    if (!last)
        return;
    build_response(r);
    atomic_store(&r->state, REQ_READY);
    MHD_resume_connection(r->conn);
    request_unref(r);
}

enum MHD_Result preprocess_send_ready(request *r)
{
    struct MHD_Response *resp = r->response;
    r->response = NULL;
    r->status = r->response_status;
    atomic_store(&r->state, REQ_ANSWERED);
    return send_response(r->conn, r->status, resp, r->id);
}
