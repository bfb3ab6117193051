/*
 * tmplvars.c - %%var%% resolution over a JSON config for one service.
 *
 * One left-to-right pass per string, no regex: a string without "%%" is
 * copied as it is; otherwise literal runs and variable values are
 * appended to one capped buffer that the whole call reuses. The first
 * variable that cannot be resolved stops everything: the caller gets
 * NULL and the reason, never a partly resolved tree.
 *
 * Everything returned is new (caller frees); `tmpl`, the service and the
 * options are only read.
 */
#include "discovery/tmplvars.h"

#include "core/base/buf.h"
#include "core/base/util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A resolved string never grows past this. */
#define RESOLVED_MAX (1024 * 1024)
/* Longest variable name between the %% marks. */
#define VAR_NAME_MAX 128
/* A whole-variable value longer than this is never a number. */
#define NUMBER_MAX 32

typedef struct rctx {
    const mw__service *svc;
    const mw__tmplvars_opts *o;
    mw__buf buf;
    char num[24]; /* a formatted port or pid */
    char **reason;
} rctx;

/* A variable's value; an address is bracketed when IPv6 inside a URL. */
typedef struct var_value {
    const char *s;
    int is_addr;
} var_value;

/* ------------------------------------------------------------ failures */

/* Keeps `r` as the reason (the first one wins) and returns `rc`; a NULL
 * `r` (it could not be made) is "out of memory", and MW_ENOMEM. */
static mw_code set_reason(rctx *c, char *r, mw_code rc)
{
    if (!r)
        rc = MW_ENOMEM;
    if (*c->reason)
        free(r);
    else
        *c->reason = r ? r : mw__strdup("out of memory");
    return rc;
}

/* Sets the reason "out of memory"; returns MW_ENOMEM. */
static mw_code oom(rctx *c)
{
    return set_reason(c, mw__strdup("out of memory"), MW_ENOMEM);
}

/* Sets "%%<name>%%: <message>"; returns MW_EINVAL (the config does not
 * resolve for this service) for the caller to pass on. */
