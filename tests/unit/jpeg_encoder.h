/* jpeg_encoder.h — test JPEGs generated with libjpeg over sampling layouts, colour spaces and
 * coding modes (shared by the region-decoding and hybrid-decoding tests). */
#ifndef CLIPPREP_TEST_JPEG_ENCODER_H
#define CLIPPREP_TEST_JPEG_ENCODER_H

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>


enum {
    M_BASELINE,  /* one interleaved sequential scan */
    M_SEQ_MULTI, /* sequential, one scan per component (non-interleaved: a multi-scan file) */
    M_PROG,      /* jpeg_simple_progression: complete coefficients */
    M_PROG_PART, /* progressive, successive approximation never refined: block smoothing */
    M_PROG_DC,   /* progressive, DC scan only: smoothing with DC interpolation */
    M_BASE_CUT,  /* baseline, entropy data cut in the middle and EOI appended (decodes) */
    M_PROG_CUT,  /* progressive, cut inside a later scan and EOI appended (decodes, with
                    block smoothing below the last complete iMCU row) */
    M_COUNT
};

static const char *const mode_name[M_COUNT] = {"baseline", "seq-multiscan", "progressive",
                                               "prog-partial", "prog-dc", "baseline-cut+EOI",
                                               "progressive-cut+EOI"};

typedef struct {
    const char *name;
    int comps;        /* 1, 3 or 4 */
    int ycck;         /* 4 components: YCCK instead of plain CMYK */
    int h[4], v[4];   /* sampling factors; 0 = libjpeg's default */
    int rgb_jpeg;     /* 3 components stored as RGB (no YCbCr transform) */
} layout;

static const layout LAYOUTS[] = {
    {"444", 3, 0, {1, 1, 1}, {1, 1, 1}, 0},
    {"422", 3, 0, {2, 1, 1}, {1, 1, 1}, 0},
    {"420", 3, 0, {2, 1, 1}, {2, 1, 1}, 0},
    {"440", 3, 0, {1, 1, 1}, {2, 1, 1}, 0},
    {"411", 3, 0, {4, 1, 1}, {1, 1, 1}, 0},
    {"410", 3, 0, {4, 1, 1}, {2, 1, 1}, 0},
    {"311", 3, 0, {3, 1, 1}, {1, 1, 1}, 0},
    {"420-cr-full", 3, 0, {2, 1, 2}, {2, 1, 2}, 0},
    {"gray", 1, 0, {1}, {1}, 0},
    {"gray-2x2", 1, 0, {2}, {2}, 0},
    {"cmyk", 4, 0, {1, 1, 1, 1}, {1, 1, 1, 1}, 0},
    {"ycck", 4, 1, {2, 1, 1, 2}, {2, 1, 1, 2}, 0},
};
#define NLAYOUTS ((int)(sizeof LAYOUTS / sizeof LAYOUTS[0]))

typedef struct {
    int w, h;
    const layout *lay;
    int mode;
    int restart;  /* restart_interval in MCUs (0 = none) */
    int arith;
    int quality;
    unsigned seed;
    int random;   /* uniform noise (large files) instead of structured content */
    int q16;      /* quality without force_baseline: 16-bit quantisers (quality <= 24) */
    int orientation; /* 2..8: an EXIF APP1 with this orientation; 0 = none */
} enc_spec;

typedef struct {
    uint8_t *p;
    size_t n;
} blob;

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
} enc_err;

static void enc_error_exit(j_common_ptr c)
{
    char msg[JMSG_LENGTH_MAX];
    (*c->err->format_message)(c, msg);
    fprintf(stderr, "  encoder: %s\n", msg);
    longjmp(((enc_err *)c->err)->jb, 1);
}

static void enc_silent(j_common_ptr c) { (void)c; }

static unsigned rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* Content with strong, independent variation in every channel (chroma edges everywhere, so
 * that upsampling or smoothing with wrong neighbours shows), plus noise for AC energy. */
