/*
 * test_ecs_fargate_check.c - the bundled checks/ecs_fargate.lua run by
 * the engine against the fake ECS agent's task metadata endpoint v4
 * (tests/support/fake_ecs_agent.h, on 127.0.0.1: the real one is
 * link-local, which no test reaches), serving the Fargate task of
 * tests/fixtures/ecs/v4_task_fargate.json:
 *  - its `web` container with the cgroup v2 stats of
 *    v4_task_stats_cgroupv2.json, its `worker` container with the cgroup
 *    v1 stats of v4_task_stats.json (the `curl` container's entry): every
 *    metric with its value from the fixture, the working set both ways,
 *    what a form does not have not sent, cpu.limit from /task (web's 256,
 *    none for worker's 0);
 *  - no CPU percent on the first run; on the second, the endpoint
 *    serving changed numbers, the percent of `docker stats` over the two
 *    samples and the rates over the time between the runs;
 *  - fargate_check OK, and CRITICAL with the reason: the endpoint down,
 *    an HTTP error, a payload that is not JSON, a field of the wrong
 *    type, no endpoint at all, a variable that is no URL (its value not
 *    repeated); a container with null stats is OK and a warning; a bad
 *    container_id fails the run.
 * The endpoint's URL reaches the engine as on AWS, through
 * $ECS_CONTAINER_METADATA_URI_V4, set before each engine is made.
 */
#include "moonwatch.h"
#include "core/base/util.h"
#include "core/engine.h"
#include "test.h"
#include "tests/support/fake_ecs_agent.h"
#include "tests/support/make.h"
#include "tests/support/run_now.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <unistd.h>

#define FIX     MW_TEST_SOURCE_DIR "/tests/fixtures/ecs"
#define ID(n)   "0a1b2c3d4e5f60718293a4b5c6d7e8f9-" n
#define WEB     ID("2222222222") /* cgroup v2 stats; Limits.CPU 256 */
#define WORKER  ID("3333333333") /* given cgroup v1 stats; Limits.CPU 0 */
#define V1_CURL "5fc21e5b015f899d22618f8aede80b6d70d71b2a75465ea49d9462c8f3d2d3af"

#define MAX_SEEN 128

/* What one flush sent. */
typedef struct seen {
    size_t n;
    struct {
        mw_record_type type;
        char name[64];
        char tags[256];
        double value;
        int status;
        char message[1024];
    } v[MAX_SEEN];
} seen;

static seen got;
static mw__fea *fea;

static void collect(const mw_record *r, void *ud)
{
    (void)ud;
    if (got.n == MAX_SEEN)
        return;
    got.v[got.n].type = r->type;
    snprintf(got.v[got.n].name, sizeof got.v[0].name, "%s", r->name ? r->name : "");
    got.v[got.n].tags[0] = '\0';
    for (size_t i = 0; i < r->ntags; i++) {
        size_t len = strlen(got.v[got.n].tags);
        snprintf(got.v[got.n].tags + len, sizeof got.v[0].tags - len, "%s%s", i ? "," : "",
                 r->tags[i]);
    }
    got.v[got.n].value = r->value;
    got.v[got.n].status = r->status;
    snprintf(got.v[got.n].message, sizeof got.v[0].message, "%s", r->message ? r->message : "");
    got.n++;
}

/* The value of metric `name` tagged exactly `tags`, or NAN when not sent. */
static double metric(const char *name, const char *tags)
{
    for (size_t i = 0; i < got.n; i++)
        if (got.v[i].type == MW_RECORD_METRIC && !strcmp(got.v[i].name, name) &&
            !strcmp(got.v[i].tags, tags))
            return got.v[i].value;
    return NAN;
}

static int sent(const char *name)
{
    for (size_t i = 0; i < got.n; i++)
        if (!strcmp(got.v[i].name, name))
            return 1;
    return 0;
}

/* The service check `name`: its status (-1: not sent) and message. */
static int service_check(const char *name, const char **message)
{
    for (size_t i = 0; i < got.n; i++)
        if (got.v[i].type == MW_RECORD_SERVICE_CHECK && !strcmp(got.v[i].name, name)) {
            if (message)
                *message = got.v[i].message;
            return got.v[i].status;
        }
    return -1;
}

