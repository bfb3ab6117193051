/*
 * bench_ecs.c - ECS on EC2 at the scale of a full instance: 500 tasks of
 * 4 containers, against the in-process fake Docker engine (2000 running
 * containers with their com.amazonaws.ecs.* labels) and the in-process
 * fake ECS agent listing them, tasks and containers in a changing order
 * as the real agent does. Printed, never asserted.
 *
 *  poll    the CPU the discovery loop spends on one GET /v1/tasks poll that
 *          changes nothing (thread CPU over POLLS polls, per poll; the
 *          fake servers run on threads of their own and are not counted),
 *          beside the first poll, which reads every task;
 *  change  a task's revision changes at the agent (its 4 containers'
 *          identity with it), at a random point of the poll interval:
 *          the time from the change to its 4 instances rescheduled, and
 *          the part of it after the agent answered the poll that carried
 *          it (transfer, parse, diff, reconcile); CHANGES times, median,
 *          p99 and max, against the goal of one poll interval + 5 ms.
 *
 * The discovery is driven on this thread (mw__loop_run_once), scheduling
 * into a recorder, as the engine's control thread would.
 *
 * Usage: bench_ecs [TASKS (500) [PER_TASK (4) [POLL_S (0.5) [POLLS (40) [CHANGES (40)]]]]]
 */
#include "bench.h"
#include "core/base/buf.h"
#include "core/base/loop.h"
#include "core/base/util.h"
#include "discovery/discovery.h"
#include "tests/support/fake_dockerd.h"
#include "tests/support/fake_ecs_agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ARN_FMT "arn:aws:ecs:us-east-1:012345678910:task/bench/t%05zu"

typedef struct bench {
    char dir[64];
    mw__loop *loop;
    mw__fdd *fdd;
    mw__fea *fea;
    mw__discovery *d;
    mw__log log;
    size_t tasks, per_task, schedules;
    /* the change being waited for */
    char want_arn[128], want_version[16];
    size_t want_seen;
} bench;

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static mw_code on_schedule(void *ud, const mw__match_item *it, const char *id, char **err)
{
    bench *b = ud;
    const cJSON *arn = cJSON_GetObjectItemCaseSensitive(it->instance, "arn");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(it->instance, "version");
    char v[16];
    (void)id;
    (void)err;
    b->schedules++;
    snprintf(v, sizeof v, "%g", cJSON_IsNumber(ver) ? ver->valuedouble : -1);
    if (cJSON_IsString(arn) && !strcmp(arn->valuestring, b->want_arn) &&
        !strcmp(v, b->want_version))
        b->want_seen++;
    return MW_OK;
}

static void on_unschedule(void *ud, const char *id)
{
    (void)ud;
    (void)id;
}

static uint64_t polls(bench *b)
{
    mw__ecs_agent_stats st;
    mw__ecs_agent_stats_get(mw__discovery_ecs(b->d), &st);
    return st.polls;
}

/* Runs the loop until `n` polls in all were applied (30 s at most). */
static int run_to_polls(bench *b, uint64_t n)
{
    double end = mw__mono() + 30;
    while (polls(b) < n && mw__mono() < end)
        mw__loop_run_once(b->loop, 1000);
    return polls(b) >= n;
}

static void cid_of(size_t task, size_t k, char out[65])
{
    snprintf(out, 65, "%08x%056x", (unsigned)(task + 1) & 0xffffffffu, (unsigned)(k + 1) & 0xffu);
}

static char *task_json(bench *b, size_t t, int version)
{
    mw__buf j;
    char cid[65];
    mw__buf_init(&j, 1 << 20);
    mw__buf_addf(&j,
                 "{\"Arn\":\"" ARN_FMT "\",\"Family\":\"svc%zu\",\"Version\":\"%d\","
                 "\"KnownStatus\":\"RUNNING\",\"DesiredStatus\":\"RUNNING\",\"Containers\":[",
                 t, t % 50, version);
    for (size_t k = 0; k < b->per_task; k++) {
        cid_of(t, k, cid);
        mw__buf_addf(&j,
                     "%s{\"DockerId\":\"%s\",\"DockerName\":\"ecs-svc%zu-%d-c%zu-abcdef\","
                     "\"Name\":\"c%zu\"}",
                     k ? "," : "", cid, t % 50, version, k, k);
    }
    mw__buf_adds(&j, "]}");
    return mw__buf_take(&j, NULL);
}

