/*
 * bench_discovery.c - Docker autodiscovery figures against the in-process
 * fake Docker engine (tests/support/fake_dockerd.h); printed, never
 * asserted, except that a churn run whose scheduled set differs from the
 * fake's running set at the end prints MISMATCH and exits 1.
 *
 *  sync   10,000 running containers, each matched by one auto_conf
 *         template (%%host%%, %%port%%, tags): the time from
 *         mw_engine_load() to 10,000 scheduled instances, the RSS then and
 *         after every instance has run once. The engine is driven with
 *         mw_engine_step() on the main thread. Three runs, each in a
 *         process of its own (fork, before any thread exists), medians.
 *  churn  200 running containers; once they are scheduled, a thread
 *         starts one new container and stops and removes the oldest every
 *         10 ms (100 starts and 100 stops a second) for CHURN_SECONDS
 *         (default 60) while the engine runs on its own thread. CPU per
 *         thread (engine, fake server, churn driver) from
 *         /proc/self/task/<tid>/stat, RSS over time, scheduled instances
 *         against the fake's set, and the aggregator's contexts: the
 *         config sets context_expiry to 10 s so that the contexts of gone
 *         containers expire within the run; the run ends by waiting for
 *         them to go.
 *
 * RSS is the whole process's (/proc/self/statm), the fake server's
 * containers included; the figures say how much of it they hold.
 *
 * Usage: bench_discovery [sync|churn] (default: both); env CHURN_SECONDS,
 * CHURN_DRAIN_SECONDS (the wait after the churn, default 22), SYNC_CONTAINERS (default 10000),
 * SYNC_RUNS (default 3), SYNC_INPROCESS (set: one sync run in this process, for profilers that do
 * not follow a fork).
 */
#include "moonwatch.h"
#include "bench.h"
#include "core/engine.h"
#include "core/base/util.h"
#include "core/cli/heap.h"
#include "tests/support/fake_dockerd.h"

#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IMAGE         "bench/benchsvc:1.0" /* short name "benchsvc" */
#define INTERVAL      "5"                  /* default_interval, seconds */
#define EXPIRY        10                   /* context_expiry, seconds */
#define FLUSH         5                    /* flush_interval, seconds */
#define DEADLINE      60.0                 /* per waited-for phase, seconds */
#define CHURN_INITIAL 200
#define CHURN_TICK_NS 10000000L /* one start and one stop per tick */
#define MAX_TASKS     64

static char tmp[64];

/* A file of the temporary tree. */
static void put(const char *rel, const char *text)
{
    bench_put(tmp, rel, text);
}

static double rss_mib(void)
{
    return bench_rss_kib() / 1024.0;
}

/* ------------------------------------------------------------- helpers */

static void mkdir_in(const char *rel)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/%s", tmp, rel);
    if (system(cmd) != 0)
        exit(1);
}

/* Heap bytes in use, MiB (heap.h): tells real growth from the allocator
 * keeping freed pages; -1 when the allocator does not say. */
static double heap_mib(void)
{
    double b = mw_heap_bytes();
    return b < 0 ? -1 : b / (1024.0 * 1024.0);
}

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    long n = v && *v ? strtol(v, NULL, 10) : 0;
    return n > 0 ? n : dflt;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ------------------------------------------------------------- threads */

/* The thread ids of this process, ascending; returns how many. */
static size_t tasks(long *out, size_t max)
{
    size_t n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max)
        if (e->d_name[0] != '.')
            out[n++] = strtol(e->d_name, NULL, 10);
    if (d)
        closedir(d);
    return n;
}

/* A thread that is in `now` but not in `before`, or 0. */
static long new_task(const long *before, size_t nb, const long *now, size_t nn)
{
    for (size_t i = 0; i < nn; i++) {
        size_t k = 0;
        while (k < nb && before[k] != now[i])
            k++;
        if (k == nb)
            return now[i];
    }
    return 0;
}

/* utime + stime of thread `tid`, seconds (clock-tick resolution); -1
 * when it is gone. */
