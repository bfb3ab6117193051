/*
 * test_docker_source.c - the Docker source against the fake engine
 * (tests/support/fake_dockerd.h): DOCKER_HOST parsing and the own
 * container id (fixtures in tests/fixtures/docker/source/), then, with
 * the loop driven by mw__loop_run_once() in bounded runs: the initial
 * sync, a container started or stopped during the sync, the lifecycle
 * events, malformed and split event lines, 404 on inspect, health and
 * label changes, coalesced inspects that a later die overtakes, stream
 * loss with resume, an engine restart, the filter, image ids, version
 * negotiation, one-shot mode, and what reaches the aggregator.
 *
 * Each harness records the source's callbacks in a small table of ids
 * (upserts per id, live or not), so the tests compare that table with the
 * set the fake engine is running.
 */
#include "core/pipeline/aggregator.h"
#include "core/base/buf.h"
#include "core/base/http.h"
#include "core/base/loop.h"
#include "core/base/util.h"
#include "discovery/docker/docker.h"
#include "discovery/docker/docker_events.h"
#include "discovery/filter.h"
#include "tests/support/fake_dockerd.h"
#include "test.h"
#include "tests/support/make.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#define FIX     MW_TEST_FIXTURES "/docker/source"
#define WAIT_MS 10000 /* any single wait; the suite takes a few seconds */
#define MAXSEEN 256

/* ------------------------------------------------------------ harness */

typedef struct seen {
    char id[80];
    char name[128];
    int live;
    int upserts;
    int provisional_upserts; /* built from the create inspect, pid 0 */
    uint64_t digest;
    long pid;
} seen;

typedef struct harness {
    mw__loop *loop;
    mw__http *http;
    mw__fdd *fdd;
    mw__docker *d;
    mw__aggregator *agg;
    mw__log log;
    char sock[108];
    char logpath[128];
    seen s[MAXSEEN];
    size_t ns;
    size_t upserts, removes, syncs, ups, downs;
    char why[512];
} harness;

static int counter;

static seen *seen_find(harness *h, const char *id, int make)
{
    for (size_t i = 0; i < h->ns; i++)
        if (strcmp(h->s[i].id, id) == 0)
            return &h->s[i];
    if (!make || h->ns == MAXSEEN)
        return NULL;
    snprintf(h->s[h->ns].id, sizeof(h->s[h->ns].id), "%s", id);
    return &h->s[h->ns++];
}

static void cb_upsert(void *ud, const mw__service *svc)
{
    harness *h = ud;
    seen *s = seen_find(h, svc->id, 1);

    h->upserts++;
    if (!s)
        return;
    s->live = 1;
    s->upserts++;
    s->provisional_upserts += svc->provisional;
    s->digest = svc->digest;
    s->pid = svc->pid;
    snprintf(s->name, sizeof(s->name), "%s", svc->name);
}

static void cb_remove(void *ud, const char *id)
{
    harness *h = ud;
    seen *s = seen_find(h, id, 0);

    h->removes++;
    if (s)
        s->live = 0;
}

static void cb_synced(void *ud)
{
    ((harness *)ud)->syncs++;
}

static void cb_connected(void *ud, int up, const char *why)
{
    harness *h = ud;

    if (up) {
        h->ups++;
        h->why[0] = '\0';
    } else {
        h->downs++;
        snprintf(h->why, sizeof(h->why), "%s", why ? why : "(null)");
    }
}

static size_t live_count(harness *h)
{
    size_t n = 0;

    for (size_t i = 0; i < h->ns; i++)
        n += h->s[i].live;
    return n;
}

static char *docker_id(const char *cid)
{
    static char buf[4][80];
    static int k;

    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "docker://%s", cid);
    return buf[k];
}

/* Live in the callbacks' view and held by the source. */
static int has(harness *h, const char *cid)
{
    seen *s = seen_find(h, docker_id(cid), 0);
    return s && s->live && mw__docker_get(h->d, docker_id(cid)) != NULL;
}

static int upserts_of(harness *h, const char *cid)
{
    seen *s = seen_find(h, docker_id(cid), 0);
    return s ? s->upserts : 0;
}

typedef int (*pred_fn)(harness *h, const void *arg);

/* Runs the loop until `pred` holds, at most WAIT_MS and 200000 rounds. */
static int run_until(harness *h, pred_fn pred, const void *arg)
{
    double end = mw__mono() + WAIT_MS / 1000.0;

    for (int i = 0; i < 200000 && mw__mono() < end; i++) {
        if (pred(h, arg))
            return 1;
        mw__loop_run_once(h->loop, 5);
    }
    return pred(h, arg);
}

/* Runs the loop for `ms` milliseconds, whatever happens. */
static void run_for(harness *h, int ms)
{
    double end = mw__mono() + ms / 1000.0;

    while (mw__mono() < end)
        mw__loop_run_once(h->loop, 5);
}

static int p_syncs(harness *h, const void *arg)
{
    return h->syncs >= *(const size_t *)arg;
}

static int p_has(harness *h, const void *arg)
{
    return has(h, arg);
}

static int p_gone(harness *h, const void *arg)
{
    return !has(h, arg);
}

static int p_downs(harness *h, const void *arg)
{
    return h->downs >= *(const size_t *)arg;
}

static int p_events(harness *h, const void *arg)
{
    mw__docker_stats st;
    mw__docker_stats_get(h->d, &st);
    return st.events >= *(const uint64_t *)arg;
}

static int p_inspects(harness *h, const void *arg)
{
    mw__docker_stats st;
    mw__docker_stats_get(h->d, &st);
    return st.inspects >= *(const uint64_t *)arg;
}

static int p_fdd_list(harness *h, const void *arg)
{
    return mw__fdd_count(h->fdd, MW_FDD_EP_LIST) >= *(const uint64_t *)arg;
}

static int p_fdd_inspect(harness *h, const void *arg)
{
    return mw__fdd_count(h->fdd, MW_FDD_EP_INSPECT) >= *(const uint64_t *)arg;
}

static int wait_syncs(harness *h, size_t n)
{
    return run_until(h, p_syncs, &n);
}

static uint64_t stat_events(harness *h)
{
    mw__docker_stats st;
    mw__docker_stats_get(h->d, &st);
    return st.events;
}

/* Waits until `n` more events than now were applied. */
static int wait_more_events(harness *h, uint64_t before, uint64_t n)
{
    uint64_t want = before + n;
    return run_until(h, p_events, &want);
}

typedef void (*tweak_fn)(mw__docker_opts *o, void *ud);

