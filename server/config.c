/* config.c — the daemon's settings: built-in defaults, the JSON file, the environment and the
 * command line, in that order of precedence. Every key is described once in the key table
 * below (name, type, range); the file, the environment and the flags all go through it, so a
 * key is parsed and validated the same way wherever it comes from. Settings that depend on
 * each other (preferred batch sizes vs max_batch_size, staging_bytes vs max_pixels) are
 * checked once all layers are applied, by config_validate(). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "reference.h"

#ifndef CLIPPREP_VERSION
#define CLIPPREP_VERSION "0.0.0"
#endif

#define MIB ((size_t)1 << 20)
#define CONFIG_FILE_MAX (1 << 20) /* a config file is small; refuse anything over 1 MiB */
#define SIZE_LIMIT ((unsigned long long)1 << 48) /* 256 TiB: a guard against overflow */
#define MAX_PIXELS_LIMIT ((long long)1 << 40)
#define ENV_PREFIX "CLIPPREP_"

typedef enum {
    KEY_STRING,    /* char[] field, non-empty unless min == 1 (optional: "" = off) */
    KEY_PATH,      /* char[] field, same; relative paths from a file resolved against it */
    KEY_INT,       /* int, [min, max] */
    KEY_LLONG,     /* long long, [min, max] */
    KEY_SIZE,      /* size_t, [min, max], integer or "512M"/"512MiB" string */
    KEY_INT_LIST,  /* preferred_batch_sizes */
    KEY_BACKEND,   /* backend_kind */
    KEY_LOG_LEVEL, /* log_level */
    KEY_GPU_DECODE, /* gpu_decode_mode */
    KEY_BOOL,      /* bool: JSON true/false; strings "true"/"false"/"1"/"0" */
} key_type;

typedef struct {
    const char *name;
    key_type type;
    size_t offset;
    size_t cap;        /* strings: the field's size */
    long long min, max;
} key_def;

#define FIELD(f) offsetof(cp_config, f), sizeof(((cp_config *)0)->f)

