/* engine_emu.c — a host emulation of the CUDA engine (cuda_engine.h) for tests on machines
 * without a GPU (`make test-emu`): the CUDA executor (server/exec_cuda.c) runs unchanged on top
 * of it, so its batching, staging offsets, upload ranges, hybrid JPEG decode routing, guard
 * fallback and direct output copies are exercised end to end by the HTTP and parity suites.
 *
 * Like a GPU it keeps "device" buffers apart from the pinned "host" ones: only what the engine
 * copies (the upload ranges, coefficients, descriptors) reaches the device side, and the device
 * staging buffer is poisoned before every launch, so a pixel that the executor forgot to upload
 * or that the hybrid decode did not write shows up as a wrong tensor. The "kernels" are the
 * same KERNEL_FN bodies the CUDA kernels run (batch_run_host, jh_idct_host, jh_pixels_host),
 * synchronously at launch. Built only with -DCLIPPREP_CUDA_EMULATION (never in the daemon).
 *
 * Fault injection (emu_faults.h, CLIPPREP_EMU_FAULTS): a failed launch, wait or copy leaves
 * poison (0x7F bytes: a huge float32, a float16 NaN) where its results would have been — the
 * slot's output, the direct destinations of the batch — so an executor that answered with
 * them anyway is caught by any comparison with the reference.
 *
 * CUDA IPC: "device memory" exported to other processes is a POSIX shm object here; its
 * 64-byte handle holds "clipprep-emu:" and the object's name, so that tests can read a
 * format=cuda_ipc answer and register it back as a v2 CUDA region, whose byte_size is then
 * checked against the object's size (the real engine asks cuMemGetAddressRange). */
#ifdef CLIPPREP_CUDA_EMULATION

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cuda_engine.h"
#include "emu_faults.h"

#define POISON 0x7F

typedef struct {
    void *dst;
    size_t bytes;
} emu_direct;

typedef struct {
    uint8_t *h_staging, *h_out, *d_staging, *d_tmp, *d_out, *d_planes;
    int16_t *h_coefs, *d_coefs;
    int32_t *h_guard;
    size_t out_used;          /* output bytes of the last launch */
    emu_direct *direct;       /* the direct copies since the last launch */
    int n_direct;
} emu_slot;

struct cuda_engine {
    int device;
    cuda_engine_sizes sizes;
    normalize_table *tables;
    int n_tables;
    emu_slot *slots;
};

int cuda_device_count(char *name, size_t name_cap, char *err, size_t err_cap)
{
    if (!emu_faults_init(err, err_cap))
        return 0;
    if (name && name_cap)
        cuda_device_name(0, name, name_cap);
    return emu_device_count();
}

void cuda_device_name(int device, char *name, size_t name_cap)
{
    (void)device;
    snprintf(name, name_cap, "host emulation of the CUDA engine (tests only)");
}

/* What a failed batch leaves behind: nothing of it may reach a client. */
static void poison_slot(emu_slot *s)
{
    memset(s->h_out, POISON, s->out_used);
    for (int k = 0; k < s->n_direct; k++)
        memset(s->direct[k].dst, POISON, s->direct[k].bytes);
}

void cuda_engine_destroy(cuda_engine *e)
{
    if (!e)
        return;
    for (int i = 0; e->slots && i < e->sizes.slots; i++) {
        emu_slot *s = &e->slots[i];
        free(s->h_staging);
        free(s->h_out);
        free(s->d_staging);
        free(s->d_tmp);
        free(s->d_out);
        free(s->d_planes);
        free(s->h_coefs);
        free(s->d_coefs);
        free(s->h_guard);
        free(s->direct);
    }
    free(e->slots);
    free(e->tables);
    free(e);
}