/* ------------------------------------------------------------- rig */

/* An engine whose $ECS_CONTAINER_METADATA_URI_V4 was `uri` (NULL: unset)
 * when it was made. */
static mw_engine *new_engine(const char *uri)
{
    mw_config *cfg = mw_config_new();
    unsetenv("ECS_CONTAINER_METADATA_URI");
    if (uri)
        setenv("ECS_CONTAINER_METADATA_URI_V4", uri, 1);
    else
        unsetenv("ECS_CONTAINER_METADATA_URI_V4");
    CHECK(mw_config_set(cfg, "no_bundled", "true", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "checks_dir", MW_TEST_SOURCE_DIR "/checks", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "sink", "none", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "log_level", "off", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "flush_interval", "600", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "docker", "off", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "workers", "1", NULL) == MW_OK);
    mw_engine *eng = t_engine(cfg);
    t_asked_only(eng);
    mw_config_free(cfg);
    CHECK(mw_engine_add_sink(eng, collect, NULL) == MW_OK);
    return eng;
}

/* Runs instance `id` now, steps the engine until its run ended and
 * flushes what it sent into `got`. `*t0`, `*t1` (may be NULL): wall
 * times around the run, bounds of its samples' time. */
static void run(mw_engine *eng, const char *id, double *t0, double *t1)
{
    double end = mw__mono() + 20;
    if (t0)
        *t0 = mw__wall();
    CHECK(t_run_now(eng, id) == MW_OK); /* see run_now.h */
    memset(&got, 0, sizeof got);
    while (service_check("moonwatch.check_status", NULL) < 0 && mw__mono() < end) {
        for (int i = 0; i < 10; i++)
            mw_engine_step(eng, 5);
        mw_engine_flush(eng);
    }
    if (t1)
        *t1 = mw__wall();
    CHECK(service_check("moonwatch.check_status", NULL) >= 0);
}

/* The fixture's stats of one container, as a document to change. */
static cJSON *stats_of(const char *file, const char *id)
{
    char *text = NULL;
    size_t len;
    CHECK(mw__read_file(file, 1 << 20, &text, &len) == MW_OK);
    cJSON *doc = cJSON_ParseWithLength(text, len);
    free(text);
    cJSON *s = cJSON_DetachItemFromObjectCaseSensitive(doc, id);
    cJSON_Delete(doc);
    CHECK(s != NULL);
    return s;
}

static void serve(const char *docker_id, const cJSON *stats)
{
    char *text = cJSON_PrintUnformatted(stats);
    CHECK(text && mw__fea_put_stats(fea, docker_id, text) == 0);
    free(text);
}

/* The number at dotted `path` of `o`, plus `d` (a new value with isnan(d)
 * false and `set`). */
static double bump(cJSON *o, const char *path, double d)
{
    char buf[128], *save = NULL;
    snprintf(buf, sizeof buf, "%s", path);
    cJSON *j = o;
    for (char *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
        j = cJSON_GetObjectItemCaseSensitive(j, k);
    CHECK(cJSON_IsNumber(j));
    if (!cJSON_IsNumber(j))
        return NAN;
    cJSON_SetNumberValue(j, j->valuedouble + d);
    return j->valuedouble;
}

/* Adds `d` to the value of the first entry of blkio list `list` with op
 * `op`. */
static void bump_blkio(cJSON *s, const char *list, const char *op, double d)
{
    cJSON *l = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(s, "blkio_stats"), list), *it;
    cJSON_ArrayForEach(it, l)
    {
        cJSON *o = cJSON_GetObjectItemCaseSensitive(it, "op");
        if (cJSON_IsString(o) && !strcmp(o->valuestring, op)) {
            cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "value");
            cJSON_SetNumberValue(v, v->valuedouble + d);
            return;
        }
    }
    CHECK(!"no such blkio entry");
}

/* A rate over the time between two runs: within what was measured. */
static void check_rate(const char *name, const char *tags, double delta, double a0, double a1,
                       double b0, double b1)
{
    double r = metric(name, tags), lo = delta / (b1 - a0), hi = delta / (b0 - a1);
    if (!(r >= lo - 1e-9 && r <= hi + 1e-9))
        fprintf(stderr, "%s{%s} = %g, not in [%g, %g]\n", name, tags, r, lo, hi);
    CHECK(r >= lo - 1e-9 && r <= hi + 1e-9);
}

