/* kserve.c — the KServe v2 / Triton HTTP inference protocol: parsing an infer request (JSON,
 * or JSON header + binary tensor data) and formatting the JSON of the answers. No I/O. */
#include "kserve.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define INPUT_NAME "images"
#define OUTPUT_NAME "pixel_values"
/* integers in JSON are doubles to cJSON: beyond 2^53 they are no longer exact */
#define MAX_JSON_INT 9007199254740992.0

/* ---- small helpers ---------------------------------------------------------------------- */

static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n;
        unsigned min;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        p++;
        for (int i = 0; i < n; i++, p++) {
            if ((*p & 0xC0) != 0x80) return false; /* also stops at the NUL */
            c = (c << 6) | (*p & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
    }
    return true;
}

/* A non-negative integral JSON number (at most 2^53) into *out. */
static bool get_uint(const cJSON *item, const char *what, uint64_t *out, cp_error *err)
{
    if (!cJSON_IsNumber(item))
        return cp_fail(err, CP_ERR_BAD_REQUEST, "%s must be a number", what);
    double v = item->valuedouble;
    if (!(v >= 0) || v > MAX_JSON_INT || v != floor(v))
        return cp_fail(err, CP_ERR_BAD_REQUEST, "%s must be a non-negative integer", what);
    *out = (uint64_t)v;
    return true;
}

/* A string of 1..KSERVE_MAX_NAME-1 bytes of valid UTF-8, copied into out. */
static bool get_name(const cJSON *item, const char *what, bool allow_empty, char *out,
                     cp_error *err)
{
    if (!cJSON_IsString(item) || !item->valuestring)
        return cp_fail(err, CP_ERR_BAD_REQUEST, "%s must be a string", what);
    size_t n = strlen(item->valuestring);
    if (!n && !allow_empty) return cp_fail(err, CP_ERR_BAD_REQUEST, "%s is empty", what);
    if (n >= KSERVE_MAX_NAME)
        return cp_fail(err, CP_ERR_BAD_REQUEST, "%s is too long (%zu bytes, at most %d)", what,
                       n, KSERVE_MAX_NAME - 1);
    if (!utf8_valid(item->valuestring))
        return cp_fail(err, CP_ERR_BAD_REQUEST, "%s is not valid UTF-8", what);
    memcpy(out, item->valuestring, n + 1);
    return true;
}

/* A name from the request for an error message: printable ASCII, shortened. */
static void shown_name(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; s && *s && o + 4 < cap; s++)
        out[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    if (s && *s && o + 3 < cap) out[o++] = '.', out[o++] = '.', out[o++] = '.';
    out[o] = '\0';
}

/* The Inference-Header-Content-Length value: decimal digits, optionally surrounded by
 * spaces or tabs. */
static bool parse_header_length(const char *s, size_t len, size_t *out, cp_error *err)
{
    const char *p = s;
    while (*p == ' ' || *p == '\t') p++;
    size_t v = 0;
    int digits = 0;
    bool overflow = false;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (SIZE_MAX - d) / 10)
            overflow = true;
        else
            v = v * 10 + d;
    }
    while (*p == ' ' || *p == '\t') p++;
    if (!digits || *p) {
        char shown[40];
        shown_name(s, shown, sizeof shown);
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "Inference-Header-Content-Length \"%s\" is not a decimal number", shown);
    }
    if (overflow || v > len) {
        char shown[40];
        shown_name(s, shown, sizeof shown);
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "Inference-Header-Content-Length %s is larger than the body (%zu bytes)",
                       shown, len);
    }
    *out = v;
    return true;
}

/* ---- "data" in JSON form: strings, possibly in nested arrays ---------------------------- */

/* Counts the leaves and their bytes; every leaf must be a string. depth is bounded by
 * cJSON's nesting limit. */
static bool count_strings(const cJSON *a, size_t *count, size_t *bytes, cp_error *err)
{
    for (const cJSON *e = a->child; e; e = e->next) {
        if (cJSON_IsArray(e)) {
            if (!count_strings(e, count, bytes, err)) return false;
        } else if (cJSON_IsString(e) && e->valuestring) {
            (*count)++;
            *bytes += strlen(e->valuestring);
        } else {
            return cp_fail(err, CP_ERR_BAD_REQUEST,
                           "input \"" INPUT_NAME "\": \"data\" must hold strings (BYTES "
                           "elements), element %zu is not one",
                           *count);
        }
    }
    return true;
}

