/* test_decode.c — unit tests for server/decode*.c and server/exif.c.
 * Every image is generated here with the libjpeg / libpng / libwebp encoders (or assembled by
 * hand where the encoder cannot express the case), then decoded and checked value by value
 * against Pillow 11.3's convert("RGB") semantics (spec E/F). */
#include <pthread.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>

#include "decode.h"
#include "error.h"
#include "exif.h"
#include "test.h"

/* ---- small helpers ------------------------------------------------------------------ */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf_t;

static void buf_put(buf_t *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            abort();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_le32(buf_t *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    buf_put(b, x, 4);
}

static void put_le24(buf_t *b, uint32_t v)
{
    uint8_t x[3] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16)};
    buf_put(b, x, 3);
}

/* Little-endian TIFF with IFD0 = {Make "abc", Orientation SHORT o}. */
static size_t make_exif(uint8_t *out, int o, int with_prefix)
{
    static const uint8_t tmpl[] = {'I', 'I', 42, 0, 8, 0, 0, 0, /* header */
                                   2, 0,                         /* 2 entries */
                                   0x0f, 0x01, 2, 0, 4, 0, 0, 0, 'a', 'b', 'c', 0,
                                   0x12, 0x01, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                                   0, 0, 0, 0}; /* next IFD */
    size_t n = 0;
    if (with_prefix) {
        memcpy(out, "Exif\0\0", 6);
        n = 6;
    }
    memcpy(out + n, tmpl, sizeof tmpl);
    out[n + 30] = (uint8_t)o; /* value of entry 2 */
    return n + sizeof tmpl;
}

typedef struct {
    image_header hdr;
    int w, h;
    uint8_t *px;
    cp_error err;
    int ok;
} decoded;

/* header + full decode; px is NULL on failure (err filled). */
static decoded decode_all(const uint8_t *data, size_t len, int apply_orientation, int max_scans)
{
    decoded d;
    memset(&d, 0, sizeof d);
    if (!decode_read_header(data, len, &d.hdr, &d.err))
        return d;
    decode_options opt = {.apply_orientation = apply_orientation != 0, .max_scans = max_scans};
    decode_output_size(&d.hdr, &opt, &d.w, &d.h);
    size_t sz = (size_t)d.w * d.h * 3;
    d.px = malloc(sz);
    if (!decode_rgb(data, len, &d.hdr, &opt, d.px, sz, &d.err)) {
        free(d.px);
        d.px = NULL;
        return d;
    }
    d.ok = 1;
    return d;
}

static const uint8_t *px_at(const decoded *d, int x, int y)
{
    return d->px + ((size_t)y * d->w + x) * 3;
}

static int px_eq(const decoded *d, int x, int y, int r, int g, int b)
{
    const uint8_t *p = px_at(d, x, y);
    return p[0] == r && p[1] == g && p[2] == b;
}

static int px_near(const decoded *d, int x, int y, int r, int g, int b, int tol)
{
    const uint8_t *p = px_at(d, x, y);
    return abs(p[0] - r) <= tol && abs(p[1] - g) <= tol && abs(p[2] - b) <= tol;
}

/* ---- JPEG encoder ------------------------------------------------------------------- */

typedef struct {
    int w, h, comps; /* 1, 3 (RGB input), 4 (CMYK input), 2 (unknown) */
    int quality, progressive, subsample_444, arith;
    const uint8_t *pixels; /* w*h*comps */
    const uint8_t *app1;   /* optional APP1 payload */
    size_t app1_len;
} jpeg_spec;

static buf_t make_jpeg(const jpeg_spec *s)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *mem = NULL;
    unsigned long memlen = 0;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &memlen);
    c.image_width = (JDIMENSION)s->w;
    c.image_height = (JDIMENSION)s->h;
    c.input_components = s->comps;
    c.in_color_space = s->comps == 1   ? JCS_GRAYSCALE
                       : s->comps == 3 ? JCS_RGB
                       : s->comps == 4 ? JCS_CMYK
                                       : JCS_UNKNOWN;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, s->quality, TRUE);
    if (s->subsample_444 && s->comps == 3)
        for (int i = 0; i < 3; i++)
            c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
    if (s->progressive)
        jpeg_simple_progression(&c);
    c.arith_code = s->arith ? TRUE : FALSE;
    jpeg_start_compress(&c, TRUE);
    if (s->app1)
        jpeg_write_marker(&c, JPEG_APP0 + 1, s->app1, (unsigned)s->app1_len);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(s->pixels + (size_t)c.next_scanline * s->w * s->comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    buf_t b = {0};
    buf_put(&b, mem, memlen);
    free(mem);
    return b;
}

static uint8_t *fill_pixels(int w, int h, int comps, const uint8_t *value)
{
    uint8_t *p = malloc((size_t)w * h * comps);
    for (size_t i = 0; i < (size_t)w * h; i++)
        memcpy(p + i * comps, value, comps);
    return p;
}

static uint8_t *noise_pixels(int w, int h, int comps, unsigned seed)
{
    uint8_t *p = malloc((size_t)w * h * comps);
    for (size_t i = 0; i < (size_t)w * h * comps; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(((i / comps) % w) * 3 + (seed >> 24) % 40);
    }
    return p;
}

/* Uniform noise: compresses badly, for files larger than a given size. */
static uint8_t *random_pixels(int w, int h, int comps, unsigned seed)
{
    uint8_t *p = malloc((size_t)w * h * comps);
    for (size_t i = 0; i < (size_t)w * h * comps; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 23);
    }
    return p;
}

/* ---- PNG encoder -------------------------------------------------------------------- */

typedef struct {
    int w, h, depth, ctype, interlace;
    const uint16_t *samples; /* w*h*channels sample values */
    const png_color *palette;
    int npalette;
    const uint8_t *trns;
    int ntrns;
    const png_color_16 *trns_color;
    const uint8_t *exif;
    size_t exif_len;
} png_spec;

static void png_write_cb(png_structp png, png_bytep d, size_t n)
{
    buf_put(png_get_io_ptr(png), d, n);
}

static void png_flush_cb(png_structp png)
{
    (void)png;
}

static int channels_of(int ctype)
{
    switch (ctype) {
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1;
    }
}

