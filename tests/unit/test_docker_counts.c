/*
 * test_docker_counts.c - the container counts of the Docker source
 * (docker.containers.running / .stopped per image, and their .totals).
 *
 * First what a list answer makes (docker_counts.c), from the recorded
 * list in tests/fixtures/docker/list and from written ones: the states,
 * image ids resolved or not, entries without a usable image, refused
 * records. Then the source against the fake engine (fake_dockerd.h),
 * its records going into an aggregator as the engine's do and flushed to
 * a sink: counts per image and totals, a filtered-out container still
 * counted, a container that stops or pauses moving to the stopped count,
 * an image whose last container went no longer reported; failed lists
 * logged once and touching neither the connection nor the services; no
 * list while one is in flight or while a sync runs.
 *
 * The source runs with a 50 ms service_up_interval; every wait is for a
 * number of counts made, never for a time.
 */
#include "core/pipeline/aggregator.h"
#include "core/base/buf.h"
#include "core/base/http.h"
#include "core/base/loop.h"
#include "core/base/util.h"
#include "discovery/docker/docker.h"
#include "discovery/docker/docker_counts.h"
#include "discovery/filter.h"
#include "tests/support/fake_dockerd.h"
#include "test.h"
#include "tests/support/make.h"

#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#define FIX      MW_TEST_FIXTURES "/docker/list/"
#define WAIT_MS  10000 /* any single wait */
#define INTERVAL 0.05  /* service_up_interval: a count every 50 ms */

#define ID_A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* The tags of an image's counts, sorted as the aggregator flushes them. */
#define REDIS_TAGS "docker_image:demo/redis:7,image_name:demo/redis,image_tag:7,short_image:redis"
#define WEB_TAGS   "docker_image:demo/web:1.0,image_name:demo/web,image_tag:1.0,short_image:web"

/* ------------------------------------------------------------ records */

/* Records as strings: "m|<name>|<kind>|<value>|<timestamp>|<host>|<tags>"
 * for metrics (the timestamp 0 when `no_ts`), "sc|<name>|<status>|..."
 * for service checks. */
typedef struct recs {
    char *v[256];
    size_t n;
    int no_ts;
    int refuse; /* as a record callback: refuse the first `refuse` */
} recs;

static char *join_tags(const mw_record *r)
{
    mw__buf b;

    mw__buf_init(&b, 1 << 16);
    for (size_t i = 0; i < r->ntags; i++)
        mw__buf_addf(&b, "%s%s", i ? "," : "", r->tags[i]);
    return mw__buf_take(&b, NULL);
}

static void recs_add(recs *c, const mw_record *r)
{
    char *tags = join_tags(r);

    if (c->n == MW_ARRAY_LEN(c->v)) {
        free(tags);
        return;
    }
    if (r->type == MW_RECORD_METRIC)
        c->v[c->n++] = mw__sprintf("m|%s|%d|%g|%lld|%s|%s", r->name, (int)r->kind, r->value,
                                   c->no_ts ? 0LL : (long long)r->timestamp,
                                   r->host ? r->host : "-", tags ? tags : "");
    else
        c->v[c->n++] = mw__sprintf("sc|%s|%d|%s", r->name ? r->name : "", r->status,
                                   r->message ? r->message : "");
    free(tags);
}

static void recs_free(recs *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i]);
    c->n = 0;
}

/* Records that start with `prefix`. */
static size_t recs_count(const recs *c, const char *prefix)
{
    size_t n = 0;

    for (size_t i = 0; i < c->n; i++)
        n += strncmp(c->v[i], prefix, strlen(prefix)) == 0;
    return n;
}

/* Records that contain `needle`. */
static size_t recs_with(const recs *c, const char *needle)
{
    size_t n = 0;

    for (size_t i = 0; i < c->n; i++)
        n += strstr(c->v[i], needle) != NULL;
    return n;
}

