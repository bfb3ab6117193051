/*
 * http.c - HTTP transfers on one libcurl multi handle driven by an engine
 * loop: curl's sockets become mw__io watchers (CURLMOPT_SOCKETFUNCTION),
 * its single timeout one mw__timer (CURLMOPT_TIMERFUNCTION), and every
 * wake-up is one curl_multi_socket_action() followed by reading the
 * finished transfers with curl_multi_info_read().
 *
 * Re-entrancy: the caller's on_data/on_headers run inside curl's write and
 * header callbacks, that is inside curl_multi_socket_action(), where a
 * handle must not be removed from the multi. A transfer cancelled there is
 * only marked; the curl callbacks then refuse its bytes and it is removed
 * and freed once curl_multi_socket_action() has returned. mw__http_free()
 * called from any callback is deferred the same way, to the end of the
 * loop callback that led to it. New transfers wait on a 0 ms timer (the
 * "kick") so that nothing is ever reported from inside mw__http_start().
 *
 * Ownership: the mw__http owns its multi handle, its requests (easy handle,
 * outgoing header list, buffered body and response headers) and one small
 * struct per socket curl asks it to watch. Strings in a mw__http_result
 * are the request's and live until its `done` returns.
 */
#include "core/http.h"

#include "core/buf.h"
#include "core/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/un.h>

#define DEFAULT_MAX_BODY        (10u << 20)
#define DEFAULT_CONNECT_TIMEOUT 10.0
#define MAX_REDIRECTS           5
/* All response headers of one response, stored as "name\0value\0". */
#define MAX_HEADER_BYTES (256u << 10)

enum { ST_PENDING, ST_RUNNING, ST_DONE };

typedef struct hsock {
    mw__io io;
    mw__http *h;
    struct hsock *prev, *next;
} hsock;

struct mw__http_req {
    mw__http *h;
    mw__http_req *prev, *next;
    CURL *easy;
    struct curl_slist *out_headers;
    int state;
    int in_multi;      /* added to the multi handle */
    int canceled;      /* freed after curl returns; done never called */
    int forced;        /* failed outside curl's knowledge: report it */
    int headers_fired; /* on_headers was called */
    int follow;        /* follow_redirects */
    int nredirects;    /* redirects seen that curl will follow */
    mw_code fail;      /* why our callbacks stopped the transfer */
    double t0, timeout, connect_timeout;
    size_t max_body;
    char *target; /* "unix:/path" or "host:port", for connect errors */
    mw__buf body;
    mw__buf hdrs; /* the last response's headers, "name\0value\0"... */
    int (*on_data)(void *ud, const char *p, size_t n);
    void (*on_headers)(void *ud, long status);
    void (*done)(void *ud, const mw__http_result *r);
    void *ud;
    char errbuf[CURL_ERROR_SIZE];
    char msg[512];
};

struct mw__http {
    mw__loop *loop;
    CURLM *multi;
    mw__timer timer; /* curl's own timeout */
    mw__timer kick;  /* adds pending transfers to the multi handle */
    mw__http_req *head;
    hsock *socks;
    size_t active;
    int in_curl; /* inside curl_multi_socket_action() */
    int marked;  /* requests marked cancelled or forced since the last sweep */
    int busy;    /* inside one of our loop callbacks */
    int dead;    /* mw__http_free() called while busy */
};

/* ------------------------------------------------------------- global */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ------------------------------------------------------------- requests */

static void req_link(mw__http *h, mw__http_req *r)
{
    r->prev = NULL;
    r->next = h->head;
    if (h->head)
        h->head->prev = r;
    h->head = r;
}

static void req_unlink(mw__http *h, mw__http_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        h->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* Unlinks and frees a request; it must be out of the multi handle. */
static void req_free(mw__http_req *r)
{
    req_unlink(r->h, r);
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->out_headers);
    mw__buf_free(&r->body);
    mw__buf_free(&r->hdrs);
    free(r->target);
    free(r);
}

static mw__http_req *req_of(CURL *easy)
{
    char *p = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p);
    return (mw__http_req *)(void *)p;
}

static void req_remove(mw__http_req *r)
{
    if (r->in_multi)
        curl_multi_remove_handle(r->h->multi, r->easy);
    r->in_multi = 0;
}

