/*
 * coro.c - the sandbox's coroutine library: Lua's own, with resume, wrap
 * and close replaced by versions that keep the budget informed.
 *
 * Hooks are per Lua thread, so the budget must always know which thread
 * runs: every switch into a coroutine and back goes through
 * mw__budget_set_current(), which publishes the thread with one atomic
 * store (the budget's signal handler may read it at any instant) before
 * lua_resume() switches to it, and re-arms whatever request is pending on
 * it. When the budget hook preempts code running in
 * a nested coroutine, the yield stops at our resume; we pass it up with
 * lua_yieldk() (the continuation resumes the inner coroutine again) so the
 * whole run returns to the worker. Where the caller cannot yield (inside a
 * metamethod, a sort comparator, a gsub callback) we resume the inner
 * coroutine at once instead: the slice is then overrun, the deadline is
 * still enforced.
 *
 * A coroutine that dies from the timeout error died inside the budget
 * hook, where Lua has switched hooks off for that thread, and nothing
 * switches them back on. Running its pending __close handlers later
 * (coroutine.close, or wrap's cleanup) would run the script's code with no
 * way to stop it, so such threads are marked in a weak registry set and
 * never closed.
 *
 * Error messages and results match Lua 5.4's lcorolib.c.
 */
#include "lua/sandbox_int.h"

#include <lualib.h>
#include <string.h>

#define PREEMPTED (-2) /* resume_inner(): the budget hook yielded */
#define SKIPPED   (-3) /* close_thread(): not closed */

static lua_State *check_co(lua_State *L, int idx)
{
    lua_State *co = lua_tothread(L, idx);
    luaL_argexpected(L, co, idx, "coroutine");
    return co;
}

/* NULL when `co` can be resumed from `L`, else why not. */
static const char *not_resumable(lua_State *L, lua_State *co)
{
    lua_Debug ar;
    if (L == co)
        return "cannot resume non-suspended coroutine";
    switch (lua_status(co)) {
    case LUA_YIELD:
        return NULL;
    case LUA_OK:
        if (lua_getstack(co, 0, &ar))
            return "cannot resume non-suspended coroutine";
        if (lua_gettop(co) == 0)
            return "cannot resume dead coroutine";
        return NULL;
    default:
        return "cannot resume dead coroutine";
    }
}

#define POISONED "mw.poisoned"

int mw__coro_setup(lua_State *L)
{
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, POISONED);
    return 0;
}

/* Marks the thread at `co_idx` as died with hooks off. */
static void poison(lua_State *L, int co_idx)
{
    lua_getfield(L, LUA_REGISTRYINDEX, POISONED);
    lua_pushvalue(L, co_idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

static int poisoned(lua_State *L, int co_idx)
{
    lua_getfield(L, LUA_REGISTRYINDEX, POISONED);
    lua_pushvalue(L, co_idx);
    int p = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 2);
    return p;
}

/*
 * Moves `narg` values to `co` (found at `co_idx` of `L`) and resumes it.
 * Returns the number of results moved back onto `L`, -1 with the error on
 * top of `L`, or PREEMPTED (nothing moved).
 */
static int resume_inner(lua_State *L, lua_State *co, int co_idx, int narg)
{
    mw__sandbox *sb = mw__sandbox_of(L);
    int nres;
    if (!lua_checkstack(co, narg)) {
        lua_pushliteral(L, "too many arguments to resume");
        return -1;
    }
    lua_xmove(L, co, narg);
    mw__budget_set_current(sb, co);
    int status = lua_resume(co, L, narg, &nres);
    mw__budget_set_current(sb, L);
    if (status == LUA_YIELD && (sb->preempt_yield || sb->io_yield))
        return PREEMPTED;
    if (status == LUA_OK || status == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushliteral(L, "too many results to resume");
            return -1;
        }
        lua_xmove(co, L, nres);
        return nres;
    }
    if (atomic_load(&sb->expired))
        poison(L, co_idx);
    lua_xmove(co, L, 1);
    return -1;
}

/*
 * Handles a preemption that stopped at `co`: yields upward with `k` as the
 * continuation when `L` can yield; else resumes `co` again. `co` must be
 * the only value on the stack above `base`.
 */
static int pass_preemption(lua_State *L, lua_State *co, int co_idx, int r, lua_KFunction k,
                           int keep)
{
    mw__sandbox *sb = mw__sandbox_of(L);
    while (r == PREEMPTED) {
        if (lua_isyieldable(L)) {
            lua_settop(L, keep);
            return lua_yieldk(L, 0, 0, k); /* sb->preempt_yield stays set */
        }
        if (sb->io_yield) /* I/O cannot be waited for here: fail it */
            mw__net_fail(sb, "cannot wait for I/O here (inside a metamethod, "
                             "iterator or callback that cannot yield)");
        sb->preempt_yield = 0;
        sb->io_yield = 0;
        r = resume_inner(L, co, co_idx, 0);
    }
    return r;
}

