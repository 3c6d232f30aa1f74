/* config.h — the daemon's settings. Precedence: built-in defaults < JSON file (--config)
 * < environment (CLIPPREP_<KEY>, key upper-cased) < command-line flags. Every key is validated;
 * an unknown or invalid key stops the start with a message naming it. */
#ifndef CLIPPREP_CONFIG_H
#define CLIPPREP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define CP_MAX_PREFERRED_BATCH 16

typedef enum { BACKEND_AUTO = 0, BACKEND_CPU, BACKEND_CUDA } backend_kind;
typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;
typedef enum { GPU_DECODE_AUTO = 0, GPU_DECODE_ON, GPU_DECODE_OFF } gpu_decode_mode;

typedef struct {
    /* network */
    char host[256];            /* "host", default "127.0.0.1" */
    int port;                  /* "port", default 8080 (0 = pick a free port; logged) */
    int http_threads;          /* "http_threads", default 1 (libmicrohttpd polling threads) */
    int max_connections;       /* "max_connections", default 256 */
    int connection_timeout_s;  /* "connection_timeout_s", default 30 (idle/slow clients) */
    int drain_timeout_s;       /* "drain_timeout_s", default 30: on SIGTERM, how long in-flight
                                  requests may take to finish before the daemon exits anyway */
    int request_timeout_s;     /* "request_timeout_s", default 60: an upload taking longer is cut
                                  off (slow-loris), whatever its pace */
    char unix_socket[256];     /* "unix_socket", default "" (off): listen on this Unix socket
                                  path instead of host:port */
    int fast_min_factor;       /* "fast_min_factor", default 2: mode=fast decodes JPEGs at the
                                  smallest 1/2, 1/4, 1/8 scale whose short side stays >= this
                                  factor x the profile's target size */
    size_t cuda_ipc_bytes;     /* "cuda_ipc_bytes", default 256 MiB of GPU memory for
                                  format=cuda_ipc (CUDA backend only); 0 disables it */
    char shm_name[128];        /* "shm_name", default "/clipprep": the format=shm pool object */
    size_t shm_bytes;          /* "shm_bytes", default 64 MiB; 0 disables the pool */
    size_t shm_slot_bytes;     /* "shm_slot_bytes", default 4 MiB; a tensor takes consecutive
                                  slots */
    int shm_lease_ttl_ms;      /* "shm_lease_ttl_ms", default 30000 */
    char shm_mode[8];          /* "shm_mode", default "0600" (octal permissions) */
    char auth_token[256];      /* "auth_token", default "" (off): require
                                  "Authorization: Bearer <token>" on every route but /healthz
                                  and /readyz */
    /* engine */
    backend_kind backend;      /* "backend": "auto" | "cpu" | "cuda", default auto */
    gpu_decode_mode decode_on_gpu; /* "decode_on_gpu": "auto" | "on" | "off", default auto: the
                                  hybrid JPEG decode (entropy decoding on the CPU, the rest on
                                  the GPU) wherever the CUDA backend runs; "on" refuses to
                                  start without it */
    char cuda_devices[128];    /* "cuda_devices", default "" = every visible GPU; else "0,2"
                                  (CUDA device numbers, one worker each) */
    char cuda_sync[16];        /* "cuda_sync", default "auto": how a thread waiting for a batch
                                  waits: "auto" | "spin" | "yield" | "blocking" (sleeps) */
    int cpu_workers;           /* "cpu_workers", default 0 = one per online core */
    int max_batch_size;        /* "max_batch_size", default 32 */
    int max_queue_delay_us;    /* "max_queue_delay_us", default 0 on purpose: CPU never waits */
    int preferred_batch_sizes[CP_MAX_PREFERRED_BATCH]; /* "preferred_batch_sizes", default [] */
    int n_preferred_batch_sizes;
    int queue_capacity;        /* "queue_capacity", images waiting at most, default 1024 */
    size_t staging_bytes;      /* "staging_bytes", decoded-pixel arena, default 512 MiB */
    /* limits */
    size_t max_body_bytes;     /* "max_body_bytes", default 64 MiB */
    int max_images_per_request;/* "max_images_per_request", default 256 */
    long long max_pixels;      /* "max_pixels", default 50000000 (per image, from the header) */
    int max_scans;             /* "max_scans", progressive JPEG scan limit, default 256 */
    /* profiles */
    char profiles_dir[1024];   /* "profiles_dir", default "config/profiles"; relative paths in a
                                  config file are taken relative to that file's directory */
    char default_profile[64];  /* "default_profile", default "clip-224" */
    char default_reference[32]; /* "default_reference": the reference for profiles that name
                                  none, default "transformers4" (reference.h) */
    /* logging */
    log_level log_level;       /* "log_level": "debug" | "info" | "warn" | "error", default info */
    /* hostile clients (docs/deployment.md, Security) */
    size_t memory_budget_bytes; /* "memory_budget_bytes", default 1 GiB: all in-flight request
                                  memory (bodies, output tensors, encoded answers), reserved
                                  before it is allocated; over it -> 503 (413 if never) */
    size_t max_json_output_bytes; /* "max_json_output_bytes", default 64 MiB: format=json and
                                  /v2 JSON answers (estimated before any work) */
    long long max_request_pixels; /* "max_request_pixels", default 1e9: sum of width x height
                                  of one request's images (from their headers) */
    size_t max_json_body_bytes; /* "max_json_body_bytes", default 64 KiB: the JSON part of a /v2
                                  infer body and a register body */
    bool allow_client_shm;     /* "allow_client_shm", default false: /v2 shared-memory register
                                  (system and CUDA) is refused unless true, as Triton's
                                  --allow-client-shm */
    char client_shm_key_prefix[128]; /* "client_shm_key_prefix", default "" (any): a registered
                                  system shm key must start with it */
    int max_connections_per_ip; /* "max_connections_per_ip", default 0 (no limit) */
    int header_timeout_s;      /* "header_timeout_s", default 10: request line + headers */
    int response_timeout_s;    /* "response_timeout_s", default 60: sending one answer */
    /* JSON input: URL fetching (fetch.h has the policy) and the content cache */
    bool fetch_enabled;        /* "fetch_enabled", default false: {"url": "http(s)://..."} items */
    char fetch_allow_hosts[1024]; /* "fetch_allow_hosts", default "" (any host): comma-separated
                                  names, "*.example.com" for subdomains */
    bool fetch_allow_private;  /* "fetch_allow_private", default false: loopback, private and
                                  link-local addresses may be fetched */
    size_t fetch_max_bytes;    /* "fetch_max_bytes", default 16 MiB per fetched image */
    size_t fetch_max_request_bytes; /* "fetch_max_request_bytes", default 64 MiB per request */
    int fetch_timeout_ms;      /* "fetch_timeout_ms", default 10000 per fetch (redirects too) */
    int fetch_request_timeout_ms; /* "fetch_request_timeout_ms", default 30000 per request */
    int fetch_max_redirects;   /* "fetch_max_redirects", default 3 */
    int fetch_concurrency;     /* "fetch_concurrency", default 8: fetch threads (fetches at once) */
    size_t cache_bytes;        /* "cache_bytes", default 0 (off): content cache budget */
} cp_config;

