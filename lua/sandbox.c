/*
 * sandbox.c - one check instance in a Lua state (share.c: its own, or
 * one shared with the other instances of its check): its globals, its
 * run of the script's top level, and driving a run as a coroutine.
 *
 * Every entry point holds the state's lock (mw__lshare_enter) while it
 * touches the state, and names the instance whose code runs: its
 * allocations are charged to it, its budget is the one the hooks read.
 * A run stopped for its memory cap has the state collected at once; a
 * run that failed for the state's own cap marks the state unusable
 * (mw__sandbox_broken), and the instances in it fail until they are made
 * again.
 *
 * Every call into Lua that can raise runs protected (lua_pcall or
 * lua_resume): an unprotected error would abort the process. Outside
 * them this file only reads values and stores into registry slots that
 * already exist, which never allocates.
 *
 * The sandbox owns its registry slots, its account (until it is freed:
 * then the state's), its strings and its mw.state store (saved at the
 * end of every run and when it is freed); it holds a reference to its
 * share; the sample destination, log, stats callback and state directory
 * are the engine's.
 */
#include "lua/sandbox_int.h"

#include "core/base/diag.h"
#include "core/base/http.h"
#include "core/base/util.h"

#include <errno.h>
#include <lualib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SCRIPT_FILE ((size_t)4 << 20)

mw__sandbox *mw__sandbox_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ((mw__lmem *)ud)->sb;
}

/* ------------------------------------------------------------- errors */

static void set_error(mw__sandbox *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(mw__sandbox *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    free(sb->err);
    sb->err = mw__vsprintf(fmt, ap);
    va_end(ap);
}

/* Renders the error object at `idx` of `T` without running any of the
 * script's code (no __tostring) and without allocating in the state. */
static void set_error_value(mw__sandbox *sb, lua_State *T, int idx)
{
    size_t n;
    switch (lua_type(T, idx)) {
    case LUA_TSTRING: {
        const char *s = lua_tolstring(T, idx, &n);
        set_error(sb, "%.*s", (int)(n > 2048 ? 2048 : n), s);
        break;
    }
    case LUA_TNUMBER:
        if (lua_isinteger(T, idx))
            set_error(sb, "%lld", (long long)lua_tointeger(T, idx));
        else
            set_error(sb, "%.14g", (double)lua_tonumber(T, idx));
        break;
    default:
        set_error(sb, "(error object is a %s value)", luaL_typename(T, idx));
    }
}

static void set_nomem_error(mw__sandbox *sb)
{
    double mib = (double)sb->mem->cap / (1024.0 * 1024.0);
    set_error(sb, "memory limit of %g MiB exceeded", mib);
}

static void set_timeout_error(mw__sandbox *sb)
{
    const char *what = mw__net_what(sb);
    if (what)
        set_error(sb, "timeout: run exceeded its time budget of %.3g s (waiting for %s)",
                  sb->budget, what);
    else
        set_error(sb, "timeout: run exceeded its time budget of %.3g s", sb->budget);
}

/* Whether a failed call ran out of memory: Lua's own status, or the
 * allocator refused and the message is Lua's out-of-memory one (a pcall
 * caught it and the script raised it again). */
static int is_nomem(mw__sandbox *sb, lua_State *T, int status)
{
    if (status == LUA_ERRMEM)
        return 1;
    const char *s = lua_type(T, -1) == LUA_TSTRING ? lua_tostring(T, -1) : "";
    return sb->mem->refused && strstr(s, "not enough memory") != NULL;
}

/* ------------------------------------------------------------- loading */

/* Protected: [module, opts]. Checks the module, builds self, takes the
 * registry slots. */
static int setup_self(lua_State *L)
{
    mw__sandbox *sb = mw__sandbox_of(L);
    const mw__sandbox_opts *o = lua_touserdata(L, 2);
    if (!lua_istable(L, 1))
        return luaL_error(L, "the script must return a table with a run function (got %s)",
                          luaL_typename(L, 1));
    lua_getfield(L, 1, "run");
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "the script's table has no run function");
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "min_collection_interval") != LUA_TNIL) {
        lua_Number iv = lua_tonumber(L, -1);
        if (!lua_isnumber(L, -1) || !(iv >= 1 && iv <= 86400 * 365))
            return luaL_error(L,
                              "the script's min_collection_interval must be a number of "
                              "seconds from 1 (got %s)",
                              luaL_typename(L, -1));
        sb->default_interval = iv;
    }
    lua_pop(L, 1);
    lua_createtable(L, 0, 4);
    mw__json_push_cjson(L, o->instance);
    lua_setfield(L, -2, "instance");
    mw__json_push_cjson(L, o->init_config);
    lua_setfield(L, -2, "init_config");
    lua_pushstring(L, sb->check);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, sb->check_id);
    lua_setfield(L, -2, "check_id");
    sb->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 1);
    sb->mod_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushboolean(L, 0);
    sb->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* Runs the script's top level, [function, env] on the stack, under a
 * deadline of its own (no watchdog watches it): hooks read the clock,
 * pattern matching polls it. */
