/*
 * ecs_where.c - whether and where to ask an ECS agent (see ecs_where.h):
 * the reasons in their order, each a small function, and the URL check.
 */
#include "discovery/ecs/ecs_where.h"

#include "core/base/netaddr.h"
#include "core/base/util.h"
#include "discovery/ecs/ecs_agent.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HOST_MAX 256

/* ------------------------------------------------------------- URLs */

/* The host of `url` (after the scheme, before port or path) into `out`;
 * 1 when it is a bracketed IPv6 literal. -1 when there is none. */
static int url_host(const char *rest, char out[HOST_MAX])
{
    size_t n;
    int v6 = rest[0] == '[';
    const char *end = v6 ? strchr(rest, ']') : rest + strcspn(rest, ":/?#");

    if (!end)
        return -1;
    if (v6)
        rest++;
    n = (size_t)(end - rest);
    if (n == 0 || n >= HOST_MAX)
        return -1;
    memcpy(out, rest, n);
    out[n] = '\0';
    return v6;
}

/* The host of an http(s) URL into `host`: 0 (1 when a bracketed IPv6
 * literal), or -1 with `*err` set when it is not one. */
static int http_host(const char *url, char host[HOST_MAX], char **err)
{
    const char *rest = NULL;
    int v6;

    *err = NULL;
    if (url && strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (url && strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    if (!rest || (v6 = url_host(rest, host)) < 0 || strchr(rest, '@')) {
        *err = mw__sprintf("\"%s\" is not an http:// or https:// URL with a host", url ? url : "");
        return -1;
    }
    return v6;
}

mw_code mw__ecs_url_check(const char *url, char **err)
{
    char host[HOST_MAX];
    int v6 = http_host(url, host, err);

    if (v6 < 0)
        return *err ? MW_EINVAL : MW_ENOMEM;
    if (mw__link_local_host(host, NULL, 0) == 1) {
        *err = mw__sprintf("%s is a link-local address: the ECS agent's introspection API "
                           "listens on the instance itself (%s)",
                           host, MW_ECS_AGENT_DEFAULT);
        return *err ? MW_EINVAL : MW_ENOMEM;
    }
    return MW_OK;
}

/* ------------------------------------------------------------- metadata */

mw_code mw__ecs_metadata_url(char **url, const char **var, char **why)
{
    static const char *const vars[] = {MW_ECS_METADATA_V4_VAR, MW_ECS_METADATA_V3_VAR};
    const char *v = NULL;
    char host[HOST_MAX], *err = NULL;
    size_t n;

    *url = *why = NULL;
    *var = NULL;
    for (size_t i = 0; i < MW_ARRAY_LEN(vars) && !v; i++) {
        const char *e = getenv(vars[i]);
        if (e && *e)
            v = e, *var = vars[i];
    }
    if (!v)
        return MW_OK;
    if (http_host(v, host, &err) < 0) {
        *why = err ? mw__sprintf("$%s: %s", *var, err) : NULL;
        free(err);
        return *why ? MW_EINVAL : MW_ENOMEM;
    }
    n = strlen(v);
    while (n > 0 && v[n - 1] == '/')
        n--;
    *url = mw__strndup(v, n);
    return *url ? MW_OK : MW_ENOMEM;
}

/* ------------------------------------------------------------- reasons */

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *mw__ecs_config_path_default(void)
{
    return is_dir("/host") ? "/host/etc/ecs/ecs.config" : "/etc/ecs/ecs.config";
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* An ECS task's variables, outside Fargate. */
static const char *ecs_variable(void)
{
    const char *exec = env("AWS_EXECUTION_ENV");
    if (exec && strcmp(exec, "AWS_ECS_FARGATE") == 0)
        return NULL;
    if (env(MW_ECS_METADATA_V4_VAR))
        return MW_ECS_METADATA_V4_VAR;
    return env(MW_ECS_METADATA_V3_VAR) ? MW_ECS_METADATA_V3_VAR : NULL;
}

/* A URL from the environment, and the variable's name. */
static const char *env_url(const char **name)
{
    static const char *const vars[] = {"ECS_AGENT_URL", "DD_ECS_AGENT_URL"};
    for (size_t i = 0; i < MW_ARRAY_LEN(vars); i++)
        if (env(vars[i])) {
            *name = vars[i];
            return env(vars[i]);
        }
    return NULL;
}

static mw_code here(const char *url, char *why, mw__ecs_verdict *verdict, char **out_url,
                    char **out_why)
{
    *out_url = mw__strdup(url);
    *out_why = why;
    *verdict = MW_ECS_HERE;
    return *out_url && why ? MW_OK : MW_ENOMEM;
}

mw_code mw__ecs_where(int mode, const char *url, const char *config_path, mw__ecs_verdict *verdict,
                      char **out_url, char **why)
{
    const char *name = NULL, *var, *from_env;
    struct stat st;
    char *err = NULL;

    *verdict = MW_ECS_NEVER;
    *out_url = NULL;
    *why = NULL;
    if (mode == MW_ECS_OFF) {
        *why = mw__strdup("ECS discovery is off (ecs: off)");
        return *why ? MW_OK : MW_ENOMEM;
    }
    if (url && *url) {
        if (mw__ecs_url_check(url, &err) != MW_OK) {
            *why = mw__sprintf("ecs_agent_url: %s; ECS discovery is off", err ? err : "?");
            free(err);
            return MW_EINVAL;
        }
        return here(url, mw__sprintf("ecs_agent_url is %s", url), verdict, out_url, why);
    }
    if ((from_env = env_url(&name))) {
        if (mw__ecs_url_check(from_env, &err) != MW_OK) {
            *why = mw__sprintf("$%s: %s; ECS discovery is off", name, err ? err : "?");
            free(err);
            return MW_EINVAL;
        }
        return here(from_env, mw__sprintf("$%s is %s", name, from_env), verdict, out_url, why);
    }
    if (mode == MW_ECS_ON)
        return here(MW_ECS_AGENT_DEFAULT, mw__strdup("ecs: on"), verdict, out_url, why);
    if ((var = ecs_variable()))
        return here(MW_ECS_AGENT_DEFAULT,
                    mw__sprintf("$%s is set: moonwatch runs in an ECS task", var), verdict, out_url,
                    why);
    if (!config_path || !*config_path)
        config_path = mw__ecs_config_path_default();
    if (stat(config_path, &st) == 0 && S_ISREG(st.st_mode))
        return here(MW_ECS_AGENT_DEFAULT, mw__sprintf("%s exists", config_path), verdict, out_url,
                    why);
    *verdict = MW_ECS_LATER;
    *why = mw__sprintf("no ECS agent known (no ecs_agent_url, no ECS variable, no %s): one is "
                       "asked only once a container named " MW_ECS_AGENT_CONTAINER " runs",
                       config_path);
    return *why ? MW_OK : MW_ENOMEM;
}
