/*
 * aws.c - the AWS handle and its credentials cache: one set of
 * credentials (and one default region) for every worker, handed out as
 * copies under a mutex; one lookup at a time on the home loop
 * (aws_chain.c), which requests that find nothing usable wait for; the
 * refresh of temporary credentials before they expire.
 *
 * The handle owns the credentials and zeroes them when they are replaced
 * or freed. Requests own their copies (mw__aws_snap) and zero them too.
 */
#include "core/base/aws_int.h"

#include "core/base/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Long-lived credentials are refreshed this long before they expire and
 * not used in their last minute; short-lived ones at half their life and
 * not in their last quarter. */
#define REFRESH_BEFORE 300.0
#define USABLE_BEFORE  60.0
#define SHORT_LIFE     600.0
/* After a failed lookup, no new one before 1 s, doubling to 60 s. */
#define RETRY_MIN 1.0
#define RETRY_MAX 60.0

mw_code mw__aws_new(const mw__aws_opts *o, mw__aws **out)
{
    mw__aws *a = calloc(1, sizeof *a);
    *out = NULL;
    if (!a || !(a->sysfs = mw__strdup(o->sysfs ? o->sysfs : "/sys"))) {
        free(a);
        return MW_ENOMEM;
    }
    pthread_mutex_init(&a->mu, NULL);
    a->home = o->home;
    a->log = o->log;
    a->imds = o->imds;
    a->refresh_at = HUGE_VAL;
    mw__timer_init(&a->timer, NULL, a);
    mw__buf_init(&a->job.tried, 4096);
    mw__buf_init(&a->job.rtried, 4096);
    *out = a;
    return MW_OK;
}

void mw__aws_free(mw__aws *a)
{
    if (!a)
        return;
    mw__timer_stop(a->home, &a->timer);
    mw__aws_chain_clear(a);
    mw__buf_free(&a->job.tried);
    mw__buf_free(&a->job.rtried);
    mw__http_free(a->http);
    mw__aws_creds_clear(&a->creds);
    free(a->region);
    free(a->creds_fail);
    free(a->region_fail);
    /* waiters left belong to requests that were never cancelled: a bug of
     * the caller, but never freed memory to touch */
    while (a->wait) {
        mw__aws_waiter *w = a->wait;
        MW_LIST_REMOVE(a->wait, w);
        w->state = W_IDLE;
    }
    pthread_mutex_destroy(&a->mu);
    free(a->sysfs);
    free(a);
}

void mw__aws_snap_clear(mw__aws_snap *s)
{
    mw__aws_creds_clear(&s->creds);
    free(s->region);
    s->region = NULL;
    s->gen = 0;
}

static char *dup_or_null(const char *s, int *oom)
{
    char *d = s ? mw__strdup(s) : NULL;
    if (s && !d)
        *oom = 1;
    return d;
}

/* Copies what a request signs with (under mu). MW_OK or MW_ENOMEM. */
static mw_code snap_take(mw__aws *a, int need_region, mw__aws_snap *snap)
{
    int oom = 0;
    snap->creds.key_id = dup_or_null(a->creds.key_id, &oom);
    snap->creds.secret = dup_or_null(a->creds.secret, &oom);
    snap->creds.token = dup_or_null(a->creds.token, &oom);
    snap->creds.expires = a->creds.expires;
    snap->region = need_region ? dup_or_null(a->region, &oom) : NULL;
    snap->gen = a->gen;
    if (oom)
        mw__aws_snap_clear(snap);
    return oom ? MW_ENOMEM : MW_OK;
}

/* ------------------------------------------------------------- lookups */

static void job_run(void *ud)
{
    mw__aws *a = ud;
    pthread_mutex_lock(&a->mu);
    a->job.want_region = a->job_region;
    a->job.want_creds = a->job_creds;
    pthread_mutex_unlock(&a->mu);
    mw__aws_chain_start(a);
}

