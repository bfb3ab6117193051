/*
 * test_ecs_discovery.c - Docker services joined with their ECS task
 * identity, through the whole discovery (fake Docker engine, fake ECS
 * agent, the reconciler scheduling into a recorder):
 *  - a labelled task container is scheduled at once with every ECS tag
 *    and template variable from its labels; when the agent lists it the
 *    instance stays as it was (no reschedule, across many polls), one
 *    value per tag;
 *  - a container only the agent knows gets its identity from the agent
 *    (the cluster from /v1/metadata); one outside ECS leaves a config
 *    with %%task_arn%% unresolved, with the reason;
 *  - a task container that starts while the agent is slow is scheduled
 *    before the agent answered its ?dockerid= lookup, and the answer
 *    changes nothing;
 *  - the agent's model wins where it differs from the labels, once;
 *  - ecs: off reads no label; ecs: auto asks no agent without a reason,
 *    and each reason of discovery/ecs/ecs_where.h starts one (the
 *    ecs-agent container included); a restarted ecs-agent container has
 *    the metadata read again;
 *  - one-shot discovery (configcheck) waits for the agent's answer.
 */
#include "core/base/buf.h"
#include "core/base/json.h"
#include "core/base/loop.h"
#include "core/base/util.h"
#include "core/config.h"
#include "discovery/discovery.h"
#include "discovery/ecs/ecs_boot.h"
#include "discovery/ecs/ecs_ident.h"
#include "test.h"
#include "tests/support/fake_dockerd.h"
#include "tests/support/fake_ecs_agent.h"
#include "tests/support/make.h"
#include "tmptree.h"

#include <stdlib.h>
#include <unistd.h>

#define WAIT_MS 10000
#define REGION  "eu-west-3"
#define ACCOUNT "012345678910"
#define ARN(t)  "arn:aws:ecs:" REGION ":" ACCOUNT ":task/prod/" t
#define CLUSTER "arn:aws:ecs:" REGION ":" ACCOUNT ":cluster/prod"
#define ID_C    "c0ffee0000000000000000000000000000000000000000000000000000000001"
#define ID_G    "c0ffee0000000000000000000000000000000000000000000000000000000002"

/* ------------------------------------------------------------ harness */

typedef struct inst {
    char id[64];
    char *instance; /* compact JSON */
    int live;
} inst;

typedef struct harness {
    char dir[64], sock[128];
    mw__loop *loop;
    mw__fdd *fdd;
    mw__fea *fea;
    mw__discovery *d;
    mw__log log;
    mw__buf logs;
    inst v[64];
    size_t n, schedules, unschedules;
    size_t agent_ups, agent_downs; /* ecs.agent.up OK / CRITICAL */
    char event_tags[2048];         /* the last Docker event's */
    mw__buf ecs;                   /* amazon_ecs events: "kind|title|tag,tag,...\n" */
} harness;

static void log_fn(mw_log_level level, const char *where, const char *msg, void *ud)
{
    harness *h = ud;
    (void)where;
    mw__buf_addf(&h->logs, "%d %s\n", (int)level, msg);
    if (getenv("MW_TEST_VERBOSE"))
        fprintf(stderr, "%d %s\n", (int)level, msg);
}

static mw_code rec_schedule(void *ud, const mw__match_item *it, const char *id, char **err)
{
    harness *h = ud;
    (void)err;
    h->schedules++;
    if (h->n < MW_ARRAY_LEN(h->v)) {
        inst *x = &h->v[h->n++];
        snprintf(x->id, sizeof x->id, "%s", id);
        x->instance = mw__json_canonical(it->instance);
        x->live = 1;
    }
    return MW_OK;
}

static void rec_unschedule(void *ud, const char *id)
{
    harness *h = ud;
    h->unschedules++;
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i].live && !strcmp(h->v[i].id, id))
            h->v[i].live = 0;
}

static mw_code rec_record(void *ud, const mw_record *rec)
{
    harness *h = ud;
    if (rec->type == MW_RECORD_SERVICE_CHECK && !strcmp(rec->name, "ecs.agent.up")) {
        h->agent_ups += rec->status == MW_STATUS_OK;
        h->agent_downs += rec->status == MW_STATUS_CRITICAL;
    } else if (rec->type == MW_RECORD_EVENT && !strcmp(rec->source_type_name, "amazon_ecs")) {
        const char *kind = "?";
        for (size_t i = 0; i < rec->ntags; i++)
            if (!strncmp(rec->tags[i], "ecs_event:", 10))
                kind = rec->tags[i] + 10;
        mw__buf_addf(&h->ecs, "%s|%s|", kind, rec->title);
        for (size_t i = 0; i < rec->ntags; i++)
            mw__buf_addf(&h->ecs, "%s,", rec->tags[i]);
        mw__buf_addf(&h->ecs, "\n");
        CHECK(rec->text && rec->text[0] && rec->aggregation_key);
    } else if (rec->type == MW_RECORD_EVENT) {
        h->event_tags[0] = '\0';
        for (size_t i = 0; i < rec->ntags; i++) {
            strncat(h->event_tags, rec->tags[i], sizeof h->event_tags - strlen(h->event_tags) - 2);
            strcat(h->event_tags, ",");
        }
    }
    return MW_OK;
}

/* How many amazon_ecs events of `kind` came (each line starts with it). */
static size_t ecs_count(harness *h, const char *kind)
{
    size_t n = 0, k = strlen(kind);
    for (const char *p = mw__buf_str(&h->ecs); p && *p;
         p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, kind, k) && p[k] == '|')
            n++;
    return n;
}