static mw_code fail(rctx *c, const char *name, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static mw_code fail(rctx *c, const char *name, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = mw__vsprintf(fmt, ap);
    va_end(ap);
    mw_code rc =
        set_reason(c, msg ? mw__sprintf("%%%%%.*s%%%%: %s", (int)n, name, msg) : NULL, MW_EINVAL);
    free(msg);
    return rc;
}

/* ------------------------------------------------------------ variables */

/* A variable getter: `name` is the whole name (for messages), `arg` what
 * follows the prefix of a prefixed variable. MW_OK with *v set, or
 * MW_EINVAL with the reason set. */
typedef mw_code (*var_fn)(rctx *c, const char *name, size_t n, const char *arg, size_t an,
                          var_value *v);

/* The address of a network: IPv4, else IPv6, else NULL. */
static const char *net_addr(const mw__svc_network *net)
{
    if (net->ip && net->ip[0])
        return net->ip;
    if (net->ip6 && net->ip6[0])
        return net->ip6;
    return NULL;
}

/* Datadog's fallback: the only network with an address, else "bridge",
 * else the hostname when no network has an address. */
static mw_code host_fallback(rctx *c, const char *name, size_t n, var_value *v)
{
    const mw__service *s = c->svc;
    const char *only = NULL, *bridge = NULL;
    size_t count = 0;
    for (size_t i = 0; i < s->nnets; i++) {
        const char *a = net_addr(&s->nets[i]);
        if (!a)
            continue;
        count++;
        only = a;
        if (s->nets[i].name && strcmp(s->nets[i].name, "bridge") == 0)
            bridge = a;
    }
    v->is_addr = 1;
    v->s = count == 1 ? only : bridge;
    if (v->s)
        return MW_OK;
    if (count == 0 && s->hostname && s->hostname[0]) {
        v->s = s->hostname;
        return MW_OK;
    }
    if (count == 0)
        return fail(c, name, n, "the container has no IP address and no hostname");
    return fail(c, name, n,
                "the container has addresses on %zu networks and none is \"bridge\": name one "
                "with %%%%host_<network>%%%%",
                count);
}

static mw_code host_network(rctx *c, var_value *v)
{
    v->s = c->o && c->o->host_network_host ? c->o->host_network_host : "127.0.0.1";
    v->is_addr = 1;
    return MW_OK;
}

static mw_code var_host(rctx *c, const char *name, size_t n, const char *arg, size_t an,
                        var_value *v)
{
    MW_UNUSED(arg), MW_UNUSED(an);
    if (c->svc->host_network)
        return host_network(c, v);
    return host_fallback(c, name, n, v);
}

static mw_code var_host_net(rctx *c, const char *name, size_t n, const char *arg, size_t an,
                            var_value *v)
{
    const mw__service *s = c->svc;
    if (s->host_network)
        return host_network(c, v);
    for (size_t i = 0; i < s->nnets; i++) {
        const char *nm = s->nets[i].name, *a = net_addr(&s->nets[i]);
        if (a && nm && strlen(nm) == an && memcmp(nm, arg, an) == 0) {
            v->s = a;
            v->is_addr = 1;
            return MW_OK;
        }
    }
    /* Not on that network: the %%host%% fallback, as Datadog does. */
    return host_fallback(c, name, n, v);
}

static const char *fmt_num(rctx *c, long x)
{
    snprintf(c->num, sizeof c->num, "%ld", x);
    return c->num;
}

static mw_code var_port(rctx *c, const char *name, size_t n, const char *arg, size_t an,
                        var_value *v)
{
    MW_UNUSED(arg), MW_UNUSED(an);
    if (c->svc->nports == 0 && c->svc->origin == MW_SVC_TASK_METADATA)
        return fail(c, name, n,
                    "the task metadata lists no port for this container, and the ports its "
                    "image exposes are unknown without a Docker engine: give the port itself");
    if (c->svc->nports == 0)
        return fail(c, name, n, "the container exposes no port");
    v->s = fmt_num(c, c->svc->ports[c->svc->nports - 1].number);
    return MW_OK;
}

/* %%port_<index>%% (digits) or %%port_<name>%%. */
static mw_code var_port_arg(rctx *c, const char *name, size_t n, const char *arg, size_t an,
                            var_value *v)
{
    const mw__service *s = c->svc;
    size_t idx = 0, digits = 0;
    for (; digits < an && arg[digits] >= '0' && arg[digits] <= '9'; digits++)
        if (idx < 1000000) /* past any real port list; no overflow */
            idx = idx * 10 + (size_t)(arg[digits] - '0');
    if (digits == an) {
        if (idx < s->nports) {
            v->s = fmt_num(c, s->ports[idx].number);
            return MW_OK;
        }
        return fail(c, name, n, "no port at index %.*s: the container exposes %zu", (int)an, arg,
                    s->nports);
    }
    for (size_t i = 0; i < s->nports; i++) {
        const char *pn = s->ports[i].name;
        if (pn && strlen(pn) == an && memcmp(pn, arg, an) == 0) {
            v->s = fmt_num(c, s->ports[i].number);
            return MW_OK;
        }
    }
    return fail(c, name, n, "the container has no port named \"%.*s\"", (int)an, arg);
}

static mw_code var_pid(rctx *c, const char *name, size_t n, const char *arg, size_t an,
                       var_value *v)
{
    MW_UNUSED(arg), MW_UNUSED(an);
    if (c->svc->pid <= 0 && c->svc->origin == MW_SVC_TASK_METADATA)
        return fail(c, name, n, "the ECS task metadata does not give a container's pid");
    if (c->svc->pid <= 0)
        return fail(c, name, n, "the container's pid is unknown (is it running?)");
    v->s = fmt_num(c, c->svc->pid);
    return MW_OK;
}

/* A service string field, unresolved when empty. */
static mw_code field(rctx *c, const char *name, size_t n, const char *value, const char *what,
                     var_value *v)
{
    if (!value || !value[0])
        return fail(c, name, n, "the container has no %s", what);
    v->s = value;
    return MW_OK;
}

static mw_code var_hostname(rctx *c, const char *name, size_t n, const char *arg, size_t an,
                            var_value *v)
{
    MW_UNUSED(arg), MW_UNUSED(an);
    return field(c, name, n, c->svc->hostname, "hostname", v);
}

static mw_code var_container_name(rctx *c, const char *name, size_t n, const char *arg, size_t an,
                                  var_value *v)
{
    MW_UNUSED(arg), MW_UNUSED(an);
    return field(c, name, n, c->svc->name, "name", v);
}

static mw_code var_container_id(rctx *c, const char *name, size_t n, const char *arg, size_t an,
                                var_value *v)
{
    MW_UNUSED(arg), MW_UNUSED(an);
    return field(c, name, n, c->svc->cid, "id", v);
}

static int env_allowed(const mw__tmplvars_opts *o, const char *var, size_t n)
{
    for (size_t i = 0; o && i < o->nenv_allow; i++) {
        const char *a = o->env_allow[i];
        if (a && strlen(a) == n && memcmp(a, var, n) == 0)
            return 1;
    }
    return 0;
}

static mw_code var_env(rctx *c, const char *name, size_t n, const char *arg, size_t an,
                       var_value *v)
{
    if (!env_allowed(c->o, arg, an))
        return fail(c, name, n, "%.*s is not in the env allowlist", (int)an, arg);
    const cJSON *e = NULL;
    for (const cJSON *it = c->svc->env ? c->svc->env->child : NULL; it; it = it->next)
        if (it->string && strlen(it->string) == an && memcmp(it->string, arg, an) == 0)
            e = it;
    if (!cJSON_IsString(e) || !e->valuestring)
        return fail(c, name, n, "the container has no env var %.*s", (int)an, arg);
    v->s = e->valuestring;
    return MW_OK;
}

/* %%extra_<key>%% and %%kube_<key>%%: values the source found beside the
 * container (Datadog reads both from the same place). `what` says where
 * such values come from, for the reason when there is none. */
static mw_code extra_value(rctx *c, const char *name, size_t n, const char *arg, size_t an,
                           const char *what, var_value *v)
{
    const cJSON *x = c->svc->extra, *e = NULL;
    for (const cJSON *it = x ? x->child : NULL; it; it = it->next)
        if (it->string && strlen(it->string) == an && memcmp(it->string, arg, an) == 0)
            e = it;
    if (cJSON_IsString(e) && e->valuestring) {
        v->s = e->valuestring;
        return MW_OK;
    }
    if (!x)
        return fail(c, name, n, "the service has no extra values (%s; a Docker container has none)",
                    what);
    return fail(c, name, n, "the service has no extra value \"%.*s\"", (int)an, arg);
}

static mw_code var_extra(rctx *c, const char *name, size_t n, const char *arg, size_t an,
                         var_value *v)
{
    return extra_value(c, name, n, arg, an, "they come from the source, such as ECS task metadata",
                       v);
}

static mw_code var_kube(rctx *c, const char *name, size_t n, const char *arg, size_t an,
                        var_value *v)
{
    return extra_value(c, name, n, arg, an, "they come from Kubernetes, which is not a source here",
                       v);
}

/* %%task_arn%%, %%task_family%%, %%task_version%%, %%task_name%%,
 * %%ecs_cluster_name%%, %%ecs_container_name%%: the container's ECS
 * identity, which discovery puts in svc->extra under the variable's own
 * name (discovery/ecs/ecs_ident.h). */
static mw_code var_ecs(rctx *c, const char *name, size_t n, const char *arg, size_t an,
                       var_value *v)
{
    const cJSON *e = NULL;
    MW_UNUSED(arg), MW_UNUSED(an);
    for (const cJSON *it = c->svc->extra ? c->svc->extra->child : NULL; it; it = it->next)
        if (it->string && strlen(it->string) == n && memcmp(it->string, name, n) == 0)
            e = it;
    if (cJSON_IsString(e) && e->valuestring && e->valuestring[0]) {
        v->s = e->valuestring;
        return MW_OK;
    }
    if (!c->svc->extra || !cJSON_GetObjectItemCaseSensitive(c->svc->extra, "task_arn"))
        return fail(c, name, n,
                    "the container is not part of an ECS task (no com.amazonaws.ecs.task-arn "
                    "label, not listed by the ECS agent; or ECS discovery is off)");
    return fail(c, name, n, "not known for this ECS task container");
}

/* Known to the Datadog Agent, never resolvable here: the config stays
 * unresolved with the reason, and a template using it is not an error. */
static mw_code var_discovered_port(rctx *c, const char *name, size_t n, const char *arg, size_t an,
                                   var_value *v)
{
    MW_UNUSED(arg), MW_UNUSED(an), MW_UNUSED(v);
    return fail(c, name, n,
                "set by the Datadog Agent's configuration discovery, which moonwatch does not do");
}

/* Exact names, then prefixes (whose argument must not be empty). */
static const struct var_rule {
    const char *name;
    int prefix;
    var_fn fn;
} var_rules[] = {
    {"host", 0, var_host},
    {"hostname", 0, var_hostname},
    {"port", 0, var_port},
    {"pid", 0, var_pid},
    {"container_name", 0, var_container_name},
    {"container_id", 0, var_container_id},
    {"discovered_port", 0, var_discovered_port},
    {"task_arn", 0, var_ecs},
    {"task_family", 0, var_ecs},
    {"task_version", 0, var_ecs},
    {"task_name", 0, var_ecs},
    {"ecs_cluster_name", 0, var_ecs},
    {"ecs_container_name", 0, var_ecs},
    {"host_", 1, var_host_net},
    {"port_", 1, var_port_arg},
    {"env_", 1, var_env},
    {"extra_", 1, var_extra},
    {"kube_", 1, var_kube},
};

/* The rule of variable `name` (n bytes), or NULL when there is none. */
static const struct var_rule *rule_of(const char *name, size_t n)
{
    for (size_t i = 0; i < MW_ARRAY_LEN(var_rules); i++) {
        const struct var_rule *r = &var_rules[i];
        size_t rn = strlen(r->name);
        if (r->prefix ? n > rn && memcmp(name, r->name, rn) == 0
                      : n == rn && memcmp(name, r->name, rn) == 0)
            return r;
    }
    return NULL;
}

/* The value of variable `name` (n bytes). MW_OK, or MW_EINVAL with the
 * reason set. */
static mw_code lookup(rctx *c, const char *name, size_t n, var_value *v)
{
    const struct var_rule *r = rule_of(name, n);
    size_t rn = r ? strlen(r->name) : 0;
    v->is_addr = 0;
    if (!r)
        return fail(c, name, n, "unknown template variable");
    return r->fn(c, name, n, name + rn, n - rn, v);
}

/* ------------------------------------------------------------ scanning */

static int is_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '.';
}

