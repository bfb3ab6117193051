/*
 * test_ecs_meta.c - the ECS task metadata source (discovery/ecs/ecs_meta.h)
 * against the fake agent's v4 endpoint, on a loop of its own:
 *  - its RUNNING NORMAL containers are services docker://<DockerId>, with
 *    their name, image, labels, first IPv4 address, ports and the tags
 *    made from them; moonwatch's own container (GET ${URI}) is not one
 *    unless include_self; a CNI_PAUSE or a PENDING container never is;
 *    the container filter applies;
 *  - a container that stops goes; an empty container list removes all;
 *  - a payload that is not JSON, or whose Containers is not an array,
 *    is one error (not one per poll) and keeps the services; the
 *    endpoint going away keeps them too, with one warning, and its
 *    return is said;
 *  - /taskWithTags with with_tags; identity only: no services, each
 *    container of a changed task annotated;
 *  - one_shot: one answer or failure, then synced.
 */
#include "core/base/buf.h"
#include "core/base/loop.h"
#include "core/base/util.h"
#include "discovery/ecs/ecs_meta.h"
#include "test.h"
#include "tests/support/fake_ecs_agent.h"
#include "tests/support/make.h"

#include <stdlib.h>

#define WAIT_MS 10000
#define FIX     MW_TEST_SOURCE_DIR "/tests/fixtures/ecs"
#define FG      "arn:aws:ecs:us-east-2:111122223333:task/fargate-demo/0a1b2c3d4e5f60718293a4b5c6d7e8f9"
#define ID(n)   "0a1b2c3d4e5f60718293a4b5c6d7e8f9-" n
#define SELF    ID("1111111111")
#define WEB     ID("2222222222")
#define WORKER  ID("3333333333")

typedef struct harness {
    mw__loop *loop;
    mw__http *http;
    mw__fea *fea;
    mw__ecs_meta *m;
    mw__log log;
    mw__buf logs;
    size_t upserts, removes, syncs, annotations;
    char annotated[4096];
} harness;

static void log_fn(mw_log_level level, const char *where, const char *msg, void *ud)
{
    harness *h = ud;
    (void)where;
    mw__buf_addf(&h->logs, "%d %s\n", (int)level, msg);
    if (getenv("MW_TEST_VERBOSE"))
        fprintf(stderr, "%d %s\n", (int)level, msg);
}

static void on_upsert(void *ud, const mw__service *svc)
{
    harness *h = ud;
    h->upserts++;
    CHECK(svc->origin == MW_SVC_TASK_METADATA);
}

static void on_remove(void *ud, const char *id)
{
    harness *h = ud;
    (void)id;
    h->removes++;
}

static void on_synced(void *ud)
{
    ((harness *)ud)->syncs++;
}

static void on_annotate(void *ud, const char *cid)
{
    harness *h = ud;
    h->annotations++;
    strncat(h->annotated, cid, sizeof h->annotated - strlen(h->annotated) - 2);
    strcat(h->annotated, ",");
}

static size_t count_log(harness *h, const char *needle)
{
    size_t n = 0;
    for (const char *p = mw__buf_str(&h->logs); (p = strstr(p, needle)); p++)
        n++;
    return n;
}

typedef int (*pred_fn)(harness *h, const void *arg);

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

static int p_polls(harness *h, const void *arg)
{
    mw__ecs_meta_stats st;
    mw__ecs_meta_stats_get(h->m, &st);
    return st.polls + st.malformed >= *(const uint64_t *)arg;
}

/* `n` more answered polls. */
static int polls(harness *h, uint64_t n)
{
    mw__ecs_meta_stats st;
    mw__ecs_meta_stats_get(h->m, &st);
    uint64_t want = st.polls + st.malformed + n;
    return run_until(h, p_polls, &want);
}

static int p_up(harness *h, const void *arg)
{
    mw__ecs_meta_stats st;
    mw__ecs_meta_stats_get(h->m, &st);
    return st.up == *(const int *)arg;
}

static int p_failures(harness *h, const void *arg)
{
    mw__ecs_meta_stats st;
    mw__ecs_meta_stats_get(h->m, &st);
    return st.failures >= *(const uint64_t *)arg;
}

static int p_synced(harness *h, const void *arg)
{
    (void)arg;
    return h->syncs > 0;
}