/* The line of the amazon_ecs event whose title holds `needle`, or "". */
static const char *ecs_line(harness *h, const char *needle)
{
    static char out[4096];
    const char *p = strstr(mw__buf_str(&h->ecs), needle), *start, *end;
    out[0] = '\0';
    if (!p)
        return out;
    for (start = p; start > mw__buf_str(&h->ecs) && start[-1] != '\n'; start--)
        ;
    end = strchr(p, '\n');
    snprintf(out, sizeof out, "%.*s", (int)(end ? end - start : (long)strlen(start)), start);
    return out;
}

typedef struct want_ecs {
    const char *kind;
    size_t n;
} want_ecs;

static int p_ecs(harness *h, const void *arg)
{
    const want_ecs *w = arg;
    return ecs_count(h, w->kind) >= w->n;
}

static int p_event(harness *h, const void *arg)
{
    (void)arg;
    return h->event_tags[0] != '\0';
}

/* The live instance of container `cid` (by its container_id tag). */
static const char *instance_of(harness *h, const char *cid)
{
    char tag[128];
    snprintf(tag, sizeof tag, "\"container_id:%s\"", cid);
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i].live && strstr(h->v[i].instance, tag))
            return h->v[i].instance;
    return NULL;
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

static void run_for(harness *h, int ms)
{
    double end = mw__mono() + ms / 1000.0;
    while (mw__mono() < end)
        mw__loop_run_once(h->loop, 5);
}

static int p_scheduled(harness *h, const void *cid)
{
    return instance_of(h, cid) != NULL;
}

static int p_not_scheduled(harness *h, const void *cid)
{
    return instance_of(h, cid) == NULL;
}

static int p_synced(harness *h, const void *arg)
{
    (void)arg;
    return mw__discovery_synced(h->d);
}

static int p_model_knows(harness *h, const void *cid)
{
    return mw__ecs_agent_task_of(mw__discovery_ecs(h->d), cid, NULL) != NULL;
}

static int p_polls(harness *h, const void *arg)
{
    mw__ecs_agent_stats st;
    mw__ecs_agent *a = mw__discovery_ecs(h->d);
    if (!a)
        return 0;
    mw__ecs_agent_stats_get(a, &st);
    return st.polls >= *(const uint64_t *)arg;
}

static int p_fea_count(harness *h, const void *arg)
{
    const uint64_t *want = arg; /* {kind, n} */
    return mw__fea_count(h->fea, (mw__fea_ep)want[0]) >= want[1];
}

static uint64_t polls_now(harness *h)
{
    mw__ecs_agent_stats st;
    mw__ecs_agent_stats_get(mw__discovery_ecs(h->d), &st);
    return st.polls;
}

static int more_polls(harness *h, uint64_t n)
{
    uint64_t want = polls_now(h) + n;
    return run_until(h, p_polls, &want);
}

static int has_log(harness *h, const char *needle)
{
    return strstr(mw__buf_str(&h->logs), needle) != NULL;
}

typedef struct setup {
    int ecs_mode;
    const char *url; /* "fea": the fake agent's; NULL: none */
    const char *config_path;
    double poll; /* 0: 0.05 */
    int one_shot;
    double pending;   /* ecs_pending_timeout; 0: 300 */
    int collect_tags; /* ecs_collect_resource_tags */
    int no_docker;    /* docker: off */
    int state;        /* procfs and state_dir under the test's directory */
} setup;

static const char *const probe_tmpl = "ad_identifiers: [ecsweb]\n"
                                      "init_config: {}\n"
                                      "instances:\n"
                                      "  - arn: \"%%task_arn%%\"\n"
                                      "    family: \"%%task_family%%\"\n"
                                      "    version: \"%%task_version%%\"\n"
                                      "    name: \"%%task_name%%\"\n"
                                      "    cluster: \"%%ecs_cluster_name%%\"\n"
                                      "    container: \"%%ecs_container_name%%\"\n"
                                      "    region: \"%%extra_region%%\"\n";

/* Fake engine and agent up; the discovery not started yet. */
static void h_fakes(harness *h)
{
    mw__fdd_opts fo = {0};
    mw__fea_opts ao = {.cluster = CLUSTER};
    char *err = NULL;
    memset(h, 0, sizeof *h);
    tmptree_new(h->dir, sizeof h->dir, "mw-ecsd");
    tmptree_put(h->dir, "templates/probe.d/auto_conf.yaml", probe_tmpl);
    snprintf(h->sock, sizeof h->sock, "%s/docker.sock", h->dir);
    fo.socket_path = h->sock;
    if (!(h->fdd = mw__fdd_new(&fo, &err)) || !(h->fea = mw__fea_new(&ao, &err))) {
        fprintf(stderr, "fakes: %s\n", err ? err : "?");
        exit(2);
    }
    mw__buf_init(&h->logs, 16 << 20);
    mw__buf_init(&h->ecs, 1 << 20);
    h->loop = t_loop();
    h->log = (mw__log){.level = MW_LOG_DEBUG, .fd = 2, .fn = log_fn, .ud = h};
}

static void h_discovery(harness *h, const setup *s)
{
    mw__template_set set = {0};
    mw__diag diag = {0};
    char host[160], tdir[128], procfs[128], state[128], *err = NULL;
    const char *off = NULL;
    snprintf(procfs, sizeof procfs, "%s/proc", h->dir);
    snprintf(state, sizeof state, "%s/state", h->dir);
    snprintf(host, sizeof host, "unix://%s", h->sock);
    snprintf(tdir, sizeof tdir, "%s/templates", h->dir);
    CHECK(mw__templates_load_dir(&set, tdir, &diag) == 0);
    mw__template_set_finish(&set);
    mw__diag_free(&diag);
    mw__discovery_opts o = {
        .loop = h->loop,
        .log = &h->log,
        .record = rec_record,
        .record_ud = h,
        .docker_mode = s->no_docker ? MW_DOCKER_OFF : MW_DOCKER_ON,
        .docker_host = host,
        .ecs_mode = s->ecs_mode,
        .ecs_agent_url = s->url && !strcmp(s->url, "fea") ? mw__fea_url(h->fea) : s->url,
        .ecs_config_path = s->config_path ? s->config_path : "/nonexistent/ecs.config",
        .ecs_poll_interval = s->poll > 0 ? s->poll : 0.05,
        .ecs_pending_timeout = s->pending,
        .ecs_collect_resource_tags = s->collect_tags,
        .procfs_path = s->state ? procfs : NULL,
        .state_dir = s->state ? state : NULL,
        .ops = {s->one_shot ? NULL : rec_schedule, s->one_shot ? NULL : rec_unschedule, h},
        .one_shot = s->one_shot,
    };
    if (mw__discovery_new(&o, &set, &h->d, &off, &err) != MW_OK) {
        fprintf(stderr, "discovery: %s\n", err ? err : "?");
        exit(2);
    }
    mw__template_set_free(&set);
}

