/*
 * test_http.c - HTTP transfers on an engine loop against a small HTTP/1.1
 * server run by this test (one thread accepting on 127.0.0.1 and on a unix
 * socket in a temp dir, one thread per connection, keep-alive):
 * buffered bodies and header lookup, method/body/headers, streaming of a
 * chunked body split and delayed at odd places, timeouts, the body cap,
 * 404, a connection closed mid-body, refused schemes and redirects, 100
 * Continue, 200 transfers at once, cancelling from callbacks and before
 * the start, and freeing the client with transfers in flight.
 *
 * Then: link-local refusal (literals and a redirect; never tried against
 * anything but loopback; with a proxy: test_http_proxy.c), what a
 * redirect does to the method and to credentials, header iteration,
 * taking the body, and
 * connections against an echo listener of the same server (I/O, waits,
 * end of stream, closing in every state, refused, timed out, cancelled,
 * freed with the client). TLS, for transfers and connections, runs
 * against tests/fixtures/tls/tls_server.py (python3) with certificates
 * made by the openssl command at the start; both are skipped, with a
 * note, where those programs are missing.
 *
 * The loop is always driven in bounded steps (count and time), so a
 * regression fails a CHECK instead of hanging.
 */
#include "core/base/buf.h"
#include "core/base/http.h"
#include "core/base/loop.h"
#include "core/base/util.h"
#include "test.h"
#include "tests/support/make.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------- server */

typedef struct server {
    int tcp_fd, unix_fd, echo_fd;
    int port, echo_port;
    char dir[32], sock_path[64];
    int stop[2]; /* readable once the server stops */
    pthread_t accept_thr;
    pthread_mutex_t lock;
    pthread_t *conns;
    size_t nconns, capconns;
    atomic_int accepted, requests;
    atomic_int echo_accepted, echo_gone; /* echo connections, and those the client closed */
} server;

static server srv;

/* 1: `fd` readable, 0: timeout, -1: stopping. */
static int wait_in(int fd, int ms)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = srv.stop[0], .events = POLLIN}};
    int n = poll(p, 2, ms);
    if (n < 0 || p[1].revents)
        return -1;
    return n > 0;
}

/* Sleeps `ms` unless the server stops or the client goes away (the
 * client never sends while it waits for a response). */
static int nap(int fd, int ms)
{
    return wait_in(fd, ms) == 0 ? 0 : -1;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_str(int fd, const char *s)
{
    return send_all(fd, s, strlen(s));
}

typedef struct request {
    char method[16], path[256], xmw[128], auth[128], cookie[128];
    char body[4096];
    size_t body_len;
} request;

static const char *find_header(const char *head, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p, "\r\n")) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':')
            return p + n + 1 + strspn(p + n + 1, " ");
    }
    return NULL;
}

/* Reads one request; 0, or -1 when the client closed or it is bad. */
static int read_request(int fd, request *rq)
{
    char buf[8192];
    size_t len = 0;
    char *end = NULL;

    memset(rq, 0, sizeof *rq);
    while (!(end = strstr(buf, "\r\n\r\n"))) {
        if (len + 1 >= sizeof buf || wait_in(fd, 10000) <= 0)
            return -1;
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
    }
    *end = '\0';
    if (sscanf(buf, "%15s %255s", rq->method, rq->path) != 2)
        return -1;
    const char *x = find_header(buf, "X-Mw");
    if (x)
        snprintf(rq->xmw, sizeof rq->xmw, "%.*s", (int)strcspn(x, "\r\n"), x);
    if ((x = find_header(buf, "Authorization")))
        snprintf(rq->auth, sizeof rq->auth, "%.*s", (int)strcspn(x, "\r\n"), x);
    if ((x = find_header(buf, "Cookie")))
        snprintf(rq->cookie, sizeof rq->cookie, "%.*s", (int)strcspn(x, "\r\n"), x);
    const char *cl = find_header(buf, "Content-Length");
    size_t want = cl ? strtoul(cl, NULL, 10) : 0, have = len - (size_t)(end + 4 - buf);
    if (want >= sizeof rq->body || have > want)
        return -1;
    memcpy(rq->body, end + 4, have);
    while (have < want) {
        if (wait_in(fd, 10000) <= 0)
            return -1;
        ssize_t n = recv(fd, rq->body + have, want - have, 0);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    rq->body_len = want;
    return 0;
}

static int respond(int fd, int status, const char *extra, const char *body)
{
    char head[1024];
    snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n", status,
             strlen(body), extra);
    return send_str(fd, head) || send_str(fd, body) ? -1 : 1;
}

/* As respond(), without the body for a HEAD request. */
static int respond_to(int fd, const request *rq, int status, const char *extra, const char *body)
{
    char head[1024];
    if (strcmp(rq->method, "HEAD") != 0)
        return respond(fd, status, extra, body);
    snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n", status,
             strlen(body), extra);
    return send_str(fd, head) ? -1 : 1;
}

/* The lines the streaming route sends, 900 bytes in all. */
static char *stream_payload(void)
{
    mw__buf b;
    mw__buf_init(&b, 1 << 20);
    for (int i = 0; i < 100; i++)
        mw__buf_addf(&b, "line %03d\n", i);
    return mw__buf_take(&b, NULL);
}

/* Chunked, chunk sizes uneven, written in pieces that split chunk size
 * lines and CRLFs, with a delay between pieces. */
static int route_chunked(int fd)
{
    static const size_t chunk[] = {1, 7, 50, 128, 3, 200, 11};
    static const size_t piece[] = {13, 1, 97, 2, 5, 64, 3};
    char *payload = stream_payload();
    size_t plen = strlen(payload), off = 0;
    mw__buf wire;
    mw__buf_init(&wire, 1 << 20);
    for (size_t i = 0; off < plen; i++) {
        size_t n = chunk[i % MW_ARRAY_LEN(chunk)];
        n = n < plen - off ? n : plen - off;
        mw__buf_addf(&wire, "%zx\r\n", n);
        mw__buf_add(&wire, payload + off, n);
        mw__buf_adds(&wire, "\r\n");
        off += n;
    }
    mw__buf_adds(&wire, "0\r\n\r\n");
    int rc = send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    off = 0;
    for (size_t i = 0; rc == 0 && off < wire.len; i++) {
        size_t n = piece[i % MW_ARRAY_LEN(piece)];
        n = n < wire.len - off ? n : wire.len - off;
        rc = send_all(fd, wire.p + off, n);
        off += n;
        if (rc == 0 && i % 3 == 0)
            rc = nap(fd, 3);
    }
    free(payload);
    mw__buf_free(&wire);
    return rc == 0 ? 1 : -1;
}

/* Headers, then nothing for 5 s. */
static int route_slow(int fd)
{
    if (send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n") || nap(fd, 5000))
        return -1;
    return send_str(fd, "later") ? -1 : 1;
}

/* 20 MiB of zeros, with or without a Content-Length. */
static int route_huge(int fd, int chunked)
{
    static char block[65536];
    const char *head = chunked ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               : "HTTP/1.1 200 OK\r\nContent-Length: 20971520\r\n\r\n";
    if (send_str(fd, head))
        return -1;
    for (int i = 0; i < 320; i++) {
        if ((chunked && send_str(fd, "10000\r\n")) || send_all(fd, block, sizeof block) ||
            (chunked && send_str(fd, "\r\n")))
            return -1;
    }
    return chunked && send_str(fd, "0\r\n\r\n") ? -1 : 1;
}

/* An endless chunked stream, one "tick\n" every 10 ms for up to 10 s. */
static int route_stream(int fd)
{
    if (send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
        return -1;
    for (int i = 0; i < 1000; i++)
        if (send_str(fd, "5\r\ntick\n\r\n") || nap(fd, 10))
            return -1;
    return -1;
}

/* Answers one request: 1 to keep the connection, -1 to close it. */
static int route(int fd, const request *rq)
{
    const char *p = rq->path;
    if (strcmp(p, "/fixed") == 0)
        return respond(fd, 200, "X-Test: one\r\nContent-Type: text/plain\r\n", "hello world");
    if (strcmp(p, "/echo") == 0) {
        char body[4400];
        snprintf(body, sizeof body, "%s [%.*s] %s", rq->method, (int)rq->body_len, rq->body,
                 rq->xmw);
        return respond_to(fd, rq, 200, "", body);
    }
    if (strcmp(p, "/chunked") == 0)
        return route_chunked(fd);
    if (strcmp(p, "/slow") == 0)
        return route_slow(fd);
    if (strcmp(p, "/huge") == 0)
        return route_huge(fd, 0);
    if (strcmp(p, "/huge-chunked") == 0)
        return route_huge(fd, 1);
    if (strcmp(p, "/stream") == 0)
        return route_stream(fd);
    if (strcmp(p, "/cut") == 0) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
        return -1;
    }
    if (strcmp(p, "/empty") == 0)
        return -1;
    if (strcmp(p, "/redirect") == 0)
        return respond(fd, 302, "Location: /fixed\r\nX-Test: redirect\r\n", "moved");
    if (strcmp(p, "/redirect-file") == 0)
        return respond(fd, 302, "Location: file:///etc/passwd\r\n", "moved");
    if (strcmp(p, "/redirect-ftp") == 0)
        return respond(fd, 301, "Location: ftp://127.0.0.1/x\r\n", "moved");
    if (strcmp(p, "/redirect-metadata") == 0)
        return respond(fd, 302, "Location: http://169.254.169.254/latest/meta-data/\r\n", "moved");
    if (strcmp(p, "/loop") == 0)
        return respond(fd, 302, "Location: /loop\r\n", "again");
    if (strcmp(p, "/echo-auth") == 0) {
        char body[600];
        snprintf(body, sizeof body, "%s auth=%s cookie=%s x=%s", rq->method, rq->auth, rq->cookie,
                 rq->xmw);
        return respond(fd, 200, "", body);
    }
    if (strncmp(p, "/r3", 3) == 0 && strchr(p, '?')) { /* /r303?/echo: a 303 to /echo */
        char loc[300];
        snprintf(loc, sizeof loc, "Location: %s\r\n", strchr(p, '?') + 1);
        return respond_to(fd, rq, atoi(p + 2), loc, "moved");
    }
    if (strcmp(p, "/continue") == 0)
        return send_str(fd, "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"
                            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Final: yes\r\n\r\nok")
                   ? -1
                   : 1;
    return respond(fd, 404, "", "not found");
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    request rq;
    while (read_request(fd, &rq) == 0) {
        atomic_fetch_add(&srv.requests, 1);
        if (route(fd, &rq) < 0)
            break;
    }
    close(fd);
    return NULL;
}

/* The echo listener: sends back what it receives; on a 0x04 byte it echoes
 * what came before and closes. */
static void *echo_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[65536];
    for (;;) {
        if (wait_in(fd, 10000) <= 0)
            break;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            /* closed, or reset when it had left data unread */
            atomic_fetch_add(&srv.echo_gone, 1);
            break;
        }
        char *eot = memchr(buf, 4, (size_t)n);
        if (send_all(fd, buf, eot ? (size_t)(eot - buf) : (size_t)n) != 0 || eot)
            break;
    }
    close(fd);
    return NULL;
}