/* Records why the transfer is being stopped; the first reason wins. */
__attribute__((format(printf, 3, 4))) static void req_fail(mw__http_req *r, mw_code code,
                                                           const char *fmt, ...)
{
    if (r->fail != MW_OK)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    r->fail = code;
}

/* Whether curl should stop feeding this transfer. */
static int req_stopped(const mw__http_req *r)
{
    return r->canceled || r->h->dead || r->fail != MW_OK;
}

/* ------------------------------------------------------------- headers */

static void trim(const char **p, size_t *n)
{
    while (*n && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' || (*p)[*n - 1] == '\r' ||
                  (*p)[*n - 1] == '\n'))
        (*n)--;
}

static const char *header_find(const mw__buf *b, const char *name)
{
    const char *p = mw__buf_str(b), *end = p + b->len;
    while (p < end) {
        const char *value = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0)
            return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

/* Stores one "Name: value" line; lines without a colon are skipped. */
static mw_code header_store(mw__http_req *r, const char *line, size_t n)
{
    const char *colon = memchr(line, ':', n);
    if (!colon)
        return MW_OK;
    const char *name = line, *value = colon + 1;
    size_t nn = (size_t)(colon - line), vn = n - nn - 1;
    trim(&name, &nn);
    trim(&value, &vn);
    size_t mark = r->hdrs.len;
    if (mw__buf_add(&r->hdrs, name, nn) != MW_OK || mw__buf_addc(&r->hdrs, '\0') != MW_OK ||
        mw__buf_add(&r->hdrs, value, vn) != MW_OK || mw__buf_addc(&r->hdrs, '\0') != MW_OK) {
        mw__buf_setlen(&r->hdrs, mark);
        return MW_ENOMEM;
    }
    return MW_OK;
}

/* Whether curl is about to follow the response whose headers just ended
 * (its body is then skipped and another response follows). */
static int will_follow(mw__http_req *r, long status)
{
    return r->follow && status >= 300 && status < 400 && header_find(&r->hdrs, "location") &&
           r->nredirects < MAX_REDIRECTS;
}

static void fire_headers(mw__http_req *r, long status)
{
    r->headers_fired = 1;
    if (r->on_headers)
        r->on_headers(r->ud, status);
}

/* A blank line: the headers of one response are complete. Interim (1xx)
 * responses and redirects curl follows are not reported. */
static void headers_end(mw__http_req *r)
{
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || r->headers_fired)
        return;
    if (will_follow(r, status)) {
        r->nredirects++;
        return;
    }
    fire_headers(r, status);
}

static size_t header_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    mw__http_req *r = ud;
    size_t n = size * nmemb;
    if (req_stopped(r))
        return 0;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new response (after a 1xx or a redirect): keep only its
         * headers. */
        mw__buf_reset(&r->hdrs);
        return n;
    }
    if ((n == 2 && p[0] == '\r' && p[1] == '\n') || (n == 1 && p[0] == '\n')) {
        headers_end(r);
        return req_stopped(r) ? 0 : n;
    }
    if (header_store(r, p, n) != MW_OK) {
        if (r->hdrs.len + n + 2 > r->hdrs.max)
            req_fail(r, MW_EPARSE, "response headers over %zu bytes", r->hdrs.max);
        else
            req_fail(r, MW_ENOMEM, "out of memory storing response headers");
        return 0;
    }
    return n;
}

/* ------------------------------------------------------------- body */

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    mw__http_req *r = ud;
    size_t n = size * nmemb;
    if (req_stopped(r))
        return 0;
    if (!r->headers_fired) {
        long status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        fire_headers(r, status);
        if (req_stopped(r))
            return 0;
    }
    if (r->on_data) {
        if (r->on_data(r->ud, p, n) != 0)
            req_fail(r, MW_EIO, "aborted");
        return req_stopped(r) ? 0 : n;
    }
    if (mw__buf_add(&r->body, p, n) != MW_OK) {
        if (n > r->body.max - r->body.len)
            req_fail(r, MW_EPARSE, "response body over %zu bytes", r->max_body);
        else
            req_fail(r, MW_ENOMEM, "out of memory buffering the response body");
        return 0;
    }
    return n;
}

/* ------------------------------------------------------------- results */

