/*
 * test_fake_dockerd.c - the fake Docker engine (tests/support/) seen from a
 * plain libcurl client over its unix socket: each endpoint's shape, 404s,
 * the version prefix (too new, too old, recorded per request), keep-alive,
 * the /events stream (live events, filters, the inclusive `since` replay,
 * raw and broken data, disconnects, engine restarts), the injected
 * failures and latency, and 10,000 generated containers listed and 2,000
 * of them inspected (the time is printed, not asserted).
 *
 * Every wait is bounded: curl transfers have timeouts, waits on the server
 * take a deadline.
 */
#include "tests/support/fake_dockerd.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define T0 1795631294000000000LL /* the manual clock's start */

static char dir[64], sock[128];

typedef struct resp {
    CURLcode rc;
    long status, connects;
    char *body, *head;
    size_t len, hlen;
    double secs;
    int lines, want_lines; /* streams: stop after want_lines '\n' */
} resp;

static void resp_free(resp *r)
{
    free(r->body);
    free(r->head);
    memset(r, 0, sizeof(*r));
}

static void append(char **p, size_t *len, const char *src, size_t n)
{
    char *q = realloc(*p, *len + n + 1);
    if (!q)
        return;
    memcpy(q + *len, src, n);
    *len += n;
    q[*len] = '\0';
    *p = q;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    append(&r->body, &r->len, p, sz * n);
    for (size_t i = 0; i < sz * n; i++)
        r->lines += p[i] == '\n';
    if (r->want_lines && r->lines >= r->want_lines)
        return 0; /* enough: abort the stream */
    return sz * n;
}

static size_t on_head(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    append(&r->head, &r->hlen, p, sz * n);
    return sz * n;
}

static CURL *handle(void)
{
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    return h;
}

/* One request on `h` (keep-alive across calls); `accept` may be NULL. */
static void req(CURL *h, const char *method, const char *path, const char *accept, resp *r)
{
    char url[1024];
    struct curl_slist *hd = NULL;
    char acc[128];
    snprintf(url, sizeof url, "http://localhost%s", path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (accept) {
        snprintf(acc, sizeof acc, "Accept: %s", accept);
        hd = curl_slist_append(hd, acc);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_head);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    r->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->connects);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &r->secs);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hd);
    if (!r->body)
        append(&r->body, &r->len, "", 0);
}

/* GET on a fresh connection. */
static void get(const char *path, resp *r)
{
    CURL *h = handle();
    req(h, "GET", path, NULL, r);
    curl_easy_cleanup(h);
}

/* A response header's value (copied into `out`), or NULL. */
static const char *header(const resp *r, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = r->head; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            break;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)(eol - v), v);
            return out;
        }
        p = eol + 2;
    }
    return NULL;
}

static const char *jstr(const cJSON *o, const char *path)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", path);
    for (char *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save))
        o = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_GetStringValue(o);
}

static const cJSON *jget(const cJSON *o, const char *path)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", path);
    for (char *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save))
        o = cJSON_GetObjectItemCaseSensitive(o, k);
    return o;
}

/* A key with dots in it, one level down. */
static const char *label(const cJSON *o, const char *obj, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(jget(o, obj), key));
}

static int wait_streams_zero(mw__fdd *d)
{
    for (int i = 0; i < 2000 && mw__fdd_streams(d) > 0; i++)
        usleep(1000);
    return mw__fdd_streams(d);
}

/* ---- an /events reader on its own thread ---- */

typedef struct stream {
    char path[1024];
    const char *accept;
    resp r;
    pthread_t t;
} stream;

static void *stream_main(void *arg)
{
    stream *s = arg;
    CURL *h = handle();
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    req(h, "GET", s->path, s->accept, &s->r);
    curl_easy_cleanup(h);
    return NULL;
}

