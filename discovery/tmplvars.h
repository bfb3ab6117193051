/*
 * tmplvars.h - template variables (%%host%%, %%port%%, ...) resolved
 * against one service. Datadog-compatible:
 *
 *   %%host%%            the container's IP, by Datadog's fallback: the
 *                       only network's (among those with an address); else
 *                       the "bridge" network's; else, when no network has
 *                       an address, the container hostname; else
 *                       unresolved. A network's address is its IPv4 one,
 *                       else its IPv6 one. A host-network container
 *                       resolves to opts->host_network_host (default
 *                       "127.0.0.1"), %%host_<net>%% included.
 *   %%host_<net>%%      the IP on network <net>; when the container is
 *                       not on <net>, the %%host%% fallback (as Datadog)
 *   %%port%%            the highest exposed port (a container of the
 *                       ECS task metadata endpoint: the highest of its
 *                       Ports; the ports its image exposes are unknown
 *                       there, and the reason says so)
 *   %%port_<i>%%        the i-th port in ascending order (0-based)
 *   %%port_<name>%%     a named port
 *   %%pid%%, %%hostname%%, %%container_name%%, %%container_id%%
 *   %%env_<VAR>%%       the container's env VAR, only when VAR is on the
 *                       operator's allowlist
 *   %%task_arn%%, %%task_family%%, %%task_version%%, %%task_name%%,
 *   %%ecs_cluster_name%%, %%ecs_container_name%%
 *                       the ECS identity of a task's container: the
 *                       svc->extra value of that name (discovery puts it
 *                       there, discovery/ecs/ecs_ident.h); unresolved,
 *                       with the reason, for a container outside ECS
 *   %%extra_<key>%%     the value the source found for <key> beside the
 *                       service (svc->extra: the ECS identity above, and
 *                       region, cluster_name, ecs_launch_type,
 *                       availability_zone); unresolved when it has none
 *                       (a Docker container outside ECS)
 *   %%kube_<key>%%      the same lookup, under Datadog's Kubernetes name
 *   %%discovered_port%% Datadog's configuration discovery fills it in;
 *                       known, so never a typo, but always unresolved here
 *
 * A string that is exactly one variable and resolves to a number (strict
 * JSON syntax; integers of at most 15 digits) or "true"/"false" becomes a
 * JSON number (boolean); otherwise variables are substituted inside the
 * string. An IPv6 address substituted inside a URL's authority (after
 * "://", before the next '/', not right after '[') is bracketed:
 * "http://%%host%%:80" -> "http://[fd00::2]:80". An unknown
 * variable, an absent port or env value, or a non-allowlisted env
 * var leaves the whole config unresolved with a reason naming the
 * variable - never a half-filled config. "%%" not followed by a
 * well-formed "name%%" is kept literally.
 */
#ifndef MW_TMPLVARS_H
#define MW_TMPLVARS_H

#include "discovery/service.h"

#include <cjson/cJSON.h>

typedef struct mw__tmplvars_opts {
    const char *host_network_host; /* NULL: "127.0.0.1" */
    const char *const *env_allow;  /* allowlisted env var names */
    size_t nenv_allow;
} mw__tmplvars_opts;

/*
 * Makes a resolved deep copy of `tmpl` (any JSON: strings are resolved at
 * every depth, object keys are not) into `*out` (caller frees). MW_OK;
 * MW_EINVAL when it does not resolve for `svc`, with `*reason` (caller
 * frees): e.g. "%%port%%: the container exposes no port",
 * "%%env_TOKEN%%: TOKEN is not in the env allowlist",
 * "%%foo%%: unknown template variable", or a resolved string over its
 * 1 MiB cap; MW_ENOMEM, with `*reason` "out of memory" (NULL when even
 * that cannot be allocated). `*out` is NULL on error.
 */
mw_code mw__tmplvars_resolve(const cJSON *tmpl, const mw__service *svc, const mw__tmplvars_opts *o,
                             cJSON **out, char **reason);

/*
 * Checks the variable names in one template string, without a service:
 * MW_OK when every "%%name%%" in `s` is one some container could resolve,
 * else MW_EINVAL with `*reason` (caller frees) naming the first unknown
 * one, as mw__tmplvars_resolve() would; MW_ENOMEM (`*reason` NULL). Used
 * where templates are loaded, so that a typo is reported with its file and
 * line before any container comes.
 */
mw_code mw__tmplvars_check(const char *s, char **reason);

/* 1 when `s` holds at least one well-formed "%%name%%" (known or not). A
 * typed option holding one is checked once resolved, not when loaded. */
int mw__tmplvars_has_var(const char *s);

#endif