static void result_error(mw__http_req *r, CURLcode cc, mw__http_result *res)
{
    long oserr = 0, status = res->status;
    curl_off_t connect_time = 0;
    const char *why = r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc);

    curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &oserr);
    curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME_T, &connect_time);
    res->code = MW_EIO;
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        res->code = MW_ETIMEOUT;
        if (connect_time == 0 && (r->timeout == 0 || r->connect_timeout < r->timeout))
            snprintf(r->msg, sizeof r->msg, "connect to %s: timed out after %.1f s", r->target,
                     r->connect_timeout);
        else
            snprintf(r->msg, sizeof r->msg, "timed out after %.1f s", r->timeout);
        break;
    case CURLE_COULDNT_CONNECT:
        snprintf(r->msg, sizeof r->msg, "connect to %s: %s", r->target,
                 oserr ? strerror((int)oserr) : why);
        break;
    case CURLE_FILESIZE_EXCEEDED:
        res->code = MW_EPARSE;
        snprintf(r->msg, sizeof r->msg, "response body over %zu bytes", r->max_body);
        break;
    case CURLE_OUT_OF_MEMORY:
        res->code = MW_ENOMEM;
        snprintf(r->msg, sizeof r->msg, "out of memory");
        break;
    case CURLE_TOO_MANY_REDIRECTS:
        snprintf(r->msg, sizeof r->msg, "more than %d redirects", MAX_REDIRECTS);
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
        if (status >= 300 && status < 400 && header_find(&r->hdrs, "location")) {
            snprintf(r->msg, sizeof r->msg, "redirect to %.300s refused (http and https only)",
                     header_find(&r->hdrs, "location"));
            break;
        }
        /* fall through */
    default:
        snprintf(r->msg, sizeof r->msg, "%s", why);
        break;
    }
}

static void result_fill(mw__http_req *r, CURLcode cc, mw__http_result *res)
{
    memset(res, 0, sizeof *res);
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res->status);
    res->body = mw__buf_str(&r->body);
    res->len = r->body.len;
    res->elapsed = mw__mono() - r->t0;
    if (r->fail != MW_OK) {
        res->code = r->fail;
        res->error = r->msg;
    } else if (cc != CURLE_OK) {
        result_error(r, cc, res);
        res->error = r->msg;
    }
    if (res->code != MW_OK) {
        res->body = "";
        res->len = 0;
    }
}

/* Reports a finished transfer and frees it. */
static void req_complete(mw__http *h, mw__http_req *r, CURLcode cc)
{
    mw__http_result res;

    req_remove(r);
    if (r->canceled) {
        req_free(r);
        return;
    }
    result_fill(r, cc, &res);
    r->state = ST_DONE;
    h->active--;
    if (r->done)
        r->done(r->ud, &res);
    req_free(r);
}

/* After curl returned: report finished transfers, then free the ones
 * cancelled inside curl's callbacks and report the ones failed behind
 * curl's back. Stops as soon as the client is being freed. */
static void reap(mw__http *h)
{
    CURLMsg *m;
    int left;

    while (!h->dead && (m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        mw__http_req *r = req_of(m->easy_handle);
        if (r)
            req_complete(h, r, m->data.result);
    }
    if (!h->marked)
        return;
again:
    for (mw__http_req *r = h->head, *next; r && !h->dead; r = next) {
        next = r->next;
        if (r->state != ST_RUNNING)
            continue;
        if (r->canceled) {
            req_remove(r);
            req_free(r);
        } else if (r->forced) {
            req_complete(h, r, CURLE_OK);
            goto again; /* `done` may have freed `next` */
        }
    }
    if (!h->dead)
        h->marked = 0;
}

/* ------------------------------------------------------------- driving */

static void destroy(mw__http *h);

static void enter(mw__http *h)
{
    h->busy++;
}

static void leave(mw__http *h)
{
    if (--h->busy == 0 && h->dead)
        destroy(h);
}

static void drive(mw__http *h, curl_socket_t fd, int flags)
{
    int running = 0;
    h->in_curl++;
    curl_multi_socket_action(h->multi, fd, flags, &running);
    h->in_curl--;
    reap(h);
}

static void io_cb(mw__io *io, uint32_t events)
{
    hsock *s = io->ud;
    mw__http *h = s->h;
    int flags = 0;

    if (events & (EPOLLIN | EPOLLHUP))
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & EPOLLERR)
        flags |= CURL_CSELECT_ERR;
    enter(h);
    drive(h, io->fd, flags); /* may free `s` */
    leave(h);
}