static void h_stop(harness *h)
{
    char cmd[128];
    mw__discovery_free(h->d);
    mw__loop_free(h->loop);
    mw__fdd_free(h->fdd);
    mw__fea_free(h->fea);
    for (size_t i = 0; i < h->n; i++)
        free(h->v[i].instance);
    mw__buf_free(&h->logs);
    mw__buf_free(&h->ecs);
    snprintf(cmd, sizeof cmd, "rm -rf %s", h->dir);
    CHECK(system(cmd) == 0);
}

/* A task container as the ECS agent creates it: image ecsweb, the
 * com.amazonaws.ecs.* labels unless `labelled` is 0. */
static void run_ctr(harness *h, const char *id, const char *name, const char *task, int labelled,
                    char out[65])
{
    char arn[256];
    snprintf(arn, sizeof arn, ARN("%s"), task);
    const char *labels[] = {MW_ECS_LABEL_TASK_ARN,
                            arn,
                            MW_ECS_LABEL_CONTAINER,
                            "app",
                            MW_ECS_LABEL_FAMILY,
                            "web",
                            MW_ECS_LABEL_VERSION,
                            "3",
                            MW_ECS_LABEL_CLUSTER,
                            CLUSTER,
                            NULL};
    mw__fdd_spec s = {.id = id,
                      .name = name,
                      .image = "ecsweb:1",
                      .network_mode = "host",
                      .labels = labelled ? labels : NULL};
    CHECK(mw__fdd_run(h->fdd, &s, out) == 0);
}

/* A container of task `task` named `ecs_name` in its task definition. */
static void run_named(harness *h, const char *name, const char *task, const char *ecs_name,
                      char out[65])
{
    char arn[256];
    snprintf(arn, sizeof arn, ARN("%s"), task);
    const char *labels[] = {MW_ECS_LABEL_TASK_ARN,
                            arn,
                            MW_ECS_LABEL_CONTAINER,
                            ecs_name,
                            MW_ECS_LABEL_FAMILY,
                            "web",
                            MW_ECS_LABEL_VERSION,
                            "3",
                            MW_ECS_LABEL_CLUSTER,
                            CLUSTER,
                            NULL};
    mw__fdd_spec s = {.name = name, .image = "ecsweb:1", .network_mode = "host", .labels = labels};
    CHECK(mw__fdd_run(h->fdd, &s, out) == 0);
}

/* The agent lists task `task` (`status`) with containers app=`a` and
 * log=`b` (ids; "" for one not created yet). */
static void agent_task2(harness *h, const char *task, const char *status, const char *a,
                        const char *b)
{
    char *json = mw__sprintf(
        "{\"Arn\":\"" ARN("%s") "\",\"Family\":\"web\",\"Version\":\"3\","
                                "\"KnownStatus\":\"%s\",\"DesiredStatus\":\"RUNNING\","
                                "\"Containers\":[{\"Name\":\"app\",\"DockerId\":\"%s\"},"
                                "{\"Name\":\"log\",\"DockerId\":\"%s\"}]}",
        task, status, a, b);
    CHECK(mw__fea_put_task(h->fea, json) == 0);
    free(json);
}

/* The agent lists container `cid` in task `task` (family web, 3, app). */
static void agent_lists(harness *h, const char *task, const char *cid, const char *version)
{
    char *json = mw__sprintf(
        "{\"Arn\":\"" ARN("%s") "\",\"Family\":\"web\",\"Version\":\"%s\","
                                "\"KnownStatus\":\"RUNNING\",\"DesiredStatus\":\"RUNNING\","
                                "\"Containers\":[{\"Name\":\"app\",\"DockerId\":\"%s\","
                                "\"DockerName\":\"ecs-web-3-app\"}]}",
        task, version, cid);
    CHECK(mw__fea_put_task(h->fea, json) == 0);
    free(json);
}

/* Each ECS tag of `json` once, with the values of task `task`. */
static void check_identity(const char *json, const char *task, const char *version)
{
    static const char *const keys[] = {"task_arn",           "task_family",      "task_version",
                                       "task_name",          "ecs_cluster_name", "cluster_name",
                                       "ecs_container_name", "region",           "ecs_launch_type"};
    char want[512];
    CHECK(json != NULL);
    if (!json)
        return;
    for (size_t i = 0; i < MW_ARRAY_LEN(keys); i++) {
        char key[64];
        snprintf(key, sizeof key, "\"%s:", keys[i]);
        const char *first = strstr(json, key);
        CHECK(first && !strstr(first + 1, key)); /* one value per tag */
    }
    snprintf(want, sizeof want,
             "{\"arn\":\"" ARN("%s") "\",\"cluster\":\"prod\",\"container\":\"app\","
                                     "\"family\":\"web\",\"name\":\"web\",\"region\":\"" REGION
                                     "\",",
             task);
    CHECK(strncmp(json, want, strlen(want)) == 0);
    snprintf(want, sizeof want, "\"version\":%s}", version);
    CHECK(strstr(json, want) != NULL);
    snprintf(want, sizeof want, "\"task_arn:" ARN("%s") "\"", task);
    CHECK(strstr(json, want) != NULL);
    CHECK(strstr(json, "\"cluster_name:prod\"") && strstr(json, "\"ecs_cluster_name:prod\""));
    CHECK(strstr(json, "\"ecs_launch_type:ec2\"") && strstr(json, "\"region:" REGION "\""));
    CHECK(strstr(json, "\"task_name:web\"") && strstr(json, "\"ecs_container_name:app\""));
}

