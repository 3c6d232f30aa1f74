/* coeffs.c — Pillow's precompute_coeffs + normalize_coeffs_8bpc, in our own words (spec A.3,
 * A.4). Built with -ffp-contract=off: a fused multiply-add would move weights by an ulp. */
#include "coeffs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double bicubic_kernel(double x)
{
    const double a = -0.5; /* Keys cubic, as Pillow (torch's non-AA bicubic uses -0.75) */
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double bilinear_kernel(double x)
{
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return 1.0 - x;
    return 0.0;
}

const char *resample_filter_name(resample_filter f)
{
    return f == FILTER_BILINEAR ? "bilinear" : "bicubic";
}

bool resample_filter_parse(const char *name, resample_filter *f)
{
    if (!strcmp(name, "bicubic")) {
        *f = FILTER_BICUBIC;
        return true;
    }
    if (!strcmp(name, "bilinear")) {
        *f = FILTER_BILINEAR;
        return true;
    }
    return false;
}

static bool build_torchvision(axis_coeffs *c, int n_in, int n_out, int first, int count,
                              resample_filter filter);

/* Fills c's sizes and allocates its tables; returns a scratch row of ksize doubles for the
 * weights (the caller frees it), or NULL with c freed. */
static double *coeffs_alloc(axis_coeffs *c, int n_in, int n_out, int first, int count,
                            int ksize, coeff_kind kind)
{
    c->n_in = n_in;
    c->n_out = n_out;
    c->first = first;
    c->count = count;
    c->ksize = ksize;
    c->kind = kind;
    c->bounds = malloc(sizeof(int) * 2 * (size_t)count);
    c->k = calloc((size_t)count * ksize, sizeof(int32_t));
    double *w = malloc(sizeof(double) * ksize);
    if (!c->bounds || !c->k || !w) {
        free(w);
        axis_coeffs_free(c);
        return NULL;
    }
    return w;
}

/* Pillow's precompute_coeffs for box (0, n_in): the box width is a float32 difference. */
static double pillow_scale(int n_in, int n_out)
{
    float box0 = 0.0f, box1 = (float)n_in;
    return (double)(box1 - box0) / n_out;
}

int axis_pillow_ksize(int n_in, int n_out, resample_filter filter)
{
    double radius = filter == FILTER_BILINEAR ? 1.0 : 2.0;
    double scale = pillow_scale(n_in, n_out);
    double filterscale = scale < 1.0 ? 1.0 : scale;
    return (int)ceil(radius * filterscale) * 2 + 1;
}

int axis_pillow_weights(int n_in, int n_out, int i, resample_filter filter, int *lo_out,
                        double *w)
{
    double (*kernel)(double) = filter == FILTER_BILINEAR ? bilinear_kernel : bicubic_kernel;
    double radius = filter == FILTER_BILINEAR ? 1.0 : 2.0;
    double scale = pillow_scale(n_in, n_out);
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = radius * filterscale;
    double inv = 1.0 / filterscale;
    double center = 0.0f + (i + 0.5) * scale;
    int lo = (int)(center - support + 0.5);
    if (lo < 0)
        lo = 0;
    int hi = (int)(center + support + 0.5);
    if (hi > n_in)
        hi = n_in;
    int taps = hi - lo;
    double total = 0.0;
    for (int t = 0; t < taps; t++) {
        double v = kernel((t + lo - center + 0.5) * inv);
        w[t] = v;
        total += v;
    }
    if (total != 0.0)
        for (int t = 0; t < taps; t++)
            w[t] = w[t] / total;
    *lo_out = lo;
    return taps;
}

bool axis_coeffs_build(axis_coeffs *c, int n_in, int n_out, int first, int count,
                       resample_filter filter)
{
    return axis_coeffs_build_kind(c, n_in, n_out, first, count, filter, COEFF_PILLOW);
}

bool axis_coeffs_build_kind(axis_coeffs *c, int n_in, int n_out, int first, int count,
                            resample_filter filter, coeff_kind kind)
{
    if (kind == COEFF_TORCHVISION)
        return build_torchvision(c, n_in, n_out, first, count, filter);
    memset(c, 0, sizeof *c);
    if (n_in <= 0 || n_out <= 0 || first < 0 || count <= 0 || first + count > n_out)
        return false;

    int ksize = axis_pillow_ksize(n_in, n_out, filter);
    double *w = coeffs_alloc(c, n_in, n_out, first, count, ksize, COEFF_PILLOW);
    if (!w)
        return false;

    for (int j = 0; j < count; j++) {
        int lo, taps = axis_pillow_weights(n_in, n_out, first + j, filter, &lo, w);
        int32_t *k = c->k + (size_t)j * ksize;
        for (int t = 0; t < taps; t++) {
            double v = w[t];
            double scaled = v * (1 << RESAMPLE_PRECISION_BITS);
            k[t] = (int32_t)(v < 0 ? -0.5 + scaled : 0.5 + scaled);
        }
        c->bounds[2 * j] = lo;
        c->bounds[2 * j + 1] = taps;
    }
    free(w);
    return true;
}

/* ---- torchvision (PyTorch aten/native/cpu/UpSampleKernel.cpp, antialias=True, uint8) ----
 * Same window as Pillow (centre (i+0.5)*scale, support radius*max(scale,1), bounds rounded
 * the same way), but: the cubic's outer lobe written as ((a*x - 5a)*x + 8a)*x - 4a, the tap
 * count clamped to the kernel size, and the weights quantised to int16 at a precision chosen
 * per axis from the largest normalised weight of ALL outputs (not only the kept ones). */
static double tv_cubic(double x)
{
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2.0)
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0.0;
}

