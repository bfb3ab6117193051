/*
 * ecs_events.c - the ECS task event state machine (see ecs_events.h).
 *
 * One state per task ARN in a hash table; each holds its containers by
 * name (the NORMAL ones the models list, and those Docker said ended):
 * whether each ran, and its exit since it last ran. A container's exit is
 * said when it is first seen; a task's stop is decided once every
 * container's end is known, and said at most once.
 *
 * Ownership: the deriver owns its tables, states and their strings.
 */
#include "discovery/ecs/ecs_events.h"

#include "core/base/util.h"

#include <stdlib.h>
#include <string.h>

#define BUCKETS0 64

typedef struct cst {
    char *name, *docker_id;
    int ran;    /* had a Docker id, or was seen RUNNING */
    int exited; /* an exit was seen since it last ran */
    int exit_code;
    int restarted; /* Docker started it again after an exit, and no model
                    * showed it RUNNING since: a model's exit is the old one */
} cst;

typedef struct tst tst;
struct tst {
    tst *next;
    char *arn, *family;
    uint64_t pending_since; /* 0: not pending */
    uint64_t touched;
    int pending_sent, stopped, done, listed;
    cst *c;
    size_t nc, cap;
};

struct mw__ecs_events {
    mw__ecs_event_fn fn;
    void *ud;
    uint64_t timeout_ns;
    tst **tb;
    size_t nb, n;
};

static const char *const kind_names[] = {
    [MW_ECS_EV_FAIL] = "fail",
    [MW_ECS_EV_OOM] = "oom",
    [MW_ECS_EV_PENDING] = "pending",
    [MW_ECS_EV_TERMINATE] = "terminate",
};

const char *mw__ecs_event_name(mw__ecs_event_kind k)
{
    return (size_t)k < MW_ARRAY_LEN(kind_names) ? kind_names[k] : "?";
}

/* ------------------------------------------------------------- states */

static size_t slot(const mw__ecs_events *e, const char *arn)
{
    return (size_t)(mw__hash(MW_HASH_INIT, arn, strlen(arn)) & (e->nb - 1));
}

static tst *find(const mw__ecs_events *e, const char *arn)
{
    for (tst *t = e->tb[slot(e, arn)]; t; t = t->next)
        if (strcmp(t->arn, arn) == 0)
            return t;
    return NULL;
}

static void tst_free(tst *t)
{
    for (size_t i = 0; i < t->nc; i++) {
        free(t->c[i].name);
        free(t->c[i].docker_id);
    }
    free(t->c);
    free(t->arn);
    free(t->family);
    free(t);
}

static void unlink_free(mw__ecs_events *e, tst *t)
{
    tst **pp = &e->tb[slot(e, t->arn)];

    while (*pp != t)
        pp = &(*pp)->next;
    *pp = t->next;
    e->n--;
    tst_free(t);
}

/* Forgets the state touched longest ago, an unlisted one first. */
static void evict(mw__ecs_events *e)
{
    tst *old = NULL;

    for (size_t b = 0; b < e->nb; b++)
        for (tst *t = e->tb[b]; t; t = t->next)
            if (!old || (old->listed && !t->listed) ||
                (old->listed == t->listed && t->touched < old->touched))
                old = t;
    if (old)
        unlink_free(e, old);
}

static void grow(mw__ecs_events *e)
{
    size_t nb = e->nb * 2;
    tst **tb = calloc(nb, sizeof *tb);

    if (!tb)
        return; /* longer chains */
    for (size_t b = 0; b < e->nb; b++)
        for (tst *t = e->tb[b], *x; t; t = x) {
            size_t k = (size_t)(mw__hash(MW_HASH_INIT, t->arn, strlen(t->arn)) & (nb - 1));
            x = t->next;
            t->next = tb[k];
            tb[k] = t;
        }
    free(e->tb);
    e->tb = tb;
    e->nb = nb;
}

/* The state of `arn`, made when absent (`*fresh` 1 then); NULL on OOM. */
static tst *get(mw__ecs_events *e, const char *arn, const char *family, int *fresh)
{
    tst *t = find(e, arn);

    *fresh = 0;
    if (t) {
        if (family && *family && (!t->family[0] || strcmp(t->family, family))) {
            char *f = mw__strdup(family);
            if (f) {
                free(t->family);
                t->family = f;
            }
        }
        return t;
    }
    if (e->n >= MW_ECS_EVENTS_TASKS)
        evict(e);
    if (e->n >= e->nb)
        grow(e);
    if (!(t = calloc(1, sizeof *t)))
        return NULL;
    t->arn = mw__strdup(arn);
    t->family = mw__strdup(family ? family : "");
    if (!t->arn || !t->family) {
        tst_free(t);
        return NULL;
    }
    t->next = e->tb[slot(e, arn)];
    e->tb[slot(e, arn)] = t;
    e->n++;
    *fresh = 1;
    return t;
}