cuda_engine *cuda_engine_create(int device, const cuda_engine_sizes *sizes,
                                const normalize_table *tables, int n_tables, char *err,
                                size_t err_cap)
{
    if (emu_fault(device, EMU_FAULT_CHECK, err, err_cap)) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", err);
        snprintf(err, err_cap, "device %d (host emulation): the kernels cannot run there: %s",
                 device, msg);
        return NULL;
    }
    cuda_engine *e = calloc(1, sizeof *e);
    bool ok = e != NULL;
    if (ok) {
        e->device = device;
        e->n_tables = n_tables;
        e->sizes = *sizes;
        e->slots = calloc((size_t)sizes->slots, sizeof *e->slots);
        e->tables = malloc(sizeof *tables * (size_t)n_tables);
        ok = e->slots && e->tables;
    }
    if (ok)
        memcpy(e->tables, tables, sizeof *tables * (size_t)n_tables);
    for (int i = 0; ok && i < sizes->slots; i++) {
        emu_slot *s = &e->slots[i];
        s->h_staging = malloc(sizes->staging_bytes);
        s->d_staging = malloc(sizes->staging_bytes);
        s->h_out = malloc(sizes->out_bytes);
        s->d_out = malloc(sizes->out_bytes);
        s->d_tmp = malloc(sizes->tmp_bytes ? sizes->tmp_bytes : 1);
        s->direct = calloc((size_t)sizes->max_images, sizeof *s->direct);
        ok = s->h_staging && s->d_staging && s->h_out && s->d_out && s->d_tmp && s->direct;
        if (ok && sizes->coef_bytes > 0) {
            s->h_coefs = malloc(sizes->coef_bytes);
            s->d_coefs = malloc(sizes->coef_bytes);
            s->d_planes = malloc(sizes->plane_bytes);
            s->h_guard = calloc((size_t)sizes->max_images, sizeof *s->h_guard);
            ok = s->h_coefs && s->d_coefs && s->d_planes && s->h_guard;
        }
    }
    if (!ok) {
        snprintf(err, err_cap, "host emulation: out of memory");
        cuda_engine_destroy(e);
        return NULL;
    }
    return e;
}

uint8_t *cuda_engine_staging(cuda_engine *e, int slot) { return e->slots[slot].h_staging; }
const uint8_t *cuda_engine_output(cuda_engine *e, int slot) { return e->slots[slot].h_out; }
int16_t *cuda_engine_coefs(cuda_engine *e, int slot) { return e->slots[slot].h_coefs; }
const int32_t *cuda_engine_guard_flags(cuda_engine *e, int slot)
{
    return e->slots[slot].h_guard;
}

bool cuda_engine_launch(cuda_engine *e, int slot, const batch_layout *b,
                        const staging_range *uploads, int n_uploads, const hybrid_batch *hybrid,
                        char *err, size_t err_cap)
{
    emu_slot *s = &e->slots[slot];
    const cuda_engine_sizes *z = &e->sizes;
    s->n_direct = 0;
    bool fits = batch_layout_fits(z, b, e->n_tables);
    for (int k = 0; k < n_uploads; k++)
        fits = fits && uploads[k].off <= z->staging_bytes &&
               uploads[k].bytes <= z->staging_bytes - uploads[k].off;
    if (!fits || (hybrid && hybrid->n_images > 0 && (!s->h_coefs || !hybrid_batch_fits(z, hybrid)))) {
        snprintf(err, err_cap, "batch exceeds the slot's preallocated buffers");
        return false;
    }
    s->out_used = b->out_bytes;
    if (emu_fault(e->device, EMU_FAULT_LAUNCH, err, err_cap)) {
        memset(s->d_out, POISON, b->out_bytes);
        poison_slot(s);
        return false;
    }
    if (b->count == 0)
        return true;
    size_t used = 0; /* device memory holds no host pixels: poison what the passes read */
    for (int k = 0; k < b->count; k++) {
        const image_desc *d = &b->descs[k];
        size_t end = d->src_off + (size_t)d->src_w * d->src_h * 3;
        used = end > used ? end : used;
    }
    memset(s->d_staging, 0xA5, used < z->staging_bytes ? used : z->staging_bytes);
    for (int k = 0; k < n_uploads; k++)
        memcpy(s->d_staging + uploads[k].off, s->h_staging + uploads[k].off, uploads[k].bytes);
    if (hybrid && hybrid->n_images > 0) {
        memcpy(s->d_coefs, s->h_coefs, hybrid->coef_bytes);
        memset(s->h_guard, 0, sizeof *s->h_guard * (size_t)hybrid->n_images);
        jh_idct_host(hybrid->planes, hybrid->n_planes, s->d_coefs, s->d_planes, s->h_guard);
        jh_pixels_host(hybrid->images, hybrid->n_images, hybrid->planes, s->d_planes,
                       s->d_staging);
    }
    batch_run_host(b, s->d_staging, s->d_tmp, e->tables, s->d_out);
    memcpy(s->h_out, s->d_out, b->out_bytes);
    return true;
}