/* ------------------------------------------------------------ tests */

static void test_labels_then_agent(void)
{
    harness h;
    char c1[65], c2[65], c3[65];
    uint64_t one = 1;
    h_fakes(&h);
    h_discovery(&h, &(setup){.url = "fea"});
    CHECK(run_until(&h, p_polls, &one));

    /* labelled: scheduled at once from the labels */
    run_ctr(&h, NULL, "web-1", "t1", 1, c1);
    CHECK(run_until(&h, p_scheduled, c1));
    check_identity(instance_of(&h, c1), "t1", "3");
    CHECK(h.schedules == 1);
    uint64_t lookups[2] = {MW_FEA_EP_TASK, 1};
    CHECK(run_until(&h, p_fea_count, lookups)); /* ?dockerid=, 404 for now */

    /* the agent lists it: the same instance, poll after poll */
    agent_lists(&h, "t1", c1, "3");
    CHECK(run_until(&h, p_model_knows, c1));
    CHECK(more_polls(&h, 5));
    CHECK(h.schedules == 1 && h.unschedules == 0);
    check_identity(instance_of(&h, c1), "t1", "3");

    /* unlabelled, listed by the agent: identity from the agent alone */
    run_ctr(&h, NULL, "web-2", "t2", 0, c2);
    run_for(&h, 200);
    CHECK(instance_of(&h, c2) == NULL);
    CHECK(has_log(&h, "%%task_arn%%: the container is not part of an ECS task"));
    agent_lists(&h, "t2", c2, "3");
    CHECK(run_until(&h, p_scheduled, c2));
    check_identity(instance_of(&h, c2), "t2", "3");

    /* the agent says another revision than the labels: the agent wins,
     * once */
    run_ctr(&h, NULL, "web-3", "t3", 1, c3);
    CHECK(run_until(&h, p_scheduled, c3));
    size_t before = h.schedules;
    agent_lists(&h, "t3", c3, "4");
    CHECK(run_until(&h, p_model_knows, c3));
    CHECK(more_polls(&h, 3));
    check_identity(instance_of(&h, c3), "t3", "4");
    CHECK(h.schedules == before + 1 && h.unschedules == 1);

    /* a task container's Docker events carry its task tags, once each */
    CHECK(mw__fdd_die(h.fdd, c3, 3, 0) == 0);
    CHECK(run_until(&h, p_event, NULL));
    CHECK(strstr(h.event_tags, "container_id:") != NULL);
    CHECK(strstr(h.event_tags, "task_arn:" ARN("t3") ",") != NULL);
    CHECK(strstr(h.event_tags, "task_version:4,") && !strstr(h.event_tags, "task_version:3"));
    CHECK(strstr(h.event_tags, "ecs_container_name:app,") != NULL);
    CHECK(h.agent_ups == 1 && h.agent_downs == 0);

    /* the agent forgets t1 (stopped long ago): the labels still say the
     * same, nothing moves */
    CHECK(mw__fea_remove_task(h.fea, ARN("t1")) == 0);
    CHECK(more_polls(&h, 3));
    CHECK(h.schedules == before + 1 && h.unschedules == 2); /* c3 died */
    /* the container stops: unscheduled */
    CHECK(mw__fdd_stop(h.fdd, c1) == 0);
    CHECK(run_until(&h, p_not_scheduled, c1));
    CHECK(h.unschedules == 3);
    h_stop(&h);
}

/* ECS task events on EC2: Docker's exits and the agent's statuses, each
 * occurrence said once with its container's or task's tags. */
