/*
 * mini_httpd.c - the test server of mini_httpd.h: one thread, one epoll
 * set, a connection table, a min-heap of delayed answers.
 */
#include "mini_httpd.h"

#include "core/base/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQ (1u << 20)
/* Listening sockets sharing the HTTP port (SO_REUSEPORT): each has its
 * own accept queue (net.core.somaxconn, often 4096), so a burst of
 * 10,000 connects is not dropped and retried a second later. */
#define HTTP_LISTENERS 4
/* The last request lines kept for mw__mhd_request() */
#define LOG_LINES 64
#define LOG_BYTES 160

enum { C_READ, C_DELAY, C_WRITE, C_HANG };

typedef struct conn {
    int fd;
    int echo;
    int state;
    int close_after; /* close once the output is written */
    char *in;
    size_t inlen, incap;
    char *out;
    size_t outlen, outoff, outcap;
    unsigned long long due; /* C_DELAY: monotonic ms */
    size_t heap_slot;
    struct conn *prev, *next; /* every open connection */
} conn;

struct mw__mhd {
    int ep, http_fd[HTTP_LISTENERS], unix_fd, echo_fd, wake_fd;
    int port, echo_port;
    char dir[48], unix_path[64];
    pthread_t thr;
    pthread_mutex_t lock;
    mw__mhd_stats st;
    char log[LOG_LINES][LOG_BYTES]; /* request n is log[n % LOG_LINES] */
    conn **heap;
    size_t nheap, capheap;
    conn *all;
    int stopping; /* the server thread's own: set when woken to stop */
    int threaded; /* the starting thread's own: a server thread runs */
};

static unsigned long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000ull + (unsigned long long)ts.tv_nsec / 1000000ull;
}

/* ------------------------------------------------------------- heap */

static void heap_swap(mw__mhd *s, size_t a, size_t b)
{
    conn *t = s->heap[a];
    s->heap[a] = s->heap[b];
    s->heap[b] = t;
    s->heap[a]->heap_slot = a;
    s->heap[b]->heap_slot = b;
}

static void heap_up(mw__mhd *s, size_t i)
{
    while (i > 0 && s->heap[(i - 1) / 2]->due > s->heap[i]->due) {
        heap_swap(s, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(mw__mhd *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->nheap && s->heap[l]->due < s->heap[m]->due)
            m = l;
        if (r < s->nheap && s->heap[r]->due < s->heap[m]->due)
            m = r;
        if (m == i)
            return;
        heap_swap(s, i, m);
        i = m;
    }
}

static int heap_push(mw__mhd *s, conn *c)
{
    if (s->nheap == s->capheap) {
        size_t n = s->capheap ? s->capheap * 2 : 64;
        conn **h = realloc(s->heap, n * sizeof *h);
        if (!h)
            return -1;
        s->heap = h;
        s->capheap = n;
    }
    c->heap_slot = s->nheap;
    s->heap[s->nheap++] = c;
    heap_up(s, c->heap_slot);
    return 0;
}

static void heap_remove(mw__mhd *s, conn *c)
{
    size_t i = c->heap_slot;
    if (i == (size_t)-1)
        return;
    c->heap_slot = (size_t)-1;
    if (i != --s->nheap) {
        s->heap[i] = s->heap[s->nheap];
        s->heap[i]->heap_slot = i;
        heap_down(s, i);
        heap_up(s, i);
    }
}

/* ------------------------------------------------------------- conns */

static void conn_close(mw__mhd *s, conn *c)
{
    heap_remove(s, c);
    MW_LIST_REMOVE(s->all, c);
    epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    pthread_mutex_lock(&s->lock);
    s->st.closed++;
    s->st.open--;
    if (c->state == C_HANG)
        s->st.hung_gone++;
    pthread_mutex_unlock(&s->lock);
    free(c->in);
    free(c->out);
    free(c);
}

static int out_add(conn *c, const char *p, size_t n)
{
    if (c->outcap - c->outlen < n) {
        size_t cap = c->outcap ? c->outcap : 4096;
        while (cap - c->outlen < n)
            cap *= 2;
        char *o = realloc(c->out, cap);
        if (!o)
            return -1;
        c->out = o;
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
    return 0;
}

static int respond(conn *c, int status, const char *extra, const char *body, size_t blen)
{
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nContent-Type: text/plain\r\n%s\r\n",
                     status, blen, extra ? extra : "");
    if (n < 0 || (size_t)n >= sizeof head)
        return -1;
    return out_add(c, head, (size_t)n) || out_add(c, body, blen) ? -1 : 0;
}

static void want(mw__mhd *s, conn *c, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &e);
}

