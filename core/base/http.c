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
 * Transfers with deny_link_local run in a second multi handle, so that
 * they never reuse a connection (a multi handle's cache) that was opened
 * without the check: every connection they can get was vetted by
 * open_socket().
 *
 * Redirects are followed here, not by curl (CURLOPT_FOLLOWLOCATION is
 * never set): the body of a redirect being followed is skipped, and once
 * it has ended the same easy handle is pointed at the new URL and added
 * again, a new "hop". Every hop, the first included, is vetted before it
 * is added, so that nothing is sent for a target the link-local rule
 * refuses, proxy or not:
 *
 *   - the URL's host as curl's URL parser normalizes it (2852039166,
 *     0xA9FEA9FE and 169.254.43518 all become 169.254.169.254) is an
 *     address: refused when it is link-local;
 *   - it is a name and a proxy may be used (a proxy variable is set in
 *     the environment; curl then sends the name to the proxy, which
 *     resolves it where open_socket() never sees it): a probe resolves it
 *     first, with curl's own resolver on the loop (a connect-only easy
 *     handle, never proxied, in the transfer's multi handle, whose
 *     CURLOPT_OPENSOCKETFUNCTION notes each address and opens no socket),
 *     and the hop is refused when any address is link-local or when the
 *     name does not resolve here;
 *   - else open_socket() decides, as it does for every connection curl
 *     opens: direct connections, also to the hosts NO_PROXY excludes.
 *
 * Not curl's own redirects: curl connects and sends a redirect's request
 * within the call that read the redirect, and no callback of its can wait
 * for a name to resolve (pausing in the header callback does not stop a
 * redirect without a body from being followed at once).
 *
 * Connections (CURLOPT_CONNECT_ONLY) each get a multi handle of their own
 * (a "driver": multi handle, timer, watched sockets). libcurl 7.88 keeps a
 * finished connect-only connection in its multi handle's connection cache,
 * reachable by curl_easy_send/recv only while the easy handle stays in that
 * multi (curl_multi_remove_handle closes it), and there other transfers'
 * cache pruning closes it: when it has sat unused for CURLOPT_MAXAGE_CONN
 * (118 s) or its peer has closed, as soon as some transfer opens a new
 * connection. Alone in its own multi handle nothing else ever prunes it.
 * After the connect the easy handle stays in its multi handle until
 * mw__http_conn_close(); curl no longer watches the socket then, so a
 * connection's wait is a plain mw__io on it.
 *
 * Ownership: the mw__http owns its drivers, its requests (easy handle,
 * outgoing header list, buffered body and response headers), the easy
 * handles it keeps for the next requests (IDLE_EASY), one small
 * struct per socket curl asks it to watch, and the connections still open
 * (closed by mw__http_free()). Strings in a mw__http_result are the
 * request's and live until its `done` returns.
 */
#include "core/base/http.h"

#include "core/base/buf.h"
#include "core/base/netaddr.h"
#include "core/base/util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

/* Transfers one multi handle takes before its pool opens another (see
 * pool_pick()), and the idle connections it keeps for them. */
#define DRV_CAP 128
/* Easy handles kept for reuse: curl_easy_init() is a third of what
 * starting a request costs; a handle is reset, not made again. */
#define IDLE_EASY               8
#define DEFAULT_MAX_BODY        (10u << 20)
#define DEFAULT_CONNECT_TIMEOUT 10.0
#define MAX_REDIRECTS           5
/* CURLOPT_BUFFERSIZE: curl's smallest, and its default */
#define MIN_RECV_BUFFER 1024
#define MAX_RECV_BUFFER 16384
/* All response headers of one response, stored as "name\0value\0". */
#define MAX_HEADER_BYTES (256u << 10)

enum { ST_PENDING, ST_RUNNING, ST_DONE };
/* A probe resolves a hop's host name for its request (see above). */
enum { KIND_HTTP, KIND_CONN, KIND_PROBE };
/* What a redirect does to the method (see hop_setopts()). */
enum { M_GET, M_HEAD, M_POST, M_OTHER };
/* Verdicts on a hop. */
enum { VET_OK, VET_PROBING, VET_REFUSED };

/* What transfers need of a URL, by curl's own parser; all malloc'd. */
typedef struct url_info {
    char *url;    /* normalized: what is requested */
    char *target; /* "host:port", for messages */
    char *host;   /* as in the URL ("[::1]" bracketed) */
    char *origin; /* "scheme://host:port" */
} url_info;

typedef struct drv drv;

/* A socket curl asked its driver to watch. */
typedef struct hsock {
    mw__io io;
    drv *d;
    struct hsock *prev, *next;
} hsock;

/* One multi handle on the loop: one of the client's transfer pools, or
 * one connection's. */
struct drv {
    mw__http *h;
    int shared; /* the client's: many transfers */
    CURLM *multi;
    mw__timer timer; /* curl's own timeout */
    hsock *socks;
    size_t load; /* shared: transfers assigned to it now */
    drv *next;   /* shared: the next multi handle of its pool */
    int kicked;  /* shared: got transfers from the kick under way */
};

struct mw__http_req {
    mw__http *h;
    mw__http_req *prev, *next;
    drv *d;   /* the multi handle it runs in */
    drv *own; /* connections: d, its own, until the connection has it */
    CURL *easy;
    struct curl_slist *out_headers;
    struct curl_slist *cross_headers; /* for other origins: no credentials */
    int kind;
    int state;
    int in_multi;      /* added to the multi handle */
    int canceled;      /* freed after curl returns; done never called */
    int forced;        /* failed outside curl's knowledge: report it */
    int headers_fired; /* on_headers was called */
    int follow;        /* follow_redirects */
    int nredirects;    /* redirects followed */
    int redirecting;   /* this hop's response is a redirect to follow */
    int no_status;     /* the current hop has no response (yet) */
    int deny_link_local;
    int over_unix; /* a unix socket: the URL's host is only a header */
    int method;    /* M_GET... */
    int want_cert;
    int wipe;     /* secrets in the headers or the body: zero before free */
    int recycle;  /* its easy handle may serve another request (easy_put) */
    mw_code fail; /* why our callbacks stopped the transfer */
    double t0, timeout, connect_timeout;
    size_t max_body;
    char *target;   /* "unix:/path" or "host:port", for connect errors */
    url_info at;    /* the current hop */
    url_info redir; /* the redirect to follow once this hop ends */
    char *origin;   /* the first hop's: credentials only go there */
    /* probes */
    struct mw__http_req *probe;  /* the probe vetting the current hop */
    struct mw__http_req *parent; /* the request a probe vets */
    int seen;                    /* addresses a probe was offered */
    int link_local;              /* one of them was link-local */
    mw__buf body;
    mw__buf hdrs;            /* the last response's headers, "name\0value\0"... */
    mw__http_result *result; /* while its done runs */
    int (*on_data)(void *ud, const char *p, size_t n);
    void (*on_headers)(void *ud, long status);
    void (*done)(void *ud, const mw__http_result *r);
    void (*conn_done)(void *ud, mw__http_conn *c, const mw__http_result *r);
    void *ud;
    char errbuf[CURL_ERROR_SIZE];
    /* Made only when needed (most requests never need them): */
    char *refused; /* the first link-local address refused (a probe: the
                    * address alone) */
    char *msg;     /* why it failed, for its result */
};

struct mw__http_conn {
    mw__http *h;
    mw__http_conn *prev, *next;
    drv *d;     /* its own multi handle, `easy` stays in it until closed */
    CURL *easy; /* connect-only */
    curl_socket_t fd;
    mw__io io; /* the wait; io.fd < 0 when none */
    void (*ready)(void *ud);
    void *ready_ud;
    char errbuf[CURL_ERROR_SIZE];
};

struct mw__http {
    mw__loop *loop;
    drv main;       /* HTTP transfers: the first multi handle of the pool */
    drv *guarded;   /* those with deny_link_local, made on first use */
    mw__timer kick; /* adds pending transfers to their multi handles */
    mw__http_req *head;
    mw__http_conn *conns;
    size_t active;
    size_t pending; /* requests of `head` in ST_PENDING */
    int in_curl;    /* inside curl_multi_socket_action() */
    int marked;     /* requests marked cancelled or forced since the last sweep */
    int busy;       /* inside one of our loop callbacks */
    int dead;       /* mw__http_free() called while busy */
    /* mw__http_resolve(): names tests pinned, for every easy handle */
    struct curl_slist *resolve;
    CURL *idle[IDLE_EASY]; /* easy handles reset for the next requests */
    size_t nidle;
};

