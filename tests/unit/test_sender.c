/*
 * test_sender.c - a check instance's sender: instance tags merged, hosts,
 * check identity on records, the byte cap, validation, service checks and
 * events, commit and discard.
 */
#include "core/pipeline/aggregator.h"
#include "core/base/buf.h"
#include "core/pipeline/sender.h"
#include "core/pipeline/sink_json.h"
#include "test.h"

#include <stdlib.h>

#define S(lit) ((mw__str){lit, sizeof(lit) - 1})
#define NOHOST ((mw__str){NULL, 0})

/* Every flushed record as its JSON line, in one buffer. */
static void to_json(const mw_record *r, void *ud)
{
    CHECK(mw__record_json(r, ud) == MW_OK);
}

static char *flush_json(mw__aggregator *agg, double now)
{
    mw__buf b;
    mw__buf_init(&b, 1 << 20);
    mw__agg_flush(agg, now, to_json, &b);
    char *s = mw__buf_take(&b, NULL);
    return s ? s : calloc(1, 1);
}

static int has_line(const char *all, const char *line)
{
    return strstr(all, line) != NULL;
}

static mw__aggregator *agg_new(void)
{
    mw__agg_opts o = {.flush_interval = 15, .host = "eng-host"};
    return mw__agg_new(&o);
}

static const char *const itags[] = {"env:prod", "team:a"};

static mw__sender *sender_new(mw__aggregator *agg, const char *host, size_t max)
{
    mw__sender_opts o = {.check = "http_check", .check_id = "http_check:abc"};
    o.tags = itags;
    o.ntags = 2;
    o.host = host;
    o.max_bytes = max;
    return mw__sender_new(agg, &o);
}

static void test_metrics(void)
{
    mw__aggregator *agg = agg_new();
    mw__sender *s = sender_new(agg, NULL, 0);
    const mw__str t[] = {S("team:a"), S("b:1"), S("b:1"), S("zz")};
    CHECK(mw__sender_metric(s, MW_GAUGE, S("g"), 1.5, t, 4, NOHOST) == MW_OK);
    CHECK(mw__sender_metric(s, MW_COUNT, S("c"), 2, NULL, 0, S("other")) == MW_OK);
    CHECK(mw__sender_metric(s, MW_COUNT, S("c"), 3, NULL, 0, S("other")) == MW_OK);
    CHECK(mw__sender_pending(s) == 3 && mw__sender_bytes(s) > 0);
    CHECK(mw__sender_commit(s, 1000.5) == 3);
    CHECK(mw__sender_pending(s) == 0 && mw__sender_bytes(s) == 0);
    char *out = flush_json(agg, 1001);
    CHECK(has_line(out, "{\"type\":\"metric\",\"metric\":\"g\",\"kind\":\"gauge\",\"value\":1.5,"
                        "\"timestamp\":1001,\"interval\":15,"
                        "\"tags\":[\"b:1\",\"env:prod\",\"team:a\",\"zz\"],"
                        "\"host\":\"eng-host\",\"check\":\"http_check\","
                        "\"check_id\":\"http_check:abc\"}\n"));
    CHECK(has_line(out, "{\"type\":\"metric\",\"metric\":\"c\",\"kind\":\"count\",\"value\":5,"
                        "\"timestamp\":1001,\"interval\":15,\"tags\":[\"env:prod\",\"team:a\"],"
                        "\"host\":\"other\",\"check\":\"http_check\","
                        "\"check_id\":\"http_check:abc\"}\n"));
    free(out);
    mw__sender_free(s);

    /* The sender's own default host wins over the engine's. */
    s = sender_new(agg, "inst-host", 0);
    CHECK(mw__sender_metric(s, MW_GAUGE, S("g"), 1, NULL, 0, NOHOST) == MW_OK);
    CHECK(mw__sender_commit(s, 1002) == 1);
    out = flush_json(agg, 1003);
    CHECK(has_line(out, "\"host\":\"inst-host\""));
    free(out);
    mw__sender_free(s);
    mw__sender_free(NULL);
    mw__agg_free(agg);
}

static void test_rate_across_runs(void)
{
    mw__aggregator *agg = agg_new();
    mw__sender *s = sender_new(agg, NULL, 0);
    CHECK(mw__sender_metric(s, MW_RATE, S("r"), 100, NULL, 0, NOHOST) == MW_OK);
    CHECK(mw__sender_commit(s, 100) == 1);
    char *out = flush_json(agg, 101);
    CHECK(strcmp(out, "") == 0);
    free(out);
    CHECK(mw__sender_metric(s, MW_RATE, S("r"), 250, NULL, 0, NOHOST) == MW_OK);
    CHECK(mw__sender_commit(s, 115) == 1);
    out = flush_json(agg, 116);
    CHECK(has_line(out, "\"metric\":\"r\",\"kind\":\"gauge\",\"value\":10,"));
    free(out);
    mw__sender_free(s);
    mw__agg_free(agg);
}

