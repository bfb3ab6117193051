/*
 * bench_openmetrics.c - series per second through the OpenMetrics
 * scraper on one core, for a 10,000-series exposition: 40 counter
 * families and 41 gauge families of 100 series each, one histogram (100
 * label sets x 10 buckets + sum + count) and one summary (100 x 5
 * quantiles + sum + count); three labels per series, text format 0.0.4.
 *
 * Figures (each the median of RUNS runs of SCRAPES scrapes, CPU time of
 * the thread, so other load on a shared machine inflates them less):
 *  - parse only: mw__om_parse() with a handler that takes every family
 *    and counts the samples (labels and values parsed);
 *  - parse + submit + commit: what a run of the bundled check does after
 *    its HTTP GET: the options compiled (metrics [".*"], a namespace, a
 *    tag), every series submitted into a real sender, the run committed
 *    into a real aggregator (steady state: the contexts exist);
 *  - the same through the Lua binding, mw.openmetrics.submit(text, opts)
 *    called from a sandbox.
 * Series/s counts the exposition's 10,000 series per scrape (the +Inf
 * buckets are parsed but, as in Datadog's check, not submitted).
 *
 * Prints, never asserts. Usage: bench_openmetrics [scrapes per run]
 */
#include "bench.h"

#include "core/base/util.h"
#include "core/pipeline/aggregator.h"
#include "core/pipeline/sender.h"
#include "lua/openmetrics_scrape.h"
#include "lua/sandbox_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS     9
#define SCRAPES  20
#define SETS     100 /* label sets per family */
#define COUNTERS 40
#define GAUGES   41
#define SERIES   ((COUNTERS + GAUGES) * SETS + SETS * 12 + SETS * 7)

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int labels(char *out, size_t cap, int i)
{
    return snprintf(out, cap, "host=\"web-%02d\",path=\"/api/v1/items/%d\",code=\"%d\"", i % 17, i,
                    200 + (i % 5) * 100);
}

/* Appends to the growing exposition. */
typedef struct text {
    char *p;
    size_t n, cap;
} text;

static void add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(text *t, const char *fmt, ...)
{
    va_list ap;
    if (t->cap - t->n < 512) {
        t->cap = t->cap ? t->cap * 2 : 1 << 20;
        t->p = realloc(t->p, t->cap);
        if (!t->p)
            exit(1);
    }
    va_start(ap, fmt);
    t->n += (size_t)vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
    va_end(ap);
}

static text exposition(void)
{
    static const char *const le[] = {"0.005", "0.01", "0.025", "0.05", "0.1",
                                     "0.25",  "0.5",  "1",     "2.5",  "+Inf"};
    static const char *const q[] = {"0", "0.25", "0.5", "0.75", "1"};
    text t = {0};
    char l[160];
    for (int f = 0; f < COUNTERS; f++) {
        add(&t, "# HELP app_requests_%d_total Requests of kind %d.\n", f, f);
        add(&t, "# TYPE app_requests_%d_total counter\n", f);
        for (int i = 0; i < SETS; i++) {
            labels(l, sizeof(l), i);
            add(&t, "app_requests_%d_total{%s} %d\n", f, l, 1000 * f + i);
        }
    }
    for (int f = 0; f < GAUGES; f++) {
        add(&t, "# HELP app_queue_%d_bytes Queue %d.\n# TYPE app_queue_%d_bytes gauge\n", f, f, f);
        for (int i = 0; i < SETS; i++) {
            labels(l, sizeof(l), i);
            add(&t, "app_queue_%d_bytes{%s} %.6e\n", f, l, 1.5e6 + f * 1000.25 + i);
        }
    }
    add(&t, "# HELP app_latency_seconds Latency.\n# TYPE app_latency_seconds histogram\n");
    for (int i = 0; i < SETS; i++) {
        labels(l, sizeof(l), i);
        for (int b = 0; b < 10; b++)
            add(&t, "app_latency_seconds_bucket{%s,le=\"%s\"} %d\n", l, le[b], b * 10 + i);
        add(&t, "app_latency_seconds_sum{%s} %g\napp_latency_seconds_count{%s} %d\n", l, 12.5 + i,
            l, 90 + i);
    }
    add(&t, "# HELP app_rpc_seconds RPC.\n# TYPE app_rpc_seconds summary\n");
    for (int i = 0; i < SETS; i++) {
        labels(l, sizeof(l), i);
        for (int k = 0; k < 5; k++)
            add(&t, "app_rpc_seconds{%s,quantile=\"%s\"} %g\n", l, q[k], 0.001 * (k + 1) + i);
        add(&t, "app_rpc_seconds_sum{%s} %g\napp_rpc_seconds_count{%s} %d\n", l, 4.5 + i, l,
            100 + i);
    }
    return t;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
    return v[n / 2];
}

