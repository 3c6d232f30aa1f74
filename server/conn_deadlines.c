/* conn_deadlines.c — per-connection phase deadlines enforced by a watchdog thread. */
#include "conn_deadlines.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "job.h"
#include "log.h"

typedef enum { PHASE_HEADERS = 0, PHASE_REQUEST, PHASE_RESPONSE } conn_phase;

typedef struct tracked {
    conn_deadlines *owner;
    int fd;
    conn_phase phase;
    uint64_t deadline_ns;     /* for PHASE_HEADERS and PHASE_RESPONSE */
    bool cut;
    struct tracked *prev, *next;
} tracked;

struct conn_deadlines {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tracked *head;
    uint64_t header_ns, response_ns, idle_ns;
    bool stopping;
    pthread_t thread;
};

static atomic_ullong cut_total;

unsigned long long conn_deadlines_cut_count(void) { return atomic_load(&cut_total); }

static void *watchdog(void *arg)
{
    conn_deadlines *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->stopping) {
        uint64_t now = monotonic_ns();
        for (tracked *t = d->head; t; t = t->next) {
            if (t->cut || t->phase == PHASE_REQUEST || now < t->deadline_ns)
                continue;
            /* the fd is still MHD's: CLOSED (which removes t) comes before MHD closes it */
            shutdown(t->fd, SHUT_RDWR);
            t->cut = true;
            atomic_fetch_add(&cut_total, 1);
            log_event(LOG_WARN, "connection past its deadline: cut",
                      "\"phase\":\"%s\"", t->phase == PHASE_HEADERS ? "headers" : "response");
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 200 * 1000 * 1000; /* deadlines are seconds: 200 ms resolution is plenty */
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&d->cv, &d->mu, &ts);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

conn_deadlines *conn_deadlines_start(int header_s, int response_s, int idle_s)
{
    conn_deadlines *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    d->header_ns = (uint64_t)header_s * 1000000000u;
    d->response_ns = (uint64_t)response_s * 1000000000u;
    d->idle_ns = (uint64_t)idle_s * 1000000000u;
    if (pthread_create(&d->thread, NULL, watchdog, d) != 0) {
        pthread_mutex_destroy(&d->mu);
        pthread_cond_destroy(&d->cv);
        free(d);
        return NULL;
    }
    return d;
}

void conn_deadlines_stop(conn_deadlines *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stopping = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    while (d->head) { /* (MHD stopped: every connection was closed and notified) */
        tracked *t = d->head;
        d->head = t->next;
        free(t);
    }
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d);
}

void conn_deadlines_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                           enum MHD_ConnectionNotificationCode toe)
{
    conn_deadlines *d = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        tracked *t = info ? calloc(1, sizeof *t) : NULL;
        *socket_context = t;
        if (!t)
            return; /* untracked: only MHD's own idle timeout applies */
        t->owner = d;
        t->fd = info->connect_fd;
        t->phase = PHASE_HEADERS;
        t->deadline_ns = monotonic_ns() + d->header_ns;
        pthread_mutex_lock(&d->mu);
        t->next = d->head;
        if (d->head)
            d->head->prev = t;
        d->head = t;
        pthread_mutex_unlock(&d->mu);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        tracked *t = *socket_context;
        *socket_context = NULL;
        if (!t)
            return;
        pthread_mutex_lock(&d->mu);
        if (t->prev)
            t->prev->next = t->next;
        else
            d->head = t->next;
        if (t->next)
            t->next->prev = t->prev;
        pthread_mutex_unlock(&d->mu);
        free(t);
    }
}

static void set_phase(struct MHD_Connection *conn, conn_phase phase)
{
    const union MHD_ConnectionInfo *info =
        conn ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
    tracked *t = info ? info->socket_context : NULL;
    if (!t)
        return;
    conn_deadlines *d = t->owner;
    uint64_t now = monotonic_ns();
    pthread_mutex_lock(&d->mu);
    t->phase = phase;
    if (phase == PHASE_RESPONSE)
        t->deadline_ns = now + d->response_ns;
    else if (phase == PHASE_HEADERS) /* keep-alive: the idle wait, then the next headers */
        t->deadline_ns = now + d->idle_ns + d->header_ns;
    pthread_mutex_unlock(&d->mu);
}

void conn_deadlines_headers_done(struct MHD_Connection *conn) { set_phase(conn, PHASE_REQUEST); }
void conn_deadlines_responding(struct MHD_Connection *conn) { set_phase(conn, PHASE_RESPONSE); }
void conn_deadlines_request_done(struct MHD_Connection *conn) { set_phase(conn, PHASE_HEADERS); }