/* ------------------------------------------------------------- global */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ------------------------------------------------------------- requests */

static void drv_free(drv *d);
static drv *pool_pick(mw__http *h, drv *first);
static void req_remove(mw__http_req *r);

static void url_info_free(url_info *u)
{
    free(u->url);
    free(u->target);
    free(u->host);
    free(u->origin);
    memset(u, 0, sizeof *u);
}

/* Copies `from` into `out`: MW_OK, or MW_ENOMEM with `out` empty. */
static mw_code url_info_copy(const url_info *from, url_info *out)
{
    out->url = mw__strdup(from->url);
    out->target = mw__strdup(from->target);
    out->host = mw__strdup(from->host);
    out->origin = mw__strdup(from->origin);
    if (out->url && out->target && out->host && out->origin)
        return MW_OK;
    url_info_free(out);
    return MW_ENOMEM;
}

struct mw__http_memo {
    char *src; /* the url as the caller gave it */
    url_info u;
};

void mw__http_memo_free(mw__http_memo *m)
{
    if (!m)
        return;
    free(m->src);
    url_info_free(&m->u);
    free(m);
}

static void req_free(mw__http_req *r);

/* Stops the probe of `r`: now, or once curl has returned when inside it. */
static void probe_drop(mw__http_req *r)
{
    mw__http_req *p = r->probe;
    r->probe = NULL;
    p->parent = NULL;
    if (r->h->in_curl && p->in_multi) {
        p->canceled = 1;
        r->h->marked++;
        return;
    }
    req_remove(p);
    req_free(p);
}

/* Moves `r` on from ST_PENDING (counted) to `st`. */
static void req_state(mw__http_req *r, int st)
{
    if (r->state == ST_PENDING && st != ST_PENDING)
        r->h->pending--;
    r->state = st;
}

/* A handle for a new request: one kept, or a new one. */
static CURL *easy_get(mw__http *h)
{
    return h->nidle ? h->idle[--h->nidle] : curl_easy_init();
}

/*
 * Keeps `e` (out of its multi handle) for another request, or cleans it
 * up. Only a request's that asked for nothing a reset leaves behind is
 * kept: not one whose receive buffer was sized (curl keeps the buffer
 * across curl_easy_reset(), and the next request may want a larger one)
 * nor one that carried secrets.
 */
static void easy_put(mw__http *h, CURL *e, int recycle)
{
    if (recycle && !h->dead && h->nidle < IDLE_EASY) {
        curl_easy_reset(e);
        h->idle[h->nidle++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

/* Unlinks and frees a request; it must be out of the multi handle. */
static void req_free(mw__http_req *r)
{
    if (r->probe)
        probe_drop(r);
    if (r->parent)
        r->parent->probe = NULL;
    MW_LIST_REMOVE(r->h->head, r);
    req_state(r, ST_DONE);
    if (r->kind == KIND_HTTP && r->d && r->d->shared)
        r->d->load--;
    if (r->easy)
        easy_put(r->h, r->easy, r->recycle);
    drv_free(r->own);
    if (r->wipe) {
        for (struct curl_slist *l = r->out_headers; l; l = l->next)
            mw__wipe(l->data, strlen(l->data));
        for (struct curl_slist *l = r->cross_headers; l; l = l->next)
            mw__wipe(l->data, strlen(l->data));
        mw__wipe(r->hdrs.p, r->hdrs.cap); /* the body is a secret buffer */
    }
    curl_slist_free_all(r->out_headers);
    curl_slist_free_all(r->cross_headers);
    mw__buf_free(&r->body);
    mw__buf_free(&r->hdrs);
    free(r->target);
    url_info_free(&r->at);
    url_info_free(&r->redir);
    free(r->origin);
    free(r->refused);
    free(r->msg);
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
        curl_multi_remove_handle(r->d->multi, r->easy);
    r->in_multi = 0;
}

/* Sets the failure message of `r`. */
__attribute__((format(printf, 2, 0))) static void req_vmsg(mw__http_req *r, const char *fmt,
                                                           va_list ap)
{
    free(r->msg);
    r->msg = mw__vsprintf(fmt, ap);
}

__attribute__((format(printf, 2, 3))) static void req_msg(mw__http_req *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    req_vmsg(r, fmt, ap);
    va_end(ap);
}

/* The failure message of `r`; without memory for it, the error's name. */
static const char *req_error(const mw__http_req *r, mw_code code)
{
    return r->msg ? r->msg : mw_strerror(code);
}

/* Records why the transfer is being stopped; the first reason wins. */
__attribute__((format(printf, 3, 4))) static void req_fail(mw__http_req *r, mw_code code,
                                                           const char *fmt, ...)
{
    if (r->fail != MW_OK)
        return;
    va_list ap;
    va_start(ap, fmt);
    req_vmsg(r, fmt, ap);
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

static void redirect_to(mw__http_req *r, const char *location);

static void fire_headers(mw__http_req *r, long status)
{
    r->headers_fired = 1;
    if (r->on_headers)
        r->on_headers(r->ud, status);
}

/* A blank line: the headers of one response are complete. Interim (1xx)
 * responses and redirects to follow (any 3xx with a Location, as curl
 * would) are not reported. */
static void headers_end(mw__http_req *r)
{
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || r->headers_fired)
        return;
    const char *location = header_find(&r->hdrs, "location");
    if (r->follow && status >= 300 && status < 400 && location && *location) {
        redirect_to(r, location);
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
        /* A new response (after a 1xx): keep only its headers. */
        mw__buf_reset(&r->hdrs);
        r->no_status = 0;
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
    if (r->redirecting)
        return n; /* a redirect's body: skipped */
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

/* "Jan  1 00:00:00 2027 GMT" (OpenSSL's ASN1_TIME_print) to unix
 * seconds; 0 when it is not that. */
static double parse_cert_time(const char *s)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char mon[4], tz[4];
    int day, hh, mm, ss, year;
    if (sscanf(s, " %3s %d %d:%d:%d %d %3s", mon, &day, &hh, &mm, &ss, &year, tz) != 7 ||
        strcmp(tz, "GMT") != 0 || strlen(mon) != 3)
        return 0;
    const char *m = strstr(months, mon);
    if (!m || (m - months) % 3 != 0 || day < 1 || day > 31 || hh < 0 || hh > 23 || mm < 0 ||
        mm > 59 || ss < 0 || ss > 60 || year < 1970 || year > 9999)
        return 0;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = (int)(m - months) / 3,
                    .tm_mday = day,
                    .tm_hour = hh,
                    .tm_min = mm,
                    .tm_sec = ss};
    time_t t = timegm(&tm);
    return t == (time_t)-1 ? 0 : (double)t;
}

/* The notAfter of the server's certificate (the first of the chain
 * CURLOPT_CERTINFO gathered); 0 when unknown. */
static double cert_not_after(CURL *easy)
{
    struct curl_certinfo *ci = NULL;
    if (curl_easy_getinfo(easy, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci || ci->num_of_certs < 1)
        return 0;
    for (struct curl_slist *l = ci->certinfo[0]; l; l = l->next)
        if (strncmp(l->data, "Expire date:", 12) == 0)
            return parse_cert_time(l->data + 12);
    return 0;
}

static void result_error(mw__http_req *r, CURLcode cc, mw__http_result *res)
{
    long oserr = 0;
    curl_off_t connect_time = 0;
    const char *why = r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc);

    curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &oserr);
    curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME_T, &connect_time);
    res->code = MW_EIO;
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        res->code = MW_ETIMEOUT;
        if (connect_time == 0 && (r->timeout == 0 || r->connect_timeout < r->timeout))
            req_msg(r, "connect to %s: timed out after %.1f s", r->target, r->connect_timeout);
        else
            req_msg(r, "timed out after %.1f s", r->timeout);
        break;
    case CURLE_COULDNT_CONNECT:
        /* curl only knows it got no socket: say why */
        if (r->refused)
            req_msg(r, "%s", r->refused);
        else
            req_msg(r, "connect to %s: %s", r->target, oserr ? strerror((int)oserr) : why);
        break;
    case CURLE_FILESIZE_EXCEEDED:
        res->code = MW_EPARSE;
        req_msg(r, "response body over %zu bytes", r->max_body);
        break;
    case CURLE_OUT_OF_MEMORY:
        res->code = MW_ENOMEM;
        req_msg(r, "out of memory");
        break;
    default:
        req_msg(r, "%s", why);
        break;
    }
}

