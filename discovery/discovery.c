/*
 * discovery.c - wires the Docker source, the ECS agent source, the
 * container filter and the reconciler together for an engine (see
 * discovery.h, which says how Docker services and ECS task identities
 * are joined).
 *
 * Ownership: the discovery owns its sources, the HTTP client they share,
 * the filter and the reconciler; the views it hands the reconciler live
 * for the call only.
 */
#include "discovery/discovery.h"

#include "core/base/http.h"
#include "core/base/util.h"
#include "discovery/docker/docker.h"
#include "discovery/ecs/ecs_ident.h"
#include "discovery/filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_DOCKER_SOCKET "/var/run/docker.sock"
#define ECS_LAUNCH_TYPE       "EC2" /* task containers on a Docker engine */

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
    mw__reconcile *rec;
    int one_shot;
    int docker_synced, ecs_synced, synced;
    char *error;
    /* ECS */
    int ecs_mode;                          /* MW_ECS_*: off reads no label either */
    int ecs_later;                         /* an ecs-agent container would start the source */
    double ecs_poll;                       /* seconds */
    char ecs_agent_cid[MW_ECS_ID_MAX + 1]; /* the ecs-agent container seen last */
    long ecs_agent_pid;
};

/* ------------------------------------------------------------- sync */

static void update_synced(mw__discovery *d)
{
    d->synced = d->docker_synced && (!d->ecs || !d->one_shot || d->ecs_synced);
}

/* ------------------------------------------------------------- the join */

/* The reconciler gets `svc` as it is, or its view with the container's
 * ECS identity. */
static void apply(mw__discovery *d, const mw__service *svc)
{
    const mw__ecs_container *ctr = NULL;
    const mw__ecs_task *task = NULL;
    mw__ecs_ident id;
    mw__ecs_view v;
    mw_code rc;

    if (d->ecs_mode == MW_ECS_OFF)
        rc = MW_ENOTFOUND;
    else {
        task = mw__ecs_agent_task_of(d->ecs, svc->cid, &ctr);
        rc = mw__ecs_ident_for(svc->labels, task, ctr, mw__ecs_agent_cluster(d->ecs),
                               ECS_LAUNCH_TYPE, &id);
    }
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

/* ------------------------------------------------------------- ECS */

static void on_ecs_synced(void *ud)
{
    mw__discovery *d = ud;
    d->ecs_synced = 1;
    update_synced(d);
}

static void on_ecs_connected(void *ud, int up, const char *why)
{
    MW_UNUSED(ud), MW_UNUSED(up), MW_UNUSED(why); /* the source logs outages */
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
    char *own[16];
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
    char id[16 + MW_ECS_ID_MAX];
    const mw__service *svc;
    const mw__ecs_container *ctr = NULL;
    const mw__ecs_task *task;
    mw__ecs_ident ident;
    tag_list l = {0};
    mw_record r = *rec;
    mw_code rc;

    if (d->ecs_mode == MW_ECS_OFF || !cid || strlen(cid) > MW_ECS_ID_MAX)
        return on_record(d, rec);
    snprintf(id, sizeof id, "docker://%s", cid);
    svc = mw__docker_get(d->docker, id);
    task = mw__ecs_agent_task_of(d->ecs, cid, &ctr);
    if (mw__ecs_ident_for(svc ? svc->labels : NULL, task, ctr, mw__ecs_agent_cluster(d->ecs),
                          ECS_LAUNCH_TYPE, &ident) != MW_OK)
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

/* The agent's model changed for container `cid`: its Docker service, if
 * it is one, is applied again. */
static void on_annotate(void *ud, const char *cid)
{
    mw__discovery *d = ud;
    char id[16 + MW_ECS_ID_MAX];
    const mw__service *svc;

    snprintf(id, sizeof id, "docker://%s", cid);
    if ((svc = mw__docker_get(d->docker, id)))
        apply(d, svc);
}

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
        .cbs = {.synced = on_ecs_synced,
                .connected = on_ecs_connected,
                .record = d->record && !d->one_shot ? on_record : NULL,
                .annotate = on_annotate,
                .ud = d},
    };
    mw_code rc = mw__ecs_agent_new(&o, &d->ecs, &err);

    d->ecs_later = 0;
    if (rc != MW_OK)
        mw__error(d->log, "ecs", "ECS agent source not started: %s", err ? err : mw_strerror(rc));
    else
        mw__info(d->log, "ecs", "asking the ECS agent at %s for task identities (%s)", url, why);
    free(err);
    update_synced(d);
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
}

/* "include" from the config, then the environment variable. */
static char *join_env(const char *cfg, const char *var)
{
    const char *env = getenv(var);
    if (cfg && env && *env)
        return mw__sprintf("%s %s", cfg, env);
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
    mw_code rc;
    if ((rc = make_filter(d, o)) != MW_OK)
        return rc;
    if ((rc = mw__http_new(o->loop, &d->http)) != MW_OK) {
        *err = mw__sprintf("cannot make the Docker client: %s", mw_strerror(rc));
        return rc;
    }
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
                .ud = d},
    };
    return mw__docker_new(&dopts, &d->docker, err);
}

/* ECS task identities join Docker services: without Docker, nothing to
 * join. A bad ECS setting is logged, not fatal. */
static mw_code setup_ecs(mw__discovery *d, const mw__discovery_opts *o)
{
    mw__ecs_verdict verdict;
    char *url = NULL, *why = NULL;
    mw_code rc =
        mw__ecs_where(o->ecs_mode, o->ecs_agent_url, o->ecs_config_path, &verdict, &url, &why);

    if (rc == MW_EINVAL) {
        mw__error(d->log, "ecs", "%s", why ? why : "bad ECS agent URL");
        d->ecs_mode = MW_ECS_OFF;
        rc = MW_OK;
    } else if (rc == MW_OK && verdict == MW_ECS_HERE) {
        start_ecs(d, url, why); /* a failure is logged: Docker goes on */
    } else if (rc == MW_OK) {
        d->ecs_later = verdict == MW_ECS_LATER;
        mw__debug(d->log, "ecs", "%s", why);
    }
    free(url);
    free(why);
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
    d->log = o->log;
    d->loop = o->loop;
    d->record = o->record;
    d->record_ud = o->record_ud;
    d->one_shot = o->one_shot;
    d->ecs_mode = o->ecs_mode;
    d->ecs_poll = o->ecs_poll_interval;
    d->set = *set;
    memset(set, 0, sizeof *set);
    d->vars = (mw__tmplvars_opts){
        .host_network_host = o->host_network_host,
        .env_allow = o->env_allowlist,
        .nenv_allow = o->n_env_allowlist,
    };
    if (!(d->rec = mw__reconcile_new(&d->set, &d->vars, &o->ops, o->log)))
        goto out;
    if ((host = docker_host(o, &off)) != NULL) {
        if ((rc = start_docker(d, o, host, err)) == MW_OK)
            rc = setup_ecs(d, o);
    } else {
        rc = MW_OK, d->docker_synced = 1;
        update_synced(d);
    }
    if (rc != MW_OK)
        goto out;
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
    mw__docker_free(d->docker);
    mw__http_free(d->http);
    mw__reconcile_free(d->rec);
    mw__filter_free(d->filter);
    mw__template_set_free(&d->set);
    free(d->error);
    free(d);
}

int mw__discovery_synced(const mw__discovery *d)
{
    return d->synced;
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

const mw__template_set *mw__discovery_templates(const mw__discovery *d)
{
    return &d->set;
}
