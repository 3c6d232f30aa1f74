/* vlm_work.h — the CPU path of one vision-language job: decode once, then one resize window
 * per tile (vlm.h), normalised into the image's part of pixel_values. */
#ifndef CLIPPREP_VLM_WORK_H
#define CLIPPREP_VLM_WORK_H

#include "../image_work.h"

bool vlm_process_job_cpu(job *j, cpu_scratch *s, cp_error *err);

#endif
