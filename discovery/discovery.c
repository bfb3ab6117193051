/*
 * discovery.c - wires the Docker source, the ECS agent source, the ECS
 * task metadata source, the container filter, the ECS task events and
 * the reconciler together for an engine (see discovery.h, which says how
 * Docker services and ECS task identities are joined). The events' tags
 * are made here, where every source's services are known: ecs_tags.c
 * would need all of them too.
 *
 * Ownership: the discovery owns its sources, the HTTP client they share,
 * the filter, the event deriver and the reconciler; the views it hands
 * the reconciler live for the call only.
 */
#include "discovery/discovery.h"

#include "core/base/http.h"
#include "core/base/util.h"
#include "discovery/docker/docker.h"
#include "discovery/ecs/ecs_boot.h"
#include "discovery/ecs/ecs_events.h"
#include "discovery/ecs/ecs_ident.h"
#include "discovery/ecs/ecs_report.h"
#include "discovery/filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_DOCKER_SOCKET "/var/run/docker.sock"
#define ECS_LAUNCH_DOCKER     "EC2"     /* task containers on a Docker engine */
#define ECS_LAUNCH_META       "FARGATE" /* the task metadata's, when it says none */
#define TAGS_MAX              256       /* an ECS event's tags */

struct mw__discovery {
    const mw__log *log;
    mw__loop *loop;
    mw__record_fn record;
    void *record_ud;
    mw__template_set set;
    mw__tmplvars_opts vars;
    mw__filter *filter;
    mw__http *http;
    mw__docker *docker;
    mw__ecs_agent *ecs;
    mw__ecs_meta *meta;
    mw__ecs_events *events;
    mw__reconcile *rec;
    int one_shot;
    int docker_synced, ecs_synced, meta_synced, synced;
    char *error;
    /* ECS */
    int ecs_mode;                          /* MW_ECS_*: off reads no label either */
    int ecs_later;                         /* an ecs-agent container would start the source */
    double ecs_poll;                       /* seconds */
    char ecs_agent_cid[MW_ECS_ID_MAX + 1]; /* the ecs-agent container seen last */
    long ecs_agent_pid;
    double pending_timeout;
    const char *procfs, *state_dir; /* the opts' */
    int boot_checked;
    const mw__source_exit *exit;          /* the Docker exit being derived */
    mw__source_health health[MW_SOURCES]; /* their `why` are ours */
};

/* ------------------------------------------------------------- health */

enum { SRC_DOCKER, SRC_ECS_AGENT, SRC_ECS_META };

static void health_set(mw__discovery *d, int which, int up, const char *why)
{
    mw__source_health *h = &d->health[which];
    h->up = up;
    h->since = mw__mono_ns();
    free((char *)h->why);
    h->why = up || !why ? NULL : mw__strdup(why);
}

/* ------------------------------------------------------------- sync */

/* The task metadata source is waited for when it finds the services,
 * and in one-shot (configcheck) when it only adds to their identity. */
static void update_synced(mw__discovery *d)
{
    d->synced = d->docker_synced && (!d->ecs || !d->one_shot || d->ecs_synced) &&
                (!d->meta || d->meta_synced || (!d->one_shot && d->docker));
}

/* ------------------------------------------------------------- the join */

/* The ECS identity of `svc`: from the task metadata's model, else the
 * agent's, else its labels. MW_OK; MW_ENOTFOUND (not an ECS container,
 * or ECS is off); MW_ENOMEM. */
static mw_code ident_of(const mw__discovery *d, const mw__service *svc, const cJSON *labels,
                        const char *cid, mw__ecs_ident *id)
{
    const mw__ecs_container *ctr = NULL;
    const mw__ecs_task *task;
    int meta = svc && svc->origin == MW_SVC_TASK_METADATA;

    if (d->ecs_mode == MW_ECS_OFF) {
        memset(id, 0, sizeof *id);
        return MW_ENOTFOUND;
    }
    if (!(task = mw__ecs_meta_task_of(d->meta, cid, &ctr)))
        task = mw__ecs_agent_task_of(d->ecs, cid, &ctr);
    return mw__ecs_ident_for(svc ? svc->labels : labels, task, ctr, mw__ecs_agent_cluster(d->ecs),
                             meta ? ECS_LAUNCH_META : ECS_LAUNCH_DOCKER, id);
}

