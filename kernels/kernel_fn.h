/* kernel_fn.h — one math, two launchers. Functions marked KERNEL_FN compile as host C for the
 * CPU executor and as CUDA device code for the GPU executor, so both run the same arithmetic. */
#ifndef CLIPPREP_KERNEL_FN_H
#define CLIPPREP_KERNEL_FN_H

#ifdef __CUDACC__
#define KERNEL_FN __host__ __device__ static inline
#else
#define KERNEL_FN static inline
#endif

#endif
