/*
 * docker_events.c - the Docker `/events` stream decoder: a capped line
 * splitter, the event parser and the resume watermark (see the header for
 * who owns what).
 *
 * cJSON keeps numbers as doubles, which cannot hold a timeNano exactly
 * (1.8e18 is past 2^53), so timeNano is read again from the text of the
 * line, at the top level only: a label named "timeNano" must not be taken
 * for it.
 */
#include "discovery/docker/docker_events.h"

#include "core/base/util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_SEPARATOR 0x1E
#define KEEP_BYTES       (64 * 1024) /* line memory kept between lines */

/* ---- line splitter ---- */

void mw__docker_lines_init(mw__docker_lines *s, size_t max)
{
    mw__buf_init(&s->line, max);
    s->skipping = 0;
}

void mw__docker_lines_free(mw__docker_lines *s)
{
    mw__buf_free(&s->line);
    s->skipping = 0;
}

static mw_code deliver(mw__docker_lines *s, mw__docker_line_fn fn, void *ud)
{
    size_t len = s->line.len;
    mw_code rc;

    if (len > 0 && s->line.p[len - 1] == '\r')
        mw__buf_setlen(&s->line, --len);
    rc = fn(ud, mw__buf_str(&s->line), len, NULL);
    /* One rare long line must not pin its memory for the stream's life. */
    if (s->line.cap > KEEP_BYTES)
        mw__buf_free(&s->line);
    else
        mw__buf_reset(&s->line);
    return rc;
}

/* Appends one segment of a line; past the cap the line is dropped and
 * reported, and the rest of it skipped. */
static mw_code append(mw__docker_lines *s, const char *p, size_t n, mw__docker_line_fn fn, void *ud)
{
    char what[80];

    if (n <= s->line.max - s->line.len) {
        mw_code rc = mw__buf_add(&s->line, p, n);
        /* Out of memory: the line is lost; drop the rest of it too. */
        s->skipping = rc != MW_OK;
        if (rc != MW_OK)
            mw__buf_reset(&s->line);
        return rc;
    }
    snprintf(what, sizeof(what), "line longer than %zu bytes, skipped", s->line.max);
    mw__buf_reset(&s->line);
    s->skipping = 1;
    return fn(ud, NULL, 0, what);
}

mw_code mw__docker_lines_feed(mw__docker_lines *s, const char *p, size_t n, mw__docker_line_fn fn,
                              void *ud)
{
    const char *end = p + n;
    mw_code rc = MW_OK;

    while (p < end && rc == MW_OK) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;

        if (s->skipping) {
            s->skipping = nl == NULL;
        } else {
            while (p < stop && s->line.len == 0 && *p == RECORD_SEPARATOR)
                p++;
            rc = append(s, p, (size_t)(stop - p), fn, ud);
            /* A line that overflowed on its last segment is over now. */
            if (nl && s->skipping)
                s->skipping = 0;
            else if (nl && rc == MW_OK)
                rc = deliver(s, fn, ud);
        }
        p = nl ? nl + 1 : end;
    }
    return rc;
}

mw_code mw__docker_lines_finish(mw__docker_lines *s, mw__docker_line_fn fn, void *ud)
{
    mw_code rc = MW_OK;

    if (s->line.len > 0)
        rc = fn(ud, NULL, 0, "stream ended inside a line, cut event dropped");
    mw__buf_reset(&s->line);
    s->skipping = 0;
    return rc;
}

/* ---- event parser ---- */

