/*
 * bench_lua_runaway.c - one worker, many short checks on fixed schedules,
 * and one `while true do end` check with a time budget: how late is the
 * runaway stopped after its deadline, and how much does it delay the
 * others?
 *
 * The worker loop is a minimal scheduler: run every short check that is
 * due (in order of planned start), then give the runaway one slice; a
 * preempted run goes back to the queue. Prints the median and max of
 * (stop time - deadline) over the runaway runs and p50/p99 of the start
 * jitter (actual start - planned start) of the short checks.
 *
 * Usage: bench_lua_runaway [runaway_runs=20] [budget_s=1.0] [checks=50]
 * [interval_s=0.1] [slice_s=0.002]. Prints figures; asserts nothing.
 */
#include "core/base/util.h"
#include "lua/sandbox.h"
#include "tests/support/make.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct check {
    mw__sandbox *sb;
    double next; /* planned start, monotonic seconds */
} check;

typedef struct samples {
    double *v;
    size_t n, cap;
} samples;

static void add(samples *s, double v)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        double *p = realloc(s->v, cap * sizeof(*p));
        if (!p)
            return;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(samples *s, double p)
{
    if (s->n == 0)
        return 0;
    qsort(s->v, s->n, sizeof(double), cmp_double);
    size_t i = (size_t)(p * (double)(s->n - 1) + 0.5);
    return s->v[i];
}

static mw__sandbox *make(const char *src, const char *id)
{
    mw__sandbox_opts o = {
        .check = "bench", .check_id = id, .script = src, .script_len = strlen(src)};
    char *err = NULL;
    mw__sandbox *sb = mw__sandbox_new(&o, &err);
    if (!sb)
        fprintf(stderr, "%s: %s\n", id, err);
    free(err);
    return sb;
}

/* Runs every due short check to completion; returns how many ran. */
static int run_due(check *c, int n, double interval, mw__budget_slot *slot, samples *jitter)
{
    int ran = 0;
    for (int i = 0; i < n; i++) {
        double now = mw__mono();
        if (c[i].next > now)
            continue;
        add(jitter, now - c[i].next);
        mw__sandbox_begin(c[i].sb, now + interval);
        while (mw__sandbox_resume(c[i].sb, slot) == MW_RUN_PREEMPTED)
            ;
        c[i].next += interval;
        ran++;
    }
    return ran;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 20;
    double budget = argc > 2 ? atof(argv[2]) : 1.0;
    int n = argc > 3 ? atoi(argv[3]) : 50;
    double interval = argc > 4 ? atof(argv[4]) : 0.1;
    double slice = argc > 5 ? atof(argv[5]) : 0.002;
    mw__budget *b = t_budget(1, slice);
    mw__budget_slot *slot = mw__budget_slot_get(b, 0);
    check *c = calloc((size_t)n, sizeof(*c));
    samples late = {0}, jitter = {0};
    mw__sandbox *loop = make("return { run = function() while true do end end }", "runaway:1");
    if (!b || !c || !loop)
        return 1;
    double t0 = mw__mono();
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "short:%d", i);
        c[i].sb = make("local n = 0\n"
                       "return { run = function() for i = 1, 200 do n = n + i end\n"
                       "  mw.gauge('x', n) end }",
                       id);
        if (!c[i].sb)
            return 1;
        c[i].next = t0 + 0.05 + interval * i / n; /* fixed offsets */
    }
    int preemptions = 0, done = 0;
    double deadline = mw__mono() + budget;
    mw__sandbox_begin(loop, deadline);
    while (done < runs) {
        run_due(c, n, interval, slot, &jitter);
        mw__run_status st = mw__sandbox_resume(loop, slot);
        if (st == MW_RUN_PREEMPTED) {
            preemptions++;
            continue;
        }
        add(&late, mw__mono() - deadline);
        done++;
        deadline = mw__mono() + budget;
        mw__sandbox_begin(loop, deadline);
    }
    mw__sandbox_abort(loop);
    printf("runaway: %d runs of %.3g s budget, slice %.3g ms, %d preemptions\n", runs, budget,
           slice * 1e3, preemptions);
    printf("stop latency (stop - deadline): median %.3f ms, max %.3f ms\n", pct(&late, 0.5) * 1e3,
           pct(&late, 1.0) * 1e3);
    printf("start jitter of %d short checks every %.3g s (%zu starts): p50 %.3f ms, p99 %.3f ms, "
           "max %.3f ms\n",
           n, interval, jitter.n, pct(&jitter, 0.5) * 1e3, pct(&jitter, 0.99) * 1e3,
           pct(&jitter, 1.0) * 1e3);
    for (int i = 0; i < n; i++)
        mw__sandbox_free(c[i].sb);
    mw__sandbox_free(loop);
    mw__budget_free(b);
    free(c);
    free(late.v);
    free(jitter.v);
    return 0;
}