/* Exactly one such record: "m|<name>|0|<value>|<ts>|<host>|<tags>". */
static int has_gauge(const recs *c, const char *name, const char *value, long long ts,
                     const char *host, const char *tags)
{
    char *want = mw__sprintf("m|%s|0|%s|%lld|%s|%s", name, value, ts, host, tags);
    size_t n = 0;

    for (size_t i = 0; i < c->n; i++)
        n += strcmp(c->v[i], want) == 0;
    if (n != 1) {
        fprintf(stderr, "want once: %s; have:\n", want);
        for (size_t i = 0; i < c->n; i++)
            fprintf(stderr, "  %s\n", c->v[i]);
    }
    free(want);
    return n == 1;
}

static mw_code rec_cb(void *ud, const mw_record *rec)
{
    recs *c = ud;

    if (c->refuse > 0) {
        c->refuse--;
        return MW_ENOMEM;
    }
    recs_add(c, rec);
    return MW_OK;
}

/* ---------------------------------------------------------------- log */

typedef struct logcap {
    mw__buf b;
} logcap;

static void log_cb(mw_log_level level, const char *where, const char *msg, void *ud)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    logcap *l = ud;

    mw__buf_addf(&l->b, "%s|%s|%s\n", names[level], where ? where : "", msg);
    if (getenv("MW_TEST_VERBOSE"))
        fprintf(stderr, "%s %s: %s\n", names[level], where ? where : "", msg);
}

/* Lines of `level` that contain `needle`. */
static size_t log_lines(logcap *l, const char *level, const char *needle)
{
    const char *p = mw__buf_str(&l->b);
    size_t n = 0, lv = strlen(level);

    while (p && *p) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char *line = mw__strndup(p, len);
        n += line && strncmp(line, level, lv) == 0 && line[lv] == '|' && strstr(line, needle);
        free(line);
        p = end ? end + 1 : NULL;
    }
    return n;
}

static void log_init(logcap *l, mw__log *log)
{
    mw__buf_init(&l->b, 16 << 20);
    memset(log, 0, sizeof(*log));
    log->level = MW_LOG_DEBUG;
    log->fn = log_cb;
    log->ud = l;
}

/* ------------------------------------------------------ list answers */

static cJSON *load(const char *name)
{
    char path[512], *text = NULL;
    size_t len;
    cJSON *root;

    snprintf(path, sizeof(path), FIX "%s", name);
    if (mw__read_file(path, 1 << 20, &text, &len) != MW_OK) {
        fprintf(stderr, "cannot read %s\n", path);
        return NULL;
    }
    root = cJSON_ParseWithLength(text, len);
    free(text);
    return root;
}

static const char *resolve_a(void *ud, const char *image)
{
    MW_UNUSED(ud);
    return strcmp(image, ID_A) == 0 ? "app:2" : NULL;
}

/* The recorded list: one running and one exited container of one image. */
static void test_recorded(void)
{
    logcap lc;
    mw__log log;
    recs r = {0};
    mw__source_cbs cbs = {.record = rec_cb, .ud = &r};
    cJSON *list = load("containers_json.json");
    const char *tags = "docker_image:demo/busybox:1.0,image_name:demo/busybox,"
                       "short_image:busybox,image_tag:1.0";

    log_init(&lc, &log);
    CHECK(list != NULL);
    CHECK(mw__docker_counts_report(&cbs, &log, list, NULL, NULL, 1000) == MW_OK);
    CHECK(r.n == 4);
    CHECK(has_gauge(&r, MW_DOCKER_RUNNING, "1", 1000, "-", tags));
    CHECK(has_gauge(&r, MW_DOCKER_STOPPED, "1", 1000, "-", tags));
    CHECK(has_gauge(&r, MW_DOCKER_RUNNING_TOTAL, "1", 1000, "-", ""));
    CHECK(has_gauge(&r, MW_DOCKER_STOPPED_TOTAL, "1", 1000, "-", ""));
    cJSON_Delete(list);
    recs_free(&r);
    mw__buf_free(&lc.b);
}

