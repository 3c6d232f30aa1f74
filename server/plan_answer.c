/* plan_answer.c — the JSON answer of POST /v1/plan (plan_answer.h). */
#include "plan_answer.h"

#include <stdlib.h>

#include <cjson/cJSON.h>

#include "geometry.h"
#include "http_util.h"
#include "vlm/vlm.h"

static cJSON *int_array(const int *v, int n)
{
    return cJSON_CreateIntArray(v, n);
}

static cJSON *tile_json(int resized_w, int resized_h, int left, int top, int w, int h)
{
    cJSON *t = cJSON_CreateObject();
    int resized[2] = {resized_h, resized_w}, window[4] = {top, left, h, w};
    cJSON_AddItemToObject(t, "resized", int_array(resized, 2));     /* [height, width] */
    cJSON_AddItemToObject(t, "window", int_array(window, 4));       /* [top, left, h, w] */
    return t;
}

static cJSON *image_json(const request *r, const job *j)
{
    cJSON *o = cJSON_CreateObject();
    int w, h;
    decode_output_size(&j->hdr, &j->dopt, &w, &h);
    cJSON_AddNumberToObject(o, "index", j->index);
    cJSON_AddNumberToObject(o, "width", w);
    cJSON_AddNumberToObject(o, "height", h);
    cJSON *tiles = cJSON_AddArrayToObject(o, "tiles");
    if (j->vplan) {
        const vlm_image_plan *ip = j->vplan;
        if (ip->pad_w) {
            int pad[4] = {ip->pad_h, ip->pad_w, ip->pad_y, ip->pad_x};
            cJSON_AddItemToObject(o, "pad", int_array(pad, 4)); /* [h, w, top, left] */
        }
        for (int t = 0; t < ip->n_tiles; t++) {
            const vlm_tile *tl = &ip->tiles[t];
            cJSON_AddItemToArray(tiles, tile_json(tl->resized_w, tl->resized_h, tl->left, tl->top,
                                                  tl->w, tl->h));
        }
        const vlm_family *f = vlm_family_of(r->prof->vlm.kind);
        if (f->plan_json)
            f->plan_json(r->prof, ip, o);
        if (ip->vision_tokens >= 0)
            cJSON_AddNumberToObject(o, "vision_tokens", (double)ip->vision_tokens);
    } else {
        image_geometry g;
        geometry_for_decode(r->prof, r->ref, &j->dopt, w, h, &g);
        cJSON_AddItemToArray(tiles, tile_json(g.resized_w, g.resized_h, g.left, g.top, g.out_w,
                                              g.out_h));
    }
    return o;
}

enum MHD_Result plan_answer(request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "profile", r->prof->name);
    cJSON_AddStringToObject(o, "reference", reference_name(r->ref));
    cJSON *imgs = cJSON_AddArrayToObject(o, "images");
    for (int i = 0; i < r->n_jobs; i++)
        cJSON_AddItemToArray(imgs, image_json(r, &r->jobs[i]));
    cJSON *arrays = cJSON_AddArrayToObject(o, "arrays");
    for (int i = 0; i < r->layout.n; i++) {
        const out_array *a = &r->layout.a[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", a->name);
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < a->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)a->shape[d]));
        cJSON_AddStringToObject(e, "dtype", array_type_name(a->type, r->dtype));
        cJSON_AddItemToArray(arrays, e);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        return send_response(r->conn, 503, NULL, r->id);
    struct MHD_Response *resp = json_response(text);
    free(text);
    r->status = 200;
    atomic_store(&r->state, REQ_ANSWERED);
    return send_response(r->conn, 200, resp, r->id);
}