static void collect_strings(const cJSON *a, kserve_request *req, size_t *count, size_t *off)
{
    for (const cJSON *e = a->child; e; e = e->next) {
        if (cJSON_IsArray(e)) {
            collect_strings(e, req, count, off);
        } else {
            size_t n = strlen(e->valuestring);
            memcpy(req->owned + *off, e->valuestring, n);
            req->images[*count] = (kserve_image){.data = req->owned + *off, .len = n};
            *off += n;
            (*count)++;
        }
    }
}

static bool images_from_json(const cJSON *data, size_t n, kserve_request *req, cp_error *err)
{
    if (!cJSON_IsArray(data))
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "input \"" INPUT_NAME "\": \"data\" must be an array of strings");
    size_t count = 0, bytes = 0;
    if (!count_strings(data, &count, &bytes, err)) return false;
    if (count != n)
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "input \"" INPUT_NAME "\": \"data\" has %zu elements but the shape is [%zu]",
                       count, n);
    req->images = calloc(n, sizeof *req->images);
    req->owned = malloc(bytes ? bytes : 1);
    if (!req->images || !req->owned) return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
    size_t c = 0, off = 0;
    collect_strings(data, req, &c, &off);
    return true;
}

/* ---- binary form: 4-byte little-endian length, then the bytes, per element -------------- */

static bool images_from_binary(const uint8_t *p, size_t size, size_t n, kserve_request *req,
                               cp_error *err)
{
    if (n > size / 4) /* each element takes at least its 4-byte length */
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "input \"" INPUT_NAME "\": binary_data_size %zu is too small for %zu "
                       "elements (4 bytes of length each at least)",
                       size, n);
    req->images = calloc(n, sizeof *req->images);
    if (!req->images) return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (size - pos < 4)
            return cp_fail(err, CP_ERR_BAD_REQUEST,
                           "input \"" INPUT_NAME "\": binary data ends at element %zu of %zu "
                           "(binary_data_size %zu too small for the shape, or truncated)",
                           i, n, size);
        uint32_t l = (uint32_t)p[pos] | (uint32_t)p[pos + 1] << 8 | (uint32_t)p[pos + 2] << 16 |
                     (uint32_t)p[pos + 3] << 24;
        pos += 4;
        if (l > size - pos)
            return cp_fail(err, CP_ERR_BAD_REQUEST,
                           "input \"" INPUT_NAME "\": element %zu declares %" PRIu32
                           " bytes but only %zu remain in its binary data",
                           i, l, size - pos);
        req->images[i] = (kserve_image){.data = p + pos, .len = l};
        pos += l;
    }
    if (pos != size)
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "input \"" INPUT_NAME "\": %zu bytes left over after the %zu elements of "
                       "the shape (binary_data_size %zu)",
                       size - pos, n, size);
    return true;
}

/* ---- request parts ---------------------------------------------------------------------- */