/* The length of the name when s[i..] is "%%name%%", else 0. */
static size_t var_at(const char *s, size_t i, size_t len)
{
    size_t j = i + 2;
    while (j < len && j - (i + 2) <= VAR_NAME_MAX && is_name_char(s[j]))
        j++;
    size_t n = j - (i + 2);
    if (n == 0 || n > VAR_NAME_MAX || j + 2 > len || s[j] != '%' || s[j + 1] != '%')
        return 0;
    return n;
}

/* The next "%%" at or after i, or len. */
static size_t next_mark(const char *s, size_t i, size_t len)
{
    for (const char *p; i + 1 < len && (p = memchr(s + i, '%', len - i - 1));
         i = (size_t)(p - s) + 1)
        if (p[1] == '%')
            return (size_t)(p - s);
    return len;
}

/* A strict JSON number that a double holds exactly enough: integers of at
 * most 15 digits, finite values. */
static int is_json_number(const char *s)
{
    size_t i = 0, intd = 0, n = strlen(s);
    int frac = 0;
    if (n == 0 || n > NUMBER_MAX)
        return 0;
    if (s[i] == '-')
        i++;
    if (s[i] == '0')
        i++, intd = 1;
    else
        for (; s[i] >= '0' && s[i] <= '9'; i++)
            intd++;
    if (intd == 0)
        return 0;
    if (s[i] == '.') {
        frac = 1;
        size_t d = ++i;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    if (s[i] == 'e' || s[i] == 'E') {
        frac = 1;
        i++;
        if (s[i] == '+' || s[i] == '-')
            i++;
        size_t d = i;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    if (s[i] != '\0' || (!frac && intd > 15))
        return 0;
    return isfinite(strtod(s, NULL));
}

/* A string that is exactly one variable keeps a number's or boolean's
 * type. */
static cJSON *typed(const char *s)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)
        return cJSON_CreateBool(s[0] == 't');
    if (is_json_number(s))
        return cJSON_CreateNumber(strtod(s, NULL));
    return cJSON_CreateString(s);
}

