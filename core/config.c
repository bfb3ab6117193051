/*
 * config.c - configuration defaults, setters and the YAML config file.
 *
 * Every option is one row of `options[]`: the file, the environment, the
 * CLI and the C API all go through the same setter, so they accept the
 * same values; each setting records its text and origin for
 * `moonwatch config` (mw__config_show).
 */
#include "core/config.h"

#include "core/base/aws.h"
#include "core/base/httpd.h"
#include "core/base/util.h"
#include "core/base/yaml.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

mw_code mw__strlist_add(mw__strlist *l, const char *s)
{
    char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
    if (!nv)
        return MW_ENOMEM;
    l->v = nv;
    if (!(l->v[l->n] = mw__strdup(s)))
        return MW_ENOMEM;
    l->n++;
    return MW_OK;
}

void mw__strlist_free(mw__strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

mw_config *mw_config_new(void)
{
    mw_config *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->given = calloc(mw__config_nkeys(), sizeof *c->given);
    c->origin = calloc(mw__config_nkeys(), sizeof *c->origin);
    if (!c->given || !c->origin) {
        mw_config_free(c);
        return NULL;
    }
    c->flush_interval = 15;
    c->default_interval = 15;
    c->check_timeout = 10;
    c->check_memory_limit_mb = 16;
    c->context_expiry = 300;
    c->time_slice = 0.002;
    c->watchdog_signal = 1;
    c->log_level = MW_LOG_INFO;
    c->forwarder_queue_mb = 32;
    c->forwarder_timeout = 20;
    c->forwarder_backoff_max = 64;
    c->shutdown_timeout = 10;
    c->hist_aggregates = MW_HIST_DEFAULT;
    c->percentiles[0] = 0.95;
    c->npercentiles = 1;
    c->ecs_poll_interval = 5;
    c->ecs_pending_timeout = 300;
    c->health_grace = 60;
    c->watch_dirs = -1;
    return c;
}

void mw_config_free(mw_config *c)
{
    if (!c)
        return;
    free(c->hostname);
    free(c->docker_host);
    free(c->ecs_agent_url);
    free(c->ecs_config_path);
    free(c->container_include);
    free(c->container_exclude);
    free(c->host_network_host);
    free(c->procfs_path);
    free(c->cgroup_root);
    free(c->state_dir);
    mw__wipe_free(c->api_key);
    free(c->dd_url);
    free(c->site);
    free(c->dd_tags);
    free(c->listen);
    mw__strlist_free(&c->env_allowlist);
    mw__strlist_free(&c->unix_sockets);
    mw__strlist_free(&c->checks_dirs);
    mw__strlist_free(&c->templates_dirs);
    for (size_t i = 0; i < mw__config_nkeys(); i++) {
        if (c->given)
            mw__wipe_free(c->given[i]);
        if (c->origin)
            free(c->origin[i]);
    }
    free(c->given);
    free(c->origin);
    free(c);
}

static mw_code dup_list(mw__strlist *dst, const mw__strlist *src)
{
    for (size_t i = 0; i < src->n; i++)
        if (mw__strlist_add(dst, src->v[i]) != 0)
            return MW_ENOMEM;
    return MW_OK;
}

static mw_code dup_str(char **dst, const char *src)
{
    *dst = NULL;
    return src && !(*dst = mw__strdup(src)) ? MW_ENOMEM : MW_OK;
}

/* A copy of a per-key array (given, origin). */
static mw_code dup_texts(char ***dst, char *const *src)
{
    size_t n = mw__config_nkeys();
    if (!(*dst = calloc(n, sizeof **dst)))
        return MW_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (dup_str(&(*dst)[i], src ? src[i] : NULL) != MW_OK)
            return MW_ENOMEM;
    return MW_OK;
}

mw_config *mw__config_dup(const mw_config *c)
{
    mw_config *d = malloc(sizeof *d);
    if (!d)
        return NULL;
    *d = *c;
    d->ecs_agent_url = d->ecs_config_path = NULL;
    d->hostname = d->docker_host = d->container_include = d->container_exclude = NULL;
    d->host_network_host = d->procfs_path = d->cgroup_root = d->state_dir = d->listen = NULL;
    d->api_key = d->dd_url = d->site = d->dd_tags = NULL;
    d->checks_dirs = (mw__strlist){0};
    d->templates_dirs = (mw__strlist){0};
    d->env_allowlist = (mw__strlist){0};
    d->unix_sockets = (mw__strlist){0};
    d->given = d->origin = NULL;
    if (dup_texts(&d->given, c->given) != MW_OK || dup_texts(&d->origin, c->origin) != MW_OK) {
        mw_config_free(d);
        return NULL;
    }
    if (dup_str(&d->hostname, c->hostname) != 0 || dup_str(&d->docker_host, c->docker_host) != 0 ||
        dup_str(&d->container_include, c->container_include) != 0 ||
        dup_str(&d->container_exclude, c->container_exclude) != 0 ||
        dup_str(&d->host_network_host, c->host_network_host) != 0 ||
        dup_str(&d->procfs_path, c->procfs_path) != 0 ||
        dup_str(&d->cgroup_root, c->cgroup_root) != 0 ||
        dup_str(&d->state_dir, c->state_dir) != 0 || dup_str(&d->listen, c->listen) != 0 ||
        dup_list(&d->env_allowlist, &c->env_allowlist) != 0 ||
        dup_list(&d->unix_sockets, &c->unix_sockets) != 0 ||
        dup_list(&d->checks_dirs, &c->checks_dirs) != 0 ||
        dup_list(&d->templates_dirs, &c->templates_dirs) != 0) {
        mw_config_free(d);
        return NULL;
    }
    if (dup_str(&d->ecs_agent_url, c->ecs_agent_url) != MW_OK ||
        dup_str(&d->ecs_config_path, c->ecs_config_path) != MW_OK ||
        dup_str(&d->api_key, c->api_key) != MW_OK || dup_str(&d->dd_url, c->dd_url) != MW_OK ||
        dup_str(&d->site, c->site) != MW_OK || dup_str(&d->dd_tags, c->dd_tags) != MW_OK) {
        mw_config_free(d);
        return NULL;
    }
    return d;
}

/* ------------------------------------------------------------- setters */

typedef mw_code (*setter_fn)(mw_config *c, const char *v, char **err);

static mw_code parse_seconds(const char *v, double min, double *out, char **err)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(d) || d < min) {
        *err = mw__sprintf("expected a number >= %g, got \"%s\"", min, v);
        return MW_EINVAL;
    }
    *out = d;
    return MW_OK;
}