static void timer_cb(mw__timer *t)
{
    mw__http *h = t->ud;
    enter(h);
    drive(h, CURL_SOCKET_TIMEOUT, 0);
    leave(h);
}

/* Adds the pending transfers, then lets curl start them at once. */
static void kick_cb(mw__timer *t)
{
    mw__http *h = t->ud;
    enter(h);
    for (mw__http_req *r = h->head; r; r = r->next) {
        if (r->state != ST_PENDING)
            continue;
        r->state = ST_RUNNING;
        CURLMcode mc = curl_multi_add_handle(h->multi, r->easy);
        if (mc == CURLM_OK) {
            r->in_multi = 1;
        } else {
            req_fail(r, mc == CURLM_OUT_OF_MEMORY ? MW_ENOMEM : MW_EIO, "starting transfer: %s",
                     curl_multi_strerror(mc));
            r->forced = 1;
            h->marked++;
        }
    }
    drive(h, CURL_SOCKET_TIMEOUT, 0);
    leave(h);
}

/* CURLMOPT_TIMERFUNCTION: one timer for the whole multi handle. */
static int curl_timer_fn(CURLM *multi, long ms, void *ud)
{
    mw__http *h = ud;
    MW_UNUSED(multi);
    if (ms < 0) {
        mw__timer_stop(h->loop, &h->timer);
        return 0;
    }
    return mw__timer_start(h->loop, &h->timer, mw__mono_ns() + (uint64_t)ms * 1000000u);
}

static uint32_t poll_events(int what)
{
    uint32_t ev = 0;
    if (what & CURL_POLL_IN)
        ev |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev |= EPOLLOUT;
    return ev;
}

static void sock_free(mw__http *h, hsock *s)
{
    mw__io_stop(h->loop, &s->io);
    if (s->prev)
        s->prev->next = s->next;
    else
        h->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s);
}

static hsock *sock_new(mw__http *h, curl_socket_t fd, uint32_t ev)
{
    hsock *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->h = h;
    if (mw__io_start(h->loop, &s->io, fd, ev, io_cb, s) != 0) {
        free(s);
        return NULL;
    }
    s->next = h->socks;
    if (h->socks)
        h->socks->prev = s;
    h->socks = s;
    curl_multi_assign(h->multi, fd, s);
    return s;
}

/* The transfer can not be watched: report it once curl has returned. */
static void sock_failed(CURL *easy, const char *what, int e)
{
    mw__http_req *r = req_of(easy);
    if (!r)
        return;
    req_fail(r, e == ENOMEM ? MW_ENOMEM : MW_EIO, "%s socket: %s", what, strerror(e));
    r->forced = 1;
    r->h->marked++;
}

