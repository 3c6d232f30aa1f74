/* content_cache.c — the tensor cache (see content_cache.h): a chained hash table over the keys
 * and a doubly linked recency list, under one mutex (entries are copied in and out, so no
 * reference outlives the lock). */
#include "content_cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "metrics.h"

typedef struct entry {
    cache_key key;
    struct entry *chain;        /* next in the bucket */
    struct entry *newer, *older;
    size_t size;
    uint8_t data[];
} entry;

#define ENTRY_OVERHEAD (sizeof(entry) + 16) /* counted against the budget with the data */

struct content_cache {
    pthread_mutex_t mu;
    size_t budget, used;
    entry **buckets;
    size_t n_buckets; /* a power of two */
    entry *newest, *oldest;
    uint64_t hits, misses, evictions, entries;
};

void content_hash_hex(const uint8_t *data, size_t len, char out[33])
{
    XXH128_hash_t h = XXH3_128bits(data, len);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64,
             (unsigned long long)h.low64);
}

cache_key cache_key_for(const char *content_hash_hex, const char *options)
{
    XXH3_state_t *st = XXH3_createState();
    cache_key k;
    XXH128_hash_t h;
    if (st) {
        XXH3_128bits_reset(st);
        XXH3_128bits_update(st, content_hash_hex, strlen(content_hash_hex));
        XXH3_128bits_update(st, "\n", 1); /* a separator no hex digit can be */
        XXH3_128bits_update(st, options, strlen(options));
        h = XXH3_128bits_digest(st);
        XXH3_freeState(st);
    } else { /* (no memory) the same value, computed from one buffer */
        char buf[512];
        int n = snprintf(buf, sizeof buf, "%s\n%s", content_hash_hex, options);
        h = XXH3_128bits(buf, n > 0 && (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    memcpy(k.b, c.digest, sizeof k.b);
    return k;
}

content_cache *content_cache_create(size_t budget_bytes)
{
    content_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->budget = budget_bytes;
    c->n_buckets = 1024;
    while (c->n_buckets < budget_bytes / (64 * 1024) && c->n_buckets < ((size_t)1 << 20))
        c->n_buckets *= 2;
    c->buckets = calloc(c->n_buckets, sizeof *c->buckets);
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void content_cache_destroy(content_cache *c)
{
    if (!c)
        return;
    for (entry *e = c->newest; e;) {
        entry *next = e->older;
        free(e);
        e = next;
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Mirrors the counters into /metrics (under the lock, so they stay consistent). */
static void publish(const content_cache *c)
{
    metrics_set_cache(c->hits, c->misses, c->evictions, c->entries, c->used);
}

static entry **slot_of(content_cache *c, const cache_key *k)
{
    uint64_t h;
    memcpy(&h, k->b, sizeof h);
    entry **p = &c->buckets[h & (c->n_buckets - 1)];
    while (*p && memcmp((*p)->key.b, k->b, sizeof k->b))
        p = &(*p)->chain;
    return p;
}

static void unlink_recency(content_cache *c, entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void push_newest(content_cache *c, entry *e)
{
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest)
        c->newest->newer = e;
    c->newest = e;
    if (!c->oldest)
        c->oldest = e;
}

/* Unlinks and frees e (its slot pointer given). */
static void drop(content_cache *c, entry **slot)
{
    entry *e = *slot;
    *slot = e->chain;
    unlink_recency(c, e);
    c->used -= e->size + ENTRY_OVERHEAD;
    c->entries--;
    free(e);
}

bool content_cache_get(content_cache *c, const cache_key *k, void *dst, size_t size)
{
    pthread_mutex_lock(&c->mu);
    entry *e = *slot_of(c, k);
    bool hit = e && e->size == size;
    if (hit) {
        memcpy(dst, e->data, size);
        unlink_recency(c, e);
        push_newest(c, e);
        c->hits++;
    } else {
        c->misses++;
    }
    publish(c);
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void content_cache_put(content_cache *c, const cache_key *k, const void *src, size_t size)
{
    if (size + ENTRY_OVERHEAD > c->budget)
        return;
    entry *e = malloc(sizeof *e + size);
    if (!e)
        return;
    e->key = *k;
    e->size = size;
    memcpy(e->data, src, size);
    pthread_mutex_lock(&c->mu);
    entry **slot = slot_of(c, k);
    if (*slot)
        drop(c, slot); /* the same key computed again: keep the newer copy */
    while (c->oldest && c->used + size + ENTRY_OVERHEAD > c->budget) {
        drop(c, slot_of(c, &c->oldest->key));
        c->evictions++;
    }
    slot = slot_of(c, k);
    e->chain = NULL;
    *slot = e;
    push_newest(c, e);
    c->used += size + ENTRY_OVERHEAD;
    c->entries++;
    publish(c);
    pthread_mutex_unlock(&c->mu);
}

void content_cache_stats(content_cache *c, cache_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = (cache_stats){c->hits, c->misses, c->evictions, c->entries, c->used, c->budget};
    pthread_mutex_unlock(&c->mu);
}
