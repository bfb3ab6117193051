/*
 * fake_ecs_agent_http.c - the fake ECS agent's server thread: one epoll
 * loop over the listener on 127.0.0.1, a wake-up eventfd and the
 * connections; HTTP/1.1 requests read with keep-alive, answered from
 * fake_ecs_agent.c under the lock, held back for the configured latency,
 * written without blocking. Going down closes the listener and every
 * connection; going up listens on the same port again.
 *
 * Ownership: connections belong to the loop thread, which frees them.
 */
#include "tests/support/fake_ecs_agent_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IN_MAX (64 * 1024) /* a request's line and headers */

struct mw__feai_conn {
    int fd;
    char in[IN_MAX + 1];
    size_t inlen;
    size_t skip; /* request body bytes still to drop */
    char *out;   /* written as the socket takes it */
    size_t outlen, outoff, outcap;
    char *held; /* an answer waiting for its latency */
    size_t heldlen;
    int64_t due_ms;  /* when `held` goes out; 0: nothing held */
    int close_after; /* once the output is written */
    mw__feai_conn *prev, *next;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- connections */

static void conn_close(mw__fea *a, mw__feai_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (a->ep >= 0)
        epoll_ctl(a->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->out);
    free(c->held);
    free(c);
}

void mw__feai_close_all(mw__fea *a)
{
    while (a->conns)
        conn_close(a, a->conns);
    if (a->lfd >= 0)
        close(a->lfd);
    if (a->wake_fd >= 0)
        close(a->wake_fd);
    if (a->ep >= 0)
        close(a->ep);
    a->lfd = a->wake_fd = a->ep = -1;
}

static int out_add(mw__feai_conn *c, const char *p, size_t n)
{
    if (c->outcap - c->outlen < n) {
        size_t cap = c->outcap ? c->outcap : 4096;
        char *o;
        while (cap - c->outlen < n)
            cap *= 2;
        if (!(o = realloc(c->out, cap)))
            return -1;
        c->out = o;
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
    return 0;
}

static void want(mw__fea *a, mw__feai_conn *c)
{
    struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    if (c->outoff < c->outlen)
        e.events |= EPOLLOUT;
    epoll_ctl(a->ep, EPOLL_CTL_MOD, c->fd, &e);
}

/* Writes what the socket takes: 0 done or pending, -1 broken. */
static int flush_out(mw__feai_conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (w <= 0)
            return -1;
        c->outoff += (size_t)w;
    }
    c->outoff = c->outlen = 0;
    return 0;
}

/* ------------------------------------------------------------- requests */

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
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

/* The bytes of a whole response, malloc'd, into `*out`. */
static int response(const mw__feai_answer *ans, int head_only, char **out, size_t *len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                     ans->status, reason(ans->status), ans->ctype, ans->len);
    size_t blen = head_only ? 0 : ans->len;
    if (n < 0 || (size_t)n >= sizeof head || !(*out = malloc((size_t)n + blen + 1)))
        return -1;
    memcpy(*out, head, (size_t)n);
    if (blen)
        memcpy(*out + n, ans->body, blen);
    *len = (size_t)n + blen;
    return 0;
}

/* The answer of one request, made under the lock; its latency into
 * `*delay_ms`. */
static void answer(mw__fea *a, const char *method, char *target, mw__feai_answer *ans,
                   unsigned *delay_ms)
{
    char *query = strchr(target, '?');
    char copy[512];
    mw__fea_ep ep;

    snprintf(copy, sizeof copy, "%.511s", target);
    if (query)
        *query++ = '\0';
    pthread_mutex_lock(&a->mu);
    mw__feai_answer_get(a, target, query, &ep, ans);
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        free(ans->body);
        ans->body = strdup("405 method not allowed\n");
        ans->len = ans->body ? strlen(ans->body) : 0;
        ans->status = 405;
        ans->ctype = "text/plain; charset=utf-8";
    } else if (a->over[ep].times > 0) {
        a->over[ep].times--;
        free(ans->body);
        ans->body = strdup(a->over[ep].body);
        ans->len = ans->body ? strlen(ans->body) : 0;
        ans->status = a->over[ep].status;
        ans->ctype = "application/json";
    }
    mw__feai_log(a, ep, ans->status, method, copy);
    *delay_ms = a->latency[ep];
    pthread_mutex_unlock(&a->mu);
}

