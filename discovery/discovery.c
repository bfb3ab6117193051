/*
 * discovery.c - wires the Docker source, the container filter and the
 * reconciler together for an engine (see discovery.h).
 */
#include "discovery/discovery.h"

#include "core/base/http.h"
#include "core/base/util.h"
#include "discovery/docker/docker.h"
#include "discovery/filter.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_DOCKER_SOCKET "/var/run/docker.sock"

struct mw__discovery {
    const mw__log *log;
    mw__record_fn record;
    void *record_ud;
    mw__template_set set;
    mw__tmplvars_opts vars;
    mw__filter *filter;
    mw__http *http;
    mw__docker *docker;
    mw__reconcile *rec;
    int synced;
    char *error;
};

/* ------------------------------------------------------------- docker */

static void on_upsert(void *ud, const mw__service *svc)
{
    mw__discovery *d = ud;
    if (mw__reconcile_service(d->rec, svc) != MW_OK)
        mw__error(d->log, svc->id, "out of memory: service kept as it was");
}

static void on_remove(void *ud, const char *id)
{
    mw__discovery *d = ud;
    mw__reconcile_remove(d->rec, id);
}

static void on_synced(void *ud)
{
    mw__discovery *d = ud;
    d->synced = 1;
    free(d->error);
    d->error = NULL;
}

static void on_connected(void *ud, int up, const char *why)
{
    mw__discovery *d = ud;
    free(d->error);
    d->error = up || !why ? NULL : mw__strdup(why);
}

static mw_code on_record(void *ud, const mw_record *rec)
{
    mw__discovery *d = ud;
    return d->record(d->record_ud, rec);
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
                .record = o->record && !o->one_shot ? on_record : NULL,
                .ud = d},
    };
    return mw__docker_new(&dopts, &d->docker, err);
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
    d->record = o->record;
    d->record_ud = o->record_ud;
    d->set = *set;
    memset(set, 0, sizeof *set);
    d->vars = (mw__tmplvars_opts){
        .host_network_host = o->host_network_host,
        .env_allow = o->env_allowlist,
        .nenv_allow = o->n_env_allowlist,
    };
    if (!(d->rec = mw__reconcile_new(&d->set, &d->vars, &o->ops, o->log)))
        goto out;
    if ((host = docker_host(o, &off)) != NULL)
        rc = start_docker(d, o, host, err);
    else
        rc = MW_OK, d->synced = 1;
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

const mw__template_set *mw__discovery_templates(const mw__discovery *d)
{
    return &d->set;
}
