/* fetch.c — the URL fetch pool and its SSRF policy (see fetch.h). Each thread owns one curl
 * handle; a fetch is one or more requests (redirect hops), each checked before it is made. */
#include "fetch.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "job.h"
#include "metrics.h"

#define MAX_URL_LEN 4096

struct fetcher {
    const cp_config *cfg;
    offload *pool; /* fetch_concurrency threads, each with its own libcurl handle */
};

/* ---- policy --------------------------------------------------------------------------- */

static address_class classify_v4(uint32_t a)
{
    uint8_t b0 = (uint8_t)(a >> 24), b1 = (uint8_t)(a >> 16);
    if (b0 == 0)
        return ADDR_FORBIDDEN;                    /* 0.0.0.0/8: "this host" */
    if (a == 0xa9fea9feu)
        return ADDR_FORBIDDEN;                    /* 169.254.169.254: cloud metadata */
    if (b0 >= 224)
        return ADDR_FORBIDDEN;                    /* multicast, reserved, broadcast */
    if (b0 == 127 || b0 == 10 || (b0 == 172 && (b1 & 0xf0) == 16) || (b0 == 192 && b1 == 168))
        return ADDR_PRIVATE;                      /* loopback, RFC 1918 */
    if (b0 == 169 && b1 == 254)
        return ADDR_PRIVATE;                      /* link-local */
    if (b0 == 100 && (b1 & 0xc0) == 64)
        return ADDR_PRIVATE;                      /* 100.64/10 carrier-grade NAT */
    if ((b0 == 192 && b1 == 0 && (uint8_t)(a >> 8) == 0) || (b0 == 198 && (b1 & 0xfe) == 18))
        return ADDR_PRIVATE;                      /* 192.0.0/24, 198.18/15 */
    return ADDR_PUBLIC;
}

address_class fetch_classify_address(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return classify_v4(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family != AF_INET6)
        return ADDR_FORBIDDEN;
    const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const uint8_t zero[16] = {0};
    static const uint8_t metadata[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0,
                                         0,    0,    0,    0,    0, 0, 0x02, 0x54};
    uint32_t v4 = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
    if (!memcmp(b, zero, 15) && b[15] <= 1)
        return b[15] == 1 ? ADDR_PRIVATE : ADDR_FORBIDDEN; /* ::1, :: */
    if (!memcmp(b, metadata, 16))
        return ADDR_FORBIDDEN;
    /* IPv4 inside IPv6: mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64 64:ff9b::/96 */
    if ((!memcmp(b, zero, 10) && b[10] == 0xff && b[11] == 0xff) || !memcmp(b, zero, 12) ||
        (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && !memcmp(b + 4, zero, 8)))
        return classify_v4(v4);
    if (b[0] == 0xff)
        return ADDR_FORBIDDEN;                    /* multicast */
    if ((b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0x80) == 0x80))
        return ADDR_PRIVATE;                      /* fc00::/7, fe80::/10 and fec0::/10 */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
        return ADDR_PRIVATE;                      /* 2001:db8::/32 documentation */
    return ADDR_PUBLIC;
}

/* Calls fn on each entry of a comma/space separated list; stops when fn returns true. */
static bool each_entry(const char *list, bool (*fn)(const char *e, size_t n, void *ctx), void *ctx)
{
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *s = p;
        while (*p && *p != ',' && *p != ' ')
            p++;
        if (p > s && fn(s, (size_t)(p - s), ctx))
            return true;
    }
    return false;
}

static bool entry_matches(const char *e, size_t n, void *ctx)
{
    const char *host = ctx;
    size_t h = strlen(host);
    if (n > 2 && e[0] == '*' && e[1] == '.') /* "*.example.com": any subdomain, any depth */
        return h > n - 1 && strncasecmp(host + h - (n - 1), e + 1, n - 1) == 0;
    return h == n && strncasecmp(host, e, n) == 0;
}

bool fetch_host_allowed(const char *host, const char *allow_list)
{
    if (!allow_list || !allow_list[0])
        return true;
    return each_entry(allow_list, entry_matches, (void *)host);
}

static bool entry_invalid(const char *e, size_t n, void *ctx)
{
    (void)ctx;
    size_t i = 0;
    if (n > 2 && e[0] == '*' && e[1] == '.')
        i = 2;
    for (; i < n; i++)
        if (!isalnum((unsigned char)e[i]) && e[i] != '.' && e[i] != '-' && e[i] != ':' &&
            e[i] != '[' && e[i] != ']')
            return true;
    return false;
}

bool fetch_allow_list_valid(const char *allow_list, cp_error *err)
{
    if (each_entry(allow_list, entry_invalid, NULL))
        return cp_fail(err, CP_ERR_CONFIG,
                       "fetch_allow_hosts: entries are host names (\"images.example.com\") or "
                       "\"*.example.com\", separated by commas");
    return true;
}