static buf_t make_png(const png_spec *s)
{
    buf_t out = {0};
    int ch = channels_of(s->ctype);
    size_t rowbytes = ((size_t)s->w * ch * s->depth + 7) / 8;
    uint8_t *rows = calloc((size_t)s->h, rowbytes);
    for (int y = 0; y < s->h; y++) {
        uint8_t *r = rows + (size_t)y * rowbytes;
        for (int i = 0; i < s->w * ch; i++) {
            unsigned v = s->samples[(size_t)y * s->w * ch + i];
            if (s->depth == 16) {
                r[2 * i] = (uint8_t)(v >> 8);
                r[2 * i + 1] = (uint8_t)v;
            } else if (s->depth == 8) {
                r[i] = (uint8_t)v;
            } else {
                int per = 8 / s->depth;
                r[i / per] |= (uint8_t)(v << (8 - s->depth * (i % per + 1)));
            }
        }
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "  png encoder failed\n");
        png_destroy_write_struct(&png, &info);
        free(rows);
        free(out.p);
        buf_t none = {0};
        return none;
    }
    png_set_write_fn(png, &out, png_write_cb, png_flush_cb);
    png_set_check_for_invalid_index(png, 0);
    png_set_IHDR(png, info, (png_uint_32)s->w, (png_uint_32)s->h, s->depth, s->ctype,
                 s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette)
        png_set_PLTE(png, info, s->palette, s->npalette);
    if (s->trns || s->trns_color)
        png_set_tRNS(png, info, s->trns, s->ntrns, s->trns_color);
    if (s->exif)
        png_set_eXIf_1(png, info, (png_uint_32)s->exif_len, (png_bytep)s->exif);
    png_write_info(png, info);
    int passes = png_set_interlace_handling(png);
    for (int p = 0; p < passes; p++)
        for (int y = 0; y < s->h; y++)
            png_write_row(png, rows + (size_t)y * rowbytes);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return out;
}

/* ---- WebP container helpers ------------------------------------------------------- */

/* Payload (chunk list after "WEBP") of a simple-format file from WebPEncode*. */
static void webp_body(const uint8_t *file, size_t n, const uint8_t **body, size_t *len)
{
    *body = file + 12;
    *len = n - 12;
}

static void put_chunk(buf_t *b, const char *tag, const uint8_t *d, size_t n)
{
    buf_put(b, tag, 4);
    put_le32(b, (uint32_t)n);
    buf_put(b, d, n);
    if (n & 1)
        buf_put(b, "", 1);
}

static buf_t riff_wrap(const buf_t *chunks)
{
    buf_t f = {0};
    buf_put(&f, "RIFF", 4);
    put_le32(&f, (uint32_t)(chunks->n + 4));
    buf_put(&f, "WEBP", 4);
    buf_put(&f, chunks->p, chunks->n);
    return f;
}

static void put_vp8x(buf_t *b, uint8_t flags, int w, int h)
{
    buf_t v = {0};
    uint8_t f[4] = {flags, 0, 0, 0};
    buf_put(&v, f, 4);
    put_le24(&v, (uint32_t)(w - 1));
    put_le24(&v, (uint32_t)(h - 1));
    put_chunk(b, "VP8X", v.p, v.n);
    free(v.p);
}

/* ---- tests: detection and errors ---------------------------------------------------- */

TEST(test_detect_format)
{
    static const uint8_t jpg[] = {0xff, 0xd8, 0xff, 0xe0};
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0};
    static const uint8_t webp[] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P', 'V'};
    static const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a'};
    CHECK_EQ_INT(decode_detect_format(jpg, sizeof jpg), IMAGE_FORMAT_JPEG);
    CHECK_EQ_INT(decode_detect_format(png, sizeof png), IMAGE_FORMAT_PNG);
    CHECK_EQ_INT(decode_detect_format(webp, sizeof webp), IMAGE_FORMAT_WEBP);
    CHECK_EQ_INT(decode_detect_format(gif, sizeof gif), IMAGE_FORMAT_GIF);
    CHECK_EQ_INT(decode_detect_format(gif, 5), IMAGE_FORMAT_UNKNOWN);
    CHECK_EQ_INT(decode_detect_format(jpg, 2), IMAGE_FORMAT_UNKNOWN);
    CHECK_EQ_INT(decode_detect_format(NULL, 0), IMAGE_FORMAT_UNKNOWN);
    CHECK(strcmp(image_format_name(IMAGE_FORMAT_JPEG), "jpeg") == 0);
    CHECK(strcmp(image_format_name(IMAGE_FORMAT_PNG), "png") == 0);
    CHECK(strcmp(image_format_name(IMAGE_FORMAT_WEBP), "webp") == 0);
    CHECK(strcmp(image_format_name(IMAGE_FORMAT_GIF), "gif") == 0);
    CHECK(strcmp(image_format_name(IMAGE_FORMAT_UNKNOWN), "unknown") == 0);
}

TEST(test_garbage_empty_and_short)
{
    image_header h;
    cp_error e = {0};
    static const uint8_t junk[] = "this is not an image at all";
    CHECK(!decode_read_header(junk, sizeof junk, &h, &e));
    CHECK_EQ_INT(e.status, CP_ERR_UNSUPPORTED_FORMAT);
    CHECK(strstr(e.message, "unsupported image format") != NULL);

    e.status = CP_OK;
    CHECK(!decode_read_header(junk, 0, &h, &e));
    CHECK_EQ_INT(e.status, CP_ERR_INVALID_IMAGE);
    e.status = CP_OK;
    CHECK(!decode_read_header(NULL, 0, &h, &e));
    CHECK_EQ_INT(e.status, CP_ERR_INVALID_IMAGE);

    static const uint8_t png_start[] = {0x89, 'P', 'N'};
    e.status = CP_OK;
    CHECK(!decode_read_header(png_start, sizeof png_start, &h, &e));
    CHECK_EQ_INT(e.status, CP_ERR_INVALID_IMAGE);

    /* JPEG magic followed by garbage: libjpeg's own message */
    static const uint8_t bad_jpeg[] = {0xff, 0xd8, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05};
    e.status = CP_OK;
    e.message[0] = 0;
    CHECK(!decode_read_header(bad_jpeg, sizeof bad_jpeg, &h, &e));
    CHECK_EQ_INT(e.status, CP_ERR_INVALID_IMAGE);
    CHECK(strncmp(e.message, "jpeg: ", 6) == 0);

    /* PNG signature + broken IHDR */
    static const uint8_t bad_png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                                      'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0,
                                      0xde, 0xad, 0xbe, 0xef};
    e.status = CP_OK;
    CHECK(!decode_read_header(bad_png, sizeof bad_png, &h, &e));
    CHECK_EQ_INT(e.status, CP_ERR_INVALID_IMAGE);

    /* RIFF/WEBP without a frame */
    static const uint8_t bad_webp[] = {'R', 'I', 'F', 'F', 4, 0, 0, 0, 'W', 'E', 'B', 'P'};
    e.status = CP_OK;
    CHECK(!decode_read_header(bad_webp, sizeof bad_webp, &h, &e));
    CHECK_EQ_INT(e.status, CP_ERR_INVALID_IMAGE);
}

