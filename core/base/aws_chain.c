/*
 * aws_chain.c - one lookup of the default region and of credentials, on
 * the home loop, as a chain of stages (aws.h lists the sources and their
 * order). A stage either decides at once (an environment variable) or
 * starts one HTTP request and goes on from its answer. What each source
 * said is kept, without what it found, for the error of a lookup that
 * found nothing: "environment (AWS_ACCESS_KEY_ID not set), ECS task role
 * (...), EC2 instance metadata (...)".
 *
 * These are the engine's own requests: the check's link-local refusal
 * does not apply (169.254.170.2 and 169.254.169.254 are where the
 * answers are), and they go only where the environment or the machine
 * says to, never to a guessed address. Answers hold secrets: their
 * buffers are zeroed (mw__http_opts.wipe) and so is every copy here.
 */
#include "core/base/aws_int.h"

#include "core/base/util.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONTAINER_HOST "http://169.254.170.2"
#define IMDS_TOKEN_TTL "21600"
#define LOOKUP_TIMEOUT 5.0
#define IMDS_TIMEOUT   2.0
#define MAX_ANSWER     ((size_t)64 << 10)
#define MAX_TOKEN_FILE ((size_t)16 << 10)
#define HOST_MAX       256

enum stage {
    ST_REGION = 0,  /* AWS_REGION, AWS_DEFAULT_REGION */
    ST_REGION_TASK, /* task metadata /task */
    ST_REGION_IID,  /* IMDS instance identity document */
    ST_CREDS,       /* the environment */
    ST_CONTAINER,   /* the container credentials endpoint */
    ST_IMDS_ROLE,   /* IMDS: the instance's role */
    ST_IMDS_CREDS,  /* IMDS: its credentials */
    ST_IMDS_TOKEN,  /* IMDSv2 session token, then `after` */
    ST_DONE,
};

