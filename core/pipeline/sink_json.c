/*
 * sink_json.c - one mw_record as one JSON line, written by hand into a
 * mw__buf (the flush path runs once per record, so no cJSON trees).
 *
 * Writers go through a small sticky-error cursor: each step is a no-op
 * once one failed, and mw__record_json() rolls the buffer back to where
 * the line started, so a caller never sees half a line.
 */
#include "core/pipeline/sink_json.h"

#include "core/base/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct jw {
    mw__buf *b;
    mw_code rc;
} jw;

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