static double task_cpu(long tid)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    const char *p = strrchr(line, ')');
    unsigned long ut = 0, st = 0;
    /* after ")": state(3) ppid pgrp session tty tpgid flags minflt
     * cminflt majflt cmajflt utime(14) stime(15) */
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU time of the calling thread, seconds. */
static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------- setup */

static void write_files(void)
{
    mkdir_in("checks");
    mkdir_in("templates/benchsvc.d");
    /* one gauge per run: every container adds a context (its tags), so
     * contexts of gone containers show whether they expire */
    put("checks/benchsvc.lua", "return { run = function(self)\n"
                               "  mw.gauge('bench.discovery.up', 1)\n"
                               "end }\n");
    put("templates/benchsvc.d/auto_conf.yaml", "ad_identifiers:\n"
                                               "  - benchsvc\n"
                                               "init_config:\n"
                                               "instances:\n"
                                               "  - host: \"%%host%%\"\n"
                                               "    port: \"%%port%%\"\n"
                                               "    tags:\n"
                                               "      - \"bench:discovery\"\n"
                                               "      - \"svc_port:%%port%%\"\n");
}

static const char *const ports[] = {"8080/tcp", NULL};

static mw__fdd *fake(void)
{
    char sock[128], *err = NULL;
    snprintf(sock, sizeof sock, "%s/docker.sock", tmp);
    mw__fdd_opts o = {.socket_path = sock};
    mw__fdd *d = mw__fdd_new(&o, &err);
    if (!d) {
        fprintf(stderr, "fake engine: %s\n", err ? err : "?");
        exit(1);
    }
    return d;
}

static void bulk(mw__fdd *d, size_t n)
{
    mw__fdd_spec s = {.name = "svc", .image = IMAGE, .ports = ports};
    if (mw__fdd_bulk_create(d, n, &s, 0) != 0) {
        fprintf(stderr, "bulk create: %s\n", mw__fdd_error(d));
        exit(1);
    }
}

static void set(mw_config *cfg, const char *key, const char *value)
{
    char *err = NULL;
    if (mw_config_set(cfg, key, value, &err) != MW_OK) {
        fprintf(stderr, "config: %s\n", err ? err : "?");
        exit(1);
    }
}

static mw_engine *engine(mw__fdd *d)
{
    char buf[256];
    mw_config *cfg = mw_config_new();
    snprintf(buf, sizeof buf, "unix://%s", mw__fdd_socket_path(d));
    set(cfg, "docker_host", buf);
    snprintf(buf, sizeof buf, "%s/checks", tmp);
    set(cfg, "checks_dir", buf);
    snprintf(buf, sizeof buf, "%s/templates", tmp);
    set(cfg, "templates_dir", buf);
    set(cfg, "no_bundled", "true");
    set(cfg, "sink", "none");
    set(cfg, "log_level", "warn");
    set(cfg, "default_interval", INTERVAL);
    snprintf(buf, sizeof buf, "%d", EXPIRY);
    set(cfg, "context_expiry", buf);
    snprintf(buf, sizeof buf, "%d", FLUSH);
    set(cfg, "flush_interval", buf);
    char *err = NULL;
    mw_engine *eng = NULL;
    mw_code rc = mw_engine_new(cfg, &eng, &err);
    mw_config_free(cfg);
    if (rc != MW_OK) {
        fprintf(stderr, "engine: %s\n", err ? err : mw_strerror(rc));
        exit(1);
    }
    return eng;
}

static mw_engine_stats stats(mw_engine *eng)
{
    mw_engine_stats st = {.size = sizeof(mw_engine_stats)};
    mw_engine_stats_get(eng, &st);
    return st;
}

/* ------------------------------------------------------------- sync */

typedef struct sync_result {
    double rss_fake;    /* RSS after the fake's containers exist, MiB */
    double rss_before;  /* ... and the engine is made, before load */
    double t_list;      /* load -> first list request, s */
    double t_inspected; /* load -> every container inspected */
    double t_scheduled; /* load -> every instance scheduled */
    double rss_sched;   /* RSS then */
    double lua_sched;   /* sandboxes' bytes then, MiB */
    double t_ran;       /* load -> every instance ran once */
    double rss_ran;     /* RSS then */
    double lua_ran;     /* sandboxes' bytes then, MiB */
    double cpu_sched;   /* process CPU from load to scheduled, s */
    double cpu_engine;  /* ... of it on the main (engine) thread */
    double cpu_fake;    /* ... of it on the fake server's thread */
    double t_free;      /* mw_engine_free() with everything scheduled */
    double instances;   /* reached (n when complete) */
    double runs;        /* reached */
    uint64_t inspects;  /* inspect requests served */
    uint64_t requests;  /* all requests served */
} sync_result;