void config_defaults(cp_config *cfg);

/* Parses argv (flags: --config FILE, --host H, --port N, --backend B, --log-level L) and the
 * environment, loading the JSON file named by --config (or CLIPPREP_CONFIG) in between.
 * Sets *want_help / *want_version for --help / --version and returns true without loading.
 * On failure returns false with err->message naming the offending key or flag.
 * cfg is reset to the defaults first; envp == NULL means the process environment (environ).
 * Unknown CLIPPREP_* variables are errors (CLIPPREP_CONFIG names the file; --config wins). */
bool config_load(cp_config *cfg, int argc, char **argv, char **envp, bool *want_help,
                 bool *want_version, cp_error *err);

/* Lower-level pieces (used by config_load and tests): apply one key given as JSON text or as
 * a string from the environment/flags. A relative profiles_dir in json_text is joined to
 * base_dir (NULL or "" or ".": left as given). Neither runs config_validate. */
bool config_apply_json_text(cp_config *cfg, const char *json_text, const char *base_dir,
                            cp_error *err);
bool config_apply_string(cp_config *cfg, const char *key, const char *value, cp_error *err);

/* Checks the settings that depend on each other (preferred_batch_sizes <= max_batch_size,
 * staging_bytes >= 3*max_pixels + 1 MiB); config_load calls it after all layers. */
bool config_validate(const cp_config *cfg, cp_error *err);

/* A cJSON object with every key and its effective value (for logging / diagnostics). Caller
 * frees with cJSON_Delete. Returned as void* to keep cJSON out of this header. */
void *config_to_cjson(const cp_config *cfg);

const char *backend_kind_name(backend_kind b); /* "auto" | "cpu" | "cuda" */
const char *log_level_name(log_level l);
void config_print_help(const char *argv0);      /* usage text on stdout */

#endif
