/*
 * json.c - JSON for the sandbox: cJSON trees to Lua values (self.instance,
 * self.init_config), and mw.json.decode / mw.json.encode.
 *
 * decode parses straight into Lua values and encode writes into a buffer
 * allocated through the state's own allocator, so a check's JSON counts
 * against its memory cap and nothing malloc'd is held across a call that
 * can raise (the buffer is a userdata whose __gc frees it).
 *
 * Mapping: objects and arrays are tables; JSON null is dropped from
 * objects (the key is absent, so `cfg.x or default` works) and becomes
 * mw.json.null in arrays, to keep positions. mw.json.null is a light
 * userdata (NULL) and encodes as null. Encoding: a table whose keys are
 * exactly 1..n is an array, any other table an object (integer keys become
 * strings); an empty table is `{}`. Functions, threads, userdata, NaN and
 * infinities, cycles and nesting deeper than MAX_DEPTH are errors.
 */
#include "lua/sandbox_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_DEPTH      128
#define MAX_NUMBER_LEN 64

/* ------------------------------------------------------------- cJSON */

static void push_cjson(lua_State *L, const cJSON *j, int depth);

static void push_cjson_number(lua_State *L, const cJSON *j)
{
    double d = j->valuedouble;
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
        lua_pushinteger(L, (lua_Integer)d);
    else
        lua_pushnumber(L, d);
}

static void push_cjson_container(lua_State *L, const cJSON *j, int depth)
{
    int array = cJSON_IsArray(j), n = cJSON_GetArraySize(j);
    lua_createtable(L, array ? n : 0, array ? 0 : n); /* sized at once: no rehash */
    lua_Integer i = 1;
    for (const cJSON *c = j->child; c; c = c->next) {
        if (array) {
            push_cjson(L, c, depth + 1);
            lua_rawseti(L, -2, i++);
        } else if (!cJSON_IsNull(c) && c->string) {
            lua_pushstring(L, c->string);
            push_cjson(L, c, depth + 1);
            lua_rawset(L, -3);
        }
    }
}

static void push_cjson(lua_State *L, const cJSON *j, int depth)
{
    if (depth > MAX_DEPTH)
        luaL_error(L, "configuration nested deeper than %d", MAX_DEPTH);
    luaL_checkstack(L, 3, "configuration nested too deep");
    if (cJSON_IsNumber(j))
        push_cjson_number(L, j);
    else if (cJSON_IsString(j))
        lua_pushstring(L, j->valuestring);
    else if (cJSON_IsBool(j))
        lua_pushboolean(L, cJSON_IsTrue(j));
    else if (cJSON_IsArray(j) || cJSON_IsObject(j))
        push_cjson_container(L, j, depth);
    else
        lua_pushlightuserdata(L, NULL); /* null, raw */
}

void mw__json_push_cjson(lua_State *L, const cJSON *j)
{
    if (!j) {
        lua_newtable(L);
        return;
    }
    push_cjson(L, j, 0);
}

/* ------------------------------------------------------------- decode */

typedef struct decoder {
    lua_State *L;
    const char *p;
    const char *start;
    const char *end;
    int depth;
    char err[96];
} decoder;

static int dec_value(decoder *d);

static int dec_fail(decoder *d, const char *what)
{
    if (!d->err[0])
        snprintf(d->err, sizeof(d->err), "%s at byte %zu", what, (size_t)(d->p - d->start) + 1);
    return -1;
}

static void skip_ws(decoder *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r'))
        d->p++;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static void add_utf8(luaL_Buffer *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    luaL_addlstring(b, u, n);
}

/* After "\u": reads one code point, joining a surrogate pair. */
static int dec_unicode(decoder *d, unsigned *cp)
{
    if (d->end - d->p < 4 || hex4(d->p, cp) != 0)
        return dec_fail(d, "bad \\u escape");
    d->p += 4;
    if (*cp >= 0xD800 && *cp <= 0xDBFF) {
        unsigned lo;
        if (d->end - d->p < 6 || d->p[0] != '\\' || d->p[1] != 'u' || hex4(d->p + 2, &lo) != 0 ||
            lo < 0xDC00 || lo > 0xDFFF)
            return dec_fail(d, "bad surrogate pair");
        d->p += 6;
        *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
    } else if (*cp >= 0xDC00 && *cp <= 0xDFFF) {
        return dec_fail(d, "bad surrogate pair");
    }
    return 0;
}

static int dec_escape(decoder *d, luaL_Buffer *b)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (d->p >= d->end)
        return dec_fail(d, "unfinished string");
    char c = *d->p++;
    if (c == 'u') {
        unsigned cp;
        if (dec_unicode(d, &cp) != 0)
            return -1;
        add_utf8(b, cp);
        return 0;
    }
    const char *k = c ? strchr(from, c) : NULL;
    if (!k)
        return dec_fail(d, "bad escape");
    luaL_addchar(b, to[k - from]);
    return 0;
}

