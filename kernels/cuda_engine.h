/* cuda_engine.h — the C interface to the CUDA side (preprocess.cu): device buffers allocated
 * once at start, a few slots (pinned host staging + device buffers + a stream each) so that
 * two or more batches are in flight, and one launch per pass per batch. */
#ifndef CLIPPREP_CUDA_ENGINE_H
#define CLIPPREP_CUDA_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "jpeg_blocks.h"
#include "normalize.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cuda_engine cuda_engine;

typedef struct {
    size_t staging_bytes;   /* decoded pixels per slot (pinned host + device) */
    size_t tmp_bytes;       /* horizontal-pass intermediate per slot (device) */
    size_t out_bytes;       /* output tensors per slot (pinned host + device) */
    size_t coeff_ints;      /* packed coefficients per slot */
    int max_images;         /* descriptors per slot */
    int slots;              /* batches in flight */
    size_t coef_bytes;      /* hybrid JPEG decode: coefficient blocks per slot (pinned host +
                               device); 0 = no hybrid decode */
    size_t plane_bytes;     /* hybrid JPEG decode: decoded sample planes per slot (device) */
    int max_planes;         /* hybrid JPEG decode: component descriptors per slot */
    int sync;               /* cuda_sync: how a waiting host thread waits (cuda_sync_mode) */
} cuda_engine_sizes;

/* cudaDeviceScheduleSpin / Yield / BlockingSync; AUTO leaves CUDA's own heuristic. */
typedef enum { CUDA_SYNC_AUTO = 0, CUDA_SYNC_SPIN, CUDA_SYNC_YIELD, CUDA_SYNC_BLOCKING } cuda_sync_mode;

/* A byte range of the staging buffer to upload (pixels decoded on the CPU). */
typedef struct {
    size_t off, bytes;
} staging_range;

/* The hybrid-decoded images of a batch: their coefficients are in cuda_engine_coefs(slot);
 * the GPU writes their RGB at images[i].rgb_off in the device staging buffer, where the
 * resample passes read it. */
typedef struct {
    const jh_image *images;
    int n_images;
    const jh_plane *planes;
    int n_planes;
    size_t coef_bytes;      /* bytes of coefficients to upload */
} hybrid_batch;

/* Whether every read and write the decode kernels will do for h stays inside a slot of
 * sizes z (checked before any launch: a layout bug must never corrupt device memory). */
static inline bool hybrid_batch_fits(const cuda_engine_sizes *z, const hybrid_batch *h)
{
    if (h->n_images > z->max_images || h->n_planes > z->max_planes || h->coef_bytes > z->coef_bytes)
        return false;
    for (int k = 0; k < h->n_planes; k++) {
        const jh_plane *p = &h->planes[k];
        uint64_t n = (uint64_t)p->wb * p->hb * 64;
        if (p->wb <= 0 || p->hb <= 0 || p->image < 0 || p->image >= h->n_images ||
            p->plane_off + n > z->plane_bytes || (p->coef_off + n) * 2 > h->coef_bytes)
            return false;
    }
    for (int k = 0; k < h->n_images; k++) {
        const jh_image *m = &h->images[k];
        if (m->ncomp < 1 || m->ncomp > JH_MAX_COMPONENTS || m->width <= 0 || m->height <= 0 ||
            m->rgb_off + (uint64_t)m->width * m->height * 3 > z->staging_bytes)
            return false;
        for (int c = 0; c < m->ncomp; c++)
            if (m->plane[c] < 0 || m->plane[c] >= h->n_planes)
                return false;
    }
    return true;
}

/* Whether every read and write the resample passes will do for b stays inside a slot of
 * sizes z: per image its pixels, intermediate, output slot, coefficient ranges and every
 * source index the coefficients name (the launch trusts nothing the host laid out). */