static const key_def keys[] = {
    {"host", KEY_STRING, FIELD(host), 0, 0},
    {"port", KEY_INT, FIELD(port), 0, 65535},
    {"http_threads", KEY_INT, FIELD(http_threads), 1, 1024},
    {"max_connections", KEY_INT, FIELD(max_connections), 1, 65536},
    {"connection_timeout_s", KEY_INT, FIELD(connection_timeout_s), 1, 86400},
    {"drain_timeout_s", KEY_INT, FIELD(drain_timeout_s), 0, 3600},
    {"request_timeout_s", KEY_INT, FIELD(request_timeout_s), 1, 86400},
    {"unix_socket", KEY_PATH, FIELD(unix_socket), 1, 0},
    {"auth_token", KEY_STRING, FIELD(auth_token), 1, 0},
    {"fast_min_factor", KEY_INT, FIELD(fast_min_factor), 1, 16},
    {"cuda_ipc_bytes", KEY_SIZE, FIELD(cuda_ipc_bytes), 0, (long long)SIZE_LIMIT},
    {"shm_name", KEY_STRING, FIELD(shm_name), 0, 0},
    {"shm_bytes", KEY_SIZE, FIELD(shm_bytes), 0, (long long)SIZE_LIMIT},
    {"shm_slot_bytes", KEY_SIZE, FIELD(shm_slot_bytes), 4096, (long long)SIZE_LIMIT},
    {"shm_lease_ttl_ms", KEY_INT, FIELD(shm_lease_ttl_ms), 1, 86400000},
    {"shm_mode", KEY_STRING, FIELD(shm_mode), 0, 0},
    {"backend", KEY_BACKEND, FIELD(backend), 0, 0},
    {"decode_on_gpu", KEY_GPU_DECODE, FIELD(decode_on_gpu), 0, 0},
    {"cuda_devices", KEY_STRING, FIELD(cuda_devices), 1, 0},
    {"cuda_sync", KEY_STRING, FIELD(cuda_sync), 0, 0},
    {"cpu_workers", KEY_INT, FIELD(cpu_workers), 0, 1024},
    {"max_batch_size", KEY_INT, FIELD(max_batch_size), 1, 4096},
    {"max_queue_delay_us", KEY_INT, FIELD(max_queue_delay_us), 0, 10000000},
    {"preferred_batch_sizes", KEY_INT_LIST, FIELD(preferred_batch_sizes), 1, 4096},
    {"queue_capacity", KEY_INT, FIELD(queue_capacity), 1, 1 << 20},
    {"staging_bytes", KEY_SIZE, FIELD(staging_bytes), 1, (long long)SIZE_LIMIT},
    {"max_body_bytes", KEY_SIZE, FIELD(max_body_bytes), 1, (long long)SIZE_LIMIT},
    {"max_images_per_request", KEY_INT, FIELD(max_images_per_request), 1, 65536},
    {"max_pixels", KEY_LLONG, FIELD(max_pixels), 1, MAX_PIXELS_LIMIT},
    {"max_scans", KEY_INT, FIELD(max_scans), 0, 1000000},
    {"profiles_dir", KEY_PATH, FIELD(profiles_dir), 0, 0},
    {"default_profile", KEY_STRING, FIELD(default_profile), 0, 0},
    {"default_reference", KEY_STRING, FIELD(default_reference), 0, 0},
    {"log_level", KEY_LOG_LEVEL, FIELD(log_level), 0, 0},
    /* hostile clients (docs/deployment.md, Security) */
    {"memory_budget_bytes", KEY_SIZE, FIELD(memory_budget_bytes), 1 << 20, (long long)SIZE_LIMIT},
    {"max_json_output_bytes", KEY_SIZE, FIELD(max_json_output_bytes), 1, (long long)SIZE_LIMIT},
    {"max_request_pixels", KEY_LLONG, FIELD(max_request_pixels), 1, MAX_PIXELS_LIMIT},
    {"max_json_body_bytes", KEY_SIZE, FIELD(max_json_body_bytes), 1, (long long)SIZE_LIMIT},
    {"allow_client_shm", KEY_BOOL, FIELD(allow_client_shm), 0, 1},
    {"client_shm_key_prefix", KEY_STRING, FIELD(client_shm_key_prefix), 1, 0},
    {"max_connections_per_ip", KEY_INT, FIELD(max_connections_per_ip), 0, 65536},
    {"header_timeout_s", KEY_INT, FIELD(header_timeout_s), 1, 86400},
    {"response_timeout_s", KEY_INT, FIELD(response_timeout_s), 1, 86400},
    {"fetch_enabled", KEY_BOOL, FIELD(fetch_enabled), 0, 1},
    {"fetch_allow_hosts", KEY_STRING, FIELD(fetch_allow_hosts), 1, 0},
    {"fetch_allow_private", KEY_BOOL, FIELD(fetch_allow_private), 0, 1},
    {"fetch_max_bytes", KEY_SIZE, FIELD(fetch_max_bytes), 1, (long long)SIZE_LIMIT},
    {"fetch_max_request_bytes", KEY_SIZE, FIELD(fetch_max_request_bytes), 1, (long long)SIZE_LIMIT},
    {"fetch_timeout_ms", KEY_INT, FIELD(fetch_timeout_ms), 1, 3600000},
    {"fetch_request_timeout_ms", KEY_INT, FIELD(fetch_request_timeout_ms), 1, 3600000},
    {"fetch_max_redirects", KEY_INT, FIELD(fetch_max_redirects), 0, 20},
    {"fetch_concurrency", KEY_INT, FIELD(fetch_concurrency), 1, 1024},
    {"cache_bytes", KEY_SIZE, FIELD(cache_bytes), 0, (long long)SIZE_LIMIT},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

static const char *const backend_names[] = {"auto", "cpu", "cuda"};
static const char *const log_level_names[] = {"debug", "info", "warn", "error"};
static const char *const gpu_decode_names[] = {"auto", "on", "off"};

void config_defaults(cp_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->host, sizeof cfg->host, "%s", "127.0.0.1");
    cfg->port = 8080;
    cfg->http_threads = 1;
    cfg->max_connections = 256;
    cfg->connection_timeout_s = 30;
    cfg->drain_timeout_s = 30;
    cfg->request_timeout_s = 60;
    cfg->unix_socket[0] = '\0';
    cfg->auth_token[0] = '\0';
    cfg->fast_min_factor = 2;
    cfg->cuda_ipc_bytes = 256 * MIB;
    snprintf(cfg->shm_name, sizeof cfg->shm_name, "%s", "/clipprep");
    cfg->shm_bytes = 64 * MIB;
    cfg->shm_slot_bytes = 4 * MIB;
    cfg->shm_lease_ttl_ms = 30000;
    snprintf(cfg->shm_mode, sizeof cfg->shm_mode, "%s", "0600");
    cfg->backend = BACKEND_AUTO;
    snprintf(cfg->cuda_sync, sizeof cfg->cuda_sync, "%s", "auto");
    cfg->cpu_workers = 0;
    cfg->max_batch_size = 32;
    cfg->max_queue_delay_us = 0;
    cfg->n_preferred_batch_sizes = 0;
    cfg->queue_capacity = 1024;
    cfg->staging_bytes = 512 * MIB;
    cfg->max_body_bytes = 64 * MIB;
    cfg->max_images_per_request = 256;
    cfg->max_pixels = 50000000;
    cfg->max_scans = 256;
    snprintf(cfg->profiles_dir, sizeof cfg->profiles_dir, "%s", "config/profiles");
    snprintf(cfg->default_profile, sizeof cfg->default_profile, "%s", "clip-224");
    snprintf(cfg->default_reference, sizeof cfg->default_reference, "%s", "transformers4");
    cfg->log_level = LOG_INFO;
    cfg->memory_budget_bytes = 1024 * MIB;
    cfg->max_json_output_bytes = 64 * MIB;
    cfg->max_request_pixels = 1000000000;
    cfg->max_json_body_bytes = 64 * 1024;
    cfg->allow_client_shm = false;
    cfg->client_shm_key_prefix[0] = '\0';
    cfg->max_connections_per_ip = 0;
    cfg->header_timeout_s = 10;
    cfg->response_timeout_s = 60;
    cfg->fetch_max_bytes = 16 * MIB;
    cfg->fetch_max_request_bytes = 64 * MIB;
    cfg->fetch_timeout_ms = 10000;
    cfg->fetch_request_timeout_ms = 30000;
    cfg->fetch_max_redirects = 3;
    cfg->fetch_concurrency = 8;
}

