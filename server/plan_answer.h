/* plan_answer.h — POST /v1/plan: what /v1/preprocess would do with these images, from their
 * headers alone (no pixel decoded): per image its size, the resize and window of each tile,
 * the processor's per-image values and vision tokens, and the arrays' shapes. */
#ifndef CLIPPREP_PLAN_ANSWER_H
#define CLIPPREP_PLAN_ANSWER_H

#include "request.h"

/* Answers the request (planned by request_start: jobs, plans and layout set). */
enum MHD_Result plan_answer(request *r);

#endif