static mw_code parse_bool(const char *v, int *out, char **err)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"))
        *out = 1;
    else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no"))
        *out = 0;
    else {
        *err = mw__sprintf("expected true or false, got \"%s\"", v);
        return MW_EINVAL;
    }
    return MW_OK;
}

static mw_code set_flush(mw_config *c, const char *v, char **err)
{
    return parse_seconds(v, 0.01, &c->flush_interval, err);
}

static mw_code set_interval(mw_config *c, const char *v, char **err)
{
    return parse_seconds(v, 1, &c->default_interval, err);
}

static mw_code set_timeout(mw_config *c, const char *v, char **err)
{
    return parse_seconds(v, 0.001, &c->check_timeout, err);
}

static mw_code set_memory(mw_config *c, const char *v, char **err)
{
    return parse_seconds(v, 0.0625, &c->check_memory_limit_mb, err);
}

static mw_code set_expiry(mw_config *c, const char *v, char **err)
{
    return parse_seconds(v, 1, &c->context_expiry, err);
}

static mw_code set_slice(mw_config *c, const char *v, char **err)
{
    return parse_seconds(v, 0.0005, &c->time_slice, err);
}

static mw_code set_log_level(mw_config *c, const char *v, char **err)
{
    int l = mw__log_level_parse(v);
    if (l < 0) {
        *err = mw__sprintf("expected debug, info, warn, error or off, got \"%s\"", v);
        return MW_EINVAL;
    }
    c->log_level = (mw_log_level)l;
    return MW_OK;
}

static mw_code set_log_format(mw_config *c, const char *v, char **err)
{
    if (strcmp(v, "text") && strcmp(v, "json")) {
        *err = mw__sprintf("expected text or json, got \"%s\"", v);
        return MW_EINVAL;
    }
    c->log_json = strcmp(v, "json") == 0;
    return MW_OK;
}

static mw_code set_hostname(mw_config *c, const char *v, char **err)
{
    MW_UNUSED(err);
    free(c->hostname);
    c->hostname = mw__strdup(v);
    return c->hostname ? MW_OK : MW_ENOMEM;
}

/* auto (only for a reason: see mw__aws_imds_where), on, off. */
static mw_code set_ec2_metadata(mw_config *c, const char *v, char **err)
{
    if (!strcmp(v, "auto"))
        c->ec2_metadata = MW_IMDS_AUTO;
    else if (!strcasecmp(v, "on") || !strcasecmp(v, "true"))
        c->ec2_metadata = MW_IMDS_ON;
    else if (!strcasecmp(v, "off") || !strcasecmp(v, "false"))
        c->ec2_metadata = MW_IMDS_OFF;
    else {
        *err = mw__sprintf("expected auto, on or off, got \"%s\"", v);
        return MW_EINVAL;
    }
    return MW_OK;
}

static mw_code set_checks_dir(mw_config *c, const char *v, char **err)
{
    MW_UNUSED(err);
    return mw__strlist_add(&c->checks_dirs, v);
}

static mw_code set_templates_dir(mw_config *c, const char *v, char **err)
{
    MW_UNUSED(err);
    return mw__strlist_add(&c->templates_dirs, v);
}

static mw_code set_no_bundled(mw_config *c, const char *v, char **err)
{
    return parse_bool(v, &c->no_bundled, err);
}

/* One word of a `sink` list: its bit, 0 for none, -1 when unknown. */
static int sink_bit(const char *w, size_t n)
{
    if (n == 6 && !strncmp(w, "stdout", n))
        return (int)MW_SINK_STDOUT;
    if (n == 7 && !strncmp(w, "datadog", n))
        return (int)MW_SINK_DATADOG;
    if (n == 10 && !strncmp(w, "prometheus", n))
        return (int)MW_SINK_PROMETHEUS;
    if (n == 4 && !strncmp(w, "none", n))
        return 0;
    return -1;
}

