/* shm_pool.h — the server-owned POSIX shared-memory output pool (format=shm): one shm object
 * (shm_name, shm_bytes) cut into fixed slots; a request's tensor takes consecutive slots under
 * a lease that is never reused until released (DELETE /v1/leases/{id}) or expired (ttl).
 * Requests that find no room wait (FIFO) until a lease ends or their deadline passes; a reaper
 * thread expires leases and hands freed room to waiters. */
#ifndef CLIPPREP_SHM_POOL_H
#define CLIPPREP_SHM_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct shm_pool shm_pool;

typedef struct {
    char id[40];            /* hex */
    uint64_t offset;        /* bytes from the start of the shm object */
    uint64_t byte_size;     /* what the caller asked for */
    uint8_t *ptr;           /* mapped address of offset */
    uint64_t expires_in_ms;
} shm_lease;

/* Creates (or replaces a stale) shm object `name` of `bytes`, mode `mode`, slots of slot_bytes. */
shm_pool *shm_pool_create(const char *name, size_t bytes, size_t slot_bytes, unsigned mode,
                          uint64_t lease_ttl_ms, cp_error *err);
/* The same slots and leases over memory owned by the caller (the CUDA IPC device pool: base
 * is a device address and is never dereferenced here). label names it in /v1/shm. */
shm_pool *shm_pool_create_external(const char *label, uint8_t *base, size_t bytes,
                                   size_t slot_bytes, uint64_t lease_ttl_ms, cp_error *err);

/* Stops the reaper (waiters get their timeout callback), unmaps and unlinks the object. */
void shm_pool_destroy(shm_pool *p);

/* Takes room for byte_size bytes now, or returns false (no room, or larger than the pool:
 * *never_fits set then). */
bool shm_pool_acquire(shm_pool *p, uint64_t byte_size, shm_lease *out, bool *never_fits);

/* Queues a waiter: exactly one of granted(ctx, lease) or timed_out(ctx) is called later, on
 * the reaper thread (granted also from a releasing thread), once room frees or at deadline_ns
 * (monotonic). */
void shm_pool_wait(shm_pool *p, uint64_t byte_size, uint64_t deadline_ns,
                   void (*granted)(void *ctx, const shm_lease *lease),
                   void (*timed_out)(void *ctx), void *ctx);

/* Starts a lease's time to live now (a lease in use by its request does not expire); writes
 * the ttl to *expires_in_ms. */
bool shm_pool_renew(shm_pool *p, const char *lease_id, uint64_t *expires_in_ms);

/* Settles every waiter now (granted if room is free, else timed out): used when draining. */
void shm_pool_end_waits(shm_pool *p);

/* Ends a lease; false when no such (live) lease exists. */
bool shm_pool_release(shm_pool *p, const char *lease_id);

/* {"key":…,"byte_size":…,"slot_bytes":…,"slots":…,"slots_in_use":…,"leases":…,"mode":"0600",
 * "waiting":…} into buf. */
void shm_pool_describe(shm_pool *p, char *buf, size_t cap);
const char *shm_pool_key(const shm_pool *p);
/* Random per start: a changed id means the daemon restarted and the object was recreated
 * (re-register it with Triton). */
const char *shm_pool_id(const shm_pool *p);
uint8_t *shm_pool_base(const shm_pool *p, size_t *bytes);
int shm_pool_slots_in_use(shm_pool *p);

#endif
