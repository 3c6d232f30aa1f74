/* shm_pool.c — slots, leases, waiters and the reaper thread. */
#include "shm_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "job.h"
#include "log.h"

typedef struct lease_rec {
    char id[40];
    int first, count;
    uint64_t byte_size;
    uint64_t expires_ns;
    struct lease_rec *next;
} lease_rec;

typedef struct waiter {
    uint64_t byte_size, deadline_ns;
    void (*granted)(void *, const shm_lease *);
    void (*timed_out)(void *);
    void *ctx;
    struct waiter *next;
} waiter;

struct shm_pool {
    char name[256];
    uint8_t *base;
    size_t bytes, slot_bytes;
    int slots;
    unsigned mode;
    uint64_t ttl_ns;
    uint8_t *used;        /* per slot */
    int in_use;
    lease_rec *leases;
    int n_leases;
    waiter *waiters, *waiters_tail;
    int n_waiting;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t reaper;
    bool stop;
    int lock_fd;
    bool external;        /* memory owned elsewhere (the CUDA IPC device pool): never touched */
    char pool_id[40];     /* new at every start: a client that registered the pool with
                             Triton sees a restart (a new object under the same name) */
};

static void new_id(char *id)
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) { /* fall back: time and address */
        uint64_t t = monotonic_ns();
        memcpy(r, &t, 8);
        memcpy(r + 8, &id, 8);
    }
    for (int i = 0; i < 16; i++)
        sprintf(id + 2 * i, "%02x", r[i]);
}

/* First run of `count` free slots, or -1 (mu held). */
static int find_run(const shm_pool *p, int count)
{
    int run = 0;
    for (int i = 0; i < p->slots; i++) {
        run = p->used[i] ? 0 : run + 1;
        if (run == count)
            return i - count + 1;
    }
    return -1;
}

static int slots_for(const shm_pool *p, uint64_t bytes)
{
    uint64_t n = (bytes + p->slot_bytes - 1) / p->slot_bytes;
    if (n == 0)
        return 1;
    if (n > (uint64_t)p->slots)
        return p->slots + 1; /* never fits */
    return (int)n;
}

/* Takes a run and records the lease (mu held). */
static bool take(shm_pool *p, uint64_t byte_size, shm_lease *out)
{
    int count = slots_for(p, byte_size);
    int first = count <= p->slots ? find_run(p, count) : -1;
    if (first < 0)
        return false;
    lease_rec *l = calloc(1, sizeof *l);
    if (!l)
        return false;
    new_id(l->id);
    l->first = first;
    l->count = count;
    l->byte_size = byte_size;
    l->expires_ns = UINT64_MAX; /* held by its request until shm_pool_renew */
    l->next = p->leases;
    p->leases = l;
    p->n_leases++;
    memset(p->used + first, 1, (size_t)count);
    p->in_use += count;
    snprintf(out->id, sizeof out->id, "%s", l->id);
    out->offset = (uint64_t)first * p->slot_bytes;
    out->byte_size = byte_size;
    out->ptr = p->base + out->offset;
    out->expires_in_ms = p->ttl_ns / 1000000u;
    return true;
}

static void drop(shm_pool *p, lease_rec **link)
{
    lease_rec *l = *link;
    memset(p->used + l->first, 0, (size_t)l->count);
    p->in_use -= l->count;
    p->n_leases--;
    *link = l->next;
    free(l);
}

/* Grants room to waiters in order while it lasts (mu held; callbacks run after unlock). */
typedef struct {
    waiter *w;
    shm_lease lease;
    bool ok;
} outcome;

static int settle_waiters(shm_pool *p, uint64_t now, outcome *out, int cap)
{
    int n = 0;
    waiter **link = &p->waiters, *prev = NULL;
    while (*link && n < cap) {
        waiter *w = *link;
        bool granted = take(p, w->byte_size, &out[n].lease);
        if (!granted && now < w->deadline_ns) {
            prev = w;
            link = &w->next;
            continue;
        }
        out[n].w = w;
        out[n].ok = granted;
        n++;
        *link = w->next;
        if (p->waiters_tail == w)
            p->waiters_tail = prev;
        p->n_waiting--;
    }
    return n;
}

static void run_outcomes(outcome *o, int n)
{
    for (int i = 0; i < n; i++) {
        if (o[i].ok)
            o[i].w->granted(o[i].w->ctx, &o[i].lease);
        else
            o[i].w->timed_out(o[i].w->ctx);
        free(o[i].w);
    }
}

