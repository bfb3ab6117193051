/*
 * ecs_meta.c - the ECS task metadata source: the poll cycle (its own
 * container once, then the task), the task held and the services made
 * from it, outages and their backoff (see ecs_meta.h for the contract).
 *
 * The task held is replaced only by a good answer whose digest differs;
 * the services (a small array: a task has a few containers) are rebuilt
 * from it and diffed by Docker id.
 *
 * Ownership: the source owns its task, services and strings; the loop,
 * http, log, filter and events are borrowed.
 */
#include "discovery/ecs/ecs_meta.h"

#include "core/base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHERE       "ecs"
#define TASK_MAX    ((size_t)4 << 20)
#define ERRBODY_MAX 200

typedef enum phase {
    PH_IDLE = 0,
    PH_SELF,
    PH_TASK,
    PH_DONE, /* one_shot finished */
} phase;

typedef struct held {
    mw__service *svc;
    int keep; /* wanted by the answer being applied */
} held;

struct mw__ecs_meta {
    mw__loop *loop;
    mw__http *http;
    const mw__log *log;
    const mw__filter *filter;
    mw__ecs_events *events;
    mw__source_cbs cbs;
    char *url;
    int include_self, services, with_tags, one_shot;
    double poll_interval, timeout;
    uint64_t backoff_min, backoff_max, backoff, rng;

    phase phase;
    mw__http_req *req;
    mw__timer timer;
    uint64_t cycle_start, down_since;
    int synced, up, self_known;
    unsigned failures;
    char *why;
    uint64_t problem; /* hash of the last malformed answer's message */

    mw__ecs_task *task;
    held *svcs;
    size_t nsvcs, cap;

    mw__ecs_meta_stats stats;
};

/* ------------------------------------------------------------- requests */

static mw__http_req *get(mw__ecs_meta *m, const char *path,
                         void (*done)(void *, const mw__http_result *), char **err)
{
    mw__http_opts o = {0};
    char *url = mw__sprintf("%s%s", m->url, path);
    mw__http_req *r;

    *err = NULL;
    if (!url) {
        *err = mw__strdup("out of memory");
        return NULL;
    }
    o.url = url;
    o.timeout = m->timeout;
    o.connect_timeout = m->timeout;
    o.max_body = TASK_MAX;
    o.direct = 1; /* the ECS agent's endpoint: no proxy can reach it */
    o.done = done;
    o.ud = m;
    r = mw__http_start(m->http, &o, err);
    free(url);
    return r;
}

/* Why a request failed, or NULL for a 200 (caller frees). */
static char *result_error(const char *what, const mw__http_result *r)
{
    return mw__http_result_error(what, r, ERRBODY_MAX);
}

/* ------------------------------------------------------------- services */

static held *held_find(const mw__ecs_meta *m, const char *cid)
{
    for (size_t i = 0; i < m->nsvcs; i++)
        if (strcmp(m->svcs[i].svc->cid, cid) == 0)
            return &m->svcs[i];
    return NULL;
}

/* Whether container `c` of the task is one of its services. */
static int wanted(const mw__ecs_meta *m, const mw__ecs_container *c)
{
    const char *name = c->docker_name[0] ? c->docker_name : c->name;

    if (strcmp(c->type, "NORMAL") != 0 || !c->known_status ||
        strcmp(c->known_status, "RUNNING") != 0 || !c->docker_id[0])
        return 0;
    if (!m->include_self && m->self_known && strcmp(c->docker_id, m->stats.self) == 0)
        return 0;
    return !m->filter || !mw__filter_excluded(m->filter, name, c->image ? c->image : "");
}

/* The service of container `c`: its name, image, labels, first IPv4
 * address and ports. NULL (logged) when it cannot be made. */
static mw__service *build(mw__ecs_meta *m, const mw__ecs_container *c)
{
    mw__svc_network net = {(char *)(c->network_mode ? c->network_mode : "awsvpc"),
                           c->nipv4 ? c->ipv4[0] : NULL, NULL};
    mw__svc_port ports[MW_ECS_PORTS_MAX];
    mw__service_parts p = {
        .origin = MW_SVC_TASK_METADATA,
        .cid = c->docker_id,
        .name = c->docker_name[0] ? c->docker_name : c->name,
        .image = c->image,
        .labels = c->labels,
        .nets = &net,
        .nnets = c->nipv4 ? 1 : 0,
        .host_network = c->network_mode && strcmp(c->network_mode, "host") == 0,
        .ports = ports,
        .nports = c->nports,
    };
    mw__service *s = NULL;
    char *err = NULL;

    for (size_t i = 0; i < c->nports; i++) {
        ports[i] = (mw__svc_port){.number = c->ports[i].number, .name = NULL};
        memcpy(ports[i].proto, c->ports[i].proto, sizeof ports[i].proto);
    }
    if (!c->image)
        err = mw__strdup("no Image");
    else if (mw__service_from_parts(&p, &s, &err) == MW_OK)
        return s;
    mw__warn(m->log, WHERE, "task metadata: container %s (%.12s) left out: %s", c->name,
             c->docker_id, err ? err : "out of memory");
    free(err);
    return NULL;
}