/* Container `name` of `t`, made when absent; NULL on OOM. */
static cst *ctr(tst *t, const char *name)
{
    cst *c;

    for (size_t i = 0; i < t->nc; i++)
        if (strcmp(t->c[i].name, name) == 0)
            return &t->c[i];
    if (mw__grow(&t->c, &t->cap, t->nc + 1, sizeof *t->c) != MW_OK)
        return NULL;
    c = &t->c[t->nc];
    memset(c, 0, sizeof *c);
    if (!(c->name = mw__strdup(name)) || !(c->docker_id = mw__strdup(""))) {
        free(c->name);
        return NULL;
    }
    t->nc++;
    return c;
}

static void set_docker_id(cst *c, const char *id)
{
    char *d;

    if (!id || !*id || strcmp(c->docker_id, id) == 0 || !(d = mw__strdup(id)))
        return;
    free(c->docker_id);
    c->docker_id = d;
}

/* ------------------------------------------------------------- saying */

static void say_ctr(mw__ecs_events *e, const tst *t, const mw__ecs_task *task, const cst *c,
                    mw__ecs_event_kind kind)
{
    mw__ecs_event ev = {
        .kind = kind,
        .task_arn = t->arn,
        .family = t->family,
        .task = task,
        .container = c->name,
        .docker_id = c->docker_id,
        .exit_code = c->exited ? c->exit_code : -1,
    };
    e->fn(e->ud, &ev);
}

static void say_task(mw__ecs_events *e, const tst *t, const mw__ecs_task *task,
                     mw__ecs_event_kind kind, double pending_s)
{
    const char **names = calloc(t->nc ? t->nc : 1, sizeof *names);
    mw__ecs_event ev = {
        .kind = kind,
        .task_arn = t->arn,
        .family = t->family,
        .task = task,
        .exit_code = -1,
        .pending_s = pending_s,
        .containers = names,
        .ncontainers = names ? t->nc : 0,
    };

    for (size_t i = 0; names && i < t->nc; i++)
        names[i] = t->c[i].name;
    e->fn(e->ud, &ev);
    free(names);
}

/* An exit of `c`, said unless it is history (`quiet`). */
static void exited(mw__ecs_events *e, const tst *t, const mw__ecs_task *task, cst *c, int code,
                   int oom, int quiet)
{
    c->exited = 1;
    c->exit_code = code;
    if (quiet || (!oom && code == 0))
        return;
    say_ctr(e, t, task, c, oom ? MW_ECS_EV_OOM : MW_ECS_EV_FAIL);
}

/* A stopped task: once every container's end is known, a container that
 * never started is a failure, and all of them exited 0 a terminate. */
static void decide(mw__ecs_events *e, tst *t, const mw__ecs_task *task)
{
    size_t ended = 0;
    int failed = 0;

    if (!t->stopped || t->done)
        return;
    for (size_t i = 0; i < t->nc; i++)
        if (!t->c[i].exited && t->c[i].ran)
            return; /* its exit is still to come */
    t->done = 1;
    for (size_t i = 0; i < t->nc; i++) {
        cst *c = &t->c[i];
        if (!c->exited) {
            say_ctr(e, t, task, c, MW_ECS_EV_FAIL); /* never started */
            failed = 1;
        } else {
            ended++;
            failed |= c->exit_code != 0;
        }
    }
    if (!failed && ended > 0)
        say_task(e, t, task, MW_ECS_EV_TERMINATE, 0);
}

/* ------------------------------------------------------------- models */

static int is_pending(const char *status)
{
    static const char *const pending[] = {"PROVISIONING", "PENDING",         "ACTIVATING", "NONE",
                                          "PULLED",       "MANIFEST_PULLED", "CREATED"};

    for (size_t i = 0; status && i < MW_ARRAY_LEN(pending); i++)
        if (strcmp(status, pending[i]) == 0)
            return 1;
    return 0;
}