/* At the opening quote; pushes the string. A string without escapes
 * (nearly all of them) is pushed straight from the text; otherwise a
 * buffer is the only thing pushed while it is in use. */
static int dec_string(decoder *d)
{
    luaL_Buffer b;
    const char *s = ++d->p;
    while (d->p < d->end && *d->p != '"' && *d->p != '\\' && (unsigned char)*d->p >= 0x20)
        d->p++;
    if (d->p < d->end && *d->p == '"') {
        lua_pushlstring(d->L, s, (size_t)(d->p - s));
        d->p++;
        return 0;
    }
    d->p = s; /* an escape, or the end: again, through a buffer */
    luaL_buffinit(d->L, &b);
    for (;;) {
        const char *run = d->p;
        while (d->p < d->end && *d->p != '"' && *d->p != '\\' && (unsigned char)*d->p >= 0x20)
            d->p++;
        luaL_addlstring(&b, run, (size_t)(d->p - run));
        if (d->p >= d->end || (unsigned char)*d->p < 0x20) {
            luaL_pushresult(&b);
            return dec_fail(d, "unfinished string");
        }
        if (*d->p++ == '"')
            break;
        if (dec_escape(d, &b) != 0) {
            luaL_pushresult(&b);
            return -1;
        }
    }
    luaL_pushresult(&b);
    return 0;
}

static int dec_number(decoder *d)
{
    const char *s = d->p;
    char buf[MAX_NUMBER_LEN + 1];
    if (d->p < d->end && *d->p == '-')
        d->p++;
    if (d->p >= d->end || !(*d->p >= '0' && *d->p <= '9'))
        return dec_fail(d, "bad number");
    if (*d->p == '0') /* no leading zeros */
        d->p++;
    else
        while (d->p < d->end && *d->p >= '0' && *d->p <= '9')
            d->p++;
    if (d->p < d->end && *d->p == '.') {
        d->p++;
        if (d->p >= d->end || !(*d->p >= '0' && *d->p <= '9'))
            return dec_fail(d, "bad number");
        while (d->p < d->end && *d->p >= '0' && *d->p <= '9')
            d->p++;
    }
    if (d->p < d->end && (*d->p == 'e' || *d->p == 'E')) {
        d->p++;
        if (d->p < d->end && (*d->p == '+' || *d->p == '-'))
            d->p++;
        if (d->p >= d->end || !(*d->p >= '0' && *d->p <= '9'))
            return dec_fail(d, "bad number");
        while (d->p < d->end && *d->p >= '0' && *d->p <= '9')
            d->p++;
    }
    size_t n = (size_t)(d->p - s);
    if (n > MAX_NUMBER_LEN)
        return dec_fail(d, "number too long");
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (lua_stringtonumber(d->L, buf) == 0)
        return dec_fail(d, "bad number");
    return 0;
}

static int dec_literal(decoder *d, const char *word, int kind)
{
    size_t n = strlen(word);
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
        return dec_fail(d, "unexpected character");
    d->p += n;
    if (kind < 0)
        lua_pushlightuserdata(d->L, NULL);
    else
        lua_pushboolean(d->L, kind);
    return 0;
}

static int dec_enter(decoder *d)
{
    int object = *d->p == '{';
    if (++d->depth > MAX_DEPTH)
        return dec_fail(d, "nesting too deep");
    luaL_checkstack(d->L, 4, "JSON nesting too deep");
    d->p++;
    /* room for a few members at once: an object grown one member at a
     * time is rehashed at 1, 2 and 4 */
    lua_createtable(d->L, 0, object ? 4 : 0);
    skip_ws(d);
    return 0;
}

/* Expects ',' (returns 1: more) or `close` (returns 0). */
static int dec_next(decoder *d, char close)
{
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
        d->p++;
        return 1;
    }
    if (d->p < d->end && *d->p == close) {
        d->p++;
        d->depth--;
        return 0;
    }
    return dec_fail(d, close == ']' ? "expected ',' or ']'" : "expected ',' or '}'");
}