/* ------------------------------------------------------------- parse only */

static int take_family(void *ud, const mw__om_family *f)
{
    (void)ud;
    (void)f;
    return 1;
}

static int count_sample(void *ud, const mw__om_family *f, const mw__om_sample *s)
{
    (void)f;
    *(double *)ud += s->value;
    return 0;
}

static double run_parse(const text *t, int scrapes, size_t *samples)
{
    mw__om_handler h = {.family = take_family, .sample = count_sample};
    mw__om_stats st;
    double sum = 0, t0 = cpu_now();
    for (int k = 0; k < scrapes; k++)
        mw__om_parse(t->p, t->n, &h, &sum, &st);
    double dt = cpu_now() - t0;
    *samples = st.samples;
    return (double)SERIES * scrapes / dt;
}

/* ------------------------------------------------------------- parse + submit */

typedef struct rig {
    mw__aggregator *agg;
    mw__sender *snd;
    double now;
} rig;

static void rig_init(rig *r)
{
    static const char *const itags[] = {"env:bench"};
    mw__agg_opts ao = {.flush_interval = 15, .context_expiry = 3600, .host = "bench-host"};
    mw__sender_opts so = {
        .check = "openmetrics", .check_id = "openmetrics:1", .tags = itags, .ntags = 1};
    r->agg = mw__agg_new(&ao);
    r->snd = r->agg ? mw__sender_new(r->agg, &so) : NULL;
    r->now = 1000;
    if (!r->snd)
        exit(1);
}

static void rig_free(rig *r)
{
    mw__sender_free(r->snd);
    mw__agg_free(r->agg);
}

static const mw__om_metric_spec all_metrics[] = {{.match = {".*", 2}}};
static const mw__str endpoint_tag[] = {{"endpoint:http://127.0.0.1:9100/metrics", 38}};

static mw__om_config bench_config(void)
{
    mw__om_config c;
    memset(&c, 0, sizeof(c));
    c.ns = (mw__str){"app", 3};
    c.metrics = all_metrics;
    c.nmetrics = 1;
    c.tags = endpoint_tag;
    c.ntags = 1;
    c.collect_histogram_buckets = 1;
    return c;
}

/* One scrape as a check run does it: compile, submit, commit. */
static size_t scrape(rig *r, const text *t)
{
    mw__om_config c = bench_config();
    mw__om_result res;
    char err[128];
    mw__om_scraper *sc = mw__om_scraper_new(&c, err, sizeof(err));
    if (!sc) {
        fprintf(stderr, "scraper: %s\n", err);
        exit(1);
    }
    mw__sample_out out = mw__sender_out(r->snd);
    mw__om_submit(sc, &out, t->p, t->n, NULL, NULL, &res);
    mw__om_scraper_free(sc);
    mw__sender_commit(r->snd, r->now);
    r->now += 15;
    return res.submitted;
}

