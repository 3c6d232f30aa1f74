/* cuda_engine.h — the C interface to the CUDA side (preprocess.cu): device buffers allocated
 * once at start, a few slots (pinned host staging + device buffers + a stream each) so that
 * two or more batches are in flight, and one launch per pass per batch. */
#ifndef CLIPPREP_CUDA_ENGINE_H
#define CLIPPREP_CUDA_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
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
} cuda_engine_sizes;

/* Number of usable devices (0 when there is no driver or device); name of device 0. */
int cuda_device_count(char *name, size_t name_cap, char *err, size_t err_cap);

cuda_engine *cuda_engine_create(int device, const cuda_engine_sizes *sizes,
                                const normalize_table *tables, int n_tables, char *err,
                                size_t err_cap);
void cuda_engine_destroy(cuda_engine *e);

/* Pinned host buffers of a slot: decoders write pixels into staging; results appear in out. */
uint8_t *cuda_engine_staging(cuda_engine *e, int slot);
const uint8_t *cuda_engine_output(cuda_engine *e, int slot);

/* Queues H2D (pixels, descriptors, coefficients), both passes and D2H on the slot's stream. */
bool cuda_engine_launch(cuda_engine *e, int slot, const batch_layout *b, size_t staging_used,
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