/* Whether what was written so far ends inside a URL's authority
 * ("scheme://" then no '/' or space yet) and not right after '['. */
static int in_url_authority(const mw__buf *b)
{
    const char *p = mw__buf_str(b);
    size_t i = b->len;
    if (i && p[i - 1] == '[')
        return 0;
    while (i > 0) {
        char ch = p[--i];
        if (ch == '/')
            return i >= 2 && p[i - 1] == '/' && p[i - 2] == ':';
        if (ch == ' ' || ch == '\t' || ch == '\n')
            return 0;
    }
    return 0;
}

/* MW_OK; MW_EINVAL when the string would pass RESOLVED_MAX; MW_ENOMEM. */
static mw_code append(rctx *c, const char *p, size_t n)
{
    if (mw__buf_add(&c->buf, p, n) == MW_OK)
        return MW_OK;
    if (c->buf.len + n > c->buf.max)
        return set_reason(c, mw__sprintf("a resolved string would exceed %d bytes", RESOLVED_MAX),
                          MW_EINVAL);
    return oom(c);
}

static mw_code append_value(rctx *c, const var_value *v)
{
    int bracket =
        v->is_addr && strchr(v->s, ':') && !strchr(v->s, '[') && in_url_authority(&c->buf);
    mw_code rc;
    if (bracket && (rc = append(c, "[", 1)) != MW_OK)
        return rc;
    if ((rc = append(c, v->s, strlen(v->s))) != MW_OK)
        return rc;
    return bracket ? append(c, "]", 1) : MW_OK;
}

