/*
 * test_ecs_events.c - the ECS task event state machine, driven by task
 * snapshots as the models give them (the task metadata v4 shape and the
 * introspection's) and by Docker exits, on a clock the test sets:
 *  - PENDING past the timeout, once; RUNNING; STOPPED with every
 *    container exited 0: one terminate, however many polls show it;
 *  - a container exiting non-zero: one fail with its code; a container
 *    that never started: one fail; neither then gets a terminate;
 *  - an OOM kill: one oom, and no fail for the same exit, whichever
 *    source says it again;
 *  - a stopped task whose exits come later from Docker waits for them;
 *  - a container Docker starts again in place has its next exit said,
 *    whatever its code; a model's exit from before that start is old;
 *  - history (a task first seen stopped, exits already there) says
 *    nothing; a container running again has its next exit said;
 *  - a task no model lists any more is forgotten, and the cap holds.
 */
#include "core/base/buf.h"
#include "core/base/util.h"
#include "discovery/ecs/ecs_events.h"
#include "test.h"

#include <stdlib.h>

#define S   1000000000ULL
#define ARN "arn:aws:ecs:us-west-2:111122223333:task/prod/0123456789abcdef0123456789abcdef"
#define ID1 "a9b4c54d8e9e4f2f8e6e5b3b6a2c1d0e-1234567890"
#define ID2 "b9b4c54d8e9e4f2f8e6e5b3b6a2c1d0e-1234567890"

/* What was said, one line per event: "kind container code", or "kind
 * [names] seconds" for task events. */
static mw__buf said;

static void on_event(void *ud, const mw__ecs_event *ev)
{
    (void)ud;
    mw__buf_addf(&said, "%s", mw__ecs_event_name(ev->kind));
    if (ev->container)
        mw__buf_addf(&said, " %s %s %d", ev->container, ev->docker_id[0] ? "id" : "-",
                     ev->exit_code);
    for (size_t i = 0; i < ev->ncontainers; i++)
        mw__buf_addf(&said, "%s%s", i ? "," : " [", ev->containers[i]);
    if (ev->ncontainers)
        mw__buf_addf(&said, "]");
    if (ev->kind == MW_ECS_EV_PENDING)
        mw__buf_addf(&said, " %.0f", ev->pending_s);
    mw__buf_addf(&said, " %s%s\n", ev->task ? "model" : "docker",
                 strcmp(ev->task_arn, ARN) == 0 && !strcmp(ev->family, "web") ? "" : " ?");
}

static const char *take(void)
{
    static char out[4096];
    snprintf(out, sizeof out, "%s", mw__buf_str(&said));
    mw__buf_reset(&said);
    return out;
}

/* A v4 task: status, then per container "name:docker_id:status[:exit]"
 * ("-" for an empty id or no status). */
static mw__ecs_task *task(const char *status, const char *const *ctrs)
{
    mw__buf b;
    mw__ecs_task *t = NULL;
    char *err = NULL;
    mw__buf_init(&b, 1 << 16);
    mw__buf_addf(&b,
                 "{\"TaskARN\":\"%s\",\"Family\":\"web\",\"KnownStatus\":\"%s\","
                 "\"Containers\":[{\"Name\":\"~pause\",\"Type\":\"CNI_PAUSE\"}",
                 ARN, status);
    for (size_t i = 0; ctrs[i]; i++) {
        char name[64], id[128], st[32];
        int code = 0, n = sscanf(ctrs[i], "%63[^:]:%127[^:]:%31[^:]:%d", name, id, st, &code);
        mw__buf_addf(&b, ",{\"Name\":\"%s\",\"DockerId\":\"%s\"", name, strcmp(id, "-") ? id : "");
        if (n >= 3 && strcmp(st, "-"))
            mw__buf_addf(&b, ",\"KnownStatus\":\"%s\"", st);
        if (n == 4)
            mw__buf_addf(&b, ",\"ExitCode\":%d", code);
        mw__buf_addf(&b, "}");
    }
    mw__buf_addf(&b, "]}");
    CHECK(mw__ecs_task_parse(mw__buf_str(&b), b.len, MW_ECS_V4, &t, &err) == MW_OK);
    if (err)
        fprintf(stderr, "task: %s\n", err);
    free(err);
    mw__buf_free(&b);
    return t;
}

