/* triton_routes.c — Triton's HTTP protocol (KServe v2) on /v2, so Triton's own clients work
 * unchanged: server and model metadata, health, infer (JSON and the binary tensor data
 * extension; outputs into client-registered system shared memory), and the shared-memory
 * extensions. Every profile is a model named after it. Errors are Triton-shaped:
 * {"error":"…"} with 400 (503 when overloaded or not ready). */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_util.h"
#include "kserve.h"
#include "log.h"
#include "mem_budget.h"
#include "request.h"
#include "vlm/vlm.h"
#include "shm_regions.h"
#ifdef CLIPPREP_WITH_CUDA
#include "../kernels/cuda_engine.h"
#endif

static enum MHD_Result v2_answer(request *r, int status, const char *json)
{
    r->status = status;
    atomic_store(&r->state, REQ_ANSWERED);
    struct MHD_Response *resp = json_response(json ? json : "");
    if (resp && !json)
        MHD_del_response_header(resp, "Content-Type", "application/json");
    return send_response(r->conn, status, resp, r->id);
}

static enum MHD_Result v2_error(request *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result v2_error(request *r, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *body = kserve_format_error(msg);
    enum MHD_Result ret = v2_answer(r, status, body ? body : "{\"error\":\"internal\"}");
    free(body);
    return ret;
}

/* Splits "/v2/a/b/c" into at most 8 segments after "/v2", in buf (a copy of r->url). */
static int segments(const request *r, char *buf, char **seg)
{
    snprintf(buf, sizeof r->url, "%s", r->url);
    int n = 0;
    char *p = buf + 3;
    while (*p == '/' && n < 8) {
        *p++ = '\0';
        seg[n++] = p;
        while (*p && *p != '/')
            p++;
    }
    if (*p) /* a trailing slash, or too deep */
        return -1;
    return n;
}

static bool is_get(const request *r) { return !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD"); }
static bool is_post(const request *r) { return !strcmp(r->method, "POST"); }

static enum MHD_Result server_metadata(request *r)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"name\":\"clipprep\",\"version\":\"%s\",\"extensions\":[\"binary_tensor_data\","
             "\"system_shared_memory\",\"cuda_shared_memory\",\"model_configuration\"]}",
             CLIPPREP_VERSION);
    return v2_answer(r, 200, body);
}

static bool ready(const request *r)
{
    return atomic_load(&r->srv->ready) && !atomic_load(&r->srv->draining);
}

/* /v2/models/{m}[/versions/{v}][/ready|/infer|/config]: the profile and the rest. */
static const profile *model_of(request *r, char **seg, int n, const char **tail)
{
    const profile *p = profiles_find(&r->srv->profiles, seg[1]);
    int at = 2;
    if (n >= 4 && !strcmp(seg[2], "versions"))
        at = 4; /* any version name maps to the one version, "1" */
    *tail = at < n ? seg[at] : "";
    if (at + 1 < n)
        *tail = "?"; /* deeper than any route */
    return p;
}

/* A vision-language model's arrays with the per-request dims 0 (-1 in metadata). */
static void vlm_model_arrays(const profile *p, out_layout *lay)
{
    vlm_batch_layout(p, NULL, 0, DTYPE_FLOAT32, lay, NULL);
}

static enum MHD_Result model_config(request *r, const profile *p)
{
    char body[768];
    if (p->vlm.kind != VLM_NONE) {
        out_layout lay;
        vlm_model_arrays(p, &lay);
        size_t o = (size_t)snprintf(body, sizeof body,
                                    "{\"name\":\"%s\",\"platform\":\"clipprep\",\"max_batch_size\":0,"
                                    "\"input\":[{\"name\":\"images\",\"data_type\":\"TYPE_STRING\","
                                    "\"dims\":[-1]}],\"output\":[", p->name);
        for (int i = 0; i < lay.n && o < sizeof body; i++) {
            const out_array *a = &lay.a[i];
            o += (size_t)snprintf(body + o, sizeof body - o,
                                  "%s{\"name\":\"%s\",\"data_type\":\"%s\",\"dims\":[", i ? "," : "",
                                  a->name, a->type == ARR_INT64 ? "TYPE_INT64"
                                           : a->type == ARR_INT32 ? "TYPE_INT32" : "TYPE_FP32");
            for (int d = 0; d < a->ndim && o < sizeof body; d++)
                o += (size_t)snprintf(body + o, sizeof body - o, "%s%lld", d ? "," : "",
                                      a->shape[d] ? a->shape[d] : -1LL);
            if (o < sizeof body)
                o += (size_t)snprintf(body + o, sizeof body - o, "]}");
        }
        if (o < sizeof body)
            snprintf(body + o, sizeof body - o, "]}");
        return v2_answer(r, 200, body);
    }
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"platform\":\"clipprep\",\"max_batch_size\":0,"
             "\"input\":[{\"name\":\"images\",\"data_type\":\"TYPE_STRING\",\"dims\":[-1]}],"
             "\"output\":[{\"name\":\"pixel_values\",\"data_type\":\"TYPE_FP32\","
             "\"dims\":[-1,3,%d,%d]}]}",
             p->name, p->out_height, p->out_width);
    return v2_answer(r, 200, body);
}