const char *backend_kind_name(backend_kind b)
{
    return (b >= BACKEND_AUTO && b <= BACKEND_CUDA) ? backend_names[b] : "unknown";
}

const char *log_level_name(log_level l)
{
    return (l >= LOG_DEBUG && l <= LOG_ERROR) ? log_level_names[l] : "unknown";
}

static const key_def *find_key(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].name, name) == 0) return &keys[i];
    return NULL;
}

/* "an integer 1..4096", "an integer >= 0" */
static void describe_range(const key_def *k, char *buf, size_t cap)
{
    const char *what = k->type == KEY_SIZE ? "a size in bytes (integer or string like \"64MiB\")"
                                           : "an integer";
    if (k->type == KEY_SIZE)
        snprintf(buf, cap, "%s of 1 byte .. 256 TiB", what);
    else
        snprintf(buf, cap, "%s %lld..%lld", what, k->min, k->max);
}

static int range_error(const key_def *k, const char *where, long long v, cp_error *err)
{
    char range[96];
    describe_range(k, range, sizeof range);
    return cp_fail(err, CP_ERR_CONFIG, "%s: expected %s, got %lld", where, range, v);
}

/* ---- string parsing (environment, flags) ------------------------------------------------ */

/* Strict integer: optional sign, digits, nothing else (no spaces, no "0x"). */
static bool parse_ll(const char *s, long long *out)
{
    if (!s || !(isdigit((unsigned char)s[0]) ||
                ((s[0] == '-' || s[0] == '+') && isdigit((unsigned char)s[1]))))
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

/* "4096", "64M", "64MiB", "1 G" (case-insensitive suffix; powers of 1024). Returns false on
 * syntax error; *overflow set when the value does not fit. */
static bool parse_size_string(const char *s, unsigned long long *out, bool *overflow)
{
    *overflow = false;
    if (!s || !isdigit((unsigned char)s[0])) return false;
    unsigned long long v = 0;
    const char *p = s;
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (ULLONG_MAX - d) / 10) *overflow = true;
        else v = v * 10 + d;
        p++;
    }
    while (*p == ' ') p++;
    unsigned shift = 0;
    if (*p) {
        switch (toupper((unsigned char)*p)) {
        case 'K': shift = 10; break;
        case 'M': shift = 20; break;
        case 'G': shift = 30; break;
        default: return false;
        }
        p++;
        if (strcasecmp(p, "iB") == 0) p += 2;
        if (*p) return false;
    }
    if (shift && v > (ULLONG_MAX >> shift)) *overflow = true;
    *out = v << shift;
    return true;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Stores a list of batch sizes sorted ascending with duplicates removed. */
static bool store_int_list(cp_config *cfg, const key_def *k, const char *where, const int *v,
                           int n, cp_error *err)
{
    if (n > CP_MAX_PREFERRED_BATCH)
        return cp_fail(err, CP_ERR_CONFIG, "%s: at most %d sizes allowed, got %d", where,
                       CP_MAX_PREFERRED_BATCH, n);
    int tmp[CP_MAX_PREFERRED_BATCH];
    for (int i = 0; i < n; i++) {
        if (v[i] < k->min || v[i] > k->max)
            return cp_fail(err, CP_ERR_CONFIG,
                           "%s: each batch size must be an integer %lld..%lld, got %d", where,
                           k->min, k->max, v[i]);
        tmp[i] = v[i];
    }
    qsort(tmp, (size_t)n, sizeof tmp[0], cmp_int);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || tmp[m - 1] != tmp[i]) tmp[m++] = tmp[i];
    memcpy(cfg->preferred_batch_sizes, tmp, (size_t)m * sizeof tmp[0]);
    cfg->n_preferred_batch_sizes = m;
    return true;
}

