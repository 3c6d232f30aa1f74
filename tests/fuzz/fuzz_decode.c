/* fuzz_decode.c — libFuzzer target: header reading and full decode of arbitrary bytes (JPEG,
 * PNG, WebP, EXIF), and for JPEGs the hybrid decode's path (entropy decoding into coefficient
 * blocks, then the GPU kernels' bodies on the host); where the hybrid path accepts a file and
 * its IDCT guard holds, its RGB must equal decode_rgb's. Decodes only what a default
 * max_pixels-like cap allows, as the daemon. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/decode.h"
#include "../../server/jpeg_coeffs.h"

/* Hybrid path on the host; aborts (a finding) when it disagrees with the CPU decoder. */
static void check_hybrid(const uint8_t *data, size_t size, const image_header *hdr,
                         const decode_options *opt, const uint8_t *want, size_t bytes)
{
    if (hdr->jpeg_blocks <= 0 || hdr->jpeg_blocks > 400000)
        return;
    int16_t *coefs = malloc((size_t)hdr->jpeg_blocks * 128);
    uint8_t *planes = malloc((size_t)hdr->jpeg_blocks * 64), *got = malloc(bytes ? bytes : 1);
    jpeg_coeffs k;
    if (coefs && planes && got &&
        jpeg_coeffs_read(data, size, hdr, opt, coefs, (uint64_t)hdr->jpeg_blocks, &k) ==
            JPEG_HYBRID_OK) {
        int32_t guard = 0;
        jh_idct_host(k.planes, k.n_planes, coefs, planes, &guard);
        if (!guard) {
            jh_pixels_host(&k.image, 1, k.planes, planes, got);
            if (!want || memcmp(want, got, bytes) != 0)
                abort(); /* eligible, yet not the CPU decoder's bytes (or it failed) */
        }
    }
    free(coefs);
    free(planes);
    free(got);
}

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
    bool ok = dst && decode_rgb(data, size, &hdr, &opt, dst, bytes, &err);
    if (hdr.format == IMAGE_FORMAT_JPEG)
        check_hybrid(data, size, &hdr, &opt, ok ? dst : NULL, bytes);
    free(dst);
    return 0;
}