/* The reconciler gets `svc` as it is, or its view with the container's
 * ECS identity. */
static void apply(mw__discovery *d, const mw__service *svc)
{
    mw__ecs_ident id;
    mw__ecs_view v;
    mw_code rc = ident_of(d, svc, NULL, svc->cid, &id);

    if (rc == MW_OK) {
        rc = mw__ecs_view_make(svc, &id, &v);
        mw__ecs_ident_clear(&id);
        if (rc == MW_OK) {
            if (mw__reconcile_service(d->rec, &v.svc) != MW_OK)
                mw__error(d->log, svc->id, "out of memory: service kept as it was");
            mw__ecs_view_clear(&v);
            return;
        }
    }
    if (rc == MW_ENOMEM)
        mw__error(d->log, svc->id, "out of memory: ECS identity left out");
    if (mw__reconcile_service(d->rec, svc) != MW_OK)
        mw__error(d->log, svc->id, "out of memory: service kept as it was");
}

/* The service of container `cid`, from whichever source holds it. */
static const mw__service *service_of(const mw__discovery *d, const char *cid)
{
    char id[16 + MW_ECS_ID_MAX];
    const mw__service *svc;

    if (!cid || !*cid || strlen(cid) > MW_ECS_ID_MAX)
        return NULL;
    snprintf(id, sizeof id, "docker://%s", cid);
    svc = mw__docker_get(d->docker, id);
    return svc ? svc : mw__ecs_meta_get(d->meta, id);
}

/* ------------------------------------------------------------- ECS */

static void on_ecs_synced(void *ud)
{
    mw__discovery *d = ud;
    d->ecs_synced = 1;
    update_synced(d);
}

/* The sources log their outages; these keep them for the status. */
static void on_ecs_connected(void *ud, int up, const char *why)
{
    health_set(ud, SRC_ECS_AGENT, up, why);
}

static void on_meta_connected(void *ud, int up, const char *why)
{
    health_set(ud, SRC_ECS_META, up, why);
}

static mw_code on_record(void *ud, const mw_record *rec)
{
    mw__discovery *d = ud;
    return d->record(d->record_ud, rec);
}

/* The container id of a record's container_id tag, or NULL. */
static const char *record_cid(const mw_record *rec)
{
    for (size_t i = 0; i < rec->ntags; i++)
        if (strncmp(rec->tags[i], "container_id:", 13) == 0)
            return rec->tags[i] + 13;
    return NULL;
}

typedef struct tag_list {
    const char **v;
    size_t n;
    char *own[16 + MW_ECS_TAGS_MAX * 2];
    size_t nown;
} tag_list;

static mw_code add_own_tag(void *ud, const char *tag)
{
    tag_list *l = ud;
    char *t;
    if (l->nown == MW_ARRAY_LEN(l->own) || !(t = mw__strdup(tag)))
        return MW_ENOMEM;
    l->own[l->nown++] = t;
    l->v[l->n++] = t;
    return MW_OK;
}