static void h_start(harness *h, const char *exclude_name)
{
    char *err = NULL;
    memset(h, 0, sizeof *h);
    if (!(h->fea = mw__fea_new(NULL, &err))) {
        fprintf(stderr, "fake agent: %s\n", err ? err : "?");
        exit(2);
    }
    CHECK(mw__fea_load(h->fea, FIX "/v4_task_fargate.json") == 0);
    CHECK(mw__fea_v4_select(h->fea, NULL, "moonwatch") == 0);
    mw__buf_init(&h->logs, 16 << 20);
    h->loop = t_loop();
    h->http = t_http(h->loop);
    h->log = (mw__log){.level = MW_LOG_DEBUG, .fd = 2, .fn = log_fn, .ud = h};
    (void)exclude_name;
}

static mw__filter *filter_of(const char *exclude)
{
    mw__diag diag = {0};
    mw__filter *f = mw__filter_new("", exclude, "filter", &diag);
    mw__diag_free(&diag);
    return f;
}

static void h_source(harness *h, mw__ecs_meta_opts o)
{
    char *err = NULL;
    o.url = mw__fea_v4_url(h->fea);
    o.loop = h->loop;
    o.http = h->http;
    o.log = &h->log;
    o.poll_interval = o.poll_interval > 0 ? o.poll_interval : 0.05;
    o.backoff_min = 0.05;
    o.backoff_max = 0.2;
    o.cbs = (mw__source_cbs){.upsert = on_upsert,
                             .remove = on_remove,
                             .synced = on_synced,
                             .annotate = on_annotate,
                             .ud = h};
    CHECK(mw__ecs_meta_new(&o, &h->m, &err) == MW_OK);
    if (!h->m) {
        fprintf(stderr, "source: %s\n", err ? err : "?");
        exit(2);
    }
}

static void h_stop(harness *h)
{
    mw__ecs_meta_free(h->m);
    mw__http_free(h->http);
    mw__loop_free(h->loop);
    mw__fea_free(h->fea);
    mw__buf_free(&h->logs);
}

static const mw__service *svc(harness *h, const char *cid)
{
    char id[128];
    snprintf(id, sizeof id, "docker://%s", cid);
    return mw__ecs_meta_get(h->m, id);
}

static int has_tag(const mw__service *s, const char *tag)
{
    for (size_t i = 0; s && i < s->ntags; i++)
        if (!strcmp(s->tags[i], tag))
            return 1;
    return 0;
}

/* ------------------------------------------------------------ tests */

static void test_services(void)
{
    harness h;
    mw__ecs_meta_stats st;
    h_start(&h, NULL);
    h_source(&h, (mw__ecs_meta_opts){.services = 1});
    CHECK(polls(&h, 1) && h.syncs == 1);
    mw__ecs_meta_stats_get(h.m, &st);
    CHECK_STR(st.self, SELF);
    CHECK(st.services == 2 && h.upserts == 2);
    CHECK(svc(&h, SELF) == NULL);
    const mw__service *w = svc(&h, WEB), *k = svc(&h, WORKER);
    CHECK(w && k);
    if (w && k) {
        CHECK_STR(w->name, "web");
        CHECK_STR(w->image, "public.ecr.aws/nginx/nginx:1.25");
        CHECK(w->nnets == 1 && !strcmp(w->nets[0].name, "awsvpc") &&
              !strcmp(w->nets[0].ip, "127.0.0.42") && !w->host_network);
        CHECK(w->nports == 1 && w->ports[0].number == 80 && !strcmp(w->ports[0].proto, "tcp"));
        CHECK(k->nports == 0);
        CHECK(has_tag(w, "container_id:" WEB) && has_tag(w, "container_name:web"));
        CHECK(has_tag(w, "short_image:nginx") && has_tag(w, "image_tag:1.25"));
        CHECK(has_tag(w, "image_name:public.ecr.aws/nginx/nginx"));
        CHECK(has_tag(w, "docker_image:public.ecr.aws/nginx/nginx:1.25") && has_tag(w, "env:prod"));
        CHECK_STR(mw__service_label(w, "com.amazonaws.ecs.container-name"), "web");
    }
    const mw__ecs_container *c = NULL;
    CHECK(mw__ecs_meta_task_of(h.m, WEB, &c) == mw__ecs_meta_task(h.m) && c &&
          !strcmp(c->name, "web"));
    CHECK(mw__ecs_meta_task_of(h.m, "nope", &c) == NULL && c == NULL);
    CHECK(count_log(&h, "task webapp:3 (FARGATE), 3 containers, 2 services") == 1);
    /* polls that change nothing upsert nothing */
    CHECK(polls(&h, 3));
    CHECK(h.upserts == 2 && h.removes == 0);
    mw__ecs_meta_stats_get(h.m, &st);
    CHECK(st.changes == 1);

    /* worker stops (exit 0): removed; web is upserted again (the task
     * changed); a new PENDING container is not a service */
    CHECK(mw__fea_container_stop(h.fea, FG, "worker", 0) == 0);
    CHECK(mw__fea_put_container(h.fea, FG, "late", "", "late") == 0);
    CHECK(mw__fea_container_status(h.fea, FG, "late", "PENDING") == 0);
    CHECK(polls(&h, 2));
    CHECK(svc(&h, WORKER) == NULL && svc(&h, WEB) != NULL && h.removes == 1);
    CHECK(h.upserts == 3);
    /* it runs: a service (without an image it is left out, said once) */
    CHECK(mw__fea_put_container(h.fea, FG, "late", ID("4444444444"), "late") == 0);
    CHECK(mw__fea_container_status(h.fea, FG, "late", "RUNNING") == 0);
    CHECK(polls(&h, 2));
    CHECK(svc(&h, ID("4444444444")) == NULL);
    CHECK(count_log(&h, "container late (0a1b2c3d4e5f) left out: no Image") == 1);

    /* an empty container list: every service goes */
    CHECK(mw__fea_put_task(h.fea, "{\"TaskARN\":\"" FG "\",\"Family\":\"webapp\","
                                  "\"Revision\":\"3\",\"KnownStatus\":\"RUNNING\","
                                  "\"Containers\":[]}") == 0);
    CHECK(polls(&h, 2));
    mw__ecs_meta_stats_get(h.m, &st);
    CHECK(st.services == 0 && h.removes == 2);
    h_stop(&h);
}

