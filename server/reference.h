/* reference.h — whose arithmetic a request reproduces, separate from the model profile.
 *
 * A profile says what the model needs (geometry, filter, mean/std); a reference says which
 * library's preprocessing of that model to reproduce bit for bit:
 *   transformers4      transformers 4.x CLIPImageProcessor/SiglipImageProcessor (Pillow path):
 *                      Pillow resampler, alpha dropped, crop offset floor((L-c)/2)
 *   transformers5      transformers 5.x default class (torchvision backend): torchvision's
 *                      antialiased uint8 resize (int16 weights), alpha composited onto white,
 *                      crop offset int((L-c)/2), rescale+normalise fused in float32
 *   transformers5-pil  transformers 5.x *ImageProcessorPil: transformers4 + alpha onto white
 *   open_clip          open_clip.image_transform(is_train=False): Pillow resize in the image's
 *                      own mode (RGBA/LA premultiplied, P/1 nearest, I;16 16-bit, CMYK), then
 *                      convert("RGB"); crop offset round-half-even((L-c)/2)
 * The traits below are everything the engine varies per reference. */
#ifndef CLIPPREP_REFERENCE_H
#define CLIPPREP_REFERENCE_H

#include <stdbool.h>

#include "../kernels/coeffs.h"

typedef enum {
    REF_TRANSFORMERS4 = 0,
    REF_TRANSFORMERS5,
    REF_TRANSFORMERS5_PIL,
    REF_OPEN_CLIP,
    REF_COUNT
} reference_id;

#define REF_ALL_MASK ((1u << REF_COUNT) - 1)

/* How transparency reaches RGB. */
typedef enum {
    ALPHA_DROP = 0,        /* Pillow convert("RGB"): alpha and tRNS ignored */
    ALPHA_ONTO_WHITE,      /* transformers 5 convert_to_rgb: Pillow alpha_composite on white */
    ALPHA_NATIVE_MODE,     /* open_clip: resize in the image's own mode, then convert("RGB") */
} alpha_rule;

/* How the crop window's origin is rounded (geometry.c). */
typedef enum {
    CROP_ROUND_FLOOR = 0,  /* floor((L-c)/2): HF numpy center_crop */
    CROP_ROUND_TRUNC,      /* int((L-c)/2.0), pads (c-L)//2 before: transformers 5 torchvision */
    CROP_ROUND_HALF_EVEN,  /* round((L-c)/2), pads (c-L)//2 before: torchvision F.center_crop */
} crop_rounding;

/* How a u8 value becomes the output float. */
typedef enum {
    NORM_RESCALE_THEN_NORMALIZE = 0, /* x = f32(u * rescale); (x - mean) / std in float32 */
    NORM_FUSED_FLOAT32,              /* (f32(u) - f32(mean/rescale)) / f32(std/rescale) */
} norm_rule;

const char *reference_name(reference_id r);
bool reference_parse(const char *name, reference_id *r);
/* "transformers4, transformers5, transformers5-pil, open_clip" (for error messages). */
const char *reference_names_list(void);

coeff_kind reference_coeffs(reference_id r);
alpha_rule reference_alpha(reference_id r);
crop_rounding reference_crop(reference_id r);
norm_rule reference_norm(reference_id r);

/* Whether the reference's resize of a w x h image to rw x rh runs its vertical pass first.
 * Pillow 13 (transformers5-pil, open_clip as installed today) does when the height shrinks by
 * more than twice what the width shrinks: rh < h and h - rh > 2 * (w - rw) (established on
 * 1000+ random sizes against Pillow 13.0.0; Pillow 11.3 and torchvision always go horizontal
 * first). The intermediate is rounded to u8, so the order changes the pixels. */
bool reference_vertical_first(reference_id r, int w, int h, int rw, int rh);

#endif
