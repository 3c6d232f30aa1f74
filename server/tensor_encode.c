/* tensor_encode.c — output format names and the JSON of a classic tensor. */
#include "tensor_encode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool output_format_parse(const char *s, output_format *f)
{
    if (!strcmp(s, "npy"))
        *f = OUT_NPY;
    else if (!strcmp(s, "raw"))
        *f = OUT_RAW;
    else if (!strcmp(s, "json"))
        *f = OUT_JSON;
    else if (!strcmp(s, "shm"))
        *f = OUT_SHM;
    else if (!strcmp(s, "cuda_ipc"))
        *f = OUT_CUDA_IPC;
    else if (!strcmp(s, "npz"))
        *f = OUT_NPZ;
    else
        return false;
    return true;
}

const char *output_format_content_type(output_format f)
{
    switch (f) {
    case OUT_NPY: return "application/x-npy";
    case OUT_RAW: return "application/octet-stream";
    case OUT_NPZ: return "application/zip";
    default: return "application/json";
    }
}

char *tensor_to_json(const char *profile, int n, int h, int w, tensor_dtype dtype,
                     const void *data, size_t *out_len)
{
    size_t count = (size_t)n * 3 * (size_t)h * (size_t)w;
    size_t cap = count * 17 + 512;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t o = (size_t)snprintf(s, cap,
                                "{\"profile\":\"%s\",\"shape\":[%d,3,%d,%d],\"dtype\":\"%s\",\"data\":[",
                                profile, n, h, w, tensor_dtype_name(dtype));
    for (size_t i = 0; i < count; i++) {
        float v = dtype == DTYPE_FLOAT16 ? half_to_float(((const uint16_t *)data)[i])
                                         : ((const float *)data)[i];
        /* 9 significant digits round-trip every float32 */
        o += (size_t)snprintf(s + o, cap - o, i ? ",%.9g" : "%.9g", (double)v);
    }
    o += (size_t)snprintf(s + o, cap - o, "]}");
    *out_len = o;
    return s;
}