/* Every state but running is stopped; ids resolve when known; what has
 * no usable image counts in the totals only. */
static void test_states_and_images(void)
{
    static const char *const list_json = "[{\"Image\":\"redis:7\",\"State\":\"running\"},"
                                         "{\"Image\":\"redis:7\",\"State\":\"created\"},"
                                         "{\"Image\":\"redis:7\",\"State\":\"restarting\"},"
                                         "{\"Image\":\"redis:7\",\"State\":\"paused\"},"
                                         "{\"Image\":\"redis:7\",\"State\":\"exited\"},"
                                         "{\"Image\":\"redis:7\",\"State\":\"dead\"},"
                                         "{\"Image\":\"redis:7\",\"State\":\"removing\"},"
                                         "{\"Image\":\"redis:7\"},"
                                         "{\"Image\":\"" ID_A "\",\"State\":\"running\"},"
                                         "{\"Image\":\"app:2\",\"State\":\"exited\"},"
                                         "{\"Image\":\"" ID_B "\",\"State\":\"running\"},"
                                         "{\"State\":\"running\"},"
                                         "{\"Image\":\"\",\"State\":\"exited\"},"
                                         "{\"Image\":\":bad\",\"State\":\"exited\"},"
                                         "\"not a container\","
                                         "{\"Image\":\"redis:7\",\"State\":\"running\"}]";
    logcap lc;
    mw__log log;
    recs r = {0};
    mw__source_cbs cbs = {.record = rec_cb, .ud = &r};
    cJSON *list = cJSON_Parse(list_json);

    log_init(&lc, &log);
    CHECK(mw__docker_counts_report(&cbs, &log, list, resolve_a, NULL, 7) == MW_OK);
    CHECK(has_gauge(&r, MW_DOCKER_RUNNING, "2", 7, "-",
                    "docker_image:redis:7,image_name:redis,short_image:redis,image_tag:7"));
    CHECK(has_gauge(&r, MW_DOCKER_STOPPED, "7", 7, "-",
                    "docker_image:redis:7,image_name:redis,short_image:redis,image_tag:7"));
    /* The id resolved joins its image's name. */
    CHECK(has_gauge(&r, MW_DOCKER_RUNNING, "1", 7, "-",
                    "docker_image:app:2,image_name:app,short_image:app,image_tag:2"));
    CHECK(has_gauge(&r, MW_DOCKER_STOPPED, "1", 7, "-",
                    "docker_image:app:2,image_name:app,short_image:app,image_tag:2"));
    /* An unknown id stands for its names, as in a service's tags. */
    CHECK(has_gauge(&r, MW_DOCKER_RUNNING, "1", 7, "-",
                    "docker_image:" ID_B ",image_name:" ID_B ",short_image:" ID_B
                    ",image_tag:latest"));
    CHECK(has_gauge(&r, MW_DOCKER_RUNNING_TOTAL, "5", 7, "-", ""));
    CHECK(has_gauge(&r, MW_DOCKER_STOPPED_TOTAL, "10", 7, "-", ""));
    CHECK(r.n == 7); /* no gauge for a count of 0, none without an image */
    CHECK(recs_with(&r, ":bad") == 0);
    CHECK(log_lines(&lc, "debug", "image ':bad' is not a usable reference") == 1);
    cJSON_Delete(list);
    recs_free(&r);

    /* Nothing listed: the totals alone, at 0. */
    list = cJSON_Parse("[]");
    CHECK(mw__docker_counts_report(&cbs, &log, list, NULL, NULL, 8) == MW_OK);
    CHECK(r.n == 2 && has_gauge(&r, MW_DOCKER_RUNNING_TOTAL, "0", 8, "-", "") &&
          has_gauge(&r, MW_DOCKER_STOPPED_TOTAL, "0", 8, "-", ""));
    cJSON_Delete(list);
    recs_free(&r);
    mw__buf_free(&lc.b);
}