enum MHD_Result triton_first_call(request *r)
{
    r->protocol = PROTO_V2;
    char *seg[8], buf[sizeof r->url];
    int n = segments(r, buf, seg);
    if (n < 0)
        return v2_error(r, 400, "unknown endpoint");
    if (n == 0 || (n == 1 && !seg[0][0]))
        return is_get(r) ? server_metadata(r) : v2_error(r, 400, "use GET");
    if (!strcmp(seg[0], "health") && n == 2 && is_get(r)) {
        if (!strcmp(seg[1], "live"))
            return v2_answer(r, 200, NULL);
        if (!strcmp(seg[1], "ready"))
            return v2_answer(r, ready(r) ? 200 : 503, NULL);
    }
    if (!strcmp(seg[0], "models") && n >= 2) {
        const char *tail;
        const profile *p = model_of(r, seg, n, &tail);
        if (!p)
            return v2_error(r, 400, "Request for unknown model: '%s' is not found", seg[1]);
        if (!tail[0] && is_get(r)) {
            out_layout lay;
            if (p->vlm.kind != VLM_NONE)
                vlm_model_arrays(p, &lay);
            char *body = p->vlm.kind != VLM_NONE
                             ? kserve_format_arrays_metadata(p->name, &lay)
                             : kserve_format_model_metadata(p->name, p->out_height, p->out_width);
            enum MHD_Result ret = v2_answer(r, 200, body);
            free(body);
            return ret;
        }
        if (!strcmp(tail, "ready") && is_get(r))
            return v2_answer(r, ready(r) ? 200 : 503, NULL);
        if (!strcmp(tail, "config") && is_get(r))
            return model_config(r, p);
        if (!strcmp(tail, "infer") && is_post(r)) {
            r->prof = p;
            return preprocess_first_call(r); /* Content-Length limit, then the body */
        }
    }
    if ((!strcmp(seg[0], "systemsharedmemory") || !strcmp(seg[0], "cudasharedmemory"))) {
        if (is_post(r)) { /* register/unregister: a small JSON body follows */
            const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                         "Content-Length");
            if (cl && strtoull(cl, NULL, 10) > r->srv->cfg->max_json_body_bytes)
                return v2_error(r, 400, "request body too large (max_json_body_bytes)");
            return MHD_YES;
        }
        bool cuda = seg[0][0] == 'c';
        if (is_get(r) && ((n == 2 && !strcmp(seg[1], "status")) ||
                          (n == 4 && !strcmp(seg[1], "region") && !strcmp(seg[3], "status")))) {
            bool found;
            char *body = shm_regions_status(cuda ? r->srv->cuda_regions : r->srv->regions,
                                            n == 4 ? seg[2] : NULL, &found);
            enum MHD_Result ret = found ? v2_answer(r, 200, body)
                                        : v2_error(r, 400, "Unable to find %s shared memory region: '%s'",
                                                   cuda ? "cuda" : "system", seg[2]);
            free(body);
            return ret;
        }
    }
    return v2_error(r, 400, "unknown endpoint or method");
}

static int b64_value(char c)
{
    const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(abc, c) : NULL;
    return p ? (int)(p - abc) : -1;
}

