/* mem_budget.c — the in-flight memory budget and a request's share of it. */
#include "mem_budget.h"

#include "metrics.h"
#include "request.h"

void mem_budget_init(mem_budget *b, size_t limit)
{
    pthread_mutex_init(&b->mu, NULL);
    b->limit = limit;
    b->used = b->peak = 0;
    metrics_set_memory_budget(0, 0, limit);
}

void mem_budget_destroy(mem_budget *b) { pthread_mutex_destroy(&b->mu); }

bool mem_budget_reserve(mem_budget *b, size_t n)
{
    pthread_mutex_lock(&b->mu);
    bool ok = n <= b->limit && b->used <= b->limit - n;
    if (ok) {
        b->used += n;
        if (b->used > b->peak)
            b->peak = b->used;
        metrics_set_memory_budget(b->used, b->peak, b->limit);
    }
    pthread_mutex_unlock(&b->mu);
    return ok;
}

void mem_budget_release(mem_budget *b, size_t n)
{
    pthread_mutex_lock(&b->mu);
    b->used = n <= b->used ? b->used - n : 0;
    metrics_set_memory_budget(b->used, b->peak, b->limit);
    pthread_mutex_unlock(&b->mu);
}

size_t mem_budget_used(mem_budget *b)
{
    pthread_mutex_lock(&b->mu);
    size_t n = b->used;
    pthread_mutex_unlock(&b->mu);
    return n;
}

size_t mem_budget_peak(mem_budget *b)
{
    pthread_mutex_lock(&b->mu);
    size_t n = b->peak;
    pthread_mutex_unlock(&b->mu);
    return n;
}

bool request_reserve(request *r, size_t n, const char *what, cp_error *err)
{
    mem_budget *b = &r->srv->budget;
    if (n > b->limit)
        return cp_fail(err, CP_ERR_BODY_TOO_LARGE,
                       "%s needs %zu bytes, more than this server's whole memory budget "
                       "(memory_budget_bytes)", what, n);
    if (!mem_budget_reserve(b, n))
        return cp_fail(err, CP_ERR_OVERLOADED,
                       "memory budget in use by other requests (memory_budget_bytes); retry later");
    r->mem_reserved += n;
    return true;
}

void request_release_all(request *r)
{
    if (r->mem_reserved)
        mem_budget_release(&r->srv->budget, r->mem_reserved);
    r->mem_reserved = 0;
}

size_t json_tensor_bytes(size_t count)
{
    return count * 17 + 512; /* "-1.23456789e-05," is 16; tensor_to_json allocates 17 */
}

size_t json_parse_cost(const uint8_t *text, size_t len)
{
    size_t nodes = 1;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = text[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == ',' || c == '[' || c == '{') {
            nodes++;
        }
    }
    /* a node (64 bytes) and its allocation overhead, a key copy's overhead; strings at most
     * once more their text */
    return nodes * 96 + 2 * len;
}
