/*
 * sink_json.c - one mw_record as one JSON line, written by hand into a
 * mw__buf (the flush path runs once per record, so no cJSON trees).
 *
 * Writers go through a small sticky-error cursor: each step is a no-op
 * once one failed, and mw__record_json() rolls the buffer back to where
 * the line started, so a caller never sees half a line.
 */
#include "core/sink.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes staged on the stack before they are appended to the buffer. */
#define STAGE 256

typedef struct jw {
    mw__buf *b;
    mw_code rc;
} jw;

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

static void jw_raw(jw *w, const char *s)
{
    if (w->rc == MW_OK)
        w->rc = mw__buf_adds(w->b, s);
}

/* `,"key":` — every key but the first ("type") follows a comma. */
static void jw_key(jw *w, const char *key)
{
    jw_raw(w, ",\"");
    jw_raw(w, key);
    jw_raw(w, "\":");
}

static void jw_str(jw *w, const char *key, const char *s)
{
    jw_key(w, key);
    if (w->rc != MW_OK)
        return;
    w->rc = s ? mw__json_str(w->b, s, strlen(s)) : mw__buf_adds(w->b, "null");
}

/* Left out entirely when NULL (check and check_id). */
static void jw_opt_str(jw *w, const char *key, const char *s)
{
    if (s)
        jw_str(w, key, s);
}

static void jw_num(jw *w, const char *key, double v)
{
    jw_key(w, key);
    if (w->rc == MW_OK)
        w->rc = mw__json_num(w->b, v);
}

static void jw_int(jw *w, const char *key, int64_t v)
{
    jw_key(w, key);
    if (w->rc == MW_OK)
        w->rc = mw__buf_addf(w->b, "%" PRId64, v);
}

static void jw_tags(jw *w, const mw_record *rec)
{
    jw_key(w, "tags");
    jw_raw(w, "[");
    for (size_t i = 0; i < rec->ntags && w->rc == MW_OK; i++) {
        if (i)
            jw_raw(w, ",");
        if (w->rc == MW_OK)
            w->rc = mw__json_str(w->b, rec->tags[i], strlen(rec->tags[i]));
    }
    jw_raw(w, "]");
}

static const char *kind_name(mw_metric_kind k)
{
    switch (k) {
    case MW_KIND_COUNT:
        return "count";
    case MW_KIND_RATE:
        return "rate";
    default:
        return "gauge";
    }
}

static void metric_json(jw *w, const mw_record *rec)
{
    jw_raw(w, "{\"type\":\"metric\"");
    jw_str(w, "metric", rec->name);
    jw_str(w, "kind", kind_name(rec->kind));
    jw_num(w, "value", rec->value);
    jw_int(w, "timestamp", rec->timestamp);
    jw_num(w, "interval", rec->interval);
    jw_tags(w, rec);
    jw_str(w, "host", rec->host);
    jw_opt_str(w, "check", rec->check);
    jw_opt_str(w, "check_id", rec->check_id);
}

static void service_check_json(jw *w, const mw_record *rec)
{
    jw_raw(w, "{\"type\":\"service_check\"");
    jw_str(w, "check", rec->name);
    jw_int(w, "status", rec->status);
    jw_str(w, "message", rec->message);
    jw_int(w, "timestamp", rec->timestamp);
    jw_tags(w, rec);
    jw_str(w, "host", rec->host);
    jw_opt_str(w, "check_id", rec->check_id);
}

static void event_json(jw *w, const mw_record *rec)
{
    jw_raw(w, "{\"type\":\"event\"");
    jw_str(w, "title", rec->title);
    jw_str(w, "text", rec->text);
    jw_str(w, "alert_type", rec->alert_type);
    jw_str(w, "priority", rec->priority);
    jw_str(w, "aggregation_key", rec->aggregation_key);
    jw_str(w, "source_type_name", rec->source_type_name);
    jw_int(w, "timestamp", rec->timestamp);
    jw_tags(w, rec);
    jw_str(w, "host", rec->host);
}

mw_code mw__record_json(const mw_record *rec, mw__buf *out)
{
    jw w = {out, MW_OK};
    size_t start = out->len;
    switch (rec->type) {
    case MW_RECORD_METRIC:
        metric_json(&w, rec);
        break;
    case MW_RECORD_SERVICE_CHECK:
        service_check_json(&w, rec);
        break;
    case MW_RECORD_EVENT:
        event_json(&w, rec);
        break;
    default:
        w.rc = MW_EINVAL;
    }
    jw_raw(&w, "}\n");
    if (w.rc != MW_OK)
        mw__buf_setlen(out, start);
    return w.rc;
}
