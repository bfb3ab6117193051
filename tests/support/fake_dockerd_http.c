/*
 * fake_dockerd_http.c - the fake dockerd's server: one epoll loop on its
 * own thread, a non-blocking unix listening socket, HTTP/1.1 connections
 * with keep-alive and pipelining, a table of routes, and /events streams
 * fed from the control calls (fake_dockerd.c) as they happen.
 *
 * The loop holds `mu` while it handles a batch of readiness events, and
 * drops it in epoll_wait. A connection is freed only here, after the
 * batch that may still name it; anyone else marks it dead and shuts its
 * socket down. A response is rendered when its request arrives; a
 * configured latency only delays writing it.
 *
 * Ownership: the server owns its connections and their buffers; the
 * scratch builder and the Date cache belong to the loop thread.
 */
#include "tests/support/fake_dockerd_int.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define TARGET_MAX 8192
#define PARAM_MAX  8192
#define READ_CHUNK 65536

typedef mw__fddi_conn conn;

typedef struct req {
    char method[8];
    char target[TARGET_MAX]; /* as sent */
    char path[TARGET_MAX];   /* without the version prefix and the query */
    const char *query;       /* into target, "" when none */
    char version[16];        /* "" when unversioned */
    int ver;                 /* effective version */
    const char *accept;      /* into the request head; NULL when absent */
    size_t accept_len;
    const char *arg; /* the {ref} in the path, into `path` */
    size_t arg_len;
    int head;
} req;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- connections ---- */

static void want_out(mw__fdd *d, conn *c, int on)
{
    if (c->want_out == on || c->dead)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(d->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = on;
}

void mw__fddi_wake(mw__fdd *d)
{
    uint64_t one = 1;
    if (d->wake_fd >= 0 && write(d->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        fprintf(stderr, "fake_dockerd: eventfd write: %s\n", strerror(errno));
}

/* Marks a connection dead: the peer sees EOF now, the loop frees it. */
static void mark_dead(mw__fdd *d, conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    shutdown(c->fd, SHUT_RDWR);
    if (c->stream) {
        c->stream = 0;
        d->nstreams--;
        pthread_cond_broadcast(&d->cv);
    }
    d->ndead++;
    if (!d->thread_started || !pthread_equal(pthread_self(), d->thread))
        mw__fddi_wake(d);
}

/* Writes what it can; a held response waits for its time. */
static void flush(mw__fdd *d, conn *c)
{
    if (c->dead)
        return;
    if (c->hold_until && mono_ms() < c->hold_until) {
        want_out(d, c, 0);
        return;
    }
    c->hold_until = 0;
    while (c->out_off < c->out.len) {
        ssize_t w = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            mark_dead(d, c);
            return;
        }
    }
    if (c->out_off == c->out.len) {
        c->out_off = 0;
        mw__fddi_sb_release(&c->out);
        if (c->close_after) {
            mark_dead(d, c);
            return;
        }
    } else if (c->out_off > (1u << 20)) {
        memmove(c->out.p, c->out.p + c->out_off, c->out.len - c->out_off);
        c->out.len -= c->out_off;
        c->out_off = 0;
    }
    want_out(d, c, c->out_off < c->out.len);
}

static void conn_free(mw__fdd *d, conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        d->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    epoll_ctl(d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    mw__fddi_filter_free(&c->filter);
    mw__fddi_sb_free(&c->out);
    free(c->in);
    free(c);
}

static void reap(mw__fdd *d)
{
    if (!d->ndead)
        return;
    conn *next;
    for (conn *c = d->conns; c; c = next) {
        next = c->next;
        if (c->dead)
            conn_free(d, c);
    }
    d->ndead = 0;
}

void mw__fddi_free_conns(mw__fdd *d)
{
    while (d->conns)
        conn_free(d, d->conns);
    d->nstreams = 0;
    d->ndead = 0;
}

void mw__fddi_kill_all(mw__fdd *d)
{
    for (conn *c = d->conns; c; c = c->next)
        mark_dead(d, c);
}

/* ---- the listening socket ---- */

int mw__fddi_listen(mw__fdd *d, char *err, size_t errcap)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", d->path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errcap, "socket: %s", strerror(errno));
        return -1;
    }
    unlink(d->path);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &d->tag_listen};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0 ||
        epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        snprintf(err, errcap, "listen on %s: %s", d->path, strerror(errno));
        close(fd);
        return -1;
    }
    d->listen_fd = fd;
    return 0;
}