static void spawn_conn(int fd, int echo)
{
    pthread_t t;
    atomic_fetch_add(echo ? &srv.echo_accepted : &srv.accepted, 1);
    if (pthread_create(&t, NULL, echo ? echo_main : conn_main, (void *)(intptr_t)fd) != 0) {
        close(fd);
        return;
    }
    pthread_mutex_lock(&srv.lock);
    if (srv.nconns == srv.capconns) {
        srv.capconns = srv.capconns ? srv.capconns * 2 : 64;
        srv.conns = realloc(srv.conns, srv.capconns * sizeof *srv.conns);
    }
    srv.conns[srv.nconns++] = t;
    pthread_mutex_unlock(&srv.lock);
}

static void *accept_main(void *arg)
{
    MW_UNUSED(arg);
    for (;;) {
        struct pollfd p[4] = {{.fd = srv.tcp_fd, .events = POLLIN},
                              {.fd = srv.unix_fd, .events = POLLIN},
                              {.fd = srv.echo_fd, .events = POLLIN},
                              {.fd = srv.stop[0], .events = POLLIN}};
        if (poll(p, 4, -1) < 0 && errno != EINTR)
            return NULL;
        if (p[3].revents)
            return NULL;
        for (int i = 0; i < 3; i++) {
            if (!p[i].revents)
                continue;
            int fd = accept(p[i].fd, NULL, NULL);
            if (fd >= 0)
                spawn_conn(fd, i == 2);
        }
    }
}

static int listen_tcp(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 512) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

static int listen_unix(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 512) != 0)
        return -1;
    return fd;
}

static int server_start(void)
{
    snprintf(srv.dir, sizeof srv.dir, "/tmp/mw-http-XXXXXX");
    if (!mkdtemp(srv.dir))
        return -1;
    snprintf(srv.sock_path, sizeof srv.sock_path, "%s/http.sock", srv.dir);
    pthread_mutex_init(&srv.lock, NULL);
    srv.tcp_fd = listen_tcp(&srv.port);
    srv.unix_fd = listen_unix(srv.sock_path);
    srv.echo_fd = listen_tcp(&srv.echo_port);
    if (srv.tcp_fd < 0 || srv.unix_fd < 0 || srv.echo_fd < 0 || pipe(srv.stop) != 0)
        return -1;
    return pthread_create(&srv.accept_thr, NULL, accept_main, NULL) == 0 ? 0 : -1;
}

static void server_stop(void)
{
    close(srv.stop[1]); /* the read end turns readable (EOF) for all */
    pthread_join(srv.accept_thr, NULL);
    for (size_t i = 0; i < srv.nconns; i++)
        pthread_join(srv.conns[i], NULL);
    free(srv.conns);
    close(srv.stop[0]);
    close(srv.tcp_fd);
    close(srv.unix_fd);
    close(srv.echo_fd);
    unlink(srv.sock_path);
    rmdir(srv.dir);
    pthread_mutex_destroy(&srv.lock);
}

/* ------------------------------------------------------------- client side */

static char *url(const char *path)
{
    return mw__sprintf("http://127.0.0.1:%d%s", srv.port, path);
}

/* What one transfer saw. */
typedef struct xfer {
    mw__http_req *req;
    int done, nheaders, ndata;
    long headers_status;
    int data_before_headers;
    mw_code code;
    long status;
    char *body, *error;
    size_t len;
    double elapsed, cert_not_after;
    mw__buf data; /* streamed bytes */
    char *hdr[4]; /* values of `want[]` looked up in done */
    const char *want[4];
    int cancel_after;        /* on_data: cancel itself after this many calls */
    int abort_after;         /* on_data: return non-zero after this many calls */
    mw__http_req *cancel_on; /* on_data/on_headers: cancel this one too */
    int cancel_in_headers;
    mw__http **free_in_done;      /* done: free the client */
    mw__http **free_in_data;      /* on_data: free the client */
    mw__http_req *cancel_in_done; /* done: cancel this one */
    char *hdr_in_headers;         /* want[0] looked up in on_headers */
    int *counter;                 /* done: increment */
} xfer;

static void xfer_init(xfer *x)
{
    memset(x, 0, sizeof *x);
    mw__buf_init(&x->data, 64 << 20);
}

static void xfer_clear(xfer *x)
{
    free(x->body);
    free(x->error);
    mw__buf_free(&x->data);
    for (size_t i = 0; i < MW_ARRAY_LEN(x->hdr); i++)
        free(x->hdr[i]);
    free(x->hdr_in_headers);
    xfer_init(x);
}

static void on_headers(void *ud, long status)
{
    xfer *x = ud;
    x->nheaders++;
    x->headers_status = status;
    if (x->want[0] && !x->hdr_in_headers) {
        const char *v = mw__http_header(x->req, x->want[0]);
        x->hdr_in_headers = mw__strdup(v ? v : "(none)");
    }
    if (x->cancel_in_headers)
        mw__http_cancel(x->req);
}

static int on_data(void *ud, const char *p, size_t n)
{
    xfer *x = ud;
    if (!x->nheaders)
        x->data_before_headers = 1;
    mw__buf_add(&x->data, p, n);
    x->ndata++;
    if (x->cancel_on) {
        mw__http_cancel(x->cancel_on);
        x->cancel_on = NULL;
    }
    if (x->cancel_after && x->ndata >= x->cancel_after)
        mw__http_cancel(x->req);
    if (x->free_in_data) {
        mw__http_free(*x->free_in_data);
        *x->free_in_data = NULL;
    }
    return x->abort_after && x->ndata >= x->abort_after;
}

static void on_done(void *ud, const mw__http_result *r)
{
    xfer *x = ud;
    x->done++;
    x->code = r->code;
    x->status = r->status;
    x->body = mw__strndup(r->body, r->len);
    x->len = r->len;
    x->error = r->error ? mw__strdup(r->error) : NULL;
    x->elapsed = r->elapsed;
    x->cert_not_after = r->cert_not_after;
    for (size_t i = 0; i < MW_ARRAY_LEN(x->want) && x->want[i]; i++) {
        const char *v = mw__http_header(x->req, x->want[i]);
        x->hdr[i] = v ? mw__strdup(v) : NULL;
    }
    if (x->counter)
        (*x->counter)++;
    if (x->cancel_in_done)
        mw__http_cancel(x->cancel_in_done);
    if (x->free_in_done) {
        mw__http_free(*x->free_in_done);
        *x->free_in_done = NULL;
    }
}

static mw__http_opts opts_for(const char *u, xfer *x)
{
    return (mw__http_opts){
        .url = u, .timeout = 10, .on_headers = on_headers, .done = on_done, .ud = x};
}

/* Runs the loop until `*flag >= want`, for at most `max_s` seconds. */
static void run_until(mw__loop *loop, const int *flag, int want, double max_s)
{
    double end = mw__mono() + max_s;
    for (int i = 0; i < 200000 && *flag < want && mw__mono() < end; i++)
        mw__loop_run_once(loop, 20);
}

/* Runs the loop for `s` seconds whatever happens. */
static void run_for(mw__loop *loop, double s)
{
    int never = 0;
    run_until(loop, &never, 1, s);
}

static mw__http_req *start(mw__http *h, const mw__http_opts *o, xfer *x)
{
    char *err = NULL;
    x->req = mw__http_start(h, o, &err);
    if (!x->req)
        fprintf(stderr, "start %s: %s\n", o->url, err ? err : "?");
    free(err);
    return x->req;
}

/* One GET to completion. */
static void get(mw__loop *loop, mw__http *h, const char *path, xfer *x)
{
    char *u = url(path);
    mw__http_opts o = opts_for(u, x);
    if (start(h, &o, x))
        run_until(loop, &x->done, 1, 10);
    free(u);
}

/* ------------------------------------------------------------- tests */

static void test_fixed_and_headers(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    xfer x;
    xfer_init(&x);
    x.want[0] = "x-test";
    x.want[1] = "CONTENT-LENGTH";
    x.want[2] = "x-absent";
    char *u = url("/fixed");
    mw__http_opts o = opts_for(u, &x);
    CHECK(start(h, &o, &x) != NULL);
    /* nothing is reported from inside mw__http_start() */
    CHECK(x.done == 0 && x.nheaders == 0);
    CHECK(mw__http_active(h) == 1);
    run_until(loop, &x.done, 1, 10);
    CHECK(x.done == 1);
    CHECK(x.code == MW_OK);
    CHECK(x.status == 200);
    CHECK_STR(x.body, "hello world");
    CHECK(x.len == 11);
    CHECK(x.error == NULL);
    CHECK(x.nheaders == 1 && x.headers_status == 200);
    CHECK_STR(x.hdr[0], "one");
    CHECK_STR(x.hdr[1], "11");
    CHECK(x.hdr[2] == NULL);
    CHECK(x.elapsed >= 0 && x.elapsed < 5);
    CHECK(mw__http_active(h) == 0);
    free(u);
    xfer_clear(&x);
    mw__http_free(h);
    CHECK(mw__loop_timers(loop) == 0);
}

static void test_404(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    xfer x;
    xfer_init(&x);
    get(loop, h, "/nope", &x);
    CHECK(x.done == 1);
    CHECK(x.code == MW_OK);
    CHECK(x.status == 404);
    CHECK_STR(x.body, "not found");
    xfer_clear(&x);
    mw__http_free(h);
}

/* One GET of `path` through `memo`: its status, or -1. */
static long memo_get(mw__loop *loop, mw__http *h, const char *path, mw__http_memo **memo, int wipe)
{
    xfer x;
    xfer_init(&x);
    char *u = url(path);
    mw__http_opts o = opts_for(u, &x);
    o.memo = memo;
    o.wipe = wipe;
    if (start(h, &o, &x))
        run_until(loop, &x.done, 1, 10);
    long status = x.done == 1 && x.code == MW_OK ? x.status : -1;
    free(u);
    xfer_clear(&x);
    return status;
}

/* A caller's memo of its URL: the same URL again is not parsed again (the
 * memo stays the same one) and is answered as before; another URL is
 * never answered from it and takes its place; a refused URL and a
 * request with secrets leave it alone. */
static void test_url_memo(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    mw__http_memo *memo = NULL;
    CHECK(memo_get(loop, h, "/fixed", &memo, 0) == 200);
    mw__http_memo *kept = memo;
    CHECK(kept != NULL);
    CHECK(memo_get(loop, h, "/fixed", &memo, 0) == 200);
    CHECK(memo == kept);
    CHECK(memo_get(loop, h, "/nope", &memo, 0) == 404);
    CHECK(memo != NULL && memo != kept);
    CHECK(memo_get(loop, h, "/fixed", &memo, 0) == 200);
    kept = memo;
    xfer x;
    xfer_init(&x);
    mw__http_opts o = opts_for("file:///etc/passwd", &x);
    o.memo = &memo;
    char *err = NULL;
    CHECK(mw__http_start(h, &o, &err) == NULL);
    CHECK(err && strstr(err, "not allowed"));
    free(err);
    xfer_clear(&x);
    CHECK(memo == kept);
    CHECK(memo_get(loop, h, "/nope", &memo, 1) == 404);
    CHECK(memo == kept);
    CHECK(memo_get(loop, h, "/fixed", &memo, 0) == 200);
    CHECK(memo == kept);
    mw__http_memo_free(memo);
    mw__http_memo_free(NULL);
    mw__http_free(h);
}

