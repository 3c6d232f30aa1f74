/* transpose.h — swapping an image's axes. Pillow 13 runs its vertical pass first for some
 * sizes (reference.h, reference_vertical_first); the kernels only run horizontal-then-vertical,
 * so such an image is transposed, resized with the axes exchanged, and transposed back. */
#ifndef CLIPPREP_TRANSPOSE_H
#define CLIPPREP_TRANSPOSE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* src: h rows of w elements of `size` bytes; dst: w rows of h elements. */
static inline void transpose_elems(const void *src, int w, int h, size_t size, void *dst)
{
    const uint8_t *s = src;
    uint8_t *d = dst;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            memcpy(d + ((size_t)x * h + y) * size, s + ((size_t)y * w + x) * size, size);
}

#endif
