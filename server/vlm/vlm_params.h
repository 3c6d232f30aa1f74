/* vlm_params.h — the settings of a vision-language model profile (the "vlm" object of a
 * profile file), kept apart so profile.h can hold them without the rest of vlm.h. Each family
 * (vlm/<family>.c) documents which fields it reads. */
#ifndef CLIPPREP_VLM_PARAMS_H
#define CLIPPREP_VLM_PARAMS_H

#include <stdbool.h>

#define VLM_MAX_PINPOINTS 64

typedef enum {
    VLM_NONE = 0,        /* a classic fixed-size profile */
    VLM_QWEN2_VL,        /* Qwen2VLImageProcessor: Qwen2-VL, Qwen2.5-VL, Qwen3-VL */
    VLM_LLAVA,           /* LlavaImageProcessor with do_pad (LLaVA-1.5) */
    VLM_LLAVA_NEXT,      /* LlavaNextImageProcessor anyres */
    VLM_GOT_OCR2,        /* GotOcr2ImageProcessor crop_to_patches (InternVL) */
    VLM_SIGLIP2_NAFLEX,  /* Siglip2ImageProcessor (NaFlex) */
    VLM_KIND_COUNT
} vlm_kind;

typedef struct {
    vlm_kind kind;
    /* qwen2_vl, siglip2_naflex: the vision encoder's patch side */
    int patch_size;
    /* qwen2_vl */
    int merge_size, temporal_patch_size;
    long long min_pixels, max_pixels;
    /* llava: pad to a square of this colour (u8) before resizing */
    unsigned char background[3];
    /* llava, llava_next, got_ocr2: the square tile side (crop_size / size) */
    int tile_size;
    /* llava_next: candidate resolutions, (height, width) */
    int pinpoints[VLM_MAX_PINPOINTS][2];
    int n_pinpoints;
    /* got_ocr2 */
    int min_patches, max_patches;
    bool thumbnail;
    /* siglip2_naflex */
    int max_num_patches;
    /* counting vision tokens (/v1/plan): the vision tower's patch side (llava, llava_next),
     * tokens per tile (got_ocr2); 0 = not counted */
    int vision_patch_size;
    int image_seq_length;
    /* llava: size.shortest_edge (the resize of the padded square before the crop, whose side
     * is tile_size) and do_pad (pad to a square of `background` first) */
    int llava_shortest_edge;
    bool llava_pad;
    /* (a family that needs more adds its fields here, in a block named after it) */
} vlm_params;

#endif
