// preprocess.cu — CUDA launchers for the batched resample + normalise. The arithmetic is the
// KERNEL_FN bodies of batch.h/resample.h, shared with the host twin the CPU tests run, so GPU
// output equals CPU output bit for bit. Weights come from the host (double, no FMA); the GPU
// only does integer multiply-adds and table lookups.
#include <cuda.h> // cuMemGetAddressRange (through cudaGetDriverEntryPointByVersion)
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <new>

extern "C" {
#include "batch.h"
#include "cuda_engine.h"
}
#include "jpeg_decode_cuda.h"

namespace {

struct slot {
    cudaStream_t stream = nullptr;
    uint8_t *h_staging = nullptr, *h_out = nullptr;
    image_desc *h_descs = nullptr;
    int32_t *h_coeffs = nullptr;
    uint8_t *d_staging = nullptr, *d_tmp = nullptr, *d_out = nullptr;
    image_desc *d_descs = nullptr;
    int32_t *d_coeffs = nullptr;
    size_t out_used = 0;
    // hybrid JPEG decode (allocated when sizes.coef_bytes > 0)
    int16_t *h_coefs = nullptr, *d_coefs = nullptr;
    uint8_t *d_planes = nullptr;
    jh_image *h_images = nullptr, *d_images = nullptr;
    jh_plane *h_jplanes = nullptr, *d_jplanes = nullptr;
    int32_t *h_guard = nullptr, *d_guard = nullptr;
};

constexpr int kThreads = 256;
constexpr int kBlocksPerImage = 128; // grid-stride loops cover larger images

__global__ void horizontal_pass(const image_desc *descs, const uint8_t *staging,
                                const int32_t *coeffs, uint8_t *tmp)
{
    const image_desc *d = &descs[blockIdx.y];
    int64_t total = batch_h_threads(d);
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x)
        batch_h_thread(d, staging, coeffs, tmp, t);
}

__global__ void vertical_pass_normalize(const image_desc *descs, const uint8_t *staging,
                                        const int32_t *coeffs, const uint8_t *tmp,
                                        const normalize_table *tables, uint8_t *out)
{
    const image_desc *d = &descs[blockIdx.y];
    int64_t total = batch_v_threads(d);
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x)
        batch_v_thread(d, staging, coeffs, tmp, tables, out, t);
}

bool report(cudaError_t e, const char *what, char *err, size_t cap)
{
    if (e == cudaSuccess)
        return true;
    if (err && cap)
        snprintf(err, cap, "%s: %s", what, cudaGetErrorString(e));
    return false;
}

} // namespace

struct cuda_engine {
    int device = 0;
    cuda_engine_sizes sizes{};
    int n_tables = 0;
    normalize_table *d_tables = nullptr;
    slot *slots = nullptr;
    cudaStream_t probe_stream = nullptr; // cuda_engine_healthy
    int32_t *d_probe = nullptr;
};

// Sticky errors leave the context unusable; everything else concerned one call.
static bool device_check_kernels(int device, char *err, size_t err_cap)
{
    cudaFuncAttributes a;
    cudaError_t e = cudaFuncGetAttributes(&a, horizontal_pass);
    if (e == cudaSuccess)
        e = cudaFuncGetAttributes(&a, vertical_pass_normalize);
    if (e == cudaSuccess)
        e = jh_cuda_check();
    if (e == cudaSuccess)
        return true;
    char name[160];
    cuda_device_name(device, name, sizeof name);
    snprintf(err, err_cap, "device %d (%s): the kernels cannot run there: %s (this build's "
             "CUDA_GENCODE has no code for it)", device, name, cudaGetErrorString(e));
    return false;
}

extern "C" int cuda_device_count(char *name, size_t name_cap, char *err, size_t err_cap)
{
    int n = 0;
    if (!report(cudaGetDeviceCount(&n), "cudaGetDeviceCount", err, err_cap))
        return 0;
    if (n > 0 && name && name_cap) {
        cudaDeviceProp prop;
        if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
            snprintf(name, name_cap, "%s (sm_%d%d)", prop.name, prop.major, prop.minor);
    }
    return n;
}

extern "C" void cuda_device_name(int device, char *name, size_t name_cap)
{
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, device) == cudaSuccess)
        snprintf(name, name_cap, "%s (sm_%d%d)", prop.name, prop.major, prop.minor);
    else
        snprintf(name, name_cap, "device %d", device);
}

