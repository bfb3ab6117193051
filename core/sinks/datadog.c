/*
 * datadog.c - records into Datadog v1 intake payloads (see datadog.h).
 *
 * Series and service checks are written straight into the open payload's
 * buffer; a record that would pass the cut is rolled back, the payload
 * completed (closed and handed to the compressor) and the record written
 * again into the next one. Events go one per payload, as /api/v1/events
 * takes them.
 *
 * The compressor is a thread of the builder's own: deflate costs about
 * twice what writing the JSON does, so the flushing thread writes the
 * next payload while the last one is compressed. It holds one payload at
 * a time (a handoff slot whose buffer is swapped with the open one) and
 * emits in the order it was handed them; mw__dd_builder_finish() waits
 * for it, so every payload of a flush is emitted when the flush ends.
 */
#include "core/sinks/datadog.h"

#include "core/base/buf.h"
#include "core/base/json.h"
#include "core/base/util.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* What a payload buffer may hold beyond its cut: the closing brackets. */
#define TAIL_ROOM 4

typedef struct open_payload {
    mw__dd_kind kind;
    mw__buf json;
    size_t items;
} open_payload;

/* The compressor's handoff slot, under `lock`. */
typedef struct zslot {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    open_payload job; /* its JSON, closed; empty when !full */
    int full, stop, started;
} zslot;

struct mw__dd_builder {
    mw__dd_builder_opts o;
    char *host;
    char **tags;
    open_payload series, checks, event;
    zslot z;
};

static const char *const paths[] = {"/api/v1/series", "/api/v1/check_run", "/api/v1/events"};
static const char *const heads[] = {"{\"series\":[", "[", ""};
static const char *const tails[] = {"]}", "]", ""};

const char *mw__dd_path(mw__dd_kind kind)
{
    return paths[kind];
}

void mw__dd_payload_free(mw__dd_payload *p)
{
    if (!p)
        return;
    free(p->body);
    free(p);
}

/* ------------------------------------------------------------- writing */

typedef struct jw {
    mw__buf *b;
    mw_code rc;
} jw;

static void raw_n(jw *w, const char *s, size_t n)
{
    if (w->rc == MW_OK)
        w->rc = mw__buf_add(w->b, s, n);
}

/* A literal, its length known at compile time (this runs per record). */
#define RAW(w, lit) raw_n((w), (lit), sizeof(lit) - 1)

static void raw(jw *w, const char *s)
{
    raw_n(w, s, strlen(s));
}

static int plain(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
            return 0;
    }
    return 1;
}

/* Names and tags are nearly always plain ASCII: copied in one go;
 * anything else escaped by mw__json_str(). */
static void str(jw *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (w->rc != MW_OK)
        return;
    if (!plain(s, n)) {
        w->rc = mw__json_str(w->b, s, n);
        return;
    }
    if ((w->rc = mw__buf_reserve(w->b, n + 2)) != MW_OK)
        return;
    char *t = mw__buf_tail(w->b);
    t[0] = '"';
    if (n)
        memcpy(t + 1, s, n);
    t[n + 1] = '"';
    mw__buf_setlen(w->b, w->b->len + n + 2);
}

static void key_str(jw *w, const char *key, const char *s)
{
    raw(w, key);
    str(w, s);
}

static void num(jw *w, double v)
{
    if (w->rc == MW_OK)
        w->rc = mw__json_num(w->b, v);
}

static void integer(jw *w, int64_t v)
{
    char tmp[24], *e = tmp + sizeof tmp, *p = e;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    raw_n(w, p, (size_t)(e - p));
}

static int is_device(const char *tag)
{
    return strncmp(tag, "device:", 7) == 0;
}

/* `"tags":[...]`: the record's (but device:, when `device` is set) and
 * the builder's. */
static void tags(jw *w, const mw__dd_builder *b, const mw_record *rec, int skip_device)
{
    int first = 1;
    RAW(w, ",\"tags\":[");
    for (size_t i = 0; i < rec->ntags; i++) {
        if (skip_device && is_device(rec->tags[i]))
            continue;
        if (!first)
            RAW(w, ",");
        str(w, rec->tags[i]);
        first = 0;
    }
    for (size_t i = 0; i < b->o.ntags; i++) {
        if (!first)
            RAW(w, ",");
        str(w, b->tags[i]);
        first = 0;
    }
    RAW(w, "]");
}

static const char *host_of(const mw__dd_builder *b, const mw_record *rec)
{
    return rec->host && rec->host[0] ? rec->host : b->host;
}

static const char *device_of(const mw_record *rec)
{
    for (size_t i = 0; i < rec->ntags; i++)
        if (is_device(rec->tags[i]))
            return rec->tags[i] + 7;
    return NULL;
}

static const char *kind_name(mw_metric_kind k)
{
    return k == MW_KIND_COUNT ? "count" : k == MW_KIND_RATE ? "rate" : "gauge";
}