static void result_fill(mw__http_req *r, CURLcode cc, mw__http_result *res)
{
    memset(res, 0, sizeof *res);
    if (!r->no_status)
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res->status);
    res->body = mw__buf_str(&r->body);
    res->len = r->body.len;
    res->elapsed = mw__mono() - r->t0;
    if (r->want_cert)
        res->cert_not_after = cert_not_after(r->easy);
    if (r->fail != MW_OK) {
        res->code = r->fail;
        res->error = req_error(r, res->code);
    } else if (cc != CURLE_OK) {
        result_error(r, cc, res);
        res->error = req_error(r, res->code);
    }
    if (res->code != MW_OK) {
        res->body = "";
        res->len = 0;
    }
}

static mw__http_conn *conn_new(mw__http_req *r, mw__http_result *res);
static int hop_next(mw__http_req *r);
static int hop_add(mw__http_req *r);
static void probe_verdict(mw__http_req *p, mw__http_req *r, CURLcode cc);

/* Reports a finished transfer (out of its multi handle, or a connection)
 * and frees it. A connection made keeps its easy handle in its multi
 * handle (removing it would close it). */
static void req_report(mw__http *h, mw__http_req *r, CURLcode cc)
{
    mw__http_result res;

    result_fill(r, cc, &res);
    req_state(r, ST_DONE);
    h->active--;
    if (r->kind == KIND_CONN) {
        mw__http_conn *c = res.code == MW_OK ? conn_new(r, &res) : NULL;
        req_remove(r); /* unless `c` has it */
        if (r->conn_done)
            r->conn_done(r->ud, c, &res);
    } else if (r->done) {
        r->result = &res;
        r->done(r->ud, &res);
    }
    req_free(r);
}

/* A probe ended: the request it vets goes on to its hop, or is reported
 * refused. */
static void probe_complete(mw__http *h, mw__http_req *p, CURLcode cc)
{
    mw__http_req *r = p->parent;
    if (r)
        probe_verdict(p, r, cc);
    req_remove(p);
    req_free(p); /* detaches it from `r` */
    if (!r || (r->fail == MW_OK && hop_add(r) == 0))
        return;
    req_report(h, r, CURLE_OK);
}

/* A transfer, a connect or a probe ended: reports it, unless it was a
 * redirect to follow and the next hop starts. */
static void req_complete(mw__http *h, mw__http_req *r, CURLcode cc)
{
    if (r->canceled) {
        req_remove(r);
        req_free(r);
        return;
    }
    if (r->kind == KIND_PROBE) {
        probe_complete(h, r, cc);
        return;
    }
    if (r->kind == KIND_HTTP) {
        req_remove(r);
        if (cc == CURLE_OK && r->fail == MW_OK && r->redirecting && hop_next(r) == 0)
            return;
    }
    req_report(h, r, cc);
}

/* After curl returned: report finished transfers of driver `d`, then free
 * the requests cancelled inside curl's callbacks and report the ones
 * failed behind curl's back. Stops as soon as the client is being freed. */
static void reap(mw__http *h, drv *d)
{
    CURLMsg *m;
    int left, shared = d->shared;

    while (!h->dead && (m = curl_multi_info_read(d->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        mw__http_req *r = req_of(m->easy_handle);
        if (!r)
            continue;
        req_complete(h, r, m->data.result);
        if (!shared)
            break; /* a connection's driver, now freed or handed over */
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

/* One wake-up of a driver; `d` may be freed when it returns. */
static void drive(drv *d, curl_socket_t fd, int flags)
{
    mw__http *h = d->h;
    int running = 0;
    h->in_curl++;
    curl_multi_socket_action(d->multi, fd, flags, &running);
    h->in_curl--;
    reap(h, d);
}

static void io_cb(mw__io *io, uint32_t events)
{
    hsock *s = io->ud;
    mw__http *h = s->d->h;
    int flags = 0;

    if (events & (EPOLLIN | EPOLLHUP))
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & EPOLLERR)
        flags |= CURL_CSELECT_ERR;
    enter(h);
    drive(s->d, io->fd, flags); /* may free `s` */
    leave(h);
}

static void timer_cb(mw__timer *t)
{
    drv *d = t->ud;
    mw__http *h = d->h;
    enter(h);
    drive(d, CURL_SOCKET_TIMEOUT, 0); /* may free `d` */
    leave(h);
}

static int hop_start(mw__http_req *r);

/* Lets curl start at once what the kick added to the multi handles of
 * the pool at `d`; the others have nothing new (a pool of thousands of
 * transfers has dozens of handles, and the kick comes often). */
static void kick_pool(mw__http *h, drv *d)
{
    for (; d && !h->dead; d = d->next)
        if (d->kicked) {
            d->kicked = 0;
            drive(d, CURL_SOCKET_TIMEOUT, 0);
        }
}

/* Adds the pending transfers (or their probes), then lets curl start the
 * HTTP ones at once (a connection's multi handle has its timer armed at
 * 0 by the add). New requests are pushed at the head of the list, so the
 * pending ones come first and the walk ends with the last of them, not
 * at the end of every transfer running. Probes are pushed at the head
 * too: this walk never meets them. */
static void kick_cb(mw__timer *t)
{
    mw__http *h = t->ud;
    enter(h);
    for (mw__http_req *r = h->head; r && h->pending; r = r->next) {
        if (r->state != ST_PENDING)
            continue;
        req_state(r, ST_RUNNING);
        r->d->kicked = r->d->shared;
        if ((r->kind == KIND_HTTP ? hop_start(r) : hop_add(r)) != 0) {
            r->forced = 1;
            h->marked++;
        }
    }
    kick_pool(h, &h->main);
    kick_pool(h, h->guarded);
    leave(h);
}

/* CURLMOPT_TIMERFUNCTION: one timer per multi handle. */
static int curl_timer_fn(CURLM *multi, long ms, void *ud)
{
    drv *d = ud;
    MW_UNUSED(multi);
    if (ms < 0) {
        mw__timer_stop(d->h->loop, &d->timer);
        return 0;
    }
    return mw__timer_start(d->h->loop, &d->timer, mw__mono_ns() + (uint64_t)ms * 1000000u);
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

static void sock_free(drv *d, hsock *s)
{
    mw__io_stop(d->h->loop, &s->io);
    MW_LIST_REMOVE(d->socks, s);
    free(s);
}

static hsock *sock_new(drv *d, curl_socket_t fd, uint32_t ev)
{
    hsock *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->d = d;
    if (mw__io_start(d->h->loop, &s->io, fd, ev, io_cb, s) != 0) {
        free(s);
        return NULL;
    }
    MW_LIST_PUSH(d->socks, s);
    curl_multi_assign(d->multi, fd, s);
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
    drv *d = ud;
    hsock *s = sockp;

    if (what == CURL_POLL_REMOVE) {
        if (s)
            sock_free(d, s);
        return 0;
    }
    uint32_t ev = poll_events(what);
    if (!s) {
        if (!sock_new(d, fd, ev)) {
            sock_failed(easy, "watching", errno);
            return -1;
        }
    } else if (s->io.events != ev && mw__io_modify(d->h->loop, &s->io, ev) != 0) {
        sock_failed(easy, "re-watching", errno);
        return -1;
    }
    return 0;
}

/* Sets up a multi handle on the loop; 0, or -1 on OOM (then drv_free()). */
static mw_code drv_init(drv *d, mw__http *h)
{
    d->h = h;
    mw__timer_init(&d->timer, timer_cb, d);
    if (!(d->multi = curl_multi_init()) ||
        curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_fn) != CURLM_OK ||
        curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, (void *)d) != CURLM_OK ||
        curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, curl_timer_fn) != CURLM_OK ||
        curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, (void *)d) != CURLM_OK)
        return MW_EIO;
    /* curl's own bound, four per transfer in the handle at the moment,
     * shrinks whenever finished transfers are out and the next ones not
     * yet added (they are, at the next kick): a burst of answers then
     * closes the connections the next round would have reused. */
    if (d->shared && curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, (long)DRV_CAP) != CURLM_OK)
        return MW_EIO;
    return MW_OK;
}

