/* array_encode.h — the encodings of an answer's named arrays (out_layout.h): .npy of one array,
 * .npz (a stored zip of one .npy per array, written around arrays computed in place), and the
 * multi-array JSON answer. */
#ifndef CLIPPREP_ARRAY_ENCODE_H
#define CLIPPREP_ARRAY_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "out_layout.h"

/* .npy header of one array (a multiple of 64 bytes). */
size_t npy_array_header_size(const out_array *a, tensor_dtype pixels);
void npy_array_header_write(char *dst, const out_array *a, tensor_dtype pixels);

/* Moves the arrays of l to their places inside an .npz file (each array's data 64-byte
 * aligned after its zip and .npy headers) and returns the file's size. */
size_t npz_layout(out_layout *l, tensor_dtype pixels);
/* Once the arrays are written: the zip and .npy headers (with the CRCs) around them. */
void npz_finish(uint8_t *file, const out_layout *l, tensor_dtype pixels);

/* {"profile":…,"arrays":[{"name","shape","dtype","data":[…]}…]}, malloc'd. */
char *arrays_to_json(const char *profile, const out_layout *l, tensor_dtype pixels,
                     const uint8_t *base, size_t *out_len);
/* Upper bound of arrays_to_json's length (for budgets). */
size_t arrays_json_bytes(const out_layout *l);

#endif
