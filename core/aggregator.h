/*
 * aggregator.h - the shared, thread-safe aggregator.
 *
 * One per engine. Contexts are keyed by metric name + sorted tags + host.
 * Datadog semantics: gauge keeps the last value, count sums, rate is
 * (v2-v1)/(t2-t1) between two submissions (first emits nothing, negative
 * dropped, flushed as a gauge), monotonic_count sums non-negative deltas
 * (first value skipped, flushed as a count), histogram flushes the
 * configured aggregates (max, median, avg, count as a rate, ...) and
 * percentiles as `<name>.<agg>` / `<name>.95percentile`. Service checks
 * and events are queued and flushed in the same pass. Contexts that got no
 * sample for `context_expiry` seconds are freed.
 *
 * Every function may be called from any thread, except mw__agg_free().
 */
#ifndef MW_AGGREGATOR_H
#define MW_AGGREGATOR_H

#include "moonwatch.h"
#include "core/sender.h"

#include <stddef.h>

typedef struct mw__agg_opts {
    double flush_interval;   /* seconds; the `interval` of flushed metrics */
    double context_expiry;   /* seconds without samples before a context goes */
    const char *host;        /* default host */
    unsigned hist_aggregates; /* bit set of MW_HIST_* */
    const double *hist_percentiles; /* e.g. {0.95} */
    size_t n_percentiles;
} mw__agg_opts;

enum {
    MW_HIST_MAX = 1 << 0,
    MW_HIST_MEDIAN = 1 << 1,
    MW_HIST_AVG = 1 << 2,
    MW_HIST_COUNT = 1 << 3,
    MW_HIST_SUM = 1 << 4,
    MW_HIST_MIN = 1 << 5,
    MW_HIST_DEFAULT = MW_HIST_MAX | MW_HIST_MEDIAN | MW_HIST_AVG | MW_HIST_COUNT,
};

/* Parses "max,median,avg,count" into MW_HIST_* bits; -1 on an unknown name. */
int mw__agg_parse_aggregates(const char *list);

/* `o` is copied. Returns NULL on OOM. */
mw__aggregator *mw__agg_new(const mw__agg_opts *o);
void mw__agg_free(mw__aggregator *agg);

/*
 * One metric sample straight from C (mw_engine_submit and the benchmark).
 * Tags need not be sorted. `check`/`check_id` may be NULL.
 */
mw_code mw__agg_metric(mw__aggregator *agg, mw_metric_type type,
                       const char *name, double value, const char *const *tags,
                       size_t ntags, const char *host, const char *check,
                       const char *check_id, double now);

/*
 * Flushes everything due at wall time `now`: calls `emit` once per record,
 * outside the aggregator's locks' critical sections where possible.
 * Returns the number of records emitted.
 */
size_t mw__agg_flush(mw__aggregator *agg, double now,
                     void (*emit)(const mw_record *rec, void *ud), void *ud);

/* Live contexts. */
size_t mw__agg_contexts(mw__aggregator *agg);

#endif
