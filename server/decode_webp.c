/* decode_webp.c — WebP via libwebp + libwebpdemux, reproducing Pillow 11.3's WebPImagePlugin.
 *
 * Pillow opens every WebP through WebPAnimDecoder (default options: MODE_RGBA, no threads)
 * and shows frame 0 of the canvas; the size is the canvas size; convert("RGB") drops alpha
 * without compositing. We do the same:
 *   - still images (no ANIMATION flag): the single frame's payload, as located by the
 *     demuxer, is decoded with WebPDecode straight into dst as MODE_RGB (same decoder and
 *     YUV->RGB path as the animation decoder's RGBA output, minus the alpha plane);
 *   - animated images: the FIRST frame is rendered with WebPAnimDecoder exactly like Pillow
 *     (canvas cleared to transparent black, frame placed at its offset, so pixels outside
 *     the first frame are 0,0,0) and the RGB channels are copied out. This needs the
 *     decoder's own canvas (4 bytes per pixel) as a temporary.
 * EXIF / XMP come from the demuxer's first "EXIF" / "XMP " chunk, like Pillow's get_chunk().
 * The header step runs the demuxer only (it parses the RIFF chunk list; no pixel decoding). */
#include <stdlib.h>
#include <string.h>

#include <webp/decode.h>
#include <webp/demux.h>

#include "alpha.h"
#include "decode_internal.h"
#include "exif.h"

static const char *status_text(VP8StatusCode s)
{
    switch (s) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "user abort";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "not enough data (image file is truncated)";
    default: return "decoding failed";
    }
}

/* Demuxes the whole file; on failure sets err and returns NULL. */
static WebPDemuxer *demux_open(const uint8_t *data, size_t len, cp_error *err)
{
    WebPData wd = {data, len};
    WebPDemuxState state = WEBP_DEMUX_PARSE_ERROR;
    WebPDemuxer *dmux = WebPDemuxInternal(&wd, 0, &state, WEBP_DEMUX_ABI_VERSION);
    if (dmux)
        return dmux;
    if (state == WEBP_DEMUX_PARSING_HEADER || state == WEBP_DEMUX_PARSED_HEADER)
        cp_fail(err, CP_ERR_INVALID_IMAGE, "webp: image file is truncated");
    else
        cp_fail(err, CP_ERR_INVALID_IMAGE, "webp: invalid WebP container or bitstream");
    return NULL;
}

bool decode_webp_header(const uint8_t *data, size_t len, image_header *hdr, cp_error *err)
{
    hdr->format = IMAGE_FORMAT_WEBP;
    WebPDemuxer *dmux = demux_open(data, len, err);
    if (!dmux)
        return false;
    uint32_t w = WebPDemuxGetI(dmux, WEBP_FF_CANVAS_WIDTH);
    uint32_t h = WebPDemuxGetI(dmux, WEBP_FF_CANVAS_HEIGHT);
    uint32_t frames = WebPDemuxGetI(dmux, WEBP_FF_FRAME_COUNT);
    if (w == 0 || h == 0 || frames == 0) {
        WebPDemuxDelete(dmux);
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "webp: no image frame");
    }
    if (w > DECODE_MAX_SIDE || h > DECODE_MAX_SIDE) {
        WebPDemuxDelete(dmux);
        return cp_fail(err, CP_ERR_IMAGE_TOO_LARGE, "webp: %ux%u exceeds %d pixels per side",
                       w, h, DECODE_MAX_SIDE);
    }

    int exif_value = EXIF_ORIENTATION_ABSENT, xmp_value = EXIF_ORIENTATION_ABSENT;
    WebPChunkIterator it;
    if (WebPDemuxGetChunk(dmux, "EXIF", 1, &it)) {
        if (it.chunk.size > 0) /* Pillow: `if exif:` — an empty chunk is no EXIF */
            exif_value = exif_find_orientation(it.chunk.bytes, it.chunk.size);
        WebPDemuxReleaseChunkIterator(&it);
    }
    if (exif_value == EXIF_ORIENTATION_ABSENT && WebPDemuxGetChunk(dmux, "XMP ", 1, &it)) {
        xmp_value = xmp_find_orientation(it.chunk.bytes, it.chunk.size);
        WebPDemuxReleaseChunkIterator(&it);
    }
    /* Pillow's mode is RGBA iff the format flags say alpha (else RGBX -> RGB) */
    bool alpha = (WebPDemuxGetI(dmux, WEBP_FF_FORMAT_FLAGS) & ALPHA_FLAG) != 0;
    WebPDemuxDelete(dmux);

    hdr->has_alpha = alpha;
    hdr->native = alpha ? NATIVE_RGBA : NATIVE_AS_RGB;
    hdr->width = (int)w;
    hdr->height = (int)h;
    hdr->orientation = orientation_resolve(exif_value, xmp_value);
    return true;
}

