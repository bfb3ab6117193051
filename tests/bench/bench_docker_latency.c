/*
 * bench_docker_latency.c - from a container's `start` event to its
 * instance's first run, on a real Docker engine (printed, never
 * asserted).
 *
 * The engine runs in this process against the engine at SOCKET, with one
 * auto_conf template matching the image. Containers are started with the
 * Docker CLI, PARALLEL at a time; each instance's check reports mw.time() (the
 * monotonic clock) on its first run, tagged with its container id. The
 * start events' timeNano come from `docker events` afterwards; the
 * latency of a container is (first run, on the wall clock) - timeNano.
 *
 * With MODE "ecs" the containers are ECS task containers: each is made
 * with `docker create` and the com.amazonaws.ecs.* labels, listed by an
 * in-process fake ECS agent (tests/support/fake_ecs_agent.h; its
 * ?dockerid= answers delayed by BENCH_ECS_LATENCY_MS, default 20) under
 * that id, as the real agent knows a container once it created it, then
 * started; the template needs %%task_arn%%, so no instance can run
 * before the container's task identity is known, and the engine asks
 * the agent (ecs_agent_url). It also says how many ?dockerid= lookups
 * were made and how many instances were scheduled more than once (the
 * agent's answer must confirm what the labels said).
 *
 * Usage: bench_docker_latency SOCKET IMAGE [N (default 200)] [PARALLEL (default 1)] [MODE]
 * (tests/bench/docker_latency.sh starts a private engine and runs it.)
 */
#include "moonwatch.h"
#include "bench.h"
#include "core/base/util.h"
#include "tests/support/fake_ecs_agent.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXN 2000

typedef struct seen {
    char id[65];
    double mono; /* first run, monotonic seconds */
} seen;

static seen runs[MAXN];
static size_t nruns;
static pthread_mutex_t runs_lock = PTHREAD_MUTEX_INITIALIZER;

/* Keeps the first report of each container (the gauge keeps its last
 * value, which is the first run's: the interval outlasts the bench). */
static void sink(const mw_record *r, void *ud)
{
    MW_UNUSED(ud);
    if (r->type != MW_RECORD_METRIC || strcmp(r->name, "bench.first_run") != 0)
        return;
    for (size_t i = 0; i < r->ntags; i++) {
        if (strncmp(r->tags[i], "container_id:", 13) != 0)
            continue;
        pthread_mutex_lock(&runs_lock);
        size_t k = 0;
        while (k < nruns && strcmp(runs[k].id, r->tags[i] + 13) != 0)
            k++;
        if (k == nruns && nruns < MAXN) {
            snprintf(runs[k].id, sizeof runs[k].id, "%s", r->tags[i] + 13);
            runs[k].mono = r->value;
            nruns++;
        }
        pthread_mutex_unlock(&runs_lock);
    }
}

/* The start events, read live from `docker events` (its replay buffer
 * holds only 256 events, fewer than a run of this bench makes). */
typedef struct start_ev {
    char id[65];
    long long nano;
} start_ev;

static start_ev starts[MAXN];
static size_t nstarts;
static pid_t events_pid;
static pthread_t events_thread;
static FILE *events_in;

static void *events_reader(void *ud)
{
    MW_UNUSED(ud);
    char id[128];
    long long tn;
    while (fscanf(events_in, "%127s %lld", id, &tn) == 2)
        if (nstarts < MAXN && strlen(id) == 64) {
            snprintf(starts[nstarts].id, sizeof starts[nstarts].id, "%s", id);
            starts[nstarts++].nano = tn;
        }
    return NULL;
}