static void series_json(jw *w, const mw__dd_builder *b, const mw_record *rec)
{
    const char *device = device_of(rec);
    key_str(w, "{\"metric\":", rec->name);
    RAW(w, ",\"points\":[[");
    integer(w, rec->timestamp);
    RAW(w, ",");
    num(w, rec->value);
    RAW(w, "]],\"type\":\"");
    raw(w, kind_name(rec->kind));
    RAW(w, "\"");
    if (rec->kind != MW_KIND_GAUGE && rec->interval > 0) {
        RAW(w, ",\"interval\":");
        num(w, rec->interval);
    }
    key_str(w, ",\"host\":", host_of(b, rec));
    tags(w, b, rec, device != NULL);
    if (device)
        key_str(w, ",\"device\":", device);
    RAW(w, "}");
}

static void check_json(jw *w, const mw__dd_builder *b, const mw_record *rec)
{
    key_str(w, "{\"check\":", rec->name);
    key_str(w, ",\"host_name\":", host_of(b, rec));
    RAW(w, ",\"status\":");
    integer(w, rec->status);
    RAW(w, ",\"timestamp\":");
    integer(w, rec->timestamp);
    key_str(w, ",\"message\":", rec->message);
    tags(w, b, rec, 0);
    RAW(w, "}");
}

/* A NULL field is left out (the intake's defaults apply). */
static void opt_str(jw *w, const char *key, const char *s)
{
    if (s && s[0])
        key_str(w, key, s);
}

static void event_json(jw *w, const mw__dd_builder *b, const mw_record *rec)
{
    key_str(w, "{\"title\":", rec->title);
    key_str(w, ",\"text\":", rec->text);
    RAW(w, ",\"date_happened\":");
    integer(w, rec->timestamp);
    key_str(w, ",\"host\":", host_of(b, rec));
    opt_str(w, ",\"priority\":", rec->priority);
    opt_str(w, ",\"alert_type\":", rec->alert_type);
    opt_str(w, ",\"aggregation_key\":", rec->aggregation_key);
    opt_str(w, ",\"source_type_name\":", rec->source_type_name);
    tags(w, b, rec, 0);
    RAW(w, "}");
}

/* ------------------------------------------------------------- payloads */

/* The body is shrunk to its size: a queue of payloads holds what it
 * counts. */
static mw_code compress_json(const mw__buf *json, mw__dd_payload *p, int level)
{
    uLongf n = compressBound((uLong)json->len);
    if (!(p->body = malloc(n)))
        return MW_ENOMEM;
    if (compress2((Bytef *)p->body, &n, (const Bytef *)mw__buf_str(json), (uLong)json->len,
                  level) != Z_OK)
        return MW_ENOMEM;
    char *fit = realloc(p->body, n ? n : 1);
    if (fit)
        p->body = fit;
    p->len = n;
    p->json_len = json->len;
    return MW_OK;
}

/* On the compressor's thread: the slot's payload compressed and emitted
 * (or counted as lost). */
static void compress_job(mw__dd_builder *b, open_payload *job)
{
    mw_code rc = MW_ENOMEM;
    mw__dd_payload *p = calloc(1, sizeof *p);
    if (!p)
        goto out;
    p->kind = job->kind;
    p->items = job->items;
    if ((rc = compress_json(&job->json, p, b->o.level)) != MW_OK)
        goto out;
    b->o.emit(b->o.ud, p);
    p = NULL;
out:
    if (rc != MW_OK && b->o.too_large)
        b->o.too_large(b->o.ud, job->items);
    mw__dd_payload_free(p);
}

static void *compressor(void *ud)
{
    mw__dd_builder *b = ud;
    zslot *z = &b->z;
    pthread_mutex_lock(&z->lock);
    for (;;) {
        while (!z->full && !z->stop)
            pthread_cond_wait(&z->cond, &z->lock);
        if (!z->full)
            break;
        pthread_mutex_unlock(&z->lock);
        compress_job(b, &z->job); /* the slot is the compressor's while full */
        pthread_mutex_lock(&z->lock);
        mw__buf_reset(&z->job.json);
        z->job.items = 0;
        z->full = 0;
        pthread_cond_broadcast(&z->cond);
    }
    pthread_mutex_unlock(&z->lock);
    return NULL;
}

/* Waits until the compressor holds nothing; called with z->lock held. */
static void wait_idle(zslot *z)
{
    while (z->full)
        pthread_cond_wait(&z->cond, &z->lock);
}

/* Closes the open payload `op` (when it holds anything), hands it to the
 * compressor and leaves `op` empty (with the slot's spare buffer). */
static mw_code complete(mw__dd_builder *b, open_payload *op)
{
    zslot *z = &b->z;
    if (op->items == 0)
        return MW_OK;
    /* the cut leaves TAIL_ROOM for the closing brackets */
    mw__buf_adds(&op->json, tails[op->kind]);
    pthread_mutex_lock(&z->lock);
    wait_idle(z);
    mw__buf spare = z->job.json;
    z->job.json = op->json;
    z->job.kind = op->kind;
    z->job.items = op->items;
    z->full = 1;
    pthread_cond_broadcast(&z->cond);
    pthread_mutex_unlock(&z->lock);
    op->json = spare;
    op->items = 0;
    return MW_OK;
}

