/*
 * test_amazon_ecs_check.c - the bundled checks/amazon_ecs.lua run by the
 * engine against the fake ECS API (tests/support/fake_aws.h: SigV4
 * verified, paginated, batch limits enforced, calls counted per action),
 * reached as on AWS through $AWS_ENDPOINT_URL_ECS with temporary
 * credentials in the environment, its state under a temporary state_dir:
 *  - every metric with its value and tags, per container instance, per
 *    cluster and per service; aws.ecs.agent_connected OK, and CRITICAL
 *    naming the EC2 instance whose agent is not connected;
 *  - the calls per action of a run, counted by the fake;
 *  - a service event of each kind, sent once: not again on the next run,
 *    nor after a restart of the engine (a new engine on the same
 *    state_dir); new events (two at the same createdAt) sent once; on the
 *    first run, events older than event_lookback are not sent, nor are
 *    events that hold no keyword; with event_keywords: [] they are;
 *  - drain once per turn to DRAINING (DRAINING, ACTIVE, DRAINING: two),
 *    terminate once when a container instance is deregistered
 *    (INACTIVE) or gone;
 *  - amazon_ecs.can_connect CRITICAL naming the action AWS denied, the
 *    other metrics still sent; throttled calls retried, OK;
 *  - more than one page of container instances and services, with the
 *    calls AWS's page and batch limits force and no more; clusters by
 *    name and by ARN (no ListClusters), an unknown one warned about;
 *    collect_services off; 1,000 container instances and 200 services
 *    in one run within the default budget;
 *  - throughout, the debug log and every record are searched for the
 *    secret key, the session token and the signatures: none may appear.
 * As root, the test runs in a network namespace of its own with only
 * loopback up. Every wait is bounded in steps and time.
 */
#include "moonwatch.h"
#include "core/base/buf.h"
#include "core/base/util.h"
#include "core/engine.h"
#include "test.h"
#include "tests/support/ecs_api_model.h"
#include "tests/support/fake_aws.h"
#include "tests/support/make.h"
#include "tests/support/run_now.h"
#include "tmptree.h"

#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_ID   "ASIAECSCHECKTEST0001"
#define SECRET   "ecsCheck/Secret+Key0001abcdefghijklmnopqr"
#define TOKEN    "ecsCheckSessionToken/IQoJb3JpZ2luX2VjEPr//////////wEaCXVzLWVhc3QtMSJH"
#define ARN      "arn:aws:ecs:us-east-1:123456789012:"
#define CI(c, i) ARN "container-instance/" c "/" i
#define I_A      "i-0aaa0000000000001"
#define I_B      "i-0bbb0000000000002"
#define I_C      "i-0ccc0000000000003"

/* ------------------------------------------------------------- records */

typedef struct rec {
    mw_record_type type;
    char *name, *tags, *message, *title, *text, *alert_type, *source;
    double value;
    int status;
    int64_t timestamp;
} rec;

static rec *recs;
static size_t nrecs, caprecs;
static char tmp[64];
static mw__faws *fake;
static mw__buf seen; /* the log and every record's text */
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static char sigs[64][80];
static size_t nsigs;
static double T; /* the model's "now", Unix seconds */

static void see(const char *s)
{
    pthread_mutex_lock(&seen_mu);
    mw__buf_adds(&seen, s ? s : "");
    mw__buf_addc(&seen, '\n');
    pthread_mutex_unlock(&seen_mu);
}

static void log_line(mw_log_level level, const char *where, const char *msg, void *ud)
{
    (void)level;
    (void)ud;
    see(where);
    see(msg);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The tags sorted and joined with ','. */
static char *join_tags(const mw_record *r)
{
    const char *v[128];
    size_t n = r->ntags < 128 ? r->ntags : 128, len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen((v[i] = r->tags[i])) + 1;
    qsort(v, n, sizeof *v, cmp_str);
    char *s = calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(s, ",");
        strcat(s, v[i]);
    }
    return s;
}

static char *sdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void collect(const mw_record *r, void *ud)
{
    (void)ud;
    if (nrecs == caprecs) {
        caprecs = caprecs ? 2 * caprecs : 1024;
        recs = realloc(recs, caprecs * sizeof *recs);
    }
    rec *x = &recs[nrecs++];
    *x = (rec){r->type,        sdup(r->name), join_tags(r),        sdup(r->message),
               sdup(r->title), sdup(r->text), sdup(r->alert_type), sdup(r->source_type_name),
               r->value,       r->status,     r->timestamp};
    see(r->message);
    see(r->text);
    see(r->title);
    see(x->tags);
}