/* Posts a lookup of what is needed to the home loop (under mu). */
static int kick(mw__aws *a, int need_region, int need_creds)
{
    if (a->busy)
        return 0;
    a->busy = 1;
    a->job_region = need_region;
    a->job_creds = need_creds;
    if (mw__loop_post(a->home, job_run, a) != MW_OK) {
        a->busy = 0;
        return -1;
    }
    return 0;
}

static void refresh_cb(mw__timer *t)
{
    mw__aws *a = t->ud;
    pthread_mutex_lock(&a->mu);
    /* credentials nobody used since they were fetched are not fetched
     * again: the next request that needs them will */
    if (a->used)
        kick(a, 0, 1);
    pthread_mutex_unlock(&a->mu);
}

/* When credentials fetched now, expiring at `expires`, are refreshed and
 * until when they are used. */
static void plan_refresh(mw__aws *a, double now)
{
    double exp = a->creds.expires, life = exp - now;
    if (exp <= 0) {
        a->refresh_at = a->usable_until = HUGE_VAL;
    } else if (life > SHORT_LIFE) {
        a->refresh_at = exp - REFRESH_BEFORE;
        a->usable_until = exp - USABLE_BEFORE;
    } else {
        a->refresh_at = now + (life > 2 ? life / 2 : 1);
        a->usable_until = exp - (life > 0 ? life / 4 : 0);
    }
}

static void arm_refresh(mw__aws *a, double now)
{
    if (!isfinite(a->refresh_at)) {
        mw__timer_stop(a->home, &a->timer);
        return;
    }
    double in = a->refresh_at - now;
    if (in < 0.1)
        in = 0.1;
    a->timer.cb = refresh_cb;
    mw__timer_start(a->home, &a->timer, mw__loop_update_time(a->home) + (uint64_t)(in * 1e9));
}

/* "<what>: <tried>" without the trailing ", ". */
static char *reason(const char *what, const mw__buf *tried)
{
    size_t n = tried->len;
    while (n > 0 && (tried->p[n - 1] == ' ' || tried->p[n - 1] == ','))
        n--;
    return mw__sprintf("%s: %.*s", what, (int)n, mw__buf_str(tried));
}

static void fmt_time(double t, char *out, size_t n)
{
    time_t s = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&s, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, n, "?");
}

/* Takes the credentials the job found (under mu). */
static void take_creds(mw__aws *a, double now)
{
    mw__aws_job *j = &a->job;
    char when[32] = "never";
    mw__aws_creds_clear(&a->creds);
    a->creds = j->creds;
    memset(&j->creds, 0, sizeof j->creds);
    a->source = j->source;
    a->gen++;
    a->used = 0;
    free(a->creds_fail);
    a->creds_fail = NULL;
    plan_refresh(a, now);
    if (a->creds.expires > 0)
        fmt_time(a->creds.expires, when, sizeof when);
    mw__debug(a->log, "aws", "credentials from %s (%s, expire %s)", a->source,
              a->creds.token ? "temporary" : "long-term", when);
}

/* What the job tried for credentials and found nothing (under mu): the
 * ones held stay while they are usable. */
static void no_creds(mw__aws *a, double now)
{
    char *why = reason("no AWS credentials", &a->job.tried);
    if (a->creds.key_id && now < a->usable_until) {
        mw__warn(a->log, "aws", "credentials not refreshed (those held stay usable): %s",
                 why ? why : "out of memory");
        a->refresh_at = now + (a->usable_until - now) / 4;
    } else {
        mw__aws_creds_clear(&a->creds);
        a->refresh_at = HUGE_VAL;
        mw__info(a->log, "aws", "%s", why ? why : "no AWS credentials (out of memory)");
    }
    free(a->creds_fail);
    a->creds_fail = why;
}

static void take_region(mw__aws *a)
{
    mw__aws_job *j = &a->job;
    if (j->region) {
        free(a->region);
        a->region = j->region;
        j->region = NULL;
        free(a->region_fail);
        a->region_fail = NULL;
        mw__debug(a->log, "aws", "default region %s", a->region);
        return;
    }
    free(a->region_fail);
    a->region_fail = reason("no AWS region: the request names none", &j->rtried);
}

