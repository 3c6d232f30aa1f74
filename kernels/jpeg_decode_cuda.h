/* jpeg_decode_cuda.h — launcher of the hybrid JPEG decode kernels (jpeg_decode.cu), for the
 * engine (preprocess.cu). C++/CUDA only. */
#ifndef CLIPPREP_JPEG_DECODE_CUDA_H
#define CLIPPREP_JPEG_DECODE_CUDA_H

#include <cuda_runtime.h>

extern "C" {
#include "jpeg_blocks.h"
}

/* IDCT of every block of every plane into plane_buf, then upsampling + colour of every pixel
 * into rgb (device staging), on `stream`. guard[image] is OR-ed with 1 where a block trips the
 * guard; the caller zeroes it first. All pointers are device pointers. */
cudaError_t jh_cuda_launch(const jh_plane *planes, int n_planes, const jh_image *images,
                           int n_images, const int16_t *coefs, uint8_t *plane_buf, uint8_t *rgb,
                           int32_t *guard, cudaStream_t stream);

/* Whether the decode kernels have an image for the current device (cudaFuncGetAttributes). */
cudaError_t jh_cuda_check(void);

#endif