static void clear_recs(void)
{
    for (size_t i = 0; i < nrecs; i++) {
        rec *x = &recs[i];
        free(x->name), free(x->tags), free(x->message), free(x->title), free(x->text);
        free(x->alert_type), free(x->source);
    }
    nrecs = 0;
}

/* The value of metric `name` tagged exactly `tags` (sorted), NAN when
 * not sent. */
static double metric(const char *name, const char *tags)
{
    for (size_t i = 0; i < nrecs; i++)
        if (recs[i].type == MW_RECORD_METRIC && !strcmp(recs[i].name, name) &&
            !strcmp(recs[i].tags, tags))
            return recs[i].value;
    return NAN;
}

static size_t count(mw_record_type type, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < nrecs; i++)
        n += recs[i].type == type && (!name || !strcmp(recs[i].name, name));
    return n;
}

static const rec *service_check(const char *name, const char *tags)
{
    for (size_t i = 0; i < nrecs; i++)
        if (recs[i].type == MW_RECORD_SERVICE_CHECK && !strcmp(recs[i].name, name) &&
            (!tags || !strcmp(recs[i].tags, tags)))
            return &recs[i];
    return NULL;
}

static const rec *event(const char *title)
{
    for (size_t i = 0; i < nrecs; i++)
        if (recs[i].type == MW_RECORD_EVENT && !strcmp(recs[i].title, title))
            return &recs[i];
    return NULL;
}

static size_t events(void)
{
    return count(MW_RECORD_EVENT, NULL);
}

/* ------------------------------------------------------------- rig */

static mw_engine *new_engine(void)
{
    mw_config *cfg = mw_config_new();
    char state[128];
    snprintf(state, sizeof state, "%s/state", tmp);
    CHECK(mw_config_set(cfg, "no_bundled", "true", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "checks_dir", MW_TEST_SOURCE_DIR "/checks", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "sink", "none", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "log_level", "debug", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "flush_interval", "600", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "docker", "off", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "ecs", "off", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "workers", "1", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "state_dir", state, NULL) == MW_OK);
    CHECK(mw_config_set_log(cfg, log_line, NULL) == MW_OK);
    mw_engine *eng = t_engine(cfg);
    t_asked_only(eng);
    mw_config_free(cfg);
    CHECK(mw_engine_add_sink(eng, collect, NULL) == MW_OK);
    return eng;
}

static const char *const actions[] = {
    "ListClusters", "DescribeClusters", "ListContainerInstances", "DescribeContainerInstances",
    "ListServices", "DescribeServices",
};
static uint64_t calls[6]; /* per action, in the last run */

/* Runs `id` once, its records in `recs`, the calls it made in `calls`;
 * returns the status of moonwatch.check_status (-1: none in time). */
static int run(mw_engine *eng, const char *id)
{
    uint64_t before[6];
    for (size_t i = 0; i < 6; i++)
        before[i] = mw__faws_count(fake, actions[i]);
    clear_recs();
    CHECK(t_run_now(eng, id) == MW_OK); /* see run_now.h */
    const rec *st = NULL;
    for (double end = mw__mono() + 30; !st && mw__mono() < end;) {
        for (int i = 0; i < 10; i++)
            mw_engine_step(eng, 5);
        mw_engine_flush(eng);
        st = service_check("moonwatch.check_status", NULL);
    }
    for (size_t i = 0; i < 6; i++)
        calls[i] = mw__faws_count(fake, actions[i]) - before[i];
    if (nsigs < 64)
        mw__faws_last_signature(fake, sigs[nsigs++], sizeof sigs[0]);
    if (st && st->status != 0 && !strstr(st->message, "bad option"))
        fprintf(stderr, "run failed: %s\n", st->message);
    return st ? st->status : -1;
}