static void poll_task(mw__ecs_events *e, uint64_t now, const char *status, const char *const *c)
{
    mw__ecs_task *t = task(status, c);
    if (t)
        mw__ecs_events_task(e, t, now);
    mw__ecs_task_free(t);
}

static void docker_exit(mw__ecs_events *e, uint64_t now, const char *name, const char *id, int code,
                        int oom)
{
    mw__ecs_exit x = {ARN, "web", name, id, code, oom};
    mw__ecs_events_exit(e, &x, now);
}

static void docker_start(mw__ecs_events *e, uint64_t now, const char *name, const char *id)
{
    mw__ecs_events_start(e, ARN, name, id, now);
}

#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Fargate: the task metadata says it all. */
static void test_lifecycle(void)
{
    mw__ecs_events *e = mw__ecs_events_new(300, on_event, NULL);
    poll_task(e, 10 * S, "PENDING", LIST("app:-:PENDING", "log:-:PENDING"));
    poll_task(e, 309 * S, "PENDING", LIST("app:-:PENDING", "log:-:PENDING"));
    CHECK_STR(take(), "");
    poll_task(e, 310 * S, "PENDING", LIST("app:-:PENDING", "log:-:PENDING"));
    CHECK_STR(take(), "pending [app,log] 300 model\n");
    poll_task(e, 320 * S, "PENDING", LIST("app:-:PENDING", "log:-:PENDING"));
    poll_task(e, 330 * S, "RUNNING", LIST("app:" ID1 ":RUNNING", "log:" ID2 ":RUNNING"));
    CHECK_STR(take(), "");
    for (int i = 0; i < 3; i++)
        poll_task(e, (340 + (uint64_t)i) * S, "STOPPED",
                  LIST("app:" ID1 ":STOPPED:0", "log:" ID2 ":STOPPED:0"));
    CHECK_STR(take(), "terminate [app,log] model\n");
    CHECK(mw__ecs_events_tasks(e) == 1);
    mw__ecs_events_gone(e, ARN);
    CHECK(mw__ecs_events_tasks(e) == 0);
    /* listed again, stopped: history, nothing said */
    poll_task(e, 400 * S, "STOPPED", LIST("app:" ID1 ":STOPPED:0", "log:" ID2 ":STOPPED:3"));
    CHECK_STR(take(), "");
    mw__ecs_events_free(e);
}

static void test_fail_and_never_started(void)
{
    mw__ecs_events *e = mw__ecs_events_new(300, on_event, NULL);
    poll_task(e, 1 * S, "RUNNING", LIST("app:" ID1 ":RUNNING", "init:-:PENDING"));
    for (int i = 0; i < 3; i++)
        poll_task(e, (2 + (uint64_t)i) * S, "RUNNING", LIST("app:" ID1 ":STOPPED:3", "init:-:-"));
    CHECK_STR(take(), "fail app id 3 model\n");
    /* the task stops: init never started; no terminate */
    for (int i = 0; i < 3; i++)
        poll_task(e, (9 + (uint64_t)i) * S, "STOPPED", LIST("app:" ID1 ":STOPPED:3", "init:-:-"));
    CHECK_STR(take(), "fail init - -1 model\n");
    mw__ecs_events_free(e);

    /* a container running again has its next exit said */
    e = mw__ecs_events_new(300, on_event, NULL);
    poll_task(e, 1 * S, "RUNNING", LIST("app:" ID1 ":RUNNING"));
    poll_task(e, 2 * S, "RUNNING", LIST("app:" ID1 ":STOPPED:2"));
    poll_task(e, 3 * S, "RUNNING", LIST("app:" ID1 ":RUNNING"));
    poll_task(e, 4 * S, "RUNNING", LIST("app:" ID1 ":STOPPED:2"));
    CHECK_STR(take(), "fail app id 2 model\nfail app id 2 model\n");
    mw__ecs_events_free(e);

    /* first seen running with an exit already there: history */
    e = mw__ecs_events_new(300, on_event, NULL);
    poll_task(e, 1 * S, "RUNNING", LIST("app:" ID1 ":RUNNING", "job:" ID2 ":STOPPED:1"));
    poll_task(e, 2 * S, "RUNNING", LIST("app:" ID1 ":STOPPED:4", "job:" ID2 ":STOPPED:1"));
    CHECK_STR(take(), "fail app id 4 model\n");
    mw__ecs_events_free(e);
}