/* The fake engine only; the source is started by h_source(). */
static int h_fake(harness *h, const char *api, const char *min_api)
{
    mw__fdd_opts fo = {0};
    char *err = NULL;

    memset(h, 0, sizeof(*h));
    snprintf(h->sock, sizeof(h->sock), "/tmp/mw-dsrc-%d-%d.sock", (int)getpid(), ++counter);
    snprintf(h->logpath, sizeof(h->logpath), "/tmp/mw-dsrc-%d-%d.log", (int)getpid(), counter);
    fo.socket_path = h->sock;
    fo.api_version = api;
    fo.min_api_version = min_api;
    h->fdd = mw__fdd_new(&fo, &err);
    if (!h->fdd) {
        fprintf(stderr, "fake engine: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    h->loop = t_loop();
    h->http = t_http(h->loop);
    h->log.level = MW_LOG_DEBUG;
    h->log.fd = getenv("MW_TEST_VERBOSE")
                    ? 2
                    : open(h->logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    return h->loop && h->http && h->log.fd >= 0 ? 0 : -1;
}

/* What the engine does with the source's records: queued for the next
 * flush under its host name (here the aggregator's). */
static mw_code cb_record(void *ud, const mw_record *rec)
{
    harness *h = ud;
    mw_record r = *rec;
    if (!r.host)
        r.host = mw__agg_host(h->agg);
    return mw__agg_record(h->agg, &r);
}

static int h_source(harness *h, tweak_fn tweak, void *ud)
{
    mw__docker_opts o = {0};
    char host[160], *err = NULL;

    snprintf(host, sizeof(host), "unix://%s", h->sock);
    o.host = host;
    o.loop = h->loop;
    o.http = h->http;
    o.log = &h->log;
    o.request_timeout = 5;
    o.self_id = "";
    o.cbs.upsert = cb_upsert;
    o.cbs.remove = cb_remove;
    o.cbs.synced = cb_synced;
    o.cbs.connected = cb_connected;
    o.cbs.record = h->agg ? cb_record : NULL;
    o.cbs.ud = h;
    if (tweak)
        tweak(&o, ud);
    if (mw__docker_new(&o, &h->d, &err) != MW_OK) {
        fprintf(stderr, "mw__docker_new: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    return 0;
}

/* Fake engine and source, synced once. */
static int h_start(harness *h, tweak_fn tweak, void *ud)
{
    if (h_fake(h, NULL, NULL) != 0 || h_source(h, tweak, ud) != 0)
        return -1;
    return wait_syncs(h, 1) ? 0 : -1;
}

static void h_stop(harness *h)
{
    mw__docker_free(h->d);
    mw__http_free(h->http);
    CHECK(h->loop == NULL || mw__loop_timers(h->loop) == 0);
    mw__loop_free(h->loop);
    mw__agg_free(h->agg);
    mw__fdd_free(h->fdd);
    if (h->log.fd > 2)
        close(h->log.fd);
    unlink(h->logpath);
}

/* The source's log so far (caller frees). */
static char *h_log(harness *h)
{
    size_t len;
    char *s = NULL;
    mw__read_file(h->logpath, 16 << 20, &s, &len);
    return s ? s : mw__strdup("");
}

static int log_has(harness *h, const char *needle)
{
    char *s = h_log(h);
    int found = strstr(s, needle) != NULL;

    if (!found && getenv("MW_TEST_VERBOSE") == NULL)
        fprintf(stderr, "log lacks \"%s\"; log:\n%s\n", needle, s);
    free(s);
    return found;
}

static int run_ctr(harness *h, const char *name, const char *health, char id[65])
{
    mw__fdd_spec s = {0};

    s.name = name;
    s.health = health;
    if (mw__fdd_run(h->fdd, &s, id) != 0) {
        fprintf(stderr, "fdd run %s: %s\n", name, mw__fdd_error(h->fdd));
        return -1;
    }
    return 0;
}

/* A GET straight to the fake, for what the tests need to know of it. */
typedef struct fetch_st {
    int done;
    long status;
    char *body;
} fetch_st;

static void fetch_done(void *ud, const mw__http_result *r)
{
    fetch_st *f = ud;

    f->done = 1;
    f->status = r->status;
    f->body = mw__strndup(r->body, r->len);
}

static int p_fetched(harness *h, const void *arg)
{
    MW_UNUSED(h);
    return ((const fetch_st *)arg)->done;
}

static char *fetch(harness *h, const char *path)
{
    mw__http_opts o = {0};
    fetch_st f = {0};
    char *url = mw__sprintf("http://localhost%s", path), *err = NULL;

    o.url = url;
    o.unix_socket = h->sock;
    o.timeout = 5;
    o.done = fetch_done;
    o.ud = &f;
    if (!mw__http_start(h->http, &o, &err)) {
        fprintf(stderr, "fetch %s: %s\n", path, err ? err : "?");
        free(err);
        free(url);
        return NULL;
    }
    free(url);
    run_until(h, p_fetched, &f);
    if (f.status != 200) {
        free(f.body);
        return NULL;
    }
    return f.body;
}

/* --------------------------------------------------------- pure parts */

static void test_host_parse(void)
{
    static const struct {
        const char *in, *url, *sock, *err;
    } cases[] = {
        {"unix:///var/run/docker.sock", "http://localhost", "/var/run/docker.sock", NULL},
        {"unix:///tmp/x.sock", "http://localhost", "/tmp/x.sock", NULL},
        {"tcp://127.0.0.1:2375", "http://127.0.0.1:2375", NULL, NULL},
        {"tcp://localhost", "http://localhost:2375", NULL, NULL},
        {"tcp://127.0.0.2:12375/", "http://127.0.0.2:12375", NULL, NULL},
        {"tcp://[::1]:2376", "http://[::1]:2376", NULL, NULL},
        {"ssh://user@host", NULL, NULL, "unsupported"},
        {"npipe:////./pipe/docker_engine", NULL, NULL, "unsupported"},
        {"http://127.0.0.1:2375", NULL, NULL, "unsupported"},
        {"unix://", NULL, NULL, "no socket path"},
        {"tcp://", NULL, NULL, "empty host"},
        {"tcp://:2375", NULL, NULL, "empty host"},
        {"tcp://127.0.0.1:99999", NULL, NULL, "port"},
        {"tcp://127.0.0.1:12ab", NULL, NULL, "bad port"},
        {"tcp://127.0.0.1:2375/path", NULL, NULL, "unexpected path"},
        {"tcp://127.0.0.1:2375/", "http://127.0.0.1:2375", NULL, NULL},
        {"tcp://127.0.0.1;rm", NULL, NULL, "unexpected character"},
        {"tcp://[::1", NULL, NULL, "missing ']'"},
        {"", NULL, NULL, "empty"},
    };
    char longpath[200];

    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        char *url = NULL, *sock = NULL, *err = NULL;
        mw_code rc = mw__docker_host_parse(cases[i].in, &url, &sock, &err);
        if (cases[i].url) {
            CHECK(rc == MW_OK);
            CHECK_STR(url, cases[i].url);
            CHECK(cases[i].sock ? sock && strcmp(sock, cases[i].sock) == 0 : sock == NULL);
            CHECK(err == NULL);
        } else {
            CHECK(rc == MW_EINVAL);
            CHECK(url == NULL && sock == NULL);
            CHECK(err && strstr(err, cases[i].err));
            /* the message names the value it refused */
            CHECK(err && (!*cases[i].in || strstr(err, cases[i].in)));
        }
        free(url);
        free(sock);
        free(err);
    }

    /* A socket path that cannot fit sun_path is refused up front. */
    memset(longpath, 'a', sizeof(longpath));
    memcpy(longpath, "unix:///", 8);
    longpath[sizeof(longpath) - 1] = '\0';
    {
        char *url = NULL, *sock = NULL, *err = NULL;
        CHECK(mw__docker_host_parse(longpath, &url, &sock, &err) == MW_EINVAL);
        CHECK(err && strstr(err, "longer than 107"));
        free(err);
    }
}

static char *fixture(const char *name)
{
    char path[512];
    size_t len;

    snprintf(path, sizeof(path), "%s/%s", FIX, name);
    char *text = NULL;
    mw__read_file(path, 1 << 20, &text, &len);
    return text;
}

static void test_self_id(void)
{
    static const struct {
        const char *file;
        int found;
    } cases[] = {
        {"cgroup_v1.txt", 1},         {"mountinfo_v2.txt", 1}, {"cgroup_systemd.txt", 1},
        {"cgroup_v2_private.txt", 0}, {"cgroup_host.txt", 0},  {"mountinfo_host.txt", 0},
    };
    char *want = fixture("self_id.txt");

    CHECK(want != NULL);
    if (!want)
        return;
    want[strcspn(want, "\n")] = '\0';
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        char *text = fixture(cases[i].file), out[65] = "";
        CHECK(text != NULL);
        CHECK(mw__docker_self_id_parse(text, out) == cases[i].found);
        if (cases[i].found)
            CHECK_STR(out, want);
        free(text);
    }
    free(want);
}

/* ---------------------------------------------------------- sync */

typedef struct sync_tweak {
    size_t max_inflight;
    const char *self_id;
} sync_tweak;

static void tweak_sync(mw__docker_opts *o, void *ud)
{
    sync_tweak *t = ud;
    o->max_inflight = t->max_inflight;
    o->self_id = t->self_id;
}

static int p_synced_watch(harness *h, const void *arg)
{
    size_t *max_active = (size_t *)arg;
    size_t a = mw__http_active(h->http);

    if (a > *max_active)
        *max_active = a;
    return h->syncs >= 1;
}

static void test_initial_sync(void)
{
    harness h;
    char self[65], paused[65], created[65], any[65];
    mw__fdd_spec s = {0};
    mw__docker_stats st;
    mw__fdd_request req;
    sync_tweak tw = {4, self};
    size_t max_active = 0;

    CHECK(h_fake(&h, NULL, NULL) == 0);
    CHECK(mw__fdd_bulk_create(h.fdd, 20, NULL, 0) == 0);
    CHECK(run_ctr(&h, "me", NULL, self) == 0);
    CHECK(run_ctr(&h, "sleepy", NULL, paused) == 0);
    CHECK(mw__fdd_pause(h.fdd, "sleepy") == 0);
    s.name = "never-started";
    CHECK(mw__fdd_create(h.fdd, &s, created) == 0);
    CHECK(mw__fdd_set_latency(h.fdd, MW_FDD_EP_INSPECT, 20) == 0);
    CHECK(h_source(&h, tweak_sync, &tw) == 0);
    CHECK(run_until(&h, p_synced_watch, &max_active));

    /* 20 services: not the paused one, the created one, or our own. */
    CHECK(h.syncs == 1);
    CHECK(h.ups == 1 && h.downs == 0);
    CHECK(mw__docker_count(h.d) == 20);
    CHECK(live_count(&h) == 20);
    CHECK(h.upserts == 20 && h.removes == 0);
    CHECK(!has(&h, self) && !has(&h, paused) && !has(&h, created));
    CHECK(mw__fdd_resolve(h.fdd, "bulk-7", any) == 0);
    CHECK(has(&h, any));
    CHECK_STR(mw__docker_get(h.d, docker_id(any))->name, "bulk-7");
    CHECK(mw__docker_get(h.d, "docker://nope") == NULL);
    CHECK(mw__docker_get(h.d, any) == NULL); /* ids carry the scheme */

    /* Bounded concurrency: 4 inspects and the events stream at most. */
    CHECK(max_active >= 2 && max_active <= 5);

    mw__docker_stats_get(h.d, &st);
    CHECK(st.connected == 1);
    CHECK(st.syncs == 1);
    CHECK(st.inspects == 20);
    CHECK(st.reconnects == 0);
    CHECK_STR(st.api_version, "1.41");

    /* The stream filtered to containers, opened without since. */
    CHECK(mw__fdd_last_request(h.fdd, MW_FDD_EP_EVENTS, &req) == 0);
    CHECK_STR(req.version, "1.41");
    CHECK(strstr(req.target, "filters=") != NULL);
    CHECK(strstr(req.target, "container") != NULL);
    CHECK(strstr(req.target, "since=") == NULL);
    CHECK(mw__fdd_last_request(h.fdd, MW_FDD_EP_VERSION, &req) == 0);
    CHECK_STR(req.version, "");
    {
        char want[200];
        snprintf(want, sizeof(want), "docker: connected to unix://%s (API 1.41), 20 containers",
                 h.sock);
        CHECK(log_has(&h, want));
    }
    h_stop(&h);
}

/* Started, and stopped, between the list and the inspects. */
static void test_sync_race(void)
{
    harness h;
    char a[65], b[65], c[65];
    uint64_t one = 1;

    CHECK(h_fake(&h, NULL, NULL) == 0);
    CHECK(run_ctr(&h, "a", NULL, a) == 0);
    CHECK(run_ctr(&h, "b", NULL, b) == 0);
    CHECK(mw__fdd_set_latency(h.fdd, MW_FDD_EP_LIST, 300) == 0);
    CHECK(h_source(&h, NULL, NULL) == 0);
    CHECK(run_until(&h, p_fdd_list, &one)); /* the list's state is taken */
    CHECK(mw__fdd_streams(h.fdd) == 1);
    CHECK(run_ctr(&h, "c", NULL, c) == 0);
    CHECK(mw__fdd_stop(h.fdd, "b") == 0);
    CHECK(wait_syncs(&h, 1));
    CHECK(h.syncs == 1);

    /* synced means: the set is the engine's, c included, b gone. */
    CHECK(has(&h, a) && has(&h, c) && !has(&h, b));
    CHECK(mw__docker_count(h.d) == 2);
    CHECK(upserts_of(&h, a) == 1 && upserts_of(&h, c) == 1 && upserts_of(&h, b) == 0);
    h_stop(&h);
}

/* ---------------------------------------------------------- lifecycle */

static void test_lifecycle(void)
{
    harness h;
    char a[65], b[65];
    uint64_t before;
    const char *sighup[] = {"signal", "1", NULL};
    const mw__service *svc;

    CHECK(h_fake(&h, NULL, NULL) == 0);
    CHECK(run_ctr(&h, "a", NULL, a) == 0);
    CHECK(h_source(&h, NULL, NULL) == 0);
    CHECK(wait_syncs(&h, 1));
    CHECK(has(&h, a));

    CHECK(run_ctr(&h, "b", NULL, b) == 0); /* start */
    CHECK(run_until(&h, p_has, b));
    CHECK(upserts_of(&h, b) == 1);

    CHECK(mw__fdd_stop(h.fdd, "b") == 0); /* kill 15, die 0, stop */
    CHECK(run_until(&h, p_gone, b));
    CHECK(h.removes == 1);

    CHECK(mw__fdd_start(h.fdd, "b") == 0);
    CHECK(run_until(&h, p_has, b));
    CHECK(upserts_of(&h, b) == 2);

    CHECK(mw__fdd_pause(h.fdd, "b") == 0); /* paused is not a service */
    CHECK(run_until(&h, p_gone, b));
    CHECK(mw__fdd_unpause(h.fdd, "b") == 0);
    CHECK(run_until(&h, p_has, b));
    CHECK(upserts_of(&h, b) == 3);

    /* A kill whose signal the process survives changes nothing... */
    before = stat_events(&h);
    CHECK(mw__fdd_emit(h.fdd, "b", "kill", sighup) == 0);
    CHECK(wait_more_events(&h, before, 1));
    run_for(&h, 50);
    CHECK(has(&h, b));
    /* ...a fatal one is followed by die, which removes it. */
    CHECK(mw__fdd_kill(h.fdd, "a", 9) == 0);
    CHECK(run_until(&h, p_gone, a));
    CHECK(has(&h, b));

    CHECK(mw__fdd_rename(h.fdd, "b", "b-renamed") == 0); /* new digest */
    before = upserts_of(&h, b);
    run_until(&h, p_has, b);
    {
        double end = mw__mono() + 5;
        while (upserts_of(&h, b) == (int)before && mw__mono() < end)
            mw__loop_run_once(h.loop, 5);
    }
    CHECK(upserts_of(&h, b) == (int)before + 1);
    svc = mw__docker_get(h.d, docker_id(b));
    CHECK(svc && strcmp(svc->name, "b-renamed") == 0);

    CHECK(mw__fdd_destroy(h.fdd, "b-renamed") == 0); /* kill 9, die 137, destroy */
    CHECK(run_until(&h, p_gone, b));

    CHECK(mw__fdd_start(h.fdd, "a") == 0);
    CHECK(run_until(&h, p_has, a));
    CHECK(mw__docker_count(h.d) == 1 && live_count(&h) == 1);
    CHECK(h.syncs == 1 && h.downs == 0);
    h_stop(&h);
}

/* ---------------------------------------------------------- malformed */

static void test_malformed(void)
{
    harness h;
    char a[65], b[65], *lines = fixture("malformed_events.jsonl"), *line, *save = NULL;
    char *die;
    size_t nlines = 0, half;
    mw__docker_stats st;
    uint64_t before;

    CHECK(lines != NULL);
    CHECK(h_fake(&h, NULL, NULL) == 0);
    CHECK(run_ctr(&h, "a", NULL, a) == 0);
    CHECK(run_ctr(&h, "b", NULL, b) == 0);
    CHECK(h_source(&h, NULL, NULL) == 0);
    CHECK(wait_syncs(&h, 1));

    for (line = strtok_r(lines, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        CHECK(mw__fdd_inject_line(h.fdd, line) == 0);
        nlines++;
    }
    CHECK(nlines == 7);

    /* A valid die for a, its line cut in two chunks. */
    die = mw__sprintf("{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":\"%s\","
                      "\"Attributes\":{\"name\":\"a\",\"exitCode\":\"0\"}},\"scope\":\"local\","
                      "\"time\":%lld,\"timeNano\":%lld}\n",
                      a, (long long)(mw__wall()), (long long)(mw__wall() * 1e9));
    half = strlen(die) / 2;
    before = stat_events(&h);
    CHECK(mw__fdd_inject_chunk(h.fdd, die, half) == 0);
    run_for(&h, 50);
    CHECK(stat_events(&h) == before); /* half a line is no event */
    CHECK(has(&h, a));
    CHECK(mw__fdd_inject_chunk(h.fdd, die + half, strlen(die) - half) == 0);
    CHECK(run_until(&h, p_gone, a));

    mw__docker_stats_get(h.d, &st);
    CHECK(st.bad_events == 7);
    CHECK(has(&h, b)); /* nothing else disturbed */
    CHECK(h.downs == 0 && h.syncs == 1);
    /* Each fault named, five of them; the rest held back. */
    CHECK(log_has(&h, "malformed event line skipped: invalid JSON"));
    CHECK(log_has(&h, "malformed event line skipped: missing Actor"));
    CHECK(log_has(&h, "Actor.ID is empty"));
    CHECK(log_has(&h, "Actor.Attributes is not an object"));
    CHECK(log_has(&h, "time is not a non-negative number"));
    {
        char *log = h_log(&h);
        CHECK(strstr(log, "not a JSON object") == NULL);
        free(log);
    }
    free(die);
    free(lines);
    h_stop(&h);
}

/* ---------------------------------------------------------- 404 */

static void test_inspect_404(void)
{
    harness h;
    char a[65], b[65], c[65];
    mw__fdd_spec s = {0};
    uint64_t before;

    CHECK(h_start(&h, NULL, NULL) == 0);
    CHECK(run_ctr(&h, "a", NULL, a) == 0);
    CHECK(run_ctr(&h, "b", NULL, b) == 0);
    CHECK(run_until(&h, p_has, a) && run_until(&h, p_has, b));

    /* a held service whose inspect says 404: gone. */
    CHECK(mw__fdd_inspect_404_once(h.fdd, a) == 0);
    CHECK(mw__fdd_emit(h.fdd, "a", "update", NULL) == 0);
    CHECK(run_until(&h, p_gone, a));
    CHECK(has(&h, b));
    CHECK(log_has(&h, "is gone (404 on inspect)"));

    /* A start whose container is removed before the inspect: never
     * becomes a service. Its create and its start are both inspected. */
    s.name = "c";
    s.id = "c0ffee0000000000000000000000000000000000000000000000000000000001";
    snprintf(c, sizeof(c), "%s", s.id);
    CHECK(mw__fdd_fail_next(h.fdd, MW_FDD_EP_INSPECT, 404,
                            "{\"message\":\"No such container: c0ffee\"}", 2) == 0);
    before = stat_events(&h);
    CHECK(mw__fdd_run(h.fdd, &s, NULL) == 0);
    CHECK(wait_more_events(&h, before, 2)); /* create, start */
    run_for(&h, 100);
    CHECK(!has(&h, c) && upserts_of(&h, c) == 0);
    CHECK(mw__docker_count(h.d) == 1);
    h_stop(&h);
}

/* --------------------------------------------------------------- sweep */

static void tweak_fast_up(mw__docker_opts *o, void *ud)
{
    (void)ud;
    o->service_up_interval = 0.1;
}

static uint64_t tracked(harness *h)
{
    mw__docker_stats st;
    mw__docker_stats_get(h->d, &st);
    return st.tracked;
}

/* Containers that started and went are remembered for the restart-loop
 * window (60 s of event time) only: the periodic sweep forgets them, so
 * churn does not grow the source. */
static void test_sweep(void)
{
    harness h;
    char id[5][65], last[65];
    const char *names[] = {"s0", "s1", "s2", "s3", "s4"};

    CHECK(h_fake(&h, NULL, NULL) == 0);
    mw__fdd_clock_set(h.fdd, (int64_t)1795600000 * 1000000000);
    CHECK(h_source(&h, tweak_fast_up, NULL) == 0);
    CHECK(wait_syncs(&h, 1));
    for (int i = 0; i < 5; i++) {
        CHECK(run_ctr(&h, names[i], NULL, id[i]) == 0);
        CHECK(run_until(&h, p_has, id[i]));
    }
    for (int i = 0; i < 5; i++) {
        CHECK(mw__fdd_stop(h.fdd, names[i]) == 0);
        CHECK(mw__fdd_destroy(h.fdd, names[i]) == 0);
        CHECK(run_until(&h, p_gone, id[i]));
    }
    run_for(&h, 300);
    CHECK(tracked(&h) == 5); /* still within the window */
    mw__fdd_clock_advance(h.fdd, (int64_t)61 * 1000000000);
    CHECK(run_ctr(&h, "later", NULL, last) == 0);
    CHECK(run_until(&h, p_has, last));
    run_for(&h, 300);
    CHECK(tracked(&h) == 1);
    CHECK(mw__docker_count(h.d) == 1);
    h_stop(&h);
}

/* ---------------------------------------------------------- early start */

static int p_full(harness *h, const void *arg)
{
    seen *s = seen_find(h, docker_id(arg), 0);
    return s && s->live && s->upserts >= 2 && s->pid > 0;
}

static int p_inspected(harness *h, const void *arg)
{
    return mw__fdd_count(h->fdd, MW_FDD_EP_INSPECT) >= *(const uint64_t *)arg;
}

/* A container created, then started: its start is known at once from the
 * create inspect (a provisional service, pid 0), then replaced by the
 * full one from the inspect after the start. Events that arrive
 * together (create+start of `docker run`) take the one inspect path. */
static void test_early_start(void)
{
    harness h;
    char e[65];
    mw__fdd_spec s = {0};
    uint64_t before;

    CHECK(h_start(&h, NULL, NULL) == 0);
    s.name = "early";
    before = mw__fdd_count(h.fdd, MW_FDD_EP_INSPECT);
    CHECK(mw__fdd_create(h.fdd, &s, e) == 0);
    before++;
    CHECK(run_until(&h, p_inspected, &before));
    run_for(&h, 100); /* the create inspect's answer is kept */
    CHECK(!has(&h, e));
    CHECK(mw__fdd_start(h.fdd, "early") == 0);
    CHECK(run_until(&h, p_full, e));
    seen *sn = seen_find(&h, docker_id(e), 0);
    CHECK(sn && sn->upserts == 2 && sn->provisional_upserts == 1);
    const mw__service *svc = mw__docker_get(h.d, docker_id(e));
    CHECK(svc && !svc->provisional && svc->pid > 0);

    /* created and destroyed without a start: nothing, nothing kept */
    s.name = "never";
    char n[65];
    before = mw__fdd_count(h.fdd, MW_FDD_EP_INSPECT);
    CHECK(mw__fdd_create(h.fdd, &s, n) == 0);
    before++;
    CHECK(run_until(&h, p_inspected, &before));
    run_for(&h, 100);
    CHECK(mw__fdd_destroy(h.fdd, "never") == 0);
    run_for(&h, 100);
    CHECK(!has(&h, n) && upserts_of(&h, n) == 0);
    CHECK(mw__docker_count(h.d) == 1);
    h_stop(&h);
}

/* ----------------------------------------------------- health, update */

static int p_health(harness *h, const void *arg)
{
    const char *const *want = arg;
    const mw__service *svc = mw__docker_get(h->d, docker_id(want[0]));
    return svc && strcmp(svc->health, want[1]) == 0;
}

static void test_health_and_update(void)
{
    harness h;
    char a[65], *inspect, *path, *body;
    const char *want[2];
    cJSON *root, *labels;
    uint64_t n;
    mw__docker_stats st;

    CHECK(h_start(&h, NULL, NULL) == 0);
    CHECK(run_ctr(&h, "a", "starting", a) == 0);
    CHECK(run_until(&h, p_has, a));
    CHECK(upserts_of(&h, a) == 1);
    CHECK_STR(mw__docker_get(h.d, docker_id(a))->health, "starting");

    /* Health changes: the held copy follows, no upsert. */
    CHECK(mw__fdd_health(h.fdd, "a", "healthy") == 0);
    want[0] = a;
    want[1] = "healthy";
    CHECK(run_until(&h, p_health, want));
    CHECK(upserts_of(&h, a) == 1);

    /* update with nothing changed: inspected, not upserted. */
    mw__docker_stats_get(h.d, &st);
    n = st.inspects + 1;
    CHECK(mw__fdd_emit(h.fdd, "a", "update", NULL) == 0);
    CHECK(run_until(&h, p_inspects, &n));
    run_for(&h, 50);
    CHECK(upserts_of(&h, a) == 1);

    /* update after which the inspect shows a new label: upserted. The
     * fake has no label setter, so the changed inspect is served once. */
    path = mw__sprintf("/v1.41/containers/%s/json", a);
    inspect = fetch(&h, path);
    CHECK(inspect != NULL);
    root = cJSON_Parse(inspect ? inspect : "");
    labels = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "Config"), "Labels");
    if (!cJSON_IsObject(labels)) {
        cJSON_DeleteItemFromObject(cJSON_GetObjectItem(root, "Config"), "Labels");
        labels = cJSON_AddObjectToObject(cJSON_GetObjectItem(root, "Config"), "Labels");
    }
    cJSON_AddStringToObject(labels, "com.example.tier", "gold");
    body = cJSON_PrintUnformatted(root);
    CHECK(body && mw__fdd_fail_next(h.fdd, MW_FDD_EP_INSPECT, 200, body, 1) == 0);
    mw__docker_stats_get(h.d, &st);
    n = st.inspects + 1;
    CHECK(mw__fdd_emit(h.fdd, "a", "update", NULL) == 0);
    CHECK(run_until(&h, p_inspects, &n));
    run_for(&h, 50);
    CHECK(upserts_of(&h, a) == 2);
    {
        const mw__service *svc = mw__docker_get(h.d, docker_id(a));
        CHECK(svc && mw__service_label(svc, "com.example.tier") &&
              strcmp(mw__service_label(svc, "com.example.tier"), "gold") == 0);
    }
    free(body);
    cJSON_Delete(root);
    free(inspect);
    free(path);
    h_stop(&h);
}

/* ---------------------------------------------------------- coalescing */

static void test_coalesce(void)
{
    harness h;
    char a[65];
    uint64_t base, want;
    const char *exit0[] = {"exitCode", "0", NULL};

    CHECK(h_start(&h, NULL, NULL) == 0);
    CHECK(run_ctr(&h, "a", NULL, a) == 0);
    CHECK(run_until(&h, p_has, a));

    /* Five events while an inspect is in flight: one more inspect. */
    CHECK(mw__fdd_set_latency(h.fdd, MW_FDD_EP_INSPECT, 200) == 0);
    base = mw__fdd_count(h.fdd, MW_FDD_EP_INSPECT);
    CHECK(mw__fdd_emit(h.fdd, "a", "update", NULL) == 0);
    want = base + 1;
    CHECK(run_until(&h, p_fdd_inspect, &want));
    for (int i = 0; i < 5; i++)
        CHECK(mw__fdd_health(h.fdd, "a", i % 2 ? "healthy" : "unhealthy") == 0);
    run_for(&h, 700);
    CHECK(mw__fdd_count(h.fdd, MW_FDD_EP_INSPECT) == base + 2);
    CHECK_STR(mw__docker_get(h.d, docker_id(a))->health, "unhealthy"); /* the newest */
    CHECK(upserts_of(&h, a) == 1);

    /* An inspect answered "running" after a later die: dropped. */
    base = mw__fdd_count(h.fdd, MW_FDD_EP_INSPECT);
    CHECK(mw__fdd_emit(h.fdd, "a", "update", NULL) == 0);
    want = base + 1;
    CHECK(run_until(&h, p_fdd_inspect, &want)); /* in flight, answer pending */
    CHECK(mw__fdd_emit(h.fdd, "a", "die", exit0) == 0);
    CHECK(run_until(&h, p_gone, a));
    run_for(&h, 400); /* the stale answer arrives meanwhile */
    CHECK(!has(&h, a));
    CHECK(mw__fdd_count(h.fdd, MW_FDD_EP_INSPECT) == base + 1);
    CHECK(upserts_of(&h, a) == 1);
    h_stop(&h);
}

/* ---------------------------------------------------------- reconnects */

static void test_stream_lost(void)
{
    harness h;
    char a[65], b[65], c[65], d[65], since[MW_DOCKER_SINCE_SIZE];
    mw__fdd_request req;
    mw__docker_stats st;
    size_t two = 2, one = 1;

    CHECK(h_fake(&h, NULL, NULL) == 0);
    CHECK(run_ctr(&h, "a", NULL, a) == 0);
    CHECK(run_ctr(&h, "b", NULL, b) == 0);
    CHECK(run_ctr(&h, "c", NULL, c) == 0);
    CHECK(h_source(&h, NULL, NULL) == 0);
    CHECK(wait_syncs(&h, 1));
    CHECK(run_ctr(&h, "d", NULL, d) == 0); /* an applied event: a watermark */
    CHECK(run_until(&h, p_has, d));
    mw__docker_since_format(mw__fdd_last_event_ns(h.fdd), since); /* d's start */

    CHECK(mw__fdd_close_streams(h.fdd, 0) == 1); /* abrupt */
    CHECK(mw__fdd_stop(h.fdd, "b") == 0);        /* while disconnected */
    CHECK(run_until(&h, p_downs, &one));
    CHECK(h.why[0] != '\0');
    CHECK(wait_syncs(&h, 2));

    CHECK(mw__fdd_last_request(h.fdd, MW_FDD_EP_EVENTS, &req) == 0);
    CHECK(strstr(req.target, "since=") && strstr(req.target, since));
    CHECK(has(&h, a) && has(&h, c) && has(&h, d) && !has(&h, b));
    /* No duplicate upserts: the resync found the same digests. */
    CHECK(upserts_of(&h, a) == 1 && upserts_of(&h, c) == 1 && upserts_of(&h, d) == 1);
    mw__docker_stats_get(h.d, &st);
    CHECK(st.reconnects == 1 && st.syncs == 2 && st.connected == 1);
    CHECK(st.dup_events >= 1); /* d's start, sent again at `since` */
    CHECK(h.ups == 2 && h.downs == 1);
    CHECK(log_has(&h, "disconnected from unix://"));

    /* A clean end of the stream is a disconnect too. */
    CHECK(mw__fdd_close_streams(h.fdd, 1) == 1);
    CHECK(run_until(&h, p_downs, &two));
    CHECK(wait_syncs(&h, 3));
    CHECK(mw__docker_count(h.d) == 3 && live_count(&h) == 3);
    h_stop(&h);
}

static void test_engine_restart(void)
{
    harness h;
    char a[65], b[65], c[65], e[65], f[65];
    size_t one = 1;

    CHECK(h_fake(&h, NULL, NULL) == 0);
    CHECK(run_ctr(&h, "a", NULL, a) == 0);
    CHECK(run_ctr(&h, "b", NULL, b) == 0);
    CHECK(run_ctr(&h, "c", NULL, c) == 0);
    CHECK(h_source(&h, NULL, NULL) == 0);
    CHECK(wait_syncs(&h, 1));
    CHECK(run_ctr(&h, "e", NULL, e) == 0);
    CHECK(run_until(&h, p_has, e));

    CHECK(mw__fdd_engine_down(h.fdd) == 0);
    CHECK(run_until(&h, p_downs, &one));
    run_for(&h, 300); /* a few refused retries */
    /* Changed while down; none of these events reach anyone. */
    CHECK(mw__fdd_stop(h.fdd, "a") == 0);
    CHECK(mw__fdd_destroy(h.fdd, "c") == 0);
    CHECK(run_ctr(&h, "f", NULL, f) == 0);
    CHECK(mw__fdd_engine_up(h.fdd) == 0);
    CHECK(wait_syncs(&h, 2));

    /* The set is the engine's running set: b, e, f. */
    CHECK(!has(&h, a) && has(&h, b) && !has(&h, c) && has(&h, e) && has(&h, f));
    CHECK(mw__docker_count(h.d) == 3 && live_count(&h) == 3);
    CHECK(upserts_of(&h, b) == 1 && upserts_of(&h, e) == 1);
    CHECK(h.downs == 1 && h.ups == 2);
    CHECK(log_has(&h, "reconnecting in"));
    CHECK(log_has(&h, "retrying in"));
    h_stop(&h);
}

/* An inspect that outlives the request timeout fails the connection;
 * the next attempt resyncs. */
static void tweak_timeout(mw__docker_opts *o, void *ud)
{
    MW_UNUSED(ud);
    o->request_timeout = 0.3;
}

static int p_log(harness *h, const void *arg)
{
    return log_has(h, arg);
}

/* An inspect that times out holds up only its container: it is asked
 * again until it answers (an error is logged at the third timeout in a
 * row); the connection stays up and the other containers go on. */
static void test_timeout(void)
{
    harness h;
    char a[65], b[65], c[65];

    CHECK(h_fake(&h, NULL, NULL) == 0);
    CHECK(run_ctr(&h, "a", NULL, a) == 0);
    CHECK(h_source(&h, tweak_timeout, NULL) == 0);
    CHECK(wait_syncs(&h, 1));

    /* slow once: the second try gets it */
    CHECK(mw__fdd_set_latency(h.fdd, MW_FDD_EP_INSPECT, 1000) == 0);
    CHECK(run_ctr(&h, "b", NULL, b) == 0);
    CHECK(run_until(&h, p_log, "inspect timed out after 0.3 s; asking again"));
    CHECK(mw__fdd_set_latency(h.fdd, MW_FDD_EP_INSPECT, 0) == 0);
    CHECK(run_until(&h, p_has, b));
    CHECK(h.downs == 0);

    /* slow for a long while: an error at the third try, still asked */
    CHECK(mw__fdd_set_latency(h.fdd, MW_FDD_EP_INSPECT, 1000) == 0);
    CHECK(run_ctr(&h, "c", NULL, c) == 0);
    CHECK(run_until(&h, p_log, "inspect timed out after 0.3 s, 3 times in a row; still asking"));
    run_for(&h, 700);
    CHECK(!has(&h, c) && h.downs == 0);
    CHECK(has(&h, a) && has(&h, b));
    CHECK(mw__fdd_set_latency(h.fdd, MW_FDD_EP_INSPECT, 0) == 0);
    CHECK(run_until(&h, p_has, c)); /* no event needed */
    CHECK(h.downs == 0 && h.syncs == 1);
    CHECK(upserts_of(&h, a) == 1 && upserts_of(&h, b) == 1 && upserts_of(&h, c) == 1);
    h_stop(&h);
}

/* The first sync does not wait for a container whose inspect times out:
 * it is synced without it, and it comes in once the engine answers. */
static void test_timeout_at_sync(void)
{
    harness h;
    char a[65];

    CHECK(h_fake(&h, NULL, NULL) == 0);
    CHECK(run_ctr(&h, "a", NULL, a) == 0);
    CHECK(mw__fdd_set_latency(h.fdd, MW_FDD_EP_INSPECT, 1000) == 0);
    CHECK(h_source(&h, tweak_timeout, NULL) == 0);
    CHECK(wait_syncs(&h, 1));
    CHECK(!has(&h, a) && h.downs == 0);
    CHECK(mw__fdd_set_latency(h.fdd, MW_FDD_EP_INSPECT, 0) == 0);
    CHECK(run_until(&h, p_has, a));
    CHECK(h.syncs == 1 && upserts_of(&h, a) == 1);
    h_stop(&h);
}

/* moonwatch's own container: skipped unless include_self. */
static void tweak_self(mw__docker_opts *o, void *ud)
{
    o->self_id = ud;
    o->include_self = 1;
}

static void test_include_self(void)
{
    harness h;
    char me[65];

    CHECK(h_fake(&h, NULL, NULL) == 0);
    CHECK(run_ctr(&h, "me", NULL, me) == 0);
    CHECK(h_source(&h, tweak_self, me) == 0);
    CHECK(wait_syncs(&h, 1));
    CHECK(has(&h, me));
    h_stop(&h);
}

/* ---------------------------------------------------------- filter */

static void tweak_filter(mw__docker_opts *o, void *ud)
{
    o->filter = ud;
}

static void test_filter(void)
{
    harness h;
    mw__diag diag = {0};
    mw__filter *f = mw__filter_new(NULL, "name:^skip-", "test exclude", &diag);
    char a[65], b[65], c[65];

    CHECK(f != NULL && diag.n == 0);
    CHECK(h_fake(&h, NULL, NULL) == 0);
    CHECK(run_ctr(&h, "keep-a", NULL, a) == 0);
    CHECK(run_ctr(&h, "skip-b", NULL, b) == 0);
    CHECK(h_source(&h, tweak_filter, f) == 0);
    CHECK(wait_syncs(&h, 1));
    CHECK(has(&h, a) && !has(&h, b));
    CHECK(run_ctr(&h, "skip-c", NULL, c) == 0);
    CHECK(run_ctr(&h, "keep-c", NULL, NULL) == 0);
    CHECK(mw__docker_count(h.d) == 1);
    {
        char kc[65];
        CHECK(mw__fdd_resolve(h.fdd, "keep-c", kc) == 0);
        CHECK(run_until(&h, p_has, kc));
    }
    CHECK(!has(&h, c) && upserts_of(&h, c) == 0 && upserts_of(&h, b) == 0);
    /* Renamed into the excluded names: removed. */
    CHECK(mw__fdd_rename(h.fdd, "keep-a", "skip-a") == 0);
    CHECK(run_until(&h, p_gone, a));
    CHECK(mw__docker_count(h.d) == 1);
    h_stop(&h);
    mw__filter_free(f);
    mw__diag_free(&diag);
}

/* ---------------------------------------------------------- image id */

static void test_image_id(void)
{
    harness h;
    char a[65], b[65], c[65], *img;
    cJSON *root;
    const cJSON *id;
    mw__fdd_spec s = {0};
    const mw__service *svc;
    uint64_t images;

    CHECK(h_start(&h, NULL, NULL) == 0);
    CHECK(run_ctr(&h, "a", NULL, a) == 0);
    CHECK(run_until(&h, p_has, a));
    CHECK(mw__fdd_count(h.fdd, MW_FDD_EP_IMAGE) == 0); /* a tag needs no lookup */
    img = fetch(&h, "/v1.41/images/demo/busybox:1.0/json");
    CHECK(img != NULL);
    root = cJSON_Parse(img ? img : "");
    id = cJSON_GetObjectItem(root, "Id");
    CHECK(cJSON_IsString(id));

    /* The fake files a container created by image id under a new image
     * named after that id; dockerd keeps the image and its tags. Serve
     * the image's own document, as dockerd would, for that one lookup. */
    CHECK(mw__fdd_fail_next(h.fdd, MW_FDD_EP_IMAGE, 200, img ? img : "{}", 1) == 0);
    images = mw__fdd_count(h.fdd, MW_FDD_EP_IMAGE);
    s.image = cJSON_IsString(id) ? id->valuestring : "sha256:00";
    s.name = "by-id-1";
    CHECK(mw__fdd_run(h.fdd, &s, b) == 0);
    CHECK(run_until(&h, p_has, b));
    svc = mw__docker_get(h.d, docker_id(b));
    CHECK(svc && strcmp(svc->image, "demo/busybox:1.0") == 0);
    CHECK(svc && strcmp(svc->image_short, "busybox") == 0);
    CHECK(mw__fdd_count(h.fdd, MW_FDD_EP_IMAGE) == images + 1);
    images = mw__fdd_count(h.fdd, MW_FDD_EP_IMAGE);

    /* The same id again: from the cache. */
    s.name = "by-id-2";
    CHECK(mw__fdd_run(h.fdd, &s, c) == 0);
    CHECK(run_until(&h, p_has, c));
    svc = mw__docker_get(h.d, docker_id(c));
    CHECK(svc && strcmp(svc->image, "demo/busybox:1.0") == 0);
    CHECK(mw__fdd_count(h.fdd, MW_FDD_EP_IMAGE) == images);
    cJSON_Delete(root);
    free(img);
    h_stop(&h);
}

/* ---------------------------------------------------------- versions */

static void test_versions(void)
{
    harness h;
    size_t one = 1;
    uint64_t n;
    mw__docker_stats st;
    mw__fdd_request req;

    /* Newer engine: we speak 1.43. */
    CHECK(h_fake(&h, "1.45", "1.24") == 0);
    CHECK(h_source(&h, NULL, NULL) == 0);
    CHECK(wait_syncs(&h, 1));
    mw__docker_stats_get(h.d, &st);
    CHECK_STR(st.api_version, "1.43");
    CHECK(mw__fdd_last_request(h.fdd, MW_FDD_EP_LIST, &req) == 0);
    CHECK_STR(req.version, "1.43");
    h_stop(&h);

    /* Too old an engine: a clear reason, retried until it is upgraded. */
    CHECK(h_fake(&h, "1.39", NULL) == 0);
    CHECK(h_source(&h, NULL, NULL) == 0);
    CHECK(run_until(&h, p_downs, &one));
    CHECK(strstr(h.why, "1.39") && strstr(h.why, "older than 1.40"));
    run_for(&h, 400);
    CHECK(mw__fdd_count(h.fdd, MW_FDD_EP_VERSION) >= 2);
    CHECK(mw__fdd_count(h.fdd, MW_FDD_EP_EVENTS) == 0);
    CHECK(h.downs == 1); /* reported once, not per retry */
    CHECK(log_has(&h, "older than 1.40"));
    CHECK(mw__fdd_set_api_version(h.fdd, "1.41", NULL) == 0);
    CHECK(wait_syncs(&h, 1));
    CHECK(h.ups == 1);
    h_stop(&h);

    /* An engine that needs a newer client than 1.43. */
    CHECK(h_fake(&h, "1.52", "1.44") == 0);
    CHECK(h_source(&h, NULL, NULL) == 0);
    CHECK(run_until(&h, p_downs, &one));
    CHECK(strstr(h.why, "1.44") != NULL);
    h_stop(&h);

    /* /version failing: retried. */
    CHECK(h_fake(&h, NULL, NULL) == 0);
    CHECK(mw__fdd_fail_next(h.fdd, MW_FDD_EP_VERSION, 500, NULL, 2) == 0);
    CHECK(h_source(&h, NULL, NULL) == 0);
    CHECK(run_until(&h, p_downs, &one));
    CHECK(strstr(h.why, "HTTP 500") && strstr(h.why, "injected failure"));
    CHECK(wait_syncs(&h, 1));
    n = mw__fdd_count(h.fdd, MW_FDD_EP_VERSION);
    CHECK(n == 3);
    h_stop(&h);

    /* The list failing: a disconnect, the next attempt syncs. */
    CHECK(h_fake(&h, NULL, NULL) == 0);
    CHECK(mw__fdd_fail_next(h.fdd, MW_FDD_EP_LIST, 500, NULL, 1) == 0);
    CHECK(h_source(&h, NULL, NULL) == 0);
    CHECK(wait_syncs(&h, 1));
    CHECK(h.downs == 1 && strstr(h.why, "") != NULL);
    h_stop(&h);
}

/* ---------------------------------------------------------- one shot */

static void tweak_one_shot(mw__docker_opts *o, void *ud)
{
    MW_UNUSED(ud);
    o->one_shot = 1;
}

static void tweak_one_shot_dead(mw__docker_opts *o, void *ud)
{
    o->one_shot = 1;
    o->host = ud;
}

static void test_one_shot(void)
{
    harness h;
    char a[65];
    size_t one = 1;
    mw__docker_stats st;

    CHECK(h_fake(&h, NULL, NULL) == 0);
    CHECK(run_ctr(&h, "a", NULL, a) == 0);
    CHECK(mw__fdd_bulk_create(h.fdd, 5, NULL, 0) == 0);
    CHECK(h_source(&h, tweak_one_shot, NULL) == 0);
    CHECK(wait_syncs(&h, 1));
    CHECK(mw__docker_count(h.d) == 6 && has(&h, a));
    CHECK(mw__fdd_count(h.fdd, MW_FDD_EP_EVENTS) == 0);
    CHECK(mw__fdd_stop(h.fdd, "a") == 0);
    run_for(&h, 100);
    CHECK(has(&h, a)); /* nothing after the sync */
    CHECK(mw__http_active(h.http) == 0);
    CHECK(mw__loop_timers(h.loop) == 0);
    h_stop(&h);

    /* No engine: one failure report, no retry. */
    CHECK(h_fake(&h, NULL, NULL) == 0);
    CHECK(h_source(&h, tweak_one_shot_dead, "unix:///tmp/mw-no-such-engine.sock") == 0);
    CHECK(run_until(&h, p_downs, &one));
    run_for(&h, 300);
    mw__docker_stats_get(h.d, &st);
    CHECK(st.reconnects == 0 && h.downs == 1 && h.syncs == 0);
    CHECK(mw__loop_timers(h.loop) == 0);
    h_stop(&h);
}

/* ---------------------------------------------------------- aggregator */

typedef struct recs {
    char *v[128];
    size_t n;
} recs;

static char *join_tags(const mw_record *r)
{
    mw__buf b;

    mw__buf_init(&b, 1 << 16);
    for (size_t i = 0; i < r->ntags; i++)
        mw__buf_addf(&b, "%s%s", i ? "," : "", r->tags[i]);
    return mw__buf_take(&b, NULL);
}

static void collect(const mw_record *r, void *ud)
{
    recs *c = ud;
    char *tags;

    if (c->n == MW_ARRAY_LEN(c->v))
        return;
    tags = join_tags(r);
    if (r->type == MW_RECORD_EVENT)
        c->v[c->n++] =
            mw__sprintf("event|%s|%s|%s|%s|%s|%s|%s|%s", r->alert_type, r->title, r->text,
                        r->aggregation_key, r->source_type_name, r->host ? r->host : "-",
                        r->priority ? r->priority : "-", tags ? tags : "");
    else if (r->type == MW_RECORD_SERVICE_CHECK)
        c->v[c->n++] = mw__sprintf("sc|%s|%d|%s|%s", r->name, r->status,
                                   r->message ? r->message : "", r->host ? r->host : "-");
    free(tags);
}

static void recs_free(recs *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i]);
    c->n = 0;
}