typedef void (*writer_fn)(jw *w, const mw__dd_builder *b, const mw_record *rec);

/* Writes `rec` into `op`; MW_ENOMEM (rolled back) when it would pass the
 * cut. */
static mw_code write_into(mw__dd_builder *b, open_payload *op, writer_fn fn, const mw_record *rec)
{
    size_t start = op->json.len;
    jw w = {&op->json, MW_OK};
    if (op->items == 0 && op->json.len == 0)
        raw(&w, heads[op->kind]);
    else
        RAW(&w, ",");
    fn(&w, b, rec);
    if (w.rc == MW_OK && op->json.len + TAIL_ROOM > b->o.max_json)
        w.rc = MW_ENOMEM;
    if (w.rc != MW_OK)
        mw__buf_setlen(&op->json, start);
    return w.rc;
}

static mw_code add_to(mw__dd_builder *b, open_payload *op, writer_fn fn, const mw_record *rec)
{
    mw_code rc = write_into(b, op, fn, rec);
    if (rc == MW_ENOMEM && op->items > 0) {
        if ((rc = complete(b, op)) != MW_OK)
            return rc;
        rc = write_into(b, op, fn, rec);
    }
    if (rc == MW_OK)
        op->items++;
    else if (b->o.too_large)
        b->o.too_large(b->o.ud, 1);
    if (op->kind == MW_DD_EVENT && rc == MW_OK)
        rc = complete(b, op);
    return rc;
}

mw_code mw__dd_builder_add(mw__dd_builder *b, const mw_record *rec)
{
    switch (rec->type) {
    case MW_RECORD_METRIC:
        return add_to(b, &b->series, series_json, rec);
    case MW_RECORD_SERVICE_CHECK:
        return add_to(b, &b->checks, check_json, rec);
    case MW_RECORD_EVENT:
        return add_to(b, &b->event, event_json, rec);
    }
    return MW_EINVAL;
}

mw_code mw__dd_builder_finish(mw__dd_builder *b)
{
    complete(b, &b->series);
    complete(b, &b->checks);
    pthread_mutex_lock(&b->z.lock);
    wait_idle(&b->z);
    pthread_mutex_unlock(&b->z.lock);
    return MW_OK;
}

/* ------------------------------------------------------------- lifecycle */

static void open_init(open_payload *op, mw__dd_kind kind, size_t max_json)
{
    op->kind = kind;
    mw__buf_init(&op->json, max_json);
}

mw_code mw__dd_builder_new(const mw__dd_builder_opts *o, mw__dd_builder **out)
{
    mw_code rc = MW_ENOMEM;
    mw__dd_builder *b = calloc(1, sizeof *b);
    *out = NULL;
    if (!b)
        goto out;
    b->o = *o;
    if (!b->o.max_json || b->o.max_json > MW_DD_MAX_JSON)
        b->o.max_json = MW_DD_MAX_JSON;
    if (b->o.max_json < 64)
        b->o.max_json = 64;
    if (!b->o.level)
        b->o.level = 1;
    b->o.tags = NULL;
    if (!(b->host = mw__strdup(o->host ? o->host : "")) ||
        (o->ntags && !(b->tags = calloc(o->ntags, sizeof *b->tags))))
        goto out;
    for (size_t i = 0; i < o->ntags; i++)
        if (!(b->tags[i] = mw__strdup(o->tags[i])))
            goto out;
    open_init(&b->series, MW_DD_SERIES, b->o.max_json);
    open_init(&b->checks, MW_DD_CHECK_RUN, b->o.max_json);
    open_init(&b->event, MW_DD_EVENT, b->o.max_json);
    open_init(&b->z.job, MW_DD_SERIES, b->o.max_json);
    pthread_mutex_init(&b->z.lock, NULL);
    pthread_cond_init(&b->z.cond, NULL);
    if (pthread_create(&b->z.thread, NULL, compressor, b) != 0) {
        rc = MW_ESYS;
        goto out;
    }
    b->z.started = 1;
    *out = b;
    b = NULL;
    rc = MW_OK;
out:
    mw__dd_builder_free(b);
    return rc;
}

void mw__dd_builder_free(mw__dd_builder *b)
{
    if (!b)
        return;
    if (b->z.started) {
        pthread_mutex_lock(&b->z.lock);
        b->z.stop = 1; /* after what it holds */
        pthread_cond_broadcast(&b->z.cond);
        pthread_mutex_unlock(&b->z.lock);
        pthread_join(b->z.thread, NULL);
    }
    if (b->z.started || b->z.job.json.max) {
        pthread_cond_destroy(&b->z.cond);
        pthread_mutex_destroy(&b->z.lock);
    }
    mw__buf_free(&b->z.job.json);
    for (size_t i = 0; b->tags && i < b->o.ntags; i++)
        free(b->tags[i]);
    free(b->tags);
    free(b->host);
    mw__buf_free(&b->series.json);
    mw__buf_free(&b->checks.json);
    mw__buf_free(&b->event.json);
    free(b);
}
