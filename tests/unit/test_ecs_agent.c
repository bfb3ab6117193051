/*
 * test_ecs_agent.c - the ECS agent introspection source against the fake
 * agent (tests/support/fake_ecs_agent.h), the loop driven in bounded
 * runs: the first poll (metadata, tasks, annotations, ecs.agent.up OK);
 * polls that change nothing (shuffled answers) annotate nothing; task
 * transitions PENDING -> RUNNING -> STOPPED, a container created later
 * and one stopped with an exit code; tasks added and removed; an empty
 * list; the agent going away and back (one warning per outage, the model
 * kept, metadata read again, ecs.agent.up CRITICAL with the reason then
 * OK); malformed answers and a malformed task among good ones; the
 * ?dockerid= lookup (found, 404, deduplicated, never blocking, kept by a
 * poll that was in flight); a restarted agent; a link-local URL refused
 * before any packet; one-shot mode.
 */
#include "core/base/buf.h"
#include "core/base/http.h"
#include "core/base/loop.h"
#include "core/base/util.h"
#include "discovery/ecs/ecs_agent.h"
#include "test.h"
#include "tests/support/fake_ecs_agent.h"
#include "tests/support/make.h"

#include <pthread.h>
#include <stdlib.h>

#define FIX     MW_TEST_SOURCE_DIR "/tests/fixtures/ecs"
#define WAIT_MS 10000
#define ID1     "9581a69a761a557fbfce1d0f6745e4af5b9dbfb86b6b2c5c4df156f1a5932ff1"
#define ID2     "bf25c5c5b2d4dba68846c7236e75b6915e1e778d31611e3c6a06831e39814a15"
#define ARN1    "arn:aws:ecs:us-west-2:012345678910:task/default/example5-58ff-46c9-ae05-543f8example"
#define ARN2    "arn:aws:ecs:us-west-2:012345678910:task/default/b2"
#define ID3     "3333333333333333333333333333333333333333333333333333333333333333"
#define ID4     "4444444444444444444444444444444444444444444444444444444444444444"

/* ------------------------------------------------------------ harness */

typedef struct harness {
    mw__loop *loop;
    mw__http *http;
    mw__fea *fea;
    mw__ecs_agent *a;
    mw__log log;
    mw__buf logs; /* every log line, "LEVEL msg\n" */
    pthread_mutex_t mu;
    char notes[64][72]; /* annotated ids, in order */
    size_t nnotes, annotations;
    size_t syncs, ups, downs, oks, criticals;
    char why[512], last_check_msg[512];
} harness;

static void log_fn(mw_log_level level, const char *where, const char *msg, void *ud)
{
    harness *h = ud;
    static const char *const names[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};
    (void)where;
    pthread_mutex_lock(&h->mu);
    mw__buf_addf(&h->logs, "%s %s\n", names[level], msg);
    pthread_mutex_unlock(&h->mu);
    if (getenv("MW_TEST_VERBOSE"))
        fprintf(stderr, "%s %s\n", names[level], msg);
}

/* Log lines of `level` containing `needle`. */
static int log_count(harness *h, const char *level, const char *needle)
{
    int n = 0;
    const char *p = mw__buf_str(&h->logs);
    for (const char *line = p; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s", (int)len, line);
        if (strncmp(buf, level, strlen(level)) == 0 && strstr(buf, needle))
            n++;
        line += len + (nl ? 1 : 0);
    }
    return n;
}

static void cb_annotate(void *ud, const char *cid)
{
    harness *h = ud;
    h->annotations++;
    if (h->nnotes < 64)
        snprintf(h->notes[h->nnotes++], sizeof h->notes[0], "%s", cid);
}

static int noted(harness *h, const char *cid)
{
    for (size_t i = 0; i < h->nnotes; i++)
        if (!strcmp(h->notes[i], cid))
            return 1;
    return 0;
}

static void cb_synced(void *ud)
{
    ((harness *)ud)->syncs++;
}

static void cb_connected(void *ud, int up, const char *why)
{
    harness *h = ud;
    if (up)
        h->ups++;
    else
        h->downs++;
    snprintf(h->why, sizeof h->why, "%s", why ? why : "");
}

