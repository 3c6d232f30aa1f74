/* emu_faults.h — fault injection for the host emulation of the CUDA engine (test builds
 * only, -DCLIPPREP_CUDA_EMULATION): CLIPPREP_EMU_FAULTS makes the engine's start-up check,
 * launches, direct copies, waits and host-to-direct copies fail on a schedule, sticky (the
 * emulated context is lost: every later call on that device fails) or not, and
 * CLIPPREP_EMU_DEVICES sets how many devices the emulation shows. Syntax: docs/gpu.md. */
#ifndef CLIPPREP_EMU_FAULTS_H
#define CLIPPREP_EMU_FAULTS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    EMU_FAULT_CHECK,   /* cuda_engine_create: the kernels have no image for this GPU */
    EMU_FAULT_LAUNCH,  /* cuda_engine_launch */
    EMU_FAULT_COPY,    /* cuda_engine_copy_out_to_device (format=shm / cuda_ipc outputs) */
    EMU_FAULT_WAIT,    /* cuda_engine_wait: the batch's kernels or copies failed */
    EMU_FAULT_DIRECT,  /* cuda_copy_to_direct (a CPU-path image into a direct output) */
    EMU_FAULT_POINTS
} emu_fault_point;

/* Reads both variables (once; later calls return the first answer); false with err on bad
 * syntax, which the daemon reports as "no usable CUDA device". */
bool emu_faults_init(char *err, size_t err_cap);
int emu_device_count(void);

/* Counts one call at `point` on `device`; true (with err) when it must fail: its rule fires,
 * or the device was lost to an earlier sticky fault. */
bool emu_fault(int device, emu_fault_point point, char *err, size_t err_cap);
bool emu_device_lost(int device);

#endif