static inline bool batch_layout_fits(const cuda_engine_sizes *z, const batch_layout *b,
                                     int n_tables)
{
    if (b->count < 0 || b->count > z->max_images || b->n_coeffs > z->coeff_ints ||
        b->tmp_bytes > z->tmp_bytes || b->out_bytes > z->out_bytes)
        return false;
    const int32_t *co = b->coeffs;
    uint64_t nco = b->n_coeffs;
    for (int i = 0; i < b->count; i++) {
        const image_desc *d = &b->descs[i];
        if (d->src_w <= 0 || d->src_h <= 0 || d->out_w <= 0 || d->out_h <= 0 ||
            d->table < 0 || d->table >= n_tables || (d->dtype != 0 && d->dtype != 1))
            return false;
        uint64_t px = (uint64_t)d->src_w * (uint64_t)d->src_h * 3;
        uint64_t out = (uint64_t)d->out_w * (uint64_t)d->out_h * 3 * (d->dtype == 1 ? 2 : 4);
        if (d->src_off > z->staging_bytes || px > z->staging_bytes - d->src_off ||
            d->out_off > z->out_bytes || out > z->out_bytes - d->out_off)
            return false;
        if (d->x0 >= d->x1 || d->y0 >= d->y1)
            continue; /* all padding: the passes read nothing */
        if (d->x0 < 0 || d->y0 < 0)
            return false;
        uint64_t cols = (uint64_t)(d->x1 - d->x0), rows = (uint64_t)(d->y1 - d->y0);
        /* the rows the vertical pass (or the copy) may read: of the intermediate or the source */
        int32_t lo_row = d->need_h ? d->src_y0 : 0, hi_row = d->need_h ? d->src_y1 : d->src_h;
        if (d->need_h) {
            uint64_t tmp = (uint64_t)(d->src_y1 - d->src_y0) * cols * 3;
            if (d->src_y0 < 0 || d->src_y1 > d->src_h || d->src_y0 > d->src_y1 ||
                d->h_ksize <= 0 || d->tmp_off > z->tmp_bytes || tmp > z->tmp_bytes - d->tmp_off ||
                d->h_bounds > nco || 2 * cols > nco - d->h_bounds || d->h_k > nco ||
                cols * (uint64_t)d->h_ksize > nco - d->h_k)
                return false;
            for (uint64_t j = 0; j < cols; j++) {
                int32_t first = co[d->h_bounds + 2 * j], taps = co[d->h_bounds + 2 * j + 1];
                if (first < 0 || taps < 0 || taps > d->h_ksize || first > d->src_w - taps)
                    return false;
            }
        } else if (d->x1 > d->src_w) {
            return false;
        }
        if (d->need_v) {
            if (d->v_ksize <= 0 || d->v_bounds > nco || 2 * rows > nco - d->v_bounds ||
                d->v_k > nco || rows * (uint64_t)d->v_ksize > nco - d->v_k)
                return false;
            for (uint64_t j = 0; j < rows; j++) {
                int32_t first = co[d->v_bounds + 2 * j], taps = co[d->v_bounds + 2 * j + 1];
                if (first < lo_row || taps < 0 || taps > d->v_ksize || first > hi_row - taps)
                    return false;
            }
        } else if (d->y0 < lo_row || d->y1 > hi_row) {
            return false;
        }
    }
    return true;
}

/* Number of usable devices (0 when there is no driver or device); name of device 0. */
int cuda_device_count(char *name, size_t name_cap, char *err, size_t err_cap);
/* "NVIDIA H200 (sm_90)" for one device. */
void cuda_device_name(int device, char *name, size_t name_cap);

/* Allocates a slot's buffers and streams on `device`, uploads the normalisation tables and
 * checks that every kernel has an image for this GPU (cudaFuncGetAttributes: modules load
 * lazily, so a missing sm_XY would otherwise first fail on a batch). */
cuda_engine *cuda_engine_create(int device, const cuda_engine_sizes *sizes,
                                const normalize_table *tables, int n_tables, char *err,
                                size_t err_cap);
void cuda_engine_destroy(cuda_engine *e);

