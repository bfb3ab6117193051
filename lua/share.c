/*
 * share.c - the Lua state that instances of one check script share: its
 * allocator and per-instance accounts, the restricted libraries, each
 * instance's globals, the script compiled once, and the lock.
 *
 * What a check can reach: base (without dofile, loadfile, print to
 * stdout, warn; with text-only `load`, a `setmetatable` that refuses
 * __gc, a `collectgarbage` that only answers "count"), string (without
 * dump; find/match/gmatch/gsub from lstrmatch.c), table (move from
 * lstrmatch.c, sort from lsort.c), math, utf8, coroutine (coro.c),
 * os.time/clock/date, and the read-only `mw` (api.c).
 *
 * Isolation. The library table (the state's original globals) is never
 * handed out. Each instance's globals are a fresh table (its `_G`, in its view)
 * whose protected metatable reads through a "view" of its own, and the
 * view reads through to the library table: a library table (`string`,
 * `table`, `math` ...) is seen through a proxy of the instance's own (an
 * empty table with a protected metatable whose __index is the real one),
 * so `string.x = 1`, or rawset on it, changes only that instance's
 * proxy; library functions are cached in the view as they are first
 * read. `mw` is a userdata proxy (api.c) and the string metatable is
 * protected, so nothing shared can be written. `load` without an
 * environment gives the chunk the calling instance's globals.
 *
 * The script is compiled once per state as `return function(_ENV, ...)
 * <script> end` (on the script's first line: line numbers stay), after
 * checking that the script compiles on its own (so that it cannot close
 * the wrapper and reach around it). Each instance calls the inner
 * function with its globals: its module-level locals, upvalues and tables
 * are its own, the bytecode is shared.
 *
 * Memory. Every block carries its owner's account (mw__acct) in an
 * 8-byte header: an allocation is charged to the instance whose code
 * runs (mw__lshare_enter), a free is credited to the block's owner, even
 * when another instance's run (a collection step) frees it. A block of
 * the state's own (made before any instance: the string table, the
 * registry's array) stays the state's as it grows; another instance's
 * block that grows is moved to the active account; a shrinking one stays
 * its owner's. So what an instance holds is exact for what it alone
 * reaches. Where it is not: a shared value made during a run counts for
 * the instance whose run made it (an interned string another instance
 * uses too, a library opened on first use, a registry hash part that
 * grew), and stays counted to it until freed, after it is gone too. The state has a cap of its own:
 * its members' caps summed, plus MW_LSHARE_BASE_MEM, at most MW_LSHARE_MAX_MEM.
 *
 * The share owns its state and its accounts' `base`; a sandbox's account
 * is the sandbox's until it is freed, then the state's until its last
 * block is. References: the creator's and one per sandbox.
 */
#include "lua/sandbox_int.h"

#include "core/base/util.h"

#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define VIEW_MT "mw.view"   /* registry: the metatable of every view */
#define LIB_MTS "mw.libmts" /* registry: library table -> its proxies' metatable */

/* ------------------------------------------------------------- memory */

/* Keeps Lua's alignment (LUAI_MAXALIGN: 8 bytes) after the header. */
typedef union hdr {
    mw__acct *owner;
    double d;
    long long ll;
} hdr;

_Static_assert(sizeof(hdr) == 8, "an 8-byte block header");

void mw__lmem_init(mw__lmem *m, size_t cap)
{
    memset(m, 0, sizeof *m);
    m->cap = cap;
    m->base.cap = SIZE_MAX;
}

/* An orphaned account goes with its last block. */
static void acct_release(mw__acct *a)
{
    if (a->orphan && a->nblocks == 0)
        free(a);
}

static void block_free(mw__lmem *m, hdr *h, size_t osize)
{
    mw__acct *o = h->owner;
    m->used -= osize;
    o->used -= osize;
    o->nblocks--;
    free(h);
    acct_release(o);
}

/* Whether `a` may hold `add` bytes more. */
static int room(size_t used, size_t cap, size_t add)
{
    return used <= cap && add <= cap - used;
}

/* Moves the accounting of a block of `osize` bytes, now `nsize`, from
 * `from` (NULL: a new block) to `to`. */
