/*
 * forwarder.c - the Datadog payload queue and its delivery (see
 * forwarder.h).
 *
 * Threads: any thread pushes (under `lock`); the forwarder's own thread
 * runs its loop, which holds the HTTP client, the retry timer and the
 * one request in flight. The head of the queue is the payload in flight
 * or the next to send; pushes only ever drop payloads not in flight, so
 * the loop thread's head stays valid while its request runs.
 */
#include "core/sinks/forwarder.h"

#include "core/base/http.h"
#include "core/base/loop.h"
#include "core/base/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_DEFAULT   ((size_t)32 << 20)
#define TIMEOUT_DEFAULT 20.0
#define BACKOFF_BASE    1.0
#define BACKOFF_MAX     64.0
#define DRAIN_BACKOFF   1.0   /* cap on a retry's delay while draining */
#define RETRY_AFTER_MAX 600.0 /* longest Retry-After honoured, seconds */
#define MSG_MAX         200   /* bytes of the intake's message logged */

struct mw__fwd {
    mw__fwd_opts o;
    char *url, *key_header, *key;
    mw__loop *loop;
    mw__http *http;
    mw__timer retry;
    pthread_t thread;
    int thread_started;
    mw__http_req *req;    /* loop thread: the request in flight */
    mw__dd_payload *sent; /* loop thread: its payload */
    uint64_t rng;         /* loop thread: jitter */
    unsigned failures;    /* loop thread: failed attempts in this outage */
    int told_to_wait;     /* loop thread: the retry waits for a Retry-After */
    pthread_mutex_t lock; /* the rest */
    pthread_cond_t empty;
    mw__dd_payload *head, *tail;
    mw__fwd_stats stats;
    int draining, drop_logged, stopping; /* in an outage: stats.failing_since */
};

static const char *const reason_names[] = {"queue_full", "rejected", "shutdown", "too_large"};

const char *mw__fwd_reason_name(mw__fwd_reason why)
{
    return why < MW_FWD_NREASONS ? reason_names[why] : "unknown";
}

/* ------------------------------------------------------------- queue (locked) */

static void unlink_payload(mw__fwd *f, mw__dd_payload *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        f->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        f->tail = p->prev;
    p->prev = p->next = NULL;
    f->stats.queued_payloads--;
    f->stats.queued_bytes -= p->len;
    if (!f->head)
        pthread_cond_broadcast(&f->empty);
}

static void count_drop(mw__fwd *f, mw__fwd_reason why, size_t payloads, size_t items)
{
    f->stats.dropped_payloads[why] += payloads;
    f->stats.dropped_items[why] += items;
}

/* Drops the oldest payloads not in flight until the queue fits its cap;
 * the items dropped. */
static size_t make_room(mw__fwd *f)
{
    size_t items = 0;
    mw__dd_payload *p = f->head;
    while (p && f->stats.queued_bytes > f->o.queue_max) {
        mw__dd_payload *next = p->next;
        if (!p->in_flight) {
            items += p->items;
            count_drop(f, MW_FWD_QUEUE_FULL, 1, p->items);
            unlink_payload(f, p);
            mw__dd_payload_free(p);
        }
        p = next;
    }
    return items;
}

/* ------------------------------------------------------------- delivery (loop thread) */

static void send_head(mw__fwd *f);

static double jitter(mw__fwd *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    return (double)(f->rng >> 11) / (double)(1ull << 53);
}

/* Capped exponential backoff with jitter: a delay in [d/2, d]. */
static double backoff(mw__fwd *f, unsigned attempts, int draining)
{
    double d = f->o.backoff_base;
    for (unsigned i = 1; i < attempts && d < f->o.backoff_max; i++)
        d *= 2;
    double cap = draining && f->o.backoff_max > DRAIN_BACKOFF ? DRAIN_BACKOFF : f->o.backoff_max;
    if (d > cap)
        d = cap;
    return d / 2 + jitter(f) * d / 2;
}

/* The seconds of a Retry-After header, or -1 (absent, a date, too long). */
static double retry_after(mw__http_req *r)
{
    const char *v = mw__http_header(r, "Retry-After");
    char *end;
    if (!v)
        return -1;
    errno = 0;
    double s = strtod(v, &end);
    if (end == v || *end || errno || s < 0 || s > RETRY_AFTER_MAX)
        return -1;
    return s;
}