/* A Docker event of a task container carries its task tags too. */
static mw_code on_docker_record(void *ud, const mw_record *rec)
{
    mw__discovery *d = ud;
    const char *cid = rec->type == MW_RECORD_EVENT ? record_cid(rec) : NULL;
    mw__ecs_ident ident;
    tag_list l = {0};
    mw_record r = *rec;
    mw_code rc;

    if (d->ecs_mode == MW_ECS_OFF || !cid || strlen(cid) > MW_ECS_ID_MAX)
        return on_record(d, rec);
    if (ident_of(d, service_of(d, cid), NULL, cid, &ident) != MW_OK)
        return on_record(d, rec);
    if ((l.v = malloc((rec->ntags + MW_ARRAY_LEN(l.own)) * sizeof *l.v))) {
        memcpy(l.v, rec->tags, rec->ntags * sizeof *l.v);
        l.n = rec->ntags;
        mw__ecs_ident_tags(&ident, add_own_tag, &l); /* short of memory: fewer tags */
        r.tags = l.v;
        r.ntags = l.n;
    }
    rc = on_record(d, &r);
    for (size_t i = 0; i < l.nown; i++)
        free(l.own[i]);
    free(l.v);
    mw__ecs_ident_clear(&ident);
    return rc;
}

/* A model changed for container `cid`: its Docker service, if it is
 * one, is applied again. */
static void on_annotate(void *ud, const char *cid)
{
    mw__discovery *d = ud;
    char id[16 + MW_ECS_ID_MAX];
    const mw__service *svc;

    if (strlen(cid) > MW_ECS_ID_MAX)
        return;
    snprintf(id, sizeof id, "docker://%s", cid);
    if ((svc = mw__docker_get(d->docker, id)))
        apply(d, svc);
}

/* ------------------------------------------------------------- ECS events */

/* An event's tags: owned strings, unique. */
typedef struct ev_tags {
    char *v[TAGS_MAX];
    size_t n;
} ev_tags;

static mw_code ev_tag(void *ud, const char *tag)
{
    ev_tags *t = ud;
    char *c;

    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i], tag) == 0)
            return MW_OK;
    if (t->n == TAGS_MAX || !(c = mw__strdup(tag)))
        return MW_ENOMEM;
    t->v[t->n++] = c;
    return MW_OK;
}

static void ev_tagf(ev_tags *t, const char *key, const char *value)
{
    char *tag = value && *value ? mw__sprintf("%s:%s", key, value) : NULL;

    if (tag)
        ev_tag(t, tag);
    free(tag);
}

/* A container no source holds as a service: its id, name and image tags
 * from what is known of it (Docker's exit, else the model). */
static void bare_container_tags(ev_tags *t, const char *cid, const char *name, const char *image)
{
    char *lname = NULL, *sname = NULL, *tag = NULL;

    ev_tagf(t, "container_id", cid);
    ev_tagf(t, "container_name", name);
    if (!image || mw__image_names(image, &lname, &sname, &tag) != MW_OK)
        return;
    ev_tagf(t, "docker_image", image);
    ev_tagf(t, "image_name", lname);
    ev_tagf(t, "short_image", sname);
    ev_tagf(t, "image_tag", tag);
    free(lname);
    free(sname);
    free(tag);
}

/* The task of an event: its own, else the one a model holds by ARN; and
 * which launch type to assume for it. */
static const mw__ecs_task *event_task(const mw__discovery *d, const mw__ecs_event *ev,
                                      const char **launch_type)
{
    const mw__ecs_task *mt = mw__ecs_meta_task(d->meta);
    const mw__ecs_task *t = ev->task;

    if (!t)
        t = mt && !strcmp(mt->arn, ev->task_arn) ? mt : mw__ecs_agent_task(d->ecs, ev->task_arn);
    *launch_type = t && t == mt ? ECS_LAUNCH_META : ECS_LAUNCH_DOCKER;
    return t;
}

/* The container of `t` named `name`, or NULL. */
static const mw__ecs_container *container_named(const mw__ecs_task *t, const char *name)
{
    for (size_t i = 0; t && name && i < t->ncontainers; i++)
        if (strcmp(t->containers[i].name, name) == 0)
            return &t->containers[i];
    return NULL;
}

/* A container's tags: its view's, when a source holds it as a service
 * (or Docker's exit does), else the bare ones; and its task's identity,
 * from its id, labels or, for one that never had an id, its task. */
