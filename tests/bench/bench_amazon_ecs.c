/*
 * bench_amazon_ecs.c - one run of the bundled amazon_ecs check over a
 * large cluster on the fake ECS API (tests/support/fake_aws.h, in this
 * process on 127.0.0.1, SigV4 verified): 1,000 container instances and
 * 200 services of 20 events each by default. Printed, never asserted;
 * the goals: no more calls than AWS's page and batch limits force (44
 * here: ListClusters, DescribeClusters, 10 ListContainerInstances and 10
 * DescribeContainerInstances at 100 a page and a call, 2 ListServices at
 * 100 a page, 20 DescribeServices at 10 a call), at most 1 s of wall
 * time and 50 ms of moonwatch's CPU per run.
 *
 * A run is what the engine does every interval: the instance's run (its
 * calls, the decoding of the answers, the samples into the aggregator,
 * its state saved under a temporary state_dir) and one flush, on a
 * hosted engine (no thread of its own, one worker). moonwatch's CPU is
 * the process's less the fake server thread's. The first run (init, the
 * state written whole) is printed apart; of the others, the median, min
 * and max. The calls are counted by the fake, per action.
 *
 * Usage: bench_amazon_ecs [RUNS (21) [INSTANCES (1000) [SERVICES (200)
 *                          [EVENTS per service (20)]]]]
 * BENCH_CHECKS_DIR=DIR runs DIR/amazon_ecs.lua instead of the bundled
 * one (a version to compare, or one that only makes the calls).
 */
#include "moonwatch.h"
#include "bench.h"
#include "core/base/util.h"
#include "core/engine.h"
#include "tests/support/ecs_api_model.h"
#include "tests/support/fake_aws.h"
#include "tests/support/make.h"

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#define KEY_ID "AKIDBENCHAMAZONECS01"
#define SECRET "bench/Secret+Key0001abcdefghijklmnopqrstu"

static const char *const actions[] = {
    "ListClusters", "DescribeClusters", "ListContainerInstances", "DescribeContainerInstances",
    "ListServices", "DescribeServices",
};

static size_t records, events;
static int status = -1;

static void count(const mw_record *r, void *ud)
{
    (void)ud;
    records++;
    events += r->type == MW_RECORD_EVENT;
    if (r->type == MW_RECORD_SERVICE_CHECK && !strcmp(r->name, "amazon_ecs.can_connect"))
        status = r->status;
}

static void model(mw__faws *f, int ninst, int nsvc, int nev)
{
    char ec2[32], name[32];
    double now = mw__wall();
    ecsm_event *ev = calloc((size_t)nev + 1, sizeof *ev);
    char(*ids)[64] = calloc((size_t)nev + 1, sizeof *ids);
    for (int i = 0; i < ninst; i++) {
        snprintf(ec2, sizeof ec2, "i-0bench%011d", i);
        ecsm_instance in = {ec2,  NULL, "ACTIVE", i % 50 != 0, i % 9,   i % 2,
                            4096, 2048, 7680,     4000,        "1.80.0"};
        char *j = ecsm_instance_json(&in);
        mw__faws_put_instance(f, "bench", j);
        free(j);
    }
    for (int i = 0; i < nsvc; i++) {
        snprintf(name, sizeof name, "service-%03d", i);
        for (int k = 0; k < nev; k++) { /* newest first, one a minute */
            snprintf(ids[k], sizeof ids[k], "%08x-%04x-4000-8000-%012x", i, k, i * 1000 + k);
            ev[k] = (ecsm_event){ids[k], now - 60.0 * (k + 1),
                                 k % 5 ? "(service web) has reached a steady state."
                                       : "(service web) (task 0123) failed container health "
                                         "checks."};
        }
        ecsm_service s = {name, NULL, 4, 4 - (i % 2), i % 2, ev, (size_t)nev};
        char *j = ecsm_service_json(&s);
        mw__faws_put_service(f, "bench", j);
        free(j);
    }
    free(ev);
    free(ids);
}

static mw_engine *engine(const char *state)
{
    mw_config *cfg = mw_config_new();
    mw_config_set(cfg, "no_bundled", "true", NULL);
    const char *dir = getenv("BENCH_CHECKS_DIR"); /* another amazon_ecs.lua, to compare */
    mw_config_set(cfg, "checks_dir", dir && *dir ? dir : MW_TEST_SOURCE_DIR "/checks", NULL);
    mw_config_set(cfg, "sink", "none", NULL);
    mw_config_set(cfg, "log_level", "error", NULL);
    mw_config_set(cfg, "flush_interval", "600", NULL);
    mw_config_set(cfg, "docker", "off", NULL);
    mw_config_set(cfg, "ecs", "off", NULL);
    mw_config_set(cfg, "workers", "1", NULL);
    mw_config_set(cfg, "state_dir", state, NULL);
    mw_engine *eng = t_engine(cfg);
    mw_config_free(cfg);
    mw_engine_add_sink(eng, count, NULL);
    return eng;
}

typedef struct sample {
    double wall_ms, cpu_ms;
    uint64_t calls[6], total;
    size_t records, events;
    int status;
} sample;

