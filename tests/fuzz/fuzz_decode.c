/* fuzz_decode.c — libFuzzer target: header reading and full decode of arbitrary bytes (JPEG,
 * PNG, WebP, EXIF), and for JPEGs the hybrid decode's path (entropy decoding into coefficient
 * blocks, then the GPU kernels' bodies on the host); where the hybrid path accepts a file and
 * its IDCT guard holds, its RGB must equal decode_rgb's; images with transparency are decoded
 * composited onto white too (transformers 5), and non-RGB Pillow modes through open_clip's
 * own-mode resize (native_mode.c). Decodes only what a default max_pixels-like cap allows, as
 * the daemon. */
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
    if (hdr.has_alpha) { /* transformers 5: transparency composited onto white */
        decode_options white = opt;
        white.alpha_onto_white = true;
        if (dst)
            decode_rgb(data, size, &hdr, &white, dst, bytes, &err);
    }
    free(dst);
    if (hdr.native != NATIVE_AS_RGB) { /* open_clip: resized in Pillow's own mode */
        decode_options nat = opt;
        nat.native = (native_resize){.on = true, .resized_w = 1 + (int)(size % 37),
                                     .resized_h = 1 + (int)(size % 53), .top = (int)(size % 5) - 2,
                                     .left = (int)(size % 7) - 3, .out_w = 16, .out_h = 12,
                                     .filter = (int)(size % 2)};
        uint8_t out[16 * 12 * 3];
        decode_rgb(data, size, &hdr, &nat, out, sizeof out, &err);
    }
    return 0;
}