bool cuda_engine_copy_out_to_device(cuda_engine *e, int slot, void *dst, size_t out_off,
                                    size_t bytes, char *err, size_t err_cap)
{
    emu_slot *s = &e->slots[slot];
    if (out_off > s->out_used || bytes > s->out_used - out_off) {
        snprintf(err, err_cap, "copy to the output pool: outside the batch's output");
        return false;
    }
    if (emu_fault(e->device, EMU_FAULT_COPY, err, err_cap)) {
        memset(dst, POISON, bytes);
        return false;
    }
    memcpy(dst, s->d_out + out_off, bytes);
    if (s->n_direct < e->sizes.max_images)
        s->direct[s->n_direct++] = (emu_direct){dst, bytes};
    return true;
}

bool cuda_engine_wait(cuda_engine *e, int slot, char *err, size_t err_cap)
{
    emu_slot *s = &e->slots[slot];
    bool failed = emu_fault(e->device, EMU_FAULT_WAIT, err, err_cap);
    if (failed)
        poison_slot(s);
    s->n_direct = 0;
    return !failed;
}

bool cuda_engine_healthy(cuda_engine *e, char *err, size_t err_cap)
{
    if (!emu_device_lost(e->device))
        return true;
    snprintf(err, err_cap, "device probe: an illegal memory access was encountered (emulated: "
             "device %d lost)", e->device);
    return false;
}

void *cuda_pinned_alloc(size_t bytes) { return malloc(bytes); }
void cuda_pinned_free(void *ptr) { free(ptr); }

bool cuda_peer_access(int device, int peer)
{
    (void)device, (void)peer;
    return true;
}

#define IPC_PREFIX "clipprep-emu:"
#define MAX_MAPS 64

/* The emulated IPC mappings: pools this process exported and regions it opened. */
static struct {
    void *ptr;
    size_t len;
    char name[48];   /* set for exported pools: unlinked when freed */
} maps[MAX_MAPS];
static pthread_mutex_t maps_mu = PTHREAD_MUTEX_INITIALIZER;

static void maps_add(void *ptr, size_t len, const char *name)
{
    pthread_mutex_lock(&maps_mu);
    for (int i = 0; i < MAX_MAPS; i++)
        if (!maps[i].ptr) {
            maps[i].ptr = ptr;
            maps[i].len = len;
            snprintf(maps[i].name, sizeof maps[i].name, "%s", name ? name : "");
            break;
        }
    pthread_mutex_unlock(&maps_mu);
}

/* Unmaps ptr (and unlinks an exported pool's object). */
static void maps_remove(void *ptr)
{
    pthread_mutex_lock(&maps_mu);
    for (int i = 0; ptr && i < MAX_MAPS; i++)
        if (maps[i].ptr == ptr) {
            munmap(ptr, maps[i].len);
            if (maps[i].name[0])
                shm_unlink(maps[i].name);
            maps[i].ptr = NULL;
        }
    pthread_mutex_unlock(&maps_mu);
}

