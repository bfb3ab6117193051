/*
 * ecs_events.h - ECS task events derived on the host: what happened to a
 * task, from what the ECS models say of it (the agent's introspection
 * API on EC2, the task metadata endpoint) and from what Docker says of
 * its containers' ends (EC2). Each occurrence is said once, whichever
 * source saw it first and however many polls show it again:
 *
 *   fail       a container of the task exited non-zero (Docker `die` with
 *              its exit code, or its ExitCode in the task metadata), or
 *              the task stopped with a container that never started (no
 *              Docker id, no exit code);
 *   oom        a container was killed by the OOM killer (Docker: the
 *              `oom` event before its `die`, or State.OOMKilled); said
 *              instead of `fail` for that exit;
 *   pending    the task stayed pending (PROVISIONING, PENDING,
 *              ACTIVATING, or the agent's NONE, MANIFEST_PULLED, PULLED,
 *              CREATED) longer than `pending_timeout`, once per task;
 *   terminate  the task stopped and every container of it exited 0
 *              (scaled in, a deployment, a stop), once per task.
 *
 * A container started again in place (the same Docker id) runs again:
 * Docker's `start` says so on EC2 (the agent's model shows no container
 * status), a model's RUNNING elsewhere, and its next exit is said too.
 *
 * Neither payload says which containers are essential: every NORMAL
 * container counts. A task first seen already STOPPED, and exits already
 * there when its task is first seen, are history from before moonwatch
 * watched: nothing is said of them. A stopped task whose containers' exits
 * are not all known yet (the model's poll came before Docker's `die`)
 * waits for them; one whose exits never become known (a task known from
 * labels alone, with no model) gets no `terminate`.
 *
 * This is only the state machine: it says what happened through `fn`,
 * and whoever owns it (discovery.c) makes the records, with tags. It does
 * no I/O and reads no clock (times are passed in, monotonic ns). At most
 * MW_ECS_EVENTS_TASKS tasks are remembered; past that the one touched
 * longest ago is forgotten first, those no model lists before the others.
 *
 * Ownership: the deriver owns its state and copies every string it
 * keeps; what it passes to `fn` is borrowed for the call. One thread.
 */
#ifndef MW_ECS_EVENTS_H
#define MW_ECS_EVENTS_H

#include "moonwatch.h"
#include "discovery/ecs/ecs_task.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#define MW_ECS_EVENTS_TASKS 4096

typedef enum mw__ecs_event_kind {
    MW_ECS_EV_FAIL = 0,
    MW_ECS_EV_OOM,
    MW_ECS_EV_PENDING,
    MW_ECS_EV_TERMINATE,
} mw__ecs_event_kind;

/* The `ecs_event` tag's value of a kind ("fail", ...). */
const char *mw__ecs_event_name(mw__ecs_event_kind k);

typedef struct mw__ecs_event {
    mw__ecs_event_kind kind;
    const char *task_arn;
    const char *family;            /* "" when unknown */
    const mw__ecs_task *task;      /* the model's task when the event came from
                                    * one; NULL from a Docker exit */
    const char *container;         /* fail, oom: its name in the task definition */
    const char *docker_id;         /* fail, oom: "" when it never had one */
    int exit_code;                 /* fail, oom; -1: it never started */
    double pending_s;              /* pending: seconds since first seen pending */
    const char *const *containers; /* pending, terminate: the task's containers */
    size_t ncontainers;
} mw__ecs_event;

typedef void (*mw__ecs_event_fn)(void *ud, const mw__ecs_event *ev);

typedef struct mw__ecs_events mw__ecs_events;

/* A deriver calling `fn` (not NULL); `pending_timeout` in seconds (<= 0:
 * 300). NULL on OOM. */
mw__ecs_events *mw__ecs_events_new(double pending_timeout, mw__ecs_event_fn fn, void *ud);
void mw__ecs_events_free(mw__ecs_events *e);

/* A model lists task `t` (borrowed), at monotonic time `now` (ns): call
 * it for every task of every poll, changed or not, so that a pending
 * task's time is counted. */
void mw__ecs_events_task(mw__ecs_events *e, const mw__ecs_task *t, uint64_t now);
/* A model no longer lists task `arn`: it is forgotten (the other model,
 * if any, lists it again as a task first seen). */
void mw__ecs_events_gone(mw__ecs_events *e, const char *arn);

/* Docker saw a task container end. */
typedef struct mw__ecs_exit {
    const char *task_arn;  /* its com.amazonaws.ecs.task-arn (or the model's) */
    const char *family;    /* NULL when unknown */
    const char *container; /* its name in the task definition */
    const char *docker_id;
    int exit_code;
    int oom; /* killed by the OOM killer */
} mw__ecs_exit;
void mw__ecs_events_exit(mw__ecs_events *e, const mw__ecs_exit *x, uint64_t now);

/* Docker saw container `container` (Docker id `docker_id`) of task
 * `task_arn` start, or start again in place (a restart policy, the agent
 * restarting it: the same container): its next exit is news, even with
 * the code of the last one, and an exit a model still shows from before
 * this start is an old one until that model shows it RUNNING. Nothing is
 * kept for a task not remembered. */
void mw__ecs_events_start(mw__ecs_events *e, const char *task_arn, const char *container,
                          const char *docker_id, uint64_t now);

/* Tasks remembered now. */
size_t mw__ecs_events_tasks(const mw__ecs_events *e);

#endif
