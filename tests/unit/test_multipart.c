/* test_multipart.c — multipart/form-data: Content-Type boundary extraction and body parsing
 * (binary parts, CR/LF and boundary fragments inside data, LF-only bodies, malformed bodies,
 * part limits). Bodies are copied into exactly-sized heap buffers so that a sanitizer catches
 * any read past the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"
#include "test.h"

#define MAXP 8

/* Parses the first n bytes of s from an exactly-sized copy. */
static int parse_n(const char *s, size_t n, const char *boundary, multipart_part *parts,
                   int max_parts, cp_error *err, uint8_t **copy)
{
    *copy = malloc(n ? n : 1);
    memcpy(*copy, s, n);
    err->status = CP_OK;
    err->message[0] = 0;
    return multipart_parse(*copy, n, boundary, parts, max_parts, err);
}

static bool part_is(const multipart_part *p, const void *data, size_t len)
{
    return p->len == len && (len == 0 || memcmp(p->data, data, len) == 0);
}

TEST(boundary_from_content_type)
{
    char b[80];
    CHECK(multipart_boundary("multipart/form-data; boundary=abc123", b, sizeof b));
    CHECK(strcmp(b, "abc123") == 0);
    CHECK(multipart_boundary("Multipart/Form-Data;BOUNDARY=\"a b:c\"", b, sizeof b));
    CHECK(strcmp(b, "a b:c") == 0);
    /* a ';' inside another parameter's quoted value does not end it */
    CHECK(multipart_boundary("multipart/form-data; x=\"a;boundary=no\"; boundary=\"(x,y)\"; z=1",
                             b, sizeof b));
    CHECK(strcmp(b, "(x,y)") == 0);
    CHECK(multipart_boundary("  multipart/form-data ;  boundary = ----WebKitFormBoundary7MA4Y",
                             b, sizeof b));
    CHECK(strcmp(b, "----WebKitFormBoundary7MA4Y") == 0);
    /* 70 characters is the maximum, 71 is too long */
    char ct[200];
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%070d", 7);
    CHECK(multipart_boundary(ct, b, sizeof b));
    CHECK_EQ_INT(strlen(b), 70);
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%071d", 7);
    CHECK(!multipart_boundary(ct, b, sizeof b));
    CHECK(!multipart_boundary("multipart/form-data; boundary=abc", b, 3)); /* cap too small */
    CHECK(!multipart_boundary("multipart/form-data", b, sizeof b));
    CHECK(!multipart_boundary("multipart/form-data; boundary=", b, sizeof b));
    CHECK(!multipart_boundary("multipart/form-data; boundary=\"\"", b, sizeof b));
    CHECK(!multipart_boundary("multipart/form-data; boundary=\"abc", b, sizeof b));
    CHECK(!multipart_boundary("multipart/form-data; boundary=\"ab \"", b, sizeof b));
    CHECK(!multipart_boundary("multipart/form-data; boundary=a<b", b, sizeof b));
    CHECK(!multipart_boundary("multipart/mixed; boundary=abc", b, sizeof b));
    CHECK(!multipart_boundary("multipart/form-dataX; boundary=abc", b, sizeof b));
    CHECK(!multipart_boundary("image/jpeg", b, sizeof b));
    CHECK(!multipart_boundary(NULL, b, sizeof b));
    CHECK(!multipart_boundary("", b, sizeof b));

    CHECK(multipart_is_form_data("multipart/form-data"));
    CHECK(multipart_is_form_data("MULTIPART/FORM-DATA; boundary=x"));
    CHECK(!multipart_is_form_data("multipart/mixed; boundary=x"));
    CHECK(!multipart_is_form_data("application/octet-stream"));
    CHECK(!multipart_is_form_data(NULL));
}

