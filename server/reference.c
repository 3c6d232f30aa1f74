/* reference.c — the reference names and the per-reference traits (see reference.h). */
#include "reference.h"

#include <string.h>

static const char *const NAMES[REF_COUNT] = {
    [REF_TRANSFORMERS4] = "transformers4",
    [REF_TRANSFORMERS5] = "transformers5",
    [REF_TRANSFORMERS5_PIL] = "transformers5-pil",
    [REF_OPEN_CLIP] = "open_clip",
};

const char *reference_name(reference_id r)
{
    return (unsigned)r < REF_COUNT ? NAMES[r] : "unknown";
}

bool reference_parse(const char *name, reference_id *r)
{
    for (int i = 0; i < REF_COUNT; i++)
        if (name && !strcmp(name, NAMES[i])) {
            *r = (reference_id)i;
            return true;
        }
    return false;
}

const char *reference_names_list(void)
{
    return "transformers4, transformers5, transformers5-pil, open_clip";
}

coeff_kind reference_coeffs(reference_id r)
{
    return r == REF_TRANSFORMERS5 ? COEFF_TORCHVISION : COEFF_PILLOW;
}

alpha_rule reference_alpha(reference_id r)
{
    switch (r) {
    case REF_TRANSFORMERS5:
    case REF_TRANSFORMERS5_PIL: return ALPHA_ONTO_WHITE;
    case REF_OPEN_CLIP: return ALPHA_NATIVE_MODE;
    default: return ALPHA_DROP;
    }
}

crop_rounding reference_crop(reference_id r)
{
    switch (r) {
    case REF_TRANSFORMERS5: return CROP_ROUND_TRUNC;
    case REF_OPEN_CLIP: return CROP_ROUND_HALF_EVEN;
    default: return CROP_ROUND_FLOOR;
    }
}

bool reference_vertical_first(reference_id r, int w, int h, int rw, int rh)
{
    if (r != REF_TRANSFORMERS5_PIL && r != REF_OPEN_CLIP)
        return false;
    if (rw == w || rh == h)
        return false; /* one pass only */
    return rh < h && (long long)h - rh > 2 * ((long long)w - rw);
}

norm_rule reference_norm(reference_id r)
{
    return r == REF_TRANSFORMERS5 ? NORM_FUSED_FLOAT32 : NORM_RESCALE_THEN_NORMALIZE;
}
