/* mem_budget.h — one budget for all in-flight request memory: request bodies, output tensors
 * and encoded answers. Memory is reserved here before it is allocated, so a request that would
 * push the daemon over memory_budget_bytes is refused (503 + Retry-After, or 413 when it alone
 * can never fit) instead of allocated first. A request's reservations are released when the
 * request object goes (after its answer was sent or the connection dropped). */
#ifndef CLIPPREP_MEM_BUDGET_H
#define CLIPPREP_MEM_BUDGET_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct mem_budget {
    pthread_mutex_t mu;
    size_t limit, used, peak;
} mem_budget;

void mem_budget_init(mem_budget *b, size_t limit);
void mem_budget_destroy(mem_budget *b);

/* Reserves n bytes; false when that would exceed the limit (nothing reserved). */
bool mem_budget_reserve(mem_budget *b, size_t n);
void mem_budget_release(mem_budget *b, size_t n);
size_t mem_budget_used(mem_budget *b);
size_t mem_budget_peak(mem_budget *b);

struct request;

/* Reserves n more bytes for request r (released by request_unref). On failure err says why:
 * 413 body_too_large-like (what: "the request body", "the output tensor", ...) when n alone is
 * over the whole budget, else 503 overloaded (retry later). */
bool request_reserve(struct request *r, size_t n, const char *what, cp_error *err);

/* Releases all of r's reservations (request_unref). */
void request_release_all(struct request *r);

/* An upper bound of the memory cJSON takes to parse text[0..len): one node per value (at most
 * the '[', '{' and ',' outside strings, plus one) and the copies of the strings. Cheap (one
 * pass), so a body is reserved in the budget before it is parsed: a few MB of "0,0,0,..."
 * would otherwise become ~50x their size in nodes. */
size_t json_parse_cost(const uint8_t *text, size_t len);

/* The bytes a JSON text of `count` tensor values takes at most (%.9g, a comma each, a frame):
 * what tensor_to_json and the /v2 JSON answer allocate. */
size_t json_tensor_bytes(size_t count);

#endif
