/*
 * test_sandbox_fallback.c - the time budget when the embedder already
 * handles the budget signal: moonwatch must leave that handler alone and
 * the runs time themselves (a hook reads the clock), with the same
 * preemption and the same stop near the deadline.
 *
 * A process of its own: the signal's handler is chosen once per process,
 * so the foreign handler is installed before the first run.
 */
#include "test.h"

#include "core/base/util.h"
#include "lua/sandbox.h"
#include "lua/sandbox_int.h"
#include "tests/support/make.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LATE 0.100

static volatile sig_atomic_t foreign_calls;

static void foreign_handler(int sig)
{
    (void)sig;
    foreign_calls++;
}

static void install_foreign(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = foreign_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static int foreign_installed(int sig)
{
    struct sigaction cur;
    sigaction(sig, NULL, &cur);
    return cur.sa_handler == foreign_handler;
}

static mw__sandbox *make(const char *src)
{
    mw__sandbox_opts o = {
        .check = "chk", .check_id = "chk:1", .script = src, .script_len = strlen(src)};
    char *err = NULL;
    mw__sandbox *sb = mw__sandbox_new(&o, &err);
    if (!sb)
        fprintf(stderr, "sandbox_new: %s\n", err);
    free(err);
    return sb;
}

typedef struct job {
    mw__budget *b;
    const char *src;
    double budget;
    mw__run_status st;
    int preempted;
    double late;
    int msg_ok; /* the timeout message names the budget */
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    mw__sandbox *sb = make(j->src);
    if (!sb)
        return NULL;
    double deadline = mw__mono() + j->budget;
    mw__sandbox_begin(sb, deadline);
    while ((j->st = mw__sandbox_resume(sb, mw__budget_slot_get(j->b, 0))) == MW_RUN_PREEMPTED)
        j->preempted++;
    j->late = mw__mono() - deadline;
    j->msg_ok = strstr(mw__sandbox_error(sb), "time budget of 0.1 s") != NULL;
    mw__sandbox_free(sb);
    return NULL;
}

static const char *const runaway = "return { run = function() while true do end end }";
static const char *const busy =
    "return { run = function() local n = 0 for i = 1, 3e6 do n = n + i end\n"
    "  assert(n == 4500001500000) end }";

/* Two engines' runaways on two workers, each stopped near its deadline,
 * after being preempted like a signalled run. */
static void test_runaways(void)
{
    job j[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        j[i] = (job){.b = t_budget(1, 0.002), .src = runaway, .budget = 0.1};
        pthread_create(&t[i], NULL, run_job, &j[i]);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        CHECK(j[i].st == MW_RUN_TIMEOUT);
        CHECK(j[i].late >= 0 && j[i].late < MAX_LATE);
        CHECK(j[i].preempted > 0);
        CHECK(j[i].msg_ok);
        printf("fallback runaway %d: late %.2f ms, %d preemptions\n", i, j[i].late * 1e3,
               j[i].preempted);
        mw__budget_free(j[i].b);
    }
}

static void test_busy_run_completes(void)
{
    job j = {.b = t_budget(1, 0.002), .src = busy, .budget = 30};
    run_job(&j);
    CHECK(j.st == MW_RUN_OK);
    CHECK(j.preempted > 0);
    mw__budget_free(j.b);
}

int main(void)
{
    int sig = SIGRTMIN + MW_BUDGET_SIGNAL_OFFSET;
    install_foreign(sig);
    CHECK(mw__budget_signal() == 0);
    test_runaways();
    test_busy_run_completes();
    /* Not stolen: the embedder's handler still gets its signal. */
    CHECK(foreign_installed(sig));
    raise(sig);
    CHECK(foreign_calls == 1);
    return TEST_RESULT();
}