/* Cleans up a driver whose easy handles are all removed. */
static void drv_cleanup(drv *d)
{
    if (d->multi)
        curl_multi_cleanup(d->multi); /* closes connections: REMOVEs sockets */
    d->multi = NULL;
    while (d->socks)
        sock_free(d, d->socks);
    mw__timer_stop(d->h->loop, &d->timer);
}

static void drv_free(drv *d)
{
    if (!d)
        return;
    drv_cleanup(d);
    free(d);
}

/* Frees the multi handles that follow `first` in its pool. */
static void pool_free(drv *first)
{
    while (first && first->next) {
        drv *d = first->next;
        first->next = d->next;
        drv_free(d);
    }
}

/*
 * The multi handle of the pool starting at `first` a new transfer goes
 * to: the first one with fewer than DRV_CAP transfers, else a new one.
 * curl 7.88 walks every connection of a multi handle's cache each time a
 * transfer is removed (to close connect-only ones), so one handle with
 * thousands of transfers costs O(n^2); a pool keeps n at DRV_CAP. Light
 * loads stay on the first handle and keep reusing its connections. On OOM
 * the first handle takes the transfer anyway.
 */
static drv *pool_pick(mw__http *h, drv *first)
{
    drv *last = first;
    for (drv *d = first; d; d = d->next) {
        if (d->load < DRV_CAP)
            return d;
        last = d;
    }
    drv *d = calloc(1, sizeof *d);
    if (!d)
        return first;
    d->shared = 1;
    if (drv_init(d, h) != 0) {
        drv_free(d);
        return first;
    }
    last->next = d;
    return d;
}

/* ------------------------------------------------------------- link-local */

/* Whether `a` is an address requests may be told to stay away from (the
 * link-local ranges of netaddr.h, where cloud metadata services answer);
 * writes it to `out` when it is. */
static int is_link_local(const struct curl_sockaddr *a, char *out, size_t n)
{
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
    const void *bytes = NULL;

    if (a->family == AF_INET && a->addrlen >= sizeof in) {
        memcpy(&in, &a->addr, sizeof in);
        bytes = &in.sin_addr;
    } else if (a->family == AF_INET6 && a->addrlen >= sizeof in6) {
        memcpy(&in6, &a->addr, sizeof in6);
        bytes = &in6.sin6_addr;
    }
    if (!bytes || !mw__link_local(a->family, bytes))
        return 0;
    return inet_ntop(a->family, bytes, out, (socklen_t)n) != NULL;
}

/* CURLOPT_OPENSOCKETFUNCTION with deny_link_local: curl asks for a socket
 * for every address it is about to connect to (after DNS, for each
 * redirect): none for a link-local one, so nothing is ever sent there. */
static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    mw__http_req *r = ud;
    char addr[INET6_ADDRSTRLEN];
    MW_UNUSED(purpose);
    if (is_link_local(a, addr, sizeof addr)) {
        if (!r->refused)
            r->refused = mw__sprintf("refused: %s is a link-local address", addr);
        errno = EACCES;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
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

static int http_scheme(const char *scheme)
{
    return scheme && (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0);
}

/* Fills `out` from the http(s) URL held by `u`; `shown` names it in
 * messages. */
static mw_code url_fill(CURLU *u, const char *shown, url_info *out, char **err)
{
    char *scheme = NULL, *host = NULL, *port = NULL, *full = NULL;
    mw_code rc = MW_EINVAL;

    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || !http_scheme(scheme)) {
        set_err(err, "url \"%.200s\": scheme \"%s\" not allowed (http and https only)", shown,
                scheme ? scheme : "");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
        set_err(err, "url \"%.200s\": no host", shown);
        goto out;
    }
    out->url = mw__strdup(full);
    out->target = mw__sprintf("%s:%s", host, port);
    out->host = mw__strdup(host);
    out->origin = mw__sprintf("%s://%s:%s", scheme, host, port);
    rc = MW_OK;
    if (!out->url || !out->target || !out->host || !out->origin) {
        url_info_free(out);
        set_err(err, "out of memory");
        rc = MW_ENOMEM;
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(full);
    return rc;
}

/* Accepts http(s) URLs only, parsed into `out`. */
static mw_code url_parse(const char *url, url_info *out, char **err)
{
    CURLU *u = curl_url();
    mw_code rc = MW_ENOMEM;

    if (!u) {
        set_err(err, "out of memory");
        goto out;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        set_err(err, "url \"%.200s\": %s", url, url_strerror(uc));
        rc = MW_EINVAL;
        goto out;
    }
    rc = url_fill(u, url, out, err);
out:
    curl_url_cleanup(u);
    return rc;
}

/* url_parse() through the caller's memo: the same url as last time is
 * copied from it, another one parsed and left there. A memo that cannot
 * be made is no failure: the next start parses again. */
static mw_code url_parse_memo(const char *url, mw__http_memo **memo, url_info *out, char **err)
{
    mw__http_memo *m = memo ? *memo : NULL;
    if (m && strcmp(m->src, url) == 0) {
        if (url_info_copy(&m->u, out) == MW_OK)
            return MW_OK;
        set_err(err, "out of memory");
        return MW_ENOMEM;
    }
    mw_code rc = url_parse(url, out, err);
    if (rc != MW_OK || !memo)
        return rc;
    if (!(m = calloc(1, sizeof *m)) || !(m->src = mw__strdup(url)) ||
        url_info_copy(out, &m->u) != MW_OK) {
        mw__http_memo_free(m);
        return rc;
    }
    mw__http_memo_free(*memo);
    *memo = m;
    return rc;
}

/* The Location of a redirect to follow, resolved against the current URL
 * as curl resolves it (CURLU_URLENCODE | CURLU_ALLOW_SPACE), into
 * r->redir; else the transfer is stopped: too many redirects, a scheme
 * other than http(s), a malformed URL. */
static void redirect_to(mw__http_req *r, const char *location)
{
    CURLU *u = NULL;
    char *scheme = NULL, *err = NULL;
    CURLUcode uc = CURLUE_OUT_OF_MEMORY;

    if (r->nredirects >= MAX_REDIRECTS) {
        req_fail(r, MW_EIO, "more than %d redirects", MAX_REDIRECTS);
        return;
    }
    if ((u = curl_url()) && (uc = curl_url_set(u, CURLUPART_URL, r->at.url, 0)) == CURLUE_OK)
        uc = curl_url_set(u, CURLUPART_URL, location,
                          CURLU_URLENCODE | CURLU_ALLOW_SPACE | CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        req_fail(r, uc == CURLUE_OUT_OF_MEMORY ? MW_ENOMEM : MW_EIO, "redirect to %.300s: %s",
                 location, url_strerror(uc));
    } else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || !http_scheme(scheme)) {
        req_fail(r, MW_EIO, "redirect to %.300s refused (http and https only)", location);
    } else {
        mw_code rc = url_fill(u, location, &r->redir, &err);
        if (rc == MW_OK) {
            r->redirecting = 1;
            r->nredirects++;
        } else {
            req_fail(r, rc, "redirect to %.300s: %s", location, err ? err : "out of memory");
        }
    }
    free(err);
    curl_free(scheme);
    curl_url_cleanup(u);
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

/* Whether header line `hd` ("Name: value") carries credentials or names
 * the first host: not sent to another origin after a redirect (curl
 * drops Authorization, Cookie and a custom Host there too). */
static int origin_bound(const char *hd)
{
    static const char *const names[] = {"Authorization", "Cookie", "Host"};
    for (size_t i = 0; i < MW_ARRAY_LEN(names); i++) {
        size_t n = strlen(names[i]);
        if (strncasecmp(hd, names[i], n) == 0 && hd[n] == ':')
            return 1;
    }
    return 0;
}

static mw_code add_line(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return MW_ENOMEM;
    *list = l;
    return MW_OK;
}

/* The request's headers, and those for another origin. */
static mw_code build_headers(mw__http_req *r, const mw__http_opts *o)
{
    for (size_t i = 0; i < o->nheaders; i++) {
        if (add_line(&r->out_headers, o->headers[i]) != MW_OK ||
            (!origin_bound(o->headers[i]) && add_line(&r->cross_headers, o->headers[i]) != MW_OK))
            return MW_ENOMEM;
    }
    /* No "Expect: 100-continue" wait before a larger body; not with
     * SigV4, which libcurl 7.88 would compute over the removed header
     * (bodies that small are never held back anyway). */
    if (!o->aws_sigv4 && !has_header(o, "Expect") &&
        (add_line(&r->out_headers, "Expect:") != MW_OK ||
         add_line(&r->cross_headers, "Expect:") != MW_OK))
        return MW_ENOMEM;
    return MW_OK;
}

static int method_kind(const char *m)
{
    if (!m || strcmp(m, "GET") == 0)
        return M_GET;
    if (strcmp(m, "HEAD") == 0)
        return M_HEAD;
    return strcmp(m, "POST") == 0 ? M_POST : M_OTHER;
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

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (cc == CURLE_OK)                                                                        \
            cc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)

static CURLcode set_tls(CURL *e, const mw__http_tls *t)
{
    CURLcode cc = CURLE_OK;
    if (t->no_verify) {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (t->ca_file)
        SET(CURLOPT_CAINFO, t->ca_file);
    if (t->client_cert)
        SET(CURLOPT_SSLCERT, t->client_cert);
    if (t->client_key)
        SET(CURLOPT_SSLKEY, t->client_key);
    return cc;
}

/* What requests and connections share. */
static CURLcode set_common(mw__http_req *r, const char *url, const mw__http_tls *tls,
                           int deny_link_local)
{
    CURL *e = r->easy;
    CURLcode cc = CURLE_OK;

    SET(CURLOPT_PRIVATE, (void *)r);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_URL, url);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_CONNECTTIMEOUT_MS, ms(r->connect_timeout));
    if (deny_link_local) {
        SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
        SET(CURLOPT_OPENSOCKETDATA, (void *)r);
    }
    if (r->h->resolve)
        SET(CURLOPT_RESOLVE, r->h->resolve);
    if (r->want_cert)
        SET(CURLOPT_CERTINFO, 1L);
    if (cc == CURLE_OK)
        cc = set_tls(e, tls);
    if (cc == CURLE_OK)
        cc = set_protocols(e);
    return cc;
}

