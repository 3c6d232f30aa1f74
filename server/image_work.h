/* image_work.h — the whole per-image CPU path: decode, plan, resample, normalise into the slot. */
#ifndef CLIPPREP_IMAGE_WORK_H
#define CLIPPREP_IMAGE_WORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"

/* Per-thread buffers, grown on demand and reused (no allocation per image once warm). */
typedef struct {
    uint8_t *rgb;
    size_t rgb_cap;
    uint8_t *tmp;
    size_t tmp_cap;
} cpu_scratch;

bool process_job_cpu(job *j, cpu_scratch *s, cp_error *err);
void cpu_scratch_free(cpu_scratch *s);

#endif