/* EC2: the agent's model has no exit codes; Docker's die events do. */
static void test_docker_exits(void)
{
    mw__ecs_events *e = mw__ecs_events_new(300, on_event, NULL);
    poll_task(e, 1 * S, "RUNNING", LIST("app:" ID1 ":-", "log:" ID2 ":-"));
    /* the agent says STOPPED before Docker's dies came: it waits */
    poll_task(e, 2 * S, "STOPPED", LIST("app:" ID1 ":-", "log:" ID2 ":-"));
    CHECK_STR(take(), "");
    docker_exit(e, 3 * S, "app", ID1, 0, 0);
    CHECK_STR(take(), "");
    docker_exit(e, 3 * S, "log", ID2, 0, 0);
    CHECK_STR(take(), "terminate [app,log] docker\n");
    poll_task(e, 4 * S, "STOPPED", LIST("app:" ID1 ":-", "log:" ID2 ":-"));
    CHECK_STR(take(), "");
    mw__ecs_events_free(e);

    /* an exit 3, then the agent's STOPPED: one fail, no terminate */
    e = mw__ecs_events_new(300, on_event, NULL);
    poll_task(e, 1 * S, "RUNNING", LIST("app:" ID1 ":-", "log:" ID2 ":-"));
    docker_exit(e, 2 * S, "app", ID1, 3, 0);
    docker_exit(e, 2 * S, "log", ID2, 0, 0);
    poll_task(e, 3 * S, "STOPPED", LIST("app:" ID1 ":-", "log:" ID2 ":-"));
    CHECK_STR(take(), "fail app id 3 docker\n");
    mw__ecs_events_free(e);

    /* an OOM kill: oom, no fail; the task metadata saying 137 later adds
     * nothing */
    e = mw__ecs_events_new(300, on_event, NULL);
    poll_task(e, 1 * S, "RUNNING", LIST("app:" ID1 ":RUNNING"));
    docker_exit(e, 2 * S, "app", ID1, 137, 1);
    poll_task(e, 3 * S, "RUNNING", LIST("app:" ID1 ":STOPPED:137"));
    poll_task(e, 4 * S, "STOPPED", LIST("app:" ID1 ":STOPPED:137"));
    CHECK_STR(take(), "oom app id 137 docker\n");
    mw__ecs_events_free(e);

    /* labels only, no model: fail once per exit, never a terminate */
    e = mw__ecs_events_new(300, on_event, NULL);
    docker_exit(e, 1 * S, "app", ID1, 0, 0);
    docker_exit(e, 2 * S, "job", ID2, 5, 0);
    docker_exit(e, 2 * S, "job", ID2, 5, 0);
    CHECK_STR(take(), "fail job id 5 docker\n");
    mw__ecs_exit bad = {NULL, "web", "x", ID1, 1, 0};
    mw__ecs_events_exit(e, &bad, 3 * S);
    CHECK_STR(take(), "");
    mw__ecs_events_free(e);
}