static CURLcode set_easy(mw__http_req *r, const mw__http_opts *o)
{
    CURL *e = r->easy;
    CURLcode cc = set_common(r, r->at.url, &o->tls, o->deny_link_local);

    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, (void *)r);
    SET(CURLOPT_HEADERFUNCTION, header_cb);
    SET(CURLOPT_HEADERDATA, (void *)r);
    SET(CURLOPT_HTTPHEADER, r->out_headers);
    SET(CURLOPT_USERAGENT, "moonwatch/" MW_VERSION);
    SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    if (o->recv_buffer)
        SET(CURLOPT_BUFFERSIZE, (long)(o->recv_buffer < MIN_RECV_BUFFER   ? MIN_RECV_BUFFER
                                       : o->recv_buffer > MAX_RECV_BUFFER ? MAX_RECV_BUFFER
                                                                          : o->recv_buffer));
    if (r->timeout > 0)
        SET(CURLOPT_TIMEOUT_MS, ms(r->timeout));
    if (!o->on_data)
        SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_body);
    if (o->unix_socket)
        SET(CURLOPT_UNIX_SOCKET_PATH, o->unix_socket);
    if (o->unix_socket || o->direct)
        SET(CURLOPT_PROXY, ""); /* a local endpoint never goes through a proxy */
    /* Certificate details are only gathered during a handshake: a reused
     * connection would have none. */
    if (r->want_cert)
        SET(CURLOPT_FRESH_CONNECT, 1L);
    if (o->aws_sigv4) {
        SET(CURLOPT_AWS_SIGV4, o->aws_sigv4);
        SET(CURLOPT_USERNAME, o->aws_key_id ? o->aws_key_id : "");
        SET(CURLOPT_PASSWORD, o->aws_secret ? o->aws_secret : "");
    }
    if (cc == CURLE_OK)
        cc = set_method(e, o);
    return cc;
}

/* A connection: connect (and handshake) only, never through a proxy, and
 * no ALPN, so that the server does not expect HTTP/2. */
static CURLcode set_conn(mw__http_req *r, const char *url, const mw__http_conn_opts *o)
{
    CURL *e = r->easy;
    CURLcode cc = set_common(r, url, &o->tls_opts, o->deny_link_local);

    SET(CURLOPT_CONNECT_ONLY, 1L);
    SET(CURLOPT_PROXY, "");
    if (o->tls)
        SET(CURLOPT_SSL_ENABLE_ALPN, 0L);
    return cc;
}

static curl_socket_t probe_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a);

/* A probe for the current hop of `r`: curl resolves the host as for a
 * direct connection, in the same multi handle (so with the same DNS
 * cache), and offers each address to probe_socket(), which opens
 * nothing. Never through a proxy. */
static CURLcode set_probe(mw__http_req *p, const mw__http_req *r)
{
    CURL *e = p->easy;
    CURLcode cc = CURLE_OK;

    SET(CURLOPT_PRIVATE, (void *)p);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_URL, r->at.url);
    SET(CURLOPT_ERRORBUFFER, p->errbuf);
    SET(CURLOPT_CONNECT_ONLY, 1L);
    SET(CURLOPT_PROXY, "");
    SET(CURLOPT_FRESH_CONNECT, 1L);
    SET(CURLOPT_FORBID_REUSE, 1L);
    SET(CURLOPT_OPENSOCKETFUNCTION, probe_socket);
    SET(CURLOPT_OPENSOCKETDATA, (void *)p);
#if LIBCURL_VERSION_NUM >= 0x075700
    /* A probe stopped while its name is being resolved leaves curl's
     * resolver thread to finish on its own, instead of waiting for
     * getaddrinfo() on the loop thread. */
    SET(CURLOPT_QUICK_EXIT, 1L);
#endif
    SET(CURLOPT_CONNECTTIMEOUT_MS, ms(p->connect_timeout));
    if (p->timeout > 0)
        SET(CURLOPT_TIMEOUT_MS, ms(p->timeout));
    if (r->h->resolve)
        SET(CURLOPT_RESOLVE, r->h->resolve);
    if (cc == CURLE_OK)
        cc = set_protocols(e);
    return cc;
}

/* Points the easy handle at the next hop after a redirect of `status`:
 * its URL; GET without the body after a 303 (HEAD stays HEAD), and after
 * a 301 or 302 of a POST, as curl does; the headers without credentials
 * when its origin is not the first hop's; the `left` seconds of the
 * transfer's timeout. */
static CURLcode hop_setopts(mw__http_req *r, long status, double left)
{
    CURL *e = r->easy;
    CURLcode cc = CURLE_OK;
    int same = strcasecmp(r->at.origin, r->origin) == 0;

    SET(CURLOPT_URL, r->at.url);
    SET(CURLOPT_HTTPHEADER, same ? r->out_headers : r->cross_headers);
    if ((status == 303 && r->method != M_HEAD) ||
        ((status == 301 || status == 302) && r->method == M_POST)) {
        SET(CURLOPT_CUSTOMREQUEST, (char *)NULL);
        SET(CURLOPT_HTTPGET, 1L);
        r->method = M_GET;
    }
    if (r->timeout > 0)
        SET(CURLOPT_TIMEOUT_MS, ms(left));
    return cc;
}

#undef SET

/* The outcome of setting up the easy handle of a request for `url`, or
 * of a connection to `target` (url NULL). */
static mw_code easy_result(CURLcode cc, const char *url, const char *target, char **err)
{
    if (cc == CURLE_OK)
        return MW_OK;
    if (cc == CURLE_OUT_OF_MEMORY) {
        set_err(err, "out of memory");
        return MW_ENOMEM;
    }
    if (url)
        set_err(err, "url \"%.200s\": %s", url, curl_easy_strerror(cc));
    else
        set_err(err, "connect to %s: %s", target ? target : "?", curl_easy_strerror(cc));
    return MW_EINVAL;
}

