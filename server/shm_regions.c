/* shm_regions.c — the registry of client shared-memory regions. */
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
    uint8_t *map;
    size_t map_len;
    int device_id;                   /* device regions: the GPU */
    void (*close_device)(int, void *); /* set for device regions (CUDA IPC) */
    atomic_int refs; /* the registry's, plus one per user */
    struct shm_region *next;
};

struct shm_regions {
    pthread_mutex_t mu;
    shm_region *head;
};

shm_regions *shm_regions_create(void)
{
    shm_regions *rs = calloc(1, sizeof *rs);
    if (rs)
        pthread_mutex_init(&rs->mu, NULL);
    return rs;
}

void shm_region_put(shm_region *r)
{
    if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
        if (r->close_device)
            r->close_device(r->device_id, r->map);
        else
            munmap(r->map, r->map_len);
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
    int fd = shm_open(key, O_RDWR, 0);
    if (fd < 0)
        return cp_fail(err, CP_ERR_BAD_REQUEST, "unable to open shared memory region '%s': %s",
                       key, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size < offset + byte_size || offset + byte_size < offset) {
        close(fd);
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "shared memory region '%s' holds %lld bytes, less than offset + byte_size",
                       key, (long long)st.st_size);
    }
    shm_region *r = calloc(1, sizeof *r);
    if (!r) {
        close(fd);
        return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
    }
    r->map_len = (size_t)(offset + byte_size);
    r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (r->map == MAP_FAILED) {
        free(r);
        return cp_fail(err, CP_ERR_BAD_REQUEST, "unable to map '%s': %s", key, strerror(errno));
    }
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
        *ptr = r->map + r->offset;
        *byte_size = r->byte_size;
    }
    pthread_mutex_unlock(&rs->mu);
    return r;
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
