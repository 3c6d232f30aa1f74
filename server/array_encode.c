/* array_encode.c — .npy headers of any array, the .npz container, multi-array JSON. */
#include "array_encode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>

#include "../kernels/normalize.h"

static int npy_dict(char *buf, size_t cap, const out_array *a, tensor_dtype pixels)
{
    char shape[160];
    size_t o = 0;
    for (int d = 0; d < a->ndim; d++)
        o += (size_t)snprintf(shape + o, sizeof shape - o, "%lld,%s", a->shape[d],
                              d + 1 < a->ndim ? " " : "");
    if (a->ndim > 1) /* (n,) keeps its comma; (n, m) loses the last one */
        shape[o - 1] = 0;
    return snprintf(buf, cap, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                    array_type_descr(a->type, pixels), shape);
}

size_t npy_array_header_size(const out_array *a, tensor_dtype pixels)
{
    char dict[256];
    size_t len = (size_t)npy_dict(dict, sizeof dict, a, pixels);
    return (10 + len + 1 + 63) / 64 * 64;
}

void npy_array_header_write(char *dst, const out_array *a, tensor_dtype pixels)
{
    size_t total = npy_array_header_size(a, pixels);
    char dict[256];
    int len = npy_dict(dict, sizeof dict, a, pixels);
    memcpy(dst, "\x93NUMPY\x01\x00", 8);
    size_t hlen = total - 10;
    dst[8] = (char)(hlen & 0xff);
    dst[9] = (char)(hlen >> 8);
    memcpy(dst + 10, dict, (size_t)len);
    memset(dst + 10 + len, ' ', total - 10 - (size_t)len - 1);
    dst[total - 1] = '\n';
}

/* ---- .npz: a zip with stored (uncompressed) members NAME.npy ---------------------------- */

#define ZIP_LOCAL 30   /* local file header, before the name */
#define ZIP_CENTRAL 46 /* central directory entry, before the name */
#define ZIP_END 22
#define ZIP_PAD_ID 0xCA9E /* our extra field, only there to align the member's data */

static size_t member_name_len(const out_array *a) { return strlen(a->name) + 4; /* .npy */ }

/* Bytes before the array's data: local header, name, padding extra field, .npy header. */
static size_t member_prefix(const out_array *a, size_t at, tensor_dtype pixels, size_t *extra)
{
    size_t fixed = ZIP_LOCAL + member_name_len(a);
    size_t npy = npy_array_header_size(a, pixels);
    size_t data = at + fixed + 4 + npy; /* an extra field is at least its 4-byte header */
    size_t pad = (OUT_ALIGN - data % OUT_ALIGN) % OUT_ALIGN;
    *extra = 4 + pad;
    return fixed + *extra + npy;
}

size_t npz_layout(out_layout *l, tensor_dtype pixels)
{
    size_t at = 0, central = 0, extra;
    for (int i = 0; i < l->n; i++) {
        out_array *a = &l->a[i];
        a->bytes = (size_t)out_array_elems(a) * array_type_size(a->type, pixels);
        a->offset = at + member_prefix(a, at, pixels, &extra);
        at = a->offset + a->bytes;
        central += ZIP_CENTRAL + member_name_len(a);
    }
    l->total = at + central + ZIP_END;
    return l->total;
}

static uint8_t *put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    p = put16(p, v & 0xffff);
    return put16(p, v >> 16);
}