/* The intake's message, at most MSG_MAX bytes on one line, with the API
 * key blanked out should the intake echo it. Caller frees. */
static char *intake_message(const mw__fwd *f, const char *body)
{
    char *m = mw__strdup(body ? body : "");
    size_t klen = strlen(f->key);
    if (!m)
        return NULL;
    /* blanked before the cut, which could otherwise leave a part of it */
    for (char *k = klen ? strstr(m, f->key) : NULL; k; k = strstr(k + klen, f->key))
        memset(k, '*', klen);
    if (strlen(m) > MSG_MAX)
        m[MSG_MAX] = '\0';
    for (char *c = m; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    return m;
}

static void delivered(mw__fwd *f, mw__dd_payload *p)
{
    pthread_mutex_lock(&f->lock);
    f->stats.sent_payloads++;
    f->stats.sent_items += p->items;
    unlink_payload(f, p);
    int was_out = f->stats.failing_since != 0;
    f->drop_logged = 0;
    f->stats.failing_since = 0;
    f->stats.last_error[0] = '\0';
    pthread_mutex_unlock(&f->lock);
    if (was_out)
        mw__info(f->o.log, "datadog", "the intake takes payloads again after %u failed attempts",
                 f->failures);
    f->failures = 0;
    mw__dd_payload_free(p);
}

static void rejected(mw__fwd *f, mw__dd_payload *p, long status, const char *body)
{
    char *msg = intake_message(f, body);
    /* said before the queue may empty: a drain that returns finds it logged */
    mw__warn(f->o.log, "datadog", "POST %s: HTTP %ld, payload of %zu items dropped: %s",
             mw__dd_path(p->kind), status, p->items, msg ? msg : "");
    free(msg);
    pthread_mutex_lock(&f->lock);
    count_drop(f, MW_FWD_REJECTED, 1, p->items);
    unlink_payload(f, p);
    pthread_mutex_unlock(&f->lock);
    mw__dd_payload_free(p);
}

/* Once `p` is no longer in flight a push may drop it: what is needed of
 * it is read before. */
static void failed(mw__fwd *f, mw__dd_payload *p, const char *why, double after)
{
    pthread_mutex_lock(&f->lock);
    p->in_flight = 0;
    unsigned attempts = ++p->attempts;
    const char *path = mw__dd_path(p->kind);
    f->stats.retries++;
    int first = !f->stats.failing_since, draining = f->draining;
    if (first)
        f->stats.failing_since = mw__mono_ns();
    snprintf(f->stats.last_error, sizeof f->stats.last_error, "POST %s: %s", path, why);
    uint64_t queued = f->stats.queued_payloads;
    pthread_mutex_unlock(&f->lock);
    f->failures++;
    f->told_to_wait = after >= 0;
    double delay = after >= 0 ? after : backoff(f, attempts, draining);
    if (first)
        mw__warn(f->o.log, "datadog",
                 "POST %s: %s; retrying with backoff, %llu payloads queued (logged once until "
                 "the intake answers again)",
                 path, why, (unsigned long long)queued);
    mw__debug(f->o.log, "datadog", "POST %s: %s; retry in %.3f s", path, why, delay);
    mw__timer_start(f->loop, &f->retry, mw__loop_now(f->loop) + (uint64_t)(delay * 1e9));
}

static int retryable(long status)
{
    return status == 0 || status == 408 || status == 429 || status >= 500;
}

static void done(void *ud, const mw__http_result *r)
{
    mw__fwd *f = ud;
    mw__dd_payload *p = f->sent;
    mw__http_req *req = f->req;
    f->sent = NULL;
    f->req = NULL;
    long status = r->status;
    if (status >= 200 && status < 300) {
        delivered(f, p);
    } else if (!retryable(status)) {
        rejected(f, p, status, r->body);
    } else {
        char why[160];
        double after = status == 429 || status == 503 ? retry_after(req) : -1;
        if (status)
            snprintf(why, sizeof why, "HTTP %ld", status);
        else
            snprintf(why, sizeof why, "%s", r->error ? r->error : mw_strerror(r->code));
        failed(f, p, why, after);
        return;
    }
    send_head(f);
}

static mw__http_req *start_request(mw__fwd *f, mw__dd_payload *p, char **err)
{
    const char *headers[] = {
        "Content-Type: application/json",
        "Content-Encoding: deflate",
        "User-Agent: moonwatch/" MW_VERSION,
        f->key_header,
    };
    char *url = mw__sprintf("%s%s", f->url, mw__dd_path(p->kind));
    mw__http_opts o = {
        .url = url,
        .method = "POST",
        .body = p->body,
        .body_len = p->len,
        .headers = headers,
        .nheaders = MW_ARRAY_LEN(headers),
        .timeout = f->o.timeout,
        .max_body = 64 << 10,
        .wipe = 1,
        .done = done,
        .ud = f,
    };
    mw__http_req *r = url ? mw__http_start(f->http, &o, err) : NULL;
    free(url);
    return r;
}

/* Sends the head of the queue unless a request is in flight or a retry
 * is waiting. */
static void send_head(mw__fwd *f)
{
    if (f->req || mw__timer_active(&f->retry))
        return;
    pthread_mutex_lock(&f->lock);
    mw__dd_payload *p = f->stopping ? NULL : f->head;
    if (p)
        p->in_flight = 1;
    pthread_mutex_unlock(&f->lock);
    if (!p)
        return;
    char *err = NULL;
    f->sent = p;
    if (!(f->req = start_request(f, p, &err))) {
        f->sent = NULL;
        failed(f, p, err ? err : "cannot start the request", -1);
    }
    free(err);
}

static void retry_cb(mw__timer *t)
{
    send_head(t->ud);
}

/* Posted by push and drain. While draining, a retry waiting longer than
 * DRAIN_BACKOFF is brought forward, unless the intake asked for the wait. */
static void kick(void *ud)
{
    mw__fwd *f = ud;
    pthread_mutex_lock(&f->lock);
    int draining = f->draining;
    pthread_mutex_unlock(&f->lock);
    uint64_t soon = mw__loop_now(f->loop) + (uint64_t)(DRAIN_BACKOFF * 1e9);
    if (draining && !f->told_to_wait && mw__timer_active(&f->retry) && f->retry.due > soon)
        mw__timer_start(f->loop, &f->retry, soon);
    send_head(f);
}

static void *thread_main(void *ud)
{
    mw__fwd *f = ud;
    mw__loop_run(f->loop);
    return NULL;
}

/* ------------------------------------------------------------- API */

void mw__fwd_push(mw__fwd *f, mw__dd_payload *p)
{
    p->prev = p->next = NULL;
    p->in_flight = 0;
    pthread_mutex_lock(&f->lock);
    p->prev = f->tail;
    if (f->tail)
        f->tail->next = p;
    else
        f->head = p;
    f->tail = p;
    f->stats.queued_payloads++;
    f->stats.queued_bytes += p->len;
    size_t lost = make_room(f);
    int say = lost && !f->drop_logged;
    if (say)
        f->drop_logged = 1;
    pthread_mutex_unlock(&f->lock);
    if (say)
        mw__warn(f->o.log, "datadog",
                 "the retry queue is full (%zu bytes): the oldest payloads are dropped and "
                 "counted in moonwatch.forwarder.dropped (logged once per outage)",
                 f->o.queue_max);
    mw__loop_post(f->loop, kick, f);
}

void mw__fwd_count_drop(mw__fwd *f, mw__fwd_reason why, size_t items)
{
    pthread_mutex_lock(&f->lock);
    count_drop(f, why, 0, items);
    pthread_mutex_unlock(&f->lock);
}

void mw__fwd_stats_get(mw__fwd *f, mw__fwd_stats *out)
{
    pthread_mutex_lock(&f->lock);
    *out = f->stats;
    pthread_mutex_unlock(&f->lock);
}

static struct timespec deadline_in(double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double whole = (double)(long)seconds;
    ts.tv_sec += (time_t)whole;
    ts.tv_nsec += (long)((seconds - whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

mw_code mw__fwd_drain(mw__fwd *f, double timeout)
{
    struct timespec end = deadline_in(timeout > 0 ? timeout : 0);
    pthread_mutex_lock(&f->lock);
    f->draining++;
    pthread_mutex_unlock(&f->lock);
    mw__loop_post(f->loop, kick, f);
    pthread_mutex_lock(&f->lock);
    int rc = 0;
    while (f->head && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&f->empty, &f->lock, &end);
    mw_code out = f->head ? MW_ETIMEOUT : MW_OK;
    f->draining--;
    pthread_mutex_unlock(&f->lock);
    return out;
}

/* After the thread stopped: whatever is left is dropped. */
static void drop_rest(mw__fwd *f)
{
    size_t payloads = 0, items = 0;
    while (f->head) {
        mw__dd_payload *p = f->head;
        payloads++;
        items += p->items;
        count_drop(f, MW_FWD_SHUTDOWN, 1, p->items);
        unlink_payload(f, p);
        mw__dd_payload_free(p);
    }
    if (payloads)
        mw__warn(f->o.log, "datadog",
                 "shutdown: %zu payloads (%zu items) not delivered within the shutdown timeout "
                 "are dropped",
                 payloads, items);
}

void mw__fwd_free(mw__fwd *f, double timeout)
{
    if (!f)
        return;
    if (f->thread_started) {
        mw__fwd_drain(f, timeout);
        pthread_mutex_lock(&f->lock);
        f->stopping = 1;
        pthread_mutex_unlock(&f->lock);
        mw__loop_stop(f->loop);
        pthread_join(f->thread, NULL);
    }
    mw__http_free(f->http); /* the request in flight too, without its done */
    if (f->loop)
        mw__timer_stop(f->loop, &f->retry);
    drop_rest(f);
    mw__loop_free(f->loop);
    pthread_cond_destroy(&f->empty);
    pthread_mutex_destroy(&f->lock);
    mw__wipe_free(f->key_header);
    mw__wipe_free(f->key);
    free(f->url);
    free(f);
}

static mw_code init_sync(mw__fwd *f)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->empty, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&f->lock, NULL);
    return MW_OK;
}

static void set_defaults(mw__fwd_opts *o)
{
    if (!o->queue_max)
        o->queue_max = QUEUE_DEFAULT;
    if (o->timeout <= 0)
        o->timeout = TIMEOUT_DEFAULT;
    if (o->backoff_max <= 0)
        o->backoff_max = BACKOFF_MAX;
    if (o->backoff_base <= 0)
        o->backoff_base = BACKOFF_BASE;
    if (o->backoff_base > o->backoff_max)
        o->backoff_base = o->backoff_max;
}

mw_code mw__fwd_new(const mw__fwd_opts *o, mw__fwd **out)
{
    mw_code rc = MW_EINVAL;
    mw__fwd *f = NULL;
    *out = NULL;
    if (!o->url || !o->api_key || !o->api_key[0])
        goto out;
    rc = MW_ENOMEM;
    if (!(f = calloc(1, sizeof *f)))
        goto out;
    init_sync(f);
    f->o = *o;
    set_defaults(&f->o);
    f->stats.queue_max = f->o.queue_max;
    f->rng = mw__mono_ns() | 1;
    mw__timer_init(&f->retry, retry_cb, f);
    if (!(f->url = mw__strdup(o->url)) || !(f->key = mw__strdup(o->api_key)) ||
        !(f->key_header = mw__sprintf("DD-API-KEY: %s", o->api_key)))
        goto out;
    f->o.url = f->o.api_key = NULL; /* only the copies above are kept */
    size_t n = strlen(f->url);
    while (n > 0 && f->url[n - 1] == '/')
        f->url[--n] = '\0';
    if ((rc = mw__loop_new(&f->loop)) != MW_OK || (rc = mw__http_new(f->loop, &f->http)) != MW_OK)
        goto out;
    rc = MW_ESYS;
    if (pthread_create(&f->thread, NULL, thread_main, f) != 0)
        goto out;
    f->thread_started = 1;
    *out = f;
    f = NULL;
    rc = MW_OK;
out:
    mw__fwd_free(f, 0);
    return rc;
}
