/*
 * dd_intake.c - the fake Datadog intake of the tests (see dd_intake.h):
 * one poll loop over the listening socket, a wake-up pipe and up to
 * MAX_CONNS connections, each with its input buffered until a whole
 * request (headers and Content-Length body) is there.
 */
#include "tests/support/dd_intake.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_CONNS 16
#define MAX_REQ   (64u << 20)

typedef struct conn {
    int fd;
    char *buf;
    size_t len, cap;
    int hung;      /* left unanswered: only read until the client closes */
    int continued; /* "100 Continue" sent for the request being read */
} conn;

struct dd_intake {
    int lfd, wake[2], port;
    pthread_t thread;
    pthread_mutex_t lock;
    dd_intake_mode mode;
    int retry_after;
    dd_intake_req *reqs;
    size_t n, cap, accepted;
    conn conns[MAX_CONNS];
};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* zlib or raw deflate, as Content-Encoding: deflate may be either. */
static char *inflate_body(const char *p, size_t n, size_t *out_len)
{
    for (int wbits = 15; wbits >= -15; wbits -= 30) {
        z_stream z = {0};
        size_t cap = n * 4 + 1024, len = 0;
        char *out = malloc(cap);
        int rc = out ? inflateInit2(&z, wbits) : Z_MEM_ERROR;
        z.next_in = (Bytef *)p;
        z.avail_in = (uInt)n;
        while (rc == Z_OK) {
            if (cap - len < 2) {
                char *bigger = realloc(out, cap *= 2);
                if (!bigger)
                    break;
                out = bigger;
            }
            z.next_out = (Bytef *)out + len;
            z.avail_out = (uInt)(cap - len - 1);
            rc = inflate(&z, Z_NO_FLUSH);
            len = cap - 1 - z.avail_out;
        }
        inflateEnd(&z);
        if (rc == Z_STREAM_END && z.avail_in == 0) {
            out[len] = '\0';
            *out_len = len;
            return out;
        }
        free(out);
    }
    return NULL;
}