/* One run of `id` and one flush. */
static sample one_run(mw_engine *eng, mw__faws *f, const char *id)
{
    sample s = {0};
    uint64_t before[6];
    for (int i = 0; i < 6; i++)
        before[i] = mw__faws_count(f, actions[i]);
    records = events = 0;
    status = -1;
    double c0 = bench_cpu_seconds() - mw__faws_cpu_seconds(f), w0 = mw__mono();
    mw__sched *sc = mw__engine_sched(eng);
    mw__sched_run_now(sc, id);
    for (int i = 0; i < 100000 && mw__sched_running(sc) > 0; i++)
        mw_engine_step(eng, 100);
    mw_engine_flush(eng);
    s.wall_ms = (mw__mono() - w0) * 1e3;
    s.cpu_ms = (bench_cpu_seconds() - mw__faws_cpu_seconds(f) - c0) * 1e3;
    for (int i = 0; i < 6; i++)
        s.total += s.calls[i] = mw__faws_count(f, actions[i]) - before[i];
    s.records = records;
    s.events = events;
    s.status = status;
    return s;
}

static void print_run(const char *what, const sample *s)
{
    printf("%s: %llu calls (", what, (unsigned long long)s->total);
    for (int i = 0; i < 6; i++)
        printf("%s%s %llu", i ? ", " : "", actions[i], (unsigned long long)s->calls[i]);
    printf("), %.1f ms wall, %.1f ms CPU, %zu records (%zu events), can_connect %d\n", s->wall_ms,
           s->cpu_ms, s->records, s->events, s->status);
}

static int arg(int argc, char **argv, int i, int def)
{
    int v = argc > i ? atoi(argv[i]) : 0;
    return v > 0 ? v : def;
}

int main(int argc, char **argv)
{
    int runs = arg(argc, argv, 1, 21), ninst = arg(argc, argv, 2, 1000);
    int nsvc = arg(argc, argv, 3, 200), nev = argc > 4 ? atoi(argv[4]) : 20;
    char *err = NULL, tmp[] = "/tmp/mw-bench-ecs-XXXXXX", state[96];
    mw__faws *f = mw__faws_new(NULL, &err);
    if (!f || !mkdtemp(tmp)) {
        fprintf(stderr, "bench_amazon_ecs: %s\n", err ? err : "no fake or no temporary directory");
        return 1;
    }
    snprintf(state, sizeof state, "%s/state", tmp);
    mw__faws_add_key(f, KEY_ID, SECRET, NULL, 0);
    setenv("AWS_ACCESS_KEY_ID", KEY_ID, 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    unsetenv("AWS_SESSION_TOKEN");
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_ENDPOINT_URL_ECS", mw__faws_url(f), 1);
    nev = nev < 0 ? 0 : nev > 100 ? 100 : nev;
    model(f, ninst, nsvc, nev);
    printf("cluster: %d container instances, %d services of %d events; %d runs\n", ninst, nsvc, nev,
           runs);

    mw_engine *eng = engine(state);
    cJSON *inst = cJSON_CreateObject();
    const char *id = NULL;
    if (mw__engine_schedule(eng, "amazon_ecs", "bench", inst, NULL, &id, &err) != MW_OK) {
        fprintf(stderr, "bench_amazon_ecs: %s\n", err ? err : "cannot schedule");
        return 1;
    }
    cJSON_Delete(inst);
    sample first = one_run(eng, f, id);
    print_run("first run", &first);
    double *wall = calloc((size_t)runs, sizeof *wall), *cpu = calloc((size_t)runs, sizeof *cpu);
    sample last = first;
    for (int r = 0; r < runs; r++) {
        last = one_run(eng, f, id);
        wall[r] = last.wall_ms;
        cpu[r] = last.cpu_ms;
    }
    print_run("last run", &last);
    qsort(wall, (size_t)runs, sizeof *wall, bench_cmp_double);
    qsort(cpu, (size_t)runs, sizeof *cpu, bench_cmp_double);
    mw_engine_stats st = {.size = sizeof st}; /* one instance: its Lua state */
    mw_engine_stats_get(eng, &st);
    printf("per run after the first: wall median %.1f ms (min %.1f, max %.1f), moonwatch CPU "
           "median %.1f ms (min %.1f, max %.1f); Lua memory %.1f MiB, RSS %.0f MiB\n",
           wall[runs / 2], wall[0], wall[runs - 1], cpu[runs / 2], cpu[0], cpu[runs - 1],
           (double)st.lua_bytes / 1048576.0, bench_rss_kib() / 1024.0);
    printf("goals: %s calls (44 for 1,000 instances and 200 services), wall %s 1 s, CPU %s 50 ms\n",
           last.total == 44 ? "=" : "!=", wall[runs / 2] <= 1000 ? "<=" : ">",
           cpu[runs / 2] <= 50 ? "<=" : ">");
    free(wall);
    free(cpu);
    mw_engine_free(eng);
    mw__faws_free(f);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        perror("rm");
    return 0;
}