static void test_ec2_events(void)
{
    harness h;
    char a1[65], l1[65], a2[65], l2[65], a3[65], a5[65], l5[65];
    uint64_t one = 1;
    h_fakes(&h);
    h_discovery(&h, &(setup){.url = "fea", .pending = 0.3});
    CHECK(run_until(&h, p_polls, &one));

    /* t1: app exits 3 -> one fail; log OOM-killed -> one oom, no fail */
    run_named(&h, "web-a1", "t1", "app", a1);
    run_named(&h, "web-l1", "t1", "log", l1);
    agent_task2(&h, "t1", "RUNNING", a1, l1);
    CHECK(more_polls(&h, 2));
    CHECK(mw__fdd_die(h.fdd, a1, 3, 0) == 0);
    CHECK(run_until(&h, p_ecs, &(want_ecs){"fail", 1}));
    const char *line = ecs_line(&h, "container app exited with 3");
    const char *head = "fail|ECS task web: container app exited with 3|";
    CHECK(strncmp(line, head, strlen(head)) == 0);
    CHECK(strstr(line, "task_arn:" ARN("t1") ",") && strstr(line, "ecs_container_name:app,"));
    CHECK(strstr(line, "container_name:web-a1,") && strstr(line, "short_image:ecsweb,"));
    CHECK(strstr(line, "ecs_launch_type:ec2,") && strstr(line, "ecs_cluster_name:prod,"));
    CHECK(strstr(line, "region:" REGION ",") && strstr(line, "task_family:web,"));
    CHECK(strstr(line, "ecs_event:fail,") != NULL);
    char want[128];
    snprintf(want, sizeof want, "container_id:%s,", a1);
    CHECK(strstr(line, want) != NULL);
    CHECK(mw__fdd_die(h.fdd, l1, 137, 1) == 0);
    CHECK(run_until(&h, p_ecs, &(want_ecs){"oom", 1}));
    CHECK(strstr(ecs_line(&h, "container log was killed by the OOM killer"), "ecs_event:oom,"));
    /* the agent says STOPPED: nothing more (it failed) */
    agent_task2(&h, "t1", "STOPPED", a1, l1);
    CHECK(more_polls(&h, 4));
    CHECK(ecs_count(&h, "fail") == 1 && ecs_count(&h, "oom") == 1);
    CHECK(ecs_count(&h, "terminate") == 0);

    /* an exit 137 without an oom event: its inspect says OOMKilled */
    run_named(&h, "web-a3", "t3", "app", a3);
    CHECK(mw__fdd_die(h.fdd, a3, 137, 2) == 0);
    CHECK(run_until(&h, p_ecs, &(want_ecs){"oom", 2}));
    CHECK(ecs_count(&h, "fail") == 1);

    /* t2: both containers exit 0, the agent says STOPPED: one terminate */
    run_named(&h, "web-a2", "t2", "app", a2);
    run_named(&h, "web-l2", "t2", "log", l2);
    agent_task2(&h, "t2", "RUNNING", a2, l2);
    CHECK(more_polls(&h, 2));
    CHECK(mw__fdd_stop(h.fdd, a2) == 0);
    CHECK(mw__fdd_stop(h.fdd, l2) == 0);
    agent_task2(&h, "t2", "STOPPED", a2, l2);
    CHECK(run_until(&h, p_ecs, &(want_ecs){"terminate", 1}));
    line = ecs_line(&h, "ECS task web stopped");
    head = "terminate|ECS task web stopped (containers app, log)|";
    CHECK(strncmp(line, head, strlen(head)) == 0);
    CHECK(strstr(line, "task_arn:" ARN("t2") ",") && strstr(line, "ecs_container_name:app,") &&
          strstr(line, "ecs_container_name:log,") && !strstr(line, "container_id:"));
    CHECK(more_polls(&h, 4));
    CHECK(ecs_count(&h, "terminate") == 1 && ecs_count(&h, "fail") == 1);

    /* t4: pending past the timeout, once; then stopped with a container
     * that never started: one fail */
    agent_task2(&h, "t4", "PENDING", "", "");
    CHECK(run_until(&h, p_ecs, &(want_ecs){"pending", 1}));
    CHECK(strncmp(ecs_line(&h, "is pending for"), "pending|ECS task web is pending for ", 36) == 0);
    CHECK(more_polls(&h, 4));
    CHECK(ecs_count(&h, "pending") == 1);
    agent_task2(&h, "t4", "STOPPED", "", "");
    CHECK(run_until(&h, p_ecs, &(want_ecs){"fail", 3}));
    CHECK(more_polls(&h, 3));
    CHECK(ecs_count(&h, "fail") == 3 && ecs_count(&h, "terminate") == 1);
    CHECK(strstr(ecs_line(&h, "container app never started"), "ecs_event:fail,") != NULL);
    CHECK(strstr(ecs_line(&h, "container log never started"), "task_arn:" ARN("t4") ",") != NULL);
    CHECK(ecs_count(&h, "oom") == 2);

    /* t5: app started again in place (a restart policy: the same
     * container), exits 3 each time: one fail per exit */
    run_named(&h, "web-a5", "t5", "app", a5);
    run_named(&h, "web-l5", "t5", "log", l5);
    agent_task2(&h, "t5", "RUNNING", a5, l5);
    CHECK(more_polls(&h, 2));
    CHECK(mw__fdd_die(h.fdd, a5, 3, 0) == 0);
    CHECK(run_until(&h, p_ecs, &(want_ecs){"fail", 4}));
    CHECK(mw__fdd_start(h.fdd, a5) == 0);
    CHECK(more_polls(&h, 2));
    CHECK(mw__fdd_die(h.fdd, a5, 3, 0) == 0);
    CHECK(run_until(&h, p_ecs, &(want_ecs){"fail", 5}));
    CHECK(mw__fdd_start(h.fdd, a5) == 0);
    CHECK(mw__fdd_die(h.fdd, a5, 3, 0) == 0);
    CHECK(run_until(&h, p_ecs, &(want_ecs){"fail", 6}));
    CHECK(more_polls(&h, 3));
    CHECK(ecs_count(&h, "fail") == 6 && ecs_count(&h, "terminate") == 1);
    h_stop(&h);
}

/* A reboot: the boot id recorded in state_dir differs from this one's;
 * said once, when the agent is first asked; recorded for the next run. */