TEST(test_dst_too_small_and_mismatch)
{
    uint16_t s[6] = {1, 2, 3, 4, 5, 6};
    png_spec ps = {.w = 3, .h = 2, .depth = 8, .ctype = PNG_COLOR_TYPE_GRAY, .samples = s};
    buf_t f = make_png(&ps);
    image_header h;
    cp_error e = {0};
    CHECK(decode_read_header(f.p, f.n, &h, &e));
    uint8_t out[18];
    decode_options opt = {.apply_orientation = false};
    CHECK(!decode_rgb(f.p, f.n, &h, &opt, out, 17, &e));
    CHECK_EQ_INT(e.status, CP_ERR_INTERNAL);
    e.status = CP_OK;
    CHECK(!decode_rgb(f.p, f.n, &h, &opt, NULL, 18, &e));
    CHECK_EQ_INT(e.status, CP_ERR_INTERNAL);
    /* a header that does not belong to the data */
    image_header wrong = h;
    wrong.height = 1;
    e.status = CP_OK;
    CHECK(!decode_rgb(f.p, f.n, &wrong, &opt, out, sizeof out, &e));
    CHECK_EQ_INT(e.status, CP_ERR_INTERNAL);
    /* the exact size works, NULL options mean defaults */
    e.status = CP_OK;
    CHECK(decode_rgb(f.p, f.n, &h, NULL, out, sizeof out, &e));
    CHECK_EQ_INT(out[15], 6);
    free(f.p);
}

/* ---- tests: PNG ----------------------------------------------------------------------- */

TEST(test_png_gray16_saturates)
{
    uint16_t s[6] = {0, 1, 255, 256, 1000, 65535};
    png_spec ps = {.w = 6, .h = 1, .depth = 16, .ctype = PNG_COLOR_TYPE_GRAY, .samples = s};
    buf_t f = make_png(&ps);
    decoded d = decode_all(f.p, f.n, 0, 0);
    CHECK(d.ok);
    CHECK_EQ_INT(d.hdr.format, IMAGE_FORMAT_PNG);
    CHECK_EQ_INT(d.hdr.width, 6);
    CHECK_EQ_INT(d.hdr.height, 1);
    if (d.ok) {
        static const int want[6] = {0, 1, 255, 255, 255, 255};
        for (int x = 0; x < 6; x++)
            CHECK(px_eq(&d, x, 0, want[x], want[x], want[x]));
    }
    free(d.px);
    free(f.p);
}

TEST(test_png_gray_low_bit_depths)
{
    static const int depths[3] = {1, 2, 4};
    static const int mul[3] = {255, 85, 17};
    for (int k = 0; k < 3; k++) {
        int maxv = (1 << depths[k]) - 1;
        uint16_t s[16];
        for (int i = 0; i < 16; i++)
            s[i] = (uint16_t)(i % (maxv + 1));
        for (int il = 0; il < 2; il++) {
            png_spec ps = {.w = 16, .h = 1, .depth = depths[k], .ctype = PNG_COLOR_TYPE_GRAY,
                           .samples = s, .interlace = il};
            buf_t f = make_png(&ps);
            decoded d = decode_all(f.p, f.n, 0, 0);
            CHECK(d.ok);
            if (d.ok)
                for (int x = 0; x < 16; x++) {
                    int v = s[x] * mul[k];
                    CHECK(px_eq(&d, x, 0, v, v, v));
                }
            free(d.px);
            free(f.p);
        }
    }
}

TEST(test_png_palette_lookup_ignores_trns)
{
    png_color pal[3] = {{10, 20, 30}, {40, 50, 60}, {200, 100, 0}};
    uint8_t trns[3] = {0, 128, 255};
    uint16_t s[8] = {0, 1, 2, 3, 2, 1, 0, 15}; /* 3 and 15: past the 3-entry PLTE */
    png_spec ps = {.w = 8, .h = 1, .depth = 4, .ctype = PNG_COLOR_TYPE_PALETTE, .samples = s,
                   .palette = pal, .npalette = 3, .trns = trns, .ntrns = 3};
    buf_t f = make_png(&ps);
    decoded d = decode_all(f.p, f.n, 0, 0);
    CHECK(d.ok);
    if (d.ok) {
        for (int x = 0; x < 7; x++) {
            if (s[x] < 3)
                CHECK(px_eq(&d, x, 0, pal[s[x]].red, pal[s[x]].green, pal[s[x]].blue));
        }
        CHECK(px_eq(&d, 3, 0, 0, 0, 0)); /* Pillow: entries past the palette are black */
        CHECK(px_eq(&d, 7, 0, 0, 0, 0));
    }
    free(d.px);
    free(f.p);
}