static bool parse_request_params(const cJSON *params, bool *binary_output, kserve_request *req,
                                 cp_error *err)
{
    if (!params) return true;
    if (!cJSON_IsObject(params))
        return cp_fail(err, CP_ERR_BAD_REQUEST, "\"parameters\" must be an object");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(params, "binary_data_output");
    if (b) {
        if (!cJSON_IsBool(b))
            return cp_fail(err, CP_ERR_BAD_REQUEST,
                           "parameters.binary_data_output must be true or false");
        *binary_output = cJSON_IsTrue(b);
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(params, "dtype");
    if (d) {
        if (cJSON_IsString(d) && d->valuestring && !strcmp(d->valuestring, "float16"))
            req->fp16 = true;
        else if (!(cJSON_IsString(d) && d->valuestring && !strcmp(d->valuestring, "float32")))
            return cp_fail(err, CP_ERR_BAD_REQUEST,
                           "parameters.dtype must be \"float32\" or \"float16\"");
    }
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(params, "exif");
    if (x) {
        const char *s = cJSON_IsString(x) ? x->valuestring : NULL;
        if (cJSON_IsBool(x))
            req->exif = cJSON_IsTrue(x) ? 1 : 0;
        else if (cJSON_IsNumber(x) && (x->valuedouble == 0 || x->valuedouble == 1))
            req->exif = x->valuedouble == 1 ? 1 : 0;
        else if (s && (!strcmp(s, "1") || !strcmp(s, "true")))
            req->exif = 1;
        else if (s && (!strcmp(s, "0") || !strcmp(s, "false")))
            req->exif = 0;
        else
            return cp_fail(err, CP_ERR_BAD_REQUEST, "parameters.exif must be true/false or 0/1");
    }
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(params, "reference");
    if (ref) {
        if (!cJSON_IsString(ref) || !ref->valuestring[0] ||
            strlen(ref->valuestring) >= sizeof req->reference)
            return cp_fail(err, CP_ERR_BAD_REQUEST,
                           "parameters.reference must be a reference name (GET /v1/profiles)");
        snprintf(req->reference, sizeof req->reference, "%s", ref->valuestring);
    }
    return true; /* other parameters (priority, timeout, sequence_id, custom) are ignored */
}

/* The one input; *binary_size is set (and *is_binary true) when it comes as binary data. */
static bool parse_input(const cJSON *inputs, int max_images, size_t *n_out, const cJSON **data,
                        bool *is_binary, uint64_t *binary_size, cp_error *err)
{
    if (!inputs)
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "no \"inputs\": the request needs input \"" INPUT_NAME "\"");
    if (!cJSON_IsArray(inputs) || !inputs->child)
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "\"inputs\" must be a non-empty array holding input \"" INPUT_NAME "\"");
    const cJSON *in = NULL;
    for (const cJSON *e = inputs->child; e; e = e->next) {
        if (!cJSON_IsObject(e))
            return cp_fail(err, CP_ERR_BAD_REQUEST, "each of \"inputs\" must be an object");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (!cJSON_IsString(name) || !name->valuestring)
            return cp_fail(err, CP_ERR_BAD_REQUEST, "an input has no \"name\" string");
        if (strcmp(name->valuestring, INPUT_NAME)) {
            char shown[48];
            shown_name(name->valuestring, shown, sizeof shown);
            return cp_fail(err, CP_ERR_BAD_REQUEST,
                           "unknown input \"%s\": the model's only input is \"" INPUT_NAME "\"",
                           shown);
        }
        if (in)
            return cp_fail(err, CP_ERR_BAD_REQUEST,
                           "input \"" INPUT_NAME "\" is given more than once");
        in = e;
    }

    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(in, "datatype");
    if (!cJSON_IsString(dt) || !dt->valuestring || strcmp(dt->valuestring, "BYTES")) {
        char shown[24];
        shown_name(cJSON_IsString(dt) ? dt->valuestring : "(none)", shown, sizeof shown);
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "input \"" INPUT_NAME "\": datatype must be \"BYTES\", not \"%s\"", shown);
    }

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(in, "shape");
    uint64_t n = 0;
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) != 1 ||
        !cJSON_IsNumber(shape->child) || !(shape->child->valuedouble >= 0) ||
        shape->child->valuedouble > MAX_JSON_INT ||
        shape->child->valuedouble != floor(shape->child->valuedouble))
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "input \"" INPUT_NAME "\": shape must be [N] (N images)");
    n = (uint64_t)shape->child->valuedouble;
    if (n == 0)
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "input \"" INPUT_NAME "\": shape [0], the request has no images");
    if (max_images < 0 || n > (uint64_t)max_images)
        return cp_fail(err, CP_ERR_TOO_MANY_IMAGES,
                       "input \"" INPUT_NAME "\": %" PRIu64
                       " images, more than the limit of %d per request",
                       n, max_images);

    const cJSON *params = cJSON_GetObjectItemCaseSensitive(in, "parameters");
    const cJSON *bds = NULL;
    if (params) {
        if (!cJSON_IsObject(params))
            return cp_fail(err, CP_ERR_BAD_REQUEST,
                           "input \"" INPUT_NAME "\": \"parameters\" must be an object");
        if (cJSON_GetObjectItemCaseSensitive(params, "shared_memory_region") ||
            cJSON_GetObjectItemCaseSensitive(params, "shared_memory_byte_size"))
            return cp_fail(err, CP_ERR_BAD_REQUEST,
                           "input \"" INPUT_NAME "\": inputs in shared memory are not "
                           "supported (send the images as binary data)");
        bds = cJSON_GetObjectItemCaseSensitive(params, "binary_data_size");
    }
    *data = cJSON_GetObjectItemCaseSensitive(in, "data");
    if (bds && *data)
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "input \"" INPUT_NAME "\": both \"data\" and binary_data_size given");
    if (!bds && !*data)
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "input \"" INPUT_NAME "\": no \"data\" and no binary_data_size");
    *is_binary = bds != NULL;
    if (bds && !get_uint(bds, "input \"" INPUT_NAME "\": binary_data_size", binary_size, err))
        return false;
    *n_out = (size_t)n;
    return true;
}