static void test_reboot(void)
{
    harness h;
    char path[160], *text = NULL;
    size_t len;
    uint64_t one = 1;
    h_fakes(&h);
    tmptree_put(h.dir, "proc/sys/kernel/random/boot_id", "6b1c0f4e-9d2a-4c3b-8e7f-0a1b2c3d4e5f\n");
    tmptree_put(h.dir, "state/boot_id", "11111111-2222-3333-4444-555555555555\n");
    h_discovery(&h, &(setup){.url = "fea", .state = 1});
    CHECK(run_until(&h, p_polls, &one));
    CHECK(ecs_count(&h, "reboot") == 1);
    CHECK(strstr(ecs_line(&h, "ECS container instance rebooted"), "ecs_event:reboot,") != NULL);
    snprintf(path, sizeof path, "%s/state/boot_id", h.dir);
    CHECK(mw__read_file(path, 4096, &text, &len) == MW_OK);
    CHECK_STR(text, "6b1c0f4e-9d2a-4c3b-8e7f-0a1b2c3d4e5f\n");
    free(text);
    mw__discovery_free(h.d);
    /* the next run on the same boot: nothing */
    mw__buf_reset(&h.ecs);
    h_discovery(&h, &(setup){.url = "fea", .state = 1});
    CHECK(run_until(&h, p_polls, &one));
    CHECK(ecs_count(&h, "reboot") == 0);
    mw__discovery_free(h.d);
    /* a state directory that cannot be written: one warning, no event */
    snprintf(path, sizeof path, "%s/state", h.dir);
    mw__ecs_boot b;
    CHECK(mw__ecs_boot_check("/nonexistent-proc", path, &b) == MW_OK);
    CHECK(b.warning && strstr(b.warning, "cannot read the boot id at /nonexistent-proc/sys/kernel/"
                                         "random/boot_id: No such file or directory"));
    mw__ecs_boot_clear(&b);
    snprintf(path, sizeof path, "%s/proc", h.dir);
    CHECK(mw__ecs_boot_check(path, "/proc/mw-no-state", &b) == MW_OK); /* never writable */
    CHECK(b.warning && strstr(b.warning, "cannot write /proc/mw-no-state/boot_id") && !b.rebooted &&
          !strcmp(b.now, "6b1c0f4e-9d2a-4c3b-8e7f-0a1b2c3d4e5f"));
    mw__ecs_boot_clear(&b);
    h.d = NULL;
    h_stop(&h);
}

/* A slow agent: the container's first schedule does not wait for its
 * ?dockerid= answer, which then changes nothing. */
static void test_slow_agent(void)
{
    harness h;
    char c[65];
    uint64_t one = 1;
    h_fakes(&h);
    h_discovery(&h, &(setup){.url = "fea", .poll = 30});
    CHECK(run_until(&h, p_polls, &one));
    agent_lists(&h, "slow", ID_C, "3"); /* not polled again in this test */
    CHECK(mw__fea_set_latency(h.fea, MW_FEA_EP_TASK, 500) == 0);
    run_ctr(&h, ID_C, "web-slow", "slow", 1, c);
    CHECK(run_until(&h, p_scheduled, c));
    /* scheduled before the agent answered: nothing waited for it */
    CHECK(!p_model_knows(&h, c));
    CHECK(run_until(&h, p_model_knows, c));
    CHECK(mw__fea_count(h.fea, MW_FEA_EP_TASK) == 1);
    run_for(&h, 100);
    CHECK(h.schedules == 1 && h.unschedules == 0);
    check_identity(instance_of(&h, c), "slow", "3");
    /* stopped: gone */
    CHECK(mw__fdd_stop(h.fdd, c) == 0);
    CHECK(run_until(&h, p_not_scheduled, c));
    h_stop(&h);
}

static void test_off(void)
{
    harness h;
    char c[65];
    h_fakes(&h);
    h_discovery(&h, &(setup){.ecs_mode = MW_ECS_OFF, .url = "fea"});
    run_ctr(&h, NULL, "web-off", "t9", 1, c);
    run_for(&h, 300);
    CHECK(instance_of(&h, c) == NULL && h.schedules == 0);
    CHECK(mw__discovery_ecs(h.d) == NULL);
    CHECK(mw__fea_count(h.fea, MW_FEA_EP_COUNT) == 0);
    CHECK(has_log(&h, "ECS discovery is off"));
    h_stop(&h);
}

/* ecs: auto asks nobody without a reason; the ecs-agent container is
 * one. Its address is loopback: nothing leaves the machine. */
static void test_auto(void)
{
    harness h;
    char c[65], agent[65];
    unsetenv("ECS_AGENT_URL");
    unsetenv("DD_ECS_AGENT_URL");
    unsetenv("ECS_CONTAINER_METADATA_URI_V4");
    unsetenv("ECS_CONTAINER_METADATA_URI");
    h_fakes(&h);
    h_discovery(&h, &(setup){0});
    run_ctr(&h, NULL, "web-auto", "ta", 1, c);
    CHECK(run_until(&h, p_scheduled, c)); /* labels are read */
    check_identity(instance_of(&h, c), "ta", "3");
    CHECK(mw__discovery_ecs(h.d) == NULL);
    mw__fdd_spec s = {.name = MW_ECS_AGENT_CONTAINER,
                      .image = "amazon/amazon-ecs-agent:latest",
                      .network_mode = "host"};
    CHECK(mw__fdd_run(h.fdd, &s, agent) == 0);
    run_for(&h, 300);
    CHECK(mw__discovery_ecs(h.d) != NULL);
    CHECK(has_log(&h, "asking the ECS agent at http://localhost:51678 for task identities (a "
                      "container named ecs-agent runs)"));
    CHECK(h.schedules == 1 && h.unschedules == 0);
    h_stop(&h);

    /* the ECS agent's config file is a reason */
    h_fakes(&h);
    tmptree_put(h.dir, "etc/ecs/ecs.config", "ECS_CLUSTER=prod\n");
    char path[128];
    snprintf(path, sizeof path, "%s/etc/ecs/ecs.config", h.dir);
    h_discovery(&h, &(setup){.config_path = path});
    CHECK(mw__discovery_ecs(h.d) != NULL);
    CHECK(has_log(&h, "ecs.config exists"));
    h_stop(&h);
}