/* Opens the stream and waits until the server counts `nstreams`. */
static int stream_open(mw__fdd *d, stream *s, const char *path, const char *accept, int want_lines,
                       int nstreams)
{
    memset(&s->r, 0, sizeof s->r);
    snprintf(s->path, sizeof s->path, "%s", path);
    s->accept = accept;
    s->r.want_lines = want_lines;
    if (pthread_create(&s->t, NULL, stream_main, s) != 0)
        return -1;
    return mw__fdd_wait_streams(d, nstreams, 5000);
}

static void stream_join(stream *s)
{
    pthread_join(s->t, NULL);
}

/* The parsed lines of a stream body (json-seq separators skipped). */
static int parse_lines(const char *body, cJSON **out, int max)
{
    int n = 0;
    for (const char *p = body; *p && n < max;) {
        const char *eol = strchr(p, '\n');
        if (!eol)
            break;
        if (*p == 0x1e)
            p++;
        out[n++] = cJSON_ParseWithLength(p, (size_t)(eol - p));
        p = eol + 1;
    }
    return n;
}

/* The exact timeNano of the i-th line (a double cannot hold it). */
static long long nanos_of_line(const char *body, int i)
{
    for (; body && i > 0; i--) {
        body = strchr(body, '\n');
        body = body ? body + 1 : NULL;
    }
    const char *t = body ? strstr(body, "\"timeNano\":") : NULL;
    return t ? strtoll(t + 11, NULL, 10) : -1;
}

static void free_lines(cJSON **v, int n)
{
    for (int i = 0; i < n; i++)
        cJSON_Delete(v[i]);
}

/* ---- the tests ---- */

static void test_ping_version(mw__fdd *d)
{
    resp r = {0};
    char v[64];
    get("/_ping", &r);
    CHECK(r.rc == CURLE_OK && r.status == 200);
    CHECK_STR(r.body, "OK");
    CHECK_STR(header(&r, "Api-Version", v, sizeof v), "1.41");
    CHECK_STR(header(&r, "Ostype", v, sizeof v), "linux");
    resp_free(&r);

    CURL *h = handle();
    req(h, "HEAD", "/v1.41/_ping", NULL, &r);
    CHECK(r.rc == CURLE_OK && r.status == 200 && r.len == 0);
    CHECK_STR(header(&r, "Api-Version", v, sizeof v), "1.41");
    resp_free(&r);
    curl_easy_cleanup(h);

    get("/version", &r);
    cJSON *j = cJSON_Parse(r.body);
    CHECK(r.status == 200 && j);
    CHECK_STR(jstr(j, "ApiVersion"), "1.41");
    CHECK_STR(jstr(j, "MinAPIVersion"), "1.12");
    CHECK_STR(jstr(j, "Version"), "20.10.24+dfsg1");
    cJSON_Delete(j);
    resp_free(&r);

    get("/v1.99/version", &r);
    j = cJSON_Parse(r.body);
    CHECK(r.status == 400);
    CHECK_STR(jstr(j, "message"),
              "client version 1.99 is too new. Maximum supported API version is 1.41");
    CHECK_STR(header(&r, "Content-Type", v, sizeof v), "application/json");
    cJSON_Delete(j);
    resp_free(&r);

    get("/v1.11/version", &r);
    CHECK(r.status == 400);
    CHECK(strstr(r.body, "client version 1.11 is too old. Minimum supported API version is 1.12") ==
          r.body);
    CHECK_STR(header(&r, "Content-Type", v, sizeof v), "text/plain; charset=utf-8");
    resp_free(&r);

    get("/v1.41/nothing/here", &r);
    CHECK(r.status == 404 && strstr(r.body, "page not found"));
    resp_free(&r);
    CHECK(mw__fdd_count(d, MW_FDD_EP_OTHER) == 1);
}

