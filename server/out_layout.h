/* out_layout.h — the named arrays one answer carries and where each lies in the request's
 * output buffer (or shm slot). A classic profile answers one array, pixel_values N x 3 x H x W;
 * a vision-language profile (vlm/vlm.h) answers the arrays its transformers processor returns
 * (pixel_values first, then grids, sizes, masks). Every format is written from this. */
#ifndef CLIPPREP_OUT_LAYOUT_H
#define CLIPPREP_OUT_LAYOUT_H

#include <stddef.h>

#include "../kernels/preprocess.h"

#define OUT_MAX_ARRAYS 4
#define OUT_MAX_DIMS 5
#define OUT_ALIGN 64 /* each array starts 64-byte aligned in a buffer or slot */

typedef enum {
    ARR_PIXELS = 0, /* the request's dtype (float32 / float16) */
    ARR_INT64,
    ARR_INT32,
} array_type;

typedef struct {
    char name[32];        /* as the transformers processor names it */
    array_type type;
    int ndim;
    long long shape[OUT_MAX_DIMS];
    size_t offset;        /* from the start of the arrays (set by out_layout_finish) */
    size_t bytes;
} out_array;

typedef struct {
    int n;
    out_array a[OUT_MAX_ARRAYS];
    size_t total;         /* bytes of all arrays with their alignment gaps */
} out_layout;

size_t array_type_size(array_type t, tensor_dtype pixels);
/* "float32" / "float16" / "int64" / "int32" */
const char *array_type_name(array_type t, tensor_dtype pixels);
/* NumPy's descr: "<f4", "<f2", "<i8", "<i4" */
const char *array_type_descr(array_type t, tensor_dtype pixels);
long long out_array_elems(const out_array *a);

/* Appends an array (shape given as ndim values); returns it. */
out_array *out_layout_add(out_layout *l, const char *name, array_type type, int ndim,
                          const long long *shape);
/* Computes bytes and aligned offsets of every array and the total. */
void out_layout_finish(out_layout *l, tensor_dtype pixels);
/* The classic layout: pixel_values n x 3 x h x w. */
void out_layout_classic(out_layout *l, int n, int h, int w, tensor_dtype pixels);
const out_array *out_layout_find(const out_layout *l, const char *name);

#endif