/* Steps the engine until `done` or DEADLINE; returns the seconds from
 * `t0`, or -1 on the deadline. mw_engine_stats_get() walks every
 * sandbox (about a millisecond at 10,000), so the instance count comes
 * from the scheduler's counter and the stats are read every 50 ms. */
static double step_until(mw_engine *eng, mw__fdd *d, double t0, sync_result *r, int runs, size_t n)
{
    double end = mw__mono() + DEADLINE, next_poll = 0;
    while (mw__mono() < end) {
        mw_engine_step(eng, 2);
        double now = mw__mono();
        if (r->t_list < 0 && mw__fdd_count(d, MW_FDD_EP_LIST) > 0)
            r->t_list = now - t0;
        if (r->t_inspected < 0 && mw__fdd_count(d, MW_FDD_EP_INSPECT) >= n)
            r->t_inspected = now - t0;
        if (!runs) {
            r->instances = (double)mw__sched_count(mw__engine_sched(eng));
            if (r->instances >= (double)n)
                return now - t0;
        } else if (now >= next_poll) {
            next_poll = now + 0.05;
            r->runs = (double)stats(eng).runs;
            if (r->runs >= (double)n)
                return now - t0;
        }
    }
    return -1;
}

static void sync_once(size_t n, sync_result *r)
{
    memset(r, 0, sizeof *r);
    r->t_list = r->t_inspected = r->t_scheduled = r->t_ran = -1;
    long before[MAX_TASKS], after[MAX_TASKS];
    size_t nb = tasks(before, MAX_TASKS);
    mw__fdd *d = fake();
    size_t na = tasks(after, MAX_TASKS);
    long fake_tid = new_task(before, nb, after, na);
    bulk(d, n);
    r->rss_fake = rss_mib();
    mw_engine *eng = engine(d);
    r->rss_before = rss_mib();
    mw__fdd_counts_reset(d);
    double cpu0 = bench_cpu_seconds(), eng0 = thread_cpu(), fake0 = task_cpu(fake_tid);
    double t0 = mw__mono();
    if (mw_engine_load(eng) != MW_OK) {
        fprintf(stderr, "mw_engine_load failed\n");
        exit(1);
    }
    r->t_scheduled = step_until(eng, d, t0, r, 0, n);
    r->cpu_sched = bench_cpu_seconds() - cpu0;
    r->cpu_engine = thread_cpu() - eng0;
    r->cpu_fake = task_cpu(fake_tid) - fake0;
    r->rss_sched = rss_mib();
    r->lua_sched = (double)stats(eng).lua_bytes / (1024.0 * 1024.0);
    if (r->t_scheduled >= 0) {
        r->t_ran = step_until(eng, d, t0, r, 1, n);
        r->rss_ran = rss_mib();
        r->lua_ran = (double)stats(eng).lua_bytes / (1024.0 * 1024.0);
    }
    r->inspects = mw__fdd_count(d, MW_FDD_EP_INSPECT);
    r->requests = mw__fdd_count(d, MW_FDD_EP_COUNT);
    double tf = mw__mono();
    mw_engine_free(eng);
    r->t_free = mw__mono() - tf;
    mw__fdd_free(d);
}

