/*
 * embed.c - a host program that knows only moonwatch.h and links the
 * shared library: it drives the engine from its own poll() loop through
 * mw_engine_fd()/mw_engine_step() and receives records in a sink
 * callback. Proves the exported API is enough to embed the engine.
 */
#define _POSIX_C_SOURCE 200809L
#include <moonwatch.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int gauges, statuses;

static void on_record(const mw_record *r, void *ud)
{
    (void)ud;
    if (r->type == MW_RECORD_METRIC && !strcmp(r->name, "embed.value") && r->value == 7)
        gauges++;
    if (r->type == MW_RECORD_SERVICE_CHECK && !strcmp(r->name, "moonwatch.check_status") &&
        r->status == MW_STATUS_OK)
        statuses++;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: embed DIR (holding checks/ and templates/)\n");
        return 2;
    }
    char dir[512];
    mw_config *cfg = mw_config_new();
    mw_config_set(cfg, "no_bundled", "true", NULL);
    mw_config_set(cfg, "sink", "none", NULL);
    mw_config_set(cfg, "flush_interval", "0.5", NULL);
    mw_config_set(cfg, "log_level", "warn", NULL);
    mw_engine *eng = mw_engine_new(cfg, NULL);
    mw_config_free(cfg);
    if (!eng)
        return 1;
    snprintf(dir, sizeof dir, "%s/checks", argv[1]);
    mw_engine_add_checks_dir(eng, dir);
    snprintf(dir, sizeof dir, "%s/templates", argv[1]);
    mw_engine_add_templates_dir(eng, dir);
    mw_engine_add_sink(eng, on_record, NULL);
    if (mw_engine_load(eng) != MW_OK)
        return 1;
    struct pollfd pfd = {.fd = mw_engine_fd(eng), .events = POLLIN};
    double end = now() + 10;
    int wakeups = 0;
    while ((gauges < 2 || statuses < 2) && now() < end) {
        if (poll(&pfd, 1, 1000) > 0)
            wakeups++;
        mw_engine_step(eng, 0);
    }
    mw_engine_stats st;
    mw_engine_stats_get(eng, &st);
    mw_engine_free(eng);
    int ok = gauges >= 2 && statuses >= 2 && wakeups > 0 && st.instances == 1;
    printf("%d passed, %d failed\n", ok, !ok);
    if (!ok)
        fprintf(stderr, "gauges=%d statuses=%d wakeups=%d instances=%llu\n", gauges, statuses,
                wakeups, (unsigned long long)st.instances);
    return ok ? 0 : 1;
}
