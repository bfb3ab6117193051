/*
 * api.c - the read-only `mw` table a check sees: metrics, service checks,
 * events, warnings, logging, JSON, the monotonic clock, a few host-wide
 * /proc files, a few per-process /proc/<pid> files (both under the
 * operator's procfs_path), a container's cgroup numbers (mw.container,
 * container_lua.c), an ECS task container's numbers from the task
 * metadata endpoint (mw.ecs, ecs_lua.c), the engine's stats,
 * the non-blocking I/O of net.c (mw.http, mw.tcp, mw.sleep), the
 * OpenMetrics parser and scraper (mw.openmetrics), and the instance's
 * persistent state (mw.state, state_lua.c).
 *
 * Samples go to the sandbox's mw__sample_out (lua/samples.h; the engine
 * lends its per-instance sender, which copies the strings). `mw` and its sub-tables are userdata
 * proxies over tables only this file can reach, so neither assignment nor rawset can change them.
 * Bindings keep nothing malloc'd across a call that can raise: tag arrays are borrowed Lua strings
 * on the C stack, the /proc descriptor lives in a userdata whose __gc closes it.
 */
#include "lua/sandbox_int.h"

#include "core/base/util.h"
#include "lua/helpers.h"
#include "lua/openmetrics_scrape.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#define FDBOX_MT      "mw.fdbox"
#define MAX_LOG_MSG   4096
#define MAX_PROC_FILE ((size_t)1 << 20)
#define MAX_PID       4194304 /* the kernel's PID_MAX_LIMIT */

/* ------------------------------------------------------------- read-only */

static int ro_newindex(lua_State *L)
{
    lua_getiuservalue(L, 1, 2);
    return luaL_error(L, "%s is read-only", lua_tostring(L, -1));
}

static int ro_next(lua_State *L)
{
    lua_settop(L, 2);
    if (lua_next(L, lua_upvalueindex(1)))
        return 2;
    lua_pushnil(L);
    return 1;
}

/* pairs(mw): iterates the hidden table without handing it out. */
static int ro_pairs(lua_State *L)
{
    lua_getiuservalue(L, 1, 1);
    lua_pushcclosure(L, ro_next, 1);
    lua_pushnil(L);
    lua_pushnil(L);
    return 3;
}

static int ro_len(lua_State *L)
{
    lua_getiuservalue(L, 1, 1);
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
    return 1;
}

static const luaL_Reg ro_meta[] = {
    {"__newindex", ro_newindex},
    {"__pairs", ro_pairs},
    {"__len", ro_len},
    {NULL, NULL},
};

/* The table at `idx` must have a string field "__name" (removed here)
 * naming it in error messages. The proxy is a userdata (no rawset can
 * reach into it) with a metatable of its own whose __index is the hidden
 * table itself, so that reading `mw.gauge` is a table lookup in the VM
 * rather than a C call; the metatable is hidden by __metatable, and
 * `mw`'s hidden table has an __index of its own that opens its lazy
 * sub-tables (see lazy_sub()). */
void mw__push_readonly(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_newuserdatauv(L, 0, 2);
    lua_pushvalue(L, idx);
    lua_setiuservalue(L, -2, 1);
    lua_getfield(L, idx, "__name");
    lua_setiuservalue(L, -2, 2);
    lua_pushnil(L);
    lua_setfield(L, idx, "__name");
    lua_createtable(L, 0, 5);
    luaL_setfuncs(L, ro_meta, 0);
    lua_pushvalue(L, idx);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
}

/* ------------------------------------------------------------- arguments */

static mw__sandbox *sandbox(lua_State *L)
{
    return mw__sandbox_of(L);
}

static mw__str check_str(lua_State *L, int idx)
{
    mw__str s;
    s.p = luaL_checklstring(L, idx, &s.n);
    return s;
}

static mw__str opt_str(lua_State *L, int idx)
{
    mw__str s = {NULL, 0};
    if (!lua_isnoneornil(L, idx))
        s.p = luaL_checklstring(L, idx, &s.n);
    return s;
}

/* Borrows the strings of the tag array at `idx` (nil: no tags). The
 * array stays on the stack, so the strings stay alive. */
static size_t check_tags(lua_State *L, int idx, mw__str *tags)
{
    if (lua_isnoneornil(L, idx))
        return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    size_t n = (size_t)lua_rawlen(L, idx);
    if (n > MW_SANDBOX_MAX_TAGS)
        luaL_error(L, "at most %d tags per sample (got %d)", MW_SANDBOX_MAX_TAGS, (int)n);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "tag %d is a %s, not a string", (int)i + 1, luaL_typename(L, -1));
        tags[i].p = lua_tolstring(L, -1, &tags[i].n);
        lua_pop(L, 1);
    }
    return n;
}

