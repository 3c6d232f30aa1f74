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
} cuda_engine_sizes;

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

/* Number of usable devices (0 when there is no driver or device); name of device 0. */
int cuda_device_count(char *name, size_t name_cap, char *err, size_t err_cap);

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
/* Synchronous copy from host memory to a direct destination (device or pinned host memory:
 * the rare CPU-path image of a format=cuda_ipc or pinned format=shm request). */
bool cuda_copy_to_direct(int device, void *dst, const void *src, size_t bytes, char *err,
                         size_t err_cap);

/* Opens a client's exported device buffer (Triton's v2/cudasharedmemory register). */
void *cuda_ipc_open(int device, const unsigned char handle[64], char *err, size_t err_cap);
void cuda_ipc_close(int device, void *ptr);

/* Registers host memory (the shm pool) as pinned so that D2H copies land in it directly. */
bool cuda_host_register(void *ptr, size_t bytes, char *err, size_t err_cap);
void cuda_host_unregister(void *ptr);

/* Waits for the slot's work; false (with the CUDA error) if anything failed. */
bool cuda_engine_wait(cuda_engine *e, int slot, char *err, size_t err_cap);

#ifdef __cplusplus
}
#endif

#endif
