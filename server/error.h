/* error.h — errors as values: a status code plus a human message.
 * Every layer below HTTP fills a cp_error; http.c maps the status to an HTTP code and a
 * stable machine-readable code string (cp_status_code_name). */
#ifndef CLIPPREP_ERROR_H
#define CLIPPREP_ERROR_H

typedef enum {
    CP_OK = 0,
    CP_ERR_BAD_REQUEST,        /* 400 bad_request: malformed request (body, multipart, query) */
    CP_ERR_INVALID_PARAMETER,  /* 400 invalid_parameter: a query parameter has a bad value */
    CP_ERR_UNKNOWN_PROFILE,    /* 400 unknown_profile */
    CP_ERR_INVALID_IMAGE,      /* 400 invalid_image: corrupt, truncated or undecodable data */
    CP_ERR_UNSUPPORTED_FORMAT, /* 415 unsupported_format: not a format we decode (or a variant we refuse) */
    CP_ERR_IMAGE_TOO_LARGE,    /* 413 image_too_large: pixel count over max_pixels */
    CP_ERR_BODY_TOO_LARGE,     /* 413 body_too_large: request body over max_body_bytes */
    CP_ERR_TOO_MANY_IMAGES,    /* 413 too_many_images: over max_images_per_request */
    CP_ERR_UNAUTHORIZED,       /* 401 unauthorized: auth_token set and no/wrong bearer token */
    CP_ERR_NOT_FOUND,          /* 404 not_found */
    CP_ERR_METHOD_NOT_ALLOWED, /* 405 method_not_allowed */
    CP_ERR_OVERLOADED,         /* 503 overloaded: queue or arena full, retry later */
    CP_ERR_UNAVAILABLE,        /* 503 unavailable: backend failed or not ready */
    CP_ERR_INTERNAL,           /* 500 internal */
    CP_ERR_CONFIG,             /* start-up only: invalid configuration */
    /* JSON input (json_input.c, fetch.c, preprocess_input.c) */
    CP_ERR_FETCH_DISABLED,     /* 403 fetch_disabled: a URL item while fetch_enabled is false */
    CP_ERR_FETCH_REFUSED,      /* 403 fetch_refused: scheme, host or resolved address refused */
    CP_ERR_FETCH_FAILED,       /* 422 fetch_failed: DNS, connection, HTTP status, redirects */
    CP_ERR_FETCH_TOO_LARGE,    /* 413 fetch_too_large: over fetch_max_(request_)bytes */
    CP_ERR_FETCH_TIMEOUT,      /* 422 fetch_timeout: over fetch_(request_)timeout_ms */
    CP_ERR_CACHE_MISS,         /* 404 cache_miss: {"hash"} not in the content cache */
    CP_STATUS_COUNT
} cp_status;

typedef struct {
    cp_status status;
    char message[256];
} cp_error;

/* Sets status and a printf-style message; returns 0 (false) so callers can `return cp_fail(...)`. */
int cp_fail(cp_error *err, cp_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

const char *cp_status_code_name(cp_status status); /* "invalid_image", ... */
int cp_status_http(cp_status status);              /* 400, 413, ... */

#endif
