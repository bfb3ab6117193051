/*
 * test_dd_sink.c - the Datadog sink against a fake intake on 127.0.0.1
 * (tests/support/dd_intake.c): payload shapes, headers and compression;
 * delivery through 500s, 429 with Retry-After, timeouts and a long
 * outage (every sample exactly once, in order); the queue's cap (the
 * oldest dropped and counted exactly); rejected payloads; the shutdown
 * flush; and the API key never in a log line, even at debug level.
 *
 * Times are short (backoff capped at 50 ms, request timeout 300 ms) and
 * only ever waited for with generous limits: nothing asserts that
 * something happened quickly.
 */
#include "test.h"

#include "core/base/util.h"
#include "core/sinks/dd_sink.h"
#include "tests/support/dd_intake.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define KEY  "0123456789abcdef0123456789abcdef"
#define WAIT 60.0 /* seconds: a limit, never an expectation */

/* ------------------------------------------------------------- the log */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_text;
static size_t log_len;

static void capture(mw_log_level level, const char *where, const char *msg, void *ud)
{
    (void)level;
    (void)ud;
    char *line = mw__sprintf("%s: %s\n", where ? where : "-", msg);
    pthread_mutex_lock(&log_lock);
    size_t n = strlen(line);
    char *t = realloc(log_text, log_len + n + 1);
    if (t) {
        memcpy(t + log_len, line, n + 1);
        log_text = t;
        log_len += n;
    }
    pthread_mutex_unlock(&log_lock);
    free(line);
}

static int log_has(const char *s)
{
    pthread_mutex_lock(&log_lock);
    int r = log_text && strstr(log_text, s) != NULL;
    pthread_mutex_unlock(&log_lock);
    return r;
}

static mw__log test_log = {.level = MW_LOG_DEBUG, .fd = 2, .fn = capture};

/* ------------------------------------------------------------- helpers */

static int wait_for(size_t (*fn)(dd_intake *), dd_intake *in, size_t want)
{
    double end = mw__mono() + WAIT;
    while (fn(in) < want && mw__mono() < end)
        usleep(5000);
    return fn(in) >= want;
}

static char *intake_url(dd_intake *in)
{
    return mw__sprintf("http://127.0.0.1:%d", dd_intake_port(in));
}

static mw_record gauge(const char *name, double v, const char *const *tags, size_t ntags)
{
    return (mw_record){.size = sizeof(mw_record),
                       .type = MW_RECORD_METRIC,
                       .name = name,
                       .kind = MW_KIND_GAUGE,
                       .value = v,
                       .timestamp = 1764097200,
                       .tags = tags,
                       .ntags = ntags};
}

/* One flush of the sink holding the sample "test.seq" tagged seq:<k>. */
static void flush_seq(mw__dd_sink *s, int k)
{
    char tag[32];
    snprintf(tag, sizeof tag, "seq:%d", k);
    const char *tags[] = {tag};
    mw_record r = gauge("test.seq", k, tags, 1);
    mw__dd_sink_record(&r, s);
    mw__dd_sink_flushed(s);
}

/* How often seq:<k> arrived in payloads accepted from request `from` on,
 * and in what order:
 * counts[k] and the sequence of k's as accepted. */
static size_t accepted_seq(dd_intake *in, size_t from, int *counts, int max, int *order)
{
    const dd_intake_req *r;
    size_t n, norder = 0;
    dd_intake_lock(in, &r, &n);
    for (size_t i = from; i < n; i++) {
        if (r[i].status != 202 || !r[i].body)
            continue;
        for (int k = 0; k < max; k++) {
            char tag[40];
            snprintf(tag, sizeof tag, "\"seq:%d\"", k);
            for (const char *p = strstr(r[i].body, tag); p; p = strstr(p + 1, tag)) {
                counts[k]++;
                order[norder++] = k;
            }
        }
    }
    dd_intake_unlock(in);
    return norder;
}

/* Every sample seq:0 .. seq:<n-1> arrived exactly once in what the
 * intake accepted from request `from` on, and in order. */
