/*
 * base64.c - mw.base64.encode(s) and mw.base64.decode(s): the standard
 * alphabet of RFC 4648 with '=' padding, for the Authorization header of
 * basic auth and the like.
 *
 * decode is strict: the length a multiple of 4, only the alphabet, '='
 * only as the last one or two characters, the bits under it 0, no
 * whitespace. What it cannot decode gives nil and the reason, as
 * mw.json.decode does. Both write into a luaL_Buffer (nothing malloc'd).
 */
#include "lua/helpers.h"

#include "lua/sandbox_int.h"

#include <stdint.h>

#define POLL_EVERY ((size_t)1 << 16) /* bytes between two looks at the run's deadline */

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_encode(lua_State *L)
{
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    luaL_argcheck(L, n / 3 < SIZE_MAX / 4 - 1, 1, "string too long");
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, (n + 2) / 3 * 4);
    size_t w = 0;
    for (size_t i = 0; i < n; i += 3) {
        if (i % POLL_EVERY == 0 && i > 0)
            mw__budget_poll(L);
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        out[w++] = alphabet[v >> 18 & 63];
        out[w++] = alphabet[v >> 12 & 63];
        out[w++] = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
        out[w++] = i + 2 < n ? alphabet[v & 63] : '=';
    }
    luaL_pushresultsize(&b, w);
    return 1;
}

/* The value of a base64 digit, or -1. */
static int digit(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* nil and "invalid base64: WHY at byte AT" (0: no position). */
static int b64_fail(lua_State *L, const char *why, size_t at)
{
    luaL_pushfail(L);
    if (at > 0)
        lua_pushfstring(L, "invalid base64: %s at byte %I", why, (LUAI_UACINT)at);
    else
        lua_pushfstring(L, "invalid base64: %s", why);
    return 2;
}

/* Padding: how many '=' end `s` (at most 2 count). */
static size_t padding(const unsigned char *s, size_t n)
{
    size_t p = 0;
    while (p < 2 && p < n && s[n - 1 - p] == '=')
        p++;
    return p;
}

static int b64_decode(lua_State *L)
{
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    if (n % 4 != 0)
        return b64_fail(L, "length not a multiple of 4", 0);
    size_t pad = padding(s, n);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, n / 4 * 3);
    size_t w = 0;
    for (size_t i = 0; i < n; i += 4) {
        if (i % POLL_EVERY == 0 && i > 0)
            mw__budget_poll(L);
        uint32_t v = 0;
        for (size_t k = 0; k < 4; k++) {
            int d = i + k < n - pad ? digit(s[i + k]) : 0;
            if (d < 0)
                return b64_fail(L, "unexpected character", i + k + 1);
            v = v << 6 | (uint32_t)d;
        }
        /* the bits under the padding are 0 in what encode writes */
        if (i + 4 == n && (v & (pad == 2 ? 0xffff : pad == 1 ? 0xff : 0)) != 0)
            return b64_fail(L, "non-zero bits under the padding", n - pad);
        out[w++] = (char)(v >> 16);
        out[w++] = (char)(v >> 8 & 0xff);
        out[w++] = (char)(v & 0xff);
    }
    luaL_pushresultsize(&b, w - pad);
    return 1;
}

static const luaL_Reg base64_funcs[] = {
    {"encode", b64_encode},
    {"decode", b64_decode},
    {NULL, NULL},
};

void mw__open_base64(lua_State *L)
{
    lua_createtable(L, 0, (int)(sizeof base64_funcs / sizeof base64_funcs[0]));
    luaL_setfuncs(L, base64_funcs, 0);
    lua_pushliteral(L, "mw.base64");
    lua_setfield(L, -2, "__name");
    mw__push_readonly(L, -1);
    lua_setfield(L, -3, "base64");
    lua_pop(L, 1);
}