static bool store_string(cp_config *cfg, const key_def *k, const char *where, const char *v,
                         const char *base_dir, cp_error *err)
{
    char *dst = (char *)cfg + k->offset;
    if (!v[0] && k->min == 1) { /* optional key: empty turns the feature off */
        dst[0] = '\0';
        return true;
    }
    if (!v[0]) return cp_fail(err, CP_ERR_CONFIG, "%s: must not be empty", where);
    int n;
    if (k->type == KEY_PATH && base_dir && base_dir[0] && v[0] != '/' &&
        strcmp(base_dir, ".") != 0)
        n = snprintf(dst, k->cap, "%s%s%s", base_dir,
                     base_dir[strlen(base_dir) - 1] == '/' ? "" : "/", v);
    else
        n = snprintf(dst, k->cap, "%s", v);
    if (n < 0 || (size_t)n >= k->cap)
        return cp_fail(err, CP_ERR_CONFIG, "%s: too long (at most %zu characters)", where,
                       k->cap - 1);
    if (k->offset == offsetof(cp_config, default_profile)) {
        for (const char *p = v; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
                return cp_fail(err, CP_ERR_CONFIG,
                               "%s: a profile name uses only letters, digits, '-', '_', '.'",
                               where);
    }
    reference_id ref;
    if (k->offset == offsetof(cp_config, default_reference) && !reference_parse(v, &ref))
        return cp_fail(err, CP_ERR_CONFIG, "%s: expected one of %s, got \"%.40s\"", where,
                       reference_names_list(), v);
    return true;
}

static bool store_enum(cp_config *cfg, const key_def *k, const char *where, const char *v,
                       cp_error *err)
{
    const char *const *names = k->type == KEY_BACKEND ? backend_names
                               : k->type == KEY_GPU_DECODE ? gpu_decode_names : log_level_names;
    int count = k->type == KEY_LOG_LEVEL ? 4 : 3;
    for (int i = 0; i < count; i++) {
        if (strcmp(v, names[i]) == 0) {
            if (k->type == KEY_BACKEND) cfg->backend = (backend_kind)i;
            else if (k->type == KEY_GPU_DECODE) cfg->decode_on_gpu = (gpu_decode_mode)i;
            else cfg->log_level = (log_level)i;
            return true;
        }
    }
    if (k->type == KEY_GPU_DECODE)
        return cp_fail(err, CP_ERR_CONFIG, "%s: expected \"auto\", \"on\" or \"off\", got \"%.40s\"",
                       where, v);
    if (k->type == KEY_BACKEND)
        return cp_fail(err, CP_ERR_CONFIG, "%s: expected \"auto\", \"cpu\" or \"cuda\", got \"%.40s\"",
                       where, v);
    return cp_fail(err, CP_ERR_CONFIG,
                   "%s: expected \"debug\", \"info\", \"warn\" or \"error\", got \"%.40s\"", where, v);
}

static bool store_integer(cp_config *cfg, const key_def *k, const char *where, long long v,
                          cp_error *err)
{
    if (v < k->min || v > k->max) return range_error(k, where, v, err);
    void *dst = (char *)cfg + k->offset;
    switch (k->type) {
    case KEY_INT: *(int *)dst = (int)v; break;
    case KEY_LLONG: *(long long *)dst = v; break;
    case KEY_SIZE: *(size_t *)dst = (size_t)v; break;
    default: return cp_fail(err, CP_ERR_INTERNAL, "%s: not an integer key", where);
    }
    return true;
}

/* One key from a string (environment or flag); `where` names it in messages. */
static bool apply_string(cp_config *cfg, const key_def *k, const char *where, const char *v,
                         cp_error *err)
{
    switch (k->type) {
    case KEY_STRING:
    case KEY_PATH: return store_string(cfg, k, where, v, NULL, err);
    case KEY_BACKEND:
    case KEY_LOG_LEVEL:
    case KEY_GPU_DECODE: return store_enum(cfg, k, where, v, err);
    case KEY_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "false") || !strcmp(v, "0")) {
            *(bool *)((char *)cfg + k->offset) = v[0] == 't' || v[0] == '1';
            return true;
        }
        return cp_fail(err, CP_ERR_CONFIG, "%s: expected true or false, got \"%.40s\"", where, v);
    case KEY_INT:
    case KEY_LLONG: {
        long long x;
        if (!parse_ll(v, &x)) {
            char range[96];
            describe_range(k, range, sizeof range);
            return cp_fail(err, CP_ERR_CONFIG, "%s: expected %s, got \"%.40s\"", where, range, v);
        }
        return store_integer(cfg, k, where, x, err);
    }
    case KEY_SIZE: {
        unsigned long long x;
        bool overflow;
        if (!parse_size_string(v, &x, &overflow))
            return cp_fail(err, CP_ERR_CONFIG,
                           "%s: expected a size in bytes such as 4096, \"64M\" or \"64MiB\" "
                           "(suffixes K, M, G, KiB, MiB, GiB), got \"%.40s\"",
                           where, v);
        if (overflow || x > SIZE_LIMIT)
            return cp_fail(err, CP_ERR_CONFIG, "%s: size \"%.40s\" is too large (max 256 TiB)",
                           where, v);
        return store_integer(cfg, k, where, (long long)x, err);
    }
    case KEY_INT_LIST: {
        /* "4,8,16"; spaces around items allowed; "" = empty list */
        int vals[CP_MAX_PREFERRED_BATCH + 1];
        int n = 0;
        const char *p = v;
        while (*p == ' ') p++;
        if (*p) {
            for (;;) {
                while (*p == ' ') p++;
                char item[32];
                size_t len = 0;
                while (*p && *p != ',' && *p != ' ') {
                    if (len + 1 < sizeof item) item[len] = *p;
                    len++;
                    p++;
                }
                while (*p == ' ') p++;
                long long x;
                if (len == 0 || len >= sizeof item || (item[len] = 0, !parse_ll(item, &x)) ||
                    (*p && *p != ','))
                    return cp_fail(err, CP_ERR_CONFIG,
                                   "%s: expected a comma-separated list of integers such as "
                                   "\"4,8,16\", got \"%.40s\"",
                                   where, v);
                if (n > CP_MAX_PREFERRED_BATCH)
                    return cp_fail(err, CP_ERR_CONFIG, "%s: at most %d sizes allowed", where,
                                   CP_MAX_PREFERRED_BATCH);
                vals[n++] = x < INT_MIN ? INT_MIN : x > INT_MAX ? INT_MAX : (int)x;
                if (!*p) break;
                p++; /* ',' */
            }
        }
        return store_int_list(cfg, k, where, vals, n, err);
    }
    }
    return cp_fail(err, CP_ERR_INTERNAL, "%s: unhandled key type", where);
}