/* The records that contain every one of the NULL-terminated needles. */
static size_t recs_match(const recs *c, ...)
{
    size_t hits = 0;

    for (size_t i = 0; i < c->n; i++) {
        va_list ap;
        const char *needle;
        int ok = 1;
        va_start(ap, c);
        while ((needle = va_arg(ap, const char *)) != NULL)
            ok = ok && strstr(c->v[i], needle) != NULL;
        va_end(ap);
        hits += ok;
    }
    return hits;
}

static void flush(harness *h, recs *c)
{
    recs_free(c);
    mw__agg_flush(h->agg, mw__wall(), collect, c);
}

static void tweak_agg(mw__docker_opts *o, void *ud)
{
    MW_UNUSED(ud);
    o->service_up_interval = 0.2;
}

static int h_fake_agg(harness *h)
{
    mw__agg_opts ao = {0};

    if (h_fake(h, NULL, NULL) != 0)
        return -1;
    ao.host = "test-host";
    h->agg = mw__agg_new(&ao);
    return h->agg ? 0 : -1;
}

static void test_agg_events(void)
{
    harness h;
    char a[65], b[65], c[65], d[65];
    recs r = {0};
    uint64_t before;

    CHECK(h_fake_agg(&h) == 0);
    CHECK(run_ctr(&h, "web", "healthy", a) == 0);
    CHECK(h_source(&h, tweak_agg, NULL) == 0);
    CHECK(wait_syncs(&h, 1));
    CHECK(run_ctr(&h, "batch", NULL, b) == 0);
    CHECK(run_ctr(&h, "looper", NULL, c) == 0);
    CHECK(run_ctr(&h, "quiet", NULL, d) == 0);
    CHECK(run_until(&h, p_has, b) && run_until(&h, p_has, c) && run_until(&h, p_has, d));
    flush(&h, &r);
    CHECK(recs_match(&r, "event|", NULL) == 0); /* starts are no news */

    before = stat_events(&h);
    CHECK(mw__fdd_die(h.fdd, "batch", 137, 1) == 0); /* oom, die 137 */
    CHECK(mw__fdd_health(h.fdd, "web", "unhealthy") == 0);
    CHECK(mw__fdd_kill(h.fdd, "web", 9) == 0); /* die 137 */
    CHECK(mw__fdd_stop(h.fdd, "quiet") == 0);  /* die 0: no event */
    for (int i = 0; i < 3; i++)
        CHECK(mw__fdd_restart(h.fdd, "looper") == 0); /* 3 more starts */
    CHECK(wait_more_events(&h, before, 2 + 1 + 2 + 3 + 3 * 4));
    run_for(&h, 100);
    flush(&h, &r);

    CHECK(recs_match(&r, "event|error|Container batch ran out of memory|", "|docker:batch|docker|",
                     "container_name:batch", NULL) == 1);
    CHECK(recs_match(&r, "event|error|Container batch exited with 137|",
                     "(image demo/busybox:1.0) exited with code 137", "|docker:batch|docker|",
                     "|test-host|", "container_name:batch", "short_image:busybox", NULL) == 1);
    CHECK(recs_match(&r, "event|warning|Container web is unhealthy|", "|docker:web|docker|",
                     "container_name:web", NULL) == 1);
    CHECK(recs_match(&r, "event|error|Container web exited with 137|", NULL) == 1);
    CHECK(recs_match(&r, "Container quiet", NULL) == 0);
    CHECK(recs_match(&r, "event|error|Container looper is restarting in a loop|", "|docker:looper|",
                     NULL) == 1);
    CHECK(recs_match(&r, "event|", NULL) == 5);

    /* Without a held service, the event's own attributes make the tags. */
    {
        const char *extra[] = {"exitCode", "3", NULL};
        before = stat_events(&h);
        CHECK(mw__fdd_emit(h.fdd, "quiet", "die", extra) == 0);
        CHECK(wait_more_events(&h, before, 1));
        flush(&h, &r);
        CHECK(recs_match(&r, "event|error|Container quiet exited with 3|", "container_name:quiet",
                         "docker_image:demo/busybox:1.0", "image_name:demo/busybox",
                         "container_id:", NULL) == 1);
    }
    recs_free(&r);
    h_stop(&h);
}

