/*
 * bench_aggregator.c - samples per second into the aggregator on one core:
 * straight through mw__agg_metric(), and through a sender (buffer a run,
 * commit it in one batch, as checks do). 1,000 contexts of 4 tags each
 * plus 2 instance tags; each figure is the median of RUNS runs. Time is
 * the thread's CPU time, so other load on a shared machine inflates the
 * figures less than wall time would. Prints, never asserts (benchmarks run
 * on shared, noisy machines).
 *
 * The prepared-series figure is the public mw_series_submit() path: the
 * context key is built once, each sample only updates its context.
 *
 * The last figure is two worker threads committing into one aggregator,
 * in wall-clock time: on an idle 2-core machine it shows how little the
 * shard locks contend.
 *
 * Usage: bench_aggregator [samples per run]
 */
#include "core/base/util.h"
#include "core/pipeline/aggregator.h"
#include "core/pipeline/sender.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONTEXTS 1000
#define NTAGS    4
#define RUNS     7
#define BATCH    1000 /* samples per sender run */

typedef struct series {
    char name[48];
    char tagbuf[NTAGS][48];
    const char *tags[NTAGS];
    mw__str stags[NTAGS];
    mw__str sname;
} series;

static series *make_series(void)
{
    series *s = calloc(CONTEXTS, sizeof(*s));
    for (int i = 0; s && i < CONTEXTS; i++) {
        snprintf(s[i].name, sizeof(s[i].name), "bench.http.requests.m%d", i % 50);
        snprintf(s[i].tagbuf[0], 48, "service:frontend-%d", i % 7);
        snprintf(s[i].tagbuf[1], 48, "url:http://10.0.%d.%d/", i % 13, i);
        snprintf(s[i].tagbuf[2], 48, "az:eu-west-1%c", 'a' + i % 3);
        snprintf(s[i].tagbuf[3], 48, "code:%d", 200 + i % 5);
        s[i].sname = (mw__str){s[i].name, strlen(s[i].name)};
        for (int t = 0; t < NTAGS; t++) {
            s[i].tags[t] = s[i].tagbuf[t];
            s[i].stags[t] = (mw__str){s[i].tagbuf[t], strlen(s[i].tagbuf[t])};
        }
    }
    return s;
}

/* Seconds of CPU time this thread has used. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const itags[] = {"env:prod", "team:web"};

static mw__aggregator *agg_new(void)
{
    mw__agg_opts o = {.flush_interval = 15, .host = "bench-host"};
    return mw__agg_new(&o);
}

static double run_direct(const series *s, size_t n)
{
    mw__aggregator *agg = agg_new();
    const char *tags[NTAGS + 2];
    double t0 = cpu_now();
    for (size_t i = 0; i < n; i++) {
        const series *x = &s[i % CONTEXTS];
        memcpy(tags, x->tags, sizeof(x->tags));
        tags[NTAGS] = itags[0];
        tags[NTAGS + 1] = itags[1];
        mw__agg_metric(agg, MW_COUNT, x->name, 1, tags, NTAGS + 2, NULL, "bench", "bench:1", 1000);
    }
    double dt = cpu_now() - t0;
    mw__agg_free(agg);
    return (double)n / dt;
}

/* The public prepared-series path: keys built once, outside the timing,
 * each submission stamped with the wall clock as mw_series_submit does. */
static double run_series(const series *s, size_t n)
{
    mw__aggregator *agg = agg_new();
    mw__agg_series *ps[CONTEXTS];
    const char *tags[NTAGS + 2];
    mw_code rc;
    for (int i = 0; i < CONTEXTS; i++) {
        memcpy(tags, s[i].tags, sizeof(s[i].tags));
        tags[NTAGS] = itags[0];
        tags[NTAGS + 1] = itags[1];
        ps[i] = mw__agg_series_new(agg, MW_COUNT, s[i].name, tags, NTAGS + 2, NULL, &rc);
    }
    double t0 = cpu_now();
    for (size_t i = 0; i < n; i++)
        mw__agg_series_add(ps[i % CONTEXTS], 1, mw__wall());
    double dt = cpu_now() - t0;
    for (int i = 0; i < CONTEXTS; i++)
        mw__agg_series_free(ps[i]);
    mw__agg_free(agg);
    return (double)n / dt;
}

