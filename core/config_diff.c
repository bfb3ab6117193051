/*
 * config_diff.c - which settings differ between two configurations (see
 * config_diff.h): one table row per key, how to compare it and whether
 * it can change live.
 */
#include "core/config_diff.h"

#include <stddef.h>
#include <string.h>

typedef enum { K_DOUBLE, K_INT, K_UINT, K_STR, K_LIST, K_PCT } kind;

typedef struct key_row {
    const char *name;
    size_t off;
    kind k;
    unsigned live; /* MW_LIVE_* bit, 0: needs a restart */
} key_row;

#define ROW(name, field, k, live)                                                                  \
    {                                                                                              \
        name, offsetof(mw_config, field), k, live                                                  \
    }

static const key_row keys[] = {
    ROW("log_level", log_level, K_INT, MW_LIVE_LOG_LEVEL),
    ROW("default_interval", default_interval, K_DOUBLE, MW_LIVE_INTERVAL),
    ROW("check_timeout", check_timeout, K_DOUBLE, MW_LIVE_TIMEOUT),
    ROW("check_memory_limit_mb", check_memory_limit_mb, K_DOUBLE, MW_LIVE_MEMORY),
    ROW("flush_interval", flush_interval, K_DOUBLE, 0),
    ROW("context_expiry", context_expiry, K_DOUBLE, 0),
    ROW("time_slice", time_slice, K_DOUBLE, 0),
    ROW("log_format", log_json, K_INT, 0),
    ROW("hostname", hostname, K_STR, 0),
    ROW("ec2_metadata", ec2_metadata, K_INT, 0),
    ROW("checks_dir", checks_dirs, K_LIST, 0),
    ROW("templates_dir", templates_dirs, K_LIST, 0),
    ROW("no_bundled", no_bundled, K_INT, 0),
    ROW("sink", sinks, K_UINT, 0),
    ROW("api_key", api_key, K_STR, 0),
    ROW("dd_url", dd_url, K_STR, 0),
    ROW("site", site, K_STR, 0),
    ROW("tags", dd_tags, K_STR, 0),
    ROW("forwarder_queue_mb", forwarder_queue_mb, K_DOUBLE, 0),
    ROW("forwarder_timeout", forwarder_timeout, K_DOUBLE, 0),
    ROW("forwarder_backoff_max", forwarder_backoff_max, K_DOUBLE, 0),
    ROW("shutdown_timeout", shutdown_timeout, K_DOUBLE, 0),
    ROW("histogram_aggregates", hist_aggregates, K_UINT, 0),
    ROW("histogram_percentiles", percentiles, K_PCT, 0),
    ROW("docker", docker_mode, K_INT, 0),
    ROW("docker_host", docker_host, K_STR, 0),
    ROW("ecs", ecs_mode, K_INT, 0),
    ROW("ecs_agent_url", ecs_agent_url, K_STR, 0),
    ROW("ecs_poll_interval", ecs_poll_interval, K_DOUBLE, 0),
    ROW("ecs_config_path", ecs_config_path, K_STR, 0),
    ROW("ecs_collect_resource_tags", ecs_collect_tags, K_INT, 0),
    ROW("ecs_pending_timeout", ecs_pending_timeout, K_DOUBLE, 0),
    ROW("state_dir", state_dir, K_STR, 0),
    ROW("container_include", container_include, K_STR, 0),
    ROW("container_exclude", container_exclude, K_STR, 0),
    ROW("ad_env_allowlist", env_allowlist, K_LIST, 0),
    ROW("host_network_host", host_network_host, K_STR, 0),
    ROW("discover_self", discover_self, K_INT, 0),
    ROW("check_unix_sockets", unix_sockets, K_LIST, 0),
    ROW("check_allow_link_local", allow_link_local, K_INT, 0),
    ROW("procfs_path", procfs_path, K_STR, 0),
    ROW("cgroup_root", cgroup_root, K_STR, 0),
    ROW("workers", workers, K_UINT, 0),
    ROW("watchdog_signal", watchdog_signal, K_INT, 0),
    ROW("listen", listen, K_STR, 0),
    ROW("listen_any", listen_any, K_INT, 0),
    ROW("health_grace", health_grace, K_DOUBLE, 0),
};

static int str_eq(const char *a, const char *b)
{
    return (!a || !*a) ? (!b || !*b) : (b && strcmp(a, b) == 0);
}

static int list_eq(const mw__strlist *a, const mw__strlist *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return 0;
    return 1;
}

static int pct_eq(const mw_config *a, const mw_config *b)
{
    if (a->npercentiles != b->npercentiles)
        return 0;
    for (size_t i = 0; i < a->npercentiles; i++)
        if (a->percentiles[i] != b->percentiles[i])
            return 0;
    return 1;
}

/* 1 when the field of `r` is the same in both. */
static int same(const key_row *r, const mw_config *a, const mw_config *b)
{
    const char *pa = (const char *)a + r->off, *pb = (const char *)b + r->off;
    switch (r->k) {
    case K_DOUBLE:
        return *(const double *)(const void *)pa == *(const double *)(const void *)pb;
    case K_INT:
        return *(const int *)(const void *)pa == *(const int *)(const void *)pb;
    case K_UINT:
        return *(const unsigned *)(const void *)pa == *(const unsigned *)(const void *)pb;
    case K_STR:
        return str_eq(*(char *const *)(const void *)pa, *(char *const *)(const void *)pb);
    case K_LIST:
        return list_eq((const mw__strlist *)(const void *)pa,
                       (const mw__strlist *)(const void *)pb);
    case K_PCT:
        return pct_eq(a, b);
    }
    return 1;
}

size_t mw__config_diff(const mw_config *a, const mw_config *b, unsigned *live, const char **restart,
                       size_t max)
{
    size_t n = 0;
    *live = 0;
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        if (same(&keys[i], a, b))
            continue;
        if (keys[i].live)
            *live |= keys[i].live;
        else if (n++ < max)
            restart[n - 1] = keys[i].name;
    }
    return n;
}
