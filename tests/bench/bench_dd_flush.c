/*
 * bench_dd_flush.c - a flush of 100,000 contexts to the Datadog sink:
 * the records serialised into v1 series payloads and compressed (the
 * work done on the flushing thread; delivery runs on the forwarder's own
 * thread). Two figures, each the median of RUNS runs:
 *
 *   builder  100,000 records straight into the payload builder
 *   engine   mw_engine_flush() of an engine holding 100,000 contexts,
 *            with the Datadog sink alone (aggregator flush included),
 *            its payloads queued for 127.0.0.1 (a port nothing listens
 *            on: delivery is not what is measured)
 *
 * then the same engine with no sink (the aggregator's share of the
 * flush), and the compressed bytes per point. Goals: <= 100 ms, <= 20 bytes per
 * point. Time is wall-clock of the flushing thread (the compressor's
 * thread runs beside it); "cpu" is the CPU time of the whole process
 * over the same span (both threads, and the forwarder's), which other
 * load on the machine inflates less. Prints, never asserts (benchmarks
 * run on shared, noisy machines).
 *
 * Usage: bench_dd_flush [contexts]
 */
#include "bench.h"
#include "core/base/util.h"
#include "core/sinks/datadog.h"
#include "tests/support/dd_intake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUNS  7
#define NTAGS 4

typedef struct sums {
    size_t payloads, bytes, json;
} sums;

static void count(void *ud, mw__dd_payload *p)
{
    sums *s = ud;
    s->payloads++;
    s->bytes += p->len;
    s->json += p->json_len;
    mw__dd_payload_free(p);
}

typedef struct ctx {
    char name[48];
    char tagbuf[NTAGS][48];
    const char *tags[NTAGS];
} ctx;

/* Contexts shaped like a container host's: 250 metric names over 400
 * containers, each with its container, image, service and env tags. */
static ctx *make_contexts(size_t n)
{
    ctx *c = calloc(n, sizeof *c);
    for (size_t i = 0; c && i < n; i++) {
        snprintf(c[i].name, sizeof c[i].name, "app.metric_%zu", i % 250);
        snprintf(c[i].tagbuf[0], 48, "container_name:svc-%zu", i / 250);
        snprintf(c[i].tagbuf[1], 48, "image_name:registry/app-%zu", (i / 250) % 20);
        snprintf(c[i].tagbuf[2], 48, "service:app-%zu", (i / 250) % 20);
        snprintf(c[i].tagbuf[3], 48, "env:prod");
        for (int t = 0; t < NTAGS; t++)
            c[i].tags[t] = c[i].tagbuf[t];
    }
    return c;
}

/* One flush's worth of records through `b` (kept from run to run, as
 * the sink keeps its builder). */
static double builder_run(mw__dd_builder *b, const ctx *c, size_t n, double *cpu)
{
    double t0 = mw__mono(), c0 = bench_cpu_seconds();
    for (size_t i = 0; i < n; i++) {
        mw_record r = {.size = sizeof r,
                       .type = MW_RECORD_METRIC,
                       .name = c[i].name,
                       .kind = i % 3 ? MW_KIND_GAUGE : MW_KIND_RATE,
                       .value = (double)(i % 1000) * 1.5,
                       .interval = 15,
                       .timestamp = 1764097200,
                       .tags = c[i].tags,
                       .ntags = NTAGS};
        mw__dd_builder_add(b, &r);
    }
    mw__dd_builder_finish(b);
    *cpu = bench_cpu_seconds() - c0;
    return mw__mono() - t0;
}