/* Output i's window and normalised weights (w has room for ksize); returns the tap count. */
static int tv_window(int i, int n_in, double scale, double support, int ksize,
                     double (*kernel)(double), int *lo_out, double *w)
{
    double center = scale * (i + 0.5);
    double inv = scale >= 1.0 ? 1.0 / scale : 1.0;
    long long lo = (long long)(center - support + 0.5);
    if (lo < 0)
        lo = 0;
    long long hi = (long long)(center + support + 0.5);
    if (hi > n_in)
        hi = n_in;
    long long taps = hi - lo;
    if (taps < 0)
        taps = 0;
    if (taps > ksize)
        taps = ksize;
    double total = 0.0;
    for (int t = 0; t < taps; t++) {
        w[t] = kernel((t + lo - center + 0.5) * inv);
        total += w[t];
    }
    if (total != 0.0)
        for (int t = 0; t < taps; t++)
            w[t] /= total;
    *lo_out = (int)lo;
    return (int)taps;
}

static bool build_torchvision(axis_coeffs *c, int n_in, int n_out, int first, int count,
                              resample_filter filter)
{
    memset(c, 0, sizeof *c);
    if (n_in <= 0 || n_out <= 0 || first < 0 || count <= 0 || first + count > n_out)
        return false;
    double (*kernel)(double) = filter == FILTER_BILINEAR ? bilinear_kernel : tv_cubic;
    double interp_size = filter == FILTER_BILINEAR ? 2.0 : 4.0;
    double scale = (double)n_in / (double)n_out;
    double support = scale >= 1.0 ? (interp_size * 0.5) * scale : interp_size * 0.5;
    int ksize = (int)ceil(support) * 2 + 1;

    double *w = coeffs_alloc(c, n_in, n_out, first, count, ksize, COEFF_TORCHVISION);
    if (!w)
        return false;
    /* The precision depends on the largest weight of the whole axis. */
    double wt_max = 0.0;
    for (int i = 0; i < n_out; i++) {
        int lo, taps = tv_window(i, n_in, scale, support, ksize, kernel, &lo, w);
        for (int t = 0; t < taps; t++)
            if (w[t] > wt_max)
                wt_max = w[t];
    }
    int prec = 0;
    for (prec = 0; prec < RESAMPLE_PRECISION_BITS; prec++)
        if ((int)(0.5 + wt_max * (1 << (prec + 1))) >= (1 << 15))
            break;
    for (int j = 0; j < count; j++) {
        int lo, taps = tv_window(first + j, n_in, scale, support, ksize, kernel, &lo, w);
        int32_t *k = c->k + (size_t)j * ksize;
        for (int t = 0; t < taps; t++) {
            double v = w[t] * (1 << prec);
            int16_t q = (int16_t)(v < 0 ? (int)(-0.5 + v) : (int)(0.5 + v));
            k[t] = (int32_t)((uint32_t)(int32_t)q << (RESAMPLE_PRECISION_BITS - prec));
        }
        c->bounds[2 * j] = lo;
        c->bounds[2 * j + 1] = taps;
    }
    free(w);
    return true;
}

