/* test_hybrid_decode.c — the hybrid JPEG decode's host twin (kernels/jpeg_blocks.h, the bodies
 * the CUDA kernels run) against libjpeg-turbo itself, byte for byte:
 *   - samples: coefficients from jpeg_coeffs_read() + twin IDCT + upsampling + colour versus
 *     libjpeg's own jpeg_read_scanlines() with default settings (GRAYSCALE / RGB / CMYK out);
 *   - pipeline: jpeg_hybrid_stage() + twin (RGB as Pillow's convert("RGB"), EXIF-oriented)
 *     versus decode_rgb(), for eligible and ineligible files alike (ineligible ones must be
 *     routed to decode_rgb, so the end-to-end tensor cannot change).
 * Files: generated over every sampling layout (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1, 4:1:0, 3:1,
 * chroma above luma, gray, 2x2 gray, RGB, CMYK, YCCK), sizes from 1x1 to non-multiples of the
 * MCU, baseline, multi-scan sequential, progressive with and without block smoothing, restart
 * markers, arithmetic coding, 16-bit quantisers, cut files, random coefficients near and past
 * the IDCT guard; real photos from a directory given as argv[1] (tests/parity runs this with
 * scikit-image's photos). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "jpeg_coeffs.h"
#include "jpeg_encoder.h"
#include "test.h"

/* ---- libjpeg's own decode (default settings, plain memory source) ----------------------- */

typedef struct {
    int ok, w, h, nc;
    long warnings;
    uint8_t *px;
} native;

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
} nat_err;

static void nat_error_exit(j_common_ptr c) { longjmp(((nat_err *)c->err)->jb, 1); }
static void nat_silent(j_common_ptr c) { (void)c; }

static native decode_native(const blob *f)
{
    native n = {0};
    struct jpeg_decompress_struct d;
    nat_err e;
    d.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = nat_error_exit;
    e.pub.output_message = nat_silent; /* warnings are counted, not printed */
    if (setjmp(e.jb)) {
        jpeg_destroy_decompress(&d);
        free(n.px);
        n.px = NULL;
        n.ok = 0;
        return n;
    }
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, f->p, f->n);
    jpeg_read_header(&d, TRUE);
    d.out_color_space = d.num_components == 1 ? JCS_GRAYSCALE
                        : d.num_components == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_start_decompress(&d);
    n.w = (int)d.output_width;
    n.h = (int)d.output_height;
    n.nc = d.output_components;
    n.px = malloc((size_t)n.w * n.h * n.nc);
    while (d.output_scanline < d.output_height) {
        JSAMPROW row = n.px + (size_t)d.output_scanline * n.w * n.nc;
        jpeg_read_scanlines(&d, &row, 1);
    }
    jpeg_finish_decompress(&d);
    n.warnings = e.pub.num_warnings;
    jpeg_destroy_decompress(&d);
    n.ok = 1;
    return n;
}

/* ---- the hybrid path through the twin -------------------------------------------------- */

typedef struct {
    jpeg_hybrid_reason reason;
    int guard;       /* an IDCT guard tripped */
    jpeg_coeffs k;
    uint8_t *planes; /* decoded sample planes */
} hybrid;

static hybrid run_hybrid(const blob *f, const decode_options *opt)
{
    hybrid h = {0};
    image_header hdr;
    cp_error err;
    if (!decode_read_header(f->p, f->n, &hdr, &err)) {
        h.reason = JPEG_HYBRID_CORRUPT;
        return h;
    }
    uint64_t blocks = hdr.jpeg_blocks > 0 ? (uint64_t)hdr.jpeg_blocks : 1;
    int16_t *coefs = malloc(blocks * 64 * sizeof *coefs);
    h.reason = jpeg_coeffs_read(f->p, f->n, &hdr, opt, coefs, blocks, &h.k);
    if (h.reason == JPEG_HYBRID_OK) {
        h.planes = malloc(h.k.blocks * 64);
        int32_t guard = 0;
        jh_idct_host(h.k.planes, h.k.n_planes, coefs, h.planes, &guard);
        h.guard = guard;
    }
    free(coefs);
    return h;
}