static void test_method_body_headers(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    const char *hdrs[] = {"X-Mw: forty two", "Content-Type: application/json"};
    const char *methods[] = {"POST", "PUT", "DELETE"};
    const char *want[] = {"POST [{\"a\":1}] forty two", "PUT [{\"a\":1}] forty two",
                          "DELETE [] forty two"};
    char *u = url("/echo");
    for (int i = 0; i < 3; i++) {
        xfer x;
        xfer_init(&x);
        mw__http_opts o = opts_for(u, &x);
        o.method = methods[i];
        if (i < 2) {
            o.body = "{\"a\":1}";
            o.body_len = 7;
        }
        o.headers = hdrs;
        o.nheaders = 2;
        if (start(h, &o, &x))
            run_until(loop, &x.done, 1, 10);
        CHECK(x.done == 1 && x.code == MW_OK && x.status == 200);
        CHECK_STR(x.body, want[i]);
        xfer_clear(&x);
    }
    /* A POST without a body sends an empty one (Docker's start/stop). */
    xfer x;
    xfer_init(&x);
    mw__http_opts o = opts_for(u, &x);
    o.method = "POST";
    if (start(h, &o, &x))
        run_until(loop, &x.done, 1, 10);
    CHECK_STR(x.body, "POST [] ");
    xfer_clear(&x);
    free(u);
    mw__http_free(h);
}

static void test_streaming(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    xfer x;
    xfer_init(&x);
    char *u = url("/chunked"), *want = stream_payload();
    x.want[0] = "transfer-encoding";
    mw__http_opts o = opts_for(u, &x);
    o.on_data = on_data;
    o.timeout = 0; /* streams have no total limit */
    if (start(h, &o, &x))
        run_until(loop, &x.done, 1, 10);
    CHECK(x.done == 1 && x.code == MW_OK && x.status == 200);
    CHECK(x.nheaders == 1 && !x.data_before_headers);
    CHECK_STR(x.hdr_in_headers, "chunked");
    CHECK(x.ndata > 1); /* it came in pieces */
    CHECK(x.data.len == strlen(want));
    CHECK_STR(mw__buf_str(&x.data), want);
    CHECK(x.len == 0);
    CHECK_STR(x.body, "");
    free(want);
    free(u);
    xfer_clear(&x);
    mw__http_free(h);
}

static void test_timeout(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    xfer x;
    xfer_init(&x);
    char *u = url("/slow");
    mw__http_opts o = opts_for(u, &x);
    o.timeout = 0.3;
    double t0 = mw__mono();
    if (start(h, &o, &x))
        run_until(loop, &x.done, 1, 5);
    double took = mw__mono() - t0;
    CHECK(x.done == 1);
    CHECK(x.code == MW_ETIMEOUT);
    CHECK(x.status == 200);
    CHECK_STR(x.error, "timed out after 0.3 s");
    CHECK(took >= 0.25 && took < 1.5);
    CHECK(x.elapsed >= 0.25 && x.elapsed < 1.5);
    CHECK(x.len == 0);
    free(u);
    xfer_clear(&x);
    mw__http_free(h);
}

static void test_body_cap(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    const char *paths[] = {"/huge", "/huge-chunked"};
    for (int i = 0; i < 2; i++) {
        xfer x;
        xfer_init(&x);
        char *u = url(paths[i]);
        mw__http_opts o = opts_for(u, &x);
        o.max_body = 1 << 20;
        if (start(h, &o, &x))
            run_until(loop, &x.done, 1, 10);
        CHECK(x.done == 1);
        CHECK(x.code == MW_EPARSE);
        CHECK_STR(x.error, "response body over 1048576 bytes");
        CHECK(x.len == 0);
        free(u);
        xfer_clear(&x);
    }
    /* the default cap: 10 MiB */
    xfer x;
    xfer_init(&x);
    get(loop, h, "/huge-chunked", &x);
    CHECK(x.code == MW_EPARSE);
    CHECK_STR(x.error, "response body over 10485760 bytes");
    xfer_clear(&x);
    mw__http_free(h);
}

/* A receive buffer out of curl's range is clamped (1 KiB, 16 KiB): a big
 * body arrives whole through either. */
static void test_recv_buffer(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    const size_t sizes[] = {1, (size_t)1 << 30};
    for (int i = 0; i < 2; i++) {
        xfer x;
        xfer_init(&x);
        char *u = url("/huge");
        mw__http_opts o = opts_for(u, &x);
        o.max_body = (size_t)32 << 20;
        o.recv_buffer = sizes[i];
        if (start(h, &o, &x))
            run_until(loop, &x.done, 1, 30);
        CHECK(x.done == 1);
        CHECK(x.code == MW_OK && x.status == 200);
        CHECK(x.len == 20971520);
        free(u);
        xfer_clear(&x);
    }
    mw__http_free(h);
}

static void test_broken_responses(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    xfer x;
    xfer_init(&x);
    get(loop, h, "/cut", &x);
    CHECK(x.done == 1);
    CHECK(x.code == MW_EIO);
    CHECK(x.status == 200);
    CHECK(x.error && strstr(x.error, "90 bytes remaining"));
    CHECK(x.len == 0);
    xfer_clear(&x);

    xfer_init(&x);
    get(loop, h, "/empty", &x);
    CHECK(x.done == 1 && x.code == MW_EIO && x.status == 0);
    CHECK(x.error && strcasestr(x.error, "empty reply"));
    CHECK(x.nheaders == 0);
    xfer_clear(&x);
    mw__http_free(h);
}

static void test_connect_errors(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    xfer x;
    xfer_init(&x);
    char *path = mw__sprintf("%s/missing.sock", srv.dir);
    mw__http_opts o = opts_for("http://localhost/v1.43/events", &x);
    o.unix_socket = path;
    if (start(h, &o, &x))
        run_until(loop, &x.done, 1, 10);
    char *want = mw__sprintf("connect to unix:%s: No such file or directory", path);
    CHECK(x.done == 1 && x.code == MW_EIO && x.status == 0);
    CHECK_STR(x.error, want);
    free(want);
    free(path);
    xfer_clear(&x);

    /* a loopback port nobody listens on */
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
    port = ntohs(a.sin_port);
    close(fd);
    xfer_init(&x);
    char *u = mw__sprintf("http://127.0.0.1:%d/", port);
    o = opts_for(u, &x);
    CHECK(start(h, &o, &x) != NULL);
    CHECK(x.done == 0);
    run_until(loop, &x.done, 1, 10);
    want = mw__sprintf("connect to 127.0.0.1:%d: Connection refused", port);
    CHECK(x.done == 1 && x.code == MW_EIO);
    CHECK_STR(x.error, want);
    free(want);
    free(u);
    xfer_clear(&x);
    mw__http_free(h);
}

/* A listener with a full accept queue: Linux drops further SYNs, so the
 * connect hangs until the connect timeout. */
static void test_connect_timeout(mw__loop *loop)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int lfd = socket(AF_INET, SOCK_STREAM, 0), filler = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 0) == 0);
    CHECK(getsockname(lfd, (struct sockaddr *)&a, &alen) == 0);
    CHECK(connect(filler, (struct sockaddr *)&a, sizeof a) == 0);

    mw__http *h = t_http(loop);
    xfer x;
    xfer_init(&x);
    char *u = mw__sprintf("http://127.0.0.1:%d/", ntohs(a.sin_port));
    mw__http_opts o = opts_for(u, &x);
    o.connect_timeout = 0.3;
    o.timeout = 5;
    if (start(h, &o, &x))
        run_until(loop, &x.done, 1, 5);
    char *want = mw__sprintf("connect to 127.0.0.1:%d: timed out after 0.3 s", ntohs(a.sin_port));
    CHECK(x.done == 1 && x.code == MW_ETIMEOUT && x.status == 0);
    CHECK_STR(x.error, want);
    CHECK(x.elapsed >= 0.25 && x.elapsed < 2);
    free(want);
    free(u);
    xfer_clear(&x);
    mw__http_free(h);
    close(filler);
    close(lfd);
}

static void test_unix_socket(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    int before = atomic_load(&srv.accepted);
    xfer x;
    xfer_init(&x);
    x.want[0] = "X-Test";
    mw__http_opts o = opts_for("http://localhost/fixed", &x);
    o.unix_socket = srv.sock_path;
    if (start(h, &o, &x))
        run_until(loop, &x.done, 1, 10);
    CHECK(x.done == 1 && x.code == MW_OK && x.status == 200);
    CHECK_STR(x.body, "hello world");
    CHECK_STR(x.hdr[0], "one");
    CHECK(atomic_load(&srv.accepted) == before + 1);
    xfer_clear(&x);
    mw__http_free(h);
}

static void test_refused_urls(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    const char *bad[] = {"file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/",
                         "not a url",          "127.0.0.1/fixed",   "dict://127.0.0.1/"};
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        xfer x;
        xfer_init(&x);
        mw__http_opts o = opts_for(bad[i], &x);
        char *err = NULL;
        CHECK(mw__http_start(h, &o, &err) == NULL);
        CHECK(err != NULL && strstr(err, "url"));
        free(err);
        xfer_clear(&x);
    }
    char *err = NULL;
    xfer x;
    xfer_init(&x);
    mw__http_opts o = opts_for("HTTPS://127.0.0.1:1/", &x);
    mw__http_req *ok = mw__http_start(h, &o, &err);
    CHECK(ok != NULL && err == NULL);
    mw__http_cancel(ok);
    o = opts_for("file:///etc/passwd", &x);
    CHECK(mw__http_start(h, &o, &err) == NULL);
    CHECK_STR(err, "url \"file:///etc/passwd\": scheme \"file\" not allowed (http and https only)");
    free(err);

    /* a header line that would inject another, a bad method */
    char *u = url("/fixed");
    const char *inject[] = {"X-A: 1\r\nX-B: 2"};
    o = opts_for(u, &x);
    o.headers = inject;
    o.nheaders = 1;
    err = NULL;
    CHECK(mw__http_start(h, &o, &err) == NULL);
    CHECK_STR(err, "headers[0]: not a \"Name: value\" line");
    free(err);
    o = opts_for(u, &x);
    o.method = "GET /x HTTP/1.0\r\n";
    err = NULL;
    CHECK(mw__http_start(h, &o, &err) == NULL);
    CHECK(err && strstr(err, "method"));
    free(err);
    free(u);
    run_for(loop, 0.05);
    CHECK(x.done == 0);
    CHECK(mw__http_active(h) == 0);
    xfer_clear(&x);
    mw__http_free(h);
}