extern "C" void cuda_engine_destroy(cuda_engine *e)
{
    if (!e)
        return;
    cudaSetDevice(e->device);
    if (e->probe_stream)
        cudaStreamDestroy(e->probe_stream);
    cudaFree(e->d_probe);
    for (int i = 0; e->slots && i < e->sizes.slots; i++) {
        slot &s = e->slots[i];
        if (s.stream)
            cudaStreamSynchronize(s.stream);
        cudaFreeHost(s.h_staging);
        cudaFreeHost(s.h_out);
        cudaFreeHost(s.h_descs);
        cudaFreeHost(s.h_coeffs);
        cudaFree(s.d_staging);
        cudaFree(s.d_tmp);
        cudaFree(s.d_out);
        cudaFree(s.d_descs);
        cudaFree(s.d_coeffs);
        cudaFreeHost(s.h_coefs);
        cudaFreeHost(s.h_images);
        cudaFreeHost(s.h_jplanes);
        cudaFreeHost(s.h_guard);
        cudaFree(s.d_coefs);
        cudaFree(s.d_planes);
        cudaFree(s.d_images);
        cudaFree(s.d_jplanes);
        cudaFree(s.d_guard);
        if (s.stream)
            cudaStreamDestroy(s.stream);
    }
    delete[] e->slots;
    cudaFree(e->d_tables);
    delete e;
}

extern "C" cuda_engine *cuda_engine_create(int device, const cuda_engine_sizes *sizes,
                                           const normalize_table *tables, int n_tables,
                                           char *err, size_t err_cap)
{
    cuda_engine *e = new (std::nothrow) cuda_engine;
    if (!e)
        return nullptr;
    e->device = device;
    e->sizes = *sizes;
    e->n_tables = n_tables;
    e->slots = new (std::nothrow) slot[sizes->slots];
    static const unsigned sync_flags[] = {cudaDeviceScheduleAuto, cudaDeviceScheduleSpin,
                                          cudaDeviceScheduleYield,
                                          cudaDeviceScheduleBlockingSync};
    unsigned flags = sync_flags[sizes->sync >= 0 && sizes->sync <= 3 ? sizes->sync : 0];
    // flags first: they apply when the context is created (the first allocation below)
    bool ok = e->slots && report(cudaSetDevice(device), "cudaSetDevice", err, err_cap) &&
              (sizes->sync == CUDA_SYNC_AUTO ||
               report(cudaSetDeviceFlags(flags), "cudaSetDeviceFlags", err, err_cap)) &&
              device_check_kernels(device, err, err_cap);
    size_t table_bytes = sizeof(normalize_table) * (size_t)n_tables;
    // the upload is complete before any slot stream (non-blocking: no implicit ordering with
    // the legacy stream) can run a kernel that reads the tables
    ok = ok && report(cudaMalloc(&e->d_tables, table_bytes), "cudaMalloc tables", err, err_cap) &&
         report(cudaMemcpy(e->d_tables, tables, table_bytes, cudaMemcpyHostToDevice),
                "copy tables", err, err_cap) &&
         report(cudaDeviceSynchronize(), "copy tables", err, err_cap) &&
         report(cudaStreamCreateWithFlags(&e->probe_stream, cudaStreamNonBlocking), "stream",
                err, err_cap) &&
         report(cudaMalloc(&e->d_probe, sizeof(int32_t)), "cudaMalloc probe", err, err_cap);
    for (int i = 0; ok && i < sizes->slots; i++) {
        slot &s = e->slots[i];
        ok = report(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "stream", err, err_cap) &&
             report(cudaHostAlloc(&s.h_staging, sizes->staging_bytes, cudaHostAllocDefault),
                    "pinned staging", err, err_cap) &&
             report(cudaHostAlloc(&s.h_out, sizes->out_bytes, cudaHostAllocDefault),
                    "pinned output", err, err_cap) &&
             report(cudaHostAlloc(&s.h_descs, sizeof(image_desc) * sizes->max_images,
                                  cudaHostAllocDefault), "pinned descriptors", err, err_cap) &&
             report(cudaHostAlloc(&s.h_coeffs, sizeof(int32_t) * sizes->coeff_ints,
                                  cudaHostAllocDefault), "pinned coefficients", err, err_cap) &&
             report(cudaMalloc(&s.d_staging, sizes->staging_bytes), "device staging", err, err_cap) &&
             report(cudaMalloc(&s.d_tmp, sizes->tmp_bytes), "device intermediate", err, err_cap) &&
             report(cudaMalloc(&s.d_out, sizes->out_bytes), "device output", err, err_cap) &&
             report(cudaMalloc(&s.d_descs, sizeof(image_desc) * sizes->max_images),
                    "device descriptors", err, err_cap) &&
             report(cudaMalloc(&s.d_coeffs, sizeof(int32_t) * sizes->coeff_ints),
                    "device coefficients", err, err_cap);
        if (ok && sizes->coef_bytes > 0) {
            size_t ni = (size_t)sizes->max_images, np = (size_t)sizes->max_planes;
            ok = report(cudaHostAlloc(&s.h_coefs, sizes->coef_bytes, cudaHostAllocDefault),
                        "pinned JPEG coefficients", err, err_cap) &&
                 report(cudaHostAlloc(&s.h_images, sizeof(jh_image) * ni, cudaHostAllocDefault),
                        "pinned JPEG descriptors", err, err_cap) &&
                 report(cudaHostAlloc(&s.h_jplanes, sizeof(jh_plane) * np, cudaHostAllocDefault),
                        "pinned JPEG planes", err, err_cap) &&
                 report(cudaHostAlloc(&s.h_guard, sizeof(int32_t) * ni, cudaHostAllocDefault),
                        "pinned guard flags", err, err_cap) &&
                 report(cudaMalloc(&s.d_coefs, sizes->coef_bytes), "device JPEG coefficients",
                        err, err_cap) &&
                 report(cudaMalloc(&s.d_planes, sizes->plane_bytes), "device JPEG planes", err,
                        err_cap) &&
                 report(cudaMalloc(&s.d_images, sizeof(jh_image) * ni), "device JPEG descriptors",
                        err, err_cap) &&
                 report(cudaMalloc(&s.d_jplanes, sizeof(jh_plane) * np), "device JPEG planes",
                        err, err_cap) &&
                 report(cudaMalloc(&s.d_guard, sizeof(int32_t) * ni), "device guard flags", err,
                        err_cap);
        }
    }
    if (!ok) {
        cuda_engine_destroy(e);
        return nullptr;
    }
    return e;
}