static void events_start(const char *sock)
{
    int fds[2];
    char host[300];
    snprintf(host, sizeof host, "unix://%s", sock);
    if (pipe(fds) != 0 || (events_pid = fork()) < 0) {
        perror("events");
        exit(1);
    }
    if (events_pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl("/usr/bin/docker", "docker", "-H", host, "events", "--filter", "type=container",
              "--filter", "event=start", "--format", "{{.Actor.ID}} {{.TimeNano}}", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    events_in = fdopen(fds[0], "r");
    pthread_create(&events_thread, NULL, events_reader, NULL);
    usleep(300000); /* subscribed */
}

static void events_stop(void)
{
    kill(events_pid, SIGTERM);
    waitpid(events_pid, NULL, 0);
    pthread_join(events_thread, NULL);
    fclose(events_in);
}

/* ------------------------------------------------------------- ECS mode */

static mw__fea *ecs_agent;
static pthread_mutex_t sched_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned sched_lines, ecs_started;

/* Counts the "scheduled for" lines: one per container when no instance
 * was scheduled again. */
static void log_sink(mw_log_level level, const char *where, const char *msg, void *ud)
{
    MW_UNUSED(ud);
    MW_UNUSED(where);
    if (!strncmp(msg, "scheduled for docker://", 23)) {
        pthread_mutex_lock(&sched_lock);
        sched_lines++;
        pthread_mutex_unlock(&sched_lock);
    } else if (level >= MW_LOG_WARN) {
        fprintf(stderr, "%s\n", msg);
    }
}

typedef struct ecs_job {
    const char *sock, *image;
    int from, to; /* container numbers [from, to) */
} ecs_job;

#define ECS_ARN "arn:aws:ecs:us-east-1:012345678910:task/bench/lat-%d"

/* create (labels), the agent lists it, start: as the ECS agent does. */
static void ecs_one(const ecs_job *j, int i)
{
    char cmd[1024], id[128] = "", task[512], arn[128];
    FILE *p;
    snprintf(arn, sizeof arn, ECS_ARN, i);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/docker -H unix://%s create --network host --init --label mwlat=1 "
             "--label com.amazonaws.ecs.task-arn=%s --label com.amazonaws.ecs.container-name=app "
             "--label com.amazonaws.ecs.task-definition-family=lat "
             "--label com.amazonaws.ecs.task-definition-version=1 "
             "--label com.amazonaws.ecs.cluster=bench --name mwlat-%d %s sleep 3600",
             j->sock, arn, i, j->image);
    if (!(p = popen(cmd, "r")) || !fgets(id, sizeof id, p)) {
        if (p)
            pclose(p);
        return;
    }
    pclose(p);
    id[strcspn(id, "\n")] = 0;
    snprintf(task, sizeof task,
             "{\"Arn\":\"%s\",\"Family\":\"lat\",\"Version\":\"1\",\"KnownStatus\":"
             "\"PENDING\",\"DesiredStatus\":\"RUNNING\",\"Containers\":[{\"Name\":\"app\","
             "\"DockerId\":\"%s\"}]}",
             arn, id);
    mw__fea_put_task(ecs_agent, task);
    snprintf(cmd, sizeof cmd, "/usr/bin/docker -H unix://%s start %s >/dev/null", j->sock, id);
    if (system(cmd) == 0) {
        pthread_mutex_lock(&sched_lock);
        ecs_started++;
        pthread_mutex_unlock(&sched_lock);
    }
}

static void *ecs_worker(void *ud)
{
    const ecs_job *j = ud;
    for (int i = j->from; i < j->to; i++)
        ecs_one(j, i);
    return NULL;
}

static void ecs_start_all(const char *sock, const char *image, int n, int parallel)
{
    pthread_t t[16];
    ecs_job jobs[16];
    for (int k = 0; k < parallel; k++) {
        jobs[k] = (ecs_job){sock, image, 1 + n * k / parallel, 1 + n * (k + 1) / parallel};
        pthread_create(&t[k], NULL, ecs_worker, &jobs[k]);
    }
    for (int k = 0; k < parallel; k++)
        pthread_join(t[k], NULL);
}

static int64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static mw_engine *engine(const char *sock, const char *dir, int ecs)
{
    char host[300];
    snprintf(host, sizeof host, "unix://%s", sock);
    mw_config *cfg = mw_config_new();
    char checks[400], templates[400];
    snprintf(checks, sizeof checks, "%s/checks", dir);
    snprintf(templates, sizeof templates, "%s/templates", dir);
    mw_config_set(cfg, "docker_host", host, NULL);
    mw_config_set(cfg, "checks_dir", checks, NULL);
    mw_config_set(cfg, "templates_dir", templates, NULL);
    mw_config_set(cfg, "no_bundled", "true", NULL);
    mw_config_set(cfg, "sink", "none", NULL);
    mw_config_set(cfg, "flush_interval", "1", NULL);
    mw_config_set(cfg, "log_level", ecs ? "info" : "warn", NULL);
    if (ecs) {
        mw_config_set(cfg, "ecs_agent_url", mw__fea_url(ecs_agent), NULL);
        mw_config_set_log(cfg, log_sink, NULL);
    } else {
        mw_config_set(cfg, "ecs", "off", NULL);
    }
    char *err = NULL;
    mw_engine *eng = NULL;
    mw_code rc = mw_engine_new(cfg, &eng, &err);
    mw_config_free(cfg);
    if (rc != MW_OK) {
        fprintf(stderr, "engine: %s\n", err ? err : mw_strerror(rc));
        exit(1);
    }
    mw_engine_add_sink(eng, sink, NULL);
    return eng;
}

static void setup(char *dir, const char *image, int ecs)
{
    strcpy(dir, "/tmp/mwlat.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    char cmd[600], short_name[200], tmpl[400];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/checks %s/templates/lat.d", dir, dir);
    if (system(cmd) != 0)
        exit(1);
    /* the short image name: no registry path, no tag */
    const char *s = strrchr(image, '/');
    snprintf(short_name, sizeof short_name, "%s", s ? s + 1 : image);
    short_name[strcspn(short_name, ":@")] = 0;
    bench_put(dir, "checks/lat.lua",
              "return { run = function(self) mw.gauge('bench.first_run', mw.time()) end }\n");
    snprintf(tmpl, sizeof tmpl,
             "ad_identifiers: [%s]\ninit_config: {}\ninstances:\n"
             "  - min_collection_interval: 3600\n%s",
             short_name, ecs ? "    task: \"%%task_arn%%\"\n" : "");
    bench_put(dir, "templates/lat.d/auto_conf.yaml", tmpl);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_docker_latency SOCKET IMAGE [N [PARALLEL [ecs]]]\n");
        return 2;
    }
    int ecs = argc > 5 && strcmp(argv[5], "ecs") == 0;
    unsigned ecs_latency = 0;
    if (ecs) {
        const char *l = getenv("BENCH_ECS_LATENCY_MS");
        char *err = NULL;
        mw__fea_opts fo = {.cluster = "arn:aws:ecs:us-east-1:012345678910:cluster/bench"};
        if (!(ecs_agent = mw__fea_new(&fo, &err))) {
            fprintf(stderr, "fake ECS agent: %s\n", err);
            return 1;
        }
        ecs_latency = l && *l ? (unsigned)atoi(l) : 20;
        mw__fea_set_latency(ecs_agent, MW_FEA_EP_TASK, ecs_latency);
    }
    const char *sock = argv[1], *image = argv[2];
    int n = argc > 3 ? atoi(argv[3]) : 200;
    int parallel = argc > 4 ? atoi(argv[4]) : 1;
    if (parallel < 1 || parallel > 16)
        parallel = 1;
    if (n < 1 || n > MAXN)
        n = 200;
    char dir[64], cmd[1024];
    setup(dir, image, ecs);
    mw_engine *eng = engine(sock, dir, ecs);
    if (mw_engine_load(eng) != MW_OK || mw_engine_start(eng) != MW_OK)
        return 1;
    sleep(1); /* the first sync */
    int64_t offset = now_ns(CLOCK_REALTIME) - now_ns(CLOCK_MONOTONIC);
    events_start(sock);
    snprintf(cmd, sizeof cmd,
             "seq %d | xargs -P%d -I{} /usr/bin/docker -H unix://%s run -d --network host "
             "--init --label mwlat=1 --name mwlat-{} %s sleep 3600 >/dev/null",
             n, parallel, sock, image);
    if (ecs)
        ecs_start_all(sock, image, n, parallel);
    else if (system(cmd) != 0)
        fprintf(stderr, "some containers did not start\n");
    sleep(3);
    mw_engine_flush(eng);
    events_stop();

    double lat[MAXN];
    size_t nlat = 0, missed = 0;
    for (size_t e = 0; e < nstarts; e++) {
        size_t k = 0;
        while (k < nruns && strcmp(runs[k].id, starts[e].id) != 0)
            k++;
        if (k == nruns) {
            missed++;
            continue;
        }
        double run_wall_ns = runs[k].mono * 1e9 + (double)offset;
        lat[nlat++] = (run_wall_ns - (double)starts[e].nano) / 1e6;
        if (getenv("BENCH_DUMP")) /* per container: id, start timeNano, first run */
            fprintf(stderr, "RUN %s %lld %.0f\n", starts[e].id, starts[e].nano, run_wall_ns);
    }
    mw_engine_stop(eng);
    mw_engine_free(eng);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/docker -H unix://%s ps -aq --filter label=mwlat=1 | timeout 120 xargs -r "
             "-n 20 /usr/bin/docker -H unix://%s rm -f >/dev/null; rm -rf %s",
             sock, sock, dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    if (nlat == 0) {
        fprintf(stderr, "no latency measured (%zu start events without a run)\n", missed);
        return 1;
    }
    qsort(lat, nlat, sizeof *lat, bench_cmp_double);
    if (ecs) {
        printf("ECS task containers (%u started), the agent answering ?dockerid= after %u ms: "
               "%llu lookups, %u instances scheduled (%u more than containers)\n",
               ecs_started, ecs_latency,
               (unsigned long long)mw__fea_count(ecs_agent, MW_FEA_EP_TASK), sched_lines,
               sched_lines > ecs_started ? sched_lines - ecs_started : 0);
        mw__fea_free(ecs_agent);
    }
    printf("%d at a time: start event -> first run, %zu containers (%zu without a run): "
           "median %.2f ms, "
           "p90 %.2f ms, p99 %.2f ms, max %.2f ms (goal: p99 <= 5 ms)\n",
           parallel, nlat, missed, lat[nlat / 2], lat[nlat * 90 / 100], lat[nlat * 99 / 100],
           lat[nlat - 1]);
    return 0;
}
