/*
 * test_aggregator.c - Datadog check-sampler semantics of the aggregator:
 * each metric type, histogram aggregates and percentiles, context
 * identity, expiry, only-updated flushing, queued service checks/events,
 * gauge records.
 */
#include "core/pipeline/aggregator.h"
#include "core/base/util.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>

/* One flushed record, copied out of the callback. */
typedef struct got {
    int type;
    char name[256];
    int kind;
    double value, interval;
    int64_t ts;
    char tags[512];
    char host[64];
    char check[64], check_id[64];
    int status;
} got;

typedef struct col {
    got g[128];
    size_t n;
} col;

static void cpy(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "(null)");
}

static void collect(const mw_record *r, void *ud)
{
    col *c = ud;
    if (c->n == MW_ARRAY_LEN(c->g))
        return;
    got *g = &c->g[c->n++];
    memset(g, 0, sizeof(*g));
    g->type = r->type;
    cpy(g->name, sizeof(g->name), r->type == MW_RECORD_EVENT ? r->title : r->name);
    g->kind = r->kind;
    g->value = r->value;
    g->interval = r->interval;
    g->ts = r->timestamp;
    for (size_t i = 0; i < r->ntags; i++) {
        size_t len = strlen(g->tags);
        snprintf(g->tags + len, sizeof(g->tags) - len, "%s%s", i ? "," : "", r->tags[i]);
    }
    cpy(g->host, sizeof(g->host), r->host);
    cpy(g->check, sizeof(g->check), r->check);
    cpy(g->check_id, sizeof(g->check_id), r->check_id);
    g->status = r->status;
}

static size_t flush(mw__aggregator *agg, double now, col *c)
{
    c->n = 0;
    size_t n = mw__agg_flush(agg, now, collect, c);
    CHECK(n == c->n);
    return n;
}

static const got *find(const col *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->g[i].name, name) == 0)
            return &c->g[i];
    return NULL;
}

static double value_of(const col *c, const char *name)
{
    const got *g = find(c, name);
    return g ? g->value : NAN;
}

static mw__aggregator *agg_new(void)
{
    mw__agg_opts o = {.flush_interval = 15, .context_expiry = 300, .host = "h0"};
    return mw__agg_new(&o);
}

static void put(mw__aggregator *agg, mw_metric_type t, const char *name, double v, double now)
{
    CHECK(mw__agg_metric(agg, t, name, v, NULL, 0, NULL, "chk", "chk:1", now) == MW_OK);
}

static void test_gauge_count(void)
{
    mw__aggregator *agg = agg_new();
    col c;
    put(agg, MW_GAUGE, "g", 1, 100);
    put(agg, MW_GAUGE, "g", 3, 100);
    put(agg, MW_GAUGE, "g", 2, 101);
    put(agg, MW_COUNT, "c", 1, 100);
    put(agg, MW_COUNT, "c", 2, 100);
    put(agg, MW_COUNT, "c", 3.5, 101);
    CHECK(flush(agg, 105.7, &c) == 2);
    const got *g = find(&c, "g");
    CHECK(g && g->value == 2 && g->kind == MW_KIND_GAUGE && g->ts == 105 && g->interval == 15);
    CHECK(g && strcmp(g->host, "h0") == 0 && strcmp(g->check, "chk") == 0 &&
          strcmp(g->check_id, "chk:1") == 0 && g->type == MW_RECORD_METRIC);
    g = find(&c, "c");
    CHECK(g && g->value == 6.5 && g->kind == MW_KIND_COUNT);
    /* Nothing new: nothing flushed, but the contexts stay. */
    CHECK(flush(agg, 120, &c) == 0);
    CHECK(mw__agg_contexts(agg) == 2);
    /* A count starts again from zero after a flush. */
    put(agg, MW_COUNT, "c", 4, 121);
    CHECK(flush(agg, 135, &c) == 1);
    CHECK(value_of(&c, "c") == 4);
    mw__agg_free(agg);
}

