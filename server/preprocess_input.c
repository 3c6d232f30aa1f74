/* preprocess_input.c — JSON input, URL fetches and the content cache for /v1/preprocess (see
 * preprocess_input.h). A request with URL items is suspended while the fetch pool works; the
 * last fetch resumes it, and libmicrohttpd calls the body handler again, which continues here
 * on the HTTP thread (answers and request_start stay on that thread). */
#include "preprocess_input.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content_cache.h"
#include "fetch.h"
#include "http_util.h"
#include "json_input.h"
#include "log.h"
#include "mem_budget.h"
#include "offload.h"
#include "reference.h"

struct preprocess_input {
    bool json;               /* the body was JSON: items holds the images */
    json_items items;
    /* a large body is parsed on an offload thread (the request suspended meanwhile) */
    offload_task parse_task;
    request *parse_req;
    size_t parse_bytes;      /* reserved in the memory budget while parsing */
    bool parsing, parsed, parse_ok;
    cp_error parse_err;
    int parse_err_index;
    /* fetches */
    fetch_task *tasks;       /* one per URL item */
    int n_tasks;
    pthread_mutex_t mu;      /* guards pending and the first error */
    int pending;
    bool fetched;            /* all fetches are done (the request was resumed) */
    atomic_size_t fetched_bytes;
    cp_error fetch_err;
    int fetch_err_index;     /* lowest failing index, -1 when none */
    /* cache */
    bool cache_on;
    int n;
    char (*hashes)[CONTENT_HASH_HEX + 1];
    cache_key *keys;
    uint8_t **hits;          /* per image: the cached tensor (owned) or NULL */
    char *hash_header;       /* X-Content-Hash */
};

static preprocess_input *input_of(request *r)
{
    if (!r->input) {
        r->input = calloc(1, sizeof *r->input);
        if (r->input) {
            pthread_mutex_init(&r->input->mu, NULL);
            r->input->fetch_err_index = -1;
        }
    }
    return r->input;
}

void preprocess_input_free(preprocess_input *in)
{
    if (!in)
        return;
    json_items_free(&in->items);
    for (int i = 0; i < in->n_tasks; i++)
        free(in->tasks[i].data);
    free(in->tasks);
    for (int i = 0; in->hits && i < in->n; i++)
        free(in->hits[i]);
    free(in->hits);
    free(in->hashes);
    free(in->keys);
    free(in->hash_header);
    pthread_mutex_destroy(&in->mu);
    free(in);
}