static void print_run(int i, size_t n, const sync_result *r)
{
    printf("  run %d: list at %.3f s, all %zu inspected at %.3f s, scheduled at %.3f s "
           "(%.0f of %zu; CPU: process %.2f s, engine thread %.2f, fake %.2f), all ran once at "
           "%.2f s (%.0f runs); "
           "RSS %.1f MiB with the fake's containers, %.1f before load, %.1f scheduled "
           "(+%.1f), %.1f after one round (+%.1f); Lua heaps %.1f / %.1f MiB; "
           "%" PRIu64 " inspects, %" PRIu64 " requests; engine free %.3f s\n",
           i, r->t_list, n, r->t_inspected, r->t_scheduled, r->instances, n, r->cpu_sched,
           r->cpu_engine, r->cpu_fake, r->t_ran, r->runs, r->rss_fake, r->rss_before, r->rss_sched,
           r->rss_sched - r->rss_before, r->rss_ran, r->rss_ran - r->rss_before, r->lua_sched,
           r->lua_ran, r->inspects, r->requests, r->t_free);
    fflush(stdout);
}

/* One run in a child process; the result comes back through a pipe. */
static int sync_child(int i, size_t n, sync_result *r)
{
    int fds[2];
    fflush(stdout);
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(fds[0]);
        sync_once(n, r);
        print_run(i, n, r);
        ssize_t w = write(fds[1], r, sizeof *r);
        _exit(w == (ssize_t)sizeof *r ? 0 : 1);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], r, sizeof *r);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return got == (ssize_t)sizeof *r && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static double med(const sync_result *rs, int k, size_t off)
{
    double v[16];
    for (int j = 0; j < k; j++)
        v[j] = *(const double *)((const char *)&rs[j] + off);
    return median(v, (size_t)k);
}

#define MED(field) med(rs, k, offsetof(sync_result, field))

static int bench_sync(void)
{
    size_t n = (size_t)env_long("SYNC_CONTAINERS", 10000);
    int runs = (int)env_long("SYNC_RUNS", 3), k = 0;
    sync_result rs[16];
    if (runs > 16)
        runs = 16;
    printf("sync: %zu running containers of %s, one auto_conf template matching each; "
           "default_interval %s s; engine stepped on the main thread; %d runs, one process "
           "each\n",
           n, IMAGE, INTERVAL, runs);
    if (getenv("SYNC_INPROCESS")) { /* one run, for heaptrack, valgrind, perf */
        sync_once(n, &rs[k++]);
        print_run(1, n, &rs[0]);
    } else {
        for (int i = 0; i < runs; i++)
            if (sync_child(i + 1, n, &rs[k]) == 0)
                k++;
    }
    if (k == 0) {
        printf("sync: every run failed\n");
        return 1;
    }
    int incomplete = 0;
    for (int j = 0; j < k; j++)
        incomplete += rs[j].t_scheduled < 0 || rs[j].t_ran < 0;
    printf("sync %zu containers: %.2f s to scheduled (goal <= 1 s), RSS %.0f MiB (goal <= 100 "
           "MiB)%s\n",
           n, MED(t_scheduled), MED(rss_sched),
           incomplete ? "  INCOMPLETE: a run hit the 60 s deadline (time -1)" : "");
    printf("  medians of %d: list %.3f s, inspected %.3f s, scheduled %.3f s, CPU to scheduled: "
           "process %.2f s, engine thread %.2f s, fake server %.2f s; RSS with the fake's "
           "containers %.1f MiB, before load %.1f, "
           "scheduled %.1f (engine +%.1f, Lua heaps %.1f), after one round of runs %.1f "
           "(engine +%.1f, Lua heaps %.1f) at %.2f s\n",
           k, MED(t_list), MED(t_inspected), MED(t_scheduled), MED(cpu_sched), MED(cpu_engine),
           MED(cpu_fake), MED(rss_fake), MED(rss_before), MED(rss_sched),
           MED(rss_sched) - MED(rss_before), MED(lua_sched), MED(rss_ran),
           MED(rss_ran) - MED(rss_before), MED(lua_ran), MED(t_ran));
    return incomplete ? 1 : 0;
}

/* ------------------------------------------------------------- churn */

typedef struct churn {
    mw__fdd *d;
    char (*names)[32]; /* FIFO of live containers, oldest at head */
    size_t cap, head, len;
    size_t next_id;
    atomic_int stop;
    atomic_long tid;
    atomic_ulong started, stopped, errors, late_ticks;
} churn;

static void push(churn *c, const char *name)
{
    snprintf(c->names[(c->head + c->len) % c->cap], sizeof c->names[0], "%s", name);
    c->len++;
}