static void test_rate(void)
{
    mw__aggregator *agg = agg_new();
    col c;
    put(agg, MW_RATE, "r", 10, 100);
    CHECK(flush(agg, 101, &c) == 0); /* first submission: nothing */
    put(agg, MW_RATE, "r", 30, 110);
    CHECK(flush(agg, 111, &c) == 1);
    CHECK(value_of(&c, "r") == 2.0);
    CHECK(find(&c, "r")->kind == MW_KIND_GAUGE);
    put(agg, MW_RATE, "r", 20, 120); /* negative: dropped */
    CHECK(flush(agg, 121, &c) == 0);
    put(agg, MW_RATE, "r", 40, 130); /* measured from the dropped one */
    CHECK(flush(agg, 131, &c) == 1);
    CHECK(value_of(&c, "r") == 2.0);
    /* Two submissions within one flush: the rate between them. */
    put(agg, MW_RATE, "r", 100, 140);
    put(agg, MW_RATE, "r", 150, 145);
    CHECK(flush(agg, 146, &c) == 1);
    CHECK(value_of(&c, "r") == 10.0);
    /* The same time twice: no division by zero, nothing emitted. */
    put(agg, MW_RATE, "r", 160, 145);
    CHECK(flush(agg, 147, &c) == 0);
    mw__agg_free(agg);
}

static void test_monotonic_count(void)
{
    mw__aggregator *agg = agg_new();
    col c;
    put(agg, MW_MONOTONIC_COUNT, "m", 10, 100);
    CHECK(flush(agg, 101, &c) == 0); /* first value skipped */
    put(agg, MW_MONOTONIC_COUNT, "m", 15, 110);
    put(agg, MW_MONOTONIC_COUNT, "m", 18, 111);
    CHECK(flush(agg, 112, &c) == 1);
    CHECK(value_of(&c, "m") == 8);
    CHECK(find(&c, "m")->kind == MW_KIND_COUNT);
    put(agg, MW_MONOTONIC_COUNT, "m", 5, 120); /* reset: delta skipped */
    put(agg, MW_MONOTONIC_COUNT, "m", 7, 121);
    CHECK(flush(agg, 122, &c) == 1);
    CHECK(value_of(&c, "m") == 2);
    put(agg, MW_MONOTONIC_COUNT, "m", 3, 130); /* reset alone: zero */
    CHECK(flush(agg, 131, &c) == 1);
    CHECK(value_of(&c, "m") == 0);
    mw__agg_free(agg);
}

static void test_histogram_default(void)
{
    mw__aggregator *agg = agg_new();
    col c;
    /* 1..100 in a scrambled order. */
    for (int i = 0; i < 100; i++)
        put(agg, MW_HISTOGRAM, "h", (double)((i * 37) % 100 + 1), 100);
    CHECK(flush(agg, 105, &c) == 5);
    CHECK(value_of(&c, "h.max") == 100);
    CHECK(value_of(&c, "h.median") == 50);
    CHECK(value_of(&c, "h.avg") == 50.5);
    CHECK_NEAR(value_of(&c, "h.count"), 100.0 / 15, 1e-12);
    CHECK(find(&c, "h.count") && find(&c, "h.count")->kind == MW_KIND_RATE);
    CHECK(find(&c, "h.max") && find(&c, "h.max")->kind == MW_KIND_GAUGE);
    CHECK(value_of(&c, "h.95percentile") == 95);
    CHECK(!find(&c, "h.sum") && !find(&c, "h.min") && !find(&c, "h"));
    /* A second interval only sees its own samples. */
    put(agg, MW_HISTOGRAM, "h", 7, 110);
    CHECK(flush(agg, 120, &c) == 5);
    CHECK(value_of(&c, "h.max") == 7 && value_of(&c, "h.median") == 7 &&
          value_of(&c, "h.95percentile") == 7);
    CHECK(flush(agg, 135, &c) == 0);
    mw__agg_free(agg);
}

