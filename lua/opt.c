/*
 * opt.c - mw.opt, the option readers every check shares, so that an
 * instance config means the same thing to every check: one set of rules
 * for what a boolean, a number, a string, a list or a mapping may be, and
 * one error format,
 *
 *     bad option 'NAME': EXPECTED expected, got VALUE
 *
 * raised from the line of the check that asked (as lauxlib's
 * luaL_argerror does for a C function's arguments), so that a bad option
 * fails the run, and moonwatch.check_status says which option and why.
 *
 * An option that is nil or mw.json.null is absent: the reader returns
 * the caller's default, as it is, unless that default is mw.opt.REQUIRED
 * (then an absent option, or an empty string where a string is read,
 * raises "... expected, got no value"). A dot in NAME reads nested mappings
 * ("options.items" is t.options.items). The readers never change `t`;
 * lists and mappings are returned as copies.
 *
 * Nothing here is malloc'd: values and messages live on the Lua stack.
 */
#include "lua/helpers.h"

#include "lua/sandbox_int.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_SHOWN  40   /* bytes of a string value or a key shown in a message */
#define POLL_EVERY 1024 /* table entries between two looks at the run's deadline */
/* Seconds: the engine's own lower bound for `timeout` (core/pipeline/instance.c). */
#define MIN_TIMEOUT 0.001

/* ------------------------------------------------------------- values */

static int is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

static int absent(lua_State *L, int idx)
{
    return lua_isnoneornil(L, idx) || is_null(L, idx);
}

typedef enum table_kind { T_EMPTY, T_LIST, T_MAPPING, T_MIXED } table_kind;

static const char *const table_kind_names[] = {"empty table", "list", "mapping", "table"};

/* A list has the keys 1..n and nothing else; a mapping only string keys. */
static table_kind kind_of(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_Unsigned len = lua_rawlen(L, idx), keys = 0, strs = 0, ints = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        keys++;
        if (lua_type(L, -1) == LUA_TSTRING)
            strs++;
        else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 &&
                 (lua_Unsigned)lua_tointeger(L, -1) <= len)
            ints++;
        if (keys % POLL_EVERY == 0)
            mw__budget_poll(L);
    }
    if (keys == 0)
        return T_EMPTY;
    if (strs == keys)
        return T_MAPPING;
    return ints == keys && keys == len ? T_LIST : T_MIXED;
}

/* A number as a config writes it: "8080", "0.5", "1e+20". */
static void number_text(lua_State *L, int idx, char *buf, size_t size)
{
    lua_Number n = lua_tonumber(L, idx);
    if (lua_isinteger(L, idx))
        snprintf(buf, size, "%lld", (long long)lua_tointeger(L, idx));
    else if (isnan(n))
        snprintf(buf, size, "nan");
    else if (n == floor(n) && fabs(n) < 9007199254740992.0)
        snprintf(buf, size, "%lld", (long long)n);
    else
        snprintf(buf, size, "%.14g", (double)n);
}

/* Adds at most MAX_SHOWN bytes of `s`, control bytes escaped ("\10"),
 * quotes and backslashes too when `quoted`; "..." when cut. */
static void add_shown(luaL_Buffer *b, const char *s, size_t n, int quoted)
{
    size_t m = n > MAX_SHOWN ? MAX_SHOWN : n;
    for (size_t i = 0; i < m; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\%u", (unsigned)c);
            luaL_addstring(b, esc);
        } else {
            if (quoted && (c == '"' || c == '\\'))
                luaL_addchar(b, '\\');
            luaL_addchar(b, (char)c);
        }
    }
    if (m < n)
        luaL_addstring(b, "...");
}

/* Pushes what the value at `idx` is, for a message: "no value", "null",
 * "boolean true", "number 2", "string \"maybe\"", "list", "mapping". */
static const char *push_description(lua_State *L, int idx)
{
    char num[64];
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL:
        return lua_pushliteral(L, "no value");
    case LUA_TBOOLEAN:
        return lua_pushstring(L, lua_toboolean(L, idx) ? "boolean true" : "boolean false");
    case LUA_TNUMBER:
        number_text(L, idx, num, sizeof num);
        return lua_pushfstring(L, "number %s", num);
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addstring(&b, "string \"");
        add_shown(&b, s, n, 1);
        luaL_addchar(&b, '"');
        luaL_pushresult(&b);
        return lua_tostring(L, -1);
    }
    case LUA_TTABLE:
        return lua_pushstring(L, table_kind_names[kind_of(L, idx)]);
    default:
        return lua_pushstring(L, is_null(L, idx) ? "null" : luaL_typename(L, idx));
    }
}