/* EC2: a container started again in place (a restart policy, the agent
 * restarting it: the same Docker id) runs again; Docker's start says so,
 * and its next exit is news even with the code of the last. */
static void test_docker_restart(void)
{
    mw__ecs_events *e = mw__ecs_events_new(300, on_event, NULL);
    poll_task(e, 1 * S, "RUNNING", LIST("app:" ID1 ":-", "log:" ID2 ":-"));
    docker_start(e, 2 * S, "app", ID1);
    docker_exit(e, 3 * S, "app", ID1, 3, 0);
    docker_start(e, 4 * S, "app", ID1);
    docker_exit(e, 5 * S, "app", ID1, 3, 0);
    docker_exit(e, 5 * S, "app", ID1, 3, 0); /* the same exit again: nothing */
    poll_task(e, 6 * S, "RUNNING", LIST("app:" ID1 ":-", "log:" ID2 ":-"));
    docker_start(e, 7 * S, "app", ID1);
    docker_exit(e, 8 * S, "app", ID1, 137, 1);
    CHECK_STR(take(), "fail app id 3 docker\nfail app id 3 docker\noom app id 137 docker\n");
    mw__ecs_events_free(e);

    /* a task not remembered: a start changes nothing, keeps nothing */
    e = mw__ecs_events_new(300, on_event, NULL);
    docker_start(e, 1 * S, "app", ID1);
    CHECK(mw__ecs_events_tasks(e) == 0);
    mw__ecs_events_free(e);

    /* with the task metadata too (exit codes), whose view lags Docker's:
     * the exit it still shows after Docker's start is the old one */
    e = mw__ecs_events_new(300, on_event, NULL);
    poll_task(e, 1 * S, "RUNNING", LIST("app:" ID1 ":RUNNING"));
    docker_exit(e, 2 * S, "app", ID1, 3, 0);
    docker_start(e, 3 * S, "app", ID1);
    poll_task(e, 4 * S, "RUNNING", LIST("app:" ID1 ":STOPPED:3"));
    CHECK_STR(take(), "fail app id 3 docker\n");
    /* it catches up, then says the next exit before Docker does: once */
    poll_task(e, 5 * S, "RUNNING", LIST("app:" ID1 ":RUNNING"));
    poll_task(e, 6 * S, "RUNNING", LIST("app:" ID1 ":STOPPED:3"));
    docker_exit(e, 6 * S, "app", ID1, 3, 0);
    CHECK_STR(take(), "fail app id 3 model\n");
    mw__ecs_events_free(e);
}

/* At most MW_ECS_EVENTS_TASKS states; the unlisted ones go first. */
static void test_cap(void)
{
    mw__ecs_events *e = mw__ecs_events_new(0, on_event, NULL);
    char arn[128];
    poll_task(e, 1 * S, "RUNNING", LIST("app:" ID1 ":RUNNING"));
    for (int i = 0; i < MW_ECS_EVENTS_TASKS + 10; i++) {
        snprintf(arn, sizeof arn, "arn:aws:ecs:us-west-2:1:task/prod/%d", i);
        mw__ecs_exit x = {arn, "web", "app", ID2, 0, 0};
        mw__ecs_events_exit(e, &x, (2 + (uint64_t)i) * S);
    }
    CHECK(mw__ecs_events_tasks(e) == MW_ECS_EVENTS_TASKS);
    /* the listed task is still known: its exit is news */
    poll_task(e, 9000 * S, "RUNNING", LIST("app:" ID1 ":STOPPED:9"));
    CHECK_STR(take(), "fail app id 9 model\n");
    mw__ecs_events_free(e);
    CHECK_STR(mw__ecs_event_name(MW_ECS_EV_TERMINATE), "terminate");
}

int main(void)
{
    mw__buf_init(&said, 1 << 20);
    test_lifecycle();
    test_fail_and_never_started();
    test_docker_exits();
    test_docker_restart();
    test_cap();
    mw__buf_free(&said);
    return TEST_RESULT();
}
