/*
 * aws_req.c - one AWS API request for a check, on the check's worker
 * loop: the allowed services, the endpoint, the credentials (waiting for
 * a lookup when none are usable), a POST in AWS JSON 1.1 signed with
 * SigV4 by libcurl, and what to do with the answer: an expired token
 * fetches credentials again and retries once; throttling and 5xx answers
 * are retried after a capped, jittered backoff while the run's deadline
 * allows; other AWS errors become "Type: message".
 *
 * Ownership: the request owns its copies of the call and of the
 * credentials (zeroed when freed) and its waiter (left to the loop
 * message when one is on its way: see aws_int.h). Everything handed to
 * `done` is scrubbed of the credentials' strings.
 */
#include "core/base/aws_int.h"

#include "core/base/util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ATTEMPTS  5
#define BACKOFF_BASE  0.1 /* seconds, doubling per retry */
#define BACKOFF_CAP   2.0
#define MAX_CALL_BODY ((size_t)64 << 10)
#define MAX_TARGET    128

/* The services a check may ask, and how each is addressed. */
typedef struct svc {
    const char *name;            /* as mw.aws.request's `service`, and SigV4's */
    const char *target_prefix;   /* X-Amz-Target before the '.' */
    const char *endpoint_prefix; /* https://<prefix>.<region>.amazonaws.com */
    const char *env;             /* AWS_ENDPOINT_URL_<env> */
} svc;

static const svc services[] = {
    {"ecs", "AmazonEC2ContainerServiceV20141113", "ecs", "ECS"},
};

const char *const mw__aws_services[] = {"ecs", NULL};

/* Actions a check may call: reading only. */
static const char *const read_prefixes[] = {"List", "Describe", "Get"};

struct mw__aws_req {
    mw__aws *a;
    const svc *svc;
    char *region; /* the call's; NULL: the default */
    char *target;
    char *body;
    size_t body_len;
    double deadline;
    size_t max_body;
    int deny_link_local;
    mw__http *http;
    mw__loop *loop;
    void (*done)(void *ud, const mw__aws_result *r);
    void *ud;
    mw__aws_waiter *w;
    mw__aws_snap snap;
    mw__http_req *hreq;
    mw__timer timer; /* the first step, a backoff, or the deadline of a wait */
    int attempts;
    int refreshed; /* credentials looked up again after ExpiredToken */
    uint64_t seed;
    char *url;
};

/* ------------------------------------------------------------- checks */

static const svc *find_svc(const char *name)
{
    for (size_t i = 0; name && i < MW_ARRAY_LEN(services); i++)
        if (strcmp(services[i].name, name) == 0)
            return &services[i];
    return NULL;
}

static int action_ok(const char *action)
{
    size_t n = strlen(action);
    if (n == 0 || n > MAX_TARGET)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)action[i]))
            return 0;
    for (size_t i = 0; i < MW_ARRAY_LEN(read_prefixes); i++) {
        size_t k = strlen(read_prefixes[i]);
        if (n > k && strncmp(action, read_prefixes[i], k) == 0 && isupper((unsigned char)action[k]))
            return 1;
    }
    return 0;
}

/* NULL when the call may go; else why not (caller frees). */
static char *refuse(const mw__aws_call *c, const svc **out)
{
    const svc *s = find_svc(c->service);
    if (!s)
        return mw__sprintf("service \"%.40s\" is not allowed (allowed: ecs)",
                           c->service ? c->service : "");
    size_t k = strlen(s->target_prefix);
    const char *t = c->target ? c->target : "";
    if (strncmp(t, s->target_prefix, k) != 0 || t[k] != '.')
        return mw__sprintf("target \"%.80s\" is not of service %s (%s.<Action>)", t, s->name,
                           s->target_prefix);
    if (!action_ok(t + k + 1))
        return mw__sprintf("action \"%.80s\" is not allowed: only List*, Describe* and Get*",
                           t + k + 1);
    if (c->region && !mw__aws_region_ok(c->region))
        return mw__sprintf("region \"%.40s\" is not a region name", c->region);
    if (c->body_len > MAX_CALL_BODY)
        return mw__sprintf("body over %zu bytes", MAX_CALL_BODY);
    *out = s;
    return NULL;
}

