/*
 * ecs_lua.c - mw.ecs: one container's numbers from the task metadata
 * endpoint of the ECS task moonwatch runs in, for checks such as
 * `ecs_fargate`.
 *
 *   mw.ecs.task_stats(id [, {timeout=}])  -> table | false, why | nil, err
 *   mw.ecs.task_limits(id [, {timeout=}]) -> table | false, why | nil, err
 *
 * The engine fetches, not the check: the URL is the one the engine found
 * (the sandbox's mw__ecs_endpoint, from the ECS agent's variables), with
 * /task/stats or /task appended, never a URL from a check or a label.
 * It is link-local on AWS (169.254.170.2), which checks' own I/O refuses;
 * here it is allowed for this one URL, and redirects are not followed.
 * The request is non-blocking like mw.http (net.c suspends the run), and
 * the answer is parsed in C (ecs_stats.c) into numbers:
 *
 *   task_stats: cgroup (1 or 2, when known), cpu {usage_ns, user_ns,
 *     system_ns, host_ns, online}, mem {usage, max_usage, limit, rss,
 *     cache, inactive_file, working_set}, io {read_bytes, write_bytes,
 *     read_ops, write_ops}, net {<interface> = {rx_bytes, tx_bytes,
 *     rx_errors, tx_errors}}: each number absent when the payload does
 *     not have it (see ecs_stats.h)
 *   task_limits: cpu, memory (the container's: CPU units, MiB),
 *     task_cpu, task_memory (the task's: vCPUs, MiB), each absent when
 *     not set
 *
 * `id` is the container's DockerId (%%container_id%%). A malformed id or
 * option raises. No endpoint, a failed request, an HTTP status but 200
 * or a malformed payload return nil and why; an answer that has no stats
 * (or no entry) for that container returns false and why: the endpoint
 * works, the container is starting or gone.
 *
 * Ownership: the result of a request lives in a userdata on the calling
 * coroutine's stack while it waits (net.c reads the answer into it and
 * frees the request before anything is pushed).
 */
#include "lua/ecs_stats.h"
#include "lua/sandbox_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Larger than any task's answer (ten containers' stats are ~50 KiB). */
#define MAX_BODY ((size_t)2 << 20)
#define ERR_LEN  512

typedef struct result {
    char id[MW_ECS_STATS_ID_MAX + 1];
    mw_code rc;
    char err[ERR_LEN];
    union {
        mw__ecs_stats stats;
        mw__ecs_limits limits;
    } u;
} result;

/* ------------------------------------------------------------- pushing */

static void set_u64(lua_State *L, const char *k, uint64_t v)
{
    if (v <= (uint64_t)LUA_MAXINTEGER)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushnumber(L, (lua_Number)v);
    lua_setfield(L, -2, k);
}

static const struct field {
    const char *group;
    const char *key;
} fields[MW_ECS_NFIELDS] = {
    [MW_ECS_CPU_USAGE] = {"cpu", "usage_ns"},
    [MW_ECS_CPU_USER] = {"cpu", "user_ns"},
    [MW_ECS_CPU_SYSTEM] = {"cpu", "system_ns"},
    [MW_ECS_CPU_HOST] = {"cpu", "host_ns"},
    [MW_ECS_CPU_ONLINE] = {"cpu", "online"},
    [MW_ECS_MEM_USAGE] = {"mem", "usage"},
    [MW_ECS_MEM_MAX_USAGE] = {"mem", "max_usage"},
    [MW_ECS_MEM_LIMIT] = {"mem", "limit"},
    [MW_ECS_MEM_RSS] = {"mem", "rss"},
    [MW_ECS_MEM_CACHE] = {"mem", "cache"},
    [MW_ECS_MEM_INACTIVE] = {"mem", "inactive_file"},
    [MW_ECS_MEM_WORKING_SET] = {"mem", "working_set"},
    [MW_ECS_IO_READ_BYTES] = {"io", "read_bytes"},
    [MW_ECS_IO_WRITE_BYTES] = {"io", "write_bytes"},
    [MW_ECS_IO_READ_OPS] = {"io", "read_ops"},
    [MW_ECS_IO_WRITE_OPS] = {"io", "write_ops"},
};

