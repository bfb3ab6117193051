/*
 * test_docker_check.c - the bundled checks/docker.lua on copies of the
 * fixture cgroup trees (tests/fixtures/cgroup), whose counters the test
 * advances between runs: the first run sends the gauges and no CPU
 * percent; the second sends CPU percents computed from the two samples
 * over the time between them, and the rates; a counter that went back
 * sends no percent; a bad container_id, or a container not found at two
 * runs in a row, fails the run with why; one whose cgroup went away, or
 * not found at its first run, is a warning.
 */
#include "test.h"

#include "core/base/util.h"
#include "core/pipeline/aggregator.h"
#include "core/pipeline/sender.h"
#include "lua/sandbox.h"
#include "tests/support/make.h"
#include "tmptree.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ID_A      "06ada57c26aa5cf429e9f2c0a99e3e4a42daecd45fc4c955d7c1399ab4227ae8"
#define ID_C      "39610bca9443fdb6ae772d781954447c0bb23c05bcb2f08e72d6cc5f70209726"
#define A_CPUACCT "sys/fs/cgroup/cpu,cpuacct/docker/" ID_A
#define C_SCOPE   "sys/fs/cgroup/system.slice/docker-" ID_C ".scope"

static mw__budget *budget;
static char *script;
static size_t script_len;

#define MAX_SEEN 64

typedef struct seen {
    size_t n;
    struct {
        char name[64];
        char tags[256];
        double value;
    } v[MAX_SEEN];
} seen;

static void record(const mw_record *r, void *ud)
{
    seen *s = ud;
    if (r->type != MW_RECORD_METRIC || s->n == MAX_SEEN)
        return;
    snprintf(s->v[s->n].name, sizeof s->v[0].name, "%s", r->name);
    s->v[s->n].tags[0] = '\0';
    for (size_t i = 0; i < r->ntags; i++) {
        size_t len = strlen(s->v[s->n].tags);
        snprintf(s->v[s->n].tags + len, sizeof s->v[0].tags - len, "%s%s", i ? "," : "",
                 r->tags[i]);
    }
    s->v[s->n++].value = r->value;
}

/* The value of `name` with tags `tags`, or NAN when not sent. */
static double value(const seen *s, const char *name, const char *tags)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].name, name) && !strcmp(s->v[i].tags, tags))
            return s->v[i].value;
    return NAN;
}

static int sent(const seen *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].name, name))
            return 1;
    return 0;
}

typedef struct rig {
    char dir[128], proc[192], cg[192];
    mw__host_paths paths;
    mw__aggregator *agg;
    mw__sender *sender;
    mw__sandbox *sb;
    double t_before, t_after; /* monotonic bounds of the last run */
} rig;

/* A copy of fixture tree `which` ("v1", "v2") and the check on it. */
static int rig_new(rig *r, const char *which, const char *instance_json)
{
    char cmd[512];
    memset(r, 0, sizeof *r);
    tmptree_new(r->dir, sizeof r->dir, "mw-dockercheck");
    snprintf(cmd, sizeof cmd, "cp -a '%s/cgroup/%s/.' '%s/'", MW_TEST_FIXTURES, which, r->dir);
    CHECK(system(cmd) == 0);
    snprintf(r->proc, sizeof r->proc, "%s/proc", r->dir);
    snprintf(r->cg, sizeof r->cg, "%s/sys/fs/cgroup", r->dir);
    r->paths = (mw__host_paths){r->proc, r->cg};
    mw__agg_opts ao = {.flush_interval = 10, .context_expiry = 300, .host = "h"};
    r->agg = mw__agg_new(&ao);
    mw__sender_opts so = {.check = "docker", .check_id = "docker:1"};
    r->sender = mw__sender_new(r->agg, &so);
    cJSON *inst = cJSON_Parse(instance_json);
    mw__sandbox_opts o = {
        .check = "docker",
        .check_id = "docker:1",
        .chunkname = "@docker.lua",
        .script = script,
        .script_len = script_len,
        .instance = inst,
        .out = mw__sender_out(r->sender),
        .paths = &r->paths,
    };
    char *err = NULL;
    r->sb = mw__sandbox_new(&o, &err);
    if (!r->sb)
        fprintf(stderr, "sandbox: %s\n", err);
    free(err);
    cJSON_Delete(inst);
    return r->sb ? 0 : -1;
}

static void rig_free(rig *r)
{
    mw__sandbox_free(r->sb);
    mw__sender_free(r->sender);
    mw__agg_free(r->agg);
    tmptree_remove(r->dir);
}

