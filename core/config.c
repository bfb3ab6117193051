/*
 * config.c - configuration defaults, setters and the YAML config file.
 *
 * Every option is one row of `options[]`: the file, the CLI and the C API
 * all go through the same setter, so they accept the same values.
 */
#include "core/config.h"

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
    if (n == 4 && !strncmp(w, "none", n))
        return 0;
    return -1;
}

/* A list ("stdout,datadog", "none"); it replaces any earlier one. */
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
            *err =
                mw__sprintf("expected a list of stdout, datadog or none, got \"%.*s\"", (int)n, p);
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
        return MW_ENOMEM;
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

static const struct option_row {
    const char *key;
    setter_fn set;
} options[] = {
    {"flush_interval", set_flush},
    {"default_interval", set_interval},
    {"check_timeout", set_timeout},
    {"check_memory_limit_mb", set_memory},
    {"context_expiry", set_expiry},
    {"time_slice", set_slice},
    {"log_level", set_log_level},
    {"log_format", set_log_format},
    {"hostname", set_hostname},
    {"checks_dir", set_checks_dir},
    {"templates_dir", set_templates_dir},
    {"no_bundled", set_no_bundled},
    {"sink", set_sink},
    {"api_key", set_api_key},
    {"dd_url", set_dd_url},
    {"site", set_site},
    {"tags", set_dd_tags},
    {"forwarder_queue_mb", set_queue_mb},
    {"forwarder_timeout", set_fwd_timeout},
    {"forwarder_backoff_max", set_fwd_backoff},
    {"shutdown_timeout", set_shutdown_timeout},
    {"histogram_aggregates", set_aggregates},
    {"histogram_percentiles", set_percentiles},
    {"docker", set_docker},
    {"docker_host", set_docker_host},
    {"ecs", set_ecs},
    {"ecs_agent_url", set_ecs_agent_url},
    {"ecs_poll_interval", set_ecs_poll_interval},
    {"ecs_config_path", set_ecs_config_path},
    {"ecs_collect_resource_tags", set_ecs_collect_tags},
    {"ecs_pending_timeout", set_ecs_pending_timeout},
    {"state_dir", set_state_dir},
    {"container_include", set_include},
    {"container_exclude", set_exclude},
    {"ad_env_allowlist", set_env_allowlist},
    {"host_network_host", set_host_network_host},
    {"discover_self", set_discover_self},
    {"check_unix_sockets", set_unix_sockets},
    {"check_allow_link_local", set_allow_link_local},
    {"procfs_path", set_procfs_path},
    {"cgroup_root", set_cgroup_root},
    {"workers", set_workers},
    {"watchdog_signal", set_watchdog_signal},
    {"listen", set_listen},
    {"listen_any", set_listen_any},
    {"health_grace", set_health_grace},
    {"watch_config_dirs", set_watch_dirs},
};

mw_code mw_config_set(mw_config *c, const char *key, const char *value, char **err)
{
    char *msg = NULL;
    for (size_t i = 0; i < MW_ARRAY_LEN(options); i++) {
        if (strcmp(options[i].key, key) != 0)
            continue;
        mw_code rc = options[i].set(c, value, &msg);
        if (rc != MW_OK && err)
            *err = msg ? mw__sprintf("%s: %s", key, msg) : mw__strdup(mw_strerror(rc));
        free(msg);
        return rc;
    }
    if (err)
        *err = mw__sprintf("%s: unknown option", key);
    return MW_EINVAL;
}

mw_code mw_config_set_log(mw_config *c, mw_log_fn fn, void *ud)
{
    c->log_fn = fn;
    c->log_ud = fn ? ud : NULL;
    return MW_OK;
}

/* ------------------------------------------------------------- file */

/* Plural spellings in the file take lists: checks_dirs: [a, b]. */
static const char *singular(const char *key)
{
    if (!strcmp(key, "checks_dirs"))
        return "checks_dir";
    if (!strcmp(key, "templates_dirs"))
        return "templates_dir";
    return key;
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
    if ((rc = mw_config_set(c, key, buf[0] ? buf : "none", &msg)) != MW_OK) {
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
    if ((rc = mw_config_set(c, singular(key), buf, &msg)) != MW_OK) {
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
