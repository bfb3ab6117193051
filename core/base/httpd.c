/*
 * httpd.c - the status listener's HTTP/1.1 server (see httpd.h): the
 * address rules, the listener, and one small state machine per
 * connection (read the head, answer, write, close).
 *
 * A connection is freed from its own callbacks only after its io and
 * timer are stopped (the loop clears their pending events), so nothing
 * runs on a freed connection.
 */
#include "core/base/httpd.h"

#include "core/base/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define ACCEPTS_PER_WAKE 16
/* Out of descriptors: accepting again at once would only spin. */
#define ACCEPT_PAUSE_NS 100000000ULL

typedef struct conn conn;

struct mw__httpd {
    mw__httpd_opts o;
    int fd;
    mw__io io;
    mw__timer resume; /* accepting again after a pause */
    char addr[sizeof(((struct sockaddr_un *)0)->sun_path) + 16];
    int is_unix;
    conn *conns;
    size_t nconns;
};

struct conn {
    mw__httpd *h;
    int fd;
    mw__io io;
    mw__timer deadline;
    char *in; /* max_request + 1 bytes */
    size_t inlen;
    int answered;
    mw__buf out;  /* the response head */
    mw__buf body; /* the handler's body, taken over (never copied) */
    size_t sent;
    conn *prev, *next;
};

/* ------------------------------------------------------------- addresses */

typedef struct parsed_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    int is_unix;
} parsed_addr;

static mw_code parse_unix(const char *path, parsed_addr *p, char **err)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&p->ss;
    if (!*path || strlen(path) >= sizeof un->sun_path) {
        *err = mw__sprintf("unix socket path is empty or too long: %s", path);
        return MW_EINVAL;
    }
    un->sun_family = AF_UNIX;
    strcpy(un->sun_path, path);
    p->len = sizeof *un;
    p->is_unix = 1;
    return MW_OK;
}

/* "HOST:PORT" / "[V6]:PORT" into host (brackets removed) and port. */
static mw_code split_host_port(const char *addr, char *host, size_t n, long *port)
{
    const char *colon, *hs = addr, *he;
    if (addr[0] == '[') {
        if (!(he = strchr(addr, ']')) || he[1] != ':')
            return MW_EINVAL;
        hs = addr + 1;
        colon = he + 1;
    } else {
        if (!(colon = strrchr(addr, ':')) || memchr(addr, ':', (size_t)(colon - addr)))
            return MW_EINVAL;
        he = colon;
    }
    char *end;
    if ((size_t)(he - hs) >= n || he == hs || !colon[1])
        return MW_EINVAL;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    *port = strtol(colon + 1, &end, 10);
    return *end || *port < 0 || *port > 65535 ? MW_EINVAL : MW_OK;
}

static int is_loopback(const parsed_addr *p)
{
    if (p->ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&p->ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&p->ss;
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
}

static mw_code parse_inet(const char *addr, int allow_any, parsed_addr *p, char **err)
{
    char host[64];
    long port;
    struct sockaddr_in *in = (struct sockaddr_in *)&p->ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&p->ss;
    if (split_host_port(addr, host, sizeof host, &port) != MW_OK) {
        *err = mw__sprintf("expected 127.0.0.1:PORT, [::1]:PORT or a unix socket "
                           "path, got \"%s\"",
                           addr);
        return MW_EINVAL;
    }
    if (!strcmp(host, "localhost"))
        strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        p->len = sizeof *in;
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        p->len = sizeof *in6;
    } else {
        *err = mw__sprintf("\"%s\" is not an IP address", host);
        return MW_EINVAL;
    }
    if (!allow_any && !is_loopback(p)) {
        *err = mw__sprintf("%s is not a loopback address (set listen_any: true to "
                           "serve the status, which has no authentication, beyond this host)",
                           host);
        return MW_EINVAL;
    }
    return MW_OK;
}