/* One run, its samples committed at wall time `at` and flushed into `s`. */
static mw__run_status rig_run(rig *r, double at, seen *s)
{
    mw__run_status st;
    r->t_before = mw__mono();
    mw__sandbox_begin(r->sb, mw__mono() + 5);
    while ((st = mw__sandbox_resume(r->sb, mw__budget_slot_get(budget, 0))) == MW_RUN_PREEMPTED)
        ;
    r->t_after = mw__mono();
    mw__sender_commit(r->sender, at);
    memset(s, 0, sizeof *s);
    mw__agg_flush(r->agg, at + 1, record, s);
    return st;
}

/* v2, container C (on the host's network): gauges at once, percents and
 * rates from the second run. */
static void test_v2_runs(void)
{
    rig r;
    seen s;
    if (rig_new(&r, "v2", "{\"container_id\": \"" ID_C "\", \"pid\": 6001}") != 0)
        return;
    CHECK(rig_run(&r, 1000, &s) == MW_RUN_OK);
    const char *t = "runtime:docker";
    CHECK(value(&s, "docker.mem.rss", t) == 41943040);
    CHECK(value(&s, "docker.mem.cache", t) == 16777216);
    CHECK(value(&s, "docker.mem.swap", t) == 2097152);
    CHECK(value(&s, "docker.mem.limit", t) == 536870912);
    CHECK(value(&s, "docker.mem.sw_limit", t) == 536870912.0 + 268435456.0);
    CHECK_NEAR(value(&s, "docker.mem.in_use", t), 59768832.0 / 536870912.0, 1e-12);
    CHECK(value(&s, "docker.thread.count", t) == 4);
    /* One sample: no percent, no rate yet; no interfaces on the host's
     * network. */
    CHECK(!sent(&s, "docker.cpu.usage") && !sent(&s, "docker.cpu.user"));
    CHECK(!sent(&s, "docker.io.read_bytes") && !sent(&s, "docker.cpu.throttled"));
    CHECK(!sent(&s, "docker.net.bytes_rcvd"));
    double first_before = r.t_before, first_after = r.t_after;

    /* 1.5 s of CPU (1.2 user, 0.3 system), 3 throttled periods for 0.2 s,
     * 10 MiB read, while at least 0.2 s pass. */
    tmptree_put(r.dir, C_SCOPE "/cpu.stat",
                "usage_usec 8500000\nuser_usec 5700000\nsystem_usec 2800000\nnr_periods 330\n"
                "nr_throttled 15\nthrottled_usec 800000\n");
    tmptree_put(r.dir, C_SCOPE "/io.stat",
                "8:0 rbytes=13631488 wbytes=1048576 rios=200 wios=32 dbytes=0 dios=0\n"
                "259:0 rbytes=1048576 wbytes=0 rios=8 wios=0 dbytes=0 dios=0\n");
    usleep(200000);
    CHECK(rig_run(&r, 1010, &s) == MW_RUN_OK);
    /* percent = 100 * cpu time / elapsed, the elapsed time between the two
     * samples lying within what the test measured around the runs */
    double lo = r.t_before - first_after, hi = r.t_after - first_before;
    double usage = value(&s, "docker.cpu.usage", t), user = value(&s, "docker.cpu.user", t);
    double sys = value(&s, "docker.cpu.system", t);
    CHECK(usage >= 100 * 1.5 / hi && usage <= 100 * 1.5 / lo);
    CHECK(user >= 100 * 1.2 / hi && user <= 100 * 1.2 / lo);
    CHECK(sys >= 100 * 0.3 / hi && sys <= 100 * 0.3 / lo);
    CHECK_NEAR(usage, user + sys, 1e-6 * usage);
    /* rates over the 10 s between the commits */
    CHECK_NEAR(value(&s, "docker.cpu.throttled", t), 3.0 / 10, 1e-9);
    CHECK_NEAR(value(&s, "docker.cpu.throttled.time", t), 0.2e9 / 1e7 / 10, 1e-9);
    CHECK_NEAR(value(&s, "docker.io.read_bytes", t), 10485760.0 / 10, 1e-6);
    CHECK_NEAR(value(&s, "docker.io.write_bytes", t), 0, 1e-9);

    /* A counter that went back (the cgroup was made anew): no percent. */
    tmptree_put(r.dir, C_SCOPE "/cpu.stat", "usage_usec 1000\nuser_usec 600\nsystem_usec 400\n");
    CHECK(rig_run(&r, 1020, &s) == MW_RUN_OK);
    CHECK(!sent(&s, "docker.cpu.usage") && !sent(&s, "docker.cpu.user"));
    CHECK(value(&s, "docker.mem.rss", t) == 41943040);

    /* The container stops, its cgroup goes: a warning, not a failed run
     * (its instance is about to be unscheduled). */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/" C_SCOPE "'", r.dir);
    CHECK(system(cmd) == 0);
    CHECK(rig_run(&r, 1030, &s) == MW_RUN_OK);
    CHECK(mw__sandbox_warnings(r.sb) == 1 && s.n == 0);
    rig_free(&r);
}

