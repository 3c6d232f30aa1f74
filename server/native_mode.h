/* native_mode.h — open_clip's eval transform resizes the PIL image in its OWN mode and only
 * then converts it to RGB (torchvision Resize + CenterCrop on a PIL image, then
 * convert("RGB")). For RGB and L images that equals resizing the RGB conversion; for the other
 * Pillow modes it does not, and this file reproduces what Pillow does in each:
 *   "P", "1"       Image.resize forces NEAREST (ImagingScaleAffine: accumulated double steps)
 *   "RGBA", "LA"   premultiplied (RGBa / La, MULDIV255), the 8-bit resampler, unpremultiplied
 *                  (CLIP8(255*v/a)), alpha dropped
 *   "CMYK"         the 8-bit resampler on C, M, Y, K, then Pillow's cmyk2rgb
 *   "I;16"         the 16-bit resampler (double weights, CLIP16(ROUND_UP) per pass), then
 *                  I;16 -> RGB (values above 255 become 255)
 * The result is the final out_w x out_h RGB window; the executors then normalise it with an
 * identity geometry. Padding (a crop larger than the resized image) is zero in the image's
 * mode, as Pillow pads (for "P" that is palette entry 0 in Pillow; here black). CPU only: on
 * the CUDA executor these images are decoded and resized here, on the decode threads, and
 * only normalised on the GPU. Memory: up to ~10 bytes per source pixel, freed when the image
 * is done (the 4-byte decode plus two 3-byte planes), against 3 for an RGB image. */
#ifndef CLIPPREP_NATIVE_MODE_H
#define CLIPPREP_NATIVE_MODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode.h"
#include "error.h"

/* opt->native must be on; dst holds opt->native.out_w * out_h * 3 bytes. */
bool native_decode_resize(const uint8_t *data, size_t len, const image_header *hdr,
                          const decode_options *opt, uint8_t *dst, size_t dst_size,
                          cp_error *err);

#endif