static void test_invalid(void)
{
    mw__aggregator *agg = agg_new();
    mw__sender *s = sender_new(agg, NULL, 0);
    char long_name[MW_NAME_MAX + 1];
    memset(long_name, 'n', sizeof(long_name));
    mw__str longs = {long_name, sizeof(long_name)};
    const mw__str nul_tag[] = {{"a\0b", 3}};
    CHECK(mw__sender_metric(s, MW_GAUGE, S(""), 1, NULL, 0, NOHOST) == MW_EINVAL);
    CHECK(mw__sender_metric(s, MW_GAUGE, NOHOST, 1, NULL, 0, NOHOST) == MW_EINVAL);
    CHECK(mw__sender_metric(s, MW_GAUGE, S("a\0b"), 1, NULL, 0, NOHOST) == MW_EINVAL);
    CHECK(mw__sender_metric(s, MW_GAUGE, longs, 1, NULL, 0, NOHOST) == MW_EINVAL);
    longs.n--;
    CHECK(mw__sender_metric(s, MW_GAUGE, longs, 1, NULL, 0, NOHOST) == MW_OK);
    CHECK(mw__sender_metric(s, MW_GAUGE, S("x"), NAN, NULL, 0, NOHOST) == MW_EINVAL);
    CHECK(mw__sender_metric(s, MW_GAUGE, S("x"), -INFINITY, NULL, 0, NOHOST) == MW_EINVAL);
    CHECK(mw__sender_metric(s, (mw_metric_type)9, S("x"), 1, NULL, 0, NOHOST) == MW_EINVAL);
    CHECK(mw__sender_metric(s, MW_GAUGE, S("x"), 1, nul_tag, 1, NOHOST) == MW_EINVAL);
    CHECK(mw__sender_metric(s, MW_GAUGE, S("x"), 1, NULL, 1, NOHOST) == MW_EINVAL);
    CHECK(mw__sender_service_check(s, S("sc"), 4, NULL, 0, S("")) == MW_EINVAL);
    CHECK(mw__sender_service_check(s, S("sc"), -1, NULL, 0, S("")) == MW_EINVAL);
    CHECK(mw__sender_service_check(s, S(""), 0, NULL, 0, S("")) == MW_EINVAL);
    mw__event_in ev = {.title = S("")};
    CHECK(mw__sender_event(s, &ev) == MW_EINVAL);
    ev.title = NOHOST;
    CHECK(mw__sender_event(s, &ev) == MW_EINVAL);
    ev.title = S("t");
    ev.alert_type = S("fatal");
    CHECK(mw__sender_event(s, &ev) == MW_EINVAL);
    ev.alert_type = S("error");
    ev.priority = S("urgent");
    CHECK(mw__sender_event(s, &ev) == MW_EINVAL);
    CHECK(mw__sender_pending(s) == 1);
    mw__sender_discard(s);
    CHECK(mw__sender_pending(s) == 0 && mw__sender_bytes(s) == 0);
    CHECK(mw__sender_commit(s, 1) == 0);
    CHECK(mw__agg_contexts(agg) == 0);
    mw__sender_free(s);
    mw__agg_free(agg);
}

static void test_cap(void)
{
    mw__aggregator *agg = agg_new();
    mw__sender *s = sender_new(agg, NULL, 1024);
    mw_code rc = MW_OK;
    size_t ok = 0;
    while (ok < 1000 &&
           (rc = mw__sender_metric(s, MW_COUNT, S("capped.metric"), 1, NULL, 0, NOHOST)) == MW_OK)
        ok++;
    CHECK(rc == MW_ENOMEM);
    CHECK(ok > 5 && ok < 50);
    CHECK(mw__sender_pending(s) == ok && mw__sender_bytes(s) <= 1024);
    CHECK(mw__sender_commit(s, 10) == ok);
    /* The cap is per run: the next run starts empty, and sizing its arena
     * for what the last run wrote (over the cap here) takes nothing from
     * it: as many fit again. */
    size_t again = 0;
    while (again < 1000 &&
           mw__sender_metric(s, MW_COUNT, S("capped.metric"), 1, NULL, 0, NOHOST) == MW_OK)
        again++;
    CHECK(again == ok);
    CHECK(mw__sender_commit(s, 11) == again);
    CHECK(mw__sender_metric(s, MW_COUNT, S("capped.metric"), 1, NULL, 0, NOHOST) == MW_OK);
    CHECK(mw__sender_commit(s, 11) == 1);
    char *out = flush_json(agg, 12);
    char want[64];
    snprintf(want, sizeof(want), "\"kind\":\"count\",\"value\":%zu,", 2 * ok + 1);
    CHECK(has_line(out, want));
    free(out);
    mw__sender_free(s);
    mw__agg_free(agg);
}