static void test_request_log(mw__fdd *d)
{
    mw__fdd_request q;
    resp r = {0};
    mw__fdd_counts_reset(d);
    get("/v1.40/version", &r);
    resp_free(&r);
    get("/version", &r);
    resp_free(&r);
    get("/v1.99/_ping", &r);
    resp_free(&r);
    CHECK(mw__fdd_count(d, MW_FDD_EP_VERSION) == 2);
    CHECK(mw__fdd_count(d, MW_FDD_EP_PING) == 1);
    CHECK(mw__fdd_count(d, MW_FDD_EP_COUNT) == 3);
    CHECK(mw__fdd_last_request(d, MW_FDD_EP_PING, &q) == 0);
    CHECK_STR(q.version, "1.99");
    CHECK(q.status == 400);
    mw__fdd_request log[8];
    size_t n = mw__fdd_requests(d, log, 8);
    CHECK(n == 3);
    CHECK(n == 3 && strcmp(log[0].version, "1.40") == 0 && log[1].version[0] == '\0');
    CHECK(n == 3 && strcmp(log[0].target, "/v1.40/version") == 0 && log[0].status == 200);
    CHECK(mw__fdd_last_request(d, MW_FDD_EP_IMAGE, &q) == -1);

    /* keep-alive: one connection for several requests */
    CURL *h = handle();
    for (int i = 0; i < 5; i++) {
        req(h, "GET", "/_ping", NULL, &r);
        CHECK(r.status == 200 && r.connects == (i == 0 ? 1 : 0));
        resp_free(&r);
    }
    curl_easy_cleanup(h);

    /* the maximum can move: a newer client is then accepted */
    CHECK(mw__fdd_set_api_version(d, "1.43", NULL) == 0);
    get("/v1.43/version", &r);
    cJSON *j = cJSON_Parse(r.body);
    CHECK(r.status == 200);
    CHECK_STR(jstr(j, "ApiVersion"), "1.43");
    cJSON_Delete(j);
    resp_free(&r);
    CHECK(mw__fdd_set_api_version(d, "bogus", NULL) == -1);
    CHECK(strstr(mw__fdd_error(d), "api_version") != NULL);
    CHECK(mw__fdd_set_api_version(d, "1.41", NULL) == 0);
}

static char web_id[65];

static void make_containers(mw__fdd *d)
{
    char id[65];
    mw__fdd_spec web = {
        .name = "web",
        .image = "nginx:1.25",
        .labels = (const char *[]){"com.example.team", "core", "app", "first", "app", "web", "note",
                                   "a<b&c>", NULL},
        .env = (const char *[]){"MODE=demo", NULL},
        .networks = (const char *[]){"appnet", "127.0.9.2", "bridge", "", NULL},
        .network_mode = "appnet",
        .ports = (const char *[]){"9090", "18080:8080/tcp", NULL},
        .health = "healthy",
    };
    CHECK(mw__fdd_run(d, &web, web_id) == 0);
    CHECK(mw__fdd_create(d, &(mw__fdd_spec){.name = "idle"}, NULL) == 0);
    CHECK(mw__fdd_run(d, &(mw__fdd_spec){.name = "frozen"}, NULL) == 0);
    CHECK(mw__fdd_pause(d, "frozen") == 0);
    CHECK(mw__fdd_run(d, &(mw__fdd_spec){.name = "gone"}, id) == 0);
    CHECK(mw__fdd_stop(d, id) == 0);
    CHECK(mw__fdd_run(d, &(mw__fdd_spec){.name = "web"}, NULL) == -1);
    CHECK(strstr(mw__fdd_error(d), "\"/web\" is already in use") != NULL);
    CHECK(mw__fdd_run(d, &(mw__fdd_spec){.id = "abc"}, NULL) == -1);
    CHECK(mw__fdd_stop(d, "nope") == -1);
    CHECK(strstr(mw__fdd_error(d), "no such container: nope") != NULL);
    CHECK(mw__fdd_container_count(d) == 4);
}

static int count_array(const char *body)
{
    cJSON *j = cJSON_Parse(body);
    int n = cJSON_IsArray(j) ? cJSON_GetArraySize(j) : -1;
    cJSON_Delete(j);
    return n;
}