/* v1, container A found by its id alone, with a network namespace of its
 * own: its interfaces as rates, tagged docker_network:<interface>. */
static void test_v1_network(void)
{
    rig r;
    seen s;
    if (rig_new(&r, "v1", "{\"container_id\": \"" ID_A "\"}") != 0)
        return;
    CHECK(rig_run(&r, 1000, &s) == MW_RUN_OK);
    CHECK(value(&s, "docker.mem.rss", "runtime:docker") == 52428800);
    CHECK(value(&s, "docker.mem.limit", "runtime:docker") == 268435456);
    CHECK(value(&s, "docker.mem.sw_limit", "runtime:docker") == 536870912);
    CHECK(!sent(&s, "docker.net.bytes_rcvd"));
    tmptree_put(r.dir, "proc/4321/net/dev",
                "Inter-| Receive | Transmit\n face |bytes packets|bytes packets\n"
                "    lo: 99999 1 0 0 0 0 0 0 99999 1 0 0 0 0 0 0\n"
                "  eth0: 78400320 1 0 0 0 0 0 0 2597152 1 0 0 0 0 0 0\n"
                "  eth1: 4096 8 0 0 0 0 0 0 8192 10 0 0 0 0 0 0\n");
    tmptree_put(r.dir, A_CPUACCT "/cpuacct.usage", "5400000000\n");
    CHECK(rig_run(&r, 1005, &s) == MW_RUN_OK);
    CHECK_NEAR(value(&s, "docker.net.bytes_rcvd", "docker_network:eth0,runtime:docker"),
               5000000.0 / 5, 1e-6);
    CHECK_NEAR(value(&s, "docker.net.bytes_sent", "docker_network:eth0,runtime:docker"),
               500000.0 / 5, 1e-6);
    CHECK_NEAR(value(&s, "docker.net.bytes_rcvd", "docker_network:eth1,runtime:docker"), 0, 1e-9);
    CHECK(isnan(value(&s, "docker.net.bytes_rcvd", "docker_network:lo,runtime:docker")));
    CHECK(value(&s, "docker.cpu.usage", "runtime:docker") > 0);
    /* cpuacct.stat did not move: user and system are 0, not absent */
    CHECK(value(&s, "docker.cpu.user", "runtime:docker") == 0);
    rig_free(&r);
}

static void test_failures(void)
{
    rig r;
    seen s;
    const char *bad[][2] = {
        {"{}", "bad option 'container_id': non-empty string expected, got no value"},
        {"{\"container_id\": \"3f2c9a1e0b7d\"}",
         "bad option 'container_id': container id (64 lowercase hex digits) expected, got "
         "string \"3f2c9a1e0b7d\""},
        {"{\"container_id\": \"" ID_A "\", \"pid\": \"self\"}", "bad option 'pid'"},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        if (rig_new(&r, "v1", bad[i][0]) != 0)
            continue;
        CHECK(rig_run(&r, 1000, &s) == MW_RUN_ERROR);
        const char *e = mw__sandbox_error(r.sb);
        CHECK(strstr(e, bad[i][1]) != NULL);
        if (!strstr(e, bad[i][1]))
            fprintf(stderr, "got: %s\n", e);
        CHECK(s.n == 0);
        rig_free(&r);
    }

    /* A container not found at its first run may have stopped before it
     * (a warning); not found at the second either, it fails the run. */
    if (rig_new(&r, "v1", "{\"container_id\": \"" ID_C "\"}") == 0) {
        CHECK(rig_run(&r, 1000, &s) == MW_RUN_OK);
        CHECK(s.n == 0);
        CHECK(rig_run(&r, 1015, &s) == MW_RUN_ERROR);
        CHECK(strstr(mw__sandbox_error(r.sb), "no cgroup of container 39610bca9443 under ") !=
              NULL);
        CHECK(s.n == 0);
        rig_free(&r);
    }
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 1 << 20);
    *len = f && buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    if (f)
        fclose(f);
    return buf;
}

int main(void)
{
    budget = t_budget(1, 0.002);
    script = slurp(MW_TEST_SOURCE_DIR "/checks/docker.lua", &script_len);
    CHECK(script_len > 0);
    test_v2_runs();
    test_v1_network();
    test_failures();
    free(script);
    mw__budget_free(budget);
    return TEST_RESULT();
}