/* Hands `j`, just made (NULL: out of memory), to `*out`. */
static mw_code made(rctx *c, cJSON *j, cJSON **out)
{
    *out = j;
    return j ? MW_OK : oom(c);
}

static mw_code resolve_string(rctx *c, const char *s, cJSON **out)
{
    size_t len = strlen(s), lit = 0, i = next_mark(s, 0, len);
    var_value v;
    mw_code rc;
    if (i == len)
        return made(c, cJSON_CreateString(s), out);
    mw__buf_reset(&c->buf);
    for (; i < len; i = next_mark(s, i, len)) {
        size_t n = var_at(s, i, len);
        if (n == 0) {
            i++; /* a lone '%': literal */
            continue;
        }
        if ((rc = lookup(c, s + i + 2, n, &v)) != MW_OK)
            return rc;
        if (i == 0 && n + 4 == len)
            return made(c, typed(v.s), out);
        if ((rc = append(c, s + lit, i - lit)) != MW_OK || (rc = append_value(c, &v)) != MW_OK)
            return rc;
        i = lit = i + n + 4;
    }
    if ((rc = append(c, s + lit, len - lit)) != MW_OK)
        return rc;
    return made(c, cJSON_CreateString(mw__buf_str(&c->buf)), out);
}

/* ------------------------------------------------------------ trees */

static mw_code resolve(rctx *c, const cJSON *j, cJSON **res);

/* Resolves the children of `j` into `out`, an array or object like it. */
static mw_code resolve_children(rctx *c, const cJSON *j, cJSON *out)
{
    mw_code rc;
    for (const cJSON *ch = j->child; ch; ch = ch->next) {
        cJSON *r;
        if ((rc = resolve(c, ch, &r)) != MW_OK)
            return rc;
        cJSON_bool ok = cJSON_IsObject(j)
                            ? cJSON_AddItemToObject(out, ch->string ? ch->string : "", r)
                            : cJSON_AddItemToArray(out, r);
        if (!ok) {
            cJSON_Delete(r);
            return oom(c);
        }
    }
    return MW_OK;
}

/* A resolved copy of `j` into `*res`; the first failure stops it. */
static mw_code resolve(rctx *c, const cJSON *j, cJSON **res)
{
    cJSON *out;
    mw_code rc;
    *res = NULL;
    if (cJSON_IsString(j) && j->valuestring)
        return resolve_string(c, j->valuestring, res);
    if (!cJSON_IsArray(j) && !cJSON_IsObject(j))
        return made(c, cJSON_Duplicate(j, 1), res);
    if (!(out = cJSON_IsArray(j) ? cJSON_CreateArray() : cJSON_CreateObject()))
        return oom(c);
    if ((rc = resolve_children(c, j, out)) != MW_OK)
        goto out;
    *res = out;
    out = NULL;
out:
    cJSON_Delete(out);
    return rc;
}

mw_code mw__tmplvars_resolve(const cJSON *tmpl, const mw__service *svc, const mw__tmplvars_opts *o,
                             cJSON **out, char **reason)
{
    rctx c = {.svc = svc, .o = o, .reason = reason};
    mw_code rc;
    *out = NULL;
    *reason = NULL;
    if (!tmpl || !svc)
        return set_reason(
            &c, mw__strdup(!tmpl ? "no config to resolve" : "no service to resolve against"),
            MW_EINVAL);
    mw__buf_init(&c.buf, RESOLVED_MAX);
    rc = resolve(&c, tmpl, out);
    mw__buf_free(&c.buf);
    return rc;
}

int mw__tmplvars_has_var(const char *s)
{
    size_t len = strlen(s);
    for (size_t i = next_mark(s, 0, len); i < len; i = next_mark(s, i + 1, len))
        if (var_at(s, i, len) > 0)
            return 1;
    return 0;
}

mw_code mw__tmplvars_check(const char *s, char **reason)
{
    size_t len = strlen(s);
    *reason = NULL;
    for (size_t i = next_mark(s, 0, len); i < len; i = next_mark(s, i, len)) {
        size_t n = var_at(s, i, len);
        if (n == 0) {
            i += 1; /* a literal "%" */
            continue;
        }
        if (!rule_of(s + i + 2, n)) {
            *reason = mw__sprintf("%%%%%.*s%%%%: unknown template variable", (int)n, s + i + 2);
            return *reason ? MW_EINVAL : MW_ENOMEM;
        }
        i += n + 4;
    }
    return MW_OK;
}