/* The asking container may be one; a CNI_PAUSE one never; the filter
 * applies. */
static void test_self_pause_filter(void)
{
    harness h;
    mw__ecs_meta_stats st;
    h_start(&h, NULL);
    h_source(&h, (mw__ecs_meta_opts){.services = 1, .include_self = 1});
    CHECK(polls(&h, 1));
    mw__ecs_meta_stats_get(h.m, &st);
    CHECK(st.services == 3 && !st.self[0]);
    CHECK(mw__fea_count(h.fea, MW_FEA_EP_V4_CONTAINER) == 0); /* not asked */
    h_stop(&h);

    h_start(&h, NULL);
    mw__filter *f = filter_of("name:^worker$");
    h_source(&h, (mw__ecs_meta_opts){.services = 1, .filter = f});
    CHECK(polls(&h, 1));
    CHECK(svc(&h, WEB) && !svc(&h, WORKER));
    h_stop(&h);
    mw__filter_free(f);

    /* the EC2 example: its CNI_PAUSE container is no service */
    h_start(&h, NULL);
    CHECK(mw__fea_load(h.fea, FIX "/v4_task.json") == 0);
    CHECK(mw__fea_v4_select(h.fea,
                            "arn:aws:ecs:us-west-2:111122223333:task/default/"
                            "158d1c8083dd49d6b527399fd6414f5c",
                            "curl") == 0);
    h_source(&h, (mw__ecs_meta_opts){.services = 1, .include_self = 1});
    CHECK(polls(&h, 1));
    mw__ecs_meta_stats_get(h.m, &st);
    CHECK(st.services == 1);
    CHECK(svc(&h, "ee08638adaaf009d78c248913f629e38299471d45fe7dc944d1039077e3424ca") != NULL);
    CHECK(svc(&h, "598cba581fe3f939459eaba1e071d5c93bb2c49b7d1ba7db6bb19deeb70d8e38") == NULL);
    CHECK(count_log(&h, "(EC2)") == 1);
    h_stop(&h);
}

/* Payloads that are not a task, and the endpoint going away: what was
 * held stays; each problem is said once. */