TEST(test_png_alpha_dropped_and_16bit_high_byte)
{
    /* RGBA 8: a fully transparent pixel keeps its colour */
    uint16_t rgba[8] = {10, 20, 30, 0, 250, 251, 252, 255};
    png_spec a = {.w = 2, .h = 1, .depth = 8, .ctype = PNG_COLOR_TYPE_RGB_ALPHA, .samples = rgba};
    buf_t f = make_png(&a);
    decoded d = decode_all(f.p, f.n, 0, 0);
    CHECK(d.ok && px_eq(&d, 0, 0, 10, 20, 30) && px_eq(&d, 1, 0, 250, 251, 252));
    free(d.px);
    free(f.p);

    /* RGB 16 / RGBA 16: high byte, truncating (0x12ff -> 0x12) */
    uint16_t rgb16[6] = {0x12ff, 0x00ff, 0xff00, 0x8080, 0x7fff, 0x0100};
    png_spec b = {.w = 2, .h = 1, .depth = 16, .ctype = PNG_COLOR_TYPE_RGB, .samples = rgb16};
    f = make_png(&b);
    d = decode_all(f.p, f.n, 0, 0);
    CHECK(d.ok && px_eq(&d, 0, 0, 0x12, 0x00, 0xff) && px_eq(&d, 1, 0, 0x80, 0x7f, 0x01));
    free(d.px);
    free(f.p);

    uint16_t rgba16[4] = {0xabcd, 0x0101, 0xfeff, 0x0000};
    png_spec c = {.w = 1, .h = 1, .depth = 16, .ctype = PNG_COLOR_TYPE_RGB_ALPHA, .samples = rgba16};
    f = make_png(&c);
    d = decode_all(f.p, f.n, 0, 0);
    CHECK(d.ok && px_eq(&d, 0, 0, 0xab, 0x01, 0xfe));
    free(d.px);
    free(f.p);

    /* gray+alpha 8: gray replicated; 16: high byte of the gray sample */
    uint16_t ga8[4] = {77, 0, 200, 255};
    png_spec g8 = {.w = 2, .h = 1, .depth = 8, .ctype = PNG_COLOR_TYPE_GRAY_ALPHA, .samples = ga8};
    f = make_png(&g8);
    d = decode_all(f.p, f.n, 0, 0);
    CHECK(d.ok && px_eq(&d, 0, 0, 77, 77, 77) && px_eq(&d, 1, 0, 200, 200, 200));
    free(d.px);
    free(f.p);

    uint16_t ga16[4] = {0x3456, 0, 0x00ff, 0xffff};
    png_spec g16 = {.w = 2, .h = 1, .depth = 16, .ctype = PNG_COLOR_TYPE_GRAY_ALPHA, .samples = ga16};
    f = make_png(&g16);
    d = decode_all(f.p, f.n, 0, 0);
    CHECK(d.ok && px_eq(&d, 0, 0, 0x34, 0x34, 0x34) && px_eq(&d, 1, 0, 0, 0, 0));
    free(d.px);
    free(f.p);
}

TEST(test_png_trns_color_key_ignored)
{
    uint16_t s[6] = {5, 6, 7, 1, 2, 3};
    png_color_16 key = {0, 5, 6, 7, 0};
    png_spec ps = {.w = 2, .h = 1, .depth = 8, .ctype = PNG_COLOR_TYPE_RGB, .samples = s,
                   .trns_color = &key};
    buf_t f = make_png(&ps);
    decoded d = decode_all(f.p, f.n, 0, 0);
    CHECK(d.ok && px_eq(&d, 0, 0, 5, 6, 7) && px_eq(&d, 1, 0, 1, 2, 3));
    free(d.px);
    free(f.p);
}

TEST(test_png_interlaced_matches_plain)
{
    enum { W = 13, H = 7 };
    uint16_t rgb[W * H * 3], g2[W * H];
    for (int i = 0; i < W * H * 3; i++)
        rgb[i] = (uint16_t)((i * 37) & 255);
    for (int i = 0; i < W * H; i++)
        g2[i] = (uint16_t)((i * 7) & 3);
    for (int k = 0; k < 2; k++) {
        png_spec ps = {.w = W, .h = H, .depth = k ? 2 : 8,
                       .ctype = k ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                       .samples = k ? g2 : rgb};
        buf_t plain = make_png(&ps);
        ps.interlace = 1;
        buf_t inter = make_png(&ps);
        decoded a = decode_all(plain.p, plain.n, 0, 0), b = decode_all(inter.p, inter.n, 0, 0);
        CHECK(a.ok && b.ok);
        if (a.ok && b.ok) {
            CHECK(memcmp(a.px, b.px, W * H * 3) == 0);
            int v = k ? g2[W + 3] * 85 : -1;
            if (k)
                CHECK(px_eq(&b, 3, 1, v, v, v));
            else
                CHECK(px_eq(&b, 3, 1, rgb[(W + 3) * 3], rgb[(W + 3) * 3 + 1], rgb[(W + 3) * 3 + 2]));
        }
        free(a.px);
        free(b.px);
        free(plain.p);
        free(inter.p);
    }
}

TEST(test_png_truncation)
{
    enum { W = 40, H = 30 };
    uint16_t *s = malloc(sizeof *s * W * H * 3);
    for (int i = 0; i < W * H * 3; i++)
        s[i] = (uint16_t)((i * 2654435761u) >> 24);
    png_spec ps = {.w = W, .h = H, .depth = 8, .ctype = PNG_COLOR_TYPE_RGB, .samples = s};
    buf_t f = make_png(&ps);
    decoded full = decode_all(f.p, f.n, 0, 0);
    CHECK(full.ok);
    /* missing IEND (12 bytes): Pillow decodes it, so do we */
    decoded no_iend = decode_all(f.p, f.n - 12, 0, 0);
    CHECK(no_iend.ok);
    if (full.ok && no_iend.ok)
        CHECK(memcmp(full.px, no_iend.px, W * H * 3) == 0);
    /* ... and without the last IDAT's CRC: libpng fails after the last row, Pillow does not
     * need those bytes */
    decoded no_crc = decode_all(f.p, f.n - 16, 0, 0);
    CHECK(no_crc.ok);
    if (full.ok && no_crc.ok)
        CHECK(memcmp(full.px, no_crc.px, W * H * 3) == 0);
    free(no_crc.px);
    /* ... and without the zlib stream's adler32 (the IDAT chunk now claims 4 bytes more
     * than the file has): all deflate data is there, so Pillow decodes it; with 50 bytes
     * of deflate data missing it reports a truncated file */
    decoded no_adler = decode_all(f.p, f.n - 20, 0, 0);
    CHECK(no_adler.ok);
    if (full.ok && no_adler.ok)
        CHECK(memcmp(full.px, no_adler.px, W * H * 3) == 0);
    free(no_adler.px);
    decoded short_by_one = decode_all(f.p, f.n - 70, 0, 0);
    CHECK(!short_by_one.ok && short_by_one.err.status == CP_ERR_INVALID_IMAGE);
    /* cut inside the image data: error with a message */
    decoded cut = decode_all(f.p, f.n / 2, 0, 0);
    CHECK(!cut.ok);
    CHECK_EQ_INT(cut.err.status, CP_ERR_INVALID_IMAGE);
    CHECK(cut.err.message[0] != 0);
    /* bad CRC in IHDR */
    f.p[8 + 8 + 13] ^= 0x55;
    decoded badcrc = decode_all(f.p, f.n, 0, 0);
    CHECK(!badcrc.ok && badcrc.err.status == CP_ERR_INVALID_IMAGE);
    free(full.px);
    free(no_iend.px);
    free(s);
    free(f.p);
}