/* The reasons, one by one. */
static void test_where(void)
{
    mw__ecs_verdict v;
    char *url = NULL, *why = NULL, dir[64], path[128];
    unsetenv("ECS_AGENT_URL");
    unsetenv("DD_ECS_AGENT_URL");
    unsetenv("ECS_CONTAINER_METADATA_URI_V4");
    unsetenv("ECS_CONTAINER_METADATA_URI");
    unsetenv("AWS_EXECUTION_ENV");
    tmptree_new(dir, sizeof dir, "mw-ecsw");
    snprintf(path, sizeof path, "%s/ecs.config", dir);

#define WHERE(mode, u, p, want_rc, want_v, want_url, want_why)                                     \
    do {                                                                                           \
        CHECK(mw__ecs_where(mode, u, p, &v, &url, &why) == want_rc);                               \
        CHECK(v == want_v);                                                                        \
        if (want_url)                                                                              \
            CHECK_STR(url, want_url);                                                              \
        else                                                                                       \
            CHECK(url == NULL);                                                                    \
        CHECK(why &&strstr(why, want_why));                                                        \
        if (why && !strstr(why, want_why))                                                         \
            fprintf(stderr, "  why: %s\n", why);                                                   \
        free(url);                                                                                 \
        free(why);                                                                                 \
    } while (0)

    WHERE(MW_ECS_OFF, "http://127.0.0.1:1", path, MW_OK, MW_ECS_NEVER, NULL, "ecs: off");
    WHERE(MW_ECS_AUTO, NULL, path, MW_OK, MW_ECS_LATER, NULL, "named ecs-agent runs");
    WHERE(MW_ECS_AUTO, "http://127.0.0.1:9", path, MW_OK, MW_ECS_HERE, "http://127.0.0.1:9",
          "ecs_agent_url is http://127.0.0.1:9");
    WHERE(MW_ECS_AUTO, "http://169.254.170.2/v1", path, MW_EINVAL, MW_ECS_NEVER, NULL,
          "169.254.170.2 is a link-local address");
    WHERE(MW_ECS_ON, NULL, path, MW_OK, MW_ECS_HERE, "http://localhost:51678", "ecs: on");
    setenv("DD_ECS_AGENT_URL", "http://127.0.0.2:51678", 1);
    WHERE(MW_ECS_AUTO, NULL, path, MW_OK, MW_ECS_HERE, "http://127.0.0.2:51678",
          "$DD_ECS_AGENT_URL");
    setenv("ECS_AGENT_URL", "http://[fe80::1]:51678", 1);
    WHERE(MW_ECS_ON, NULL, path, MW_EINVAL, MW_ECS_NEVER, NULL,
          "$ECS_AGENT_URL: fe80::1 is a link-local address");
    setenv("ECS_AGENT_URL", "http://127.0.0.3:51678", 1);
    WHERE(MW_ECS_AUTO, NULL, path, MW_OK, MW_ECS_HERE, "http://127.0.0.3:51678", "$ECS_AGENT_URL");
    unsetenv("ECS_AGENT_URL");
    unsetenv("DD_ECS_AGENT_URL");
    setenv("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4/abc", 1);
    WHERE(MW_ECS_AUTO, NULL, path, MW_OK, MW_ECS_HERE, "http://localhost:51678",
          "$ECS_CONTAINER_METADATA_URI_V4 is set");
    setenv("AWS_EXECUTION_ENV", "AWS_ECS_FARGATE", 1); /* no agent to ask on Fargate */
    WHERE(MW_ECS_AUTO, NULL, path, MW_OK, MW_ECS_LATER, NULL, "named ecs-agent runs");
    unsetenv("AWS_EXECUTION_ENV");
    unsetenv("ECS_CONTAINER_METADATA_URI_V4");
    tmptree_put(dir, "ecs.config", "ECS_CLUSTER=prod\n");
    WHERE(MW_ECS_AUTO, NULL, path, MW_OK, MW_ECS_HERE, "http://localhost:51678", "exists");
    unlink(path);
    rmdir(dir);

    /* The task metadata endpoint: v4, else v3, link-local allowed,
     * trailing '/' dropped; anything but http(s) refused. */
    const char *var = NULL;
    CHECK(mw__ecs_metadata_url(&url, &var, &why) == MW_OK && !url && !var && !why);
    setenv("ECS_CONTAINER_METADATA_URI", "http://169.254.170.2/v3/abc", 1);
    CHECK(mw__ecs_metadata_url(&url, &var, &why) == MW_OK);
    CHECK_STR(url, "http://169.254.170.2/v3/abc");
    CHECK_STR(var, "ECS_CONTAINER_METADATA_URI");
    free(url);
    setenv("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4/abc-1/", 1);
    CHECK(mw__ecs_metadata_url(&url, &var, &why) == MW_OK);
    CHECK_STR(url, "http://169.254.170.2/v4/abc-1");
    CHECK_STR(var, "ECS_CONTAINER_METADATA_URI_V4");
    free(url);
    setenv("ECS_CONTAINER_METADATA_URI_V4", "file:///etc/passwd", 1);
    CHECK(mw__ecs_metadata_url(&url, &var, &why) == MW_EINVAL && !url);
    CHECK_STR(why, "$ECS_CONTAINER_METADATA_URI_V4: \"file:///etc/passwd\" is not an http:// or "
                   "https:// URL with a host");
    free(why);
    unsetenv("ECS_CONTAINER_METADATA_URI_V4");
    unsetenv("ECS_CONTAINER_METADATA_URI");

    char *err = NULL;
    CHECK(mw__ecs_url_check("http://localhost:51678", &err) == MW_OK && !err);
    CHECK(mw__ecs_url_check("https://[::1]:51678/", &err) == MW_OK);
    CHECK(mw__ecs_url_check("http://[::ffff:169.254.1.1]:80", &err) == MW_EINVAL);
    free(err);
    CHECK(mw__ecs_url_check("http://[fd00:ec2::254]/", &err) == MW_EINVAL);
    free(err);
    CHECK(mw__ecs_url_check("unix:///run/ecs.sock", &err) == MW_EINVAL);
    CHECK_STR(err, "\"unix:///run/ecs.sock\" is not an http:// or https:// URL with a host");
    free(err);
    CHECK(mw__ecs_url_check("http://", &err) == MW_EINVAL);
    free(err);
    CHECK(mw__ecs_url_check("http://user@127.0.0.1:1", &err) == MW_EINVAL);
    free(err);
}