static void check_once_in_order(dd_intake *in, size_t from, int n)
{
    int *counts = calloc((size_t)n, sizeof *counts), *order = calloc(4 * (size_t)n, sizeof *order);
    if (!counts || !order) {
        CHECK(!"out of memory");
        free(counts);
        free(order);
        return;
    }
    size_t norder = accepted_seq(in, from, counts, n, order);
    int once = 1, sorted = 1;
    for (int i = 0; i < n; i++)
        once &= counts[i] == 1;
    for (size_t i = 1; i < norder; i++)
        sorted &= order[i] > order[i - 1];
    CHECK(once);
    CHECK(sorted);
    CHECK(norder == (size_t)n);
    free(counts);
    free(order);
}

static mw__dd_sink *make_sink(dd_intake *in, size_t queue_max, double timeout)
{
    char *url = intake_url(in), *err = NULL;
    mw__dd_sink_opts o = {
        .api_key = KEY,
        .url = url,
        .host = "test-host",
        .tags = "",
        .log = &test_log,
        .queue_max = queue_max,
        .timeout = timeout,
        .backoff_max = 0.05,
    };
    mw__dd_sink *s = NULL;
    mw_code rc = mw__dd_sink_new(&o, &s, &err);
    CHECK(rc == MW_OK);
    if (err)
        fprintf(stderr, "%s\n", err);
    free(err);
    free(url);
    return s;
}

/* ------------------------------------------------------------- payloads */

typedef struct got {
    mw__dd_payload *p[64];
    size_t n;
} got;

static void keep(void *ud, mw__dd_payload *p)
{
    got *g = ud;
    if (g->n < 64)
        g->p[g->n++] = p;
    else
        mw__dd_payload_free(p);
}

static cJSON *inflate_json(const mw__dd_payload *p)
{
    uLongf n = p->json_len + 1;
    char *out = malloc(n);
    cJSON *j = NULL;
    if (uncompress((Bytef *)out, &n, (const Bytef *)p->body, p->len) == Z_OK && n == p->json_len)
        j = cJSON_ParseWithLength(out, n);
    free(out);
    return j;
}

static void test_payload_shapes(void)
{
    got g = {0};
    const char *extra[] = {"env:test", "team:a"};
    mw__dd_builder_opts o = {.host = "h0", .tags = extra, .ntags = 2, .emit = keep, .ud = &g};
    mw__dd_builder *b = NULL;
    CHECK(mw__dd_builder_new(&o, &b) == MW_OK);
    const char *t1[] = {"device:sda1", "mount:/"};
    mw_record m = gauge("disk.used", 0.5, t1, 2);
    mw_record c = gauge("req.count", 7, NULL, 0);
    c.kind = MW_KIND_COUNT;
    c.interval = 15;
    c.host = "other";
    mw_record sc = {.size = sizeof sc,
                    .type = MW_RECORD_SERVICE_CHECK,
                    .name = "http.can_connect",
                    .status = 2,
                    .message = "down",
                    .timestamp = 1764097200};
    mw_record ev = {.size = sizeof ev,
                    .type = MW_RECORD_EVENT,
                    .title = "t",
                    .text = "x",
                    .alert_type = "error",
                    .priority = "normal",
                    .aggregation_key = "k",
                    .source_type_name = "docker",
                    .timestamp = 1764097201};
    CHECK(mw__dd_builder_add(b, &m) == MW_OK);
    CHECK(mw__dd_builder_add(b, &c) == MW_OK);
    CHECK(mw__dd_builder_add(b, &sc) == MW_OK);
    CHECK(mw__dd_builder_add(b, &ev) == MW_OK);
    CHECK(mw__dd_builder_finish(b) == MW_OK);
    CHECK(g.n == 3); /* the event at once, then series and check_run */
    for (size_t i = 0; i < g.n; i++) {
        cJSON *j = inflate_json(g.p[i]);
        CHECK(j != NULL);
        if (g.p[i]->kind == MW_DD_SERIES) {
            cJSON *s = cJSON_GetObjectItem(j, "series");
            CHECK(cJSON_GetArraySize(s) == 2);
            cJSON *a = cJSON_GetArrayItem(s, 0), *bb = cJSON_GetArrayItem(s, 1);
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "metric")), "disk.used");
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "device")), "sda1");
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "type")), "gauge");
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "host")), "h0");
            cJSON *tags = cJSON_GetObjectItem(a, "tags");
            CHECK(cJSON_GetArraySize(tags) == 3); /* mount:/, env:test, team:a */
            CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(tags, 0)), "mount:/");
            cJSON *pt = cJSON_GetArrayItem(cJSON_GetObjectItem(a, "points"), 0);
            CHECK(cJSON_GetArrayItem(pt, 0)->valuedouble == 1764097200);
            CHECK(cJSON_GetArrayItem(pt, 1)->valuedouble == 0.5);
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(bb, "type")), "count");
            CHECK(cJSON_GetObjectItem(bb, "interval")->valuedouble == 15);
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(bb, "host")), "other");
            CHECK(g.p[i]->items == 2);
        } else if (g.p[i]->kind == MW_DD_CHECK_RUN) {
            cJSON *a = cJSON_GetArrayItem(j, 0);
            CHECK(cJSON_IsArray(j) && cJSON_GetArraySize(j) == 1);
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "check")), "http.can_connect");
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "host_name")), "h0");
            CHECK(cJSON_GetObjectItem(a, "status")->valuedouble == 2);
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "message")), "down");
        } else {
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "title")), "t");
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "alert_type")), "error");
            CHECK(cJSON_GetObjectItem(j, "date_happened")->valuedouble == 1764097201);
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "source_type_name")), "docker");
        }
        cJSON_Delete(j);
        mw__dd_payload_free(g.p[i]);
    }
    mw__dd_builder_free(b);
}