/* Raises "bad option 'NAME': EXPECTED expected, got VALUE" (the value at
 * `vidx`), with the position of the check's line that asked. */
static int bad(lua_State *L, const char *name, const char *expected, int vidx)
{
    vidx = lua_absindex(L, vidx);
    const char *got = push_description(L, vidx);
    return luaL_error(L, "bad option '%s': %s expected, got %s", name, expected, got);
}

/* Turns the string or number at `idx` into a string in place (the stack
 * slot, never a table field); 0 when it is neither. */
static int to_text(lua_State *L, int idx)
{
    char num[64];
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING)
        return 1;
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    number_text(L, idx, num, sizeof num);
    lua_pushstring(L, num);
    lua_replace(L, idx);
    return 1;
}

/* ------------------------------------------------------------- defaults */

/* The address of this byte is mw.opt.REQUIRED, a light userdata no
 * other value can equal. */
static const char required_tag;

static int is_required(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == &required_tag;
}

/* For an absent option (the nil at `v`): pushes the default at 3, or,
 * when it is mw.opt.REQUIRED, raises "EXPECTED expected, got no value". */
static int push_default(lua_State *L, int v, const char *name, const char *expected)
{
    if (is_required(L, 3))
        return bad(L, name, expected, v);
    lua_pushvalue(L, 3);
    return 1;
}

/* ------------------------------------------------------------- lookup */

/* Pushes option `name` of the table at `t`, nil when it is absent. Each
 * dot steps into a nested mapping; a step that is set but is not a
 * table raises, naming the path up to it. `at` is the stack index of
 * `name` as a Lua string, or 0: a name without a dot is then looked up
 * with that string rather than a new one (interning it again costs more
 * than the lookup). */
static void push_option(lua_State *L, int t, const char *name, int at)
{
    const char *part = name;
    lua_pushvalue(L, t);
    for (;;) {
        const char *dot = strchr(part, '.');
        if (at && !dot && part == name)
            lua_pushvalue(L, at);
        else
            lua_pushlstring(L, part, dot ? (size_t)(dot - part) : strlen(part));
        lua_gettable(L, -2);
        lua_remove(L, -2);
        if (absent(L, -1)) {
            lua_pop(L, 1);
            lua_pushnil(L);
            return;
        }
        if (!dot)
            return;
        if (!lua_istable(L, -1)) {
            lua_pushlstring(L, name, (size_t)(dot - name));
            bad(L, lua_tostring(L, -1), "mapping", -2);
        }
        part = dot + 1;
    }
}

/* The readers' first two arguments, (t, name), with the stack set to
 * `nargs` arguments and the option pushed after them, at nargs + 1. */
static const char *lookup(lua_State *L, int nargs)
{
    lua_settop(L, nargs);
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *name = luaL_checkstring(L, 2);
    push_option(L, 1, name, 2);
    return name;
}

/* ------------------------------------------------------------- bool */

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* 1 for a word of true, 0 for a word of false (ASCII case ignored), -1
 * for anything else. */
static int bool_word(const char *s, size_t n)
{
    static const char *const words[2][5] = {
        {"false", "no", "off", "0", "n"},
        {"true", "yes", "on", "1", "y"},
    };
    for (int v = 0; v < 2; v++)
        for (size_t i = 0; i < sizeof words[v] / sizeof words[v][0]; i++) {
            const char *w = words[v][i];
            size_t k = 0;
            while (k < n && w[k] && lower(s[k]) == w[k])
                k++;
            if (k == n && w[k] == '\0')
                return v;
        }
    return -1;
}

/* mw.opt.bool(t, name [, default]) */
static int opt_bool(lua_State *L)
{
    const char *name = lookup(L, 3);
    int b = -1, ok = 0;
    lua_Integer i;
    size_t n = 0;
    const char *s;
    switch (lua_type(L, 4)) {
    case LUA_TNIL:
        return push_default(L, 4, name, "boolean");
    case LUA_TBOOLEAN:
        return 1;
    case LUA_TNUMBER:
        i = lua_tointegerx(L, 4, &ok);
        b = ok && (i == 0 || i == 1) ? (int)i : -1;
        break;
    case LUA_TSTRING:
        s = lua_tolstring(L, 4, &n);
        b = bool_word(s, n);
        break;
    }
    if (b < 0)
        return bad(L, name, "boolean", 4);
    lua_pushboolean(L, b);
    return 1;
}

/* ------------------------------------------------------------- numbers */

typedef struct range {
    lua_Number min, max;
    int has_min, has_max;
} range;

