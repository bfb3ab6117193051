/*
 * test_sink_prom.c - the Prometheus exposition: names and labels
 * sanitised, values escaped, kinds mapped, counters kept across flushes,
 * one HELP/TYPE per family, service checks, staleness and type conflicts.
 */
#include "core/base/util.h"
#include "core/pipeline/sink_prom.h"
#include "test.h"

#include <pthread.h>
#include <stdlib.h>

static mw_record metric(const char *name, mw_metric_kind kind, double v, const char *const *tags,
                        size_t ntags)
{
    return (mw_record){.size = sizeof(mw_record),
                       .type = MW_RECORD_METRIC,
                       .name = name,
                       .kind = kind,
                       .value = v,
                       .tags = tags,
                       .ntags = ntags,
                       .host = "web-1"};
}

/* The exposition at `now`, a string the caller frees. */
static char *render(mw__prom *p, double now)
{
    mw__buf b;
    mw__buf_init(&b, 1 << 24);
    CHECK(mw__prom_render(p, now, &b) == MW_OK);
    char *s = mw__buf_take(&b, NULL);
    return s ? s : mw__strdup("");
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_names_and_labels(void)
{
    mw__prom *p = mw__prom_new(300);
    const char *tags[] = {"env:prod",     "canary",    "9lives:x",        "__meta:y",
                          "q:a\"b\\c\nd", "dash-ed:1", "url:http://a:80/"};
    mw_record r = metric("system.load.1", MW_KIND_GAUGE, 0.25, tags, MW_ARRAY_LEN(tags));
    CHECK(mw__prom_add(p, &r, 1000) == MW_OK);
    const char *reserved[] = {"le:0.5", "quantile:0.9", "podName:a"};
    r = metric("jvm.heapMemory.usedHTTP", MW_KIND_GAUGE, 1, reserved, 3);
    CHECK(mw__prom_add(p, &r, 1000) == MW_OK);
    r = metric("9weird-name/x", MW_KIND_GAUGE, -3, NULL, 0);
    r.host = NULL;
    CHECK(mw__prom_add(p, &r, 1000) == MW_OK);
    char *s = render(p, 1000);
    CHECK(strstr(s, "# HELP system_load_1 moonwatch gauge system.load.1\n"
                    "# TYPE system_load_1 gauge\n"
                    "system_load_1{_9lives=\"x\",canary=\"true\",dash_ed=\"1\",env=\"prod\","
                    "host=\"web-1\",q=\"a\\\"b\\\\c\\nd\",tag__meta=\"y\","
                    "url=\"http://a:80/\"} 0.25\n") != NULL);
    CHECK(strstr(s, "\n_9weird_name_x -3\n") != NULL);
    CHECK(strstr(s, "\njvm_heap_memory_used_http{host=\"web-1\",pod_name=\"a\","
                    "tag_le=\"0.5\",tag_quantile=\"0.9\"} 1\n") != NULL);
    free(s);
    mw__prom_free(p);
}

static void test_kinds(void)
{
    mw__prom *p = mw__prom_new(300);
    const char *a[] = {"k:a"}, *b[] = {"k:b"};
    mw_record r = metric("http.hits", MW_KIND_COUNT, 3, a, 1);
    CHECK(mw__prom_add(p, &r, 1000) == MW_OK);
    r.value = 4;
    CHECK(mw__prom_add(p, &r, 1015) == MW_OK);
    r = metric("http.hits", MW_KIND_COUNT, 1, b, 1);
    CHECK(mw__prom_add(p, &r, 1015) == MW_OK);
    r = metric("jobs.done_total", MW_KIND_COUNT, 2.5, NULL, 0);
    CHECK(mw__prom_add(p, &r, 1015) == MW_OK);
    r = metric("http.rate", MW_KIND_RATE, 0.1, NULL, 0);
    CHECK(mw__prom_add(p, &r, 1015) == MW_OK);
    r = metric("lat.95percentile", MW_KIND_GAUGE, 1e-7, NULL, 0);
    CHECK(mw__prom_add(p, &r, 1015) == MW_OK);
    /* names Prometheus keeps for counters, histograms and summaries */
    r = metric("http.hits_total", MW_KIND_GAUGE, 1, NULL, 0);
    CHECK(mw__prom_add(p, &r, 1015) == MW_OK);
    r = metric("lat.count", MW_KIND_RATE, 2, NULL, 0);
    CHECK(mw__prom_add(p, &r, 1015) == MW_OK);
    r = metric("lat.sum", MW_KIND_GAUGE, 3, NULL, 0);
    CHECK(mw__prom_add(p, &r, 1015) == MW_OK);
    mw_record ev = {.size = sizeof ev, .type = MW_RECORD_EVENT, .title = "t", .text = "x"};
    CHECK(mw__prom_add(p, &ev, 1015) == MW_OK);
    char *s = render(p, 1016);
    CHECK(count_of(s, "# TYPE http_hits_total counter\n") == 1);
    CHECK(count_of(s, "# HELP http_hits_total ") == 1);
    CHECK(strstr(s, "http_hits_total{host=\"web-1\",k=\"a\"} 7\n") != NULL);
    CHECK(strstr(s, "http_hits_total{host=\"web-1\",k=\"b\"} 1\n") != NULL);
    CHECK(strstr(s, "# TYPE jobs_done_total counter\njobs_done_total{host=\"web-1\"} 2.5\n") !=
          NULL);
    CHECK(strstr(s, "# TYPE http_rate gauge\nhttp_rate{host=\"web-1\"} 0.1\n") != NULL);
    CHECK(strstr(s, "lat_95percentile{host=\"web-1\"} 1e-07\n") != NULL);
    CHECK(strstr(s, "t\"") == NULL);
    CHECK(strstr(s, "# TYPE http_hits_total_value gauge\nhttp_hits_total_value{host=\"web-1\"} "
                    "1\n") != NULL);
    CHECK(strstr(s, "\nlat_count_value{host=\"web-1\"} 2\n") != NULL);
    CHECK(strstr(s, "\nlat_sum_value{host=\"web-1\"} 3\n") != NULL);
    /* families sorted by name */
    CHECK(strstr(s, "# HELP http_hits_total") < strstr(s, "# HELP http_rate"));
    CHECK(strstr(s, "# HELP http_rate") < strstr(s, "# HELP jobs_done_total"));
    free(s);
    mw__prom_free(p);
}

static void test_service_checks(void)
{
    mw__prom *p = mw__prom_new(300);
    const char *tags[] = {"url:http://x/", "env:a", "env:b"};
    mw_record r = {.size = sizeof r,
                   .type = MW_RECORD_SERVICE_CHECK,
                   .name = "http.can_connect",
                   .status = MW_STATUS_CRITICAL,
                   .message = "refused",
                   .tags = tags,
                   .ntags = 3,
                   .host = "h"};
    CHECK(mw__prom_add(p, &r, 1000) == MW_OK);
    r.name = "tcp.can_connect";
    r.status = MW_STATUS_OK;
    r.ntags = 0;
    CHECK(mw__prom_add(p, &r, 1000) == MW_OK);
    char *s = render(p, 1000);
    CHECK(count_of(s, "# TYPE moonwatch_service_check_status gauge\n") == 1);
    CHECK(strstr(s, "moonwatch_service_check_status{check=\"http.can_connect\",env=\"a,b\","
                    "host=\"h\",url=\"http://x/\"} 2\n") != NULL);
    CHECK(strstr(s, "moonwatch_service_check_status{check=\"tcp.can_connect\",host=\"h\"} 0\n") !=
          NULL);
    CHECK(strstr(s, "refused") == NULL);
    free(s);
    mw__prom_free(p);
}

static void test_staleness(void)
{
    mw__prom *p = mw__prom_new(60);
    mw_record c = metric("jobs", MW_KIND_COUNT, 5, NULL, 0);
    mw_record g = metric("temp", MW_KIND_GAUGE, 20, NULL, 0);
    CHECK(mw__prom_add(p, &c, 1000) == MW_OK);
    CHECK(mw__prom_add(p, &g, 1000) == MW_OK);
    CHECK(mw__prom_add(p, &g, 1050) == MW_OK);
    char *s = render(p, 1070); /* jobs: 70 s old, temp: 20 s */
    CHECK(strstr(s, "jobs_total") == NULL);
    CHECK(strstr(s, "temp{host=\"web-1\"} 20\n") != NULL);
    free(s);
    CHECK(mw__prom_series(p) == 1);
    CHECK(mw__prom_add(p, &c, 1071) == MW_OK); /* comes back from zero */
    s = render(p, 1071);
    CHECK(strstr(s, "jobs_total{host=\"web-1\"} 5\n") != NULL);
    free(s);
    s = render(p, 2000);
    CHECK(strcmp(s, "") == 0);
    free(s);
    CHECK(mw__prom_series(p) == 0);
    mw__prom_free(p);
}

/* Many series: tables grow, every one is rendered once. */
static void test_many(void)
{
    mw__prom *p = mw__prom_new(300);
    char tag[32], name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(tag, sizeof tag, "i:%d", i);
        snprintf(name, sizeof name, "m.%d", i % 50);
        const char *t[] = {tag};
        mw_record r = metric(name, MW_KIND_GAUGE, i, t, 1);
        CHECK(mw__prom_add(p, &r, 1000) == MW_OK);
    }
    CHECK(mw__prom_series(p) == 5000);
    char *s = render(p, 1000);
    CHECK(count_of(s, "# TYPE ") == 50);
    CHECK(count_of(s, "\nm_") == 5000);
    free(s);
    mw__prom_free(p);
}