static void test_list(mw__fdd *d)
{
    resp r = {0};
    char v[64];
    get("/v1.41/containers/json", &r);
    CHECK(r.status == 200);
    CHECK_STR(header(&r, "Transfer-Encoding", v, sizeof v), "chunked");
    cJSON *j = cJSON_Parse(r.body);
    CHECK(cJSON_GetArraySize(j) == 2); /* web and frozen */
    const cJSON *first = cJSON_GetArrayItem(j, 0), *web = cJSON_GetArrayItem(j, 1);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(jget(first, "Names"), 0)), "/frozen");
    CHECK_STR(jstr(first, "State"), "paused");
    CHECK_STR(jstr(web, "Id"), web_id);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(jget(web, "Names"), 0)), "/web");
    CHECK_STR(jstr(web, "Image"), "nginx:1.25");
    CHECK(strncmp(jstr(web, "ImageID") ? jstr(web, "ImageID") : "", "sha256:", 7) == 0);
    CHECK_STR(jstr(web, "Labels.app"), "web");
    CHECK_STR(label(web, "Labels", "com.example.team"), "core");
    CHECK_STR(jstr(web, "State"), "running");
    CHECK(strstr(jstr(web, "Status") ? jstr(web, "Status") : "", "(healthy)") != NULL);
    CHECK_STR(jstr(web, "HostConfig.NetworkMode"), "appnet");
    CHECK_STR(jstr(web, "NetworkSettings.Networks.appnet.IPAddress"), "127.0.9.2");
    const char *bip = jstr(web, "NetworkSettings.Networks.bridge.IPAddress");
    CHECK(bip && strncmp(bip, "127.", 4) == 0);
    CHECK(cJSON_GetArraySize(jget(web, "Ports")) == 3); /* 9090, and 8080 on two host IPs */
    cJSON_Delete(j);
    resp_free(&r);
    /* Go's encoder escapes <, > and & */
    get("/containers/json", &r);
    CHECK(strstr(r.body, "\"note\":\"a\\u003cb\\u0026c\\u003e\"") != NULL);
    resp_free(&r);

    get("/containers/json?all=1", &r);
    CHECK(count_array(r.body) == 4);
    resp_free(&r);
    get("/containers/json?all=0&filters=%7B%22status%22%3A%5B%22running%22%5D%7D", &r);
    CHECK(r.status == 200 && count_array(r.body) == 2);
    resp_free(&r);
    get("/containers/json?filters=%7Bbroken", &r);
    CHECK(r.status == 400);
    resp_free(&r);
    mw__fdd_request q;
    CHECK(mw__fdd_last_request(d, MW_FDD_EP_LIST, &q) == 0 && q.status == 400);
}

static void test_inspect(mw__fdd *d)
{
    char path[256], prefix[13];
    resp r = {0};
    const char *refs[] = {web_id, "web", prefix};
    memcpy(prefix, web_id, 12);
    prefix[12] = '\0';
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/v1.41/containers/%s/json", refs[i]);
        get(path, &r);
        cJSON *j = cJSON_Parse(r.body);
        CHECK(r.status == 200 && j);
        CHECK_STR(jstr(j, "Id"), web_id);
        cJSON_Delete(j);
        resp_free(&r);
    }
    snprintf(path, sizeof path, "/v1.41/containers/%s/json", web_id);
    get(path, &r);
    cJSON *j = cJSON_Parse(r.body);
    CHECK_STR(jstr(j, "Name"), "/web");
    CHECK_STR(jstr(j, "State.Status"), "running");
    CHECK(cJSON_IsTrue(jget(j, "State.Running")));
    CHECK_STR(jstr(j, "State.Health.Status"), "healthy");
    CHECK_STR(jstr(j, "Config.Image"), "nginx:1.25");
    CHECK_STR(jstr(j, "Config.Labels.app"), "web");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(jget(j, "Config.Env"), 0)), "MODE=demo");
    CHECK(jget(j, "Config.ExposedPorts.8080/tcp") != NULL);
    CHECK_STR(jstr(j, "HostConfig.NetworkMode"), "appnet");
    CHECK_STR(jstr(j, "NetworkSettings.Networks.appnet.IPAddress"), "127.0.9.2");
    CHECK(jget(j, "NetworkSettings.IPAddress") != NULL); /* legacy, below 1.52 */
    cJSON_Delete(j);
    resp_free(&r);

    get("/containers/nope/json", &r);
    j = cJSON_Parse(r.body);
    CHECK(r.status == 404);
    CHECK_STR(jstr(j, "message"), "No such container: nope");
    cJSON_Delete(j);
    resp_free(&r);

    /* the container "died in between": one 404, then back */
    CHECK(mw__fdd_inspect_404_once(d, "web") == 0);
    get(path, &r);
    CHECK(r.status == 404 && strstr(r.body, web_id));
    resp_free(&r);
    get(path, &r);
    CHECK(r.status == 200);
    resp_free(&r);

    get("/images/nginx:1.25/json", &r);
    j = cJSON_Parse(r.body);
    CHECK(r.status == 200);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(jget(j, "RepoTags"), 0)), "nginx:1.25");
    snprintf(path, sizeof path, "/v1.41/images/%s/json", jstr(j, "Id") ? jstr(j, "Id") : "x");
    cJSON_Delete(j);
    resp_free(&r);
    get(path, &r);
    CHECK(r.status == 200 && strstr(r.body, "\"nginx:1.25\""));
    resp_free(&r);
    get("/images/demo/busybox:1.0/json", &r);
    CHECK(r.status == 200 && strstr(r.body, "\"demo/busybox:1.0\""));
    resp_free(&r);
    get("/images/nope:1/json", &r);
    CHECK(r.status == 404 && strstr(r.body, "No such image: nope:1"));
    resp_free(&r);
}