/* Twin samples versus libjpeg's; returns the number of differing bytes (-1: not comparable). */
static long compare_samples(const hybrid *h, const native *n)
{
    const jh_image *m = &h->k.image;
    if (!n->ok || n->w != m->width || n->h != m->height)
        return -1;
    long diff = 0;
    for (int y = 0; y < m->height; y++)
        for (int x = 0; x < m->width; x++) {
            uint8_t s[4];
            int nc = jh_pixel_samples(m, h->k.planes, h->planes, x, y, s);
            if (nc != n->nc)
                return -1;
            const uint8_t *r = n->px + ((size_t)y * n->w + x) * nc;
            for (int c = 0; c < nc; c++)
                diff += s[c] != r[c];
        }
    return diff;
}

/* jpeg_hybrid_stage() (+ twin when it chose the hybrid) versus decode_rgb(): 0 when equal
 * (both failing counts as equal), else 1. *took_hybrid tells which way it went. */
static int compare_pipeline(const blob *f, const decode_options *opt, jpeg_hybrid_reason *why)
{
    image_header hdr;
    cp_error e1 = {0}, e2 = {0};
    if (!decode_read_header(f->p, f->n, &hdr, &e1))
        return 0;
    int w, h;
    decode_output_size(&hdr, opt, &w, &h);
    size_t rgb_bytes = (size_t)w * h * 3;
    uint8_t *want = malloc(rgb_bytes), *got = malloc(rgb_bytes);
    bool want_ok = decode_rgb(f->p, f->n, &hdr, opt, want, rgb_bytes, &e1);
    uint64_t blocks = (uint64_t)hdr.jpeg_blocks + 1;
    int16_t *coefs = malloc(blocks * 64 * sizeof *coefs);
    jpeg_coeffs k;
    bool got_ok = jpeg_hybrid_stage(f->p, f->n, &hdr, opt, true, coefs, blocks, &k, why, got,
                                    rgb_bytes, &e2);
    if (got_ok && *why == JPEG_HYBRID_OK) {
        uint8_t *planes = malloc(k.blocks * 64);
        int32_t guard = 0;
        jh_idct_host(k.planes, k.n_planes, coefs, planes, &guard);
        if (guard) { /* what the executor does: decode this image on the CPU */
            *why = JPEG_HYBRID_GUARD;
            got_ok = decode_rgb(f->p, f->n, &hdr, opt, got, rgb_bytes, &e2);
        } else {
            jh_pixels_host(&k.image, 1, k.planes, planes, got);
        }
        free(planes);
    }
    int bad = want_ok != got_ok || (want_ok && memcmp(want, got, rgb_bytes) != 0) ||
              (!want_ok && strcmp(e1.message, e2.message) != 0);
    free(want);
    free(got);
    free(coefs);
    return bad;
}

/* ---- the matrix ---------------------------------------------------------------------- */

static const layout EXTRA_LAYOUTS[] = {
    {"rgb", 3, 0, {1, 1, 1}, {1, 1, 1}, 1},
    {"rgb-420", 3, 0, {2, 1, 1}, {2, 1, 1}, 1},
    {"luma-below-chroma", 3, 0, {1, 2, 2}, {1, 2, 2}, 0},
    {"cmyk-422", 4, 0, {2, 1, 1, 2}, {1, 1, 1, 1}, 0},
};

static const int SIZES[][2] = {{1, 1},  {1, 9},   {9, 1},   {2, 2},   {3, 5},   {4, 4},
                               {5, 3},  {7, 7},   {8, 8},   {9, 9},   {15, 17}, {16, 16},
                               {17, 33}, {33, 17}, {31, 2},  {2, 31},  {63, 47}, {100, 75},
                               {257, 129}};
#define NSIZES ((int)(sizeof SIZES / sizeof SIZES[0]))

typedef struct {
    long files, eligible, exact, routed, mismatched, pipeline_bad, smoothing, corrupt;
} tally;

static void check_file(const blob *f, const char *what, int expect, tally *t)
{
    t->files++;
    native n = decode_native(f);
    decode_options opt = {0};
    hybrid h = run_hybrid(f, &opt);
    if (h.reason == JPEG_HYBRID_OK) {
        t->eligible++;
        long d = h.guard ? -2 : compare_samples(&h, &n);
        if (d == 0)
            t->exact++;
        else {
            t->mismatched++;
            fprintf(stderr, "  %s: twin != libjpeg (%ld bytes differ%s)\n", what, d,
                    h.guard ? ", guard" : "");
        }
    } else {
        t->routed++;
        t->smoothing += h.reason == JPEG_HYBRID_SMOOTHING;
        t->corrupt += h.reason == JPEG_HYBRID_CORRUPT;
    }
    if (expect >= 0 && (int)h.reason != expect) {
        t->mismatched++;
        fprintf(stderr, "  %s: routed as %s, expected %s\n", what,
                jpeg_hybrid_reason_name(h.reason), jpeg_hybrid_reason_name(expect));
    }
    jpeg_hybrid_reason why;
    decode_options oriented = {.apply_orientation = true}; /* EXIF photos: as the daemon */
    if (compare_pipeline(f, &oriented, &why)) {
        t->pipeline_bad++;
        fprintf(stderr, "  %s: pipeline RGB != decode_rgb (%s)\n", what,
                jpeg_hybrid_reason_name(why));
    }
    free(h.planes);
    free(n.px);
}