/* Takes `s` as the service of its container, and upserts it. */
static void put(mw__ecs_meta *m, mw__service *s)
{
    held *h = held_find(m, s->cid);

    if (!h) {
        if (mw__grow(&m->svcs, &m->cap, m->nsvcs + 1, sizeof *m->svcs) != MW_OK) {
            mw__service_free(s);
            return;
        }
        h = &m->svcs[m->nsvcs++];
        h->svc = NULL;
    }
    mw__service_free(h->svc);
    h->svc = s;
    h->keep = 1;
    if (m->cbs.upsert)
        m->cbs.upsert(m->cbs.ud, s);
}

/* Removes the services the last answer did not keep. */
static void sweep(mw__ecs_meta *m)
{
    size_t kept = 0;

    for (size_t i = 0; i < m->nsvcs; i++) {
        if (m->svcs[i].keep) {
            m->svcs[i].keep = 0;
            m->svcs[kept++] = m->svcs[i];
            continue;
        }
        if (m->cbs.remove)
            m->cbs.remove(m->cbs.ud, m->svcs[i].svc->id);
        mw__service_free(m->svcs[i].svc);
    }
    m->nsvcs = kept;
    m->stats.services = kept;
}

/* The task changed: every service it wants is made and upserted again
 * (its identity may have changed with the task), the others removed. */
static void apply_services(mw__ecs_meta *m)
{
    for (size_t i = 0; i < m->task->ncontainers; i++) {
        const mw__ecs_container *c = &m->task->containers[i];
        mw__service *s;
        held *h;
        if (!wanted(m, c))
            continue;
        if ((s = build(m, c)))
            put(m, s);
        else if ((h = held_find(m, c->docker_id)))
            h->keep = 1; /* keep what it was */
    }
    sweep(m);
}

/* Identity only: each container of the old and new task may have
 * another identity now. */
static void annotate_all(mw__ecs_meta *m, const mw__ecs_task *old)
{
    const mw__ecs_task *ts[] = {old, m->task};

    for (size_t k = 0; k < 2 && m->cbs.annotate; k++)
        for (size_t i = 0; ts[k] && i < ts[k]->ncontainers; i++) {
            const char *id = ts[k]->containers[i].docker_id;
            if (id[0] && (k == 0 || !old || !mw__ecs_task_container(old, id)))
                m->cbs.annotate(m->cbs.ud, id);
        }
}

/* ------------------------------------------------------------- the cycle */

static uint64_t backoff_next(mw__ecs_meta *m)
{
    uint64_t base = m->backoff;
    double jitter;

    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 7;
    m->rng ^= m->rng << 17;
    jitter = 0.8 + 0.4 * (double)(m->rng >> 11) / (double)(1ULL << 53);
    m->backoff = base * 2 > m->backoff_max ? m->backoff_max : base * 2;
    return (uint64_t)((double)base * jitter);
}

static void set_up(mw__ecs_meta *m, int up)
{
    if (m->up == up)
        return;
    m->up = up;
    m->stats.up = up;
    if (m->cbs.connected)
        m->cbs.connected(m->cbs.ud, up, up ? NULL : m->why);
}

static void mark_synced(mw__ecs_meta *m)
{
    if (m->synced)
        return;
    m->synced = 1;
    if (m->cbs.synced)
        m->cbs.synced(m->cbs.ud);
}

static void one_shot_done(mw__ecs_meta *m)
{
    m->phase = PH_DONE;
    mark_synced(m);
}

/* The cycle failed: keep what is held, start or go on with an outage. */
static void fail(mw__ecs_meta *m, char *why)
{
    uint64_t delay, now = mw__loop_now(m->loop);

    m->req = NULL;
    m->stats.failures++;
    m->failures++;
    free(m->why);
    m->why = why ? why : mw__strdup("out of memory");
    if (m->one_shot) {
        mw__error(m->log, WHERE, "cannot read the task metadata at %s: %s", m->url,
                  m->why ? m->why : "?");
        set_up(m, 0);
        one_shot_done(m);
        return;
    }
    m->phase = PH_IDLE;
    delay = backoff_next(m);
    if (m->up != 0) {
        m->down_since = now;
        m->stats.outages++;
        mw__warn(m->log, WHERE, "ECS task metadata endpoint at %s: %s; retrying in %.1f s", m->url,
                 m->why ? m->why : "?", (double)delay / 1e9);
    } else {
        mw__debug(m->log, WHERE, "ECS task metadata endpoint: still failing (%u attempts): %s",
                  m->failures, m->why ? m->why : "?");
    }
    mw__timer_start(m->loop, &m->timer, now + delay);
    set_up(m, 0);
}