void mw__fddi_unlisten(mw__fdd *d)
{
    if (d->listen_fd < 0)
        return;
    epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->listen_fd, NULL);
    close(d->listen_fd);
    unlink(d->path);
    d->listen_fd = -1;
}

static void accept_all(mw__fdd *d)
{
    while (d->listen_fd >= 0) {
        int fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN, or out of descriptors: retried on the next wake */
        }
        conn *c = calloc(1, sizeof(*c));
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (!c || epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->next = d->conns;
        if (d->conns)
            d->conns->prev = c;
        d->conns = c;
    }
}

/* ---- responses ---- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 409:
        return "Conflict";
    case 414:
        return "Request-URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

static const char *date_header(mw__fdd *d)
{
    time_t now = time(NULL);
    if (now != d->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(d->date, sizeof d->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        d->date_sec = now;
    }
    return d->date;
}

/* The status line and dockerd's usual headers, not yet ended. */
static void head(mw__fdd *d, conn *c, int status, const char *ctype)
{
    mw__fddi_sb *b = &c->out;
    mw__fddi_sb_fmt(b, "HTTP/1.1 %d %s\r\nApi-Version: %s\r\n", status, reason(status), d->max_str);
    if (ctype)
        mw__fddi_sb_fmt(b, "Content-Type: %s\r\n", ctype);
    mw__fddi_sb_fmt(b,
                    "Docker-Experimental: false\r\nOstype: linux\r\nServer: Docker/%s (linux)\r\n"
                    "Date: %s\r\n",
                    d->engine_version, date_header(d));
}

static void put_chunk(mw__fddi_sb *b, const void *p, size_t n)
{
    if (!n)
        return;
    mw__fddi_sb_fmt(b, "%zx\r\n", n);
    mw__fddi_sb_put(b, p, n);
    mw__fddi_sb_put(b, "\r\n", 2);
}

/* A whole body, with Content-Length or as one chunk and the last one. */
static void body(conn *c, const char *p, size_t n, int chunked, int head_only)
{
    if (chunked) {
        mw__fddi_sb_str(&c->out, "Transfer-Encoding: chunked\r\n\r\n");
        if (!head_only) {
            put_chunk(&c->out, p, n);
            mw__fddi_sb_str(&c->out, "0\r\n\r\n");
        }
        return;
    }
    mw__fddi_sb_fmt(&c->out, "Content-Length: %zu\r\n\r\n", n);
    if (!head_only)
        mw__fddi_sb_put(&c->out, p, n);
}

static int reply_json(mw__fdd *d, conn *c, const req *r, int status, const char *json)
{
    head(d, c, status, "application/json");
    body(c, json, strlen(json), 0, r->head);
    return status;
}

/* {"message": msg + arg} and a newline, as Go's encoder writes it. */
static int reply_message(mw__fdd *d, conn *c, const req *r, int status, const char *msg,
                         const char *arg, size_t arg_len)
{
    mw__fddi_sb b = {0}, m = {0};
    mw__fddi_sb_str(&m, msg);
    mw__fddi_sb_put(&m, arg ? arg : "", arg ? arg_len : 0);
    mw__fddi_sb_str(&b, "{\"message\":");
    mw__fddi_sb_json(&b, m.oom ? "out of memory" : m.p);
    mw__fddi_sb_str(&b, "}\n");
    int rc = reply_json(d, c, r, b.oom ? 500 : status, b.oom ? "{}\n" : b.p);
    mw__fddi_sb_free(&b);
    mw__fddi_sb_free(&m);
    return rc;
}

/* ---- query strings ---- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes n bytes (and '+' as space when `plus`); -1 if too long. */
static int url_decode(const char *s, size_t n, int plus, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            ch = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else if (plus && ch == '+') {
            ch = ' ';
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = ch;
    }
    out[o] = '\0';
    return 0;
}

/* The decoded value of `key`: 1 found, 0 absent, -1 too long. */
static int qget(const char *q, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len >= klen && strncmp(q, key, klen) == 0 && (len == klen || q[klen] == '=')) {
            const char *v = len == klen ? q + len : q + klen + 1;
            return url_decode(v, len - (size_t)(v - q), 1, out, cap) == 0 ? 1 : -1;
        }
        q += len + (amp ? 1 : 0);
    }
    return 0;
}