static void test_refused_and_bad(void)
{
    logcap lc;
    mw__log log;
    recs r = {0};
    mw__source_cbs cbs = {.record = rec_cb, .ud = &r};
    cJSON *list = cJSON_Parse("[{\"Image\":\"redis:7\",\"State\":\"running\"}]");

    log_init(&lc, &log);
    r.refuse = 1; /* the first gauge is refused, the others still go */
    CHECK(mw__docker_counts_report(&cbs, &log, list, NULL, NULL, 9) == MW_OK);
    CHECK(r.n == 2 && recs_count(&r, "m|" MW_DOCKER_RUNNING "|") == 0);
    CHECK(log_lines(&lc, "warn", "1 container count gauges dropped") == 1);
    cJSON_Delete(list);
    recs_free(&r);

    list = cJSON_Parse("{\"message\":\"not a list\"}");
    CHECK(mw__docker_counts_report(&cbs, &log, list, NULL, NULL, 9) == MW_EPARSE);
    CHECK(mw__docker_counts_report(&cbs, &log, NULL, NULL, NULL, 9) == MW_EPARSE);
    CHECK(r.n == 0);
    cJSON_Delete(list);
    mw__buf_free(&lc.b);
}

/* ----------------------------------------------------- against the fake */

typedef struct harness {
    mw__loop *loop;
    mw__http *http;
    mw__fdd *fdd;
    mw__docker *d;
    mw__aggregator *agg;
    mw__log log;
    logcap lc;
    char sock[108];
    size_t syncs, downs;
    uint64_t lists_at_down, lists_at_sync; /* the fake's lists served then */
} harness;

static int counter;

static void cb_synced(void *ud)
{
    harness *h = ud;

    h->syncs++;
    h->lists_at_sync = mw__fdd_count(h->fdd, MW_FDD_EP_LIST);
}

static void cb_connected(void *ud, int up, const char *why)
{
    harness *h = ud;

    MW_UNUSED(why);
    if (up)
        return;
    h->downs++;
    h->lists_at_down = mw__fdd_count(h->fdd, MW_FDD_EP_LIST);
}

/* What the engine does with the source's records (core/engine.c
 * disc_record): under its host name, into the aggregator. */
static mw_code cb_record(void *ud, const mw_record *rec)
{
    harness *h = ud;
    mw_record r = *rec;

    if (!r.host)
        r.host = mw__agg_host(h->agg);
    return mw__agg_record(h->agg, &r);
}