/* Events arrive live, in order, filtered, with their attributes. */
static void test_events_live(mw__fdd *d)
{
    stream s;
    cJSON *ev[16];
    /* filters={"type":["container"]} */
    CHECK(stream_open(d, &s, "/v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D", NULL,
                      4, 1) == 0);
    CHECK(mw__fdd_health(d, "web", "unhealthy") == 0);
    CHECK(mw__fdd_die(d, "web", 3, 1) == 0); /* oom, die, (network disconnects filtered) */
    CHECK(mw__fdd_start(d, "web") == 0);     /* (connects filtered), start */
    stream_join(&s);
    char v[64];
    CHECK_STR(header(&s.r, "Content-Type", v, sizeof v), "application/json");
    int n = parse_lines(s.r.body, ev, 16);
    CHECK(n == 4);
    static const char *const actions[] = {"health_status: unhealthy", "oom", "die", "start"};
    long long last = 0;
    for (int i = 0; i < n && i < 4; i++) {
        CHECK_STR(jstr(ev[i], "Type"), "container");
        CHECK_STR(jstr(ev[i], "Action"), actions[i]);
        CHECK_STR(jstr(ev[i], "status"), actions[i]); /* legacy below 1.52 */
        CHECK_STR(jstr(ev[i], "from"), "nginx:1.25");
        CHECK_STR(jstr(ev[i], "Actor.ID"), web_id);
        CHECK_STR(jstr(ev[i], "Actor.Attributes.name"), "web");
        CHECK_STR(jstr(ev[i], "Actor.Attributes.image"), "nginx:1.25");
        CHECK_STR(label(ev[i], "Actor.Attributes", "com.example.team"), "core");
        CHECK_STR(label(ev[i], "Actor.Attributes", "note"), "a<b&c>");
        long long t = nanos_of_line(s.r.body, i);
        CHECK(t > last); /* strictly increasing */
        last = t;
    }
    if (n >= 3)
        CHECK_STR(jstr(ev[2], "Actor.Attributes.exitCode"), "3");
    free_lines(ev, n);
    resp_free(&s.r);
    CHECK(wait_streams_zero(d) == 0);

    CHECK(mw__fdd_last_event_ns(d) >= last);
}

static void since_arg(char *out, size_t cap, int64_t ns)
{
    snprintf(out, cap, "%lld.%09lld", (long long)(ns / 1000000000), (long long)(ns % 1000000000));
}