/* A list ("stdout,datadog", "prometheus", "none"); it replaces any
 * earlier one. Whether prometheus has its `listen` is the engine's to
 * say: the keys may come in any order. */
static mw_code set_sink(mw_config *c, const char *v, char **err)
{
    unsigned bits = 0;
    for (const char *p = v; *p;) {
        p += strspn(p, " ,\t");
        size_t n = strcspn(p, " ,\t");
        if (!n)
            break;
        int b = sink_bit(p, n);
        if (b < 0) {
            *err = mw__sprintf(
                "expected a list of stdout, datadog, prometheus or none, got \"%.*s\"", (int)n, p);
            return MW_EINVAL;
        }
        bits |= (unsigned)b;
        p += n;
    }
    c->sinks = bits;
    c->sinks_given = 1;
    return MW_OK;
}

/* The address is checked for its form here; whether it may be beyond
 * loopback (listen_any, which may come later) when the listener binds. */
static mw_code set_listen(mw_config *c, const char *v, char **err)
{
    char *copy = NULL;
    if (*v && mw__httpd_check_addr(v, 1, err) != MW_OK)
        return MW_EINVAL;
    if (*v && !(copy = mw__strdup(v)))
        return MW_ENOMEM;
    free(c->listen);
    c->listen = copy;
    return MW_OK;
}

static mw_code set_listen_any(mw_config *c, const char *v, char **err)
{
    return parse_bool(v, &c->listen_any, err);
}

static mw_code set_health_grace(mw_config *c, const char *v, char **err)
{
    return parse_seconds(v, 0, &c->health_grace, err);
}

static mw_code set_aggregates(mw_config *c, const char *v, char **err)
{
    if (mw__agg_parse_aggregates(v, &c->hist_aggregates) != MW_OK) {
        *err = mw__sprintf("unknown aggregate in \"%s\" (max, median, avg, count, sum, min)", v);
        return MW_EINVAL;
    }
    return MW_OK;
}

static mw_code set_percentiles(mw_config *c, const char *v, char **err)
{
    double p[MW_MAX_PERCENTILES];
    size_t n = 0;
    if (mw__agg_parse_percentiles(v, p, MW_MAX_PERCENTILES, &n) != MW_OK) {
        *err = mw__sprintf("percentiles: expected up to %d values in (0,1], got \"%s\"",
                           MW_MAX_PERCENTILES, v);
        return MW_EINVAL;
    }
    memcpy(c->percentiles, p, n * sizeof *p);
    c->npercentiles = n;
    return MW_OK;
}

/* Replaces a string option; "" clears it. */
static mw_code set_str(char **dst, const char *v)
{
    char *n = *v ? mw__strdup(v) : NULL;
    if (*v && !n)
        return MW_ENOMEM;
    free(*dst);
    *dst = n;
    return MW_OK;
}

static mw_code set_docker_host(mw_config *c, const char *v, char **err)
{
    if (*v && strncmp(v, "unix://", 7) && strncmp(v, "tcp://", 6)) {
        *err = mw__sprintf("expected unix:///path or tcp://host:port, got \"%s\"", v);
        return MW_EINVAL;
    }
    return set_str(&c->docker_host, v);
}

static mw_code set_docker(mw_config *c, const char *v, char **err)
{
    if (!strcmp(v, "auto"))
        c->docker_mode = MW_DOCKER_AUTO;
    else if (!strcasecmp(v, "on") || !strcasecmp(v, "true"))
        c->docker_mode = MW_DOCKER_ON;
    else if (!strcasecmp(v, "off") || !strcasecmp(v, "false"))
        c->docker_mode = MW_DOCKER_OFF;
    else {
        *err = mw__sprintf("expected auto, on or off, got \"%s\"", v);
        return MW_EINVAL;
    }
    return MW_OK;
}

static mw_code set_ecs(mw_config *c, const char *v, char **err)
{
    if (!strcmp(v, "auto"))
        c->ecs_mode = MW_ECS_AUTO;
    else if (!strcasecmp(v, "on") || !strcasecmp(v, "true"))
        c->ecs_mode = MW_ECS_ON;
    else if (!strcasecmp(v, "off") || !strcasecmp(v, "false"))
        c->ecs_mode = MW_ECS_OFF;
    else {
        *err = mw__sprintf("expected auto, on or off, got \"%s\"", v);
        return MW_EINVAL;
    }
    return MW_OK;
}

/* An http(s) URL, never link-local; "" clears it. */
static mw_code set_ecs_agent_url(mw_config *c, const char *v, char **err)
{
    mw_code rc = *v ? mw__ecs_url_check(v, err) : MW_OK;
    return rc == MW_OK ? set_str(&c->ecs_agent_url, v) : rc;
}

static mw_code set_ecs_poll_interval(mw_config *c, const char *v, char **err)
{
    return parse_seconds(v, 0.01, &c->ecs_poll_interval, err);
}

static mw_code set_ecs_collect_tags(mw_config *c, const char *v, char **err)
{
    return parse_bool(v, &c->ecs_collect_tags, err);
}

static mw_code set_ecs_pending_timeout(mw_config *c, const char *v, char **err)
{
    return parse_seconds(v, 0.01, &c->ecs_pending_timeout, err);
}

