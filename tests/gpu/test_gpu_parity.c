/* test_gpu_parity.c — on a machine with a CUDA device: the GPU's output equals the CPU
 * executor's bit for bit on batches mixing sizes, crops, padding, filters and dtypes, and
 * repeated runs are identical (no races); the hybrid JPEG decode on the GPU gives the host
 * twin's and libjpeg's bytes on generated files of every layout and coding mode (and trips
 * the IDCT guard exactly where the twin does). Without a device it prints why and skips
 * (CLIPPREP_GPU_REQUIRE=1: fails instead). CLIPPREP_GPU_PARITY_QUICK=1 runs a smaller set (for
 * compute-sanitizer, which slows the kernels down a hundredfold). */
#include "../../kernels/cuda_engine.h"
#include "../../server/decode.h"
#include "../../server/jpeg_coeffs.h"
#include "../unit/jpeg_encoder.h"
#include "../unit/mixed_batch.h"
#include "../unit/test.h"

static cuda_engine *engine_for(const mixed_batch *mb, char *err, size_t cap)
{
    cuda_engine_sizes z = {.staging_bytes = mb->staging_bytes + 64,
                           .tmp_bytes = mb->layout.tmp_bytes + 64,
                           .out_bytes = mb->layout.out_bytes + 64,
                           .coeff_ints = mb->layout.n_coeffs + 64,
                           .max_images = mb->n,
                           .slots = 2};
    return cuda_engine_create(0, &z, mb->tables, 2, err, cap);
}

static bool run_on_gpu(cuda_engine *e, int slot, const mixed_batch *mb, uint8_t *out, char *err,
                       size_t cap)
{
    memcpy(cuda_engine_staging(e, slot), mb->staging, mb->staging_bytes);
    staging_range all = {0, mb->staging_bytes};
    if (!cuda_engine_launch(e, slot, &mb->layout, &all, 1, NULL, err, cap) ||
        !cuda_engine_wait(e, slot, err, cap))
        return false;
    memcpy(out, cuda_engine_output(e, slot), mb->layout.out_bytes);
    return true;
}

static bool quick(void)
{
    const char *q = getenv("CLIPPREP_GPU_PARITY_QUICK");
    return q && *q == '1';
}

TEST(gpu_equals_cpu_on_mixed_batches)
{
    for (unsigned seed = 1; seed <= (quick() ? 2u : 6u); seed++) {
        mixed_batch mb;
        mixed_batch_make(&mb, seed < 4 ? 40 : 200, seed);
        char err[256] = "";
        cuda_engine *e = engine_for(&mb, err, sizeof err);
        CHECK(e != NULL);
        if (!e) {
            fprintf(stderr, "  engine: %s\n", err);
            mixed_batch_free(&mb);
            return;
        }
        uint8_t *out = malloc(mb.layout.out_bytes), *again = malloc(mb.layout.out_bytes);
        CHECK(run_on_gpu(e, 0, &mb, out, err, sizeof err));
        CHECK_EQ_INT(mixed_batch_count_mismatches(&mb, out), 0);
        for (int rep = 0; rep < 5; rep++) { /* both slots, repeatedly: identical every time */
            CHECK(run_on_gpu(e, rep % 2, &mb, again, err, sizeof err));
            CHECK(memcmp(out, again, mb.layout.out_bytes) == 0);
        }
        free(out);
        free(again);
        cuda_engine_destroy(e);
        mixed_batch_free(&mb);
    }
}

/* ---- hybrid JPEG decode --------------------------------------------------------------- */

typedef struct {
    blob file;
    image_header hdr;
    uint64_t blk;           /* first coefficient block in the batch */
    size_t rgb_off;
    jpeg_coeffs k;
    uint8_t *twin, *ref;    /* RGB from the host twin, and from decode_rgb */
    int twin_guard;
    int eligible;           /* the CPU side routes it to the hybrid decode */
    int hi;                 /* its index in the GPU batch */
} hybrid_case;

/* One batch of files through the GPU: entropy decoding here, the rest on the device. The
 * resample passes run as an identity (same size, no crop) with an identity table, so the
 * float output is the decoded RGB itself. Returns the number of mismatching images. */