static mw_code cb_record(void *ud, const mw_record *rec)
{
    harness *h = ud;
    CHECK(rec->type == MW_RECORD_SERVICE_CHECK);
    CHECK_STR(rec->name, "ecs.agent.up");
    if (rec->status == MW_STATUS_OK)
        h->oks++;
    else if (rec->status == MW_STATUS_CRITICAL)
        h->criticals++;
    snprintf(h->last_check_msg, sizeof h->last_check_msg, "%s", rec->message ? rec->message : "");
    return MW_OK;
}

typedef int (*pred_fn)(harness *h, const void *arg);

/* Runs the loop until `pred` holds, at most WAIT_MS and 100000 rounds. */
static int run_until(harness *h, pred_fn pred, const void *arg)
{
    double end = mw__mono() + WAIT_MS / 1000.0;
    for (int i = 0; i < 100000 && mw__mono() < end; i++) {
        if (pred(h, arg))
            return 1;
        mw__loop_run_once(h->loop, 5);
    }
    return pred(h, arg);
}

static void run_for(harness *h, int ms)
{
    double end = mw__mono() + ms / 1000.0;
    while (mw__mono() < end)
        mw__loop_run_once(h->loop, 5);
}

static mw__ecs_agent_stats stats(harness *h)
{
    mw__ecs_agent_stats st;
    mw__ecs_agent_stats_get(h->a, &st);
    return st;
}

static int p_polls(harness *h, const void *arg)
{
    return stats(h).polls >= *(const uint64_t *)arg;
}

static int p_noted(harness *h, const void *arg)
{
    return noted(h, arg);
}

static int p_known(harness *h, const void *arg)
{
    return mw__ecs_agent_task_of(h->a, arg, NULL) != NULL;
}

static int p_unknown(harness *h, const void *arg)
{
    return mw__ecs_agent_task_of(h->a, arg, NULL) == NULL;
}

static int p_downs(harness *h, const void *arg)
{
    return h->downs >= *(const size_t *)arg;
}

static int p_ups(harness *h, const void *arg)
{
    return h->ups >= *(const size_t *)arg;
}

static int p_failures(harness *h, const void *arg)
{
    return stats(h).failures >= *(const uint64_t *)arg;
}

static int p_fea_metadata(harness *h, const void *arg)
{
    return mw__fea_count(h->fea, MW_FEA_EP_METADATA) >= *(const uint64_t *)arg;
}

static int p_fea_tasks(harness *h, const void *arg)
{
    return mw__fea_count(h->fea, MW_FEA_EP_TASKS) >= *(const uint64_t *)arg;
}

static int p_syncs(harness *h, const void *arg)
{
    return h->syncs >= *(const size_t *)arg;
}

/* Waits for `n` more polls than now. */
static int more_polls(harness *h, uint64_t n)
{
    uint64_t want = stats(h).polls + n;
    return run_until(h, p_polls, &want);
}

typedef struct setup {
    double poll; /* 0: 0.05 */
    int one_shot;
    const char *url; /* NULL: the fake's */
    int no_fixture;
} setup;

static void h_start(harness *h, const setup *s)
{
    mw__fea_opts fo = {0};
    mw__ecs_agent_opts o = {0};
    char *err = NULL;

    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    mw__buf_init(&h->logs, 16 << 20);
    h->fea = mw__fea_new(&fo, &err);
    if (!h->fea) {
        fprintf(stderr, "fake agent: %s\n", err);
        exit(2);
    }
    if (!s->no_fixture)
        CHECK(mw__fea_load(h->fea, FIX "/introspection_v1_tasks.json") == 0);
    h->loop = t_loop();
    h->http = t_http(h->loop);
    h->log = (mw__log){.level = MW_LOG_DEBUG, .fd = 2, .fn = log_fn, .ud = h};
    o.url = s->url ? s->url : mw__fea_url(h->fea);
    o.loop = h->loop;
    o.http = h->http;
    o.log = &h->log;
    o.poll_interval = s->poll > 0 ? s->poll : 0.05;
    o.request_timeout = 2;
    o.backoff_min = 0.02;
    o.backoff_max = 0.1;
    o.service_up_interval = 0.5;
    o.one_shot = s->one_shot;
    o.cbs = (mw__source_cbs){.synced = cb_synced,
                             .connected = cb_connected,
                             .record = cb_record,
                             .annotate = cb_annotate,
                             .ud = h};
    if (mw__ecs_agent_new(&o, &h->a, &err) != MW_OK) {
        fprintf(stderr, "mw__ecs_agent_new: %s\n", err ? err : "?");
        exit(2);
    }
}

