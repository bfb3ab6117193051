/*
 * json_pick.c - a JSON reader that builds cJSON nodes only for the members
 * a pick names (json_pick.h). Values it keeps whole are handed to cJSON
 * itself, so what is kept reads exactly as cJSON_ParseWithLength would
 * have read it; values it steps over are checked by a small recursive
 * scanner that allocates nothing and stops at cJSON's nesting limit.
 *
 * The scanner is no laxer than cJSON: what it steps over, cJSON would
 * have read, but for a \u escape naming a lone surrogate (cJSON refuses
 * it; nobody reads that string). It is stricter where cJSON is lax ("1."
 * and a \u escape with a non-hex digit are refused).
 */
#include "core/base/json_pick.h"

#include "core/base/util.h"

#include <stdlib.h>
#include <string.h>

#define DEPTH_MAX  CJSON_NESTING_LIMIT
#define KEY_STAGED 64 /* keys this long are copied on the stack */

typedef struct reader {
    const char *p, *end;
    unsigned depth;
} reader;

/* ------------------------------------------------------------- scanning */

static void ws(reader *r)
{
    while (r->p < r->end && (unsigned char)*r->p <= ' ')
        r->p++;
}

static int at(reader *r, char c)
{
    return r->p < r->end && *r->p == c;
}

