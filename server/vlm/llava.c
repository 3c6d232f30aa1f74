/* llava.c — the Llava family (vlm.h). Not implemented yet: the profile loader refuses it. */
#include "vlm.h"

const vlm_family vlm_llava = {.kind = VLM_LLAVA, .name = "llava", .hf_class = "Llava"};