static void test_redirects(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    /* followed: only the last response's headers are kept */
    xfer x;
    xfer_init(&x);
    x.want[0] = "X-Test";
    x.want[1] = "Location";
    char *u = url("/redirect");
    mw__http_opts o = opts_for(u, &x);
    o.follow_redirects = 1;
    if (start(h, &o, &x))
        run_until(loop, &x.done, 1, 10);
    CHECK(x.done == 1 && x.code == MW_OK && x.status == 200);
    CHECK_STR(x.body, "hello world");
    CHECK(x.nheaders == 1 && x.headers_status == 200);
    CHECK_STR(x.hdr[0], "one");
    CHECK(x.hdr[1] == NULL);
    free(u);
    xfer_clear(&x);

    /* not followed unless asked */
    xfer_init(&x);
    x.want[0] = "Location";
    get(loop, h, "/redirect", &x);
    CHECK(x.code == MW_OK && x.status == 302);
    CHECK_STR(x.body, "moved");
    CHECK_STR(x.hdr[0], "/fixed");
    xfer_clear(&x);

    /* to file:// and ftp://: refused */
    const char *paths[] = {"/redirect-file", "/redirect-ftp"};
    const char *errs[] = {"redirect to file:///etc/passwd refused (http and https only)",
                          "redirect to ftp://127.0.0.1/x refused (http and https only)"};
    for (int i = 0; i < 2; i++) {
        xfer_init(&x);
        u = url(paths[i]);
        o = opts_for(u, &x);
        o.follow_redirects = 1;
        if (start(h, &o, &x))
            run_until(loop, &x.done, 1, 10);
        CHECK(x.done == 1 && x.code == MW_EIO);
        CHECK_STR(x.error, errs[i]);
        CHECK(x.len == 0);
        free(u);
        xfer_clear(&x);
    }

    /* a loop: at most 5 */
    xfer_init(&x);
    u = url("/loop");
    o = opts_for(u, &x);
    o.follow_redirects = 1;
    if (start(h, &o, &x))
        run_until(loop, &x.done, 1, 10);
    CHECK(x.done == 1 && x.code == MW_EIO);
    CHECK_STR(x.error, "more than 5 redirects");
    free(u);
    xfer_clear(&x);
    mw__http_free(h);
}

static void test_continue(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    xfer x;
    xfer_init(&x);
    x.want[0] = "X-Interim";
    x.want[1] = "X-Final";
    get(loop, h, "/continue", &x);
    CHECK(x.code == MW_OK && x.status == 200);
    CHECK_STR(x.body, "ok");
    CHECK(x.nheaders == 1 && x.headers_status == 200);
    CHECK(x.hdr[0] == NULL);
    CHECK_STR(x.hdr[1], "yes");
    xfer_clear(&x);
    mw__http_free(h);
}

#define MANY 200

/* MANY transfers at once, twice: the first batch spreads over more than
 * one multi handle (128 transfers each), the second finds those handles
 * free again and opens no more. */
static void test_many(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    static xfer xs[MANY];
    const char *paths[] = {"/fixed", "/echo", "/chunked"};
    char *us[3] = {url(paths[0]), url(paths[1]), url(paths[2])};
    char *want = stream_payload();
    size_t multis = 0;
    for (int round = 0; round < 2; round++) {
        int ndone = 0, ok = 0;
        for (int i = 0; i < MANY; i++) {
            xfer_init(&xs[i]);
            xs[i].counter = &ndone;
            mw__http_opts o = opts_for(us[i % 3], &xs[i]);
            start(h, &o, &xs[i]);
        }
        CHECK(mw__http_active(h) == MANY);
        if (round == 0)
            multis = mw__http_multis(h);
        CHECK(multis == (MANY + 127) / 128);
        CHECK(mw__http_multis(h) == multis);
        run_until(loop, &ndone, MANY, 60);
        CHECK(ndone == MANY);
        for (int i = 0; i < MANY; i++) {
            const char *w = i % 3 == 0 ? "hello world" : i % 3 == 1 ? "GET [] " : want;
            ok += xs[i].done == 1 && xs[i].code == MW_OK && xs[i].status == 200 && xs[i].body &&
                  strcmp(xs[i].body, w) == 0;
            xfer_clear(&xs[i]);
        }
        CHECK(ok == MANY);
        CHECK(mw__http_active(h) == 0);
    }
    free(want);
    for (int i = 0; i < 3; i++)
        free(us[i]);
    mw__http_free(h);
}

/* PIPE_WIDTH requests in flight, each done starting the next, as the
 * Docker source pumps its inspects: the answers come in bursts, and the
 * connections of the finished transfers must still be there for the next
 * ones (curl's own bound on idle connections shrank with the transfers
 * that had left and closed them). */
#define PIPE_WIDTH 32
#define PIPE_TOTAL 640

typedef struct pipeline {
    mw__http *h;
    char *u;
    int started, ndone, ok;
    xfer xs[PIPE_TOTAL];
} pipeline;

static void pipe_done(void *ud, const mw__http_result *r);

static void pipe_next(pipeline *p)
{
    xfer *x = &p->xs[p->started++];
    mw__http_opts o = opts_for(p->u, x);
    o.on_headers = NULL;
    o.done = pipe_done;
    o.ud = p;
    start(p->h, &o, x);
}

static void pipe_done(void *ud, const mw__http_result *r)
{
    pipeline *p = ud;
    p->ok += r->code == MW_OK && r->status == 200 && r->len == 11;
    p->ndone++;
    if (p->started < PIPE_TOTAL)
        pipe_next(p);
}

static void test_pipeline_reuse(mw__loop *loop)
{
    static pipeline p;
    memset(&p, 0, sizeof p);
    p.h = t_http(loop);
    p.u = url("/fixed");
    for (int round = 0; round < 2; round++) {
        int before = atomic_load(&srv.accepted);
        p.started = p.ndone = p.ok = 0;
        for (int i = 0; i < PIPE_WIDTH; i++)
            pipe_next(&p);
        run_until(loop, &p.ndone, PIPE_TOTAL, 60);
        CHECK(p.ndone == PIPE_TOTAL);
        CHECK(p.ok == PIPE_TOTAL);
        int opened = atomic_load(&srv.accepted) - before;
        /* The first round opens about one connection per request in
         * flight, the second none. */
        CHECK(round == 0 ? opened <= PIPE_WIDTH + 4 : opened == 0);
        if (round == 0 ? opened > PIPE_WIDTH + 4 : opened != 0)
            fprintf(stderr, "pipeline round %d: %d connections for %d requests\n", round, opened,
                    PIPE_TOTAL);
    }
    free(p.u);
    mw__http_free(p.h);
}

/* The next request starts from the previous one's done and reuses its
 * connection: the socket stays watched across transfers. */
static void second_get(void *ud, const mw__http_result *r);

typedef struct chain {
    mw__http *h;
    char *u;
    xfer a, b;
    int ndone;
} chain;

static void first_done(void *ud, const mw__http_result *r)
{
    chain *c = ud;
    on_done(&c->a, r);
    mw__http_opts o = opts_for(c->u, &c->b);
    o.on_headers = NULL; /* `ud` is the chain, not an xfer */
    o.done = second_get;
    o.ud = c;
    start(c->h, &o, &c->b);
}

static void second_get(void *ud, const mw__http_result *r)
{
    chain *c = ud;
    on_done(&c->b, r);
    c->ndone = 2;
}

static void test_reuse_from_done(mw__loop *loop)
{
    chain c = {.h = t_http(loop), .u = url("/fixed")};
    xfer_init(&c.a);
    xfer_init(&c.b);
    int before = atomic_load(&srv.accepted);
    mw__http_opts o = opts_for(c.u, &c.a);
    o.on_headers = NULL;
    o.done = first_done;
    o.ud = &c;
    start(c.h, &o, &c.a);
    run_until(loop, &c.ndone, 2, 10);
    CHECK(c.ndone == 2);
    CHECK_STR(c.a.body, "hello world");
    CHECK_STR(c.b.body, "hello world");
    CHECK(atomic_load(&srv.accepted) == before + 1);
    xfer_clear(&c.a);
    xfer_clear(&c.b);
    free(c.u);
    mw__http_free(c.h);
}

static void test_cancel_from_on_data(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    xfer self, other;
    xfer_init(&self);
    xfer_init(&other);
    char *u = url("/stream");
    mw__http_opts o = opts_for(u, &other);
    o.on_data = on_data;
    o.timeout = 0;
    start(h, &o, &other);
    /* let `other` run, then cancel it and itself from `self`'s on_data */
    run_until(loop, &other.ndata, 2, 5);
    CHECK(other.ndata >= 2);
    o = opts_for(u, &self);
    o.on_data = on_data;
    o.timeout = 0;
    self.cancel_after = 3;
    start(h, &o, &self);
    self.cancel_on = other.req;
    CHECK(mw__http_active(h) == 2);
    run_until(loop, &self.ndata, 3, 5);
    CHECK(self.ndata == 3);
    int other_seen = other.ndata;
    run_for(loop, 0.2);
    CHECK(self.ndata == 3);
    CHECK(other.ndata == other_seen);
    CHECK(self.done == 0 && other.done == 0);
    CHECK(mw__http_active(h) == 0);
    xfer_clear(&self);
    xfer_clear(&other);

    /* on_data returning non-zero: done reports "aborted" */
    xfer x;
    xfer_init(&x);
    o = opts_for(u, &x);
    o.on_data = on_data;
    o.timeout = 0;
    x.abort_after = 2;
    start(h, &o, &x);
    run_until(loop, &x.done, 1, 5);
    CHECK(x.done == 1 && x.code == MW_EIO && x.ndata == 2);
    CHECK_STR(x.error, "aborted");
    xfer_clear(&x);

    /* cancel from on_headers */
    xfer_init(&x);
    o = opts_for(u, &x);
    o.on_data = on_data;
    x.cancel_in_headers = 1;
    start(h, &o, &x);
    run_until(loop, &x.nheaders, 1, 5);
    run_for(loop, 0.1);
    CHECK(x.nheaders == 1 && x.ndata == 0 && x.done == 0);
    CHECK(mw__http_active(h) == 0);
    xfer_clear(&x);
    free(u);
    mw__http_free(h);
}

static void test_cancel_before_start(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    int before = atomic_load(&srv.requests);
    xfer x, y;
    xfer_init(&x);
    xfer_init(&y);
    char *u = url("/fixed");
    mw__http_opts o = opts_for(u, &x);
    start(h, &o, &x);
    o.ud = &y;
    start(h, &o, &y);
    mw__http_cancel(x.req);
    CHECK(mw__http_active(h) == 1);
    run_until(loop, &y.done, 1, 10);
    run_for(loop, 0.05);
    CHECK(x.done == 0 && x.nheaders == 0);
    CHECK(y.done == 1 && y.code == MW_OK);
    CHECK(atomic_load(&srv.requests) == before + 1);
    CHECK(mw__http_active(h) == 0);
    free(u);
    xfer_clear(&x);
    xfer_clear(&y);
    mw__http_free(h);
}

