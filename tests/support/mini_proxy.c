/*
 * mini_proxy.c - the test proxy of mini_proxy.h: one thread that serves
 * one connection at a time with blocking sockets and poll() timeouts, and
 * a log of the requests, under a mutex.
 */
#include "mini_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_HEAD   16384
#define MAX_LOG    256
#define IO_MS      3000
#define CANNED     "canned by mini_proxy\n"
#define LINE_BYTES 512
#define LOG_BYTES  (LINE_BYTES + 32)

struct mw__mproxy {
    int fd, port;
    int stop[2]; /* readable once the proxy stops */
    pthread_t thr;
    pthread_mutex_t lock;
    char log[MAX_LOG][LOG_BYTES];
    size_t nlog;
};

/* A request read from a client: its head (NUL-terminated) and what of
 * its body came with it. */
typedef struct preq {
    char buf[MAX_HEAD + 1];
    size_t len, head; /* bytes read; the head's length, "\r\n\r\n" included */
    char method[16], target[LINE_BYTES];
} preq;

/* 1: `fd` readable, 0: timeout, -1: stopping. */
static int wait_in(mw__mproxy *p, int fd)
{
    struct pollfd f[2] = {{.fd = fd, .events = POLLIN}, {.fd = p->stop[0], .events = POLLIN}};
    int n = poll(f, 2, IO_MS);
    if (n < 0 || f[1].revents)
        return -1;
    return n > 0;
}

static int send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static void log_add(mw__mproxy *p, const preq *rq)
{
    pthread_mutex_lock(&p->lock);
    if (p->nlog < MAX_LOG)
        snprintf(p->log[p->nlog++], LOG_BYTES, "%s %s", rq->method, rq->target);
    pthread_mutex_unlock(&p->lock);
}

/* Reads a request head; 0, or -1 (closed, too long, timed out). */
static int read_head(mw__mproxy *p, int fd, preq *rq)
{
    char *end = NULL;
    while (!end) {
        if (rq->len == MAX_HEAD || wait_in(p, fd) != 1)
            return -1;
        ssize_t r = recv(fd, rq->buf + rq->len, MAX_HEAD - rq->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        rq->len += (size_t)r;
        rq->buf[rq->len] = '\0';
        end = strstr(rq->buf, "\r\n\r\n");
    }
    rq->head = (size_t)(end - rq->buf) + 4;
    return sscanf(rq->buf, "%15s %511s", rq->method, rq->target) == 2 ? 0 : -1;
}

static size_t content_length(const char *head)
{
    for (const char *l = strstr(head, "\r\n"); l; l = strstr(l, "\r\n")) {
        l += 2;
        if (strncasecmp(l, "content-length:", 15) == 0)
            return strtoull(l + 15, NULL, 10);
    }
    return 0;
}

/* The loopback address and port of an absolute-form http target, into
 * `sa`; the path starts at `*path`. -1 when it is not loopback. */
static int loopback_target(const char *target, struct sockaddr_storage *sa, socklen_t *salen,
                           const char **path)
{
    char host[256];
    const char *h = target + 7, *end;
    int port = 80;
    if (strncmp(target, "http://", 7) != 0)
        return -1;
    *path = h + strcspn(h, "/");
    end = *h == '[' ? strchr(h, ']') : h + strcspn(h, ":/");
    if (!end || end > *path)
        return -1;
    size_t n = (size_t)(end - h) - (*h == '[');
    if (n == 0 || n >= sizeof host)
        return -1;
    memcpy(host, h + (*h == '['), n);
    host[n] = '\0';
    end += *h == '[';
    if (*end == ':')
        port = atoi(end + 1);
    if (!**path)
        *path = "/";
    memset(sa, 0, sizeof *sa);
    struct sockaddr_in *in = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1 && (ntohl(in->sin_addr.s_addr) >> 24) == 127) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *salen = sizeof *in;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1 && IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *salen = sizeof *in6;
        return 0;
    }
    return -1;
}

/* Reads the upstream's answer (head and Content-Length body) and sends
 * it to the client as it comes. */
static void relay_answer(mw__mproxy *p, int up, int fd)
{
    char buf[16384];
    size_t got = 0, want = (size_t)-1, headlen = 0;
    char head[MAX_HEAD + 1];
    while (got < want && wait_in(p, up) == 1) {
        ssize_t r = recv(up, buf, sizeof buf, 0);
        if (r <= 0 || send_all(fd, buf, (size_t)r) != 0)
            return;
        if (want == (size_t)-1 && headlen + (size_t)r <= MAX_HEAD) {
            memcpy(head + headlen, buf, (size_t)r);
            headlen += (size_t)r;
            head[headlen] = '\0';
            char *end = strstr(head, "\r\n\r\n");
            if (end)
                want = (size_t)(end - head) + 4 + content_length(head);
        }
        got += (size_t)r;
    }
}