/* The cycle answered: the outage (if any) is over, the next poll due. */
static void succeed(mw__ecs_meta *m)
{
    uint64_t now = mw__loop_now(m->loop), due;

    m->req = NULL;
    m->backoff = m->backoff_min;
    if (m->up == 0)
        mw__info(m->log, WHERE, "ECS task metadata endpoint answers again after %.1f s",
                 (double)(now - m->down_since) / 1e9);
    m->failures = 0;
    free(m->why);
    m->why = NULL;
    set_up(m, 1);
    mark_synced(m);
    if (m->one_shot) {
        one_shot_done(m);
        return;
    }
    m->phase = PH_IDLE;
    due = m->cycle_start + (uint64_t)(m->poll_interval * 1e9);
    mw__timer_start(m->loop, &m->timer, due < now ? now : due);
}

/* A payload that is not a task: said once until it changes or a good
 * one comes; the last good task stays. */
static void malformed(mw__ecs_meta *m, const char *why)
{
    uint64_t h = mw__hash(MW_HASH_INIT, why, strlen(why));

    m->stats.malformed++;
    if (h != m->problem)
        mw__error(m->log, WHERE, "GET %s: not a task, the last one is kept: %s",
                  m->with_tags ? "/taskWithTags" : "/task", why);
    m->problem = h;
}

static void log_first(mw__ecs_meta *m)
{
    const mw__ecs_task *t = m->task;

    mw__info(m->log, WHERE,
             "ECS task metadata at %s: task %s:%s (%s), %zu containers, %zu services%s%s", m->url,
             t->family, t->version, t->launch_type ? t->launch_type : "launch type not given",
             t->ncontainers, m->nsvcs, m->self_known ? "; moonwatch runs in " : "",
             m->self_known ? m->stats.self : "");
}

/* A good task: kept when it changed; services or annotations follow. */
static void take_task(mw__ecs_meta *m, mw__ecs_task *t)
{
    mw__ecs_task *old = m->task;
    int changed = !old || old->digest != t->digest, first = !old;

    m->stats.polls++;
    m->problem = 0;
    if (!changed) {
        mw__ecs_task_free(t);
        return;
    }
    m->stats.changes++;
    m->task = t;
    if (m->services)
        apply_services(m);
    else
        annotate_all(m, old);
    mw__ecs_task_free(old);
    if (first)
        log_first(m);
}

static void on_task(void *ud, const mw__http_result *r)
{
    mw__ecs_meta *m = ud;
    char *why = result_error(m->with_tags ? "GET /taskWithTags" : "GET /task", r), *err = NULL;
    mw__ecs_task *t = NULL;

    m->req = NULL;
    if (why) {
        fail(m, why);
        return;
    }
    if (mw__ecs_task_parse(r->body, r->len, MW_ECS_V4, &t, &err) == MW_OK)
        take_task(m, t);
    else
        malformed(m, err ? err : "out of memory");
    free(err);
    if (m->task && m->events && !m->one_shot)
        mw__ecs_events_task(m->events, m->task, mw__loop_now(m->loop));
    succeed(m);
}

static void start_task(mw__ecs_meta *m)
{
    char *err = NULL;

    m->phase = PH_TASK;
    m->req = get(m, m->with_tags ? "/taskWithTags" : "/task", on_task, &err);
    if (!m->req)
        fail(m, mw__sprintf("GET /task: %s", err ? err : "out of memory"));
    free(err);
}

static void on_self(void *ud, const mw__http_result *r)
{
    mw__ecs_meta *m = ud;
    char *why = result_error("GET ${URI}", r);
    cJSON *root;
    const cJSON *id;

    m->req = NULL;
    if (why) {
        fail(m, why);
        return;
    }
    root = cJSON_ParseWithLength(r->body, r->len);
    id = cJSON_GetObjectItemCaseSensitive(root, "DockerId");
    if (!cJSON_IsString(id) || !mw__ecs_id_valid(id->valuestring)) {
        cJSON_Delete(root);
        fail(m, mw__sprintf("GET ${URI}: malformed answer: %s",
                            root ? "DockerId: not a container id" : "not JSON"));
        return;
    }
    snprintf(m->stats.self, sizeof m->stats.self, "%s", id->valuestring);
    m->self_known = 1;
    cJSON_Delete(root);
    start_task(m);
}

