/* decode_heif.c — HEIC (HEVC-coded HEIF) as pillow-heif 1.1.1 opens it (its bundled libheif
 * 1.20.2 with libde265), which is what `Image.open(f).convert("RGB")` gives with
 * `pillow_heif.register_heif_opener()`.
 *
 * Debian's libheif (1.15) applies the transformations and converts YCbCr to RGB differently from
 * libheif 1.20, so it is not used. The container is read here (ftyp/meta: pitm, iinf, iloc, idat,
 * iprp/ipco/ipma, iref), the HEVC items are decoded with libde265 (HEVC decoding is exact by
 * specification), and everything after that is done the way libheif 1.20.2 does it, step by
 * step (libheif/image-items/image_item.cc ImageItem::decode_image, pixelimage.cc,
 * color-conversion/ *.cc):
 *   1. decode the item (a `hvc1` item, or a `grid` of them pasted tile by tile, in YCbCr);
 *   2. the item's transformation properties in `ipma` order: `irot` (rotate_ccw), `imir`
 *      (mirror_inplace), `clap` (crop, left rounded down, top rounded to nearest); 4:2:0 and
 *      4:2:2 images are first converted to 4:4:4 with libheif's bilinear chroma upsampling
 *      (including its border arithmetic) whenever the transform cannot keep the subsampling
 *      (odd sizes, odd crop offsets, 90/270-degree rotation of 4:2:2);
 *   3. the alpha item (`auxl`, alpha URN) decoded the same way, attached as the alpha plane;
 *   4. the nclx of the `colr` box, if any, replaces the bitstream's (VUI) one;
 *   5. YCbCr -> RGB as libheif's conversion pipeline picks it for 8-bit interleaved output with
 *      pillow-heif's default options: 4:2:0 full range -> Op_YCbCr420_to_RGB24/32 (nearest
 *      chroma, 8.8 fixed point); everything else -> Op_YCbCr_to_RGB<uint8_t> (nearest chroma,
 *      float) + interleave; monochrome without alpha -> the luma plane as Pillow's "L".
 * pillow-heif then resets the EXIF orientation to 1 (the transforms are already applied), so
 * the orientation reported here is always 1 and `exif=1` changes nothing.
 * Refused (415): bit depths above 8 (pillow-heif converts them with libheif's HDR path, not
 * reproduced), premultiplied alpha, matrix coefficients 11-14, items other than hvc1/grid. */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libde265/de265.h>

#include "alpha.h"
#include "decode_internal.h"

#define MAX_PROPS 4096
#define MAX_ITEM_PROPS 64
#define MAX_TILES 4096

/* ---- bytes ------------------------------------------------------------------------------ */

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t rdn(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

typedef struct {
    const uint8_t *p;
    size_t n;
} span;

/* Next box in [*at, end): its type and body. false at the end or on a malformed size. */
static bool next_box(const uint8_t **at, const uint8_t *end, uint32_t *type, span *body)
{
    const uint8_t *b = *at;
    if (b >= end || (size_t)(end - b) < 8)
        return false;
    uint64_t size = rd32(b);
    *type = rd32(b + 4);
    size_t hdr = 8;
    if (size == 1) {
        if ((size_t)(end - b) < 16)
            return false;
        size = rdn(b + 8, 8);
        hdr = 16;
    } else if (size == 0) {
        size = (uint64_t)(end - b);
    }
    if (size < hdr || size > (uint64_t)(end - b))
        return false;
    body->p = b + hdr;
    body->n = (size_t)size - hdr;
    *at = b + size;
    return true;
}

#define FOURCC(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

/* ---- the container -------------------------------------------------------------------- */

typedef struct {
    const uint8_t *file;
    size_t len;
    uint32_t primary;
    span iinf, iloc, idat, ipma, iref;
    span props[MAX_PROPS]; /* ipco children, 0-based (ipma indices are 1-based) */
    uint32_t prop_type[MAX_PROPS];
    int nprops;
    uint64_t max_item_pixels; /* largest ispe area any decoded item may have (open_heic) */
} heif_file;

static bool fail_inv(cp_error *err, const char *what)
{
    return cp_fail(err, CP_ERR_INVALID_IMAGE, "heic: %s", what);
}

static bool parse_file(const uint8_t *data, size_t len, heif_file *f, cp_error *err)
{
    memset(f, 0, sizeof *f);
    f->file = data;
    f->len = len;
    const uint8_t *at = data, *end = data + len;
    uint32_t type;
    span meta = {0}, b;
    while (next_box(&at, end, &type, &b))
        if (type == FOURCC('m', 'e', 't', 'a')) {
            meta = b;
            break;
        }
    if (!meta.p || meta.n < 4)
        return fail_inv(err, "no meta box");
    bool have_pitm = false;
    span ipco = {0};
    at = meta.p + 4;
    end = meta.p + meta.n;
    while (next_box(&at, end, &type, &b)) {
        switch (type) {
        case FOURCC('p', 'i', 't', 'm'):
            if (b.n >= 6 && b.p[0] == 0) {
                f->primary = rd16(b.p + 4);
                have_pitm = true;
            } else if (b.n >= 8) {
                f->primary = rd32(b.p + 4);
                have_pitm = true;
            }
            break;
        case FOURCC('i', 'i', 'n', 'f'): f->iinf = b; break;
        case FOURCC('i', 'l', 'o', 'c'): f->iloc = b; break;
        case FOURCC('i', 'd', 'a', 't'): f->idat = b; break;
        case FOURCC('i', 'r', 'e', 'f'): f->iref = b; break;
        case FOURCC('i', 'p', 'r', 'p'): {
            const uint8_t *a2 = b.p;
            uint32_t t2;
            span c;
            while (next_box(&a2, b.p + b.n, &t2, &c)) {
                if (t2 == FOURCC('i', 'p', 'c', 'o') && !ipco.p)
                    ipco = c;
                else if (t2 == FOURCC('i', 'p', 'm', 'a') && !f->ipma.p)
                    f->ipma = c;
            }
            break;
        }
        default: break;
        }
    }
    if (!have_pitm || !f->iinf.p || !f->iloc.p || !ipco.p || !f->ipma.p)
        return fail_inv(err, "meta box lacks pitm, iinf, iloc or iprp");
    at = ipco.p;
    while (f->nprops < MAX_PROPS && next_box(&at, ipco.p + ipco.n, &type, &b)) {
        f->props[f->nprops] = b;
        f->prop_type[f->nprops++] = type;
    }
    return true;
}

/* Item type from iinf/infe (version 2 or 3); 0 when not found. */
static uint32_t item_type(const heif_file *f, uint32_t id)
{
    if (f->iinf.n < 6)
        return 0;
    size_t off = f->iinf.p[0] == 0 ? 6 : 8;
    if (off > f->iinf.n)
        return 0;
    const uint8_t *at = f->iinf.p + off, *end = f->iinf.p + f->iinf.n;
    uint32_t type;
    span b;
    while (next_box(&at, end, &type, &b)) {
        if (type != FOURCC('i', 'n', 'f', 'e') || b.n < 4)
            continue;
        int v = b.p[0];
        if (v == 2 && b.n >= 12 && rd16(b.p + 4) == id)
            return rd32(b.p + 8);
        if (v == 3 && b.n >= 14 && rd32(b.p + 4) == id)
            return rd32(b.p + 10);
    }
    return 0;
}

/* The item's property indices (0-based into f->props) in ipma order. */
static int item_props(const heif_file *f, uint32_t id, int *out, int max)
{
    const uint8_t *p = f->ipma.p, *end = f->ipma.p + f->ipma.n;
    if (f->ipma.n < 8)
        return 0;
    int version = p[0];
    bool wide = p[3] & 1;
    uint32_t count = rd32(p + 4);
    p += 8;
    int n = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t item;
        if (version < 1) {
            if (end - p < 3)
                return n;
            item = rd16(p);
            p += 2;
        } else {
            if (end - p < 5)
                return n;
            item = rd32(p);
            p += 4;
        }
        int assoc = *p++;
        for (int a = 0; a < assoc; a++) {
            uint32_t idx;
            if (wide) {
                if (end - p < 2)
                    return n;
                idx = rd16(p) & 0x7fff;
                p += 2;
            } else {
                if (end - p < 1)
                    return n;
                idx = *p & 0x7f;
                p += 1;
            }
            if (item == id && idx >= 1 && (int)idx <= f->nprops && n < max)
                out[n++] = (int)idx - 1;
        }
    }
    return n;
}