/* Length of the UTF-8 sequence at p (RFC 3629: no overlongs, surrogates
 * or code points past U+10FFFF, no NUL), or 0 when it is invalid. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    size_t n = (size_t)(end - p);

    if (p[0] >= 0x01 && p[0] <= 0x7F)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        unsigned lo = p[0] == 0xE0 ? 0xA0 : 0x80, hi = p[0] == 0xED ? 0x9F : 0xBF;
        return n >= 3 && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        unsigned lo = p[0] == 0xF0 ? 0x90 : 0x80, hi = p[0] == 0xF4 ? 0x8F : 0xBF;
        return n >= 4 && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80
                   ? 4
                   : 0;
    }
    return 0;
}

/* Offset of the first invalid byte, or `len` when the text is valid. */
static size_t utf8_check(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;

    while (p < end) {
        size_t k = utf8_seq(p, end);
        if (k == 0)
            break;
        p += k;
    }
    return (size_t)(p - (const unsigned char *)s);
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* Past the string whose opening quote is at p[-1]. */
static const char *skip_string(const char *p, const char *end)
{
    while (p < end && *p != '"')
        p += (*p == '\\' && end - p > 1) ? 2 : 1;
    return p < end ? p + 1 : end;
}

/* The text of the value of a top-level key, in a line cJSON accepted;
 * NULL when absent or spelled with escapes. */
static const char *top_level_value(const char *p, const char *end, const char *key)
{
    size_t klen = strlen(key);
    int depth = 0;

    while (p < end) {
        if (*p == '"') {
            const char *s = p + 1;
            p = skip_string(s, end);
            if (depth == 1 && (size_t)(p - 1 - s) == klen && memcmp(s, key, klen) == 0) {
                const char *q = skip_ws(p, end);
                if (q < end && *q == ':')
                    return skip_ws(q + 1, end);
            }
            continue;
        }
        if (*p == '{' || *p == '[')
            depth++;
        else if (*p == '}' || *p == ']')
            depth--;
        p++;
    }
    return NULL;
}

/* A non-negative JSON integer at p, exactly; 0 when the text is not one
 * (a fraction, an exponent, a sign, or past INT64_MAX). */
static int read_int64(const char *p, const char *end, int64_t *out)
{
    int64_t v = 0;
    const char *start = p;

    while (p < end && *p >= '0' && *p <= '9') {
        int d = *p++ - '0';
        if (v > (INT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    if (p == start || (p < end && (*p == '.' || *p == 'e' || *p == 'E')))
        return 0;
    *out = v;
    return 1;
}

static mw_code fail(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static mw_code fail(char **err, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        va_start(ap, fmt);
        *err = mw__vsprintf(fmt, ap);
        va_end(ap);
    }
    return MW_EPARSE;
}

static const char *want_string(const cJSON *obj, const char *key, const char *field, char **err,
                               mw_code *rc)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (cJSON_IsString(v))
        return v->valuestring;
    *rc = fail(err, v ? "%s is not a string" : "missing %s", field);
    return NULL;
}

static const char *attr(const cJSON *attributes, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(attributes, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Splits "health_status: healthy" into the action and its detail. */
static mw_code split_action(mw__docker_event *ev, const char *raw)
{
    const char *colon = strstr(raw, ": ");

    ev->action_raw = raw;
    ev->detail = colon ? colon + 2 : "";
    ev->action = colon ? mw__strndup(raw, (size_t)(colon - raw)) : mw__strdup(raw);
    return ev->action ? MW_OK : MW_ENOMEM;
}

static mw_code read_actor(mw__docker_event *ev, char **err)
{
    const cJSON *actor = cJSON_GetObjectItemCaseSensitive(ev->root, "Actor");
    const cJSON *attrs;
    mw_code rc = MW_OK;

    if (!cJSON_IsObject(actor))
        return fail(err, actor ? "%s is not an object" : "missing %s", "Actor");
    ev->id = want_string(actor, "ID", "Actor.ID", err, &rc);
    if (rc != MW_OK)
        return rc;
    if (ev->id[0] == '\0')
        return fail(err, "%s is empty", "Actor.ID");
    attrs = cJSON_GetObjectItemCaseSensitive(actor, "Attributes");
    if (attrs && !cJSON_IsObject(attrs) && !cJSON_IsNull(attrs))
        return fail(err, "%s is not an object", "Actor.Attributes");
    ev->attributes = cJSON_IsObject(attrs) ? attrs : NULL;
    ev->name = attr(ev->attributes, "name");
    ev->image = attr(ev->attributes, "image");
    ev->exit_code = attr(ev->attributes, "exitCode");
    ev->signal = attr(ev->attributes, "signal");
    return MW_OK;
}

/* One time field: absent is fine (0, *found 0); present must be a
 * non-negative number. Integers are read exactly from the text, when the
 * text found is that number's: a key cJSON matched spelled with escapes,
 * or followed by a control byte it skips as blank, leaves the scan to a
 * later repeat of the key, whose value must not be taken instead. */
static mw_code read_time(mw__docker_event *ev, const char *line, size_t len, const char *key,
                         int64_t *out, int *found, char **err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev->root, key);
    const char *text;

    *found = v != NULL && !cJSON_IsNull(v);
    if (!*found)
        return MW_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= 9.2e18)
        return fail(err, "%s is not a non-negative number", key);
    text = top_level_value(line, line + len, key);
    if (!text || !read_int64(text, line + len, out) || (double)*out != v->valuedouble)
        *out = (int64_t)v->valuedouble;
    return MW_OK;
}

static mw_code read_times(mw__docker_event *ev, const char *line, size_t len, char **err)
{
    int has_time, has_nano;
    mw_code rc = read_time(ev, line, len, "time", &ev->time, &has_time, err);

    if (rc == MW_OK)
        rc = read_time(ev, line, len, "timeNano", &ev->time_nano, &has_nano, err);
    if (rc != MW_OK)
        return rc;
    if (!has_nano && ev->time <= INT64_MAX / 1000000000)
        ev->time_nano = ev->time * 1000000000;
    if (!has_time)
        ev->time = ev->time_nano / 1000000000;
    return MW_OK;
}

/* The checks cJSON does not make: the bytes are one UTF-8 JSON object and
 * nothing else. */
static mw_code parse_json(mw__docker_event *ev, const char *line, size_t len, char **err)
{
    const char *end = NULL;
    size_t bad;

    if (len == 0)
        return fail(err, "empty line");
    bad = utf8_check(line, len);
    if (bad < len)
        return fail(err, line[bad] ? "invalid UTF-8 at byte %zu" : "NUL byte at %zu", bad);
    ev->root = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!ev->root)
        return fail(err, "invalid JSON near byte %zu", end ? (size_t)(end - line) : (size_t)0);
    if (skip_ws(end, line + len) != line + len)
        return fail(err, "bytes after the JSON object");
    if (!cJSON_IsObject(ev->root))
        return fail(err, "not a JSON object");
    return MW_OK;
}

mw_code mw__docker_event_parse(const char *line, size_t len, mw__docker_event *ev, char **err)
{
    const char *action;
    const cJSON *scope;
    mw_code rc;

    memset(ev, 0, sizeof(*ev));
    if (err)
        *err = NULL;
    rc = parse_json(ev, line, len, err);
    if (rc != MW_OK)
        goto out;
    ev->type = want_string(ev->root, "Type", "Type", err, &rc);
    if (rc != MW_OK)
        goto out;
    action = want_string(ev->root, "Action", "Action", err, &rc);
    if (rc != MW_OK)
        goto out;
    rc = read_actor(ev, err);
    if (rc == MW_OK)
        rc = read_times(ev, line, len, err);
    if (rc == MW_OK)
        rc = split_action(ev, action);
    scope = cJSON_GetObjectItemCaseSensitive(ev->root, "scope");
    ev->scope = cJSON_IsString(scope) ? scope->valuestring : "";
out:
    if (rc != MW_OK)
        mw__docker_event_free(ev);
    return rc;
}

void mw__docker_event_free(mw__docker_event *ev)
{
    if (!ev)
        return;
    cJSON_Delete(ev->root);
    free(ev->action);
    memset(ev, 0, sizeof(*ev));
}

const char *mw__docker_event_attr(const mw__docker_event *ev, const char *key)
{
    return attr(ev->attributes, key);
}

/* ---- resume ---- */

char *mw__docker_since_format(int64_t time_nano, char out[MW_DOCKER_SINCE_SIZE])
{
    if (time_nano < 0)
        time_nano = 0;
    snprintf(out, MW_DOCKER_SINCE_SIZE, "%" PRId64 ".%09" PRId64, time_nano / 1000000000,
             time_nano % 1000000000);
    return out;
}

void mw__docker_resume_init(mw__docker_resume *r)
{
    memset(r, 0, sizeof(*r));
}

/* The fields are joined with NULs so "a"+"bc" and "ab"+"c" differ. */
static uint64_t event_key(const mw__docker_event *ev)
{
    uint64_t h = MW_HASH_INIT;

    h = mw__hash(h, ev->type, strlen(ev->type) + 1);
    h = mw__hash(h, ev->action_raw, strlen(ev->action_raw) + 1);
    return mw__hash(h, ev->id, strlen(ev->id) + 1);
}

static int has_key(const mw__docker_resume *r, uint64_t key)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->keys[i] == key)
            return 1;
    return 0;
}

int mw__docker_resume_seen(const mw__docker_resume *r, const mw__docker_event *ev)
{
    return r->n > 0 && ev->time_nano == r->last_nano && has_key(r, event_key(ev));
}

void mw__docker_resume_applied(mw__docker_resume *r, const mw__docker_event *ev)
{
    uint64_t key = event_key(ev);

    if (ev->time_nano < r->last_nano)
        return;
    if (ev->time_nano > r->last_nano) {
        r->last_nano = ev->time_nano;
        r->n = r->next = 0;
    }
    if (has_key(r, key))
        return;
    /* Past the daemon's buffer size the oldest key could not come back. */
    if (r->n < MW_DOCKER_RESUME_KEYS) {
        r->keys[r->n++] = key;
    } else {
        r->keys[r->next] = key;
        r->next = (r->next + 1) % MW_DOCKER_RESUME_KEYS;
    }
}

int mw__docker_resume_since(const mw__docker_resume *r, char out[MW_DOCKER_SINCE_SIZE])
{
    out[0] = '\0';
    if (r->n == 0)
        return 0;
    mw__docker_since_format(r->last_nano, out);
    return 1;
}