/* The ring from `since` up to the last event: a stream that ends. */
static void get_replay(mw__fdd *d, int64_t since, resp *r)
{
    char path[128], a[32], b[32];
    since_arg(a, sizeof a, since);
    since_arg(b, sizeof b, mw__fdd_last_event_ns(d));
    snprintf(path, sizeof path, "/events?since=%s&until=%s", a, b);
    get(path, r);
}

/* `since` replays the ring inclusively; `until` in the past ends it. */
static void test_events_since(mw__fdd *d)
{
    int64_t t[6];
    char path[256], a[32], b[32];
    resp r = {0};
    mw__fdd_clock_set(d, T0 + 5000000000LL);
    for (int i = 0; i < 6; i++) {
        CHECK(mw__fdd_emit(d, "web", i % 2 ? "update" : "rename-ish",
                           (const char *[]){"seq", i % 2 ? "odd" : "even", NULL}) == 0);
        t[i] = mw__fdd_last_event_ns(d);
        mw__fdd_clock_advance(d, 1000);
    }
    CHECK(t[0] == T0 + 5000000000LL && t[1] == t[0] + 1001);
    since_arg(a, sizeof a, t[2]);
    since_arg(b, sizeof b, t[4]);
    snprintf(path, sizeof path, "/events?since=%s&until=%s", a, b);
    get(path, &r);
    CHECK(r.rc == CURLE_OK && r.status == 200);
    cJSON *ev[8];
    int n = parse_lines(r.body, ev, 8);
    CHECK(n == 3); /* t[2] (inclusive), t[3], t[4] */
    char exact[40];
    snprintf(exact, sizeof exact, "\"timeNano\":%lld}", (long long)t[2]);
    CHECK(strstr(r.body, exact) == strstr(r.body, "\"timeNano\":")); /* first line is t[2] */
    free_lines(ev, n);
    resp_free(&r);

    /* since alone: the replay, then live */
    stream s;
    snprintf(path, sizeof path, "/events?since=%s", b);
    CHECK(stream_open(d, &s, path, NULL, 3, 1) == 0);
    CHECK(mw__fdd_exec_noise(d, "web") == 0); /* 3 lines; the first reaches the client */
    stream_join(&s);
    n = parse_lines(s.r.body, ev, 8);
    CHECK(n == 3);
    if (n == 3) {
        CHECK_STR(jstr(ev[0], "Action"), "rename-ish"); /* t[4] */
        CHECK_STR(jstr(ev[1], "Action"), "update");     /* t[5] */
        CHECK_STR(jstr(ev[2], "Action"), "exec_create: /bin/sh -c true");
        CHECK(jget(ev[2], "Actor.Attributes.execID") != NULL);
    }
    free_lines(ev, n);
    resp_free(&s.r);
    CHECK(wait_streams_zero(d) == 0);

    /* a bad since is refused */
    get("/events?since=yesterday", &r);
    CHECK(r.status == 400);
    resp_free(&r);

    /* the ring keeps the last 256 events only */
    for (int i = 0; i < 300; i++)
        mw__fdd_emit(d, "web", "update", NULL);
    get_replay(d, 1, &r);
    CHECK(r.lines == 256);
    resp_free(&r);
}

/* Raw data: a malformed line, a line split over two chunks, broken framing. */
static void test_events_raw(mw__fdd *d)
{
    stream s;
    CHECK(stream_open(d, &s, "/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D", NULL, 2,
                      1) == 0);
    CHECK(mw__fdd_inject_line(d, "{\"Type\":\"container\",\"Act") == 0);
    CHECK(mw__fdd_inject_chunk(d, "{\"Type\":\"contai", 15) == 0);
    CHECK(mw__fdd_inject_chunk(d, "ner\"}\n", 6) == 0);
    stream_join(&s);
    CHECK_STR(s.r.body, "{\"Type\":\"container\",\"Act\n{\"Type\":\"container\"}\n");
    resp_free(&s.r);
    CHECK(wait_streams_zero(d) == 0);

    /* chunk framing broken on the wire: the client fails the transfer */
    CHECK(stream_open(d, &s, "/events", NULL, 0, 1) == 0);
    CHECK(mw__fdd_inject_wire(d, "zz\r\nnot a chunk\r\n", 17) == 0);
    stream_join(&s);
    CHECK(s.r.rc != CURLE_OK);
    resp_free(&s.r);
    CHECK(wait_streams_zero(d) == 0);
}

