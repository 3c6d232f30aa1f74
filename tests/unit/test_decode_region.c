/* test_decode_region.c — JPEG region decoding (decode_options.region_*): every pixel inside the
 * requested region must be byte-identical to a full decode, and which files fail (and with which
 * message) must not change. JPEGs are generated here with libjpeg over a matrix of sampling
 * factors (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1, 4:1:0, 3:1, gray incl. 2x2-sampled gray, CMYK,
 * YCCK), coding modes (baseline, restart markers, arithmetic, non-interleaved sequential,
 * progressive, progressive with incomplete coefficients so that block smoothing is active, DC
 * only), odd sizes and DCT scaling 1/1..1/8, and decoded with many regions (random, touching
 * the edges, 1 pixel, the whole image, CLIP centre crops).
 *
 * The margin tests call decode_jpeg_pixels() (decode_internal.h) with explicit margins: they
 * show that the default margins are exact and that smaller ones are NOT (so the comparison
 * really sees the artefacts that the margins exist for). */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "decode.h"
#include "decode_internal.h"
#include "error.h"
#include "test.h"

/* ---- JPEG encoder --------------------------------------------------------------------- */

enum {
    M_BASELINE,  /* one interleaved sequential scan */
    M_SEQ_MULTI, /* sequential, one scan per component (non-interleaved: a multi-scan file) */
    M_PROG,      /* jpeg_simple_progression: complete coefficients */
    M_PROG_PART, /* progressive, successive approximation never refined: block smoothing */
    M_PROG_DC,   /* progressive, DC scan only: smoothing with DC interpolation */
    M_COUNT
};

static const char *const mode_name[M_COUNT] = {"baseline", "seq-multiscan", "progressive",
                                               "prog-partial", "prog-dc"};

typedef struct {
    const char *name;
    int comps;        /* 1, 3 or 4 */
    int ycck;         /* 4 components: YCCK instead of plain CMYK */
    int h[4], v[4];   /* sampling factors; 0 = libjpeg's default */
} layout;