/* ------------------------------------------------------------- tests */

/* web: cgroup v2 (usage - inactive_file; no rss, cache, max_usage, and no
 * io ops: io_serviced_recursive is null), cpu.limit 256. */
static void test_cgroup_v2(void)
{
    mw_engine *eng = new_engine(mw__fea_v4_url(fea));
    cJSON *s = stats_of(FIX "/v4_task_stats_cgroupv2.json", WEB);
    double a0, a1, b0, b1;
    const char *t = "case:v2", *net = "case:v2,interface:eth0";
    serve(WEB, s);
    const char *id = t_schedule(eng, "ecs_fargate",
                                "{\"container_id\": \"" WEB "\", \"tags\": [\"case:v2\"]}", 0);

    run(eng, id, &a0, &a1);
    CHECK(service_check("fargate_check", NULL) == MW_STATUS_OK);
    CHECK(service_check("moonwatch.check_status", NULL) == MW_STATUS_OK);
    CHECK(metric("ecs.fargate.mem.usage", t) == 28557312);
    CHECK(metric("ecs.fargate.mem.working_set", t) == 28557312.0 - 11882496.0);
    CHECK(metric("ecs.fargate.mem.limit", t) == 67353382912.0);
    CHECK(metric("ecs.fargate.cpu.limit", t) == 256);
    CHECK(metric("ecs.fargate.net.rcvd_errors", net) == 0);
    CHECK(metric("ecs.fargate.net.sent_errors", net) == 0);
    CHECK(!sent("ecs.fargate.mem.rss") && !sent("ecs.fargate.mem.cache"));
    CHECK(!sent("ecs.fargate.mem.max_usage"));
    /* one sample: no percent, no rate */
    CHECK(!sent("ecs.fargate.cpu.percent") && !sent("ecs.fargate.cpu.usage"));
    CHECK(!sent("ecs.fargate.io.bytes.read") && !sent("ecs.fargate.net.bytes_rcvd"));

    /* 1.5 s of CPU (1.2 user, 0.3 kernel) while the host's 24 CPUs ran
     * for 10 s; 1 MiB read, 64 KiB written; 50 kB in, 10 kB out, 3 and 1
     * errors; the cache grew */
    bump(s, "cpu_stats.cpu_usage.total_usage", 1.5e9);
    bump(s, "cpu_stats.cpu_usage.usage_in_usermode", 1.2e9);
    bump(s, "cpu_stats.cpu_usage.usage_in_kernelmode", 0.3e9);
    bump(s, "cpu_stats.system_cpu_usage", 24 * 10e9);
    bump_blkio(s, "io_service_bytes_recursive", "read", 1048576);
    bump_blkio(s, "io_service_bytes_recursive", "write", 65536);
    bump(s, "networks.eth0.rx_bytes", 50000);
    bump(s, "networks.eth0.tx_bytes", 10000);
    bump(s, "networks.eth0.rx_errors", 3);
    bump(s, "networks.eth0.tx_errors", 1);
    bump(s, "memory_stats.usage", 4096);
    bump(s, "memory_stats.stats.inactive_file", 8192);
    serve(WEB, s);
    usleep(300000);
    run(eng, id, &b0, &b1);
    CHECK(service_check("fargate_check", NULL) == MW_STATUS_OK);
    /* docker stats: 100 * online CPUs * container CPU / host CPU */
    CHECK_NEAR(metric("ecs.fargate.cpu.percent", t), 100 * 24 * 1.5e9 / (24 * 10e9), 1e-9);
    check_rate("ecs.fargate.cpu.usage", t, 1.5e9, a0, a1, b0, b1);
    check_rate("ecs.fargate.cpu.user", t, 1.2e9, a0, a1, b0, b1);
    check_rate("ecs.fargate.cpu.system", t, 0.3e9, a0, a1, b0, b1);
    check_rate("ecs.fargate.io.bytes.read", t, 1048576, a0, a1, b0, b1);
    check_rate("ecs.fargate.io.bytes.write", t, 65536, a0, a1, b0, b1);
    check_rate("ecs.fargate.net.bytes_rcvd", net, 50000, a0, a1, b0, b1);
    check_rate("ecs.fargate.net.bytes_sent", net, 10000, a0, a1, b0, b1);
    CHECK(!sent("ecs.fargate.io.ops.read") && !sent("ecs.fargate.io.ops.write"));
    CHECK(metric("ecs.fargate.net.rcvd_errors", net) == 3);
    CHECK(metric("ecs.fargate.net.sent_errors", net) == 1);
    CHECK(metric("ecs.fargate.mem.usage", t) == 28557312.0 + 4096);
    CHECK(metric("ecs.fargate.mem.working_set", t) == 28557312.0 + 4096 - (11882496.0 + 8192));
    CHECK(metric("ecs.fargate.cpu.limit", t) == 256);
    cJSON_Delete(s);
    mw_engine_free(eng);
}