static mw_code parse_addr(const char *addr, int allow_any, parsed_addr *p, char **err)
{
    memset(p, 0, sizeof *p);
    if (!strncmp(addr, "unix:", 5))
        return parse_unix(addr + 5, p, err);
    if (addr[0] == '/')
        return parse_unix(addr, p, err);
    return parse_inet(addr, allow_any, p, err);
}

mw_code mw__httpd_check_addr(const char *addr, int allow_any, char **err)
{
    parsed_addr p;
    *err = NULL;
    return parse_addr(addr, allow_any, &p, err);
}

/* ------------------------------------------------------------- connections */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

static void conn_free(conn *c)
{
    mw__httpd *h = c->h;
    mw__io_stop(h->o.loop, &c->io);
    mw__timer_stop(h->o.loop, &c->deadline);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    mw__buf_free(&c->out);
    mw__buf_free(&c->body);
    free(c->in);
    free(c);
}

/* Reads what the client sent beyond the head, so that closing does not
 * reset the connection before it read the answer. */
static void drain(int fd)
{
    char scratch[4096];
    for (int i = 0; i < 16; i++)
        if (recv(fd, scratch, sizeof scratch, MSG_DONTWAIT) <= 0)
            return;
}

/* Writes what is left; closes the connection when all went or the peer
 * is gone. */
static void conn_flush(conn *c)
{
    size_t head = c->out.len, total = head + c->body.len;
    while (c->sent < total) {
        struct iovec iov[2];
        int n = 0;
        if (c->sent < head)
            iov[n++] = (struct iovec){(char *)mw__buf_str(&c->out) + c->sent, head - c->sent};
        if (c->body.len) {
            size_t off = c->sent > head ? c->sent - head : 0;
            iov[n++] = (struct iovec){(char *)mw__buf_str(&c->body) + off, c->body.len - off};
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            mw__io_modify(c->h->o.loop, &c->io, EPOLLOUT);
            return;
        }
        if (w <= 0)
            break;
        c->sent += (size_t)w;
    }
    drain(c->fd);
    shutdown(c->fd, SHUT_WR);
    conn_free(c);
}

/* Queues the response, taking `body` over (it is left empty), and
 * starts writing it. */
static void respond(conn *c, int status, const char *type, mw__buf *body)
{
    size_t max = body->max;
    c->answered = 1;
    mw__buf_reset(&c->out);
    mw__buf_free(&c->body);
    c->body = *body;
    mw__buf_init(body, max);
    if (mw__buf_addf(&c->out,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     status, reason(status), type ? type : "text/plain; charset=utf-8",
                     c->body.len) != MW_OK) {
        conn_free(c);
        return;
    }
    conn_flush(c);
}

static void respond_text(conn *c, int status, const char *text)
{
    mw__buf b;
    mw__buf_init(&b, 4096);
    mw__buf_adds(&b, text);
    respond(c, status, NULL, &b);
    mw__buf_free(&b);
}

/* Splits "METHOD SP TARGET SP HTTP/1.x" in place; the HTTP status to
 * answer when it is malformed, else 0. */
static int parse_request_line(char *line, mw__httpd_req *req)
{
    char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1 || strchr(sp2 + 1, ' '))
        return 400;
    *sp1 = *sp2 = '\0';
    for (const char *p = line; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return 400;
    if (strncmp(sp2 + 1, "HTTP/", 5))
        return 400;
    if (strncmp(sp2 + 1, "HTTP/1.", 7) || !sp2[8] || sp2[9])
        return 505;
    char *target = sp1 + 1, *q = strchr(target, '?');
    if (target[0] != '/')
        return 400;
    if (q)
        *q = '\0';
    *req = (mw__httpd_req){.method = line, .path = target, .query = q ? q + 1 : ""};
    return 0;
}