/* Go's strconv-ish truth as dockerd's BoolValue reads it. */
static int qbool(const char *q, const char *key)
{
    char v[16];
    if (qget(q, key, v, sizeof v) != 1)
        return 0;
    return !(!*v || strcmp(v, "0") == 0 || strcasecmp(v, "no") == 0 ||
             strcasecmp(v, "false") == 0 || strcasecmp(v, "none") == 0);
}

/* "<sec>" or "<sec>.<frac>" (the fraction scaled by its digits, as
 * dockerd's ParseTimestamps does) into nanoseconds. */
static int parse_ts(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long sec = strtoll(s, &end, 10);
    if (end == s || errno || sec < 0 || sec > 9000000000LL)
        return -1;
    int64_t ns = 0;
    if (*end == '.') {
        const char *f = end + 1;
        int digits = 0;
        for (; *f >= '0' && *f <= '9'; f++, digits++)
            if (digits < 9)
                ns = ns * 10 + (*f - '0');
        if (!digits || *f)
            return -1;
        for (int k = digits; k < 9; k++)
            ns *= 10;
    } else if (*end) {
        return -1;
    }
    *out = (int64_t)sec * 1000000000 + ns;
    return 0;
}

/* ---- filters ---- */

/* The values of one filter: ["a","b"] or the legacy {"a":true}. */
static char **filter_values(const cJSON *v)
{
    int n = cJSON_GetArraySize(v), k = 0;
    char **out = calloc((size_t)n + 1, sizeof(char *));
    const cJSON *e;
    if (!out)
        return NULL;
    cJSON_ArrayForEach(e, v)
    {
        const char *s = cJSON_IsArray(v) ? cJSON_GetStringValue(e) : e->string;
        if (s && cJSON_IsObject(v) && !cJSON_IsTrue(e))
            continue;
        if (s && !(out[k++] = strdup(s)))
            break;
    }
    return out;
}

/* Where the values of a filter we honor go; NULL for the others. */
static char ***filter_slot(mw__fddi_filter *f, const char *key)
{
    if (strcmp(key, "type") == 0)
        return &f->types;
    if (strcmp(key, "event") == 0)
        return &f->events;
    return strcmp(key, "container") == 0 ? &f->containers : NULL;
}

/* {"key":["v",...]} (or the legacy {"key":{"v":true}}); keys other than
 * type, event and container are accepted and ignored. */
static int parse_filters(const char *json, mw__fddi_filter *f)
{
    cJSON *root = cJSON_Parse(json), *v;
    int rc = cJSON_IsObject(root) ? 0 : -1;
    if (rc != 0) {
        cJSON_Delete(root);
        return -1;
    }
    cJSON_ArrayForEach(v, root)
    {
        char ***slot = filter_slot(f, v->string);
        if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
            rc = -1;
        else if (slot && !*slot && !(*slot = filter_values(v)))
            rc = -1;
    }
    cJSON_Delete(root);
    return rc;
}

/* ---- routes ---- */

static int h_ping(mw__fdd *d, conn *c, const req *r)
{
    head(d, c, 200, NULL);
    mw__fddi_sb_str(&c->out, "Cache-Control: no-cache, no-store, must-revalidate\r\n"
                             "Pragma: no-cache\r\nContent-Type: text/plain; charset=utf-8\r\n");
    if (r->head)
        mw__fddi_sb_str(&c->out, "Content-Length: 0\r\n\r\n");
    else
        mw__fddi_sb_str(&c->out, "Content-Length: 2\r\n\r\nOK");
    return 200;
}

static int h_version(mw__fdd *d, conn *c, const req *r)
{
    mw__fddi_sb *b = &d->scratch;
    b->len = 0;
    mw__fddi_json_version(b, d);
    head(d, c, 200, "application/json");
    body(c, b->p, b->len, 0, r->head);
    return 200;
}

static int bad_filters(mw__fdd *d, conn *c, const req *r, const char *what)
{
    return reply_message(d, c, r, 400, "invalid filters: ", what, strlen(what));
}

