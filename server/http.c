/* http.c — libmicrohttpd glue: daemon start/stop, routing, the small GET routes, the access
 * log. /v1/preprocess lives in preprocess_route.c. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn_deadlines.h"
#include "http_util.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "shm_pool.h"

const normalize_table *server_table_for(const server_ctx *srv, const profile *p, reference_id ref)
{
    return &srv->tables[(p - srv->profiles.items) * REF_COUNT + ref];
}

static route_id route_for(const char *url)
{
    if (!strcmp(url, "/healthz"))
        return ROUTE_HEALTHZ;
    if (!strcmp(url, "/readyz"))
        return ROUTE_READYZ;
    if (!strcmp(url, "/v1/profiles"))
        return ROUTE_PROFILES;
    if (!strcmp(url, "/v1/preprocess"))
        return ROUTE_PREPROCESS;
    if (!strcmp(url, "/v1/plan"))
        return ROUTE_PLAN;
    if (!strcmp(url, "/metrics"))
        return ROUTE_METRICS;
    if (!strcmp(url, "/v1/shm"))
        return ROUTE_SHM;
    if (!strncmp(url, "/v1/leases/", 11) && url[11])
        return ROUTE_LEASE;
    if (!strcmp(url, "/v2") || !strncmp(url, "/v2/", 4))
        return ROUTE_V2;
    return ROUTE_NOT_FOUND;
}

static const char *route_name(route_id r)
{
    static const char *names[] = {"other", "/healthz", "/readyz", "/v1/profiles",
                                  "/v1/preprocess", "/metrics", "/v1/shm", "/v1/leases",
                                  "/v2", "/v1/plan"};
    return names[r];
}

static enum MHD_Result answer_json(request *r, int status, const char *json)
{
    r->status = status;
    atomic_store(&r->state, REQ_ANSWERED);
    return send_response(r->conn, status, json_response(json), r->id);
}

static enum MHD_Result answer_status(request *r, cp_status st, const char *message,
                                     const char *allow)
{
    cp_error err;
    cp_fail(&err, st, "%s", message);
    struct MHD_Response *resp = error_response(&err, -1, &r->status);
    if (resp && allow)
        MHD_add_response_header(resp, "Allow", allow);
    atomic_store(&r->state, REQ_ANSWERED);
    return send_response(r->conn, r->status, resp, r->id);
}

static bool authorized(const server_ctx *srv, struct MHD_Connection *conn, route_id route);

static int gpus_lost(const server_ctx *srv)
{
    return srv->exec ? atomic_load(&srv->exec->gpus_lost) : 0;
}

/* Liveness: 503 once a GPU was taken out (docs/gpu.md): only a new process gets a new CUDA
 * context, so the orchestrator should restart us; SIGTERM drains first. */
static enum MHD_Result answer_healthz(request *r)
{
    int lost = gpus_lost(r->srv);
    if (lost == 0)
        return answer_json(r, 200, "{\"status\":\"ok\"}");
    char body[160];
    snprintf(body, sizeof body, "{\"status\":\"gpu_lost\",\"gpus_lost\":%d}", lost);
    return answer_json(r, 503, body);
}

/* Readiness: the daemon answers correctly (a lost GPU's work goes to healthy GPUs or the CPU
 * path), so it stays ready until it drains. */
static enum MHD_Result answer_readyz(request *r)
{
    server_ctx *srv = r->srv;
    bool ready = atomic_load(&srv->ready) && !atomic_load(&srv->draining);
    if (!authorized(srv, r->conn, ROUTE_PREPROCESS)) /* the probe answers; details need the token */
        return answer_json(r, ready ? 200 : 503, ready ? "{\"ready\":true}" : "{\"ready\":false}");
    char body[512];
    snprintf(body, sizeof body,
             "{\"ready\":%s,\"backend\":\"%s\",\"device\":\"%s\",\"workers\":%d,"
             "\"draining\":%s,\"queue_depth\":%d,\"gpus_lost\":%d}",
             ready ? "true" : "false", srv->exec ? srv->exec->backend : "none",
             srv->exec ? srv->exec->device : "", srv->exec ? srv->exec->workers : 0,
             atomic_load(&srv->draining) ? "true" : "false", queue_depth(&srv->queue),
             gpus_lost(srv));
    return answer_json(r, ready ? 200 : 503, body);
}

static enum MHD_Result answer_profiles(request *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "default", r->srv->cfg->default_profile);
    cJSON *list = cJSON_AddArrayToObject(root, "profiles");
    for (int i = 0; i < r->srv->profiles.count; i++)
        cJSON_AddItemToArray(list, (cJSON *)profile_to_cjson(&r->srv->profiles.items[i]));
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text)
        return answer_status(r, CP_ERR_INTERNAL, "could not format profiles", NULL);
    enum MHD_Result ret = answer_json(r, 200, text);
    cJSON_free(text);
    return ret;
}