static int word(reader *r, const char *w, size_t n)
{
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
        return 0;
    r->p += n;
    return 1;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* At '"': steps past the string; `*escaped` (if given) is set when it
 * holds an escape. memchr finds the closing quote; only a backslash
 * before it needs a look. */
static int skip_string(reader *r, int *escaped)
{
    r->p++;
    while (r->p < r->end) {
        const char *q = memchr(r->p, '"', (size_t)(r->end - r->p));
        const char *b = q ? memchr(r->p, '\\', (size_t)(q - r->p)) : NULL;
        if (!q)
            return 0;
        if (!b) {
            r->p = q + 1;
            return 1;
        }
        r->p = b + 1;
        if (escaped)
            *escaped = 1;
        if (r->p >= r->end)
            return 0;
        char c = *r->p++;
        if (c == 'u') {
            if (r->end - r->p < 4 || !is_hex(r->p[0]) || !is_hex(r->p[1]) || !is_hex(r->p[2]) ||
                !is_hex(r->p[3]))
                return 0;
            r->p += 4;
        } else if (c == '\0' || !strchr("\"\\/bfnrt", c)) {
            return 0;
        }
    }
    return 0;
}

static int digits(reader *r)
{
    const char *s = r->p;

    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
        r->p++;
    return r->p > s;
}

/* -?d+(.d+)?([eE][+-]?d+)? */
static int skip_number(reader *r)
{
    if (at(r, '-'))
        r->p++;
    if (!digits(r))
        return 0;
    if (at(r, '.')) {
        r->p++;
        if (!digits(r))
            return 0;
    }
    if (at(r, 'e') || at(r, 'E')) {
        r->p++;
        if (at(r, '+') || at(r, '-'))
            r->p++;
        if (!digits(r))
            return 0;
    }
    return 1;
}

/* Past '{' or '[' and the blanks after it, one level deeper. */
static int enter(reader *r)
{
    if (++r->depth > DEPTH_MAX)
        return 0;
    r->p++;
    ws(r);
    return 1;
}

/* After a member or an element: 1 at `close` (consumed), 2 at ',', 0 on
 * anything else. */
static int next(reader *r, char close)
{
    ws(r);
    if (at(r, close)) {
        r->p++;
        r->depth--;
        return 1;
    }
    if (at(r, ',')) {
        r->p++;
        return 2;
    }
    return 0;
}

/* Calls `item` for each member or element of the object or array at
 * r->p, closed by `close`: 1 once it is closed, 0 on a syntax error or
 * when `item` returns 0. */
static int each(reader *r, char close, int (*item)(reader *r, void *ud), void *ud)
{
    int more;

    if (!enter(r))
        return 0;
    if (next(r, close) == 1)
        return 1;
    do {
        if (!item(r, ud))
            return 0;
    } while ((more = next(r, close)) == 2);
    return more;
}

static int skip_value(reader *r);

/* "key" : value, at a member (blanks before it allowed). */
static int skip_member(reader *r, void *ud)
{
    MW_UNUSED(ud);
    ws(r);
    if (!at(r, '"') || !skip_string(r, NULL))
        return 0;
    ws(r);
    if (!at(r, ':'))
        return 0;
    r->p++;
    return skip_value(r);
}

static int skip_element(reader *r, void *ud)
{
    MW_UNUSED(ud);
    return skip_value(r);
}

static int skip_value(reader *r)
{
    ws(r);
    if (r->p >= r->end)
        return 0;
    switch (*r->p) {
    case '"':
        return skip_string(r, NULL);
    case '{':
        return each(r, '}', skip_member, NULL);
    case '[':
        return each(r, ']', skip_element, NULL);
    case 't':
        return word(r, "true", 4);
    case 'f':
        return word(r, "false", 5);
    case 'n':
        return word(r, "null", 4);
    default:
        return skip_number(r);
    }
}

/* ------------------------------------------------------------- picking */

static cJSON *pick_value(reader *r, const mw__json_pick *pick);

/* The entry of `pick` for the key of `n` bytes at `key`, or NULL. */
static const mw__json_pick *find(const mw__json_pick *pick, const char *key, size_t n)
{
    for (; pick->key; pick++)
        if (strcmp(pick->key, "*") == 0 ||
            ((n == 0 || pick->key[0] == key[0]) && strncmp(pick->key, key, n) == 0 &&
             pick->key[n] == '\0'))
            return pick;
    return NULL;
}

/* Adds `child` to `obj` under the `n` bytes at `key`; 0 on OOM (then
 * `child` is freed). */
static int add_member(cJSON *obj, const char *key, size_t n, cJSON *child)
{
    char staged[KEY_STAGED], *name = n < sizeof staged ? staged : malloc(n + 1);
    int ok = 0;

    if (name) {
        memcpy(name, key, n);
        name[n] = '\0';
        ok = cJSON_AddItemToObject(obj, name, child);
        if (name != staged)
            free(name);
    }
    if (!ok)
        cJSON_Delete(child);
    return ok;
}

/* What pick_member() and pick_element() fill: `into`, by `pick`. */
typedef struct picking {
    const mw__json_pick *pick;
    cJSON *into;
} picking;

/* One member "key": value into the object, kept when the pick names it. */
static int pick_member(reader *r, void *ud)
{
    picking *pk = ud;
    const char *start, *key;
    const mw__json_pick *want;
    cJSON *decoded = NULL, *child;
    int escaped = 0, ok = 0;
    size_t n;

    ws(r);
    start = r->p;
    if (!at(r, '"') || !skip_string(r, &escaped))
        return 0;
    if (escaped) { /* cJSON decodes it, as it would have */
        if (!(decoded = cJSON_ParseWithLength(start, (size_t)(r->p - start))))
            return 0;
        key = decoded->valuestring;
        n = strlen(key);
    } else {
        key = start + 1;
        n = strnlen(key, (size_t)(r->p - start - 2)); /* NUL ends it, as in cJSON */
    }
    ws(r);
    if (at(r, ':')) {
        r->p++;
        want = find(pk->pick, key, n);
        if (!want)
            ok = skip_value(r);
        else if ((child = pick_value(r, want->value)) != NULL)
            ok = add_member(pk->into, key, n, child);
    }
    cJSON_Delete(decoded);
    return ok;
}

/* One element into the array, picked alike. */
static int pick_element(reader *r, void *ud)
{
    picking *pk = ud;
    cJSON *child = pick_value(r, pk->pick);

    if (child && !cJSON_AddItemToArray(pk->into, child)) {
        cJSON_Delete(child);
        child = NULL;
    }
    return child != NULL;
}

/* The object or array at r->p, with what `pick` names of its members or
 * elements. */
static cJSON *pick_container(reader *r, const mw__json_pick *pick)
{
    int object = at(r, '{');
    picking pk = {pick, object ? cJSON_CreateObject() : cJSON_CreateArray()};

    if (pk.into && each(r, object ? '}' : ']', object ? pick_member : pick_element, &pk))
        return pk.into;
    cJSON_Delete(pk.into);
    return NULL;
}

/* The value here, whole by cJSON. */
static cJSON *whole(reader *r)
{
    const char *end = NULL;
    cJSON *j;

    if (r->p >= r->end)
        return NULL;
    j = cJSON_ParseWithLengthOpts(r->p, (size_t)(r->end - r->p), &end, 0);
    if (j)
        r->p = end;
    return j;
}

static cJSON *pick_value(reader *r, const mw__json_pick *pick)
{
    ws(r);
    if (pick && (at(r, '{') || at(r, '[')))
        return pick_container(r, pick);
    return whole(r);
}

cJSON *mw__json_pick_parse(const char *text, size_t len, const mw__json_pick *pick)
{
    reader r = {text, text + len, 0};

    if (!text || len == 0)
        return NULL;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        r.p += 3; /* a UTF-8 byte order mark, as cJSON skips it */
    return pick_value(&r, pick);
}
