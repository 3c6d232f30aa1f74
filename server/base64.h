/* base64.h — RFC 4648 base64 decoding for JSON image input, with the output bound known
 * before any memory is allocated. */
#ifndef CLIPPREP_BASE64_H
#define CLIPPREP_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most bytes that text_len characters of base64 can decode to (an upper bound: padding
 * and ignored whitespace only make the result shorter). */
size_t base64_decoded_max(size_t text_len);

/* Decodes text[0..len) into out (room for base64_decoded_max(len) bytes). Accepts the standard
 * alphabet and the URL-safe one ('-', '_'), optional '=' padding at the end only, and ignores
 * ASCII whitespace (line-wrapped input). On a bad character or a bad length returns false with
 * *bad_pos its offset. */
bool base64_decode(const char *text, size_t len, uint8_t *out, size_t *out_len, size_t *bad_pos);

#endif
