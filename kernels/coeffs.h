/* coeffs.h — Pillow's resampling coefficients for one axis (spec A.2–A.4), computed on the
 * host in IEEE double without FMA contraction (this file's .c is built -ffp-contract=off),
 * converted to 22-bit fixed point. Both executors (CPU loops, CUDA kernels) read these tables. */
#ifndef CLIPPREP_COEFFS_H
#define CLIPPREP_COEFFS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { FILTER_BICUBIC = 0, FILTER_BILINEAR } resample_filter;

/* Whose weights: Pillow's (22-bit fixed point, spec A.4) or torchvision's antialiased uint8
 * resize (PyTorch UpSampleKernel: int16 weights whose precision is chosen per axis from the
 * largest weight). Torchvision's weights are stored shifted up to 22 bits, which leaves every
 * sum, bias and shift of the kernels exactly the same: (sum(px*w) + 2^(p-1)) >> p equals
 * (sum(px*(w<<(22-p))) + 2^21) >> 22 for p <= 22. So one set of kernel bodies serves both. */
typedef enum { COEFF_PILLOW = 0, COEFF_TORCHVISION } coeff_kind;

#define RESAMPLE_PRECISION_BITS 22

/* Coefficients for output indices [first, first+count) of a resize n_in -> n_out along one
 * axis, box = whole axis. Output j (0-based within the kept window) reads source samples
 * bounds[2j] .. bounds[2j]+bounds[2j+1]-1 with weights k[j*ksize ..]. */
typedef struct {
    int n_in, n_out;     /* the full resize */
    int first, count;    /* the kept window of outputs */
    int ksize;           /* stride of k */
    coeff_kind kind;
    int *bounds;         /* 2*count ints: lo, taps */
    int32_t *k;          /* count*ksize fixed-point weights (unused taps 0) */
    int borrowed;        /* 1 + cache slot when shared from the per-thread cache (freeing it
                            releases the reference), 0 when owned */
} axis_coeffs;

const char *resample_filter_name(resample_filter f); /* "bicubic" | "bilinear" */
bool resample_filter_parse(const char *name, resample_filter *f);

/* Pillow's normalised double weights of output i (precompute_coeffs before fixed point; the
 * 16-bit and float resamplers use them as they are): returns the tap count, w needs
 * axis_pillow_ksize() doubles. */
int axis_pillow_ksize(int n_in, int n_out, resample_filter filter);
int axis_pillow_weights(int n_in, int n_out, int i, resample_filter filter, int *lo, double *w);

/* Returns false only on allocation failure or invalid sizes. */
bool axis_coeffs_build(axis_coeffs *c, int n_in, int n_out, int first, int count,
                       resample_filter filter);
bool axis_coeffs_build_kind(axis_coeffs *c, int n_in, int n_out, int first, int count,
                            resample_filter filter, coeff_kind kind);
void axis_coeffs_free(axis_coeffs *c);

/* Like axis_coeffs_build, from a small per-thread cache keyed by every argument: images of the
 * same size and profile share their tables. Free the result with axis_coeffs_free on the same
 * thread (it releases the shared entry). */
bool axis_coeffs_cached(axis_coeffs *c, int n_in, int n_out, int first, int count,
                        resample_filter filter);
bool axis_coeffs_cached_kind(axis_coeffs *c, int n_in, int n_out, int first, int count,
                             resample_filter filter, coeff_kind kind);

/* Frees the calling thread's unreferenced cache entries (call before a worker thread exits). */
void axis_coeffs_cache_clear(void);

/* Source range [lo, hi) that outputs [first, first+count) read. */
void axis_coeffs_source_range(const axis_coeffs *c, int *lo, int *hi);

#endif