static int h_list(mw__fdd *d, conn *c, const req *r)
{
    char filters[PARAM_MAX];
    int all = qbool(r->query, "all");
    mw__fddi_filter f = {0};
    int got = qget(r->query, "filters", filters, sizeof filters);
    if (got < 0 || (got == 1 && *filters && parse_filters(filters, &f) != 0)) {
        mw__fddi_filter_free(&f);
        return bad_filters(d, c, r, got < 0 ? "too long" : filters);
    }
    mw__fddi_filter_free(&f);
    mw__fddi_sb *b = &d->scratch;
    int64_t now = mw__fddi_now_ns(d);
    int first = 1;
    b->len = 0;
    mw__fddi_sb_put(b, "[", 1);
    for (size_t i = d->nctrs; i-- > 0;) { /* newest first */
        const mw__fddi_ctr *x = d->ctrs[i];
        if (!all && x->state != MW_FDDI_RUNNING && x->state != MW_FDDI_PAUSED)
            continue;
        if (!first)
            mw__fddi_sb_put(b, ",", 1);
        first = 0;
        mw__fddi_json_list_item(b, x, r->ver, now);
    }
    mw__fddi_sb_str(b, "]\n");
    if (b->oom)
        return reply_message(d, c, r, 500, "out of memory", NULL, 0);
    head(d, c, 200, "application/json");
    body(c, b->p, b->len, 1, r->head);
    mw__fddi_sb_release(b);
    return 200;
}

/* A pending inspect_404_once for this ref (or its container), consumed. */
static int take_gone(mw__fdd *d, const char *ref, const mw__fddi_ctr *x)
{
    for (size_t i = 0; i < d->ngone; i++) {
        const mw__fddi_ctr *g = x ? mw__fddi_find(d, d->gone[i]) : NULL;
        if (strcmp(d->gone[i], ref) != 0 && !(g && g == x))
            continue;
        free(d->gone[i]);
        d->gone[i] = d->gone[--d->ngone];
        return 1;
    }
    return 0;
}

static int h_inspect(mw__fdd *d, conn *c, const req *r)
{
    char ref[1024];
    if (url_decode(r->arg, r->arg_len, 0, ref, sizeof ref) != 0)
        return reply_message(d, c, r, 404, "No such container: ", r->arg, r->arg_len);
    mw__fddi_ctr *x = mw__fddi_find(d, ref);
    if (take_gone(d, ref, x) || !x)
        return reply_message(d, c, r, 404, "No such container: ", ref, strlen(ref));
    mw__fddi_sb *b = &d->scratch;
    b->len = 0;
    mw__fddi_json_inspect(b, x, r->ver);
    mw__fddi_sb_put(b, "\n", 1);
    if (b->oom)
        return reply_message(d, c, r, 500, "out of memory", NULL, 0);
    head(d, c, 200, "application/json");
    body(c, b->p, b->len, 1, r->head);
    return 200;
}

static int h_image(mw__fdd *d, conn *c, const req *r)
{
    char ref[1024];
    if (url_decode(r->arg, r->arg_len, 0, ref, sizeof ref) != 0)
        return reply_message(d, c, r, 404, "No such image: ", r->arg, r->arg_len);
    mw__fddi_image *img = mw__fddi_find_image(d, ref);
    if (!img)
        return reply_message(d, c, r, 404, "No such image: ", ref, strlen(ref));
    mw__fddi_sb *b = &d->scratch;
    b->len = 0;
    mw__fddi_json_image(b, img, r->ver);
    mw__fddi_sb_put(b, "\n", 1);
    head(d, c, 200, "application/json");
    body(c, b->p, b->len, 0, r->head);
    return 200;
}

/* One event onto one stream; an event past `until` ends the stream. */
static void stream_send(mw__fdd *d, conn *c, const mw__fddi_ev *e);

/* The last chunk: the connection goes back to keep-alive. */
static void end_stream(mw__fdd *d, conn *c)
{
    mw__fddi_sb_str(&c->out, "0\r\n\r\n");
    c->stream = 0;
    mw__fddi_filter_free(&c->filter);
    d->nstreams--;
    pthread_cond_broadcast(&d->cv);
}

static const char *events_ctype(const req *r, int *seq)
{
    static const char *const types[] = {"application/json-seq", "application/x-ndjson",
                                        "application/jsonl"};
    *seq = 0;
    if (r->ver < MW_FDDI_V152)
        return "application/json";
    for (size_t i = 0; r->accept && i < 3; i++) {
        size_t n = strlen(types[i]);
        for (const char *p = r->accept; p + n <= r->accept + r->accept_len; p++)
            if (strncasecmp(p, types[i], n) == 0) {
                *seq = i == 0;
                return types[i];
            }
    }
    return "application/jsonl";
}

/* A timestamp parameter: 0 absent or good, -1 bad. */
static int ts_param(const req *r, const char *key, int64_t *out)
{
    char v[64];
    int got = qget(r->query, key, v, sizeof v);
    *out = 0;
    return got == 0 || (got == 1 && parse_ts(v, out) == 0) ? 0 : -1;
}