static const span *item_prop(const heif_file *f, uint32_t id, uint32_t type)
{
    int idx[MAX_ITEM_PROPS];
    int n = item_props(f, id, idx, MAX_ITEM_PROPS);
    for (int i = 0; i < n; i++)
        if (f->prop_type[idx[i]] == type)
            return &f->props[idx[i]];
    return NULL;
}

/* iref references of `type`: from -> to. With want_from: the `to` ids of item `from` (in
 * order); else the `from` ids that reference `to`. */
static int iref_refs(const heif_file *f, uint32_t type, uint32_t id, bool want_from,
                     uint32_t *out, int max)
{
    if (!f->iref.p || f->iref.n < 4)
        return 0;
    int wide = f->iref.p[0] != 0;
    const uint8_t *at = f->iref.p + 4, *end = f->iref.p + f->iref.n;
    uint32_t t;
    span b;
    int n = 0;
    while (next_box(&at, end, &t, &b)) {
        if (t != type)
            continue;
        size_t w = wide ? 4 : 2;
        if (b.n < w + 2)
            continue;
        uint32_t from = wide ? rd32(b.p) : rd16(b.p);
        uint32_t cnt = rd16(b.p + w);
        if (b.n < w + 2 + cnt * w)
            continue;
        for (uint32_t i = 0; i < cnt; i++) {
            uint32_t to = wide ? rd32(b.p + w + 2 + i * w) : rd16(b.p + w + 2 + i * w);
            if (want_from && from == id && n < max)
                out[n++] = to;
            else if (!want_from && to == id && n < max)
                out[n++] = from;
        }
    }
    return n;
}

/* The item's bytes (all extents concatenated), malloc'ed. */
static bool item_data(const heif_file *f, uint32_t id, uint8_t **out, size_t *out_len,
                      cp_error *err)
{
    const uint8_t *p = f->iloc.p, *end = f->iloc.p + f->iloc.n;
    if (f->iloc.n < 8)
        return fail_inv(err, "iloc box too short");
    int version = p[0];
    int off_size = p[4] >> 4, len_size = p[4] & 15, base_size = p[5] >> 4;
    int idx_size = version >= 1 ? p[5] & 15 : 0;
    p += 6;
    uint32_t count;
    if (version < 2) {
        count = rd16(p);
        p += 2;
    } else {
        count = rd32(p);
        p += 4;
    }
    for (uint32_t i = 0; i < count; i++) {
        size_t need = (version < 2 ? 2 : 4) + (version >= 1 ? 2 : 0) + 2 + base_size + 2;
        if ((size_t)(end - p) < need)
            return fail_inv(err, "iloc box truncated");
        uint32_t item = version < 2 ? rd16(p) : rd32(p);
        p += version < 2 ? 2 : 4;
        int method = 0;
        if (version >= 1) {
            method = rd16(p) & 15;
            p += 2;
        }
        p += 2; /* data_reference_index */
        uint64_t base = rdn(p, base_size);
        p += base_size;
        uint32_t extents = rd16(p);
        p += 2;
        size_t ext_bytes = (size_t)(idx_size + off_size + len_size);
        if ((size_t)(end - p) < ext_bytes * extents)
            return fail_inv(err, "iloc box truncated");
        if (item != id) {
            p += ext_bytes * extents;
            continue;
        }
        if (method > 1)
            return cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT,
                           "heic: item data by reference (iloc construction method %d)", method);
        const uint8_t *src = method == 0 ? f->file : f->idat.p;
        size_t src_len = method == 0 ? f->len : f->idat.n;
        if (!src)
            return fail_inv(err, "iloc refers to a missing idat box");
        size_t total = 0;
        uint8_t *buf = NULL;
        for (uint32_t e = 0; e < extents; e++) {
            p += idx_size;
            uint64_t eo = rdn(p, off_size);
            p += off_size;
            uint64_t el = rdn(p, len_size);
            p += len_size;
            uint64_t start = base + eo;
            if (el == 0) /* the rest of the source */
                el = start <= src_len ? src_len - start : 0;
            if (start > src_len || el > src_len - start) {
                free(buf);
                return fail_inv(err, "item data outside the file (truncated?)");
            }
            uint8_t *nb = realloc(buf, total + (size_t)el + 1);
            if (!nb) {
                free(buf);
                return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
            }
            buf = nb;
            memcpy(buf + total, src + start, (size_t)el);
            total += (size_t)el;
        }
        if (!buf)
            return fail_inv(err, "empty item");
        *out = buf;
        *out_len = total;
        return true;
    }
    return fail_inv(err, "item has no location");
}

/* ---- libheif's Fraction and clap (box.cc) ---------------------------------------------- */

typedef struct {
    int32_t num, den;
} frac;

#define MAX_FRACTION_VALUE 0x10000

static frac frac32(int32_t num, int32_t den)
{
    frac r = {num, den};
    while (r.den > MAX_FRACTION_VALUE || r.den < -MAX_FRACTION_VALUE) {
        r.num /= 2;
        r.den /= 2;
    }
    while (r.den > 1 && (r.num > MAX_FRACTION_VALUE || r.num < -MAX_FRACTION_VALUE)) {
        r.num /= 2;
        r.den /= 2;
    }
    return r;
}

static frac frac64(int64_t num, int64_t den)
{
    while (num < INT32_MIN || num > INT32_MAX || den < INT32_MIN || den > INT32_MAX) {
        num = (num + (num >= 0 ? 1 : -1)) / 2;
        den = (den + (den >= 0 ? 1 : -1)) / 2;
    }
    frac r = {(int32_t)num, (int32_t)den};
    return r;
}

static frac frac_add(frac a, frac b)
{
    if (a.den == b.den)
        return frac64((int64_t)a.num + b.num, a.den);
    return frac64((int64_t)a.num * b.den + (int64_t)b.num * a.den, (int64_t)a.den * b.den);
}

static frac frac_sub(frac a, frac b)
{
    if (a.den == b.den)
        return frac64((int64_t)a.num - b.num, a.den);
    return frac64((int64_t)a.num * b.den - (int64_t)b.num * a.den, (int64_t)a.den * b.den);
}

static frac frac_addi(frac a, int v) { return frac64(a.num + v * (int64_t)a.den, a.den); }
static frac frac_subi(frac a, int v) { return frac64(a.num - v * (int64_t)a.den, a.den); }
static frac frac_divi(frac a, int v) { return frac64(a.num, (int64_t)a.den * v); }
static int32_t frac_round_down(frac a) { return a.num / a.den; }
static int32_t frac_round(frac a) { return (int32_t)((a.num + (int64_t)a.den / 2) / a.den); }

typedef struct {
    frac cw, ch, ho, vo;
} clap_box;