/* On the waiter's loop: its request asks again, unless it was cancelled
 * meanwhile (then the waiter is all that is left of it). */
static void waiter_msg(void *ud)
{
    mw__aws_waiter *w = ud;
    if (w->orphan) {
        free(w);
        return;
    }
    w->state = W_IDLE;
    w->fire(w->ud);
}

/* Wakes every waiter: each is posted to its own loop. */
static void wake_all(mw__aws *a)
{
    while (a->wait) {
        mw__aws_waiter *w = a->wait;
        MW_LIST_REMOVE(a->wait, w);
        w->state = W_POSTED;
        if (mw__loop_post(w->loop, waiter_msg, w) != MW_OK)
            w->state = W_IDLE; /* its request's deadline ends it */
    }
}

void mw__aws_job_done(mw__aws *a)
{
    mw__aws_job *j = &a->job;
    double now = mw__wall();
    pthread_mutex_lock(&a->mu);
    int failed = 0;
    if (j->creds.key_id)
        take_creds(a, now);
    else if (j->want_creds)
        no_creds(a, now), failed = 1;
    if (j->want_region) {
        take_region(a);
        failed |= a->region == NULL;
    }
    if (failed) {
        double wait = RETRY_MIN * (double)(1u << (a->fails < 6 ? a->fails : 6));
        a->retry_at = mw__mono() + (wait < RETRY_MAX ? wait : RETRY_MAX);
        a->fails++;
    } else {
        a->fails = 0;
        a->retry_at = 0;
    }
    a->busy = 0;
    wake_all(a);
    arm_refresh(a, now);
    pthread_mutex_unlock(&a->mu);
    mw__aws_chain_clear(a);
}

/* ------------------------------------------------------------- requests */

/* Whether a lookup should run for what is missing (under mu). */
static int lookup_due(mw__aws *a, int have_creds, int need_region)
{
    int retry = mw__mono() >= a->retry_at;
    return (!have_creds && (retry || !a->creds_fail)) ||
           (need_region && !a->region && (retry || !a->region_fail));
}

int mw__aws_acquire(mw__aws *a, int need_region, mw__aws_snap *snap, mw__aws_waiter *w, char **err)
{
    int rc = MW_AWS_FAIL;
    double now = mw__wall();
    *err = NULL;
    pthread_mutex_lock(&a->mu);
    int have = a->creds.key_id && now < a->usable_until;
    if (have && (!need_region || a->region)) {
        if (snap_take(a, need_region, snap) == MW_OK) {
            rc = MW_AWS_READY;
            a->used = 1;
            if (now >= a->refresh_at)
                kick(a, 0, 1); /* in the background: these are still good */
        }
        goto out;
    }
    if (a->busy || lookup_due(a, have, need_region)) {
        if ((a->busy || kick(a, need_region && !a->region, !have) == 0) && w->state == W_IDLE) {
            w->state = W_QUEUED;
            MW_LIST_PUSH(a->wait, w);
            rc = MW_AWS_WAIT;
        }
        goto out;
    }
    *err = mw__strdup(!have ? a->creds_fail : a->region_fail);
out:
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int mw__aws_waiter_drop(mw__aws *a, mw__aws_waiter *w)
{
    int free_now = 1;
    pthread_mutex_lock(&a->mu);
    if (w->state == W_QUEUED) {
        MW_LIST_REMOVE(a->wait, w);
        w->state = W_IDLE;
    } else if (w->state == W_POSTED) {
        w->orphan = 1;
        free_now = 0;
    }
    pthread_mutex_unlock(&a->mu);
    return free_now;
}

void mw__aws_invalidate(mw__aws *a, unsigned gen)
{
    pthread_mutex_lock(&a->mu);
    if (gen == a->gen && a->creds.key_id) {
        mw__debug(a->log, "aws", "credentials from %s refused as expired: looking again",
                  a->source);
        mw__aws_creds_clear(&a->creds);
        a->retry_at = 0;
        free(a->creds_fail);
        a->creds_fail = NULL;
    }
    pthread_mutex_unlock(&a->mu);
}
