/* fetch.h — fetching image URLs for JSON input, safely (SSRF): a small pool of threads runs
 * libcurl so that neither the HTTP thread nor the workers ever wait on the network.
 *
 * Policy (fetch_* configuration keys): http and https only; the host must match
 * fetch_allow_hosts (exact names, "*.suffix" for subdomains; empty = any host); every address
 * a connection is opened to is checked after DNS resolution, in libcurl's open-socket hook, so
 * the connection is pinned to an address that passed (no re-resolution between check and
 * use); loopback, private, link-local and CGNAT addresses pass only with fetch_allow_private;
 * unspecified (0.0.0.0, ::), multicast, broadcast/reserved and cloud metadata addresses never
 * pass. Redirects are followed by hand, each hop re-checked the same way, at most
 * fetch_max_redirects. Bytes: fetch_max_bytes per fetch, fetch_max_request_bytes per request;
 * time: fetch_timeout_ms per fetch, fetch_request_timeout_ms per request. No proxy from the
 * environment, no content decoding (a compressed body is not inflated). */
#ifndef CLIPPREP_FETCH_H
#define CLIPPREP_FETCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "offload.h"

struct sockaddr;
typedef struct fetcher fetcher;

typedef struct fetch_task {
    /* in */
    const char *url;
    uint64_t deadline_ns;          /* monotonic: the request's fetch deadline */
    atomic_size_t *request_bytes;  /* shared by the request's fetches */
    void (*done)(struct fetch_task *t); /* called on a fetch thread, once */
    void *ctx;
    int index;                     /* the image's index in its request */
    /* out */
    uint8_t *data;                 /* malloc'd body on success (the caller frees) */
    size_t len;
    bool ok;
    cp_error err;
    /* the pool's */
    offload_task pool_task;
    const struct fetcher *fetcher;
} fetch_task;

/* Validates the fetch_* keys and starts fetch_concurrency threads. */
fetcher *fetcher_create(const cp_config *cfg, cp_error *err);
/* Lets queued fetches finish, then joins the threads. */
void fetcher_destroy(fetcher *f);
void fetcher_submit(fetcher *f, fetch_task *t);

/* The policy's pieces (unit-tested). */
typedef enum { ADDR_PUBLIC = 0, ADDR_PRIVATE, ADDR_FORBIDDEN } address_class;
address_class fetch_classify_address(const struct sockaddr *sa);
bool fetch_host_allowed(const char *host, const char *allow_list);
/* Checks an allow-list's syntax: comma-separated names or "*.suffix" entries. */
bool fetch_allow_list_valid(const char *allow_list, cp_error *err);

#endif