static int run_chunk(mw__sandbox *sb)
{
    lua_State *L = sb->L;
    sb->budget = MW_SANDBOX_LOAD_TIMEOUT;
    sb->deadline = mw__mono() + MW_SANDBOX_LOAD_TIMEOUT;
    mw__budget_self_time(sb, L, HUGE_VAL); /* not yieldable: no slices */
    int status = lua_pcall(L, 1, 1, 0);
    lua_sethook(L, NULL, 0, 0);
    sb->self_timed = 0;
    atomic_store(&sb->current, NULL);
    return status;
}

/* Fills `*err` with why loading failed, from the value on top of L;
 * returns the matching code. */
static mw_code load_error(mw__sandbox *sb, int status, const char *stage, char **err)
{
    mw_code rc = status == LUA_ERRSYNTAX ? MW_EPARSE : MW_ECHECK;
    if (atomic_load(&sb->expired)) {
        set_timeout_error(sb);
        rc = MW_ETIMEOUT;
    } else if (is_nomem(sb, sb->L, status)) {
        set_nomem_error(sb);
        rc = MW_ENOMEM;
    } else {
        set_error_value(sb, sb->L, -1);
    }
    *err = mw__sprintf("%s: %s", stage, sb->err ? sb->err : "out of memory");
    return rc;
}

/* Protected: pushes the instance's globals, registered at env_ref. */
static int setup_env(lua_State *L)
{
    mw__sandbox *sb = mw__sandbox_of(L);
    mw__lshare_new_env(L);
    lua_pushvalue(L, -1);
    sb->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

/* Runs the share's compiled script with the instance's own globals. */
static mw_code load_script(mw__sandbox *sb, const mw__sandbox_opts *o, char **err)
{
    lua_State *L = sb->L;
    lua_pushcfunction(L, setup_env);
    int status = lua_pcall(L, 0, 1, 0);
    if (status != LUA_OK)
        return load_error(sb, status, "cannot set up the sandbox", err);
    lua_rawgeti(L, LUA_REGISTRYINDEX, sb->share->fn_ref);
    lua_insert(L, -2);
    status = run_chunk(sb);
    if (status != LUA_OK)
        return load_error(sb, status, "script failed", err);
    lua_pushcfunction(L, setup_self);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, (void *)o);
    status = lua_pcall(L, 2, 0, 0);
    if (status != LUA_OK)
        return load_error(sb, status, "bad script", err);
    return MW_OK;
}

