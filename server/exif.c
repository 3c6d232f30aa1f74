/* exif.c — Orientation from a TIFF/EXIF blob or an XMP packet, with Pillow's rules
 * (Image.Exif.load + TiffImagePlugin.ImageFileDirectory_v2.load, Image.getexif's XMP
 * fallback). See exif.h for the rules; every read is bounds-checked against len. */
#include "exif.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define TAG_ORIENTATION 0x0112u

typedef struct {
    const uint8_t *p;
    size_t len;
    bool big_endian;
} tiff_buf;

static uint16_t rd16(const tiff_buf *t, size_t off)
{
    const uint8_t *b = t->p + off;
    return t->big_endian ? (uint16_t)((b[0] << 8) | b[1]) : (uint16_t)((b[1] << 8) | b[0]);
}

static uint32_t rd32(const tiff_buf *t, size_t off)
{
    const uint8_t *b = t->p + off;
    if (t->big_endian)
        return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
    return ((uint32_t)b[3] << 24) | ((uint32_t)b[2] << 16) | ((uint32_t)b[1] << 8) | b[0];
}

static uint64_t rd64(const tiff_buf *t, size_t off)
{
    uint64_t hi = rd32(t, t->big_endian ? off : off + 4);
    uint64_t lo = rd32(t, t->big_endian ? off + 4 : off);
    return (hi << 32) | lo;
}

/* Size in bytes of one value of a TIFF type Pillow knows; 0 for types it skips. */
static unsigned type_size(unsigned typ)
{
    switch (typ) {
    case 1: case 2: case 6: case 7: return 1;  /* BYTE ASCII SBYTE UNDEFINED */
    case 3: case 8: return 2;                  /* SHORT SSHORT */
    case 4: case 9: case 11: case 13: return 4; /* LONG SLONG FLOAT IFD */
    case 5: case 10: case 12: case 16: return 8; /* RATIONAL SRATIONAL DOUBLE LONG8 */
    default: return 0;
    }
}

static int in_range(long long v)
{
    return (v >= 1 && v <= 8) ? (int)v : EXIF_ORIENTATION_OTHER;
}

static int from_double(double d)
{
    if (!(d >= 1.0 && d <= 8.0)) /* also false for NaN */
        return EXIF_ORIENTATION_OTHER;
    long long i = (long long)d;
    return ((double)i == d) ? (int)i : EXIF_ORIENTATION_OTHER;
}

/* Value of the first element of a stored tag (v points at size bytes inside t). */
static int decode_value(const tiff_buf *t, unsigned typ, size_t v)
{
    switch (typ) {
    case 3: return in_range(rd16(t, v));
    case 8: return in_range((int16_t)rd16(t, v));
    case 4: case 13: return in_range(rd32(t, v));
    case 9: return in_range((int32_t)rd32(t, v));
    case 6: return in_range((int8_t)t->p[v]);
    case 16: {
        uint64_t u = rd64(t, v);
        return u <= 8 ? in_range((long long)u) : EXIF_ORIENTATION_OTHER;
    }
    case 11: {
        uint32_t u = rd32(t, v);
        float f;
        memcpy(&f, &u, sizeof f);
        return from_double((double)f);
    }
    case 12: {
        uint64_t u = rd64(t, v);
        double d;
        memcpy(&d, &u, sizeof d);
        return from_double(d);
    }
    case 5: case 10: {
        long long num, den;
        if (typ == 5) {
            num = rd32(t, v);
            den = rd32(t, v + 4);
        } else {
            num = (int32_t)rd32(t, v);
            den = (int32_t)rd32(t, v + 4);
        }
        if (den == 0 || num % den != 0)
            return EXIF_ORIENTATION_OTHER; /* NaN or a fraction */
        return in_range(num / den);
    }
    default: /* BYTE, ASCII, UNDEFINED: bytes/str never equal an int in Pillow */
        return EXIF_ORIENTATION_OTHER;
    }
}

int exif_find_orientation(const uint8_t *data, size_t len)
{
    if (!data)
        return EXIF_ORIENTATION_ABSENT;
    while (len >= 6 && memcmp(data, "Exif\0\0", 6) == 0) {
        data += 6;
        len -= 6;
    }
    if (len < 8)
        return EXIF_ORIENTATION_ABSENT;
    tiff_buf t = {data, len, false};
    if (memcmp(data, "MM\0*", 4) == 0 || memcmp(data, "MM*\0", 4) == 0)
        t.big_endian = true;
    else if (memcmp(data, "II*\0", 4) == 0 || memcmp(data, "II\0*", 4) == 0)
        t.big_endian = false;
    else
        return EXIF_ORIENTATION_ABSENT; /* Pillow raises; treat as no EXIF */

    size_t pos = rd32(&t, 4);
    if (pos > len || len - pos < 2)
        return EXIF_ORIENTATION_ABSENT;
    unsigned count = rd16(&t, pos);
    pos += 2;

    int found = EXIF_ORIENTATION_ABSENT;
    for (unsigned i = 0; i < count; i++, pos += 12) {
        if (len - pos < 12)
            break; /* truncated IFD: keep what was read so far */
        unsigned tag = rd16(&t, pos);
        unsigned typ = rd16(&t, pos + 2);
        uint64_t n = rd32(&t, pos + 4);
        unsigned unit = type_size(typ);
        if (unit == 0 || n == 0)
            continue; /* unsupported type or empty value: tag not stored */
        uint64_t size = n * unit;
        size_t voff;
        if (size > 4) {
            uint64_t off = rd32(&t, pos + 8);
            if (off > len || size > len - off)
                break; /* Pillow's _safe_read raises: the rest of the IFD is lost */
            voff = (size_t)off;
        } else {
            voff = pos + 8;
        }
        if (tag == TAG_ORIENTATION)
            found = decode_value(&t, typ, voff); /* last duplicate wins */
    }
    return found;
}

int exif_orientation(const uint8_t *data, size_t len)
{
    int v = exif_find_orientation(data, len);
    return (v >= 1 && v <= 8) ? v : 1;
}

int xmp_find_orientation(const uint8_t *data, size_t len)
{
    static const char key[] = "tiff:Orientation";
    const size_t klen = sizeof key - 1;
    if (!data)
        return EXIF_ORIENTATION_ABSENT;
    for (size_t i = 0; i + klen < len; i++) {
        const uint8_t *hit = memchr(data + i, 't', len - i);
        if (!hit)
            break;
        i = (size_t)(hit - data);
        if (len - i < klen + 2 || memcmp(hit, key, klen) != 0)
            continue;
        size_t j = i + klen;
        if (data[j] == '>') {
            j += 1;
        } else if (data[j] == '=' && data[j + 1] == '"') {
            j += 2;
        } else {
            continue;
        }
        if (j < len && data[j] >= '0' && data[j] <= '9')
            return data[j] - '0';
    }
    return EXIF_ORIENTATION_ABSENT;
}

int orientation_resolve(int exif_value, int xmp_value)
{
    int v = (exif_value != EXIF_ORIENTATION_ABSENT) ? exif_value : xmp_value;
    return (v >= 1 && v <= 8) ? v : 1;
}