/* One thread adds (the flushes), another renders (the scrapes): every
 * render sees whole lines, and ThreadSanitizer sees the lock. */
static void *adder(void *ud)
{
    char tag[32];
    for (int round = 0; round < 20; round++)
        for (int i = 0; i < 500; i++) {
            snprintf(tag, sizeof tag, "i:%d", i);
            const char *t[] = {tag};
            mw_record r = metric("conc.hits", MW_KIND_COUNT, 1, t, 1);
            mw__prom_add(ud, &r, 1000 + round);
        }
    return NULL;
}

static void test_threads(void)
{
    mw__prom *p = mw__prom_new(300);
    pthread_t th;
    int torn = 0;
    CHECK(pthread_create(&th, NULL, adder, p) == 0);
    for (int k = 0; k < 50; k++) {
        char *s = render(p, 1000);
        size_t n = strlen(s);
        torn += n > 0 && s[n - 1] != '\n';
        free(s);
    }
    pthread_join(th, NULL);
    CHECK(torn == 0);
    char *s = render(p, 1020);
    CHECK(strstr(s, "conc_hits_total{host=\"web-1\",i=\"499\"} 20\n") != NULL);
    free(s);
    mw__prom_free(p);
}

int main(void)
{
    test_names_and_labels();
    test_kinds();
    test_service_checks();
    test_staleness();
    test_many();
    test_threads();
    return TEST_RESULT();
}