static void model_container(mw__ecs_events *e, tst *t, const mw__ecs_task *task,
                            const mw__ecs_container *mc, int quiet)
{
    cst *c = ctr(t, mc->name);

    if (!c)
        return;
    set_docker_id(c, mc->docker_id);
    if (mc->known_status && strcmp(mc->known_status, "RUNNING") == 0) {
        c->exited = 0; /* (again) running: its next exit is news */
        c->ran = 1;
        c->restarted = 0;
        return;
    }
    if (mc->docker_id[0])
        c->ran = 1;
    if (mc->has_exit_code && !c->exited && !c->restarted) {
        c->ran = 1;
        exited(e, t, task, c, mc->exit_code, 0, quiet);
    }
}

static void pending(mw__ecs_events *e, tst *t, const mw__ecs_task *task, uint64_t now)
{
    if (!is_pending(task->known_status)) {
        t->pending_since = 0;
        return;
    }
    if (!t->pending_since)
        t->pending_since = now ? now : 1;
    if (!t->pending_sent && now - t->pending_since >= e->timeout_ns) {
        t->pending_sent = 1;
        say_task(e, t, task, MW_ECS_EV_PENDING, (double)(now - t->pending_since) / 1e9);
    }
}

void mw__ecs_events_task(mw__ecs_events *e, const mw__ecs_task *task, uint64_t now)
{
    int fresh, stopped = task->known_status && strcmp(task->known_status, "STOPPED") == 0;
    tst *t = get(e, task->arn, task->family, &fresh);

    if (!t)
        return;
    t->listed = 1;
    t->touched = now;
    for (size_t i = 0; i < task->ncontainers; i++)
        if (strcmp(task->containers[i].type, "NORMAL") == 0)
            model_container(e, t, task, &task->containers[i], fresh);
    if (fresh && stopped)
        t->done = 1; /* stopped before it was watched: history */
    pending(e, t, task, now);
    t->stopped = stopped;
    decide(e, t, task);
}

void mw__ecs_events_gone(mw__ecs_events *e, const char *arn)
{
    tst *t = find(e, arn);

    if (t)
        unlink_free(e, t);
}

/* ------------------------------------------------------------- Docker */

void mw__ecs_events_exit(mw__ecs_events *e, const mw__ecs_exit *x, uint64_t now)
{
    int fresh;
    tst *t;
    cst *c;

    if (!x->task_arn || !*x->task_arn || !x->container || !*x->container)
        return;
    if (!(t = get(e, x->task_arn, x->family, &fresh)) || !(c = ctr(t, x->container)))
        return;
    t->touched = now;
    set_docker_id(c, x->docker_id);
    c->ran = 1;
    /* a model may have said this very exit already (EC2 with the task
     * metadata too): one event for it, even if Docker knows it was an OOM */
    if (!c->exited || c->exit_code != x->exit_code)
        exited(e, t, NULL, c, x->exit_code, x->oom, 0);
    decide(e, t, NULL);
}

void mw__ecs_events_start(mw__ecs_events *e, const char *task_arn, const char *container,
                          const char *docker_id, uint64_t now)
{
    tst *t;
    cst *c;

    if (!task_arn || !container || !*container || !(t = find(e, task_arn)) ||
        !(c = ctr(t, container)))
        return;
    t->touched = now;
    set_docker_id(c, docker_id);
    c->ran = 1;
    if (c->exited)
        c->restarted = 1;
    c->exited = 0;
}

/* ------------------------------------------------------------- lifecycle */

mw__ecs_events *mw__ecs_events_new(double pending_timeout, mw__ecs_event_fn fn, void *ud)
{
    mw__ecs_events *e = calloc(1, sizeof *e);

    if (!e)
        return NULL;
    e->fn = fn;
    e->ud = ud;
    e->timeout_ns = (uint64_t)((pending_timeout > 0 ? pending_timeout : 300) * 1e9);
    e->nb = BUCKETS0;
    if (!(e->tb = calloc(e->nb, sizeof *e->tb))) {
        free(e);
        return NULL;
    }
    return e;
}

void mw__ecs_events_free(mw__ecs_events *e)
{
    if (!e)
        return;
    for (size_t b = 0; b < e->nb; b++)
        for (tst *t = e->tb[b], *x; t; t = x) {
            x = t->next;
            tst_free(t);
        }
    free(e->tb);
    free(e);
}

size_t mw__ecs_events_tasks(const mw__ecs_events *e)
{
    return e->n;
}