static void test_histogram_configured(void)
{
    const double pct[] = {0.5, 0.99, 0.75};
    unsigned bits = 0;
    CHECK(mw__agg_parse_aggregates(" min, sum ", &bits) == MW_OK);
    CHECK(bits == (MW_HIST_MIN | MW_HIST_SUM));
    mw__agg_opts o = {.flush_interval = 10, .hist_aggregates = bits};
    o.hist_percentiles = pct;
    o.n_percentiles = 3;
    mw__aggregator *agg = mw__agg_new(&o);
    col c;
    for (int i = 1; i <= 1000; i++)
        put(agg, MW_HISTOGRAM, "h", i, 100);
    CHECK(flush(agg, 101, &c) == 5);
    CHECK(value_of(&c, "h.min") == 1);
    CHECK(value_of(&c, "h.sum") == 500500);
    CHECK(value_of(&c, "h.50percentile") == 500);
    CHECK(value_of(&c, "h.99percentile") == 990);
    CHECK(value_of(&c, "h.75percentile") == 750);
    CHECK(!find(&c, "h.max") && !find(&c, "h.95percentile"));
    CHECK(find(&c, "h.min") && find(&c, "h.min")->interval == 10);
    CHECK(strcmp(find(&c, "h.min")->host, "") == 0); /* no host configured */
    mw__agg_free(agg);

    /* The even-count median is the lower middle sample. */
    agg = agg_new();
    for (int i = 1; i <= 4; i++)
        put(agg, MW_HISTOGRAM, "e", i, 100);
    flush(agg, 101, &c);
    CHECK(value_of(&c, "e.median") == 2 && value_of(&c, "e.avg") == 2.5);
    mw__agg_free(agg);
}

static void test_parse(void)
{
    double p[4];
    unsigned bits = 99;
    size_t n = 0;
    CHECK(mw__agg_parse_aggregates("max,median,avg,count", &bits) == MW_OK &&
          bits == MW_HIST_DEFAULT);
    CHECK(mw__agg_parse_aggregates("", &bits) == MW_OK && bits == 0);
    bits = 99;
    CHECK(mw__agg_parse_aggregates("max,p99", &bits) == MW_EINVAL && bits == 99);
    CHECK(mw__agg_parse_aggregates("maxx", &bits) == MW_EINVAL);
    CHECK(mw__agg_parse_aggregates(NULL, &bits) == MW_EINVAL);
    CHECK(mw__agg_parse_percentiles("0.95, 0.99", p, 4, &n) == MW_OK && n == 2 && p[0] == 0.95 &&
          p[1] == 0.99);
    CHECK(mw__agg_parse_percentiles("95", p, 4, &n) == MW_EINVAL);
    CHECK(mw__agg_parse_percentiles("0.5x", p, 4, &n) == MW_EINVAL);
    CHECK(mw__agg_parse_percentiles("0.1,0.2,0.3,0.4,0.5", p, 4, &n) == MW_EINVAL);
}

static void test_identity(void)
{
    mw__aggregator *agg = agg_new();
    col c;
    const char *t1[] = {"b:2", "a:1", "a:1"};
    const char *t2[] = {"a:1", "b:2"};
    const char *t3[] = {"a:1", "", "b:2", "b:2"};
    CHECK(mw__agg_metric(agg, MW_COUNT, "x", 1, t1, 3, NULL, NULL, NULL, 100) == MW_OK);
    CHECK(mw__agg_metric(agg, MW_COUNT, "x", 1, t2, 2, NULL, NULL, NULL, 100) == MW_OK);
    CHECK(mw__agg_metric(agg, MW_COUNT, "x", 1, t3, 4, "h0", "", "", 100) == MW_OK);
    CHECK(mw__agg_contexts(agg) == 1); /* default host == explicit "h0" */
    CHECK(mw__agg_metric(agg, MW_COUNT, "x", 1, t2, 2, "h1", NULL, NULL, 100) == MW_OK);
    CHECK(mw__agg_metric(agg, MW_COUNT, "x", 1, t2, 1, NULL, NULL, NULL, 100) == MW_OK);
    CHECK(mw__agg_metric(agg, MW_COUNT, "x", 1, t2, 2, NULL, "chk", "chk:1", 100) == MW_OK);
    CHECK(mw__agg_metric(agg, MW_GAUGE, "x", 1, t2, 2, NULL, NULL, NULL, 100) == MW_OK);
    CHECK(mw__agg_contexts(agg) == 5);
    CHECK(flush(agg, 101, &c) == 5);
    int seen = 0;
    for (size_t i = 0; i < c.n; i++) {
        const got *g = &c.g[i];
        if (strcmp(g->tags, "a:1,b:2") == 0 && strcmp(g->host, "h0") == 0 &&
            strcmp(g->check, "(null)") == 0 && g->kind == MW_KIND_COUNT) {
            CHECK(g->value == 3);
            seen++;
        }
    }
    CHECK(seen == 1);
    mw__agg_free(agg);
}

