/* conn_deadlines.h — deadlines libmicrohttpd does not have: the request line and headers must
 * arrive within header_timeout_s, and an answer must be taken by the client within
 * response_timeout_s. MHD's connection_timeout_s is an idle timeout that every trickled byte
 * resets, so a peer sending a byte every 25 s could hold a connection forever. A watchdog
 * thread shuts down (shutdown(2), never close) the socket of a connection past its deadline;
 * MHD then sees the end of the stream and closes the connection itself. */
#ifndef CLIPPREP_CONN_DEADLINES_H
#define CLIPPREP_CONN_DEADLINES_H

#include <microhttpd.h>
#include <stdbool.h>

typedef struct conn_deadlines conn_deadlines;

/* idle_s: MHD's idle timeout; a keep-alive connection's next headers may take idle_s +
 * header_s after the previous answer (the idle wait is MHD's to bound). */
conn_deadlines *conn_deadlines_start(int header_s, int response_s, int idle_s);
void conn_deadlines_stop(conn_deadlines *d); /* after MHD stopped */

/* MHD_OPTION_NOTIFY_CONNECTION callback (cls = the conn_deadlines). */
void conn_deadlines_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                           enum MHD_ConnectionNotificationCode toe);

/* Phase changes, from the request handlers (any MHD connection, NULL-safe): */
void conn_deadlines_headers_done(struct MHD_Connection *conn);  /* first call of a request */
void conn_deadlines_responding(struct MHD_Connection *conn);    /* a response was queued */
void conn_deadlines_request_done(struct MHD_Connection *conn);  /* request completed */

/* Connections cut so far (for tests and metrics). */
unsigned long long conn_deadlines_cut_count(void);

#endif