/* Sends what it can; 0 when all of it went, 1 pending, -1 error. */
static int flush_out(conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        if (w <= 0)
            return -1;
        c->outoff += (size_t)w;
    }
    c->outoff = c->outlen = 0;
    return 0;
}

/* The answer of one HTTP request whose head ends at `hend` and whose
 * body (`blen` bytes) follows. Returns 0, or -1 to close. */
static int route(mw__mhd *s, conn *c, char *req, size_t hend, size_t blen)
{
    char method[16], path[2048];
    req[hend - 1] = '\0';
    if (sscanf(req, "%15s %2047s", method, path) != 2)
        return -1;
    pthread_mutex_lock(&s->lock);
    snprintf(s->log[s->st.requests % LOG_LINES], LOG_BYTES, "%.15s %.140s", method, path);
    s->st.requests++;
    pthread_mutex_unlock(&s->lock);
    if (strcmp(path, "/ok") == 0)
        return respond(c, 200, NULL, "ok\n", 3);
    if (strncmp(path, "/delay/", 7) == 0) {
        c->state = C_DELAY;
        c->due = now_ms() + strtoull(path + 7, NULL, 10);
        if (heap_push(s, c) != 0)
            return -1;
        pthread_mutex_lock(&s->lock);
        if (s->nheap > s->st.max_delayed)
            s->st.max_delayed = s->nheap;
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    if (strcmp(path, "/hang") == 0) {
        c->state = C_HANG;
        return 0;
    }
    if (strncmp(path, "/status/", 8) == 0) {
        int st = atoi(path + 8);
        char body[32];
        int n = snprintf(body, sizeof body, "status %d\n", st);
        return respond(c, st, NULL, body, (size_t)n);
    }
    if (strncmp(path, "/bytes/", 7) == 0) {
        size_t n = strtoull(path + 7, NULL, 10);
        char *b = malloc(n ? n : 1);
        if (!b)
            return -1;
        memset(b, 'x', n);
        int rc = respond(c, 200, NULL, b, n);
        free(b);
        return rc;
    }
    if (strncmp(path, "/redirect?to=", 13) == 0) {
        char loc[2100];
        snprintf(loc, sizeof loc, "Location: %s\r\n", path + 13);
        return respond(c, 302, loc, "", 0);
    }
    if (strcmp(path, "/headers") == 0) {
        char *nl = strstr(req, "\r\n");
        const char *h = nl ? nl + 2 : "";
        return respond(c, 200, "X-Multi: a\r\nX-Multi: b\r\n", h, strlen(h));
    }
    if (strcmp(path, "/body") == 0)
        return respond(c, 200, NULL, req + hend + 3, blen);
    return respond(c, 404, NULL, "not found\n", 10);
}

static size_t content_length(const char *head)
{
    const char *p = head;
    while ((p = strchr(p, '\n'))) {
        p++;
        if (strncasecmp(p, "content-length:", 15) == 0)
            return strtoull(p + 15, NULL, 10);
    }
    return 0;
}

/* Handles every complete request or line in the input. */
static int process(mw__mhd *s, conn *c)
{
    while (c->state == C_READ && c->inlen > 0) {
        if (c->echo) {
            char *nl = memchr(c->in, '\n', c->inlen);
            if (!nl)
                return 0;
            size_t n = (size_t)(nl - c->in) + 1;
            if (n == 4 && memcmp(c->in, "BYE\n", 4) == 0) {
                out_add(c, "bye\n", 4);
                c->close_after = 1;
            } else if (n == 7 && memcmp(c->in, "SILENT\n", 7) == 0) {
                c->state = C_HANG;
            } else if (out_add(c, c->in, n) != 0) {
                return -1;
            }
            memmove(c->in, c->in + n, c->inlen - n);
            c->inlen -= n;
            continue;
        }
        c->in[c->inlen < c->incap ? c->inlen : c->incap - 1] = '\0';
        char *end = strstr(c->in, "\r\n\r\n");
        if (!end)
            return 0;
        size_t hend = (size_t)(end - c->in) + 1;
        size_t blen = content_length(c->in);
        if (hend + 3 + blen > c->inlen)
            return 0;
        if (route(s, c, c->in, hend, blen) != 0)
            return -1;
        size_t used = hend + 3 + blen;
        memmove(c->in, c->in + used, c->inlen - used);
        c->inlen -= used;
    }
    return 0;
}

static int read_in(conn *c)
{
    for (;;) {
        if (c->incap - c->inlen < 4097) {
            size_t cap = c->incap ? c->incap * 2 : 8192;
            if (cap > MAX_REQ)
                return -1;
            char *n = realloc(c->in, cap);
            if (!n)
                return -1;
            c->in = n;
            c->incap = cap;
        }
        ssize_t r = recv(c->fd, c->in + c->inlen, c->incap - c->inlen - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (r <= 0)
            return -1;
        c->inlen += (size_t)r;
    }
}

/* After input or output progress: answer, send, and pick what to wait
 * for. Returns -1 when the connection is to be closed. */
static int advance(mw__mhd *s, conn *c)
{
    if (process(s, c) != 0)
        return -1;
    int f = flush_out(c);
    if (f < 0 || (f == 0 && c->close_after))
        return -1;
    want(s, c, EPOLLIN | EPOLLRDHUP | (f ? EPOLLOUT : 0));
    return 0;
}

static void on_conn(mw__mhd *s, conn *c, uint32_t ev)
{
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        if (read_in(c) != 0) {
            conn_close(s, c);
            return;
        }
    }
    if (c->state == C_HANG || c->state == C_DELAY)
        return; /* input keeps buffering; nothing is answered now */
    if (advance(s, c) != 0)
        conn_close(s, c);
}

static void on_accept(mw__mhd *s, int lfd, int echo)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->echo = echo;
        c->heap_slot = (size_t)-1;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
            close(fd);
            free(c);
            continue;
        }
        MW_LIST_PUSH(s->all, c);
        pthread_mutex_lock(&s->lock);
        s->st.accepted++;
        if (++s->st.open > s->st.max_open)
            s->st.max_open = s->st.open;
        pthread_mutex_unlock(&s->lock);
    }
}