static void *reaper(void *arg)
{
    shm_pool *p = arg;
    outcome o[64];
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        uint64_t now = monotonic_ns();
        for (lease_rec **link = &p->leases; *link;)
            if ((*link)->expires_ns <= now)
                drop(p, link);
            else
                link = &(*link)->next;
        int n = settle_waiters(p, now, o, 64);
        if (n) {
            pthread_mutex_unlock(&p->mu);
            run_outcomes(o, n);
            pthread_mutex_lock(&p->mu);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 20 * 1000 * 1000; /* expiry and deadlines are checked every 20 ms */
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    pthread_mutex_unlock(&p->mu);
    shm_pool_end_waits(p); /* stopping: nobody waits any longer */
    return NULL;
}

void shm_pool_end_waits(shm_pool *p)
{
    outcome o[64];
    pthread_mutex_lock(&p->mu);
    while (p->waiters) {
        int n = settle_waiters(p, UINT64_MAX, o, 64);
        pthread_mutex_unlock(&p->mu);
        run_outcomes(o, n);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
}

/* Creates the object exclusively and locks it for the daemon's lifetime. An existing object
 * whose lock is free is a leftover of a crashed run and is replaced; one that is locked
 * belongs to a running daemon and is left alone (an error naming it). */
static int open_exclusive(const char *name, mode_t mode, cp_error *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        mode_t old = umask(0);
        int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, mode);
        umask(old);
        if (fd >= 0) {
            if (flock(fd, LOCK_EX | LOCK_NB) == 0)
                return fd;
            close(fd);
            break;
        }
        if (errno != EEXIST)
            break;
        int other = shm_open(name, O_RDWR, 0);
        if (other >= 0 && flock(other, LOCK_EX | LOCK_NB) != 0) {
            close(other);
            cp_fail(err, CP_ERR_CONFIG,
                    "shm_name %s is in use by another running daemon; choose another shm_name", name);
            return -1;
        }
        if (other >= 0)
            close(other);
        shm_unlink(name); /* stale: left by a run that did not exit cleanly */
    }
    cp_fail(err, CP_ERR_CONFIG, "shm_open %s: %s", name, strerror(errno));
    return -1;
}

static bool start_reaper(shm_pool *p, cp_error *err);

/* The slot bookkeeping both kinds of pool share (no memory behind it yet). */
static shm_pool *pool_new(const char *name, size_t bytes, size_t slot_bytes,
                          uint64_t lease_ttl_ms, cp_error *err)
{
    if (slot_bytes == 0 || slot_bytes > bytes) {
        cp_fail(err, CP_ERR_CONFIG, "the slot size (shm_slot_bytes) must be between 1 and the "
                                    "pool size");
        return NULL;
    }
    shm_pool *p = calloc(1, sizeof *p);
    if (p) {
        snprintf(p->name, sizeof p->name, "%s", name);
        p->slot_bytes = slot_bytes;
        p->slots = (int)(bytes / slot_bytes);
        p->bytes = (size_t)p->slots * slot_bytes;
        p->ttl_ns = lease_ttl_ms * 1000000u;
        p->used = calloc((size_t)p->slots, 1);
    }
    if (!p || !p->used) {
        free(p);
        cp_fail(err, CP_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    return p;
}

shm_pool *shm_pool_create(const char *name, size_t bytes, size_t slot_bytes, unsigned mode,
                          uint64_t lease_ttl_ms, cp_error *err)
{
    if (name[0] != '/' || strchr(name + 1, '/') || strlen(name) >= 255) {
        cp_fail(err, CP_ERR_CONFIG, "shm_name must look like /name (one leading slash): %s", name);
        return NULL;
    }
    shm_pool *p = pool_new(name, bytes, slot_bytes, lease_ttl_ms, err);
    if (!p)
        return NULL;
    p->mode = mode;
    int fd = open_exclusive(name, (mode_t)mode, err);
    if (fd < 0) {
        free(p->used);
        free(p);
        return NULL;
    }
    /* Reserve the pages now: a /dev/shm too small for shm_bytes fails here, not as a SIGBUS
     * when a tensor is written later. */
    int fa = posix_fallocate(fd, 0, (off_t)p->bytes);
    if (fa != 0) {
        cp_fail(err, CP_ERR_CONFIG, "shm %s: cannot reserve %zu bytes (is /dev/shm big enough? "
                "see shm_bytes): %s", name, p->bytes, strerror(fa));
        close(fd);
        shm_unlink(name);
        free(p->used);
        free(p);
        return NULL;
    }
    if (ftruncate(fd, (off_t)p->bytes) != 0 ||
        (p->base = mmap(NULL, p->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        cp_fail(err, CP_ERR_CONFIG, "shm %s of %zu bytes: %s", name, p->bytes, strerror(errno));
        close(fd);
        shm_unlink(name);
        free(p->used);
        free(p);
        return NULL;
    }
    p->lock_fd = fd; /* kept open: its lock tells other daemons the name is taken */
    if (!start_reaper(p, err)) {
        munmap(p->base, p->bytes);
        shm_unlink(name);
        close(p->lock_fd);
        free(p->used);
        free(p);
        return NULL;
    }
    return p;
}

shm_pool *shm_pool_create_external(const char *label, uint8_t *base, size_t bytes,
                                   size_t slot_bytes, uint64_t lease_ttl_ms, cp_error *err)
{
    shm_pool *p = pool_new(label, bytes, slot_bytes, lease_ttl_ms, err);
    if (!p)
        return NULL;
    p->external = true;
    p->base = base;
    p->lock_fd = -1;
    if (!start_reaper(p, err)) {
        free(p->used);
        free(p);
        return NULL;
    }
    return p;
}

static bool start_reaper(shm_pool *p, cp_error *err)
{
    new_id(p->pool_id);
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&p->reaper, NULL, reaper, p) != 0) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        return cp_fail(err, CP_ERR_INTERNAL, "could not start the shm reaper");
    }
    return true;
}

void shm_pool_destroy(shm_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->reaper, NULL);
    while (p->leases)
        drop(p, &p->leases);
    if (!p->external) {
        munmap(p->base, p->bytes);
        shm_unlink(p->name);
        close(p->lock_fd);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->used);
    free(p);
}

