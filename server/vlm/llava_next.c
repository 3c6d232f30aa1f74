/* llava_next.c — the LlavaNext family (vlm.h). Not implemented yet: the profile loader refuses it. */
#include "vlm.h"

const vlm_family vlm_llava_next = {.kind = VLM_LLAVA_NEXT, .name = "llava_next", .hf_class = "LlavaNext"};