static void container_tags(mw__discovery *d, const mw__ecs_event *ev, ev_tags *t)
{
    const mw__source_exit *x = d->exit && !strcmp(d->exit->cid, ev->docker_id) ? d->exit : NULL;
    const mw__service *svc = x && x->svc ? x->svc : service_of(d, ev->docker_id);
    const char *lt;
    const mw__ecs_task *task = event_task(d, ev, &lt);
    const mw__ecs_container *ctr = container_named(task, ev->container);
    mw__ecs_ident id;
    mw_code rc;

    if (svc)
        for (size_t i = 0; i < svc->ntags; i++)
            ev_tag(t, svc->tags[i]);
    else
        bare_container_tags(t, ev->docker_id,
                            x                            ? x->name
                            : ctr && ctr->docker_name[0] ? ctr->docker_name
                                                         : NULL,
                            x     ? x->image
                            : ctr ? ctr->image
                                  : NULL);
    rc = ident_of(d, svc, x ? x->labels : NULL, ev->docker_id, &id);
    if (rc == MW_ENOTFOUND && task)
        rc = mw__ecs_ident_for(NULL, task, ctr, mw__ecs_agent_cluster(d->ecs), lt, &id);
    if (rc == MW_OK) {
        mw__ecs_ident_tags(&id, ev_tag, t);
        mw__ecs_ident_clear(&id);
    }
    ev_tagf(t, "ecs_container_name", ev->container);
}

/* A task's tags: its identity from the model (the event's task, else the
 * one a model holds), else the ARN alone. */
static void task_tags(mw__discovery *d, const mw__ecs_event *ev, ev_tags *t)
{
    const char *lt;
    const mw__ecs_task *task = event_task(d, ev, &lt);
    mw__ecs_ident id;

    if (task &&
        mw__ecs_ident_for(NULL, task, NULL, mw__ecs_agent_cluster(d->ecs), lt, &id) == MW_OK) {
        mw__ecs_ident_tags(&id, ev_tag, t);
        mw__ecs_ident_clear(&id);
    } else {
        ev_tagf(t, "task_arn", ev->task_arn);
        ev_tagf(t, "task_family", ev->family);
        ev_tagf(t, "task_name", ev->family);
    }
    for (size_t i = 0; i < ev->ncontainers; i++)
        ev_tagf(t, "ecs_container_name", ev->containers[i]);
}

static void on_ecs_event(void *ud, const mw__ecs_event *ev)
{
    mw__discovery *d = ud;
    mw__source_cbs out = {.record = on_record, .ud = d};
    ev_tags t = {0};

    if (ev->container)
        container_tags(d, ev, &t);
    else
        task_tags(d, ev, &t);
    mw__ecs_report_event(&out, d->log, ev, (const char *const *)t.v, t.n, d->pending_timeout);
    for (size_t i = 0; i < t.n; i++)
        free(t.v[i]);
}

/* Docker saw a container end: when it is a task container, the event
 * deriver learns its exit. */
static void on_exited(void *ud, const mw__source_exit *x)
{
    mw__discovery *d = ud;
    mw__ecs_ident id;
    mw__ecs_exit e;

    if (!d->events || ident_of(d, x->svc, x->labels, x->cid, &id) != MW_OK)
        return;
    e = (mw__ecs_exit){id.task_arn, id.family, id.container_name, x->cid, x->exit_code, x->oom};
    d->exit = x;
    mw__ecs_events_exit(d->events, &e, mw__loop_now(d->loop));
    d->exit = NULL;
    mw__ecs_ident_clear(&id);
}

/* Docker saw a container start: when it is a task container, the event
 * deriver learns it runs (again), so that its next exit is said. */
static void on_started(void *ud, const mw__source_exit *x)
{
    mw__discovery *d = ud;
    mw__ecs_ident id;

    if (!d->events || ident_of(d, x->svc, x->labels, x->cid, &id) != MW_OK)
        return;
    mw__ecs_events_start(d->events, id.task_arn, id.container_name, x->cid, mw__loop_now(d->loop));
    mw__ecs_ident_clear(&id);
}

