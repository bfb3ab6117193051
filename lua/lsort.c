/*
 * lsort.c - table.sort for the sandbox: Lua 5.4's algorithm (quicksort,
 * median of three, a randomized pivot when partitions go lopsided), with
 * a comparison counter that polls the run's deadline.
 *
 * With the default comparator Lua's sort never leaves C, so no hook can
 * stop it: sorting the half-million-element array a 16 MiB cap allows
 * takes a few hundred milliseconds. Polling every SORT_POLL comparisons
 * keeps the stop near the deadline.
 *
 * The algorithm and messages follow Lua 5.4's ltablib.c, Copyright (C)
 * 1994-2022 Lua.org, PUC-Rio, under the MIT licence (see lstrmatch.c for
 * the full notice).
 */
#include "lua/sandbox_int.h"

#include "core/base/util.h"

#include <limits.h>

#define SORT_POLL 1024
#define RANLIMIT  100u /* partitions smaller than this use the middle pivot */

typedef unsigned int idx_t;

typedef struct sorter {
    lua_State *L;
    unsigned steps;
} sorter;

/* Compares the values at stack indices a and b: a < b. */
static int less(sorter *s, int a, int b)
{
    lua_State *L = s->L;
    if (++s->steps % SORT_POLL == 0)
        mw__budget_poll(L);
    if (lua_isnil(L, 2))
        return lua_compare(L, a, b, LUA_OPLT);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, a - 1); /* -1 to compensate for the function */
    lua_pushvalue(L, b - 2); /* -2: function and 'a' */
    lua_call(L, 2, 1);
    int res = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return res;
}

/* t[i] = top value; t[j] = the one below; pops both. */
static void set2(lua_State *L, idx_t i, idx_t j)
{
    lua_seti(L, 1, i);
    lua_seti(L, 1, j);
}

/* The pivot P is at the top and at t[up - 1]. */
static idx_t partition(sorter *s, idx_t lo, idx_t up)
{
    lua_State *L = s->L;
    idx_t i = lo, j = up - 1;
    for (;;) {
        while (lua_geti(L, 1, ++i), less(s, -1, -2)) { /* t[i] < P */
            if (i == up - 1)
                luaL_error(L, "invalid order function for sorting");
            lua_pop(L, 1);
        }
        while (lua_geti(L, 1, --j), less(s, -3, -1)) { /* P < t[j] */
            if (j < i)
                luaL_error(L, "invalid order function for sorting");
            lua_pop(L, 1);
        }
        if (j < i) {
            lua_pop(L, 1);
            set2(L, up - 1, i);
            return i;
        }
        set2(L, i, j);
    }
}

static idx_t choose_pivot(idx_t lo, idx_t up, unsigned rnd)
{
    idx_t r4 = (up - lo) / 4;
    return rnd % (r4 * 2) + (lo + r4);
}

/* Orders t[lo], t[p], t[up] and leaves the median as pivot at up - 1. */
static idx_t median_of_three(sorter *s, idx_t lo, idx_t up, unsigned rnd)
{
    lua_State *L = s->L;
    idx_t p = (up - lo < RANLIMIT || rnd == 0) ? (lo + up) / 2 : choose_pivot(lo, up, rnd);
    lua_geti(L, 1, p);
    lua_geti(L, 1, lo);
    if (less(s, -2, -1)) { /* t[p] < t[lo] */
        set2(L, p, lo);
    } else {
        lua_pop(L, 1);
        lua_geti(L, 1, up);
        if (less(s, -1, -2)) /* t[up] < t[p] */
            set2(L, p, up);
        else
            lua_pop(L, 2);
    }
    return p;
}

static void aux_sort(sorter *s, idx_t lo, idx_t up, unsigned rnd)
{
    lua_State *L = s->L;
    while (lo < up) {
        lua_geti(L, 1, lo);
        lua_geti(L, 1, up);
        if (less(s, -1, -2)) /* t[up] < t[lo] */
            set2(L, lo, up);
        else
            lua_pop(L, 2);
        if (up - lo == 1)
            break;
        idx_t p = median_of_three(s, lo, up, rnd);
        if (up - lo == 2)
            break;
        lua_geti(L, 1, p);
        lua_pushvalue(L, -1);
        lua_geti(L, 1, up - 1);
        set2(L, p, up - 1);
        p = partition(s, lo, up);
        idx_t n;
        if (p - lo < up - p) { /* recurse into the smaller half */
            aux_sort(s, lo, p - 1, rnd);
            n = p - lo;
            lo = p + 1;
        } else {
            aux_sort(s, p + 1, up, rnd);
            n = up - p;
            up = p - 1;
        }
        if ((up - lo) / 128 > n) /* badly unbalanced: randomize */
            rnd = (unsigned)(mw__mono_ns() * 2654435761u >> 7);
    }
}

int mw__table_sort(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    if (n > 1) {
        luaL_argcheck(L, n < INT_MAX, 1, "array too big");
        if (!lua_isnoneornil(L, 2))
            luaL_checktype(L, 2, LUA_TFUNCTION);
        lua_settop(L, 2);
        sorter s = {L, 0};
        aux_sort(&s, 1, (idx_t)n, 0);
    }
    return 0;
}
