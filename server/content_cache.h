/* content_cache.h — a byte-budgeted LRU of finished output tensors, keyed by a 128-bit hash of
 * (the encoded image's content hash, every option that changes the output). A hit answers the
 * same bytes as the miss that stored them, without decoding or resizing. Thread-safe. */
#ifndef CLIPPREP_CONTENT_CACHE_H
#define CLIPPREP_CONTENT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct content_cache content_cache;

typedef struct {
    uint8_t b[16];
} cache_key;

/* The content hash of encoded bytes (XXH3-128), as 32 lower-case hex digits + NUL. */
void content_hash_hex(const uint8_t *data, size_t len, char out[33]);

/* The cache key for a content hash (hex) under an options string (profile, dtype, ...). */
cache_key cache_key_for(const char *content_hash_hex, const char *options);

content_cache *content_cache_create(size_t budget_bytes);
void content_cache_destroy(content_cache *c);

/* Copies the entry into dst when present with exactly `size` bytes (a hit: it becomes the most
 * recently used). False on a miss. */
bool content_cache_get(content_cache *c, const cache_key *k, void *dst, size_t size);

/* Stores a copy (replacing an equal key), evicting least recently used entries to stay within
 * the budget; an entry larger than the whole budget is not stored. */
void content_cache_put(content_cache *c, const cache_key *k, const void *src, size_t size);

typedef struct {
    uint64_t hits, misses, evictions, entries, bytes, budget;
} cache_stats;
void content_cache_stats(content_cache *c, cache_stats *out);

#endif
