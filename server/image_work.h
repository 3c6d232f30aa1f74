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
    uint8_t *trans, *tout; /* vertical-first images: the transposed image and tensor */
    size_t trans_cap, tout_cap;
    uint8_t *canvas, *tile; /* VLM jobs: the pre-padded image, a tile before its placement */
    size_t canvas_cap, tile_cap;
} cpu_scratch;

bool process_job_cpu(job *j, cpu_scratch *s, cp_error *err);
/* Grows one scratch buffer (realloc) to at least `need` bytes. */
bool scratch_grow(uint8_t **buf, size_t *cap, size_t need);
/* Sets the decode options the job's reference needs (j->prof, j->ref, j->hdr and the other
 * options set): transparency onto white (transformers 5), open_clip's own-mode resize for
 * non-RGB Pillow modes (which also turns fast mode off for that image). */
void job_apply_reference(job *j);
/* The job's reference runs the vertical pass first for this image (Pillow 13; reference.h):
 * the CPU path does it by transposition; the CUDA executor hands such images to it. */
bool job_vertical_first(const job *j);
void cpu_scratch_free(cpu_scratch *s);

#endif