static const layout *layout_at(int i)
{
    return i < NLAYOUTS ? &LAYOUTS[i] : &EXTRA_LAYOUTS[i - NLAYOUTS];
}

TEST(test_hybrid_matrix)
{
    static const struct {
        int mode, restart, arith, q16, expect;
    } MODES[] = {
        {M_BASELINE, 0, 0, 0, JPEG_HYBRID_OK},
        {M_BASELINE, 2, 0, 0, JPEG_HYBRID_OK},       /* restart markers */
        {M_BASELINE, 0, 1, 0, JPEG_HYBRID_OK},       /* arithmetic coding */
        {M_BASELINE, 0, 0, 1, JPEG_HYBRID_OK},       /* 16-bit quantisers */
        {M_SEQ_MULTI, 0, 0, 0, JPEG_HYBRID_OK},
        {M_PROG, 0, 0, 0, JPEG_HYBRID_OK},           /* complete: no smoothing */
        {M_PROG, 1, 1, 0, JPEG_HYBRID_OK},           /* progressive + arithmetic + restarts */
        {M_PROG_PART, 0, 0, 0, JPEG_HYBRID_SMOOTHING},
        {M_PROG_DC, 0, 0, 0, JPEG_HYBRID_SMOOTHING},
        {M_BASE_CUT, 0, 0, 0, JPEG_HYBRID_CORRUPT},  /* libjpeg warns: CPU decoder */
        {M_PROG_CUT, 0, 0, 0, -1},
    };
    int nmodes = (int)(sizeof MODES / sizeof MODES[0]);
    int nlayouts = NLAYOUTS + (int)(sizeof EXTRA_LAYOUTS / sizeof EXTRA_LAYOUTS[0]);
    tally t = {0};
    for (int li = 0; li < nlayouts; li++)
        for (int mi = 0; mi < nmodes; mi++)
            for (int si = 0; si < NSIZES; si++) {
                int cut = MODES[mi].mode == M_BASE_CUT || MODES[mi].mode == M_PROG_CUT;
                if (cut && SIZES[si][0] * SIZES[si][1] < 1000)
                    continue; /* a cut needs entropy data to cut into */
                enc_spec s = {.w = SIZES[si][0], .h = SIZES[si][1], .lay = layout_at(li),
                              .mode = MODES[mi].mode, .restart = MODES[mi].restart,
                              .arith = MODES[mi].arith, .q16 = MODES[mi].q16,
                              .quality = MODES[mi].q16 ? 3 : (si % 3 ? 75 : 95),
                              .seed = (unsigned)(li * 977 + mi * 31 + si)};
                blob f = encode(&s);
                if (!f.p) {
                    t.mismatched++;
                    continue;
                }
                char what[128];
                snprintf(what, sizeof what, "%s/mode%d/r%d/a%d/q16=%d/%dx%d", layout_at(li)->name,
                         MODES[mi].mode, s.restart, s.arith, s.q16, s.w, s.h);
                /* arithmetic data across a 64 KiB feed block fails in Pillow: CPU decoder */
                int expect = s.arith && f.n > 65536 ? JPEG_HYBRID_CORRUPT : MODES[mi].expect;
                check_file(&f, what, expect, &t);
                free(f.p);
            }
    fprintf(stderr, "  %ld files: %ld eligible (%ld byte-exact), %ld routed to the CPU decoder "
            "(%ld block smoothing, %ld corrupt)\n", t.files, t.eligible, t.exact, t.routed,
            t.smoothing, t.corrupt);
    CHECK(t.files > 2000);
    CHECK_EQ_INT(t.mismatched, 0);
    CHECK_EQ_INT(t.pipeline_bad, 0);
    CHECK_EQ_INT(t.exact, t.eligible);
    CHECK(t.smoothing > 100);
    CHECK(t.corrupt > 10);
}

