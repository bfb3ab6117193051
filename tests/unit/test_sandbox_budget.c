/*
 * test_sandbox_budget.c - the watchdog with several workers and several
 * engines: each worker thread has its own slot, runaways on one worker
 * are stopped near their deadline while short checks on the other keep
 * finishing, and two budgets in one process do not interfere. Also the
 * budget signal's edge cases: a worker that blocks it (runs time
 * themselves), signals outside any run, and a storm of signals while runs
 * switch coroutines.
 */
#include "test.h"

#include "core/base/util.h"
#include "lua/sandbox.h"
#include "lua/sandbox_int.h"
#include "tests/support/make.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How late past its deadline a runaway may stop: a bound that says it
 * was stopped by its budget, not a latency goal (bench_lua_runaway
 * measures that); loaded machines and ThreadSanitizer slow runs down. */
#define MAX_LATE 0.5
#define RUNAWAYS 5
#define SHORTS   200

typedef struct worker {
    mw__budget *b;
    unsigned slot;
    const char *src;
    int runs;
    double budget;    /* seconds per run */
    int block_signal; /* block the budget signal in this worker */
    int ok, timeouts, other, preempted;
    double min_late, max_late;
} worker;

static mw__sandbox *make(const char *src)
{
    mw__sandbox_opts o = {
        .check = "chk", .check_id = "chk:1", .script = src, .script_len = strlen(src)};
    char *err = NULL;
    mw__sandbox *sb = mw__sandbox_new(&o, &err);
    free(err);
    return sb;
}

static void block_budget_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, mw__budget_signal());
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void count(worker *w, mw__run_status st, double late)
{
    if (st == MW_RUN_OK)
        w->ok++;
    else if (st == MW_RUN_TIMEOUT)
        w->timeouts++;
    else
        w->other++;
    if (st != MW_RUN_TIMEOUT)
        return;
    if (w->timeouts == 1 || late < w->min_late)
        w->min_late = late;
    if (late > w->max_late)
        w->max_late = late;
}

static void *work(void *arg)
{
    worker *w = arg;
    if (w->block_signal)
        block_budget_signal();
    mw__sandbox *sb = make(w->src);
    if (!sb)
        return NULL;
    for (int i = 0; i < w->runs; i++) {
        double deadline = mw__mono() + w->budget;
        mw__run_status st;
        mw__sandbox_begin(sb, deadline);
        while ((st = mw__sandbox_resume(sb, mw__budget_slot_get(w->b, w->slot))) ==
               MW_RUN_PREEMPTED)
            w->preempted++;
        count(w, st, mw__mono() - deadline);
    }
    mw__sandbox_free(sb);
    return NULL;
}

static void run_workers(worker *w, int n)
{
    pthread_t t[4];
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, work, &w[i]);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

static const char *const runaway = "return { run = function() while true do end end }";
static const char *const shortrun =
    "return { run = function() local n = 0 for i = 1, 1000 do n = n + i end end }";