/* The ecs-agent container restarts: the agent's metadata is read again. */
static void test_agent_restart(void)
{
    harness h;
    char agent[65];
    uint64_t one = 1;
    h_fakes(&h);
    h_discovery(&h, &(setup){.url = "fea", .poll = 30});
    CHECK(run_until(&h, p_polls, &one));
    mw__fdd_spec s = {.name = MW_ECS_AGENT_CONTAINER,
                      .image = "amazon/amazon-ecs-agent:latest",
                      .network_mode = "host"};
    CHECK(mw__fdd_run(h.fdd, &s, agent) == 0);
    uint64_t meta2[2] = {MW_FEA_EP_METADATA, 2};
    CHECK(run_until(&h, p_fea_count, meta2)); /* a new ecs-agent container */
    run_for(&h, 200);
    CHECK(mw__fea_count(h.fea, MW_FEA_EP_METADATA) == 2);
    CHECK(mw__fdd_restart(h.fdd, agent) == 0);
    uint64_t meta3[2] = {MW_FEA_EP_METADATA, 3};
    CHECK(run_until(&h, p_fea_count, meta3));
    h_stop(&h);
}

/* configcheck: discovery is synced once the agent answered; the agent
 * alone names the unlabelled container's task. */
static void test_one_shot(void)
{
    harness h;
    char c[65];
    h_fakes(&h);
    run_ctr(&h, ID_G, "web-g", "tg", 0, c);
    agent_lists(&h, "tg", c, "7");
    CHECK(mw__fea_set_latency(h.fea, MW_FEA_EP_TASKS, 200) == 0);
    h_discovery(&h, &(setup){.url = "fea", .one_shot = 1});
    CHECK(run_until(&h, p_synced, NULL));
    CHECK(mw__fea_count(h.fea, MW_FEA_EP_TASKS) == 1);
    cJSON *resolved = cJSON_CreateArray(), *unresolved = cJSON_CreateArray();
    CHECK(mw__discovery_describe(h.d, resolved, unresolved) == MW_OK);
    CHECK(cJSON_GetArraySize(resolved) == 1 && cJSON_GetArraySize(unresolved) == 0);
    char *json = mw__json_canonical(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(resolved, 0), "instance"));
    check_identity(json, "tg", "7");
    free(json);
    cJSON_Delete(resolved);
    cJSON_Delete(unresolved);
    h_stop(&h);
}

/* The settings, from mw_config_set() and a config file alike. */
static void test_config(void)
{
    mw_config *c = mw_config_new(), *d;
    char *err = NULL, dir[64], path[128];
    CHECK(c->ecs_mode == MW_ECS_AUTO && c->ecs_poll_interval == 5 && !c->ecs_agent_url);
    CHECK(mw_config_set(c, "ecs", "off", NULL) == MW_OK && c->ecs_mode == MW_ECS_OFF);
    CHECK(mw_config_set(c, "ecs", "on", NULL) == MW_OK && c->ecs_mode == MW_ECS_ON);
    CHECK(mw_config_set(c, "ecs", "sometimes", &err) == MW_EINVAL);
    CHECK_STR(err, "ecs: expected auto, on or off, got \"sometimes\"");
    mw_free(err);
    CHECK(mw_config_set(c, "ecs_agent_url", "http://169.254.170.2:51678", &err) == MW_EINVAL);
    CHECK_STR(err, "ecs_agent_url: 169.254.170.2 is a link-local address: the ECS agent's "
                   "introspection API listens on the instance itself (http://localhost:51678)");
    mw_free(err);
    CHECK(mw_config_set(c, "ecs_agent_url", "localhost:51678", &err) == MW_EINVAL);
    CHECK_STR(err, "ecs_agent_url: \"localhost:51678\" is not an http:// or https:// URL with a "
                   "host");
    mw_free(err);
    CHECK(mw_config_set(c, "ecs_poll_interval", "0", &err) == MW_EINVAL);
    CHECK(err && strstr(err, "ecs_poll_interval: expected a number >= 0.01"));
    mw_free(err);
    CHECK(mw_config_set(c, "ecs_config_path", "etc/ecs/ecs.config", &err) == MW_EINVAL);
    CHECK_STR(err, "ecs_config_path: expected an absolute path, got \"etc/ecs/ecs.config\"");
    mw_free(err);
    tmptree_new(dir, sizeof dir, "mw-ecsc");
    tmptree_put(dir, "moonwatch.yaml",
                "ecs: auto\necs_agent_url: http://127.0.0.1:51678\necs_poll_interval: 0.25\n"
                "ecs_config_path: /host/etc/ecs/ecs.config\n");
    snprintf(path, sizeof path, "%s/moonwatch.yaml", dir);
    CHECK(mw_config_load_file(c, path, &err) == MW_OK);
    CHECK(c->ecs_mode == MW_ECS_AUTO && c->ecs_poll_interval == 0.25);
    CHECK_STR(c->ecs_agent_url, "http://127.0.0.1:51678");
    d = mw__config_dup(c);
    CHECK(d && d->ecs_agent_url != c->ecs_agent_url);
    CHECK_STR(d->ecs_agent_url, "http://127.0.0.1:51678");
    CHECK_STR(d->ecs_config_path, "/host/etc/ecs/ecs.config");
    CHECK(mw_config_set(c, "ecs_agent_url", "", NULL) == MW_OK && c->ecs_agent_url == NULL);
    mw_config_free(d);
    mw_config_free(c);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    test_labels_then_agent();
    test_ec2_events();
    test_reboot();
    test_slow_agent();
    test_off();
    test_auto();
    test_where();
    test_agent_restart();
    test_one_shot();
    test_config();
    return TEST_RESULT();
}