/* worker, given the v1 stats of the AWS example's curl container: usage -
 * cache, rss, max_usage, io bytes and ops (empty lists: 0), no cpu.limit
 * (Limits.CPU 0). */
static void test_cgroup_v1(void)
{
    mw_engine *eng = new_engine(mw__fea_v4_url(fea));
    cJSON *s = stats_of(FIX "/v4_task_stats.json", V1_CURL);
    double a0, a1, b0, b1;
    const char *t = "case:v1", *net = "case:v1,interface:eth0";
    serve(WORKER, s);
    const char *id = t_schedule(eng, "ecs_fargate",
                                "{\"container_id\": \"" WORKER "\", \"tags\": [\"case:v1\"]}", 0);

    run(eng, id, &a0, &a1);
    CHECK(service_check("fargate_check", NULL) == MW_STATUS_OK);
    CHECK(metric("ecs.fargate.mem.usage", t) == 1814528);
    CHECK(metric("ecs.fargate.mem.working_set", t) == 1814528); /* cache 0 */
    CHECK(metric("ecs.fargate.mem.max_usage", t) == 6299648);
    CHECK(metric("ecs.fargate.mem.limit", t) == 134217728);
    CHECK(metric("ecs.fargate.mem.rss", t) == 606208);
    CHECK(metric("ecs.fargate.mem.cache", t) == 0);
    CHECK(metric("ecs.fargate.net.rcvd_errors", net) == 0);
    CHECK(metric("ecs.fargate.net.sent_errors", net) == 0);
    CHECK(!sent("ecs.fargate.cpu.limit"));
    CHECK(!sent("ecs.fargate.cpu.percent") && !sent("ecs.fargate.io.ops.read"));

    /* 0.25 s of CPU while the host's 2 CPUs ran for 1 s; 2 MiB in 3
     * reads, 8 KiB in 2 writes (v1 ops are capitalized); 12 MiB of page
     * cache */
    bump(s, "cpu_stats.cpu_usage.total_usage", 0.25e9);
    bump(s, "cpu_stats.cpu_usage.usage_in_usermode", 0.2e9);
    bump(s, "cpu_stats.cpu_usage.usage_in_kernelmode", 0.05e9);
    bump(s, "cpu_stats.system_cpu_usage", 2e9);
    cJSON *blkio = cJSON_GetObjectItem(s, "blkio_stats");
    cJSON_ReplaceItemInObject(
        blkio, "io_service_bytes_recursive",
        cJSON_Parse("[{\"major\":202,\"minor\":26368,\"op\":\"Read\",\"value\":2097152},"
                    "{\"major\":202,\"minor\":26368,\"op\":\"Write\",\"value\":8192},"
                    "{\"major\":202,\"minor\":26368,\"op\":\"Sync\",\"value\":2105344},"
                    "{\"major\":202,\"minor\":26368,\"op\":\"Total\",\"value\":2105344}]"));
    cJSON_ReplaceItemInObject(
        blkio, "io_serviced_recursive",
        cJSON_Parse("[{\"major\":202,\"minor\":26368,\"op\":\"Read\",\"value\":3},"
                    "{\"major\":202,\"minor\":26368,\"op\":\"Write\",\"value\":2},"
                    "{\"major\":202,\"minor\":26368,\"op\":\"Total\",\"value\":5}]"));
    bump(s, "memory_stats.usage", 12582912);
    bump(s, "memory_stats.stats.cache", 12582912);
    serve(WORKER, s);
    usleep(300000);
    run(eng, id, &b0, &b1);
    CHECK_NEAR(metric("ecs.fargate.cpu.percent", t), 100 * 2 * 0.25e9 / 2e9, 1e-9);
    check_rate("ecs.fargate.cpu.usage", t, 0.25e9, a0, a1, b0, b1);
    check_rate("ecs.fargate.cpu.user", t, 0.2e9, a0, a1, b0, b1);
    check_rate("ecs.fargate.cpu.system", t, 0.05e9, a0, a1, b0, b1);
    check_rate("ecs.fargate.io.bytes.read", t, 2097152, a0, a1, b0, b1);
    check_rate("ecs.fargate.io.bytes.write", t, 8192, a0, a1, b0, b1);
    check_rate("ecs.fargate.io.ops.read", t, 3, a0, a1, b0, b1);
    check_rate("ecs.fargate.io.ops.write", t, 2, a0, a1, b0, b1);
    check_rate("ecs.fargate.net.bytes_rcvd", net, 0, a0, a1, b0, b1);
    CHECK(metric("ecs.fargate.mem.usage", t) == 1814528.0 + 12582912);
    CHECK(metric("ecs.fargate.mem.cache", t) == 12582912);
    CHECK(metric("ecs.fargate.mem.working_set", t) == 1814528); /* usage - cache */

    /* the counters went back (a container of the same id made anew): no
     * percent, and the next run has one again */
    bump(s, "cpu_stats.cpu_usage.total_usage", -0.5e9);
    serve(WORKER, s);
    run(eng, id, NULL, NULL);
    CHECK(!sent("ecs.fargate.cpu.percent"));
    CHECK(metric("ecs.fargate.mem.usage", t) == 1814528.0 + 12582912);
    bump(s, "cpu_stats.cpu_usage.total_usage", 0.5e9);
    bump(s, "cpu_stats.system_cpu_usage", 4e9);
    serve(WORKER, s);
    run(eng, id, NULL, NULL);
    CHECK_NEAR(metric("ecs.fargate.cpu.percent", t), 100 * 2 * 0.5e9 / 4e9, 1e-9);
    cJSON_Delete(s);
    mw_engine_free(eng);
}