static void test_two_workers(void)
{
    mw__budget *b = t_budget(2, 0.002);
    worker w[2] = {
        {.b = b, .slot = 0, .src = runaway, .runs = RUNAWAYS, .budget = 0.05},
        {.b = b, .slot = 1, .src = shortrun, .runs = SHORTS, .budget = 1.0},
    };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, work, &w[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK(w[0].timeouts == RUNAWAYS);
    CHECK(w[0].max_late < MAX_LATE);
    CHECK(w[1].ok == SHORTS);
    CHECK(w[0].other == 0 && w[1].other == 0 && w[1].timeouts == 0);
    printf("two workers: runaway max late %.2f ms\n", w[0].max_late * 1e3);
    mw__budget_free(b);
}

/* Two engines, two workers, budgets far apart: each watchdog signals only
 * its own worker, so each runaway stops at its own deadline, never at the
 * other's. */
static void test_two_engines(void)
{
    CHECK(mw__budget_signal() != 0); /* signalled, not self-timed */
    mw__budget *b1 = t_budget(1, 0.002), *b2 = t_budget(1, 0.002);
    worker w[2] = {
        {.b = b1, .slot = 0, .src = runaway, .runs = RUNAWAYS, .budget = 0.05},
        {.b = b2, .slot = 0, .src = runaway, .runs = RUNAWAYS, .budget = 0.15},
    };
    run_workers(w, 2);
    for (int i = 0; i < 2; i++) {
        CHECK(w[i].timeouts == RUNAWAYS);
        CHECK(w[i].min_late >= 0);
        CHECK(w[i].max_late < MAX_LATE);
        CHECK(w[i].preempted > 0);
    }
    printf("two engines: max late %.2f / %.2f ms\n", w[0].max_late * 1e3, w[1].max_late * 1e3);
    mw__budget_free(b1);
    mw__budget_free(b2);
}

static const char *const busy =
    "return { run = function() local n = 0 for i = 1, 3e6 do n = n + i end\n"
    "  assert(n == 4500001500000) end }";

/* A worker that blocks the budget signal cannot be signalled: its runs
 * time themselves, with the same slices and deadline, while a worker of
 * the same budget that does not block it is still signalled. */
static void test_blocked_signal(void)
{
    mw__budget *b = t_budget(2, 0.002);
    worker w[3] = {
        {.b = b, .slot = 0, .src = runaway, .runs = RUNAWAYS, .budget = 0.05, .block_signal = 1},
        {.b = b, .slot = 1, .src = runaway, .runs = RUNAWAYS, .budget = 0.05},
    };
    run_workers(w, 2);
    for (int i = 0; i < 2; i++) {
        CHECK(w[i].timeouts == RUNAWAYS);
        CHECK(w[i].min_late >= 0 && w[i].max_late < MAX_LATE);
        CHECK(w[i].preempted > 0);
    }
    w[2] = (worker){.b = b, .slot = 0, .src = busy, .runs = 3, .budget = 30, .block_signal = 1};
    run_workers(&w[2], 1);
    CHECK(w[2].ok == 3 && w[2].preempted > 0);
    mw__budget_free(b);
}

/* Signals the target thread every ~50 us until told to stop. */
typedef struct storm {
    pthread_t target;
    atomic_int stop;
    long sent;
} storm;

static void *signal_storm(void *arg)
{
    storm *st = arg;
    struct timespec ts = {0, 50000};
    while (!atomic_load(&st->stop)) {
        pthread_kill(st->target, mw__budget_signal());
        st->sent++;
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* The signal outside any run does nothing; a storm of them during runs
 * that switch coroutines all the time (and are preempted in the middle)
 * changes no result. */
static void test_stray_signals(void)
{
    int sig = mw__budget_signal();
    pthread_kill(pthread_self(), sig); /* no run: ignored */
    raise(sig);
    mw__budget *b = t_budget(1, 0.001);
    mw__sandbox *sb = make("return { run = function()\n"
                           "  local gen = coroutine.wrap(function()\n"
                           "    for i = 1, 200000 do coroutine.yield(i) end end)\n"
                           "  local n = 0 for i = 1, 200000 do n = n + gen() end\n"
                           "  assert(n == 20000100000, n) end }");
    storm st = {.target = pthread_self()};
    pthread_t t;
    pthread_create(&t, NULL, signal_storm, &st);
    int ok = 0, preempted = 0;
    for (int i = 0; i < 5; i++) {
        mw__run_status rs;
        mw__sandbox_begin(sb, mw__mono() + 30);
        while ((rs = mw__sandbox_resume(sb, mw__budget_slot_get(b, 0))) == MW_RUN_PREEMPTED)
            preempted++;
        if (rs != MW_RUN_OK)
            fprintf(stderr, "storm run: %d %s\n", rs, mw__sandbox_error(sb));
        ok += rs == MW_RUN_OK;
    }
    atomic_store(&st.stop, 1);
    pthread_join(t, NULL);
    CHECK(ok == 5);
    CHECK(preempted > 0);
    printf("signal storm: %ld signals, %d preemptions\n", st.sent, preempted);
    mw__sandbox_free(sb);
    mw__budget_free(b);
}

/* Without the signal (watchdog_signal: false, or a ThreadSanitizer build)
 * runs time themselves: a runaway that switches coroutines every few
 * instructions still reaches its deadline and its slices. */
static void test_self_timed_coroutines(void)
{
    mw__budget *b = NULL;
    CHECK(mw__budget_new(1, 0.002, 0, &b) == MW_OK);
    const char *switcher = "return { run = function()\n"
                           "  local gen = coroutine.wrap(function()\n"
                           "    while true do coroutine.yield(1) end end)\n"
                           "  while true do gen() end end }";
    worker w = {.b = b, .slot = 0, .src = switcher, .runs = RUNAWAYS, .budget = 0.05};
    run_workers(&w, 1);
    CHECK(w.timeouts == RUNAWAYS);
    CHECK(w.max_late < MAX_LATE);
    CHECK(w.preempted > 0);
    printf("self-timed coroutine switcher: max late %.2f ms, %d preemptions\n", w.max_late * 1e3,
           w.preempted);
    mw__budget_free(b);
}

/* A budget that never ran anything frees cleanly; bad arguments fail. */
static void test_lifetime(void)
{
    mw__budget *b = t_budget(4, 0.01);
    CHECK(b != NULL);
    CHECK(mw__budget_slot_get(b, 3) != NULL);
    CHECK(mw__budget_slot_get(b, 4) == NULL);
    mw__budget_free(b);
    mw__budget_free(NULL);
    mw__budget *none = b;
    CHECK(mw__budget_new(0, 0.01, 1, &none) == MW_EINVAL && !none);
    CHECK(mw__budget_new(1, 0, 1, &none) == MW_EINVAL && !none);
}

int main(void)
{
    test_lifetime();
    test_two_workers();
    test_two_engines();
    test_blocked_signal();
    test_stray_signals();
    test_self_timed_coroutines();
    return TEST_RESULT();
}