/* ---------------------------------------------------------- resume */

static int resume_results(lua_State *L, int r)
{
    if (r < 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -(r + 1));
    return r + 1;
}

static int co_resume_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    lua_State *co = lua_tothread(L, 1);
    int r = resume_inner(L, co, 1, 0);
    r = pass_preemption(L, co, 1, r, co_resume_k, 1);
    return resume_results(L, r);
}

static int co_resume(lua_State *L)
{
    lua_State *co = check_co(L, 1);
    const char *why = not_resumable(L, co);
    if (why) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, why);
        return 2;
    }
    int r = resume_inner(L, co, 1, lua_gettop(L) - 1);
    r = pass_preemption(L, co, 1, r, co_resume_k, 1);
    return resume_results(L, r);
}

/* ---------------------------------------------------------- wrap */

/* Runs `co`'s pending __close handlers as the running thread and returns
 * lua_resetthread()'s status (the error object is then on top of `co`).
 * Out of time it raises the timeout; for a thread that died with hooks
 * off it runs nothing and returns SKIPPED. */
static int close_thread(lua_State *L, lua_State *co, int co_idx)
{
    mw__sandbox *sb = mw__sandbox_of(L);
    if (atomic_load(&sb->expired))
        return mw__budget_raise_timeout(L);
    int stat = lua_status(co);
    if (stat != LUA_OK && stat != LUA_YIELD && poisoned(L, co_idx))
        return SKIPPED;
    mw__budget_set_current(sb, co);
    int status = lua_resetthread(co);
    mw__budget_set_current(sb, L);
    return status;
}

static int wrap_results(lua_State *L, lua_State *co, int r)
{
    if (r >= 0)
        return r;
    int stat = lua_status(co);
    if (stat != LUA_OK && stat != LUA_YIELD) {
        stat = close_thread(L, co, lua_upvalueindex(1));
        if (stat != SKIPPED)
            lua_xmove(co, L, 1);
    }
    if (stat != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

static int co_wrap_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int r = resume_inner(L, co, lua_upvalueindex(1), 0);
    r = pass_preemption(L, co, lua_upvalueindex(1), r, co_wrap_k, 0);
    return wrap_results(L, co, r);
}

static int co_wrap_call(lua_State *L)
{
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    const char *why = not_resumable(L, co);
    if (why)
        return luaL_error(L, "%s", why);
    int r = resume_inner(L, co, lua_upvalueindex(1), lua_gettop(L));
    r = pass_preemption(L, co, lua_upvalueindex(1), r, co_wrap_k, 0);
    return wrap_results(L, co, r);
}

static int co_wrap(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, co_wrap_call, 1);
    return 1;
}

/* ---------------------------------------------------------- close */

static int co_close(lua_State *L)
{
    lua_State *co = check_co(L, 1);
    const char *why = not_resumable(L, co);
    int dead = why && strcmp(why, "cannot resume dead coroutine") == 0;
    if (why && !dead)
        return luaL_error(L, "cannot close a %s coroutine", L == co ? "running" : "normal");
    int status = close_thread(L, co, 1);
    if (status == LUA_OK) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushboolean(L, 0);
    if (status == SKIPPED)
        lua_pushliteral(L, "coroutine was stopped by the time budget");
    else
        lua_xmove(co, L, 1);
    return 2;
}

static const luaL_Reg co_funcs[] = {
    {"resume", co_resume},
    {"wrap", co_wrap},
    {"close", co_close},
    {NULL, NULL},
};

int mw__open_coroutine(lua_State *L)
{
    luaopen_coroutine(L);
    luaL_setfuncs(L, co_funcs, 0);
    return 1;
}

/* ---------------------------------------------------------- xpcall */

/*
 * The message handler xpcall really installs. An error raised by the
 * budget hook reaches the handler while Lua has hooks switched off for the
 * thread: a handler written in Lua could then loop forever. Once the run
 * is out of time the error passes through untouched; before that, the
 * script's handler runs as usual (with hooks on).
 */
static int xpcall_handler(lua_State *L)
{
    if (atomic_load(&mw__sandbox_of(L)->expired))
        return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int xpcall_k(lua_State *L, int status, lua_KContext extra)
{
    if (status != LUA_OK && status != LUA_YIELD) {
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        return 2;
    }
    return lua_gettop(L) - (int)extra;
}

int mw__xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, xpcall_handler, 1);
    lua_replace(L, 2);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 1);
    lua_rotate(L, 3, 2);
    int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, xpcall_k);
    return xpcall_k(L, status, 2);
}