static int dec_array(decoder *d)
{
    if (dec_enter(d) != 0)
        return -1;
    if (d->p < d->end && *d->p == ']') {
        d->p++;
        d->depth--;
        return 0;
    }
    int more;
    lua_Integer i = 1;
    do {
        if (dec_value(d) != 0)
            return -1;
        lua_rawseti(d->L, -2, i++); /* null stays as the sentinel */
    } while ((more = dec_next(d, ']')) == 1);
    return more;
}

static int dec_member(decoder *d)
{
    skip_ws(d);
    if (d->p >= d->end || *d->p != '"')
        return dec_fail(d, "expected a string key");
    if (dec_string(d) != 0)
        return -1;
    skip_ws(d);
    if (d->p >= d->end || *d->p != ':')
        return dec_fail(d, "expected ':'");
    d->p++;
    if (dec_value(d) != 0)
        return -1;
    if (lua_islightuserdata(d->L, -1))
        lua_pop(d->L, 2); /* null member: absent key */
    else
        lua_rawset(d->L, -3);
    return 0;
}

static int dec_object(decoder *d)
{
    if (dec_enter(d) != 0)
        return -1;
    if (d->p < d->end && *d->p == '}') {
        d->p++;
        d->depth--;
        return 0;
    }
    int more;
    do {
        if (dec_member(d) != 0)
            return -1;
    } while ((more = dec_next(d, '}')) == 1);
    return more;
}

static int dec_value(decoder *d)
{
    skip_ws(d);
    if (d->p >= d->end)
        return dec_fail(d, "unexpected end");
    switch (*d->p) {
    case '{':
        return dec_object(d);
    case '[':
        return dec_array(d);
    case '"':
        return dec_string(d);
    case 't':
        return dec_literal(d, "true", 1);
    case 'f':
        return dec_literal(d, "false", 0);
    case 'n':
        return dec_literal(d, "null", -1);
    default:
        return dec_number(d);
    }
}

int mw__json_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    decoder d = {.L = L, .p = s, .start = s, .end = s + len};
    lua_settop(L, 1);
    if (dec_value(&d) == 0) {
        skip_ws(&d);
        if (d.p == d.end)
            return 1;
        dec_fail(&d, "trailing characters");
    }
    lua_settop(L, 1);
    luaL_pushfail(L);
    lua_pushfstring(L, "invalid JSON: %s", d.err);
    return 2;
}

/* ------------------------------------------------------------- encode */

/* Output buffer in a userdata, grown through the state's allocator so it
 * counts against the memory cap; __gc frees it if an error unwinds. */
typedef struct jbuf {
    char *p;
    size_t n;
    size_t cap;
    lua_Alloc alloc;
    void *ud;
} jbuf;

#define JBUF_MT "mw.jbuf"

static void jbuf_release(jbuf *b)
{
    if (b->p)
        b->alloc(b->ud, b->p, b->cap, 0);
    b->p = NULL;
    b->cap = 0;
}

static int jbuf_gc(lua_State *L)
{
    jbuf_release(lua_touserdata(L, 1));
    return 0;
}

static void jbuf_add(lua_State *L, jbuf *b, const char *s, size_t n)
{
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n < n)
            cap *= 2;
        char *p = b->alloc(b->ud, b->p, b->cap, cap);
        if (!p)
            luaL_error(L, "not enough memory");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

typedef struct encoder {
    lua_State *L;
    jbuf *b;
    int visiting; /* stack index of the set of tables being encoded */
    int depth;
} encoder;

static void enc_value(encoder *e, int idx);

static void enc_lit(encoder *e, const char *s)
{
    jbuf_add(e->L, e->b, s, strlen(s));
}

static void enc_string(encoder *e, int idx)
{
    size_t len;
    const char *s = lua_tolstring(e->L, idx, &len);
    jbuf_add(e->L, e->b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            jbuf_add(e->L, e->b, esc, 2);
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            jbuf_add(e->L, e->b, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            jbuf_add(e->L, e->b, esc, 6);
        } else {
            jbuf_add(e->L, e->b, (const char *)&s[i], 1);
        }
    }
    jbuf_add(e->L, e->b, "\"", 1);
}

