/*
 * container_lua.c - mw.container: a container's resource numbers, parsed
 * from the host's cgroup tree and /proc (cgroup.c), for checks such as
 * `docker`.
 *
 *   mw.container.stats(id [, pid]) -> table, or nil, err
 *
 * `id` is the container's id (64 lowercase hex digits, %%container_id%%),
 * `pid` its main process when known (%%pid%%): a check names a container,
 * never a path. The table holds numbers only (absent when the cgroup does
 * not have them):
 *   cgroup  1 or 2 (the cgroup version of the host)
 *   time    monotonic seconds when the CPU numbers were read (mw.time())
 *   cpu     usage_ns, user_ns, system_ns, periods, throttled_periods,
 *           throttled_ns (cumulative since the container started)
 *   mem     usage, rss, cache, swap, limit, sw_limit (bytes; the limits
 *           only when set)
 *   io      read_bytes, write_bytes (cumulative, all block devices)
 *   threads tasks in the container
 *   net     {<interface> = {rx_bytes=, tx_bytes=}} (cumulative), only when
 *           the container has a network namespace of its own
 * A malformed id or pid raises; a container that has no cgroup here
 * returns nil and why. The files are read in C, outside Lua: nothing is
 * allocated across a call that can raise. Where the last container was
 * found is kept for the next call (see mw__cg_loc).
 */
#include "lua/cgroup.h"
#include "lua/sandbox_int.h"

#include <string.h>

#define MAX_PID 4194304

static const struct field {
    const char *group; /* NULL: at the top */
    const char *key;
} fields[MW_CG_NFIELDS] = {
    [MW_CG_CPU_USAGE] = {"cpu", "usage_ns"},
    [MW_CG_CPU_USER] = {"cpu", "user_ns"},
    [MW_CG_CPU_SYSTEM] = {"cpu", "system_ns"},
    [MW_CG_CPU_PERIODS] = {"cpu", "periods"},
    [MW_CG_CPU_THROTTLED] = {"cpu", "throttled_periods"},
    [MW_CG_CPU_THROTTLED_NS] = {"cpu", "throttled_ns"},
    [MW_CG_MEM_USAGE] = {"mem", "usage"},
    [MW_CG_MEM_RSS] = {"mem", "rss"},
    [MW_CG_MEM_CACHE] = {"mem", "cache"},
    [MW_CG_MEM_SWAP] = {"mem", "swap"},
    [MW_CG_MEM_LIMIT] = {"mem", "limit"},
    [MW_CG_MEM_SW_LIMIT] = {"mem", "sw_limit"},
    [MW_CG_IO_READ] = {"io", "read_bytes"},
    [MW_CG_IO_WRITE] = {"io", "write_bytes"},
    [MW_CG_THREADS] = {NULL, "threads"},
};

static const char *const groups[] = {"cpu", "mem", "io"};

static void push_u64(lua_State *L, uint64_t v)
{
    if (v <= (uint64_t)LUA_MAXINTEGER)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushnumber(L, (lua_Number)v);
}

/* Sets t[k] = v in the table at `t`. */
static void set_u64(lua_State *L, int t, const char *k, uint64_t v)
{
    push_u64(L, v);
    lua_setfield(L, t, k);
}

static void push_net(lua_State *L, const mw__cg_stats *s)
{
    lua_createtable(L, 0, (int)s->nnet);
    for (size_t i = 0; i < s->nnet; i++) {
        lua_createtable(L, 0, 2);
        set_u64(L, -2, "rx_bytes", s->net[i].rx_bytes);
        set_u64(L, -2, "tx_bytes", s->net[i].tx_bytes);
        lua_setfield(L, -2, s->net[i].name);
    }
}

/* The result table: the groups first, then each number into its group. */
static void push_stats(lua_State *L, const mw__cg_stats *s)
{
    lua_createtable(L, 0, 7);
    int t = lua_gettop(L);
    lua_pushinteger(L, s->version);
    lua_setfield(L, t, "cgroup");
    lua_pushnumber(L, s->time);
    lua_setfield(L, t, "time");
    for (size_t g = 0; g < MW_ARRAY_LEN(groups); g++) {
        lua_createtable(L, 0, 6);
        lua_setfield(L, t, groups[g]);
    }
    for (int f = 0; f < MW_CG_NFIELDS; f++) {
        if (!mw__cg_has(s, (enum mw__cg_field)f))
            continue;
        if (!fields[f].group) {
            set_u64(L, t, fields[f].key, s->v[f]);
            continue;
        }
        lua_getfield(L, t, fields[f].group);
        set_u64(L, -2, fields[f].key, s->v[f]);
        lua_pop(L, 1);
    }
    if (s->own_netns) {
        push_net(L, s);
        lua_setfield(L, t, "net");
    }
}

/* The registry key of the sandbox's mw__cg_loc (a userdata no check can
 * reach): where the last container asked for was found, so that the next
 * run of the same check reads there at once. */
static const char loc_key = 0;

static mw__cg_loc *cached_loc(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &loc_key) != LUA_TUSERDATA) {
        lua_pop(L, 1);
        memset(lua_newuserdatauv(L, sizeof(mw__cg_loc), 0), 0, sizeof(mw__cg_loc));
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &loc_key);
    }
    mw__cg_loc *l = lua_touserdata(L, -1);
    lua_pop(L, 1); /* the registry keeps it */
    return l;
}

/* An optional pid: nil, or a number with an integer value in 1..MAX_PID
 * (a string such as an unresolved "%%pid%%" is refused, not looked up). */
static long opt_pid(lua_State *L, int arg)
{
    int ok = 0;
    if (lua_isnoneornil(L, arg))
        return 0;
    lua_Integer pid = lua_type(L, arg) == LUA_TNUMBER ? lua_tointegerx(L, arg, &ok) : 0;
    if (!ok || pid < 1 || pid > MAX_PID)
        luaL_argerror(L, arg, "a process id (an integer from 1 to 4194304) expected");
    return (long)pid;
}

static int container_stats(lua_State *L)
{
    const char *id = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : NULL;
    if (!id || !mw__cg_valid_id(id))
        return luaL_argerror(L, 1, "a container id (64 lowercase hex digits) expected");
    long pid = opt_pid(L, 2);
    mw__sandbox *sb = mw__sandbox_of(L);
    mw__cg_stats s;
    char err[512];
    mw__cg_loc *loc = cached_loc(L);
    mw_code rc = mw__cg_stats_read(&sb->paths, id, pid, loc, &s, err, sizeof err);
    if (rc == MW_ENOMEM)
        return luaL_error(L, "mw.container.stats: %s", err);
    if (rc != MW_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
    push_stats(L, &s);
    return 1;
}

static const luaL_Reg container_funcs[] = {
    {"stats", container_stats},
    {NULL, NULL},
};

void mw__open_container(lua_State *L)
{
    lua_createtable(L, 0, 2);
    luaL_setfuncs(L, container_funcs, 0);
    lua_pushliteral(L, "mw.container");
    lua_setfield(L, -2, "__name");
    mw__push_readonly(L, -1);
    lua_setfield(L, -3, "container");
    lua_pop(L, 1);
}