static void test_expiry(void)
{
    mw__agg_opts o = {.flush_interval = 15, .context_expiry = 60};
    mw__aggregator *agg = mw__agg_new(&o);
    col c;
    put(agg, MW_RATE, "r", 10, 100);
    put(agg, MW_GAUGE, "g", 1, 100);
    CHECK(flush(agg, 100, &c) == 1);
    CHECK(mw__agg_contexts(agg) == 2);
    CHECK(flush(agg, 159, &c) == 0);
    CHECK(mw__agg_contexts(agg) == 2);
    put(agg, MW_GAUGE, "g", 2, 159);
    CHECK(flush(agg, 161, &c) == 1);
    CHECK(mw__agg_contexts(agg) == 1); /* the rate expired, the gauge not */
    /* An expired rate lost its previous value: first submission again. */
    put(agg, MW_RATE, "r", 100, 170);
    CHECK(flush(agg, 171, &c) == 0);
    put(agg, MW_RATE, "r", 110, 175);
    CHECK(flush(agg, 176, &c) == 1 && value_of(&c, "r") == 2);
    CHECK(flush(agg, 1000, &c) == 0);
    CHECK(mw__agg_contexts(agg) == 0);
    mw__agg_free(agg);
}

static void test_records_queue(void)
{
    mw__aggregator *agg = agg_new();
    col c;
    const char *tags[] = {"a:1"};
    mw_record sc = {.type = MW_RECORD_SERVICE_CHECK, .name = "svc.up", .status = 1};
    sc.message = "slow";
    sc.tags = tags;
    sc.ntags = 1;
    sc.host = "h9";
    sc.timestamp = 99;
    mw_record ev = {.type = MW_RECORD_EVENT, .title = "boom", .text = "t", .timestamp = 98};
    mw_record bad = {.type = MW_RECORD_METRIC, .name = "x"};
    CHECK(mw__agg_record(agg, &sc) == MW_OK);
    CHECK(mw__agg_record(agg, &ev) == MW_OK);
    CHECK(mw__agg_record(agg, &bad) == MW_EINVAL);
    put(agg, MW_GAUGE, "g", 1, 100);
    CHECK(flush(agg, 100, &c) == 3);
    const got *g = find(&c, "svc.up");
    CHECK(g && g->type == MW_RECORD_SERVICE_CHECK && g->status == 1 && g->ts == 99 &&
          strcmp(g->tags, "a:1") == 0 && strcmp(g->host, "h9") == 0);
    g = find(&c, "boom");
    CHECK(g && g->type == MW_RECORD_EVENT && g->ts == 98);
    CHECK(flush(agg, 101, &c) == 0); /* flushed once */
    mw__agg_free(agg);
}

/* A gauge record (a discovery source's docker.containers.running) is a
 * gauge sample, the same context as mw__agg_metric()'s; other metric
 * records are refused. */
static void test_gauge_record(void)
{
    mw__aggregator *agg = agg_new();
    col c;
    const char *tags[] = {"short_image:redis", "docker_image:redis:7"};
    mw_record g = {.type = MW_RECORD_METRIC, .name = "docker.containers.running", .value = 2};
    g.kind = MW_KIND_GAUGE;
    g.tags = tags;
    g.ntags = 2;
    g.timestamp = 100;
    CHECK(mw__agg_record(agg, &g) == MW_OK);
    g.value = 3; /* the last value of the interval wins */
    CHECK(mw__agg_record(agg, &g) == MW_OK);
    CHECK(mw__agg_metric(agg, MW_GAUGE, "docker.containers.running", 3, tags, 2, NULL, NULL, NULL,
                         101) == MW_OK);
    CHECK(mw__agg_contexts(agg) == 1); /* one context: as a C gauge */
    CHECK(flush(agg, 105, &c) == 1);
    const got *r = find(&c, "docker.containers.running");
    CHECK(r && r->type == MW_RECORD_METRIC && r->kind == MW_KIND_GAUGE && r->value == 3 &&
          r->ts == 105 && r->interval == 15 && strcmp(r->host, "h0") == 0 &&
          strcmp(r->tags, "docker_image:redis:7,short_image:redis") == 0 &&
          strcmp(r->check, "(null)") == 0);
    /* Not submitted again: not flushed again, as any gauge. */
    CHECK(flush(agg, 120, &c) == 0);
    g.host = "h1";
    CHECK(mw__agg_record(agg, &g) == MW_OK);
    CHECK(flush(agg, 121, &c) == 1 && strcmp(c.g[0].host, "h1") == 0);
    mw_record bad = g;
    bad.kind = MW_KIND_COUNT;
    CHECK(mw__agg_record(agg, &bad) == MW_EINVAL);
    bad = g;
    bad.timestamp = 0;
    CHECK(mw__agg_record(agg, &bad) == MW_EINVAL);
    bad = g;
    bad.value = NAN;
    CHECK(mw__agg_record(agg, &bad) == MW_EINVAL);
    bad = g;
    bad.name = "";
    CHECK(mw__agg_record(agg, &bad) == MW_EINVAL);
    CHECK(flush(agg, 122, &c) == 0);
    mw__agg_free(agg);
}