TEST(one_part)
{
    static const char body[] = "--XyZ\r\n"
                               "Content-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n"
                               "Content-Type: image/jpeg\r\n"
                               "\r\n"
                               "JPEGDATA\r\n"
                               "--XyZ--\r\n";
    multipart_part parts[MAXP];
    cp_error err;
    uint8_t *copy;
    int n = parse_n(body, sizeof body - 1, "XyZ", parts, MAXP, &err, &copy);
    CHECK_EQ_INT(n, 1);
    if (n == 1) {
        CHECK(part_is(&parts[0], "JPEGDATA", 8));
        CHECK(parts[0].data == copy + (strstr(body, "JPEGDATA") - body)); /* no copy */
        CHECK(strcmp(parts[0].name, "image") == 0);
        CHECK(strcmp(parts[0].filename, "a.jpg") == 0);
        CHECK(strcmp(parts[0].content_type, "image/jpeg") == 0);
    }
    free(copy);
}

TEST(several_parts_binary_in_order)
{
    /* part bodies contain CR, LF, CRLF, NUL, "--XyZ" without a preceding line feed, "\r\n--Xy"
     * (a prefix of the delimiter) and "\r\n--XyZz" (the delimiter followed by other bytes) */
    static const uint8_t d0[] = {0xff, 0xd8, '\r', '\n', '-', '-', 'X', 'y', 0, '\r', 0x00, '\n',
                                 '\n', 0xff, 0xd9};
    static const uint8_t d1[] = {'a', '-', '-', 'X', 'y', 'Z', '\r', '\n', '-', '-', 'X', 'y',
                                 'Z', 'z', '\r', '\n', '\r'};
    static const uint8_t d2[] = {'\r', '\n'};
    uint8_t body[1024];
    size_t n = 0;
#define ADD(s, l) (memcpy(body + n, (s), (l)), n += (l))
#define ADDS(s) ADD(s, strlen(s))
    ADDS("preamble to be ignored\r\n--XyZ\r\n");
    ADDS("content-disposition: form-data; name=first\r\n\r\n");
    ADD(d0, sizeof d0);
    ADDS("\r\n--XyZ  \r\n"); /* transport padding after the delimiter */
    ADDS("Content-Disposition: form-data; name=\"second\"; filename=\"C:\\dir\\b.png\"\r\n");
    ADDS("CONTENT-TYPE:image/png\r\n\r\n");
    ADD(d1, sizeof d1);
    ADDS("\r\n--XyZ\r\n\r\n"); /* a part without headers */
    ADD(d2, sizeof d2);
    ADDS("\r\n--XyZ\r\nContent-Transfer-Encoding: binary\r\n\r\n");
    ADDS("\r\n--XyZ--");    /* an empty fourth part, then the close delimiter at the end */
#undef ADD
#undef ADDS
    multipart_part parts[MAXP];
    cp_error err;
    uint8_t *copy;
    int got = parse_n((const char *)body, n, "XyZ", parts, MAXP, &err, &copy);
    CHECK_EQ_INT(got, 4);
    if (got == 4) {
        CHECK(part_is(&parts[0], d0, sizeof d0));
        CHECK(strcmp(parts[0].name, "first") == 0);
        CHECK(parts[0].filename[0] == 0 && parts[0].content_type[0] == 0);
        CHECK(part_is(&parts[1], d1, sizeof d1));
        CHECK(strcmp(parts[1].name, "second") == 0);
        CHECK(strcmp(parts[1].filename, "C:\\dir\\b.png") == 0);
        CHECK(strcmp(parts[1].content_type, "image/png") == 0);
        CHECK(part_is(&parts[2], d2, sizeof d2));
        CHECK(parts[2].name[0] == 0);
        CHECK(part_is(&parts[3], "", 0));
    }
    free(copy);
}