/* Forwards the request to its loopback target in origin form. */
static void forward(mw__mproxy *p, int fd, preq *rq, const struct sockaddr_storage *sa,
                    socklen_t salen, const char *path)
{
    static const char bad[] = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n";
    int up = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (up < 0 || connect(up, (const struct sockaddr *)sa, salen) != 0) {
        send_all(fd, bad, sizeof bad - 1);
        if (up >= 0)
            close(up);
        return;
    }
    char line[LINE_BYTES + 64];
    int n =
        snprintf(line, sizeof line, "%s %s HTTP/1.1\r\nConnection: close\r\n", rq->method, path);
    const char *headers = strstr(rq->buf, "\r\n") + 2;
    size_t body = content_length(rq->buf), have = rq->len - rq->head;
    int ok = n > 0 && (size_t)n < sizeof line && send_all(up, line, (size_t)n) == 0 &&
             send_all(up, headers, rq->len - (size_t)(headers - rq->buf)) == 0;
    while (ok && have < body && wait_in(p, fd) == 1) {
        char buf[4096];
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        ok = r > 0 && send_all(up, buf, (size_t)r) == 0;
        have += r > 0 ? (size_t)r : 0;
    }
    if (ok)
        relay_answer(p, up, fd);
    close(up);
}

static void serve(mw__mproxy *p, int fd)
{
    static const char refused[] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                                  "Connection: close\r\n\r\n";
    static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n";
    preq *rq = calloc(1, sizeof *rq);
    struct sockaddr_storage sa;
    socklen_t salen = 0;
    const char *path = NULL;
    if (!rq || read_head(p, fd, rq) != 0)
        goto out;
    log_add(p, rq);
    if (strcmp(rq->method, "CONNECT") == 0) {
        send_all(fd, refused, sizeof refused - 1);
    } else if (strncmp(rq->target, "http://", 7) != 0) {
        send_all(fd, bad, sizeof bad - 1);
    } else if (loopback_target(rq->target, &sa, &salen, &path) == 0) {
        forward(p, fd, rq, &sa, salen, path);
    } else {
        char canned[256];
        int n = snprintf(canned, sizeof canned,
                         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n%s",
                         sizeof CANNED - 1, CANNED);
        send_all(fd, canned, (size_t)n);
    }
out:
    free(rq);
}

static void *run(void *ud)
{
    mw__mproxy *p = ud;
    for (;;) {
        int w = wait_in(p, p->fd);
        if (w < 0)
            break;
        if (w == 0)
            continue;
        int fd = accept4(p->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        serve(p, fd);
        shutdown(fd, SHUT_WR);
        close(fd);
    }
    return NULL;
}

mw__mproxy *mw__mproxy_start(void)
{
    mw__mproxy *p = calloc(1, sizeof *p);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (!p)
        return NULL;
    p->stop[0] = p->stop[1] = -1;
    pthread_mutex_init(&p->lock, NULL);
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->fd < 0 || bind(p->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(p->fd, 64) != 0 ||
        getsockname(p->fd, (struct sockaddr *)&a, &alen) != 0 || pipe(p->stop) != 0 ||
        pthread_create(&p->thr, NULL, run, p) != 0) {
        perror("mini_proxy");
        if (p->fd >= 0)
            close(p->fd);
        if (p->stop[0] >= 0) {
            close(p->stop[0]);
            close(p->stop[1]);
        }
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    p->port = ntohs(a.sin_port);
    return p;
}

void mw__mproxy_stop(mw__mproxy *p)
{
    if (!p)
        return;
    if (write(p->stop[1], "x", 1) != 1)
        perror("mini_proxy stop");
    pthread_join(p->thr, NULL);
    close(p->fd);
    close(p->stop[0]);
    close(p->stop[1]);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int mw__mproxy_port(const mw__mproxy *p)
{
    return p->port;
}

size_t mw__mproxy_count(mw__mproxy *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->nlog;
    pthread_mutex_unlock(&p->lock);
    return n;
}

int mw__mproxy_request(mw__mproxy *p, size_t i, char *out, size_t n)
{
    int rc = -1;
    pthread_mutex_lock(&p->lock);
    if (i < p->nlog) {
        snprintf(out, n, "%s", p->log[i]);
        rc = 0;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int mw__mproxy_saw(mw__mproxy *p, const char *needle)
{
    int found = 0;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->nlog && !found; i++)
        found = strstr(p->log[i], needle) != NULL;
    pthread_mutex_unlock(&p->lock);
    return found;
}

void mw__mproxy_clear(mw__mproxy *p)
{
    pthread_mutex_lock(&p->lock);
    p->nlog = 0;
    pthread_mutex_unlock(&p->lock);
}