/* since, until and filters; the name of a bad one in `*bad`. */
static int events_params(const req *r, int64_t *since, int64_t *until, mw__fddi_filter *f,
                         const char **bad)
{
    char v[PARAM_MAX];
    int got;
    *bad = "since";
    if (ts_param(r, "since", since) != 0)
        return -1;
    *bad = "until";
    if (ts_param(r, "until", until) != 0)
        return -1;
    *bad = "filters";
    got = qget(r->query, "filters", v, sizeof v);
    if (got < 0 || (got == 1 && *v && parse_filters(v, f) != 0))
        return -1;
    return 0;
}

/* dockerd's loadBufferedEvents: newest back to the first one older than
 * since (inclusive), skipping those after until. */
static void replay(mw__fdd *d, conn *c, int64_t since, int64_t until)
{
    size_t start = d->ring_n;
    if (!since && !until)
        return;
    while (start > 0 && d->ring[(d->ring_head + start - 1) % MW_FDDI_RING].t >= since)
        start--;
    for (size_t k = start; k < d->ring_n; k++) {
        const mw__fddi_ev *e = &d->ring[(d->ring_head + k) % MW_FDDI_RING];
        if ((!until || e->t <= until) && mw__fddi_filter_match(&c->filter, e))
            stream_send(d, c, e);
    }
}

static int h_events(mw__fdd *d, conn *c, const req *r)
{
    int64_t since, until;
    const char *bad = NULL;
    mw__fddi_filter f = {0};
    if (events_params(r, &since, &until, &f, &bad) != 0) {
        mw__fddi_filter_free(&f);
        return reply_message(d, c, r, 400, "invalid value for ", bad, strlen(bad));
    }
    head(d, c, 200, events_ctype(r, &c->seq));
    mw__fddi_sb_str(&c->out, "Transfer-Encoding: chunked\r\n\r\n");
    c->stream = 1;
    c->legacy = r->ver < MW_FDDI_V152;
    c->until = until;
    c->filter = f;
    d->nstreams++;
    pthread_cond_broadcast(&d->cv);
    replay(d, c, since, until);
    if (c->stream && until && until <= mw__fddi_now_ns(d))
        end_stream(d, c);
    return 200;
}

static void stream_send(mw__fdd *d, conn *c, const mw__fddi_ev *e)
{
    if (c->until && e->t > c->until && !e->raw) {
        end_stream(d, c);
        return;
    }
    const char *line = c->legacy ? e->legacy : e->modern;
    size_t n = c->legacy ? e->legacy_len : e->modern_len;
    if (!line)
        return;
    if (c->seq && !e->raw) {
        mw__fddi_sb_fmt(&c->out, "%zx\r\n\x1e", n + 1);
        mw__fddi_sb_put(&c->out, line, n);
        mw__fddi_sb_put(&c->out, "\r\n", 2);
    } else {
        put_chunk(&c->out, line, n);
    }
}

/* A slow subscriber is dropped rather than buffered without end. */
static void flush_stream(mw__fdd *d, conn *c)
{
    if (c->out.oom || c->out.len - c->out_off > MW_FDDI_OUT_MAX)
        mark_dead(d, c);
    else
        flush(d, c);
}

void mw__fddi_broadcast(mw__fdd *d, const mw__fddi_ev *ev)
{
    for (conn *c = d->conns; c; c = c->next) {
        if (!c->stream || c->dead || !mw__fddi_filter_match(&c->filter, ev))
            continue;
        stream_send(d, c, ev);
        flush_stream(d, c);
    }
}

void mw__fddi_broadcast_raw(mw__fdd *d, const void *p, size_t n, int chunked)
{
    for (conn *c = d->conns; c; c = c->next) {
        if (!c->stream || c->dead)
            continue;
        if (chunked)
            put_chunk(&c->out, p, n);
        else
            mw__fddi_sb_put(&c->out, p, n);
        flush_stream(d, c);
    }
}

int mw__fddi_end_streams(mw__fdd *d, int clean)
{
    int n = 0;
    for (conn *c = d->conns; c; c = c->next) {
        if (!c->stream || c->dead)
            continue;
        n++;
        if (!clean) {
            mark_dead(d, c);
            continue;
        }
        end_stream(d, c);
        flush(d, c);
    }
    return n;
}