static void test_free_in_flight(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    xfer xs[4];
    char *u = url("/stream"), *slow = url("/slow");
    for (int i = 0; i < 3; i++) {
        xfer_init(&xs[i]);
        mw__http_opts o = opts_for(i == 2 ? slow : u, &xs[i]);
        o.on_data = on_data;
        start(h, &o, &xs[i]);
    }
    run_until(loop, &xs[0].ndata, 3, 5);
    CHECK(xs[0].ndata >= 3);
    xfer_init(&xs[3]); /* one still waiting for its kick */
    mw__http_opts o = opts_for(u, &xs[3]);
    start(h, &o, &xs[3]);
    CHECK(mw__http_active(h) == 4);
    mw__http_free(h);
    CHECK(mw__loop_timers(loop) == 0);
    run_for(loop, 0.1);
    for (int i = 0; i < 4; i++) {
        CHECK(xs[i].done == 0);
        xfer_clear(&xs[i]);
    }
    free(u);
    free(slow);
}

/* Freeing the client from on_data, with another transfer in flight. */
static void test_free_in_data(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    xfer a, b;
    xfer_init(&a);
    xfer_init(&b);
    char *stream = url("/stream"), *slow = url("/slow");
    mw__http_opts o = opts_for(slow, &b);
    start(h, &o, &b);
    o = opts_for(stream, &a);
    o.on_data = on_data;
    a.free_in_data = &h;
    start(h, &o, &a);
    run_until(loop, &a.ndata, 1, 10);
    CHECK(a.ndata == 1);
    CHECK(h == NULL);
    run_for(loop, 0.1);
    CHECK(a.ndata == 1 && a.done == 0 && b.done == 0);
    CHECK(mw__loop_timers(loop) == 0);
    xfer_clear(&a);
    xfer_clear(&b);
    free(stream);
    free(slow);
}

/* Cancelling a running transfer from another one's done. */
static void test_cancel_in_done(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    xfer a, b;
    xfer_init(&a);
    xfer_init(&b);
    char *fixed = url("/fixed"), *slow = url("/slow");
    mw__http_opts o = opts_for(slow, &b);
    start(h, &o, &b);
    o = opts_for(fixed, &a);
    start(h, &o, &a);
    a.cancel_in_done = b.req;
    run_until(loop, &a.done, 1, 10);
    CHECK(a.done == 1 && a.code == MW_OK);
    CHECK(mw__http_active(h) == 0);
    run_for(loop, 0.1);
    CHECK(b.done == 0);
    xfer_clear(&a);
    xfer_clear(&b);
    free(fixed);
    free(slow);
    mw__http_free(h);
}

/* Freeing the client from a done callback, with others still running. */
static void test_free_in_done(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    xfer a, b;
    xfer_init(&a);
    xfer_init(&b);
    char *fixed = url("/fixed"), *stream = url("/stream");
    mw__http_opts o = opts_for(stream, &b);
    o.on_data = on_data;
    start(h, &o, &b);
    o = opts_for(fixed, &a);
    a.free_in_done = &h;
    start(h, &o, &a);
    run_until(loop, &a.done, 1, 10);
    CHECK(a.done == 1 && a.code == MW_OK);
    CHECK(h == NULL);
    int seen = b.ndata;
    run_for(loop, 0.1);
    CHECK(b.done == 0 && b.ndata == seen);
    CHECK(mw__loop_timers(loop) == 0);
    xfer_clear(&a);
    xfer_clear(&b);
    free(fixed);
    free(stream);
}

/* ------------------------------------------------------------- link-local */

/* Whether IPv6 sockets can be made here (curl resolves IPv6 literals only
 * then). */
static int have_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

/* Every URL is refused before a socket is made, so nothing is ever sent
 * off loopback; the allowed path is only tried against 127.0.0.1. */
static void test_link_local(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    static const struct {
        const char *url, *addr;
        int v6;
    } cases[] = {
        {"http://169.254.169.254/latest/meta-data/", "169.254.169.254", 0},
        {"https://169.254.1.2:8443/x", "169.254.1.2", 0},
        {"http://[fe80::1]/", "fe80::1", 1},
        {"http://[febf:ffff::2]:8080/", "febf:ffff::2", 1},
        {"http://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254", 1},
        {"http://[fd00:ec2::254]/", "fd00:ec2::254", 1},
    };
    int v6 = have_ipv6();
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        if (cases[i].v6 && !v6)
            continue;
        xfer x;
        xfer_init(&x);
        mw__http_opts o = opts_for(cases[i].url, &x);
        o.deny_link_local = 1;
        if (start(h, &o, &x))
            run_until(loop, &x.done, 1, 5);
        char *want = mw__sprintf("refused: %s is a link-local address", cases[i].addr);
        CHECK(x.done == 1 && x.code == MW_EIO && x.status == 0);
        CHECK_STR(x.error, want);
        CHECK(x.elapsed < 1); /* no connect attempt to wait for */
        CHECK(x.nheaders == 0);
        free(want);
        xfer_clear(&x);
    }

    /* the flag leaves loopback alone */
    xfer x;
    xfer_init(&x);
    char *u = url("/fixed");
    mw__http_opts o = opts_for(u, &x);
    o.deny_link_local = 1;
    if (start(h, &o, &x))
        run_until(loop, &x.done, 1, 10);
    CHECK(x.done == 1 && x.code == MW_OK && x.status == 200);
    CHECK_STR(x.body, "hello world");
    free(u);
    xfer_clear(&x);

    /* a redirect from loopback to the metadata address: refused */
    xfer_init(&x);
    u = url("/redirect-metadata");
    o = opts_for(u, &x);
    o.deny_link_local = 1;
    o.follow_redirects = 1;
    int before = atomic_load(&srv.requests);
    if (start(h, &o, &x))
        run_until(loop, &x.done, 1, 10);
    CHECK(x.done == 1 && x.code == MW_EIO);
    CHECK_STR(x.error, "refused: 169.254.169.254 is a link-local address");
    CHECK(x.nheaders == 0); /* the redirect's headers are not the answer */
    CHECK(atomic_load(&srv.requests) == before + 1);
    free(u);
    xfer_clear(&x);
    mw__http_free(h);

    /* A transfer with the flag never reuses a connection opened without
     * it (that one could lead anywhere); the others may use its. */
    h = t_http(loop);
    u = url("/fixed");
    static const int deny[] = {0, 1, 1, 0};
    static const int new_conns[] = {1, 2, 2, 2};
    int accepted = atomic_load(&srv.accepted);
    for (size_t i = 0; i < MW_ARRAY_LEN(deny); i++) {
        xfer_init(&x);
        o = opts_for(u, &x);
        o.deny_link_local = deny[i];
        if (start(h, &o, &x))
            run_until(loop, &x.done, 1, 10);
        CHECK(x.code == MW_OK && x.status == 200);
        CHECK(atomic_load(&srv.accepted) == accepted + new_conns[i]);
        xfer_clear(&x);
    }
    free(u);
    mw__http_free(h);
}

/* ------------------------------------------------------------- headers, body */

typedef struct hdr_walk {
    mw__buf seen;
    int stop_after, calls;
} hdr_walk;

static int walk_header(void *ud, const char *name, const char *value)
{
    hdr_walk *w = ud;
    mw__buf_addf(&w->seen, "%s=%s;", name, value);
    return ++w->calls == w->stop_after;
}

typedef struct taker {
    mw__http_req *req;
    int done, each;
    hdr_walk walk[2];
    char *taken;
    size_t taken_len;
    const char *body_after; /* the result's body after the take */
    size_t len_after;
    mw_code code;
} taker;

static void taker_done(void *ud, const mw__http_result *r)
{
    taker *t = ud;
    t->done++;
    t->code = r->code;
    if (t->each) {
        mw__http_header_each(t->req, walk_header, &t->walk[0]);
        mw__http_header_each(t->req, walk_header, &t->walk[1]);
    }
    t->taken_len = 12345;
    t->taken = mw__http_take_body(t->req, &t->taken_len);
    t->body_after = r->body;
    t->len_after = r->len;
}

static void taker_run(mw__loop *loop, mw__http *h, const char *path, taker *t)
{
    char *u = url(path);
    mw__http_opts o = {.url = u, .timeout = 10, .done = taker_done, .ud = t};
    char *err = NULL;
    t->req = mw__http_start(h, &o, &err);
    CHECK(t->req != NULL);
    free(err);
    if (t->req)
        run_until(loop, &t->done, 1, 10);
    free(u);
}

/* One request of `method` (with `body` when not NULL) and `headers` to
 * `u`, redirects followed; the answer's body into `out`. */
static void redirected(mw__loop *loop, mw__http *h, const char *u, const char *method,
                       const char *body, const char *const *headers, size_t nheaders, xfer *x)
{
    mw__http_opts o = opts_for(u, x);
    o.method = method;
    o.body = body;
    o.body_len = body ? strlen(body) : 0;
    o.headers = headers;
    o.nheaders = nheaders;
    o.follow_redirects = 1;
    if (start(h, &o, x))
        run_until(loop, &x->done, 1, 10);
}

/* Redirects are followed by http.c itself (so that each hop is checked
 * before it is sent): the method and body as curl would treat them, and
 * credentials only to the first origin. */
static void test_redirect_semantics(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    static const struct {
        const char *path, *method, *body, *want;
    } cases[] = {
        {"/r302?/echo", "POST", "x", "GET [] "},   /* 302 of a POST: GET */
        {"/r301?/echo", "POST", "x", "GET [] "},   /* 301 of a POST: GET */
        {"/r307?/echo", "POST", "x", "POST [x] "}, /* 307: the same request */
        {"/r308?/echo", "PUT", "y", "PUT [y] "},   /* 308 too */
        {"/r301?/echo", "PUT", "y", "PUT [y] "},   /* 301 of another method: kept */
        {"/r303?/echo", "PUT", "y", "GET [] "},    /* 303: GET */
        {"/r303?/echo", "DELETE", NULL, "GET [] "},
        {"/r302?/r303?/echo", "POST", "x", "GET [] "}, /* two hops */
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        xfer x;
        xfer_init(&x);
        char *u = url(cases[i].path);
        redirected(loop, h, u, cases[i].method, cases[i].body, NULL, 0, &x);
        CHECK(x.done == 1 && x.code == MW_OK && x.status == 200);
        if (!x.body || strcmp(x.body, cases[i].want) != 0)
            fprintf(stderr, "%s %s: %s\n", cases[i].method, cases[i].path, x.body);
        CHECK_STR(x.body, cases[i].want);
        CHECK(x.nheaders == 1 && x.headers_status == 200); /* the last response only */
        free(u);
        xfer_clear(&x);
    }

    /* HEAD stays HEAD after a 303 */
    xfer x;
    xfer_init(&x);
    char *u = url("/r303?/echo");
    redirected(loop, h, u, "HEAD", NULL, NULL, 0, &x);
    CHECK(x.done == 1 && x.code == MW_OK && x.status == 200 && x.len == 0);
    free(u);
    xfer_clear(&x);

    /* credentials stay with the first origin (127.0.0.1:port), other
     * headers go on */
    static const char *const hdrs[] = {"Authorization: Bearer s3cret", "Cookie: id=1",
                                       "X-Mw: kept"};
    char path[128];
    snprintf(path, sizeof path, "/r302?http://localhost:%d/echo-auth", srv.port);
    const char *paths[] = {"/r302?/echo-auth", path};
    const char *want[] = {"GET auth=Bearer s3cret cookie=id=1 x=kept", "GET auth= cookie= x=kept"};
    for (size_t i = 0; i < 2; i++) {
        xfer_init(&x);
        u = url(paths[i]);
        redirected(loop, h, u, NULL, NULL, hdrs, MW_ARRAY_LEN(hdrs), &x);
        CHECK(x.done == 1 && x.code == MW_OK && x.status == 200);
        CHECK_STR(x.body, want[i]);
        free(u);
        xfer_clear(&x);
    }

    /* a redirect to a closed port: the error of that hop, no status */
    xfer_init(&x);
    u = url("/r302?http://127.0.0.1:1/");
    redirected(loop, h, u, NULL, NULL, NULL, 0, &x);
    CHECK(x.done == 1 && x.code == MW_EIO && x.status == 0 && x.nheaders == 0);
    CHECK(x.error && strstr(x.error, "connect to 127.0.0.1:1: ") == x.error);
    free(u);
    xfer_clear(&x);
    mw__http_free(h);
}