static void test_disconnects(mw__fdd *d)
{
    stream s;
    resp r = {0};
    /* abrupt: no last chunk, the client sees a cut transfer */
    CHECK(stream_open(d, &s, "/events", NULL, 0, 1) == 0);
    CHECK(mw__fdd_close_streams(d, 0) == 1);
    stream_join(&s);
    CHECK(s.r.rc != CURLE_OK && s.r.rc != CURLE_OPERATION_TIMEDOUT);
    resp_free(&s.r);
    CHECK(mw__fdd_streams(d) == 0);

    /* clean: the last chunk, a complete response */
    CHECK(stream_open(d, &s, "/events", NULL, 0, 1) == 0);
    CHECK(mw__fdd_close_streams(d, 1) == 1);
    stream_join(&s);
    CHECK(s.r.rc == CURLE_OK && s.r.status == 200);
    resp_free(&s.r);

    /* engine restart: streams cut, the ring empty, containers kept */
    CHECK(stream_open(d, &s, "/events", NULL, 0, 1) == 0);
    CHECK(mw__fdd_engine_restart(d, 0) == 0);
    stream_join(&s);
    CHECK(s.r.rc != CURLE_OK);
    resp_free(&s.r);
    get_replay(d, 1, &r);
    CHECK(r.status == 200 && r.len == 0);
    resp_free(&r);
    get("/containers/json?all=1", &r);
    CHECK(count_array(r.body) == 4);
    resp_free(&r);

    /* down: no socket to connect to; up again with another set */
    CHECK(mw__fdd_engine_down(d) == 0);
    get("/_ping", &r);
    CHECK(r.rc == CURLE_COULDNT_CONNECT);
    resp_free(&r);
    CHECK(mw__fdd_destroy(d, "gone") == 0); /* its events are lost while down */
    CHECK(mw__fdd_engine_up(d) == 0);
    get("/containers/json?all=1", &r);
    CHECK(count_array(r.body) == 3);
    resp_free(&r);
    get_replay(d, 1, &r);
    CHECK(r.len == 0);
    resp_free(&r);
}

static void test_injected_failures(mw__fdd *d)
{
    resp r = {0};
    CHECK(mw__fdd_fail_next(d, MW_FDD_EP_LIST, 500, NULL, 2) == 0);
    for (int i = 0; i < 3; i++) {
        get("/containers/json", &r);
        CHECK(r.status == (i < 2 ? 500 : 200));
        resp_free(&r);
    }
    CHECK(mw__fdd_truncate_next(d, MW_FDD_EP_INSPECT, 100) == 0);
    get("/containers/web/json", &r);
    CHECK(r.rc != CURLE_OK);
    resp_free(&r);
    get("/containers/web/json", &r);
    CHECK(r.rc == CURLE_OK && r.status == 200);
    resp_free(&r);

    CHECK(mw__fdd_set_latency(d, MW_FDD_EP_PING, 60) == 0);
    get("/_ping", &r);
    CHECK(r.status == 200 && r.secs >= 0.05);
    resp_free(&r);
    CHECK(mw__fdd_set_latency(d, MW_FDD_EP_COUNT, 0) == 0);
}

