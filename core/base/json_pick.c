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

static int skip_value(reader *r);

static int skip_object(reader *r)
{
    int more;

    if (!enter(r))
        return 0;
    if (next(r, '}') == 1)
        return 1;
    do {
        ws(r);
        if (!at(r, '"') || !skip_string(r, NULL))
            return 0;
        ws(r);
        if (!at(r, ':'))
            return 0;
        r->p++;
        if (!skip_value(r))
            return 0;
    } while ((more = next(r, '}')) == 2);
    return more;
}

static int skip_array(reader *r)
{
    int more;

    if (!enter(r))
        return 0;
    if (next(r, ']') == 1)
        return 1;
    do {
        if (!skip_value(r))
            return 0;
    } while ((more = next(r, ']')) == 2);
    return more;
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
        return skip_object(r);
    case '[':
        return skip_array(r);
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
        if ((pick->key[0] == '*' && pick->key[1] == '\0') ||
            (n > 0 && pick->key[0] == key[0] && strncmp(pick->key, key, n) == 0 &&
             pick->key[n] == '\0') ||
            (n == 0 && pick->key[0] == '\0'))
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

/* One member "key": value into `obj`, kept when the pick names it. */
static int pick_member(reader *r, const mw__json_pick *pick, cJSON *obj)
{
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
        want = find(pick, key, n);
        if (!want)
            ok = skip_value(r);
        else if ((child = pick_value(r, want->value)) != NULL)
            ok = add_member(obj, key, n, child);
    }
    cJSON_Delete(decoded);
    return ok;
}

static cJSON *pick_object(reader *r, const mw__json_pick *pick)
{
    cJSON *obj = cJSON_CreateObject();
    int more;

    if (!obj || !enter(r))
        goto fail;
    if (next(r, '}') == 1)
        return obj;
    do {
        if (!pick_member(r, pick, obj))
            goto fail;
    } while ((more = next(r, '}')) == 2);
    if (more)
        return obj;
fail:
    cJSON_Delete(obj);
    return NULL;
}

static cJSON *pick_array(reader *r, const mw__json_pick *pick)
{
    cJSON *arr = cJSON_CreateArray(), *child;
    int more;

    if (!arr || !enter(r))
        goto fail;
    if (next(r, ']') == 1)
        return arr;
    do {
        if (!(child = pick_value(r, pick)))
            goto fail;
        if (!cJSON_AddItemToArray(arr, child)) {
            cJSON_Delete(child);
            goto fail;
        }
    } while ((more = next(r, ']')) == 2);
    if (more)
        return arr;
fail:
    cJSON_Delete(arr);
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
    if (pick && at(r, '{'))
        return pick_object(r, pick);
    if (pick && at(r, '['))
        return pick_array(r, pick);
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