static mw_code set_ecs_config_path(mw_config *c, const char *v, char **err)
{
    if (*v && v[0] != '/') {
        *err = mw__sprintf("expected an absolute path, got \"%s\"", v);
        return MW_EINVAL;
    }
    return set_str(&c->ecs_config_path, v);
}

/* Lists join with a space: both keys may be given more than once. */
static mw_code append_words(char **dst, const char *v)
{
    char *n = *dst ? mw__sprintf("%s %s", *dst, v) : mw__strdup(v);
    if (!n)
        return MW_ENOMEM;
    free(*dst);
    *dst = n;
    return MW_OK;
}

static mw_code set_include(mw_config *c, const char *v, char **err)
{
    MW_UNUSED(err);
    return append_words(&c->container_include, v);
}

static mw_code set_exclude(mw_config *c, const char *v, char **err)
{
    MW_UNUSED(err);
    return append_words(&c->container_exclude, v);
}

/* Environment variable names, comma- or space-separated. */
static mw_code set_env_allowlist(mw_config *c, const char *v, char **err)
{
    char *copy = mw__strdup(v), *save = NULL;
    if (!copy)
        return MW_ENOMEM;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        for (const char *q = tok; *q; q++) {
            if (!(*q == '_' || (*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
                  (q > tok && *q >= '0' && *q <= '9'))) {
                *err = mw__sprintf("\"%s\" is not an environment variable name", tok);
                free(copy);
                return MW_EINVAL;
            }
        }
        if (mw__strlist_add(&c->env_allowlist, tok) != 0) {
            free(copy);
            return MW_ENOMEM;
        }
    }
    free(copy);
    return MW_OK;
}

static mw_code set_host_network_host(mw_config *c, const char *v, char **err)
{
    if (!*v || strpbrk(v, " /%")) {
        *err = mw__sprintf("expected an address or host name, got \"%s\"", v);
        return MW_EINVAL;
    }
    return set_str(&c->host_network_host, v);
}

static mw_code set_watch_dirs(mw_config *c, const char *v, char **err)
{
    return parse_bool(v, &c->watch_dirs, err);
}

static mw_code set_discover_self(mw_config *c, const char *v, char **err)
{
    return parse_bool(v, &c->discover_self, err);
}

/* Absolute paths of unix sockets checks may use, comma-separated or one
 * per list item. */
static mw_code set_unix_sockets(mw_config *c, const char *v, char **err)
{
    char *copy = mw__strdup(v), *save = NULL;
    if (!copy)
        return MW_ENOMEM;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (tok[0] != '/') {
            *err = mw__sprintf("\"%s\" is not an absolute path", tok);
            free(copy);
            return MW_EINVAL;
        }
        if (mw__strlist_add(&c->unix_sockets, tok) != 0) {
            free(copy);
            return MW_ENOMEM;
        }
    }
    free(copy);
    return MW_OK;
}

static mw_code set_allow_link_local(mw_config *c, const char *v, char **err)
{
    return parse_bool(v, &c->allow_link_local, err);
}

/* An absolute directory path; "" restores the default. Checked as text
 * only: the directory may be mounted after the config is read. */
static mw_code set_dir(char **dst, const char *v, char **err)
{
    if (*v && (v[0] != '/' || strlen(v) > 1024)) {
        *err = mw__sprintf("expected an absolute path, got \"%s\"", v);
        return MW_EINVAL;
    }
    return set_str(dst, v);
}

static mw_code set_procfs_path(mw_config *c, const char *v, char **err)
{
    return set_dir(&c->procfs_path, v, err);
}

static mw_code set_cgroup_root(mw_config *c, const char *v, char **err)
{
    return set_dir(&c->cgroup_root, v, err);
}

static mw_code set_state_dir(mw_config *c, const char *v, char **err)
{
    return set_dir(&c->state_dir, v, err);
}

static mw_code set_watchdog_signal(mw_config *c, const char *v, char **err)
{
    return parse_bool(v, &c->watchdog_signal, err);
}

static mw_code set_workers(mw_config *c, const char *v, char **err)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n < 0 || n > 256) {
        *err =
            mw__sprintf("expected a number of threads from 0 (one per core) to 256, got \"%s\"", v);
        return MW_EINVAL;
    }
    c->workers = (unsigned)n;
    return MW_OK;
}

/* Strings kept as given and never echoed back (api_key). */
static mw_code set_api_key(mw_config *c, const char *v, char **err)
{
    MW_UNUSED(err);
    mw__wipe_free(c->api_key);
    c->api_key = NULL;
    return set_str(&c->api_key, v);
}

static mw_code set_dd_url(mw_config *c, const char *v, char **err)
{
    if (*v && strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) {
        *err = mw__strdup("expected an http:// or https:// URL");
        return MW_EINVAL;
    }
    return set_str(&c->dd_url, v);
}

static mw_code set_site(mw_config *c, const char *v, char **err)
{
    MW_UNUSED(err);
    return set_str(&c->site, v);
}

static mw_code set_dd_tags(mw_config *c, const char *v, char **err)
{
    MW_UNUSED(err);
    return append_words(&c->dd_tags, v);
}

static mw_code set_queue_mb(mw_config *c, const char *v, char **err)
{
    return parse_seconds(v, 0.001, &c->forwarder_queue_mb, err);
}

