/* jpeg_decode_host.c — the host twin of the hybrid decode's CUDA launches: the same per-block
 * and per-pixel bodies (jpeg_blocks.h) in loops. The CPU tests run it against libjpeg; it is an
 * oracle for the GPU code, not a fallback (libjpeg's own SIMD decoder is far faster on a CPU). */
#include "jpeg_blocks.h"

void jh_idct_host(const jh_plane *planes, int n_planes, const int16_t *coefs, uint8_t *plane_buf,
                  int32_t *guard)
{
    for (int i = 0; i < n_planes; i++) {
        const jh_plane *p = &planes[i];
        int64_t blocks = (int64_t)p->wb * p->hb;
        for (int64_t b = 0; b < blocks; b++)
            if (!jh_idct_thread(p, coefs, plane_buf, b))
                guard[p->image] = 1;
    }
}

void jh_pixels_host(const jh_image *imgs, int n_imgs, const jh_plane *planes,
                    const uint8_t *plane_buf, uint8_t *rgb)
{
    for (int i = 0; i < n_imgs; i++) {
        int64_t n = jh_pixel_threads(&imgs[i]);
        for (int64_t t = 0; t < n; t++)
            jh_pixel_thread(&imgs[i], planes, plane_buf, rgb, t);
    }
}
