/* multipart.c — multipart/form-data bodies (RFC 7578 on top of RFC 2046 §5.1).
 *
 * The body is binary: it is only ever read through explicit (pointer, length) pairs with
 * memchr/memmem/memcmp, never with str* functions. A delimiter is "--boundary" at the start
 * of the body or right after a line feed (CRLF, or a bare LF which we tolerate), followed by
 * "--" (the close delimiter) or by optional spaces/tabs and a line end. "--boundary" followed
 * by anything else is part content, as in other lenient parsers. A part's body ends before
 * the CRLF (or LF) that precedes the next delimiter. The preamble before the first delimiter
 * and the epilogue after the close delimiter are ignored. No allocation; parts point into
 * the body. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "multipart.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define BOUNDARY_MAX 70 /* RFC 2046 */

/* ---- Content-Type header (a C string) ------------------------------------------------------ */

static const char *skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    return s;
}

/* After "multipart/form-data": end of string or ';'. Returns the rest (at ';' or end), or
 * NULL when the media type is something else. */
static const char *form_data_params(const char *ct)
{
    static const char type[] = "multipart/form-data";
    if (!ct) return NULL;
    const char *s = skip_ows(ct);
    if (strncasecmp(s, type, sizeof type - 1) != 0) return NULL;
    s = skip_ows(s + sizeof type - 1);
    return (*s == 0 || *s == ';') ? s : NULL;
}

bool multipart_is_form_data(const char *content_type)
{
    return form_data_params(content_type) != NULL;
}

/* RFC 2046 bchars: DIGIT / ALPHA / ' ( ) + _ , - . / : = ? and space (not last). */
static bool is_bchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("'()+_,-./:=? ", c) != NULL);
}

static bool valid_boundary(const char *b, size_t n)
{
    if (n < 1 || n > BOUNDARY_MAX || b[n - 1] == ' ') return false;
    for (size_t i = 0; i < n; i++)
        if (!is_bchar((unsigned char)b[i])) return false;
    return true;
}

bool multipart_boundary(const char *content_type, char *boundary, size_t cap)
{
    const char *s = form_data_params(content_type);
    if (!s || !boundary || cap == 0) return false;
    char value[BOUNDARY_MAX + 2];
    while (*s) {
        s = skip_ows(s);
        if (*s != ';') return false; /* garbage between parameters */
        s = skip_ows(s + 1);
        if (*s == 0) break; /* trailing ';' */
        const char *name = s;
        while (*s && *s != '=' && *s != ';' && *s != ' ' && *s != '\t') s++;
        size_t name_len = (size_t)(s - name);
        s = skip_ows(s);
        if (*s != '=') return false; /* a parameter without a value */
        s = skip_ows(s + 1);
        size_t n = 0;
        bool too_long = false;
        if (*s == '"') {
            s++;
            while (*s && *s != '"') {
                if (*s == '\\' && s[1]) s++; /* quoted-pair */
                if (n < sizeof value - 1) value[n++] = *s;
                else too_long = true;
                s++;
            }
            if (*s != '"') return false; /* unterminated quoted string */
            s++;
        } else {
            while (*s && *s != ';' && *s != ' ' && *s != '\t') {
                if (n < sizeof value - 1) value[n++] = *s;
                else too_long = true;
                s++;
            }
        }
        value[n] = 0;
        if (name_len == 8 && strncasecmp(name, "boundary", 8) == 0) {
            if (too_long || !valid_boundary(value, n) || n + 1 > cap) return false;
            memcpy(boundary, value, n + 1);
            return true;
        }
    }
    return false;
}

/* ---- body ---------------------------------------------------------------------------------- */

typedef enum {
    DELIM_NONE,  /* no (more) delimiter in the body */
    DELIM_NEXT,  /* a delimiter line: another part follows */
    DELIM_CLOSE, /* the close delimiter "--boundary--" */
    DELIM_TRUNC, /* "--boundary" at the very end of the body, without line end or "--" */
    DELIM_NOT,   /* "--boundary" followed by something else: content, not a delimiter */
} delim_kind;

/* Classifies what follows "--boundary" at index q; *next = start of the next part. */
static delim_kind classify(const uint8_t *b, size_t len, size_t q, size_t *next)
{
    if (q + 2 <= len && b[q] == '-' && b[q + 1] == '-') return DELIM_CLOSE;
    while (q < len && (b[q] == ' ' || b[q] == '\t')) q++; /* transport padding */
    if (q == len) return DELIM_TRUNC;
    if (b[q] == '\n') {
        *next = q + 1;
        return DELIM_NEXT;
    }
    if (b[q] == '\r') {
        if (q + 1 == len) return DELIM_TRUNC;
        if (b[q + 1] == '\n') {
            *next = q + 2;
            return DELIM_NEXT;
        }
    }
    return DELIM_NOT;
}

