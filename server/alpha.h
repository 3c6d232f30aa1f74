/* alpha.h — transparency arithmetic shared by the decoders: Pillow's alpha_composite of an
 * RGBA pixel over opaque white (transformers 5's convert_to_rgb, libImaging AlphaComposite.c:
 * integer maths with 7 extra bits and rounded divisions by 255). */
#ifndef CLIPPREP_ALPHA_H
#define CLIPPREP_ALPHA_H

#include <stdint.h>

/* One channel value c of a pixel with alpha a, composited over the opaque white background. */
static inline uint8_t alpha_over_white(unsigned c, unsigned a)
{
    if (a == 0)
        return 255; /* Pillow copies the background pixel */
    const unsigned bits = 7, dst = 255, dst_a = 255;
    unsigned blend = dst_a * (255 - a);
    unsigned outa255 = a * 255 + blend;
    unsigned coef1 = a * 255 * 255 * (1u << bits) / outa255;
    unsigned coef2 = 255 * (1u << bits) - coef1;
    unsigned tmp = c * coef1 + dst * coef2 + (0x80u << bits);
    return (uint8_t)((((tmp >> 8) + tmp) >> 8) >> bits);
}

/* Packed RGBA (4 bytes per pixel) to packed RGB composited over white; in place is allowed
 * (dst == src): the write position never passes the read position. */
static inline void rgba_over_white(const uint8_t *src, uint8_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned a = src[4 * i + 3];
        uint8_t r = alpha_over_white(src[4 * i], a), g = alpha_over_white(src[4 * i + 1], a),
                b = alpha_over_white(src[4 * i + 2], a);
        dst[3 * i] = r;
        dst[3 * i + 1] = g;
        dst[3 * i + 2] = b;
    }
}

#endif
