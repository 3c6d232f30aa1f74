/* siglip2_naflex.c — the Siglip2 family (vlm.h). Not implemented yet: the profile loader refuses it. */
#include "vlm.h"

const vlm_family vlm_siglip2_naflex = {.kind = VLM_SIGLIP2_NAFLEX, .name = "siglip2_naflex", .hf_class = "Siglip2"};