static bool parse_clap(span b, clap_box *c)
{
    if (b.n < 32)
        return false;
    uint32_t v[8];
    for (int i = 0; i < 8; i++)
        v[i] = rd32(b.p + 4 * i);
    if (v[0] > INT32_MAX || v[1] > INT32_MAX || v[2] > INT32_MAX || v[3] > INT32_MAX ||
        v[5] > INT32_MAX || v[7] > INT32_MAX)
        return false;
    c->cw = frac32((int32_t)v[0], (int32_t)v[1]);
    c->ch = frac32((int32_t)v[2], (int32_t)v[3]);
    c->ho = frac32((int32_t)v[4], (int32_t)v[5]);
    c->vo = frac32((int32_t)v[6], (int32_t)v[7]);
    return c->cw.den && c->ch.den && c->ho.den && c->vo.den;
}

static int clap_left(const clap_box *c, uint32_t w)
{
    frac pcx = frac_add(c->ho, frac32((int32_t)(w - 1), 2));
    return frac_round_down(frac_sub(pcx, frac_divi(frac_subi(c->cw, 1), 2)));
}
static int clap_right(const clap_box *c, uint32_t w)
{
    return frac_round(frac_addi(frac_subi(c->cw, 1), clap_left(c, w)));
}
static int clap_top(const clap_box *c, uint32_t h)
{
    frac pcy = frac_add(c->vo, frac32((int32_t)(h - 1), 2));
    return frac_round(frac_sub(pcy, frac_divi(frac_subi(c->ch, 1), 2)));
}
static int clap_bottom(const clap_box *c, uint32_t h)
{
    return frac_round(frac_addi(frac_subi(c->ch, 1), clap_top(c, h)));
}

/* ---- planes ------------------------------------------------------------------------------ */

enum { CH_MONO = 0, CH_420 = 1, CH_422 = 2, CH_444 = 3 };

typedef struct {
    uint16_t primaries, transfer, matrix;
    bool full_range;
} nclx;

typedef struct {
    uint32_t w, h;
    int chroma;
    uint32_t cw, ch;  /* chroma plane size */
    uint8_t *p[3];    /* Y, Cb, Cr (tightly packed); Cb/Cr NULL for mono */
    uint8_t *alpha;   /* w x h or NULL */
    nclx n;
} yuv;

static void yuv_free(yuv *im)
{
    for (int i = 0; i < 3; i++)
        free(im->p[i]);
    free(im->alpha);
    memset(im, 0, sizeof *im);
}

static void chroma_size(int chroma, uint32_t w, uint32_t h, uint32_t *cw, uint32_t *ch)
{
    *cw = (chroma == CH_420 || chroma == CH_422) ? (w + 1) / 2 : w;
    *ch = chroma == CH_420 ? (h + 1) / 2 : h;
    if (chroma == CH_MONO)
        *cw = *ch = 0;
}

static bool yuv_alloc(yuv *im, uint32_t w, uint32_t h, int chroma, cp_error *err)
{
    memset(im, 0, sizeof *im);
    im->w = w;
    im->h = h;
    im->chroma = chroma;
    chroma_size(chroma, w, h, &im->cw, &im->ch);
    im->p[0] = malloc((size_t)w * h);
    if (chroma != CH_MONO) {
        im->p[1] = malloc((size_t)im->cw * im->ch);
        im->p[2] = malloc((size_t)im->cw * im->ch);
    }
    if (!im->p[0] || (chroma != CH_MONO && (!im->p[1] || !im->p[2]))) {
        yuv_free(im);
        return cp_fail(err, CP_ERR_INTERNAL, "out of memory for a %ux%u HEIC image", w, h);
    }
    return true;
}

/* color_profile_nclx::replace_undefined_values_with_sRGB_defaults */
static nclx nclx_defaults_replaced(nclx n)
{
    if (n.matrix == 2)
        n.matrix = 6;
    if (n.primaries == 2)
        n.primaries = 1;
    if (n.transfer == 2)
        n.transfer = 13;
    return n;
}

/* Op_YCbCr420_bilinear_to_YCbCr444 / Op_YCbCr422_bilinear_to_YCbCr444 (chroma_sampling.cc),
 * the border arithmetic included as written there. */
static bool to_444(yuv *im, cp_error *err)
{
    if (im->chroma != CH_420 && im->chroma != CH_422)
        return true;
    if (nclx_defaults_replaced(im->n).matrix == 0)
        return cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT,
                       "heic: transform of a subsampled image with matrix coefficients 0");
    uint32_t w = im->w, h = im->h, is = im->cw;
    uint8_t *oc[2];
    oc[0] = malloc((size_t)w * h);
    oc[1] = malloc((size_t)w * h);
    if (!oc[0] || !oc[1]) {
        free(oc[0]);
        free(oc[1]);
        return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
    }
    for (int c = 0; c < 2; c++) {
        const uint8_t *in = im->p[1 + c];
        uint8_t *out = oc[c];
        memset(out, 0, (size_t)w * h);
        if (im->chroma == CH_420) {
            out[0] = in[0];
            for (uint32_t cx = 0; cx < (w - 1) / 2; cx++) { /* (cx / 2: as in libheif) */
                out[2 * cx + 1] = (uint8_t)((3 * in[cx / 2] + 1 * in[cx / 2 + 1] + 2) / 4);
                out[2 * cx + 2] = (uint8_t)((1 * in[cx / 2] + 3 * in[cx / 2 + 1] + 2) / 4);
            }
            if (w % 2 == 0)
                out[w - 1] = in[w / 2 - 1];
            for (uint32_t cy = 0; cy < (h - 1) / 2; cy++) {
                out[(2 * cy + 1) * w] =
                    (uint8_t)((3 * in[cy / 2 * is] + 1 * in[(cy / 2 + 1) * is] + 2) / 4);
                out[(2 * cy + 2) * w] =
                    (uint8_t)((1 * in[cy / 2 * is] + 3 * in[(cy / 2 + 1) * is] + 2) / 4);
            }
            if (h % 2 == 0)
                out[(h - 1) * w] = in[(h / 2 - 1) * is];
            if (w % 2 == 0)
                for (uint32_t cy = 0; cy < (h - 1) / 2; cy++) {
                    const uint8_t *a = in + cy / 2 * is + w / 2 - 1, *b = a + is;
                    out[(2 * cy + 1) * w + w - 1] = (uint8_t)((3 * *a + 1 * *b + 2) / 4);
                    out[(2 * cy + 2) * w + w - 1] = (uint8_t)((1 * *a + 3 * *b + 2) / 4);
                }
            if (h % 2 == 0)
                for (uint32_t cx = 0; cx < (w - 1) / 2; cx++) {
                    const uint8_t *row = in + (h / 2 - 1) * is;
                    out[(h - 1) * w + 2 * cx + 1] =
                        (uint8_t)((3 * row[cx / 2] + 1 * row[cx / 2 + 1] + 2) / 4);
                    out[(h - 1) * w + 2 * cx + 2] =
                        (uint8_t)((1 * row[cx / 2] + 3 * row[cx / 2 + 1] + 2) / 4);
                }
            if (w % 2 == 0 && h % 2 == 0)
                out[(h - 1) * w + w - 1] = in[(h / 2 - 1) * is + w / 2 - 1];
            for (uint32_t y = 1; y + 1 < h; y += 2)
                for (uint32_t x = 1; x + 1 < w; x += 2) {
                    uint32_t cx = x / 2, cy = y / 2;
                    int c00 = in[cy * is + cx], c01 = in[cy * is + cx + 1];
                    int c10 = in[(cy + 1) * is + cx], c11 = in[(cy + 1) * is + cx + 1];
                    out[y * w + x] = (uint8_t)((c00 * 9 + c01 * 3 + c10 * 3 + c11 + 8) / 16);
                    out[y * w + x + 1] = (uint8_t)((c00 * 3 + c01 * 9 + c10 + c11 * 3 + 8) / 16);
                    out[(y + 1) * w + x] =
                        (uint8_t)((c00 * 3 + c01 + c10 * 9 + c11 * 3 + 8) / 16);
                    out[(y + 1) * w + x + 1] =
                        (uint8_t)((c00 + c01 * 3 + c10 * 3 + c11 * 9 + 8) / 16);
                }
        } else {
            for (uint32_t y = 0; y < h; y++) {
                out[y * w] = in[y * is];
                if (w % 2 == 0)
                    out[y * w + w - 1] = in[y * is + w / 2 - 1];
                for (uint32_t x = 1; x + 1 < w; x += 2) {
                    int c0 = in[y * is + x / 2], c1 = in[y * is + x / 2 + 1];
                    out[y * w + x] = (uint8_t)((c0 * 3 + c1 + 2) / 4);
                    out[y * w + x + 1] = (uint8_t)((c0 + c1 * 3 + 2) / 4);
                }
            }
        }
    }
    free(im->p[1]);
    free(im->p[2]);
    im->p[1] = oc[0];
    im->p[2] = oc[1];
    im->chroma = CH_444;
    im->cw = w;
    im->ch = h;
    im->n = nclx_defaults_replaced(im->n); /* the pipeline's output state carries these */
    return true;
}