static int calls_are(uint64_t lc, uint64_t dc, uint64_t lci, uint64_t dci, uint64_t ls, uint64_t ds)
{
    uint64_t want[6] = {lc, dc, lci, dci, ls, ds};
    int ok = 1;
    for (size_t i = 0; i < 6; i++) {
        if (calls[i] != want[i]) {
            fprintf(stderr, "%s: %llu calls, expected %llu\n", actions[i],
                    (unsigned long long)calls[i], (unsigned long long)want[i]);
            ok = 0;
        }
    }
    return ok;
}

/* The status of amazon_ecs.can_connect; its message in `*msg`. */
static int can_connect(const char **msg)
{
    const rec *r = service_check("amazon_ecs.can_connect", NULL);
    if (msg)
        *msg = r ? r->message : "";
    return r ? r->status : -1;
}

/* ------------------------------------------------------------- model */

static void put_instance(const char *cluster, const char *ec2, const char *status, int connected,
                         int running, int pending, const char *version)
{
    ecsm_instance in = {ec2,  NULL, status, connected, running, pending,
                        2048, 1024, 3768,   1200,      version};
    char *j = ecsm_instance_json(&in);
    CHECK(mw__faws_put_instance(fake, cluster, j) == 0);
    free(j);
}

static void put_service(const char *cluster, const char *name, int desired, int running,
                        int pending, const ecsm_event *ev, size_t nev)
{
    ecsm_service s = {name, NULL, desired, running, pending, ev, nev};
    char *j = ecsm_service_json(&s);
    CHECK(mw__faws_put_service(fake, cluster, j) == 0);
    free(j);
}

/* prod's services: web and api, with an event of each kind within the
 * lookback, one that holds no keyword, one that is too old. */
static ecsm_event web_ev[8], api_ev[4];
static size_t nweb;

static void web_events(void)
{
    put_service("prod", "web", 3, 2, 1, web_ev, nweb);
}

static void build_model(void)
{
    T = (double)(int64_t)mw__wall();
    web_ev[0] = (ecsm_event){"e7", T - 10.25, "(service web) has started 1 tasks: (task 1234)."};
    web_ev[1] = (ecsm_event){"e6", T - 20.5,
                             "(service web) was unable to place a task because no container "
                             "instance met all of its requirements. The closest matching "
                             "(container-instance 3f4de1c5) has insufficient memory available."};
    web_ev[2] = (ecsm_event){"e5", T - 30,
                             "(service web) (task 5678) failed container health "
                             "checks."};
    web_ev[3] = (ecsm_event){"e4", T - 40,
                             "(service web) has stopped 1 running tasks: (task 9). "
                             "Reason: Instance scheduled to TERMINATE"};
    web_ev[4] = (ecsm_event){"e3", T - 400, "(service web) (task 1) failed: too old to be sent"};
    nweb = 5;
    api_ev[0] = (ecsm_event){"a4", T - 5, "(service api) is Draining connections of (task 11)"};
    api_ev[1] =
        (ecsm_event){"a3", T - 15, "(service api) encountered an error: CannotPullContainer"};
    api_ev[2] = (ecsm_event){"a2", T - 25, "(service api) has tasks PENDING for 6 minutes"};
    api_ev[3] = (ecsm_event){"a1", T - 35, "(service api) (instance " I_A ") will reboot"};
    put_instance("prod", I_A, "ACTIVE", 1, 3, 1, "1.80.0");
    put_instance("prod", I_B, "ACTIVE", 0, 0, 0, "1.79.1");
    web_events();
    put_service("prod", "api", 2, 2, 0, api_ev, 4);
    put_instance("staging", I_C, "ACTIVE", 1, 1, 0, "1.80.0");
}

/* ------------------------------------------------------------- cases */

#define TAGS_A                                                                                     \
    "container_instance_arn:" CI("prod", I_A) ",ecs_agent_version:1.80.0,ecs_cluster_name:prod,"   \
                                              "instance_id:" I_A ",region:us-east-1,status:ACTIVE"
#define TAGS_B                                                                                     \
    "container_instance_arn:" CI("prod", I_B) ",ecs_agent_version:1.79.1,ecs_cluster_name:prod,"   \
                                              "instance_id:" I_B ",region:us-east-1,status:ACTIVE"
#define PROD    "ecs_cluster_name:prod,region:us-east-1"
#define STAGING "ecs_cluster_name:staging,region:us-east-1"
#define WEB     "ecs_cluster_name:prod,ecs_service:web,region:us-east-1"
#define API     "ecs_cluster_name:prod,ecs_service:api,region:us-east-1"