/* Decodes base64 into out (at most cap bytes); returns the length, or -1. */
static int b64_decode(const char *s, unsigned char *out, int cap)
{
    int n = 0;
    size_t len = strlen(s);
    if (len % 4)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++)
            v[k] = s[i + k] == '=' && i + 4 == len && k >= 2 ? 0 : b64_value(s[i + k]);
        if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0)
            return -1;
        unsigned bits = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        int bytes = s[i + 2] == '=' ? 1 : s[i + 3] == '=' ? 2 : 3;
        for (int k = 0; k < bytes; k++) {
            if (n >= cap)
                return -1;
            out[n++] = (unsigned char)(bits >> (16 - 8 * k));
        }
    }
    return n;
}

/* Triton's v2/cudasharedmemory register: {"raw_handle":{"b64":…},"device_id":D,"byte_size":N}
 * — a client's GPU buffer, opened with cudaIpcOpenMemHandle; outputs are copied into it on the
 * GPU. CUDA backend only. */
static enum MHD_Result register_cuda_region(request *r, shm_regions *rs, const char *name)
{
    if (strcmp(r->srv->exec->backend, "cuda"))
        return v2_error(r, 400, "CUDA shared memory needs the CUDA backend (this daemon runs "
                                "on the CPU)");
    cJSON *j = cJSON_ParseWithLength((const char *)r->body, r->len);
    const cJSON *rh = cJSON_GetObjectItemCaseSensitive(j, "raw_handle");
    const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(rh, "b64");
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(j, "device_id");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(j, "byte_size");
    unsigned char handle[64];
    bool shaped = cJSON_IsString(b64) && cJSON_IsNumber(dev) && dev->valuedouble >= 0 &&
                  cJSON_IsNumber(size) && size->valuedouble >= 1 &&
                  b64_decode(b64->valuestring, handle, sizeof handle) == (int)sizeof handle;
    int device = shaped ? (int)dev->valuedouble : 0;
    uint64_t bytes = shaped ? (uint64_t)size->valuedouble : 0;
    cJSON_Delete(j);
    if (!shaped)
        return v2_error(r, 400, "register needs {\"raw_handle\": {\"b64\": base64 of the 64-byte "
                                "cudaIpcMemHandle_t}, \"device_id\": integer, \"byte_size\": integer}");
#ifdef CLIPPREP_WITH_CUDA
    char cerr[256] = "";
    void *ptr = cuda_ipc_open(device, handle, cerr, sizeof cerr);
    if (!ptr)
        return v2_error(r, 400, "Unable to open cuda shared memory region '%s': %s", name, cerr);
    if (!cuda_region_check(device, ptr, bytes, cerr, sizeof cerr)) { /* as Triton does */
        cuda_ipc_close(device, ptr);
        return v2_error(r, 400, "cuda shared memory region '%s': %s", name, cerr);
    }
    cp_error err = {0};
    if (!shm_regions_register_device(rs, name, ptr, bytes, device, cuda_ipc_close, &err))
        return v2_error(r, 400, "%s", err.message);
    return v2_answer(r, 200, NULL);
#else
    (void)rs, (void)name, (void)device, (void)bytes;
    return v2_error(r, 400, "built without CUDA");
#endif
}

