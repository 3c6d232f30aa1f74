// fault_kernel.cu — device-side helpers for tests/gpu/test_gpu_faults.c, for what a C test
// cannot do without nvcc: a kernel that loses the context (a write to an illegal address),
// raw device allocations and reads, a non-sticky error, and the device's scheduling flags.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

namespace {

__global__ void write_to_an_illegal_address(int *p) { *p = 1; }

} // namespace

// True when the kernel failed as it must (err: CUDA's message); the context is lost then.
extern "C" bool gpu_test_lose_context(int device, char *err, size_t cap)
{
    cudaStream_t s;
    if (cudaSetDevice(device) != cudaSuccess ||
        cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess)
        return false;
    write_to_an_illegal_address<<<1, 1, 0, s>>>((int *)(uintptr_t)0x10);
    cudaError_t e = cudaStreamSynchronize(s);
    snprintf(err, cap, "%s", cudaGetErrorString(e));
    return e != cudaSuccess;
}

// An allocation far larger than any GPU: fails with a non-sticky out-of-memory error.
extern "C" bool gpu_test_out_of_memory(int device, char *err, size_t cap)
{
    void *p = nullptr;
    cudaSetDevice(device);
    cudaError_t e = cudaMalloc(&p, (size_t)1 << 50);
    snprintf(err, cap, "%s", cudaGetErrorString(e));
    if (e == cudaSuccess)
        cudaFree(p);
    return e != cudaSuccess;
}

extern "C" void *gpu_test_malloc(int device, size_t bytes)
{
    void *p = nullptr;
    return cudaSetDevice(device) == cudaSuccess && cudaMalloc(&p, bytes) == cudaSuccess ? p
                                                                                         : nullptr;
}

extern "C" void gpu_test_free(void *p) { cudaFree(p); }

extern "C" bool gpu_test_read(void *host, const void *dev, size_t bytes)
{
    return cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost) == cudaSuccess;
}

// Whether the device's primary context waits with cudaDeviceScheduleBlockingSync.
extern "C" bool gpu_test_blocking_sync(int device)
{
    unsigned flags = 0;
    return cudaSetDevice(device) == cudaSuccess && cudaGetDeviceFlags(&flags) == cudaSuccess &&
           (flags & cudaDeviceScheduleMask) == cudaDeviceScheduleBlockingSync;
}