void npz_finish(uint8_t *file, const out_layout *l, tensor_dtype pixels)
{
    size_t at = 0, extra;
    uint32_t crcs[OUT_MAX_ARRAYS], sizes[OUT_MAX_ARRAYS], starts[OUT_MAX_ARRAYS];
    for (int i = 0; i < l->n; i++) {
        const out_array *a = &l->a[i];
        size_t prefix = member_prefix(a, at, pixels, &extra);
        size_t npy = npy_array_header_size(a, pixels);
        size_t nlen = member_name_len(a);
        uint8_t *h = file + at;
        npy_array_header_write((char *)file + a->offset - npy, a, pixels);
        /* libdeflate's CRC-32 uses PCLMULQDQ: several times zlib's on large arrays */
        uint32_t crc = libdeflate_crc32(0, file + a->offset - npy, npy);
        crc = libdeflate_crc32(crc, file + a->offset, a->bytes);
        crcs[i] = crc;
        sizes[i] = (uint32_t)(npy + a->bytes);
        starts[i] = (uint32_t)at;
        h = put32(h, 0x04034b50);
        h = put16(h, 20);  /* version needed */
        h = put16(h, 0);   /* flags */
        h = put16(h, 0);   /* stored */
        h = put16(h, 0);   /* time */
        h = put16(h, 0x21); /* date: 1980-01-01 */
        h = put32(h, crcs[i]);
        h = put32(h, sizes[i]);
        h = put32(h, sizes[i]);
        h = put16(h, (unsigned)nlen);
        h = put16(h, (unsigned)extra);
        memcpy(h, a->name, nlen - 4);
        memcpy(h + nlen - 4, ".npy", 4);
        h += nlen;
        h = put16(h, ZIP_PAD_ID);
        h = put16(h, (unsigned)(extra - 4));
        memset(h, 0, extra - 4);
        (void)prefix;
        at = a->offset + a->bytes;
    }
    uint8_t *c = file + at;
    size_t cd_start = at;
    for (int i = 0; i < l->n; i++) {
        const out_array *a = &l->a[i];
        size_t nlen = member_name_len(a);
        c = put32(c, 0x02014b50);
        c = put16(c, 20); /* made by */
        c = put16(c, 20);
        c = put16(c, 0);
        c = put16(c, 0);
        c = put16(c, 0);
        c = put16(c, 0x21);
        c = put32(c, crcs[i]);
        c = put32(c, sizes[i]);
        c = put32(c, sizes[i]);
        c = put16(c, (unsigned)nlen);
        c = put16(c, 0); /* extra */
        c = put16(c, 0); /* comment */
        c = put16(c, 0); /* disk */
        c = put16(c, 0); /* internal attributes */
        c = put32(c, 0); /* external attributes */
        c = put32(c, starts[i]);
        memcpy(c, a->name, nlen - 4);
        memcpy(c + nlen - 4, ".npy", 4);
        c += nlen;
    }
    size_t cd_size = (size_t)(c - (file + cd_start));
    c = put32(c, 0x06054b50);
    c = put16(c, 0);
    c = put16(c, 0);
    c = put16(c, (unsigned)l->n);
    c = put16(c, (unsigned)l->n);
    c = put32(c, (uint32_t)cd_size);
    c = put32(c, (uint32_t)cd_start);
    put16(c, 0);
}

/* ---- JSON -------------------------------------------------------------------------------- */

size_t arrays_json_bytes(const out_layout *l)
{
    size_t n = 512;
    for (int i = 0; i < l->n; i++)
        n += 256 + (size_t)out_array_elems(&l->a[i]) * 21;
    return n;
}

char *arrays_to_json(const char *profile, const out_layout *l, tensor_dtype pixels,
                     const uint8_t *base, size_t *out_len)
{
    size_t cap = arrays_json_bytes(l);
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t o = (size_t)snprintf(s, cap, "{\"profile\":\"%s\",\"arrays\":[", profile);
    for (int i = 0; i < l->n; i++) {
        const out_array *a = &l->a[i];
        o += (size_t)snprintf(s + o, cap - o, "%s{\"name\":\"%s\",\"shape\":[", i ? "," : "",
                              a->name);
        for (int d = 0; d < a->ndim; d++)
            o += (size_t)snprintf(s + o, cap - o, d ? ",%lld" : "%lld", a->shape[d]);
        o += (size_t)snprintf(s + o, cap - o, "],\"dtype\":\"%s\",\"data\":[",
                              array_type_name(a->type, pixels));
        const uint8_t *p = base + a->offset;
        long long count = out_array_elems(a);
        for (long long k = 0; k < count; k++) {
            const char *sep = k ? "," : "";
            if (a->type == ARR_INT64) {
                long long v;
                memcpy(&v, p + k * 8, 8);
                o += (size_t)snprintf(s + o, cap - o, "%s%lld", sep, v);
            } else if (a->type == ARR_INT32) {
                int32_t v;
                memcpy(&v, p + k * 4, 4);
                o += (size_t)snprintf(s + o, cap - o, "%s%d", sep, (int)v);
            } else {
                float v;
                if (pixels == DTYPE_FLOAT16) {
                    uint16_t hv;
                    memcpy(&hv, p + k * 2, 2);
                    v = half_to_float(hv);
                } else {
                    memcpy(&v, p + k * 4, 4);
                }
                /* 9 significant digits round-trip every float32 */
                o += (size_t)snprintf(s + o, cap - o, "%s%.9g", sep, (double)v);
            }
        }
        o += (size_t)snprintf(s + o, cap - o, "]}");
    }
    o += (size_t)snprintf(s + o, cap - o, "]}");
    *out_len = o;
    return s;
}