static void h_stop(harness *h)
{
    mw__ecs_agent_free(h->a);
    mw__http_free(h->http);
    CHECK(mw__loop_timers(h->loop) == 0);
    mw__loop_free(h->loop);
    mw__fea_free(h->fea);
    mw__buf_free(&h->logs);
    pthread_mutex_destroy(&h->mu);
}

static const char *known_status(harness *h, const char *cid)
{
    const mw__ecs_task *t = mw__ecs_agent_task_of(h->a, cid, NULL);
    return t ? t->known_status : "(unknown)";
}

static char *task_json(const char *arn, const char *known, const char *containers)
{
    return mw__sprintf("{\"Arn\":\"%s\",\"Family\":\"batch\",\"Version\":\"4\","
                       "\"KnownStatus\":\"%s\",\"DesiredStatus\":\"RUNNING\",\"Containers\":[%s]}",
                       arn, known, containers);
}

/* ------------------------------------------------------------ tests */

static void test_first_poll(void)
{
    harness h;
    size_t one = 1;
    h_start(&h, &(setup){0});
    CHECK(run_until(&h, p_syncs, &one));
    const mw__ecs_container *c = NULL;
    const mw__ecs_task *t = mw__ecs_agent_task_of(h.a, ID1, &c);
    CHECK(t != NULL && c != NULL);
    if (t && c) {
        CHECK_STR(t->arn, ARN1);
        CHECK_STR(t->family, "hello_world");
        CHECK_STR(c->name, "mysql");
    }
    CHECK(mw__ecs_agent_task_of(h.a, ID2, NULL) == t);
    CHECK(mw__ecs_agent_task_of(h.a, "9581a69a761a", NULL) == NULL); /* full ids only */
    CHECK_STR(mw__ecs_agent_cluster(h.a), "default");
    CHECK(noted(&h, ID1) && noted(&h, ID2) && h.annotations == 2);
    CHECK(h.ups == 1 && h.downs == 0 && h.oks == 1 && h.criticals == 0);
    CHECK(mw__fea_count(h.fea, MW_FEA_EP_METADATA) == 1);
    CHECK(log_count(&h, "INFO", "cluster default, Amazon ECS Agent - v1.30.0") == 1);
    mw__ecs_agent_stats st = stats(&h);
    CHECK(st.tasks == 1 && st.containers == 2 && st.up == 1 && st.metadata == 1);

    /* Polls that change nothing, in shuffled orders: nothing annotated,
     * nothing read again; the service check repeats. */
    CHECK(more_polls(&h, 5));
    CHECK(h.annotations == 2);
    st = stats(&h);
    CHECK(st.tasks_read == 1 && st.tasks_skipped >= 5);
    CHECK(mw__fea_count(h.fea, MW_FEA_EP_METADATA) == 1);
    run_for(&h, 600);
    CHECK(h.oks >= 2 && h.criticals == 0);
    h_stop(&h);
}

/* PENDING -> RUNNING -> STOPPED, containers created later, added and
 * removed tasks, an empty list. */