/* Returns samples/s end to end; `commit_rate` gets the commit step alone. */
static double run_sender(const series *s, size_t n, double *commit_rate)
{
    mw__aggregator *agg = agg_new();
    mw__sender_opts o = {.check = "bench", .check_id = "bench:1", .tags = itags, .ntags = 2};
    mw__sender *snd = mw__sender_new(agg, &o);
    double t0 = cpu_now(), in_commit = 0;
    for (size_t i = 0; i < n;) {
        for (size_t k = 0; k < BATCH && i < n; k++, i++) {
            const series *x = &s[i % CONTEXTS];
            mw__sender_metric(snd, MW_COUNT, x->sname, 1, x->stags, NTAGS, (mw__str){NULL, 0});
        }
        double c0 = cpu_now();
        mw__sender_commit(snd, 1000);
        in_commit += cpu_now() - c0;
    }
    double dt = cpu_now() - t0;
    *commit_rate = (double)n / in_commit;
    mw__sender_free(snd);
    mw__agg_free(agg);
    return (double)n / dt;
}

typedef struct job {
    pthread_t tid;
    mw__aggregator *agg;
    const series *s;
    size_t n;
    int id;
} job;

/* One worker: its own sender (its own check id), the shared aggregator. */
static void *sender_worker(void *arg)
{
    job *j = arg;
    char id[32];
    snprintf(id, sizeof(id), "bench:%d", j->id);
    mw__sender_opts o = {.check = "bench", .check_id = id, .tags = itags, .ntags = 2};
    mw__sender *snd = mw__sender_new(j->agg, &o);
    for (size_t i = 0; snd && i < j->n;) {
        for (size_t k = 0; k < BATCH && i < j->n; k++, i++) {
            const series *x = &j->s[(i + (size_t)j->id * 7) % CONTEXTS];
            mw__sender_metric(snd, MW_COUNT, x->sname, 1, x->stags, NTAGS, (mw__str){NULL, 0});
        }
        mw__sender_commit(snd, 1000);
    }
    mw__sender_free(snd);
    return NULL;
}

/* Wall-clock samples/s of `nthreads` workers committing concurrently. */
static double run_threads(const series *s, size_t n, int nthreads)
{
    mw__aggregator *agg = agg_new();
    job jobs[8];
    double t0 = mw__mono();
    for (int i = 0; i < nthreads; i++) {
        jobs[i] = (job){.agg = agg, .s = s, .n = n / (size_t)nthreads, .id = i};
        pthread_create(&jobs[i].tid, NULL, sender_worker, &jobs[i]);
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(jobs[i].tid, NULL);
    double dt = mw__mono() - t0;
    mw__agg_free(agg);
    return (double)n / dt;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 5000000;
    series *s = make_series();
    double direct[RUNS], sender[RUNS], commit[RUNS], two[RUNS], prep[RUNS];
    if (!s)
        return 1;
    for (int r = 0; r < RUNS; r++) {
        direct[r] = run_direct(s, n);
        sender[r] = run_sender(s, n, &commit[r]);
        two[r] = run_threads(s, n, 2);
        prep[r] = run_series(s, n);
    }
    printf("aggregator: %d contexts x %d tags (+2 instance tags), %zu samples/run, "
           "median of %d\n",
           CONTEXTS, NTAGS, n, RUNS);
    printf("  mw__agg_metric (one sample, one lock)   %12.0f samples/s\n", median(direct, RUNS));
    printf("  prepared series (mw_series_submit)      %12.0f samples/s\n", median(prep, RUNS));
    printf("  sender buffer + commit (batch of %d)  %12.0f samples/s\n", BATCH,
           median(sender, RUNS));
    printf("  commit step alone                       %12.0f samples/s\n", median(commit, RUNS));
    printf("  2 threads, sender path (wall clock)     %12.0f samples/s\n", median(two, RUNS));
    free(s);
    return 0;
}
