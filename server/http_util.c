/* http_util.c — JSON and error responses. */
#include "http_util.h"

#include <stdio.h>
#include <string.h>

#include "conn_deadlines.h"
#include "log.h"

struct MHD_Response *json_response(const char *json)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
    if (r)
        MHD_add_response_header(r, "Content-Type", "application/json");
    return r;
}

struct MHD_Response *error_response(const cp_error *err, int index, int *status)
{
    char msg[600], body[800], idx[24];
    json_escape(err->message, msg, sizeof msg);
    if (index >= 0)
        snprintf(idx, sizeof idx, "%d", index);
    else
        strcpy(idx, "null");
    snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"index\":%s}}",
             cp_status_code_name(err->status), msg, idx);
    *status = cp_status_http(err->status);
    struct MHD_Response *r = json_response(body);
    if (r && *status == 503)
        MHD_add_response_header(r, "Retry-After", "1");
    return r;
}

enum MHD_Result send_response(struct MHD_Connection *conn, int status, struct MHD_Response *resp,
                              const char *request_id)
{
    if (!resp)
        return MHD_NO;
    if (request_id && *request_id)
        MHD_add_response_header(resp, "X-Request-Id", request_id);
    conn_deadlines_responding(conn); /* the client now has response_timeout_s to take it */
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}