bool config_apply_string(cp_config *cfg, const char *key, const char *value, cp_error *err)
{
    const key_def *k = key ? find_key(key) : NULL;
    if (!k) return cp_fail(err, CP_ERR_CONFIG, "unknown configuration key \"%.60s\"", key ? key : "");
    char where[96];
    snprintf(where, sizeof where, "key \"%s\"", k->name);
    return apply_string(cfg, k, where, value ? value : "", err);
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static const char *json_type_name(const cJSON *j)
{
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    return "an invalid value";
}

/* A JSON number that is an exact integer in [-2^53, 2^53]. */
static bool json_integer(const cJSON *j, long long *out)
{
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0) return false;
    *out = (long long)d;
    return true;
}

static bool apply_json_value(cp_config *cfg, const key_def *k, const cJSON *j, const char *where,
                             const char *base_dir, cp_error *err)
{
    switch (k->type) {
    case KEY_STRING:
    case KEY_PATH:
    case KEY_BACKEND:
    case KEY_LOG_LEVEL:
    case KEY_GPU_DECODE:
        if (!cJSON_IsString(j))
            return cp_fail(err, CP_ERR_CONFIG, "%s: expected a string, got %s", where,
                           json_type_name(j));
        if (k->type == KEY_STRING || k->type == KEY_PATH)
            return store_string(cfg, k, where, j->valuestring, base_dir, err);
        return store_enum(cfg, k, where, j->valuestring, err);
    case KEY_BOOL:
        if (!cJSON_IsBool(j))
            return cp_fail(err, CP_ERR_CONFIG, "%s: expected true or false, got %s", where,
                           json_type_name(j));
        *(bool *)((char *)cfg + k->offset) = cJSON_IsTrue(j);
        return true;
    case KEY_INT:
    case KEY_LLONG:
    case KEY_SIZE: {
        if (k->type == KEY_SIZE && cJSON_IsString(j)) return apply_string(cfg, k, where, j->valuestring, err);
        long long x;
        if (!json_integer(j, &x)) {
            char range[96];
            describe_range(k, range, sizeof range);
            if (cJSON_IsNumber(j))
                return cp_fail(err, CP_ERR_CONFIG, "%s: expected %s, got %g", where, range,
                               j->valuedouble);
            return cp_fail(err, CP_ERR_CONFIG, "%s: expected %s, got %s", where, range,
                           json_type_name(j));
        }
        return store_integer(cfg, k, where, x, err);
    }
    case KEY_INT_LIST: {
        if (!cJSON_IsArray(j))
            return cp_fail(err, CP_ERR_CONFIG, "%s: expected an array of integers, got %s",
                           where, json_type_name(j));
        int n = cJSON_GetArraySize(j);
        if (n > CP_MAX_PREFERRED_BATCH)
            return cp_fail(err, CP_ERR_CONFIG, "%s: at most %d sizes allowed, got %d", where,
                           CP_MAX_PREFERRED_BATCH, n);
        int vals[CP_MAX_PREFERRED_BATCH];
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, j)
        {
            long long x;
            if (!json_integer(e, &x))
                return cp_fail(err, CP_ERR_CONFIG,
                               "%s: element %d: expected an integer, got %s", where, i,
                               json_type_name(e));
            vals[i++] = x < INT_MIN ? INT_MIN : x > INT_MAX ? INT_MAX : (int)x;
        }
        return store_int_list(cfg, k, where, vals, i, err);
    }
    }
    return cp_fail(err, CP_ERR_INTERNAL, "%s: unhandled key type", where);
}

