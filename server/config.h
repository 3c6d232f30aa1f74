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