static bool parse_outputs(const cJSON *outputs, bool binary_default, kserve_request *req,
                          cp_error *err)
{
    req->binary_output = binary_default;
    if (!outputs || cJSON_IsNull(outputs)) return true;
    if (!cJSON_IsArray(outputs))
        return cp_fail(err, CP_ERR_BAD_REQUEST, "\"outputs\" must be an array");
    bool seen = false;
    for (const cJSON *o = outputs->child; o; o = o->next) {
        if (!cJSON_IsObject(o))
            return cp_fail(err, CP_ERR_BAD_REQUEST, "each of \"outputs\" must be an object");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        if (!cJSON_IsString(name) || !name->valuestring)
            return cp_fail(err, CP_ERR_BAD_REQUEST, "an output has no \"name\" string");
        if (strcmp(name->valuestring, OUTPUT_NAME)) {
            /* another array of a vision-language model: checked by the route; returned like
             * pixel_values (only binary_data may be set) */
            char shown[48];
            shown_name(name->valuestring, shown, sizeof shown);
            if (strlen(name->valuestring) >= sizeof req->extra_outputs[0] ||
                req->n_extra_outputs >= 4)
                return cp_fail(err, CP_ERR_BAD_REQUEST, "unknown output \"%s\"", shown);
            for (int i = 0; i < req->n_extra_outputs; i++)
                if (!strcmp(req->extra_outputs[i], name->valuestring))
                    return cp_fail(err, CP_ERR_BAD_REQUEST,
                                   "output \"%s\" is requested more than once", shown);
            snprintf(req->extra_outputs[req->n_extra_outputs++], sizeof req->extra_outputs[0],
                     "%s", name->valuestring);
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "parameters");
            const cJSON *b = cJSON_IsObject(p) ? cJSON_GetObjectItemCaseSensitive(p, "binary_data")
                                               : NULL;
            if (cJSON_IsBool(b))
                req->binary_output = cJSON_IsTrue(b);
            if (cJSON_IsObject(p) && cJSON_GetObjectItemCaseSensitive(p, "shared_memory_region"))
                return cp_fail(err, CP_ERR_BAD_REQUEST, "output \"%s\": shared memory outputs "
                               "are not available for this model's extra arrays", shown);
            continue;
        }
        if (seen)
            return cp_fail(err, CP_ERR_BAD_REQUEST,
                           "output \"" OUTPUT_NAME "\" is requested more than once");
        seen = true;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "parameters");
        if (!p) continue;
        if (!cJSON_IsObject(p))
            return cp_fail(err, CP_ERR_BAD_REQUEST,
                           "output \"" OUTPUT_NAME "\": \"parameters\" must be an object");
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(p, "classification");
        if (cls && !(cJSON_IsNumber(cls) && cls->valuedouble == 0))
            return cp_fail(err, CP_ERR_BAD_REQUEST,
                           "output \"" OUTPUT_NAME "\": classification is not supported");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(p, "binary_data");
        if (b) {
            if (!cJSON_IsBool(b))
                return cp_fail(err, CP_ERR_BAD_REQUEST,
                               "output \"" OUTPUT_NAME "\": binary_data must be true or false");
            req->binary_output = cJSON_IsTrue(b);
        }
        const cJSON *region = cJSON_GetObjectItemCaseSensitive(p, "shared_memory_region");
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(p, "shared_memory_byte_size");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(p, "shared_memory_offset");
        if (!region) {
            if (size || off)
                return cp_fail(err, CP_ERR_BAD_REQUEST,
                               "output \"" OUTPUT_NAME "\": shared_memory_%s without "
                               "shared_memory_region",
                               size ? "byte_size" : "offset");
            continue;
        }
        if (!get_name(region, "output \"" OUTPUT_NAME "\": shared_memory_region", false,
                      req->shm_region, err))
            return false;
        if (!size)
            return cp_fail(err, CP_ERR_BAD_REQUEST,
                           "output \"" OUTPUT_NAME "\": shared_memory_region without "
                           "shared_memory_byte_size");
        if (!get_uint(size, "output \"" OUTPUT_NAME "\": shared_memory_byte_size",
                      &req->shm_byte_size, err))
            return false;
        if (off && !get_uint(off, "output \"" OUTPUT_NAME "\": shared_memory_offset",
                             &req->shm_offset, err))
            return false;
        req->binary_output = false; /* the data goes to the region, not into the body */
    }
    return true;
}