static const char *const groups[] = {"cpu", "mem", "io"};

static const char *const net_keys[MW_ECS_NET_NFIELDS] = {
    [MW_ECS_NET_RX_BYTES] = "rx_bytes",
    [MW_ECS_NET_TX_BYTES] = "tx_bytes",
    [MW_ECS_NET_RX_ERRORS] = "rx_errors",
    [MW_ECS_NET_TX_ERRORS] = "tx_errors",
};

static void push_net(lua_State *L, const mw__ecs_stats *s)
{
    lua_createtable(L, 0, (int)s->nnet);
    for (size_t i = 0; i < s->nnet; i++) {
        const mw__ecs_iface *f = &s->net[i];
        lua_createtable(L, 0, MW_ECS_NET_NFIELDS);
        for (int k = 0; k < MW_ECS_NET_NFIELDS; k++)
            if ((f->set >> k) & 1u)
                set_u64(L, net_keys[k], f->v[k]);
        lua_setfield(L, -2, f->name);
    }
}

/* The groups first, then each number into its group. */
static void push_stats(lua_State *L, const mw__ecs_stats *s)
{
    lua_createtable(L, 0, 5);
    int t = lua_gettop(L);
    if (s->cgroup) {
        lua_pushinteger(L, s->cgroup);
        lua_setfield(L, t, "cgroup");
    }
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        lua_createtable(L, 0, 7);
        lua_setfield(L, t, groups[g]);
    }
    for (int f = 0; f < MW_ECS_NFIELDS; f++) {
        if (!mw__ecs_has(s, (enum mw__ecs_field)f))
            continue;
        lua_getfield(L, t, fields[f].group);
        set_u64(L, fields[f].key, s->v[f]);
        lua_pop(L, 1);
    }
    push_net(L, s);
    lua_setfield(L, t, "net");
}

static const char *const limit_keys[MW_ECS_LIMIT_N] = {
    [MW_ECS_LIMIT_CPU] = "cpu",
    [MW_ECS_LIMIT_MEMORY] = "memory",
    [MW_ECS_LIMIT_TASK_CPU] = "task_cpu",
    [MW_ECS_LIMIT_TASK_MEMORY] = "task_memory",
};

static void push_limits(lua_State *L, const mw__ecs_limits *l)
{
    lua_createtable(L, 0, MW_ECS_LIMIT_N);
    for (int k = 0; k < MW_ECS_LIMIT_N; k++) {
        if (!((l->set >> k) & 1u))
            continue;
        double v = l->v[k];
        if (v == floor(v) && v <= (double)LUA_MAXINTEGER)
            lua_pushinteger(L, (lua_Integer)v);
        else
            lua_pushnumber(L, v);
        lua_setfield(L, -2, limit_keys[k]);
    }
}

/* nil, err (a failure) or false, why (no such container in the answer). */
static int push_failure(lua_State *L, const result *r)
{
    if (r->rc == MW_ENOTFOUND)
        lua_pushboolean(L, 0);
    else
        luaL_pushfail(L);
    lua_pushstring(L, r->err);
    return 2;
}

static int push_stats_result(lua_State *L, void *res)
{
    result *r = res;
    if (r->rc != MW_OK)
        return push_failure(L, r);
    push_stats(L, &r->u.stats);
    return 1;
}

static int push_limits_result(lua_State *L, void *res)
{
    result *r = res;
    if (r->rc != MW_OK)
        return push_failure(L, r);
    push_limits(L, &r->u.limits);
    return 1;
}

/* ------------------------------------------------------------- reading */

