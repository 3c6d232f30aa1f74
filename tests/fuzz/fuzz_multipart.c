/* fuzz_multipart.c — libFuzzer target: Content-Type boundary extraction and body parsing. The
 * first line of the input is used as the Content-Type, the rest as the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size < 512 ? size : 512);
    size_t ct_len = nl ? (size_t)(nl - data) : 0;
    char ct[513];
    memcpy(ct, data, ct_len);
    ct[ct_len] = '\0';
    const uint8_t *body = nl ? nl + 1 : data;
    size_t body_len = size - (size_t)(body - data);
    char boundary[128];
    if (!multipart_is_form_data(ct) || !multipart_boundary(ct, boundary, sizeof boundary))
        strcpy(boundary, "XyZ");
    /* an exactly sized copy so that any over-read is caught */
    uint8_t *copy = malloc(body_len ? body_len : 1);
    memcpy(copy, body, body_len);
    multipart_part parts[8];
    cp_error err;
    int n = multipart_parse(copy, body_len, boundary, parts, 8, &err);
    for (int i = 0; i < n; i++) /* touch every part */
        if (parts[i].len && parts[i].data[parts[i].len - 1] == 0x42)
            err.status = CP_OK;
    free(copy);
    return 0;
}
