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
 *
 * Details the flushed data depends on:
 *  - A context is also keyed by the submitting check instance (check and
 *    check_id) and the submitted type, so two instances reporting the same
 *    series keep separate rate/monotonic_count state, as Datadog's
 *    per-check samplers do.
 *  - Metric records carry timestamp = floor(flush time), interval =
 *    flush_interval, and the check/check_id of their context. Service
 *    checks and events keep the timestamp they were queued with.
 *  - rate: the rate between the last two submissions (sample time = the
 *    commit's `now`), the last flushed one included; equal times or a
 *    negative rate emit nothing.
 *  - monotonic_count: after a decrease (a counter reset) the flush still
 *    emits the sum of the other deltas, 0 if there were none.
 *  - histogram: median is the lower middle sample; percentile p is the
 *    nearest-rank sample (the smallest with at least p of all samples at
 *    or below it), named `<name>.<round(p*100)>percentile`. min, max, sum,
 *    avg and count are exact; the percentiles and median are computed
 *    over at most 2^20 samples per context per flush.
 *  - A count whose sum overflows to infinity is not flushed.
 *  - The flush must not be re-entered from its own `emit` callback;
 *    submitting (mw__agg_metric, mw__agg_record) from it is fine.
 */
#ifndef MW_AGGREGATOR_H
#define MW_AGGREGATOR_H

#include "moonwatch.h"
#include "core/pipeline/sender.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mw__agg_opts {
    double flush_interval;          /* seconds; the `interval` of flushed metrics */
    double context_expiry;          /* seconds without samples before a context goes */
    const char *host;               /* default host */
    unsigned hist_aggregates;       /* bit set of MW_HIST_* */
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

/* Parses "max,median,avg,count" into MW_HIST_* bits: MW_OK, or MW_EINVAL
 * on an unknown name (`*bits` untouched). */
mw_code mw__agg_parse_aggregates(const char *list, unsigned *bits);

/*
 * `o` is copied. Defaults for zero fields: flush_interval 15 s,
 * context_expiry 300 s, hist_aggregates MW_HIST_DEFAULT; host NULL is "".
 * hist_percentiles NULL means {0.95}; non-NULL with n_percentiles 0 means
 * none. At most 16 percentiles, each in (0, 1]; others are ignored.
 * Returns NULL on OOM.
 */
mw__aggregator *mw__agg_new(const mw__agg_opts *o);
void mw__agg_free(mw__aggregator *agg);

/*
 * One metric sample straight from C (mw_engine_submit and the benchmark).
 * Tags need not be sorted. `check`/`check_id` may be NULL.
 */
mw_code mw__agg_metric(mw__aggregator *agg, mw_metric_type type, const char *name, double value,
                       const char *const *tags, size_t ntags, const char *host, const char *check,
                       const char *check_id, double now);

/*
 * A prepared series: one context's key built once, so that each
 * submission only locks its shard, finds the context and updates it (the
 * fast path behind mw_series_*). The series is the caller's; it does not
 * keep its context alive (an idle context still expires), and must not
 * outlive `agg`. mw__agg_series_add() is thread-safe.
 */
typedef struct mw__agg_series mw__agg_series;
mw__agg_series *mw__agg_series_new(mw__aggregator *agg, mw_metric_type type, const char *name,
                                   const char *const *tags, size_t ntags, const char *host,
                                   mw_code *rc);
mw_code mw__agg_series_add(mw__agg_series *se, double value, double now);
void mw__agg_series_free(mw__agg_series *se);

/*
 * Flushes everything due at wall time `now`: calls `emit` once per record,
 * outside the aggregator's locks' critical sections where possible.
 * Returns the number of records emitted.
 */
size_t mw__agg_flush(mw__aggregator *agg, double now, void (*emit)(const mw_record *rec, void *ud),
                     void *ud);

/* Live contexts. */
size_t mw__agg_contexts(mw__aggregator *agg);

/* ------------------------------------------------------------------------
 * Below: what the sender (and the engine) use beyond the calls above.
 */

/* Longest metric / service check name, and host, in bytes. */
#define MW_NAME_MAX 200
#define MW_HOST_MAX 255
/* Most tags one sample may carry, instance tags included. */
#define MW_TAGS_MAX 1024

/*
 * One metric sample in canonical form, as the sender buffers it: the
 * header is followed in memory by `keylen` bytes of key,
 *   name \0 host \0 tag \0 tag \0 ...
 * with the tags sorted bytewise and unique (mw__agg_key_write() makes it).
 * The aggregator hashes no strings on commit: `hash` is
 * mw__agg_hash(key, keylen), computed where the key was written.
 */
typedef struct mw__agg_sample {
    uint64_t hash;
    double value;
    uint32_t keylen;
    uint16_t ntags;
    uint8_t type; /* mw_metric_type */
    uint8_t unused;
} mw__agg_sample;

#define MW__AGG_SAMPLE_KEY(s) ((const char *)((const mw__agg_sample *)(s) + 1))

/* The context-key hash: 64 bits, fast on short strings. */
uint64_t mw__agg_hash(const void *data, size_t n);

/* MW_OK when `s` is a usable name: 1..max bytes, no NUL. */
mw_code mw__agg_check_name(mw__str s, size_t max);

/* Bytes mw__agg_key_write() may need for these strings, at most. */
size_t mw__agg_key_bound(mw__str name, mw__str host, const mw__str *inst, size_t ninst,
                         const mw__str *tags, size_t ntags);

/*
 * Writes the canonical key to `dst` (room: mw__agg_key_bound()). `inst`
 * must be sorted and unique already; `tags` is sorted in place. Empty and
 * duplicate tags are dropped. Returns the key's length; `*nkept` gets the
 * number of tags in it.
 */
size_t mw__agg_key_write(char *dst, mw__str name, mw__str host, const mw__str *inst, size_t ninst,
                         mw__str *tags, size_t ntags, size_t *nkept);

/* Sorts bytewise and removes duplicates and empty strings; returns the new
 * count. */
size_t mw__agg_tags_canon(mw__str *tags, size_t n);

/*
 * Adds `n` samples submitted at wall time `now` by `check`/`check_id`
 * (either may be NULL) in one batch: each context shard is locked once
 * for all of its samples. Returns how many samples were taken (a sample
 * whose new context cannot be allocated is dropped).
 */
size_t mw__agg_commit(mw__aggregator *agg, const mw__agg_sample *const *samples, size_t n,
                      const char *check, const char *check_id, double now);

/*
 * Queues a service check or event record for the next flush; everything
 * it points to is copied. MW_ENOMEM on OOM or when the queue is full
 * (MW_AGG_QUEUE_MAX records). A metric record of kind gauge (what
 * discovery sources report, such as docker.containers.running) is not
 * queued: it is a gauge sample, as mw__agg_metric() of MW_GAUGE with its
 * name, value, tags, host (NULL: the default), check and check_id, taken
 * at its `timestamp` (Unix seconds, which must be set); MW_EINVAL for one
 * without a timestamp, any other metric kind, or what mw__agg_metric()
 * refuses.
 */
#define MW_AGG_QUEUE_MAX 100000
mw_code mw__agg_record(mw__aggregator *agg, const mw_record *rec);

/* The default host (never NULL; "" when none was set). */
const char *mw__agg_host(const mw__aggregator *agg);

/* Parses "0.95,0.99" (commas and/or spaces) into `out`, at most `max`
 * values, each in (0, 1], their number in `*count`. MW_OK, or MW_EINVAL
 * on a bad value or too many. */
mw_code mw__agg_parse_percentiles(const char *list, double *out, size_t max, size_t *count);

#endif
