/*
 * httpd.h - a small HTTP/1.1 server on an engine loop, for the status
 * listener (/status, /healthz, /metrics): non-blocking accept, read and
 * write through mw__io, one request per connection (Connection: close).
 *
 * What it bounds: the request head (request line and headers) is at most
 * `max_request` bytes (431 past it), at most `max_conns` connections are
 * open at once (more are accepted and closed at once), and each
 * connection has `timeout` seconds from accept to its last byte written
 * (a slow client is closed, with 408 when it had not sent its request).
 * A request body is never read. Malformed request lines or headers get
 * 400, a version other than HTTP/1.x 505.
 *
 * Addresses: "127.0.0.1:PORT", "[::1]:PORT", "localhost:PORT", any
 * numeric "HOST:PORT" or "[V6]:PORT", or a unix socket path (starts with
 * '/' or "unix:"). Without `allow_any` only loopback addresses and unix
 * sockets are accepted. PORT 0 takes a free port (mw__httpd_addr says
 * which).
 *
 * Ownership: the caller owns the mw__httpd and frees it before its loop;
 * the handler runs on the loop thread and fills `resp`, whose body buffer
 * the server owns. A unix socket path is unlinked by mw__httpd_free().
 */
#ifndef MW_HTTPD_H
#define MW_HTTPD_H

#include "moonwatch.h"
#include "core/base/buf.h"
#include "core/base/loop.h"

#include <stddef.h>

typedef struct mw__httpd mw__httpd;

/* One parsed request; every string is borrowed for the handler's call. */
typedef struct mw__httpd_req {
    const char *method; /* "GET", ... as sent */
    const char *path;   /* the target up to '?' */
    const char *query;  /* after '?', "" when none */
} mw__httpd_req;

typedef struct mw__httpd_resp {
    int status;               /* 200 unless set */
    const char *content_type; /* a literal; NULL: text/plain; charset=utf-8 */
    mw__buf body;             /* the server's, capped at `max_response` */
} mw__httpd_resp;

typedef void (*mw__httpd_handler)(void *ud, const mw__httpd_req *req, mw__httpd_resp *resp);

typedef struct mw__httpd_opts {
    mw__loop *loop;
    const char *addr;    /* see above */
    int allow_any;       /* any address, not only loopback */
    size_t max_request;  /* bytes of request head; 0: 8192 */
    size_t max_conns;    /* 0: 8 */
    size_t max_response; /* bytes of body; 0: 256 MiB */
    double timeout;      /* seconds per connection; 0: 10 */
    mw__httpd_handler handler;
    void *ud;
} mw__httpd_opts;

/* Binds and listens into `*out`. MW_OK; MW_EINVAL for an address that is
 * malformed or not allowed; MW_ESYS when the socket cannot be made or
 * bound (errno); MW_ENOMEM. On error `*err` says why (caller frees). */
mw_code mw__httpd_new(const mw__httpd_opts *o, mw__httpd **out, char **err);
/* Closes the listener and every connection. NULL is a no-op. */
void mw__httpd_free(mw__httpd *h);
/* The bound address, as "127.0.0.1:PORT", "[::1]:PORT" or the socket
 * path. Borrowed. */
const char *mw__httpd_addr(const mw__httpd *h);
/* Connections open now. */
size_t mw__httpd_conns(const mw__httpd *h);

/* Parses `addr` (as above) without binding: MW_OK,
 * or MW_EINVAL with `*err`. */
mw_code mw__httpd_check_addr(const char *addr, int allow_any, char **err);

#endif