/* CURLMOPT_SOCKETFUNCTION: mirror curl's interest in a socket. */
static int curl_socket_fn(CURL *easy, curl_socket_t fd, int what, void *ud, void *sockp)
{
    mw__http *h = ud;
    hsock *s = sockp;

    if (what == CURL_POLL_REMOVE) {
        if (s)
            sock_free(h, s);
        return 0;
    }
    uint32_t ev = poll_events(what);
    if (!s) {
        if (!sock_new(h, fd, ev)) {
            sock_failed(easy, "watching", errno);
            return -1;
        }
    } else if (s->io.events != ev && mw__io_modify(h->loop, &s->io, ev) != 0) {
        sock_failed(easy, "re-watching", errno);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- setup */

__attribute__((format(printf, 2, 3))) static void set_err(char **err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    *err = mw__vsprintf(fmt, ap);
    va_end(ap);
}

static const char *url_strerror(CURLUcode uc)
{
#if LIBCURL_VERSION_NUM >= 0x075000
    return curl_url_strerror(uc);
#else
    return uc == CURLUE_OUT_OF_MEMORY ? "out of memory" : "malformed URL";
#endif
}

/* Accepts http(s) URLs only; sets `*target` to "host:port". */
static mw_code check_url(const char *url, char **target, char **err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    mw_code rc = MW_EINVAL;

    if (!u) {
        set_err(err, "out of memory");
        return MW_ENOMEM;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        set_err(err, "url \"%.200s\": %s", url, url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
        set_err(err, "url \"%.200s\": scheme \"%s\" not allowed (http and https only)", url,
                scheme ? scheme : "");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        set_err(err, "url \"%.200s\": no host", url);
        goto out;
    }
    *target = mw__sprintf("%s:%s", host, port);
    rc = *target ? MW_OK : MW_ENOMEM;
    if (rc != MW_OK)
        set_err(err, "out of memory");
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* An HTTP token: no spaces, no control characters. */
static int is_token(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 127)
            return 0;
    return 1;
}

static mw_code check_opts(const mw__http_opts *o, char **err)
{
    if (!o->url) {
        set_err(err, "url: missing");
        return MW_EINVAL;
    }
    if (o->method && !is_token(o->method)) {
        set_err(err, "method \"%.40s\": not an HTTP token", o->method);
        return MW_EINVAL;
    }
    if (o->unix_socket && strlen(o->unix_socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        set_err(err, "unix socket \"%.200s\": path longer than %zu bytes", o->unix_socket,
                sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        return MW_EINVAL;
    }
    for (size_t i = 0; i < o->nheaders; i++) {
        const char *hd = o->headers[i];
        if (!hd || strpbrk(hd, "\r\n") || !strchr(hd, ':')) {
            set_err(err, "headers[%zu]: not a \"Name: value\" line", i);
            return MW_EINVAL;
        }
    }
    return MW_OK;
}

static int has_header(const mw__http_opts *o, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < o->nheaders; i++)
        if (strncasecmp(o->headers[i], name, n) == 0 && o->headers[i][n] == ':')
            return 1;
    return 0;
}

static mw_code build_headers(mw__http_req *r, const mw__http_opts *o)
{
    for (size_t i = 0; i < o->nheaders; i++) {
        struct curl_slist *l = curl_slist_append(r->out_headers, o->headers[i]);
        if (!l)
            return MW_ENOMEM;
        r->out_headers = l;
    }
    /* No "Expect: 100-continue" wait before a larger body. */
    if (!has_header(o, "Expect")) {
        struct curl_slist *l = curl_slist_append(r->out_headers, "Expect:");
        if (!l)
            return MW_ENOMEM;
        r->out_headers = l;
    }
    return MW_OK;
}

static CURLcode set_protocols(CURL *e)
{
    CURLcode cc = CURLE_UNKNOWN_OPTION;
#if LIBCURL_VERSION_NUM >= 0x075500
    cc = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    if (cc == CURLE_UNKNOWN_OPTION) {
        /* A libcurl older than its headers, or old headers. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        cc = curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS,
                                  (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#pragma GCC diagnostic pop
    }
    return cc;
}

static CURLcode set_method(CURL *e, const mw__http_opts *o)
{
    const char *m = o->method ? o->method : "GET";
    CURLcode cc = CURLE_OK;

    if (strcmp(m, "HEAD") == 0)
        cc = curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(m, "GET") != 0 || o->body)
        cc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    if (cc == CURLE_OK && (o->body || strcmp(m, "POST") == 0)) {
        cc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body ? o->body : "");
    }
    return cc;
}

static long ms(double s)
{
    return (long)(s * 1000.0 + 0.5);
}

static CURLcode set_easy(mw__http_req *r, const mw__http_opts *o)
{
    CURL *e = r->easy;
    CURLcode cc = CURLE_OK;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (cc == CURLE_OK)                                                                        \
            cc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_PRIVATE, (void *)r);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_URL, o->url);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, (void *)r);
    SET(CURLOPT_HEADERFUNCTION, header_cb);
    SET(CURLOPT_HEADERDATA, (void *)r);
    SET(CURLOPT_HTTPHEADER, r->out_headers);
    SET(CURLOPT_USERAGENT, "moonwatch/" MW_VERSION);
    SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, ms(r->connect_timeout));
    if (r->timeout > 0)
        SET(CURLOPT_TIMEOUT_MS, ms(r->timeout));
    if (!o->on_data)
        SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_body);
    if (o->follow_redirects) {
        SET(CURLOPT_FOLLOWLOCATION, 1L);
        SET(CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
    }
    if (o->unix_socket) {
        SET(CURLOPT_UNIX_SOCKET_PATH, o->unix_socket);
        SET(CURLOPT_PROXY, ""); /* a local socket never goes through a proxy */
    }
#undef SET
    if (cc == CURLE_OK)
        cc = set_protocols(e);
    if (cc == CURLE_OK)
        cc = set_method(e, o);
    return cc;
}

static mw_code req_init(mw__http_req *r, const mw__http_opts *o, char **err)
{
    r->t0 = mw__mono();
    r->timeout = o->timeout > 0 ? o->timeout : 0;
    r->connect_timeout = o->connect_timeout > 0 ? o->connect_timeout : DEFAULT_CONNECT_TIMEOUT;
    r->max_body = o->max_body ? o->max_body : DEFAULT_MAX_BODY;
    r->follow = o->follow_redirects != 0;
    r->on_data = o->on_data;
    r->on_headers = o->on_headers;
    r->done = o->done;
    r->ud = o->ud;
    mw__buf_init(&r->body, r->max_body);
    mw__buf_init(&r->hdrs, MAX_HEADER_BYTES);

    mw_code rc = check_url(o->url, &r->target, err);
    if (rc != MW_OK)
        return rc;
    if (o->unix_socket) {
        free(r->target);
        if (!(r->target = mw__sprintf("unix:%s", o->unix_socket)))
            goto oom;
    }
    if (!(r->easy = curl_easy_init()) || build_headers(r, o) != MW_OK)
        goto oom;
    CURLcode cc = set_easy(r, o);
    if (cc != CURLE_OK) {
        set_err(err, "url \"%.200s\": %s", o->url, curl_easy_strerror(cc));
        return cc == CURLE_OUT_OF_MEMORY ? MW_ENOMEM : MW_EINVAL;
    }
    return MW_OK;
oom:
    set_err(err, "out of memory");
    return MW_ENOMEM;
}

/* ------------------------------------------------------------- API */

mw__http *mw__http_new(mw__loop *loop)
{
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return NULL;
    mw__http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->loop = loop;
    mw__timer_init(&h->timer, timer_cb, h);
    mw__timer_init(&h->kick, kick_cb, h);
    if (!(h->multi = curl_multi_init()) ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_fn) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, (void *)h) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, curl_timer_fn) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, (void *)h) != CURLM_OK) {
        destroy(h);
        return NULL;
    }
    return h;
}