/* Pinned host buffers of a slot: decoders write pixels into staging; results appear in out. */
uint8_t *cuda_engine_staging(cuda_engine *e, int slot);
const uint8_t *cuda_engine_output(cuda_engine *e, int slot);

/* Pinned coefficient buffer of a slot (hybrid decode; NULL when coef_bytes is 0), and after
 * cuda_engine_wait the per-image IDCT guard flags of the slot's hybrid images (nonzero: the
 * image's RGB is unspecified; decode it on the CPU). */
int16_t *cuda_engine_coefs(cuda_engine *e, int slot);
const int32_t *cuda_engine_guard_flags(cuda_engine *e, int slot);

/* Queues on the slot's stream: H2D of the uploads (CPU-decoded pixels), the hybrid decode of
 * `hybrid` (may be NULL or empty), H2D descriptors and coefficients, both resample passes and
 * the D2H of the outputs. */
bool cuda_engine_launch(cuda_engine *e, int slot, const batch_layout *b,
                        const staging_range *uploads, int n_uploads, const hybrid_batch *hybrid,
                        char *err, size_t err_cap);
/* After a launch, also copies one image's output (out_off/bytes within the batch output)
 * straight to its destination — device memory (the CUDA IPC pool) or pinned host memory (the
 * registered shm pool) — on the slot's stream. */
bool cuda_engine_copy_out_to_device(cuda_engine *e, int slot, void *dst, size_t out_off,
                                    size_t bytes, char *err, size_t err_cap);

/* A device buffer exported once for other processes (format=cuda_ipc): its 64-byte
 * cudaIpcMemHandle_t goes to clients, who open it with cudaIpcOpenMemHandle. */
void *cuda_ipc_pool_create(int device, size_t bytes, unsigned char handle[64], char *err,
                           size_t err_cap);
void cuda_ipc_pool_free(int device, void *ptr);
/* Copy from host memory (pinned: cuda_pinned_alloc) to a direct destination in device memory
 * (the rare CPU-path image of a format=cuda_ipc or device-region request), complete when it
 * returns (an async copy and a stream wait: a pageable cudaMemcpy may still be in flight). */
bool cuda_copy_to_direct(int device, void *dst, const void *src, size_t bytes, char *err,
                         size_t err_cap);

/* Opens a client's exported device buffer (Triton's v2/cudasharedmemory register). */
void *cuda_ipc_open(int device, const unsigned char handle[64], char *err, size_t err_cap);
void cuda_ipc_close(int device, void *ptr);

/* Registers host memory (the shm pool) as pinned so that D2H copies land in it directly. */
bool cuda_host_register(void *ptr, size_t bytes, char *err, size_t err_cap);
void cuda_host_unregister(void *ptr);

/* Waits for the slot's work; false (with the CUDA error) if anything failed. Whatever a
 * failed launch, copy or wait leaves in the slot's output or a direct destination is
 * unspecified: the caller must not hand it to anyone. */
bool cuda_engine_wait(cuda_engine *e, int slot, char *err, size_t err_cap);

/* After a failed call: whether the device still works (the error concerned that call only)
 * or its context is lost (a sticky error: every later call fails; only a new process
 * recovers). Probes the device with a small copy; err gets the reason when false. */
bool cuda_engine_healthy(cuda_engine *e, char *err, size_t err_cap);

/* Pinned host memory for the few host-to-direct copies (cuda_copy_to_direct). */
void *cuda_pinned_alloc(size_t bytes);
void cuda_pinned_free(void *ptr);

/* Whether [ptr, ptr + bytes) lies inside one device allocation (cuMemGetAddressRange), for
 * client CUDA regions whose byte_size comes from a request body. */
bool cuda_region_check(int device, void *ptr, uint64_t bytes, char *err, size_t err_cap);

/* Lets `device` access `peer`'s memory directly (D2D copies into the format=cuda_ipc pool of
 * another GPU); false where the hardware cannot (copies then go through the host). */
bool cuda_peer_access(int device, int peer);

#ifdef __cplusplus
}
#endif

#endif