static void test_header_each(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    taker t = {.each = 1, .walk = {{.stop_after = 0}, {.stop_after = 2}}};
    mw__buf_init(&t.walk[0].seen, 4096);
    mw__buf_init(&t.walk[1].seen, 4096);
    taker_run(loop, h, "/fixed", &t);
    CHECK(t.done == 1);
    /* in order received, names as sent */
    CHECK_STR(mw__buf_str(&t.walk[0].seen),
              "Content-Length=11;X-Test=one;Content-Type=text/plain;");
    /* stops when fn returns non-zero */
    CHECK_STR(mw__buf_str(&t.walk[1].seen), "Content-Length=11;X-Test=one;");
    free(t.taken);
    mw__buf_free(&t.walk[0].seen);
    mw__buf_free(&t.walk[1].seen);

    /* after a followed redirect: only the final response's */
    taker r = {.each = 1};
    mw__buf_init(&r.walk[0].seen, 4096);
    mw__buf_init(&r.walk[1].seen, 4096);
    char *u = url("/redirect");
    mw__http_opts o = {
        .url = u, .timeout = 10, .follow_redirects = 1, .done = taker_done, .ud = &r};
    r.req = mw__http_start(h, &o, NULL);
    if (r.req)
        run_until(loop, &r.done, 1, 10);
    CHECK_STR(mw__buf_str(&r.walk[0].seen),
              "Content-Length=11;X-Test=one;Content-Type=text/plain;");
    free(u);
    free(r.taken);
    mw__buf_free(&r.walk[0].seen);
    mw__buf_free(&r.walk[1].seen);
    mw__http_header_each(NULL, walk_header, NULL); /* no-op */
    mw__http_free(h);
}

static void test_take_body(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    taker t = {0};
    taker_run(loop, h, "/fixed", &t);
    CHECK(t.done == 1 && t.code == MW_OK);
    CHECK_STR(t.taken, "hello world");
    CHECK(t.taken_len == 11);
    CHECK_STR(t.body_after, "");
    CHECK(t.len_after == 0);
    free(t.taken);

    /* a larger body, chunked */
    char *want = stream_payload();
    t = (taker){0};
    taker_run(loop, h, "/chunked", &t);
    CHECK_STR(t.taken, want);
    CHECK(t.taken_len == strlen(want));
    free(t.taken);
    free(want);

    /* an empty body and a failed transfer: "" to free, never NULL */
    t = (taker){0};
    taker_run(loop, h, "/empty", &t);
    CHECK(t.code == MW_EIO);
    CHECK_STR(t.taken, "");
    CHECK(t.taken_len == 0);
    free(t.taken);

    /* outside done: nothing to take */
    size_t len = 7;
    CHECK(mw__http_take_body(NULL, &len) == NULL && len == 0);
    mw__http_free(h);
}

/* ------------------------------------------------------------- TLS server */

/* tests/fixtures/tls/tls_server.py, run with certificates made now. */
typedef struct tls_srv {
    int up;
    char dir[32], cert[64], key[64], client_cert[64], client_key[64];
    int https_port, echo_port, mtls_port;
    pid_t pid;
    int in_fd;        /* its stdin: it exits when this closes */
    double not_after; /* the server certificate's, as asked of openssl */
} tls_srv;