/* Runs the web instance once and checks fargate_check's status and that
 * its message holds `needle`; nothing else is sent. */
static void expect_critical(mw_engine *eng, const char *id, const char *needle)
{
    const char *msg = NULL;
    run(eng, id, NULL, NULL);
    CHECK(service_check("fargate_check", &msg) == MW_STATUS_CRITICAL);
    if (getenv("MW_TEST_VERBOSE"))
        fprintf(stderr, "fargate_check: %s\n", msg ? msg : "");
    if (!msg || !strstr(msg, needle))
        fprintf(stderr, "fargate_check: \"%s\", expected \"%s\" in it\n", msg ? msg : "", needle);
    CHECK(msg && strstr(msg, needle) != NULL);
    CHECK(service_check("moonwatch.check_status", NULL) == MW_STATUS_OK);
    CHECK(!sent("ecs.fargate.mem.usage"));
}

static void test_failures(void)
{
    mw_engine *eng = new_engine(mw__fea_v4_url(fea));
    cJSON *s = stats_of(FIX "/v4_task_stats_cgroupv2.json", WEB);
    serve(WEB, s);
    const char *id = t_schedule(eng, "ecs_fargate", "{\"container_id\": \"" WEB "\"}", 0);

    /* the endpoint away before /task was ever read */
    CHECK(mw__fea_down(fea) == 0);
    expect_critical(eng, id, "/task: ");
    CHECK(mw__fea_up(fea) == 0);
    run(eng, id, NULL, NULL);
    CHECK(service_check("fargate_check", NULL) == MW_STATUS_OK);
    CHECK(metric("ecs.fargate.cpu.limit", "") == 256);

    /* then /task/stats fails in every way */
    CHECK(mw__fea_down(fea) == 0);
    expect_critical(eng, id, "/task/stats: connect");
    CHECK(mw__fea_up(fea) == 0);
    CHECK(mw__fea_fail_next(fea, MW_FEA_EP_V4_STATS, 500, "oops", 1) == 0);
    expect_critical(eng, id, "/task/stats: HTTP status 500");
    CHECK(mw__fea_fail_next(fea, MW_FEA_EP_V4_STATS, 200, "{\"" WEB "\": {\"cpu_stats\": [1,", 1) ==
          0);
    expect_critical(eng, id, "/task/stats: not JSON (at byte");
    CHECK(mw__fea_fail_next(fea, MW_FEA_EP_V4_STATS, 200, "[]", 1) == 0);
    expect_critical(eng, id, "/task/stats: the answer: JSON object expected, got array");
    CHECK(mw__fea_fail_next(fea, MW_FEA_EP_V4_STATS, 200,
                            "{\"" WEB "\": {\"memory_stats\": {\"usage\": \"lots\"}}}", 1) == 0);
    expect_critical(eng, id,
                    "container " WEB ": memory_stats.usage: non-negative integer expected, "
                    "got string \"lots\"");
    CHECK(mw__fea_fail_next(fea, MW_FEA_EP_V4_STATS, 200,
                            "{\"" WEB "\": {\"blkio_stats\": {\"io_service_bytes_recursive\": "
                            "[{\"op\": \"read\", \"value\": -1}]}}}",
                            1) == 0);
    expect_critical(eng, id,
                    "blkio_stats.io_service_bytes_recursive[0].value: non-negative integer "
                    "expected, got number -1");

    /* a container the endpoint has no stats of (yet): the endpoint works,
     * nothing to send, a warning */
    CHECK(mw__fea_put_stats(fea, WEB, "null") == 0);
    run(eng, id, NULL, NULL);
    CHECK(service_check("fargate_check", NULL) == MW_STATUS_OK);
    CHECK(service_check("moonwatch.check_status", NULL) == MW_STATUS_OK);
    CHECK(!sent("ecs.fargate.mem.usage"));
    mw_instance_stats st = {.size = sizeof st};
    CHECK(mw_engine_instance_stats(eng, id, &st) == MW_OK && st.warnings >= 1);

    /* a malformed container_id fails every run, naming the option */
    const char *bad = t_schedule(eng, "ecs_fargate", "{\"container_id\": \"../task\"}", 0);
    const char *msg = NULL;
    run(eng, bad, NULL, NULL);
    CHECK(service_check("moonwatch.check_status", &msg) == MW_STATUS_CRITICAL);
    CHECK(msg && strstr(msg, "bad option 'container_id'") != NULL);
    cJSON_Delete(s);
    mw_engine_free(eng);

    /* no endpoint: moonwatch does not run in an ECS task */
    eng = new_engine(NULL);
    id = t_schedule(eng, "ecs_fargate", "{\"container_id\": \"" WEB "\"}", 0);
    expect_critical(eng, id, "no ECS task metadata endpoint: $ECS_CONTAINER_METADATA_URI_V4");
    mw_engine_free(eng);

    /* a variable that is not a URL: said, its value not repeated */
    eng = new_engine("http://user:s3cret@127.0.0.1:1/v4");
    id = t_schedule(eng, "ecs_fargate", "{\"container_id\": \"" WEB "\"}", 0);
    expect_critical(eng, id, "$ECS_CONTAINER_METADATA_URI_V4 is not an http:// or https:// URL");
    CHECK(service_check("fargate_check", &msg) == MW_STATUS_CRITICAL && !strstr(msg, "s3cret"));
    mw_engine_free(eng);
}

int main(void)
{
    char *err = NULL;
    if (!(fea = mw__fea_new(NULL, &err))) {
        fprintf(stderr, "fake agent: %s\n", err ? err : "?");
        return 2;
    }
    CHECK(mw__fea_load(fea, FIX "/v4_task_fargate.json") == 0);
    CHECK(mw__fea_v4_select(fea, NULL, "moonwatch") == 0);
    test_cgroup_v2();
    test_cgroup_v1();
    test_failures();
    mw__fea_free(fea);
    return TEST_RESULT();
}
