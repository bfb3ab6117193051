/*
 * bench_docker_check.c - CPU per round of the bundled `docker` check over
 * 200 containers, on one core (printed, never asserted; the goal is
 * 20 ms):
 *
 *  fixture  200 containers in generated v1 and v2 trees (the files of
 *           tests/fixtures/cgroup, one copy per container, each with a
 *           process that has a network namespace of its own), named by id
 *           only as the bundled template names them: the check's own work
 *           with files that cost nothing to produce;
 *  kernel   200 real cgroups made here (root; removed after), each holding
 *           a sleeping process in a network namespace of its own, named
 *           by id and pid: the kernel generates memory.stat, cpu.stat, ...
 *           as it does for containers.
 *
 * A round is what the engine does every interval: each instance's run
 * (the sandbox, the file reads, the samples committed to the aggregator)
 * and one flush, on a hosted engine (no thread of its own, one worker),
 * timed with the process's CPU clock. The first round (init, the first
 * samples) is left out; the median of the others is printed with the
 * spread, beside the same rounds of an empty check (the engine's share).
 *
 * Usage: bench_docker_check [fixture|kernel] [ROUNDS (default 31)]
 */
#include "moonwatch.h"
#include "bench.h"
#include "core/engine.h"
#include "core/base/util.h"
#include "tests/support/make.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N 200

static char tmp[64];
static char ids[N][65];
static long pids[N];

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Distinct, stable container ids. */
static void make_ids(void)
{
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < N; i++) {
        char *p = ids[i];
        for (int k = 0; k < 4; k++, p += 16) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            snprintf(p, 17, "%016llx", (unsigned long long)x);
        }
    }
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a shell command; exits when it fails (the benchmark needs it). */
static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) {
        fprintf(stderr, "failed: %s\n", cmd);
        exit(1);
    }
}

static void mkdirs(const char *path)
{
    sh("mkdir -p '%s'", path);
}

/* ------------------------------------------------------------- fixture trees */

/* Copies fixture container `from`'s directory (`layout` with its id) in
 * each hierarchy of tree `ver` to every generated id, and gives each one
 * process with a network namespace of its own. */
static void fixture_tree(const char *ver, const char *const *hier, size_t nhier,
                         const char *layout_before, const char *layout_after, const char *from)
{
    char src[1024], dst[1024], p[512];
    for (int i = 0; i < N; i++) {
        for (size_t h = 0; h < nhier; h++) {
            snprintf(src, sizeof src, "%s/tests/fixtures/cgroup/%s/sys/fs/cgroup/%s%s%s%s",
                     MW_TEST_SOURCE_DIR, ver, hier[h], layout_before, from, layout_after);
            snprintf(dst, sizeof dst, "%s/%s/sys/fs/cgroup/%s%s%.64s%s", tmp, ver, hier[h],
                     layout_before, ids[i], layout_after);
            mkdirs(dst);
            sh("cp -r '%s/.' '%s/'", src, dst);
            snprintf(p, sizeof p, "%d\n", 100000 + i);
            snprintf(src, sizeof src, "%.1000s/cgroup.procs", dst);
            FILE *f = fopen(src, "w");
            if (f) {
                fputs(p, f);
                fclose(f);
            }
        }
        snprintf(p, sizeof p, "%s/%s/proc/%d/net", tmp, ver, 100000 + i);
        mkdirs(p);
        snprintf(src, sizeof src, "%s/tests/fixtures/cgroup/v1/proc/4321/net/dev",
                 MW_TEST_SOURCE_DIR);
        sh("cp '%s' '%s/dev'", src, p);
        snprintf(p, sizeof p, "%s/%s/proc/%d/ns", tmp, ver, 100000 + i);
        mkdirs(p);
        char target[32];
        snprintf(target, sizeof target, "net:[%d]", 402654000 + i);
        snprintf(p, sizeof p, "%s/%s/proc/%d/ns/net", tmp, ver, 100000 + i);
        if (symlink(target, p) != 0)
            perror(p);
    }
    snprintf(p, sizeof p, "%s/%s/proc/1/ns", tmp, ver);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/%s/proc/1/ns/net", tmp, ver);
    if (symlink("net:[4026531992]", p) != 0)
        perror(p);
}

/* ------------------------------------------------------------- kernel cgroups */