/* Every header line is "name: value" with a token name. */
static int headers_ok(char *p)
{
    while (*p) {
        char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n == 0)
            break;
        char *colon = memchr(p, ':', n);
        if (!colon || colon == p)
            return 0;
        for (char *k = p; k < colon; k++)
            if (*k <= ' ' || *k >= 127)
                return 0;
        if (!eol)
            break;
        p = eol + 1;
    }
    return 1;
}

/* The whole head is in c->in (NUL-terminated): parse, route, answer. */
static void handle(conn *c)
{
    mw__httpd *h = c->h;
    mw__httpd_req req;
    char *eol = strchr(c->in, '\n');
    *eol = '\0';
    if (eol > c->in && eol[-1] == '\r')
        eol[-1] = '\0';
    int bad = parse_request_line(c->in, &req);
    if (!bad && !headers_ok(eol + 1))
        bad = 400;
    if (bad) {
        respond_text(c, bad, bad == 505 ? "HTTP/1.x only\n" : "malformed request\n");
        return;
    }
    mw__httpd_resp resp = {.status = 200};
    mw__buf_init(&resp.body, h->o.max_response);
    h->o.handler(h->o.ud, &req, &resp);
    respond(c, resp.status, resp.content_type, &resp.body);
    mw__buf_free(&resp.body);
}

/* Where the head ends ("\r\n\r\n" or "\n\n"), or NULL. */
static const char *head_end(const char *s)
{
    const char *a = strstr(s, "\r\n\r\n"), *b = strstr(s, "\n\n");
    return a && (!b || a < b) ? a : b;
}

static void conn_read(conn *c)
{
    size_t cap = c->h->o.max_request;
    for (;;) {
        if (c->inlen == cap) {
            respond_text(c, 431, "request head too large\n");
            return;
        }
        ssize_t r = recv(c->fd, c->in + c->inlen, cap - c->inlen, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            conn_free(c);
            return;
        }
        c->inlen += (size_t)r;
        c->in[c->inlen] = '\0';
        if (memchr(c->in, '\0', c->inlen)) {
            respond_text(c, 400, "malformed request\n");
            return;
        }
        if (head_end(c->in)) {
            handle(c);
            return;
        }
    }
}

static void conn_io(mw__io *io, uint32_t events)
{
    conn *c = io->ud;
    if (c->answered)
        conn_flush(c);
    else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        conn_read(c);
}

static void conn_timeout(mw__timer *t)
{
    conn *c = t->ud;
    if (c->answered)
        conn_free(c);
    else
        respond_text(c, 408, "request timed out\n");
}

static mw_code conn_new(mw__httpd *h, int fd)
{
    conn *c = calloc(1, sizeof *c);
    if (!c || !(c->in = malloc(h->o.max_request + 1)))
        goto fail;
    c->h = h;
    c->fd = fd;
    mw__buf_init(&c->out, 4096);
    mw__buf_init(&c->body, 0);
    mw__timer_init(&c->deadline, conn_timeout, c);
    if (mw__io_start(h->o.loop, &c->io, fd, EPOLLIN, conn_io, c) != MW_OK)
        goto fail;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    mw__timer_start(h->o.loop, &c->deadline,
                    mw__loop_now(h->o.loop) + (uint64_t)(h->o.timeout * 1e9));
    return MW_OK;
fail:
    if (c)
        free(c->in);
    free(c);
    close(fd);
    return MW_ENOMEM;
}

static void on_resume(mw__timer *t)
{
    mw__httpd *h = t->ud;
    mw__io_modify(h->o.loop, &h->io, EPOLLIN);
}

/* accept4() failed with `err`: wait for the next connection, or pause
 * when the process is out of descriptors. */
static void accept_failed(mw__httpd *h, int err)
{
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
        return;
    mw__io_modify(h->o.loop, &h->io, 0);
    mw__timer_start(h->o.loop, &h->resume, mw__loop_now(h->o.loop) + ACCEPT_PAUSE_NS);
}