/* A small cut: many payloads, each whole JSON, every point in one. */
static void test_payload_cut(void)
{
    got g = {0};
    mw__dd_builder_opts o = {.host = "h", .max_json = 2000, .emit = keep, .ud = &g};
    mw__dd_builder *b = NULL;
    CHECK(mw__dd_builder_new(&o, &b) == MW_OK);
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof name, "m.%d", i);
        mw_record r = gauge(name, i, NULL, 0);
        CHECK(mw__dd_builder_add(b, &r) == MW_OK);
    }
    mw__dd_builder_finish(b);
    size_t points = 0;
    CHECK(g.n > 5);
    for (size_t i = 0; i < g.n; i++) {
        cJSON *j = inflate_json(g.p[i]);
        CHECK(j && g.p[i]->json_len <= 2000);
        points += (size_t)cJSON_GetArraySize(cJSON_GetObjectItem(j, "series"));
        cJSON_Delete(j);
        mw__dd_payload_free(g.p[i]);
    }
    CHECK(points == 200);
    mw__dd_builder_free(b);
}

/* ------------------------------------------------------------- through an engine */

static size_t accepted(dd_intake *in)
{
    return dd_intake_accepted(in);
}

/* Settings from the environment, headers, the body inflated. */
static void test_engine_env(dd_intake *in)
{
    char *url = intake_url(in);
    setenv("DD_API_KEY", KEY, 1);
    setenv("DD_DD_URL", url, 1);
    setenv("DD_TAGS", "env:ci, team:core", 1);
    setenv("DD_HOSTNAME", "dd-host", 1);
    mw_config *cfg = mw_config_new();
    mw_config_set_log(cfg, capture, NULL);
    mw_config_set(cfg, "log_level", "debug", NULL);
    mw_config_set(cfg, "docker", "off", NULL);
    mw_config_set(cfg, "ecs", "off", NULL);
    mw_config_set(cfg, "no_bundled", "true", NULL);
    mw_engine *eng = NULL;
    char *err = NULL;
    CHECK(mw_engine_new(cfg, &eng, &err) == MW_OK);
    size_t before = dd_intake_accepted(in);
    const char *tags[] = {"device:eth0", "role:web"};
    CHECK(mw_engine_submit(eng, MW_GAUGE, "net.bytes", 42, tags, 2, NULL) == MW_OK);
    mw_engine_flush(eng);
    CHECK(wait_for(accepted, in, before + 1));
    const dd_intake_req *r;
    size_t n;
    dd_intake_lock(in, &r, &n);
    const dd_intake_req *last = n ? &r[n - 1] : NULL;
    CHECK(last && !strcmp(last->path, "/api/v1/series"));
    CHECK(last && last->query[0] == '\0'); /* nothing in the URL */
    CHECK(last && !strcmp(last->api_key, KEY));
    CHECK(last && !strcmp(last->encoding, "deflate"));
    CHECK(last && !strcmp(last->type, "application/json"));
    cJSON *j = last && last->body ? cJSON_Parse(last->body) : NULL;
    dd_intake_unlock(in);
    CHECK(j != NULL);
    int found = 0;
    cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(j, "series"))
    {
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(s, "metric")), "net.bytes"))
            continue;
        found = 1;
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(s, "host")), "dd-host");
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(s, "device")), "eth0");
        char *t = cJSON_PrintUnformatted(cJSON_GetObjectItem(s, "tags"));
        CHECK_STR(t, "[\"role:web\",\"env:ci\",\"team:core\"]");
        free(t);
    }
    CHECK(found);
    cJSON_Delete(j);
    mw_engine_free(eng);
    mw_config_free(cfg);
    free(err);
    free(url);
    unsetenv("DD_API_KEY");
    unsetenv("DD_DD_URL");
    unsetenv("DD_TAGS");
    unsetenv("DD_HOSTNAME");
}

