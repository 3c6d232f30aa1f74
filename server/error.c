/* error.c — the table from error status to HTTP status and code name. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
    const char *name;
    int http;
} status_table[CP_STATUS_COUNT] = {
    [CP_OK] = {"ok", 200},
    [CP_ERR_BAD_REQUEST] = {"bad_request", 400},
    [CP_ERR_INVALID_PARAMETER] = {"invalid_parameter", 400},
    [CP_ERR_UNKNOWN_PROFILE] = {"unknown_profile", 400},
    [CP_ERR_INVALID_IMAGE] = {"invalid_image", 400},
    [CP_ERR_UNSUPPORTED_FORMAT] = {"unsupported_format", 415},
    [CP_ERR_IMAGE_TOO_LARGE] = {"image_too_large", 413},
    [CP_ERR_BODY_TOO_LARGE] = {"body_too_large", 413},
    [CP_ERR_TOO_MANY_IMAGES] = {"too_many_images", 413},
    [CP_ERR_UNAUTHORIZED] = {"unauthorized", 401},
    [CP_ERR_NOT_FOUND] = {"not_found", 404},
    [CP_ERR_METHOD_NOT_ALLOWED] = {"method_not_allowed", 405},
    [CP_ERR_OVERLOADED] = {"overloaded", 503},
    [CP_ERR_UNAVAILABLE] = {"unavailable", 503},
    [CP_ERR_INTERNAL] = {"internal", 500},
    [CP_ERR_CONFIG] = {"config", 500},
    [CP_ERR_FETCH_DISABLED] = {"fetch_disabled", 403},
    [CP_ERR_FETCH_REFUSED] = {"fetch_refused", 403},
    [CP_ERR_FETCH_FAILED] = {"fetch_failed", 422},
    [CP_ERR_FETCH_TOO_LARGE] = {"fetch_too_large", 413},
    [CP_ERR_FETCH_TIMEOUT] = {"fetch_timeout", 422},
    [CP_ERR_CACHE_MISS] = {"cache_miss", 404},
};

int cp_fail(cp_error *err, cp_status status, const char *fmt, ...)
{
    if (err) {
        err->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return 0;
}

const char *cp_status_code_name(cp_status status)
{
    return (status >= 0 && status < CP_STATUS_COUNT) ? status_table[status].name : "internal";
}

int cp_status_http(cp_status status)
{
    return (status >= 0 && status < CP_STATUS_COUNT) ? status_table[status].http : 500;
}