static void test_invalid(void)
{
    mw__aggregator *agg = agg_new();
    char long_name[MW_NAME_MAX + 2];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    const char *null_tag[] = {NULL};
    CHECK(mw__agg_metric(agg, MW_GAUGE, "", 1, NULL, 0, NULL, NULL, NULL, 1) == MW_EINVAL);
    CHECK(mw__agg_metric(agg, MW_GAUGE, NULL, 1, NULL, 0, NULL, NULL, NULL, 1) == MW_EINVAL);
    CHECK(mw__agg_metric(agg, MW_GAUGE, long_name, 1, NULL, 0, NULL, NULL, NULL, 1) == MW_EINVAL);
    long_name[MW_NAME_MAX] = '\0';
    CHECK(mw__agg_metric(agg, MW_GAUGE, long_name, 1, NULL, 0, NULL, NULL, NULL, 1) == MW_OK);
    CHECK(mw__agg_metric(agg, MW_GAUGE, "x", NAN, NULL, 0, NULL, NULL, NULL, 1) == MW_EINVAL);
    CHECK(mw__agg_metric(agg, MW_GAUGE, "x", INFINITY, NULL, 0, NULL, NULL, NULL, 1) == MW_EINVAL);
    CHECK(mw__agg_metric(agg, (mw_metric_type)7, "x", 1, NULL, 0, NULL, NULL, NULL, 1) ==
          MW_EINVAL);
    CHECK(mw__agg_metric(agg, MW_GAUGE, "x", 1, NULL, 2, NULL, NULL, NULL, 1) == MW_EINVAL);
    CHECK(mw__agg_metric(agg, MW_GAUGE, "x", 1, null_tag, 1, NULL, NULL, NULL, 1) == MW_EINVAL);
    CHECK(mw__agg_contexts(agg) == 1);
    /* A histogram of a long name still gets its suffixed names. */
    col c;
    CHECK(mw__agg_metric(agg, MW_HISTOGRAM, long_name, 1, NULL, 0, NULL, NULL, NULL, 1) == MW_OK);
    flush(agg, 2, &c);
    char want[MW_NAME_MAX + 32];
    snprintf(want, sizeof(want), "%s.95percentile", long_name);
    CHECK(find(&c, want) != NULL);
    /* Sums that overflow are not flushed as infinities. */
    put(agg, MW_COUNT, "big", 1e308, 3);
    put(agg, MW_COUNT, "big", 1e308, 3);
    CHECK(flush(agg, 4, &c) == 0);
    mw__agg_free(agg);
}

/* Many tags and long keys take the heap path; two engines share nothing. */
static void test_large_and_isolated(void)
{
    mw__aggregator *a = agg_new(), *b = agg_new();
    col c;
    static char tagbuf[100][40];
    const char *tags[100];
    for (int i = 0; i < 100; i++) {
        snprintf(tagbuf[i], sizeof(tagbuf[i]), "tag%03d:%0*d", 99 - i, 30, i);
        tags[i] = tagbuf[i];
    }
    CHECK(mw__agg_metric(a, MW_GAUGE, "many", 1, tags, 100, NULL, NULL, NULL, 1) == MW_OK);
    CHECK(mw__agg_metric(a, MW_GAUGE, "many", 2, tags + 50, 50, NULL, NULL, NULL, 1) == MW_OK);
    CHECK(mw__agg_contexts(a) == 2 && mw__agg_contexts(b) == 0);
    CHECK(flush(b, 2, &c) == 0);
    CHECK(flush(a, 2, &c) == 2);
    CHECK(strncmp(c.g[0].tags, "tag000:", 7) == 0 || strncmp(c.g[0].tags, "tag049:", 7) == 0);
    /* Lots of contexts force the shard tables to grow. */
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "m%d", i);
        CHECK(mw__agg_metric(a, MW_COUNT, name, 1, NULL, 0, NULL, NULL, NULL, 3) == MW_OK);
        CHECK(mw__agg_metric(a, MW_COUNT, name, 1, NULL, 0, NULL, NULL, NULL, 3) == MW_OK);
    }
    CHECK(mw__agg_contexts(a) == 5002);
    mw__agg_flush(a, 4, NULL, NULL);
    mw__agg_free(a);
    mw__agg_free(b);
    mw__agg_free(NULL);
}