extern "C" uint8_t *cuda_engine_staging(cuda_engine *e, int i) { return e->slots[i].h_staging; }
extern "C" const uint8_t *cuda_engine_output(cuda_engine *e, int i) { return e->slots[i].h_out; }

extern "C" int16_t *cuda_engine_coefs(cuda_engine *e, int i) { return e->slots[i].h_coefs; }
extern "C" const int32_t *cuda_engine_guard_flags(cuda_engine *e, int i)
{
    return e->slots[i].h_guard;
}

// The hybrid decode's part of a launch: coefficients and descriptors up, guard flags zeroed,
// IDCT + upsampling into the device staging buffer, guard flags down.
static bool launch_hybrid(cuda_engine *e, slot &s, const hybrid_batch *h, char *err,
                          size_t err_cap)
{
    if (!s.h_coefs || !hybrid_batch_fits(&e->sizes, h)) {
        snprintf(err, err_cap, "hybrid JPEG batch exceeds the slot's preallocated buffers");
        return false;
    }
    std::memcpy(s.h_images, h->images, sizeof(jh_image) * h->n_images);
    std::memcpy(s.h_jplanes, h->planes, sizeof(jh_plane) * h->n_planes);
    return report(cudaMemcpyAsync(s.d_coefs, s.h_coefs, h->coef_bytes, cudaMemcpyHostToDevice,
                                  s.stream), "H2D JPEG coefficients", err, err_cap) &&
           report(cudaMemcpyAsync(s.d_images, s.h_images, sizeof(jh_image) * h->n_images,
                                  cudaMemcpyHostToDevice, s.stream), "H2D JPEG descriptors",
                  err, err_cap) &&
           report(cudaMemcpyAsync(s.d_jplanes, s.h_jplanes, sizeof(jh_plane) * h->n_planes,
                                  cudaMemcpyHostToDevice, s.stream), "H2D JPEG planes", err,
                  err_cap) &&
           report(cudaMemsetAsync(s.d_guard, 0, sizeof(int32_t) * h->n_images, s.stream),
                  "guard flags", err, err_cap) &&
           report(jh_cuda_launch(s.d_jplanes, h->n_planes, s.d_images, h->n_images, s.d_coefs,
                                 s.d_planes, s.d_staging, s.d_guard, s.stream),
                  "JPEG decode kernels", err, err_cap) &&
           report(cudaMemcpyAsync(s.h_guard, s.d_guard, sizeof(int32_t) * h->n_images,
                                  cudaMemcpyDeviceToHost, s.stream), "D2H guard flags", err,
                  err_cap);
}

