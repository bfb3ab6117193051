/*
 * ecs_agent.c - the ECS agent introspection source: the poll cycle
 * (metadata when needed, then the task list), the diff of each answer
 * against the model, ?dockerid= lookups, outages and their backoff, and
 * ecs.agent.up (see ecs_agent.h for the contract).
 *
 * The model is two hash tables: tasks by ARN (`tent`, each owning its
 * mw__ecs_task and the digest of the JSON it was read from) and the
 * containers' Docker ids (`cent`, pointing into a task). Container ids
 * whose identity may have changed are collected while an answer is
 * applied and annotated once it is all in, so a callback always reads a
 * whole model.
 *
 * A poll only removes a task it does not list when the task was known
 * before that poll was asked: a task a lookup brought in while the poll
 * was in flight is kept until a later poll.
 *
 * Ownership: the source owns its tables, tasks, lookups and strings; the
 * loop, http and log are borrowed.
 */
#include "discovery/ecs/ecs_agent.h"

#include "core/base/util.h"
#include "discovery/ecs/ecs_report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHERE "ecs"

#define MS           1000000ULL
#define TASKS_MAX    ((size_t)64 << 20) /* a /v1/tasks answer */
#define TASK_MAX     ((size_t)4 << 20)  /* one task */
#define SMALL_MAX    ((size_t)1 << 20)  /* /v1/metadata */
#define ERRBODY_MAX  200                /* what an error body adds to a message */
#define NEG_MAX      1024               /* 404'd ids remembered until the next poll */
#define PROBLEMS_LOG 5                  /* malformed tasks named per change */

typedef enum phase {
    PH_IDLE = 0, /* waiting for the timer */
    PH_METADATA,
    PH_TASKS,
    PH_DONE, /* one_shot finished */
} phase;

typedef struct tent tent;
struct tent {
    tent *next;
    mw__ecs_task *t;
    uint64_t json;    /* digest of the JSON it was read from */
    uint64_t seen;    /* the poll that last listed it */
    uint64_t learned; /* brought by a lookup while polls up to this one
                       * had started (0: by a poll) */
};

typedef struct cent {
    struct cent *next;
    tent *task;
    size_t ci; /* its container in task->t */
} cent;

typedef struct look {
    struct look *next;
    mw__ecs_agent *a;
    mw__http_req *req;
    char cid[];
} look;

typedef struct neg {
    struct neg *next;
    char cid[];
} neg;

struct mw__ecs_agent {
    mw__loop *loop;
    mw__http *http;
    const mw__log *log;
    mw__source_cbs cbs;
    mw__ecs_events *events;
    char *url;
    double poll_interval, timeout, service_up_interval;
    uint64_t backoff_min, backoff_max, backoff, rng;
    size_t max_lookups;
    int one_shot;

    phase phase;
    mw__http_req *req; /* the metadata or tasks request in flight */
    mw__timer timer, up_timer;
    uint64_t cycle_start, down_since;
    int need_metadata, kick, synced;
    int up; /* -1 before the first answer */
    char *why;
    unsigned failures; /* in the current outage */
    char *cluster, *version;

    tent **tb;
    size_t ntb;
    cent **cb;
    size_t ncb;
    look *looks;
    size_t nlooks;
    neg *negs;
    size_t nnegs;
    char **changed;
    size_t nchanged, changed_cap;
    uint64_t polls_started, problems;

    mw__ecs_agent_stats stats;
};

static void cycle(mw__ecs_agent *a);

/* ------------------------------------------------------------- tables */

static size_t hash_of(const char *s, size_t nb)
{
    return (size_t)(mw__hash(MW_HASH_INIT, s, strlen(s)) & (nb - 1));
}

static tent *tent_find(const mw__ecs_agent *a, const char *arn)
{
    for (tent *e = a->tb[hash_of(arn, a->ntb)]; e; e = e->next)
        if (strcmp(e->t->arn, arn) == 0)
            return e;
    return NULL;
}

static const char *cent_id(const cent *c)
{
    return c->task->t->containers[c->ci].docker_id;
}

static cent *cent_find(const mw__ecs_agent *a, const char *cid)
{
    for (cent *c = a->cb[hash_of(cid, a->ncb)]; c; c = c->next)
        if (strcmp(cent_id(c), cid) == 0)
            return c;
    return NULL;
}