static bool plane_rotate(uint8_t **pp, uint32_t w, uint32_t h, int angle)
{
    const uint8_t *in = *pp;
    uint8_t *out = malloc((size_t)w * h);
    if (!out)
        return false;
    if (angle == 270) { /* out is h wide */
        for (uint32_t x = 0; x < h; x++)
            for (uint32_t y = 0; y < w; y++)
                out[y * h + x] = in[(h - 1 - x) * w + y];
    } else if (angle == 180) {
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w; x++)
                out[y * w + x] = in[(h - 1 - y) * w + (w - 1 - x)];
    } else { /* 90 */
        for (uint32_t x = 0; x < h; x++)
            for (uint32_t y = 0; y < w; y++)
                out[y * h + x] = in[x * w + (w - 1 - y)];
    }
    free(*pp);
    *pp = out;
    return true;
}

static bool yuv_rotate_ccw(yuv *im, int angle, cp_error *err)
{
    bool conv = false;
    if (im->chroma == CH_422)
        conv = angle == 90 || angle == 270 || (angle == 180 && (im->h & 1));
    else if (im->chroma == CH_420)
        conv = (angle == 90 && (im->w & 1)) || (angle == 180 && ((im->w & 1) || (im->h & 1))) ||
               (angle == 270 && (im->h & 1));
    if (conv && !to_444(im, err))
        return false;
    if (angle == 0)
        return true;
    int np = im->chroma == CH_MONO ? 1 : 3;
    for (int c = 0; c < np; c++) {
        uint32_t pw = c ? im->cw : im->w, ph = c ? im->ch : im->h;
        if (!plane_rotate(&im->p[c], pw, ph, angle))
            return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
    }
    if (angle == 90 || angle == 270) {
        uint32_t t = im->w;
        im->w = im->h;
        im->h = t;
        t = im->cw;
        im->cw = im->ch;
        im->ch = t;
    }
    return true;
}

static void plane_mirror(uint8_t *d, uint32_t w, uint32_t h, bool horizontal)
{
    if (horizontal) {
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w / 2; x++) {
                uint8_t t = d[y * w + x];
                d[y * w + x] = d[y * w + w - 1 - x];
                d[y * w + w - 1 - x] = t;
            }
    } else {
        for (uint32_t y = 0; y < h / 2; y++)
            for (uint32_t x = 0; x < w; x++) {
                uint8_t t = d[y * w + x];
                d[y * w + x] = d[(h - 1 - y) * w + x];
                d[(h - 1 - y) * w + x] = t;
            }
    }
}

static bool yuv_mirror(yuv *im, bool horizontal, cp_error *err)
{
    bool conv = false;
    if (im->chroma == CH_422)
        conv = horizontal && (im->w & 1);
    else if (im->chroma == CH_420)
        conv = (im->w & 1) || (im->h & 1);
    if (conv && !to_444(im, err))
        return false;
    int np = im->chroma == CH_MONO ? 1 : 3;
    for (int c = 0; c < np; c++)
        plane_mirror(im->p[c], c ? im->cw : im->w, c ? im->ch : im->h, horizontal);
    return true;
}

static bool plane_crop(uint8_t **pp, uint32_t w, uint32_t l, uint32_t r, uint32_t t, uint32_t b)
{
    uint32_t ow = r - l + 1, oh = b - t + 1;
    uint8_t *out = malloc((size_t)ow * oh);
    if (!out)
        return false;
    for (uint32_t y = t; y <= b; y++)
        memcpy(out + (size_t)(y - t) * ow, *pp + (size_t)y * w + l, ow);
    free(*pp);
    *pp = out;
    return true;
}

static bool yuv_crop(yuv *im, uint32_t l, uint32_t r, uint32_t t, uint32_t b, cp_error *err)
{
    bool conv = (im->chroma == CH_422 && (l & 1)) || (im->chroma == CH_420 && ((l & 1) || (t & 1)));
    if (conv && !to_444(im, err))
        return false;
    int sh = im->chroma == CH_420 || im->chroma == CH_422, sv = im->chroma == CH_420;
    uint32_t ow = r - l + 1, oh = b - t + 1;
    if (!plane_crop(&im->p[0], im->w, l, r, t, b))
        return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
    if (im->chroma != CH_MONO) {
        uint32_t cl = l >> sh, cr = r >> sh, ct = t >> sv, cb = b >> sv;
        for (int c = 1; c < 3; c++)
            if (!plane_crop(&im->p[c], im->cw, cl, cr, ct, cb))
                return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
        im->cw = cr - cl + 1;
        im->ch = cb - ct + 1;
    }
    im->w = ow;
    im->h = oh;
    return true;
}

/* ---- HEVC ------------------------------------------------------------------------------ */

static pthread_once_t de265_once = PTHREAD_ONCE_INIT;
static void de265_init_once(void) { de265_init(); }

typedef struct {
    uint32_t w, h;  /* ispe */
    bool has_ispe;
} ispe_box;

static bool item_ispe(const heif_file *f, uint32_t id, ispe_box *is)
{
    const span *b = item_prop(f, id, FOURCC('i', 's', 'p', 'e'));
    is->has_ispe = b && b->n >= 12;
    if (is->has_ispe) {
        is->w = rd32(b->p + 4);
        is->h = rd32(b->p + 8);
    }
    return is->has_ispe;
}

/* ---- the coded size, from the SPS in hvcC, checked before libde265 allocates anything ---- */

typedef struct {
    uint8_t buf[512]; /* RBSP of the first SPS (its start is all we read) */
    size_t n, bit;
} bitreader;

static int br_bit(bitreader *b)
{
    if (b->bit >= b->n * 8)
        return -1;
    int v = b->buf[b->bit >> 3] >> (7 - (b->bit & 7)) & 1;
    b->bit++;
    return v;
}

static int64_t br_bits(bitreader *b, int n)
{
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        int x = br_bit(b);
        if (x < 0)
            return -1;
        v = v << 1 | x;
    }
    return v;
}

static void br_skip(bitreader *b, int n) { b->bit += (size_t)n; }

static int64_t br_ue(bitreader *b)
{
    int zeros = 0;
    for (;;) {
        int x = br_bit(b);
        if (x < 0 || zeros > 31)
            return -1;
        if (x)
            break;
        zeros++;
    }
    int64_t rest = br_bits(b, zeros);
    return rest < 0 ? -1 : ((int64_t)1 << zeros) - 1 + rest;
}

