/* decode_gif.c — GIF via giflib, reproducing what Pillow 11.3's GifImagePlugin gives for the
 * FIRST frame and convert("RGB"):
 *   - the image size is the logical screen, enlarged to the first frame's extent when that
 *     frame reaches past it;
 *   - the canvas starts as palette index `transparency` (the graphic control extension before
 *     the first frame, when it has the transparency flag) or index 0 otherwise, and the first
 *     frame's indices are written at its offset (transparent pixels keep their index: frame 0
 *     is not composited);
 *   - convert("RGB") maps each index through the frame's palette (local, else global); past
 *     the file's palette entries it is black; with no palette, or a grey ramp (i, i, i) as the
 *     palette, Pillow makes the frame mode "L" and index i is grey i. Transparency is not
 *     applied (unless alpha_onto_white: then the transparent index is white, as transformers
 *     5's convert_to_rgb composites P + transparency over white).
 * Only the records up to the first image are read; later frames are never decoded. */
#include <stdlib.h>
#include <string.h>

#include <gif_lib.h>

#include "decode_internal.h"

typedef struct {
    const uint8_t *data;
    size_t len, pos;
} gif_source;

static int read_mem(GifFileType *gif, GifByteType *buf, int n)
{
    gif_source *s = gif->UserData;
    size_t left = s->len - s->pos;
    size_t k = n < 0 ? 0 : (size_t)n < left ? (size_t)n : left;
    memcpy(buf, s->data + s->pos, k);
    s->pos += k;
    return (int)k;
}

typedef struct {
    GifFileType *gif;
    gif_source src;
    int transparency;     /* -1: none */
    bool grey;            /* no palette, or an identity grey one: Pillow's mode "L" */
    int width, height;    /* the image size (screen, enlarged to frame 0) */
} gif_frame0;

static int gif_error(cp_error *err, int code)
{
    const char *m = GifErrorString(code);
    if (code == D_GIF_ERR_READ_FAILED || code == D_GIF_ERR_EOF_TOO_SOON)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "gif: image file is truncated");
    return cp_fail(err, CP_ERR_INVALID_IMAGE, "gif: %s", m ? m : "invalid GIF");
}

static void close_gif(gif_frame0 *f)
{
    if (f->gif) {
        int e;
        DGifCloseFile(f->gif, &e);
        f->gif = NULL;
    }
}

/* Opens the file and reads records up to and including the first image descriptor. */
static bool open_frame0(const uint8_t *data, size_t len, gif_frame0 *f, cp_error *err)
{
    memset(f, 0, sizeof *f);
    f->src = (gif_source){data, len, 0};
    f->transparency = -1;
    int e = 0;
    f->gif = DGifOpen(&f->src, read_mem, &e);
    if (!f->gif)
        return gif_error(err, e);
    for (;;) {
        GifRecordType type;
        if (DGifGetRecordType(f->gif, &type) == GIF_ERROR)
            return gif_error(err, f->gif->Error);
        if (type == TERMINATE_RECORD_TYPE)
            return cp_fail(err, CP_ERR_INVALID_IMAGE, "gif: no image frame");
        if (type == EXTENSION_RECORD_TYPE) {
            int code;
            GifByteType *ext;
            if (DGifGetExtension(f->gif, &code, &ext) == GIF_ERROR)
                return gif_error(err, f->gif->Error);
            /* graphic control: [size=4][flags][delay lo][delay hi][transparent index] */
            if (code == GRAPHICS_EXT_FUNC_CODE && ext && ext[0] >= 4)
                f->transparency = (ext[1] & 1) ? ext[4] : -1;
            while (ext) {
                if (DGifGetExtensionNext(f->gif, &ext) == GIF_ERROR)
                    return gif_error(err, f->gif->Error);
            }
            continue;
        }
        if (type != IMAGE_DESC_RECORD_TYPE)
            return cp_fail(err, CP_ERR_INVALID_IMAGE, "gif: unexpected record");
        if (DGifGetImageDesc(f->gif) == GIF_ERROR)
            return gif_error(err, f->gif->Error);
        const GifImageDesc *d = &f->gif->Image;
        if (d->Width <= 0 || d->Height <= 0)
            return cp_fail(err, CP_ERR_INVALID_IMAGE, "gif: empty first frame");
        long x1 = (long)d->Left + d->Width, y1 = (long)d->Top + d->Height;
        f->width = (int)(x1 > f->gif->SWidth ? x1 : f->gif->SWidth);
        f->height = (int)(y1 > f->gif->SHeight ? y1 : f->gif->SHeight);
        const ColorMapObject *cm = d->ColorMap ? d->ColorMap : f->gif->SColorMap;
        f->grey = true;
        for (int i = 0; cm && i < cm->ColorCount && f->grey; i++)
            f->grey = cm->Colors[i].Red == i && cm->Colors[i].Green == i && cm->Colors[i].Blue == i;
        return true;
    }
}