static void fire_due(mw__mhd *s)
{
    unsigned long long now = now_ms();
    while (s->nheap > 0 && s->heap[0]->due <= now) {
        conn *c = s->heap[0];
        heap_remove(s, c);
        c->state = C_READ;
        if (respond(c, 200, NULL, "slow\n", 5) != 0 || advance(s, c) != 0)
            conn_close(s, c);
    }
}

static void *server_main(void *arg)
{
    mw__mhd *s = arg;
    struct epoll_event evs[256];
    while (!s->stopping) {
        int timeout = -1;
        if (s->nheap > 0) {
            unsigned long long now = now_ms(), due = s->heap[0]->due;
            timeout = due > now ? (int)(due - now) : 0;
        }
        int n = epoll_wait(s->ep, evs, 256, timeout);
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p >= (void *)&s->http_fd[0] && p < (void *)&s->http_fd[HTTP_LISTENERS])
                on_accept(s, *(int *)p, 0);
            else if (p == (void *)&s->unix_fd)
                on_accept(s, s->unix_fd, 0);
            else if (p == (void *)&s->echo_fd)
                on_accept(s, s->echo_fd, 1);
            else if (p == (void *)&s->wake_fd)
                s->stopping = 1;
            else
                on_conn(s, p, evs[i].events);
        }
        fire_due(s);
    }
    return NULL;
}