TEST(lf_only_and_quoted_boundary)
{
    /* the boundary comes from a quoted Content-Type parameter with a space in it */
    char b[80];
    CHECK(multipart_boundary("multipart/form-data; boundary=\"b o=u\"", b, sizeof b));
    static const char body[] = "--b o=u\n"
                               "Content-Disposition: form-data; name=\"x\"\n"
                               "\n"
                               "one\n"
                               "--b o=u\n"
                               "Content-Disposition: form-data; name=\"y\"\n"
                               "\n"
                               "two\r\n"
                               "--b o=u--\n"
                               "epilogue\n";
    multipart_part parts[MAXP];
    cp_error err;
    uint8_t *copy;
    int n = parse_n(body, sizeof body - 1, b, parts, MAXP, &err, &copy);
    CHECK_EQ_INT(n, 2);
    if (n == 2) {
        CHECK(part_is(&parts[0], "one", 3));
        CHECK(strcmp(parts[0].name, "x") == 0);
        CHECK(part_is(&parts[1], "two", 3));
        CHECK(strcmp(parts[1].name, "y") == 0);
    }
    free(copy);
}

TEST(missing_closing_delimiter)
{
    static const char *bodies[] = {
        "--B\r\n\r\ndata",                /* body runs to the end */
        "--B\r\n\r\ndata\r\n--B",          /* delimiter cut before its line end */
        "--B\r\n\r\ndata\r\n--B-",         /* half a close delimiter */
        "--B\r\n\r\ndata\r\n--B\r",        /* cut inside the CRLF */
        "--B\r\n\r\ndata\r\n--B\r\n",      /* a delimiter, then nothing */
        "--B",                             /* only the first delimiter */
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        multipart_part parts[MAXP];
        cp_error err;
        uint8_t *copy;
        int n = parse_n(bodies[i], strlen(bodies[i]), "B", parts, MAXP, &err, &copy);
        CHECK_EQ_INT(n, -1);
        CHECK_EQ_INT(err.status, CP_ERR_BAD_REQUEST);
        CHECK(err.message[0] != 0);
        free(copy);
    }
    multipart_part parts[MAXP];
    cp_error err;
    uint8_t *copy;
    parse_n(bodies[0], strlen(bodies[0]), "B", parts, MAXP, &err, &copy);
    CHECK(strstr(err.message, "closing delimiter") != NULL);
    free(copy);
}

TEST(headers_without_terminator)
{
    static const char *bodies[] = {
        "--B\r\nContent-Type: image/png\r\n",                 /* ends inside the headers */
        "--B\r\nContent-Type: image/png\r\n--B--\r\n",        /* delimiter before empty line */
        "--B\r\nno colon here\r\n\r\nx\r\n--B--",             /* malformed header line */
        "--B\r\nContent-Transfer-Encoding: base64\r\n\r\neA==\r\n--B--",
    };
    static const char *expect[] = {"not terminated", "delimiter inside the headers", "no ':'",
                                   "base64"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        multipart_part parts[MAXP];
        cp_error err;
        uint8_t *copy;
        int n = parse_n(bodies[i], strlen(bodies[i]), "B", parts, MAXP, &err, &copy);
        CHECK_EQ_INT(n, -1);
        CHECK_EQ_INT(err.status, CP_ERR_BAD_REQUEST);
        CHECK(strstr(err.message, expect[i]) != NULL);
        free(copy);
    }
}

TEST(too_many_parts)
{
    static const char body[] = "--B\r\n\r\n1\r\n--B\r\n\r\n2\r\n--B\r\n\r\n3\r\n--B--\r\n";
    multipart_part parts[3];
    cp_error err;
    uint8_t *copy;
    int n = parse_n(body, sizeof body - 1, "B", parts, 2, &err, &copy);
    CHECK_EQ_INT(n, -1);
    CHECK_EQ_INT(err.status, CP_ERR_TOO_MANY_IMAGES);
    CHECK(strstr(err.message, "more than 2") != NULL);
    free(copy);
    n = parse_n(body, sizeof body - 1, "B", parts, 3, &err, &copy);
    CHECK_EQ_INT(n, 3);
    if (n == 3) CHECK(part_is(&parts[2], "3", 1));
    free(copy);
    n = parse_n(body, sizeof body - 1, "B", NULL, 0, &err, &copy);
    CHECK_EQ_INT(n, -1);
    CHECK_EQ_INT(err.status, CP_ERR_TOO_MANY_IMAGES);
    free(copy);
}