static size_t content_length(const char *head)
{
    for (const char *p = strchr(head, '\n'); p; p = strchr(p + 1, '\n'))
        if (strncasecmp(p + 1, "content-length:", 15) == 0)
            return strtoull(p + 16, NULL, 10);
    return 0;
}

static int wants_close(const char *head)
{
    for (const char *p = strchr(head, '\n'); p; p = strchr(p + 1, '\n'))
        if (strncasecmp(p + 1, "connection:", 11) == 0) {
            const char *v = p + 12;
            while (*v == ' ')
                v++;
            return strncasecmp(v, "close", 5) == 0;
        }
    return strstr(head, " HTTP/1.0\r\n") != NULL;
}

/* Handles the request at the start of c->in (its head ends at `hend`). */
static int serve_one(mw__fea *a, mw__feai_conn *c, size_t hend)
{
    char method[16], target[2048], *bytes = NULL;
    mw__feai_answer ans = {0};
    unsigned delay = 0;
    size_t len = 0;
    int rc;

    c->in[hend] = '\0';
    if (sscanf(c->in, "%15s %2047s", method, target) != 2)
        return -1;
    c->skip = content_length(c->in);
    c->close_after = wants_close(c->in);
    answer(a, method, target, &ans, &delay);
    rc = response(&ans, !strcmp(method, "HEAD"), &bytes, &len);
    free(ans.body);
    memmove(c->in, c->in + hend + 1, c->inlen - hend - 1);
    c->inlen -= hend + 1;
    if (rc != 0)
        return -1;
    if (delay == 0) {
        rc = out_add(c, bytes, len);
        free(bytes);
        return rc;
    }
    c->held = bytes;
    c->heldlen = len;
    c->due_ms = now_ms() + delay;
    return 0;
}

/* Every complete request in the input, until one is held back. */
static int process(mw__fea *a, mw__feai_conn *c)
{
    while (!c->held) {
        size_t drop = c->skip < c->inlen ? c->skip : c->inlen;
        char *end;
        memmove(c->in, c->in + drop, c->inlen - drop);
        c->inlen -= drop;
        c->skip -= drop;
        if (c->skip > 0 || c->inlen == 0)
            return 0;
        c->in[c->inlen] = '\0';
        if (!(end = strstr(c->in, "\r\n\r\n")))
            return c->inlen >= IN_MAX ? -1 : 0;
        if (serve_one(a, c, (size_t)(end - c->in) + 3) != 0)
            return -1;
    }
    return 0;
}

static int read_in(mw__feai_conn *c)
{
    for (;;) {
        ssize_t r;
        if (c->inlen >= IN_MAX)
            return 0; /* full: process() decides */
        r = recv(c->fd, c->in + c->inlen, IN_MAX - c->inlen, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (r <= 0)
            return -1;
        c->inlen += (size_t)r;
    }
}

/* After any progress: answer, write, close when done. */
static void advance(mw__fea *a, mw__feai_conn *c)
{
    if (process(a, c) != 0 || flush_out(c) != 0 || (c->close_after && !c->held && c->outlen == 0)) {
        conn_close(a, c);
        return;
    }
    want(a, c);
}

static void on_conn(mw__fea *a, mw__feai_conn *c, uint32_t ev)
{
    if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && read_in(c) != 0) {
        conn_close(a, c);
        return;
    }
    advance(a, c);
}

