/* multipart.h — multipart/form-data (RFC 7578, RFC 2046 §5.1) request bodies: the boundary
 * from the Content-Type header, and the body split into parts that point into the body.
 * Allocation-free, explicit lengths, never reads past the body; safe on arbitrary bytes. */
#ifndef CLIPPREP_MULTIPART_H
#define CLIPPREP_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct {
    const uint8_t *data;   /* the part's body, pointing into the request body (no copy) */
    size_t len;
    char name[128];        /* Content-Disposition name="..." (may be empty) */
    char filename[256];    /* filename="..." (may be empty) */
    char content_type[128];/* the part's Content-Type (may be empty) */
} multipart_part;

/* Extracts the boundary from a Content-Type value such as
 * `multipart/form-data; boundary="abc"` (quoted or not, case-insensitive media type and
 * parameter name). Returns false when the type is not multipart/form-data or has no valid
 * boundary (1..70 chars per RFC 2046). */
bool multipart_is_form_data(const char *content_type);
bool multipart_boundary(const char *content_type, char *boundary, size_t cap);

/* Parses body into at most max_parts parts, in order. Returns the part count (>= 0), or -1
 * with err set: CP_ERR_BAD_REQUEST for malformed bodies (missing boundary, no closing
 * delimiter, part without headers terminator, ...) with a message saying what is wrong;
 * CP_ERR_TOO_MANY_IMAGES when there are more than max_parts parts. */
int multipart_parse(const uint8_t *body, size_t len, const char *boundary,
                    multipart_part *parts, int max_parts, cp_error *err);

#endif