typedef int (*handler)(mw__fdd *d, conn *c, const req *r);

/* A path is `prefix` exactly (no suffix), or prefix + {arg} + suffix. */
static const struct route {
    const char *method, *prefix, *suffix;
    mw__fdd_ep ep;
    handler fn;
} routes[] = {
    {"GET", "/_ping", NULL, MW_FDD_EP_PING, h_ping},
    {"HEAD", "/_ping", NULL, MW_FDD_EP_PING, h_ping},
    {"GET", "/version", NULL, MW_FDD_EP_VERSION, h_version},
    {"GET", "/containers/json", NULL, MW_FDD_EP_LIST, h_list},
    {"GET", "/containers/", "/json", MW_FDD_EP_INSPECT, h_inspect},
    {"GET", "/images/", "/json", MW_FDD_EP_IMAGE, h_image},
    {"GET", "/events", NULL, MW_FDD_EP_EVENTS, h_events},
};

static const struct route *match(req *r)
{
    size_t plen = strlen(r->path);
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct route *rt = &routes[i];
        size_t a = strlen(rt->prefix), b = rt->suffix ? strlen(rt->suffix) : 0;
        if (strcmp(r->method, rt->method) != 0 || strncmp(r->path, rt->prefix, a) != 0)
            continue;
        if (!rt->suffix && plen == a)
            return rt;
        if (rt->suffix && plen > a + b && strcmp(r->path + plen - b, rt->suffix) == 0) {
            r->arg = r->path + a;
            r->arg_len = plen - a - b;
            if (rt->ep == MW_FDD_EP_INSPECT && memchr(r->arg, '/', r->arg_len))
                continue;
            return rt;
        }
    }
    return NULL;
}

/* Splits the target into version, path and query. */
static void split_target(mw__fdd *d, req *r)
{
    const char *p = r->target, *q = strchr(p, '?');
    size_t plen = q ? (size_t)(q - p) : strlen(p);
    r->query = q ? q + 1 : "";
    r->version[0] = '\0';
    if (p[0] == '/' && p[1] == 'v' && p[2] >= '0' && p[2] <= '9') {
        const char *slash = memchr(p + 1, '/', plen - 1);
        size_t vlen = slash ? (size_t)(slash - p - 2) : plen - 2;
        char v[16];
        int ver;
        if (vlen < sizeof v) {
            memcpy(v, p + 2, vlen);
            v[vlen] = '\0';
            if (mw__fddi_parse_version(v, &ver) == 0) {
                memcpy(r->version, v, vlen + 1);
                r->ver = ver;
                p += 2 + vlen;
                plen -= 2 + vlen;
            }
        }
    }
    memcpy(r->path, p, plen);
    r->path[plen] = '\0';
    if (!r->version[0])
        r->ver = d->max_ver;
}

static int version_error(mw__fdd *d, conn *c, const req *r)
{
    char msg[256];
    if (r->ver > d->max_ver) {
        snprintf(msg, sizeof msg, "client version %s is too new. Maximum supported API version is ",
                 r->version);
        return reply_message(d, c, r, 400, msg, d->max_str, strlen(d->max_str));
    }
    snprintf(msg, sizeof msg,
             "client version %s is too old. Minimum supported API version is %s, please upgrade "
             "your client to a newer version\n",
             r->version, d->min_str);
    head(d, c, 400, "text/plain; charset=utf-8");
    mw__fddi_sb_str(&c->out, "X-Content-Type-Options: nosniff\r\n");
    body(c, msg, strlen(msg), 0, r->head);
    return 400;
}