/* Under the share's lock: the instance's environment in its state. */
static mw_code join(mw__sandbox *sb, const mw__sandbox_opts *o, char **err)
{
    mw__lshare *sh = sb->share;
    mw__lshare_cap(sh, sb->mem->cap, 1);
    if (sh->broken) {
        *err = mw__strdup("cannot set up the sandbox: the check's Lua state is unusable");
        return MW_ESTATE;
    }
    /* Instances are made on the scheduling thread, where a collection
     * step may finalize another instance's open socket: net.c leaves its
     * connection (its worker loop's) to be closed on the worker. */
    sh->foreign = !sh->private_;
    mw_code rc = load_script(sb, o, err);
    sh->foreign = 0;
    if (rc != MW_OK && sh->mem.refused)
        mw__lshare_break(sh); /* the state's own cap, not the instance's */
    lua_settop(sb->L, 0);
    if (rc == MW_OK && sh->private_)
        lua_gc(sb->L, LUA_GCCOLLECT, 0); /* drop what setting up left behind */
    atomic_store(&sb->expired, 0);
    sb->mem->refused = 0;
    free(sb->err);
    sb->err = NULL;
    return rc;
}

static mw__lshare *share_of(const mw__sandbox_opts *o, char **err)
{
    if (o->share)
        return mw__lshare_ref(o->share);
    mw__lshare *sh = mw__lshare_new(o->chunkname, o->script, o->script_len, err);
    if (sh)
        sh->private_ = 1;
    return sh;
}

mw__sandbox *mw__sandbox_new(const mw__sandbox_opts *o, char **err)
{
    mw__sandbox *sb = calloc(1, sizeof(*sb)), *res = NULL;
    *err = NULL;
    if (!sb)
        goto out;
    sb->env_ref = sb->mod_ref = sb->self_ref = sb->co_ref = LUA_NOREF;
    sb->check = mw__strdup(o->check ? o->check : "");
    sb->check_id = mw__strdup(o->check_id ? o->check_id : "");
    sb->out = o->out;
    sb->log = o->log;
    sb->stats_fn = o->stats_fn;
    sb->stats_ud = o->stats_ud;
    sb->io = o->io;
    sb->paths.procfs = o->paths && o->paths->procfs ? o->paths->procfs : "/proc";
    sb->paths.cgroup = o->paths && o->paths->cgroup ? o->paths->cgroup : "/sys/fs/cgroup";
    if (o->ecs)
        sb->ecs = *o->ecs;
    sb->store_dir = o->store;
    sb->wake = o->wake;
    sb->wake_ud = o->wake_ud;
    if (!sb->check || !sb->check_id || !(sb->mem = calloc(1, sizeof *sb->mem)))
        goto out;
    sb->mem->cap = o->mem_cap ? o->mem_cap : MW_SANDBOX_DEFAULT_MEM;
    if (!(sb->share = share_of(o, err)))
        goto out;
    sb->L = sb->share->L;
    mw__lshare_enter(sb->share, sb);
    if (sb->share->private_)
        sb->share->solo = sb;
    mw_code rc = join(sb, o, err);
    mw__lshare_leave(sb->share);
    if (rc != MW_OK)
        goto out;
    res = sb;
    sb = NULL;
out:
    if (!res && !*err)
        *err = mw__strdup("out of memory");
    mw__sandbox_free(sb);
    return res;
}

/* Gives back the instance's registry slots (existing keys: no
 * allocation) and its account; its tables become garbage. */
static void leave_share(mw__sandbox *sb)
{
    mw__lshare *sh = sb->share;
    int refs[] = {sb->env_ref, sb->mod_ref, sb->self_ref, sb->co_ref};
    mw__lshare_enter(sh, NULL);
    mw__net_stop(sb); /* its sockets' list is the state's business too */
    sh->solo = NULL;
    for (size_t i = 0; i < MW_ARRAY_LEN(refs); i++)
        luaL_unref(sb->L, LUA_REGISTRYINDEX, refs[i]);
    mw__lshare_cap(sh, sb->mem->cap, 0);
    sb->mem->orphan = 1;
    if (sb->mem->nblocks == 0)
        free(sb->mem);
    mw__lshare_leave(sh);
    mw__lshare_unref(sh);
}