static void charge(mw__lmem *m, hdr *h, mw__acct *from, mw__acct *to, size_t osize, size_t nsize)
{
    m->used = m->used - osize + nsize;
    if (from == to) {
        to->used = to->used - osize + nsize;
        return;
    }
    to->used += nsize;
    to->nblocks++;
    h->owner = to;
    if (from) {
        from->used -= osize;
        from->nblocks--;
        acct_release(from);
    }
}

void *mw__lmem_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    mw__lmem *m = ud;
    hdr *h = ptr ? (hdr *)ptr - 1 : NULL;
    if (!ptr)
        osize = 0; /* osize is then a type tag */
    if (nsize == 0) {
        if (h)
            block_free(m, h, osize);
        return NULL;
    }
    mw__acct *a = m->active ? m->active : &m->base;
    mw__acct *from = h ? h->owner : NULL;
    /* The state's own blocks (the string table, the registry's array:
     * made before any instance) stay its own as they grow. */
    mw__acct *to = from && (from == &m->base || (from != a && nsize <= osize)) ? from : a;
    /* The instance's cap first: only what it may hold can be the state's
     * fault. */
    if (nsize > osize && !room(to->used, to->cap, to == from ? nsize - osize : nsize)) {
        to->refused = 1;
        return NULL;
    }
    if (nsize > osize && !room(m->used, m->cap, nsize - osize)) {
        m->refused = 1;
        a->refused = 1;
        return NULL;
    }
    if (nsize > SIZE_MAX - sizeof(hdr))
        return NULL;
    hdr *p = realloc(h, nsize + sizeof(hdr));
    if (!p)
        return NULL;
    charge(m, p, from, to, osize, nsize);
    return p + 1;
}

/* ------------------------------------------------------------- base lib */

/* Pushes the globals of the instance whose code runs. */
static void push_env(lua_State *L)
{
    mw__sandbox *sb = mw__sandbox_of(L);
    if (sb && sb->env_ref != LUA_NOREF)
        lua_rawgeti(L, LUA_REGISTRYINDEX, sb->env_ref);
    else
        lua_newtable(L); /* no instance: nothing to see */
}

static int sb_load(lua_State *L)
{
    size_t len;
    const char *s = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &len) : NULL;
    if (!s) {
        luaL_pushfail(L);
        lua_pushliteral(L, "load: only string chunks are allowed in the sandbox");
        return 2;
    }
    if (len > MW_SANDBOX_MAX_CHUNK) {
        luaL_pushfail(L);
        lua_pushfstring(L, "load: chunk larger than %d KiB", (int)(MW_SANDBOX_MAX_CHUNK >> 10));
        return 2;
    }
    const char *name = luaL_optstring(L, 2, s);
    int env = !lua_isnone(L, 4) ? 4 : 0;
    /* The mode argument is ignored: binary chunks can break the VM. */
    if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (env)
        lua_pushvalue(L, env);
    else
        push_env(L); /* never the state's: the library table is shared */
    if (!lua_setupvalue(L, -2, 1))
        lua_pop(L, 1);
    return 1;
}

/* Only "count": collecting, stopping or retuning the collector would let
 * one check stall its worker or grow until its cap. */
static int sb_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "collect");
    if (strcmp(opt, "count") != 0)
        return luaL_error(
            L, "collectgarbage(\"%s\") is not allowed in the sandbox (only \"count\")", opt);
    int kb = lua_gc(L, LUA_GCCOUNT, 0), b = lua_gc(L, LUA_GCCOUNTB, 0);
    lua_pushnumber(L, (lua_Number)kb + (lua_Number)b / 1024.0);
    return 1;
}

/* Lua 5.4 runs finalizers with hooks disabled, so an endless __gc could
 * never be stopped: refuse them. */
static int sb_setmetatable(lua_State *L)
{
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    if (t == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc metamethods are not allowed in the sandbox "
                                 "(finalizers run outside the time budget)");
        lua_pop(L, 1);
    }
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return luaL_error(L, "cannot change a protected metatable");
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

static const luaL_Reg base_override[] = {
    {"load", sb_load},
    {"collectgarbage", sb_collectgarbage},
    {"setmetatable", sb_setmetatable},
    {"print", mw__api_print},
    {"xpcall", mw__xpcall},
    {NULL, NULL},
};

/* Reach the file system, or write on the engine's stderr; `_G` is each
 * instance's own. */
static const char *const base_removed[] = {"dofile", "loadfile", "warn", "_G"};

/* ------------------------------------------------------------- libraries */