static void cycle(mw__ecs_meta *m)
{
    char *err = NULL;

    m->cycle_start = mw__loop_now(m->loop);
    if (m->include_self || m->self_known) {
        start_task(m);
        return;
    }
    m->phase = PH_SELF;
    m->req = get(m, "", on_self, &err);
    if (!m->req)
        fail(m, mw__sprintf("GET ${URI}: %s", err ? err : "out of memory"));
    free(err);
}

static void timer_cb(mw__timer *t)
{
    mw__ecs_meta *m = t->ud;

    if (m->phase == PH_IDLE)
        cycle(m);
}

/* ------------------------------------------------------------- public */

const mw__ecs_task *mw__ecs_meta_task_of(const mw__ecs_meta *m, const char *cid,
                                         const mw__ecs_container **ctr)
{
    const mw__ecs_container *c = m && m->task && cid ? mw__ecs_task_container(m->task, cid) : NULL;

    if (ctr)
        *ctr = c;
    return c ? m->task : NULL;
}

const mw__ecs_task *mw__ecs_meta_task(const mw__ecs_meta *m)
{
    return m ? m->task : NULL;
}

const mw__service *mw__ecs_meta_get(const mw__ecs_meta *m, const char *id)
{
    for (size_t i = 0; m && id && i < m->nsvcs; i++)
        if (strcmp(m->svcs[i].svc->id, id) == 0)
            return m->svcs[i].svc;
    return NULL;
}

void mw__ecs_meta_stats_get(const mw__ecs_meta *m, mw__ecs_meta_stats *out)
{
    *out = m->stats;
}

static mw_code copy_opts(mw__ecs_meta *m, const mw__ecs_meta_opts *o, char **err)
{
    size_t n = o->url ? strlen(o->url) : 0;

    if (!o->url || (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0)) {
        if (err)
            *err =
                mw__sprintf("task metadata URL \"%s\": expected http(s)://", o->url ? o->url : "");
        return MW_EINVAL;
    }
    while (n > 0 && o->url[n - 1] == '/')
        n--;
    if (!(m->url = mw__strndup(o->url, n)))
        return MW_ENOMEM;
    m->loop = o->loop;
    m->http = o->http;
    m->log = o->log;
    m->filter = o->filter;
    m->events = o->events;
    m->cbs = o->cbs;
    m->include_self = o->include_self;
    m->services = o->services;
    m->with_tags = o->with_tags;
    m->one_shot = o->one_shot;
    m->poll_interval = o->poll_interval > 0 ? o->poll_interval : 5;
    m->timeout = o->request_timeout > 0 ? o->request_timeout : 5;
    m->backoff_min = (uint64_t)((o->backoff_min > 0 ? o->backoff_min : 0.5) * 1e9);
    m->backoff_max = (uint64_t)((o->backoff_max > 0 ? o->backoff_max : 10) * 1e9);
    if (m->backoff_max < m->backoff_min)
        m->backoff_max = m->backoff_min;
    m->backoff = m->backoff_min;
    return MW_OK;
}

mw_code mw__ecs_meta_new(const mw__ecs_meta_opts *o, mw__ecs_meta **out, char **err)
{
    mw__ecs_meta *m = calloc(1, sizeof *m);
    mw_code rc = MW_ENOMEM;

    *out = NULL;
    if (err)
        *err = NULL;
    if (!m)
        goto out;
    m->up = m->stats.up = -1;
    m->rng = (mw__mono_ns() ^ (uint64_t)(uintptr_t)m) | 1;
    mw__timer_init(&m->timer, timer_cb, m);
    if ((rc = copy_opts(m, o, err)) != MW_OK)
        goto out;
    mw__timer_start(m->loop, &m->timer, mw__loop_now(m->loop));
    *out = m;
    m = NULL;
out:
    if (rc == MW_ENOMEM && err && !*err)
        *err = mw__strdup("out of memory");
    mw__ecs_meta_free(m);
    return rc;
}

void mw__ecs_meta_free(mw__ecs_meta *m)
{
    if (!m)
        return;
    if (m->loop)
        mw__timer_stop(m->loop, &m->timer);
    if (m->req)
        mw__http_cancel(m->req);
    for (size_t i = 0; i < m->nsvcs; i++)
        mw__service_free(m->svcs[i].svc);
    free(m->svcs);
    mw__ecs_task_free(m->task);
    free(m->why);
    free(m->url);
    free(m);
}