/* pic_width/height_in_luma_samples of the item's SPS (before the conformance window). */
static bool sps_size(const span *hvcc, uint32_t *w, uint32_t *h)
{
    const uint8_t *p = hvcc->p + 22, *end = hvcc->p + hvcc->n;
    int arrays = *p++;
    for (int a = 0; a < arrays; a++) {
        if (end - p < 3)
            return false;
        int type = p[0] & 0x3f;
        uint32_t nn = rd16(p + 1);
        p += 3;
        for (uint32_t i = 0; i < nn; i++) {
            if (end - p < 2 || (size_t)(end - p - 2) < rd16(p))
                return false;
            uint32_t l = rd16(p);
            const uint8_t *nal = p + 2;
            p += 2 + l;
            if (type != 33 || l < 3)
                continue;
            bitreader b = {.n = 0, .bit = 0};
            int zeros = 0;
            for (uint32_t k = 2; k < l && b.n < sizeof b.buf; k++) { /* drop emulation bytes */
                if (zeros >= 2 && nal[k] == 3) {
                    zeros = 0;
                    continue;
                }
                zeros = nal[k] == 0 ? zeros + 1 : 0;
                b.buf[b.n++] = nal[k];
            }
            br_bits(&b, 4); /* sps_video_parameter_set_id */
            int64_t sub = br_bits(&b, 3);
            br_bits(&b, 1);
            if (sub < 0)
                return false;
            br_skip(&b, 88 + 8); /* general profile_tier_level + level */
            int prof[8] = {0}, lev[8] = {0};
            for (int i = 0; i < sub; i++) {
                prof[i] = (int)br_bits(&b, 1);
                lev[i] = (int)br_bits(&b, 1);
            }
            if (sub > 0)
                br_skip(&b, 2 * (8 - (int)sub));
            for (int i = 0; i < sub; i++) {
                if (prof[i] > 0)
                    br_skip(&b, 88);
                if (lev[i] > 0)
                    br_skip(&b, 8);
            }
            br_ue(&b); /* sps_seq_parameter_set_id */
            int64_t cf = br_ue(&b);
            if (cf == 3)
                br_bits(&b, 1);
            int64_t pw = br_ue(&b), ph = br_ue(&b);
            if (cf < 0 || pw <= 0 || ph <= 0 || pw > UINT32_MAX || ph > UINT32_MAX)
                return false;
            *w = (uint32_t)pw;
            *h = (uint32_t)ph;
            return true;
        }
    }
    return false;
}

/* Decodes one hvc1 item to 8-bit YCbCr / monochrome planes, with the VUI nclx as libheif's
 * libde265 plugin reports it. */
static bool decode_hvc1(const heif_file *f, uint32_t id, yuv *out, cp_error *err)
{
    const span *hvcc = item_prop(f, id, FOURCC('h', 'v', 'c', 'C'));
    if (!hvcc || hvcc->n < 23)
        return fail_inv(err, "HEVC item without hvcC");
    /* The memory limits were checked on ispe: the coded picture may only add the padding to
     * whole coding blocks (at most 64 luma samples) before its conformance window. */
    ispe_box is;
    uint32_t cw, ch;
    if (!item_ispe(f, id, &is))
        return fail_inv(err, "HEVC item without ispe");
    if (!sps_size(hvcc, &cw, &ch))
        return fail_inv(err, "hvcC without a readable sequence parameter set");
    if (cw > (uint64_t)is.w + 64 || ch > (uint64_t)is.h + 64)
        return fail_inv(err, "coded picture larger than the item's ispe");
    if ((uint64_t)is.w * is.h > f->max_item_pixels)
        return cp_fail(err, CP_ERR_IMAGE_TOO_LARGE,
                       "heic: coded item of %ux%u for a smaller image", is.w, is.h);
    uint8_t *data = NULL;
    size_t dlen = 0;
    if (!item_data(f, id, &data, &dlen, err))
        return false;
    pthread_once(&de265_once, de265_init_once);
    de265_decoder_context *ctx = de265_new_decoder();
    if (!ctx) {
        free(data);
        return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
    }
    bool ok = true;
    /* hvcC parameter-set arrays, then the item's length-prefixed NAL units (4-byte lengths, as
     * libheif's plugin assumes) */
    const uint8_t *p = hvcc->p + 22, *end = hvcc->p + hvcc->n;
    int arrays = *p++;
    for (int a = 0; a < arrays && ok; a++) {
        if (end - p < 3) {
            ok = fail_inv(err, "hvcC truncated");
            break;
        }
        uint32_t nn = rd16(p + 1);
        p += 3;
        for (uint32_t i = 0; i < nn; i++) {
            if (end - p < 2 || (size_t)(end - p - 2) < rd16(p)) {
                ok = fail_inv(err, "hvcC truncated");
                break;
            }
            uint32_t l = rd16(p);
            de265_push_NAL(ctx, p + 2, (int)l, 0, NULL);
            p += 2 + l;
        }
    }
    for (size_t at = 0; ok && at < dlen;) {
        if (dlen - at < 4) {
            ok = fail_inv(err, "HEVC data truncated");
            break;
        }
        uint32_t l = rd32(data + at);
        at += 4;
        if (l > dlen - at || l > INT_MAX) {
            ok = fail_inv(err, "HEVC data truncated");
            break;
        }
        de265_push_NAL(ctx, data + at, (int)l, 0, NULL);
        at += l;
    }
    free(data);
    const struct de265_image *pic = NULL;
    if (ok) {
        de265_flush_data(ctx);
        int more;
        do {
            more = 0;
            de265_error e = de265_decode(ctx, &more);
            if (e != DE265_OK)
                break;
            const struct de265_image *img = de265_get_next_picture(ctx);
            if (img) { /* libheif keeps the last one */
                if (pic) {
                    yuv_free(out);
                }
                pic = img;
                enum de265_chroma dc = de265_get_chroma_format(img);
                int chroma = dc == de265_chroma_mono ? CH_MONO
                           : dc == de265_chroma_420  ? CH_420
                           : dc == de265_chroma_422  ? CH_422
                                                     : CH_444;
                int np = chroma == CH_MONO ? 1 : 3;
                for (int c = 0; c < np; c++)
                    if (de265_get_bits_per_pixel(img, c) != 8) {
                        de265_release_next_picture(ctx);
                        de265_free_decoder(ctx);
                        return cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT,
                                       "heic: %d-bit images are not supported (8-bit only)",
                                       de265_get_bits_per_pixel(img, c));
                    }
                int w = de265_get_image_width(img, 0), h = de265_get_image_height(img, 0);
                if (w <= 0 || h <= 0) {
                    de265_release_next_picture(ctx);
                    de265_free_decoder(ctx);
                    return fail_inv(err, "HEVC picture without a size");
                }
                if (!yuv_alloc(out, (uint32_t)w, (uint32_t)h, chroma, err)) {
                    de265_release_next_picture(ctx);
                    de265_free_decoder(ctx);
                    return false;
                }
                for (int c = 0; c < np; c++) {
                    int stride;
                    const uint8_t *src = de265_get_image_plane(img, c, &stride);
                    uint32_t pw = c ? out->cw : out->w, ph = c ? out->ch : out->h;
                    if ((uint32_t)de265_get_image_width(img, c) != pw ||
                        (uint32_t)de265_get_image_height(img, c) != ph) {
                        de265_release_next_picture(ctx);
                        de265_free_decoder(ctx);
                        yuv_free(out);
                        return fail_inv(err, "HEVC chroma plane of an unexpected size");
                    }
                    for (uint32_t y = 0; y < ph; y++)
                        memcpy(out->p[c] + (size_t)y * pw, src + (size_t)y * stride, pw);
                }
                out->n.primaries = (uint16_t)de265_get_image_colour_primaries(img);
                out->n.transfer = (uint16_t)de265_get_image_transfer_characteristics(img);
                out->n.matrix = (uint16_t)de265_get_image_matrix_coefficients(img);
                out->n.full_range = de265_get_image_full_range_flag(img) != 0;
                de265_release_next_picture(ctx);
            }
        } while (more);
        if (!pic)
            ok = fail_inv(err, "HEVC data decodes to no picture (corrupt or truncated)");
    }
    de265_free_decoder(ctx);
    return ok;
}