static int run_hybrid_batch(hybrid_case *cs, int n, long *guards, char *err, size_t cap)
{
    uint64_t blocks = 0;
    size_t rgb = 0, out = 0;
    for (int i = 0; i < n; i++) {
        cs[i].blk = blocks;
        cs[i].rgb_off = rgb;
        blocks += (uint64_t)cs[i].hdr.jpeg_blocks;
        rgb += ((size_t)cs[i].hdr.width * cs[i].hdr.height * 3 + 15) & ~(size_t)15;
        out += ((size_t)cs[i].hdr.width * cs[i].hdr.height * 3 * 4 + 15) & ~(size_t)15;
    }
    normalize_table table;
    const double zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};
    normalize_table_build(&table, 1.0, zero, one);
    cuda_engine_sizes z = {.staging_bytes = rgb + 64, .tmp_bytes = 64, .out_bytes = out + 64,
                           .coeff_ints = 64, .max_images = n, .slots = 1,
                           .coef_bytes = blocks * 128 + 64, .plane_bytes = blocks * 64 + 64,
                           .max_planes = n * JH_MAX_COMPONENTS};
    cuda_engine *e = cuda_engine_create(0, &z, &table, 1, err, cap);
    if (!e)
        return n;
    int16_t *coefs = cuda_engine_coefs(e, 0);
    jh_image *images = calloc((size_t)n, sizeof *images);
    jh_plane *planes = calloc((size_t)n * JH_MAX_COMPONENTS, sizeof *planes);
    resize_plan *plans = calloc((size_t)n, sizeof *plans);
    hybrid_batch hb = {.images = images, .planes = planes, .coef_bytes = blocks * 128};
    batch_layout layout = {0};
    int bad = 0;
    for (int i = 0; i < n; i++) {
        hybrid_case *c = &cs[i];
        c->hi = -1;
        if (!c->eligible)
            continue;
        if (jpeg_coeffs_read(c->file.p, c->file.n, &c->hdr, NULL, coefs + c->blk * 64,
                             (uint64_t)c->hdr.jpeg_blocks, &c->k) != JPEG_HYBRID_OK) {
            bad++;
            continue;
        }
        c->hi = jpeg_coeffs_append(&c->k, c->blk, c->rgb_off, images, &hb.n_images, planes,
                                   &hb.n_planes);
        int w = c->hdr.width, h = c->hdr.height;
        resize_plan_build(&plans[c->hi], w, h, w, h, 0, 0, w, h, FILTER_BICUBIC);
        batch_layout_add(&layout, &plans[c->hi], c->rgb_off, 0, DTYPE_FLOAT32);
    }
    if (bad == 0 && cuda_engine_launch(e, 0, &layout, NULL, 0, &hb, err, cap) &&
        cuda_engine_wait(e, 0, err, cap)) {
        const int32_t *guard = cuda_engine_guard_flags(e, 0);
        const uint8_t *outb = cuda_engine_output(e, 0);
        for (int i = 0; i < n; i++) {
            hybrid_case *c = &cs[i];
            if (c->hi < 0)
                continue;
            int g = guard[c->hi];
            *guards += g != 0;
            if ((g != 0) != (c->twin_guard != 0)) {
                fprintf(stderr, "  image %d: GPU guard %d, twin guard %d\n", i, g, c->twin_guard);
                bad++;
                continue;
            }
            if (g)
                continue; /* unspecified: the executor decodes it on the CPU */
            const image_desc *d = &layout.descs[c->hi];
            const float *f = (const float *)(outb + d->out_off);
            size_t plane = (size_t)c->hdr.width * c->hdr.height, diff = 0;
            for (size_t px = 0; px < plane; px++)
                for (int ch = 0; ch < 3; ch++) {
                    float v = f[ch * plane + px];
                    diff += v != (float)c->twin[px * 3 + ch] || v != (float)c->ref[px * 3 + ch];
                }
            if (diff) {
                fprintf(stderr, "  image %d (%dx%d): %zu values differ\n", i, c->hdr.width,
                        c->hdr.height, diff);
                bad++;
            }
        }
    } else if (bad == 0) {
        fprintf(stderr, "  launch: %s\n", err);
        bad = n;
    }
    for (int i = 0; i < hb.n_images; i++)
        resize_plan_free(&plans[i]);
    batch_layout_free(&layout);
    free(plans);
    free(images);
    free(planes);
    cuda_engine_destroy(e);
    return bad;
}

