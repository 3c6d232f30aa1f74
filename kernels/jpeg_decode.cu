// jpeg_decode.cu — the GPU half of the hybrid JPEG decode: the KERNEL_FN bodies of
// jpeg_blocks.h, one thread per 8x8 block (IDCT) and one per pixel (upsampling + colour +
// orientation). The host twin (jpeg_decode_host.c) runs the same bodies in the CPU tests, where
// they equal libjpeg-turbo byte for byte. Integer arithmetic only.
#include "jpeg_decode_cuda.h"

namespace {

constexpr int kThreads = 128;
constexpr int kCtasPerItem = 64; // grid-stride loops cover larger planes and images

__global__ void idct_blocks(const jh_plane *planes, const int16_t *coefs, uint8_t *plane_buf,
                            int32_t *guard)
{
    __shared__ jh_plane p; // the quant table is read by every thread: keep it on chip
    if (threadIdx.x == 0)
        p = planes[blockIdx.y];
    __syncthreads();
    int64_t total = (int64_t)p.wb * p.hb;
    for (int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; b < total;
         b += (int64_t)gridDim.x * blockDim.x)
        if (!jh_idct_thread(&p, coefs, plane_buf, b))
            atomicOr(&guard[p.image], 1);
}

__global__ void upsample_convert(const jh_image *images, const jh_plane *planes,
                                 const uint8_t *plane_buf, uint8_t *rgb)
{
    __shared__ jh_image m;
    if (threadIdx.x == 0)
        m = images[blockIdx.y];
    __syncthreads();
    int64_t total = jh_pixel_threads(&m);
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (int64_t)gridDim.x * blockDim.x)
        jh_pixel_thread(&m, planes, plane_buf, rgb, t);
}

} // namespace

cudaError_t jh_cuda_launch(const jh_plane *planes, int n_planes, const jh_image *images,
                           int n_images, const int16_t *coefs, uint8_t *plane_buf, uint8_t *rgb,
                           int32_t *guard, cudaStream_t stream)
{
    if (n_planes <= 0 || n_images <= 0)
        return cudaSuccess;
    idct_blocks<<<dim3(kCtasPerItem, (unsigned)n_planes), kThreads, 0, stream>>>(
        planes, coefs, plane_buf, guard);
    upsample_convert<<<dim3(kCtasPerItem * 4, (unsigned)n_images), kThreads * 2, 0, stream>>>(
        images, planes, plane_buf, rgb);
    return cudaGetLastError();
}

cudaError_t jh_cuda_check(void)
{
    cudaFuncAttributes a;
    cudaError_t e = cudaFuncGetAttributes(&a, idct_blocks);
    return e != cudaSuccess ? e : cudaFuncGetAttributes(&a, upsample_convert);
}