static int sender_result(lua_State *L, const char *fn, mw_code rc)
{
    if (rc == MW_OK)
        return 0;
    if (rc == MW_ENOMEM)
        return luaL_error(L,
                          "%s: cannot buffer the sample (the run's samples reached its "
                          "memory limit, or memory ran out)",
                          fn);
    return luaL_error(L, "%s: invalid sample (%s)", fn, mw_strerror(rc));
}

/* ------------------------------------------------------------- samples */

static int metric(lua_State *L, mw_metric_type type, const char *fn)
{
    mw__str tags[MW_SANDBOX_MAX_TAGS];
    mw__str name = check_str(L, 1);
    double value = luaL_checknumber(L, 2);
    size_t ntags = check_tags(L, 3, tags);
    mw__str host = opt_str(L, 4);
    mw__sandbox *sb = sandbox(L);
    if (!sb->out.ops)
        return 0;
    return sender_result(L, fn,
                         sb->out.ops->metric(sb->out.ud, type, name, value, tags, ntags, host));
}

static int api_gauge(lua_State *L)
{
    return metric(L, MW_GAUGE, "mw.gauge");
}

static int api_count(lua_State *L)
{
    return metric(L, MW_COUNT, "mw.count");
}

static int api_rate(lua_State *L)
{
    return metric(L, MW_RATE, "mw.rate");
}

static int api_monotonic_count(lua_State *L)
{
    return metric(L, MW_MONOTONIC_COUNT, "mw.monotonic_count");
}

static int api_histogram(lua_State *L)
{
    return metric(L, MW_HISTOGRAM, "mw.histogram");
}

static int api_service_check(lua_State *L)
{
    mw__str tags[MW_SANDBOX_MAX_TAGS];
    mw__str name = check_str(L, 1);
    lua_Integer status = luaL_checkinteger(L, 2);
    luaL_argcheck(L, status >= 0 && status <= 3, 2, "status must be mw.OK .. mw.UNKNOWN");
    size_t ntags = check_tags(L, 3, tags);
    mw__str message = opt_str(L, 4);
    mw__sandbox *sb = sandbox(L);
    if (!sb->out.ops)
        return 0;
    return sender_result(
        L, "mw.service_check",
        sb->out.ops->service_check(sb->out.ud, name, (int)status, tags, ntags, message));
}

/* Reads the optional string field `k` of the table at 1 into `out`; the
 * value stays on the stack. */
static void event_field(lua_State *L, const char *k, mw__str *out)
{
    int t = lua_getfield(L, 1, k);
    out->p = NULL;
    out->n = 0;
    if (t == LUA_TNIL)
        return;
    if (t != LUA_TSTRING)
        luaL_error(L, "mw.event: field '%s' must be a string", k);
    out->p = lua_tolstring(L, -1, &out->n);
}

static int api_event(lua_State *L)
{
    mw__str tags[MW_SANDBOX_MAX_TAGS];
    mw__event_in ev;
    memset(&ev, 0, sizeof(ev));
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    event_field(L, "title", &ev.title);
    event_field(L, "text", &ev.text);
    event_field(L, "alert_type", &ev.alert_type);
    event_field(L, "priority", &ev.priority);
    event_field(L, "aggregation_key", &ev.aggregation_key);
    event_field(L, "source_type_name", &ev.source_type_name);
    lua_getfield(L, 1, "timestamp");
    ev.timestamp = luaL_optnumber(L, -1, 0);
    lua_getfield(L, 1, "tags");
    ev.ntags = check_tags(L, lua_gettop(L), tags);
    ev.tags = tags;
    if (!ev.title.p)
        return luaL_error(L, "mw.event: 'title' is required");
    mw__sandbox *sb = sandbox(L);
    if (!sb->out.ops)
        return 0;
    return sender_result(L, "mw.event", sb->out.ops->event(sb->out.ud, &ev));
}

/* ------------------------------------------------------------- logging */

static int log_at(lua_State *L, mw_log_level level)
{
    size_t n;
    const char *msg = luaL_checklstring(L, 1, &n);
    mw__sandbox *sb = sandbox(L);
    mw__log_write(sb->log, level, sb->check_id, "%.*s", (int)(n > MAX_LOG_MSG ? MAX_LOG_MSG : n),
                  msg);
    return 0;
}

static int api_log_debug(lua_State *L)
{
    return log_at(L, MW_LOG_DEBUG);
}

static int api_log_info(lua_State *L)
{
    return log_at(L, MW_LOG_INFO);
}

static int api_log_warn(lua_State *L)
{
    return log_at(L, MW_LOG_WARN);
}

static int api_log_error(lua_State *L)
{
    return log_at(L, MW_LOG_ERROR);
}