static void accept_all(mw__fea *a)
{
    for (;;) {
        int fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
        mw__feai_conn *c;
        struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP};
        if (fd < 0)
            return;
        if (!(c = calloc(1, sizeof *c))) {
            close(fd);
            continue;
        }
        c->fd = fd;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        e.data.ptr = c;
        if (epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = a->conns;
        if (a->conns)
            a->conns->prev = c;
        a->conns = c;
    }
}

/* Sends the held answers whose time came; the ms to the next one (-1:
 * none). */
static int fire_due(mw__fea *a)
{
    int64_t now = now_ms(), next = -1;
    for (mw__feai_conn *c = a->conns, *n; c; c = n) {
        n = c->next;
        if (!c->held)
            continue;
        if (c->due_ms > now) {
            if (next < 0 || c->due_ms - now < next)
                next = c->due_ms - now;
            continue;
        }
        if (out_add(c, c->held, c->heldlen) != 0) {
            conn_close(a, c);
            continue;
        }
        free(c->held);
        c->held = NULL;
        c->due_ms = 0;
        advance(a, c);
    }
    return (int)next;
}

/* ------------------------------------------------------------- listener */

static int watch(mw__fea *a, int *fdp)
{
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = fdp};
    return epoll_ctl(a->ep, EPOLL_CTL_ADD, *fdp, &e);
}

int mw__feai_listen(mw__fea *a, char *err, size_t errcap)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int one = 1;

    if (a->ep < 0 &&
        ((a->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
         (a->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 || watch(a, &a->wake_fd) != 0)) {
        snprintf(err, errcap, "epoll: %s", strerror(errno));
        return -1;
    }
    sa.sin_port = htons((uint16_t)a->port);
    a->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (a->lfd < 0 || setsockopt(a->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(a->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(a->lfd, 1024) != 0 ||
        getsockname(a->lfd, (struct sockaddr *)&sa, &len) != 0 || watch(a, &a->lfd) != 0) {
        snprintf(err, errcap, "listen on 127.0.0.1:%d: %s", a->port, strerror(errno));
        if (a->lfd >= 0)
            close(a->lfd);
        a->lfd = -1;
        return -1;
    }
    if (a->port == 0) /* set once, before the thread starts: read unlocked */
        a->port = ntohs(sa.sin_port);
    return 0;
}

void mw__feai_wake(mw__fea *a)
{
    uint64_t one = 1;
    if (write(a->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        perror("fake_ecs_agent: wake");
}

/* Applies a change of want_up; mu held. */
static void go_up_or_down(mw__fea *a)
{
    char err[256];
    if (a->want_up == a->is_up)
        return;
    if (!a->want_up) {
        while (a->conns)
            conn_close(a, a->conns);
        epoll_ctl(a->ep, EPOLL_CTL_DEL, a->lfd, NULL);
        close(a->lfd);
        a->lfd = -1;
        a->is_up = 0;
    } else if (mw__feai_listen(a, err, sizeof err) == 0) {
        a->is_up = 1;
    } else {
        snprintf(a->err, sizeof a->err, "%s", err);
        a->want_up = a->is_up; /* given up: the caller is told */
    }
    pthread_cond_broadcast(&a->cv);
}

void *mw__feai_main(void *arg)
{
    mw__fea *a = arg;
    struct epoll_event evs[64];
    int timeout = -1;

    for (;;) {
        int n, stop;
        pthread_mutex_lock(&a->mu);
        stop = a->stopping;
        go_up_or_down(a);
        pthread_mutex_unlock(&a->mu);
        if (stop)
            return NULL;
        n = epoll_wait(a->ep, evs, 64, timeout);
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            uint64_t drain;
            if (p == &a->lfd && a->lfd >= 0)
                accept_all(a);
            else if (p == &a->wake_fd)
                (void)!read(a->wake_fd, &drain, sizeof drain);
            else if (p != &a->lfd)
                on_conn(a, p, evs[i].events);
        }
        timeout = fire_due(a);
    }
}
