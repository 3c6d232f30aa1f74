/* fuzz_kserve.c — libFuzzer target: KServe v2 infer request parsing (JSON, and JSON header +
 * binary tensor data). The first line of the input is the Inference-Header-Content-Length
 * value (no header when the line is empty or there is no line), the rest is the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/kserve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size < 64 ? size : 64);
    size_t hl_len = nl ? (size_t)(nl - data) : 0;
    char hl[65];
    memcpy(hl, data, hl_len);
    hl[hl_len] = '\0';
    const uint8_t *body = nl ? nl + 1 : data;
    size_t body_len = size - (size_t)(body - data);
    /* an exactly sized copy so that any over-read is caught */
    uint8_t *copy = malloc(body_len ? body_len : 1);
    if (body_len) memcpy(copy, body, body_len);
    kserve_request req;
    cp_error err;
    if (kserve_parse_infer(copy, body_len, hl_len ? hl : NULL, 16, &req, &err)) {
        unsigned sum = 0;
        for (int i = 0; i < req.n_images; i++) /* touch every byte of every image */
            for (size_t k = 0; k < req.images[i].len; k++) sum += req.images[i].data[k];
        if (sum == 0x4242 && req.shm_region[0]) err.status = CP_OK;
        kserve_request_free(&req);
    }
    free(copy);
    return 0;
}
