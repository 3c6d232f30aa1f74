/* shm_regions.c — the registry of client shared-memory regions and its key policy. */
#include "shm_regions.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

struct shm_region {
    char name[128], key[256];
    uint64_t offset, byte_size;
    uint8_t *map;                    /* device regions: the opened GPU pointer */
    int fd;                          /* system regions: the object, kept open for pwrite */
    int device_id;                   /* device regions: the GPU */
    void (*close_device)(int, void *); /* set for device regions (CUDA IPC) */
    atomic_int refs; /* the registry's, plus one per user */
    struct shm_region *next;
};

#define MAX_RESERVED_KEYS 4

struct shm_regions {
    pthread_mutex_t mu;
    shm_region *head;
    char prefix[128];
    int n_reserved;
    char reserved[MAX_RESERVED_KEYS][256];
    dev_t reserved_dev[MAX_RESERVED_KEYS];
    ino_t reserved_ino[MAX_RESERVED_KEYS];
    bool reserved_stat[MAX_RESERVED_KEYS];
};

shm_regions *shm_regions_create(void)
{
    shm_regions *rs = calloc(1, sizeof *rs);
    if (rs)
        pthread_mutex_init(&rs->mu, NULL);
    return rs;
}

void shm_regions_set_prefix(shm_regions *rs, const char *prefix)
{
    snprintf(rs->prefix, sizeof rs->prefix, "%s", prefix ? prefix : "");
}

void shm_regions_reserve_key(shm_regions *rs, const char *key)
{
    if (!key || rs->n_reserved >= MAX_RESERVED_KEYS)
        return;
    int i = rs->n_reserved++;
    snprintf(rs->reserved[i], sizeof rs->reserved[i], "%s", key);
    int fd = shm_open(key, O_RDONLY, 0);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0) {
        rs->reserved_dev[i] = st.st_dev;
        rs->reserved_ino[i] = st.st_ino;
        rs->reserved_stat[i] = true;
    }
    if (fd >= 0)
        close(fd);
}

bool shm_regions_has(shm_regions *rs, const char *name)
{
    pthread_mutex_lock(&rs->mu);
    shm_region *r = rs->head;
    while (r && strcmp(r->name, name))
        r = r->next;
    pthread_mutex_unlock(&rs->mu);
    return r != NULL;
}

static bool is_reserved(const shm_regions *rs, const char *key, const struct stat *st)
{
    for (int i = 0; i < rs->n_reserved; i++)
        if (!strcmp(rs->reserved[i], key) ||
            (rs->reserved_stat[i] && rs->reserved_dev[i] == st->st_dev &&
             rs->reserved_ino[i] == st->st_ino))
            return true;
    return false;
}

void shm_region_put(shm_region *r)
{
    if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
        if (r->close_device)
            r->close_device(r->device_id, r->map);
        else
            close(r->fd);
        free(r);
    }
}

void shm_regions_destroy(shm_regions *rs)
{
    if (!rs)
        return;
    shm_regions_unregister_all(rs);
    pthread_mutex_destroy(&rs->mu);
    free(rs);
}

/* A shm name, nothing that could walk the filesystem: "/" then [A-Za-z0-9._-], not "." or "..". */
static bool valid_key(const char *key)
{
    size_t n = strlen(key);
    if (n < 2 || n > 250 || key[0] != '/' || !strcmp(key, "/.") || !strcmp(key, "/.."))
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool add(shm_regions *rs, shm_region *r, cp_error *err);

bool shm_regions_register(shm_regions *rs, const char *name, const char *key, uint64_t offset,
                          uint64_t byte_size, cp_error *err)
{
    if (!name[0] || strlen(name) >= 128)
        return cp_fail(err, CP_ERR_BAD_REQUEST, "invalid region name");
    if (!valid_key(key))
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "invalid shared memory key '%.100s' (a POSIX shm name: /name)", key);
    if (byte_size == 0)
        return cp_fail(err, CP_ERR_BAD_REQUEST, "byte_size must be positive");
    if (strncmp(key, rs->prefix, strlen(rs->prefix)))
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "shared memory key not allowed (client_shm_key_prefix)");
    /* The client learns only "unable to open" (no errno, no size): the log has the rest. */
    int fd = shm_open(key, O_RDWR, 0);
    char kesc[600]; /* (valid_key: no characters that need escaping, but be sure) */
    json_escape(key, kesc, sizeof kesc);
    if (fd < 0) {
        log_event(LOG_WARN, "shm register: cannot open", "\"key\":\"%s\",\"error\":\"%s\"",
                  kesc, strerror(errno));
        return cp_fail(err, CP_ERR_BAD_REQUEST, "unable to open shared memory region '%s'", name);
    }
    struct stat st;
    bool stat_ok = fstat(fd, &st) == 0;
    if (!stat_ok || is_reserved(rs, key, &st)) {
        close(fd);
        log_event(LOG_WARN, "shm register: refused a key of the daemon's own",
                  "\"key\":\"%s\"", kesc);
        return cp_fail(err, CP_ERR_BAD_REQUEST, "unable to open shared memory region '%s'", name);
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < offset + byte_size ||
        offset + byte_size < offset) {
        close(fd);
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "shared memory region '%s' is smaller than offset + byte_size", name);
    }
    shm_region *r = calloc(1, sizeof *r);
    if (!r) {
        close(fd);
        return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
    }
    r->fd = fd;
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->key, sizeof r->key, "%s", key);
    r->offset = offset;
    r->byte_size = byte_size;
    return add(rs, r, err);
}