/* `port` 0: no sink at all (the aggregator's share of a flush). */
static mw_engine *make_engine(int port)
{
    char *url = mw__sprintf("http://127.0.0.1:%d", port);
    mw_config *cfg = mw_config_new();
    if (port) {
        mw_config_set(cfg, "api_key", "bench-key", NULL);
        mw_config_set(cfg, "dd_url", url, NULL);
    }
    mw_config_set(cfg, "sink", port ? "datadog" : "none", NULL);
    mw_config_set(cfg, "log_level", "warn", NULL);
    mw_config_set(cfg, "docker", "off", NULL);
    mw_config_set(cfg, "ecs", "off", NULL);
    mw_config_set(cfg, "no_bundled", "true", NULL);
    mw_config_set(cfg, "forwarder_queue_mb", "256", NULL);
    mw_config_set(cfg, "shutdown_timeout", "0", NULL);
    mw_engine *eng = NULL;
    char *err = NULL;
    if (mw_engine_new(cfg, &eng, &err) != MW_OK) {
        fprintf(stderr, "bench_dd_flush: %s\n", err ? err : "engine");
        exit(1);
    }
    mw_config_free(cfg);
    free(url);
    return eng;
}

static double engine_run(mw_engine *eng, mw_series **series, size_t n, double *cpu)
{
    for (size_t i = 0; i < n; i++)
        mw_series_submit(series[i], (double)i);
    double t0 = mw__mono(), c0 = bench_cpu_seconds();
    mw_engine_flush(eng);
    *cpu = bench_cpu_seconds() - c0;
    return mw__mono() - t0;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, bench_cmp_double);
    return v[n / 2];
}

/* RUNS flushes of `n` contexts through an engine (see make_engine()). */
static void engine_figure(const ctx *c, size_t n, int port, const char *what)
{
    double t[RUNS], cpu[RUNS];
    mw_engine *eng = make_engine(port);
    mw_series **series = calloc(n, sizeof *series);
    if (!series)
        exit(1);
    for (size_t i = 0; i < n; i++)
        series[i] =
            mw_series_new(eng, i % 3 ? MW_GAUGE : MW_COUNT, c[i].name, c[i].tags, NTAGS, NULL);
    for (int r = 0; r < RUNS; r++)
        t[r] = engine_run(eng, series, n, &cpu[r]);
    printf("dd flush, engine, %s: %zu contexts, median %.1f ms per mw_engine_flush() (cpu "
           "%.1f ms)\n",
           what, n, median(t, RUNS) * 1e3, median(cpu, RUNS) * 1e3);
    for (size_t i = 0; i < n; i++)
        mw_series_free(series[i]);
    free(series);
    mw_engine_free(eng);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    ctx *c = make_contexts(n);
    double t[RUNS], cpu[RUNS], bpp = 0;
    sums s = {0};
    const char *extra[] = {"team:core"};
    mw__dd_builder_opts o = {
        .host = "bench-host", .tags = extra, .ntags = 1, .emit = count, .ud = &s};
    mw__dd_builder *b = NULL;
    if (!c || mw__dd_builder_new(&o, &b) != MW_OK)
        return 1;
    for (int r = 0; r < RUNS; r++) {
        s = (sums){0};
        t[r] = builder_run(b, c, n, &cpu[r]);
    }
    mw__dd_builder_free(b);
    bpp = (double)s.bytes / (double)n;
    printf("dd flush, builder: %zu points, median %.1f ms (cpu %.1f ms), %zu payloads, %.2f "
           "bytes/point compressed (%.1f JSON)\n",
           n, median(t, RUNS) * 1e3, median(cpu, RUNS) * 1e3, s.payloads, bpp,
           (double)s.json / (double)n);

    /* An intake that inflates 20 MB per flush would compete with the
     * flush for the CPU: the payloads go to a port where nothing listens
     * (the forwarder retries them on its thread, off the flush). */
    dd_intake *in = dd_intake_start();
    int port = in ? dd_intake_port(in) : 0;
    dd_intake_stop(in);
    if (!port)
        return 1;
    engine_figure(c, n, port, "Datadog sink");
    engine_figure(c, n, 0, "no sink (the aggregator's share)");
    free(c);
    return 0;
}