static enum MHD_Result answer_metrics(request *r)
{
    server_ctx *srv = r->srv;
    size_t len;
    char *text = metrics_render(CLIPPREP_VERSION, srv->exec ? srv->exec->backend : "none",
                                queue_depth(&srv->queue), atomic_load(&srv->inflight), &len);
    struct MHD_Response *resp =
        text ? MHD_create_response_from_buffer_with_free_callback(len, text, free) : NULL;
    if (!resp) {
        free(text);
        return answer_status(r, CP_ERR_INTERNAL, "could not render metrics", NULL);
    }
    MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
    r->status = 200;
    atomic_store(&r->state, REQ_ANSWERED);
    return send_response(r->conn, 200, resp, r->id);
}

static bool method_is(const char *m, const char *want) { return !strcmp(m, want); }

static enum MHD_Result answer_shm(request *r)
{
    server_ctx *srv = r->srv;
    char shm[1024] = "", ipc[1024] = "", body[3000], e1[300], e2[300];
    if (srv->shm)
        shm_pool_describe(srv->shm, shm, sizeof shm);
    if (srv->ipc_pool)
        shm_pool_describe(srv->ipc_pool, ipc, sizeof ipc);
    json_escape(srv->shm_error, e1, sizeof e1);
    json_escape(srv->ipc_error, e2, sizeof e2);
    snprintf(body, sizeof body,
             "{\"pools\":[%s],\"cuda_ipc_pools\":[%s],\"unavailable\":{\"shm\":\"%s\","
             "\"cuda_ipc\":\"%s\"}}",
             shm, ipc, srv->shm ? "" : e1, srv->ipc_pool ? "" : e2);
    return answer_json(r, 200, body);
}

static enum MHD_Result answer_lease_delete(request *r, const char *url)
{
    const char *id = url + strlen("/v1/leases/");
    if ((r->srv->shm && shm_pool_release(r->srv->shm, id)) ||
        (r->srv->ipc_pool && shm_pool_release(r->srv->ipc_pool, id)))
        return answer_json(r, 200, "{\"released\":true}");
    return answer_status(r, CP_ERR_NOT_FOUND, "no such lease (released, expired or never issued)",
                         NULL);
}

/* Bearer token check in constant time (no early exit on the first differing byte). */
static bool authorized(const server_ctx *srv, struct MHD_Connection *conn, route_id route)
{
    const char *token = srv->cfg->auth_token;
    if (!token[0] || route == ROUTE_HEALTHZ || route == ROUTE_READYZ)
        return true;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) /* the scheme is case-insensitive (RFC 7235) */
        return false;
    h += 7;
    size_t n = strlen(token), m = strlen(h);
    unsigned diff = (unsigned)(n ^ m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)token[i] ^ (unsigned char)(i < m ? h[i] : 0);
    return diff == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    server_ctx *srv = cls;
    request *r = *con_cls;
    if (!r) {
        conn_deadlines_headers_done(conn);
        r = request_new(srv, conn, route_for(url));
        if (!r)
            return MHD_NO;
        *con_cls = r;
        bool get = method_is(method, "GET") || method_is(method, "HEAD");
        if (!authorized(srv, conn, r->route)) {
            cp_error err;
            cp_fail(&err, CP_ERR_UNAUTHORIZED, "missing or wrong bearer token (Authorization: Bearer ...)");
            struct MHD_Response *resp = error_response(&err, -1, &r->status);
            if (resp)
                MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
            atomic_store(&r->state, REQ_ANSWERED);
            return send_response(conn, r->status, resp, r->id);
        }
        switch (r->route) {
        case ROUTE_HEALTHZ:
            return get ? answer_healthz(r)
                       : answer_status(r, CP_ERR_METHOD_NOT_ALLOWED, "use GET", "GET, HEAD");
        case ROUTE_READYZ:
            return get ? answer_readyz(r)
                       : answer_status(r, CP_ERR_METHOD_NOT_ALLOWED, "use GET", "GET, HEAD");
        case ROUTE_PROFILES:
            return get ? answer_profiles(r)
                       : answer_status(r, CP_ERR_METHOD_NOT_ALLOWED, "use GET", "GET, HEAD");
        case ROUTE_METRICS:
            return get ? answer_metrics(r)
                       : answer_status(r, CP_ERR_METHOD_NOT_ALLOWED, "use GET", "GET, HEAD");
        case ROUTE_SHM:
            return get ? answer_shm(r)
                       : answer_status(r, CP_ERR_METHOD_NOT_ALLOWED, "use GET", "GET, HEAD");
        case ROUTE_LEASE:
            return method_is(method, "DELETE")
                       ? answer_lease_delete(r, url)
                       : answer_status(r, CP_ERR_METHOD_NOT_ALLOWED, "use DELETE", "DELETE");
        case ROUTE_V2:
            snprintf(r->url, sizeof r->url, "%s", url);
            snprintf(r->method, sizeof r->method, "%s", method);
            return triton_first_call(r);
        case ROUTE_PREPROCESS:
        case ROUTE_PLAN:
            if (!method_is(method, "POST"))
                return answer_status(r, CP_ERR_METHOD_NOT_ALLOWED, "use POST", "POST");
            return preprocess_first_call(r);
        default:
            return answer_status(r, CP_ERR_NOT_FOUND, "no such endpoint", NULL);
        }
    }
    request_state st = (request_state)atomic_load(&r->state);
    if ((r->route == ROUTE_PREPROCESS || r->route == ROUTE_PLAN || r->route == ROUTE_V2) &&
        st == REQ_RECEIVING) {
        if (*upload_data_size)
            return preprocess_upload(r, upload_data, upload_data_size);
        return r->route == ROUTE_V2 ? triton_body_complete(r) : preprocess_body_complete(r);
    }
    if (st == REQ_READY)
        return preprocess_send_ready(r);
    if (*upload_data_size)
        *upload_data_size = 0; /* already answered: discard the rest of the body */
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    conn_deadlines_request_done(conn);
    request *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    uint64_t ns = monotonic_ns() - r->start_ns;
    double ms = (double)ns / 1e6;
    metrics_count_request(route_name(r->route), r->status);
    if (r->accepted)
        atomic_fetch_sub(&r->srv->inflight, 1);
    if (r->route == ROUTE_PREPROCESS)
        metrics_observe_ns(HIST_REQUEST_SECONDS, ns);
    log_level lvl = r->route == ROUTE_HEALTHZ || r->route == ROUTE_READYZ ? LOG_DEBUG : LOG_INFO;
    log_event(lvl, "request",
              "\"request_id\":\"%s\",\"route\":\"%s\",\"status\":%d,\"images\":%d,"
              "\"duration_ms\":%.3f,\"completed\":%s",
              r->id, route_name(r->route), r->status, r->n_images, ms,
              toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "true" : "false");
    request_unref(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512], esc[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    json_escape(msg, esc, sizeof esc);
    log_event(LOG_WARN, "libmicrohttpd", "\"detail\":\"%s\"", esc);
}

