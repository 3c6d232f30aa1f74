/* fuzz_geometry.c — libFuzzer target: resize geometry for any source size and profile (issue
 * #13: a 1x6400000 image overflowed int). Input: 4-byte LE source width, 4-byte height, then
 * profile bytes (mode, edge/size, crop). Checks the admission rule against the computation:
 * an accepted size gives a plannable geometry, a refused one never reaches an overflowed int
 * (UBSan aborts on any signed overflow in the replay build). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/geometry.h"

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 14)
        return 0;
    int w = (int)(le32(data) & 0x7fffffff), h = (int)(le32(data + 4) & 0x7fffffff);
    if (w < 1 || h < 1)
        return 0;
    profile p;
    memset(&p, 0, sizeof p);
    strcpy(p.name, "fuzz");
    int a = 1 + (data[9] | data[10] << 8) % 4096, b = 1 + (data[11] | data[12] << 8) % 4096;
    p.resize = data[8] & 1 ? RESIZE_EXACT : RESIZE_SHORTEST_EDGE;
    p.shortest_edge = a;
    p.resize_width = a;
    p.resize_height = b;
    p.crop = (crop_mode)(data[13] % 3);
    p.crop_width = b;
    p.crop_height = a;
    cp_error err;
    bool ok = geometry_check(&p, w, h, &err);
    image_geometry g;
    geometry_compute(&p, w, h, &g);
    if (ok) {
        if (g.resized_w < 1 || g.resized_h < 1 || g.out_w < 1 || g.out_h < 1)
            abort(); /* accepted but unplannable */
        if (p.crop != CROP_NONE && (g.left > g.resized_w || g.top > g.resized_h))
            abort(); /* a crop window starting past the image */
    } else if (g.resized_w != 0 || g.resized_h != 0) {
        abort(); /* refused sizes must come out as 0, never as wrapped ints */
    }
    return 0;
}