/* POST /v2/systemsharedmemory/... and /v2/cudasharedmemory/... with their JSON bodies. */
static enum MHD_Result shared_memory_call(request *r, char **seg, int n)
{
    bool cuda = seg[0][0] == 'c';
    shm_regions *rs = cuda ? r->srv->cuda_regions : r->srv->regions;
    if (r->body_too_large || r->len > r->srv->cfg->max_json_body_bytes)
        return v2_error(r, 400, "request body too large (max_json_body_bytes)");
    if (n == 2 && !strcmp(seg[1], "unregister")) {
        shm_regions_unregister_all(rs);
        return v2_answer(r, 200, NULL);
    }
    if (n != 4 || strcmp(seg[1], "region"))
        return v2_error(r, 400, "unknown shared memory endpoint");
    const char *name = seg[2], *op = seg[3];
    if (!strcmp(op, "unregister")) {
        shm_regions_unregister(rs, name); /* Triton answers 200 for unknown names too */
        return v2_answer(r, 200, NULL);
    }
    if (strcmp(op, "register"))
        return v2_error(r, 400, "unknown shared memory endpoint");
    if (!r->srv->cfg->allow_client_shm) /* as Triton's --allow-client-shm, off by default */
        return v2_error(r, 400, "client shared memory is disabled on this server "
                                "(allow_client_shm)");
    if (shm_regions_has(r->srv->regions, name) || shm_regions_has(r->srv->cuda_regions, name))
        return v2_error(r, 400, "shared memory region '%s' is already registered", name);
    if (cuda)
        return register_cuda_region(r, rs, name);
    cJSON *j = cJSON_ParseWithLength((const char *)r->body, r->len);
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(j, "key");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(j, "offset");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(j, "byte_size");
    if (!cJSON_IsString(key) || !cJSON_IsNumber(size) || size->valuedouble < 1 ||
        (off && (!cJSON_IsNumber(off) || off->valuedouble < 0))) {
        cJSON_Delete(j);
        return v2_error(r, 400, "register needs {\"key\": string, \"offset\": integer, "
                                "\"byte_size\": integer}");
    }
    cp_error err = {0};
    bool ok = shm_regions_register(rs, name, key->valuestring,
                                   off ? (uint64_t)off->valuedouble : 0,
                                   (uint64_t)size->valuedouble, &err);
    cJSON_Delete(j);
    return ok ? v2_answer(r, 200, NULL) : v2_error(r, 400, "%s", err.message);
}

/* The binary response's JSON header is known before any pixel is computed: it goes in front
 * of the tensor in one buffer, like the npy header of /v1. */
static char *binary_header(request *r, int n, size_t *len)
{
    const profile *p = r->prof;
    kserve_response kr = {.model = p->name, .id = r->kreq->id, .n = n, .h = p->out_height,
                          .w = p->out_width, .fp16 = r->dtype == DTYPE_FLOAT16,
                          .kind = KSERVE_OUT_BINARY,
                          .byte_size = (uint64_t)n * 3 * p->out_height * p->out_width *
                                       tensor_dtype_size(r->dtype)};
    return kserve_format_response(&kr, len);
}

