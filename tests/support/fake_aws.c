/*
 * fake_aws.c - the fake AWS server (fake_aws.h): its thread, which
 * accepts on 127.0.0.1 and answers one request per connection (read
 * with a 2 s limit, answered with "Connection: close"); the keys the ECS
 * API accepts; the container credentials endpoint and IMDSv2, which mint
 * temporary keys; the dispatch to the ECS API (fake_aws_ecs.c) after the
 * SigV4 check (fake_aws_sigv4.c).
 *
 * Ownership: the server owns its thread, sockets, keys and model; every
 * control call takes the lock.
 */
#include "tests/support/fake_aws_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQ    (1 << 20)
#define MAX_HDRS   64
#define ECS_PREFIX "AmazonEC2ContainerServiceV20141113."
#define IMDS_ROLE  "moonwatch-test-role"

typedef struct req {
    char *buf; /* the request as read; headers split in place */
    char *method, *path, *query;
    mw__faws_hdr hdrs[MAX_HDRS];
    size_t nhdrs;
    char *body;
    size_t body_len;
} req;

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *sdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void mw__faws_count_add(mw__faws *f, const char *name)
{
    for (size_t i = 0; i < FAWS_MAX_COUNT; i++) {
        if (!f->counts[i].name[0])
            snprintf(f->counts[i].name, sizeof f->counts[i].name, "%s", name);
        if (strcmp(f->counts[i].name, name) == 0) {
            f->counts[i].n++;
            return;
        }
    }
}

/* ------------------------------------------------------------- reading */

static const char *hdr(const req *r, const char *name)
{
    for (size_t i = 0; i < r->nhdrs; i++)
        if (strcasecmp(r->hdrs[i].name, name) == 0)
            return r->hdrs[i].value;
    return NULL;
}

/* Splits the head of the request in place; -1 when malformed. */
static int parse_head(req *r, char *end)
{
    *end = '\0';
    char *line = r->buf, *save = NULL;
    char *nl = strstr(line, "\r\n");
    if (!nl)
        return -1;
    *nl = '\0';
    r->method = strtok_r(line, " ", &save);
    r->path = strtok_r(NULL, " ", &save);
    if (!r->method || !r->path)
        return -1;
    char *q = strchr(r->path, '?');
    r->query = q ? (*q = '\0', q + 1) : "";
    for (char *h = nl + 2; *h && r->nhdrs < MAX_HDRS;) {
        char *e = strstr(h, "\r\n");
        if (e)
            *e = '\0';
        char *colon = strchr(h, ':');
        if (colon) {
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ')
                v++;
            r->hdrs[r->nhdrs++] = (mw__faws_hdr){h, v};
        }
        if (!e)
            break;
        h = e + 2;
    }
    return 0;
}

/* Reads one request from `fd`; -1 on a bad or cut one. */
static int read_req(int fd, req *r)
{
    size_t len = 0, cap = 65536;
    char *end = NULL;
    memset(r, 0, sizeof *r);
    if (!(r->buf = malloc(cap + 1)))
        return -1;
    while (!end) {
        ssize_t n = recv(fd, r->buf + len, cap - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        r->buf[len] = '\0';
        end = strstr(r->buf, "\r\n\r\n");
        if (!end && len == cap)
            return -1;
    }
    size_t head = (size_t)(end - r->buf) + 4;
    if (parse_head(r, end) != 0)
        return -1;
    const char *cl = hdr(r, "content-length");
    size_t want = cl ? strtoul(cl, NULL, 10) : 0;
    if (want > MAX_REQ)
        return -1;
    char *body = malloc(want + 1);
    if (!body)
        return -1;
    size_t have = len - head < want ? len - head : want;
    memcpy(body, r->buf + head, have);
    while (have < want) {
        ssize_t n = recv(fd, body + have, want - have, 0);
        if (n <= 0) {
            free(body);
            return -1;
        }
        have += (size_t)n;
    }
    body[want] = '\0';
    r->body = body;
    r->body_len = want;
    return 0;
}

static void req_free(req *r)
{
    free(r->buf);
    free(r->body);
}

static void answer(int fd, int status, const char *ctype, const char *body)
{
    char head[512];
    size_t n = body ? strlen(body) : 0;
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "x-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\n"
                      "Connection: close\r\n\r\n",
                      status, ctype, n);
    if (send(fd, head, (size_t)hn, MSG_NOSIGNAL) == hn && n)
        send(fd, body, n, MSG_NOSIGNAL);
}