/* The host rebooted since moonwatch last ran: checked once, when ECS is
 * first found here. */
static void check_boot(mw__discovery *d)
{
    mw__source_cbs out = {.record = on_record, .ud = d};
    mw__ecs_boot b;

    if (d->boot_checked || d->one_shot || !d->record)
        return;
    d->boot_checked = 1;
    if (mw__ecs_boot_check(d->procfs, d->state_dir, &b) != MW_OK)
        return;
    if (b.warning)
        mw__warn(d->log, "ecs", "%s", b.warning);
    if (b.rebooted) {
        mw__info(d->log, "ecs", "this host rebooted since moonwatch last ran (boot id %s, was %s)",
                 b.now, b.before);
        mw__ecs_report_reboot(&out, d->log, b.before, b.now);
    }
    mw__ecs_boot_clear(&b);
}

/* ------------------------------------------------------------- ECS agent */

static mw_code start_ecs(mw__discovery *d, const char *url, const char *why)
{
    char *err = NULL;
    mw__ecs_agent_opts o = {
        .url = url,
        .loop = d->loop,
        .http = d->http,
        .log = d->log,
        .poll_interval = d->ecs_poll,
        .one_shot = d->one_shot,
        .events = d->events,
        .cbs = {.synced = on_ecs_synced,
                .connected = on_ecs_connected,
                .record = d->record && !d->one_shot ? on_record : NULL,
                .annotate = on_annotate,
                .ud = d},
    };
    mw_code rc = mw__ecs_agent_new(&o, &d->ecs, &err);
    d->health[SRC_ECS_AGENT].since = mw__mono_ns();

    d->ecs_later = 0;
    if (rc != MW_OK)
        mw__error(d->log, "ecs", "ECS agent source not started: %s", err ? err : mw_strerror(rc));
    else
        mw__info(d->log, "ecs", "asking the ECS agent at %s for task identities (%s)", url, why);
    free(err);
    update_synced(d);
    if (rc == MW_OK)
        check_boot(d);
    return rc;
}

/* The ecs-agent container: a reason to start the source (ecs: auto), or
 * a sign that the agent restarted (another container or process). */
static void watch_agent(mw__discovery *d, const mw__service *svc)
{
    int again = strcmp(d->ecs_agent_cid, svc->cid) != 0 ||
                (svc->pid > 0 && d->ecs_agent_pid > 0 && svc->pid != d->ecs_agent_pid);

    snprintf(d->ecs_agent_cid, sizeof d->ecs_agent_cid, "%s", svc->cid);
    if (svc->pid > 0)
        d->ecs_agent_pid = svc->pid;
    if (d->ecs_later)
        start_ecs(d, MW_ECS_AGENT_DEFAULT, "a container named " MW_ECS_AGENT_CONTAINER " runs");
    else if (d->ecs && again)
        mw__ecs_agent_restarted(d->ecs);
}

static void watch_ecs(mw__discovery *d, const mw__service *svc)
{
    if (d->ecs_mode == MW_ECS_OFF)
        return;
    if (svc->name && strcmp(svc->name, MW_ECS_AGENT_CONTAINER) == 0)
        watch_agent(d, svc);
    else if (d->ecs && mw__service_label(svc, MW_ECS_LABEL_TASK_ARN) &&
             !mw__ecs_agent_task_of(d->ecs, svc->cid, NULL))
        mw__ecs_agent_lookup(d->ecs, svc->cid); /* after apply(): nothing waits */
}

/* ------------------------------------------------------------- docker */

static void on_upsert(void *ud, const mw__service *svc)
{
    mw__discovery *d = ud;
    apply(d, svc);
    watch_ecs(d, svc);
}