static void test_failures(void)
{
    harness h;
    mw__ecs_meta_stats st;
    int down = 0, up = 1;
    h_start(&h, NULL);
    h_source(&h, (mw__ecs_meta_opts){.services = 1});
    CHECK(polls(&h, 1));
    CHECK(mw__fea_fail_next(h.fea, MW_FEA_EP_V4_TASK, 200, "<html>oops</html>", 4) == 0);
    CHECK(polls(&h, 5));
    CHECK(count_log(&h, "GET /task: not a task, the last one is kept: task: not JSON") == 1);
    CHECK(mw__fea_fail_next(h.fea, MW_FEA_EP_V4_TASK, 200,
                            "{\"TaskARN\":\"arn:a\",\"Containers\":{}}", 3) == 0);
    CHECK(polls(&h, 4));
    CHECK(count_log(&h, "not a task, the last one is kept: Containers: not an array") == 1);
    mw__ecs_meta_stats_get(h.m, &st);
    CHECK(st.services == 2 && st.malformed == 7 && h.removes == 0);
    CHECK(h.upserts == 2);
    /* unknown and omitted fields are fine */
    CHECK(mw__fea_fail_next(h.fea, MW_FEA_EP_V4_TASK, 200,
                            "{\"TaskARN\":\"" FG "\",\"Future\":{\"x\":[1]},\"Containers\":[{"
                            "\"Name\":\"web\",\"DockerId\":\"" WEB "\",\"Image\":\"nginx\","
                            "\"KnownStatus\":\"RUNNING\",\"NewField\":7}]}",
                            1) == 0);
    CHECK(polls(&h, 2));
    CHECK(count_log(&h, "left out") == 0 && count_log(&h, "not a task") == 2);
    /* an HTTP error and the endpoint away: one warning, kept; back */
    CHECK(mw__fea_down(h.fea) == 0);
    CHECK(run_until(&h, p_up, &down));
    uint64_t t0 = mw__fea_count(h.fea, MW_FEA_EP_COUNT), three = 3;
    CHECK(run_until(&h, p_failures, &three)); /* retries meanwhile */
    CHECK(count_log(&h, "ECS task metadata endpoint at") == 1);
    mw__ecs_meta_stats_get(h.m, &st);
    CHECK(st.services == 2 && st.outages == 1);
    CHECK(mw__fea_up(h.fea) == 0);
    CHECK(run_until(&h, p_up, &up));
    CHECK(count_log(&h, "ECS task metadata endpoint answers again after") == 1);
    CHECK(mw__fea_count(h.fea, MW_FEA_EP_COUNT) > t0);
    CHECK(mw__fea_fail_next(h.fea, MW_FEA_EP_V4_TASK, 500, "busy", 1) == 0);
    CHECK(run_until(&h, p_up, &down));
    CHECK(run_until(&h, p_up, &up));
    CHECK(count_log(&h, "GET /task: HTTP 500: busy") == 1);
    h_stop(&h);
}

/* /taskWithTags; identity only; one_shot. */
static void test_modes(void)
{
    harness h;
    mw__fea_request last;
    h_start(&h, NULL);
    h_source(&h, (mw__ecs_meta_opts){.services = 1, .with_tags = 1});
    CHECK(polls(&h, 1));
    CHECK(mw__fea_last_request(h.fea, MW_FEA_EP_V4_TASK, &last) == 0);
    CHECK(strstr(last.target, "/taskWithTags") != NULL);
    const mw__ecs_task *t = mw__ecs_meta_task(h.m);
    CHECK(t && cJSON_GetArraySize(t->resource_tags) == 2);
    h_stop(&h);

    h_start(&h, NULL);
    h_source(&h, (mw__ecs_meta_opts){.services = 0});
    CHECK(polls(&h, 3));
    CHECK(h.upserts == 0 && mw__ecs_meta_get(h.m, "docker://" WEB) == NULL);
    CHECK(h.annotations == 3 && strstr(h.annotated, WEB) && strstr(h.annotated, SELF));
    CHECK(mw__ecs_meta_task_of(h.m, WEB, NULL) != NULL);
    CHECK(mw__fea_task_status(h.fea, FG, "STOPPED", "STOPPED") == 0);
    CHECK(polls(&h, 2));
    CHECK(h.annotations == 6);
    h_stop(&h);

    h_start(&h, NULL);
    h_source(&h, (mw__ecs_meta_opts){.services = 1, .one_shot = 1, .poll_interval = 0.01});
    CHECK(run_until(&h, p_synced, NULL));
    for (double end = mw__mono() + 0.1; mw__mono() < end;)
        mw__loop_run_once(h.loop, 10); /* no second poll comes */
    CHECK(mw__fea_count(h.fea, MW_FEA_EP_V4_TASK) == 1 && h.upserts == 2);
    h_stop(&h);

    h_start(&h, NULL);
    CHECK(mw__fea_down(h.fea) == 0);
    h_source(&h, (mw__ecs_meta_opts){.services = 1, .one_shot = 1});
    CHECK(run_until(&h, p_synced, NULL));
    CHECK(count_log(&h, "cannot read the task metadata at") == 1);
    h_stop(&h);

    char *err = NULL;
    mw__ecs_meta *m = NULL;
    mw__ecs_meta_opts bad = {.url = "ftp://x"};
    CHECK(mw__ecs_meta_new(&bad, &m, &err) == MW_EINVAL && !m);
    CHECK_STR(err, "task metadata URL \"ftp://x\": expected http(s)://");
    free(err);
}

int main(void)
{
    test_services();
    test_self_pause_filter();
    test_failures();
    test_modes();
    return TEST_RESULT();
}
