/*
 * sink_prom.h - the Prometheus sink: keeps the latest value of every
 * series the flushes deliver and renders them in the text exposition
 * format 0.0.4 for GET /metrics.
 *
 * The mapping (README, "Operating it"):
 *  - names: '.' and every character outside [a-zA-Z0-9_] become '_', a
 *    leading digit gets a '_' before it, camelCase becomes camel_case;
 *    a gauge whose name ends in _total, _count, _sum or _bucket (kept by
 *    Prometheus for counters, histograms and summaries) gets "_value"
 *    appended: system.mem.total is system_mem_total_value;
 *  - tags become labels: "key:value" is key="value", a tag without a
 *    value tag="true"; label names are sanitised as metric names (a
 *    leading "__", reserved by Prometheus, becomes "tag__", and `le` and
 *    `quantile` become tag_le and tag_quantile); values are
 *    escaped (\\, \", \n) and bytes that are not UTF-8 become '?'. The
 *    record's host is the label `host`. Labels are sorted by name; two
 *    tags that give the same label name have their values joined by ','.
 *  - kinds: gauge and rate (histogram aggregates flush as those) are
 *    gauges; count (monotonic_count flushes as one) is a counter named
 *    `<name>_total` whose value is the sum of every flush since the
 *    series appeared;
 *  - service checks: moonwatch_service_check_status{check="<name>",...},
 *    a gauge of 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; events are not
 *    exposed;
 *  - a series not updated for `expiry` seconds is dropped (a counter
 *    that comes back starts from 0 again, which Prometheus reads as a
 *    reset); a record whose name is already a family of the other type
 *    is dropped.
 *
 * Threads: records arrive on the flushing thread and renders run on the
 * listener's; one mutex guards the table. Records must come from one
 * thread at a time (the engine's flushes are serialised).
 */
#ifndef MW_SINK_PROM_H
#define MW_SINK_PROM_H

#include "moonwatch.h"
#include "core/base/buf.h"

typedef struct mw__prom mw__prom;

/* NULL on OOM. `expiry` in seconds (<= 0: 300). */
mw__prom *mw__prom_new(double expiry);
void mw__prom_free(mw__prom *p);

/* Takes one flushed record at wall time `now`. MW_OK (also for records
 * that are not exposed); MW_EINVAL for a dropped one (a type conflict,
 * too many labels); MW_ENOMEM. */
mw_code mw__prom_add(mw__prom *p, const mw_record *rec, double now);
/* An mw_sink_fn: mw__prom_add(ud, rec, mw__wall()). */
void mw__prom_sink(const mw_record *rec, void *ud);

/* Drops what expired at `now`, then appends the exposition to `out`.
 * MW_OK, or MW_ENOMEM when `out` reached its cap. */
mw_code mw__prom_render(mw__prom *p, double now, mw__buf *out);

/* Series held now. */
size_t mw__prom_series(mw__prom *p);

#endif