static int run_cmd(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* A self-signed P-256 certificate for `cn`, valid `days`. */
static int make_cert(const char *cn, const char *cert, const char *key, const char *days)
{
    char subj[64];
    snprintf(subj, sizeof subj, "/CN=%s", cn);
    char *argv[] = {"openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    (char *)key,
                    "-out",
                    (char *)cert,
                    "-days",
                    (char *)days,
                    "-subj",
                    subj,
                    "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    NULL};
    return run_cmd(argv);
}

static int tls_start(tls_srv *t)
{
    memset(t, 0, sizeof *t);
    t->in_fd = -1;
    snprintf(t->dir, sizeof t->dir, "/tmp/mw-tls-XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    snprintf(t->cert, sizeof t->cert, "%s/cert.pem", t->dir);
    snprintf(t->key, sizeof t->key, "%s/key.pem", t->dir);
    snprintf(t->client_cert, sizeof t->client_cert, "%s/client.pem", t->dir);
    snprintf(t->client_key, sizeof t->client_key, "%s/client-key.pem", t->dir);
    if (make_cert("localhost", t->cert, t->key, "400") != 0 ||
        make_cert("client", t->client_cert, t->client_key, "30") != 0) {
        fprintf(stderr, "SKIP TLS tests: openssl could not make certificates\n");
        return -1;
    }
    t->not_after = (double)time(NULL) + 400 * 86400.0;

    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    t->pid = fork();
    if (t->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        char *argv[] = {"python3",      MW_TEST_FIXTURES "/tls/tls_server.py",
                        t->cert,        t->key,
                        t->client_cert, NULL};
        execvp(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    t->in_fd = in[1];
    char line[128] = "";
    size_t len = 0;
    while (t->pid > 0 && len + 1 < sizeof line && !memchr(line, '\n', len)) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, 10000) <= 0)
            break;
        ssize_t n = read(out[0], line + len, sizeof line - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        line[len] = '\0';
    }
    close(out[0]);
    if (sscanf(line, "ports %d %d %d", &t->https_port, &t->echo_port, &t->mtls_port) != 3) {
        fprintf(stderr, "SKIP TLS tests: python3 %s/tls/tls_server.py did not start\n",
                MW_TEST_FIXTURES);
        return -1;
    }
    t->up = 1;
    return 0;
}

static void tls_stop(tls_srv *t)
{
    if (t->in_fd >= 0)
        close(t->in_fd);
    if (t->pid > 0) {
        int st;
        while (waitpid(t->pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    const char *files[] = {t->cert, t->key, t->client_cert, t->client_key};
    for (size_t i = 0; i < MW_ARRAY_LEN(files); i++)
        if (files[i][0])
            unlink(files[i]);
    if (t->dir[0])
        rmdir(t->dir);
}

/* ------------------------------------------------------------- TLS requests */

typedef struct tls_case {
    const char *path;
    int mtls, no_verify, ca, client, want_cert;
} tls_case;

static void tls_get(mw__loop *loop, mw__http *h, const tls_srv *t, const tls_case *c, xfer *x)
{
    char *u =
        mw__sprintf("https://127.0.0.1:%d%s", c->mtls ? t->mtls_port : t->https_port, c->path);
    mw__http_opts o = opts_for(u, x);
    o.tls.no_verify = c->no_verify;
    o.tls.ca_file = c->ca ? t->cert : NULL;
    o.tls.client_cert = c->client ? t->client_cert : NULL;
    o.tls.client_key = c->client ? t->client_key : NULL;
    o.want_cert = c->want_cert;
    if (start(h, &o, x))
        run_until(loop, &x->done, 1, 10);
    free(u);
}

static void test_tls_requests(mw__loop *loop, const tls_srv *t)
{
    mw__http *h = t_http(loop);
    xfer x;

    /* no_verify: a self-signed certificate is fine */
    xfer_init(&x);
    x.want[0] = "X-Tls";
    tls_get(loop, h, t, &(tls_case){.path = "/fixed", .no_verify = 1}, &x);
    CHECK(x.done == 1 && x.code == MW_OK && x.status == 200);
    CHECK_STR(x.body, "hello tls");
    CHECK_STR(x.hdr[0], "yes");
    CHECK(x.cert_not_after == 0); /* not asked for */
    xfer_clear(&x);

    /* verified against the system's CAs: refused */
    xfer_init(&x);
    tls_get(loop, h, t, &(tls_case){.path = "/fixed"}, &x);
    CHECK(x.done == 1 && x.code == MW_EIO && x.status == 0);
    CHECK(x.error && strstr(x.error, "certificate"));
    xfer_clear(&x);

    /* against its own certificate as the CA: verified */
    xfer_init(&x);
    tls_get(loop, h, t, &(tls_case){.path = "/fixed", .ca = 1, .want_cert = 1}, &x);
    CHECK(x.done == 1 && x.code == MW_OK && x.status == 200);
    CHECK_STR(x.body, "hello tls");
    CHECK_NEAR(x.cert_not_after, t->not_after, 86400);
    xfer_clear(&x);

    /* again, on the same client: a connection is not reused without a
     * handshake to read the certificate from */
    xfer_init(&x);
    tls_get(loop, h, t, &(tls_case){.path = "/fixed", .no_verify = 1, .want_cert = 1}, &x);
    CHECK(x.done == 1 && x.code == MW_OK);
    CHECK_NEAR(x.cert_not_after, t->not_after, 86400);
    xfer_clear(&x);

    /* a failed verification still reports nothing as the expiry */
    xfer_init(&x);
    tls_get(loop, h, t, &(tls_case){.path = "/fixed", .want_cert = 1}, &x);
    CHECK(x.code == MW_EIO && x.cert_not_after == 0);
    xfer_clear(&x);

    /* client certificates */
    xfer_init(&x);
    tls_get(loop, h, t, &(tls_case){.path = "/whoami", .mtls = 1, .ca = 1, .client = 1}, &x);
    CHECK(x.done == 1 && x.code == MW_OK && x.status == 200);
    CHECK_STR(x.body, "client");
    xfer_clear(&x);
    xfer_init(&x);
    tls_get(loop, h, t, &(tls_case){.path = "/whoami", .mtls = 1, .ca = 1}, &x);
    CHECK(x.done == 1 && x.code == MW_EIO && x.status == 0);
    xfer_clear(&x);

    /* want_cert over plain http: 0 */
    xfer_init(&x);
    char *u = url("/fixed");
    mw__http_opts o = opts_for(u, &x);
    o.want_cert = 1;
    if (start(h, &o, &x))
        run_until(loop, &x.done, 1, 10);
    CHECK(x.code == MW_OK && x.cert_not_after == 0);
    free(u);
    xfer_clear(&x);
    mw__http_free(h);
}

/* ------------------------------------------------------------- connections */

/* What one connection saw. */
typedef struct cx {
    mw__http_req *req;
    mw__http_conn *conn;
    int done, ready;
    mw_code code;
    char *error;
    double cert_not_after;
    mw__http **free_in_ready; /* ready: free the client */
} cx;

static void cx_done(void *ud, mw__http_conn *c, const mw__http_result *r)
{
    cx *x = ud;
    x->done++;
    x->conn = c;
    x->code = r->code;
    x->cert_not_after = r->cert_not_after;
    free(x->error);
    x->error = r->error ? mw__strdup(r->error) : NULL;
}

static void cx_ready(void *ud)
{
    cx *x = ud;
    x->ready++;
    if (x->free_in_ready) {
        mw__http_free(*x->free_in_ready);
        *x->free_in_ready = NULL;
        x->conn = NULL; /* closed with it */
    }
}

static mw__http_conn_opts cx_opts(const char *host, int port, cx *x)
{
    return (mw__http_conn_opts){
        .host = host, .port = (unsigned)port, .connect_timeout = 5, .done = cx_done, .ud = x};
}

static mw__http_req *cx_start(mw__http *h, const mw__http_conn_opts *o, cx *x)
{
    char *err = NULL;
    x->req = mw__http_connect(h, o, &err);
    if (!x->req)
        fprintf(stderr, "connect %s:%u: %s\n", o->host, o->port, err ? err : "?");
    free(err);
    return x->req;
}

/* Connects and runs the loop until done. */
static void cx_connect(mw__loop *loop, mw__http *h, const mw__http_conn_opts *o, cx *x)
{
    if (cx_start(h, o, x))
        run_until(loop, &x->done, 1, 10);
}

/* Waits (on the loop) until `c` may be ready; 0 when it said so. */
static int cx_wait(mw__loop *loop, cx *x, int want_write)
{
    int before = x->ready;
    if (mw__http_conn_wait(x->conn, want_write, cx_ready, x) != 0)
        return -1;
    run_until(loop, &x->ready, before + 1, 5);
    return x->ready == before + 1 ? 0 : -1;
}

/* Sends all of `p`, waiting when it would block; 0, or -1. */
static int cx_send_all(mw__loop *loop, cx *x, const char *p, size_t n)
{
    while (n > 0) {
        const char *err = NULL;
        long w = mw__http_conn_send(x->conn, p, n, &err);
        if (w == MW_HTTP_AGAIN) {
            if (cx_wait(loop, x, 1) != 0)
                return -1;
            continue;
        }
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Receives into `b` until it holds `want` bytes or the stream ends,
 * `chunk` bytes at a time, waiting only after MW_HTTP_AGAIN. Returns 1 at
 * end of stream, 0 otherwise, -1 on error or when stuck. */
static int cx_recv(mw__loop *loop, cx *x, mw__buf *b, size_t want, size_t chunk, int *waits)
{
    char buf[65536];
    while (b->len < want) {
        const char *err = NULL;
        long n = mw__http_conn_recv(x->conn, buf, chunk < sizeof buf ? chunk : sizeof buf, &err);
        if (n == MW_HTTP_AGAIN) {
            if (waits)
                (*waits)++;
            if (cx_wait(loop, x, 0) != 0)
                return -1;
            continue;
        }
        if (n < 0) {
            fprintf(stderr, "recv: %s\n", err ? err : "?");
            return -1;
        }
        if (n == 0)
            return 1;
        mw__buf_add(b, buf, (size_t)n);
    }
    return 0;
}

/* Waits up to 5 s for the echo server to have seen `want` clients go. */
static int echo_closes(mw__loop *loop, int want)
{
    double end = mw__mono() + 5;
    while (atomic_load(&srv.echo_gone) < want && mw__mono() < end)
        mw__loop_run_once(loop, 10);
    return atomic_load(&srv.echo_gone);
}

static void test_conn_plain(mw__loop *loop)
{
    mw__http *h = t_http(loop);
    cx x = {0};
    mw__http_conn_opts o = cx_opts("127.0.0.1", srv.echo_port, &x);
    o.deny_link_local = 1;
    int gone = atomic_load(&srv.echo_gone);
    CHECK(cx_start(h, &o, &x) != NULL);
    CHECK(x.done == 0); /* never from inside mw__http_connect() */
    CHECK(mw__http_active(h) == 1);
    run_until(loop, &x.done, 1, 10);
    CHECK(x.done == 1 && x.code == MW_OK && x.conn != NULL && x.error == NULL);
    CHECK(mw__http_active(h) == 0);
    if (!x.conn) {
        mw__http_free(h);
        return;
    }
    /* nothing there yet; curl no longer watches the socket, so a wait
     * can be set up on it */
    char buf[64];
    const char *err = "unset";
    CHECK(mw__http_conn_recv(x.conn, buf, sizeof buf, &err) == MW_HTTP_AGAIN);
    CHECK(err == NULL);
    CHECK(cx_wait(loop, &x, 1) == 0);
    CHECK(mw__http_conn_send(x.conn, "hello", 5, &err) == 5);
    mw__buf b;
    mw__buf_init(&b, 1 << 20);
    CHECK(cx_recv(loop, &x, &b, 5, sizeof buf, NULL) == 0);
    CHECK_STR(mw__buf_str(&b), "hello");

    /* a new wait replaces the last one: one call, for reading */
    mw__buf_reset(&b);
    int before = x.ready;
    CHECK(mw__http_conn_wait(x.conn, 1, cx_ready, &x) == 0);
    CHECK(mw__http_conn_wait(x.conn, 0, cx_ready, &x) == 0);
    run_for(loop, 0.05);
    CHECK(x.ready == before); /* writable, but nothing to read */
    CHECK(mw__http_conn_send(x.conn, "again", 5, &err) == 5);
    run_until(loop, &x.ready, before + 1, 5);
    run_for(loop, 0.05);
    CHECK(x.ready == before + 1); /* once */
    CHECK(cx_recv(loop, &x, &b, 5, 2, NULL) == 0);
    CHECK_STR(mw__buf_str(&b), "again");

    /* the server echoes, then closes: the rest, then 0 at end of stream */
    mw__buf_reset(&b);
    CHECK(cx_send_all(loop, &x, "bye\x04", 4) == 0);
    CHECK(cx_recv(loop, &x, &b, SIZE_MAX, sizeof buf, NULL) == 1);
    CHECK_STR(mw__buf_str(&b), "bye");
    CHECK(mw__http_conn_recv(x.conn, buf, sizeof buf, &err) == 0);
    /* writing to it now fails without a SIGPIPE */
    long w = 0;
    for (int i = 0; i < 50 && w >= 0; i++) {
        w = mw__http_conn_send(x.conn, "x", 1, &err);
        if (w >= 0)
            run_for(loop, 0.01);
    }
    CHECK(w == MW_HTTP_FAIL && err && *err);
    mw__http_conn_close(x.conn);
    CHECK(atomic_load(&srv.echo_gone) == gone); /* the server closed first */
    mw__buf_free(&b);
    free(x.error);

    /* a client close reaches the server; with a wait pending it is dropped */
    x = (cx){0};
    o = cx_opts("localhost", srv.echo_port, &x);
    cx_connect(loop, h, &o, &x);
    CHECK(x.code == MW_OK && x.conn);
    if (x.conn) {
        CHECK(mw__http_conn_wait(x.conn, 0, cx_ready, &x) == 0);
        mw__http_conn_close(x.conn);
        run_for(loop, 0.05);
        CHECK(x.ready == 0);
        CHECK(echo_closes(loop, gone + 1) == gone + 1);
    }
    free(x.error);

    /* closed with data unread */
    x = (cx){0};
    o = cx_opts("127.0.0.1", srv.echo_port, &x);
    cx_connect(loop, h, &o, &x);
    CHECK(x.code == MW_OK && x.conn);
    if (x.conn) {
        CHECK(mw__http_conn_send(x.conn, "unread", 6, &err) == 6);
        CHECK(cx_wait(loop, &x, 0) == 0); /* the echo is there */
        mw__http_conn_close(x.conn);
        CHECK(echo_closes(loop, gone + 2) == gone + 2);
    }
    free(x.error);
    mw__http_free(h);
}

/* libcurl closes the idle connections of a multi handle that look dead
 * (their peer closed) or old when a transfer opens a new connection, at
 * most once a second; a connection not yet read from or written to is
 * idle to it. A connection is in no multi handle HTTP transfers use. */
static void test_conn_not_pruned(mw__loop *loop)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 4) == 0);
    CHECK(getsockname(lfd, (struct sockaddr *)&a, &alen) == 0);
    mw__http *h = t_http(loop);
    cx x = {0};
    mw__http_conn_opts o = cx_opts("127.0.0.1", ntohs(a.sin_port), &x);
    cx_connect(loop, h, &o, &x);
    CHECK(x.code == MW_OK && x.conn != NULL);
    int fd = accept(lfd, NULL, NULL);
    CHECK(fd >= 0);
    close(fd); /* the server goes, nothing sent: curl would call it dead */
    run_for(loop, 1.1);
    xfer hx;
    xfer_init(&hx);
    get(loop, h, "/fixed", &hx);
    CHECK(hx.code == MW_OK);
    xfer_clear(&hx);
    if (x.conn) {
        mw__buf b;
        mw__buf_init(&b, 64);
        CHECK(cx_recv(loop, &x, &b, SIZE_MAX, 64, NULL) == 1); /* end, not an error */
        CHECK(b.len == 0);
        mw__buf_free(&b);
        mw__http_conn_close(x.conn);
    }
    free(x.error);
    mw__http_free(h);
    close(lfd);
}

/* Many connections and HTTP transfers at once on one client. */
static void test_conn_many(mw__loop *loop)
{
    enum { N = 20 };
    mw__http *h = t_http(loop);
    static cx xs[N];
    int ndone = 0, ok = 0;
    for (int i = 0; i < N; i++) {
        xs[i] = (cx){0};
        mw__http_conn_opts o = cx_opts("127.0.0.1", srv.echo_port, &xs[i]);
        cx_start(h, &o, &xs[i]);
    }
    xfer x;
    xfer_init(&x);
    get(loop, h, "/fixed", &x); /* transfers run alongside */
    CHECK(x.code == MW_OK);
    xfer_clear(&x);
    for (int i = 0; i < N; i++) {
        run_until(loop, &xs[i].done, 1, 10);
        ndone += xs[i].done;
    }
    CHECK(ndone == N);
    for (int i = 0; i < N; i++) {
        if (!xs[i].conn)
            continue;
        char msg[16], got[16] = "";
        int n = snprintf(msg, sizeof msg, "conn %d", i);
        mw__buf b;
        mw__buf_init(&b, 64);
        if (cx_send_all(loop, &xs[i], msg, (size_t)n) == 0 &&
            cx_recv(loop, &xs[i], &b, (size_t)n, sizeof got, NULL) == 0)
            ok += strcmp(mw__buf_str(&b), msg) == 0;
        mw__buf_free(&b);
    }
    CHECK(ok == N);
    /* some closed by hand, the rest by mw__http_free() */
    for (int i = 0; i < N; i += 2)
        mw__http_conn_close(xs[i].conn);
    mw__http_free(h);
    for (int i = 0; i < N; i++)
        free(xs[i].error);
}

static void test_conn_errors(mw__loop *loop)
{
    mw__http *h = t_http(loop);

    /* refused */
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
    port = ntohs(a.sin_port);
    close(fd);
    cx x = {0};
    mw__http_conn_opts o = cx_opts("127.0.0.1", port, &x);
    cx_connect(loop, h, &o, &x);
    char *want = mw__sprintf("connect to 127.0.0.1:%d: Connection refused", port);
    CHECK(x.done == 1 && x.code == MW_EIO && x.conn == NULL);
    CHECK_STR(x.error, want);
    free(want);
    free(x.error);

    /* link-local: refused before a socket is made */
    const char *ll[] = {"169.254.169.254", "fe80::1", "fd00:ec2::254"};
    for (size_t i = 0; i < MW_ARRAY_LEN(ll); i++) {
        if (i > 0 && !have_ipv6())
            break;
        x = (cx){0};
        o = cx_opts(ll[i], 80, &x);
        o.deny_link_local = 1;
        cx_connect(loop, h, &o, &x);
        want = mw__sprintf("refused: %s is a link-local address", ll[i]);
        CHECK(x.done == 1 && x.code == MW_EIO && x.conn == NULL);
        CHECK_STR(x.error, want);
        free(want);
        free(x.error);
    }

    /* bad arguments */
    const char *hosts[] = {"", "a/b", "[::1]", "x y", "u@h"};
    for (size_t i = 0; i < MW_ARRAY_LEN(hosts); i++) {
        x = (cx){0};
        o = cx_opts(hosts[i], 80, &x);
        char *err = NULL;
        CHECK(mw__http_connect(h, &o, &err) == NULL);
        CHECK(err && strstr(err, "host"));
        free(err);
    }
    o = cx_opts(NULL, 80, &x);
    char *err = NULL;
    CHECK(mw__http_connect(h, &o, &err) == NULL && err);
    free(err);
    o = cx_opts("127.0.0.1", 0, &x);
    err = NULL;
    CHECK(mw__http_connect(h, &o, &err) == NULL);
    CHECK_STR(err, "port 0: out of range");
    free(err);
    o = cx_opts("127.0.0.1", 70000, &x);
    err = NULL;
    CHECK(mw__http_connect(h, &o, &err) == NULL && err);
    free(err);
    CHECK(mw__http_active(h) == 0);
    mw__http_free(h);
}

/* A listener with a full accept queue: the connect hangs. */
static int full_listener(int *lfd, int *filler)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    *lfd = socket(AF_INET, SOCK_STREAM, 0);
    *filler = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(*lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(*lfd, 0) != 0 ||
        getsockname(*lfd, (struct sockaddr *)&a, &alen) != 0 ||
        connect(*filler, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    return ntohs(a.sin_port);
}

static void test_conn_timeout_cancel(mw__loop *loop)
{
    int lfd, filler, port = full_listener(&lfd, &filler);
    CHECK(port > 0);
    mw__http *h = t_http(loop);
    cx x = {0};
    mw__http_conn_opts o = cx_opts("127.0.0.1", port, &x);
    o.connect_timeout = 0.3;
    double t0 = mw__mono();
    cx_connect(loop, h, &o, &x);
    char *want = mw__sprintf("connect to 127.0.0.1:%d: timed out after 0.3 s", port);
    CHECK(x.done == 1 && x.code == MW_ETIMEOUT && x.conn == NULL);
    CHECK_STR(x.error, want);
    CHECK(mw__mono() - t0 >= 0.25 && mw__mono() - t0 < 2);
    free(want);
    free(x.error);

    /* cancelled while connecting, and before it started */
    cx y = {0}, z = {0};
    x = (cx){0};
    o = cx_opts("127.0.0.1", port, &y);
    cx_start(h, &o, &y);
    run_for(loop, 0.05);
    o.ud = &z;
    cx_start(h, &o, &z);
    CHECK(mw__http_active(h) == 2);
    mw__http_cancel(y.req);
    mw__http_cancel(z.req);
    CHECK(mw__http_active(h) == 0);
    run_for(loop, 0.1);
    CHECK(y.done == 0 && z.done == 0);
    CHECK(mw__loop_timers(loop) == 0);
    mw__http_free(h);
    close(filler);
    close(lfd);
}

/* mw__http_free() with connections open (one waiting), one connecting and
 * one not started: nothing is called back, nothing leaks. */
static void test_conn_free(mw__loop *loop)
{
    int lfd, filler, port = full_listener(&lfd, &filler);
    mw__http *h = t_http(loop);
    cx open1 = {0}, open2 = {0}, connecting = {0}, pending = {0};
    mw__http_conn_opts o = cx_opts("127.0.0.1", srv.echo_port, &open1);
    cx_connect(loop, h, &o, &open1);
    o.ud = &open2;
    cx_connect(loop, h, &o, &open2);
    CHECK(open1.conn && open2.conn);
    if (open1.conn)
        CHECK(mw__http_conn_wait(open1.conn, 0, cx_ready, &open1) == 0);
    if (open2.conn)
        CHECK(mw__http_conn_send(open2.conn, "data", 4, NULL) == 4);
    o = cx_opts("127.0.0.1", port, &connecting);
    cx_start(h, &o, &connecting);
    run_for(loop, 0.05);
    o.ud = &pending;
    cx_start(h, &o, &pending);
    mw__http_free(h);
    CHECK(mw__loop_timers(loop) == 0);
    run_for(loop, 0.1);
    CHECK(open1.ready == 0 && connecting.done == 0 && pending.done == 0);

    /* freed from a connection's ready callback */
    h = t_http(loop);
    cx x = {0};
    o = cx_opts("127.0.0.1", srv.echo_port, &x);
    cx_connect(loop, h, &o, &x);
    CHECK(x.conn != NULL);
    if (x.conn) {
        x.free_in_ready = &h;
        CHECK(cx_wait(loop, &x, 1) == 0);
        CHECK(h == NULL);
    }
    mw__http_free(h);
    CHECK(mw__loop_timers(loop) == 0);
    close(filler);
    close(lfd);
}

static void test_conn_tls(mw__loop *loop, const tls_srv *t)
{
    mw__http *h = t_http(loop);

    /* verified with the system's CAs: the handshake fails */
    cx x = {0};
    mw__http_conn_opts o = cx_opts("127.0.0.1", t->echo_port, &x);
    o.tls = 1;
    cx_connect(loop, h, &o, &x);
    CHECK(x.done == 1 && x.code == MW_EIO && x.conn == NULL);
    CHECK(x.error && strstr(x.error, "certificate"));
    free(x.error);

    /* its own certificate as the CA, and its expiry */
    x = (cx){0};
    o = cx_opts("localhost", t->echo_port, &x);
    o.tls = 1;
    o.tls_opts.ca_file = t->cert;
    o.want_cert = 1;
    cx_connect(loop, h, &o, &x);
    CHECK(x.done == 1 && x.code == MW_OK && x.conn != NULL);
    CHECK_NEAR(x.cert_not_after, t->not_after, 86400);
    if (!x.conn) {
        mw__http_free(h);
        return;
    }

    /* 40 kB there and back, read 100 bytes at a time: TLS records hold
     * more than that, so most reads come out of the TLS layer while the
     * socket has nothing; waiting only after MW_HTTP_AGAIN never stalls */
    enum { BIG = 40000 };
    char *big = malloc(BIG);
    for (int i = 0; i < BIG; i++)
        big[i] = (char)('a' + i % 26);
    mw__buf b;
    mw__buf_init(&b, 1 << 20);
    int waits = 0;
    size_t sent = 0;
    while (sent < BIG) {
        size_t n = BIG - sent < 8000 ? BIG - sent : 8000;
        if (cx_send_all(loop, &x, big + sent, n) != 0)
            break;
        sent += n;
        if (cx_recv(loop, &x, &b, sent, 100, &waits) != 0)
            break;
    }
    CHECK(sent == BIG && b.len == BIG);
    CHECK(b.len == BIG && memcmp(b.p, big, BIG) == 0);
    CHECK(waits < BIG / 100 / 2); /* most reads did not wait */

    /* the server's close_notify: 0 */
    mw__buf_reset(&b);
    CHECK(cx_send_all(loop, &x, "end\x04", 4) == 0);
    CHECK(cx_recv(loop, &x, &b, SIZE_MAX, 100, NULL) == 1);
    CHECK_STR(mw__buf_str(&b), "end");
    mw__http_conn_close(x.conn);
    free(x.error);

    /* no_verify, closed with a wait pending and data unread */
    x = (cx){0};
    o = cx_opts("127.0.0.1", t->echo_port, &x);
    o.tls = 1;
    o.tls_opts.no_verify = 1;
    cx_connect(loop, h, &o, &x);
    CHECK(x.code == MW_OK && x.conn != NULL && x.cert_not_after == 0);
    if (x.conn) {
        CHECK(cx_send_all(loop, &x, "unread", 6) == 0);
        CHECK(cx_wait(loop, &x, 0) == 0);
        CHECK(mw__http_conn_wait(x.conn, 0, cx_ready, &x) == 0);
        mw__http_conn_close(x.conn);
    }
    free(x.error);

    /* and one left open for mw__http_free() */
    x = (cx){0};
    o.ud = &x;
    cx_connect(loop, h, &o, &x);
    CHECK(x.code == MW_OK && x.conn != NULL);
    free(x.error);
    mw__buf_free(&b);
    free(big);
    mw__http_free(h);
}

static int open_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++)
        n += fcntl(fd, F_GETFD) != -1;
    return n;
}

int main(void)
{
    int fds = open_fds();
    static const char *proxies[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                    "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
    for (size_t i = 0; i < MW_ARRAY_LEN(proxies); i++)
        unsetenv(proxies[i]);
    if (server_start() != 0) {
        fprintf(stderr, "test server: %s\n", strerror(errno));
        return 1;
    }
    mw__loop *loop = t_loop();
    test_fixed_and_headers(loop);
    test_404(loop);
    test_url_memo(loop);
    test_method_body_headers(loop);
    test_streaming(loop);
    test_timeout(loop);
    test_body_cap(loop);
    test_recv_buffer(loop);
    test_broken_responses(loop);
    test_connect_errors(loop);
    test_connect_timeout(loop);
    test_unix_socket(loop);
    test_refused_urls(loop);
    test_redirects(loop);
    test_continue(loop);
    test_many(loop);
    test_pipeline_reuse(loop);
    test_reuse_from_done(loop);
    test_cancel_from_on_data(loop);
    test_cancel_before_start(loop);
    test_free_in_flight(loop);
    test_free_in_data(loop);
    test_cancel_in_done(loop);
    test_free_in_done(loop);
    test_link_local(loop);
    test_redirect_semantics(loop);
    test_header_each(loop);
    test_take_body(loop);
    test_conn_plain(loop);
    test_conn_not_pruned(loop);
    test_conn_many(loop);
    test_conn_errors(loop);
    test_conn_timeout_cancel(loop);
    test_conn_free(loop);
    tls_srv tls;
    if (tls_start(&tls) == 0) {
        test_tls_requests(loop, &tls);
        test_conn_tls(loop, &tls);
    }
    tls_stop(&tls);
    CHECK(mw__loop_timers(loop) == 0);
    mw__loop_free(loop);
    server_stop();
    CHECK(open_fds() == fds); /* no socket left behind */
    return TEST_RESULT();
}