/* Doubles a table's buckets (a failed grow only makes chains longer). */
#define TABLE_GROW(type, b, nb, key)                                                               \
    do {                                                                                           \
        size_t n_ = (nb)*2;                                                                        \
        type **g_ = calloc(n_, sizeof *g_);                                                        \
        if (!g_)                                                                                   \
            break;                                                                                 \
        for (size_t i_ = 0; i_ < (nb); i_++)                                                       \
            for (type *e_ = (b)[i_], *x_; e_; e_ = x_) {                                           \
                size_t k_ = hash_of(key(e_), n_);                                                  \
                x_ = e_->next;                                                                     \
                e_->next = g_[k_];                                                                 \
                g_[k_] = e_;                                                                       \
            }                                                                                      \
        free(b);                                                                                   \
        (b) = g_;                                                                                  \
        (nb) = n_;                                                                                 \
    } while (0)

#define TENT_KEY(e) ((e)->t->arn)

/* Indexes the containers of `e` that have an id; 0, or -1 on OOM. */
static int index_add(mw__ecs_agent *a, tent *e)
{
    for (size_t i = 0; i < e->t->ncontainers; i++) {
        const char *id = e->t->containers[i].docker_id;
        cent *c;
        if (!id[0])
            continue;
        if (a->stats.containers >= a->ncb)
            TABLE_GROW(cent, a->cb, a->ncb, cent_id);
        if (!(c = malloc(sizeof *c)))
            return -1;
        *c = (cent){a->cb[hash_of(id, a->ncb)], e, i};
        a->cb[hash_of(id, a->ncb)] = c;
        a->stats.containers++;
    }
    return 0;
}

static void index_remove(mw__ecs_agent *a, const tent *e)
{
    for (size_t i = 0; i < e->t->ncontainers; i++) {
        const char *id = e->t->containers[i].docker_id;
        cent **pp;
        if (!id[0])
            continue;
        for (pp = &a->cb[hash_of(id, a->ncb)]; *pp; pp = &(*pp)->next)
            if ((*pp)->task == e && (*pp)->ci == i) {
                cent *c = *pp;
                *pp = c->next;
                free(c);
                a->stats.containers--;
                break;
            }
    }
}

/* ------------------------------------------------------------- changes */

/* Remembers `cid` for the annotations after the answer. */
static void note(mw__ecs_agent *a, const char *cid)
{
    char *c;
    if (!cid[0] || mw__grow(&a->changed, &a->changed_cap, a->nchanged + 1, sizeof *a->changed))
        return;
    if ((c = mw__strdup(cid)))
        a->changed[a->nchanged++] = c;
}

static void note_task(mw__ecs_agent *a, const mw__ecs_task *t)
{
    for (size_t i = 0; i < t->ncontainers; i++)
        note(a, t->containers[i].docker_id);
}