static uint8_t *make_pixels(const enc_spec *s, int comps)
{
    size_t n = (size_t)s->w * s->h * comps;
    uint8_t *p = malloc(n ? n : 1);
    unsigned r = s->seed * 2654435761u + 1;
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++)
            for (int c = 0; c < comps; c++) {
                int v;
                if (s->random) {
                    v = (int)(rnd(&r) & 255);
                } else {
                    int t = (x * (3 + 2 * c) + y * (5 - c) + (int)(s->seed % 97)) & 255;
                    int blocky = (((x / (5 + c)) ^ (y / (3 + c))) & 1) ? 70 : -70;
                    v = t / 2 + 64 + blocky + (int)(rnd(&r) % 41) - 20;
                }
                p[((size_t)y * s->w + x) * comps + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    return p;
}

static blob encode(const enc_spec *s)
{
    blob out = {0};
    const layout *L = s->lay;
    uint8_t *px = make_pixels(s, L->comps);
    struct jpeg_compress_struct c;
    enc_err e;
    unsigned char *mem = NULL;
    unsigned long memlen = 0;
    jpeg_scan_info scans[16];
    c.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = enc_error_exit;
    e.pub.output_message = enc_silent; /* e.g. "quantization tables are too coarse" (q16) */
    if (setjmp(e.jb)) {
        jpeg_destroy_compress(&c);
        free(mem);
        free(px);
        return out;
    }
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &memlen);
    c.image_width = (JDIMENSION)s->w;
    c.image_height = (JDIMENSION)s->h;
    c.input_components = L->comps;
    c.in_color_space = L->comps == 1 ? JCS_GRAYSCALE : L->comps == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&c);
    if (L->comps == 4)
        jpeg_set_colorspace(&c, L->ycck ? JCS_YCCK : JCS_CMYK);
    if (L->rgb_jpeg)
        jpeg_set_colorspace(&c, JCS_RGB);
    jpeg_set_quality(&c, s->quality, s->q16 ? FALSE : TRUE);
    for (int i = 0; i < L->comps; i++)
        if (L->h[i]) {
            c.comp_info[i].h_samp_factor = L->h[i];
            c.comp_info[i].v_samp_factor = L->v[i];
        }
    c.restart_interval = (unsigned)s->restart;
    c.arith_code = s->arith ? TRUE : FALSE;
    int ns = 0;
    switch (s->mode) {
    case M_BASE_CUT: break;
    case M_SEQ_MULTI:
        for (int i = 0; i < L->comps; i++)
            scans[ns++] = (jpeg_scan_info){1, {i}, 0, 63, 0, 0};
        break;
    case M_PROG:
    case M_PROG_CUT:
        jpeg_simple_progression(&c);
        break;
    case M_PROG_PART: {
        jpeg_scan_info dc = {L->comps, {0, 1, 2, 3}, 0, 0, 0, 1};
        scans[ns++] = dc;
        for (int i = 0; i < L->comps; i++) {
            scans[ns++] = (jpeg_scan_info){1, {i}, 1, 5, 0, i == 0 ? 2 : 1};
            scans[ns++] = (jpeg_scan_info){1, {i}, 6, 63, 0, 2};
        }
        break;
    }
    case M_PROG_DC: {
        jpeg_scan_info dc = {L->comps, {0, 1, 2, 3}, 0, 0, 0, 0};
        scans[ns++] = dc;
        break;
    }
    default: break;
    }
    if (ns) {
        c.scan_info = scans;
        c.num_scans = ns;
    }
    jpeg_start_compress(&c, TRUE);
    if (s->orientation) { /* little-endian TIFF, one IFD entry: 0x0112 SHORT = orientation */
        const uint8_t exif[] = {'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0,
                                0x12, 0x01, 3, 0, 1, 0, 0, 0, (uint8_t)s->orientation, 0, 0, 0,
                                0, 0, 0, 0};
        jpeg_write_marker(&c, JPEG_APP0 + 1, exif, sizeof exif);
    }
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = px + (size_t)c.next_scanline * s->w * L->comps;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    if (s->mode == M_BASE_CUT || s->mode == M_PROG_CUT) {
        /* keep 60 % / 85 % of the file (well inside the entropy-coded data), then EOI */
        memlen = memlen * (s->mode == M_BASE_CUT ? 60 : 85) / 100;
        mem[memlen++] = 0xFF;
        mem[memlen++] = 0xD9;
    }
    out.p = malloc(memlen);
    memcpy(out.p, mem, memlen);
    out.n = memlen;
    free(mem);
    free(px);
    return out;
}

/* A file whose coefficients are random (not from an encoder): a third of them uniform in
 * +-(12680 / quantiser / divisor), or +-1023 with divisor 0, so that the hybrid decode's IDCT
 * guard holds for some blocks and trips for others. Odd seeds 4:2:0, even seeds 4:4:4. */
static inline blob random_coefficients(unsigned seed, int divisor)
{
    enc_spec s = {.w = 48, .h = 40, .lay = &LAYOUTS[seed % 2 ? 2 : 0], .mode = M_BASELINE,
                  .quality = 50, .seed = seed};
    blob f = encode(&s);
    struct jpeg_decompress_struct d;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e1, e2;
    d.err = jpeg_std_error(&e1);
    c.err = jpeg_std_error(&e2);
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, f.p, f.n);
    jpeg_read_header(&d, TRUE);
    jvirt_barray_ptr *arr = jpeg_read_coefficients(&d);
    unsigned r = seed * 7919u + 1;
    for (int ci = 0; ci < d.num_components; ci++) {
        jpeg_component_info *cp = &d.comp_info[ci];
        for (JDIMENSION by = 0; by < cp->height_in_blocks; by++) {
            JBLOCKARRAY row = (*d.mem->access_virt_barray)((j_common_ptr)&d, arr[ci], by, 1, TRUE);
            for (JDIMENSION bx = 0; bx < cp->width_in_blocks; bx++)
                for (int k = 0; k < 64; k++) {
                    int q = cp->quant_table->quantval[k];
                    int lim = divisor ? 12680 / q / divisor : 1023; /* 12680: the IDCT guard */
                    if (lim > 1023)
                        lim = 1023;
                    if (rnd(&r) % 3 == 0)
                        row[0][bx][k] = (JCOEF)((int)(rnd(&r) % (2 * lim + 1)) - lim);
                }
        }
    }
    unsigned char *mem = NULL;
    unsigned long len = 0;
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &len);
    jpeg_copy_critical_parameters(&d, &c);
    c.optimize_coding = TRUE;
    jpeg_write_coefficients(&c, arr);
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    free(f.p);
    blob out = {malloc(len), len};
    memcpy(out.p, mem, len);
    free(mem);
    return out;
}

#endif
