/* preprocess_input.h — what /v1/preprocess takes beyond raw and multipart bodies, and what it
 * remembers: JSON bodies (base64, data URIs, URLs fetched off the HTTP thread, content
 * hashes) and the content cache (look-ups before the queue, stores when a job is done,
 * X-Content-Hash). preprocess_route.c calls these at a few points; a request without JSON and
 * without the cache never allocates anything here (r->input stays NULL). */
#ifndef CLIPPREP_PREPROCESS_INPUT_H
#define CLIPPREP_PREPROCESS_INPUT_H

#include "request.h"

/* The body is JSON, or the request is back from its fetches: preprocess_input_json owns it. */
bool preprocess_input_is_json(const request *r);

/* Body complete (first call) or resumed after the fetches: parse, fetch (suspended), look up
 * the cache, then request_start; or answer an error naming the item's index. */
enum MHD_Result preprocess_input_json(request *r, bool exif);

/* The cache step before request_start for any body: hashes and looks up each image when
 * cache_bytes > 0 (images[i].data may be NULL for a {"hash"} item: a miss is cache_miss). */
enum MHD_Result preprocess_input_start(request *r, const image_ref *images, int n, bool exif);

/* For request_start / place_output: the cached tensor of image i (NULL: decode it). */
const uint8_t *preprocess_input_cached(const request *r, int index);

/* A job finished without error: stores its tensor slot in the cache (when on). */
void preprocess_input_job_done(request *r, int index, const void *out, size_t size);

/* Adds X-Content-Hash (comma-separated, one per image) when the cache is on. */
void preprocess_input_headers(const request *r, struct MHD_Response *resp);

void preprocess_input_free(struct preprocess_input *in);

#endif
