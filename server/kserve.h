/* kserve.h — the KServe v2 / Triton HTTP inference protocol, parsing and formatting only
 * (no I/O): an infer request (JSON, or JSON header + binary tensor data per the binary tensor
 * data extension) into a list of encoded images and output options; the JSON of the answers.
 * The daemon serves each profile as a model named after it: input "images" (BYTES, shape [N],
 * one encoded image per element), output "pixel_values" (FP32 or FP16, shape [N,3,H,W]). */
#ifndef CLIPPREP_KSERVE_H
#define CLIPPREP_KSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define KSERVE_MAX_NAME 128

typedef struct {
    const uint8_t *data; /* points into the request body (binary section) or into `owned` */
    size_t len;
} kserve_image;

typedef struct kserve_request {
    char id[KSERVE_MAX_NAME];      /* the request's "id" ("" when absent), echoed back */
    int n_images;
    kserve_image *images;          /* n_images entries, malloc'd (kserve_request_free) */
    uint8_t *owned;                /* storage for images given as JSON strings, or NULL */
    /* the "pixel_values" output as requested (all optional) */
    bool binary_output;            /* outputs[].parameters.binary_data, or the request-level
                                      parameters.binary_data_output; default false (JSON data) */
    bool fp16;                     /* parameters.dtype == "float16" (request level) */
    char shm_region[KSERVE_MAX_NAME]; /* outputs[].parameters.shared_memory_region, or "" */
    uint64_t shm_offset;           /* .shared_memory_offset (default 0) */
    uint64_t shm_byte_size;        /* .shared_memory_byte_size (required with a region) */
    int exif;                      /* parameters.exif: -1 absent, 0 or 1 */
    char reference[32];            /* parameters.reference: "" absent (checked by the route) */
    /* outputs named other than "pixel_values" (a vision-language model's other arrays; the
     * route checks them against the model) */
    char extra_outputs[4][32];
    int n_extra_outputs;
} kserve_request;

/* Parses POST /v2/models/{m}/infer. header_length: the Inference-Header-Content-Length header
 * value (NULL when absent: the whole body is JSON). Errors (CP_ERR_BAD_REQUEST) say exactly
 * what is wrong: no "inputs", input not named "images", datatype not BYTES, shape not [N] or
 * not matching the element count, binary_data_size not matching the data, an output other
 * than "pixel_values", a region without byte size, ... max_images bounds N
 * (CP_ERR_TOO_MANY_IMAGES). BYTES elements in binary form are 4-byte little-endian lengths
 * followed by the bytes; in JSON form, "data" is an array of strings used as raw bytes. */
bool kserve_parse_infer(const uint8_t *body, size_t len, const char *header_length,
                        int max_images, kserve_request *req, cp_error *err);
void kserve_request_free(kserve_request *req);

/* The JSON header of an infer response. For binary output: "parameters":{"binary_data_size":B}
 * and no "data"; for a shared-memory output: "parameters":{"shared_memory_region":…,
 * "shared_memory_byte_size":B} and no data; otherwise "data" holds the values (float32
 * printed with 9 significant digits; float16 values are given as their float value).
 * Returns a malloc'd NUL-terminated string; *len excludes the NUL. */
typedef struct {
    const char *model;             /* the profile name */
    const char *id;                /* the request id ("" to omit) */
    int n, h, w;
    bool fp16;
    enum { KSERVE_OUT_JSON, KSERVE_OUT_BINARY, KSERVE_OUT_SHM } kind;
    const void *values;            /* KSERVE_OUT_JSON: the tensor */
    uint64_t byte_size;            /* the tensor's bytes */
    const char *shm_region;        /* KSERVE_OUT_SHM */
} kserve_response;

char *kserve_format_response(const kserve_response *r, size_t *len);

/* The same for a model with several named arrays (out_layout.h; offsets from `base`): one
 * output per array, in order; binary_data_size per output, or "data". */
#include "out_layout.h"
char *kserve_format_arrays_response(const char *model, const char *id, const out_layout *l,
                                    tensor_dtype pixels, bool binary, const uint8_t *base,
                                    size_t *len);
/* Model metadata of such a model: dims that vary per request are -1. */
char *kserve_format_arrays_metadata(const char *model, const out_layout *l);

/* {"error":"<escaped message>"} as Triton answers errors; malloc'd. */
char *kserve_format_error(const char *message);

/* Model metadata for a profile: {"name":…,"versions":["1"],"platform":"clipprep",
 * "inputs":[{"name":"images","datatype":"BYTES","shape":[-1]}],
 * "outputs":[{"name":"pixel_values","datatype":"FP32","shape":[-1,3,H,W]}]}; malloc'd. */
char *kserve_format_model_metadata(const char *model, int h, int w);

#endif