/* ------------------------------------------------------------- endpoint */

static int http_url(const char *u)
{
    return (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0) &&
           !strpbrk(u, " \t\r\n");
}

/* The URL requests of `s` in `region` go to, or NULL with `*why`. */
static char *endpoint(const svc *s, const char *region, char **why)
{
    char var[64];
    const char *ignore = mw__aws_env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    const char *v = NULL, *name = var;
    snprintf(var, sizeof var, "AWS_ENDPOINT_URL_%s", s->env);
    if (!ignore || strcasecmp(ignore, "true") != 0) {
        if (!(v = mw__aws_env(var)))
            v = mw__aws_env(name = "AWS_ENDPOINT_URL");
    }
    *why = NULL;
    if (!v) {
        int cn = strncmp(region, "cn-", 3) == 0;
        return mw__sprintf("https://%s.%s.amazonaws.com%s/", s->endpoint_prefix, region,
                           cn ? ".cn" : "");
    }
    if (!http_url(v)) {
        *why = mw__sprintf("%s is not an http:// or https:// URL", name);
        return NULL;
    }
    size_t n = strlen(v);
    return mw__sprintf("%s%s", v, n && v[n - 1] == '/' ? "" : "/");
}

/* ------------------------------------------------------------- ending */

static void req_free(mw__aws_req *r)
{
    if (r->hreq)
        mw__http_cancel(r->hreq);
    mw__timer_stop(r->loop, &r->timer);
    if (r->w && mw__aws_waiter_drop(r->a, r->w))
        free(r->w);
    mw__aws_snap_clear(&r->snap);
    free(r->region);
    free(r->target);
    free(r->body);
    free(r->url);
    free(r);
}

/* Hands the outcome to `done` (scrubbed) and frees the request. */
static void finish(mw__aws_req *r, mw_code code, long status, const char *body, size_t len,
                   const char *error)
{
    const char *secrets[] = {r->snap.creds.key_id, r->snap.creds.secret, r->snap.creds.token};
    size_t blen = 0;
    char *b = mw__aws_scrub(body ? body : "", body ? len : 0, secrets, 3, &blen);
    char *e = error ? mw__aws_scrub(error, strlen(error), secrets, 3, NULL) : NULL;
    mw__aws_result res = {
        .code = b && (e || !error) ? code : MW_ENOMEM,
        .status = status,
        .body = b ? b : "",
        .len = b ? blen : 0,
        .error = e       ? e
                 : error ? "out of memory"
                         : NULL,
    };
    r->hreq = NULL;
    r->done(r->ud, &res);
    free(b);
    free(e);
    req_free(r);
}