/* What requests and connections start with. */
static void req_base(mw__http_req *r, double connect_timeout, size_t max_body)
{
    r->t0 = mw__mono();
    r->connect_timeout = connect_timeout > 0 ? connect_timeout : DEFAULT_CONNECT_TIMEOUT;
    r->max_body = max_body ? max_body : DEFAULT_MAX_BODY;
    mw__buf_init(&r->body, r->max_body);
    mw__buf_init(&r->hdrs, MAX_HEADER_BYTES);
}

static mw_code req_init(mw__http_req *r, const mw__http_opts *o, char **err)
{
    req_base(r, o->connect_timeout, o->max_body);
    r->d = pool_pick(r->h, o->deny_link_local ? r->h->guarded : &r->h->main);
    r->d->load++;
    r->timeout = o->timeout > 0 ? o->timeout : 0;
    r->follow = o->follow_redirects != 0;
    r->want_cert = o->want_cert != 0;
    r->wipe = o->wipe != 0;
    if (r->wipe) /* grows without leaving copies, zeroed when freed */
        mw__buf_init_secret(&r->body, r->max_body);
    r->on_data = o->on_data;
    r->on_headers = o->on_headers;
    r->done = o->done;
    r->ud = o->ud;
    r->deny_link_local = o->deny_link_local != 0;
    r->over_unix = o->unix_socket != NULL;
    r->method = method_kind(o->method);

    CURLcode cc = CURLE_OUT_OF_MEMORY;
    mw_code rc = url_parse_memo(o->url, o->wipe ? NULL : o->memo, &r->at, err);
    if (rc != MW_OK)
        return rc;
    r->target = o->unix_socket ? mw__sprintf("unix:%s", o->unix_socket) : mw__strdup(r->at.target);
    r->origin = mw__strdup(r->at.origin);
    if (!r->target || !r->origin)
        goto out;
    r->recycle = !o->recv_buffer && !o->wipe && !o->aws_sigv4;
    if (!(r->easy = easy_get(r->h)) || build_headers(r, o) != MW_OK)
        goto out;
    cc = set_easy(r, o);
out:
    return easy_result(cc, o->url, NULL, err);
}

/* A host curl takes as it is: a name or an address, nothing of a URL. */
static int host_ok(const char *host)
{
    if (!host || !*host || strlen(host) > 253)
        return 0;
    for (const char *p = host; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 127 || strchr("/?#@[]\\", *p))
            return 0;
    return 1;
}

/* "http://host:port/" or "https://[v6]:port/" (a zone "%eth0" escaped). */
static char *conn_url(const mw__http_conn_opts *o)
{
    const char *scheme = o->tls ? "https" : "http";
    if (!strchr(o->host, ':'))
        return mw__sprintf("%s://%s:%u/", scheme, o->host, o->port);
    const char *zone = strchr(o->host, '%');
    if (!zone)
        return mw__sprintf("%s://[%s]:%u/", scheme, o->host, o->port);
    return mw__sprintf("%s://[%.*s%%25%s]:%u/", scheme, (int)(zone - o->host), o->host, zone + 1,
                       o->port);
}

static mw_code conn_init(mw__http_req *r, const mw__http_conn_opts *o, char **err)
{
    req_base(r, o->connect_timeout, 0);
    r->kind = KIND_CONN;
    r->want_cert = o->tls && o->want_cert;
    r->conn_done = o->done;
    r->ud = o->ud;
    if (!host_ok(o->host)) {
        set_err(err, "host \"%.200s\": not a host name or address", o->host ? o->host : "");
        return MW_EINVAL;
    }
    if (o->port < 1 || o->port > 65535) {
        set_err(err, "port %u: out of range", o->port);
        return MW_EINVAL;
    }
    CURLcode cc = CURLE_OUT_OF_MEMORY;
    mw_code rc = MW_OK;
    char *url = conn_url(o);
    if (!url)
        goto out;
    if ((rc = url_parse(url, &r->at, err)) != MW_OK)
        goto out;
    if (!(r->target = mw__strdup(r->at.target)) || !(r->own = calloc(1, sizeof *r->own)) ||
        drv_init(r->own, r->h) != MW_OK || !(r->easy = curl_easy_init()))
        goto out;
    r->d = r->own;
    cc = set_conn(r, url, o);
out:
    if (rc == MW_OK)
        rc = easy_result(cc, NULL, r->target, err);
    free(url);
    return rc;
}

/* ------------------------------------------------------------- hops */

/* Whether curl may send requests to a proxy: it reads http_proxy (not
 * HTTP_PROXY), https_proxy or HTTPS_PROXY, and all_proxy or ALL_PROXY.
 * Any of them set counts, HTTP_PROXY too: a name is then resolved once
 * more than needed at worst. */