/* 1-based line and column of offset `off` in text. */
static void line_col(const char *text, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && text[i]; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

bool config_apply_json_text(cp_config *cfg, const char *json_text, const char *base_dir,
                            cp_error *err)
{
    if (!json_text) return cp_fail(err, CP_ERR_CONFIG, "no JSON text");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json_text, &end, true);
    if (!root) {
        int line, col;
        size_t off = end && end >= json_text ? (size_t)(end - json_text) : 0;
        line_col(json_text, off, &line, &col);
        return cp_fail(err, CP_ERR_CONFIG, "invalid JSON at line %d, column %d", line, col);
    }
    bool ok = true;
    if (!cJSON_IsObject(root)) {
        ok = cp_fail(err, CP_ERR_CONFIG, "the top level must be a JSON object, got %s",
                     json_type_name(root));
        goto done;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        const char *name = item->string ? item->string : "";
        const key_def *k = find_key(name);
        if (!k) {
            ok = cp_fail(err, CP_ERR_CONFIG, "unknown key \"%.60s\"", name);
            goto done;
        }
        for (const cJSON *prev = root->child; prev != item; prev = prev->next) {
            if (prev->string && strcmp(prev->string, name) == 0) {
                ok = cp_fail(err, CP_ERR_CONFIG, "duplicate key \"%s\"", name);
                goto done;
            }
        }
        char where[96];
        snprintf(where, sizeof where, "key \"%s\"", k->name);
        if (!apply_json_value(cfg, k, item, where, base_dir, err)) {
            ok = false;
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    return ok;
}

/* ---- cross-key validation ------------------------------------------------------------------ */

/* cuda_devices: "", "all" or distinct device numbers 0..63 separated by commas; cuda_sync: one
 * of four words. (Whether a device exists is checked when the CUDA backend starts.) */
static bool validate_cuda_keys(const cp_config *cfg, cp_error *err)
{
    const char *s = cfg->cuda_devices;
    if (s[0] && strcmp(s, "all")) {
        bool seen[64] = {false};
        for (const char *p = s;;) {
            int d = 0, digits = 0;
            while (isdigit((unsigned char)*p) && digits < 3)
                d = d * 10 + (*p++ - '0'), digits++;
            if (!digits || d > 63 || seen[d] || (*p && *p != ','))
                return cp_fail(err, CP_ERR_CONFIG,
                               "cuda_devices: expected \"all\" or distinct CUDA device numbers "
                               "0..63 separated by commas such as \"0,2\", got \"%.40s\"", s);
            seen[d] = true;
            if (!*p)
                break;
            p++;
        }
    }
    static const char *const syncs[] = {"auto", "spin", "yield", "blocking"};
    for (size_t i = 0; i < sizeof syncs / sizeof syncs[0]; i++)
        if (!strcmp(cfg->cuda_sync, syncs[i]))
            return true;
    return cp_fail(err, CP_ERR_CONFIG, "cuda_sync: expected \"auto\", \"spin\", \"yield\" or "
                   "\"blocking\", got \"%.40s\"", cfg->cuda_sync);
}

bool config_validate(const cp_config *cfg, cp_error *err)
{
    for (int i = 0; i < cfg->n_preferred_batch_sizes; i++) {
        if (cfg->preferred_batch_sizes[i] < 1 ||
            cfg->preferred_batch_sizes[i] > cfg->max_batch_size)
            return cp_fail(err, CP_ERR_CONFIG,
                           "preferred_batch_sizes: %d is outside 1..max_batch_size (%d)",
                           cfg->preferred_batch_sizes[i], cfg->max_batch_size);
    }
    if (cfg->decode_on_gpu == GPU_DECODE_ON && cfg->backend == BACKEND_CPU)
        return cp_fail(err, CP_ERR_CONFIG,
                       "decode_on_gpu: \"on\" needs the CUDA backend, but backend is \"cpu\" "
                       "(use \"auto\" or \"off\")");
    if (cfg->max_pixels < 1 || cfg->max_pixels > MAX_PIXELS_LIMIT)
        return cp_fail(err, CP_ERR_CONFIG, "max_pixels: expected 1..%lld, got %lld",
                       MAX_PIXELS_LIMIT, cfg->max_pixels);
    unsigned long long need = 3ULL * (unsigned long long)cfg->max_pixels + MIB;
    if ((unsigned long long)cfg->staging_bytes < need)
        return cp_fail(err, CP_ERR_CONFIG,
                       "staging_bytes (%zu) must be at least 3*max_pixels + 1 MiB margin = %llu "
                       "bytes so that one largest decoded RGB image fits; raise staging_bytes "
                       "or lower max_pixels",
                       cfg->staging_bytes, need);
    if (cfg->max_body_bytes == 0)
        return cp_fail(err, CP_ERR_CONFIG, "max_body_bytes: must be > 0");
    return validate_cuda_keys(cfg, err);
}

/* ---- files, environment, flags ------------------------------------------------------------ */

static bool read_text_file(const char *path, char **out, cp_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cp_fail(err, CP_ERR_CONFIG, "cannot open config file %s: %s", path,
                       strerror(errno));
    char *buf = malloc(CONFIG_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return cp_fail(err, CP_ERR_CONFIG, "out of memory reading %s", path);
    }
    size_t n = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
    bool rd_err = ferror(f);
    fclose(f);
    if (rd_err) {
        free(buf);
        return cp_fail(err, CP_ERR_CONFIG, "cannot read config file %s", path);
    }
    if (n > CONFIG_FILE_MAX) {
        free(buf);
        return cp_fail(err, CP_ERR_CONFIG, "config file %s is larger than 1 MiB", path);
    }
    if (memchr(buf, 0, n)) {
        free(buf);
        return cp_fail(err, CP_ERR_CONFIG, "config file %s contains a NUL byte", path);
    }
    buf[n] = 0;
    *out = buf;
    return true;
}

/* Prefixes err->message with "prefix: ". */
static int prefix_error(cp_error *err, const char *prefix)
{
    if (err) {
        char tmp[sizeof err->message];
        snprintf(tmp, sizeof tmp, "%s", err->message);
        cp_fail(err, err->status, "%s: %s", prefix, tmp);
    }
    return 0;
}

static bool load_file(cp_config *cfg, const char *path, cp_error *err)
{
    char *text = NULL;
    if (!read_text_file(path, &text, err)) return false;
    char dir[sizeof cfg->profiles_dir];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    bool ok = config_apply_json_text(cfg, text, dir, err);
    free(text);
    if (!ok) {
        char prefix[160];
        snprintf(prefix, sizeof prefix, "config file %.120s", path);
        return prefix_error(err, prefix);
    }
    return true;
}

/* CLIPPREP_MAX_BATCH_SIZE -> key "max_batch_size"; false when the suffix has characters a key
 * cannot have (lower-case letters included: the variables are upper case). */
static const key_def *env_key(const char *suffix, size_t len)
{
    char name[64];
    if (len == 0 || len >= sizeof name) return NULL;
    for (size_t i = 0; i < len; i++) {
        char c = suffix[i];
        if (!(isupper((unsigned char)c) || isdigit((unsigned char)c) || c == '_')) return NULL;
        name[i] = (char)tolower((unsigned char)c);
    }
    name[len] = 0;
    return find_key(name);
}

typedef struct {
    const char *flag;
    const char *key; /* NULL: handled specially */
} flag_def;

static const flag_def flags[] = {
    {"--config", NULL}, {"--host", "host"}, {"--port", "port"},
    {"--backend", "backend"}, {"--log-level", "log_level"},
};
#define N_FLAGS (sizeof flags / sizeof flags[0])

bool config_load(cp_config *cfg, int argc, char **argv, char **envp, bool *want_help,
                 bool *want_version, cp_error *err)
{
    bool help = false, version = false;
    config_defaults(cfg);

    /* 1. flags: parse them all first (they are applied last) */
    const char *config_path = NULL;
    const char *flag_val[N_FLAGS] = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help = true;
            break;
        }
        if (strcmp(a, "--version") == 0) {
            version = true;
            break;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == 0)
            return cp_fail(err, CP_ERR_CONFIG, "unexpected argument \"%.60s\" (see --help)", a);
        const char *eq = strchr(a, '=');
        size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
        const flag_def *f = NULL;
        size_t fi = 0;
        for (; fi < N_FLAGS; fi++) {
            if (strlen(flags[fi].flag) == name_len && strncmp(flags[fi].flag, a, name_len) == 0) {
                f = &flags[fi];
                break;
            }
        }
        if (!f)
            return cp_fail(err, CP_ERR_CONFIG, "unknown flag \"%.*s\" (see --help)",
                           (int)(name_len > 60 ? 60 : name_len), a);
        const char *val;
        if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc)
                return cp_fail(err, CP_ERR_CONFIG, "flag %s needs a value", f->flag);
            val = argv[++i];
        }
        flag_val[fi] = val;
        if (!f->key) config_path = val;
    }
    if (want_help) *want_help = help;
    if (want_version) *want_version = version;
    if (help || version) return true;

    /* 2. environment: check names, find CLIPPREP_CONFIG */
    extern char **environ;
    char **env = envp ? envp : environ;
    const char *env_config = NULL;
    for (char **e = env; e && *e; e++) {
        if (strncmp(*e, ENV_PREFIX, strlen(ENV_PREFIX)) != 0) continue;
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        const char *suffix = *e + strlen(ENV_PREFIX);
        size_t len = (size_t)(eq - suffix);
        if (len == 6 && strncmp(suffix, "CONFIG", 6) == 0) {
            env_config = eq + 1;
            continue;
        }
#ifdef CLIPPREP_CUDA_EMULATION
        if (len > 4 && strncmp(suffix, "EMU_", 4) == 0)
            continue; /* the emulated engine's fault injection (kernels/emu_faults.h) */
#endif
        if (!env_key(suffix, len))
            return cp_fail(err, CP_ERR_CONFIG,
                           "unknown environment variable %.*s (see docs/configuration.md)",
                           (int)((size_t)(eq - *e) > 80 ? 80 : (size_t)(eq - *e)), *e);
    }

    /* 3. the file */
    if (config_path) {
        if (!config_path[0])
            return cp_fail(err, CP_ERR_CONFIG, "flag --config: the file name is empty");
        if (!load_file(cfg, config_path, err)) return false;
    } else if (env_config && env_config[0]) {
        if (!load_file(cfg, env_config, err)) return false;
    }

    /* 4. environment values */
    for (char **e = env; e && *e; e++) {
        if (strncmp(*e, ENV_PREFIX, strlen(ENV_PREFIX)) != 0) continue;
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        const char *suffix = *e + strlen(ENV_PREFIX);
        size_t len = (size_t)(eq - suffix);
        if (len == 6 && strncmp(suffix, "CONFIG", 6) == 0) continue;
#ifdef CLIPPREP_CUDA_EMULATION
        if (len > 4 && strncmp(suffix, "EMU_", 4) == 0) continue;
#endif
        const key_def *k = env_key(suffix, len);
        if (!k) continue; /* cannot happen: checked above */
        char where[96];
        snprintf(where, sizeof where, "environment variable %.*s", (int)(eq - *e), *e);
        if (!apply_string(cfg, k, where, eq + 1, err)) return false;
    }

    /* 5. flags */
    for (size_t fi = 0; fi < N_FLAGS; fi++) {
        if (!flag_val[fi] || !flags[fi].key) continue;
        char where[64];
        snprintf(where, sizeof where, "flag %s", flags[fi].flag);
        if (!apply_string(cfg, find_key(flags[fi].key), where, flag_val[fi], err)) return false;
    }

    return config_validate(cfg, err);
}