static bool decode_item(const heif_file *f, uint32_t id, yuv *im, cp_error *err);

/* A grid item: tiles (dimg references, row-major; each decoded with its own transformation
 * properties, as libheif does) pasted into the output canvas (grid.cc
 * decode_and_paste_tile_image / copy_image_to). */
static bool decode_grid(const heif_file *f, uint32_t id, yuv *out, cp_error *err)
{
    uint8_t *gd = NULL;
    size_t gl = 0;
    if (!item_data(f, id, &gd, &gl, err))
        return false;
    if (gl < 8) {
        free(gd);
        return fail_inv(err, "grid data too short");
    }
    bool wide = gd[1] & 1;
    uint32_t rows = gd[2] + 1u, cols = gd[3] + 1u;
    if (gl < (wide ? 12u : 8u)) {
        free(gd);
        return fail_inv(err, "grid data too short");
    }
    uint32_t W = wide ? rd32(gd + 4) : rd16(gd + 4), H = wide ? rd32(gd + 8) : rd16(gd + 6);
    free(gd);
    uint32_t *tiles = malloc(sizeof(uint32_t) * MAX_TILES);
    if (!tiles)
        return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
    int nt = iref_refs(f, FOURCC('d', 'i', 'm', 'g'), id, true, tiles, MAX_TILES);
    ispe_box is;
    if (!item_ispe(f, id, &is) || is.w != W || is.h != H) {
        free(tiles);
        return fail_inv(err, "grid output size differs from its ispe");
    }
    if ((uint64_t)W * H > f->max_item_pixels) {
        free(tiles);
        return cp_fail(err, CP_ERR_IMAGE_TOO_LARGE, "heic: grid of %ux%u for a smaller image",
                       W, H);
    }
    if (W == 0 || H == 0 || (uint32_t)nt != rows * cols) {
        free(tiles);
        return fail_inv(err, "grid tiles do not match the grid");
    }
    bool ok = true;
    memset(out, 0, sizeof *out);
    uint32_t y0 = 0, tile_h = 0;
    for (uint32_t r = 0; r < rows && ok; r++) {
        uint32_t x0 = 0;
        for (uint32_t c = 0; c < cols && ok; c++) {
            if (item_type(f, tiles[r * cols + c]) != FOURCC('h', 'v', 'c', '1')) {
                ok = cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT, "heic: grid tile is not HEVC");
                break;
            }
            yuv t;
            if (!decode_item(f, tiles[r * cols + c], &t, err)) {
                ok = false;
                break;
            }
            if (!out->p[0]) {
                if (!yuv_alloc(out, W, H, t.chroma, err)) {
                    yuv_free(&t);
                    ok = false;
                    break;
                }
                out->n = t.n;
                tile_h = t.h;
            } else if (t.chroma != out->chroma) {
                yuv_free(&t);
                ok = fail_inv(err, "grid tiles with different chroma formats");
                break;
            }
            if (x0 >= W || y0 >= H) {
                yuv_free(&t);
                ok = fail_inv(err, "grid tile outside the image");
                break;
            }
            int np = t.chroma == CH_MONO ? 1 : 3;
            for (int p = 0; p < np; p++) {
                uint32_t sw = p ? t.cw : t.w, sh = p ? t.ch : t.h, dw = p ? out->cw : out->w;
                uint32_t remw, remh, xs, ys;
                if (p) {
                    chroma_size(out->chroma, W - x0, H - y0, &remw, &remh);
                    chroma_size(out->chroma, x0, y0, &xs, &ys);
                } else {
                    remw = W - x0;
                    remh = H - y0;
                    xs = x0;
                    ys = y0;
                }
                uint32_t cw = sw < remw ? sw : remw, chh = sh < remh ? sh : remh;
                /* odd tile sizes: libheif writes one chroma sample past the row (into its
                 * stride padding, or overwritten by the next tile); kept inside here */
                uint32_t dh = p ? out->ch : out->h;
                if (xs >= dw || ys >= dh)
                    continue;
                if (cw > dw - xs)
                    cw = dw - xs;
                if (chh > dh - ys)
                    chh = dh - ys;
                for (uint32_t y = 0; y < chh; y++)
                    memcpy(out->p[p] + (size_t)(ys + y) * dw + xs, t.p[p] + (size_t)y * sw, cw);
            }
            x0 += t.w;
            yuv_free(&t);
        }
        y0 += tile_h;
    }
    free(tiles);
    if (!ok)
        yuv_free(out);
    return ok;
}

typedef struct {
    heif_file f;
    uint32_t alpha_id; /* 0: none */
    bool premultiplied;
    uint32_t out_w, out_h; /* the handle's size (ispe, then clap / irot), as pillow-heif sizes it */
} heic_info;

static bool is_alpha_aux(const heif_file *f, uint32_t id)
{
    const span *b = item_prop(f, id, FOURCC('a', 'u', 'x', 'C'));
    if (!b || b->n < 5)
        return false;
    const char *urn = (const char *)b->p + 4;
    size_t n = strnlen(urn, b->n - 4);
    return (n == 26 && !memcmp(urn, "urn:mpeg:hevc:2015:auxid:1", 26)) ||
           (n == 44 && !memcmp(urn, "urn:mpeg:mpegB:cicp:systems:auxiliary:alpha", 44));
}

/* Size after the item's transformation properties, as HeifContext::interpret_heif_file sets
 * the handle's (clap: rounded clean-aperture size; irot 90/270: swapped). */
static bool transformed_size(const heif_file *f, uint32_t id, uint32_t *w, uint32_t *h,
                             cp_error *err)
{
    ispe_box is;
    if (!item_ispe(f, id, &is))
        return fail_inv(err, "image item without ispe");
    *w = is.w;
    *h = is.h;
    int idx[MAX_ITEM_PROPS];
    int n = item_props(f, id, idx, MAX_ITEM_PROPS);
    for (int i = 0; i < n; i++) {
        uint32_t t = f->prop_type[idx[i]];
        if (t == FOURCC('c', 'l', 'a', 'p')) {
            clap_box c;
            if (!parse_clap(f->props[idx[i]], &c))
                return fail_inv(err, "invalid clap box");
            int32_t cw = frac_round(c.cw), ch = frac_round(c.ch);
            if (cw <= 0 || ch <= 0)
                return fail_inv(err, "invalid clean aperture");
            *w = (uint32_t)cw;
            *h = (uint32_t)ch;
        } else if (t == FOURCC('i', 'r', 'o', 't') && f->props[idx[i]].n >= 1) {
            int a = f->props[idx[i]].p[0] & 3;
            if (a == 1 || a == 3) {
                uint32_t s = *w;
                *w = *h;
                *h = s;
            }
        }
    }
    return true;
}

