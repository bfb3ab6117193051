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
 * Host header. Other requests honour curl's proxy variables (http_proxy,
 * https_proxy, all_proxy, no_proxy; see deny_link_local); connections
 * never go through a proxy.
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
#include "core/base/loop.h"

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
    /* https with opts.want_cert: the server certificate's notAfter (unix
     * seconds); 0 when unknown (plain http, no certificate info). */
    double cert_not_after;
} mw__http_result;

/* TLS settings shared by requests and connections. */
typedef struct mw__http_tls {
    int no_verify;           /* 1: accept any peer certificate and host name */
    const char *ca_file;     /* PEM bundle; NULL: the system's */
    const char *client_cert; /* PEM; NULL: none */
    const char *client_key;  /* PEM; NULL: in client_cert or none */
} mw__http_tls;

/* What a start made of a URL, kept for the next start (see `memo`). */
typedef struct mw__http_memo mw__http_memo;

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
    /* Bytes read from the socket at a time, 1 KiB to 16 KiB (clamped);
     * 0: 16 KiB. curl holds this buffer for the whole transfer, waiting
     * included: small answers from many slow servers are cheaper with a
     * small one, a big answer costs more reads with it. */
    size_t recv_buffer;
    /* At most 5, http/https only. As curl would: any 3xx with a Location;
     * GET without the body after a 303 (HEAD stays HEAD) and after a 301
     * or 302 of a POST, else the same method and body; Authorization,
     * Cookie and Host headers only to the first URL's scheme, host and
     * port. */
    int follow_redirects;
    /* Refuse link-local targets (see core/base/netaddr.h: 169.254.0.0/16,
     * fe80::/10, IPv4-mapped forms of those, and the EC2 metadata address
     * fd00:ec2::254) before anything is sent to them or for them, also
     * after redirects, also through a proxy: done then reports MW_EIO
     * "refused: <addr> is a link-local address". Every URL's host is
     * checked as curl reads it ("http://2852039166/" is 169.254.169.254);
     * a name, when a proxy variable is set, is first resolved here (the
     * proxy would resolve it where no check sees it): "refused: <name>
     * resolves to <addr>, a link-local address", or refused when it does
     * not resolve here. Every address curl connects to is checked before
     * a socket exists (a direct connection, NO_PROXY's hosts included; a
     * proxy at a link-local address is refused too). Such transfers only
     * reuse connections opened with the check. */
    int deny_link_local;
    /* Never through a proxy, whatever the proxy variables say: for the
     * endpoints of the host itself (the ECS agent, the task metadata and
     * credentials endpoints, instance metadata), which a proxy cannot
     * reach and should never be sent. */
    int direct;
    mw__http_tls tls;
    /* Fill result.cert_not_after (https). Certificate details only come
     * with a handshake, so the transfer opens a connection of its own. */
    int want_cert;
    /* AWS Signature Version 4, computed by libcurl (CURLOPT_AWS_SIGV4):
     * "aws:amz:<region>:<service>", with the access key id and secret
     * key (copied by libcurl, never logged; http.c never turns on curl's
     * verbose output). No "Expect:" header is added then (libcurl 7.88
     * signs a header the caller removed) and the caller sets no
     * X-Amz-Date (7.88 would send it twice). NULL: unsigned. */
    const char *aws_sigv4;
    const char *aws_key_id;
    const char *aws_secret;
    /* The request or its answer carries secrets (a security token in a
     * header, credentials in the body): the copies http.c makes of the
     * headers and the buffered body are zeroed before they are freed,
     * and the body buffer is allocated whole up front (max_body) so that
     * no realloc leaves a copy behind. The body mw__http_take_body()
     * hands over is then the caller's to zero. */
    int wipe;
    /* The caller's memo of the URL it asks for again and again (a check
     * instance's): a start whose url is the one `*memo` holds does not
     * parse it again; one with another url leaves its own parse there.
     * `*memo` starts NULL and is the caller's, freed with
     * mw__http_memo_free(). Not used with `wipe` (a URL may carry a
     * secret). NULL: no memo. */
    mw__http_memo **memo;
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

void mw__http_memo_free(mw__http_memo *m);

/* A client on `loop` into `*out`: MW_OK, MW_ENOMEM, or MW_EIO when libcurl
 * cannot be initialized or a multi handle made. */
mw_code mw__http_new(mw__loop *loop, mw__http **out);
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

/* Calls `fn` for each header of the final response, in order received
 * (names as sent; values trimmed), inside the transfer's `done` callback;
 * stops when `fn` returns non-zero. The strings are borrowed for the
 * call. */
void mw__http_header_each(mw__http_req *r, int (*fn)(void *ud, const char *name, const char *value),
                          void *ud);

/* The headers mw__http_header_each() walks, as one block of "name\0value\0"
 * pairs, `*len` bytes; inside the `done` callback, borrowed. */
const char *mw__http_header_block(mw__http_req *r, size_t *len);

/* Takes the buffered body (malloc'd, NUL-terminated, `*len` bytes) out of
 * the result, inside the `done` callback, without a copy; the caller frees
 * it. An empty or failed result gives a malloc'd "". The result's body is
 * "" afterwards. NULL on OOM, or outside `done`. */