static void fill(bench *b)
{
    char cid[65], arn[128], fam[32], name[64], cname[32];
    for (size_t t = 0; t < b->tasks; t++) {
        char *json = task_json(b, t, 1);
        snprintf(arn, sizeof arn, ARN_FMT, t);
        snprintf(fam, sizeof fam, "svc%zu", t % 50);
        if (mw__fea_put_task(b->fea, json) != 0)
            exit(1);
        free(json);
        for (size_t k = 0; k < b->per_task; k++) {
            const char *labels[] = {"com.amazonaws.ecs.task-arn",
                                    arn,
                                    "com.amazonaws.ecs.container-name",
                                    cname,
                                    "com.amazonaws.ecs.task-definition-family",
                                    fam,
                                    "com.amazonaws.ecs.task-definition-version",
                                    "1",
                                    "com.amazonaws.ecs.cluster",
                                    "bench",
                                    NULL};
            snprintf(cname, sizeof cname, "c%zu", k);
            snprintf(name, sizeof name, "ecs-%s-%zu", fam, t * b->per_task + k);
            cid_of(t, k, cid);
            mw__fdd_spec s = {.id = cid,
                              .name = name,
                              .image = "bench/benchecs:1",
                              .network_mode = "host",
                              .labels = labels};
            if (mw__fdd_run(b->fdd, &s, NULL) != 0) {
                fprintf(stderr, "fake engine: %s\n", mw__fdd_error(b->fdd));
                exit(1);
            }
        }
    }
}

static void setup(bench *b, double poll)
{
    char sock[160], host[180], tdir[128], *err = NULL;
    mw__fdd_opts fo = {0};
    mw__fea_opts ao = {.cluster = "arn:aws:ecs:us-east-1:012345678910:cluster/bench"};
    mw__template_set set = {0};
    mw__diag diag = {0};
    const char *off;

    snprintf(b->dir, sizeof b->dir, "/tmp/mw-becs-XXXXXX");
    if (!mkdtemp(b->dir))
        exit(1);
    snprintf(tdir, sizeof tdir, "%s/probe.d", b->dir);
    snprintf(sock, sizeof sock, "mkdir -p %s", tdir);
    if (system(sock) != 0)
        exit(1);
    bench_put(b->dir, "probe.d/auto_conf.yaml",
              "ad_identifiers: [benchecs]\ninit_config: {}\ninstances:\n"
              "  - arn: \"%%task_arn%%\"\n    version: \"%%task_version%%\"\n"
              "    container: \"%%ecs_container_name%%\"\n    cluster: \"%%ecs_cluster_name%%\"\n");
    snprintf(sock, sizeof sock, "%s/docker.sock", b->dir);
    fo.socket_path = sock;
    if (!(b->fdd = mw__fdd_new(&fo, &err)) || !(b->fea = mw__fea_new(&ao, &err))) {
        fprintf(stderr, "fakes: %s\n", err);
        exit(1);
    }
    fill(b);
    if (mw__loop_new(&b->loop) != MW_OK)
        exit(1);
    b->log = (mw__log){.level = MW_LOG_WARN, .fd = 2};
    mw__templates_load_dir(&set, b->dir, &diag);
    mw__template_set_finish(&set);
    mw__diag_free(&diag);
    snprintf(host, sizeof host, "unix://%s", sock);
    mw__discovery_opts o = {
        .loop = b->loop,
        .log = &b->log,
        .docker_mode = MW_DOCKER_ON,
        .docker_host = host,
        .ecs_agent_url = mw__fea_url(b->fea),
        .ecs_poll_interval = poll,
        .ops = {on_schedule, on_unschedule, b},
    };
    if (mw__discovery_new(&o, &set, &b->d, &off, &err) != MW_OK) {
        fprintf(stderr, "discovery: %s\n", err);
        exit(1);
    }
    mw__template_set_free(&set);
}