static void on_remove(void *ud, const char *id)
{
    mw__discovery *d = ud;
    mw__reconcile_remove(d->rec, id);
}

static void on_synced(void *ud)
{
    mw__discovery *d = ud;
    d->docker_synced = 1;
    update_synced(d);
    free(d->error);
    d->error = NULL;
}

static void on_connected(void *ud, int up, const char *why)
{
    mw__discovery *d = ud;
    free(d->error);
    d->error = up || !why ? NULL : mw__strdup(why);
    health_set(d, SRC_DOCKER, up, why);
}

/* "include" from the config, else the environment variable: the CLI
 * has put the variable in the config already (mw__config_apply_env), an
 * embedder's config that leaves the key out still gets it. */
static char *join_env(const char *cfg, const char *var)
{
    const char *env = getenv(var);
    return mw__strdup(cfg ? cfg : env && *env ? env : "");
}

/* MW_OK, or MW_ENOMEM (bad items are logged and skipped). */
static mw_code make_filter(mw__discovery *d, const mw__discovery_opts *o)
{
    char *inc = join_env(o->container_include, "DD_CONTAINER_INCLUDE");
    char *exc = join_env(o->container_exclude, "DD_CONTAINER_EXCLUDE");
    mw__diag diag = {0};
    if (inc && exc)
        d->filter = mw__filter_new(inc, exc, "container filter", &diag);
    for (size_t i = 0; i < diag.n; i++)
        mw__error(d->log, "docker", "%s", diag.items[i]);
    mw__diag_free(&diag);
    free(inc);
    free(exc);
    return d->filter ? MW_OK : MW_ENOMEM;
}

/* The Docker host to use, or NULL (with `*why_off`) when discovery is off. */
static const char *docker_host(const mw__discovery_opts *o, const char **why_off)
{
    const char *env = getenv("DOCKER_HOST");
    const char *host = o->docker_host ? o->docker_host : env && *env ? env : NULL;
    struct stat st;
    if (o->docker_mode == MW_DOCKER_OFF) {
        *why_off = "Docker discovery is off (docker: off)";
        return NULL;
    }
    if (host)
        return host;
    if (o->docker_mode == MW_DOCKER_ON || stat(DEFAULT_DOCKER_SOCKET, &st) == 0)
        return "unix://" DEFAULT_DOCKER_SOCKET;
    *why_off = "no Docker host given and no " DEFAULT_DOCKER_SOCKET;
    return NULL;
}

static mw_code start_docker(mw__discovery *d, const mw__discovery_opts *o, const char *host,
                            char **err)
{
    mw__docker_opts dopts = {
        .host = host,
        .loop = o->loop,
        .http = d->http,
        .log = o->log,
        .filter = d->filter,
        .include_self = o->discover_self,
        .one_shot = o->one_shot,
        .cbs = {.upsert = on_upsert,
                .remove = on_remove,
                .synced = on_synced,
                .connected = on_connected,
                .record = o->record && !o->one_shot ? on_docker_record : NULL,
                .exited = o->ecs_mode != MW_ECS_OFF && !o->one_shot ? on_exited : NULL,
                .started = o->ecs_mode != MW_ECS_OFF && !o->one_shot ? on_started : NULL,
                .ud = d},
    };
    return mw__docker_new(&dopts, &d->docker, err);
}

/* ------------------------------------------------------------- task metadata */

static void on_meta_upsert(void *ud, const mw__service *svc)
{
    apply(ud, svc);
}

static void on_meta_synced(void *ud)
{
    mw__discovery *d = ud;
    d->meta_synced = 1;
    update_synced(d);
}

/* The task metadata source, when the ECS agent set its variable: the
 * services (no Docker engine here), or their identity. A bad URL is
 * logged, not fatal. */