static enum MHD_Result infer(request *r)
{
    const cp_config *cfg = r->srv->cfg;
    if (r->body_too_large && r->upload_err.status != CP_OK)
        return request_answer_error(r, &r->upload_err, -1);
    if (r->body_too_large)
        return v2_error(r, 400, "request body larger than max_body_bytes");
    r->kreq = calloc(1, sizeof *r->kreq);
    if (!r->kreq)
        return v2_error(r, 503, "out of memory");
    const char *hl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 "Inference-Header-Content-Length");
    cp_error err = {0};
    /* The JSON part is parsed into a tree up to ~50x its size: it stays small (images go as
     * binary data after it), and that tree is reserved in the memory budget while it exists. */
    unsigned long long json_len = hl ? strtoull(hl, NULL, 10) : r->len;
    if (json_len > cfg->max_json_body_bytes)
        return v2_error(r, 400, "the JSON part of the request is larger than max_json_body_bytes "
                                "(%zu): send images as binary data", cfg->max_json_body_bytes);
    size_t parse_bytes = json_parse_cost(r->body, json_len < r->len ? (size_t)json_len : r->len);
    if (parse_bytes > r->srv->budget.limit)
        return v2_error(r, 400, "the JSON part of the request would take more than the whole "
                                "memory budget to parse (memory_budget_bytes)");
    if (!mem_budget_reserve(&r->srv->budget, parse_bytes)) {
        cp_fail(&err, CP_ERR_OVERLOADED, "memory budget in use by other requests; retry later");
        return request_answer_error(r, &err, -1);
    }
    bool parsed = kserve_parse_infer(r->body, r->len, hl, cfg->max_images_per_request, r->kreq,
                                     &err);
    mem_budget_release(&r->srv->budget, parse_bytes);
    if (!parsed)
        return v2_error(r, 400, "%s", err.message);
    kserve_request *k = r->kreq;
    if (k->n_images == 0)
        return v2_error(r, 400, "input 'images' holds no image");
    r->dtype = k->fp16 ? DTYPE_FLOAT16 : DTYPE_FLOAT32;
    bool exif = k->exif >= 0 ? k->exif == 1 : r->prof->exif;
    r->ref = r->prof->default_ref;
    if (k->reference[0] && !reference_parse(k->reference, &r->ref))
        return v2_error(r, 400, "parameters.reference must be one of %s", reference_names_list());
    if (!(r->prof->references & (1u << r->ref)))
        return v2_error(r, 400, "model '%s' does not support reference '%s'", r->prof->name,
                        reference_name(r->ref));
    const profile *p = r->prof;
    bool vlm = p->vlm.kind != VLM_NONE;
    if (!vlm && k->n_extra_outputs)
        return v2_error(r, 400, "unknown output \"%s\": the model's only output is \"pixel_values\"",
                        k->extra_outputs[0]);
    if (vlm && k->shm_region[0])
        return v2_error(r, 400, "model '%s' answers several arrays: shared-memory outputs are not "
                                "available for it; ask for binary or JSON outputs", p->name);
    uint64_t tensor = (uint64_t)k->n_images * 3 * p->out_height * p->out_width *
                      tensor_dtype_size(r->dtype);
    if (k->shm_region[0]) {
        uint8_t *base;
        uint64_t size;
        r->region = shm_regions_get(r->srv->regions, k->shm_region, &base, &size);
        if (!r->region) { /* a client GPU buffer: the CUDA executor copies into it on the GPU */
            r->region = shm_regions_get(r->srv->cuda_regions, k->shm_region, &base, &size);
            r->region_on_device = r->region != NULL;
        }
        if (!r->region)
            return v2_error(r, 400, "Unable to find system shared memory region: '%s'", k->shm_region);
        if (k->shm_byte_size < tensor || k->shm_offset + tensor > size ||
            k->shm_offset + k->shm_byte_size > size) {
            return v2_error(r, 400,
                            "output 'pixel_values' needs %llu bytes; shared_memory_byte_size %llu "
                            "at offset %llu does not fit or region holds %llu",
                            (unsigned long long)tensor, (unsigned long long)k->shm_byte_size,
                            (unsigned long long)k->shm_offset, (unsigned long long)size);
        }
        r->out_ptr = base ? base + k->shm_offset : NULL; /* system regions: written at the end */
        if (k->shm_offset % tensor_dtype_size(r->dtype) ||
            (!r->region_on_device && (uintptr_t)r->out_ptr % tensor_dtype_size(r->dtype)))
            return v2_error(r, 400, "output 'pixel_values' must start at a multiple of its element "
                                    "size in shared memory (region offset + shared_memory_offset)");
    } else if (k->binary_output && !vlm) { /* (a VLM's header follows its plans: request_start) */
        size_t len;
        char *hdr = binary_header(r, k->n_images, &len);
        if (!hdr)
            return v2_error(r, 503, "out of memory");
        /* padded with spaces (valid JSON) so the tensor after it is 16-byte aligned */
        r->out_prefix = (len + 15) & ~(size_t)15;
        free(hdr);
    }
    image_ref *images = malloc(sizeof *images * (size_t)k->n_images);
    if (!images)
        return v2_error(r, 503, "out of memory");
    for (int i = 0; i < k->n_images; i++)
        images[i] = (image_ref){k->images[i].data, k->images[i].len};
    enum MHD_Result ret = request_start(r, images, k->n_images, exif);
    free(images);
    return ret;
}

enum MHD_Result triton_body_complete(request *r)
{
    char *seg[8], buf[sizeof r->url];
    int n = segments(r, buf, seg);
    if (n >= 1 && (!strcmp(seg[0], "systemsharedmemory") || !strcmp(seg[0], "cudasharedmemory")))
        return shared_memory_call(r, seg, n);
    return infer(r);
}

bool triton_vlm_layout(request *r, cp_error *err)
{
    kserve_request *k = r->kreq;
    for (int i = 0; i < k->n_extra_outputs; i++)
        if (!out_layout_find(&r->layout, k->extra_outputs[i]))
            return cp_fail(err, CP_ERR_BAD_REQUEST, "unknown output \"%s\" of model '%s'",
                           k->extra_outputs[i], r->prof->name);
    if (!k->binary_output)
        return true;
    /* binary data: the outputs' bytes follow each other, no gaps */
    size_t at = 0;
    for (int i = 0; i < r->layout.n; i++) {
        r->layout.a[i].offset = at;
        at += r->layout.a[i].bytes;
    }
    r->layout.total = at;
    size_t len = 0;
    char *hdr = kserve_format_arrays_response(r->prof->name, k->id, &r->layout, r->dtype, true,
                                              NULL, &len);
    if (!hdr)
        return cp_fail(err, CP_ERR_OVERLOADED, "out of memory");
    free(hdr);
    r->out_prefix = (len + 15) & ~(size_t)15; /* padded with spaces, like the classic header */
    return true;
}