/* Finds the next real delimiter "\n--boundary" at or after `from`; *at = index of its '\n'. */
static delim_kind next_delimiter(const uint8_t *b, size_t len, size_t from, const uint8_t *needle,
                                 size_t nlen, size_t *at, size_t *next)
{
    while (from < len && len - from >= nlen) {
        const uint8_t *hit = memmem(b + from, len - from, needle, nlen);
        if (!hit) return DELIM_NONE;
        size_t h = (size_t)(hit - b);
        delim_kind k = classify(b, len, h + nlen, next);
        if (k != DELIM_NOT) {
            *at = h;
            return k;
        }
        from = h + 1;
    }
    return DELIM_NONE;
}

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* Body bytes [s, s+n) equal the lower-case literal, ignoring ASCII case. */
static bool ci_equal(const uint8_t *s, size_t n, const char *lit)
{
    size_t i = 0;
    for (; i < n; i++)
        if (!lit[i] || lower(s[i]) != (uint8_t)lit[i]) return false;
    return lit[i] == 0;
}

/* Copies bytes into a C string, truncating; control bytes and NULs become '?'. */
static void copy_text(char *dst, size_t cap, const uint8_t *src, size_t n)
{
    if (n > cap - 1) n = cap - 1;
    for (size_t i = 0; i < n; i++) dst[i] = (src[i] < 0x20 || src[i] == 0x7f) ? '?' : (char)src[i];
    dst[n] = 0;
}

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* Content-Disposition: form-data; name="x"; filename="y" — fills name and filename. */
static void parse_disposition(const uint8_t *v, size_t n, multipart_part *pt)
{
    size_t i = 0;
    while (i < n && v[i] != ';') i++; /* the disposition type ("form-data") */
    while (i < n) {
        i++; /* ';' */
        while (i < n && is_ows(v[i])) i++;
        size_t ns = i;
        while (i < n && v[i] != '=' && v[i] != ';' && !is_ows(v[i])) i++;
        size_t nl = i - ns;
        while (i < n && is_ows(v[i])) i++;
        if (i >= n || v[i] != '=') {
            while (i < n && v[i] != ';') i++;
            continue;
        }
        i++;
        while (i < n && is_ows(v[i])) i++;
        char *dst = NULL;
        size_t cap = 0;
        if (ci_equal(v + ns, nl, "name")) {
            dst = pt->name;
            cap = sizeof pt->name;
        } else if (ci_equal(v + ns, nl, "filename")) {
            dst = pt->filename;
            cap = sizeof pt->filename;
        }
        size_t out = 0;
        if (i < n && v[i] == '"') {
            i++;
            while (i < n && v[i] != '"') {
                /* a backslash escapes only '"' and '\'; browsers send Windows paths raw */
                if (v[i] == '\\' && i + 1 < n && (v[i + 1] == '"' || v[i + 1] == '\\')) i++;
                if (dst && out + 1 < cap) dst[out++] = (v[i] < 0x20 || v[i] == 0x7f) ? '?' : (char)v[i];
                i++;
            }
            if (i < n) i++; /* closing quote; an unterminated string runs to the line end */
        } else {
            while (i < n && v[i] != ';' && !is_ows(v[i])) {
                if (dst && out + 1 < cap) dst[out++] = (v[i] < 0x20 || v[i] == 0x7f) ? '?' : (char)v[i];
                i++;
            }
        }
        if (dst) dst[out] = 0;
        while (i < n && v[i] != ';') i++;
    }
}