void *config_to_cjson(const cp_config *cfg)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_def *k = &keys[i];
        const void *src = (const char *)cfg + k->offset;
        cJSON *v = NULL;
        switch (k->type) {
        case KEY_STRING:
        case KEY_PATH: v = cJSON_CreateString((const char *)src); break;
        case KEY_INT: v = cJSON_CreateNumber(*(const int *)src); break;
        case KEY_LLONG: v = cJSON_CreateNumber((double)*(const long long *)src); break;
        case KEY_SIZE: v = cJSON_CreateNumber((double)*(const size_t *)src); break;
        case KEY_BACKEND: v = cJSON_CreateString(backend_kind_name(cfg->backend)); break;
        case KEY_LOG_LEVEL: v = cJSON_CreateString(log_level_name(cfg->log_level)); break;
        case KEY_GPU_DECODE: v = cJSON_CreateString(gpu_decode_names[cfg->decode_on_gpu]); break;
        case KEY_BOOL: v = cJSON_CreateBool(*(const bool *)src); break;
        case KEY_INT_LIST:
            v = cJSON_CreateIntArray(cfg->preferred_batch_sizes, cfg->n_preferred_batch_sizes);
            break;
        }
        if (!v || !cJSON_AddItemToObject(o, k->name, v)) {
            cJSON_Delete(v);
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

void config_print_help(const char *argv0)
{
    const char *prog = argv0 && argv0[0] ? argv0 : "clipprepd";
    printf("Usage: %s [--config FILE] [--host H] [--port N] [--backend auto|cpu|cuda]\n"
           "       %*s [--log-level debug|info|warn|error]\n"
           "       %s --help | --version\n"
           "\n"
           "clipprepd %s: decodes, resizes, crops and normalises images for CLIP-family\n"
           "models exactly as their reference preprocessing does, over HTTP.\n"
           "\n"
           "Options (--flag VALUE and --flag=VALUE are both accepted):\n"
           "  --config FILE       JSON configuration file (default: none; env CLIPPREP_CONFIG)\n"
           "  --host H            address to listen on (default 127.0.0.1)\n"
           "  --port N            TCP port, 0..65535; 0 picks a free port (default 8080)\n"
           "  --backend B         auto, cpu or cuda (default auto)\n"
           "  --log-level L       debug, info, warn or error (default info)\n"
           "  -h, --help          print this help and exit\n"
           "  --version           print the version and exit\n"
           "\n"
           "Every configuration key can also be set in the file or as an environment variable\n"
           "CLIPPREP_<KEY> (upper case), e.g. CLIPPREP_MAX_BATCH_SIZE=16.\n"
           "Precedence: defaults < config file < environment < flags.\n"
           "All keys, defaults and validation rules: docs/configuration.md\n",
           prog, (int)strlen(prog), "", prog, CLIPPREP_VERSION);
}