/* ---- tests: EXIF orientation ------------------------------------------------------------ */

/* 3x2 image, pixel (x, y) = (10*x + y + 1, 0, 0) stored as 8-bit gray. */
static buf_t oriented_png(int orientation)
{
    uint16_t s[6];
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++)
            s[y * 3 + x] = (uint16_t)(10 * x + y + 1);
    uint8_t ex[64];
    size_t n = make_exif(ex, orientation, 0);
    png_spec ps = {.w = 3, .h = 2, .depth = 8, .ctype = PNG_COLOR_TYPE_GRAY, .samples = s,
                   .exif = ex, .exif_len = n};
    return make_png(&ps);
}

TEST(test_exif_orientation_permutations)
{
    /* Expected output for each orientation, rows top to bottom, as the source (x, y) code
     * 10*x+y+1 — what Pillow's ImageOps.exif_transpose produces for a 3x2 image. */
    static const struct {
        int w, h;
        int v[6];
    } want[9] = {
        [1] = {3, 2, {1, 11, 21, 2, 12, 22}},
        [2] = {3, 2, {21, 11, 1, 22, 12, 2}}, /* mirror left-right */
        [3] = {3, 2, {22, 12, 2, 21, 11, 1}}, /* rotate 180 */
        [4] = {3, 2, {2, 12, 22, 1, 11, 21}}, /* mirror top-bottom */
        [5] = {2, 3, {1, 2, 11, 12, 21, 22}}, /* transpose */
        [6] = {2, 3, {2, 1, 12, 11, 22, 21}}, /* rotate 90 clockwise */
        [7] = {2, 3, {22, 21, 12, 11, 2, 1}}, /* transverse */
        [8] = {2, 3, {21, 22, 11, 12, 1, 2}}, /* rotate 90 counter-clockwise */
    };
    for (int o = 1; o <= 8; o++) {
        buf_t f = oriented_png(o);
        decoded d = decode_all(f.p, f.n, 1, 0);
        CHECK(d.ok);
        CHECK_EQ_INT(d.hdr.orientation, o);
        CHECK_EQ_INT(d.hdr.width, 3); /* stored size */
        CHECK_EQ_INT(d.w, want[o].w);
        CHECK_EQ_INT(d.h, want[o].h);
        if (d.ok && d.w == want[o].w)
            for (int i = 0; i < 6; i++) {
                int v = want[o].v[i];
                if (!px_eq(&d, i % d.w, i / d.w, v, v, v)) {
                    fprintf(stderr, "  orientation %d: pixel %d is %d, want %d\n", o, i,
                            d.px[i * 3], v);
                    CHECK(0);
                }
            }
        free(d.px);
        /* not applied: stored layout, output size unchanged */
        decoded raw = decode_all(f.p, f.n, 0, 0);
        CHECK(raw.ok && raw.w == 3 && raw.h == 2 && px_eq(&raw, 1, 0, 11, 11, 11));
        free(raw.px);
        free(f.p);
    }
}

TEST(test_exif_output_size)
{
    image_header h = {.format = IMAGE_FORMAT_JPEG, .width = 640, .height = 480, .orientation = 6};
    decode_options on = {.apply_orientation = true}, off = {.apply_orientation = false};
    int w, hh;
    decode_output_size(&h, &on, &w, &hh);
    CHECK(w == 480 && hh == 640);
    decode_output_size(&h, &off, &w, &hh);
    CHECK(w == 640 && hh == 480);
    h.orientation = 3;
    decode_output_size(&h, &on, &w, &hh);
    CHECK(w == 640 && hh == 480);
}

TEST(test_exif_parser)
{
    uint8_t ex[64];
    for (int o = 0; o <= 9; o++) {
        size_t n = make_exif(ex, o, o & 1);
        int want = (o >= 1 && o <= 8) ? o : EXIF_ORIENTATION_OTHER;
        CHECK_EQ_INT(exif_find_orientation(ex, n), want);
        CHECK_EQ_INT(exif_orientation(ex, n), (o >= 1 && o <= 8) ? o : 1);
    }
    /* big-endian, LONG type */
    static const uint8_t be[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1,
                                 0x01, 0x12, 0, 4, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 0};
    CHECK_EQ_INT(exif_find_orientation(be, sizeof be), 7);
    /* rational 12/2 = 6 (stored out of line) */
    static const uint8_t rat[] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0,
                                  0x12, 0x01, 5, 0, 1, 0, 0, 0, 26, 0, 0, 0, 0, 0, 0, 0,
                                  12, 0, 0, 0, 2, 0, 0, 0};
    CHECK_EQ_INT(exif_find_orientation(rat, sizeof rat), 6);
    /* ... whose data lies past the end: tag lost */
    CHECK_EQ_INT(exif_find_orientation(rat, sizeof rat - 1), EXIF_ORIENTATION_ABSENT);
    /* truncated inside the IFD entry */
    size_t n = make_exif(ex, 6, 0);
    CHECK_EQ_INT(exif_find_orientation(ex, n), 6);
    CHECK_EQ_INT(exif_find_orientation(ex, 30), EXIF_ORIENTATION_ABSENT);
    /* not TIFF / empty */
    CHECK_EQ_INT(exif_find_orientation((const uint8_t *)"XX*\0\10\0\0\0", 8), EXIF_ORIENTATION_ABSENT);
    CHECK_EQ_INT(exif_find_orientation(NULL, 0), EXIF_ORIENTATION_ABSENT);
    /* XMP fallback */
    const char *x1 = "<rdf:Description tiff:Orientation=\"8\"/>";
    const char *x2 = "<tiff:Orientation>3</tiff:Orientation>";
    const char *x3 = "<tiff:Orientation> 3</tiff:Orientation>";
    CHECK_EQ_INT(xmp_find_orientation((const uint8_t *)x1, strlen(x1)), 8);
    CHECK_EQ_INT(xmp_find_orientation((const uint8_t *)x2, strlen(x2)), 3);
    CHECK_EQ_INT(xmp_find_orientation((const uint8_t *)x3, strlen(x3)), EXIF_ORIENTATION_ABSENT);
    CHECK_EQ_INT(orientation_resolve(EXIF_ORIENTATION_ABSENT, 8), 8);
    CHECK_EQ_INT(orientation_resolve(3, 8), 3);
    CHECK_EQ_INT(orientation_resolve(EXIF_ORIENTATION_OTHER, 8), 1); /* tag present: no XMP */
    CHECK_EQ_INT(orientation_resolve(EXIF_ORIENTATION_ABSENT, 9), 1);
}