/* A binary answer: the JSON header, padded to the size reserved in front of the outputs when
 * the request started, then the outputs' bytes; the buffer passes to the response. NULL when
 * the header is not the size reserved or no response could be made. */
static struct MHD_Response *binary_answer(request *r, const char *hdr, size_t len)
{
    if (!hdr || ((len + 15) & ~(size_t)15) != r->out_prefix)
        return NULL;
    memcpy(r->out_buf, hdr, len);
    memset(r->out_buf + len, ' ', r->out_prefix - len);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(r->out_size, r->out_buf, free);
    if (!resp)
        return NULL;
    r->out_buf = NULL;
    char hl[32];
    snprintf(hl, sizeof hl, "%zu", r->out_prefix);
    MHD_add_response_header(resp, "Inference-Header-Content-Length", hl);
    MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
    return resp;
}

/* A JSON answer from a malloc'd text (freed here when no response could be made). */
static struct MHD_Response *json_text_answer(char *text, size_t len)
{
    struct MHD_Response *resp =
        text ? MHD_create_response_from_buffer_with_free_callback(len, text, free) : NULL;
    if (resp)
        MHD_add_response_header(resp, "Content-Type", "application/json");
    else
        free(text);
    return resp;
}

void triton_build_response(request *r)
{
    const profile *p = r->prof;
    struct MHD_Response *resp = NULL;
    if (r->err.status != CP_OK) {
        char msg[400];
        if (r->err_index >= 0)
            snprintf(msg, sizeof msg, "image %d: %s", r->err_index, r->err.message);
        else
            snprintf(msg, sizeof msg, "%s", r->err.message);
        char *body = kserve_format_error(msg);
        r->response_status = cp_status_http(r->err.status) == 503 ? 503 : 400;
        r->response = body ? json_response(body) : NULL;
        free(body);
        return;
    }
    kserve_request *k = r->kreq;
    size_t len = 0;
    if (r->vplans) { /* a vision-language model: one output per array */
        char *text = kserve_format_arrays_response(p->name, k->id, &r->layout, r->dtype,
                                                   k->binary_output, r->out_ptr, &len);
        if (k->binary_output) {
            resp = binary_answer(r, text, len);
            free(text);
        } else {
            resp = json_text_answer(text, len);
        }
    } else {
        uint64_t bytes = (uint64_t)r->n_images * 3 * p->out_height * p->out_width *
                         tensor_dtype_size(r->dtype);
        kserve_response kr = {.model = p->name, .id = k->id, .n = r->n_images,
                              .h = p->out_height, .w = p->out_width,
                              .fp16 = r->dtype == DTYPE_FLOAT16, .byte_size = bytes,
                              .values = r->out_ptr};
        cp_error werr = {0};
        if (r->region && !r->region_on_device &&
            !shm_region_write(r->region, k->shm_offset, r->out_buf + r->out_prefix, bytes,
                              &werr)) {
            char *body = kserve_format_error(werr.message); /* that request's error only */
            r->response_status = 400;
            r->response = body ? json_response(body) : NULL;
            free(body);
            return;
        }
        kr.kind = r->region ? KSERVE_OUT_SHM
                            : k->binary_output ? KSERVE_OUT_BINARY : KSERVE_OUT_JSON;
        kr.shm_region = r->region ? k->shm_region : NULL;
        char *text = kserve_format_response(&kr, &len);
        if (kr.kind == KSERVE_OUT_BINARY) {
            resp = binary_answer(r, text, len);
            free(text);
        } else {
            resp = json_text_answer(text, len);
        }
    }
    if (!resp) {
        char *body = kserve_format_error("could not build the response");
        r->response_status = 500;
        r->response = body ? json_response(body) : NULL;
        free(body);
        return;
    }
    r->response = resp;
    r->response_status = 200;
}