static range check_range(lua_State *L, int arg)
{
    range r = {-HUGE_VAL, HUGE_VAL, !lua_isnoneornil(L, arg), !lua_isnoneornil(L, arg + 1)};
    if (r.has_min)
        r.min = luaL_checknumber(L, arg);
    if (r.has_max)
        r.max = luaL_checknumber(L, arg + 1);
    return r;
}

/* Pushes "integer from 1 to 65535", "number >= 0.001", "number", ... */
static const char *push_expected(lua_State *L, const char *kind, const range *r)
{
    char lo[32], hi[32];
    snprintf(lo, sizeof lo, "%.14g", (double)r->min);
    snprintf(hi, sizeof hi, "%.14g", (double)r->max);
    if (r->has_min && r->has_max)
        return lua_pushfstring(L, "%s from %s to %s", kind, lo, hi);
    if (r->has_min)
        return lua_pushfstring(L, "%s >= %s", kind, lo);
    if (r->has_max)
        return lua_pushfstring(L, "%s <= %s", kind, hi);
    return lua_pushstring(L, kind);
}

/* Pushes the number at `v` (a number, or a string Lua reads as one; an
 * integer stays an integer), or raises naming `name`. */
static void push_number(lua_State *L, int v, const char *name, const range *r)
{
    int t = lua_type(L, v), ok = 0;
    lua_Number n = t == LUA_TNUMBER || t == LUA_TSTRING ? lua_tonumberx(L, v, &ok) : 0;
    if (!ok || !isfinite(n) || n < r->min || n > r->max) {
        int bare = ok && !isfinite(n) && !r->has_min && !r->has_max;
        bad(L, name, push_expected(L, bare ? "finite number" : "number", r), v);
    }
    if (t == LUA_TSTRING)
        lua_stringtonumber(L, lua_tostring(L, v));
    else
        lua_pushvalue(L, v);
}

/* push_default() for a number or an integer: the text of its range is
 * made only when the error needs it. */
static int push_number_default(lua_State *L, int v, const char *name, const char *kind,
                               const range *r)
{
    return push_default(L, v, name, is_required(L, 3) ? push_expected(L, kind, r) : kind);
}

/* mw.opt.number(t, name [, default [, min [, max]]]) */
static int opt_number(lua_State *L)
{
    const char *name = lookup(L, 5);
    range r = check_range(L, 4);
    if (lua_isnil(L, 6))
        return push_number_default(L, 6, name, "number", &r);
    push_number(L, 6, name, &r);
    return 1;
}

/* mw.opt.integer(t, name [, default [, min [, max]]]) */
static int opt_integer(lua_State *L)
{
    const char *name = lookup(L, 5);
    range r = check_range(L, 4);
    if (lua_isnil(L, 6))
        return push_number_default(L, 6, name, "integer", &r);
    int t = lua_type(L, 6), ok = 0;
    lua_Integer i = t == LUA_TNUMBER || t == LUA_TSTRING ? lua_tointegerx(L, 6, &ok) : 0;
    if (!ok || (lua_Number)i < r.min || (lua_Number)i > r.max)
        return bad(L, name, push_expected(L, "integer", &r), 6);
    lua_pushinteger(L, i);
    return 1;
}

/* mw.opt.timeout(self [, default]): the check's `timeout`, from its
 * instance, else its init_config, else `default`: also the run's budget,
 * and what the I/O of a check that waits on a server should wait at most
 * (mw.http and mw.tcp end every wait a little before the run's deadline,
 * so a server that never answers is still reported by the check). */