/* white: composite alpha onto white; rgba_out: dst holds RGBA (4 bytes per pixel). */
static bool decode_still(WebPDemuxer *dmux, const image_header *hdr, bool white, bool rgba_out,
                         uint8_t *dst, cp_error *err)
{
    WebPIterator it;
    if (!WebPDemuxGetFrame(dmux, 1, &it))
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "webp: no image frame");
    if (it.x_offset != 0 || it.y_offset != 0 || it.width != hdr->width ||
        it.height != hdr->height) {
        WebPDemuxReleaseIterator(&it);
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "webp: frame does not cover the canvas");
    }
    WebPDecoderConfig config;
    if (!WebPInitDecoderConfig(&config)) {
        WebPDemuxReleaseIterator(&it);
        return cp_fail(err, CP_ERR_INTERNAL, "webp: library version mismatch");
    }
    /* alpha onto white: RGBA (the animation decoder's mode) in a temporary, then composited */
    size_t n = (size_t)hdr->width * (size_t)hdr->height;
    uint8_t *rgba = white ? malloc(n * 4) : NULL;
    if (white && !rgba) {
        WebPDemuxReleaseIterator(&it);
        return cp_fail(err, CP_ERR_OVERLOADED, "webp: out of memory for the alpha plane");
    }
    size_t stride = (size_t)hdr->width * (white || rgba_out ? 4 : 3);
    config.output.colorspace = white || rgba_out ? MODE_RGBA : MODE_RGB;
    config.output.is_external_memory = 1;
    config.output.u.RGBA.rgba = white ? rgba : dst;
    config.output.u.RGBA.stride = (int)stride;
    config.output.u.RGBA.size = stride * (size_t)hdr->height;
    VP8StatusCode st = WebPDecode(it.fragment.bytes, it.fragment.size, &config);
    WebPFreeDecBuffer(&config.output); /* no-op for external memory, kept for symmetry */
    WebPDemuxReleaseIterator(&it);
    bool ok = true;
    if (st != VP8_STATUS_OK)
        ok = cp_fail(err, CP_ERR_INVALID_IMAGE, "webp: %s", status_text(st));
    else if (config.output.width != hdr->width || config.output.height != hdr->height)
        ok = cp_fail(err, CP_ERR_INVALID_IMAGE, "webp: frame size differs from canvas size");
    else if (white)
        rgba_over_white(rgba, dst, n);
    free(rgba);
    return ok;
}

static bool decode_first_frame(const uint8_t *data, size_t len, const image_header *hdr,
                               bool white, bool rgba_out, uint8_t *dst, cp_error *err)
{
    WebPAnimDecoderOptions opts;
    if (!WebPAnimDecoderOptionsInit(&opts))
        return cp_fail(err, CP_ERR_INTERNAL, "webp: library version mismatch");
    opts.color_mode = MODE_RGBA;
    opts.use_threads = 0;
    WebPData wd = {data, len};
    WebPAnimDecoder *dec = WebPAnimDecoderNew(&wd, &opts);
    if (!dec)
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "webp: cannot decode animation");
    WebPAnimInfo info;
    uint8_t *buf = NULL;
    int ts = 0;
    if (!WebPAnimDecoderGetInfo(dec, &info) || (int)info.canvas_width != hdr->width ||
        (int)info.canvas_height != hdr->height) {
        WebPAnimDecoderDelete(dec);
        return cp_fail(err, CP_ERR_INTERNAL, "webp: image data does not match its header");
    }
    if (!WebPAnimDecoderGetNext(dec, &buf, &ts) || !buf) {
        WebPAnimDecoderDelete(dec);
        return cp_fail(err, CP_ERR_INVALID_IMAGE, "webp: failed to decode the first frame");
    }
    size_t n = (size_t)hdr->width * (size_t)hdr->height;
    if (rgba_out) {
        memcpy(dst, buf, n * 4);
    } else if (white) {
        rgba_over_white(buf, dst, n);
    } else {
        for (size_t i = 0; i < n; i++) {
            dst[3 * i] = buf[4 * i];
            dst[3 * i + 1] = buf[4 * i + 1];
            dst[3 * i + 2] = buf[4 * i + 2];
        }
    }
    WebPAnimDecoderDelete(dec);
    return true;
}

static bool webp_decode(const uint8_t *data, size_t len, const image_header *hdr, bool white,
                        bool rgba_out, uint8_t *dst, cp_error *err);

bool decode_webp_pixels(const uint8_t *data, size_t len, const image_header *hdr,
                        bool alpha_onto_white, uint8_t *dst, cp_error *err)
{
    return webp_decode(data, len, hdr, alpha_onto_white, false, dst, err);
}

bool decode_webp_rgba(const uint8_t *data, size_t len, const image_header *hdr, uint8_t *dst,
                      cp_error *err)
{
    return webp_decode(data, len, hdr, false, true, dst, err);
}

static bool webp_decode(const uint8_t *data, size_t len, const image_header *hdr, bool white,
                        bool rgba_out, uint8_t *dst, cp_error *err)
{
    bool alpha_onto_white = white;
    WebPDemuxer *dmux = demux_open(data, len, err);
    if (!dmux)
        return false;
    uint32_t flags = WebPDemuxGetI(dmux, WEBP_FF_FORMAT_FLAGS);
    bool ok;
    if (flags & ANIMATION_FLAG) {
        WebPDemuxDelete(dmux);
        ok = decode_first_frame(data, len, hdr, alpha_onto_white, rgba_out, dst, err);
    } else {
        ok = decode_still(dmux, hdr, alpha_onto_white, rgba_out, dst, err);
        WebPDemuxDelete(dmux);
    }
    return ok;
}
