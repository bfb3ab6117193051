/*
 * bench_metrics.c - GET /metrics with 100,000 series: the Prometheus
 * sink's render alone, and a whole GET over loopback (the HTTP server on
 * its loop in a thread, as the engine serves it; a blocking client here).
 * Also one flush's worth of records into the sink. 1,000 families of 100
 * series, each with host and 4 tags, a third of them counters. Each
 * figure is the median of RUNS runs, wall time. Prints, never asserts
 * (benchmarks run on shared, noisy machines); the goal is <= 100 ms.
 *
 * Usage: bench_metrics [series]
 */
#include "bench.h"
#include "core/base/httpd.h"
#include "core/base/util.h"
#include "core/pipeline/sink_prom.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>

#define RUNS       9
#define PER_FAMILY 100

static mw__prom *prom;
static size_t hint; /* as core/status.c sizes the body */
static atomic_int stop_loop;

static double fill(size_t n, double now)
{
    char name[64], t[4][64];
    double t0 = mw__mono();
    for (size_t i = 0; i < n; i++) {
        size_t fam = i / PER_FAMILY;
        snprintf(name, sizeof name, "bench.app.metric_%zu", fam);
        snprintf(t[0], 64, "service:frontend-%zu", i % 7);
        snprintf(t[1], 64, "url:http://10.0.%zu.%zu/", i % 13, i % PER_FAMILY);
        snprintf(t[2], 64, "az:eu-west-1%c", (char)('a' + i % 3));
        snprintf(t[3], 64, "code:%zu", 200 + i % PER_FAMILY);
        const char *tags[] = {t[0], t[1], t[2], t[3]};
        mw_record r = {.size = sizeof r,
                       .type = MW_RECORD_METRIC,
                       .name = name,
                       .kind = fam % 3 == 0 ? MW_KIND_COUNT : MW_KIND_GAUGE,
                       .value = (double)i * 0.37,
                       .tags = tags,
                       .ntags = 4,
                       .host = "bench-host"};
        mw__prom_add(prom, &r, now);
    }
    return mw__mono() - t0;
}

static void handler(void *ud, const mw__httpd_req *req, mw__httpd_resp *resp)
{
    MW_UNUSED(ud), MW_UNUSED(req);
    mw__buf_reserve(&resp->body, hint);
    mw__prom_render(prom, mw__wall(), &resp->body);
    hint = resp->body.len + resp->body.len / 8;
}

static void *loop_thread(void *ud)
{
    while (!atomic_load(&stop_loop))
        mw__loop_run_once(ud, 50);
    return NULL;
}

/* One GET /metrics, read whole; returns the bytes read. */
static size_t get_metrics(int port)
{
    static char buf[1 << 16];
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t total = 0;
    if (connect(fd, (struct sockaddr *)&in, sizeof in) == 0) {
        const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        if (send(fd, req, sizeof req - 1, 0) == (ssize_t)(sizeof req - 1))
            for (ssize_t r; (r = recv(fd, buf, sizeof buf, 0)) > 0;)
                total += (size_t)r;
    }
    close(fd);
    return total;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : 100000;
    double now = mw__wall(), t[RUNS];
    prom = mw__prom_new(300);
    double add = fill(n, now);
    printf("series: %zu (%zu families)\n", mw__prom_series(prom), n / PER_FAMILY);
    printf("first flush into the sink (new series): %.1f ms\n", add * 1e3);
    for (int i = 0; i < RUNS; i++)
        t[i] = fill(n, now);
    printf("a flush of the same series (median of %d): %.1f ms\n", RUNS, median(t, RUNS) * 1e3);

    mw__buf out;
    mw__buf_init(&out, (size_t)1 << 30);
    for (int i = 0; i < RUNS; i++) {
        mw__buf_reset(&out);
        double t0 = mw__mono();
        mw__prom_render(prom, now, &out);
        t[i] = mw__mono() - t0;
    }
    printf("render (median of %d): %.1f ms, %.1f MiB\n", RUNS, median(t, RUNS) * 1e3,
           (double)out.len / 1048576);
    mw__buf_free(&out);

    mw__loop *loop = NULL;
    mw__httpd *h = NULL;
    char *err = NULL;
    mw__loop_new(&loop);
    mw__httpd_opts o = {.loop = loop, .addr = "127.0.0.1:0", .handler = handler};
    if (mw__httpd_new(&o, &h, &err) != MW_OK) {
        fprintf(stderr, "httpd: %s\n", err);
        return 1;
    }
    int port = atoi(strrchr(mw__httpd_addr(h), ':') + 1);
    pthread_t th;
    pthread_create(&th, NULL, loop_thread, loop);
    size_t bytes = 0;
    for (int i = 0; i < RUNS; i++) {
        double t0 = mw__mono();
        bytes = get_metrics(port);
        t[i] = mw__mono() - t0;
    }
    printf("GET /metrics over loopback (median of %d): %.1f ms, %zu bytes (goal <= 100 ms)\n", RUNS,
           median(t, RUNS) * 1e3, bytes);
    atomic_store(&stop_loop, 1);
    pthread_join(th, NULL);
    mw__httpd_free(h);
    mw__loop_free(loop);
    mw__prom_free(prom);
    return 0;
}