static const layout LAYOUTS[] = {
    {"444", 3, 0, {1, 1, 1}, {1, 1, 1}},
    {"422", 3, 0, {2, 1, 1}, {1, 1, 1}},
    {"420", 3, 0, {2, 1, 1}, {2, 1, 1}},
    {"440", 3, 0, {1, 1, 1}, {2, 1, 1}},
    {"411", 3, 0, {4, 1, 1}, {1, 1, 1}},
    {"410", 3, 0, {4, 1, 1}, {2, 1, 1}},
    {"311", 3, 0, {3, 1, 1}, {1, 1, 1}},
    {"420-cr-full", 3, 0, {2, 1, 2}, {2, 1, 2}},
    {"gray", 1, 0, {1}, {1}},
    {"gray-2x2", 1, 0, {2}, {2}},
    {"cmyk", 4, 0, {1, 1, 1, 1}, {1, 1, 1, 1}},
    {"ycck", 4, 1, {2, 1, 1, 2}, {2, 1, 1, 2}},
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
    jpeg_set_quality(&c, s->quality, TRUE);
    for (int i = 0; i < L->comps; i++)
        if (L->h[i]) {
            c.comp_info[i].h_samp_factor = L->h[i];
            c.comp_info[i].v_samp_factor = L->v[i];
        }
    c.restart_interval = (unsigned)s->restart;
    c.arith_code = s->arith ? TRUE : FALSE;
    int ns = 0;
    switch (s->mode) {
    case M_SEQ_MULTI:
        for (int i = 0; i < L->comps; i++)
            scans[ns++] = (jpeg_scan_info){1, {i}, 0, 63, 0, 0};
        break;
    case M_PROG:
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
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = px + (size_t)c.next_scanline * s->w * L->comps;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    out.p = malloc(memlen);
    memcpy(out.p, mem, memlen);
    out.n = memlen;
    free(mem);
    free(px);
    return out;
}

/* ---- decoding helpers ------------------------------------------------------------------ */

typedef struct {
    int ok;
    int w, h;
    uint8_t *px;
    cp_error err;
    jpeg_region info; /* region path only */
} dec;

#define SENTINEL 0xA7

/* Full decode (region NULL) or region decode with explicit margins through the internal API;
 * dst is pre-filled with SENTINEL so that untouched bytes can be seen. */
static dec decode_internal(const blob *f, int scale, const int *reg, int mx, int my)
{
    dec d;
    memset(&d, 0, sizeof d);
    image_header hdr;
    if (!decode_read_header(f->p, f->n, &hdr, &d.err))
        return d;
    d.w = (hdr.width + scale - 1) / scale;
    d.h = (hdr.height + scale - 1) / scale;
    size_t sz = (size_t)d.w * d.h * 3;
    d.px = malloc(sz);
    memset(d.px, SENTINEL, sz);
    jpeg_region r, *rp = NULL;
    if (reg) {
        memset(&r, 0, sizeof r);
        r.x0 = reg[0];
        r.x1 = reg[1];
        r.y0 = reg[2];
        r.y1 = reg[3];
        r.margin_x = mx;
        r.margin_y = my;
        rp = &r;
    }
    d.ok = decode_jpeg_pixels(f->p, f->n, &hdr, 0, scale, rp, d.px, &d.err);
    if (rp)
        d.info = r;
    return d;
}

/* The public API: decode_rgb with decode_options.region_* */
static dec decode_public(const blob *f, int scale, const int *reg, int orient)
{
    dec d;
    memset(&d, 0, sizeof d);
    image_header hdr;
    if (!decode_read_header(f->p, f->n, &hdr, &d.err))
        return d;
    decode_options o = {.apply_orientation = orient, .scale_denom = scale};
    if (reg) {
        o.region_x0 = reg[0];
        o.region_x1 = reg[1];
        o.region_y0 = reg[2];
        o.region_y1 = reg[3];
    }
    decode_output_size(&hdr, &o, &d.w, &d.h);
    size_t sz = (size_t)d.w * d.h * 3;
    d.px = malloc(sz);
    memset(d.px, SENTINEL, sz);
    d.ok = decode_rgb(f->p, f->n, &hdr, &o, d.px, sz, &d.err);
    return d;
}

/* Pixels of the region [x0,x1)x[y0,y1) that differ between a and b. */
static long region_diff(const dec *a, const dec *b, const int *reg)
{
    long n = 0;
    for (int y = reg[2]; y < reg[3]; y++) {
        const uint8_t *pa = a->px + ((size_t)y * a->w + reg[0]) * 3;
        const uint8_t *pb = b->px + ((size_t)y * b->w + reg[0]) * 3;
        if (memcmp(pa, pb, (size_t)(reg[1] - reg[0]) * 3) == 0)
            continue;
        for (int x = 0; x < (reg[1] - reg[0]) * 3; x += 3)
            n += memcmp(pa + x, pb + x, 3) != 0;
    }
    return n;
}

/* Bytes of dst that still hold the sentinel (i.e. were not decoded at all). */
static long untouched(const dec *d)
{
    long n = 0;
    for (size_t i = 0; i < (size_t)d->w * d->h * 3; i++)
        n += d->px[i] == SENTINEL;
    return n;
}

/* Regions for a w x h output: fixed ones (edges, corners, 1 pixel, full, CLIP-like centre
 * crops) and random ones. Returns the count written to r (4 ints each). */
static int make_regions(int w, int h, unsigned seed, int nrandom, int (*r)[4], int max)
{
    int n = 0;
#define ADD(a, b, c, d_)                                                                \
    do {                                                                                \
        int x0_ = (a), x1_ = (b), y0_ = (c), y1_ = (d_);                                \
        if (n < max && x0_ >= 0 && x0_ < x1_ && x1_ <= w && y0_ >= 0 && y0_ < y1_ && y1_ <= h) { \
            r[n][0] = x0_;                                                              \
            r[n][1] = x1_;                                                              \
            r[n][2] = y0_;                                                              \
            r[n][3] = y1_;                                                              \
            n++;                                                                        \
        }                                                                               \
    } while (0)
    ADD(0, w, 0, h);                   /* whole image */
    ADD(0, 1, 0, 1);                   /* corners, 1 pixel */
    ADD(w - 1, w, h - 1, h);
    ADD(w / 2, w / 2 + 1, h / 2, h / 2 + 1);
    ADD(0, w, h / 3, h / 3 + 1);       /* one row / one column */
    ADD(w / 3, w / 3 + 1, 0, h);
    int s = w < h ? w : h;             /* CLIP centre crop: short side, centred */
    ADD((w - s) / 2, (w - s) / 2 + s, (h - s) / 2, (h - s) / 2 + s);
    ADD((w - s) / 2 + 1, (w - s) / 2 + s - 1, 0, h);
    ADD(0, w / 2, 0, h / 2);            /* quadrants touching edges */
    ADD(w / 2, w, h / 2, h);
    for (int k = 16; k <= 64; k *= 2) { /* iMCU-aligned starts, with and without +1 */
        ADD(k, w, k, h);
        ADD(k + 1, w, k + 1, h);
        ADD(k - 1, k + 2, k - 1, k + 2);
    }
    unsigned st = seed * 7919u + 17;
    for (int i = 0; i < nrandom; i++) {
        int x0 = (int)(rnd(&st) % (unsigned)w), y0 = (int)(rnd(&st) % (unsigned)h);
        int x1 = x0 + 1 + (int)(rnd(&st) % (unsigned)(w - x0));
        int y1 = y0 + 1 + (int)(rnd(&st) % (unsigned)(h - y0));
        if (i % 4 == 0) { /* small ones */
            x1 = x0 + 1 + (int)(rnd(&st) % 3u);
            y1 = y0 + 1 + (int)(rnd(&st) % 3u);
            if (x1 > w) x1 = w;
            if (y1 > h) y1 = h;
        }
        ADD(x0, x1, y0, y1);
    }
#undef ADD
    return n;
}

/* ---- the matrix ------------------------------------------------------------------------ */

typedef struct {
    long cases, bad_cases, bad_pixels, cropped, skipped, buffered;
} tally;

static const int SCALES[4] = {1, 2, 4, 8};

/* All region cases of one file, at one scale, with margins (mx, my); full decode as the
 * reference. Adds to t; prints the first few mismatches when verbose. */
static void run_file(const blob *f, const char *what, int scale, int mx, int my, unsigned seed,
                     int nrandom, tally *t, int verbose)
{
    dec full = decode_internal(f, scale, NULL, 0, 0);
    if (!full.ok) {
        fprintf(stderr, "  %s 1/%d: full decode failed: %s\n", what, scale, full.err.message);
        t->bad_cases++;
        free(full.px);
        return;
    }
    int regs[64][4];
    int n = make_regions(full.w, full.h, seed, nrandom, regs, 64);
    for (int i = 0; i < n; i++) {
        dec d = decode_internal(f, scale, regs[i], mx, my);
        t->cases++;
        long bad = d.ok ? region_diff(&full, &d, regs[i]) : -1;
        if (d.ok) {
            t->cropped += d.info.mode != JPEG_REGION_FULL &&
                          (d.info.dec_x0 > 0 || d.info.dec_x1 < full.w);
            t->skipped += d.info.mode == JPEG_REGION_CROP_SKIP;
            t->buffered += d.info.buffered;
        }
        if (bad != 0) {
            t->bad_cases++;
            t->bad_pixels += bad > 0 ? bad : 0;
            if (verbose && t->bad_cases <= 5)
                fprintf(stderr, "  %s 1/%d m=%d,%d region [%d,%d)x[%d,%d) of %dx%d: %s %ld\n",
                        what, scale, mx, my, regs[i][0], regs[i][1], regs[i][2], regs[i][3],
                        full.w, full.h, d.ok ? "pixels differ:" : d.err.message, bad);
        }
        free(d.px);
    }
    free(full.px);
}

static const int SIZES[][2] = {{77, 53}, {131, 97}, {40, 200}, {1, 1}, {9, 7}, {16, 16}};
#define NSIZES ((int)(sizeof SIZES / sizeof SIZES[0]))

/* The whole matrix with margins (mx, my); layouts/modes optionally restricted (-1 = all). */
static tally run_matrix(int mx, int my, int only_layout, int only_mode, int verbose)
{
    tally t = {0};
    for (int li = 0; li < NLAYOUTS; li++) {
        if (only_layout >= 0 && li != only_layout)
            continue;
        for (int m = 0; m < M_COUNT; m++) {
            if (only_mode >= 0 && m != only_mode)
                continue;
            for (int si = 0; si < NSIZES; si++) {
                /* the tiny sizes only at full scale and baseline/progressive */
                if (SIZES[si][0] < 20 && m != M_BASELINE && m != M_PROG_PART)
                    continue;
                enc_spec s = {.w = SIZES[si][0], .h = SIZES[si][1], .lay = &LAYOUTS[li],
                              .mode = m, .quality = si % 2 ? 60 : 90,
                              .seed = (unsigned)(li * 131 + m * 17 + si),
                              .restart = (si == 1 && m == M_BASELINE) ? 3 : 0};
                blob f = encode(&s);
                if (!f.p) {
                    t.bad_cases++;
                    continue;
                }
                char what[96];
                snprintf(what, sizeof what, "%s/%s/%dx%d", LAYOUTS[li].name, mode_name[m], s.w,
                         s.h);
                for (int k = 0; k < 4; k++) {
                    if (SIZES[si][0] < 20 && k > 0)
                        continue;
                    run_file(&f, what, SCALES[k], mx, my, s.seed + (unsigned)k,
                             SIZES[si][0] < 20 ? 2 : 14, &t, verbose);
                }
                free(f.p);
            }
        }
    }
    return t;
}

/* ---- tests ---------------------------------------------------------------------------- */

TEST(test_region_matrix_default_margins_exact)
{
    tally t = run_matrix(JPEG_REGION_MARGIN_DEFAULT, JPEG_REGION_MARGIN_DEFAULT, -1, -1, 1);
    fprintf(stderr, "  %ld region decodes: %ld cropped, %ld with rows skipped (%ld buffered)\n",
            t.cases, t.cropped, t.skipped, t.buffered);
    CHECK(t.cases > 5000);
    CHECK_EQ_INT(t.bad_cases, 0);
    /* the fast paths were really taken */
    CHECK(t.cropped > t.cases / 2);
    CHECK(t.skipped > t.cases / 4);
    CHECK(t.buffered > 100);
}

/* The margins are needed: with none, fancy upsampling (4:2:0, 4:2:2) and block smoothing
 * (progressive with incomplete coefficients, even 4:4:4 and gray) differ at a cropped edge. */
TEST(test_region_zero_margin_is_not_exact)
{
    int l420 = 2, l444 = 0, lgray = 8;
    tally a = run_matrix(0, JPEG_REGION_MARGIN_DEFAULT, l420, M_BASELINE, 0);
    tally b = run_matrix(0, JPEG_REGION_MARGIN_DEFAULT, l444, M_PROG_PART, 0);
    tally c = run_matrix(0, JPEG_REGION_MARGIN_DEFAULT, lgray, M_PROG_DC, 0);
    CHECK(a.bad_cases > 0);
    CHECK(b.bad_cases > 0);
    CHECK(c.bad_cases > 0);
    /* ... and neither for 4:4:4 baseline: no horizontal context at all */
    tally d = run_matrix(0, 0, l444, M_BASELINE, 1);
    CHECK_EQ_INT(d.bad_cases, 0);
}

#ifndef REGION_TEST_NO_MAIN
int main(void)
{
    (void)decode_public;
    (void)untouched;
    RUN(test_region_matrix_default_margins_exact);
    RUN(test_region_zero_margin_is_not_exact);
    return TEST_SUMMARY();
}
#endif