static int proxy_configured(void)
{
    static const char *const vars[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                       "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
    for (size_t i = 0; i < MW_ARRAY_LEN(vars); i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return 1;
    }
    return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION of a probe: notes the address (the first
 * link-local one in p->refused), opens nothing. */
static curl_socket_t probe_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    mw__http_req *p = ud;
    MW_UNUSED(purpose);
    char addr[INET6_ADDRSTRLEN];
    p->seen++;
    if (!p->link_local && is_link_local(a, addr, sizeof addr)) {
        p->link_local = 1;
        p->refused = mw__strdup(addr); /* NULL without memory: still refused */
    }
    errno = EACCES;
    return CURL_SOCKET_BAD;
}

/* Starts the probe of the current hop of `r`: MW_OK, or an error with
 * r->fail set. */
static mw_code probe_start(mw__http_req *r)
{
    mw__http_req *p = calloc(1, sizeof *p);
    double left = r->timeout - (mw__mono() - r->t0);
    CURLMcode mc = CURLM_OUT_OF_MEMORY;
    mw_code rc = MW_ENOMEM;

    if (!p)
        goto out;
    p->h = r->h;
    p->kind = KIND_PROBE;
    p->state = ST_RUNNING;
    p->d = r->d;
    p->t0 = mw__mono();
    p->timeout = r->timeout > 0 ? (left > 0.001 ? left : 0.001) : 0;
    p->connect_timeout =
        p->timeout > 0 && p->timeout < r->connect_timeout ? p->timeout : r->connect_timeout;
    MW_LIST_PUSH(r->h->head, p);
    if (!(p->easy = curl_easy_init()) || set_probe(p, r) != CURLE_OK ||
        (mc = curl_multi_add_handle(p->d->multi, p->easy)) != CURLM_OK)
        goto out;
    p->in_multi = 1;
    p->parent = r;
    r->probe = p;
    rc = MW_OK;
out:
    if (rc != MW_OK) {
        if (p)
            req_free(p);
        rc = mc == CURLM_OUT_OF_MEMORY ? MW_ENOMEM : MW_EIO;
        req_fail(r, rc, "checking %s: %s", r->at.host,
                 mc == CURLM_OUT_OF_MEMORY ? "out of memory" : curl_multi_strerror(mc));
    }
    return rc;
}

/* The probe `p` of `r` ended with `cc`: r->fail is set unless the hop
 * may go (the name resolved, to no link-local address). */
static void probe_verdict(mw__http_req *p, mw__http_req *r, CURLcode cc)
{
    const char *host = r->at.host;
    if (p->link_local)
        req_fail(r, MW_EIO, "refused: %s resolves to %s, a link-local address", host,
                 p->refused ? p->refused : "an address");
    else if (cc == CURLE_COULDNT_CONNECT && p->seen > 0)
        return;
    else if (cc == CURLE_COULDNT_RESOLVE_HOST)
        req_fail(r, MW_EIO,
                 "refused: %s does not resolve here, and a name sent to a proxy must be known "
                 "not to be link-local",
                 host);
    else if (cc == CURLE_OPERATION_TIMEDOUT)
        req_fail(r, MW_ETIMEOUT, "resolving %s: timed out after %.1f s", host, p->connect_timeout);
    else if (cc == CURLE_OUT_OF_MEMORY)
        req_fail(r, MW_ENOMEM, "out of memory");
    else
        req_fail(r, MW_EIO, "resolving %s: %s", host,
                 p->errbuf[0] ? p->errbuf : curl_easy_strerror(cc));
}

/* Whether the current hop of `r` may be requested now (VET_OK), once its
 * probe says so (VET_PROBING), or not (VET_REFUSED, r->fail set). */
static int vet(mw__http_req *r)
{
    char addr[INET6_ADDRSTRLEN];
    int ll;
    if (!r->deny_link_local || r->over_unix)
        return VET_OK;
    ll = mw__link_local_host(r->at.host, addr, sizeof addr);
    if (ll == 1) {
        req_fail(r, MW_EIO, "refused: %s is a link-local address", addr);
        return VET_REFUSED;
    }
    if (ll == 0 || !proxy_configured())
        return VET_OK; /* an address, or a direct connection: open_socket() sees it */
    return probe_start(r) == MW_OK ? VET_PROBING : VET_REFUSED;
}

/* Adds a transfer or connection to its multi handle: 0, or -1 with
 * r->fail set. */
static int hop_add(mw__http_req *r)
{
    CURLMcode mc = curl_multi_add_handle(r->d->multi, r->easy);
    if (mc == CURLM_OK) {
        r->in_multi = 1;
        return 0;
    }
    req_fail(r, mc == CURLM_OUT_OF_MEMORY ? MW_ENOMEM : MW_EIO, "starting transfer: %s",
             curl_multi_strerror(mc));
    return -1;
}

/* Starts the current hop of `r` once vetted: 0 (added, or its probe is),
 * or -1 with r->fail set. */
static int hop_start(mw__http_req *r)
{
    int v = vet(r);
    if (v == VET_OK)
        return hop_add(r);
    return v == VET_PROBING ? 0 : -1;
}

/* Moves `r`, out of its multi handle, on to the redirect it has just
 * read, and starts that hop: 0, or -1 with r->fail set. */
static int hop_next(mw__http_req *r)
{
    long status = 0;
    double left = r->timeout - (mw__mono() - r->t0);
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    url_info_free(&r->at);
    r->at = r->redir;
    memset(&r->redir, 0, sizeof r->redir);
    r->redirecting = 0;
    r->no_status = 1; /* until this hop has a response */
    mw__buf_reset(&r->hdrs);
    if (!r->over_unix) {
        char *target = mw__strdup(r->at.target);
        if (!target) {
            req_fail(r, MW_ENOMEM, "out of memory");
            return -1;
        }
        free(r->target);
        r->target = target;
    }
    if (r->timeout > 0 && left < 0.001) {
        req_fail(r, MW_ETIMEOUT, "timed out after %.1f s", r->timeout);
        return -1;
    }
    CURLcode cc = hop_setopts(r, status, left);
    if (cc != CURLE_OK) {
        req_fail(r, cc == CURLE_OUT_OF_MEMORY ? MW_ENOMEM : MW_EIO, "redirect to %.300s: %s",
                 r->at.url, curl_easy_strerror(cc));
        return -1;
    }
    return hop_start(r);
}

/* ------------------------------------------------------------- connections */

/* Takes the connected easy handle (still in its multi handle) and its
 * driver from `r`; NULL with `res` turned into the failure when that can
 * not be done. */
static mw__http_conn *conn_new(mw__http_req *r, mw__http_result *res)
{
    curl_socket_t fd = CURL_SOCKET_BAD;
    mw__http_conn *c = NULL;

    if (curl_easy_getinfo(r->easy, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK ||
        fd == CURL_SOCKET_BAD) {
        req_msg(r, "connect to %s: no socket after connecting", r->target);
        res->code = MW_EIO;
        res->error = req_error(r, res->code);
        return NULL;
    }
    if (!(c = calloc(1, sizeof *c))) {
        res->code = MW_ENOMEM;
        res->error = req_error(r, res->code);
        return NULL;
    }
    c->h = r->h;
    c->fd = fd;
    c->io.fd = -1;
    c->easy = r->easy;
    c->d = r->own;
    r->easy = NULL;
    r->own = NULL;
    r->in_multi = 0;
    /* libcurl 7.88 stops watching the socket (CURL_POLL_REMOVE) before it
     * reports the connect done. Should one keep a watcher, drop it, so that
     * the connection's wait can never collide with it (EEXIST). */
    for (hsock *s = c->d->socks, *next; s; s = next) {
        next = s->next;
        curl_multi_assign(c->d->multi, s->io.fd, NULL);
        sock_free(c->d, s);
    }
    /* Nothing of the request may be reached from curl any more. */
    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, NULL);
    curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(c->easy, CURLOPT_OPENSOCKETFUNCTION, NULL);
    curl_easy_setopt(c->easy, CURLOPT_OPENSOCKETDATA, NULL);
    MW_LIST_PUSH(r->h->conns, c);
    return c;
}

static void conn_io_cb(mw__io *io, uint32_t events)
{
    mw__http_conn *c = io->ud;
    MW_UNUSED(events);
    mw__io_stop(c->h->loop, &c->io); /* one-shot */
    c->ready(c->ready_ud);           /* may close `c`, or free the client */
}

/* A failed send/recv: curl's own words when it has them (the first error
 * it wrote stays in the buffer). */
static const char *conn_error(mw__http_conn *c, CURLcode cc)
{
    return c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc);
}

static long conn_io_result(mw__http_conn *c, CURLcode cc, size_t n, const char **err)
{
    if (cc == CURLE_OK)
        return n > (size_t)LONG_MAX ? LONG_MAX : (long)n;
    if (cc == CURLE_AGAIN)
        return MW_HTTP_AGAIN;
    if (err)
        *err = conn_error(c, cc);
    return MW_HTTP_FAIL;
}

/* ------------------------------------------------------------- API */

mw_code mw__http_new(mw__loop *loop, mw__http **out)
{
    mw__http *h = NULL;
    mw_code rc = MW_EIO;
    *out = NULL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        goto out;
    rc = MW_ENOMEM;
    if (!(h = calloc(1, sizeof *h)))
        goto out;
    h->loop = loop;
    mw__timer_init(&h->kick, kick_cb, h);
    h->main.shared = 1;
    if ((rc = drv_init(&h->main, h)) != MW_OK)
        goto out;
    *out = h;
    h = NULL;
out:
    if (h)
        destroy(h);
    return rc;
}