void mw__sandbox_free(mw__sandbox *sb)
{
    if (!sb)
        return;
    if (sb->share) {
        leave_share(sb);
    } else {
        mw__net_stop(sb);
        free(sb->mem);
    }
    mw__store_close(sb->state);
    mw__http_memo_free(sb->http_memo);
    free(sb->check);
    free(sb->check_id);
    free(sb->err);
    free(sb);
}

/* ------------------------------------------------------------- runs */

static int run_body_k(lua_State *L, int status, lua_KContext stage);

/* The run coroutine's body: [module, self, first]. Calls init(self) on
 * the first run, then run(self); continuations let both yield. */
static int run_body(lua_State *L)
{
    return run_body_k(L, LUA_OK, 0);
}

static int run_body_k(lua_State *L, int status, lua_KContext stage)
{
    (void)status;
    if (stage == 0 && lua_toboolean(L, 3)) {
        lua_settop(L, 3);
        if (lua_getfield(L, 1, "init") != LUA_TNIL) {
            lua_pushvalue(L, 2);
            lua_callk(L, 1, 0, 1, run_body_k);
        }
        stage = 1;
    }
    if (stage == 1)
        mw__sandbox_of(L)->inited = 1;
    if (stage <= 1) {
        lua_settop(L, 3);
        lua_getfield(L, 1, "run");
        lua_pushvalue(L, 2);
        lua_callk(L, 1, 0, 2, run_body_k);
    }
    return 0;
}

/* What mw.state changed in the run is saved when it ends, however it
 * ended: the samples it sent are committed too (a failed save is warned
 * about by the store, and tried again after the next run). */
static void save_state(mw__sandbox *sb)
{
    if (sb->state)
        mw__store_save(sb->state);
}

/* Forgets the run coroutine: no __close handler of an abandoned run
 * runs (it could not be stopped once the run is out of its budget). */
static void end_run(mw__sandbox *sb)
{
    mw__net_stop(sb);
    save_state(sb);
    sb->co = NULL;
    sb->idle_co = NULL;
    sb->nargs = 0;
    if (sb->co_ref != LUA_NOREF) {
        lua_pushboolean(sb->L, 0);
        lua_rawseti(sb->L, LUA_REGISTRYINDEX, sb->co_ref); /* existing key: no allocation */
    }
}

/* A run that returned normally leaves its coroutine clean (status OK,
 * base frame): keep it, still referenced at co_ref, for the next run, so
 * that a run does not cost a thread allocation and its collection. A
 * failed run's coroutine is dropped (it may hold pending __close
 * variables that must never run). */
static void end_run_ok(mw__sandbox *sb)
{
    lua_State *co = sb->co;
    save_state(sb);
    lua_settop(co, 0);
    lua_sethook(co, NULL, 0, 0); /* our own thread, between runs: safe */
    sb->co = NULL;
    sb->nargs = 0;
    sb->idle_co = co;
}

static void push_run_args(mw__sandbox *sb, lua_State *co)
{
    lua_pushcfunction(co, run_body);
    lua_rawgeti(co, LUA_REGISTRYINDEX, sb->mod_ref);
    lua_rawgeti(co, LUA_REGISTRYINDEX, sb->self_ref);
    lua_pushboolean(co, !sb->inited);
    sb->co = co;
    sb->nargs = 3;
}

/* Protected: creates the run coroutine with its body and arguments. */
static int begin_run(lua_State *L)
{
    mw__sandbox *sb = mw__sandbox_of(L);
    lua_State *co = lua_newthread(L);
    lua_rawseti(L, LUA_REGISTRYINDEX, sb->co_ref);
    push_run_args(sb, co);
    return 0;
}

/* The budget the caller gave, for messages: the deadline was computed
 * from a clock read a few microseconds ago, so round to the millisecond
 * ("1 s", not "0.999998 s"). */