/* EXIF orientation is applied while writing RGB: equal to decode_rgb's transposition. */
TEST(test_hybrid_orientation)
{
    for (int o = 1; o <= 8; o++)
        for (int li = 0; li < 3; li++) {
            enc_spec s = {.w = 37, .h = 23, .lay = &LAYOUTS[li == 0 ? 0 : li == 1 ? 2 : 8],
                          .mode = M_BASELINE, .quality = 90, .seed = (unsigned)o,
                          .orientation = o == 1 ? 0 : o};
            blob f = encode(&s);
            decode_options opt = {.apply_orientation = true};
            jpeg_hybrid_reason why;
            CHECK_EQ_INT(compare_pipeline(&f, &opt, &why), 0);
            CHECK_EQ_INT(why, JPEG_HYBRID_OK);
            free(f.p);
        }
}

/* Files libjpeg decodes differently than the hybrid would, or that fail: routed, unchanged. */
TEST(test_hybrid_routing)
{
    enc_spec s = {.w = 300, .h = 200, .lay = &LAYOUTS[2], .mode = M_BASELINE, .quality = 90,
                  .seed = 7};
    blob f = encode(&s);
    jpeg_hybrid_reason why;

    /* extraneous bytes before a marker (a libjpeg warning Pillow ignores) */
    size_t at = f.n - 2; /* before EOI */
    blob g = {malloc(f.n + 3), f.n + 3};
    memcpy(g.p, f.p, at);
    memcpy(g.p + at, "\x12\x34\x56", 3);
    memcpy(g.p + at + 3, f.p + at, 2);
    CHECK_EQ_INT(compare_pipeline(&g, &(decode_options){0}, &why), 0);
    CHECK_EQ_INT(why, JPEG_HYBRID_CORRUPT);

    /* truncated (no EOI): Pillow's "truncated" error, from the CPU decoder */
    blob cut = {f.p, f.n / 2};
    CHECK_EQ_INT(compare_pipeline(&cut, &(decode_options){0}, &why), 0);
    CHECK_EQ_INT(why, JPEG_HYBRID_CORRUPT);

    /* missing EOI after complete data: decodes (like Pillow), via the CPU decoder */
    blob noeoi = {f.p, f.n - 2};
    CHECK_EQ_INT(compare_pipeline(&noeoi, &(decode_options){0}, &why), 0);
    CHECK_EQ_INT(why, JPEG_HYBRID_CORRUPT);

    /* mode=fast (DCT scaling) is not modelled */
    CHECK_EQ_INT(compare_pipeline(&f, &(decode_options){.scale_denom = 2}, &why), 0);
    CHECK_EQ_INT(why, JPEG_HYBRID_SCALED);

    /* too large for the staging buffer */
    image_header hdr;
    cp_error err;
    CHECK(decode_read_header(f.p, f.n, &hdr, &err));
    CHECK_EQ_INT(hdr.jpeg_blocks, 38 * 25 + 2 * 19 * 13);
    CHECK_EQ_INT(jpeg_hybrid_precheck(&hdr, NULL, (uint64_t)hdr.jpeg_blocks - 1),
                 JPEG_HYBRID_TOO_LARGE);
    CHECK_EQ_INT(jpeg_hybrid_precheck(&hdr, NULL, (uint64_t)hdr.jpeg_blocks), JPEG_HYBRID_OK);

    /* arithmetic coding across a 64 KiB feed block: Pillow fails, so both paths fail alike */
    enc_spec big = {.w = 640, .h = 480, .lay = &LAYOUTS[0], .mode = M_BASELINE, .arith = 1,
                    .quality = 100, .seed = 3, .random = 1};
    blob a = encode(&big);
    CHECK(a.n > 65536);
    CHECK_EQ_INT(compare_pipeline(&a, &(decode_options){0}, &why), 0);
    CHECK_EQ_INT(why, JPEG_HYBRID_CORRUPT);
    free(a.p);
    free(g.p);
    free(f.p);
}

/* Per block: blocks whose guard holds must give libjpeg's bytes even right at the edge of the
 * guard (4:4:4, so that a pixel depends on the co-located block of each component only);
 * tripped blocks make the whole image take the CPU decoder. */