/* Host twin and decode_rgb for one case (the twin's guard decides what must match). */
static void prepare_case(hybrid_case *c)
{
    cp_error err;
    decode_read_header(c->file.p, c->file.n, &c->hdr, &err);
    size_t n = (size_t)c->hdr.width * c->hdr.height * 3;
    c->twin = malloc(n);
    c->ref = malloc(n);
    decode_rgb(c->file.p, c->file.n, &c->hdr, &(decode_options){0}, c->ref, n, &err);
    int16_t *coefs = malloc((size_t)c->hdr.jpeg_blocks * 128);
    jpeg_coeffs k;
    c->twin_guard = 0;
    c->eligible = jpeg_coeffs_read(c->file.p, c->file.n, &c->hdr, NULL, coefs,
                                   (uint64_t)c->hdr.jpeg_blocks, &k) == JPEG_HYBRID_OK;
    if (c->eligible) {
        uint8_t *planes = malloc(k.blocks * 64);
        int32_t guard = 0;
        jh_idct_host(k.planes, k.n_planes, coefs, planes, &guard);
        jh_pixels_host(&k.image, 1, k.planes, planes, c->twin);
        c->twin_guard = guard;
        free(planes);
    }
    free(coefs);
}

/* Collects cases into batches of BATCH; each full batch (or the last, on flush) runs. */
enum { BATCH = 24 };
typedef struct {
    hybrid_case cs[BATCH];
    int n, bad, total;
    long guards;
} hybrid_run;

static void hybrid_run_batch(hybrid_run *r)
{
    char err[256] = "";
    if (r->n == 0)
        return;
    r->bad += run_hybrid_batch(r->cs, r->n, &r->guards, err, sizeof err);
    r->total += r->n;
    for (int i = 0; i < r->n; i++) {
        free(r->cs[i].file.p);
        free(r->cs[i].twin);
        free(r->cs[i].ref);
    }
    r->n = 0;
}

static void hybrid_run_add(hybrid_run *r, blob file)
{
    hybrid_case *c = &r->cs[r->n++];
    memset(c, 0, sizeof *c);
    c->file = file;
    prepare_case(c);
    if (r->n == BATCH)
        hybrid_run_batch(r);
}

TEST(gpu_hybrid_decode_equals_twin_and_libjpeg)
{
    static const int SIZES[][2] = {{1, 1}, {3, 5}, {9, 9}, {17, 33}, {63, 47}, {257, 129},
                                   {1920, 1080}};
    static const int MODES[][3] = {{M_BASELINE, 0, 0}, {M_BASELINE, 2, 1}, {M_SEQ_MULTI, 0, 0},
                                   {M_PROG, 0, 0}};
    static hybrid_run r;
    for (int li = 0; li < NLAYOUTS; li++)
        for (int mi = 0; mi < 4; mi++)
            for (int si = 0; si < (quick() ? 5 : 7); si++) {
                enc_spec s = {.w = SIZES[si][0], .h = SIZES[si][1], .lay = &LAYOUTS[li],
                              .mode = MODES[mi][0], .restart = MODES[mi][1],
                              .arith = MODES[mi][2] && si < 6, .quality = 90,
                              .seed = (unsigned)(li * 100 + mi * 10 + si)};
                hybrid_run_add(&r, encode(&s));
            }
    static const int DIVISORS[] = {0, 8, 24, 48, 96, 160, 256, 512};
    for (unsigned seed = 1; seed <= (quick() ? 8u : 48u); seed++) /* around the guard */
        hybrid_run_add(&r, random_coefficients(seed, DIVISORS[seed % 8]));
    hybrid_run_batch(&r);
    fprintf(stderr, "  hybrid decode: %d images on the GPU, %ld guard trips (as the twin), "
            "%d mismatches\n", r.total, r.guards, r.bad);
    CHECK_EQ_INT(r.bad, 0);
    CHECK(r.total > (quick() ? 200 : 300));
    CHECK(r.guards > 0);
}

int main(void)
{
    char name[128] = "", err[256] = "";
    if (cuda_device_count(name, sizeof name, err, sizeof err) <= 0) {
        const char *req = getenv("CLIPPREP_GPU_REQUIRE");
        printf("%s: GPU parity tests need a CUDA device (%s)\n",
               req && *req == '1' ? "FAIL" : "SKIP", err[0] ? err : "none found");
        return req && *req == '1';
    }
    printf("device: %s\n", name);
    RUN(gpu_equals_cpu_on_mixed_batches);
    RUN(gpu_hybrid_decode_equals_twin_and_libjpeg);
    return TEST_SUMMARY();
}