static int opt_timeout(lua_State *L)
{
    static const char *const from[][2] = {
        {"instance", "timeout"},
        {"init_config", "init_config.timeout"},
    };
    range r = {MIN_TIMEOUT, HUGE_VAL, 1, 0};
    lua_settop(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    for (size_t i = 0; i < sizeof from / sizeof from[0]; i++) {
        lua_getfield(L, 1, from[i][0]);
        if (lua_istable(L, 3)) {
            push_option(L, 3, "timeout", 0);
            if (!lua_isnil(L, 4)) {
                push_number(L, 4, from[i][1], &r);
                return 1;
            }
        }
        lua_settop(L, 2);
    }
    lua_pushnil(L);
    lua_insert(L, 2); /* the default at 3, as the readers have it */
    return push_number_default(L, 2, "timeout", "number", &r);
}

/* ------------------------------------------------------------- strings */

/* mw.opt.string(t, name [, default]): a number is taken as the string a
 * config writes for it (8080 -> "8080"). */
static int opt_string(lua_State *L)
{
    const char *name = lookup(L, 3);
    if (lua_isnil(L, 4))
        return push_default(L, 4, name, is_required(L, 3) ? "non-empty string" : "string");
    if (!to_text(L, 4))
        return bad(L, name, "string", 4);
    if (is_required(L, 3) && lua_rawlen(L, 4) == 0)
        return bad(L, name, "non-empty string", 4);
    return 1;
}

/* mw.opt.list(t, name [, default]): a list of strings (numbers taken as
 * mw.opt.string takes them), or one string, which is a list of one. A
 * comma in that string is not a separator: a key or a pattern may hold
 * one. */
static int opt_list(lua_State *L)
{
    const char *name = lookup(L, 3);
    if (lua_isnil(L, 4))
        return push_default(L, 4, name, "list");
    if (to_text(L, 4)) {
        lua_createtable(L, 1, 0);
        lua_pushvalue(L, 4);
        lua_rawseti(L, -2, 1);
        return 1;
    }
    table_kind k = lua_istable(L, 4) ? kind_of(L, 4) : T_MIXED;
    if (k != T_LIST && k != T_EMPTY)
        return bad(L, name, "list", 4);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 4);
    lua_createtable(L, n < INT_MAX ? (int)n : 0, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 4, i); /* at 6 */
        if (!to_text(L, 6))
            bad(L, lua_pushfstring(L, "%s[%I]", name, (LUAI_UACINT)i), "string", 6);
        lua_rawseti(L, 5, i);
        if (i % POLL_EVERY == 0)
            mw__budget_poll(L);
    }
    return 1;
}

/* Pushes "NAME.KEY" for the string key at `k`, the key cut as values are
 * in messages. */
static const char *push_entry_name(lua_State *L, const char *name, int k)
{
    size_t n;
    const char *key = lua_tolstring(L, k, &n);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, name);
    luaL_addchar(&b, '.');
    add_shown(&b, key, n, 0);
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
}

/* mw.opt.map(t, name [, default]): a mapping of names to strings
 * (headers, say), numbers taken as mw.opt.string takes them. */
static int opt_map(lua_State *L)
{
    const char *name = lookup(L, 3);
    if (lua_isnil(L, 4))
        return push_default(L, 4, name, "mapping");
    table_kind k = lua_istable(L, 4) ? kind_of(L, 4) : T_MIXED;
    if (k != T_MAPPING && k != T_EMPTY)
        return bad(L, name, "mapping", 4);
    lua_newtable(L);
    lua_pushnil(L);
    for (unsigned count = 1; lua_next(L, 4); count++) { /* key at 6, value at 7 */
        if (!to_text(L, 7))
            bad(L, push_entry_name(L, name, 6), "string", 7);
        lua_pushvalue(L, 6);
        lua_insert(L, -2);
        lua_rawset(L, 5);
        if (count % POLL_EVERY == 0)
            mw__budget_poll(L);
    }
    return 1;
}

/* ------------------------------------------------------------- names */

/* mw.opt.first(t, name, ...): the first name that is set in `t`, else
 * the first name: for an option with older spellings. */
static int opt_first(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkstring(L, 2);
    for (int i = 2; i <= n; i++) {
        push_option(L, 1, luaL_checkstring(L, i), i);
        int set = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (set) {
            lua_pushvalue(L, i);
            return 1;
        }
    }
    lua_pushvalue(L, 2);
    return 1;
}

/* mw.opt.error(name, why) raises "bad option 'NAME': WHY";
 * mw.opt.error(name, expected, value) raises "bad option 'NAME': EXPECTED
 * expected, got VALUE", as the readers do. */
static int opt_error(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *why = luaL_checkstring(L, 2);
    if (lua_gettop(L) >= 3)
        return bad(L, name, why, 3);
    return luaL_error(L, "bad option '%s': %s", name, why);
}

static const luaL_Reg opt_funcs[] = {
    {"bool", opt_bool},   {"number", opt_number}, {"integer", opt_integer}, {"string", opt_string},
    {"list", opt_list},   {"map", opt_map},       {"timeout", opt_timeout}, {"first", opt_first},
    {"error", opt_error}, {NULL, NULL},
};

void mw__open_opt(lua_State *L)
{
    lua_createtable(L, 0, (int)(sizeof opt_funcs / sizeof opt_funcs[0]) + 1);
    luaL_setfuncs(L, opt_funcs, 0);
    lua_pushliteral(L, "mw.opt");
    lua_setfield(L, -2, "__name");
    lua_pushlightuserdata(L, (void *)&required_tag);
    lua_setfield(L, -2, "REQUIRED");
    mw__push_readonly(L, -1);
    lua_setfield(L, -3, "opt");
    lua_pop(L, 1);
}