static mw_code set_fwd_timeout(mw_config *c, const char *v, char **err)
{
    return parse_seconds(v, 0.01, &c->forwarder_timeout, err);
}

static mw_code set_fwd_backoff(mw_config *c, const char *v, char **err)
{
    return parse_seconds(v, 0.001, &c->forwarder_backoff_max, err);
}

static mw_code set_shutdown_timeout(mw_config *c, const char *v, char **err)
{
    return parse_seconds(v, 0, &c->shutdown_timeout, err);
}

static const mw__config_key options[] = {
    {"flush_interval", set_flush, "15", NULL, 0},
    {"default_interval", set_interval, "15", NULL, 0},
    {"check_timeout", set_timeout, "10", NULL, 0},
    {"check_memory_limit_mb", set_memory, "16", NULL, 0},
    {"context_expiry", set_expiry, "300", NULL, 0},
    {"time_slice", set_slice, "0.002", NULL, 0},
    {"log_level", set_log_level, "info", NULL, 0},
    {"log_format", set_log_format, "text", NULL, 0},
    {"hostname", set_hostname, "",
     "$DD_HOSTNAME, else the EC2 instance id (see ec2_metadata), else the system host name", 0},
    {"ec2_metadata", set_ec2_metadata, "auto", NULL, 0},
    {"checks_dir", set_checks_dir, "", "the bundled checks (unless no_bundled)", MW_KEY_LIST},
    {"templates_dir", set_templates_dir, "", "the bundled templates (unless no_bundled)",
     MW_KEY_LIST},
    {"no_bundled", set_no_bundled, "false", NULL, 0},
    {"sink", set_sink, "",
     "stdout, or datadog when an API key is set (prometheus too while listen is set)", 0},
    {"api_key", set_api_key, "", "$DD_API_KEY", MW_KEY_SECRET},
    {"dd_url", set_dd_url, "", "https://api.<site>", 0},
    {"site", set_site, "datadoghq.com", NULL, 0},
    {"tags", set_dd_tags, "", NULL, MW_KEY_LIST},
    {"forwarder_queue_mb", set_queue_mb, "32", NULL, 0},
    {"forwarder_timeout", set_fwd_timeout, "20", NULL, 0},
    {"forwarder_backoff_max", set_fwd_backoff, "64", NULL, 0},
    {"shutdown_timeout", set_shutdown_timeout, "10", NULL, 0},
    {"histogram_aggregates", set_aggregates, "max,median,avg,count", NULL, 0},
    {"histogram_percentiles", set_percentiles, "0.95", NULL, 0},
    {"docker", set_docker, "auto", NULL, 0},
    {"docker_host", set_docker_host, "", "$DOCKER_HOST, else unix:///var/run/docker.sock", 0},
    {"ecs", set_ecs, "auto", NULL, 0},
    {"ecs_agent_url", set_ecs_agent_url, "", "by the ECS agent variables", 0},
    {"ecs_poll_interval", set_ecs_poll_interval, "5", NULL, 0},
    {"ecs_config_path", set_ecs_config_path, "", "/host/etc/ecs/ecs.config or /etc/ecs/ecs.config",
     0},
    {"ecs_collect_resource_tags", set_ecs_collect_tags, "false", NULL, 0},
    {"ecs_pending_timeout", set_ecs_pending_timeout, "300", NULL, 0},
    {"state_dir", set_state_dir, "/var/lib/moonwatch", NULL, 0},
    {"container_include", set_include, "", NULL, MW_KEY_LIST},
    {"container_exclude", set_exclude, "", NULL, MW_KEY_LIST},
    {"ad_env_allowlist", set_env_allowlist, "", NULL, MW_KEY_LIST},
    {"host_network_host", set_host_network_host, "127.0.0.1", NULL, 0},
    {"discover_self", set_discover_self, "false", NULL, 0},
    {"check_unix_sockets", set_unix_sockets, "", NULL, MW_KEY_LIST},
    {"check_allow_link_local", set_allow_link_local, "false", NULL, 0},
    {"procfs_path", set_procfs_path, "", "/host/proc when mounted, else /proc", 0},
    {"cgroup_root", set_cgroup_root, "", "/host/sys/fs/cgroup when mounted, else /sys/fs/cgroup",
     0},
    {"workers", set_workers, "0", "one per core", 0},
    {"watchdog_signal", set_watchdog_signal, "true", NULL, 0},
    {"listen", set_listen, "", "none", 0},
    {"listen_any", set_listen_any, "false", NULL, 0},
    {"health_grace", set_health_grace, "60", NULL, 0},
    {"watch_config_dirs", set_watch_dirs, "true", NULL, 0}, /* run's; an embedder's: off */
};

size_t mw__config_nkeys(void)
{
    return MW_ARRAY_LEN(options);
}

const mw__config_key *mw__config_key_at(size_t i)
{
    return i < MW_ARRAY_LEN(options) ? &options[i] : NULL;
}

/* Plural spellings take lists: checks_dirs: [a, b] in the file, and are
 * accepted wherever a key is (--set, MW_CHECKS_DIRS). */
static const char *singular(const char *key)
{
    if (!strcmp(key, "checks_dirs"))
        return "checks_dir";
    if (!strcmp(key, "templates_dirs"))
        return "templates_dir";
    return key;
}