static void test_transitions(void)
{
    harness h;
    size_t one = 1;
    h_start(&h, &(setup){0});
    CHECK(run_until(&h, p_syncs, &one));

    char *json =
        task_json(ARN2, "PENDING",
                  "{\"Name\":\"web\",\"DockerId\":\"\"},{\"Name\":\"log\",\"DockerId\":\"\"}");
    CHECK(mw__fea_put_task(h.fea, json) == 0);
    free(json);
    CHECK(more_polls(&h, 2));
    CHECK(stats(&h).tasks == 2 && stats(&h).containers == 2); /* not created: not indexed */
    h.nnotes = h.annotations = 0;
    /* the agent creates the containers: their ids become known */
    CHECK(mw__fea_put_container(h.fea, ARN2, "web", ID3, "ecs-batch-4-web") == 0);
    CHECK(run_until(&h, p_noted, ID3));
    CHECK_STR(known_status(&h, ID3), "PENDING");
    CHECK(mw__fea_put_container(h.fea, ARN2, "log", ID4, "ecs-batch-4-log") == 0);
    CHECK(mw__fea_task_status(h.fea, ARN2, "RUNNING", "RUNNING") == 0);
    CHECK(run_until(&h, p_noted, ID4));
    CHECK(more_polls(&h, 1));
    CHECK_STR(known_status(&h, ID3), "RUNNING");
    const mw__ecs_container *c;
    CHECK(mw__ecs_agent_task_of(h.a, ID4, &c) && c && !strcmp(c->name, "log"));
    /* The task stops, its containers exit 0 and 137: the identity stays
     * until the agent forgets the task. */
    h.nnotes = h.annotations = 0;
    CHECK(mw__fea_container_stop(h.fea, ARN2, "web", 0) == 0);
    CHECK(mw__fea_container_stop(h.fea, ARN2, "log", 137) == 0);
    CHECK(mw__fea_task_status(h.fea, ARN2, "STOPPED", "STOPPED") == 0);
    CHECK(run_until(&h, p_noted, ID3));
    CHECK(more_polls(&h, 1));
    CHECK_STR(known_status(&h, ID3), "STOPPED");
    CHECK_STR(known_status(&h, ID1), "RUNNING"); /* the other task is untouched */
    CHECK(!noted(&h, ID1));
    /* v1 shows no container status nor exit code: a stop alone changes
     * no task of the model */
    h.nnotes = h.annotations = 0;
    CHECK(mw__fea_container_stop(h.fea, ARN1, "mysql", 1) == 0);
    CHECK(more_polls(&h, 3));
    CHECK(h.annotations == 0);
    /* removed from the agent: gone from the model */
    CHECK(mw__fea_remove_task(h.fea, ARN2) == 0);
    CHECK(run_until(&h, p_unknown, ID3));
    CHECK(noted(&h, ID3) && noted(&h, ID4) && p_unknown(&h, ID4));
    /* the empty list */
    h.nnotes = h.annotations = 0;
    CHECK(mw__fea_clear(h.fea) == 0);
    CHECK(run_until(&h, p_unknown, ID1));
    CHECK(noted(&h, ID1) && noted(&h, ID2) && stats(&h).tasks == 0 && stats(&h).containers == 0);
    CHECK(h.downs == 0);
    h_stop(&h);
}

/* The agent goes away and comes back: one warning, the model kept,
 * metadata again, the service check says so. */
static void test_outage(void)
{
    harness h;
    size_t one = 1, two = 2;
    uint64_t fails = 4;
    h_start(&h, &(setup){0});
    CHECK(run_until(&h, p_syncs, &one));
    CHECK(mw__fea_down(h.fea) == 0);
    CHECK(run_until(&h, p_downs, &one));
    CHECK(strstr(h.why, "GET /v1/tasks") != NULL && strstr(h.why, "onnect") != NULL);
    CHECK(run_until(&h, p_failures, &fails));
    CHECK(log_count(&h, "WARN", "ECS agent at") == 1);
    CHECK(log_count(&h, "WARN", "labels meanwhile") == 1);
    CHECK(log_count(&h, "DEBUG", "still failing") >= 3);
    CHECK(h.criticals == 1 && strstr(h.last_check_msg, "GET /v1/") != NULL);
    run_for(&h, 600); /* the service check repeats, still critical */
    CHECK(h.criticals >= 2 && h.oks == 1);
    CHECK(mw__ecs_agent_task_of(h.a, ID1, NULL) != NULL); /* the model is kept */
    CHECK(stats(&h).up == 0 && stats(&h).outages == 1);
    /* back */
    uint64_t meta = mw__fea_count(h.fea, MW_FEA_EP_METADATA);
    CHECK(mw__fea_up(h.fea) == 0);
    CHECK(run_until(&h, p_ups, &two));
    CHECK(mw__fea_count(h.fea, MW_FEA_EP_METADATA) == meta + 1);
    CHECK(log_count(&h, "INFO", "answers again after") == 1);
    CHECK(h.oks >= 2 && strcmp(h.last_check_msg, "") == 0);
    CHECK(mw__ecs_agent_task_of(h.a, ID1, NULL) != NULL);
    /* a second outage: a second warning */
    CHECK(mw__fea_down(h.fea) == 0);
    CHECK(run_until(&h, p_downs, &two));
    CHECK(log_count(&h, "WARN", "ECS agent at") == 2);
    CHECK(mw__fea_up(h.fea) == 0);
    size_t three = 3;
    CHECK(run_until(&h, p_ups, &three));
    h_stop(&h);
}