/* Frees everything; no callback of the caller runs. */
static void destroy(mw__http *h)
{
    h->dead = 1;
    while (h->head) {
        req_remove(h->head);
        req_free(h->head);
    }
    while (h->nidle)
        curl_easy_cleanup(h->idle[--h->nidle]);
    while (h->conns)
        mw__http_conn_close(h->conns);
    pool_free(&h->main);
    drv_cleanup(&h->main);
    pool_free(h->guarded);
    drv_free(h->guarded);
    mw__timer_stop(h->loop, &h->kick);
    curl_slist_free_all(h->resolve);
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

mw_code mw__http_resolve(mw__http *h, const char *entry)
{
    struct curl_slist *l = curl_slist_append(h->resolve, entry);
    if (!l)
        return MW_ENOMEM;
    h->resolve = l;
    return MW_OK;
}

/* The multi handle of transfers with deny_link_local; 0, or -1 on OOM. */
static int guarded(mw__http *h)
{
    if (h->guarded)
        return 0;
    drv *d = calloc(1, sizeof *d);
    if (!d)
        return -1;
    d->shared = 1;
    if (drv_init(d, h) != 0) {
        drv_free(d);
        return -1;
    }
    h->guarded = d;
    return 0;
}

/* Links a new request; NULL with `*err` on failure. */
static mw__http_req *req_new(mw__http *h, char **err)
{
    if (err)
        *err = NULL;
    if (h->dead) {
        set_err(err, "http client is being freed");
        return NULL;
    }
    mw__http_req *r = calloc(1, sizeof *r);
    if (!r) {
        set_err(err, "out of memory");
        return NULL;
    }
    r->h = h;
    r->state = ST_PENDING;
    h->pending++;
    MW_LIST_PUSH(h->head, r);
    return r;
}

/* Arms the kick that starts `r`; NULL with `*err` on failure. */
static mw__http_req *req_queue(mw__http *h, mw__http_req *r, char **err)
{
    if (!mw__timer_active(&h->kick) && mw__timer_start(h->loop, &h->kick, mw__mono_ns()) != 0) {
        req_free(r);
        set_err(err, "out of memory");
        return NULL;
    }
    h->active++;
    return r;
}

mw__http_req *mw__http_start(mw__http *h, const mw__http_opts *o, char **err)
{
    if (err)
        *err = NULL;
    if (check_opts(o, err) != MW_OK)
        return NULL;
    if (o->deny_link_local && !h->dead && guarded(h) != 0) {
        set_err(err, "out of memory");
        return NULL;
    }
    mw__http_req *r = req_new(h, err);
    if (!r)
        return NULL;
    if (req_init(r, o, err) != MW_OK) {
        req_free(r);
        return NULL;
    }
    return req_queue(h, r, err);
}

mw__http_req *mw__http_connect(mw__http *h, const mw__http_conn_opts *o, char **err)
{
    mw__http_req *r = req_new(h, err);
    if (!r)
        return NULL;
    if (conn_init(r, o, err) != MW_OK) {
        req_free(r);
        return NULL;
    }
    return req_queue(h, r, err);
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

void mw__http_header_each(mw__http_req *r, int (*fn)(void *ud, const char *name, const char *value),
                          void *ud)
{
    if (!r || !fn)
        return;
    const char *p = mw__buf_str(&r->hdrs), *end = p + r->hdrs.len;
    while (p < end) {
        const char *value = p + strlen(p) + 1;
        if (fn(ud, p, value) != 0)
            return;
        p = value + strlen(value) + 1;
    }
}

const char *mw__http_header_block(mw__http_req *r, size_t *len)
{
    *len = r ? r->hdrs.len : 0;
    return r ? mw__buf_str(&r->hdrs) : "";
}

char *mw__http_take_body(mw__http_req *r, size_t *len)
{
    size_t n = 0;
    char *p = NULL;

    if (len)
        *len = 0;
    if (!r || !r->result)
        return NULL;
    if (r->result->len == 0) {
        p = mw__strdup("");
    } else {
        p = mw__buf_take(&r->body, &n);
        /* give back what the doubling left over when that is a lot (not
         * for secrets: realloc would leave a copy behind) */
        char *shrunk = p && !r->wipe && n + 1 + 4096 < r->body.cap ? realloc(p, n + 1) : NULL;
        if (shrunk)
            p = shrunk;
    }
    if (!p)
        return NULL;
    r->result->body = "";
    r->result->len = 0;
    if (len)
        *len = n;
    return p;
}

long mw__http_conn_send(mw__http_conn *c, const void *p, size_t n, const char **err)
{
    size_t sent = 0;
    if (err)
        *err = c ? NULL : "not connected";
    if (!c)
        return MW_HTTP_FAIL;
    if (n == 0)
        return 0;
    if (n > (size_t)LONG_MAX)
        n = (size_t)LONG_MAX;
    CURLcode cc = curl_easy_send(c->easy, p, n, &sent);
    return conn_io_result(c, cc, sent, err);
}

long mw__http_conn_recv(mw__http_conn *c, void *p, size_t n, const char **err)
{
    size_t got = 0;
    if (err)
        *err = c ? NULL : "not connected";
    if (!c)
        return MW_HTTP_FAIL;
    if (n == 0)
        return 0;
    if (n > (size_t)LONG_MAX)
        n = (size_t)LONG_MAX;
    CURLcode cc = curl_easy_recv(c->easy, p, n, &got);
    return conn_io_result(c, cc, got, err);
}

mw_code mw__http_conn_wait(mw__http_conn *c, int want_write, void (*ready)(void *ud), void *ud)
{
    uint32_t ev = want_write ? EPOLLOUT : EPOLLIN;
    mw_code rc;
    if (!c || !ready)
        return MW_EINVAL;
    c->ready = ready;
    c->ready_ud = ud;
    if (c->io.fd >= 0) {
        if (c->io.events == ev || (rc = mw__io_modify(c->h->loop, &c->io, ev)) == MW_OK)
            return MW_OK;
        mw__io_stop(c->h->loop, &c->io);
        return rc;
    }
    if ((rc = mw__io_start(c->h->loop, &c->io, c->fd, ev, conn_io_cb, c)) != MW_OK)
        c->io.fd = -1; /* never stop (EPOLL_CTL_DEL) a registration not ours */
    return rc;
}

void mw__http_conn_wait_cancel(mw__http_conn *c)
{
    if (c)
        mw__io_stop(c->h->loop, &c->io);
}

void mw__http_conn_close(mw__http_conn *c)
{
    if (!c)
        return;
    mw__http_conn_wait_cancel(c); /* before curl closes the descriptor */
    MW_LIST_REMOVE(c->h->conns, c);
    curl_multi_remove_handle(c->d->multi, c->easy); /* closes the connection */
    curl_easy_cleanup(c->easy);
    drv_free(c->d);
    free(c);
}

size_t mw__http_multis(const mw__http *h)
{
    size_t n = 0;
    for (const drv *d = h ? &h->main : NULL; d; d = d->next)
        n++;
    for (const drv *d = h ? h->guarded : NULL; d; d = d->next)
        n++;
    return n;
}

size_t mw__http_active(const mw__http *h)
{
    return h ? h->active : 0;
}

char *mw__http_result_error(const char *what, const mw__http_result *r, size_t max_body)
{
    size_t n;

    if (r->code != MW_OK)
        return mw__sprintf("%s: %s", what, r->error ? r->error : mw_strerror(r->code));
    if (r->status == 200)
        return NULL;
    n = r->len < max_body ? r->len : max_body;
    for (size_t i = 0; i < n; i++)
        if (r->body[i] == '\n' || r->body[i] == '\r')
            n = i; /* the first line only */
    return mw__sprintf("%s: HTTP %ld%s%.*s", what, r->status, n ? ": " : "", (int)n, r->body);
}

/* ------------------------------------------------------------- one, blocking */

typedef struct fetch_state {
    mw__http_req *req;
    int done;
    mw__http_result r;
    char *body, *error;
    size_t len;
} fetch_state;

static void fetch_done(void *ud, const mw__http_result *r)
{
    fetch_state *f = ud;
    f->done = 1;
    f->r = *r;
    f->r.body = f->r.error = NULL; /* borrowed: only for the callback */
    if (r->code == MW_OK)
        f->body = mw__http_take_body(f->req, &f->len);
    else
        f->error = mw__strdup(r->error ? r->error : mw_strerror(r->code));
}

mw_code mw__http_fetch(const mw__http_opts *o, long *status, char **body, size_t *len, char **err)
{
    mw__loop *loop = NULL;
    mw__http *h = NULL;
    fetch_state f = {0};
    mw__http_opts mine = *o;
    *status = 0;
    *body = *err = NULL;
    *len = 0;
    mw_code rc = mw__loop_new(&loop);
    if (rc != MW_OK || (rc = mw__http_new(loop, &h)) != MW_OK) {
        *err = mw__sprintf("cannot make an HTTP client: %s", mw_strerror(rc));
        goto out;
    }
    mine.done = fetch_done;
    mine.ud = &f;
    if (!(f.req = mw__http_start(h, &mine, err))) {
        rc = MW_EINVAL;
        goto out;
    }
    double end = mw__mono() + (o->timeout > 0 ? o->timeout : 30) + 1.0;
    while (!f.done && mw__mono() < end)
        mw__loop_run_once(loop, 100);
    if (!f.done) {
        mw__http_cancel(f.req);
        rc = MW_ETIMEOUT;
        *err = mw__strdup("no answer");
    } else if ((rc = f.r.code) != MW_OK) {
        *err = f.error;
        f.error = NULL;
    } else if (!f.body) {
        rc = MW_ENOMEM;
    } else {
        *status = f.r.status;
        *body = f.body;
        *len = f.len;
        f.body = NULL;
    }
out:
    free(f.error);
    if (f.body && o->wipe)
        mw__wipe_free(f.body);
    else
        free(f.body);
    mw__http_free(h);
    mw__loop_free(loop);
    return rc;
}