int multipart_parse(const uint8_t *body, size_t len, const char *boundary,
                    multipart_part *parts, int max_parts, cp_error *err)
{
    size_t blen = boundary ? strnlen(boundary, BOUNDARY_MAX + 1) : 0;
    if (!valid_boundary(boundary ? boundary : "", blen)) {
        cp_fail(err, CP_ERR_BAD_REQUEST, "missing or invalid multipart boundary");
        return -1;
    }
    if (!body || len == 0) {
        cp_fail(err, CP_ERR_BAD_REQUEST, "empty multipart body");
        return -1;
    }
    if (!parts || max_parts < 0) max_parts = 0;

    uint8_t needle[BOUNDARY_MAX + 3]; /* "\n--" boundary */
    needle[0] = '\n';
    needle[1] = '-';
    needle[2] = '-';
    memcpy(needle + 3, boundary, blen);
    size_t nlen = blen + 3;

    /* the first delimiter: at offset 0, or after a line feed in the preamble */
    size_t at = 0, next = 0;
    delim_kind k = DELIM_NOT;
    if (len >= nlen - 1 && memcmp(body, needle + 1, nlen - 1) == 0)
        k = classify(body, len, nlen - 1, &next);
    if (k == DELIM_NOT) k = next_delimiter(body, len, 0, needle, nlen, &at, &next);
    switch (k) {
    case DELIM_NONE:
    case DELIM_NOT:
        cp_fail(err, CP_ERR_BAD_REQUEST,
                "multipart body does not contain the boundary delimiter \"--%s\"", boundary);
        return -1;
    case DELIM_TRUNC:
        cp_fail(err, CP_ERR_BAD_REQUEST,
                "multipart body ends after the first delimiter (no closing delimiter)");
        return -1;
    case DELIM_CLOSE: return 0;
    case DELIM_NEXT: break;
    }

    int count = 0;
    size_t pos = next;
    for (;;) {
        if (count >= max_parts) {
            cp_fail(err, CP_ERR_TOO_MANY_IMAGES,
                    "multipart body has more than %d parts (the limit per request)", max_parts);
            return -1;
        }
        multipart_part *pt = &parts[count];
        memset(pt, 0, sizeof *pt);

        /* header lines up to an empty line */
        size_t p = pos;
        for (;;) {
            const uint8_t *nl = p < len ? memchr(body + p, '\n', len - p) : NULL;
            if (!nl) {
                cp_fail(err, CP_ERR_BAD_REQUEST,
                        "multipart part %d: headers not terminated by an empty line", count);
                return -1;
            }
            size_t e = (size_t)(nl - body), le = e;
            if (le > p && body[le - 1] == '\r') le--;
            if (le == p) {
                p = e + 1;
                break;
            }
            const uint8_t *line = body + p;
            size_t ll = le - p;
            if (ll >= nlen - 1 && memcmp(line, needle + 1, nlen - 1) == 0) {
                cp_fail(err, CP_ERR_BAD_REQUEST,
                        "multipart part %d: delimiter inside the headers (no empty line after "
                        "the part's headers)",
                        count);
                return -1;
            }
            if (is_ows(line[0])) {
                cp_fail(err, CP_ERR_BAD_REQUEST,
                        "multipart part %d: folded (continued) header lines are not supported",
                        count);
                return -1;
            }
            const uint8_t *colon = memchr(line, ':', ll);
            if (!colon) {
                cp_fail(err, CP_ERR_BAD_REQUEST,
                        "multipart part %d: malformed header line (no ':')", count);
                return -1;
            }
            size_t hn = (size_t)(colon - line);
            while (hn > 0 && is_ows(line[hn - 1])) hn--;
            const uint8_t *v = colon + 1;
            size_t vn = ll - (size_t)(v - line);
            while (vn > 0 && is_ows(v[0])) v++, vn--;
            while (vn > 0 && is_ows(v[vn - 1])) vn--;
            if (ci_equal(line, hn, "content-disposition")) {
                parse_disposition(v, vn, pt);
            } else if (ci_equal(line, hn, "content-type")) {
                copy_text(pt->content_type, sizeof pt->content_type, v, vn);
            } else if (ci_equal(line, hn, "content-transfer-encoding")) {
                if (!ci_equal(v, vn, "binary") && !ci_equal(v, vn, "8bit") &&
                    !ci_equal(v, vn, "7bit")) {
                    char shown[33];
                    copy_text(shown, sizeof shown, v, vn);
                    cp_fail(err, CP_ERR_BAD_REQUEST,
                            "multipart part %d: unsupported Content-Transfer-Encoding \"%s\" "
                            "(only binary, 8bit and 7bit)",
                            count, shown);
                    return -1;
                }
            }
            p = e + 1;
        }

        /* the part's body runs to the next delimiter; the search starts at the line feed of
         * the empty line so that an empty body without its own CRLF is accepted too */
        size_t start = p;
        k = next_delimiter(body, len, start - 1, needle, nlen, &at, &next);
        if (k == DELIM_NONE || k == DELIM_TRUNC) {
            cp_fail(err, CP_ERR_BAD_REQUEST,
                    "multipart part %d: body truncated, no closing delimiter \"--%s--\"", count,
                    boundary);
            return -1;
        }
        size_t end = at;
        if (end > start && body[end - 1] == '\r') end--;
        if (end < start) end = start;
        pt->data = body + start;
        pt->len = end - start;
        count++;
        if (k == DELIM_CLOSE) return count;
        pos = next;
    }
}
