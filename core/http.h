/*
 * http.h - HTTP transfers on an engine loop: one libcurl multi handle
 * driven by the loop's epoll (CURLMOPT_SOCKETFUNCTION -> mw__io, and
 * CURLMOPT_TIMERFUNCTION -> one mw__timer), never by a poll over every
 * transfer. Used by the discovery sources (the Docker Engine API) and by
 * checks' non-blocking I/O.
 *
 * Only http:// and https:// URLs are accepted (also after redirects,
 * which are not followed unless asked). A request may go over a unix
 * socket (CURLOPT_UNIX_SOCKET_PATH); the URL's host is then only the
 * Host header.
 *
 * Ownership: a mw__http is owned by whoever made it, lives on one loop
 * thread and must be freed before its loop. A mw__http_req belongs to the
 * mw__http until its `done` callback returns (then it is freed) or until
 * mw__http_cancel() (then `done` is never called). Every callback runs on
 * the loop thread, never from inside mw__http_start().
 */
#ifndef MW_HTTP_H
#define MW_HTTP_H

#include "moonwatch.h"
#include "core/loop.h"

#include <stddef.h>

typedef struct mw__http mw__http;
typedef struct mw__http_req mw__http_req;

typedef struct mw__http_result {
    mw_code code;     /* MW_OK (any HTTP status), MW_ETIMEOUT, MW_EIO
                       * (connect/transfer failed), MW_ENOMEM, or
                       * MW_EPARSE (body over max_body) */
    long status;      /* HTTP status, 0 when none was received */
    const char *body; /* buffered body, NUL-terminated ("" when none or
                       * when streamed through on_data); borrowed for the
                       * callback only */
    size_t len;
    /* Human-readable reason when code != MW_OK, without the URL (callers
     * add their own context): "connect to unix:/run/docker.sock: No such
     * file or directory", "timed out after 2.0 s", "response body over
     * 10485760 bytes", "aborted". */
    const char *error;
    double elapsed; /* seconds from start to done */
} mw__http_result;

typedef struct mw__http_opts {
    const char *url;         /* http:// or https:// */
    const char *unix_socket; /* NULL: TCP */
    const char *method;      /* NULL: GET */
    const char *body;        /* request body, copied; NULL: none */
    size_t body_len;
    const char *const *headers; /* "Name: value" lines, copied */
    size_t nheaders;
    double timeout;         /* whole transfer, seconds; 0: no limit (streams) */
    double connect_timeout; /* seconds; 0: 10 */
    size_t max_body;        /* cap on the buffered body; 0: 10 MiB */
    int follow_redirects;   /* at most 5, http/https only */
    /* Streaming: when set, body bytes are handed here as they arrive
     * instead of being buffered; return non-zero to abort the transfer
     * (done then reports MW_EIO "aborted"). */
    int (*on_data)(void *ud, const char *p, size_t n);
    /* Called once when the final response's headers are complete (not
     * for 1xx interim responses nor for redirects being followed); may be
     * NULL. */
    void (*on_headers)(void *ud, long status);
    void (*done)(void *ud, const mw__http_result *r);
    void *ud;
} mw__http_opts;

mw__http *mw__http_new(mw__loop *loop);
/* Aborts every transfer in flight without calling their `done`. Safe
 * from any of its callbacks: nothing else is reported then, and the
 * memory is released when the loop callback returns. */
void mw__http_free(mw__http *h);

/*
 * Starts a transfer; returns its handle, or NULL with `*err` (caller
 * frees) for a refused URL or OOM.
 */
mw__http_req *mw__http_start(mw__http *h, const mw__http_opts *o, char **err);

/* Aborts a transfer; its `done` is not called. Safe from any callback of
 * the same mw__http, including this transfer's own on_data/on_headers. */
void mw__http_cancel(mw__http_req *r);

/* A response header of a transfer (case-insensitive name), valid inside
 * its on_headers/on_data/done callbacks; NULL when absent. */
const char *mw__http_header(mw__http_req *r, const char *name);

/* Transfers in flight. */
size_t mw__http_active(const mw__http *h);

#endif