static void on_accept(mw__io *io, uint32_t events)
{
    mw__httpd *h = io->ud;
    MW_UNUSED(events);
    for (int i = 0; i < ACCEPTS_PER_WAKE; i++) {
        int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            accept_failed(h, errno);
            return;
        }
        if (h->nconns >= h->o.max_conns) {
            /* full: a best-effort answer, never a wait */
            static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                       "Connection: close\r\n\r\n";
            ssize_t w = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            MW_UNUSED(w);
            close(fd);
            continue;
        }
        conn_new(h, fd);
    }
}

/* ------------------------------------------------------------- listener */

static void name_bound(mw__httpd *h, const parsed_addr *p)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "";
    if (p->is_unix) {
        snprintf(h->addr, sizeof h->addr, "%s", ((const struct sockaddr_un *)&p->ss)->sun_path);
        return;
    }
    getsockname(h->fd, (struct sockaddr *)&ss, &len);
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(h->addr, sizeof h->addr, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(h->addr, sizeof h->addr, "%s:%u", ip, ntohs(in->sin_port));
    }
}

/* A socket left by a process that is gone is removed; a live one is not. */
static void unlink_stale(const parsed_addr *p)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (connect(fd, (const struct sockaddr *)&p->ss, p->len) != 0 && errno == ECONNREFUSED)
        unlink(((const struct sockaddr_un *)&p->ss)->sun_path);
    close(fd);
}

static mw_code bind_listen(mw__httpd *h, const parsed_addr *p, char **err)
{
    int one = 1;
    h->fd = socket(p->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (h->fd < 0)
        goto fail;
    if (p->is_unix)
        unlink_stale(p);
    else
        setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(h->fd, (const struct sockaddr *)&p->ss, p->len) != 0 || listen(h->fd, 64) != 0)
        goto fail;
    h->is_unix = p->is_unix;
    name_bound(h, p);
    return MW_OK;
fail:
    *err = mw__sprintf("listen on %s: %s", h->o.addr, strerror(errno));
    return MW_ESYS;
}

mw_code mw__httpd_new(const mw__httpd_opts *o, mw__httpd **out, char **err)
{
    parsed_addr p;
    mw_code rc = MW_ENOMEM;
    mw__httpd *h = calloc(1, sizeof *h);
    *out = NULL;
    *err = NULL;
    if (!h)
        goto out;
    h->fd = -1;
    h->io.fd = -1;
    h->o = *o;
    mw__timer_init(&h->resume, on_resume, h);
    if (!h->o.max_request)
        h->o.max_request = 8192;
    if (!h->o.max_conns)
        h->o.max_conns = 8;
    if (!h->o.max_response)
        h->o.max_response = (size_t)256 << 20;
    if (h->o.timeout <= 0)
        h->o.timeout = 10;
    if ((rc = parse_addr(o->addr, o->allow_any, &p, err)) != MW_OK ||
        (rc = bind_listen(h, &p, err)) != MW_OK)
        goto out;
    if ((rc = mw__io_start(o->loop, &h->io, h->fd, EPOLLIN, on_accept, h)) != MW_OK) {
        *err = mw__sprintf("listen on %s: %s", o->addr, strerror(errno));
        goto out;
    }
    *out = h;
    h = NULL;
out:
    if (rc == MW_ENOMEM && !*err)
        *err = mw__strdup("out of memory");
    mw__httpd_free(h);
    return rc;
}

void mw__httpd_free(mw__httpd *h)
{
    if (!h)
        return;
    while (h->conns)
        conn_free(h->conns);
    mw__timer_stop(h->o.loop, &h->resume);
    if (h->fd >= 0) {
        mw__io_stop(h->o.loop, &h->io);
        close(h->fd);
        if (h->is_unix)
            unlink(h->addr);
    }
    free(h);
}

const char *mw__httpd_addr(const mw__httpd *h)
{
    return h->addr;
}

size_t mw__httpd_conns(const mw__httpd *h)
{
    return h->nconns;
}