/* ---- one fetch ------------------------------------------------------------------------- */

typedef struct {
    const cp_config *cfg;
    fetch_task *t;
    size_t cap;          /* buffer capacity */
    bool too_large;      /* over fetch_max_bytes */
    bool request_too_large; /* over fetch_max_request_bytes (with the request's other fetches) */
    bool refused;        /* an address failed the policy */
    char refused_addr[INET6_ADDRSTRLEN];
} fetch_state;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    fetch_state *s = userdata;
    fetch_task *t = s->t;
    size_t n = size * nmemb;
    if (t->len + n > s->cfg->fetch_max_bytes) {
        s->too_large = true;
        return 0;
    }
    if (t->request_bytes &&
        atomic_fetch_add(t->request_bytes, n) + n > s->cfg->fetch_max_request_bytes) {
        s->request_too_large = true;
        return 0;
    }
    if (t->len + n > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 65536;
        while (cap < t->len + n)
            cap *= 2;
        if (cap > s->cfg->fetch_max_bytes)
            cap = s->cfg->fetch_max_bytes;
        uint8_t *d = realloc(t->data, cap);
        if (!d)
            return 0;
        t->data = d;
        s->cap = cap;
    }
    memcpy(t->data + t->len, ptr, n);
    t->len += n;
    return n;
}

/* The check on the resolved address: libcurl calls this for every connection it opens. */
static curl_socket_t open_checked_socket(void *clientp, curlsocktype purpose,
                                         struct curl_sockaddr *a)
{
    fetch_state *s = clientp;
    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    address_class c = fetch_classify_address(&a->addr);
    if (c == ADDR_FORBIDDEN || (c == ADDR_PRIVATE && !s->cfg->fetch_allow_private)) {
        s->refused = true;
        const void *raw = a->family == AF_INET6
                              ? (const void *)&((struct sockaddr_in6 *)&a->addr)->sin6_addr
                              : (const void *)&((struct sockaddr_in *)&a->addr)->sin_addr;
        inet_ntop(a->family, raw, s->refused_addr, sizeof s->refused_addr);
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

/* Scheme and host allowed? Fills host (for messages). */
static bool check_url(const cp_config *cfg, const char *url, char *host, size_t host_cap,
                      cp_error *err)
{
    host[0] = '\0';
    if (strlen(url) > MAX_URL_LEN)
        return cp_fail(err, CP_ERR_FETCH_REFUSED, "URL longer than %d characters", MAX_URL_LEN);
    CURLU *u = curl_url();
    if (!u)
        return cp_fail(err, CP_ERR_OVERLOADED, "out of memory");
    char *scheme = NULL, *h = NULL;
    bool ok = false;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK) {
        cp_fail(err, CP_ERR_FETCH_REFUSED, "not a valid URL");
    } else if (strcasecmp(scheme, "http") && strcasecmp(scheme, "https")) {
        cp_fail(err, CP_ERR_FETCH_REFUSED, "scheme '%.20s' refused: only http and https", scheme);
    } else {
        snprintf(host, host_cap, "%s", h);
        if (!fetch_host_allowed(h, cfg->fetch_allow_hosts))
            cp_fail(err, CP_ERR_FETCH_REFUSED, "host '%.100s' is not in fetch_allow_hosts", h);
        else
            ok = true;
    }
    curl_free(scheme);
    curl_free(h);
    curl_url_cleanup(u);
    return ok;
}

static long remaining_ms(uint64_t deadline_ns)
{
    uint64_t now = monotonic_ns();
    return now >= deadline_ns ? 0 : (long)((deadline_ns - now) / 1000000u);
}

static void fetch_one(CURL *curl, const cp_config *cfg, fetch_task *t)
{
    fetch_state s = {.cfg = cfg, .t = t};
    uint64_t deadline = monotonic_ns() + (uint64_t)cfg->fetch_timeout_ms * 1000000u;
    bool request_deadline = t->deadline_ns < deadline;
    if (request_deadline)
        deadline = t->deadline_ns;
    char *url = strdup(t->url);
    char host[256];
    for (int hop = 0; url; hop++) {
        if (!check_url(cfg, url, host, sizeof host, &t->err))
            goto fail;
        long ms = remaining_ms(deadline);
        if (ms <= 0) {
            cp_fail(&t->err, CP_ERR_FETCH_TIMEOUT, "fetch of %.100s ran out of time (%s)", host,
                    request_deadline ? "fetch_request_timeout_ms" : "fetch_timeout_ms");
            goto fail;
        }
        curl_easy_reset(curl);
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L); /* each hop is checked here */
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_PROXY, "");          /* never from the environment */
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, ms);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, ms);
        curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cfg->fetch_max_bytes);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
        curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_checked_socket);
        curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &s);
        curl_easy_setopt(curl, CURLOPT_USERAGENT, "clipprepd/" CLIPPREP_VERSION);
        t->len = 0;
        CURLcode rc = curl_easy_perform(curl);
        if (s.refused) {
            cp_fail(&t->err, CP_ERR_FETCH_REFUSED,
                    "host '%.100s' resolves to %s, a %s address (fetch_allow_private)", host,
                    s.refused_addr, "private, loopback, link-local or reserved");
            goto fail;
        }
        if (s.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
            cp_fail(&t->err, CP_ERR_FETCH_TOO_LARGE, "body of %.100s is over %zu bytes "
                    "(fetch_max_bytes)", host, cfg->fetch_max_bytes);
            goto fail;
        }
        if (s.request_too_large) {
            cp_fail(&t->err, CP_ERR_FETCH_TOO_LARGE, "the request's fetched bytes are over %zu "
                    "(fetch_max_request_bytes)", cfg->fetch_max_request_bytes);
            goto fail;
        }
        if (rc == CURLE_OPERATION_TIMEDOUT) {
            cp_fail(&t->err, CP_ERR_FETCH_TIMEOUT, "fetch of %.100s timed out (%s)", host,
                    request_deadline ? "fetch_request_timeout_ms" : "fetch_timeout_ms");
            goto fail;
        }
        if (rc != CURLE_OK) {
            cp_fail(&t->err, CP_ERR_FETCH_FAILED, "fetch of %.100s failed: %s", host,
                    curl_easy_strerror(rc));
            goto fail;
        }
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 300 && status < 400) {
            char *next = NULL;
            curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &next);
            if (!next) {
                cp_fail(&t->err, CP_ERR_FETCH_FAILED, "HTTP %ld from %.100s without a Location",
                        status, host);
                goto fail;
            }
            if (hop >= cfg->fetch_max_redirects) {
                cp_fail(&t->err, CP_ERR_FETCH_FAILED, "more than %d redirects "
                        "(fetch_max_redirects)", cfg->fetch_max_redirects);
                goto fail;
            }
            char *copy = strdup(next);
            free(url);
            url = copy;
            continue;
        }
        if (status < 200 || status >= 300) {
            cp_fail(&t->err, CP_ERR_FETCH_FAILED, "HTTP %ld from %.100s", status, host);
            goto fail;
        }
        if (t->len == 0) {
            cp_fail(&t->err, CP_ERR_FETCH_FAILED, "empty body from %.100s", host);
            goto fail;
        }
        free(url);
        t->ok = true;
        return;
    }
    cp_fail(&t->err, CP_ERR_OVERLOADED, "out of memory");