/* ------------------------------------------------------------- setup */

/* Listens on 127.0.0.1:*port (0: any free port, written back). */
static int listen_tcp(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int one = 1;
    if (fd < 0)
        return -1;
    a.sin_port = htons((uint16_t)*port);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4096) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int listen_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (fd < 0)
        return -1;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 256) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int watch(mw__mhd *s, int *fdp)
{
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = fdp};
    return epoll_ctl(s->ep, EPOLL_CTL_ADD, *fdp, &e);
}

mw__mhd *mw__mhd_start(void)
{
    mw__mhd *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->unix_fd = s->echo_fd = s->wake_fd = s->ep = -1;
    for (int i = 0; i < HTTP_LISTENERS; i++)
        s->http_fd[i] = -1;
    snprintf(s->dir, sizeof s->dir, "/tmp/mw-mhd-XXXXXX");
    if (!mkdtemp(s->dir)) {
        free(s);
        return NULL;
    }
    snprintf(s->unix_path, sizeof s->unix_path, "%s/http.sock", s->dir);
    pthread_mutex_init(&s->lock, NULL);
    int listening = 0;
    for (int i = 0; i < HTTP_LISTENERS; i++)
        listening += (s->http_fd[i] = listen_tcp(&s->port)) >= 0;
    if (listening < HTTP_LISTENERS || (s->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (s->echo_fd = listen_tcp(&s->echo_port)) < 0 ||
        (s->unix_fd = listen_unix(s->unix_path)) < 0 ||
        (s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 || watch(s, &s->http_fd[0]) ||
        watch(s, &s->http_fd[1]) || watch(s, &s->http_fd[2]) || watch(s, &s->http_fd[3]) ||
        watch(s, &s->echo_fd) || watch(s, &s->unix_fd) || watch(s, &s->wake_fd) ||
        pthread_create(&s->thr, NULL, server_main, s) != 0) {
        fprintf(stderr, "mini_httpd: cannot start: %s\n", strerror(errno));
        mw__mhd_stop(s);
        return NULL;
    }
    s->threaded = 1;
    return s;
}

void mw__mhd_stop(mw__mhd *s)
{
    if (!s)
        return;
    if (s->threaded) {
        uint64_t one = 1;
        if (write(s->wake_fd, &one, sizeof one) < 0)
            perror("mini_httpd: wake");
        pthread_join(s->thr, NULL);
    }
    while (s->all)
        conn_close(s, s->all);
    free(s->heap);
    int fds[] = {s->http_fd[0], s->http_fd[1], s->http_fd[2], s->http_fd[3],
                 s->unix_fd,    s->echo_fd,    s->wake_fd,    s->ep};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    unlink(s->unix_path);
    rmdir(s->dir);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int mw__mhd_port(const mw__mhd *s)
{
    return s->port;
}

int mw__mhd_echo_port(const mw__mhd *s)
{
    return s->echo_port;
}

const char *mw__mhd_unix_path(const mw__mhd *s)
{
    return s->unix_path;
}

void mw__mhd_stats_get(mw__mhd *s, mw__mhd_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->st;
    pthread_mutex_unlock(&s->lock);
}

int mw__mhd_request(mw__mhd *s, unsigned long n, char *buf, size_t size)
{
    int rc = -1;
    pthread_mutex_lock(&s->lock);
    if (n < s->st.requests && s->st.requests - n <= LOG_LINES) {
        snprintf(buf, size, "%s", s->log[n % LOG_LINES]);
        rc = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}