static int api_warning(lua_State *L)
{
    luaL_checkstring(L, 1);
    sandbox(L)->warnings++;
    return log_at(L, MW_LOG_WARN);
}

/* The sandbox's `print`: a check's stdout is the JSON-lines sink, so
 * printed lines go to the log (info) instead. */
int mw__api_print(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_replace(L, 1);
    lua_settop(L, 1);
    return log_at(L, MW_LOG_INFO);
}

/* ------------------------------------------------------------- helpers */

static int api_time(lua_State *L)
{
    lua_pushnumber(L, mw__mono());
    return 1;
}

/* Host-wide, secret-free files a check may read. Names only: the caller
 * never supplies a path. */
static const char *const proc_allowed[] = {
    "loadavg", "meminfo", "stat", "uptime", "vmstat", "net/dev", "diskstats",
};

/* Per-process files without secrets (never cmdline, environ, maps, fd,
 * io, ...): CPU times, memory and thread counts of one pid. */
static const char *const proc_pid_allowed[] = {"stat", "statm", "status"};

static void fd_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int fdbox_gc(lua_State *L)
{
    fd_close(lua_touserdata(L, 1));
    return 0;
}

static int *push_fdbox(lua_State *L)
{
    int *fd = lua_newuserdatauv(L, sizeof(int), 0);
    *fd = -1;
    if (luaL_newmetatable(L, FDBOX_MT)) {
        lua_pushcfunction(L, fdbox_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return fd;
}

static int proc_fail(lua_State *L, const char *path, int err)
{
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", path, strerror(err));
    return 2;
}

/* Pushes the text of `path` (at most MAX_PROC_FILE bytes), or nil and
 * "path: reason". The descriptor lives in a boxed userdata, so a raise
 * inside luaL_Buffer cannot leak it. */
static int push_proc_file(lua_State *L, const char *path)
{
    int *fd = push_fdbox(L);
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (*fd < 0)
        return proc_fail(L, path, errno);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t total = 0;
    for (;;) {
        char *p = luaL_prepbuffsize(&b, 4096);
        ssize_t r = read(*fd, p, 4096);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || total + (size_t)r > MAX_PROC_FILE) {
            int err = r < 0 ? errno : EFBIG;
            fd_close(fd);
            return proc_fail(L, path, err);
        }
        if (r == 0)
            break;
        luaL_addsize(&b, (size_t)r);
        total += (size_t)r;
    }
    fd_close(fd);
    luaL_pushresult(&b);
    return 1;
}

/* Index of `name` in `list`, or -1. */
static int find_name(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return (int)i;
    return -1;
}

static int api_proc_read(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    int i = find_name(proc_allowed, MW_ARRAY_LEN(proc_allowed), name);
    if (i < 0)
        return luaL_error(L, "mw.proc.read: '%s' is not one of the readable /proc files", name);
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", sandbox(L)->paths.procfs, proc_allowed[i]) >=
        (int)sizeof path)
        return proc_fail(L, proc_allowed[i], ENAMETOOLONG);
    lua_settop(L, 1);
    return push_proc_file(L, path);
}

/* A number with an integer value in 1..MAX_PID; strings are refused, so
 * an unresolved "%%pid%%" is an error, not a lookup. */
static lua_Integer check_pid(lua_State *L, int arg)
{
    int ok = 0;
    lua_Integer pid = lua_type(L, arg) == LUA_TNUMBER ? lua_tointegerx(L, arg, &ok) : 0;
    if (!ok || pid < 1 || pid > MAX_PID)
        luaL_argerror(L, arg, "a process id (an integer from 1 to 4194304) expected");
    return pid;
}

/* mw.proc.pid(pid, name): /proc/<pid>/<name> for a name of proc_pid_allowed. */
static int api_proc_pid(lua_State *L)
{
    lua_Integer pid = check_pid(L, 1);
    const char *name = luaL_checkstring(L, 2);
    int i = find_name(proc_pid_allowed, MW_ARRAY_LEN(proc_pid_allowed), name);
    if (i < 0)
        return luaL_error(L, "mw.proc.pid: '%s' is not one of stat, statm, status", name);
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%lld/%s", sandbox(L)->paths.procfs, (long long)pid,
                 proc_pid_allowed[i]) >= (int)sizeof path)
        return proc_fail(L, proc_pid_allowed[i], ENAMETOOLONG);
    lua_settop(L, 2);
    return push_proc_file(L, path);
}

static void set_stat(lua_State *L, const char *k, uint64_t v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, k);
}