static void test_malformed(void)
{
    harness h;
    size_t one = 1, two = 2, n;
    h_start(&h, &(setup){0});
    CHECK(run_until(&h, p_syncs, &one));
    /* a whole answer that is not a task list: an outage with the reason,
     * the model kept */
    CHECK(mw__fea_fail_next(h.fea, MW_FEA_EP_TASKS, 200, "{\"Tasks\":[{\"Arn\"", 3) == 0);
    CHECK(run_until(&h, p_downs, &one));
    CHECK_STR(h.why, "GET /v1/tasks: malformed answer: not JSON");
    CHECK(run_until(&h, p_ups, &two));
    CHECK(mw__ecs_agent_task_of(h.a, ID1, NULL) != NULL);
    CHECK(stats(&h).failures == 3 && log_count(&h, "WARN", "ECS agent at") == 1);
    CHECK(mw__fea_fail_next(h.fea, MW_FEA_EP_TASKS, 200, "{\"tasks\":[]}", 1) == 0);
    CHECK(run_until(&h, p_downs, &two));
    CHECK_STR(h.why, "GET /v1/tasks: malformed answer: Tasks: missing");
    n = 3;
    CHECK(run_until(&h, p_ups, &n));
    /* an HTTP error, then the metadata failing within the same outage:
     * one more outage, the second failure said at debug level */
    CHECK(mw__fea_fail_next(h.fea, MW_FEA_EP_TASKS, 503, "{\"message\":\"busy\"}", 1) == 0);
    n = 3;
    CHECK(run_until(&h, p_downs, &n));
    CHECK_STR(h.why, "GET /v1/tasks: HTTP 503: {\"message\":\"busy\"}");
    CHECK(mw__fea_fail_next(h.fea, MW_FEA_EP_METADATA, 500, "boom\nmore", 1) == 0);
    n = 4;
    CHECK(run_until(&h, p_ups, &n));
    CHECK(h.downs == 3);
    CHECK(log_count(&h, "DEBUG", "still failing (2 attempts): GET /v1/metadata: HTTP 500: boom;") ==
          1);
    CHECK(log_count(&h, "WARN", "ECS agent at") == 3);

    /* one malformed task among good ones: skipped, said once, the others
     * applied */
    char *bad = task_json(ARN2, "RUNNING", "{\"Name\":\"web\",\"DockerId\":\"../etc/passwd\"}");
    char *good = task_json("arn:aws:ecs:us-west-2:012345678910:task/default/c3", "RUNNING",
                           "{\"Name\":\"api\",\"DockerId\":\"" ID3 "\"}");
    CHECK(mw__fea_put_task(h.fea, bad) == 0 && mw__fea_put_task(h.fea, good) == 0);
    free(bad);
    free(good);
    CHECK(run_until(&h, p_known, ID3));
    CHECK(more_polls(&h, 4));
    CHECK(log_count(&h, "WARN", "task skipped: Tasks[") == 1);
    CHECK(log_count(&h, "WARN", "].Containers[0].DockerId: not a container id") == 1);
    CHECK(stats(&h).bad_tasks >= 4 && stats(&h).tasks == 2);
    CHECK(h.downs == 3);
    h_stop(&h);
}

