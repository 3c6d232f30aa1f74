/* fuzz_decode.c — libFuzzer target: header reading and full decode of arbitrary bytes (JPEG,
 * PNG, WebP, EXIF). Decodes only what a default max_pixels-like cap allows, as the daemon. */
#include <stdint.h>
#include <stdlib.h>

#include "../../server/decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    image_header hdr;
    cp_error err;
    if (!decode_read_header(data, size, &hdr, &err))
        return 0;
    if ((long long)hdr.width * hdr.height > 4000000)
        return 0; /* the daemon refuses these before decoding (max_pixels) */
    decode_options opt = {.apply_orientation = size & 1, .max_scans = 64};
    int w, h;
    decode_output_size(&hdr, &opt, &w, &h);
    size_t bytes = (size_t)w * h * 3;
    uint8_t *dst = malloc(bytes ? bytes : 1);
    if (dst)
        decode_rgb(data, size, &hdr, &opt, dst, bytes, &err);
    free(dst);
    return 0;
}