#define CACHE_ENTRIES 8

/* Per thread: entries are shared by reference count; only unreferenced entries are evicted,
 * so a plan's tables stay valid until the plan is freed (on the same thread). */
static __thread struct {
    axis_coeffs entry[CACHE_ENTRIES];
    int filter[CACHE_ENTRIES];
    int refs[CACHE_ENTRIES];
    int next;
} cache;

bool axis_coeffs_cached(axis_coeffs *c, int n_in, int n_out, int first, int count,
                        resample_filter filter)
{
    return axis_coeffs_cached_kind(c, n_in, n_out, first, count, filter, COEFF_PILLOW);
}

bool axis_coeffs_cached_kind(axis_coeffs *c, int n_in, int n_out, int first, int count,
                             resample_filter filter, coeff_kind kind)
{
    for (int i = 0; i < CACHE_ENTRIES; i++) {
        const axis_coeffs *e = &cache.entry[i];
        if (e->k && e->n_in == n_in && e->n_out == n_out && e->first == first &&
            e->count == count && cache.filter[i] == (int)filter && e->kind == kind) {
            *c = *e;
            c->borrowed = i + 1;
            cache.refs[i]++;
            return true;
        }
    }
    int slot = -1;
    for (int t = 0; t < CACHE_ENTRIES && slot < 0; t++) {
        int i = (cache.next + t) % CACHE_ENTRIES;
        if (cache.refs[i] == 0)
            slot = i;
    }
    if (slot < 0) /* every entry in use: a private table */
        return axis_coeffs_build_kind(c, n_in, n_out, first, count, filter, kind);
    cache.next = (slot + 1) % CACHE_ENTRIES;
    axis_coeffs_free(&cache.entry[slot]);
    if (!axis_coeffs_build_kind(&cache.entry[slot], n_in, n_out, first, count, filter, kind))
        return false;
    cache.filter[slot] = (int)filter;
    cache.refs[slot] = 1;
    *c = cache.entry[slot];
    c->borrowed = slot + 1;
    return true;
}

void axis_coeffs_cache_clear(void)
{
    for (int i = 0; i < CACHE_ENTRIES; i++)
        if (cache.refs[i] == 0)
            axis_coeffs_free(&cache.entry[i]);
}

void axis_coeffs_free(axis_coeffs *c)
{
    if (c->borrowed) {
        cache.refs[c->borrowed - 1]--;
        c->borrowed = 0;
        c->bounds = NULL;
        c->k = NULL;
        return;
    }
    free(c->bounds);
    free(c->k);
    c->bounds = NULL;
    c->k = NULL;
}

void axis_coeffs_source_range(const axis_coeffs *c, int *lo, int *hi)
{
    /* Bounds grow monotonically with the output index, so first/last give the range. */
    int l = c->bounds[0], h = c->bounds[0] + c->bounds[1];
    for (int j = 0; j < c->count; j++) {
        int a = c->bounds[2 * j], b = a + c->bounds[2 * j + 1];
        if (a < l)
            l = a;
        if (b > h)
            h = b;
    }
    *lo = l;
    *hi = h;
}