static bool open_heic(const uint8_t *data, size_t len, heic_info *hi, cp_error *err)
{
    memset(hi, 0, sizeof *hi);
    if (!parse_file(data, len, &hi->f, err))
        return false;
    const heif_file *f = &hi->f;
    uint32_t t = item_type(f, f->primary);
    if (t != FOURCC('h', 'v', 'c', '1') && t != FOURCC('g', 'r', 'i', 'd'))
        return cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT,
                       "heic: the primary image is not HEVC-coded (item type %c%c%c%c)",
                       t ? (int)(t >> 24) : '?', t ? (int)(t >> 16 & 255) : '?',
                       t ? (int)(t >> 8 & 255) : '?', t ? (int)(t & 255) : '?');
    if (!transformed_size(f, f->primary, &hi->out_w, &hi->out_h, err))
        return false;
    /* The size admission (max_pixels) sees the reported size, after the clean aperture; the
     * decode allocates the coded items' (ispe) sizes: a crop may discard at most half of the
     * picture (phones crop a few rows and columns), and no item may be larger than that. */
    ispe_box pis;
    item_ispe(&hi->f, hi->f.primary, &pis);
    hi->f.max_item_pixels = 2 * (uint64_t)hi->out_w * hi->out_h + (1u << 20);
    if ((uint64_t)pis.w * pis.h > hi->f.max_item_pixels)
        return cp_fail(err, CP_ERR_IMAGE_TOO_LARGE,
                       "heic: a %ux%u clean aperture of a %ux%u picture", hi->out_w, hi->out_h,
                       pis.w, pis.h);
    if (hi->out_w == 0 || hi->out_h == 0 || hi->out_w > DECODE_MAX_SIDE ||
        hi->out_h > DECODE_MAX_SIDE)
        return cp_fail(err, CP_ERR_IMAGE_TOO_LARGE, "heic: image size %ux%u out of range",
                       hi->out_w, hi->out_h);
    uint32_t aux[64];
    int na = iref_refs(f, FOURCC('a', 'u', 'x', 'l'), f->primary, false, aux, 64);
    for (int i = 0; i < na; i++)
        if (is_alpha_aux(f, aux[i])) {
            hi->alpha_id = aux[i];
            break;
        }
    if (hi->alpha_id) {
        uint32_t pr[64];
        int np = iref_refs(f, FOURCC('p', 'r', 'e', 'm'), f->primary, true, pr, 64);
        for (int i = 0; i < np; i++)
            if (pr[i] == hi->alpha_id)
                hi->premultiplied = true;
        if (hi->premultiplied)
            return cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT,
                           "heic: premultiplied alpha is not supported");
    }
    return true;
}

/* The first hvcC of the item (the item's own, or its first tile's). */
static const span *first_hvcc(const heif_file *f, uint32_t id)
{
    if (item_type(f, id) == FOURCC('g', 'r', 'i', 'd')) {
        uint32_t t;
        if (iref_refs(f, FOURCC('d', 'i', 'm', 'g'), id, true, &t, 1) != 1)
            return NULL;
        id = t;
    }
    return item_prop(f, id, FOURCC('h', 'v', 'c', 'C'));
}

bool decode_heif_is(const uint8_t *data, size_t len)
{
    if (len < 12 || memcmp(data + 4, "ftyp", 4) != 0)
        return false;
    static const char brands[][5] = {"heic", "heix", "heim", "heis", "hevc",
                                     "hevx", "hevm", "hevs", "mif1", "msf1"};
    for (size_t i = 0; i < sizeof brands / sizeof brands[0]; i++)
        if (!memcmp(data + 8, brands[i], 4))
            return true;
    return false;
}

bool decode_heif_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err)
{
    hdr->format = IMAGE_FORMAT_HEIF;
    heic_info hi;
    if (!open_heic(data, len, &hi, err))
        return false;
    const span *hv = first_hvcc(&hi.f, hi.f.primary);
    if (!hv || hv->n < 23)
        return fail_inv(err, "HEVC item without hvcC");
    int chroma = hv->p[16] & 3, depth = (hv->p[17] & 7) + 8, cdepth = (hv->p[18] & 7) + 8;
    if (depth != 8 || (chroma != 0 && cdepth != 8))
        return cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT,
                       "heic: %d-bit images are not supported (8-bit only)", depth);
    hdr->width = (int)hi.out_w;
    hdr->height = (int)hi.out_h;
    hdr->orientation = 1; /* pillow-heif applied irot/imir and reset the EXIF orientation */
    hdr->has_alpha = hi.alpha_id != 0;
    hdr->native = hdr->has_alpha ? NATIVE_RGBA : NATIVE_AS_RGB; /* RGBA, or RGB / L */
    return true;
}

/* decode_image of one item: decode, then its transformation properties in ipma order. */
static bool decode_item(const heif_file *f, uint32_t id, yuv *im, cp_error *err)
{
    uint32_t t = item_type(f, id);
    bool ok;
    if (t == FOURCC('h', 'v', 'c', '1'))
        ok = decode_hvc1(f, id, im, err);
    else if (t == FOURCC('g', 'r', 'i', 'd'))
        ok = decode_grid(f, id, im, err);
    else
        ok = cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT, "heic: item type not supported");
    if (!ok)
        return false;
    int idx[MAX_ITEM_PROPS];
    int n = item_props(f, id, idx, MAX_ITEM_PROPS);
    for (int i = 0; i < n && ok; i++) {
        uint32_t pt = f->prop_type[idx[i]];
        span b = f->props[idx[i]];
        if (pt == FOURCC('i', 'r', 'o', 't') && b.n >= 1) {
            ok = yuv_rotate_ccw(im, (b.p[0] & 3) * 90, err);
        } else if (pt == FOURCC('i', 'm', 'i', 'r') && b.n >= 1) {
            ok = yuv_mirror(im, b.p[0] & 1, err);
        } else if (pt == FOURCC('c', 'l', 'a', 'p')) {
            clap_box c;
            if (!parse_clap(b, &c)) {
                ok = fail_inv(err, "invalid clap box");
                break;
            }
            int l = clap_left(&c, im->w), r = clap_right(&c, im->w);
            int tp = clap_top(&c, im->h), bt = clap_bottom(&c, im->h);
            if (l < 0)
                l = 0;
            if (tp < 0)
                tp = 0;
            if (r < 0 || (uint32_t)r >= im->w)
                r = (int)im->w - 1;
            if (bt < 0 || (uint32_t)bt >= im->h)
                bt = (int)im->h - 1;
            if (l > r || tp > bt) {
                ok = fail_inv(err, "invalid clean aperture");
                break;
            }
            ok = yuv_crop(im, (uint32_t)l, (uint32_t)r, (uint32_t)tp, (uint32_t)bt, err);
        }
    }
    if (!ok)
        yuv_free(im);
    return ok;
}

/* ---- YCbCr -> RGB (color-conversion/yuv2rgb.cc, nclx.cc) --------------------------------- */

typedef struct {
    float r_cr, g_cb, g_cr, b_cb;
} yuv_coeffs;

static yuv_coeffs coeffs_of(uint16_t matrix)
{
    float kr = 0, kb = 0;
    switch (matrix) {
    case 1: kr = 0.2126f; kb = 0.0722f; break;
    case 4: kr = 0.30f; kb = 0.11f; break;
    case 5: case 6: kr = 0.299f; kb = 0.114f; break;
    case 7: kr = 0.212f; kb = 0.087f; break;
    case 9: case 10: kr = 0.2627f; kb = 0.0593f; break;
    default: break;
    }
    yuv_coeffs c;
    if (kb != 0 || kr != 0) {
        c.r_cr = 2 * (-kr + 1);
        c.g_cb = 2 * kb * (-kb + 1) / (kb + kr - 1);
        c.g_cr = 2 * kr * (-kr + 1) / (kb + kr - 1);
        c.b_cb = 2 * (-kb + 1);
    } else {
        c.r_cr = 1.402f;
        c.g_cb = -0.344136f;
        c.g_cr = -0.714136f;
        c.b_cb = 1.772f;
    }
    return c;
}

static inline uint8_t clip_int_u8(int x) { return (uint8_t)(x < 0 ? 0 : x > 255 ? 255 : x); }
static inline uint8_t clip_f_u8(float fx)
{
    long x = (long)(fx + 0.5f);
    return (uint8_t)(x < 0 ? 0 : x > 255 ? 255 : x);
}