char *mw__http_take_body(mw__http_req *r, size_t *len);

/* Why `r` failed, as a log line says it: "<what>: <curl's reason>", or
 * "<what>: HTTP <status>[: <the body's first line, at most `max_body`
 * bytes>]"; NULL for a 200 (and on OOM). Caller frees. */
char *mw__http_result_error(const char *what, const mw__http_result *r, size_t max_body);

/* One transfer run to its end on a loop and client of its own, blocking
 * the caller (for the CLI and the engine's start, never on an engine
 * loop): `o`'s done/ud are ignored; its timeout bounds the wait (and a
 * second more, a backstop). MW_OK when an answer came (any status):
 * `*status`, and the body (malloc'd, NUL-terminated, `*len` bytes; wiped
 * when freed with mw__wipe_free if o->wipe) in `*body`. Otherwise the
 * code, and `*err` (caller frees) as mw__http_result says it, or "no
 * answer". */
mw_code mw__http_fetch(const mw__http_opts *o, long *status, char **body, size_t *len, char **err);

/* ------------------------------------------------------------- connections
 *
 * A plain TCP or TLS connection opened by libcurl on the loop
 * (CURLOPT_CONNECT_ONLY: asynchronous DNS, connect timeout, TLS handshake,
 * the same link-local refusal; never through a proxy, no ALPN), then read
 * and written without blocking. A connection is owned by whoever it was
 * handed to and is closed with mw__http_conn_close(); mw__http_free()
 * closes those still open (their owner must not use them afterwards).
 *
 * Reading: call recv until it returns MW_HTTP_AGAIN, and wait for
 * readability only then. With TLS, bytes already decrypted are held in
 * the TLS layer while the socket itself has nothing to read, so a wait
 * before a recv may never end; after MW_HTTP_AGAIN nothing is held back.
 * A wait may also end with nothing to read (a TLS session ticket, say):
 * recv then says MW_HTTP_AGAIN again.
 *
 * Writing: send may take less than asked. After MW_HTTP_AGAIN on a TLS
 * connection, send the same bytes again (same start, same length) once
 * writable, as OpenSSL requires of a retried write.
 */
typedef struct mw__http_conn mw__http_conn;

typedef struct mw__http_conn_opts {
    const char *host; /* name, IPv4 or IPv6 literal (no brackets) */
    unsigned port;
    int tls;
    mw__http_tls tls_opts;
    double connect_timeout; /* seconds, DNS + connect + handshake; 0: 10 */
    int deny_link_local;    /* as in mw__http_opts */
    int want_cert;          /* tls: fill r->cert_not_after */
    /* On success `c` is the connection (now the caller's) and r->code is
     * MW_OK; on failure `c` is NULL and r->code/r->error say why, as for
     * transfers: "connect to 127.0.0.1:6379: Connection refused", "connect
     * to [::1]:25: timed out after 2.0 s", "refused: 169.254.169.254 is a
     * link-local address", "SSL certificate problem: ...". */
    void (*done)(void *ud, mw__http_conn *c, const mw__http_result *r);
    void *ud;
} mw__http_conn_opts;

/* Starts connecting; cancel with mw__http_cancel() (then `done` is never
 * called). NULL with `*err` (caller frees) on a bad argument or OOM. */
mw__http_req *mw__http_connect(mw__http *h, const mw__http_conn_opts *o, char **err);

/* Non-blocking I/O: returns the bytes moved (recv: 0 at end of stream),
 * MW_HTTP_AGAIN when it would block, or MW_HTTP_FAIL with `*err` set to a
 * reason that lives until the connection is closed. No SIGPIPE. */
#define MW_HTTP_AGAIN (-1L)
#define MW_HTTP_FAIL  (-2L)
long mw__http_conn_send(mw__http_conn *c, const void *p, size_t n, const char **err);
long mw__http_conn_recv(mw__http_conn *c, void *p, size_t n, const char **err);

/* Calls `ready(ud)` once, on the loop thread, when the connection may be
 * readable (`want_write` 0) or writable (1); also on an error or hang-up,
 * which the next recv/send reports. One wait at a time; a new wait
 * replaces the previous one. `ready` may close the connection or free the
 * client. MW_OK; MW_EINVAL without a connection or callback; MW_ESYS
 * when epoll refuses the socket (no wait then). */
mw_code mw__http_conn_wait(mw__http_conn *c, int want_write, void (*ready)(void *ud), void *ud);
void mw__http_conn_wait_cancel(mw__http_conn *c);

/* Closes the connection and frees it (a pending wait is dropped). */
void mw__http_conn_close(mw__http_conn *c);

/* Tests: from now on, every transfer and check of `h` resolves the name
 * of `entry` ("host:port:address[,address...]", as curl's CURLOPT_RESOLVE
 * takes it) to those addresses without DNS; a name can then stand for a
 * link-local address. MW_OK or MW_ENOMEM. */
mw_code mw__http_resolve(mw__http *h, const char *entry);

/* Multi handles the client's transfers are spread over (it opens one
 * more for each 128 transfers in flight at once and keeps them). */
size_t mw__http_multis(const mw__http *h);

/* Transfers in flight. */
size_t mw__http_active(const mw__http *h);

#endif