static void enc_number(encoder *e, int idx)
{
    char num[64];
    if (lua_isinteger(e->L, idx)) {
        snprintf(num, sizeof(num), LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(e->L, idx));
    } else {
        double d = lua_tonumber(e->L, idx);
        if (!isfinite(d))
            luaL_error(e->L, "mw.json.encode: cannot encode NaN or infinity");
        snprintf(num, sizeof(num), "%.17g", d);
    }
    enc_lit(e, num);
}

/* Returns n when the table's keys are exactly 1..n, else -1. */
static lua_Integer array_len(lua_State *L, int idx)
{
    lua_Integer n = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
            lua_pop(L, 1);
            return -1;
        }
        lua_Integer k = lua_tointeger(L, -1);
        max = k > max ? k : max;
        n++;
    }
    return n > 0 && max == n ? n : -1;
}

static void enc_array(encoder *e, int idx, lua_Integer n)
{
    enc_lit(e, "[");
    for (lua_Integer i = 1; i <= n; i++) {
        if (i > 1)
            enc_lit(e, ",");
        lua_rawgeti(e->L, idx, i);
        enc_value(e, lua_gettop(e->L));
        lua_pop(e->L, 1);
    }
    enc_lit(e, "]");
}

static void enc_key(encoder *e, int idx)
{
    if (lua_type(e->L, idx) == LUA_TSTRING) {
        enc_string(e, idx);
        return;
    }
    if (!lua_isinteger(e->L, idx))
        luaL_error(e->L, "mw.json.encode: object keys must be strings or integers");
    lua_pushvalue(e->L, idx);
    lua_tolstring(e->L, -1, NULL); /* converts the copy, not the key */
    enc_string(e, lua_gettop(e->L));
    lua_pop(e->L, 1);
}

static void enc_object(encoder *e, int idx)
{
    int first = 1;
    enc_lit(e, "{");
    lua_pushnil(e->L);
    while (lua_next(e->L, idx)) {
        int top = lua_gettop(e->L);
        if (!first)
            enc_lit(e, ",");
        first = 0;
        enc_key(e, top - 1);
        enc_lit(e, ":");
        enc_value(e, top);
        lua_pop(e->L, 1);
    }
    enc_lit(e, "}");
}

static void enc_table(encoder *e, int idx)
{
    lua_State *L = e->L;
    if (++e->depth > MAX_DEPTH)
        luaL_error(L, "mw.json.encode: nesting deeper than %d", MAX_DEPTH);
    luaL_checkstack(L, 6, "mw.json.encode: nesting too deep");
    lua_pushvalue(L, idx);
    if (lua_rawget(L, e->visiting) != LUA_TNIL)
        luaL_error(L, "mw.json.encode: cannot encode a table that contains itself");
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, e->visiting);
    lua_Integer n = array_len(L, idx);
    if (n > 0)
        enc_array(e, idx, n);
    else
        enc_object(e, idx);
    lua_pushvalue(L, idx);
    lua_pushnil(L);
    lua_rawset(L, e->visiting);
    e->depth--;
}

static void enc_value(encoder *e, int idx)
{
    switch (lua_type(e->L, idx)) {
    case LUA_TNIL:
        enc_lit(e, "null");
        break;
    case LUA_TBOOLEAN:
        enc_lit(e, lua_toboolean(e->L, idx) ? "true" : "false");
        break;
    case LUA_TNUMBER:
        enc_number(e, idx);
        break;
    case LUA_TSTRING:
        enc_string(e, idx);
        break;
    case LUA_TTABLE:
        enc_table(e, idx);
        break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(e->L, idx) == NULL) {
            enc_lit(e, "null");
            break;
        }
        /* fall through */
    default:
        luaL_error(e->L, "mw.json.encode: cannot encode a %s value", luaL_typename(e->L, idx));
    }
}

int mw__json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    encoder e = {.L = L, .depth = 0};
    lua_newtable(L);
    e.visiting = lua_gettop(L);
    e.b = lua_newuserdatauv(L, sizeof(jbuf), 0);
    memset(e.b, 0, sizeof(*e.b));
    e.b->alloc = lua_getallocf(L, &e.b->ud);
    if (luaL_newmetatable(L, JBUF_MT)) {
        lua_pushcfunction(L, jbuf_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    enc_value(&e, 1);
    lua_pushlstring(L, e.b->p ? e.b->p : "", e.b->n);
    jbuf_release(e.b); /* now, not at the next collection */
    return 1;
}