/* Copies what fits of `src`, NUL-terminated. */
static void copy_cut(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    n = n < cap ? n : cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void log_request(mw__fdd *d, const req *r, mw__fdd_ep ep, int status)
{
    size_t i = (d->log_head + d->log_n) % MW_FDDI_LOG;
    if (d->log_n == MW_FDDI_LOG)
        d->log_head = (d->log_head + 1) % MW_FDDI_LOG;
    else
        d->log_n++;
    mw__fdd_request *l = &d->log[i];
    l->ep = ep;
    l->status = status;
    copy_cut(l->method, sizeof l->method, r->method);
    copy_cut(l->version, sizeof l->version, r->version);
    copy_cut(l->target, sizeof l->target, r->target);
    d->counts[ep]++;
    pthread_cond_broadcast(&d->cv);
}

/* An injected failure, once per call until its count runs out. */
static int take_override(mw__fdd *d, conn *c, const req *r, mw__fdd_ep ep, int *status)
{
    mw__fddi_override *o = &d->ovr[ep];
    if (!o->times)
        return 0;
    o->times--;
    *status = reply_json(d, c, r, o->status, o->body);
    return 1;
}

/* Cuts the response just written `body_bytes` into its body and closes. */
static void truncate_response(mw__fdd *d, conn *c, mw__fdd_ep ep, size_t start)
{
    mw__fddi_override *o = &d->ovr[ep];
    if (!o->trunc_times || c->out.oom)
        return;
    o->trunc_times--;
    const char *hdr_end = strstr(c->out.p + start, "\r\n\r\n");
    size_t body_at = hdr_end ? (size_t)(hdr_end - c->out.p) + 4 : c->out.len;
    if (body_at + o->trunc_bytes < c->out.len)
        c->out.len = body_at + o->trunc_bytes;
    if (c->stream) {
        c->stream = 0;
        d->nstreams--;
    }
    c->close_after = 1;
}

static void dispatch(mw__fdd *d, conn *c, req *r)
{
    size_t start = c->out.len;
    int status;
    split_target(d, r);
    r->head = strcmp(r->method, "HEAD") == 0;
    const struct route *rt = match(r);
    mw__fdd_ep ep = rt ? rt->ep : MW_FDD_EP_OTHER;
    if (!rt)
        status = reply_message(d, c, r, 404, "page not found", NULL, 0);
    else if (r->version[0] && (r->ver > d->max_ver || r->ver < d->min_ver))
        status = version_error(d, c, r);
    else if (!take_override(d, c, r, ep, &status))
        status = rt->fn(d, c, r);
    truncate_response(d, c, ep, start);
    if (d->latency_ms[ep]) {
        int64_t due = mono_ms() + d->latency_ms[ep];
        c->hold_until = due > c->hold_until ? due : c->hold_until;
    }
    log_request(d, r, ep, status);
}

/* ---- request parsing ---- */

static int header_is(const char *line, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0 || line[n] != ':')
        return 0;
    for (*value = line + n + 1; **value == ' ' || **value == '\t';)
        (*value)++;
    return 1;
}