static void one_tick(churn *c)
{
    char name[32];
    mw__fdd_spec s = {.name = name, .image = IMAGE, .ports = ports};
    snprintf(name, sizeof name, "churn-%zu", c->next_id++);
    if (mw__fdd_run(c->d, &s, NULL) == 0 && c->len < c->cap) {
        push(c, name);
        c->started++;
    } else {
        c->errors++;
    }
    if (c->len == 0)
        return;
    const char *old = c->names[c->head];
    if (mw__fdd_stop(c->d, old) == 0 && mw__fdd_destroy(c->d, old) == 0)
        c->stopped++;
    else
        c->errors++;
    c->head = (c->head + 1) % c->cap;
    c->len--;
}

static void *churn_thread(void *ud)
{
    churn *c = ud;
    c->tid = (long)syscall(SYS_gettid);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!c->stop) {
        one_tick(c);
        next.tv_nsec += CHURN_TICK_NS;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec > next.tv_nsec))
            c->late_ticks++; /* behind: the next tick follows at once */
        else
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    return NULL;
}

/* The threads of a churn run; CPU not on one of them is the budget
 * watchdog's (the engine starts it on the first run) and the main
 * thread's sampling. */
typedef struct roles {
    long engine, fake, driver;
} roles;

typedef struct cpu_snap {
    double wall, proc, engine, fake, driver;
} cpu_snap;

static cpu_snap snap(const roles *r)
{
    return (cpu_snap){mw__mono(), bench_cpu_seconds(), task_cpu(r->engine), task_cpu(r->fake),
                      r->driver ? task_cpu(r->driver) : 0};
}

static void print_row(mw_engine *eng, mw__fdd *d, double t, const cpu_snap *a, const cpu_snap *b)
{
    mw_engine_stats st = stats(eng);
    double w = b->wall - a->wall;
    double rest = (b->proc - a->proc) - (b->engine - a->engine) - (b->fake - a->fake) -
                  (b->driver - a->driver);
    printf("  %5.0f s  RSS %6.1f MiB  heap %6.1f  instances %5" PRIu64
           "  fake running %5zu  contexts %6" PRIu64 "  Lua %5.1f MiB  runs %8" PRIu64
           "  CPU%% engine %5.1f fake %5.1f driver %5.1f rest %4.1f process %5.1f\n",
           t, rss_mib(), heap_mib(), st.instances, mw__fdd_container_count(d), st.contexts,
           (double)st.lua_bytes / (1024.0 * 1024.0), st.runs, 100 * (b->engine - a->engine) / w,
           100 * (b->fake - a->fake) / w, 100 * (b->driver - a->driver) / w, 100 * rest / w,
           100 * (b->proc - a->proc) / w);
    fflush(stdout);
}

/* Waits until the scheduled instances equal the fake's set (or `secs`
 * pass); returns the seconds waited, -1 on timeout. */
static double settle(mw_engine *eng, mw__fdd *d, double secs)
{
    double t0 = mw__mono();
    while (mw__mono() < t0 + secs) {
        if (stats(eng).instances == mw__fdd_container_count(d))
            return mw__mono() - t0;
        usleep(10000);
    }
    return -1;
}

static void sleep_until(double t)
{
    double left;
    while ((left = t - mw__mono()) > 0)
        usleep((useconds_t)(left * 1e6) + 1);
}

/* The fake with CHURN_INITIAL containers and a started engine that has
 * scheduled them; the thread ids into `r`. */