/* Reference canonical tags: qsort, drop empty and duplicate. */
static int ref_cmp(const void *a, const void *b)
{
    const mw__str *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = n ? memcmp(x->p, y->p, n) : 0;
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

static size_t ref_key(char *dst, const mw__str *all, size_t n)
{
    mw__str v[32];
    size_t len = 0;
    memcpy(v, all, n * sizeof(*v));
    qsort(v, n, sizeof(*v), ref_cmp);
    memcpy(dst, "n\0h\0", 4);
    len = 4;
    for (size_t i = 0; i < n; i++) {
        if (v[i].n == 0 || (i > 0 && ref_cmp(&v[i - 1], &v[i]) == 0))
            continue;
        memcpy(dst + len, v[i].p, v[i].n);
        dst[len + v[i].n] = '\0';
        len += v[i].n + 1;
    }
    return len;
}

/* The canonical key against a plain reference, on random tag sets full of
 * shared prefixes, duplicates, empty and high-byte tags, both below and
 * above the 8-tag fast path. */
static void test_key_canon(void)
{
    static const char *const pool[] = {"container_id:1",
                                       "container_id:2",
                                       "container_name:x",
                                       "a",
                                       "",
                                       "ab",
                                       "abcdefg",
                                       "abcdefgh",
                                       "abcdefg\x01",
                                       "\xff",
                                       "\xfe\xff",
                                       "env:prod",
                                       "env:dev",
                                       "service:web",
                                       "service:we",
                                       "z",
                                       "kube_namespace:default",
                                       "kube_container_name:app"};
    unsigned seed = 12345;
    char out[4096], want[4096];
    for (int iter = 0; iter < 20000; iter++) {
        mw__str inst[8], tags[16], all[24];
        size_t ninst = 0, ntags, kept;
        seed = seed * 1103515245 + 12345;
        size_t want_inst = (seed >> 16) % 4;
        ntags = (seed >> 20) % (iter % 3 == 0 ? 14 : 7);
        for (size_t i = 0; i < want_inst; i++) {
            seed = seed * 1103515245 + 12345;
            const char *t = pool[(seed >> 16) % MW_ARRAY_LEN(pool)];
            inst[ninst++] = (mw__str){t, strlen(t)};
        }
        ninst = mw__agg_tags_canon(inst, ninst);
        for (size_t i = 0; i < ntags; i++) {
            seed = seed * 1103515245 + 12345;
            const char *t = pool[(seed >> 16) % MW_ARRAY_LEN(pool)];
            tags[i] = (mw__str){t, strlen(t)};
        }
        memcpy(all, inst, ninst * sizeof(*all));
        memcpy(all + ninst, tags, ntags * sizeof(*all));
        size_t wl = ref_key(want, all, ninst + ntags);
        size_t gl = mw__agg_key_write(out, (mw__str){"n", 1}, (mw__str){"h", 1}, inst, ninst, tags,
                                      ntags, &kept);
        if (gl != wl || memcmp(out, want, wl) != 0) {
            CHECK(!"canonical key differs from the reference");
            break;
        }
    }
    CHECK(1);
}

int main(void)
{
    test_key_canon();
    test_gauge_count();
    test_rate();
    test_monotonic_count();
    test_histogram_default();
    test_histogram_configured();
    test_parse();
    test_identity();
    test_expiry();
    test_records_queue();
    test_gauge_record();
    test_invalid();
    test_large_and_isolated();
    return TEST_RESULT();
}