static void say(result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The reason into r->err (cut to fit). */
static void say(result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
}

/* MW_OK when `a` is a 200 answer; else the reason, in r->err. */
static mw_code answered(const mw__net_answer *a, result *r)
{
    if (a->code != MW_OK)
        say(r, "%s: %s", a->what, a->err);
    else if (a->status != 200)
        say(r, "%s: HTTP status %ld", a->what, a->status);
    return a->code != MW_OK || a->status != 200 ? MW_EIO : MW_OK;
}

static void read_stats(const mw__net_answer *a, void *res)
{
    result *r = res;
    char msg[ERR_LEN];
    if ((r->rc = answered(a, r)) != MW_OK)
        return;
    r->rc = mw__ecs_stats_parse(a->body, a->len, r->id, &r->u.stats, msg, sizeof msg);
    if (r->rc != MW_OK)
        say(r, "%s: %s", a->what, msg);
}

static void read_limits(const mw__net_answer *a, void *res)
{
    result *r = res;
    char msg[ERR_LEN];
    if ((r->rc = answered(a, r)) != MW_OK)
        return;
    r->rc = mw__ecs_limits_parse(a->body, a->len, r->id, &r->u.limits, msg, sizeof msg);
    if (r->rc != MW_OK)
        say(r, "%s: %s", a->what, msg);
}

static const mw__net_reader stats_reader = {read_stats, push_stats_result};
static const mw__net_reader limits_reader = {read_limits, push_limits_result};

/* ------------------------------------------------------------- calls */

/* The options table at 2 (nil or {timeout=}): the timeout, 0 when none. */
static double opt_timeout(lua_State *L, const char *fn)
{
    if (lua_isnoneornil(L, 2))
        return 0;
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), "timeout") != 0)
            luaL_error(L, "%s: unknown option '%s'", fn, luaL_tolstring(L, -1, NULL));
    }
    lua_getfield(L, 2, "timeout");
    double t = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
    if (!lua_isnil(L, -1) && (isnan(t) || t < 0))
        luaL_error(L, "%s: option 'timeout' must be a number >= 0", fn);
    lua_pop(L, 1);
    return t > 0 ? t : 0;
}

/* Checks the arguments, then GETs <endpoint><path>. */
static int ecs_get(lua_State *L, const char *fn, const char *path, const mw__net_reader *reader)
{
    const char *id = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : NULL;
    if (!mw__ecs_stats_id_valid(id))
        return luaL_argerror(L, 1, "a container id (1 to 128 of A-Z a-z 0-9 _ . -) expected");
    double timeout = opt_timeout(L, fn);
    mw__sandbox *sb = mw__sandbox_of(L);
    if (!sb || !sb->ecs.url) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: %s", fn,
                        sb && sb->ecs.why ? sb->ecs.why : "no ECS task metadata endpoint");
        return 2;
    }
    lua_settop(L, 2);
    result *r = lua_newuserdatauv(L, sizeof *r, 0); /* at 3, kept while waiting */
    memset(r, 0, sizeof *r);
    memcpy(r->id, id, strlen(id) + 1);
    const char *url = lua_pushfstring(L, "%s%s", sb->ecs.url, path);
    return mw__net_engine_get(L, fn, url, timeout, MAX_BODY, reader, r);
}

static int ecs_task_stats(lua_State *L)
{
    return ecs_get(L, "mw.ecs.task_stats", "/task/stats", &stats_reader);
}

static int ecs_task_limits(lua_State *L)
{
    return ecs_get(L, "mw.ecs.task_limits", "/task", &limits_reader);
}

static const luaL_Reg ecs_funcs[] = {
    {"task_stats", ecs_task_stats},
    {"task_limits", ecs_task_limits},
    {NULL, NULL},
};

void mw__open_ecs(lua_State *L)
{
    lua_createtable(L, 0, 3);
    luaL_setfuncs(L, ecs_funcs, 0);
    lua_pushliteral(L, "mw.ecs");
    lua_setfield(L, -2, "__name");
    mw__push_readonly(L, -1);
    lua_setfield(L, -3, "ecs");
    lua_pop(L, 1);
}