/* A listening Unix-domain socket at path (a stale socket file is replaced), mode 0600. */
static int unix_listener(const char *path, cp_error *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return cp_fail(err, CP_ERR_CONFIG, "unix_socket path too long: %s", path), -1;
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cp_fail(err, CP_ERR_CONFIG, "unix_socket: %s", strerror(errno)), -1;
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (rc < 0 || listen(fd, 128) < 0) {
        cp_fail(err, CP_ERR_CONFIG, "unix_socket %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

bool http_start(server_ctx *srv, cp_error *err)
{
    const cp_config *cfg = srv->cfg;
    srv->deadlines = conn_deadlines_start(cfg->header_timeout_s, cfg->response_timeout_s,
                                          cfg->connection_timeout_s);
    if (!srv->deadlines)
        return cp_fail(err, CP_ERR_CONFIG, "cannot start the connection deadline watchdog");
    if (cfg->unix_socket[0]) {
        int fd = unix_listener(cfg->unix_socket, err);
        if (fd < 0)
            return false;
        srv->daemon = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                MHD_USE_ERROR_LOG,
            0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
            MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
            MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout_s,
            MHD_OPTION_NOTIFY_CONNECTION, conn_deadlines_notify, srv->deadlines,
            cfg->http_threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
            (unsigned)cfg->http_threads, MHD_OPTION_END);
        if (!srv->daemon) {
            close(fd);
            return cp_fail(err, CP_ERR_CONFIG, "cannot serve on unix socket %s", cfg->unix_socket);
        }
        srv->port = 0;
        return true;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    int gai = getaddrinfo(cfg->host, port, &hints, &ai);
    if (gai != 0)
        return cp_fail(err, CP_ERR_CONFIG, "host '%s': %s", cfg->host, gai_strerror(gai));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger goes first so that MHD's own messages become JSON lines too; a pool of one
     * thread is no pool (MHD_OPTION_END stops the list there). */
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, srv, MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout_s,
        MHD_OPTION_NOTIFY_CONNECTION, conn_deadlines_notify, srv->deadlines,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_connections_per_ip, /* 0: none */
        cfg->http_threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
        (unsigned)cfg->http_threads, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!srv->daemon)
        return cp_fail(err, CP_ERR_CONFIG, "cannot listen on %s:%d (in use, or not an address here)",
                       cfg->host, cfg->port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : cfg->port;
    return true;
}

void http_stop(server_ctx *srv)
{
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
    conn_deadlines_stop(srv->deadlines); /* after MHD: every connection is closed by now */
    srv->deadlines = NULL;
    if (srv->cfg->unix_socket[0])
        unlink(srv->cfg->unix_socket);
}