static void setup_meta(mw__discovery *d, const mw__discovery_opts *o)
{
    const char *var = NULL;
    char *url = NULL, *why = NULL, *err = NULL;
    mw__ecs_meta_opts mo = {
        .loop = d->loop,
        .http = d->http,
        .log = d->log,
        .filter = d->filter,
        .include_self = o->discover_self,
        .services = d->docker == NULL,
        .with_tags = o->ecs_collect_resource_tags,
        .poll_interval = d->ecs_poll,
        .one_shot = d->one_shot,
        .events = d->one_shot ? NULL : d->events,
        .cbs = {.upsert = on_meta_upsert,
                .remove = on_remove,
                .synced = on_meta_synced,
                .connected = on_meta_connected,
                .annotate = on_annotate,
                .ud = d},
    };

    if (mw__ecs_metadata_url(&url, &var, &why) != MW_OK || !url) {
        if (why)
            mw__error(d->log, "ecs", "%s; the task metadata is not read", why);
        free(why);
        return;
    }
    mo.url = url;
    if (mw__ecs_meta_new(&mo, &d->meta, &err) != MW_OK)
        mw__error(d->log, "ecs", "task metadata source not started: %s", err ? err : "?");
    else
        mw__info(d->log, "ecs", "reading the task metadata at $%s (%s): %s", var, url,
                 mo.services ? "its containers are the services (no Docker engine here)"
                             : "the identity of the Docker engine's task containers");
    free(err);
    free(url);
}

/* ECS: the task events, the task metadata source, and the agent, whose
 * task identities join Docker services (without Docker, nothing to
 * join). A bad ECS setting is logged, not fatal. */
static mw_code setup_ecs(mw__discovery *d, const mw__discovery_opts *o)
{
    mw__ecs_verdict verdict;
    char *url = NULL, *why = NULL;
    mw_code rc = MW_OK;

    if (o->ecs_mode == MW_ECS_OFF)
        return MW_OK;
    if (o->record && !o->one_shot &&
        !(d->events = mw__ecs_events_new(o->ecs_pending_timeout, on_ecs_event, d)))
        return MW_ENOMEM;
    setup_meta(d, o);
    if (d->docker)
        rc = mw__ecs_where(o->ecs_mode, o->ecs_agent_url, o->ecs_config_path, &verdict, &url, &why);
    if (!d->docker) {
        /* no agent to ask without a Docker engine to join */
    } else if (rc == MW_EINVAL) {
        mw__error(d->log, "ecs", "%s", why ? why : "bad ECS agent URL");
        rc = MW_OK;
        if (!d->meta)
            d->ecs_mode = MW_ECS_OFF;
    } else if (rc == MW_OK && verdict == MW_ECS_HERE) {
        start_ecs(d, url, why); /* a failure is logged: Docker goes on */
    } else if (rc == MW_OK) {
        d->ecs_later = verdict == MW_ECS_LATER;
        mw__debug(d->log, "ecs", "%s", why);
    }
    free(url);
    free(why);
    if (d->meta)
        check_boot(d);
    return rc;
}

/* ------------------------------------------------------------- lifecycle */