extern "C" bool cuda_engine_launch(cuda_engine *e, int i, const batch_layout *b,
                                   const staging_range *uploads, int n_uploads,
                                   const hybrid_batch *hybrid, char *err, size_t err_cap)
{
    slot &s = e->slots[i];
    const cuda_engine_sizes &z = e->sizes;
    bool fits = batch_layout_fits(&z, b, e->n_tables);
    for (int k = 0; k < n_uploads; k++)
        fits = fits && uploads[k].off <= z.staging_bytes &&
               uploads[k].bytes <= z.staging_bytes - uploads[k].off;
    if (!fits) {
        snprintf(err, err_cap, "batch exceeds the slot's preallocated buffers");
        return false;
    }
    if (b->count == 0)
        return true;
    std::memcpy(s.h_descs, b->descs, sizeof(image_desc) * b->count);
    std::memcpy(s.h_coeffs, b->coeffs, sizeof(int32_t) * b->n_coeffs);
    s.out_used = b->out_bytes;
    bool ok = report(cudaSetDevice(e->device), "cudaSetDevice", err, err_cap);
    // an earlier call's non-sticky error was reported to its caller: it must not fail this
    // launch through the cudaGetLastError below
    cudaGetLastError();
    for (int k = 0; ok && k < n_uploads; k++)
        ok = report(cudaMemcpyAsync(s.d_staging + uploads[k].off, s.h_staging + uploads[k].off,
                                    uploads[k].bytes, cudaMemcpyHostToDevice, s.stream),
                    "H2D pixels", err, err_cap);
    if (ok && hybrid && hybrid->n_images > 0)
        ok = launch_hybrid(e, s, hybrid, err, err_cap);
    ok = ok &&
        report(cudaMemcpyAsync(s.d_descs, s.h_descs, sizeof(image_desc) * b->count,
                               cudaMemcpyHostToDevice, s.stream), "H2D descriptors", err, err_cap) &&
        report(cudaMemcpyAsync(s.d_coeffs, s.h_coeffs, sizeof(int32_t) * b->n_coeffs,
                               cudaMemcpyHostToDevice, s.stream), "H2D coefficients", err, err_cap);
    if (!ok)
        return false;
    dim3 grid(kBlocksPerImage, (unsigned)b->count);
    horizontal_pass<<<grid, kThreads, 0, s.stream>>>(s.d_descs, s.d_staging, s.d_coeffs, s.d_tmp);
    vertical_pass_normalize<<<grid, kThreads, 0, s.stream>>>(s.d_descs, s.d_staging, s.d_coeffs,
                                                             s.d_tmp, e->d_tables, s.d_out);
    return report(cudaGetLastError(), "kernel launch", err, err_cap) &&
           report(cudaMemcpyAsync(s.h_out, s.d_out, b->out_bytes, cudaMemcpyDeviceToHost, s.stream),
                  "D2H output", err, err_cap);
}

extern "C" bool cuda_engine_copy_out_to_device(cuda_engine *e, int i, void *dst, size_t out_off,
                                               size_t bytes, char *err, size_t err_cap)
{
    slot &s = e->slots[i];
    if (out_off > s.out_used || bytes > s.out_used - out_off) {
        snprintf(err, err_cap, "copy to the output pool: outside the batch's output");
        return false;
    }
    // cudaMemcpyDefault: with unified addressing this also crosses devices (multi-GPU)
    return report(cudaSetDevice(e->device), "cudaSetDevice", err, err_cap) &&
           report(cudaMemcpyAsync(dst, s.d_out + out_off, bytes, cudaMemcpyDefault, s.stream),
                  "copy to the output pool", err, err_cap);
}

extern "C" void *cuda_ipc_pool_create(int device, size_t bytes, unsigned char handle[64],
                                      char *err, size_t err_cap)
{
    void *p = nullptr;
    cudaIpcMemHandle_t h;
    static_assert(sizeof h == 64, "cudaIpcMemHandle_t is 64 bytes");
    if (!report(cudaSetDevice(device), "cudaSetDevice", err, err_cap) ||
        !report(cudaMalloc(&p, bytes), "cudaMalloc IPC pool", err, err_cap))
        return nullptr;
    if (!report(cudaIpcGetMemHandle(&h, p), "cudaIpcGetMemHandle", err, err_cap)) {
        cudaFree(p);
        return nullptr;
    }
    std::memcpy(handle, &h, 64);
    return p;
}

extern "C" void cuda_ipc_pool_free(int device, void *ptr)
{
    if (ptr && cudaSetDevice(device) == cudaSuccess)
        cudaFree(ptr);
}

extern "C" bool cuda_copy_to_direct(int device, void *dst, const void *src, size_t bytes,
                                    char *err, size_t err_cap)
{
    return report(cudaSetDevice(device), "cudaSetDevice", err, err_cap) &&
           report(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, cudaStreamPerThread),
                  "copy to the output pool", err, err_cap) &&
           report(cudaStreamSynchronize(cudaStreamPerThread), "copy to the output pool", err,
                  err_cap);
}

