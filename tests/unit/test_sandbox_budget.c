/*
 * test_sandbox_budget.c - the watchdog with several workers and several
 * engines: each worker thread has its own slot, runaways on one worker
 * are stopped near their deadline while short checks on the other keep
 * finishing, and two budgets in one process do not interfere.
 */
#include "test.h"

#include "core/util.h"
#include "lua/sandbox.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LATE 0.050
#define RUNAWAYS 5
#define SHORTS   200

typedef struct worker {
    mw__budget *b;
    unsigned slot;
    const char *src;
    int runs;
    double budget; /* seconds per run */
    int ok, timeouts, other;
    double max_late;
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

static void *work(void *arg)
{
    worker *w = arg;
    mw__sandbox *sb = make(w->src);
    if (!sb)
        return NULL;
    for (int i = 0; i < w->runs; i++) {
        double deadline = mw__mono() + w->budget;
        mw__run_status st;
        mw__sandbox_begin(sb, deadline);
        while ((st = mw__sandbox_resume(sb, mw__budget_slot_get(w->b, w->slot))) ==
               MW_RUN_PREEMPTED)
            ;
        double late = mw__mono() - deadline;
        if (st == MW_RUN_OK)
            w->ok++;
        else if (st == MW_RUN_TIMEOUT)
            w->timeouts++;
        else
            w->other++;
        if (st == MW_RUN_TIMEOUT && late > w->max_late)
            w->max_late = late;
    }
    mw__sandbox_free(sb);
    return NULL;
}

static const char *const runaway = "return { run = function() while true do end end }";
static const char *const shortrun =
    "return { run = function() local n = 0 for i = 1, 1000 do n = n + i end end }";

static void test_two_workers(void)
{
    mw__budget *b = mw__budget_new(2, 0.002);
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

static void test_two_engines(void)
{
    mw__budget *b1 = mw__budget_new(1, 0.002), *b2 = mw__budget_new(1, 0.002);
    worker w[2] = {
        {.b = b1, .slot = 0, .src = runaway, .runs = RUNAWAYS, .budget = 0.05},
        {.b = b2, .slot = 0, .src = runaway, .runs = RUNAWAYS, .budget = 0.08},
    };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, work, &w[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        CHECK(w[i].timeouts == RUNAWAYS);
        CHECK(w[i].max_late < MAX_LATE);
    }
    mw__budget_free(b1);
    mw__budget_free(b2);
}

/* A budget that never ran anything frees cleanly; bad arguments fail. */
static void test_lifetime(void)
{
    mw__budget *b = mw__budget_new(4, 0.01);
    CHECK(b != NULL);
    CHECK(mw__budget_slot_get(b, 3) != NULL);
    CHECK(mw__budget_slot_get(b, 4) == NULL);
    mw__budget_free(b);
    mw__budget_free(NULL);
    CHECK(mw__budget_new(0, 0.01) == NULL);
    CHECK(mw__budget_new(1, 0) == NULL);
}

int main(void)
{
    test_lifetime();
    test_two_workers();
    test_two_engines();
    return TEST_RESULT();
}