/* ---- tests: JPEG ---------------------------------------------------------------------- */

TEST(test_jpeg_flat_colour_and_gray)
{
    const uint8_t rgb[3] = {200, 100, 50};
    uint8_t *p = fill_pixels(17, 9, 3, rgb);
    jpeg_spec s = {.w = 17, .h = 9, .comps = 3, .quality = 95, .pixels = p, .subsample_444 = 1};
    buf_t f = make_jpeg(&s);
    decoded d = decode_all(f.p, f.n, 0, 0);
    CHECK(d.ok);
    CHECK_EQ_INT(d.hdr.format, IMAGE_FORMAT_JPEG);
    CHECK(d.hdr.width == 17 && d.hdr.height == 9 && d.hdr.orientation == 1);
    if (d.ok)
        for (int y = 0; y < 9; y++)
            for (int x = 0; x < 17; x++)
                CHECK(px_near(&d, x, y, 200, 100, 50, 2));
    free(d.px);
    free(f.p);
    free(p);

    const uint8_t g = 77;
    p = fill_pixels(5, 3, 1, &g);
    jpeg_spec gs = {.w = 5, .h = 3, .comps = 1, .quality = 90, .pixels = p};
    f = make_jpeg(&gs);
    d = decode_all(f.p, f.n, 0, 0);
    CHECK(d.ok && px_near(&d, 4, 2, 77, 77, 77, 1));
    if (d.ok) { /* gray is replicated exactly */
        const uint8_t *q = px_at(&d, 2, 1);
        CHECK(q[0] == q[1] && q[1] == q[2]);
    }
    free(d.px);
    free(f.p);
    free(p);
}

TEST(test_jpeg_cmyk_is_read_inverted)
{
    /* Stored (libjpeg) CMYK = 255 - Pillow's CMYK; Pillow CMYK (100,50,0,30) -> (137,181,225)
     * per spec F.2. A non-inverting decoder would give a very different colour. */
    const uint8_t stored[4] = {155, 205, 255, 225};
    uint8_t *p = fill_pixels(16, 16, 4, stored);
    jpeg_spec s = {.w = 16, .h = 16, .comps = 4, .quality = 100, .pixels = p};
    buf_t f = make_jpeg(&s);
    decoded d = decode_all(f.p, f.n, 0, 0);
    CHECK(d.ok);
    if (d.ok)
        CHECK(px_near(&d, 7, 7, 137, 181, 225, 2));
    free(d.px);
    free(f.p);
    free(p);
}

TEST(test_jpeg_truncated_is_invalid)
{
    uint8_t *p = noise_pixels(64, 48, 3, 1);
    jpeg_spec s = {.w = 64, .h = 48, .comps = 3, .quality = 85, .pixels = p};
    buf_t f = make_jpeg(&s);
    decoded ok = decode_all(f.p, f.n, 0, 0);
    CHECK(ok.ok);
    decoded cut = decode_all(f.p, f.n * 2 / 3, 0, 0);
    CHECK(!cut.ok);
    CHECK_EQ_INT(cut.err.status, CP_ERR_INVALID_IMAGE);
    CHECK(strstr(cut.err.message, "Premature end of JPEG file") != NULL);
    /* header-only cut also fails (in the header step) */
    image_header h;
    cp_error e = {0};
    CHECK(!decode_read_header(f.p, 40, &h, &e));
    CHECK_EQ_INT(e.status, CP_ERR_INVALID_IMAGE);
    free(ok.px);
    free(f.p);
    free(p);
}

TEST(test_jpeg_progressive_max_scans)
{
    uint8_t *p = noise_pixels(33, 21, 3, 2);
    jpeg_spec s = {.w = 33, .h = 21, .comps = 3, .quality = 85, .pixels = p, .progressive = 1};
    buf_t f = make_jpeg(&s);
    decoded one = decode_all(f.p, f.n, 0, 1);
    CHECK(!one.ok);
    CHECK_EQ_INT(one.err.status, CP_ERR_INVALID_IMAGE);
    CHECK(strstr(one.err.message, "too many progressive scans") != NULL);
    decoded unlimited = decode_all(f.p, f.n, 0, 0);
    decoded enough = decode_all(f.p, f.n, 0, 100);
    CHECK(unlimited.ok && enough.ok);
    if (unlimited.ok && enough.ok)
        CHECK(memcmp(unlimited.px, enough.px, 33 * 21 * 3) == 0);
    /* the same picture as a baseline file is fine with max_scans = 1 */
    s.progressive = 0;
    buf_t b = make_jpeg(&s);
    decoded base = decode_all(b.p, b.n, 0, 1);
    CHECK(base.ok);
    free(one.px);
    free(unlimited.px);
    free(enough.px);
    free(base.px);
    free(b.p);
    free(f.p);
    free(p);
}

/* Independent reference: plain libjpeg with jpeg_mem_src, default settings, RGB output. */
static uint8_t *reference_rgb(const buf_t *f, int *w, int *h)
{
    struct jpeg_decompress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_decompress(&c);
    jpeg_mem_src(&c, f->p, (unsigned long)f->n);
    jpeg_read_header(&c, TRUE);
    c.out_color_space = JCS_RGB;
    jpeg_start_decompress(&c);
    *w = (int)c.output_width;
    *h = (int)c.output_height;
    uint8_t *out = malloc((size_t)*w * *h * 3);
    while (c.output_scanline < c.output_height) {
        JSAMPROW r = out + (size_t)c.output_scanline * *w * 3;
        jpeg_read_scanlines(&c, &r, 1);
    }
    jpeg_finish_decompress(&c);
    jpeg_destroy_decompress(&c);
    return out;
}

