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
 * synchronously at launch. Built only with -DCLIPPREP_CUDA_EMULATION (never in the daemon). */
#ifdef CLIPPREP_CUDA_EMULATION

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_engine.h"

typedef struct {
    uint8_t *h_staging, *h_out, *d_staging, *d_tmp, *d_out, *d_planes;
    int16_t *h_coefs, *d_coefs;
    int32_t *h_guard;
} emu_slot;

struct cuda_engine {
    cuda_engine_sizes sizes;
    normalize_table *tables;
    emu_slot *slots;
};

int cuda_device_count(char *name, size_t name_cap, char *err, size_t err_cap)
{
    (void)err, (void)err_cap;
    if (name && name_cap)
        snprintf(name, name_cap, "host emulation of the CUDA engine (tests only)");
    return 1;
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
    }
    free(e->slots);
    free(e->tables);
    free(e);
}

cuda_engine *cuda_engine_create(int device, const cuda_engine_sizes *sizes,
                                const normalize_table *tables, int n_tables, char *err,
                                size_t err_cap)
{
    (void)device;
    cuda_engine *e = calloc(1, sizeof *e);
    bool ok = e != NULL;
    if (ok) {
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
        ok = s->h_staging && s->d_staging && s->h_out && s->d_out && s->d_tmp;
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
    bool fits = b->count <= z->max_images && b->n_coeffs <= z->coeff_ints &&
                b->tmp_bytes <= z->tmp_bytes && b->out_bytes <= z->out_bytes;
    for (int k = 0; k < n_uploads; k++)
        fits = fits && uploads[k].off <= z->staging_bytes &&
               uploads[k].bytes <= z->staging_bytes - uploads[k].off;
    if (!fits || (hybrid && hybrid->n_images > 0 && (!s->h_coefs || !hybrid_batch_fits(z, hybrid)))) {
        snprintf(err, err_cap, "batch exceeds the slot's preallocated buffers");
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
    (void)err, (void)err_cap;
    memcpy(dst, e->slots[slot].d_out + out_off, bytes);
    return true;
}

bool cuda_engine_wait(cuda_engine *e, int slot, char *err, size_t err_cap)
{
    (void)e, (void)slot, (void)err, (void)err_cap;
    return true;
}

void *cuda_ipc_pool_create(int device, size_t bytes, unsigned char handle[64], char *err,
                           size_t err_cap)
{
    (void)device, (void)bytes, (void)handle;
    snprintf(err, err_cap, "CUDA IPC is not available in the host emulation");
    return NULL;
}

void cuda_ipc_pool_free(int device, void *ptr) { (void)device, (void)ptr; }

bool cuda_copy_to_direct(int device, void *dst, const void *src, size_t bytes, char *err,
                         size_t err_cap)
{
    (void)device, (void)err, (void)err_cap;
    memcpy(dst, src, bytes);
    return true;
}

void *cuda_ipc_open(int device, const unsigned char handle[64], char *err, size_t err_cap)
{
    (void)device, (void)handle;
    snprintf(err, err_cap, "CUDA IPC is not available in the host emulation");
    return NULL;
}

void cuda_ipc_close(int device, void *ptr) { (void)device, (void)ptr; }

bool cuda_host_register(void *ptr, size_t bytes, char *err, size_t err_cap)
{
    (void)ptr, (void)bytes, (void)err, (void)err_cap;
    return true; /* host memory is "pinned": outputs for format=shm are copied in directly */
}

void cuda_host_unregister(void *ptr) { (void)ptr; }

#else
typedef int engine_emu_unused; /* ISO C: a translation unit must not be empty */
#endif