extern "C" void *cuda_pinned_alloc(size_t bytes)
{
    void *p = nullptr;
    return cudaHostAlloc(&p, bytes, cudaHostAllocPortable) == cudaSuccess ? p : nullptr;
}

extern "C" void cuda_pinned_free(void *ptr)
{
    if (ptr)
        cudaFreeHost(ptr);
}

extern "C" bool cuda_region_check(int device, void *ptr, uint64_t bytes, char *err,
                                  size_t err_cap)
{
    typedef CUresult (*range_fn)(CUdeviceptr *, size_t *, CUdeviceptr);
    void *fn = nullptr;
    cudaDriverEntryPointQueryResult found;
    if (!report(cudaSetDevice(device), "cudaSetDevice", err, err_cap) ||
        !report(cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &fn, 12000,
                                                 cudaEnableDefault, &found),
                "cuMemGetAddressRange", err, err_cap))
        return false;
    if (!fn || found != cudaDriverEntryPointSuccess) {
        snprintf(err, err_cap, "cuMemGetAddressRange is not available from this driver");
        return false;
    }
    CUdeviceptr base = 0;
    size_t size = 0;
    CUresult r = ((range_fn)fn)(&base, &size, (CUdeviceptr)(uintptr_t)ptr);
    if (r != CUDA_SUCCESS) {
        snprintf(err, err_cap, "cuMemGetAddressRange failed (CUresult %d)", (int)r);
        return false;
    }
    uint64_t avail = (uint64_t)(base + size - (CUdeviceptr)(uintptr_t)ptr);
    if (bytes > avail) {
        snprintf(err, err_cap, "byte_size %llu is larger than the allocation behind the handle "
                 "(%llu bytes)", (unsigned long long)bytes, (unsigned long long)avail);
        return false;
    }
    return true;
}

extern "C" bool cuda_peer_access(int device, int peer)
{
    int can = 0;
    if (device == peer)
        return true;
    if (cudaDeviceCanAccessPeer(&can, device, peer) != cudaSuccess || !can ||
        cudaSetDevice(device) != cudaSuccess)
        return false;
    cudaError_t e = cudaDeviceEnablePeerAccess(peer, 0);
    if (e == cudaErrorPeerAccessAlreadyEnabled) {
        cudaGetLastError(); // not an error here: clear it
        return true;
    }
    return e == cudaSuccess;
}

extern "C" void *cuda_ipc_open(int device, const unsigned char handle[64], char *err,
                               size_t err_cap)
{
    cudaIpcMemHandle_t h;
    std::memcpy(&h, handle, sizeof h);
    void *p = nullptr;
    if (!report(cudaSetDevice(device), "cudaSetDevice", err, err_cap) ||
        !report(cudaIpcOpenMemHandle(&p, h, cudaIpcMemLazyEnablePeerAccess),
                "cudaIpcOpenMemHandle", err, err_cap))
        return nullptr;
    return p;
}

extern "C" void cuda_ipc_close(int device, void *ptr)
{
    if (ptr && cudaSetDevice(device) == cudaSuccess)
        cudaIpcCloseMemHandle(ptr);
}

extern "C" bool cuda_host_register(void *ptr, size_t bytes, char *err, size_t err_cap)
{
    return report(cudaHostRegister(ptr, bytes, cudaHostRegisterPortable), "cudaHostRegister",
                  err, err_cap);
}

extern "C" void cuda_host_unregister(void *ptr)
{
    if (ptr)
        cudaHostUnregister(ptr);
}

extern "C" bool cuda_engine_wait(cuda_engine *e, int i, char *err, size_t err_cap)
{
    return report(cudaSetDevice(e->device), "cudaSetDevice", err, err_cap) &&
           report(cudaStreamSynchronize(e->slots[i].stream), "batch", err, err_cap);
}

extern "C" bool cuda_engine_healthy(cuda_engine *e, char *err, size_t err_cap)
{
    // A sticky error is returned again by every call; a non-sticky one is cleared by
    // cudaGetLastError and the probe (a memset and a wait on a stream of its own) succeeds.
    if (!report(cudaSetDevice(e->device), "cudaSetDevice", err, err_cap))
        return false;
    cudaGetLastError();
    return report(cudaMemsetAsync(e->d_probe, 0, sizeof(int32_t), e->probe_stream),
                  "device probe", err, err_cap) &&
           report(cudaStreamSynchronize(e->probe_stream), "device probe", err, err_cap);
}