static void teardown(bench *b)
{
    char cmd[128];
    mw__discovery_free(b->d);
    mw__loop_free(b->loop);
    mw__fdd_free(b->fdd);
    mw__fea_free(b->fea);
    snprintf(cmd, sizeof cmd, "rm -rf %s", b->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", b->dir);
}

static double pct(double *v, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* One change: task `t` to `version`; the seconds to its last container's
 * reschedule into `*total`, the part after the agent answered into
 * `*apply`. 0, or -1 when it did not happen within 30 s. */
static int one_change(bench *b, size_t t, int version, double *total, double *apply)
{
    char *json = task_json(b, t, version);
    mw__fea_request last;
    double t0, end;

    snprintf(b->want_arn, sizeof b->want_arn, ARN_FMT, t);
    snprintf(b->want_version, sizeof b->want_version, "%d", version);
    b->want_seen = 0;
    t0 = mw__mono();
    if (mw__fea_put_task(b->fea, json) != 0)
        exit(1);
    free(json);
    end = t0 + 30;
    while (b->want_seen < b->per_task && mw__mono() < end)
        mw__loop_run_once(b->loop, 1000);
    *total = mw__mono() - t0;
    if (b->want_seen < b->per_task || mw__fea_last_request(b->fea, MW_FEA_EP_TASKS, &last) != 0)
        return -1;
    *apply = t0 + *total - last.at;
    return 0;
}

int main(int argc, char **argv)
{
    bench b = {0};
    size_t npolls, nchanges;
    double poll, c0, w0, first_cpu, first_wall;

    b.tasks = argc > 1 ? strtoul(argv[1], NULL, 10) : 500;
    b.per_task = argc > 2 ? strtoul(argv[2], NULL, 10) : 4;
    poll = argc > 3 ? strtod(argv[3], NULL) : 0.5;
    npolls = argc > 4 ? strtoul(argv[4], NULL, 10) : 40;
    nchanges = argc > 5 ? strtoul(argv[5], NULL, 10) : 40;
    if (!b.tasks || !b.per_task || b.per_task > 64 || poll < 0.01 || !npolls || !nchanges) {
        fprintf(stderr, "usage: bench_ecs [TASKS [PER_TASK [POLL_S [POLLS [CHANGES]]]]]\n");
        return 2;
    }
    setup(&b, poll);
    printf("%zu tasks x %zu containers, poll interval %.0f ms\n", b.tasks, b.per_task, poll * 1000);

    /* Docker's sync and the first poll, which reads every task. */
    c0 = thread_cpu();
    w0 = mw__mono();
    if (!run_to_polls(&b, 1))
        return fprintf(stderr, "no first poll\n"), 1;
    while (!mw__discovery_synced(b.d))
        mw__loop_run_once(b.loop, 100);
    first_cpu = thread_cpu() - c0;
    first_wall = mw__mono() - w0;
    printf("first sync (Docker list + inspect of %zu containers, the first poll): %.0f ms wall, "
           "%.0f ms CPU; %zu instances scheduled\n",
           b.tasks * b.per_task, first_wall * 1000, first_cpu * 1000, b.schedules);

    /* Polls that change nothing. */
    mw__ecs_agent_stats st0, st1;
    mw__ecs_agent_stats_get(mw__discovery_ecs(b.d), &st0);
    run_to_polls(&b, st0.polls + 1); /* start on a poll's end */
    mw__ecs_agent_stats_get(mw__discovery_ecs(b.d), &st0);
    c0 = thread_cpu();
    if (!run_to_polls(&b, st0.polls + npolls))
        return fprintf(stderr, "polls stalled\n"), 1;
    double cpu = thread_cpu() - c0;
    mw__ecs_agent_stats_get(mw__discovery_ecs(b.d), &st1);
    printf("poll that changes nothing: %.2f ms CPU per poll (%zu polls; %llu tasks read, %llu "
           "skipped as unchanged; goal: <= 5 ms)\n",
           cpu * 1000 / (double)npolls, npolls,
           (unsigned long long)(st1.tasks_read - st0.tasks_read),
           (unsigned long long)(st1.tasks_skipped - st0.tasks_skipped));

    /* Changes at random points of the poll interval. */
    double *total = calloc(nchanges, sizeof *total), *apply = calloc(nchanges, sizeof *apply);
    size_t done = 0;
    uint64_t rng = 0x2545F4914F6CDD1DULL;
    for (size_t i = 0; i < nchanges; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        double pause = poll * (double)(rng % 1000) / 1000.0, end = mw__mono() + pause;
        while (mw__mono() < end)
            mw__loop_run_once(b.loop, (int)(pause * 1000) + 1);
        if (one_change(&b, (size_t)(rng % b.tasks), (int)(2 + i), &total[done], &apply[done]) == 0)
            done++;
    }
    if (done) {
        qsort(total, done, sizeof *total, bench_cmp_double);
        qsort(apply, done, sizeof *apply, bench_cmp_double);
        printf("task change -> its %zu instances rescheduled, %zu changes: median %.1f ms, p99 "
               "%.1f ms, max %.1f ms (goal: <= poll interval + 5 ms = %.0f ms)\n",
               b.per_task, done, pct(total, done, 0.5) * 1000, pct(total, done, 0.99) * 1000,
               total[done - 1] * 1000, poll * 1000 + 5);
        printf("  of which after the agent answered the poll: median %.2f ms, p99 %.2f ms, max "
               "%.2f ms\n",
               pct(apply, done, 0.5) * 1000, pct(apply, done, 0.99) * 1000, apply[done - 1] * 1000);
    }
    if (done < nchanges)
        printf("%zu changes were not applied within 30 s\n", nchanges - done);
    free(total);
    free(apply);
    teardown(&b);
    return done == nchanges ? 0 : 1;
}