static char kparent[8][512]; /* the parent made in each hierarchy */
static size_t nkparent;
static int kv2;

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* The hierarchies to make cgroups in: v2's root, or v1's controllers. */
static size_t kernel_hierarchies(char out[][512])
{
    static const char *const v1[] = {"cpu", "cpuacct", "memory", "blkio", "pids"};
    kv2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
    if (kv2) {
        snprintf(out[0], 512, "/sys/fs/cgroup");
        return 1;
    }
    size_t n = 0;
    for (size_t i = 0; i < MW_ARRAY_LEN(v1); i++) {
        char p[64], real[4096];
        snprintf(p, sizeof p, "/sys/fs/cgroup/%s", v1[i]);
        if (!realpath(p, real))
            continue;
        int dup = 0;
        for (size_t k = 0; k < n; k++)
            dup |= strcmp(out[k], real) == 0;
        if (!dup)
            snprintf(out[n++], 512, "%.400s", real);
    }
    return n;
}

static void kernel_free(void)
{
    for (int i = 0; i < N; i++)
        if (pids[i] > 0) {
            kill((pid_t)pids[i], SIGKILL);
            waitpid((pid_t)pids[i], NULL, 0);
        }
    for (size_t h = 0; h < nkparent; h++) {
        for (int i = 0; i < N; i++) {
            char p[1024];
            snprintf(p, sizeof p, "%.500s/%.64s", kparent[h], ids[i]);
            for (int tries = 0; rmdir(p) != 0 && errno == EBUSY && tries < 100; tries++)
                usleep(10000);
        }
        rmdir(kparent[h]);
    }
}

/* 200 cgroups, each with a process in a network namespace of its own. */
static int kernel_setup(void)
{
    char hier[8][512];
    size_t nh = kernel_hierarchies(hier);
    if (geteuid() != 0 || nh == 0) {
        printf("kernel: skipped (needs root and a cgroup hierarchy)\n");
        return -1;
    }
    for (size_t h = 0; h < nh; h++) {
        snprintf(kparent[h], sizeof kparent[h], "%.400s/mwbench-%d", hier[h], (int)getpid());
        if (mkdir(kparent[h], 0755) != 0) {
            printf("kernel: skipped (cannot make %s: %s)\n", kparent[h], strerror(errno));
            nkparent = h;
            kernel_free();
            return -1;
        }
        nkparent = h + 1;
        if (kv2) {
            char p[1024];
            snprintf(p, sizeof p, "%s/cgroup.subtree_control", kparent[h]);
            write_file(p, "+cpu +memory +io +pids");
        }
    }
    for (int i = 0; i < N; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            if (unshare(CLONE_NEWNET) != 0)
                _exit(1);
            for (;;)
                pause();
        }
        pids[i] = pid;
        for (size_t h = 0; h < nkparent; h++) {
            char p[1024], num[32];
            snprintf(p, sizeof p, "%.500s/%.64s", kparent[h], ids[i]);
            mkdir(p, 0755);
            snprintf(p, sizeof p, "%.500s/%.64s/cgroup.procs", kparent[h], ids[i]);
            snprintf(num, sizeof num, "%d\n", (int)pid);
            if (write_file(p, num) != 0) {
                printf("kernel: skipped (cannot move a process into %s: %s)\n", p, strerror(errno));
                kernel_free();
                return -1;
            }
        }
    }
    usleep(100000); /* the children have unshared their namespace */
    return 0;
}

/* ------------------------------------------------------------- rounds */

static mw_engine *engine(const char *procfs, const char *cgroup)
{
    mw_config *cfg = mw_config_new();
    char dir[512];
    snprintf(dir, sizeof dir, "%s/checks", MW_TEST_SOURCE_DIR);
    mw_config_set(cfg, "no_bundled", "true", NULL);
    mw_config_set(cfg, "sink", "none", NULL);
    mw_config_set(cfg, "log_level", "error", NULL);
    mw_config_set(cfg, "docker", "off", NULL);
    mw_config_set(cfg, "workers", "1", NULL);
    mw_config_set(cfg, "flush_interval", "3600", NULL);
    mw_config_set(cfg, "checks_dir", dir, NULL);
    snprintf(dir, sizeof dir, "%s/checks", tmp);
    mw_config_set(cfg, "checks_dir", dir, NULL);
    mw_config_set(cfg, "procfs_path", procfs, NULL);
    mw_config_set(cfg, "cgroup_root", cgroup, NULL);
    mw_engine *eng = t_engine(cfg);
    mw_config_free(cfg);
    return eng;
}

/* Medians of CPU ms per round of 200 instances of `check` (docker, or
 * the empty one for the engine's own share); by pid or id. */
