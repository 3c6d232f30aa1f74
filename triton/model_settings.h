/* model_settings.h — what a clip_preprocess model's config.pbtxt asks of the backend, read from
 * the model configuration Triton hands over as JSON: the `parameters` (profile, reference,
 * exif, mode, profiles_dir, max_pixels, max_scans, threads, staging_bytes) and the tensor
 * contract (input `images` TYPE_STRING dims [1], output `pixel_values` TYPE_FP32 | TYPE_FP16
 * dims [3, H, W], max_batch_size > 0). Every refusal names the key and the accepted values. */
#ifndef CLIPPREP_TRITON_MODEL_SETTINGS_H
#define CLIPPREP_TRITON_MODEL_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include "../kernels/preprocess.h"

typedef struct {
    char profile[64];
    char reference[32];  /* "" = the profile's default_reference (else transformers4) */
    int exif;            /* -1: the profile's default; 0 or 1 */
    int fast;            /* -1: the profile's default; 1: mode "fast" (JPEG DCT-domain
                            downscaling first, not exact); 0: mode "exact" */
    char profiles_dir[1024]; /* empty: profiles/ next to the backend library */
    long long max_pixels;
    int max_scans;
    int threads;         /* worker threads per instance; 0 = one per online core */
    long long staging_bytes; /* KIND_GPU: the CUDA executor's decoded-pixel staging (pinned
                                host + device, split over its 2 slots); 0 = the daemon's
                                default (512 MiB). Larger images take the CPU path. */
    tensor_dtype dtype;  /* of pixel_values */
    int max_batch_size;
    int out_h, out_w;    /* pixel_values dims [3, out_h, out_w] */
} model_settings;

/* Parses Triton's model configuration JSON. On failure returns false with a message in err. */
bool model_settings_parse(const char *json, size_t len, model_settings *s, char *err,
                          size_t err_len);

#endif