const char *mw__aws_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static void tried(mw__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tried(mw__buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    mw__buf_adds(b, line);
    mw__buf_adds(b, ", ");
}

static void answer_clear(mw__aws_job *j)
{
    if (j->body)
        mw__wipe(j->body, j->len);
    free(j->body);
    free(j->error);
    j->body = j->error = NULL;
    j->len = 0;
    j->status = 0;
}

void mw__aws_chain_clear(mw__aws *a)
{
    mw__aws_job *j = &a->job;
    if (j->req)
        mw__http_cancel(j->req);
    j->req = NULL;
    answer_clear(j);
    mw__aws_creds_clear(&j->creds);
    mw__wipe_free(j->imds_token);
    free(j->imds_base);
    free(j->region);
    free(j->role);
    j->imds_token = j->imds_base = j->region = j->role = NULL;
    j->imds_checked = 0;
    j->source = NULL;
    mw__buf_reset(&j->tried);
    mw__buf_reset(&j->rtried);
}

static void step(mw__aws *a);

static void answered(void *ud, const mw__http_result *r)
{
    mw__aws *a = ud;
    mw__aws_job *j = &a->job;
    answer_clear(j);
    j->status = r->status;
    if (r->code == MW_OK)
        j->body = mw__http_take_body(j->req, &j->len);
    else
        j->error = mw__strdup(r->error ? r->error : mw_strerror(r->code));
    j->req = NULL;
    step(a);
}

/* Starts one request of the lookup; on a refusal the stage's answer is
 * that error. 0 started, -1 not (j->error set). */
static int fetch(mw__aws *a, const char *method, const char *url, const char *const *headers,
                 size_t nheaders, double timeout)
{
    mw__aws_job *j = &a->job;
    answer_clear(j);
    if (!a->http && mw__http_new(a->home, &a->http) != MW_OK) {
        j->error = mw__strdup("cannot make an HTTP client");
        return -1;
    }
    mw__http_opts o = {
        .url = url,
        .method = method,
        .headers = headers,
        .nheaders = nheaders,
        .timeout = timeout,
        .connect_timeout = timeout,
        .max_body = MAX_ANSWER,
        .wipe = 1,
        .direct = 1, /* the host's credentials endpoints: never through a proxy */
        .done = answered,
        .ud = a,
    };
    char *err = NULL;
    if (strcmp(method, "PUT") == 0) {
        o.body = "";
        o.body_len = 0;
    }
    j->req = mw__http_start(a->http, &o, &err);
    if (!j->req) {
        j->error = err ? err : mw__strdup("out of memory");
        return -1;
    }
    return 0;
}

/* Why the last answer is not one: "HTTP 404", or the transport error. */
static const char *answer_problem(const mw__aws_job *j, char *buf, size_t n)
{
    if (j->error)
        return j->error;
    snprintf(buf, n, "HTTP %ld", j->status);
    return buf;
}

static int answer_ok(const mw__aws_job *j)
{
    return !j->error && j->status == 200 && j->body;
}

/* ------------------------------------------------------------- IMDS */

static int http_url(const char *u)
{
    return u && (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0) &&
           !strpbrk(u, " \t\r\n");
}

/* Decides once per lookup whether IMDS is asked, and where. */
static void imds_check(mw__aws *a)
{
    mw__aws_job *j = &a->job;
    if (j->imds_checked)
        return;
    j->imds_checked = 1;
    j->imds_base = mw__aws_imds_where(a->imds, a->sysfs, j->imds_why, sizeof j->imds_why);
}

/* Moves to `next` once an IMDSv2 token is held (fetching one first). */
static void imds_then(mw__aws *a, int next)
{
    mw__aws_job *j = &a->job;
    j->stage = next;
    if (j->imds_token)
        return;
    j->after = next;
    j->stage = ST_IMDS_TOKEN;
}

/* "X-aws-ec2-metadata-token: ..." into `line` (a secret). */
static void imds_header(const mw__aws_job *j, char *line, size_t n)
{
    snprintf(line, n, "X-aws-ec2-metadata-token: %s", j->imds_token);
}

static int imds_get(mw__aws *a, const char *path)
{
    mw__aws_job *j = &a->job;
    char line[1024], url[1024];
    imds_header(j, line, sizeof line);
    snprintf(url, sizeof url, "%s%s", j->imds_base, path);
    const char *h[] = {line};
    int rc = fetch(a, "GET", url, h, 1, IMDS_TIMEOUT);
    mw__wipe(line, sizeof line);
    return rc;
}

/* ------------------------------------------------------------- region */

/* The region is found, or every source was asked: credentials next, if
 * they are looked for. */
static void region_done(mw__aws_job *j)
{
    j->stage = j->want_creds ? ST_CREDS : ST_DONE;
}

static void region_env(mw__aws *a)
{
    mw__aws_job *j = &a->job;
    static const char *const vars[] = {"AWS_REGION", "AWS_DEFAULT_REGION"};
    for (size_t i = 0; i < MW_ARRAY_LEN(vars); i++) {
        const char *v = mw__aws_env(vars[i]);
        if (v && mw__aws_region_ok(v)) {
            j->region = mw__strdup(v);
            region_done(j);
            return;
        }
        if (v)
            tried(&j->rtried, "%s is not a region name", vars[i]);
    }
    if (!j->rtried.len)
        tried(&j->rtried, "AWS_REGION and AWS_DEFAULT_REGION not set");
    j->stage = ST_REGION_TASK;
}

/* 1 when a request was started. */
static int region_task(mw__aws *a)
{
    mw__aws_job *j = &a->job;
    char prob[32];
    if (j->status || j->error) { /* answered */
        if (answer_ok(j) && (j->region = mw__aws_parse_region(j->body, j->len))) {
            region_done(j);
            return 0;
        }
        tried(&j->rtried, "ECS task metadata (%s)",
              answer_ok(j) ? "no region in /task" : answer_problem(j, prob, sizeof prob));
        answer_clear(j);
        j->stage = ST_REGION_IID;
        return 0;
    }
    const char *uri = mw__aws_env("ECS_CONTAINER_METADATA_URI_V4");
    if (!uri)
        uri = mw__aws_env("ECS_CONTAINER_METADATA_URI");
    if (!uri || !http_url(uri)) {
        tried(&j->rtried, "ECS task metadata (ECS_CONTAINER_METADATA_URI_V4 %s)",
              uri ? "is not an http URL" : "not set");
        j->stage = ST_REGION_IID;
        return 0;
    }
    char url[1024];
    snprintf(url, sizeof url, "%s/task", uri);
    if (fetch(a, "GET", url, NULL, 0, LOOKUP_TIMEOUT) == 0)
        return 1;
    return 0; /* the error is the answer: next call reports it */
}

static int region_iid(mw__aws *a)
{
    mw__aws_job *j = &a->job;
    char prob[32];
    if (j->status || j->error) {
        if (answer_ok(j) && (j->region = mw__aws_parse_region(j->body, j->len))) {
            region_done(j);
            return 0;
        }
        tried(&j->rtried, "EC2 instance identity document (%s)",
              answer_ok(j) ? "no region" : answer_problem(j, prob, sizeof prob));
        answer_clear(j);
        region_done(j);
        return 0;
    }
    imds_check(a);
    if (!j->imds_base) {
        tried(&j->rtried, "EC2 instance metadata (%s)", j->imds_why);
        region_done(j);
        return 0;
    }
    if (!j->imds_token) {
        imds_then(a, ST_REGION_IID);
        return 0;
    }
    return imds_get(a, "/latest/dynamic/instance-identity/document") == 0;
}

/* ------------------------------------------------------------- creds */

static void creds_env(mw__aws *a)
{
    mw__aws_job *j = &a->job;
    const char *key = mw__aws_env("AWS_ACCESS_KEY_ID");
    const char *secret = mw__aws_env("AWS_SECRET_ACCESS_KEY");
    const char *token = mw__aws_env("AWS_SESSION_TOKEN");
    j->stage = ST_CONTAINER;
    if (!key || !secret) {
        tried(&j->tried, "environment (%s not set)",
              !key ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY");
        return;
    }
    j->creds.key_id = mw__strdup(key);
    j->creds.secret = mw__strdup(secret);
    j->creds.token = token ? mw__strdup(token) : NULL;
    if (!j->creds.key_id || !j->creds.secret || (token && !j->creds.token)) {
        mw__aws_creds_clear(&j->creds);
        tried(&j->tried, "environment (out of memory)");
        return;
    }
    j->source = "the environment";
    j->stage = ST_DONE;
}

/* Whether the host of a FULL_URI over http may be asked: a loopback
 * address, the ECS or EKS container host (as the SDKs allow). */
static int full_uri_host_ok(const char *url)
{
    const char *rest = url + 7, *end;
    char host[HOST_MAX];
    unsigned char addr[16];
    if (*rest == '[') {
        rest++;
        end = strchr(rest, ']');
    } else {
        end = rest + strcspn(rest, ":/?#");
    }
    if (!end || end == rest || (size_t)(end - rest) >= sizeof host)
        return 0;
    memcpy(host, rest, (size_t)(end - rest));
    host[end - rest] = '\0';
    if (strcmp(host, "localhost") == 0 || strcmp(host, "169.254.170.2") == 0 ||
        strcmp(host, "169.254.170.23") == 0)
        return 1;
    if (inet_pton(AF_INET, host, addr) == 1)
        return addr[0] == 127;
    if (inet_pton(AF_INET6, host, addr) == 1) {
        static const unsigned char lo[16] = {[15] = 1};
        static const unsigned char eks[16] = {0xfd, 0x00, 0x0e, 0xc2, [15] = 0x23};
        return memcmp(addr, lo, 16) == 0 || memcmp(addr, eks, 16) == 0;
    }
    return 0;
}

/* The container endpoint's URL, or NULL with `why`. */
static char *container_url(char *why, size_t n)
{
    const char *rel = mw__aws_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = mw__aws_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (rel) {
        if (rel[0] != '/' || strpbrk(rel, " \t\r\n")) {
            snprintf(why, n, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is not a path");
            return NULL;
        }
        return mw__sprintf("%s%s", CONTAINER_HOST, rel);
    }
    if (!full) {
        snprintf(why, n,
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and "
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI not set");
        return NULL;
    }
    if (!http_url(full)) {
        snprintf(why, n, "AWS_CONTAINER_CREDENTIALS_FULL_URI is not an http(s) URL");
        return NULL;
    }
    if (strncmp(full, "http://", 7) == 0 && !full_uri_host_ok(full)) {
        snprintf(why, n,
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI over http must name a loopback "
                 "address, 169.254.170.2, 169.254.170.23 or fd00:ec2::23");
        return NULL;
    }
    return mw__strdup(full);
}

/* The Authorization header's token (a secret, caller wipes), NULL when
 * none; -1 in `*bad` with `why` when it cannot be had. */
static char *container_token(int *bad, char *why, size_t n)
{
    const char *file = mw__aws_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *tok = mw__aws_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    char *t = NULL;
    size_t len = 0;
    *bad = 0;
    if (file) {
        if (mw__read_file(file, MAX_TOKEN_FILE, &t, &len) != MW_OK) {
            snprintf(why, n, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE cannot be read");
            *bad = 1;
            return NULL;
        }
        while (len > 0 && (t[len - 1] == '\n' || t[len - 1] == '\r'))
            t[--len] = '\0';
    } else if (tok) {
        t = mw__strdup(tok);
    }
    if (t && (strpbrk(t, "\r\n") || strlen(t) != (file ? len : strlen(t)))) {
        snprintf(why, n, "the authorization token holds a line break or a NUL");
        mw__wipe_free(t);
        *bad = 1;
        return NULL;
    }
    return t;
}

static int container_start(mw__aws *a)
{
    mw__aws_job *j = &a->job;
    char why[200];
    int bad = 0;
    char *url = container_url(why, sizeof why);
    char *tok = url ? container_token(&bad, why, sizeof why) : NULL;
    if (!url || bad) {
        tried(&j->tried, "ECS task role (%s)", why);
        free(url);
        j->stage = ST_IMDS_ROLE;
        return 0;
    }
    char *line = tok ? mw__sprintf("Authorization: %s", tok) : NULL;
    const char *h[] = {line};
    int rc = fetch(a, "GET", url, h, line ? 1 : 0, LOOKUP_TIMEOUT);
    mw__wipe_free(line);
    mw__wipe_free(tok);
    free(url);
    return rc == 0;
}

/* Takes credentials out of the last answer; 0 when it held some. */
static int creds_from_answer(mw__aws *a, const char *source, const char *what)
{
    mw__aws_job *j = &a->job;
    char why[128], prob[32];
    if (answer_ok(j) && mw__aws_parse_creds(j->body, j->len, &j->creds, why, sizeof why) == MW_OK) {
        j->source = source;
        j->stage = ST_DONE;
        return 0;
    }
    tried(&j->tried, "%s (%s)", what, answer_ok(j) ? why : answer_problem(j, prob, sizeof prob));
    return -1;
}

static int container(mw__aws *a)
{
    mw__aws_job *j = &a->job;
    if (!j->status && !j->error)
        return container_start(a);
    if (creds_from_answer(a, "the ECS task role", "ECS task role") != 0)
        j->stage = ST_IMDS_ROLE;
    answer_clear(j);
    return 0;
}

static int imds_role(mw__aws *a)
{
    mw__aws_job *j = &a->job;
    char prob[32];
    if (j->status || j->error) {
        size_t n = answer_ok(j) ? strcspn(j->body, "\r\n") : 0;
        if (n && !(j->role = mw__strndup(j->body, n)))
            tried(&j->tried, "EC2 instance metadata (out of memory)");
        else if (!n)
            tried(&j->tried, "EC2 instance metadata (no IAM role: %s)",
                  answer_ok(j) ? "empty list" : answer_problem(j, prob, sizeof prob));
        j->stage = j->role ? ST_IMDS_CREDS : ST_DONE;
        answer_clear(j);
        return 0;
    }
    imds_check(a);
    if (!j->imds_base) {
        tried(&j->tried, "EC2 instance metadata (%s)", j->imds_why);
        j->stage = ST_DONE;
        return 0;
    }
    if (!j->imds_token) {
        imds_then(a, ST_IMDS_ROLE);
        return 0;
    }
    return imds_get(a, "/latest/meta-data/iam/security-credentials/") == 0;
}

static int imds_creds(mw__aws *a)
{
    mw__aws_job *j = &a->job;
    if (j->status || j->error) {
        creds_from_answer(a, "EC2 instance metadata", "EC2 instance metadata");
        j->stage = ST_DONE;
        answer_clear(j);
        return 0;
    }
    char path[512];
    if (strpbrk(j->role, "/?#% ") || strlen(j->role) > 128) {
        tried(&j->tried, "EC2 instance metadata (the role name is not one)");
        j->stage = ST_DONE;
        return 0;
    }
    snprintf(path, sizeof path, "/latest/meta-data/iam/security-credentials/%s", j->role);
    return imds_get(a, path) == 0;
}

static int imds_token(mw__aws *a)
{
    mw__aws_job *j = &a->job;
    char prob[32];
    if (j->status || j->error) {
        size_t n = answer_ok(j) ? strcspn(j->body, "\r\n") : 0;
        if (n && n < 512 && (j->imds_token = mw__strndup(j->body, n))) {
            j->stage = j->after;
        } else {
            /* no token, no IMDS: IMDSv1 is never used */
            snprintf(j->imds_why, sizeof j->imds_why, "no IMDSv2 token: %s",
                     answer_ok(j) ? "empty answer" : answer_problem(j, prob, sizeof prob));
            free(j->imds_base);
            j->imds_base = NULL;
            j->stage = j->after;
        }
        answer_clear(j);
        return 0;
    }
    char url[1024];
    snprintf(url, sizeof url, "%s/latest/api/token", j->imds_base);
    const char *h[] = {"X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL};
    return fetch(a, "PUT", url, h, 1, IMDS_TIMEOUT) == 0;
}

/* ------------------------------------------------------------- driver */

/* Runs stages until one waits on an answer or the lookup is done. */
static void step(mw__aws *a)
{
    mw__aws_job *j = &a->job;
    for (int waiting = 0; !waiting;) {
        switch (j->stage) {
        case ST_REGION:
            region_env(a);
            break;
        case ST_REGION_TASK:
            waiting = region_task(a);
            break;
        case ST_REGION_IID:
            waiting = region_iid(a);
            break;
        case ST_CREDS:
            creds_env(a);
            break;
        case ST_CONTAINER:
            waiting = container(a);
            break;
        case ST_IMDS_ROLE:
            waiting = imds_role(a);
            break;
        case ST_IMDS_CREDS:
            waiting = imds_creds(a);
            break;
        case ST_IMDS_TOKEN:
            waiting = imds_token(a);
            break;
        default:
            mw__aws_job_done(a);
            return;
        }
    }
}

void mw__aws_chain_start(mw__aws *a)
{
    mw__aws_job *j = &a->job;
    mw__aws_chain_clear(a);
    j->stage = j->want_region ? ST_REGION : j->want_creds ? ST_CREDS : ST_DONE;
    step(a);
}