static void rounds(const char *what, const char *check, const char *procfs, const char *cgroup,
                   int with_pid, int nrounds)
{
    mw_engine *eng = engine(procfs, cgroup);
    mw__sched *s = mw__engine_sched(eng);
    const char *inst_ids[N];
    mw__sched_set_manual(s, 1);
    for (int i = 0; i < N; i++) {
        char buf[160], *err = NULL;
        if (with_pid)
            snprintf(buf, sizeof buf, "{\"container_id\": \"%.64s\", \"pid\": %ld}", ids[i],
                     pids[i]);
        else
            snprintf(buf, sizeof buf, "{\"container_id\": \"%.64s\"}", ids[i]);
        cJSON *c = cJSON_Parse(buf);
        if (mw__engine_schedule(eng, check, "bench", c, NULL, &inst_ids[i], &err) != MW_OK) {
            fprintf(stderr, "schedule: %s\n", err ? err : "?");
            exit(1);
        }
        free(err);
        cJSON_Delete(c);
    }
    double *ms = calloc((size_t)nrounds, sizeof *ms);
    for (int r = -1; r < nrounds; r++) {
        double c0 = cpu_now();
        for (int i = 0; i < N; i++)
            mw__sched_run_now(s, inst_ids[i]);
        while (mw__sched_running(s) > 0)
            mw_engine_step(eng, 0);
        mw_engine_flush(eng);
        if (r >= 0)
            ms[r] = (cpu_now() - c0) * 1e3;
    }
    mw_engine_stats st = {.size = sizeof st};
    mw_engine_stats_get(eng, &st);
    qsort(ms, (size_t)nrounds, sizeof *ms, bench_cmp_double);
    printf("%s: median %.2f ms CPU per round of %d %s runs + flush (min %.2f, max %.2f; "
           "%d rounds, %.1f us per container; %llu runs, %llu failed)%s\n",
           what, ms[nrounds / 2], N, check, ms[0], ms[nrounds - 1], nrounds,
           ms[nrounds / 2] * 1e3 / N, (unsigned long long)st.runs, (unsigned long long)st.errors,
           strcmp(check, "docker") ? "" : "; goal <= 20 ms");
    free(ms);
    mw_engine_free(eng);
}

static void bench_fixture(int nrounds)
{
    static const char *const v1[] = {"cpu,cpuacct", "memory", "blkio", "pids"};
    static const char *const v2[] = {""};
    char proc[128], cg[128];
    fixture_tree("v1", v1, MW_ARRAY_LEN(v1), "/docker/", "",
                 "06ada57c26aa5cf429e9f2c0a99e3e4a42daecd45fc4c955d7c1399ab4227ae8");
    snprintf(cg, sizeof cg, "%s/v1/sys/fs/cgroup", tmp);
    sh("ln -s cpu,cpuacct '%s/cpu' && ln -s cpu,cpuacct '%s/cpuacct'", cg, cg);
    fixture_tree("v2", v2, 1, "/system.slice/docker-", ".scope",
                 "39610bca9443fdb6ae772d781954447c0bb23c05bcb2f08e72d6cc5f70209726");
    snprintf(cg, sizeof cg, "%s/v2/sys/fs/cgroup", tmp);
    sh("cp '%s/tests/fixtures/cgroup/v2/sys/fs/cgroup/cgroup.controllers' '%s/'",
       MW_TEST_SOURCE_DIR, cg);
    snprintf(proc, sizeof proc, "%s/v1/proc", tmp);
    snprintf(cg, sizeof cg, "%s/v1/sys/fs/cgroup", tmp);
    rounds("engine alone (an empty check)", "empty", proc, cg, 0, nrounds);
    rounds("fixture v1 (docker/<id>, by id)", "docker", proc, cg, 0, nrounds);
    snprintf(proc, sizeof proc, "%s/v2/proc", tmp);
    snprintf(cg, sizeof cg, "%s/v2/sys/fs/cgroup", tmp);
    rounds("fixture v2 (system.slice/docker-<id>.scope, by id)", "docker", proc, cg, 0, nrounds);
}

static void bench_kernel(int nrounds)
{
    if (kernel_setup() != 0)
        return;
    char what[128];
    snprintf(what, sizeof what, "kernel cgroup %s (real files, by pid)", kv2 ? "v2" : "v1");
    rounds(what, "docker", "/proc", "/sys/fs/cgroup", 1, nrounds);
    kernel_free();
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    int nrounds = argc > 2 ? atoi(argv[2]) : 31;
    if (nrounds < 1)
        nrounds = 31;
    snprintf(tmp, sizeof tmp, "/tmp/mw-bench-docker-XXXXXX");
    if (!mkdtemp(tmp))
        return 1;
    make_ids();
    char checks[128];
    snprintf(checks, sizeof checks, "%s/checks", tmp);
    mkdirs(checks);
    bench_put(checks, "empty.lua", "return { run = function(self) end }\n");
    if (!only || !strcmp(only, "fixture"))
        bench_fixture(nrounds);
    if (!only || !strcmp(only, "kernel"))
        bench_kernel(nrounds);
    sh("rm -rf '%s'", tmp);
    return 0;
}
