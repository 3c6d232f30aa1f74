/* got_ocr2.c — the GotOcr2 family (vlm.h). Not implemented yet: the profile loader refuses it. */
#include "vlm.h"

const vlm_family vlm_got_ocr2 = {.kind = VLM_GOT_OCR2, .name = "got_ocr2", .hf_class = "GotOcr2"};
