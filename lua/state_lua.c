/*
 * state_lua.c - mw.state: a check instance's persistent key-value store
 * (core/base/store.h), for what a check must remember across runs and
 * across restarts of moonwatch (the last event it sent, say).
 *
 *   mw.state.get(key)          -> the value (a string), or nil
 *   mw.state.set(key, value)   -> true, or nil, err (past the cap);
 *                                 value nil deletes the key
 *   mw.state.keys([prefix])    -> the keys (sorted) that start with prefix
 *
 * Keys are strings of 1 to 1024 bytes, values strings of at most 64 KiB
 * (numbers are taken as their string), any bytes; one instance's state
 * holds at most 1 MiB. A wrong type or length raises.
 *
 * The store is scoped by the instance's id (self.check_id: the check's
 * name and the hash of its config, the same across restarts), opened on
 * the first call from the engine's state directory (state_dir/checks;
 * the check never names a file), and saved by the sandbox at the end of
 * every run that changed it (sandbox.c) and when the instance goes.
 * Nothing malloc'd is held across a call that can raise: the store is
 * the sandbox's.
 */
#include "lua/sandbox_int.h"

#include <string.h>

/* The sandbox's store, opened on first use; raises when it cannot be. */
static mw__store *store(lua_State *L, const char *fn)
{
    mw__sandbox *sb = mw__sandbox_of(L);
    if (!sb)
        luaL_error(L, "%s: no state here", fn);
    if (!sb->state) {
        mw_code rc = mw__store_open(sb->store_dir, sb->check_id, &sb->state);
        if (rc != MW_OK)
            luaL_error(L, "%s: cannot open the state of %s: %s", fn, sb->check_id, mw_strerror(rc));
    }
    return sb->state;
}

static const char *check_key(lua_State *L, int idx, size_t *n)
{
    const char *k = luaL_checklstring(L, idx, n);
    luaL_argcheck(L, *n >= 1 && *n <= MW_STORE_MAX_KEY, idx, "a key is 1 to 1024 bytes");
    return k;
}

static int state_get(lua_State *L)
{
    size_t kn, vn;
    const char *k = check_key(L, 1, &kn), *v;
    if (mw__store_get(store(L, "mw.state.get"), k, kn, &v, &vn))
        lua_pushlstring(L, v, vn);
    else
        lua_pushnil(L);
    return 1;
}

static int state_set(lua_State *L)
{
    size_t kn, vn = 0;
    const char *k = check_key(L, 1, &kn), *v = NULL, *why = NULL;
    if (!lua_isnoneornil(L, 2)) {
        v = luaL_checklstring(L, 2, &vn);
        luaL_argcheck(L, vn <= MW_STORE_MAX_VALUE, 2, "a value is at most 64 KiB");
    }
    mw_code rc = mw__store_set(store(L, "mw.state.set"), k, kn, v, vn, &why);
    if (rc != MW_OK) {
        luaL_pushfail(L);
        lua_pushfstring(L, "mw.state.set: %s", why ? why : mw_strerror(rc));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int state_keys(lua_State *L)
{
    size_t pn = 0, kn;
    const char *prefix = luaL_optlstring(L, 1, "", &pn), *k;
    mw__store *s = store(L, "mw.state.keys");
    size_t i = mw__store_lower_bound(s, prefix, pn), n = mw__store_count(s);
    lua_createtable(L, 0, 0);
    for (lua_Integer j = 1; i < n; i++, j++) {
        mw__store_key(s, i, &k, &kn);
        if (kn < pn || memcmp(k, prefix, pn) != 0)
            break;
        lua_pushlstring(L, k, kn);
        lua_rawseti(L, -2, j);
    }
    return 1;
}

static const luaL_Reg state_funcs[] = {
    {"get", state_get},
    {"set", state_set},
    {"keys", state_keys},
    {NULL, NULL},
};

void mw__open_state(lua_State *L)
{
    lua_createtable(L, 0, 4);
    luaL_setfuncs(L, state_funcs, 0);
    lua_pushliteral(L, "mw.state");
    lua_setfield(L, -2, "__name");
    mw__push_readonly(L, -1);
    lua_setfield(L, -3, "state");
    lua_pop(L, 1);
}