void *cuda_ipc_pool_create(int device, size_t bytes, unsigned char handle[64], char *err,
                           size_t err_cap)
{
    (void)device;
    static int counter;
    char name[48];
    snprintf(name, sizeof name, "/clipprep-emu-ipc-%d-%d", (int)getpid(), counter++);
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        snprintf(err, err_cap, "emulated IPC pool: shm_open %s failed", name);
        return NULL;
    }
    void *p = ftruncate(fd, (off_t)bytes) == 0
                  ? mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                  : MAP_FAILED;
    close(fd);
    if (p == MAP_FAILED) {
        shm_unlink(name);
        snprintf(err, err_cap, "emulated IPC pool: cannot map %zu bytes", bytes);
        return NULL;
    }
    memset(handle, 0, 64);
    snprintf((char *)handle, 64, "%s%s", IPC_PREFIX, name);
    maps_add(p, bytes, name);
    return p;
}

void cuda_ipc_pool_free(int device, void *ptr)
{
    (void)device;
    maps_remove(ptr);
}

bool cuda_copy_to_direct(int device, void *dst, const void *src, size_t bytes, char *err,
                         size_t err_cap)
{
    if (emu_fault(device, EMU_FAULT_DIRECT, err, err_cap)) {
        memset(dst, POISON, bytes);
        return false;
    }
    memcpy(dst, src, bytes);
    return true;
}

void *cuda_ipc_open(int device, const unsigned char handle[64], char *err, size_t err_cap)
{
    (void)device;
    char h[65];
    memcpy(h, handle, 64);
    h[64] = 0;
    if (strncmp(h, IPC_PREFIX, strlen(IPC_PREFIX))) {
        snprintf(err, err_cap, "invalid argument (not a handle of the host emulation)");
        return NULL;
    }
    const char *name = h + strlen(IPC_PREFIX);
    int fd = shm_open(name, O_RDWR, 0);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0) {
        if (fd >= 0)
            close(fd);
        snprintf(err, err_cap, "invalid argument (no emulated allocation %.40s)", name);
        return NULL;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, err_cap, "cannot map the emulated allocation");
        return NULL;
    }
    maps_add(p, (size_t)st.st_size, NULL);
    return p;
}

void cuda_ipc_close(int device, void *ptr)
{
    (void)device;
    maps_remove(ptr);
}

bool cuda_host_register(void *ptr, size_t bytes, char *err, size_t err_cap)
{
    (void)ptr, (void)bytes, (void)err, (void)err_cap;
    return true; /* host memory is "pinned": outputs for format=shm are copied in directly */
}

void cuda_host_unregister(void *ptr) { (void)ptr; }

bool cuda_region_check(int device, void *ptr, uint64_t bytes, char *err, size_t err_cap)
{
    (void)device;
    size_t avail = 0;
    bool found = false;
    pthread_mutex_lock(&maps_mu);
    for (int i = 0; i < MAX_MAPS; i++)
        if (maps[i].ptr && (uint8_t *)ptr >= (uint8_t *)maps[i].ptr &&
            (uint8_t *)ptr < (uint8_t *)maps[i].ptr + maps[i].len) {
            avail = maps[i].len - (size_t)((uint8_t *)ptr - (uint8_t *)maps[i].ptr);
            found = true;
        }
    pthread_mutex_unlock(&maps_mu);
    if (!found) {
        snprintf(err, err_cap, "cuMemGetAddressRange failed (not an emulated allocation)");
        return false;
    }
    if (bytes > avail) {
        snprintf(err, err_cap, "byte_size %llu is larger than the allocation behind the handle "
                 "(%zu bytes)", (unsigned long long)bytes, avail);
        return false;
    }
    return true;
}

#else
typedef int engine_emu_unused; /* ISO C: a translation unit must not be empty */
#endif
