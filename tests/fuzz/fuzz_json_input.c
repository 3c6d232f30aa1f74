/* fuzz_json_input.c — libFuzzer target: the JSON image list of /v1/preprocess (json_input.c,
 * base64.c) on arbitrary bytes; every decoded item is touched so that an over-read shows. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/base64.h"
#include "../../server/json_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1); /* exactly sized: an over-read is caught */
    memcpy(copy, data, size);
    json_items items;
    cp_error err;
    int index;
    if (json_input_parse(copy, size, 8, 1 << 16, &items, &err, &index)) {
        unsigned sum = 0;
        for (int i = 0; i < items.n; i++) {
            const json_item *it = &items.items[i];
            for (size_t k = 0; k < it->len; k++)
                sum += it->data[k];
            if (it->url)
                sum += (unsigned)strlen(it->url);
        }
        if (sum == 0x12345)
            err.status = CP_OK;
        json_items_free(&items);
    }
    /* base64 alone, with its bound */
    uint8_t *out = malloc(base64_decoded_max(size) + 1);
    size_t n, bad;
    base64_decode((const char *)copy, size, out, &n, &bad);
    free(out);
    free(copy);
    return 0;
}
