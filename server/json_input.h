/* json_input.h — the JSON body of /v1/preprocess: {"images": [item, ...]} where an item is a
 * data URI string, {"b64": "..."}, {"url": "..."} (a data URI or an http(s) URL),
 * {"type": "image_url", "image_url": {"url": "..."}} (OpenAI's shape) or {"hash": "..."} (a
 * content hash the cache knows). Parsing only: no fetching, no cache look-ups. */
#ifndef CLIPPREP_JSON_INPUT_H
#define CLIPPREP_JSON_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum { JSON_ITEM_BYTES = 0, JSON_ITEM_URL, JSON_ITEM_HASH } json_item_kind;

#define CONTENT_HASH_HEX 32 /* a content hash as sent and answered: 128 bits in hex */

typedef struct {
    json_item_kind kind;
    uint8_t *data;  /* BYTES: the decoded image (owned); URL: filled by the fetch (owned) */
    size_t len;
    char *url;      /* URL: the address (owned) */
    char hash[CONTENT_HASH_HEX + 1]; /* HASH: lower-case hex */
} json_item;

typedef struct {
    json_item *items;
    int n;
} json_items;

/* True for "application/json" (parameters such as charset allowed). */
bool json_input_content_type(const char *content_type);

/* Parses body into out. Each base64 payload is decoded after checking that its decoded size
 * (bounded by base64_decoded_max) fits max_item_bytes. On failure returns false with err set
 * and *err_index the item's index (-1 for the body as a whole); out is then empty. */
bool json_input_parse(const uint8_t *body, size_t len, int max_items, size_t max_item_bytes,
                      json_items *out, cp_error *err, int *err_index);

void json_items_free(json_items *items);

#endif