static int api_engine_stats(lua_State *L)
{
    mw__sandbox *sb = sandbox(L);
    if (!sb->stats_fn) {
        lua_pushnil(L);
        return 1;
    }
    mw_engine_stats st = {.size = sizeof st};
    sb->stats_fn(sb->stats_ud, &st);
    lua_createtable(L, 0, 7);
    set_stat(L, "instances", st.instances);
    set_stat(L, "runs", st.runs);
    set_stat(L, "errors", st.errors);
    set_stat(L, "contexts", st.contexts);
    set_stat(L, "flushes", st.flushes);
    set_stat(L, "records", st.records);
    set_stat(L, "lua_bytes", st.lua_bytes);
    return 1;
}

/* ------------------------------------------------------------- tables */

static const luaL_Reg mw_funcs[] = {
    {"gauge", api_gauge},
    {"count", api_count},
    {"rate", api_rate},
    {"monotonic_count", api_monotonic_count},
    {"histogram", api_histogram},
    {"service_check", api_service_check},
    {"event", api_event},
    {"warning", api_warning},
    {"time", api_time},
    {"engine_stats", api_engine_stats},
    {"sleep", mw__net_sleep},
    {"time_left", mw__net_time_left},
    {NULL, NULL},
};

static const luaL_Reg log_funcs[] = {
    {"debug", api_log_debug}, {"info", api_log_info}, {"warn", api_log_warn},
    {"error", api_log_error}, {NULL, NULL},
};

static const luaL_Reg json_funcs[] = {
    {"decode", mw__json_decode},
    {"encode", mw__json_encode},
    {NULL, NULL},
};

static const luaL_Reg proc_funcs[] = {
    {"read", api_proc_read},
    {"pid", api_proc_pid},
    {NULL, NULL},
};

/* Sets a read-only sub-table `name` of the table on top. */
static void add_sub(lua_State *L, const char *name, const char *full, const luaL_Reg *funcs,
                    int nrec)
{
    lua_createtable(L, 0, nrec + 1);
    luaL_setfuncs(L, funcs, 0);
    lua_pushstring(L, full);
    lua_setfield(L, -2, "__name");
    if (strcmp(name, "json") == 0) {
        lua_pushlightuserdata(L, NULL);
        lua_setfield(L, -2, "null");
    }
    mw__push_readonly(L, -1);
    lua_setfield(L, -3, name);
    lua_pop(L, 1);
}

/*
 * Sub-tables most checks never touch are made on first use: with thousands
 * of instances each state's size counts, and mw.http, mw.tcp, mw.proc,
 * mw.json and mw.openmetrics together are about 2 KiB of it. Reading
 * mw.<name> builds the table once; pairs(mw) lists those built so far.
 */
static void open_openmetrics(lua_State *L)
{
    mw__open_openmetrics(L);
    lua_setfield(L, -2, "openmetrics");
}

static void open_json(lua_State *L)
{
    add_sub(L, "json", "mw.json", json_funcs, 3);
}

static void open_proc(lua_State *L)
{
    add_sub(L, "proc", "mw.proc", proc_funcs, 2);
}

static void open_http(lua_State *L)
{
    add_sub(L, "http", "mw.http", mw__http_funcs, 2);
}

static void open_tcp(lua_State *L)
{
    add_sub(L, "tcp", "mw.tcp", mw__tcp_funcs, 1);
}

static const struct lazy_sub {
    const char *name;
    void (*open)(lua_State *L); /* sets the sub-table in the table on top */
} lazy_subs[] = {
    {"json", open_json},
    {"proc", open_proc},
    {"http", open_http},
    {"tcp", open_tcp},
    {"openmetrics", open_openmetrics},
    {"opt", mw__open_opt},
    {"tag", mw__open_tag},
    {"base64", mw__open_base64},
    {"container", mw__open_container},
    {"ecs", mw__open_ecs},
    {"aws", mw__open_aws},
    {"state", mw__open_state},
};

/* __index of mw's hidden table: [table, key]. */
static int lazy_sub(lua_State *L)
{
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    for (size_t i = 0; k && i < MW_ARRAY_LEN(lazy_subs); i++) {
        if (strcmp(k, lazy_subs[i].name) != 0)
            continue;
        lua_settop(L, 2);
        lua_pushvalue(L, 1);
        lazy_subs[i].open(L);
        lua_pop(L, 1);
        lua_rawget(L, 1);
        return 1;
    }
    lua_pushnil(L);
    return 1;
}

int mw__open_api(lua_State *L)
{
    static const char *const status[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
    lua_createtable(L, 0, 20);
    luaL_setfuncs(L, mw_funcs, 0);
    for (int i = 0; i < 4; i++) {
        lua_pushinteger(L, i);
        lua_setfield(L, -2, status[i]);
    }
    add_sub(L, "log", "mw.log", log_funcs, 4);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, lazy_sub);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pushliteral(L, "mw");
    lua_setfield(L, -2, "__name");
    mw__push_readonly(L, -1);
    lua_remove(L, -2);
    return 1;
}
