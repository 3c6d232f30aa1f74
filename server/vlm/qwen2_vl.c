/* qwen2_vl.c — the Qwen2VL family (vlm.h). Not implemented yet: the profile loader refuses it. */
#include "vlm.h"

const vlm_family vlm_qwen2_vl = {.kind = VLM_QWEN2_VL, .name = "qwen2_vl", .hf_class = "Qwen2VL"};