static int p_sc(harness *h, const void *arg)
{
    recs r = {0};
    size_t n;

    mw__agg_flush(h->agg, mw__wall(), collect, &r);
    n = recs_match(&r, arg, NULL);
    recs_free(&r);
    return n > 0;
}

static void test_service_up(void)
{
    harness h;
    recs r = {0};

    CHECK(h_fake_agg(&h) == 0);
    CHECK(h_source(&h, tweak_agg, NULL) == 0);
    CHECK(wait_syncs(&h, 1));
    flush(&h, &r);
    CHECK(recs_match(&r, "sc|docker.service_up|0||test-host", NULL) >= 1); /* on the change */
    CHECK(run_until(&h, p_sc, "sc|docker.service_up|0|")); /* and again on the interval */

    CHECK(mw__fdd_engine_down(h.fdd) == 0);
    CHECK(run_until(&h, p_sc, "sc|docker.service_up|2|events stream"));
    CHECK(run_until(&h, p_sc, "sc|docker.service_up|2|")); /* repeated while down */
    CHECK(mw__fdd_engine_up(h.fdd) == 0);
    CHECK(run_until(&h, p_sc, "sc|docker.service_up|0|"));
    CHECK(wait_syncs(&h, 2));
    recs_free(&r);
    h_stop(&h);
}

int main(void)
{
    test_sweep();
    test_early_start();
    test_host_parse();
    test_self_id();
    test_initial_sync();
    test_sync_race();
    test_lifecycle();
    test_malformed();
    test_inspect_404();
    test_health_and_update();
    test_coalesce();
    test_stream_lost();
    test_engine_restart();
    test_timeout();
    test_timeout_at_sync();
    test_include_self();
    test_filter();
    test_image_id();
    test_versions();
    test_one_shot();
    test_agg_events();
    test_service_up();
    return TEST_RESULT();
}