/* An AWS JSON error body (caller frees). */
static char *aws_error(const char *type, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    char t[160];
    snprintf(t, sizeof t, "com.amazonaws.ecs#%s", type);
    cJSON_AddStringToObject(o, "__type", t);
    cJSON_AddStringToObject(o, "message", msg);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* ------------------------------------------------------------- keys */

static faws_key *find_key(mw__faws *f, const char *id)
{
    for (size_t i = 0; i < f->nkeys; i++)
        if (strcmp(f->keys[i].id, id) == 0)
            return &f->keys[i];
    return NULL;
}

static int key_lookup(void *ud, const char *id, const char **secret, const char **token,
                      double *expires)
{
    faws_key *k = find_key(ud, id);
    if (!k)
        return 0;
    *secret = k->secret;
    *token = k->token;
    *expires = k->expires;
    return 1;
}

static int add_key(mw__faws *f, const char *id, const char *secret, const char *token,
                   double expires)
{
    faws_key *k = find_key(f, id);
    if (!k) {
        if (f->nkeys == FAWS_MAX_KEYS) { /* forget the oldest minted */
            free(f->keys[0].id), free(f->keys[0].secret), free(f->keys[0].token);
            memmove(f->keys, f->keys + 1, (FAWS_MAX_KEYS - 1) * sizeof *f->keys);
            f->nkeys--;
        }
        k = &f->keys[f->nkeys++];
    } else {
        free(k->id), free(k->secret), free(k->token);
    }
    *k = (faws_key){sdup(id), sdup(secret), sdup(token), expires};
    return k->id && k->secret && (!token || k->token) ? 0 : -1;
}

int mw__faws_add_key(mw__faws *f, const char *key_id, const char *secret, const char *token,
                     double expires)
{
    pthread_mutex_lock(&f->mu);
    int rc = add_key(f, key_id, secret, token, expires);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* New temporary credentials as a credentials document (caller frees). */
static char *mint(mw__faws *f, int imds)
{
    char id[32], secret[64], token[160], exp[32];
    unsigned n = ++f->minted;
    double expires = wall() + f->lifetime;
    time_t t = (time_t)expires;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(id, sizeof id, "ASIAFAKE%012u", n);
    snprintf(secret, sizeof secret, "fAkE/sEcReT+%08u/wJalrXUtnFEMIK7MDENGbPxRfiCY", n);
    snprintf(token, sizeof token, "FQoGZXIvYXdzEFaKeSeSsIoNtOkEn%08u/IQoJb3JpZ2luX2VjEJr//wEaCXVz",
             n);
    if (add_key(f, id, secret, token, expires) != 0)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    if (imds) {
        cJSON_AddStringToObject(o, "Code", "Success");
        cJSON_AddStringToObject(o, "Type", "AWS-HMAC");
    } else {
        cJSON_AddStringToObject(o, "RoleArn", "arn:aws:iam::123456789012:role/" IMDS_ROLE);
    }
    cJSON_AddStringToObject(o, "AccessKeyId", id);
    cJSON_AddStringToObject(o, "SecretAccessKey", secret);
    cJSON_AddStringToObject(o, "Token", token);
    cJSON_AddStringToObject(o, "Expiration", exp);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

/* ------------------------------------------------------------- endpoints */

static void refuse(mw__faws *f, int fd, int status, const char *type, const char *msg)
{
    char *body = aws_error(type, msg);
    snprintf(f->last_refusal, sizeof f->last_refusal, "%s", body ? body : "");
    mw__faws_count_add(f, "rejected");
    answer(fd, status, "application/x-amz-json-1.1", body);
    free(body);
}

static void creds_endpoint(mw__faws *f, int fd, const req *r)
{
    const char *auth = hdr(r, "authorization");
    if (f->auth_token && (!auth || strcmp(auth, f->auth_token) != 0)) {
        answer(fd, 401, "application/json",
               "{\"code\":\"AccessDenied\",\"message\":\"Unable to authenticate the request\"}");
        mw__faws_count_add(f, "creds_refused");
        return;
    }
    char *doc = mint(f, 0);
    answer(fd, doc ? 200 : 500, "application/json", doc ? doc : "");
    mw__faws_count_add(f, "creds");
    free(doc);
}

static int imds_token_ok(mw__faws *f, const req *r)
{
    const char *t = hdr(r, "x-aws-ec2-metadata-token");
    for (unsigned i = 0; t && i < f->nimds && i < 8; i++)
        if (strcmp(f->imds_tokens[i], t) == 0)
            return 1;
    return 0;
}

static void imds(mw__faws *f, int fd, const req *r)
{
    if (f->imds_status) {
        mw__faws_count_add(f, "imds_failed");
        answer(fd, f->imds_status, "text/plain", "");
        return;
    }
    if (strcmp(r->method, "PUT") == 0 && strcmp(r->path, "/latest/api/token") == 0) {
        const char *ttl = hdr(r, "x-aws-ec2-metadata-token-ttl-seconds");
        long s = ttl ? strtol(ttl, NULL, 10) : 0;
        if (s < 1 || s > 21600) {
            answer(fd, 400, "text/plain", "");
            return;
        }
        char *t = f->imds_tokens[f->nimds++ % 8];
        snprintf(t, 64, "AQAEAFaKeImDsToKeN%06u==", f->nimds);
        mw__faws_count_add(f, "imds_token");
        answer(fd, 200, "text/plain", t);
        return;
    }
    if (!imds_token_ok(f, r)) {
        mw__faws_count_add(f, "imds_refused");
        answer(fd, 401, "text/plain", "");
        return;
    }
    const char *creds = "/latest/meta-data/iam/security-credentials/";
    if (strcmp(r->path, creds) == 0) {
        answer(fd, 200, "text/plain", IMDS_ROLE);
    } else if (strncmp(r->path, creds, strlen(creds)) == 0 &&
               strcmp(r->path + strlen(creds), IMDS_ROLE) == 0) {
        char *doc = mint(f, 1);
        mw__faws_count_add(f, "imds_creds");
        answer(fd, doc ? 200 : 500, "text/plain", doc ? doc : "");
        free(doc);
    } else if (strcmp(r->path, "/latest/meta-data/instance-id") == 0) {
        mw__faws_count_add(f, "imds_instance_id");
        answer(fd, 200, "text/plain", MW_FAWS_INSTANCE_ID);
    } else if (strcmp(r->path, "/latest/dynamic/instance-identity/document") == 0) {
        char doc[256];
        snprintf(doc, sizeof doc,
                 "{\"region\":\"%s\",\"instanceId\":\"" MW_FAWS_INSTANCE_ID "\","
                 "\"availabilityZone\":\"%sa\"}",
                 f->region, f->region);
        answer(fd, 200, "application/json", doc);
    } else {
        answer(fd, 404, "text/plain", "");
    }
}

/* An injected error for `action`, if one is due: 1 when answered. */
static int injected(mw__faws *f, int fd, const char *action)
{
    if (!f->fail_times || (f->fail_action[0] && strcmp(f->fail_action, action) != 0))
        return 0;
    f->fail_times--;
    char *body = aws_error(f->fail_type, f->fail_msg);
    mw__faws_count_add(f, "errors");
    answer(fd, f->fail_status, "application/x-amz-json-1.1", body);
    free(body);
    return 1;
}

static void keep_signature(mw__faws *f, const req *r)
{
    const char *a = hdr(r, "authorization"), *s = a ? strstr(a, "Signature=") : NULL;
    if (s)
        snprintf(f->last_sig, sizeof f->last_sig, "%.*s", (int)strcspn(s + 10, ", "), s + 10);
}

static void ecs_api(mw__faws *f, int fd, const req *r)
{
    char type[128], msg[8192];
    keep_signature(f, r);
    mw__faws_sig_req sr = {r->method, r->path, r->query, r->hdrs, r->nhdrs, r->body, r->body_len};
    int st = mw__faws_sigv4_verify(&sr, f->region, "ecs", wall(), key_lookup, f, type, sizeof type,
                                   msg, sizeof msg);
    if (st) {
        refuse(f, fd, st, type, msg);
        return;
    }
    const char *target = hdr(r, "x-amz-target"), *ct = hdr(r, "content-type");
    if (!target || strncmp(target, ECS_PREFIX, strlen(ECS_PREFIX)) != 0 || !ct ||
        strcmp(ct, "application/x-amz-json-1.1") != 0) {
        char *b = aws_error("UnknownOperationException", "");
        answer(fd, 400, "application/x-amz-json-1.1", b);
        free(b);
        return;
    }
    const char *action = target + strlen(ECS_PREFIX);
    if (injected(f, fd, action)) {
        mw__faws_count_add(f, action);
        return;
    }
    cJSON *in = cJSON_ParseWithLength(r->body, r->body_len);
    char *out = NULL;
    int status = in && cJSON_IsObject(in) ? mw__faws_ecs_call(f, action, in, &out) : 400;
    if (!out)
        out = aws_error("SerializationException", "the body is not a JSON object");
    mw__faws_count_add(f, action);
    answer(fd, status, "application/x-amz-json-1.1", out);
    cJSON_Delete(in);
    free(out);
}

static void task_metadata(mw__faws *f, int fd)
{
    char doc[256];
    snprintf(doc, sizeof doc, "{\"Cluster\":\"default\",\"AvailabilityZone\":\"%sb\"}", f->region);
    answer(fd, 200, "application/json", doc);
}

static void serve(mw__faws *f, int fd)
{
    req r;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int bad = read_req(fd, &r) != 0;
    pthread_mutex_lock(&f->mu);
    mw__faws_count_add(f, "requests");
    if (bad) {
        pthread_mutex_unlock(&f->mu);
        req_free(&r);
        return;
    }
    if (strcmp(r.method, "POST") == 0 && strcmp(r.path, "/") == 0)
        ecs_api(f, fd, &r);
    else if (strcmp(r.method, "GET") == 0 && strcmp(r.path, "/creds") == 0)
        creds_endpoint(f, fd, &r);
    else if (strncmp(r.path, "/latest/", 8) == 0)
        imds(f, fd, &r);
    else if (strcmp(r.path, "/meta/task") == 0)
        task_metadata(f, fd);
    else
        answer(fd, 404, "text/plain", "not found\n");
    pthread_mutex_unlock(&f->mu);
    req_free(&r);
}

static void *run(void *ud)
{
    mw__faws *f = ud;
    struct pollfd p[2] = {{f->lfd, POLLIN, 0}, {f->stop_fd[0], POLLIN, 0}};
    for (;;) {
        if (poll(p, 2, 1000) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        serve(f, fd);
        close(fd);
    }
    return NULL;
}

/* ------------------------------------------------------------- control */

static int listen_on(mw__faws *f, int port, char **err)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t len = sizeof sa;
    int one = 1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (f->lfd < 0 || setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(f->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(f->lfd, 128) != 0 ||
        getsockname(f->lfd, (struct sockaddr *)&sa, &len) != 0) {
        if (asprintf(err, "listen on 127.0.0.1:%d: %s", port, strerror(errno)) < 0)
            *err = NULL;
        return -1;
    }
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", ntohs(sa.sin_port));
    return 0;
}

mw__faws *mw__faws_new(const mw__faws_opts *o, char **err)
{
    mw__faws *f = calloc(1, sizeof *f);
    *err = NULL;
    if (!f)
        return NULL;
    f->lfd = f->stop_fd[0] = f->stop_fd[1] = -1;
    pthread_mutex_init(&f->mu, NULL);
    snprintf(f->region, sizeof f->region, "%s", o && o->region ? o->region : "us-east-1");
    snprintf(f->account, sizeof f->account, "%s", o && o->account ? o->account : "123456789012");
    f->lifetime = 3600;
    f->clusters = cJSON_CreateArray();
    if (!f->clusters || listen_on(f, o ? o->port : 0, err) != 0 || pipe(f->stop_fd) != 0 ||
        pthread_create(&f->thread, NULL, run, f) != 0) {
        if (!*err)
            *err = strdup("cannot start the fake AWS server");
        f->thread = 0;
        mw__faws_free(f);
        return NULL;
    }
    return f;
}

void mw__faws_free(mw__faws *f)
{
    if (!f)
        return;
    if (f->thread) {
        if (write(f->stop_fd[1], "x", 1) != 1)
            perror("fake_aws: stop");
        pthread_join(f->thread, NULL);
    }
    for (int i = 0; i < 2; i++)
        if (f->stop_fd[i] >= 0)
            close(f->stop_fd[i]);
    if (f->lfd >= 0)
        close(f->lfd);
    for (size_t i = 0; i < f->nkeys; i++)
        free(f->keys[i].id), free(f->keys[i].secret), free(f->keys[i].token);
    free(f->auth_token);
    cJSON_Delete(f->clusters);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

const char *mw__faws_url(const mw__faws *f)
{
    return f->url;
}

void mw__faws_set_lifetime(mw__faws *f, double seconds)
{
    pthread_mutex_lock(&f->mu);
    f->lifetime = seconds;
    pthread_mutex_unlock(&f->mu);
}

void mw__faws_set_imds_status(mw__faws *f, int status)
{
    pthread_mutex_lock(&f->mu);
    f->imds_status = status;
    pthread_mutex_unlock(&f->mu);
}

void mw__faws_set_auth_token(mw__faws *f, const char *token)
{
    pthread_mutex_lock(&f->mu);
    free(f->auth_token);
    f->auth_token = sdup(token);
    pthread_mutex_unlock(&f->mu);
}

/* The last minted key (the minted ones are the last added). */
static const faws_key *last_minted(mw__faws *f)
{
    return f->nkeys && f->minted ? &f->keys[f->nkeys - 1] : NULL;
}

const char *mw__faws_last_secret(mw__faws *f)
{
    pthread_mutex_lock(&f->mu);
    const faws_key *k = last_minted(f);
    pthread_mutex_unlock(&f->mu);
    return k ? k->secret : NULL;
}

const char *mw__faws_last_token(mw__faws *f)
{
    pthread_mutex_lock(&f->mu);
    const faws_key *k = last_minted(f);
    pthread_mutex_unlock(&f->mu);
    return k ? k->token : NULL;
}

void mw__faws_fail_next(mw__faws *f, const char *action, unsigned times, int status,
                        const char *type, const char *message)
{
    pthread_mutex_lock(&f->mu);
    snprintf(f->fail_action, sizeof f->fail_action, "%s", action ? action : "");
    snprintf(f->fail_type, sizeof f->fail_type, "%s", type ? type : "InternalFailure");
    snprintf(f->fail_msg, sizeof f->fail_msg, "%s", message ? message : "");
    f->fail_status = status;
    f->fail_times = times;
    pthread_mutex_unlock(&f->mu);
}

uint64_t mw__faws_count(mw__faws *f, const char *name)
{
    uint64_t n = 0;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < FAWS_MAX_COUNT && f->counts[i].name[0]; i++)
        if (strcmp(f->counts[i].name, name) == 0)
            n = f->counts[i].n;
    pthread_mutex_unlock(&f->mu);
    return n;
}

double mw__faws_cpu_seconds(mw__faws *f)
{
    clockid_t id;
    struct timespec ts;
    if (pthread_getcpuclockid(f->thread, &id) != 0 || clock_gettime(id, &ts) != 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void mw__faws_last_refusal(mw__faws *f, char *out, size_t n)
{
    pthread_mutex_lock(&f->mu);
    snprintf(out, n, "%s", f->last_refusal);
    pthread_mutex_unlock(&f->mu);
}

void mw__faws_last_signature(mw__faws *f, char *out, size_t n)
{
    pthread_mutex_lock(&f->mu);
    snprintf(out, n, "%s", f->last_sig);
    pthread_mutex_unlock(&f->mu);
}