static void check_event(const char *title, const char *kind, const char *alert, const char *svc,
                        const ecsm_event *e)
{
    char tags[256];
    const rec *r = event(title);
    CHECK(r != NULL);
    if (!r) {
        fprintf(stderr, "no event %s\n", title);
        return;
    }
    snprintf(tags, sizeof tags,
             "ecs_cluster_name:prod,ecs_event:%s,ecs_service:%s,region:us-east-1", kind, svc);
    CHECK_STR(r->tags, tags);
    CHECK_STR(r->text, e->message);
    CHECK_STR(r->alert_type, alert);
    CHECK_STR(r->source, "amazon_ecs");
    CHECK(r->timestamp == (int64_t)e->created);
}

/* The inode of the instance's state file (a save replaces it); 0: none. */
static ino_t state_inode(const char *id)
{
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/state/checks/%s.state", tmp, id);
    char *colon = strrchr(path, ':');
    if (colon)
        *colon = '@';
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

static void test_first_run(mw_engine *eng, const char *id)
{
    const char *msg;
    CHECK(run(eng, id) == 0);
    CHECK(calls_are(1, 1, 2, 2, 2, 1)); /* staging has no service to describe */
    CHECK(can_connect(&msg) == 0);

    CHECK(metric("aws.ecs.running_tasks_count", TAGS_A) == 3);
    CHECK(metric("aws.ecs.pending_tasks_count", TAGS_A) == 1);
    CHECK(metric("aws.ecs.registered_cpu", TAGS_A) == 2048);
    CHECK(metric("aws.ecs.remaining_cpu", TAGS_A) == 1024);
    CHECK(metric("aws.ecs.registered_memory", TAGS_A) == 3768);
    CHECK(metric("aws.ecs.remaining_memory", TAGS_A) == 1200);
    CHECK(metric("aws.ecs.agent_connected", TAGS_A) == 1);
    CHECK(metric("aws.ecs.agent_connected", TAGS_B) == 0);
    CHECK(metric("aws.ecs.running_tasks_count", TAGS_B) == 0);
    const rec *sc = service_check("aws.ecs.agent_connected", TAGS_A);
    CHECK(sc && sc->status == 0);
    sc = service_check("aws.ecs.agent_connected", TAGS_B);
    CHECK(sc && sc->status == 2 && strstr(sc->message, I_B) &&
          strstr(sc->message, "not connected"));
    CHECK(count(MW_RECORD_METRIC, "aws.ecs.agent_connected") == 3);

    CHECK(metric("aws.ecs.services", PROD) == 2);
    CHECK(metric("aws.ecs.container_instances", PROD) == 2);
    CHECK(metric("aws.ecs.cluster.running_tasks", PROD) == 3);
    CHECK(metric("aws.ecs.cluster.pending_tasks", PROD) == 1);
    CHECK(metric("aws.ecs.services", STAGING) == 0);
    CHECK(metric("aws.ecs.container_instances", STAGING) == 1);
    CHECK(metric("aws.ecs.cluster.running_tasks", STAGING) == 1);

    CHECK(metric("aws.ecs.service.desired", WEB) == 3);
    CHECK(metric("aws.ecs.service.running", WEB) == 2);
    CHECK(metric("aws.ecs.service.pending", WEB) == 1);
    CHECK(metric("aws.ecs.service.desired", API) == 2);
    CHECK(metric("aws.ecs.service.pending", API) == 0);

    /* one event of each kind; none that holds no keyword, none too old */
    CHECK(events() == 7);
    check_event("prod/web: insufficient_memory", "insufficient_memory", "error", "web", &web_ev[1]);
    check_event("prod/web: fail", "fail", "error", "web", &web_ev[2]);
    check_event("prod/web: terminate", "terminate", "warning", "web", &web_ev[3]);
    check_event("prod/api: drain", "drain", "warning", "api", &api_ev[0]);
    check_event("prod/api: error", "error", "error", "api", &api_ev[1]);
    check_event("prod/api: pending", "pending", "warning", "api", &api_ev[2]);
    check_event("prod/api: reboot", "reboot", "warning", "api", &api_ev[3]);

    /* nothing again; and a run that changes nothing writes no state */
    ino_t before = state_inode(id);
    CHECK(before != 0);
    CHECK(run(eng, id) == 0);
    CHECK(calls_are(1, 1, 2, 2, 2, 1));
    CHECK(events() == 0);
    CHECK(metric("aws.ecs.running_tasks_count", TAGS_A) == 3);
    CHECK(state_inode(id) == before);
}

static void test_new_events(mw_engine *eng, const char *id)
{
    /* two new events at the same time, one that holds no keyword */
    memmove(web_ev + 3, web_ev, 5 * sizeof *web_ev);
    web_ev[0] = (ecsm_event){"e10", T + 1.5, "(service web) deployment failed"};
    web_ev[1] = (ecsm_event){"e9", T + 1.5, "(service web) hit an ERROR"};
    web_ev[2] = (ecsm_event){"e8", T + 1, "(service web) has reached a steady state."};
    nweb = 8;
    web_events();
    CHECK(run(eng, id) == 0);
    CHECK(events() == 2);
    check_event("prod/web: fail", "fail", "error", "web", &web_ev[0]);
    check_event("prod/web: error", "error", "error", "web", &web_ev[1]);
    CHECK(run(eng, id) == 0);
    CHECK(events() == 0);
}

static void test_restart(const char *inst, const char *id_before)
{
    mw_engine *eng = new_engine();
    const char *id = t_schedule(eng, "amazon_ecs", inst, 0);
    CHECK_STR(id, id_before); /* the same instance: the same state */
    CHECK(run(eng, id) == 0);
    CHECK(events() == 0);
    CHECK(metric("aws.ecs.agent_connected", TAGS_A) == 1);
    /* one more, at the same time as the newest sent: sent once */
    memmove(web_ev + 1, web_ev, 7 * sizeof *web_ev);
    web_ev[0] = (ecsm_event){"e11", T + 1.5, "(service web) (task 7) failed to start"};
    nweb = 8; /* the oldest falls off, as AWS keeps the latest */
    web_events();
    CHECK(run(eng, id) == 0);
    CHECK(events() == 1);
    check_event("prod/web: fail", "fail", "error", "web", &web_ev[0]);
    mw_engine_free(eng);
    eng = new_engine();
    id = t_schedule(eng, "amazon_ecs", inst, 0);
    CHECK(run(eng, id) == 0);
    CHECK(events() == 0);
    mw_engine_free(eng);
}

static int drains(void)
{
    return event("prod/" I_A ": drain") != NULL;
}

static void test_drain_terminate(mw_engine *eng, const char *id)
{
    put_instance("prod", I_A, "DRAINING", 1, 3, 1, "1.80.0");
    CHECK(run(eng, id) == 0);
    CHECK(events() == 1 && drains());
    const rec *r = event("prod/" I_A ": drain");
    CHECK(r && !strcmp(r->alert_type, "warning"));
    CHECK(r && strstr(r->text, CI("prod", I_A)) && strstr(r->text, "is DRAINING"));
    CHECK(r && !strcmp(r->tags,
                       "container_instance_arn:" CI(
                           "prod",
                           I_A) ",ecs_agent_version:1.80.0,ecs_cluster_name:prod,ecs_event:drain,"
                                "instance_id:" I_A ",region:us-east-1,status:DRAINING"));
    CHECK(run(eng, id) == 0);
    CHECK(events() == 0);
    put_instance("prod", I_A, "ACTIVE", 1, 3, 1, "1.80.0");
    CHECK(run(eng, id) == 0);
    CHECK(events() == 0);
    put_instance("prod", I_A, "DRAINING", 1, 3, 1, "1.80.0");
    CHECK(run(eng, id) == 0);
    CHECK(events() == 1 && drains());
    put_instance("prod", I_A, "ACTIVE", 1, 3, 1, "1.80.0");
    CHECK(run(eng, id) == 0);
    CHECK(events() == 0);

    /* gone from the cluster */
    CHECK(mw__faws_remove_instance(fake, "prod", CI("prod", I_B)) == 0);
    CHECK(run(eng, id) == 0);
    CHECK(events() == 1);
    r = event("prod/" I_B ": terminate");
    CHECK(r && !strcmp(r->alert_type, "warning"));
    CHECK(r &&
          !strcmp(r->tags,
                  "container_instance_arn:" CI(
                      "prod", I_B) ",ecs_cluster_name:prod,ecs_event:terminate,instance_id:" I_B
                                   ",region:us-east-1"));
    CHECK(metric("aws.ecs.container_instances", PROD) == 1);
    CHECK(run(eng, id) == 0);
    CHECK(events() == 0);
    /* deregistered: INACTIVE, no longer listed */
    put_instance("staging", I_C, "INACTIVE", 0, 0, 0, "1.80.0");
    CHECK(run(eng, id) == 0);
    CHECK(events() == 1 && event("staging/" I_C ": terminate"));
    CHECK(metric("aws.ecs.container_instances", STAGING) == 0);
    CHECK(run(eng, id) == 0);
    CHECK(events() == 0);
    put_instance("staging", I_C, "ACTIVE", 1, 1, 0, "1.80.0");
    put_instance("prod", I_B, "ACTIVE", 0, 0, 0, "1.79.1");
    CHECK(run(eng, id) == 0);
    CHECK(events() == 0); /* back: new instances, nothing to say */
}

static void test_errors(mw_engine *eng, const char *id)
{
    const char *msg;
    mw__faws_fail_next(fake, "ListServices", 1, 400, "AccessDeniedException",
                       "User: arn:aws:sts::123456789012:assumed-role/mw/task is not authorized to "
                       "perform: ecs:ListServices on resource: " ARN "cluster/prod");
    CHECK(run(eng, id) == 0);
    CHECK(can_connect(&msg) == 2);
    CHECK(strstr(msg, "ListServices (cluster prod): AccessDeniedException: User: ") == msg);
    CHECK(strstr(msg, "not authorized to perform: ecs:ListServices") != NULL);
    CHECK(metric("aws.ecs.running_tasks_count", TAGS_A) == 3); /* the rest is still sent */
    CHECK(metric("aws.ecs.service.desired", WEB) != metric("aws.ecs.service.desired", WEB));
    CHECK(metric("aws.ecs.container_instances", STAGING) == 1);
    CHECK(calls_are(1, 1, 2, 2, 2, 0));

    mw__faws_fail_next(fake, "ListClusters", 1, 400, "AccessDeniedException",
                       "User: arn:aws:sts::123456789012:assumed-role/mw/task is not authorized to "
                       "perform: ecs:ListClusters");
    CHECK(run(eng, id) == 0);
    CHECK(can_connect(&msg) == 2);
    CHECK(strstr(msg, "ListClusters: AccessDeniedException: ") == msg);
    CHECK(strstr(msg, "ecs:ListClusters") != NULL);
    CHECK(count(MW_RECORD_METRIC, NULL) == 0);
    CHECK(events() == 0);

    /* ListClusters throttled twice: retried by the engine */
    mw__faws_fail_next(fake, NULL, 2, 400, "ThrottlingException", "Rate exceeded");
    CHECK(run(eng, id) == 0);
    CHECK(can_connect(NULL) == 0);
    CHECK(calls_are(3, 1, 2, 2, 2, 1));
    CHECK(events() == 0);
    mw__faws_fail_next(fake, NULL, 0, 0, NULL, NULL);
}

static void test_pages(void)
{
    char j[1024], ec2[32];
    for (int i = 0; i < 250; i++) {
        snprintf(ec2, sizeof ec2, "i-0big%013d", i);
        put_instance("big", ec2, "ACTIVE", 1, i % 7, 0, "1.80.0");
    }
    for (int i = 0; i < 120; i++) {
        ecsm_event ev = {j, T - 1000, "(service) failed long ago"};
        char name[32];
        snprintf(j, sizeof j, "old-%d", i);
        snprintf(name, sizeof name, "svc-%03d", i);
        put_service("big", name, i, i, 0, &ev, 1);
    }
    mw_engine *eng = new_engine();
    const char *id = t_schedule(eng, "amazon_ecs", "{\"clusters\":[\"big\"]}", 0);
    CHECK(run(eng, id) == 0);
    CHECK(can_connect(NULL) == 0); /* no batch over AWS's limits */
    CHECK(calls_are(0, 1, 3, 3, 2, 12));
    CHECK(count(MW_RECORD_METRIC, "aws.ecs.running_tasks_count") == 250);
    CHECK(count(MW_RECORD_METRIC, "aws.ecs.service.desired") == 120);
    CHECK(metric("aws.ecs.service.desired",
                 "ecs_cluster_name:big,ecs_service:svc-119,region:us-east-1") == 119);
    CHECK(metric("aws.ecs.container_instances", "ecs_cluster_name:big,region:us-east-1") == 250);
    CHECK(count(MW_RECORD_METRIC, "aws.ecs.services") == 1); /* big only */
    CHECK(events() == 0);

    /* by ARN, with one that does not exist; services off */
    id = t_schedule(eng, "amazon_ecs",
                    "{\"clusters\":[\"" ARN "cluster/prod\",\"nope\"],"
                    "\"collect_services\":false,\"tags\":[\"team:ops\"]}",
                    0);
    CHECK(run(eng, id) == 0);
    CHECK(can_connect(NULL) == 0);
    const rec *r = service_check("amazon_ecs.can_connect", NULL);
    CHECK(r && !strcmp(r->tags, "team:ops")); /* the instance's tags on everything */
    CHECK(calls_are(0, 1, 1, 1, 0, 0));
    CHECK(metric("aws.ecs.services", PROD ",team:ops") == 2);
    CHECK(metric("aws.ecs.agent_connected", TAGS_A ",team:ops") == 1);
    CHECK(metric("aws.ecs.services", STAGING) != metric("aws.ecs.services", STAGING));
    CHECK(count(MW_RECORD_METRIC, "aws.ecs.service.desired") == 0);
    CHECK(events() == 0);
    CHECK(strstr(mw__buf_str(&seen), "cluster nope not found (DescribeClusters: MISSING)") != NULL);

    /* the same cluster by name and by ARN: described once */
    id = t_schedule(eng, "amazon_ecs",
                    "{\"clusters\":[\"prod\",\"" ARN "cluster/prod\"],"
                    "\"collect_services\":false}",
                    0);
    CHECK(run(eng, id) == 0);
    CHECK(calls_are(0, 1, 1, 1, 0, 0));
    CHECK(count(MW_RECORD_METRIC, "aws.ecs.services") == 1);

    /* bad options fail every run, naming the option */
    static const char *const bad[][2] = {
        {"{\"region\":\"Not A Region\"}", "bad option 'region': AWS region name expected"},
        {"{\"event_lookback\":-1}", "bad option 'event_lookback'"},
        {"{\"event_keywords\":[\"fail\",\" \"]}", "bad option 'event_keywords[2]'"},
        {"{\"clusters\":[\"\"]}", "bad option 'clusters[1]'"},
        {"{\"collect_services\":\"maybe\"}", "bad option 'collect_services'"},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        id = t_schedule(eng, "amazon_ecs", bad[i][0], 0);
        CHECK(run(eng, id) == 2);
        const rec *st = service_check("moonwatch.check_status", NULL);
        CHECK(st && strstr(st->message, bad[i][1]));
        CHECK(calls_are(0, 0, 0, 0, 0, 0));
    }

    /* every event within the lookback, the one with no keyword too */
    id = t_schedule(eng, "amazon_ecs", "{\"clusters\":[\"prod\"],\"event_keywords\":[]}", 0);
    CHECK(run(eng, id) == 0);
    CHECK(calls_are(0, 1, 1, 1, 1, 1));
    CHECK(events() == 8 + 4);
    CHECK(event("prod/web: other") != NULL); /* e8, the steady state */
    r = event("prod/web: other");
    CHECK(r && !strcmp(r->alert_type, "info"));
    CHECK(run(eng, id) == 0);
    CHECK(events() == 0);

    /* a few keywords of one's own */
    id = t_schedule(eng, "amazon_ecs",
                    "{\"clusters\":[\"prod\"],\"event_keywords\":[\"Steady State\",\"fail\"]}", 0);
    CHECK(run(eng, id) == 0);
    CHECK(events() == 1 + 3);
    r = event("prod/web: steady_state");
    CHECK(r && !strcmp(r->alert_type, "info"));
    mw_engine_free(eng);
}

static void test_large(void)
{
    char ec2[32], name[32], id_[8][40];
    ecsm_event ev[8];
    for (int i = 0; i < 1000; i++) {
        snprintf(ec2, sizeof ec2, "i-0huge%012d", i);
        put_instance("huge", ec2, "ACTIVE", 1, 4, 1, "1.80.0");
    }
    for (int k = 0; k < 8; k++) {
        snprintf(id_[k], sizeof id_[k], "ev-%d", k);
        ev[k] = (ecsm_event){id_[k], T - 10 - 60 * k, "(service) has started 2 tasks"};
    }
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "svc-%03d", i);
        put_service("huge", name, 4, 4, 0, ev, 8);
    }
    mw_engine *eng = new_engine();
    cJSON *inst = cJSON_Parse("{\"clusters\":[\"huge\"]}"); /* the default timeout */
    const char *id = NULL;
    char *err = NULL;
    CHECK(mw__engine_schedule(eng, "amazon_ecs", "test", inst, NULL, &id, &err) == MW_OK);
    cJSON_Delete(inst);
    free(err);
    char *list = mw_engine_instances_json(eng); /* the check's own default interval */
    CHECK(list && strstr(list, "\"interval\":60,\"timeout\":10"));
    mw_free(list);
    double t0 = mw__mono();
    CHECK(run(eng, id) == 0);
    printf("1,000 container instances and 200 services: %.2f s\n", mw__mono() - t0);
    CHECK(can_connect(NULL) == 0);
    CHECK(calls_are(0, 1, 10, 10, 2, 20));
    CHECK(count(MW_RECORD_METRIC, "aws.ecs.running_tasks_count") == 1000);
    CHECK(count(MW_RECORD_SERVICE_CHECK, "aws.ecs.agent_connected") == 1000);
    CHECK(count(MW_RECORD_METRIC, "aws.ecs.service.running") == 200);
    mw_engine_free(eng);
}

