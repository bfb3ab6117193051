/*
 * bench_engine.c - whole-engine figures (printed, never asserted):
 *
 *  1. marginal memory per idle check instance (sandbox + sender + the
 *     scheduler's record), RSS delta / n at 1,000 and 10,000 instances;
 *  2. scheduler overhead: CPU used by 10,000 trivial instances at a 1 s
 *     interval, beside the time spent inside the checks' runs;
 *  3. ingest from Lua: samples/s submitted by mw.gauge in a check and
 *     committed to the aggregator, on one core.
 *
 * Usage: bench_engine [seconds-for-2 (default 10)] [memory|ingest|scheduler]
 */
#include "moonwatch.h"
#include "bench.h"
#include "core/engine.h"
#include "core/base/util.h"
#include "tests/support/make.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static char tmp[64];

static void put(const char *rel, const char *text)
{
    bench_put(tmp, rel, text);
}

static mw_engine *engine(void)
{
    mw_config *cfg = mw_config_new();
    char dir[128];
    snprintf(dir, sizeof dir, "%s", tmp);
    mw_config_set(cfg, "no_bundled", "true", NULL);
    mw_config_set(cfg, "sink", "none", NULL);
    mw_config_set(cfg, "log_level", "error", NULL);
    mw_config_set(cfg, "flush_interval", "1", NULL);
    mw_config_set(cfg, "checks_dir", dir, NULL);
    mw_engine *eng = t_engine(cfg);
    mw_config_free(cfg);
    if (!eng)
        exit(1);
    return eng;
}

static void schedule(mw_engine *eng, const char *check, int from, int to, double interval)
{
    for (int i = from; i < to; i++) {
        char buf[128], *err = NULL;
        snprintf(buf, sizeof buf, "{\"n\": %d, \"min_collection_interval\": %g}", i, interval);
        cJSON *c = cJSON_Parse(buf);
        if (mw__engine_schedule(eng, check, "bench", c, NULL, NULL, &err) != MW_OK) {
            fprintf(stderr, "schedule: %s\n", err ? err : "?");
            exit(1);
        }
        free(err);
        cJSON_Delete(c);
    }
}

static void bench_memory(void)
{
    mw_engine *eng = engine();
    double base = bench_rss_kib();
    schedule(eng, "trivial", 0, 1000, 3600);
    double at1k = bench_rss_kib();
    schedule(eng, "trivial", 1000, 10000, 3600);
    double at10k = bench_rss_kib();
    mw_engine_stats st = {.size = sizeof(mw_engine_stats)};
    mw_engine_stats_get(eng, &st);
    printf("memory per idle instance: %.1f KiB at 1,000, %.1f KiB at 10,000 "
           "(RSS delta / n; Lua state alone %.1f KiB)\n",
           (at1k - base) / 1000.0, (at10k - base) / 10000.0,
           (double)st.lua_bytes / 10000.0 / 1024.0);
    mw_engine_free(eng);
}

/* Sum of (runs x avg duration) over all instances: time inside runs. */
static double run_seconds(mw_engine *eng)
{
    char *js = mw_engine_instances_json(eng);
    cJSON *arr = cJSON_Parse(js), *it;
    double sum = 0;
    cJSON_ArrayForEach(it, arr)
    {
        sum += cJSON_GetObjectItem(it, "runs")->valuedouble *
               cJSON_GetObjectItem(it, "avg_duration")->valuedouble;
    }
    cJSON_Delete(arr);
    mw_free(js);
    return sum;
}

static void bench_scheduler(double secs)
{
    mw_engine *eng = engine();
    schedule(eng, "trivial", 0, 10000, 1);
    /* let the first (spread) round pass, then measure whole rounds */
    double end = mw__mono() + 1.0;
    while (mw__mono() < end)
        mw_engine_step(eng, 50);
    mw_engine_stats a = {.size = sizeof(mw_engine_stats)}, b = {.size = sizeof(mw_engine_stats)};
    mw_engine_stats_get(eng, &a);
    double in_runs0 = run_seconds(eng), cpu0 = bench_cpu_seconds(), t0 = mw__mono();
    while (mw__mono() < t0 + secs)
        mw_engine_step(eng, 50);
    double wall = mw__mono() - t0, cpu = bench_cpu_seconds() - cpu0;
    double in_runs = run_seconds(eng) - in_runs0;
    mw_engine_stats_get(eng, &b);
    printf("scheduler: 10,000 instances at 1 s for %.1f s: %.0f runs/s, process CPU %.1f%% of "
           "one core, inside runs %.1f%%, overhead beyond the runs %.1f%%\n",
           wall, (double)(b.runs - a.runs) / wall, 100 * cpu / wall, 100 * in_runs / wall,
           100 * (cpu - in_runs) / wall);
    mw_engine_free(eng);
}

static void bench_lua_ingest(void)
{
    mw_engine *eng = engine();
    mw__sched_set_manual(mw__engine_sched(eng), 1);
    char *err = NULL;
    const char *id = NULL;
    cJSON *c = cJSON_Parse("{\"n\": 20000, \"memory_limit_mb\": 64, \"timeout\": 60}");
    if (mw__engine_schedule(eng, "ingest", "bench", c, NULL, &id, &err) != MW_OK) {
        fprintf(stderr, "ingest: %s\n", err ? err : "?");
        exit(1);
    }
    cJSON_Delete(c);
    double rates[51];
    for (int r = 0; r < 51; r++) {
        double t0 = mw__mono();
        mw__sched_run_now(mw__engine_sched(eng), id);
        while (mw__sched_running(mw__engine_sched(eng)) > 0)
            mw_engine_step(eng, 0);
        rates[r] = 20000.0 / (mw__mono() - t0);
        mw_engine_flush(eng);
    }
    qsort(rates, 51, sizeof *rates, bench_cmp_double);
    printf("ingest from Lua: median %.2f M samples/s (min %.2f, max %.2f; 20,000 "
           "mw.gauge calls over 1,000 contexts with 2 tags, per run incl. commit)\n",
           rates[25] / 1e6, rates[0] / 1e6, rates[50] / 1e6);
    mw_instance_stats st = {.size = sizeof(mw_instance_stats)};
    mw_engine_instance_stats(eng, id, &st);
    if (st.errors)
        printf("  (ingest runs failed: %s)\n", st.last_error);
    mw_engine_free(eng);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 10;
    snprintf(tmp, sizeof tmp, "/tmp/mw-bench-XXXXXX");
    if (!mkdtemp(tmp))
        return 1;
    put("trivial.lua", "return { run = function(self) end }\n");
    put("ingest.lua", "local names = {}\n"
                      "for i = 1, 1000 do names[i] = 'bench.metric.' .. i end\n"
                      "local tags = {'env:bench', 'role:ingest'}\n"
                      "return { run = function(self)\n"
                      "  local gauge = mw.gauge\n"
                      "  for i = 1, self.instance.n do gauge(names[i % 1000 + 1], i, tags) end\n"
                      "end }\n");
    const char *only = argc > 2 ? argv[2] : NULL;
    if (!only || !strcmp(only, "memory"))
        bench_memory();
    if (!only || !strcmp(only, "ingest"))
        bench_lua_ingest();
    if (!only || !strcmp(only, "scheduler"))
        bench_scheduler(secs);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    return system(cmd) == 0 ? 0 : 1;
}