/* ---- kserve_parse_infer ----------------------------------------------------------------- */

bool kserve_parse_infer(const uint8_t *body, size_t len, const char *header_length,
                        int max_images, kserve_request *req, cp_error *err)
{
    memset(req, 0, sizeof *req);
    req->exif = -1;
    size_t hlen = len;
    if (header_length && !parse_header_length(header_length, len, &hlen, err)) return false;
    if (hlen == 0 || !body)
        return cp_fail(err, CP_ERR_BAD_REQUEST, "empty request: a JSON object is expected");

    /* a NUL-terminated copy of the JSON header: cJSON never sees the binary section */
    char *text = malloc(hlen + 1);
    if (!text) return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
    memcpy(text, body, hlen);
    text[hlen] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, hlen, &end, false);
    size_t at = end && end >= text && end <= text + hlen ? (size_t)(end - text) : 0;
    if (root)
        while (at < hlen && (text[at] == ' ' || text[at] == '\t' || text[at] == '\r' ||
                             text[at] == '\n'))
            at++;
    free(text);
    if (!root || at != hlen) {
        cJSON_Delete(root);
        if (header_length)
            return cp_fail(err, CP_ERR_BAD_REQUEST,
                           "the JSON header (the first %zu bytes, per "
                           "Inference-Header-Content-Length) is not one valid JSON object: "
                           "error at byte %zu",
                           hlen, at);
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "the body is not one valid JSON object (error at byte %zu; binary data "
                       "needs the Inference-Header-Content-Length header)",
                       at);
    }

    bool ok = false, binary_output = false, is_binary = false;
    size_t n = 0;
    uint64_t bsize = 0;
    const cJSON *data = NULL;
    if (!cJSON_IsObject(root)) {
        cp_fail(err, CP_ERR_BAD_REQUEST, "the request must be a JSON object");
        goto out;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id && !get_name(id, "\"id\"", true, req->id, err)) goto out;
    if (!parse_request_params(cJSON_GetObjectItemCaseSensitive(root, "parameters"),
                              &binary_output, req, err))
        goto out;
    if (!parse_input(cJSON_GetObjectItemCaseSensitive(root, "inputs"), max_images, &n, &data,
                     &is_binary, &bsize, err))
        goto out;
    if (!parse_outputs(cJSON_GetObjectItemCaseSensitive(root, "outputs"), binary_output, req,
                       err))
        goto out;

    size_t rest = len - hlen; /* the binary section */
    if (is_binary) {
        if (!header_length) {
            cp_fail(err, CP_ERR_BAD_REQUEST,
                    "input \"" INPUT_NAME "\" has binary_data_size but the request has no "
                    "Inference-Header-Content-Length header");
            goto out;
        }
        if (bsize > rest) {
            cp_fail(err, CP_ERR_BAD_REQUEST,
                    "input \"" INPUT_NAME "\": binary_data_size %" PRIu64
                    " but only %zu bytes follow the JSON header (truncated body?)",
                    bsize, rest);
            goto out;
        }
        if (bsize < rest) {
            cp_fail(err, CP_ERR_BAD_REQUEST,
                    "%zu bytes follow the JSON header but binary_data_size is %" PRIu64
                    " (extra bytes after the binary data)",
                    rest, bsize);
            goto out;
        }
    } else if (rest) {
        cp_fail(err, CP_ERR_BAD_REQUEST,
                "%zu bytes follow the JSON header but no input has binary_data_size", rest);
        goto out;
    }

    if (is_binary ? !images_from_binary(body + hlen, rest, n, req, err)
                  : !images_from_json(data, n, req, err))
        goto out;
    req->n_images = (int)n;
    ok = true;
out:
    cJSON_Delete(root);
    if (!ok) {
        kserve_request_free(req);
        req->exif = -1;
    }
    return ok;
}