/* Writes RGB (bpp 3) or RGBA (bpp 4, alpha from im->alpha or 255) for the top-left ow x oh. */
static void to_rgb(const yuv *im, uint8_t *dst, int bpp, uint32_t ow, uint32_t oh)
{
    const nclx n = im->n, st = nclx_defaults_replaced(im->n);
    if (im->chroma == CH_MONO) {
        for (uint32_t y = 0; y < oh; y++)
            for (uint32_t x = 0; x < ow; x++) {
                uint8_t *o = dst + ((size_t)y * ow + x) * bpp, v = im->p[0][(size_t)y * im->w + x];
                o[0] = o[1] = o[2] = v;
                if (bpp == 4)
                    o[3] = im->alpha ? im->alpha[(size_t)y * im->w + x] : 255;
            }
        return;
    }
    const uint8_t *Y = im->p[0], *Cb = im->p[1], *Cr = im->p[2];
    uint32_t w = im->w, cs = im->cw;
    int sh = im->chroma == CH_420 || im->chroma == CH_422, sv = im->chroma == CH_420;
    yuv_coeffs k = coeffs_of(n.matrix);
    if (im->chroma == CH_420 && st.matrix != 0 && st.matrix != 8 && st.full_range) {
        /* Op_YCbCr420_to_RGB24 / Op_YCbCr420_to_RGB32 */
        int r_cr = (int)lroundf(256 * k.r_cr), g_cr = (int)lroundf(256 * k.g_cr);
        int g_cb = (int)lroundf(256 * k.g_cb), b_cb = (int)lroundf(256 * k.b_cb);
        for (uint32_t y = 0; y < oh; y++)
            for (uint32_t x = 0; x < ow; x++) {
                int cb = Cb[(y / 2) * cs + x / 2] - 128, cr = Cr[(y / 2) * cs + x / 2] - 128;
                int yv = Y[(size_t)y * w + x];
                uint8_t *o = dst + ((size_t)y * ow + x) * bpp;
                o[0] = clip_int_u8(yv + ((r_cr * cr + 128) >> 8));
                o[1] = clip_int_u8(yv + ((g_cb * cb + g_cr * cr + 128) >> 8));
                o[2] = clip_int_u8(yv + ((b_cb * cb + 128) >> 8));
                if (bpp == 4)
                    o[3] = im->alpha ? im->alpha[(size_t)y * w + x] : 255;
            }
        return;
    }
    /* Op_YCbCr_to_RGB<uint8_t> (nearest chroma), then Op_RGB_to_RGB24_32 */
    const float off = 16.0f;
    for (uint32_t y = 0; y < oh; y++)
        for (uint32_t x = 0; x < ow; x++) {
            size_t ci = (size_t)(y >> sv) * cs + (x >> sh);
            int yi = Y[(size_t)y * w + x], cbi = Cb[ci], cri = Cr[ci];
            uint8_t *o = dst + ((size_t)y * ow + x) * bpp;
            if (n.matrix == 0) {
                if (n.full_range) {
                    o[0] = (uint8_t)cri;
                    o[1] = (uint8_t)yi;
                    o[2] = (uint8_t)cbi;
                } else {
                    o[0] = clip_f_u8((cri - off) * 1.1429f);
                    o[1] = clip_f_u8((yi - off) * 1.1689f);
                    o[2] = clip_f_u8((cbi - off) * 1.1429f);
                }
            } else if (n.matrix == 8) {
                int cb = cbi - 128, cr = cri - 128;
                o[0] = clip_int_u8(yi - cb + cr);
                o[1] = clip_int_u8(yi + cb);
                o[2] = clip_int_u8(yi - cb - cr);
            } else {
                float yv = (float)yi, cb = (float)(cbi - 128), cr = (float)(cri - 128);
                if (!n.full_range) {
                    yv = (yv - off) * 1.1689f;
                    cb = cb * 1.1429f;
                    cr = cr * 1.1429f;
                }
                o[0] = clip_f_u8(yv + k.r_cr * cr);
                o[1] = clip_f_u8(yv + k.g_cb * cb + k.g_cr * cr);
                o[2] = clip_f_u8(yv + k.b_cb * cb);
            }
            if (bpp == 4)
                o[3] = im->alpha ? im->alpha[(size_t)y * w + x] : 255;
        }
}

typedef enum { OUT_RGB = 0, OUT_RGB_WHITE, OUT_RGBA } heif_out;

static bool heif_decode(const uint8_t *data, size_t len, const image_header *hdr, heif_out out,
                        uint8_t *dst, cp_error *err)
{
    heic_info hi;
    if (!open_heic(data, len, &hi, err))
        return false;
    if ((int)hi.out_w != hdr->width || (int)hi.out_h != hdr->height)
        return cp_fail(err, CP_ERR_INTERNAL, "heic: header does not match the image data");
    const heif_file *f = &hi.f;
    yuv im;
    if (!decode_item(f, f->primary, &im, err))
        return false;
    if (im.w < hi.out_w || im.h < hi.out_h) { /* pillow-heif refuses these */
        yuv_free(&im);
        return fail_inv(err, "decoded image smaller than its header says");
    }
    if (hi.alpha_id) {
        yuv a;
        if (!decode_item(f, hi.alpha_id, &a, err)) {
            yuv_free(&im);
            return false;
        }
        if (a.w != im.w || a.h != im.h) {
            yuv_free(&a);
            yuv_free(&im);
            return cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT,
                           "heic: alpha plane of a different size than the image");
        }
        im.alpha = a.p[0];
        a.p[0] = NULL;
        yuv_free(&a);
    }
    { /* the first nclx colr replaces the bitstream's nclx (ImageItem::decode_image) */
        int idx[MAX_ITEM_PROPS];
        int n = item_props(f, f->primary, idx, MAX_ITEM_PROPS);
        for (int i = 0; i < n; i++) {
            span b = f->props[idx[i]];
            if (f->prop_type[idx[i]] == FOURCC('c', 'o', 'l', 'r') && b.n >= 11 &&
                rd32(b.p) == FOURCC('n', 'c', 'l', 'x')) {
                im.n.primaries = (uint16_t)rd16(b.p + 4);
                im.n.transfer = (uint16_t)rd16(b.p + 6);
                im.n.matrix = (uint16_t)rd16(b.p + 8);
                im.n.full_range = (b.p[10] & 0x80) != 0;
                break;
            }
        }
    }
    if (im.chroma != CH_MONO) {
        uint16_t m = nclx_defaults_replaced(im.n).matrix;
        if (m >= 11 && m <= 14) {
            yuv_free(&im);
            return cp_fail(err, CP_ERR_UNSUPPORTED_FORMAT,
                           "heic: matrix coefficients %u are not supported", m);
        }
    }
    size_t n = (size_t)hi.out_w * hi.out_h;
    bool has_alpha = im.alpha != NULL;
    if (out == OUT_RGBA || (has_alpha && out == OUT_RGB_WHITE)) {
        uint8_t *buf = out == OUT_RGBA ? dst : malloc(n * 4);
        if (!buf) {
            yuv_free(&im);
            return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
        }
        to_rgb(&im, buf, 4, hi.out_w, hi.out_h);
        if (buf != dst) {
            rgba_over_white(buf, dst, n);
            free(buf);
        }
    } else {
        to_rgb(&im, dst, 3, hi.out_w, hi.out_h);
    }
    yuv_free(&im);
    return true;
}

bool decode_heif_pixels(const uint8_t *data, size_t len, const image_header *hdr,
                        bool alpha_onto_white, uint8_t *dst, cp_error *err)
{
    return heif_decode(data, len, hdr, alpha_onto_white ? OUT_RGB_WHITE : OUT_RGB, dst, err);
}

bool decode_heif_rgba(const uint8_t *data, size_t len, const image_header *hdr, uint8_t *dst,
                      cp_error *err)
{
    return heif_decode(data, len, hdr, OUT_RGBA, dst, err);
}