static mw_engine *churn_setup(mw__fdd **fdd, churn *c, roles *r)
{
    long before[MAX_TASKS], with_fake[MAX_TASKS], with_eng[MAX_TASKS];
    size_t nb = tasks(before, MAX_TASKS);
    mw__fdd *d = *fdd = fake();
    size_t nf = tasks(with_fake, MAX_TASKS);
    r->fake = new_task(before, nb, with_fake, nf);
    bulk(d, CHURN_INITIAL);
    mw_engine *eng = engine(d);
    double t0 = mw__mono();
    if (mw_engine_load(eng) != MW_OK || mw_engine_start(eng) != MW_OK) {
        fprintf(stderr, "engine load/start failed\n");
        exit(1);
    }
    /* only the loop thread is new yet: the watchdog comes with the first
     * run, after the sync's round trips */
    size_t ne = tasks(with_eng, MAX_TASKS);
    r->engine = new_task(with_fake, nf, with_eng, ne);
    while (stats(eng).instances < CHURN_INITIAL && mw__mono() < t0 + DEADLINE)
        usleep(1000);
    printf("churn: %" PRIu64 " of %d containers scheduled in %.2f s\n", stats(eng).instances,
           CHURN_INITIAL, mw__mono() - t0);
    *c = (churn){.d = d, .cap = CHURN_INITIAL + 16, .next_id = 1};
    if (!(c->names = calloc(c->cap, sizeof *c->names)))
        exit(1);
    for (int i = 1; i <= CHURN_INITIAL; i++) {
        char name[32];
        snprintf(name, sizeof name, "svc-%d", i);
        push(c, name);
    }
    return eng;
}

typedef struct churn_figs {
    cpu_snap first, last;
    double rss_start, rss_10, rss_end, heap_start, heap_10, heap_end;
    unsigned long stopped_10; /* containers removed in the first 10 s */
} churn_figs;

/* Runs the churn thread for `secs`, printing a row every 10 s. */
static void churn_run(mw_engine *eng, mw__fdd *d, churn *c, roles *r, double secs, churn_figs *f)
{
    cpu_snap s0 = snap(r);
    sleep(1); /* the first row's CPU is that of one idle second */
    f->rss_start = f->rss_10 = rss_mib();
    f->heap_start = f->heap_10 = heap_mib();
    pthread_t th;
    if (pthread_create(&th, NULL, churn_thread, c) != 0)
        exit(1);
    while (!c->tid)
        usleep(100);
    r->driver = c->tid;
    f->first = snap(r);
    cpu_snap prev = f->first;
    print_row(eng, d, 0, &s0, &f->first);
    for (int sec = 1; sec <= (int)secs; sec++) {
        sleep_until(f->first.wall + sec);
        if (sec == 10) {
            f->rss_10 = rss_mib();
            f->heap_10 = heap_mib();
            f->stopped_10 = c->stopped;
        }
        if (sec % 10 == 0 || sec == (int)secs) {
            cpu_snap now = snap(r);
            print_row(eng, d, sec, &prev, &now);
            prev = now;
        }
    }
    f->last = snap(r);
    c->stop = 1;
    pthread_join(th, NULL);
    f->rss_end = rss_mib();
    f->heap_end = heap_mib();
}

static void churn_report(const churn *c, const churn_figs *f)
{
    const cpu_snap *a = &f->first, *b = &f->last;
    double w = b->wall - a->wall, from = w > 10 ? 10 : 0, per_min = w > from ? 60 / (w - from) : 0;
    double eng = b->engine - a->engine, proc = b->proc - a->proc;
    double fk = b->fake - a->fake, drv = b->driver - a->driver;
    printf("churn %.0f s: %lu started, %lu stopped+removed (%.0f + %.0f /s), %lu driver "
           "errors, %lu late ticks\n",
           w, (unsigned long)c->started, (unsigned long)c->stopped, c->started / w, c->stopped / w,
           (unsigned long)c->errors, (unsigned long)c->late_ticks);
    printf("churn CPU: engine loop thread %.2f s (%.1f%% of a core), fake server thread %.2f s, "
           "churn driver %.2f s (it also does the fake's bookkeeping and event writes), the rest "
           "%.2f s (the engine's budget watchdog, main thread's sampling); whole process %.2f s "
           "(%.1f%%)\n",
           eng, 100 * eng / w, fk, drv, proc - eng - fk - drv, proc, 100 * proc / w);
    unsigned long removed = c->stopped - f->stopped_10;
    printf("churn RSS: start %.1f MiB, after %.0f s %.1f, end %.1f (%+.1f MiB since %.0f s, %+.2f "
           "MiB/min; goal: flat); heap in use: %.1f, %.1f, %.1f MiB (%+.2f MiB/min, %.0f bytes "
           "per container removed since %.0f s)\n",
           f->rss_start, from, f->rss_10, f->rss_end, f->rss_end - f->rss_10, from,
           (f->rss_end - f->rss_10) * per_min, f->heap_start, f->heap_10, f->heap_end,
           (f->heap_end - f->heap_10) * per_min,
           removed ? (f->heap_end - f->heap_10) * 1048576.0 / (double)removed : 0.0, from);
    printf("  (the Docker source keeps an entry per container started within 60 s, for its "
           "restart-loop events: heap may grow for the first 60 s; CHURN_SECONDS=180 shows "
           "whether it flattens after)\n");
}