bool decode_gif_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err)
{
    hdr->format = IMAGE_FORMAT_GIF;
    gif_frame0 f;
    bool ok = open_frame0(data, len, &f, err);
    if (ok) {
        hdr->width = f.width;
        hdr->height = f.height;
        hdr->has_alpha = f.transparency >= 0;  /* Pillow's info["transparency"] */
        hdr->native = f.grey ? NATIVE_AS_RGB : NATIVE_NEAREST; /* "L" or "P" */
    }
    close_gif(&f);
    return ok;
}

bool decode_gif_pixels(const uint8_t *data, size_t len, const image_header *hdr,
                       bool alpha_onto_white, uint8_t *dst, cp_error *err)
{
    gif_frame0 f;
    if (!open_frame0(data, len, &f, err)) {
        close_gif(&f);
        return false;
    }
    if (f.width != hdr->width || f.height != hdr->height) {
        close_gif(&f);
        return cp_fail(err, CP_ERR_INTERNAL, "gif: header does not match the image data");
    }
    /* Pillow: no palette, or an identity grey one, makes the frame mode "L" (index i is grey
     * i, whatever the palette's length); any other palette is mode "P", black past its end */
    const ColorMapObject *cm = f.gif->Image.ColorMap ? f.gif->Image.ColorMap : f.gif->SColorMap;
    bool grey = f.grey;
    uint8_t palette[256][3];
    for (int i = 0; i < 256; i++)
        palette[i][0] = palette[i][1] = palette[i][2] = grey ? (uint8_t)i : 0;
    for (int i = 0; cm && i < cm->ColorCount && i < 256; i++) {
        palette[i][0] = cm->Colors[i].Red;
        palette[i][1] = cm->Colors[i].Green;
        palette[i][2] = cm->Colors[i].Blue;
    }
    /* transformers 5: P (or L) with transparency -> RGBA (that index fully transparent) ->
     * over white: the transparent index becomes white, every other one is opaque */
    if (alpha_onto_white && f.transparency >= 0)
        memset(palette[f.transparency], 255, 3);
    const GifImageDesc *d = &f.gif->Image;
    size_t w = (size_t)f.width, h = (size_t)f.height;
    uint8_t *line = malloc((size_t)d->Width);
    if (!line) {
        close_gif(&f);
        return cp_fail(err, CP_ERR_INTERNAL, "out of memory");
    }
    /* the canvas outside the frame */
    const uint8_t *bg = palette[f.transparency >= 0 ? f.transparency : 0];
    for (size_t i = 0; i < w * h; i++)
        memcpy(dst + i * 3, bg, 3);
    /* rows in file order: four interlace passes, or top to bottom */
    static const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
    int passes = d->Interlace ? 4 : 1;
    bool ok = true;
    for (int p = 0; p < passes && ok; p++) {
        int y0 = d->Interlace ? start[p] : 0, dy = d->Interlace ? step[p] : 1;
        for (int y = y0; y < d->Height; y += dy) {
            if (DGifGetLine(f.gif, line, d->Width) == GIF_ERROR) {
                ok = gif_error(err, f.gif->Error);
                break;
            }
            uint8_t *o = dst + (((size_t)d->Top + (size_t)y) * w + (size_t)d->Left) * 3;
            for (int x = 0; x < d->Width; x++, o += 3)
                memcpy(o, palette[line[x]], 3);
        }
    }
    free(line);
    close_gif(&f);
    return ok;
}