bool shm_regions_register_device(shm_regions *rs, const char *name, void *dev_ptr,
                                 uint64_t byte_size, int device_id,
                                 void (*close)(int device, void *ptr), cp_error *err)
{
    if (!name[0] || strlen(name) >= 128) {
        close(device_id, dev_ptr);
        return cp_fail(err, CP_ERR_BAD_REQUEST, "invalid region name");
    }
    shm_region *r = calloc(1, sizeof *r);
    if (!r) {
        close(device_id, dev_ptr);
        return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
    }
    snprintf(r->name, sizeof r->name, "%s", name);
    r->map = dev_ptr;
    r->byte_size = byte_size;
    r->device_id = device_id;
    r->close_device = close;
    return add(rs, r, err);
}

/* Adds r unless the name is taken (then r is released); takes the registry's reference. */
static bool add(shm_regions *rs, shm_region *r, cp_error *err)
{
    const char *name = r->name;
    atomic_init(&r->refs, 1);
    pthread_mutex_lock(&rs->mu);
    for (shm_region *e = rs->head; e; e = e->next)
        if (!strcmp(e->name, name)) {
            pthread_mutex_unlock(&rs->mu);
            cp_fail(err, CP_ERR_BAD_REQUEST, "shared memory region '%s' is already registered",
                    name);
            shm_region_put(r); /* (name lives in r: report first) */
            return false;
        }
    r->next = rs->head;
    rs->head = r;
    pthread_mutex_unlock(&rs->mu);
    return true;
}

bool shm_regions_unregister(shm_regions *rs, const char *name)
{
    pthread_mutex_lock(&rs->mu);
    for (shm_region **link = &rs->head; *link; link = &(*link)->next)
        if (!strcmp((*link)->name, name)) {
            shm_region *r = *link;
            *link = r->next;
            pthread_mutex_unlock(&rs->mu);
            shm_region_put(r);
            return true;
        }
    pthread_mutex_unlock(&rs->mu);
    return false;
}

void shm_regions_unregister_all(shm_regions *rs)
{
    pthread_mutex_lock(&rs->mu);
    shm_region *r = rs->head;
    rs->head = NULL;
    pthread_mutex_unlock(&rs->mu);
    while (r) {
        shm_region *next = r->next;
        shm_region_put(r);
        r = next;
    }
}

shm_region *shm_regions_get(shm_regions *rs, const char *name, uint8_t **ptr, uint64_t *byte_size)
{
    pthread_mutex_lock(&rs->mu);
    shm_region *r = rs->head;
    while (r && strcmp(r->name, name))
        r = r->next;
    if (r) {
        atomic_fetch_add(&r->refs, 1);
        *ptr = r->close_device ? r->map + r->offset : NULL;
        *byte_size = r->byte_size;
    }
    pthread_mutex_unlock(&rs->mu);
    return r;
}

bool shm_region_write(shm_region *r, uint64_t at, const void *src, size_t n, cp_error *err)
{
    if (r->close_device || at > r->byte_size || n > r->byte_size - at)
        return cp_fail(err, CP_ERR_INTERNAL, "output does not fit the region");
    uint64_t pos = r->offset + at;
    struct stat st;
    if (fstat(r->fd, &st) != 0 || (uint64_t)st.st_size < pos + n) {
        char esc[300];
        json_escape(r->name, esc, sizeof esc);
        log_event(LOG_WARN, "shm region shrank after registration: output not written",
                  "\"region\":\"%s\",\"size\":%lld,\"needed\":%llu", esc,
                  (long long)st.st_size, (unsigned long long)(pos + n));
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "shared memory region '%s' no longer holds the output (was it truncated?)",
                       r->name);
    }
    const uint8_t *p = src;
    while (n > 0) { /* a write past a concurrent truncation extends the object: no SIGBUS */
        ssize_t w = pwrite(r->fd, p, n, (off_t)pos);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            char esc[300];
            json_escape(r->name, esc, sizeof esc);
            log_event(LOG_WARN, "shm region write failed", "\"region\":\"%s\",\"errno\":%d",
                      esc, w < 0 ? errno : 0);
            return cp_fail(err, CP_ERR_BAD_REQUEST,
                           "could not write the output into shared memory region '%s'", r->name);
        }
        p += w;
        pos += (uint64_t)w;
        n -= (size_t)w;
    }
    return true;
}

char *shm_regions_status(shm_regions *rs, const char *name, bool *found)
{
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    len += (size_t)snprintf(s, cap, "[");
    *found = name == NULL;
    pthread_mutex_lock(&rs->mu);
    for (shm_region *r = rs->head; r; r = r->next) {
        if (name && strcmp(r->name, name))
            continue;
        *found = true;
        char n[300], k[300];
        json_escape(r->name, n, sizeof n);
        json_escape(r->key, k, sizeof k);
        if (cap - len < 800) {
            char *t = realloc(s, cap * 2);
            if (!t)
                break;
            s = t;
            cap *= 2;
        }
        if (r->close_device)
            len += (size_t)snprintf(s + len, cap - len,
                                    "%s{\"name\":\"%s\",\"device_id\":%d,\"byte_size\":%llu}",
                                    len > 1 ? "," : "", n, r->device_id,
                                    (unsigned long long)r->byte_size);
        else
            len += (size_t)snprintf(s + len, cap - len,
                                    "%s{\"name\":\"%s\",\"key\":\"%s\",\"offset\":%llu,\"byte_size\":%llu}",
                                    len > 1 ? "," : "", n, k, (unsigned long long)r->offset,
                                    (unsigned long long)r->byte_size);
    }
    pthread_mutex_unlock(&rs->mu);
    snprintf(s + len, cap - len, "]");
    return s;
}