TEST(test_hybrid_idct_guard)
{
    static const int DIVISORS[] = {0, 8, 24, 48, 96, 160, 256, 512}; /* 0: anything up to 1023 */
    long compared = 0, blocks_ok = 0, blocks_tripped = 0, bad = 0, images_tripped = 0;
    for (unsigned seed = 2; seed <= 96; seed += 2) { /* even seeds: the 4:4:4 layout */
        blob f = random_coefficients(seed, DIVISORS[(seed / 2) % 8]);
        native n = decode_native(&f);
        image_header hdr;
        cp_error err;
        CHECK(decode_read_header(f.p, f.n, &hdr, &err));
        int16_t *coefs = malloc((size_t)hdr.jpeg_blocks * 64 * sizeof *coefs);
        jpeg_coeffs k;
        CHECK_EQ_INT(jpeg_coeffs_read(f.p, f.n, &hdr, NULL, coefs, (uint64_t)hdr.jpeg_blocks, &k),
                     JPEG_HYBRID_OK);
        uint8_t *planes = malloc(k.blocks * 64);
        uint8_t *tripped = calloc(k.blocks, 1); /* per block, planes one after the other */
        uint64_t first[JH_MAX_COMPONENTS], at = 0;
        for (int c = 0; c < k.n_planes; c++) {
            first[c] = at;
            for (int64_t b = 0; b < (int64_t)k.planes[c].wb * k.planes[c].hb; b++, at++) {
                tripped[at] = !jh_idct_thread(&k.planes[c], coefs, planes, b);
                blocks_tripped += tripped[at];
                blocks_ok += !tripped[at];
            }
        }
        for (int y = 0; y < k.image.height; y++)
            for (int x = 0; x < k.image.width; x++) {
                int skip = 0;
                for (int c = 0; c < k.n_planes; c++)
                    skip |= tripped[first[c] + (uint64_t)(y / 8) * k.planes[c].wb + x / 8];
                if (skip)
                    continue;
                uint8_t sm[4];
                int nc = jh_pixel_samples(&k.image, k.planes, planes, x, y, sm);
                for (int c = 0; c < nc; c++)
                    bad += sm[c] != n.px[((size_t)y * n.w + x) * nc + c];
                compared++;
            }
        int32_t guard = 0;
        jh_idct_host(k.planes, k.n_planes, coefs, planes, &guard);
        images_tripped += guard != 0;
        jpeg_hybrid_reason why;
        CHECK_EQ_INT(compare_pipeline(&f, &(decode_options){0}, &why), 0);
        free(tripped);
        free(planes);
        free(coefs);
        free(n.px);
        free(f.p);
    }
    fprintf(stderr, "  random coefficients: %ld blocks inside the guard, %ld tripped; %ld pixels "
            "compared; %ld images tripped\n", blocks_ok, blocks_tripped, compared, images_tripped);
    CHECK_EQ_INT(bad, 0);
    CHECK(blocks_ok > 1000);
    CHECK(blocks_tripped > 1000);
    CHECK(images_tripped > 10);
    CHECK(compared > 10000);
}

/* Real photographs (argv[1]: a directory of .jpg files), when given. */
static const char *photo_dir;

TEST(test_hybrid_photos)
{
    DIR *dir = opendir(photo_dir);
    CHECK(dir != NULL);
    if (!dir)
        return;
    tally t = {0};
    struct dirent *de;
    while ((de = readdir(dir))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".jpg") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", photo_dir, de->d_name);
        FILE *fp = fopen(path, "rb");
        if (!fp)
            continue;
        fseek(fp, 0, SEEK_END);
        long n = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        blob f = {malloc((size_t)n), (size_t)n};
        if (fread(f.p, 1, f.n, fp) != f.n)
            t.mismatched++;
        fclose(fp);
        check_file(&f, de->d_name, -1, &t);
        free(f.p);
    }
    closedir(dir);
    fprintf(stderr, "  %ld photos: %ld eligible (%ld byte-exact), %ld routed\n", t.files,
            t.eligible, t.exact, t.routed);
    CHECK(t.files > 0);
    CHECK(t.eligible > 0);
    CHECK_EQ_INT(t.mismatched, 0);
    CHECK_EQ_INT(t.pipeline_bad, 0);
}

int main(int argc, char **argv)
{
    photo_dir = argc > 1 ? argv[1] : NULL;
    if (photo_dir) { /* tests/parity/test_hybrid_twin.py passes the corpus photos */
        RUN(test_hybrid_photos);
    } else {
        RUN(test_hybrid_matrix);
        RUN(test_hybrid_orientation);
        RUN(test_hybrid_routing);
        RUN(test_hybrid_idct_guard);
    }
    return TEST_SUMMARY();
}