static int p_lookups_done(harness *h, const void *arg)
{
    mw__ecs_agent_stats st = stats(h);
    return st.lookups_found + st.lookups_404 >= *(const uint64_t *)arg;
}

static void test_lookup(void)
{
    harness h;
    size_t one = 1;
    mw__fea_request last;
    uint64_t n;
    h_start(&h, &(setup){.poll = 30}); /* no second poll in this test */
    CHECK(run_until(&h, p_syncs, &one));
    /* a task that started since the poll */
    char *json = task_json(ARN2, "RUNNING", "{\"Name\":\"web\",\"DockerId\":\"" ID3 "\"}");
    CHECK(mw__fea_put_task(h.fea, json) == 0);
    free(json);
    CHECK(mw__ecs_agent_task_of(h.a, ID3, NULL) == NULL);
    mw__ecs_agent_lookup(h.a, ID3);
    mw__ecs_agent_lookup(h.a, ID3); /* in flight: not twice */
    CHECK(run_until(&h, p_known, ID3));
    CHECK(noted(&h, ID3));
    CHECK(mw__fea_count(h.fea, MW_FEA_EP_TASK) == 1);
    CHECK(mw__fea_last_request(h.fea, MW_FEA_EP_TASK, &last) == 0);
    CHECK_STR(last.target, "/v1/tasks?dockerid=" ID3);
    mw__ecs_agent_lookup(h.a, ID3); /* known: not asked */
    mw__ecs_agent_lookup(h.a, ID1);
    CHECK(stats(&h).lookups == 1 && stats(&h).lookups_found == 1);
    /* unknown to the agent: 404, not asked again until the next poll */
    mw__ecs_agent_lookup(h.a, ID4);
    n = 2;
    CHECK(run_until(&h, p_lookups_done, &n));
    CHECK(stats(&h).lookups_404 == 1 && mw__ecs_agent_task_of(h.a, ID4, NULL) == NULL);
    mw__ecs_agent_lookup(h.a, ID4);
    CHECK(stats(&h).lookups == 2);
    /* a bad id is never put in a URL */
    mw__ecs_agent_lookup(h.a, "../../v1/metadata");
    CHECK(stats(&h).lookups == 2);

    /* A slow agent: the call returns at once, the answer comes later. */
    CHECK(mw__fea_set_latency(h.fea, MW_FEA_EP_TASK, 300) == 0);
    CHECK(mw__fea_put_container(h.fea, ARN1, "cache", ID4, "ecs-cache") == 0);
    mw__ecs_agent_restarted(h.a); /* a new poll lists it, and clears the 404s */
    CHECK(run_until(&h, p_known, ID4));
    CHECK(mw__fea_count(h.fea, MW_FEA_EP_TASK) == 2); /* the poll, no lookup */
    const char *id5 = "5555555555555555555555555555555555555555555555555555555555555555";
    json = task_json("arn:aws:ecs:us-west-2:012345678910:task/default/d5", "RUNNING",
                     "{\"Name\":\"w\",\"DockerId\":\"5555555555555555555555555555555555555555555555"
                     "555555555555555555\"}");
    CHECK(mw__fea_put_task(h.fea, json) == 0);
    free(json);
    double t0 = mw__mono();
    mw__ecs_agent_lookup(h.a, id5);
    /* returned without an answer: nothing waited for it */
    CHECK(mw__ecs_agent_task_of(h.a, id5, NULL) == NULL && stats(&h).lookups == 3);
    CHECK(run_until(&h, p_known, id5));
    CHECK(mw__mono() - t0 >= 0.29);
    h_stop(&h);
}

/* A task a lookup brought in while a poll was in flight is not dropped
 * by that poll's answer (made before the task existed). */
