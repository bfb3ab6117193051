/*
 * tag.c - mw.tag.normalize(s): Datadog's normalize_tag, which its checks
 * apply to names that become tag values (http_check's and tcp_check's
 * instance:<name>), so that the bundled checks tag as Datadog's do:
 *
 *   - each of , + * - / ( ) [ ] { } and whitespace becomes '_';
 *   - a run of '_' becomes one;
 *   - '_' next to a '.' goes ("a_._b" -> "a.b");
 *   - '_' at either end goes.
 *
 * One pass over the string, into a luaL_Buffer (nothing malloc'd).
 */
#include "lua/helpers.h"

#include "lua/sandbox_int.h"

#include <string.h>

#define POLL_EVERY ((size_t)1 << 16) /* bytes between two looks at the run's deadline */

/* A byte that becomes '_' (or is one). */
static int underscore(char c)
{
    return c == '_' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
           (c != '\0' && strchr(",+*-/()[]{}", c) != NULL);
}

static int tag_normalize(lua_State *L)
{
    size_t n, w = 0, polled = 0;
    const char *s = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, n);
    for (size_t i = 0; i < n;) {
        if (i - polled >= POLL_EVERY) {
            mw__budget_poll(L);
            polled = i;
        }
        if (!underscore(s[i])) {
            out[w++] = s[i++];
            continue;
        }
        size_t j = i;
        while (j < n && underscore(s[j]))
            j++;
        /* one '_' for the run, unless it is at an end or next to a dot */
        if (w > 0 && j < n && out[w - 1] != '.' && s[j] != '.')
            out[w++] = '_';
        i = j;
    }
    luaL_pushresultsize(&b, w);
    return 1;
}

static const luaL_Reg tag_funcs[] = {
    {"normalize", tag_normalize},
    {NULL, NULL},
};

void mw__open_tag(lua_State *L)
{
    lua_createtable(L, 0, (int)(sizeof tag_funcs / sizeof tag_funcs[0]));
    luaL_setfuncs(L, tag_funcs, 0);
    lua_pushliteral(L, "mw.tag");
    lua_setfield(L, -2, "__name");
    mw__push_readonly(L, -1);
    lua_setfield(L, -3, "tag");
    lua_pop(L, 1);
}