/* Frees everything; no callback of the caller runs. */
static void destroy(mw__http *h)
{
    h->dead = 1;
    while (h->head) {
        req_remove(h->head);
        req_free(h->head);
    }
    if (h->multi)
        curl_multi_cleanup(h->multi); /* closes connections: REMOVEs sockets */
    while (h->socks)
        sock_free(h, h->socks);
    mw__timer_stop(h->loop, &h->timer);
    mw__timer_stop(h->loop, &h->kick);
    free(h);
}

void mw__http_free(mw__http *h)
{
    if (!h)
        return;
    if (h->busy) {
        h->dead = 1; /* destroyed when the loop callback returns */
        h->active = 0;
        return;
    }
    destroy(h);
}

mw__http_req *mw__http_start(mw__http *h, const mw__http_opts *o, char **err)
{
    if (err)
        *err = NULL;
    if (h->dead) {
        set_err(err, "http client is being freed");
        return NULL;
    }
    if (check_opts(o, err) != MW_OK)
        return NULL;
    mw__http_req *r = calloc(1, sizeof *r);
    if (!r) {
        set_err(err, "out of memory");
        return NULL;
    }
    r->h = h;
    r->state = ST_PENDING;
    req_link(h, r);
    if (req_init(r, o, err) != MW_OK) {
        req_free(r);
        return NULL;
    }
    if (!mw__timer_active(&h->kick) && mw__timer_start(h->loop, &h->kick, mw__mono_ns()) != 0) {
        req_free(r);
        set_err(err, "out of memory");
        return NULL;
    }
    h->active++;
    return r;
}

void mw__http_cancel(mw__http_req *r)
{
    if (!r || r->canceled || r->state == ST_DONE || r->h->dead)
        return;
    mw__http *h = r->h;
    r->canceled = 1;
    h->active--;
    /* Inside curl (or with a removal impossible now): the reaper frees it
     * once curl_multi_socket_action() has returned. */
    if (h->in_curl && r->in_multi) {
        h->marked++;
        return;
    }
    req_remove(r);
    req_free(r);
}

const char *mw__http_header(mw__http_req *r, const char *name)
{
    if (!r || !name)
        return NULL;
    return header_find(&r->hdrs, name);
}

size_t mw__http_active(const mw__http *h)
{
    return h ? h->active : 0;
}
