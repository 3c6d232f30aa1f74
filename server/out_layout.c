/* out_layout.c — sizes and aligned places of an answer's named arrays (out_layout.h). */
#include "out_layout.h"

#include <stdio.h>
#include <string.h>

size_t array_type_size(array_type t, tensor_dtype pixels)
{
    switch (t) {
    case ARR_INT64: return 8;
    case ARR_INT32: return 4;
    default: return tensor_dtype_size(pixels);
    }
}

const char *array_type_name(array_type t, tensor_dtype pixels)
{
    switch (t) {
    case ARR_INT64: return "int64";
    case ARR_INT32: return "int32";
    default: return tensor_dtype_name(pixels);
    }
}

const char *array_type_descr(array_type t, tensor_dtype pixels)
{
    switch (t) {
    case ARR_INT64: return "<i8";
    case ARR_INT32: return "<i4";
    default: return pixels == DTYPE_FLOAT16 ? "<f2" : "<f4";
    }
}

long long out_array_elems(const out_array *a)
{
    long long n = 1;
    for (int d = 0; d < a->ndim; d++)
        n *= a->shape[d];
    return n;
}

out_array *out_layout_add(out_layout *l, const char *name, array_type type, int ndim,
                          const long long *shape)
{
    if (l->n >= OUT_MAX_ARRAYS || ndim > OUT_MAX_DIMS)
        return NULL;
    out_array *a = &l->a[l->n++];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->type = type;
    a->ndim = ndim;
    memcpy(a->shape, shape, sizeof *shape * (size_t)ndim);
    return a;
}

void out_layout_finish(out_layout *l, tensor_dtype pixels)
{
    size_t at = 0;
    for (int i = 0; i < l->n; i++) {
        out_array *a = &l->a[i];
        at = (at + OUT_ALIGN - 1) / OUT_ALIGN * OUT_ALIGN;
        a->offset = at;
        a->bytes = (size_t)out_array_elems(a) * array_type_size(a->type, pixels);
        at += a->bytes;
    }
    l->total = at;
}

void out_layout_classic(out_layout *l, int n, int h, int w, tensor_dtype pixels)
{
    memset(l, 0, sizeof *l);
    long long shape[4] = {n, 3, h, w};
    out_layout_add(l, "pixel_values", ARR_PIXELS, 4, shape);
    out_layout_finish(l, pixels);
}

const out_array *out_layout_find(const out_layout *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->a[i].name, name))
            return &l->a[i];
    return NULL;
}