/* API 1.52: no legacy fields, Accept picks the events' Content-Type. */
static void test_api_152(mw__fdd *d)
{
    resp r = {0};
    char v[64];
    CHECK(mw__fdd_set_api_version(d, "1.52", NULL) == 0);
    get("/v1.52/containers/web/json", &r);
    cJSON *j = cJSON_Parse(r.body);
    CHECK(r.status == 200);
    CHECK(jget(j, "NetworkSettings.IPAddress") == NULL);
    CHECK(jget(j, "NetworkSettings.Networks.appnet.IPAddress") != NULL);
    cJSON_Delete(j);
    resp_free(&r);

    stream s;
    CHECK(stream_open(d, &s, "/v1.52/events", "application/json-seq", 1, 1) == 0);
    CHECK(mw__fdd_pause(d, "web") == 0);
    stream_join(&s);
    CHECK_STR(header(&s.r, "Content-Type", v, sizeof v), "application/json-seq");
    CHECK(s.r.body[0] == 0x1e);
    CHECK(strstr(s.r.body, "\"status\"") == NULL && strstr(s.r.body, "\"Action\":\"pause\""));
    resp_free(&s.r);
    CHECK(wait_streams_zero(d) == 0);
    CHECK(mw__fdd_unpause(d, "web") == 0);
    CHECK(mw__fdd_set_api_version(d, "1.41", NULL) == 0);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 10,000 generated containers: listed whole, 2,000 inspected. */
static void test_bulk(mw__fdd *d)
{
    resp r = {0};
    double t0 = now_s();
    CHECK(mw__fdd_bulk_create(
              d, 10000, &(mw__fdd_spec){.labels = (const char *[]){"tier", "bulk", NULL}}, 0) == 0);
    double t1 = now_s();
    get("/v1.41/containers/json", &r);
    double t2 = now_s();
    cJSON *j = cJSON_Parse(r.body);
    CHECK(r.status == 200 && cJSON_GetArraySize(j) == 10002);
    char ids[2000][65];
    int k = 0, hex_ok = 1;
    const cJSON *c;
    cJSON_ArrayForEach(c, j)
    {
        const char *id = jstr(c, "Id");
        hex_ok &= id && strlen(id) == 64 && strspn(id, "0123456789abcdef") == 64;
        if (k < 2000 && id && jstr(c, "Labels.tier"))
            memcpy(ids[k++], id, 65);
    }
    CHECK(hex_ok && k == 2000);
    cJSON_Delete(j);
    printf("bulk: created 10000 in %.3f s, listed (%zu bytes) in %.3f s\n", t1 - t0, r.len,
           t2 - t1);
    resp_free(&r);

    CURL *h = handle();
    char path[128];
    int ok = 0;
    double t3 = now_s();
    for (int i = 0; i < k; i++) {
        snprintf(path, sizeof path, "/v1.41/containers/%.64s/json", ids[i]);
        req(h, "GET", path, NULL, &r);
        ok += r.status == 200 && strstr(r.body, ids[i]) != NULL;
        resp_free(&r);
    }
    double t4 = now_s();
    curl_easy_cleanup(h);
    CHECK(ok == 2000);
    printf("bulk: 2000 inspects on one connection in %.3f s\n", t4 - t3);
    CHECK(mw__fdd_count(d, MW_FDD_EP_INSPECT) >= 2000);
}

static int start(mw__fdd **d)
{
    char *err = NULL;
    snprintf(dir, sizeof dir, "/tmp/mwfd.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(sock, sizeof sock, "%s/docker.sock", dir);
    *d = mw__fdd_new(&(mw__fdd_opts){.socket_path = sock, .clock_ns = T0}, &err);
    if (!*d) {
        fprintf(stderr, "fake dockerd: %s\n", err);
        free(err);
        rmdir(dir);
        return -1;
    }
    return 0;
}

int main(void)
{
    mw__fdd *d;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CHECK(mw__fdd_new(&(mw__fdd_opts){0}, NULL) == NULL);
    if (start(&d) != 0) {
        CHECK(0);
        return TEST_RESULT();
    }
    CHECK_STR(mw__fdd_socket_path(d), sock);
    test_ping_version(d);
    test_request_log(d);
    make_containers(d);
    test_list(d);
    test_inspect(d);
    test_events_live(d);
    test_events_since(d);
    test_events_raw(d);
    test_disconnects(d);
    test_injected_failures(d);
    test_api_152(d);
    test_bulk(d);
    mw__fdd_free(d);
    CHECK(access(sock, F_OK) != 0); /* the socket is gone */
    rmdir(dir);
    curl_global_cleanup();
    return TEST_RESULT();
}