static double run_submit(rig *r, const text *t, int scrapes, size_t *submitted)
{
    double t0 = cpu_now();
    for (int k = 0; k < scrapes; k++)
        *submitted = scrape(r, t);
    double dt = cpu_now() - t0;
    return (double)SERIES * scrapes / dt;
}

/* ------------------------------------------------------------- through Lua */

static const char lua_submit[] = "local om, text = ...\n"
                                 "return om.submit(text, {namespace = 'app', metrics = {'.*'},\n"
                                 "  tags = {'endpoint:http://127.0.0.1:9100/metrics'}})\n";

static mw__sandbox *lua_sandbox(rig *r, mw__log *log)
{
    static const char script[] = "return { run = function(self) end }";
    mw__sandbox_opts o = {.check = "openmetrics",
                          .check_id = "openmetrics:1",
                          .chunkname = "=bench",
                          .script = script,
                          .script_len = sizeof(script) - 1,
                          .mem_cap = (size_t)64 << 20,
                          .out = mw__sender_out(r->snd),
                          .log = log};
    char *err = NULL;
    mw__sandbox *sb = mw__sandbox_new(&o, &err);
    if (!sb) {
        fprintf(stderr, "sandbox: %s\n", err);
        exit(1);
    }
    return sb;
}

static double run_lua(rig *r, mw__sandbox *sb, int scrapes, size_t *submitted)
{
    lua_State *L = sb->L;
    double t0 = cpu_now();
    for (int k = 0; k < scrapes; k++) {
        lua_pushvalue(L, 1); /* the compiled chunk */
        lua_pushvalue(L, 2); /* om */
        lua_pushvalue(L, 3); /* text */
        if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
            fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
            exit(1);
        }
        *submitted = (size_t)lua_tointeger(L, -1);
        lua_pop(L, 1);
        mw__sender_commit(r->snd, r->now);
        r->now += 15;
    }
    double dt = cpu_now() - t0;
    return (double)SERIES * scrapes / dt;
}

int main(int argc, char **argv)
{
    int scrapes = argc > 1 ? atoi(argv[1]) : SCRAPES;
    if (scrapes < 1)
        scrapes = SCRAPES;
    text t = exposition();
    double parse[RUNS], submit[RUNS], lua[RUNS];
    size_t samples = 0, submitted = 0, lua_submitted = 0;
    rig r;
    rig_init(&r);
    scrape(&r, &t); /* contexts created: steady state from here on */
    for (int i = 0; i < RUNS; i++) {
        parse[i] = run_parse(&t, scrapes, &samples);
        submit[i] = run_submit(&r, &t, scrapes, &submitted);
    }
    mw__log log = {.level = MW_LOG_OFF, .fd = 2};
    mw__sandbox *sb = lua_sandbox(&r, &log);
    lua_State *L = sb->L;
    if (luaL_loadbufferx(L, lua_submit, sizeof(lua_submit) - 1, "=bench", "t") != LUA_OK)
        return 1;
    mw__open_openmetrics(L);
    lua_pushlstring(L, t.p, t.n);
    for (int i = 0; i < RUNS; i++)
        lua[i] = run_lua(&r, sb, scrapes, &lua_submitted);
    mw__sandbox_free(sb);

    printf("openmetrics: %d series (%zu bytes, %zu samples parsed, %zu submitted per scrape), "
           "%d scrapes/run, median of %d\n",
           SERIES, t.n, samples, submitted, scrapes, RUNS);
    printf("  parse only                          %10.0f series/s\n", median(parse, RUNS));
    printf("  parse + submit + commit (C)         %10.0f series/s\n", median(submit, RUNS));
    printf("  mw.openmetrics.submit (Lua) + commit %9.0f series/s (%zu submitted)\n",
           median(lua, RUNS), lua_submitted);
    printf("  contexts in the aggregator          %10zu\n", mw__agg_contexts(r.agg));
    rig_free(&r);
    free(t.p);
    return 0;
}