/* Opens library `name` into the table on top (the library table). */
static void open_lib(lua_State *L, const char *name, lua_CFunction open)
{
    luaL_requiref(L, name, open, 0);
    lua_setfield(L, -2, name);
}

static void open_string(lua_State *L)
{
    open_lib(L, "string", luaopen_string);
    lua_getfield(L, -1, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    mw__strmatch_install(L, -1);
    lua_pop(L, 1);
    /* getmetatable("") must not reach the shared string metatable. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
}

static void open_table(lua_State *L)
{
    open_lib(L, "table", luaopen_table);
    lua_getfield(L, -1, "table");
    lua_pushcfunction(L, mw__table_move);
    lua_setfield(L, -2, "move");
    lua_pushcfunction(L, mw__table_sort);
    lua_setfield(L, -2, "sort");
    lua_pop(L, 1);
}

/* os with only time, clock and date: the rest reaches the host. */
static int open_os(lua_State *L)
{
    static const char *const keep[] = {"time", "clock", "date"};
    lua_createtable(L, 0, 3);
    luaopen_os(L);
    for (size_t i = 0; i < MW_ARRAY_LEN(keep); i++) {
        lua_getfield(L, -1, keep[i]);
        lua_setfield(L, -3, keep[i]);
    }
    lua_pop(L, 1);
    return 1;
}

/*
 * Libraries most checks never touch, opened on first use: a state is
 * about 4 KiB smaller without them. Scripts cannot tell: the library
 * table is never theirs to iterate, only to read through.
 */
static const struct lazy_lib {
    const char *name;
    lua_CFunction open;
} lazy_libs[] = {
    {"math", luaopen_math},
    {"utf8", luaopen_utf8},
    {"coroutine", mw__open_coroutine},
    {"os", open_os},
};

/* __index of the library table: [table, key]. */
static int lazy_index(lua_State *L)
{
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    for (size_t i = 0; k && i < MW_ARRAY_LEN(lazy_libs); i++) {
        if (strcmp(k, lazy_libs[i].name) != 0)
            continue;
        lua_pushcfunction(L, lazy_libs[i].open);
        lua_call(L, 0, 1);
        lua_pushvalue(L, 2);
        lua_pushvalue(L, -2);
        lua_rawset(L, 1);
        return 1;
    }
    lua_pushnil(L);
    return 1;
}

static void open_lazy(lua_State *L)
{
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, lazy_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
}

/* ------------------------------------------------------------- views */

/* pairs() of a library proxy: [proxy, key]; upvalue 1 the library. The
 * proxy's own fields first, then the library's it does not shadow. */
static int lib_next(lua_State *L)
{
    lua_settop(L, 2);
    int own = lua_isnil(L, 2);
    if (!own) {
        lua_pushvalue(L, 2);
        own = lua_rawget(L, 1) != LUA_TNIL;
        lua_pop(L, 1);
    }
    if (own) {
        lua_pushvalue(L, 2);
        if (lua_next(L, 1))
            return 2;
        lua_pushnil(L);
    } else {
        lua_pushvalue(L, 2);
    }
    while (lua_next(L, lua_upvalueindex(1))) {
        lua_pushvalue(L, -2);
        if (lua_rawget(L, 1) == LUA_TNIL) {
            lua_pop(L, 1);
            return 2;
        }
        lua_pop(L, 2);
    }
    lua_pushnil(L);
    return 1;
}

static int lib_pairs(lua_State *L)
{
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "__index");
    lua_pushcclosure(L, lib_next, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* Replaces the library table at `idx` with a proxy of the instance's own. */
static void to_lib_proxy(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_getfield(L, LUA_REGISTRYINDEX, LIB_MTS);
    lua_pushvalue(L, idx);
    if (lua_rawget(L, -2) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 3);
        lua_pushvalue(L, idx);
        lua_setfield(L, -2, "__index");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pushcfunction(L, lib_pairs);
        lua_setfield(L, -2, "__pairs");
        lua_pushvalue(L, idx);
        lua_pushvalue(L, -2);
        lua_rawset(L, -4);
    }
    lua_createtable(L, 0, 0);
    lua_insert(L, -2);
    lua_setmetatable(L, -2);
    lua_replace(L, idx);
    lua_pop(L, 1);
}

/* __index of a view: [view, key]; upvalue 1 the library table. What it
 * finds is kept in the view (library tables as a proxy), so the next
 * read is a plain table hit, as it was with a state per instance. */
static int view_index(lua_State *L)
{
    lua_settop(L, 2);
    lua_pushvalue(L, 2);
    if (lua_gettable(L, lua_upvalueindex(1)) == LUA_TNIL) /* opens lazy libraries */
        return 1;
    if (lua_type(L, 3) == LUA_TTABLE)
        to_lib_proxy(L, 3);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_rawset(L, 1);
    return 1;
}

/* The globals start empty (most checks set none: no hash part); `_G`
 * is read through the view, as it was through the library table. */
int mw__lshare_new_env(lua_State *L)
{
    lua_createtable(L, 0, 0); /* the instance's globals */
    lua_createtable(L, 0, 2); /* their metatable */
    lua_createtable(L, 0, 1); /* the view */
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "_G");
    lua_getfield(L, LUA_REGISTRYINDEX, VIEW_MT);
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    return 1;
}

/* Protected: the library table (the state's original globals) with the
 * allowed libraries, and the views' metatable reading through it. */
static int setup_globals(lua_State *L)
{
    luaL_requiref(L, "_G", luaopen_base, 0);
    luaL_setfuncs(L, base_override, 0);
    for (size_t i = 0; i < MW_ARRAY_LEN(base_removed); i++) {
        lua_pushnil(L);
        lua_setfield(L, -2, base_removed[i]);
    }
    open_string(L);
    open_table(L);
    open_lazy(L);
    mw__coro_setup(L);
    mw__open_api(L);
    lua_setfield(L, -2, "mw");
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, view_index, 1);
    lua_setfield(L, -2, "__index");
    lua_setfield(L, LUA_REGISTRYINDEX, VIEW_MT);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LIB_MTS);
    lua_pushnil(L); /* package.loaded would keep the full os table alive */
    lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    return 0;
}