void kserve_request_free(kserve_request *req)
{
    if (!req) return;
    free(req->images);
    free(req->owned);
    req->images = NULL;
    req->owned = NULL;
    req->n_images = 0;
}

/* ---- formatting ------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    bool failed;
} sbuf;

static bool sb_reserve(sbuf *b, size_t extra)
{
    if (b->failed) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void sb_add(sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (!sb_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->failed = true;
        return;
    }
    sb_add(b, tmp);
}

/* a JSON string literal, quotes included */
static void sb_str(sbuf *b, const char *s)
{
    size_t cap = strlen(s) * 6 + 8; /* json_escape needs 7 spare bytes before the NUL */
    char *e = malloc(cap);
    if (!e) {
        b->failed = true;
        return;
    }
    json_escape(s, e, cap);
    sb_add(b, "\"");
    sb_add(b, e);
    sb_add(b, "\"");
    free(e);
}

static char *sb_finish(sbuf *b, size_t *len)
{
    if (b->failed) {
        free(b->p);
        return NULL;
    }
    if (len) *len = b->len;
    return b->p;
}

static float kserve_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (man << 13);
    } else if (exp) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man) { /* subnormal: normalise */
        exp = 113;
        while (!(man & 0x400)) man <<= 1, exp--;
        bits = sign | (exp << 23) | ((man & 0x3FF) << 13);
    } else {
        bits = sign;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void sb_values(sbuf *b, const void *values, size_t count, bool fp16)
{
    const uint8_t *v = values;
    /* at most 15 characters per value ("-1.17549435e-38") plus the comma */
    if (count > (SIZE_MAX - 64) / 16 || !sb_reserve(b, count * 16 + 2)) {
        b->failed = true;
        return;
    }
    char *o = b->p + b->len;
    *o++ = '[';
    for (size_t i = 0; i < count; i++) {
        float f;
        if (fp16) {
            uint16_t h;
            memcpy(&h, v + i * 2, 2);
            f = kserve_half_to_float(h);
        } else {
            memcpy(&f, v + i * 4, 4);
        }
        if (i) *o++ = ',';
        if (isfinite(f))
            o += snprintf(o, 17, "%.9g", (double)f);
        else /* not representable in JSON; never produced by the preprocessing */
            memcpy(o, "null", 4), o += 4;
    }
    *o++ = ']';
    *o = '\0';
    b->len = (size_t)(o - b->p);
}

char *kserve_format_response(const kserve_response *r, size_t *len)
{
    if (!r || !r->model || r->n < 0 || r->h < 0 || r->w < 0) return NULL;
    size_t count = (size_t)r->n;
    if (r->h && count > SIZE_MAX / 3 / (size_t)r->h) return NULL;
    count *= 3 * (size_t)r->h;
    if (r->w && count > SIZE_MAX / (size_t)r->w) return NULL;
    count *= (size_t)r->w;
    if (r->kind == KSERVE_OUT_JSON && count && !r->values) return NULL;
    if (r->kind == KSERVE_OUT_SHM && !r->shm_region) return NULL;

    sbuf b = {0};
    sb_add(&b, "{");
    if (r->id && r->id[0]) {
        sb_add(&b, "\"id\":");
        sb_str(&b, r->id);
        sb_add(&b, ",");
    }
    sb_add(&b, "\"model_name\":");
    sb_str(&b, r->model);
    sb_add(&b, ",\"model_version\":\"1\",\"outputs\":[{\"name\":\"" OUTPUT_NAME "\",");
    sb_printf(&b, "\"datatype\":\"%s\",\"shape\":[%d,3,%d,%d]", r->fp16 ? "FP16" : "FP32", r->n,
              r->h, r->w);
    switch (r->kind) {
    case KSERVE_OUT_BINARY:
        sb_printf(&b, ",\"parameters\":{\"binary_data_size\":%" PRIu64 "}", r->byte_size);
        break;
    case KSERVE_OUT_SHM:
        sb_add(&b, ",\"parameters\":{\"shared_memory_region\":");
        sb_str(&b, r->shm_region);
        sb_printf(&b, ",\"shared_memory_byte_size\":%" PRIu64 "}", r->byte_size);
        break;
    default:
        sb_add(&b, ",\"data\":");
        sb_values(&b, r->values, count, r->fp16);
        break;
    }
    sb_add(&b, "}]}");
    return sb_finish(&b, len);
}

static void sb_shape(sbuf *b, const out_array *a, bool variable_as_minus_one)
{
    sb_add(b, "[");
    for (int d = 0; d < a->ndim; d++)
        sb_printf(b, "%s%lld", d ? "," : "",
                  variable_as_minus_one && a->shape[d] == 0 ? -1LL : a->shape[d]);
    sb_add(b, "]");
}

static const char *kserve_type(array_type t, tensor_dtype pixels)
{
    return t == ARR_INT64 ? "INT64" : t == ARR_INT32 ? "INT32"
                                    : pixels == DTYPE_FLOAT16 ? "FP16" : "FP32";
}

char *kserve_format_arrays_response(const char *model, const char *id, const out_layout *l,
                                    tensor_dtype pixels, bool binary, const uint8_t *base,
                                    size_t *len)
{
    sbuf b = {0};
    sb_add(&b, "{");
    if (id && id[0]) {
        sb_add(&b, "\"id\":");
        sb_str(&b, id);
        sb_add(&b, ",");
    }
    sb_add(&b, "\"model_name\":");
    sb_str(&b, model);
    sb_add(&b, ",\"model_version\":\"1\",\"outputs\":[");
    for (int i = 0; i < l->n; i++) {
        const out_array *a = &l->a[i];
        sb_printf(&b, "%s{\"name\":\"%s\",\"datatype\":\"%s\",\"shape\":", i ? "," : "", a->name,
                  kserve_type(a->type, pixels));
        sb_shape(&b, a, false);
        if (binary) {
            sb_printf(&b, ",\"parameters\":{\"binary_data_size\":%zu}}", a->bytes);
            continue;
        }
        sb_add(&b, ",\"data\":");
        long long count = out_array_elems(a);
        if (a->type == ARR_PIXELS) {
            sb_values(&b, base + a->offset, (size_t)count, pixels == DTYPE_FLOAT16);
        } else {
            sb_add(&b, "[");
            for (long long k = 0; k < count; k++) {
                long long v;
                if (a->type == ARR_INT64) {
                    memcpy(&v, base + a->offset + k * 8, 8);
                } else {
                    int32_t v32;
                    memcpy(&v32, base + a->offset + k * 4, 4);
                    v = v32;
                }
                sb_printf(&b, "%s%lld", k ? "," : "", v);
            }
            sb_add(&b, "]");
        }
        sb_add(&b, "}");
    }
    sb_add(&b, "]}");
    return sb_finish(&b, len);
}

char *kserve_format_arrays_metadata(const char *model, const out_layout *l)
{
    sbuf b = {0};
    sb_add(&b, "{\"name\":");
    sb_str(&b, model);
    sb_add(&b, ",\"versions\":[\"1\"],\"platform\":\"clipprep\",\"inputs\":[{\"name\":\"" INPUT_NAME
               "\",\"datatype\":\"BYTES\",\"shape\":[-1]}],\"outputs\":[");
    for (int i = 0; i < l->n; i++) {
        sb_printf(&b, "%s{\"name\":\"%s\",\"datatype\":\"%s\",\"shape\":", i ? "," : "",
                  l->a[i].name, kserve_type(l->a[i].type, DTYPE_FLOAT32));
        sb_shape(&b, &l->a[i], true);
        sb_add(&b, "}");
    }
    sb_add(&b, "]}");
    return sb_finish(&b, NULL);
}

char *kserve_format_error(const char *message)
{
    sbuf b = {0};
    sb_add(&b, "{\"error\":");
    sb_str(&b, message ? message : "");
    sb_add(&b, "}");
    return sb_finish(&b, NULL);
}

char *kserve_format_model_metadata(const char *model, int h, int w)
{
    if (!model) return NULL;
    sbuf b = {0};
    sb_add(&b, "{\"name\":");
    sb_str(&b, model);
    sb_add(&b, ",\"versions\":[\"1\"],\"platform\":\"clipprep\",\"inputs\":[{\"name\":\"" INPUT_NAME
               "\",\"datatype\":\"BYTES\",\"shape\":[-1]}],\"outputs\":[{\"name\":\"" OUTPUT_NAME
               "\",\"datatype\":\"FP32\",");
    sb_printf(&b, "\"shape\":[-1,3,%d,%d]}]}", h, w);
    return sb_finish(&b, NULL);
}