static int h_fake(harness *h)
{
    mw__fdd_opts fo = {0};
    mw__agg_opts ao = {0};
    char *err = NULL;

    memset(h, 0, sizeof(*h));
    snprintf(h->sock, sizeof(h->sock), "/tmp/mw-dcnt-%d-%d.sock", (int)getpid(), ++counter);
    fo.socket_path = h->sock;
    h->fdd = mw__fdd_new(&fo, &err);
    if (!h->fdd) {
        fprintf(stderr, "fake engine: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    h->loop = t_loop();
    h->http = t_http(h->loop);
    log_init(&h->lc, &h->log);
    ao.host = "test-host";
    h->agg = mw__agg_new(&ao);
    return h->agg ? 0 : -1;
}

static int h_source(harness *h, const mw__filter *filter)
{
    mw__docker_opts o = {0};
    char host[160], *err = NULL;

    snprintf(host, sizeof(host), "unix://%s", h->sock);
    o.host = host;
    o.loop = h->loop;
    o.http = h->http;
    o.log = &h->log;
    o.filter = filter;
    o.request_timeout = 5;
    o.service_up_interval = INTERVAL;
    o.self_id = "";
    o.cbs.synced = cb_synced;
    o.cbs.connected = cb_connected;
    o.cbs.record = cb_record;
    o.cbs.ud = h;
    if (mw__docker_new(&o, &h->d, &err) != MW_OK) {
        fprintf(stderr, "mw__docker_new: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    return 0;
}

static void h_stop(harness *h)
{
    mw__docker_free(h->d);
    mw__http_free(h->http);
    CHECK(h->loop == NULL || mw__loop_timers(h->loop) == 0);
    mw__loop_free(h->loop);
    mw__agg_free(h->agg);
    mw__fdd_free(h->fdd);
    mw__buf_free(&h->lc.b);
}

static uint64_t counts_made(harness *h)
{
    mw__docker_stats st;

    mw__docker_stats_get(h->d, &st);
    return st.counts;
}

typedef int (*pred_fn)(harness *h, uint64_t arg);

/* Runs the loop until `pred` holds, at most WAIT_MS. */
static int run_until(harness *h, pred_fn pred, uint64_t arg)
{
    double end = mw__mono() + WAIT_MS / 1000.0;

    while (mw__mono() < end) {
        if (pred(h, arg))
            return 1;
        mw__loop_run_once(h->loop, 5);
    }
    return pred(h, arg);
}

static int p_counts(harness *h, uint64_t n)
{
    return counts_made(h) >= n;
}

static int p_syncs(harness *h, uint64_t n)
{
    return h->syncs >= n;
}

static int p_lists(harness *h, uint64_t n)
{
    return mw__fdd_count(h->fdd, MW_FDD_EP_LIST) >= n;
}

static void collect(const mw_record *r, void *ud)
{
    recs_add(ud, r);
}

static void flush(harness *h, recs *c)
{
    recs_free(c);
    c->no_ts = 1; /* a gauge is stamped with the flush's time */
    mw__agg_flush(h->agg, mw__wall(), collect, c);
}

/*
 * The records of a count made after everything the test changed: the
 * count in flight when it changed may hold the old state, so one more is
 * awaited, the records up to it flushed away, and then the next one's
 * flushed into `c` (the loop does not run in between, so nothing else
 * lands there but its service check).
 */
static int fresh(harness *h, recs *c)
{
    if (!run_until(h, p_counts, counts_made(h) + 1))
        return 0;
    flush(h, c);
    if (!run_until(h, p_counts, counts_made(h) + 1))
        return 0;
    flush(h, c);
    return 1;
}

static int run_ctr(harness *h, const char *name, const char *image)
{
    mw__fdd_spec s = {0};

    s.name = name;
    s.image = image;
    if (mw__fdd_run(h->fdd, &s, NULL) != 0) {
        fprintf(stderr, "fdd run %s: %s\n", name, mw__fdd_error(h->fdd));
        return -1;
    }
    return 0;
}

/* Gauges per image as Datadog's check makes them, through the aggregator,
 * as the containers come and go. */
static void test_live(void)
{
    harness h;
    recs r = {0};
    mw__diag diag = {0};
    mw__filter *f = mw__filter_new(NULL, "name:^skip-", "test exclude", &diag);
    mw__fdd_spec created = {.name = "web-new", .image = "demo/web:1.0"};

    CHECK(f != NULL && diag.n == 0);
    CHECK(h_fake(&h) == 0);
    CHECK(run_ctr(&h, "redis-a", "demo/redis:7") == 0);
    CHECK(run_ctr(&h, "redis-b", "demo/redis:7") == 0);
    CHECK(run_ctr(&h, "redis-old", "demo/redis:7") == 0);
    CHECK(mw__fdd_stop(h.fdd, "redis-old") == 0);
    CHECK(run_ctr(&h, "web-1", "demo/web:1.0") == 0);
    CHECK(mw__fdd_create(h.fdd, &created, NULL) == 0);
    CHECK(run_ctr(&h, "skip-web", "demo/web:1.0") == 0);
    CHECK(h_source(&h, f) == 0);
    CHECK(run_until(&h, p_syncs, 1));
    CHECK(mw__docker_count(h.d) == 3); /* skip-web is no service... */

    CHECK(fresh(&h, &r));
    CHECK(has_gauge(&r, MW_DOCKER_RUNNING, "2", 0, "test-host", REDIS_TAGS));
    CHECK(has_gauge(&r, MW_DOCKER_STOPPED, "1", 0, "test-host", REDIS_TAGS));
    CHECK(has_gauge(&r, MW_DOCKER_RUNNING, "2", 0, "test-host", WEB_TAGS)); /* ...but counts */
    CHECK(has_gauge(&r, MW_DOCKER_STOPPED, "1", 0, "test-host", WEB_TAGS)); /* created */
    CHECK(has_gauge(&r, MW_DOCKER_RUNNING_TOTAL, "4", 0, "test-host", ""));
    CHECK(has_gauge(&r, MW_DOCKER_STOPPED_TOTAL, "2", 0, "test-host", ""));
    CHECK(recs_count(&r, "m|docker.containers.") == 6);
    CHECK(recs_count(&r, "sc|docker.service_up|0|") >= 1);

    /* One stops, one pauses: both move to the stopped count, and the
     * image with no running container left has no running gauge. */
    CHECK(mw__fdd_stop(h.fdd, "redis-a") == 0);
    CHECK(mw__fdd_pause(h.fdd, "redis-b") == 0);
    CHECK(fresh(&h, &r));
    CHECK(recs_count(&r, "m|" MW_DOCKER_RUNNING "|") == 1); /* web's alone */
    CHECK(has_gauge(&r, MW_DOCKER_STOPPED, "3", 0, "test-host", REDIS_TAGS));
    CHECK(has_gauge(&r, MW_DOCKER_RUNNING, "2", 0, "test-host", WEB_TAGS));
    CHECK(has_gauge(&r, MW_DOCKER_RUNNING_TOTAL, "2", 0, "test-host", ""));
    CHECK(has_gauge(&r, MW_DOCKER_STOPPED_TOTAL, "4", 0, "test-host", ""));

    /* The last containers of an image removed: the image is not reported. */
    CHECK(mw__fdd_destroy(h.fdd, "web-1") == 0);
    CHECK(mw__fdd_destroy(h.fdd, "web-new") == 0);
    CHECK(mw__fdd_destroy(h.fdd, "skip-web") == 0);
    CHECK(fresh(&h, &r));
    CHECK(recs_with(&r, "demo/web") == 0);
    CHECK(has_gauge(&r, MW_DOCKER_STOPPED, "3", 0, "test-host", REDIS_TAGS));
    CHECK(has_gauge(&r, MW_DOCKER_RUNNING_TOTAL, "0", 0, "test-host", ""));
    CHECK(has_gauge(&r, MW_DOCKER_STOPPED_TOTAL, "3", 0, "test-host", ""));
    CHECK(recs_count(&r, "m|docker.containers.") == 3);

    /* Started again: back to running. */
    CHECK(mw__fdd_start(h.fdd, "redis-a") == 0);
    CHECK(fresh(&h, &r));
    CHECK(has_gauge(&r, MW_DOCKER_RUNNING, "1", 0, "test-host", REDIS_TAGS));
    CHECK(has_gauge(&r, MW_DOCKER_STOPPED, "2", 0, "test-host", REDIS_TAGS));
    CHECK(h.downs == 0 && h.syncs == 1);
    recs_free(&r);
    h_stop(&h);
    mw__filter_free(f);
    mw__diag_free(&diag);
}

/* Waits until `n` more lists were served, then for one count made after
 * them. */
static int after_lists(harness *h, uint64_t n)
{
    if (!run_until(h, p_lists, mw__fdd_count(h->fdd, MW_FDD_EP_LIST) + n))
        return 0;
    return run_until(h, p_counts, counts_made(h) + 1);
}

/* A list that fails sends no counts that time and is said once; the
 * connection, the services and docker.service_up are left alone. */
static void test_errors(void)
{
    harness h;
    recs r = {0};
    const char *not_sent = "container counts not sent: GET /containers/json?all=1";

    CHECK(h_fake(&h) == 0);
    CHECK(run_ctr(&h, "a", "demo/redis:7") == 0);
    CHECK(h_source(&h, NULL) == 0);
    CHECK(run_until(&h, p_syncs, 1));
    CHECK(fresh(&h, &r));
    CHECK(has_gauge(&r, MW_DOCKER_RUNNING_TOTAL, "1", 0, "test-host", ""));

    CHECK(mw__fdd_fail_next(h.fdd, MW_FDD_EP_LIST, 500, NULL, 3) == 0);
    CHECK(after_lists(&h, 3));
    CHECK(log_lines(&h.lc, "warn", not_sent) == 1);
    CHECK(log_lines(&h.lc, "warn", "HTTP 500: injected failure") == 1);
    CHECK(log_lines(&h.lc, "debug", not_sent) == 2);
    CHECK(log_lines(&h.lc, "info", "container counts are sent again") == 1);

    /* Cut short, then not a list: each a new outage, said once more. */
    CHECK(mw__fdd_truncate_next(h.fdd, MW_FDD_EP_LIST, 10) == 0);
    CHECK(after_lists(&h, 1));
    CHECK(mw__fdd_fail_next(h.fdd, MW_FDD_EP_LIST, 200, "{\"Id\":\"x\"}", 1) == 0);
    CHECK(after_lists(&h, 1));
    CHECK(log_lines(&h.lc, "warn", not_sent) == 3);
    CHECK(log_lines(&h.lc, "warn", "not a JSON array") == 1);
    CHECK(log_lines(&h.lc, "info", "container counts are sent again") == 3);

    CHECK(h.downs == 0 && h.syncs == 1 && mw__docker_count(h.d) == 1);
    CHECK(fresh(&h, &r));
    CHECK(recs_count(&r, "sc|docker.service_up|0|") >= 1);
    CHECK(recs_count(&r, "sc|docker.service_up|2|") == 0);
    CHECK(has_gauge(&r, MW_DOCKER_RUNNING, "1", 0, "test-host", REDIS_TAGS));
    recs_free(&r);
    h_stop(&h);
}

/* A slow list is never asked twice at once; a sync asks for none. */
static void test_one_at_a_time(void)
{
    harness h;
    uint64_t n;

    CHECK(h_fake(&h) == 0);
    CHECK(run_ctr(&h, "a", NULL) == 0);
    CHECK(h_source(&h, NULL) == 0);
    CHECK(run_until(&h, p_syncs, 1));

    /* Each list takes 6 intervals: the ticks meanwhile are skipped. */
    CHECK(mw__fdd_set_latency(h.fdd, MW_FDD_EP_LIST, 300) == 0);
    n = counts_made(&h);
    CHECK(run_until(&h, p_counts, n + 2));
    CHECK(log_lines(&h.lc, "debug", "container counts skipped: the last list is still") >= 1);
    CHECK(mw__fdd_set_latency(h.fdd, MW_FDD_EP_LIST, 0) == 0);

    /* A resync whose inspect takes 10 intervals: its own list only (and
     * at most one count that was on its way as the stream went). */
    CHECK(mw__fdd_set_latency(h.fdd, MW_FDD_EP_INSPECT, 500) == 0);
    CHECK(mw__fdd_close_streams(h.fdd, 0) >= 1);
    CHECK(run_until(&h, p_syncs, 2));
    CHECK(h.downs == 1);
    CHECK(h.lists_at_sync - h.lists_at_down <= 2);
    CHECK(mw__fdd_set_latency(h.fdd, MW_FDD_EP_INSPECT, 0) == 0);
    CHECK(run_until(&h, p_counts, counts_made(&h) + 1)); /* and counts again */
    h_stop(&h);
}

int main(void)
{
    test_recorded();
    test_states_and_images();
    test_refused_and_bad();
    test_live();
    test_errors();
    test_one_at_a_time();
    return TEST_RESULT();
}
