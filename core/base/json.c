/*
 * json.c - JSON helpers below every layer: the canonical form of a
 * document and the stable instance id hashed over it, and a writer of
 * JSON strings and numbers into a mw__buf (for the sinks and anything
 * else that prints JSON by hand, without building cJSON trees).
 */
#include "core/base/json.h"

#include "core/base/util.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes staged on the stack before they are appended to the buffer. */
#define STAGE 256

/* ------------------------------------------------------------- canonical form, ids */

static int cmp_item(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string);
}

/* Returns a deep copy of `j` with object keys sorted (NULL on OOM). */
static cJSON *sorted_copy(const cJSON *j)
{
    if (!cJSON_IsObject(j) && !cJSON_IsArray(j))
        return cJSON_Duplicate(j, 1);
    size_t n = (size_t)cJSON_GetArraySize(j), i = 0;
    cJSON **items = calloc(n ? n : 1, sizeof *items);
    cJSON *copy = cJSON_IsObject(j) ? cJSON_CreateObject() : cJSON_CreateArray(), *res = NULL;
    const cJSON *c;
    if (!items || !copy)
        goto out;
    cJSON_ArrayForEach(c, j)
    {
        if (!(items[i] = sorted_copy(c)))
            goto out;
        /* cJSON_Duplicate keeps the key of a leaf; containers get one here */
        if (c->string && !items[i]->string && !(items[i]->string = mw__strdup(c->string)))
            goto out;
        i++;
    }
    if (cJSON_IsObject(j))
        qsort(items, n, sizeof *items, cmp_item);
    for (size_t k = 0; k < n; k++) {
        /* Adding to an object copies the key, which can fail: the item
         * is then still ours. */
        cJSON_bool added = cJSON_IsObject(j)
                               ? cJSON_AddItemToObject(copy, items[k]->string, items[k])
                               : cJSON_AddItemToArray(copy, items[k]);
        if (!added)
            goto out;
        items[k] = NULL;
    }
    res = copy;
    copy = NULL;
out:
    for (size_t k = 0; items && k < n; k++)
        cJSON_Delete(items[k]);
    free(items);
    cJSON_Delete(copy);
    return res;
}

/* Whether the keys of every object in `j` are in strictly increasing
 * order: its canonical form is then its own print, no copy needed (the
 * configs of templates mostly are). */
static int in_order(const cJSON *j)
{
    const cJSON *c, *prev = NULL;
    if (!cJSON_IsObject(j) && !cJSON_IsArray(j))
        return 1;
    cJSON_ArrayForEach(c, j)
    {
        if (cJSON_IsObject(j) && (!c->string || (prev && strcmp(prev->string, c->string) >= 0)))
            return 0;
        if (!in_order(c))
            return 0;
        prev = c;
    }
    return 1;
}

char *mw__json_canonical(const cJSON *j)
{
    if (in_order(j))
        return cJSON_PrintUnformatted(j);
    cJSON *s = sorted_copy(j);
    if (!s)
        return NULL;
    char *out = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    return out;
}

char *mw__instance_id(const char *check, const cJSON *init_config, const cJSON *instance)
{
    char *a = init_config ? mw__json_canonical(init_config) : mw__strdup("null");
    char *b = mw__json_canonical(instance);
    char *id = NULL;
    if (a && b) {
        uint64_t h = mw__hash(MW_HASH_INIT, check, strlen(check) + 1);
        h = mw__hash(h, a, strlen(a) + 1);
        h = mw__hash(h, b, strlen(b));
        id = mw__sprintf("%s:%016llx", check, (unsigned long long)h);
    }
    free(a);
    free(b);
    return id;
}

/* ------------------------------------------------------------- writing */

static const char hexdigits[] = "0123456789abcdef";

/* Length of the valid UTF-8 sequence at `p` (`n` bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0;
    /* Tighter second-byte ranges rule out overlongs, surrogates and
     * code points past U+10FFFF. */
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

/* Writes the escaped form of the byte `c` (< 0x20, '"' or '\\'). */
static size_t escape_byte(unsigned char c, char *o)
{
    static const char short_esc[] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r',
                                     ['\t'] = 't', ['"'] = '"',  ['\\'] = '\\'};
    o[0] = '\\';
    if (c < sizeof(short_esc) && short_esc[c]) {
        o[1] = short_esc[c];
        return 2;
    }
    memcpy(o + 1, "u00", 3);
    o[4] = hexdigits[c >> 4];
    o[5] = hexdigits[c & 15];
    return 6;
}

static int plain_ascii(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

mw_code mw__json_str(mw__buf *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    char stage[STAGE + 8];
    size_t k = 0, i = 0;
    mw_code rc = MW_OK;
    stage[k++] = '"';
    while (i < n && rc == MW_OK) {
        size_t run = i;
        while (run < n && plain_ascii(p[run]))
            run++;
        if (run > i) {
            /* A run of plain bytes: append it without staging. */
            rc = mw__buf_add(out, stage, k);
            k = 0;
            if (rc == MW_OK)
                rc = mw__buf_add(out, p + i, run - i);
            i = run;
            continue;
        }
        size_t u = p[i] >= 0x80 ? utf8_len(p + i, n - i) : 0;
        if (u) {
            memcpy(stage + k, p + i, u);
            k += u;
            i += u;
        } else if (p[i] >= 0x80) {
            memcpy(stage + k, "\xEF\xBF\xBD", 3); /* U+FFFD */
            k += 3;
            i++;
        } else {
            k += escape_byte(p[i++], stage + k);
        }
        if (k >= STAGE) {
            rc = mw__buf_add(out, stage, k);
            k = 0;
        }
    }
    stage[k++] = '"';
    if (rc == MW_OK)
        rc = mw__buf_add(out, stage, k);
    return rc;
}

/* Prints `v` with the fewest digits that read back as the same double. */
static int shortest(char *o, size_t n, double v)
{
    int len = 0;
    for (int prec = 15; prec <= 17; prec++) {
        len = snprintf(o, n, "%.*g", prec, v);
        if (strtod(o, NULL) == v)
            break;
    }
    /* A locale with a decimal comma must not leak into JSON. */
    for (char *c = o; *c; c++)
        if (*c == ',')
            *c = '.';
    return len;
}

mw_code mw__json_num(mw__buf *out, double v)
{
    char tmp[40];
    int len;
    if (!isfinite(v))
        return MW_EINVAL;
    if (v == trunc(v) && fabs(v) < 1e15)
        len = snprintf(tmp, sizeof(tmp), "%" PRId64, (int64_t)v);
    else
        len = shortest(tmp, sizeof(tmp), v);
    return mw__buf_add(out, tmp, (size_t)len);
}