TEST(test_jpeg_larger_than_feed_block)
{
    /* > 64 KiB, so decoding resumes across Pillow-sized input blocks */
    enum { W = 400, H = 300 };
    uint8_t *p = random_pixels(W, H, 3, 5);
    for (int prog = 0; prog < 2; prog++) {
        jpeg_spec s = {.w = W, .h = H, .comps = 3, .quality = 98, .pixels = p,
                       .progressive = prog};
        buf_t f = make_jpeg(&s);
        CHECK(f.n > 2 * 65536);
        int rw, rh;
        uint8_t *ref = reference_rgb(&f, &rw, &rh);
        decoded d = decode_all(f.p, f.n, 0, 0);
        CHECK(d.ok && rw == W && rh == H);
        if (d.ok)
            CHECK(memcmp(d.px, ref, (size_t)W * H * 3) == 0);
        free(d.px);
        free(ref);
        free(f.p);
    }
    free(p);
}

TEST(test_jpeg_arithmetic_like_pillow)
{
    /* Pillow decodes arithmetic-coded JPEGs only while the entropy data stays inside its first
     * 64 KiB input block (libjpeg's arithmetic decoder cannot suspend) */
    uint8_t *small = noise_pixels(40, 30, 3, 6);
    jpeg_spec s = {.w = 40, .h = 30, .comps = 3, .quality = 90, .pixels = small, .arith = 1};
    buf_t f = make_jpeg(&s);
    int rw, rh;
    uint8_t *ref = reference_rgb(&f, &rw, &rh);
    decoded d = decode_all(f.p, f.n, 0, 0);
    CHECK(d.ok);
    if (d.ok)
        CHECK(memcmp(d.px, ref, 40 * 30 * 3) == 0);
    free(d.px);
    free(ref);
    free(f.p);
    free(small);

    uint8_t *big = random_pixels(300, 200, 3, 7);
    jpeg_spec b = {.w = 300, .h = 200, .comps = 3, .quality = 98, .pixels = big, .arith = 1};
    f = make_jpeg(&b);
    CHECK(f.n > 65536);
    d = decode_all(f.p, f.n, 0, 0);
    CHECK(!d.ok);
    CHECK_EQ_INT(d.err.status, CP_ERR_INVALID_IMAGE);
    free(d.px);
    free(f.p);
    free(big);
}

TEST(test_jpeg_two_components_unsupported)
{
    uint8_t *p = noise_pixels(8, 8, 2, 3);
    jpeg_spec s = {.w = 8, .h = 8, .comps = 2, .quality = 85, .pixels = p};
    buf_t f = make_jpeg(&s);
    image_header h;
    cp_error e = {0};
    CHECK(!decode_read_header(f.p, f.n, &h, &e));
    CHECK_EQ_INT(e.status, CP_ERR_UNSUPPORTED_FORMAT);
    free(f.p);
    free(p);
}