bool shm_pool_acquire(shm_pool *p, uint64_t byte_size, shm_lease *out, bool *never_fits)
{
    *never_fits = slots_for(p, byte_size) > p->slots;
    if (*never_fits)
        return false;
    pthread_mutex_lock(&p->mu);
    bool ok = !p->waiters && take(p, byte_size, out); /* FIFO: no overtaking waiters */
    pthread_mutex_unlock(&p->mu);
    return ok;
}

void shm_pool_wait(shm_pool *p, uint64_t byte_size, uint64_t deadline_ns,
                   void (*granted)(void *, const shm_lease *), void (*timed_out)(void *),
                   void *ctx)
{
    waiter *w = calloc(1, sizeof *w);
    if (!w) {
        timed_out(ctx);
        return;
    }
    *w = (waiter){byte_size, deadline_ns, granted, timed_out, ctx, NULL};
    pthread_mutex_lock(&p->mu);
    if (p->waiters_tail)
        p->waiters_tail->next = w;
    else
        p->waiters = w;
    p->waiters_tail = w;
    p->n_waiting++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

bool shm_pool_renew(shm_pool *p, const char *lease_id, uint64_t *expires_in_ms)
{
    pthread_mutex_lock(&p->mu);
    bool found = false;
    for (lease_rec *l = p->leases; l; l = l->next)
        if (!strcmp(l->id, lease_id)) {
            l->expires_ns = monotonic_ns() + p->ttl_ns;
            found = true;
            break;
        }
    pthread_mutex_unlock(&p->mu);
    *expires_in_ms = p->ttl_ns / 1000000u;
    return found;
}

bool shm_pool_release(shm_pool *p, const char *lease_id)
{
    pthread_mutex_lock(&p->mu);
    bool found = false;
    for (lease_rec **link = &p->leases; *link; link = &(*link)->next)
        if (!strcmp((*link)->id, lease_id)) {
            drop(p, link);
            found = true;
            break;
        }
    if (found)
        pthread_cond_broadcast(&p->cv); /* the reaper hands the room to waiters */
    pthread_mutex_unlock(&p->mu);
    return found;
}

void shm_pool_describe(shm_pool *p, char *buf, size_t cap)
{
    char key[300];
    json_escape(p->name, key, sizeof key);
    pthread_mutex_lock(&p->mu);
    snprintf(buf, cap,
             "{\"key\":\"%s\",\"pool_id\":\"%s\",\"byte_size\":%zu,\"slot_bytes\":%zu,\"slots\":%d,"
             "\"slots_in_use\":%d,\"leases\":%d,\"waiting\":%d,\"mode\":\"%04o\","
             "\"lease_ttl_ms\":%llu}",
             key, p->pool_id, p->bytes, p->slot_bytes, p->slots, p->in_use, p->n_leases, p->n_waiting,
             p->mode, (unsigned long long)(p->ttl_ns / 1000000u));
    pthread_mutex_unlock(&p->mu);
}

const char *shm_pool_key(const shm_pool *p) { return p->name; }
const char *shm_pool_id(const shm_pool *p) { return p->pool_id; }

uint8_t *shm_pool_base(const shm_pool *p, size_t *bytes)
{
    *bytes = p->bytes;
    return p->base;
}

int shm_pool_slots_in_use(shm_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->in_use;
    pthread_mutex_unlock(&p->mu);
    return n;
}