/* The value of header `name` in the header block [h, end), into out. */
static void header(const char *h, const char *end, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    out[0] = '\0';
    for (const char *line = h; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        if ((size_t)(eol - line) > nl && !strncasecmp(line, name, nl) && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(eol - v);
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                vl--;
            snprintf(out, n, "%.*s", (int)vl, v);
            return;
        }
        line = eol + 1;
    }
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* The answer of `mode` into `resp`: its status, 0 for none (hang). */
static int answer(const dd_intake_req *r, dd_intake_mode mode, int ra, char *resp, size_t n)
{
    char body[512], extra[64] = "";
    int status;
    switch (mode) {
    case DDI_ACCEPT:
        status = 202;
        snprintf(body, sizeof body, "{\"status\":\"ok\"}");
        break;
    case DDI_FAIL:
        status = 500;
        snprintf(body, sizeof body, "{\"errors\":[\"Internal Server Error\"]}");
        break;
    case DDI_LIMIT:
        status = 429;
        snprintf(extra, sizeof extra, "Retry-After: %d\r\n", ra);
        snprintf(body, sizeof body, "{\"errors\":[\"Too Many Requests\"]}");
        break;
    case DDI_REJECT:
        status = 400;
        snprintf(body, sizeof body, "{\"errors\":[\"bad payload for key %s\"]}", r->api_key);
        break;
    default:
        return 0;
    }
    snprintf(resp, n,
             "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n%s",
             status, extra, strlen(body), body);
    return status;
}

static void record(dd_intake *in, conn *c, const char *h, const char *hend, const char *body,
                   size_t blen)
{
    dd_intake_req r = {0};
    char target[512] = "";
    sscanf(h, "%7s %511s", r.method, target);
    char *q = strchr(target, '?');
    if (q) {
        snprintf(r.query, sizeof r.query, "%.*s", (int)sizeof r.query - 1, q + 1);
        *q = '\0';
    }
    snprintf(r.path, sizeof r.path, "%.*s", (int)sizeof r.path - 1, target); /* cut */
    header(h, hend, "DD-API-KEY", r.api_key, sizeof r.api_key);
    header(h, hend, "Content-Encoding", r.encoding, sizeof r.encoding);
    header(h, hend, "Content-Type", r.type, sizeof r.type);
    r.body = inflate_body(body, blen, &r.len);
    r.when = mono();
    pthread_mutex_lock(&in->lock);
    dd_intake_mode mode = in->mode;
    int ra = in->retry_after;
    pthread_mutex_unlock(&in->lock);
    char resp[1024];
    r.status = answer(&r, mode, ra, resp, sizeof resp);
    c->hung = r.status == 0;
    pthread_mutex_lock(&in->lock);
    if (in->n == in->cap) {
        in->cap = in->cap ? in->cap * 2 : 64;
        in->reqs = realloc(in->reqs, in->cap * sizeof *in->reqs);
    }
    in->reqs[in->n++] = r;
    if (r.status >= 200 && r.status < 300)
        in->accepted++;
    pthread_mutex_unlock(&in->lock);
    if (r.status) /* recorded first: a client that has its answer finds it there */
        send_all(c->fd, resp, strlen(resp));
}

/* Handles every whole request in the buffer. */
static void parse(dd_intake *in, conn *c)
{
    while (!c->hung && c->len > 0) {
        c->buf[c->len] = '\0';
        char *hend = strstr(c->buf, "\r\n\r\n");
        if (!hend)
            return;
        char cl[32], expect[32];
        header(c->buf, hend, "Content-Length", cl, sizeof cl);
        header(c->buf, hend, "Expect", expect, sizeof expect);
        size_t blen = (size_t)strtoull(cl, NULL, 10), hlen = (size_t)(hend + 4 - c->buf);
        if (c->len < hlen + blen) {
            if (expect[0] && !c->continued) {
                send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                c->continued = 1;
            }
            return;
        }
        record(in, c, c->buf, hend, c->buf + hlen, blen);
        c->continued = 0;
        memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
        c->len -= hlen + blen;
    }
}

static void close_conn(conn *c)
{
    close(c->fd);
    free(c->buf);
    *c = (conn){.fd = -1};
}

static void read_conn(dd_intake *in, conn *c)
{
    if (c->cap - c->len < 65536 + 1) {
        size_t cap = c->cap ? c->cap * 2 : 131072;
        char *b = cap <= MAX_REQ ? realloc(c->buf, cap) : NULL;
        if (!b) {
            close_conn(c);
            return;
        }
        c->buf = b;
        c->cap = cap;
    }
    ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
    if (r < 0 && errno == EINTR)
        return;
    if (r <= 0) {
        close_conn(c);
        return;
    }
    if (c->hung)
        return; /* discarded */
    c->len += (size_t)r;
    parse(in, c);
}

static void accept_conn(dd_intake *in)
{
    int fd = accept(in->lfd, NULL, NULL);
    if (fd < 0)
        return;
    for (int i = 0; i < MAX_CONNS; i++)
        if (in->conns[i].fd < 0) {
            in->conns[i] = (conn){.fd = fd};
            return;
        }
    close(fd);
}

static void *serve(void *ud)
{
    dd_intake *in = ud;
    for (;;) {
        struct pollfd p[MAX_CONNS + 2];
        int idx[MAX_CONNS + 2], n = 0;
        p[n++] = (struct pollfd){.fd = in->wake[0], .events = POLLIN};
        p[n++] = (struct pollfd){.fd = in->lfd, .events = POLLIN};
        for (int i = 0; i < MAX_CONNS; i++)
            if (in->conns[i].fd >= 0) {
                idx[n] = i;
                p[n++] = (struct pollfd){.fd = in->conns[i].fd, .events = POLLIN};
            }
        if (poll(p, (nfds_t)n, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break;
        if (p[1].revents & POLLIN)
            accept_conn(in);
        for (int k = 2; k < n; k++)
            if (p[k].revents)
                read_conn(in, &in->conns[idx[k]]);
    }
    return NULL;
}

dd_intake *dd_intake_start(void)
{
    dd_intake *in = calloc(1, sizeof *in);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (!in)
        return NULL;
    for (int i = 0; i < MAX_CONNS; i++)
        in->conns[i].fd = -1;
    pthread_mutex_init(&in->lock, NULL);
    in->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (in->lfd < 0 || bind(in->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(in->lfd, 64) != 0 || getsockname(in->lfd, (struct sockaddr *)&a, &al) != 0 ||
        pipe(in->wake) != 0) {
        perror("dd_intake");
        free(in);
        return NULL;
    }
    in->port = ntohs(a.sin_port);
    if (pthread_create(&in->thread, NULL, serve, in) != 0) {
        perror("dd_intake: thread");
        free(in);
        return NULL;
    }
    return in;
}

void dd_intake_stop(dd_intake *in)
{
    if (!in)
        return;
    if (write(in->wake[1], "x", 1) != 1)
        perror("dd_intake: wake");
    pthread_join(in->thread, NULL);
    for (int i = 0; i < MAX_CONNS; i++)
        if (in->conns[i].fd >= 0)
            close_conn(&in->conns[i]);
    for (size_t i = 0; i < in->n; i++)
        free(in->reqs[i].body);
    free(in->reqs);
    close(in->lfd);
    close(in->wake[0]);
    close(in->wake[1]);
    pthread_mutex_destroy(&in->lock);
    free(in);
}

int dd_intake_port(const dd_intake *in)
{
    return in->port;
}

void dd_intake_set_mode(dd_intake *in, dd_intake_mode mode, int retry_after)
{
    pthread_mutex_lock(&in->lock);
    in->mode = mode;
    in->retry_after = retry_after;
    pthread_mutex_unlock(&in->lock);
}

void dd_intake_lock(dd_intake *in, const dd_intake_req **reqs, size_t *n)
{
    pthread_mutex_lock(&in->lock);
    *reqs = in->reqs;
    *n = in->n;
}

void dd_intake_unlock(dd_intake *in)
{
    pthread_mutex_unlock(&in->lock);
}

size_t dd_intake_count(dd_intake *in)
{
    pthread_mutex_lock(&in->lock);
    size_t n = in->n;
    pthread_mutex_unlock(&in->lock);
    return n;
}

size_t dd_intake_accepted(dd_intake *in)
{
    pthread_mutex_lock(&in->lock);
    size_t n = in->accepted;
    pthread_mutex_unlock(&in->lock);
    return n;
}