static double budget_of(double deadline)
{
    double left = round((deadline - mw__mono()) * 1e3) / 1e3;
    return left > 0 ? left : 0;
}

static void begin_locked(mw__sandbox *sb, double deadline)
{
    mw__lshare_run_deferred(sb->share);
    free(sb->err);
    sb->err = NULL;
    if (sb->co)
        end_run(sb);
    sb->warnings = 0;
    sb->mem->refused = 0;
    sb->seq++;
    sb->deadline = deadline;
    sb->budget = budget_of(deadline);
    atomic_store(&sb->expired, 0);
    atomic_store(&sb->preempt, 0);
    sb->preempt_yield = 0;
    if (sb->idle_co) { /* pushing values within LUA_MINSTACK never allocates */
        lua_State *co = sb->idle_co;
        sb->idle_co = NULL;
        push_run_args(sb, co);
        return;
    }
    lua_pushcfunction(sb->L, begin_run);
    int status = lua_pcall(sb->L, 0, 0, 0);
    if (status != LUA_OK) {
        set_nomem_error(sb);
        lua_pop(sb->L, 1);
        sb->co = NULL;
        if (sb->share->mem.refused)
            mw__lshare_break(sb->share);
    }
}

void mw__sandbox_begin(mw__sandbox *sb, double deadline)
{
    mw__lshare_enter(sb->share, sb);
    if (sb->share->broken) {
        if (sb->co)
            end_run(sb);
        set_error(sb, "the check's Lua state is unusable (it ran out of memory outside the "
                      "instances' limits): the instance must be made again");
        sb->mem->refused = 0;
    } else {
        begin_locked(sb, deadline);
    }
    mw__lshare_leave(sb->share);
}

static mw__run_status run_failed(mw__sandbox *sb, int status)
{
    mw__run_status rs = MW_RUN_ERROR;
    if (atomic_load(&sb->expired)) {
        set_timeout_error(sb);
        rs = MW_RUN_TIMEOUT;
    } else if (is_nomem(sb, sb->co, status)) {
        set_nomem_error(sb);
        rs = MW_RUN_NOMEM;
    } else {
        set_error_value(sb, sb->co, -1);
    }
    end_run(sb);
    if (rs == MW_RUN_NOMEM && sb->share->mem.refused)
        mw__lshare_break(sb->share); /* the state's cap: its own structures may lack room */
    if (rs == MW_RUN_NOMEM)
        lua_gc(sb->L, LUA_GCCOLLECT, 0); /* what the stopped run held */
    return rs;
}

static mw__run_status run_finished(mw__sandbox *sb, int status)
{
    if (status == LUA_YIELD && sb->preempt_yield) {
        sb->preempt_yield = 0;
        return MW_RUN_PREEMPTED;
    }
    if (status == LUA_YIELD && sb->io_yield) {
        sb->io_yield = 0;
        return MW_RUN_WAITING;
    }
    if (status == LUA_YIELD) {
        set_error(sb, "yield from run() outside a coroutine is not allowed");
        end_run(sb);
        return MW_RUN_ERROR;
    }
    if (status != LUA_OK)
        return run_failed(sb, status);
    end_run_ok(sb);
    return MW_RUN_OK;
}

static mw__run_status resume_locked(mw__sandbox *sb, mw__budget_slot *slot)
{
    mw__lshare_run_deferred(sb->share);
    if (!sb->co) {
        if (!sb->err)
            set_error(sb, "no run in progress");
        return sb->mem->refused ? MW_RUN_NOMEM : MW_RUN_ERROR;
    }
    if (sb->share->broken) { /* since the run began: it goes no further */
        set_error(sb, "the check's Lua state became unusable during the run");
        end_run(sb);
        return MW_RUN_ERROR;
    }
    if (mw__mono() >= sb->deadline) { /* preempted, and out of time since */
        atomic_store(&sb->expired, 1);
        set_timeout_error(sb);
        end_run(sb);
        return MW_RUN_TIMEOUT;
    }
    int nres, nargs = sb->nargs;
    sb->nargs = 0;
    mw__budget_attach(slot, sb);
    int status = lua_resume(sb->co, sb->L, nargs, &nres);
    mw__budget_detach(slot, sb);
    if (status == LUA_OK || status == LUA_YIELD)
        lua_pop(sb->co, nres);
    return run_finished(sb, status);
}