/* The request line into `r`; 0, or the status of a bad one. */
static int parse_request_line(const char *h, const char *eol, req *r, const char **why)
{
    const char *sp1 = strchr(h, ' ');
    const char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    *why = "malformed request line";
    if (!sp1 || !sp2 || sp2 > eol || (size_t)(sp1 - h) >= sizeof r->method)
        return 400;
    *why = "request target too long";
    if ((size_t)(sp2 - sp1 - 1) >= TARGET_MAX)
        return 414;
    memcpy(r->method, h, (size_t)(sp1 - h));
    r->method[sp1 - h] = '\0';
    memcpy(r->target, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    r->target[sp2 - sp1 - 1] = '\0';
    *why = "request target is not a path";
    return r->target[0] == '/' ? 0 : 400;
}

typedef struct head_info {
    long clen;
    int close_after;
} head_info;

/* One header line (NUL-terminated); 0, or the status of a bad one. */
static int parse_header(char *line, req *r, head_info *hi, const char **why)
{
    const char *v;
    if (header_is(line, "Content-Length", &v)) {
        hi->clen = strtol(v, NULL, 10);
        *why = "bad Content-Length";
        return hi->clen < 0 || hi->clen > MW_FDDI_BODY_MAX ? 400 : 0;
    }
    if (header_is(line, "Transfer-Encoding", &v)) {
        *why = "chunked request bodies are not supported";
        return 501;
    }
    if (header_is(line, "Connection", &v)) {
        if (strcasecmp(v, "close") == 0)
            hi->close_after = 1;
        else if (strcasecmp(v, "keep-alive") == 0)
            hi->close_after = 0;
    } else if (header_is(line, "Accept", &v)) {
        r->accept = v;
        r->accept_len = strlen(v);
    }
    return 0;
}

/* Request line and headers (NUL-terminated, CRLF lines). */
static int parse_head(char *h, req *r, head_info *hi, const char **why)
{
    char *eol = strstr(h, "\r\n");
    int rc = eol ? parse_request_line(h, eol, r, why) : 400;
    if (!eol)
        *why = "malformed request line";
    if (rc)
        return rc;
    hi->close_after = eol - h >= 8 && strncmp(eol - 8, "HTTP/1.0", 8) == 0;
    for (char *line = eol + 2; *line && !rc; line = eol + 2) {
        if (!(eol = strstr(line, "\r\n")))
            break;
        *eol = '\0';
        rc = parse_header(line, r, hi, why);
    }
    return rc;
}

static void reply_bad(mw__fdd *d, conn *c, int status, const char *why)
{
    req r = {.method = "GET"};
    reply_message(d, c, &r, status, why, NULL, 0);
    c->close_after = 1;
}

/* Handles the first complete request in the input; returns the bytes it
 * used, 0 when the request is not complete yet. */
static size_t handle_one(mw__fdd *d, conn *c)
{
    req r;
    head_info hi = {0, 0};
    const char *why = NULL;
    char *end = c->in_len >= 4 ? memmem(c->in, c->in_len, "\r\n\r\n", 4) : NULL;
    if (!end) {
        if (c->in_len <= MW_FDDI_HDR_MAX)
            return 0;
        reply_bad(d, c, 431, "request head too large");
        return c->in_len;
    }
    size_t hlen = (size_t)(end - c->in) + 4;
    /* The head becomes one C string: its last CRLF turns into "\0\n". */
    char saved = c->in[hlen - 2];
    memset(&r, 0, sizeof r);
    c->in[hlen - 2] = '\0';
    int bad = parse_head(c->in, &r, &hi, &why);
    if (bad) {
        reply_bad(d, c, bad, why);
        return c->in_len;
    }
    if (c->in_len < hlen + (size_t)hi.clen) {
        for (size_t i = 0; i < hlen - 2; i++) /* undo the parse; wait for the body */
            if (!c->in[i])
                c->in[i] = '\r';
        c->in[hlen - 2] = saved;
        return 0;
    }
    c->close_after = hi.close_after;
    dispatch(d, c, &r); /* r.accept points into the head: still intact */
    return hlen + (size_t)hi.clen;
}

static void handle_input(mw__fdd *d, conn *c)
{
    size_t used;
    while (!c->dead && !c->stream && !c->close_after && c->in_len &&
           (used = handle_one(d, c)) > 0) {
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
    }
}

/* Reads what is there, up to a full buffer (the rest waits for the
 * next round); a stream's input is dropped, EOF kills. */
static void read_conn(mw__fdd *d, conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < READ_CHUNK) {
            if (c->in_cap >= MW_FDDI_IN_MAX)
                return;
            size_t cap = c->in_cap ? c->in_cap * 2 : READ_CHUNK * 2;
            char *p = realloc(c->in, cap);
            if (!p) {
                mark_dead(d, c);
                return;
            }
            c->in = p;
            c->in_cap = cap;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            if (!c->stream && !c->close_after)
                c->in_len += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        mark_dead(d, c);
        return;
    }
}

static void on_conn(mw__fdd *d, conn *c, uint32_t events)
{
    if (c->dead)
        return;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        read_conn(d, c);
        handle_input(d, c);
    }
    flush(d, c);
}

/* Milliseconds to the next held response, -1 when none. */
static int next_hold(mw__fdd *d)
{
    int64_t now = mono_ms(), best = -1;
    for (conn *c = d->conns; c; c = c->next) {
        if (c->dead || !c->hold_until || c->out_off == c->out.len)
            continue;
        int64_t left = c->hold_until > now ? c->hold_until - now : 0;
        if (best < 0 || left < best)
            best = left;
    }
    return (int)best;
}

static void flush_due(mw__fdd *d)
{
    int64_t now = mono_ms();
    for (conn *c = d->conns; c; c = c->next)
        if (c->hold_until && c->hold_until <= now && !c->dead)
            flush(d, c);
}

void *mw__fddi_loop(void *arg)
{
    mw__fdd *d = arg;
    struct epoll_event evs[128];
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        int timeout = next_hold(d);
        pthread_mutex_unlock(&d->mu);
        int n = epoll_wait(d->epfd, evs, 128, timeout);
        pthread_mutex_lock(&d->mu);
        for (int i = 0; i < n && !d->stop; i++) {
            void *p = evs[i].data.ptr;
            uint64_t drain;
            if (p == &d->tag_wake) {
                while (read(d->wake_fd, &drain, sizeof drain) > 0)
                    ;
            } else if (p == &d->tag_listen) {
                accept_all(d);
            } else {
                on_conn(d, p, evs[i].events);
            }
        }
        flush_due(d);
        reap(d);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}