static int key_index(const char *key)
{
    key = singular(key);
    for (size_t i = 0; i < MW_ARRAY_LEN(options); i++)
        if (!strcmp(options[i].key, key))
            return (int)i;
    return -1;
}

/* Row i was set to `v` from `origin`: a list adds the item (and the
 * origin, when new), anything else replaces both. */
static mw_code record(mw_config *c, size_t i, const char *v, const char *origin)
{
    int list = (options[i].flags & MW_KEY_LIST) && c->given[i] && c->given[i][0];
    char *text = list ? mw__sprintf("%s, %s", c->given[i], v) : mw__strdup(v);
    const char *was = c->origin[i];
    char *from = list && was && strcmp(was, origin) && !strstr(was, origin)
                     ? mw__sprintf("%s + %s", was, origin)
                     : mw__strdup(origin);
    if (!text || !from) {
        mw__wipe_free(text);
        free(from);
        return MW_ENOMEM;
    }
    mw__wipe_free(c->given[i]);
    free(c->origin[i]);
    c->given[i] = text;
    c->origin[i] = from;
    return MW_OK;
}

const char *mw__config_origin(const mw_config *c, const char *key)
{
    int i = key_index(key);
    return i >= 0 && c->origin ? c->origin[i] : NULL;
}

mw_code mw__config_set_from(mw_config *c, const char *key, const char *value, const char *origin,
                            char **err)
{
    char *msg = NULL;
    int i = key_index(key);
    mw_code rc = MW_EINVAL;
    if (i < 0) {
        if (err)
            *err = mw__sprintf("%s: unknown option", key);
        goto out;
    }
    if ((rc = options[i].set(c, value, &msg)) == MW_OK) {
        rc = record(c, (size_t)i, value, origin);
    } else if (err) {
        *err = msg ? mw__sprintf("%s: %s", key, msg) : mw__strdup(mw_strerror(rc));
    }
out:
    free(msg);
    return rc;
}

mw_code mw_config_set(mw_config *c, const char *key, const char *value, char **err)
{
    return mw__config_set_from(c, key, value, "api", err);
}

mw_code mw_config_set_log(mw_config *c, mw_log_fn fn, void *ud)
{
    c->log_fn = fn;
    c->log_ud = fn ? ud : NULL;
    return MW_OK;
}

/* ------------------------------------------------------------- file */

/* mw__config_set_from() with the origin "file:PATH:LINE". */
static mw_code set_at(mw_config *c, const char *path, int line, const char *key, const char *v,
                      char **err)
{
    char *origin = mw__sprintf("file:%s:%d", path, line);
    mw_code rc = origin ? mw__config_set_from(c, key, v, origin, err) : MW_ENOMEM;
    free(origin);
    return rc;
}