/* mw_engine_stop() flushes and delivers what is queued. */
static void test_engine_shutdown_flush(dd_intake *in)
{
    char *url = intake_url(in);
    mw_config *cfg = mw_config_new();
    mw_config_set_log(cfg, capture, NULL);
    mw_config_set(cfg, "log_level", "debug", NULL);
    mw_config_set(cfg, "api_key", KEY, NULL);
    mw_config_set(cfg, "dd_url", url, NULL);
    mw_config_set(cfg, "sink", "datadog", NULL);
    mw_config_set(cfg, "flush_interval", "3600", NULL);
    mw_config_set(cfg, "docker", "off", NULL);
    mw_config_set(cfg, "ecs", "off", NULL);
    mw_config_set(cfg, "no_bundled", "true", NULL);
    mw_engine *eng = NULL;
    CHECK(mw_engine_new(cfg, &eng, NULL) == MW_OK);
    CHECK(mw_engine_load(eng) == MW_OK);
    CHECK(mw_engine_start(eng) == MW_OK);
    const char *tags[] = {"at:shutdown"};
    mw_engine_submit(eng, MW_GAUGE, "last.words", 1, tags, 1, NULL);
    CHECK(mw_engine_stop(eng) == MW_OK);
    const dd_intake_req *r;
    size_t n;
    int got_it = 0;
    dd_intake_lock(in, &r, &n);
    for (size_t i = 0; i < n; i++)
        got_it += r[i].status == 202 && r[i].body && strstr(r[i].body, "\"at:shutdown\"");
    dd_intake_unlock(in);
    CHECK(got_it == 1);
    mw_engine_free(eng);
    mw_config_free(cfg);
    free(url);
}

/* ------------------------------------------------------------- outages */

/* 500s, timeouts, 429 with Retry-After, then a long outage: every sample
 * arrives once, in order. */
static void test_outage(dd_intake *in)
{
    enum { N = 60 };
    mw__dd_sink *s = make_sink(in, 0, 0.3);
    size_t base = dd_intake_accepted(in), from = dd_intake_count(in);
    int k = 0;
    for (; k < 5; k++)
        flush_seq(s, k);
    CHECK(wait_for(accepted, in, base + 5));
    dd_intake_set_mode(in, DDI_FAIL, 0);
    for (; k < 15; k++)
        flush_seq(s, k);
    usleep(200000);
    dd_intake_set_mode(in, DDI_HANG, 0);
    for (; k < 25; k++)
        flush_seq(s, k);
    usleep(800000); /* a few requests time out */
    size_t limited_at = dd_intake_count(in);
    dd_intake_set_mode(in, DDI_LIMIT, 1);
    for (; k < 30; k++)
        flush_seq(s, k);
    while (dd_intake_count(in) == limited_at)
        usleep(5000);
    dd_intake_set_mode(in, DDI_FAIL, 0); /* the long outage */
    for (; k < 50; k++) {
        flush_seq(s, k);
        usleep(20000);
    }
    mw__fwd_stats mid;
    mw__dd_sink_stats(s, &mid); /* what /status and /healthz read */
    CHECK(mid.failing_since != 0 && mid.failing_since <= mw__mono_ns());
    CHECK(strstr(mid.last_error, "POST /api/v1/series: HTTP ") == mid.last_error);
    CHECK(strstr(mid.last_error, KEY) == NULL);
    CHECK(mid.queued_payloads > 0);
    dd_intake_set_mode(in, DDI_ACCEPT, 0);
    for (; k < N; k++)
        flush_seq(s, k);
    CHECK(mw__dd_sink_drain(s, WAIT) == MW_OK);

    check_once_in_order(in, from, N);

    /* the 429's Retry-After (1 s) was waited for */
    const dd_intake_req *r;
    size_t n;
    dd_intake_lock(in, &r, &n);
    size_t i = limited_at;
    while (i < n && r[i].status != 429)
        i++;
    CHECK(i + 1 < n && r[i + 1].when - r[i].when >= 0.9);
    int timeouts = 0;
    for (size_t j = 0; j < n; j++)
        timeouts += r[j].status == 0;
    dd_intake_unlock(in);
    CHECK(timeouts > 0);

    mw__fwd_stats st;
    mw__dd_sink_stats(s, &st);
    CHECK(st.retries > 0);
    for (int reason = 0; reason < MW_FWD_NREASONS; reason++)
        CHECK(st.dropped_items[reason] == 0);
    CHECK(st.queued_payloads == 0);
    CHECK(st.failing_since == 0 && st.last_error[0] == '\0'); /* delivering again */
    mw__dd_sink_free(s, 1);
}