fail:
    free(url);
    free(t->data);
    t->data = NULL;
    t->len = 0;
    t->ok = false;
}

/* ---- the pool ---------------------------------------------------------------------------- */

static void *curl_for_thread(void) { return curl_easy_init(); }
static void curl_for_thread_free(void *curl) { if (curl) curl_easy_cleanup(curl); }

/* On a pool thread: one fetch with that thread's libcurl handle. */
static void fetch_run(offload_task *pt, void *curl)
{
    fetch_task *t = (fetch_task *)((char *)pt - offsetof(fetch_task, pool_task));
    uint64_t t0 = monotonic_ns();
    if (curl) {
        fetch_one(curl, t->fetcher->cfg, t);
    } else {
        t->ok = false;
        cp_fail(&t->err, CP_ERR_OVERLOADED, "cannot start a fetch (libcurl)");
    }
    metrics_observe_ns(HIST_FETCH_SECONDS, monotonic_ns() - t0);
    metrics_count_fetch(t->ok ? "ok" : cp_status_code_name(t->err.status));
    t->done(t);
}

fetcher *fetcher_create(const cp_config *cfg, cp_error *err)
{
    if (!fetch_allow_list_valid(cfg->fetch_allow_hosts, err))
        return NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        cp_fail(err, CP_ERR_CONFIG, "fetch_enabled: libcurl failed to initialise");
        return NULL;
    }
    fetcher *f = calloc(1, sizeof *f);
    if (!f) {
        curl_global_cleanup();
        cp_fail(err, CP_ERR_CONFIG, "out of memory");
        return NULL;
    }
    f->cfg = cfg;
    f->pool = offload_create(cfg->fetch_concurrency, curl_for_thread, curl_for_thread_free);
    if (!f->pool) {
        fetcher_destroy(f);
        cp_fail(err, CP_ERR_CONFIG, "fetch_enabled: cannot start fetch threads");
        return NULL;
    }
    return f;
}

void fetcher_destroy(fetcher *f)
{
    if (!f)
        return;
    offload_destroy(f->pool); /* queued fetches run first (each within its time caps) */
    free(f);
    curl_global_cleanup();
}

void fetcher_submit(fetcher *f, fetch_task *t)
{
    t->fetcher = f;
    t->pool_task.run = fetch_run;
    offload_submit(f->pool, &t->pool_task);
}