mw__run_status mw__sandbox_resume(mw__sandbox *sb, mw__budget_slot *slot)
{
    mw__lshare_enter(sb->share, sb);
    mw__run_status st = resume_locked(sb, slot);
    mw__lshare_leave(sb->share);
    return st;
}

void mw__sandbox_abort(mw__sandbox *sb)
{
    if (!sb || !sb->co)
        return;
    mw__lshare_enter(sb->share, sb);
    end_run(sb);
    mw__lshare_leave(sb->share);
}

mw__run_status mw__sandbox_expire(mw__sandbox *sb)
{
    mw__lshare_enter(sb->share, sb);
    atomic_store(&sb->expired, 1);
    set_timeout_error(sb);
    end_run(sb);
    mw__lshare_leave(sb->share);
    return MW_RUN_TIMEOUT;
}

const char *mw__sandbox_error(const mw__sandbox *sb)
{
    return sb->err ? sb->err : "";
}

unsigned mw__sandbox_warnings(const mw__sandbox *sb)
{
    return sb->warnings;
}

double mw__sandbox_default_interval(const mw__sandbox *sb)
{
    return sb->default_interval;
}

size_t mw__sandbox_mem(const mw__sandbox *sb)
{
    mw__lshare_enter(sb->share, NULL);
    size_t n = sb->mem->used;
    mw__lshare_leave(sb->share);
    return n;
}

int mw__sandbox_broken(const mw__sandbox *sb)
{
    return mw__lshare_broken(sb->share);
}

/* ------------------------------------------------------------- validate */

/* Splits Lua's "chunk:LINE: message" into line and message. */
static int syntax_line(const char *msg, const char **rest)
{
    static const char prefix[] = "chunk:";
    *rest = msg;
    if (strncmp(msg, prefix, sizeof(prefix) - 1) != 0)
        return 0;
    char *end;
    long line = strtol(msg + sizeof(prefix) - 1, &end, 10);
    if (end == msg + sizeof(prefix) - 1 || end[0] != ':' || end[1] != ' ')
        return 0;
    *rest = end + 2;
    return (int)line;
}

mw_code mw__sandbox_check_syntax(const char *path, mw__diag *diag)
{
    size_t len;
    mw__lmem mem;
    mw__lmem_init(&mem, MW_SANDBOX_DEFAULT_MEM);
    lua_State *L = NULL;
    char *src = NULL;
    mw_code rc = mw__read_file(path, MAX_SCRIPT_FILE, &src, &len);
    if (rc != MW_OK) {
        mw__diag_add(diag, path, 0, 0, "cannot read check script: %s",
                     rc == MW_EIO ? strerror(errno) : mw_strerror(rc));
        goto out;
    }
    rc = MW_ENOMEM;
    L = lua_newstate(mw__lmem_alloc, &mem);
    if (!L) {
        mw__diag_add(diag, path, 0, 0, "out of memory");
        goto out;
    }
    rc = MW_EPARSE;
    /* "=chunk" keeps long paths from being shortened in the message. */
    if (luaL_loadbufferx(L, src, len, "=chunk", "t") != LUA_OK) {
        const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "syntax error";
        const char *rest;
        int line = syntax_line(msg, &rest);
        mw__diag_add(diag, path, line, 0, "%s", rest);
        goto out;
    }
    rc = MW_OK;
out:
    if (L)
        lua_close(L);
    free(src);
    return rc;
}
