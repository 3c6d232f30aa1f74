/* base64.c — base64 to bytes (see base64.h). One pass, no allocation. */
#include "base64.h"

size_t base64_decoded_max(size_t text_len)
{
    return text_len / 4 * 3 + (text_len % 4 ? 3 : 0);
}

/* 0..63, 64 for whitespace, 65 for '=', 255 for anything else */
static uint8_t sextet(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return (uint8_t)(c - 'A');
    if (c >= 'a' && c <= 'z') return (uint8_t)(c - 'a' + 26);
    if (c >= '0' && c <= '9') return (uint8_t)(c - '0' + 52);
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') return 64;
    if (c == '=') return 65;
    return 255;
}

bool base64_decode(const char *text, size_t len, uint8_t *out, size_t *out_len, size_t *bad_pos)
{
    uint32_t acc = 0;
    int have = 0;      /* sextets in acc */
    size_t o = 0, pad = 0, i = 0;
    for (; i < len; i++) {
        uint8_t v = sextet((unsigned char)text[i]);
        if (v == 64)
            continue;
        if (v == 255 || (v < 64 && pad)) {
            *bad_pos = i;
            return false;
        }
        if (v == 65) { /* padding: only to complete a final group of 2 or 3 sextets */
            if (have < 2 || ++pad > 2 || (have + (int)pad) > 4) {
                *bad_pos = i;
                return false;
            }
            continue;
        }
        acc = acc << 6 | v;
        if (++have == 4) {
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            acc = 0;
            have = 0;
        }
    }
    if (pad && have + (int)pad != 4) {
        *bad_pos = len;
        return false;
    }
    if (have == 1) { /* 6 bits cannot make a byte */
        *bad_pos = len;
        return false;
    }
    if (have == 2) {
        out[o++] = (uint8_t)(acc >> 4);
    } else if (have == 3) {
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
    }
    *out_len = o;
    return true;
}