static int str_cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Annotates each noted id once. */
static void announce(mw__ecs_agent *a)
{
    size_t n = a->nchanged;
    char **v = a->changed;

    a->changed = NULL;
    a->nchanged = a->changed_cap = 0;
    if (n > 1)
        qsort(v, n, sizeof *v, str_cmp);
    for (size_t i = 0; i < n; i++) {
        if ((i == 0 || strcmp(v[i - 1], v[i]) != 0) && a->cbs.annotate) {
            a->stats.annotated++;
            a->cbs.annotate(a->cbs.ud, v[i]);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ------------------------------------------------------------- the model */

static void tent_drop(mw__ecs_agent *a, tent **pp)
{
    tent *e = *pp;
    note_task(a, e->t);
    index_remove(a, e);
    *pp = e->next;
    a->stats.tasks--;
    mw__ecs_task_free(e->t);
    free(e);
}

/* Takes `t` into the model (replacing the task of its ARN); noted. */
static tent *task_put(mw__ecs_agent *a, mw__ecs_task *t, uint64_t json)
{
    tent *e = tent_find(a, t->arn);

    if (e) {
        note_task(a, e->t);
        index_remove(a, e);
        mw__ecs_task_free(e->t);
    } else {
        if (a->stats.tasks >= a->ntb)
            TABLE_GROW(tent, a->tb, a->ntb, TENT_KEY);
        if (!(e = calloc(1, sizeof *e))) {
            mw__ecs_task_free(t);
            return NULL;
        }
        e->next = a->tb[hash_of(t->arn, a->ntb)];
        a->tb[hash_of(t->arn, a->ntb)] = e;
        a->stats.tasks++;
    }
    e->t = t;
    e->json = json;
    e->learned = 0;
    note_task(a, t);
    if (index_add(a, e) != 0)
        mw__warn(a->log, WHERE, "out of memory indexing task %s", t->arn);
    return e;
}

static void negs_clear(mw__ecs_agent *a)
{
    for (neg *n = a->negs, *x; n; n = x) {
        x = n->next;
        free(n);
    }
    a->negs = NULL;
    a->nnegs = 0;
}

static int neg_has(const mw__ecs_agent *a, const char *cid)
{
    for (const neg *n = a->negs; n; n = n->next)
        if (strcmp(n->cid, cid) == 0)
            return 1;
    return 0;
}

static void neg_add(mw__ecs_agent *a, const char *cid)
{
    size_t len = strlen(cid);
    neg *n;
    if (a->nnegs >= NEG_MAX)
        negs_clear(a);
    if (!(n = malloc(sizeof *n + len + 1)))
        return;
    memcpy(n->cid, cid, len + 1);
    n->next = a->negs;
    a->negs = n;
    a->nnegs++;
}

/* ------------------------------------------------------------- records */

static void report_up(mw__ecs_agent *a)
{
    if (a->cbs.record && !a->one_shot && a->up >= 0)
        mw__ecs_report_agent_up(&a->cbs, a->log, MW_ECS_AGENT_UP, a->up == 1, a->why);
}

static void up_timer_cb(mw__timer *t)
{
    mw__ecs_agent *a = t->ud;
    report_up(a);
    mw__timer_start(a->loop, &a->up_timer,
                    mw__loop_now(a->loop) + (uint64_t)(a->service_up_interval * 1e9));
}

static void set_up(mw__ecs_agent *a, int up)
{
    if (a->up == up)
        return;
    a->up = up;
    report_up(a);
    if (a->cbs.connected)
        a->cbs.connected(a->cbs.ud, up, up ? NULL : a->why);
}

/* ------------------------------------------------------------- requests */

static mw__http_req *get(mw__ecs_agent *a, const char *path, size_t max,
                         void (*done)(void *, const mw__http_result *), void *ud, char **err)
{
    mw__http_opts o = {0};
    char *url = mw__sprintf("%s%s", a->url, path);
    mw__http_req *r;

    *err = NULL;
    if (!url) {
        *err = mw__strdup("out of memory");
        return NULL;
    }
    o.url = url;
    o.timeout = a->timeout;
    o.connect_timeout = a->timeout;
    o.max_body = max;
    o.deny_link_local = 1; /* the agent is on the host, never link-local */
    o.direct = 1;          /* ... and no proxy can reach it */
    o.done = done;
    o.ud = ud;
    r = mw__http_start(a->http, &o, err);
    free(url);
    return r;
}

/* Why a request failed, or NULL for a 200 (caller frees). */
static char *result_error(const char *what, const mw__http_result *r)
{
    return mw__http_result_error(what, r, ERRBODY_MAX);
}

/* ------------------------------------------------------------- the cycle */

static uint64_t backoff_next(mw__ecs_agent *a)
{
    uint64_t base = a->backoff;
    double jitter;

    a->rng ^= a->rng << 13;
    a->rng ^= a->rng >> 7;
    a->rng ^= a->rng << 17;
    jitter = 0.8 + 0.4 * (double)(a->rng >> 11) / (double)(1ULL << 53);
    a->backoff = base * 2 > a->backoff_max ? a->backoff_max : base * 2;
    return (uint64_t)((double)base * jitter);
}

static void one_shot_done(mw__ecs_agent *a)
{
    a->phase = PH_DONE;
    if (a->cbs.synced)
        a->cbs.synced(a->cbs.ud);
}

/* The cycle failed: keep the model, start or go on with an outage. */
static void fail(mw__ecs_agent *a, char *why)
{
    uint64_t delay, now = mw__loop_now(a->loop);

    a->req = NULL;
    a->stats.failures++;
    a->failures++;
    free(a->why);
    a->why = why ? why : mw__strdup("out of memory");
    a->need_metadata = 1;
    if (a->one_shot) {
        mw__error(a->log, WHERE, "cannot read the tasks of the ECS agent at %s: %s", a->url,
                  a->why ? a->why : "?");
        set_up(a, 0);
        one_shot_done(a);
        return;
    }
    a->phase = PH_IDLE;
    delay = backoff_next(a);
    if (a->up != 0) {
        a->down_since = now;
        a->stats.outages++;
        mw__warn(a->log, WHERE,
                 "ECS agent at %s: %s; task identities come from the containers' labels "
                 "meanwhile; retrying in %.1f s",
                 a->url, a->why ? a->why : "?", (double)delay / 1e9);
    } else {
        mw__debug(a->log, WHERE,
                  "ECS agent at %s: still failing (%u attempts): %s; retrying in "
                  "%.1f s",
                  a->url, a->failures, a->why ? a->why : "?", (double)delay / 1e9);
    }
    mw__timer_start(a->loop, &a->timer, now + delay);
    set_up(a, 0);
}

/* The cycle answered: the outage (if any) is over, the next poll due. */
static void succeed(mw__ecs_agent *a)
{
    uint64_t now = mw__loop_now(a->loop), due;

    a->req = NULL;
    a->backoff = a->backoff_min;
    if (a->up == 0)
        mw__info(a->log, WHERE, "ECS agent at %s answers again after %.1f s (%u failed attempts)",
                 a->url, (double)(now - a->down_since) / 1e9, a->failures);
    else if (a->up < 0)
        mw__info(a->log, WHERE, "ECS agent at %s: cluster %s, %s; %zu tasks, %zu containers",
                 a->url, a->cluster ? a->cluster : "?", a->version ? a->version : "?",
                 a->stats.tasks, a->stats.containers);
    a->failures = 0;
    free(a->why);
    a->why = NULL;
    set_up(a, 1);
    if (!a->synced) {
        a->synced = 1;
        if (!a->one_shot && a->cbs.synced)
            a->cbs.synced(a->cbs.ud);
    }
    if (a->one_shot) {
        one_shot_done(a);
        return;
    }
    a->phase = PH_IDLE;
    due = a->cycle_start + (uint64_t)(a->poll_interval * 1e9);
    mw__timer_start(a->loop, &a->timer, a->kick || due < now ? now : due);
    a->kick = 0;
}

/* Logs the malformed tasks of an answer when they differ from the last
 * answer's: a broken task costs one warning, not one per poll. */
static void log_problems(mw__ecs_agent *a, char **msgs, size_t n)
{
    uint64_t h = MW_HASH_INIT;
    for (size_t i = 0; i < n; i++)
        h = mw__hash(h, msgs[i], strlen(msgs[i]) + 1);
    if (n && h != a->problems)
        for (size_t i = 0; i < n && i < PROBLEMS_LOG; i++)
            mw__warn(a->log, WHERE, "GET /v1/tasks: task skipped: %s%s", msgs[i],
                     i + 1 == PROBLEMS_LOG && n > PROBLEMS_LOG ? " (and more)" : "");
    a->problems = n ? h : 0;
}

/* One item of the task list: skipped when its JSON did not change. */
static void apply_item(mw__ecs_agent *a, const cJSON *item, size_t i, uint64_t gen, char **problem)
{
    const cJSON *arn = cJSON_GetObjectItemCaseSensitive(item, "Arn");
    uint64_t json = mw__ecs_json_digest(item);
    tent *e = cJSON_IsString(arn) ? tent_find(a, arn->valuestring) : NULL;
    mw__ecs_task *t = NULL;
    char path[32];

    if (e && e->json == json) {
        e->seen = gen;
        a->stats.tasks_skipped++;
        return;
    }
    snprintf(path, sizeof path, "Tasks[%zu]", i);
    if (mw__ecs_task_read(item, MW_ECS_V1, path, &t, problem) != MW_OK) {
        a->stats.bad_tasks++;
        if (e)
            e->seen = gen; /* keep what it was */
        return;
    }
    a->stats.tasks_read++;
    if ((e = task_put(a, t, json)))
        e->seen = gen;
}

/* Applies a whole task list asked at poll `gen`. */
static void apply_tasks(mw__ecs_agent *a, const cJSON *tasks, uint64_t gen)
{
    const cJSON *item;
    char **msgs = NULL;
    size_t nmsgs = 0, cap = 0, i = 0;

    cJSON_ArrayForEach(item, tasks)
    {
        char *problem = NULL;
        apply_item(a, item, i++, gen, &problem);
        if (problem && mw__grow(&msgs, &cap, nmsgs + 1, sizeof *msgs) == MW_OK)
            msgs[nmsgs++] = problem;
        else
            free(problem);
    }
    for (size_t b = 0; b < a->ntb; b++)
        for (tent **pp = &a->tb[b]; *pp;) {
            if ((*pp)->seen != gen && (*pp)->learned < gen) {
                if (a->events)
                    mw__ecs_events_gone(a->events, (*pp)->t->arn);
                tent_drop(a, pp);
            } else {
                pp = &(*pp)->next;
            }
        }
    for (size_t b = 0; a->events && b < a->ntb; b++)
        for (tent *e = a->tb[b]; e; e = e->next)
            mw__ecs_events_task(a->events, e->t, mw__loop_now(a->loop));
    log_problems(a, msgs, nmsgs);
    for (size_t k = 0; k < nmsgs; k++)
        free(msgs[k]);
    free(msgs);
    negs_clear(a);
    a->stats.polls++;
}

static void on_tasks(void *ud, const mw__http_result *r)
{
    mw__ecs_agent *a = ud;
    char *why = result_error("GET /v1/tasks", r), *perr = NULL;
    cJSON *root;
    const cJSON *tasks = NULL;

    a->req = NULL;
    if (why) {
        fail(a, why);
        return;
    }
    root = cJSON_ParseWithLength(r->body, r->len);
    if (!root || mw__ecs_tasks_array(root, &tasks, &perr) != MW_OK) {
        fail(a, mw__sprintf("GET /v1/tasks: malformed answer: %s", root ? perr : "not JSON"));
        free(perr);
        cJSON_Delete(root);
        return;
    }
    apply_tasks(a, tasks, a->polls_started);
    cJSON_Delete(root);
    announce(a); /* before `synced`: a one-shot reader sees them applied */
    succeed(a);
}

static void start_tasks(mw__ecs_agent *a)
{
    char *err = NULL;

    a->phase = PH_TASKS;
    a->polls_started++;
    a->req = get(a, "/v1/tasks", TASKS_MAX, on_tasks, a, &err);
    if (!a->req)
        fail(a, mw__sprintf("GET /v1/tasks: %s", err ? err : "out of memory"));
    free(err);
}

/* Keeps the metadata; says so when the agent is another one now. */
static void take_metadata(mw__ecs_agent *a, mw__ecs_metadata *m)
{
    if (a->version && strcmp(a->version, m->version) != 0)
        mw__info(a->log, WHERE, "ECS agent at %s is now %s (was %s)", a->url, m->version,
                 a->version);
    free(a->cluster);
    free(a->version);
    a->cluster = m->cluster;
    a->version = m->version;
    free(m->instance_arn);
    memset(m, 0, sizeof *m);
}

static void on_metadata(void *ud, const mw__http_result *r)
{
    mw__ecs_agent *a = ud;
    char *why = result_error("GET /v1/metadata", r), *perr = NULL;
    mw__ecs_metadata m;

    a->req = NULL;
    if (why) {
        fail(a, why);
        return;
    }
    if (mw__ecs_metadata_parse(r->body, r->len, &m, &perr) != MW_OK) {
        fail(a, mw__sprintf("GET /v1/metadata: malformed answer: %s", perr ? perr : "?"));
        free(perr);
        return;
    }
    take_metadata(a, &m);
    a->need_metadata = 0;
    a->stats.metadata++;
    start_tasks(a);
}

static void start_metadata(mw__ecs_agent *a)
{
    char *err = NULL;

    a->phase = PH_METADATA;
    a->req = get(a, "/v1/metadata", SMALL_MAX, on_metadata, a, &err);
    if (!a->req)
        fail(a, mw__sprintf("GET /v1/metadata: %s", err ? err : "out of memory"));
    free(err);
}

static void cycle(mw__ecs_agent *a)
{
    a->cycle_start = mw__loop_now(a->loop);
    if (a->need_metadata)
        start_metadata(a);
    else
        start_tasks(a);
}

static void timer_cb(mw__timer *t)
{
    mw__ecs_agent *a = t->ud;
    if (a->phase == PH_IDLE)
        cycle(a);
}

/* ------------------------------------------------------------- lookups */

static void look_unlink(mw__ecs_agent *a, look *l)
{
    look **pp = &a->looks;
    while (*pp != l)
        pp = &(*pp)->next;
    *pp = l->next;
    a->nlooks--;
}

/* A 200 answer of a lookup: the task, unless a poll brought it since. */
static void lookup_found(mw__ecs_agent *a, const look *l, const mw__http_result *r)
{
    cJSON *root = cJSON_ParseWithLength(r->body, r->len);
    mw__ecs_task *t = NULL;
    char *err = NULL;
    tent *e;

    if (!root || mw__ecs_task_read(root, MW_ECS_V1, "", &t, &err) != MW_OK) {
        mw__debug(a->log, WHERE, "GET /v1/tasks?dockerid=%.12s: %s", l->cid,
                  root ? (err ? err : "out of memory") : "not JSON");
    } else if (!mw__ecs_task_container(t, l->cid)) {
        mw__debug(a->log, WHERE, "GET /v1/tasks?dockerid=%.12s: task %s does not list it", l->cid,
                  t->arn);
    } else if (!cent_find(a, l->cid)) {
        a->stats.lookups_found++;
        if ((e = task_put(a, t, mw__ecs_json_digest(root))))
            e->learned = a->polls_started;
        t = NULL;
    }
    mw__ecs_task_free(t);
    free(err);
    cJSON_Delete(root);
}

static void on_lookup(void *ud, const mw__http_result *r)
{
    look *l = ud;
    mw__ecs_agent *a = l->a;

    look_unlink(a, l);
    if (r->code == MW_OK && r->status == 404) {
        a->stats.lookups_404++;
        neg_add(a, l->cid);
    } else if (r->code == MW_OK && r->status == 200) {
        lookup_found(a, l, r);
    } else {
        char *why = result_error("GET /v1/tasks?dockerid=", r);
        mw__debug(a->log, WHERE, "container %.12s: %s", l->cid, why ? why : "out of memory");
        free(why);
    }
    free(l);
    announce(a);
}

static int lookup_wanted(const mw__ecs_agent *a, const char *cid)
{
    /* before the first poll answered, that poll covers every container */
    if (a->one_shot || !a->synced || a->up == 0 || a->nlooks >= a->max_lookups ||
        !mw__ecs_id_valid(cid) || cent_find(a, cid) || neg_has(a, cid))
        return 0;
    for (const look *l = a->looks; l; l = l->next)
        if (strcmp(l->cid, cid) == 0)
            return 0;
    return 1;
}

void mw__ecs_agent_lookup(mw__ecs_agent *a, const char *cid)
{
    size_t len = strlen(cid);
    char *path, *err = NULL;
    look *l;

    if (!lookup_wanted(a, cid)) {
        a->stats.lookups_skipped++;
        return;
    }
    if (!(l = calloc(1, sizeof *l + len + 1)))
        return;
    memcpy(l->cid, cid, len + 1);
    l->a = a;
    path = mw__sprintf("/v1/tasks?dockerid=%s", cid);
    l->req = path ? get(a, path, TASK_MAX, on_lookup, l, &err) : NULL;
    free(path);
    if (!l->req) {
        mw__debug(a->log, WHERE, "GET /v1/tasks?dockerid=%.12s: %s", cid,
                  err ? err : "out of memory");
        free(err);
        free(l);
        return;
    }
    l->next = a->looks;
    a->looks = l;
    a->nlooks++;
    a->stats.lookups++;
}

void mw__ecs_agent_restarted(mw__ecs_agent *a)
{
    if (a->one_shot || a->phase == PH_DONE)
        return;
    a->need_metadata = 1;
    if (a->phase == PH_IDLE)
        mw__timer_start(a->loop, &a->timer, mw__loop_now(a->loop));
    else
        a->kick = 1;
}

/* ------------------------------------------------------------- public */

const mw__ecs_task *mw__ecs_agent_task_of(const mw__ecs_agent *a, const char *cid,
                                          const mw__ecs_container **ctr)
{
    const cent *c = a && cid ? cent_find(a, cid) : NULL;

    if (ctr)
        *ctr = c ? &c->task->t->containers[c->ci] : NULL;
    return c ? c->task->t : NULL;
}

const mw__ecs_task *mw__ecs_agent_task(const mw__ecs_agent *a, const char *arn)
{
    const tent *e = a && arn ? tent_find(a, arn) : NULL;

    return e ? e->t : NULL;
}

const char *mw__ecs_agent_cluster(const mw__ecs_agent *a)
{
    return a ? a->cluster : NULL;
}

void mw__ecs_agent_stats_get(const mw__ecs_agent *a, mw__ecs_agent_stats *out)
{
    *out = a->stats;
    out->up = a->up;
}

static mw_code copy_opts(mw__ecs_agent *a, const mw__ecs_agent_opts *o, char **err)
{
    const char *url = o->url && *o->url ? o->url : MW_ECS_AGENT_DEFAULT;
    size_t n = strlen(url);

    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        if (err)
            *err = mw__sprintf("ECS agent URL \"%s\": expected http://host:port", url);
        return MW_EINVAL;
    }
    while (n > 0 && url[n - 1] == '/')
        n--;
    if (!(a->url = mw__strndup(url, n)))
        return MW_ENOMEM;
    a->loop = o->loop;
    a->http = o->http;
    a->log = o->log;
    a->cbs = o->cbs;
    a->events = o->one_shot ? NULL : o->events;
    a->one_shot = o->one_shot;
    a->poll_interval = o->poll_interval > 0 ? o->poll_interval : 5;
    a->timeout = o->request_timeout > 0 ? o->request_timeout : 5;
    a->service_up_interval = o->service_up_interval > 0 ? o->service_up_interval : 15;
    a->backoff_min = (uint64_t)((o->backoff_min > 0 ? o->backoff_min : 0.5) * 1e9);
    a->backoff_max = (uint64_t)((o->backoff_max > 0 ? o->backoff_max : 10) * 1e9);
    if (a->backoff_max < a->backoff_min)
        a->backoff_max = a->backoff_min;
    a->backoff = a->backoff_min;
    a->max_lookups = o->max_lookups ? o->max_lookups : 16;
    return MW_OK;
}

mw_code mw__ecs_agent_new(const mw__ecs_agent_opts *o, mw__ecs_agent **out, char **err)
{
    mw__ecs_agent *a = calloc(1, sizeof *a);
    mw_code rc = MW_ENOMEM;

    *out = NULL;
    if (err)
        *err = NULL;
    if (!a)
        goto out;
    a->ntb = a->ncb = 64;
    a->tb = calloc(a->ntb, sizeof *a->tb);
    a->cb = calloc(a->ncb, sizeof *a->cb);
    a->up = -1;
    a->need_metadata = 1;
    a->rng = (mw__mono_ns() ^ (uint64_t)(uintptr_t)a) | 1;
    mw__timer_init(&a->timer, timer_cb, a);
    mw__timer_init(&a->up_timer, up_timer_cb, a);
    if (!a->tb || !a->cb || (rc = copy_opts(a, o, err)) != MW_OK)
        goto out;
    mw__timer_start(a->loop, &a->timer, mw__loop_now(a->loop));
    if (!a->one_shot)
        mw__timer_start(a->loop, &a->up_timer,
                        mw__loop_now(a->loop) + (uint64_t)(a->service_up_interval * 1e9));
    *out = a;
    a = NULL;
    rc = MW_OK;
out:
    if (rc == MW_ENOMEM && err && !*err)
        *err = mw__strdup("out of memory");
    mw__ecs_agent_free(a);
    return rc;
}

void mw__ecs_agent_free(mw__ecs_agent *a)
{
    if (!a)
        return;
    if (a->loop) {
        mw__timer_stop(a->loop, &a->timer);
        mw__timer_stop(a->loop, &a->up_timer);
    }
    if (a->req)
        mw__http_cancel(a->req);
    for (look *l = a->looks, *x; l; l = x) {
        x = l->next;
        mw__http_cancel(l->req);
        free(l);
    }
    for (size_t b = 0; a->tb && b < a->ntb; b++)
        while (a->tb[b])
            tent_drop(a, &a->tb[b]);
    for (size_t i = 0; i < a->nchanged; i++)
        free(a->changed[i]);
    free(a->changed);
    negs_clear(a);
    free(a->tb);
    free(a->cb);
    free(a->why);
    free(a->cluster);
    free(a->version);
    free(a->url);
    free(a);
}