/* After the churn: the counts, then (after the contexts expired) what
 * the heap kept beyond its size before the churn. Returns 1 on a
 * mismatch. */
static int churn_drain(mw_engine *eng, mw__fdd *d, const churn_figs *f)
{
    mw_engine_stats st = stats(eng);
    size_t running = mw__fdd_container_count(d);
    double waited = settle(eng, d, 10);
    mw_engine_stats st2 = stats(eng);
    size_t running2 = mw__fdd_container_count(d);
    printf("churn counts at the end: instances %" PRIu64 ", fake running %zu; settled after "
           "%.2f s: instances %" PRIu64 ", fake running %zu, contexts %" PRIu64 "\n",
           st.instances, running, waited, st2.instances, running2, st2.contexts);
    int bad = st2.instances != running2;
    if (bad)
        printf("MISMATCH MISMATCH MISMATCH: %" PRIu64 " instances scheduled but the fake runs "
               "%zu containers (10 s after the churn stopped)\n",
               st2.instances, running2);
    /* gone containers' contexts go after context_expiry, at a flush; the
     * default wait covers that, not the Docker source's 60 s window for
     * restart loops */
    double drain = (double)env_long("CHURN_DRAIN_SECONDS", EXPIRY + 2 * FLUSH + 2);
    sleep_until(mw__mono() + drain);
    mw_engine_stats st3 = stats(eng);
    double heap = heap_mib(), kept = heap - f->heap_start;
    printf("churn after %.0f s more (context_expiry %d s, flush_interval %d s): contexts %" PRIu64
           " (steady state: one per live container, %zu), instances %" PRIu64 ", RSS %.1f MiB, "
           "Lua heaps %.1f MiB, heap in use %.1f MiB (%+.2f MiB since before the churn, %+.2f "
           "since 10 s into it)\n",
           drain, EXPIRY, FLUSH, st3.contexts, mw__fdd_container_count(d), st3.instances, rss_mib(),
           (double)st3.lua_bytes / (1024.0 * 1024.0), heap, kept, heap - f->heap_10);
    return bad;
}

static int bench_churn(void)
{
    double secs = (double)env_long("CHURN_SECONDS", 60);
    mw__fdd *d = NULL;
    churn c;
    roles r = {0};
    churn_figs f = {0};
    mw_engine *eng = churn_setup(&d, &c, &r);
    printf("churn: for %.0f s one container started and the oldest stopped and removed every 10 "
           "ms (100 starts + 100 stops a second); engine on its own thread; context_expiry %d s "
           "(not the default 300) and flush_interval %d s so that gone containers' contexts "
           "expire within the run; default_interval %s s\n",
           secs, EXPIRY, FLUSH, INTERVAL);
    churn_run(eng, d, &c, &r, secs, &f);
    churn_report(&c, &f);
    int bad = churn_drain(eng, d, &f);
    mw_engine_stop(eng);
    mw_engine_free(eng);
    mw__fdd_free(d);
    free(c.names);
    return bad;
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    if (only && strcmp(only, "sync") != 0 && strcmp(only, "churn") != 0) {
        fprintf(stderr, "usage: bench_discovery [sync|churn]\n");
        return 2;
    }
    snprintf(tmp, sizeof tmp, "/tmp/mw-bench-disc-XXXXXX");
    if (!mkdtemp(tmp))
        return 1;
    write_files();
    int rc = 0;
    if (!only || !strcmp(only, "sync"))
        rc |= bench_sync();
    if (!only || !strcmp(only, "churn"))
        rc |= bench_churn();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
