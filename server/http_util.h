/* http_util.h — small helpers for libmicrohttpd responses shared by the routes. */
#ifndef CLIPPREP_HTTP_UTIL_H
#define CLIPPREP_HTTP_UTIL_H

#include <microhttpd.h>

#include "error.h"

/* A response owning a copy of a JSON text, with Content-Type application/json. */
struct MHD_Response *json_response(const char *json);

/* {"error":{"code":…,"message":…,"index":i|null}}; index < 0 means null. Adds Retry-After
 * for 503s. Returns the HTTP status via *status. */
struct MHD_Response *error_response(const cp_error *err, int index, int *status);

/* Queues resp with status, adds X-Request-Id, releases our reference. */
enum MHD_Result send_response(struct MHD_Connection *conn, int status, struct MHD_Response *resp,
                              const char *request_id);

#endif