/* How often `s` appears in the log so far. */
static int log_count(const char *s)
{
    int n = 0;
    pthread_mutex_lock(&log_lock);
    for (const char *p = log_text; p && (p = strstr(p, s)); p++)
        n++;
    pthread_mutex_unlock(&log_lock);
    return n;
}

/* A 10-minute intake outage in time scaled 1:300: a flush every 15 s
 * (50 ms here), the default backoff (1 s doubling to a 64 s cap: 3.3 ms
 * to 213 ms here), the intake answering 500 for 600 s (2 s here), so
 * the outage spans 40 flushes and a retry schedule that reaches its cap,
 * as ten real minutes do. Every sample before, during and after arrives
 * exactly once, in order; the outage is logged once. */
static void test_ten_minute_outage(dd_intake *in)
{
    enum { BEFORE = 5, DURING = 40, AFTER = 5, N = BEFORE + DURING + AFTER };
    const double scale = 1.0 / 300, flush = 15 * scale;
    char *url = intake_url(in), *err = NULL;
    mw__dd_sink_opts o = {.api_key = KEY,
                          .url = url,
                          .host = "test-host",
                          .tags = "",
                          .log = &test_log,
                          .timeout = 20 * scale * 10,
                          .backoff_base = 1 * scale,
                          .backoff_max = 64 * scale};
    mw__dd_sink *s = NULL;
    CHECK(mw__dd_sink_new(&o, &s, &err) == MW_OK);
    free(err);
    free(url);
    if (!s)
        return;
    int said = log_count("retrying with backoff");
    size_t base = dd_intake_accepted(in), from = dd_intake_count(in);
    int k = 0;
    for (; k < BEFORE; k++, usleep((useconds_t)(flush * 1e6)))
        flush_seq(s, k);
    CHECK(wait_for(accepted, in, base + BEFORE));
    size_t outage_from = dd_intake_count(in);
    dd_intake_set_mode(in, DDI_FAIL, 0);
    for (; k < BEFORE + DURING; k++, usleep((useconds_t)(flush * 1e6)))
        flush_seq(s, k);
    mw__fwd_stats mid;
    mw__dd_sink_stats(s, &mid);
    size_t attempts = dd_intake_count(in) - outage_from;
    dd_intake_set_mode(in, DDI_ACCEPT, 0);
    for (; k < N; k++, usleep((useconds_t)(flush * 1e6)))
        flush_seq(s, k);
    CHECK(mw__dd_sink_drain(s, WAIT) == MW_OK);

    check_once_in_order(in, from, N);
    /* the whole outage's payloads were held (none sent, none dropped) */
    CHECK(mid.queued_payloads >= DURING - 1);
    /* a capped backoff: 600 s at 1, 2, 4 ... 64 s (halved by jitter at
     * worst) is more than 9 and fewer than 600/16 + 7 attempts */
    CHECK(attempts >= 9 && attempts <= 600 / 16 + 7);
    if (attempts < 9 || attempts > 600 / 16 + 7)
        fprintf(stderr, "attempts during the outage: %zu\n", attempts);
    CHECK(log_count("retrying with backoff") == said + 1); /* once per outage */
    mw__fwd_stats st;
    mw__dd_sink_stats(s, &st);
    for (int reason = 0; reason < MW_FWD_NREASONS; reason++)
        CHECK(st.dropped_items[reason] == 0);
    mw__dd_sink_free(s, 1);
}

/* Counts, by the dropped counter's own report, what was dropped. */
static void add_reported(void *ud, const char *tag, double n)
{
    if (!strcmp(tag, "reason:queue_full"))
        *(double *)ud += n;
}