TEST(empty_body_and_garbage)
{
    multipart_part parts[MAXP];
    cp_error err;
    uint8_t *copy;
    int n = parse_n("", 0, "B", parts, MAXP, &err, &copy);
    CHECK_EQ_INT(n, -1);
    CHECK_EQ_INT(err.status, CP_ERR_BAD_REQUEST);
    CHECK(strstr(err.message, "empty") != NULL);
    free(copy);

    static const char garbage[] = "\x89PNG\r\n\x1a\n not multipart at all -- B\r\n-B\r\n--Bx\r\n";
    n = parse_n(garbage, sizeof garbage - 1, "B", parts, MAXP, &err, &copy);
    CHECK_EQ_INT(n, -1);
    CHECK_EQ_INT(err.status, CP_ERR_BAD_REQUEST);
    CHECK(strstr(err.message, "does not contain") != NULL);
    free(copy);

    /* an invalid boundary argument */
    static const char body[] = "--B\r\n\r\nx\r\n--B--";
    n = parse_n(body, sizeof body - 1, "", parts, MAXP, &err, &copy);
    CHECK_EQ_INT(n, -1);
    CHECK_EQ_INT(err.status, CP_ERR_BAD_REQUEST);
    free(copy);

    /* only a close delimiter: zero parts, not an error */
    static const char closed[] = "--B--\r\n";
    n = parse_n(closed, sizeof closed - 1, "B", parts, MAXP, &err, &copy);
    CHECK_EQ_INT(n, 0);
    free(copy);

    /* every prefix of a valid body is rejected without reading past its end */
    static const char full[] = "--B\r\nContent-Disposition: form-data; name=\"a\"; filename=\"f\"\r\n"
                               "Content-Type: x\r\n\r\nabc\r\n--B--";
    int accepted = 0;
    for (size_t len = 0; len < sizeof full - 1; len++) {
        n = parse_n(full, len, "B", parts, MAXP, &err, &copy);
        if (n >= 0) accepted++;
        free(copy);
    }
    CHECK_EQ_INT(accepted, 0);
    n = parse_n(full, sizeof full - 1, "B", parts, MAXP, &err, &copy);
    CHECK_EQ_INT(n, 1);
    free(copy);
}

TEST(long_header_values_truncated)
{
    char body[2048];
    char longname[600];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    int len = snprintf(body, sizeof body,
                       "--B\r\nContent-Disposition: form-data; name=\"%s\"; filename=%s\r\n"
                       "Content-Type: %s\r\n\r\nz\r\n--B--",
                       longname, longname, longname);
    multipart_part parts[MAXP];
    cp_error err;
    uint8_t *copy;
    int n = parse_n(body, (size_t)len, "B", parts, MAXP, &err, &copy);
    CHECK_EQ_INT(n, 1);
    if (n == 1) {
        CHECK_EQ_INT(strlen(parts[0].name), sizeof parts[0].name - 1);
        CHECK_EQ_INT(strlen(parts[0].filename), sizeof parts[0].filename - 1);
        CHECK_EQ_INT(strlen(parts[0].content_type), sizeof parts[0].content_type - 1);
        CHECK(part_is(&parts[0], "z", 1));
    }
    free(copy);
}

int main(void)
{
    RUN(boundary_from_content_type);
    RUN(one_part);
    RUN(several_parts_binary_in_order);
    RUN(lf_only_and_quoted_boundary);
    RUN(missing_closing_delimiter);
    RUN(headers_without_terminator);
    RUN(too_many_parts);
    RUN(empty_body_and_garbage);
    RUN(long_header_values_truncated);
    return TEST_SUMMARY();
}