static void test_lookup_during_poll(void)
{
    harness h;
    size_t one = 1;
    uint64_t polls;
    h_start(&h, &(setup){.poll = 30});
    CHECK(run_until(&h, p_syncs, &one));
    polls = stats(&h).polls;
    CHECK(mw__fea_set_latency(h.fea, MW_FEA_EP_TASKS, 400) == 0);
    uint64_t asked = mw__fea_count(h.fea, MW_FEA_EP_TASKS) + 1;
    mw__ecs_agent_restarted(h.a); /* metadata, then a slow poll */
    /* the poll is answered (late): its answer holds the old state */
    CHECK(run_until(&h, p_fea_tasks, &asked));
    char *json = task_json(ARN2, "RUNNING", "{\"Name\":\"web\",\"DockerId\":\"" ID3 "\"}");
    CHECK(mw__fea_put_task(h.fea, json) == 0);
    free(json);
    mw__ecs_agent_lookup(h.a, ID3);
    CHECK(run_until(&h, p_known, ID3));
    uint64_t want = polls + 1;
    CHECK(run_until(&h, p_polls, &want));
    CHECK(mw__ecs_agent_task_of(h.a, ID3, NULL) != NULL);
    h_stop(&h);
}

static void test_restarted(void)
{
    harness h;
    size_t one = 1;
    h_start(&h, &(setup){.poll = 30});
    CHECK(run_until(&h, p_syncs, &one));
    CHECK(mw__fea_set_metadata(h.fea, "arn:aws:ecs:us-west-2:012345678910:cluster/prod", NULL,
                               "Amazon ECS Agent - v1.31.0 (12345678)") == 0);
    mw__ecs_agent_restarted(h.a);
    uint64_t two = 2;
    CHECK(run_until(&h, p_fea_metadata, &two));
    CHECK(run_until(&h, p_polls, &two));
    CHECK_STR(mw__ecs_agent_cluster(h.a), "arn:aws:ecs:us-west-2:012345678910:cluster/prod");
    CHECK(log_count(&h, "INFO", "is now Amazon ECS Agent - v1.31.0 (12345678)") == 1);
    h_stop(&h);
}

/* A link-local address is refused before a socket exists. */
static void test_link_local(void)
{
    harness h;
    size_t one = 1;
    h_start(&h, &(setup){.url = "http://169.254.170.2:51678"});
    CHECK(run_until(&h, p_downs, &one));
    CHECK_STR(h.why, "GET /v1/metadata: refused: 169.254.170.2 is a link-local address");
    h_stop(&h);

    mw__ecs_agent *a = NULL;
    char *err = NULL;
    mw__loop *loop = t_loop();
    mw__http *http = t_http(loop);
    mw__ecs_agent_opts o = {.url = "ftp://localhost:51678", .loop = loop, .http = http};
    CHECK(mw__ecs_agent_new(&o, &a, &err) == MW_EINVAL && a == NULL);
    CHECK_STR(err, "ECS agent URL \"ftp://localhost:51678\": expected http://host:port");
    free(err);
    mw__http_free(http);
    mw__loop_free(loop);
}

static void test_one_shot(void)
{
    harness h;
    size_t one = 1;
    h_start(&h, &(setup){.one_shot = 1});
    CHECK(run_until(&h, p_syncs, &one));
    CHECK(mw__ecs_agent_task_of(h.a, ID1, NULL) != NULL);
    run_for(&h, 200);
    CHECK(mw__fea_count(h.fea, MW_FEA_EP_TASKS) == 1 && h.oks == 0 && h.syncs == 1);
    mw__ecs_agent_lookup(h.a, ID3);
    CHECK(stats(&h).lookups == 0);
    h_stop(&h);

    h_start(&h, &(setup){.one_shot = 1});
    CHECK(mw__fea_down(h.fea) == 0);
    CHECK(run_until(&h, p_syncs, &one));
    CHECK(h.downs == 1 && h.criticals == 0);
    CHECK(log_count(&h, "ERROR", "cannot read the tasks of the ECS agent") == 1);
    run_for(&h, 200);
    CHECK(stats(&h).failures == 1);
    h_stop(&h);
}

int main(void)
{
    test_first_poll();
    test_transitions();
    test_outage();
    test_malformed();
    test_lookup();
    test_lookup_during_poll();
    test_restarted();
    test_link_local();
    test_one_shot();
    return TEST_RESULT();
}