static void fail(mw__aws_req *r, mw_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(mw__aws_req *r, mw_code code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    finish(r, code, 0, NULL, 0, msg);
}

/* ------------------------------------------------------------- sending */

static void answered(void *ud, const mw__http_result *res);

static double left(const mw__aws_req *r)
{
    double s = r->deadline - mw__mono();
    return s > 0.001 ? s : 0.001;
}

/* The request's headers into `h` (the token line is a secret: the
 * caller wipes `tok`). */
static size_t headers(const mw__aws_req *r, const char **h, char *tgt, size_t tn, char **tok)
{
    size_t n = 0;
    snprintf(tgt, tn, "X-Amz-Target: %s", r->target);
    h[n++] = "Content-Type: application/x-amz-json-1.1";
    h[n++] = tgt;
    *tok =
        r->snap.creds.token ? mw__sprintf("X-Amz-Security-Token: %s", r->snap.creds.token) : NULL;
    if (*tok)
        h[n++] = *tok;
    return n;
}

static void send_req(mw__aws_req *r)
{
    const char *region = r->region ? r->region : r->snap.region;
    char sigv4[128], tgt[MAX_TARGET + 64], *why = NULL, *tok = NULL, *err = NULL;
    const char *h[3];
    if (!r->url && !(r->url = endpoint(r->svc, region, &why))) {
        fail(r, why ? MW_EINVAL : MW_ENOMEM, "%s", why ? why : "out of memory");
        free(why);
        return;
    }
    snprintf(sigv4, sizeof sigv4, "aws:amz:%s:%s", region, r->svc->name);
    size_t nh = headers(r, h, tgt, sizeof tgt, &tok);
    mw__http_opts o = {
        .url = r->url,
        .method = "POST",
        .body = r->body,
        .body_len = r->body_len,
        .headers = h,
        .nheaders = nh,
        .timeout = left(r),
        .connect_timeout = left(r),
        .max_body = r->max_body,
        .deny_link_local = r->deny_link_local,
        .aws_sigv4 = sigv4,
        .aws_key_id = r->snap.creds.key_id,
        .aws_secret = r->snap.creds.secret,
        .wipe = 1,
        .done = answered,
        .ud = r,
    };
    if (r->snap.creds.token && !tok) {
        fail(r, MW_ENOMEM, "out of memory");
        return;
    }
    r->attempts++;
    r->hreq = mw__http_start(r->http, &o, &err);
    mw__wipe_free(tok);
    if (!r->hreq) {
        fail(r, MW_EIO, "POST %s: %s", r->url, err ? err : "out of memory");
        free(err);
    }
}

static void go(mw__aws_req *r);

static void waited(void *ud)
{
    mw__aws_req *r = ud;
    mw__timer_stop(r->loop, &r->timer);
    go(r);
}

static void wait_expired(mw__timer *t)
{
    mw__aws_req *r = t->ud;
    fail(r, MW_ETIMEOUT, "timed out waiting for AWS credentials");
}

/* Gets credentials (or waits for them), then sends. */
static void go(mw__aws_req *r)
{
    char *err = NULL;
    mw__aws_snap_clear(&r->snap);
    switch (mw__aws_acquire(r->a, r->region == NULL, &r->snap, r->w, &err)) {
    case MW_AWS_READY:
        send_req(r);
        return;
    case MW_AWS_WAIT:
        r->timer.cb = wait_expired;
        mw__timer_start(r->loop, &r->timer,
                        mw__loop_update_time(r->loop) + (uint64_t)(left(r) * 1e9));
        return;
    default:
        fail(r, MW_EIO, "%s", err ? err : "out of memory");
        free(err);
    }
}

static void first_step(mw__timer *t)
{
    go(t->ud);
}

/* ------------------------------------------------------------- answers */

static int is_throttle(const char *type, long status)
{
    static const char *const types[] = {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "RequestThrottled",
    };
    for (size_t i = 0; type && i < MW_ARRAY_LEN(types); i++)
        if (strcmp(type, types[i]) == 0)
            return 1;
    return status == 429 || status >= 500;
}

static int is_expired(const char *type)
{
    return type &&
           (strcmp(type, "ExpiredTokenException") == 0 || strcmp(type, "ExpiredToken") == 0);
}

static double jitter(mw__aws_req *r)
{
    r->seed ^= r->seed << 13;
    r->seed ^= r->seed >> 7;
    r->seed ^= r->seed << 17;
    return (double)(r->seed >> 11) / 9007199254740992.0;
}

static void backoff_done(mw__timer *t)
{
    send_req(t->ud);
}

/* Schedules another attempt; 0 when there is time for it. */
static int retry_later(mw__aws_req *r)
{
    double d = BACKOFF_BASE * (double)(1u << (r->attempts - 1));
    d = (d < BACKOFF_CAP ? d : BACKOFF_CAP) * (0.5 + jitter(r) / 2);
    if (r->attempts >= MAX_ATTEMPTS || mw__mono() + d + 0.05 >= r->deadline)
        return -1;
    r->timer.cb = backoff_done;
    return mw__timer_start(r->loop, &r->timer,
                           mw__loop_update_time(r->loop) + (uint64_t)(d * 1e9)) == MW_OK
               ? 0
               : -1;
}

/* The error text of an answer that is not a success. */
static char *error_text(const char *type, const char *msg, long status, const char *body,
                        size_t len)
{
    if (type && msg)
        return mw__sprintf("%s: %s", type, msg);
    if (type)
        return mw__sprintf("%s (HTTP %ld)", type, status);
    if (msg)
        return mw__sprintf("HTTP %ld: %s", status, msg);
    size_t n = len < 200 ? len : 200;
    return mw__sprintf("HTTP %ld%s%.*s", status, n ? ": " : "", (int)n, body);
}

static void failed_answer(mw__aws_req *r, long status, const char *body, size_t len)
{
    char *type = NULL, *msg = NULL;
    const char *htype = mw__http_header(r->hreq, "x-amzn-ErrorType");
    mw__aws_parse_error(body, len, htype, &type, &msg);
    r->hreq = NULL;
    if (is_expired(type) && !r->refreshed) {
        r->refreshed = 1;
        mw__aws_invalidate(r->a, r->snap.gen);
        go(r);
    } else if (is_throttle(type, status) && retry_later(r) == 0) {
        /* the timer sends it again */
    } else {
        char *e = error_text(type, msg, status, body, len);
        finish(r, MW_EIO, status, body, len, e ? e : "out of memory");
        free(e);
    }
    free(type);
    free(msg);
}

static void answered(void *ud, const mw__http_result *res)
{
    mw__aws_req *r = ud;
    if (res->code != MW_OK) {
        r->hreq = NULL;
        fail(r, res->code, "POST %s: %s", r->url, res->error ? res->error : "failed");
        return;
    }
    if (res->status >= 200 && res->status < 300) {
        finish(r, MW_OK, res->status, res->body, res->len, NULL);
        return;
    }
    failed_answer(r, res->status, res->body, res->len);
}

/* ------------------------------------------------------------- public */

static mw__aws_req *req_new(mw__aws *a, const mw__aws_call *c, const svc *s)
{
    mw__aws_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->a = a;
    r->svc = s;
    r->deadline = c->deadline;
    r->max_body = c->max_body;
    r->deny_link_local = c->deny_link_local;
    r->http = c->http;
    r->loop = c->loop;
    r->done = c->done;
    r->ud = c->ud;
    r->seed = mw__mono_ns() ^ (uint64_t)(uintptr_t)r ^ 0x9e3779b97f4a7c15ULL;
    mw__timer_init(&r->timer, first_step, r);
    r->body_len = c->body ? c->body_len : 2;
    r->w = calloc(1, sizeof *r->w);
    if (!r->w || !(r->target = mw__strdup(c->target)) ||
        (c->region && !(r->region = mw__strdup(c->region))) ||
        !(r->body = c->body ? mw__strndup(c->body, c->body_len) : mw__strdup("{}"))) {
        req_free(r);
        return NULL;
    }
    r->w->loop = c->loop;
    r->w->fire = waited;
    r->w->ud = r;
    return r;
}

mw__aws_req *mw__aws_start(mw__aws *a, const mw__aws_call *c, char **err)
{
    const svc *s = NULL;
    *err = refuse(c, &s);
    if (*err)
        return NULL;
    mw__aws_req *r = req_new(a, c, s);
    if (!r || mw__timer_start(c->loop, &r->timer, mw__loop_update_time(c->loop)) != MW_OK) {
        if (r)
            req_free(r);
        *err = mw__strdup("out of memory");
        return NULL;
    }
    return r;
}

void mw__aws_cancel(mw__aws_req *r)
{
    if (r)
        req_free(r);
}