/* A queue too small for the outage: the oldest go, counted exactly. */
static void test_queue_full(dd_intake *in)
{
    enum { N = 40 };
    dd_intake_set_mode(in, DDI_FAIL, 0);
    size_t first = dd_intake_count(in);
    mw__dd_sink *s = make_sink(in, 1500, 0.3); /* a few payloads' worth */
    for (int k = 0; k < N; k++)
        flush_seq(s, k);
    mw__fwd_stats st;
    mw__dd_sink_stats(s, &st);
    CHECK(st.queued_bytes <= 1500 + 200); /* the cap, and the one in flight */
    CHECK(st.dropped_payloads[MW_FWD_QUEUE_FULL] > 0);
    while (dd_intake_count(in) == first)
        usleep(5000);
    dd_intake_set_mode(in, DDI_ACCEPT, 0);
    CHECK(mw__dd_sink_drain(s, WAIT) == MW_OK);

    int counts[N] = {0}, order[4 * N];
    accepted_seq(in, first, counts, N, order);
    mw__dd_sink_stats(s, &st);
    uint64_t delivered = 0, dup = 0;
    /* The newest are kept, in one run; before a gap only one may have
     * arrived: the payload in flight when the drops began (the oldest at
     * the time the forwarder took it: not always the first flush's, when
     * its thread is slow to start, as under TSan). */
    int newest_kept = counts[N - 1] == 1, seen_gap = 0, before_gap = 0;
    for (int k = N - 1; k >= 0; k--) {
        delivered += counts[k] > 0;
        dup += counts[k] > 1;
        if (!counts[k])
            seen_gap = 1;
        else if (seen_gap)
            before_gap++;
    }
    CHECK(newest_kept);
    CHECK(dup == 0);
    CHECK(before_gap <= 1);
    CHECK(delivered + st.dropped_items[MW_FWD_QUEUE_FULL] == N);
    CHECK(st.sent_items == delivered);
    double reported = 0;
    mw__dd_sink_report(s, add_reported, &reported);
    CHECK(reported == (double)st.dropped_items[MW_FWD_QUEUE_FULL]);
    mw__dd_sink_free(s, 1);
    CHECK(log_has("the retry queue is full"));
}

/* A 400 is not retried: dropped, counted, the intake's message logged
 * without the key it quoted. */
static void test_rejected(dd_intake *in)
{
    dd_intake_set_mode(in, DDI_REJECT, 0);
    size_t first = dd_intake_count(in);
    mw__dd_sink *s = make_sink(in, 0, 0.3);
    flush_seq(s, 0);
    CHECK(mw__dd_sink_drain(s, WAIT) == MW_OK);
    mw__fwd_stats st;
    mw__dd_sink_stats(s, &st);
    CHECK(st.dropped_items[MW_FWD_REJECTED] == 1);
    CHECK(dd_intake_count(in) == first + 1);
    CHECK(log_has("HTTP 400"));
    CHECK(log_has("bad payload for key ****"));
    mw__dd_sink_free(s, 1);
    dd_intake_set_mode(in, DDI_ACCEPT, 0);
}

/* What shutdown_timeout could not deliver is dropped and counted. */
static void test_shutdown_drop(dd_intake *in)
{
    dd_intake_set_mode(in, DDI_FAIL, 0);
    mw__dd_sink *s = make_sink(in, 0, 0.3);
    flush_seq(s, 0);
    flush_seq(s, 1);
    CHECK(mw__dd_sink_drain(s, 0.2) == MW_ETIMEOUT);
    mw__dd_sink_free(s, 0.1);
    CHECK(log_has("not delivered within the shutdown timeout"));
    dd_intake_set_mode(in, DDI_ACCEPT, 0);
}

int main(void)
{
    test_payload_shapes();
    test_payload_cut();
    dd_intake *in = dd_intake_start();
    CHECK(in != NULL);
    if (!in)
        return TEST_RESULT();
    test_engine_env(in);
    test_engine_shutdown_flush(in);
    test_outage(in);
    test_ten_minute_outage(in);
    test_queue_full(in);
    test_rejected(in);
    test_shutdown_drop(in);
    dd_intake_stop(in);
    CHECK(log_len > 0);
    CHECK(!log_has(KEY)); /* at debug level, through everything above */
    free(log_text);
    return TEST_RESULT();
}