bool preprocess_input_is_json(const request *r)
{
    if (r->input && r->input->json)
        return true;
    return json_input_content_type(
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type"));
}

static enum MHD_Result fail(request *r, cp_status st, int index, const char *msg)
{
    cp_error err;
    cp_fail(&err, st, "%s", msg);
    return request_answer_error(r, &err, index);
}

/* ---- the cache ---------------------------------------------------------------------------- */

static size_t slot_bytes(const request *r)
{
    const profile *p = r->prof;
    return (size_t)3 * p->out_height * p->out_width * tensor_dtype_size(r->dtype);
}

/* Every option that changes the tensor: the profile (fixed for the daemon's life), dtype,
 * mode, EXIF, and the effective reference (the `reference` parameter or the default). */
static void cache_options(const request *r, bool exif, char *out, size_t cap)
{
    snprintf(out, cap, "profile=%s;dtype=%s;mode=%s;exif=%d;reference=%s", r->prof->name,
             tensor_dtype_name(r->dtype), r->fast ? "fast" : "exact", exif ? 1 : 0,
             reference_name(r->ref));
}

enum MHD_Result preprocess_input_start(request *r, const image_ref *images, int n, bool exif)
{
    content_cache *cache = r->srv->cache;
    /* format=cuda_ipc writes device memory: neither copied from nor stored in the cache */
    /* a VLM profile's part per image varies with its size: not cached (yet) */
    bool usable = cache && r->fmt != OUT_CUDA_IPC && r->prof->vlm.kind == VLM_NONE &&
                  r->route != ROUTE_PLAN;
    if (!usable) {
        for (int i = 0; i < n; i++)
            if (!images[i].data)
                return fail(r, CP_ERR_CACHE_MISS, i,
                            "the content cache is off (cache_bytes is 0, format=cuda_ipc, or a "
                            "vision-language profile): send the image itself");
        return request_start(r, images, n, exif);
    }

    cp_error err = {0};
    /* the hits' tensor copies count against memory_budget_bytes like the output does */
    if (!request_reserve(r, (size_t)n * slot_bytes(r), "the cached tensors", &err))
        return request_answer_error(r, &err, -1);
    preprocess_input *in = input_of(r);
    if (!in || !(in->hashes = calloc((size_t)n, sizeof *in->hashes)) ||
        !(in->keys = calloc((size_t)n, sizeof *in->keys)) ||
        !(in->hits = calloc((size_t)n, sizeof *in->hits)) ||
        !(in->hash_header = malloc((size_t)n * (CONTENT_HASH_HEX + 1) + 1)))
        return fail(r, CP_ERR_OVERLOADED, -1, "out of memory");
    in->n = n;
    in->cache_on = true;
    char options[256];
    cache_options(r, exif, options, sizeof options);
    size_t slot = slot_bytes(r);
    char *h = in->hash_header;
    const json_items *items = in->json ? &in->items : NULL;
    for (int i = 0; i < n; i++) {
        if (!images[i].data) /* a {"hash"} item */
            snprintf(in->hashes[i], sizeof in->hashes[i], "%s", items->items[i].hash);
        else
            content_hash_hex(images[i].data, images[i].len, in->hashes[i]);
        in->keys[i] = cache_key_for(in->hashes[i], options);
        h += sprintf(h, "%s%s", i ? "," : "", in->hashes[i]);
        bool by_hash = !images[i].data;
        in->hits[i] = malloc(slot);
        if (!in->hits[i])
            return fail(r, CP_ERR_OVERLOADED, -1, "out of memory");
        if (!content_cache_get(cache, &in->keys[i], in->hits[i], slot)) {
            free(in->hits[i]);
            in->hits[i] = NULL;
            if (by_hash)
                return fail(r, CP_ERR_CACHE_MISS, i,
                            "no such hash in the content cache (evicted, or never stored under "
                            "these options): send the image itself");
        }
    }
    return request_start(r, images, n, exif);
}

const uint8_t *preprocess_input_cached(const request *r, int index)
{
    const preprocess_input *in = r->input;
    return in && in->hits && index < in->n ? in->hits[index] : NULL;
}

void preprocess_input_job_done(request *r, int index, const void *out, size_t size)
{
    const preprocess_input *in = r->input;
    if (in && in->cache_on && index < in->n && !in->hits[index])
        content_cache_put(r->srv->cache, &in->keys[index], out, size);
}

void preprocess_input_headers(const request *r, struct MHD_Response *resp)
{
    if (r->input && r->input->hash_header)
        MHD_add_response_header(resp, "X-Content-Hash", r->input->hash_header);
}

/* ---- fetches ------------------------------------------------------------------------------ */

static void fetch_done(fetch_task *t)
{
    request *r = t->ctx;
    preprocess_input *in = r->input;
    pthread_mutex_lock(&in->mu);
    if (!t->ok && (in->fetch_err_index < 0 || t->index < in->fetch_err_index)) {
        in->fetch_err = t->err;
        in->fetch_err_index = t->index;
    }
    bool last = --in->pending == 0;
    pthread_mutex_unlock(&in->mu);
    if (!last)
        return;
    in->fetched = true;
    atomic_store(&r->state, REQ_RECEIVING); /* the body handler runs again on the resume */
    MHD_resume_connection(r->conn);
    request_unref(r);
}

/* Suspends the request and hands its URL items to the fetch pool. */
static enum MHD_Result start_fetches(request *r, preprocess_input *in)
{
    server_ctx *srv = r->srv;
    const cp_config *cfg = srv->cfg;
    if (atomic_load(&srv->draining))
        return fail(r, CP_ERR_UNAVAILABLE, -1, "shutting down");
    int urls = 0;
    for (int i = 0; i < in->items.n; i++)
        urls += in->items.items[i].kind == JSON_ITEM_URL;
    in->tasks = calloc((size_t)urls, sizeof *in->tasks);
    if (!in->tasks)
        return fail(r, CP_ERR_OVERLOADED, -1, "out of memory");
    /* what the fetched bodies may take, reserved before any is fetched */
    size_t bytes = (size_t)urls * cfg->fetch_max_bytes;
    if (bytes / (size_t)urls != cfg->fetch_max_bytes || bytes > cfg->fetch_max_request_bytes)
        bytes = cfg->fetch_max_request_bytes;
    cp_error err = {0};
    if (!request_reserve(r, bytes, "the fetched images", &err))
        return request_answer_error(r, &err, -1);
    uint64_t deadline = monotonic_ns() + (uint64_t)cfg->fetch_request_timeout_ms * 1000000u;
    uint64_t request_end = r->start_ns + (uint64_t)cfg->request_timeout_s * 1000000000u;
    if (request_end < deadline)
        deadline = request_end;
    atomic_init(&in->fetched_bytes, 0);
    for (int i = 0; i < in->items.n; i++) {
        if (in->items.items[i].kind != JSON_ITEM_URL)
            continue;
        in->tasks[in->n_tasks++] = (fetch_task){.url = in->items.items[i].url,
                                                .deadline_ns = deadline,
                                                .request_bytes = &in->fetched_bytes,
                                                .done = fetch_done, .ctx = r, .index = i};
    }
    in->pending = in->n_tasks;
    /* Suspended and counted in flight like queued work (shutdown waits for it). */
    atomic_store(&r->state, REQ_PROCESSING);
    atomic_fetch_add(&r->refs, 1);
    if (!r->accepted) {
        r->accepted = true;
        atomic_fetch_add(&srv->inflight, 1);
    }
    MHD_suspend_connection(r->conn);
    for (int i = 0; i < in->n_tasks; i++)
        fetcher_submit(srv->fetcher, &in->tasks[i]);
    return MHD_YES;
}

/* Bodies from this size on are parsed off the HTTP thread (below it a parse takes well under
 * a millisecond; a 64 MiB list of base64 takes seconds). */
#define OFFLOAD_PARSE_MIN ((size_t)256 << 10)

static void parse_body(request *r, preprocess_input *in)
{
    const cp_config *cfg = r->srv->cfg;
    in->parse_err_index = -1;
    in->parse_ok = json_input_parse(r->body, r->len, cfg->max_images_per_request,
                                    cfg->max_body_bytes, &in->items, &in->parse_err,
                                    &in->parse_err_index);
    mem_budget_release(&r->srv->budget, in->parse_bytes);
    in->parsed = true;
}

/* On an offload thread: parse, then resume the request (its body handler continues). */
static void parse_task_run(offload_task *t, void *state)
{
    (void)state;
    preprocess_input *in = (preprocess_input *)((char *)t - offsetof(preprocess_input, parse_task));
    request *r = in->parse_req;
    uint64_t t0 = monotonic_ns();
    parse_body(r, in);
    char esc[80];
    json_escape(r->id, esc, sizeof esc);
    log_event(LOG_DEBUG, "json body parsed off the HTTP thread",
              "\"request_id\":\"%s\",\"bytes\":%zu,\"ms\":%.1f", esc, r->len,
              (double)(monotonic_ns() - t0) / 1e6);
    atomic_store(&r->state, REQ_RECEIVING); /* the body handler runs again on the resume */
    MHD_resume_connection(r->conn);
    request_unref(r);
}

enum MHD_Result preprocess_input_json(request *r, bool exif)
{
    preprocess_input *in = r->input;
    if (!in || !in->json) {
        in = input_of(r);
        if (!in)
            return fail(r, CP_ERR_OVERLOADED, -1, "out of memory");
        cp_error err = {0};
        if (!in->parsed) {
            /* the parse tree is reserved in the memory budget while it exists (issue #13) */
            in->parse_bytes = json_parse_cost(r->body, r->len);
            if (in->parse_bytes > r->srv->budget.limit) {
                cp_fail(&err, CP_ERR_BODY_TOO_LARGE, "this JSON body would take about %zu bytes "
                        "to parse, more than the whole memory budget (memory_budget_bytes)",
                        in->parse_bytes);
                return request_answer_error(r, &err, -1);
            }
            if (!mem_budget_reserve(&r->srv->budget, in->parse_bytes)) {
                cp_fail(&err, CP_ERR_OVERLOADED, "memory budget in use by other requests "
                        "(memory_budget_bytes); retry later");
                return request_answer_error(r, &err, -1);
            }
            if (r->len >= OFFLOAD_PARSE_MIN && r->srv->offload) {
                if (atomic_load(&r->srv->draining)) {
                    mem_budget_release(&r->srv->budget, in->parse_bytes);
                    return fail(r, CP_ERR_UNAVAILABLE, -1, "shutting down");
                }
                /* suspended and counted in flight like queued work (shutdown waits for it) */
                in->parse_req = r;
                in->parse_task.run = parse_task_run;
                atomic_store(&r->state, REQ_PROCESSING);
                atomic_fetch_add(&r->refs, 1);
                if (!r->accepted) {
                    r->accepted = true;
                    atomic_fetch_add(&r->srv->inflight, 1);
                }
                MHD_suspend_connection(r->conn);
                offload_submit(r->srv->offload, &in->parse_task);
                return MHD_YES;
            }
            parse_body(r, in);
        }
        if (!in->parse_ok)
            return request_answer_error(r, &in->parse_err, in->parse_err_index);
        if (atomic_load(&r->srv->draining))
            return fail(r, CP_ERR_UNAVAILABLE, -1, "shutting down");
        in->json = true;
        free(r->body); /* the images are decoded out of it */
        r->body = NULL;
        r->len = r->cap = 0;
        for (int i = 0; i < in->items.n; i++) {
            if (in->items.items[i].kind != JSON_ITEM_URL)
                continue;
            if (!r->srv->fetcher)
                return fail(r, CP_ERR_FETCH_DISABLED, i,
                            "URL items are off (fetch_enabled is false): send the bytes as "
                            "base64 or a data URI");
            return start_fetches(r, in);
        }
    } else if (in->fetch_err_index >= 0) {
        return request_answer_error(r, &in->fetch_err, in->fetch_err_index);
    }
    /* the fetched bodies become their items' bytes */
    for (int t = 0; t < in->n_tasks; t++) {
        json_item *it = &in->items.items[in->tasks[t].index];
        it->data = in->tasks[t].data;
        it->len = in->tasks[t].len;
        in->tasks[t].data = NULL;
    }
    image_ref *images = calloc((size_t)in->items.n, sizeof *images);
    if (!images)
        return fail(r, CP_ERR_OVERLOADED, -1, "out of memory");
    for (int i = 0; i < in->items.n; i++)
        if (in->items.items[i].kind != JSON_ITEM_HASH)
            images[i] = (image_ref){.data = in->items.items[i].data, .len = in->items.items[i].len};
    enum MHD_Result ret = preprocess_input_start(r, images, in->items.n, exif);
    free(images);
    return ret;
}