static void test_service_checks_events(void)
{
    mw__aggregator *agg = agg_new();
    mw__sender *s = sender_new(agg, NULL, 0);
    const mw__str t[] = {S("port:80"), S("env:prod")};
    CHECK(mw__sender_service_check(s, S("http.can_connect"), 2, t, 2, S("refused \"x\"")) == MW_OK);
    CHECK(mw__sender_service_check(s, S("http.ok"), 0, NULL, 0, NOHOST) == MW_OK);
    mw__event_in ev = {.title = S("Restarted"), .text = S("line1\nline2")};
    ev.source_type_name = S("docker");
    ev.tags = t;
    ev.ntags = 1;
    ev.timestamp = 500.9;
    CHECK(mw__sender_event(s, &ev) == MW_OK);
    mw__event_in ev2 = {.title = S("Bare")};
    CHECK(mw__sender_event(s, &ev2) == MW_OK);
    CHECK(mw__sender_metric(s, MW_GAUGE, S("g"), 1, NULL, 0, NOHOST) == MW_OK);
    CHECK(mw__sender_commit(s, 700.2) == 5);
    char *out = flush_json(agg, 701);
    CHECK(has_line(out, "{\"type\":\"service_check\",\"check\":\"http.can_connect\",\"status\":2,"
                        "\"message\":\"refused \\\"x\\\"\",\"timestamp\":700,"
                        "\"tags\":[\"env:prod\",\"port:80\",\"team:a\"],\"host\":\"eng-host\","
                        "\"check_id\":\"http_check:abc\"}\n"));
    CHECK(has_line(out, "{\"type\":\"service_check\",\"check\":\"http.ok\",\"status\":0,"
                        "\"message\":\"\",\"timestamp\":700,\"tags\":[\"env:prod\",\"team:a\"],"
                        "\"host\":\"eng-host\",\"check_id\":\"http_check:abc\"}\n"));
    CHECK(has_line(out, "{\"type\":\"event\",\"title\":\"Restarted\",\"text\":\"line1\\nline2\","
                        "\"alert_type\":\"info\",\"priority\":\"normal\",\"aggregation_key\":null,"
                        "\"source_type_name\":\"docker\",\"timestamp\":500,"
                        "\"tags\":[\"env:prod\",\"port:80\",\"team:a\"],\"host\":\"eng-host\"}\n"));
    CHECK(has_line(out, "{\"type\":\"event\",\"title\":\"Bare\",\"text\":\"\","
                        "\"alert_type\":\"info\",\"priority\":\"normal\",\"aggregation_key\":null,"
                        "\"source_type_name\":null,\"timestamp\":700,"
                        "\"tags\":[\"env:prod\",\"team:a\"],\"host\":\"eng-host\"}\n"));
    CHECK(has_line(out, "\"metric\":\"g\""));
    free(out);
    out = flush_json(agg, 702); /* service checks and events go once */
    CHECK(strcmp(out, "") == 0);
    free(out);
    mw__sender_free(s);
    mw__agg_free(agg);
}

/* A sender freed with samples pending leaks nothing; a big run's arena is
 * released after its commit. */
static void test_teardown(void)
{
    mw__aggregator *agg = agg_new();
    mw__sender *s = sender_new(agg, NULL, 0);
    char name[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof(name), "m%d", i % 100);
        CHECK(mw__sender_metric(s, MW_HISTOGRAM, (mw__str){name, strlen(name)}, i, NULL, 0,
                                NOHOST) == MW_OK);
    }
    CHECK(mw__sender_commit(s, 1) == 20000);
    CHECK(mw__agg_contexts(agg) == 100);
    CHECK(mw__sender_metric(s, MW_GAUGE, S("left"), 1, NULL, 0, NOHOST) == MW_OK);
    mw__sender_free(s);
    mw__agg_free(agg);
}

int main(void)
{
    test_metrics();
    test_rate_across_runs();
    test_invalid();
    test_cap();
    test_service_checks_events();
    test_teardown();
    return TEST_RESULT();
}