mw_code mw__discovery_new(const mw__discovery_opts *o, mw__template_set *set, mw__discovery **out,
                          const char **why_off, char **err)
{
    mw_code rc = MW_ENOMEM;
    const char *off = NULL, *host;
    mw__discovery *d = calloc(1, sizeof *d);
    *out = NULL;
    *err = NULL;
    if (why_off)
        *why_off = NULL;
    if (!d)
        goto out;
    static const char *const names[MW_SOURCES] = {"docker", "ecs_agent", "ecs_metadata"};
    for (int i = 0; i < MW_SOURCES; i++)
        d->health[i] = (mw__source_health){.name = names[i], .up = -1, .since = mw__mono_ns()};
    d->log = o->log;
    d->loop = o->loop;
    d->record = o->record;
    d->record_ud = o->record_ud;
    d->one_shot = o->one_shot;
    d->ecs_mode = o->ecs_mode;
    d->ecs_poll = o->ecs_poll_interval;
    d->pending_timeout = o->ecs_pending_timeout > 0 ? o->ecs_pending_timeout : 300;
    d->procfs = o->procfs_path;
    d->state_dir = o->state_dir;
    d->set = *set;
    memset(set, 0, sizeof *set);
    d->vars = (mw__tmplvars_opts){
        .host_network_host = o->host_network_host,
        .env_allow = o->env_allowlist,
        .nenv_allow = o->n_env_allowlist,
    };
    if (!(d->rec = mw__reconcile_new(&d->set, &d->vars, &o->ops, o->log)) ||
        (rc = make_filter(d, o)) != MW_OK)
        goto out;
    if ((rc = mw__http_new(o->loop, &d->http)) != MW_OK) {
        *err = mw__sprintf("cannot make the HTTP client: %s", mw_strerror(rc));
        goto out;
    }
    if ((host = docker_host(o, &off)) != NULL)
        rc = start_docker(d, o, host, err);
    else
        d->docker_synced = 1;
    if (rc == MW_OK)
        rc = setup_ecs(d, o);
    if (rc != MW_OK)
        goto out;
    update_synced(d);
    if (why_off)
        *why_off = off;
    *out = d;
    d = NULL;
out:
    if (rc == MW_ENOMEM && !*err)
        *err = mw__strdup("out of memory");
    mw__discovery_free(d);
    return rc;
}

void mw__discovery_free(mw__discovery *d)
{
    if (!d)
        return;
    mw__ecs_agent_free(d->ecs);
    mw__ecs_meta_free(d->meta);
    mw__docker_free(d->docker);
    mw__ecs_events_free(d->events);
    mw__http_free(d->http);
    mw__reconcile_free(d->rec);
    mw__filter_free(d->filter);
    mw__template_set_free(&d->set);
    free(d->error);
    for (int i = 0; i < MW_SOURCES; i++)
        free((char *)d->health[i].why);
    free(d);
}

int mw__discovery_synced(const mw__discovery *d)
{
    return d->synced;
}

size_t mw__discovery_health(const mw__discovery *d, mw__source_health *out)
{
    size_t n = 0;
    if (d->docker)
        out[n++] = d->health[SRC_DOCKER];
    if (d->ecs)
        out[n++] = d->health[SRC_ECS_AGENT];
    if (d->meta)
        out[n++] = d->health[SRC_ECS_META];
    return n;
}

size_t mw__discovery_services(const mw__discovery *d)
{
    return mw__reconcile_services(d->rec);
}

const char *mw__discovery_error(const mw__discovery *d)
{
    return d->error;
}

mw_code mw__discovery_describe(const mw__discovery *d, cJSON *resolved, cJSON *unresolved)
{
    return mw__reconcile_describe(d->rec, resolved, unresolved);
}

mw__ecs_agent *mw__discovery_ecs(const mw__discovery *d)
{
    return d->ecs;
}

mw__ecs_meta *mw__discovery_ecs_meta(const mw__discovery *d)
{
    return d->meta;
}

const mw__template_set *mw__discovery_templates(const mw__discovery *d)
{
    return &d->set;
}

/* A service the reconciler tracks, matched again: from the source that
 * holds it, or gone. */
static void rematch_one(void *ud, const char *svc_id)
{
    mw__discovery *d = ud;
    const mw__service *svc = d->docker ? mw__docker_get(d->docker, svc_id) : NULL;
    if (!svc && d->meta)
        svc = mw__ecs_meta_get(d->meta, svc_id);
    if (svc)
        apply(d, svc);
    else
        mw__reconcile_remove(d->rec, svc_id);
}

void mw__discovery_set_templates(mw__discovery *d, mw__template_set *set)
{
    mw__template_set old = d->set;
    d->set = *set;
    memset(set, 0, sizeof *set);
    mw__reconcile_rematch(d->rec, &d->set, rematch_one, d);
    mw__template_set_free(&old);
}