TEST(test_jpeg_exif_orientation)
{
    uint8_t ex[64];
    size_t n = make_exif(ex, 6, 1);
    /* left half dark, right half bright: after rotating 90 cw the top is dark */
    enum { W = 32, H = 16 };
    uint8_t *p = malloc(W * H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            p[y * W + x] = x < W / 2 ? 20 : 230;
    jpeg_spec s = {.w = W, .h = H, .comps = 1, .quality = 95, .pixels = p, .app1 = ex, .app1_len = n};
    buf_t f = make_jpeg(&s);
    decoded d = decode_all(f.p, f.n, 1, 0);
    CHECK(d.ok);
    CHECK_EQ_INT(d.hdr.orientation, 6);
    CHECK(d.w == H && d.h == W);
    if (d.ok) {
        CHECK(px_near(&d, H / 2, 2, 20, 20, 20, 8));       /* top: former left */
        CHECK(px_near(&d, H / 2, W - 3, 230, 230, 230, 8)); /* bottom: former right */
    }
    free(d.px);
    free(f.p);
    free(p);
}

/* ---- tests: WebP ------------------------------------------------------------------------ */

TEST(test_webp_lossless_roundtrip)
{
    enum { W = 19, H = 7 };
    uint8_t rgb[W * H * 3], rgba[W * H * 4];
    for (int i = 0; i < W * H; i++) {
        for (int c = 0; c < 3; c++)
            rgb[i * 3 + c] = rgba[i * 4 + c] = (uint8_t)((i * 31 + c * 77) & 255);
        rgba[i * 4 + 3] = (uint8_t)(1 + (i % 254)); /* never 0: lossless keeps the colour */
    }
    uint8_t *out = NULL;
    size_t n = WebPEncodeLosslessRGB(rgb, W, H, W * 3, &out);
    CHECK(n > 0);
    decoded d = decode_all(out, n, 0, 0);
    CHECK(d.ok && d.hdr.format == IMAGE_FORMAT_WEBP && d.w == W && d.h == H);
    if (d.ok)
        CHECK(memcmp(d.px, rgb, sizeof rgb) == 0);
    free(d.px);
    WebPFree(out);

    n = WebPEncodeLosslessRGBA(rgba, W, H, W * 4, &out);
    d = decode_all(out, n, 0, 0);
    CHECK(d.ok);
    if (d.ok)
        CHECK(memcmp(d.px, rgb, sizeof rgb) == 0); /* alpha dropped, colour untouched */
    free(d.px);
    WebPFree(out);
}

TEST(test_webp_lossy_flat)
{
    enum { W = 24, H = 24 };
    uint8_t rgb[W * H * 3];
    for (int i = 0; i < W * H; i++) {
        rgb[i * 3] = 30;
        rgb[i * 3 + 1] = 140;
        rgb[i * 3 + 2] = 220;
    }
    uint8_t *out = NULL;
    size_t n = WebPEncodeRGB(rgb, W, H, W * 3, 95, &out);
    decoded d = decode_all(out, n, 0, 0);
    CHECK(d.ok);
    if (d.ok)
        CHECK(px_near(&d, 11, 11, 30, 140, 220, 6));
    /* truncated file: error */
    decoded cut = decode_all(out, n / 2, 0, 0);
    CHECK(!cut.ok && cut.err.status == CP_ERR_INVALID_IMAGE);
    free(d.px);
    WebPFree(out);
}

TEST(test_webp_exif_and_animation)
{
    /* 4x2 lossless frame */
    uint8_t rgb[4 * 2 * 3];
    for (int i = 0; i < 8; i++) {
        rgb[i * 3] = (uint8_t)(10 * i + 5);
        rgb[i * 3 + 1] = 100;
        rgb[i * 3 + 2] = 200;
    }
    uint8_t *simple = NULL;
    size_t sn = WebPEncodeLosslessRGB(rgb, 4, 2, 12, &simple);
    const uint8_t *body;
    size_t blen;
    webp_body(simple, sn, &body, &blen); /* the "VP8L" chunk */

    /* Extended file with an EXIF chunk: orientation 8 (90 ccw) */
    uint8_t ex[64];
    size_t exn = make_exif(ex, 8, 0);
    buf_t chunks = {0};
    put_vp8x(&chunks, 0x08 /* EXIF */, 4, 2);
    buf_put(&chunks, body, blen);
    put_chunk(&chunks, "EXIF", ex, exn);
    buf_t file = riff_wrap(&chunks);
    decoded d = decode_all(file.p, file.n, 1, 0);
    CHECK(d.ok);
    CHECK_EQ_INT(d.hdr.orientation, 8);
    CHECK(d.w == 2 && d.h == 4);
    if (d.ok) { /* ROTATE_90: out(x, y) = in(w-1-y, x) */
        CHECK(px_eq(&d, 0, 0, 10 * 3 + 5, 100, 200));     /* in(3,0) */
        CHECK(px_eq(&d, 1, 3, 10 * 4 + 5, 100, 200));     /* in(0,1) */
    }
    free(d.px);
    free(file.p);
    free(chunks.p);

    /* Animated: 8x6 canvas, first frame (the 4x2 image) at offset (2,2), second frame full.
     * Pillow shows frame 0 on a transparent-black canvas. */
    buf_t c2 = {0};
    put_vp8x(&c2, 0x02 /* ANIMATION */, 8, 6);
    uint8_t anim[6] = {0, 0, 0, 0, 0, 0}; /* bgcolor, loop */
    put_chunk(&c2, "ANIM", anim, sizeof anim);
    for (int fr = 0; fr < 2; fr++) {
        buf_t anmf = {0};
        put_le24(&anmf, fr == 0 ? 1 : 0); /* x / 2 */
        put_le24(&anmf, fr == 0 ? 1 : 0); /* y / 2 */
        uint8_t *enc = NULL;
        size_t en;
        uint8_t big[8 * 6 * 3];
        memset(big, 255, sizeof big);
        if (fr == 0) {
            put_le24(&anmf, 3);
            put_le24(&anmf, 1);
            en = WebPEncodeLosslessRGB(rgb, 4, 2, 12, &enc);
        } else {
            put_le24(&anmf, 7);
            put_le24(&anmf, 5);
            en = WebPEncodeLosslessRGB(big, 8, 6, 24, &enc);
        }
        put_le24(&anmf, 100); /* duration */
        uint8_t flags = 0;
        buf_put(&anmf, &flags, 1);
        buf_put(&anmf, enc + 12, en - 12);
        put_chunk(&c2, "ANMF", anmf.p, anmf.n);
        WebPFree(enc);
        free(anmf.p);
    }
    buf_t af = riff_wrap(&c2);
    decoded a = decode_all(af.p, af.n, 0, 0);
    CHECK(a.ok);
    CHECK(a.w == 8 && a.h == 6);
    if (a.ok) {
        CHECK(px_eq(&a, 0, 0, 0, 0, 0));       /* outside frame 0: black */
        CHECK(px_eq(&a, 7, 5, 0, 0, 0));
        CHECK(px_eq(&a, 2, 2, 5, 100, 200));   /* frame pixel (0,0) */
        CHECK(px_eq(&a, 5, 3, 75, 100, 200));  /* frame pixel (3,1) */
    }
    free(a.px);
    free(af.p);
    free(c2.p);
    WebPFree(simple);
}

/* ---- tests: concurrency ---------------------------------------------------------------- */

typedef struct {
    const buf_t *file;
    const uint8_t *want;
    size_t want_len;
    int ok;
} thread_arg;

static void *decode_thread(void *p)
{
    thread_arg *a = p;
    a->ok = 1;
    for (int i = 0; i < 20; i++) {
        decoded d = decode_all(a->file->p, a->file->n, 1, 0);
        if (!d.ok || memcmp(d.px, a->want, a->want_len) != 0)
            a->ok = 0;
        free(d.px);
    }
    return NULL;
}

TEST(test_concurrent_decodes_agree)
{
    uint8_t *p = noise_pixels(97, 61, 3, 9);
    jpeg_spec s = {.w = 97, .h = 61, .comps = 3, .quality = 80, .pixels = p, .progressive = 1};
    buf_t f = make_jpeg(&s);
    decoded ref = decode_all(f.p, f.n, 1, 0);
    CHECK(ref.ok);
    if (ref.ok) {
        pthread_t t[4];
        thread_arg a[4];
        for (int i = 0; i < 4; i++) {
            a[i] = (thread_arg){&f, ref.px, (size_t)97 * 61 * 3, 0};
            pthread_create(&t[i], NULL, decode_thread, &a[i]);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            CHECK(a[i].ok);
        }
    }
    free(ref.px);
    free(f.p);
    free(p);
}

int main(void)
{
    RUN(test_detect_format);
    RUN(test_garbage_empty_and_short);
    RUN(test_dst_too_small_and_mismatch);
    RUN(test_png_gray16_saturates);
    RUN(test_png_gray_low_bit_depths);
    RUN(test_png_palette_lookup_ignores_trns);
    RUN(test_png_alpha_dropped_and_16bit_high_byte);
    RUN(test_png_trns_color_key_ignored);
    RUN(test_png_interlaced_matches_plain);
    RUN(test_png_truncation);
    RUN(test_exif_orientation_permutations);
    RUN(test_exif_output_size);
    RUN(test_exif_parser);
    RUN(test_jpeg_flat_colour_and_gray);
    RUN(test_jpeg_cmyk_is_read_inverted);
    RUN(test_jpeg_truncated_is_invalid);
    RUN(test_jpeg_progressive_max_scans);
    RUN(test_jpeg_larger_than_feed_block);
    RUN(test_jpeg_arithmetic_like_pillow);
    RUN(test_jpeg_two_components_unsupported);
    RUN(test_jpeg_exif_orientation);
    RUN(test_webp_lossless_roundtrip);
    RUN(test_webp_lossy_flat);
    RUN(test_webp_exif_and_animation);
    RUN(test_concurrent_decodes_agree);
    return TEST_SUMMARY();
}