static void test_secrets(void)
{
    const char *s = mw__buf_str(&seen);
    CHECK(seen.len > 10000);
    CHECK(strstr(s, "credentials from the environment") != NULL);
    CHECK(strstr(s, SECRET) == NULL);
    CHECK(strstr(s, TOKEN) == NULL);
    CHECK(strstr(s, "IQoJb3JpZ2luX2VjEPr") == NULL);
    for (size_t i = 0; i < nsigs; i++)
        CHECK(!sigs[i][0] || strstr(s, sigs[i]) == NULL);
    CHECK(nsigs > 10 && strlen(sigs[0]) == 64);
}

/* ------------------------------------------------------------- main */

static int isolate_network(void)
{
    if (unshare(CLONE_NEWNET) != 0)
        return 0;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    int ok = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP;
    ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void set_env(void)
{
    static const char *const unset[] = {
        "AWS_ENDPOINT_URL",
        "AWS_DEFAULT_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "ECS_CONTAINER_METADATA_URI_V4",
        "ECS_CONTAINER_METADATA_URI",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(unset); i++)
        unsetenv(unset[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_ENDPOINT_URL_ECS", mw__faws_url(fake), 1);
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("AWS_ACCESS_KEY_ID", KEY_ID, 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    setenv("AWS_SESSION_TOKEN", TOKEN, 1);
}

int main(void)
{
    if (!isolate_network())
        printf("not isolated (not root?): running on the host's network, loopback only\n");
    mw__buf_init(&seen, 256u << 20);
    char *err = NULL;
    fake = mw__faws_new(NULL, &err);
    if (!fake) {
        fprintf(stderr, "%s\n", err ? err : "?");
        return 1;
    }
    CHECK(mw__faws_add_key(fake, KEY_ID, SECRET, TOKEN, 0) == 0);
    set_env();
    tmptree_new(tmp, sizeof tmp, "mw-amazon-ecs");
    build_model();

    const char *inst = "{}";
    mw_engine *eng = new_engine();
    const char *id = t_schedule(eng, "amazon_ecs", inst, 0);
    char id_copy[64];
    snprintf(id_copy, sizeof id_copy, "%s", id);
    test_first_run(eng, id);
    test_new_events(eng, id);
    mw_engine_free(eng);
    test_restart(inst, id_copy);
    eng = new_engine();
    id = t_schedule(eng, "amazon_ecs", inst, 0);
    test_drain_terminate(eng, id);
    test_errors(eng, id);
    mw_engine_free(eng);
    test_pages();
    test_large();
    test_secrets();

    clear_recs();
    free(recs);
    mw__faws_free(fake);
    tmptree_remove(tmp);
    mw__buf_free(&seen);
    return TEST_RESULT();
}
