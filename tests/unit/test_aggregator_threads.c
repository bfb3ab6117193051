/*
 * test_aggregator_threads.c - four workers commit batches into one
 * aggregator, through senders and straight through mw__agg_metric, while
 * the main thread flushes; the summed counts must come out exact.
 */
#include "core/pipeline/aggregator.h"
#include "core/pipeline/sender.h"
#include "test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS  4
#define RUNS     200
#define PER_RUN  500
#define CONTEXTS 250

typedef struct totals {
    double sum;   /* every count value flushed */
    double hists; /* every histogram sample, from .sum */
    size_t records;
} totals;

static void add_up(const mw_record *r, void *ud)
{
    totals *t = ud;
    t->records++;
    if (r->kind == MW_KIND_COUNT)
        t->sum += r->value;
    size_t n = strlen(r->name);
    if (n > 4 && strcmp(r->name + n - 4, ".sum") == 0)
        t->hists += r->value;
}

typedef struct worker {
    pthread_t tid;
    mw__aggregator *agg;
    int id;
    int failures;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    const char *const itags[] = {"shared:yes"};
    /* Same check id in every thread: all of them feed the same contexts. */
    mw__sender_opts o = {.check = "t", .check_id = "t:1", .tags = itags, .ntags = 1};
    mw__sender *s = mw__sender_new(w->agg, &o);
    char name[32], tag[32];
    for (int run = 0; run < RUNS && s; run++) {
        for (int i = 0; i < PER_RUN; i++) {
            int k = (i * 7 + run + w->id) % CONTEXTS;
            snprintf(name, sizeof(name), "m%d", k % 10);
            snprintf(tag, sizeof(tag), "k:%d", k);
            mw__str t = {tag, strlen(tag)};
            mw__str nm = {name, strlen(name)};
            mw_metric_type type = i % 5 == 0 ? MW_HISTOGRAM : MW_COUNT;
            if (mw__sender_metric(s, type, nm, 1, &t, 1, (mw__str){NULL, 0}) != MW_OK)
                w->failures++;
        }
        if (mw__sender_commit(s, 1000 + run) != PER_RUN)
            w->failures++;
        /* And the unbatched C path, on the same contexts. */
        const char *tags[] = {"shared:yes", "k:3"};
        if (mw__agg_metric(w->agg, MW_COUNT, "m3", 2, tags, 2, NULL, "t", "t:1", 1000 + run) !=
            MW_OK)
            w->failures++;
    }
    if (!s)
        w->failures++;
    mw__sender_free(s);
    return NULL;
}

int main(void)
{
    mw__agg_opts o = {.flush_interval = 10, .hist_aggregates = MW_HIST_SUM | MW_HIST_COUNT};
    mw__aggregator *agg = mw__agg_new(&o);
    worker w[THREADS];
    totals t = {0};
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.agg = agg, .id = i};
        CHECK(pthread_create(&w[i].tid, NULL, work, &w[i]) == 0);
    }
    /* Flush concurrently with the commits: nothing may be lost or doubled. */
    for (int i = 0; i < 50; i++)
        mw__agg_flush(agg, 1000, add_up, &t);
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(w[i].tid, NULL) == 0);
        CHECK(w[i].failures == 0);
    }
    mw__agg_flush(agg, 1000, add_up, &t);
    double per_thread_counts = RUNS * (PER_RUN * 4.0 / 5) + RUNS * 2.0;
    double per_thread_hists = RUNS * (PER_RUN / 5.0);
    CHECK(t.sum == THREADS * per_thread_counts);
    CHECK(t.hists == THREADS * per_thread_hists);
    CHECK(mw__agg_contexts(agg) == 2 * CONTEXTS);
    printf("%zu records\n", t.records);
    mw__agg_free(agg);
    return TEST_RESULT();
}