/* ------------------------------------------------------------- compiling */

static const char wrap_head[] = "return function(_ENV, ...) ";
static const char wrap_tail[] = "\nend";

typedef struct source {
    const char *name;
    const char *text;
    size_t len;
    char *wrapped;
    size_t wrapped_len;
    int ref;
} source;

/* Protected: [source]. The script must compile on its own first: then
 * the wrapper's `end` closes the wrapper, never something the script
 * opened. */
static int compile(lua_State *L)
{
    source *s = lua_touserdata(L, 1);
    if (luaL_loadbufferx(L, s->text, s->len, s->name, "t") != LUA_OK)
        return lua_error(L);
    lua_pop(L, 1);
    if (luaL_loadbufferx(L, s->wrapped, s->wrapped_len, s->name, "t") != LUA_OK)
        return lua_error(L);
    lua_call(L, 0, 1);
    s->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* `stage: message` from the error on top of the state. */
static char *state_error(lua_State *L, int status, const char *stage)
{
    if (status == LUA_ERRMEM || lua_type(L, -1) != LUA_TSTRING)
        return mw__sprintf("%s: out of memory", stage);
    size_t n;
    const char *m = lua_tolstring(L, -1, &n);
    return mw__sprintf("%s: %.*s", stage, (int)(n > 2048 ? 2048 : n), m);
}

static int load_script(mw__lshare *sh, const char *name, const char *text, size_t len, char **err)
{
    source s = {.name = name, .text = text ? text : "", .len = len, .ref = LUA_NOREF};
    s.wrapped_len = sizeof(wrap_head) - 1 + len + sizeof(wrap_tail) - 1;
    if (!(s.wrapped = malloc(s.wrapped_len + 1))) {
        *err = mw__strdup("cannot load script: out of memory");
        return -1;
    }
    memcpy(s.wrapped, wrap_head, sizeof(wrap_head) - 1);
    memcpy(s.wrapped + sizeof(wrap_head) - 1, s.text, len);
    memcpy(s.wrapped + sizeof(wrap_head) - 1 + len, wrap_tail, sizeof(wrap_tail));
    lua_pushcfunction(sh->L, compile);
    lua_pushlightuserdata(sh->L, &s);
    int status = lua_pcall(sh->L, 1, 0, 0);
    free(s.wrapped);
    if (status != LUA_OK) {
        *err = state_error(sh->L, status, "cannot load script");
        return -1;
    }
    sh->fn_ref = s.ref;
    return 0;
}

/* ------------------------------------------------------------- lifetime */

mw__lshare *mw__lshare_new(const char *chunkname, const char *script, size_t len, char **err)
{
    *err = NULL;
    mw__lshare *sh = calloc(1, sizeof *sh);
    if (!sh)
        goto fail;
    mw__lmem_init(&sh->mem, MW_LSHARE_BASE_MEM);
    pthread_mutex_init(&sh->mu, NULL);
    sh->refs = 1;
    sh->fn_ref = LUA_NOREF;
    if (!(sh->L = lua_newstate(mw__lmem_alloc, &sh->mem)))
        goto fail;
    lua_pushcfunction(sh->L, setup_globals);
    int status = lua_pcall(sh->L, 0, 0, 0);
    if (status != LUA_OK) {
        *err = state_error(sh->L, status, "cannot set up the sandbox");
        goto fail;
    }
    if (load_script(sh, chunkname ? chunkname : "=check", script, len, err) != 0)
        goto fail;
    lua_settop(sh->L, 0);
    lua_gc(sh->L, LUA_GCCOLLECT, 0); /* the unwrapped compile, setup's leftovers */
    /* A cycle starts once the heap has grown by half since the last one
     * (Lua's default waits for it to double): a state's garbage is its
     * runs' request and response tables, many instances' worth between two
     * cycles. bench_check_io slow 10000: peak RSS 35 MiB lower, round
     * times within noise. */
    lua_gc(sh->L, LUA_GCINC, 150, 0, 0);
    return sh;
fail:
    if (!*err)
        *err = mw__strdup("out of memory");
    mw__lshare_unref(sh);
    return NULL;
}

mw__lshare *mw__lshare_ref(mw__lshare *sh)
{
    pthread_mutex_lock(&sh->mu);
    sh->refs++;
    pthread_mutex_unlock(&sh->mu);
    return sh;
}

void mw__lshare_unref(mw__lshare *sh)
{
    if (!sh)
        return;
    pthread_mutex_lock(&sh->mu);
    unsigned left = --sh->refs;
    pthread_mutex_unlock(&sh->mu);
    if (left)
        return;
    if (sh->L)
        lua_close(sh->L); /* frees the orphaned accounts with their blocks */
    mw__lshare_run_deferred(sh);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

void mw__lshare_enter(mw__lshare *sh, mw__sandbox *sb)
{
    pthread_mutex_lock(&sh->mu);
    sh->mem.sb = sb;
    sh->mem.active = sb ? sb->mem : NULL;
    sh->mem.refused = 0;
}

void mw__lshare_leave(mw__lshare *sh)
{
    sh->mem.sb = sh->solo;
    sh->mem.active = sh->solo ? sh->solo->mem : NULL;
    pthread_mutex_unlock(&sh->mu);
}

/* Under the lock: a member's cap joins (`add`) or leaves the state's. */
void mw__lshare_cap(mw__lshare *sh, size_t cap, int add)
{
    sh->caps = add ? sh->caps + cap : sh->caps - cap;
    size_t c = MW_LSHARE_BASE_MEM + sh->caps;
    sh->mem.cap = c < MW_LSHARE_BASE_MEM || c > MW_LSHARE_MAX_MEM ? MW_LSHARE_MAX_MEM : c;
}

mw__lshare *mw__lshare_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return (mw__lshare *)ud; /* mem is its first member */
}

struct mw__deferred {
    struct mw__http_conn *conn;
    struct mw__deferred *next;
};

int mw__lshare_defer_close(mw__lshare *sh, struct mw__http_conn *conn)
{
    struct mw__deferred *d = malloc(sizeof *d);
    if (!d)
        return -1;
    d->conn = conn;
    d->next = sh->deferred;
    sh->deferred = d;
    return 0;
}

void mw__lshare_run_deferred(mw__lshare *sh)
{
    while (sh->deferred) {
        struct mw__deferred *d = sh->deferred;
        sh->deferred = d->next;
        mw__http_conn_close(d->conn);
        free(d);
    }
}

void mw__lshare_break(mw__lshare *sh)
{
    atomic_store(&sh->broken, 1);
}

int mw__lshare_broken(mw__lshare *sh)
{
    return atomic_load(&sh->broken);
}

size_t mw__lshare_mem(mw__lshare *sh)
{
    pthread_mutex_lock(&sh->mu);
    size_t n = sh->mem.used;
    pthread_mutex_unlock(&sh->mu);
    return n;
}