static mw_code scalar_text(const cJSON *v, char *buf, size_t n)
{
    if (cJSON_IsString(v))
        snprintf(buf, n, "%s", v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(buf, n, "%.17g", v->valuedouble);
    else if (cJSON_IsBool(v))
        snprintf(buf, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else
        return MW_EINVAL;
    return MW_OK;
}

/* A key whose value is one list (sink: [stdout, datadog]): its items
 * joined with commas, set at once. */
static mw_code set_list(mw_config *c, const mw__yaml_doc *doc, const char *path, const char *key,
                        const cJSON *v, mw__diag *diag)
{
    char buf[1024] = "", item[256], *msg = NULL;
    mw__yaml_pos pos = mw__yaml_where(doc, v);
    const cJSON *it;
    mw_code rc;
    cJSON_ArrayForEach(it, v)
    {
        if (scalar_text(it, item, sizeof item) != MW_OK ||
            strlen(buf) + strlen(item) + 2 > sizeof buf) {
            mw__diag_add(diag, path, pos.line, pos.col, "%s: expected a list of words", key);
            return MW_EINVAL;
        }
        if (buf[0])
            strcat(buf, ",");
        strcat(buf, item);
    }
    if ((rc = set_at(c, path, pos.line, key, buf[0] ? buf : "none", &msg)) != MW_OK) {
        mw__diag_add(diag, path, pos.line, pos.col, "%s", msg ? msg : mw_strerror(rc));
        free(msg);
    }
    return rc;
}

static mw_code set_node(mw_config *c, const mw__yaml_doc *doc, const char *path, const char *key,
                        const cJSON *v, mw__diag *diag)
{
    char buf[4096], *msg = NULL;
    mw__yaml_pos pos = mw__yaml_where(doc, v);
    mw_code rc;
    if (cJSON_IsArray(v) && !strcmp(key, "sink"))
        return set_list(c, doc, path, key, v, diag);
    if (cJSON_IsArray(v)) {
        const cJSON *it;
        cJSON_ArrayForEach(it,
                           v) if ((rc = set_node(c, doc, path, key, it, diag)) != MW_OK) return rc;
        return MW_OK;
    }
    if (scalar_text(v, buf, sizeof buf) != MW_OK) {
        mw__diag_add(diag, path, pos.line, pos.col, "%s: expected a scalar or a list", key);
        return MW_EINVAL;
    }
    if ((rc = set_at(c, path, pos.line, singular(key), buf, &msg)) != MW_OK) {
        mw__diag_add(diag, path, pos.line, pos.col, "%s", msg ? msg : mw_strerror(rc));
        free(msg);
    }
    return rc;
}

mw_code mw_config_load_file(mw_config *c, const char *path, char **err)
{
    mw__diag diag = {0};
    mw__yaml_doc doc = {0};
    mw_code rc = mw__yaml_load(path, &doc, &diag);
    if (rc != MW_OK)
        goto out;
    rc = MW_EINVAL;
    if (doc.root && !cJSON_IsObject(doc.root)) {
        mw__diag_add(&diag, path, 1, 1, "the config file must be a mapping");
        goto out;
    }
    const cJSON *kv;
    cJSON_ArrayForEach(kv, doc.root) set_node(c, &doc, path, kv->string, kv, &diag);
    rc = diag.n ? MW_EINVAL : MW_OK;
out:
    if (rc != MW_OK && err) {
        size_t len = 1;
        for (size_t i = 0; i < diag.n; i++)
            len += strlen(diag.items[i]) + 1;
        *err = calloc(1, len);
        for (size_t i = 0; *err && i < diag.n; i++) {
            strcat(*err, diag.items[i]);
            if (i + 1 < diag.n)
                strcat(*err, "\n");
        }
    }
    mw__yaml_doc_free(&doc);
    mw__diag_free(&diag);
    return rc;
}

/* ------------------------------------------------------------- bundled */

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* "<dir of path>/../share/moonwatch" into out when it holds checks/:
 * the layout `cmake --install` makes under any prefix. */
static int installed_beside(const char *path, char *out, size_t cap)
{
    char real[PATH_MAX], *slash;
    if (!path || !realpath(path, real) || !(slash = strrchr(real, '/')))
        return 0;
    *slash = '\0';
    int n = snprintf(out, cap, "%s/../share/moonwatch", real);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    char checks[PATH_MAX + 16];
    snprintf(checks, sizeof checks, "%s/checks", out);
    if (!is_dir(checks))
        return 0;
    if (realpath(out, real) && strlen(real) < cap)
        strcpy(out, real);
    return 1;
}

static char bundled_dir[PATH_MAX];
static pthread_once_t bundled_once = PTHREAD_ONCE_INIT;

/* Found once: installed code finds the share/moonwatch of its own
 * prefix, wherever the prefix was installed: libmoonwatch.so's (the
 * loader names it by an absolute path), else the running program's (the
 * CLI, which holds the library's code itself); then the configured
 * prefix; then the source tree (a program run from the build
 * directory). */
static void find_bundled_dir(void)
{
    Dl_info info;
    if (dladdr(&bundled_once, &info) && info.dli_fname && info.dli_fname[0] == '/' &&
        installed_beside(info.dli_fname, bundled_dir, sizeof bundled_dir))
        return;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        if (installed_beside(exe, bundled_dir, sizeof bundled_dir))
            return;
    }
    if (is_dir(MW_DATADIR "/checks"))
        snprintf(bundled_dir, sizeof bundled_dir, "%s", MW_DATADIR);
    else
        snprintf(bundled_dir, sizeof bundled_dir, "%s", MW_SOURCE_DIR);
}

const char *mw__bundled_dir(void)
{
    const char *env = getenv("MOONWATCH_DATADIR");
    if (env && *env)
        return env;
    pthread_once(&bundled_once, find_bundled_dir);
    return bundled_dir;
}

/* ------------------------------------------------------------- host paths */

const char *mw__config_procfs(const mw_config *c)
{
    if (c->procfs_path)
        return c->procfs_path;
    return is_dir("/host/proc") ? "/host/proc" : "/proc";
}

const char *mw__config_state_dir(const mw_config *c)
{
    return c->state_dir ? c->state_dir : MW_STATE_DIR_DEFAULT;
}

const char *mw__config_cgroup_root(const mw_config *c)
{
    if (c->cgroup_root)
        return c->cgroup_root;
    return is_dir("/host/sys/fs/cgroup") ? "/host/sys/fs/cgroup" : "/sys/fs/cgroup";
}

/* ------------------------------------------------------------- environment */

/* The Datadog Agent's variables operators already set, and the key each
 * one sets. */
static const struct dd_name {
    const char *var;
    const char *key;
} dd_names[] = {
    {"DD_API_KEY", "api_key"},
    {"DD_SITE", "site"},
    {"DD_DD_URL", "dd_url"},
    {"DD_TAGS", "tags"},
    {"DD_HOSTNAME", "hostname"},
    {"DD_LOG_LEVEL", "log_level"},
    {"DD_CONTAINER_INCLUDE", "container_include"},
    {"DD_CONTAINER_EXCLUDE", "container_exclude"},
};

/* DD_LOG_LEVEL's words (trace, debug, info, warn, warning, error,
 * critical, off, any case) as log_level's. Writes into buf. */
static const char *dd_log_level(const char *v, char *buf, size_t n)
{
    size_t k = 0;
    for (; v[k] && k + 1 < n; k++)
        buf[k] = (char)(v[k] >= 'A' && v[k] <= 'Z' ? v[k] - 'A' + 'a' : v[k]);
    buf[k] = '\0';
    if (!strcmp(buf, "trace"))
        return "debug";
    if (!strcmp(buf, "critical"))
        return "error";
    if (!strcmp(buf, "warning"))
        return "warn";
    return buf;
}

/* The value of NAME in envp, or NULL. */
static const char *env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (char *const *e = envp; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* Sets `key` from variable `var`; an error names the variable. */
static mw_code set_from_var(mw_config *c, const char *var, const char *key, const char *v,
                            char **err)
{
    char origin[4 + 96], *msg = NULL; /* "env:" and apply_mw_var()'s var */
    snprintf(origin, sizeof origin, "env:%s", var);
    mw_code rc = mw__config_set_from(c, key, v, origin, &msg);
    if (rc != MW_OK && err)
        *err = mw__sprintf("$%s: %s", var, msg ? msg : mw_strerror(rc));
    free(msg);
    return rc;
}

static mw_code apply_dd_names(mw_config *c, char *const *envp, char **err)
{
    char level[32];
    mw_code rc = MW_OK;
    for (size_t i = 0; i < MW_ARRAY_LEN(dd_names) && rc == MW_OK; i++) {
        const char *v = env_get(envp, dd_names[i].var);
        if (!v || !*v)
            continue;
        if (!strcmp(dd_names[i].key, "log_level"))
            v = dd_log_level(v, level, sizeof level);
        rc = set_from_var(c, dd_names[i].var, dd_names[i].key, v, err);
    }
    return rc;
}

/* "MW_FLUSH_INTERVAL" to "flush_interval" in buf: 0 when the name is
 * not MW_ and upper case letters, digits and '_'. */
static int env_key(const char *name, size_t n, char *buf, size_t cap)
{
    if (n <= 3 || n - 3 >= cap || strncmp(name, "MW_", 3))
        return 0;
    for (size_t k = 3; k < n; k++) {
        char ch = name[k];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_'))
            return 0;
        buf[k - 3] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
    buf[n - 3] = '\0';
    return 1;
}

/* A directory list from one variable: its paths, comma-separated (the
 * other lists take their own syntax: container_include's regexes may hold
 * commas). */
static mw_code set_list_var(mw_config *c, const char *var, const char *key, const char *v,
                            char **err)
{
    char *copy = mw__strdup(v), *save = NULL;
    mw_code rc = copy ? MW_OK : MW_ENOMEM;
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && rc == MW_OK;
         t = strtok_r(NULL, ",", &save))
        if (*(t += strspn(t, " ")))
            rc = set_from_var(c, var, key, t, err);
    free(copy);
    return rc;
}

/* One NAME=VALUE of the environment, when NAME is MW_<something>. */
static mw_code apply_mw_var(mw_config *c, const char *entry, mw__diag *notes, char **err)
{
    char key[64], var[96];
    const char *eq = strchr(entry, '=');
    if (!eq || !env_key(entry, (size_t)(eq - entry), key, sizeof key))
        return MW_OK;
    snprintf(var, sizeof var, "%.*s", (int)(eq - entry), entry);
    int i = key_index(key);
    if (i < 0) {
        if (notes)
            mw__diag_add(notes, "environment", 0, 0,
                         "$%s is not a configuration key (a typo?): ignored; "
                         "`moonwatch config --list-keys` lists them",
                         var);
        return MW_OK;
    }
    if (options[i].set == set_checks_dir || options[i].set == set_templates_dir)
        return set_list_var(c, var, options[i].key, eq + 1, err);
    return set_from_var(c, var, options[i].key, eq + 1, err);
}

mw_code mw__config_apply_env(mw_config *c, char *const *envp, mw__diag *notes, char **err)
{
    mw_code rc = apply_dd_names(c, envp, err);
    for (char *const *e = envp; e && *e && rc == MW_OK; e++)
        rc = apply_mw_var(c, *e, notes, err);
    return rc;
}

/* ------------------------------------------------------------- showing */

char *mw__config_mask(const char *v)
{
    size_t n = strlen(v);
    return n >= 12 ? mw__sprintf("***%s", v + n - 4) : mw__strdup("***");
}

/* A URL's password (scheme://user:PASSWORD@host) masked; else a copy. */
static char *mask_url(const char *v)
{
    const char *s = strstr(v, "://");
    if (!s)
        return mw__strdup(v);
    s += 3;
    size_t auth = strcspn(s, "/?#");
    const char *at = memchr(s, '@', auth);
    const char *colon = at ? memchr(s, ':', (size_t)(at - s)) : NULL;
    if (!colon)
        return mw__strdup(v);
    return mw__sprintf("%.*s***%s", (int)(colon + 1 - v), v, at);
}

/* A key named like a credential is a secret too. */
static int is_secret(const mw__config_key *k)
{
    static const char *const words[] = {"key", "token", "password", "secret", "credential"};
    if (k->flags & MW_KEY_SECRET)
        return 1;
    for (size_t i = 0; i < MW_ARRAY_LEN(words); i++)
        if (strstr(k->key, words[i]))
            return 1;
    return 0;
}

char *mw__config_show(const mw_config *c, size_t i, const char **origin)
{
    const mw__config_key *k = mw__config_key_at(i);
    if (!k)
        return NULL;
    const char *v = c->given && c->given[i] ? c->given[i] : k->def;
    *origin = c->origin && c->origin[i] ? c->origin[i] : "default";
    if (is_secret(k) && *v)
        return mw__config_mask(v);
    return mask_url(v);
}
