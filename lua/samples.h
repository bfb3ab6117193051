/*
 * samples.h - where what a check emits goes: the interface the sandbox
 * owns and the pipeline implements.
 *
 * The `mw` bindings (and the OpenMetrics scraper) hand each metric,
 * service check and event of a run to a mw__sample_out; the engine's
 * per-instance sender (core/pipeline/sender.h) is the one implementation,
 * so nothing in lua/ knows the aggregator. Strings are borrowed for the
 * call. Each call returns MW_OK, MW_EINVAL for a sample that is not
 * valid (the rules are the sender's: empty or long name, a NUL byte, a
 * non-finite value, too many tags, a bad status or alert type) or
 * MW_ENOMEM when the run's buffer is full.
 */
#ifndef MW_SAMPLES_H
#define MW_SAMPLES_H

#include "moonwatch.h"
#include "core/base/util.h"

#include <stddef.h>

/* An event as a check submits it; absent strings have p == NULL. */
typedef struct mw__event_in {
    mw__str title, text, alert_type, priority, aggregation_key, source_type_name;
    const mw__str *tags;
    size_t ntags;
    double timestamp; /* 0: now */
} mw__event_in;

typedef struct mw__sample_ops {
    /* `host.p` NULL: the instance's default host. */
    mw_code (*metric)(void *ud, mw_metric_type type, mw__str name, double value,
                      const mw__str *tags, size_t ntags, mw__str host);
    mw_code (*service_check)(void *ud, mw__str name, int status, const mw__str *tags, size_t ntags,
                             mw__str message);
    mw_code (*event)(void *ud, const mw__event_in *ev);
} mw__sample_ops;

/* One destination: `ops` over `ud`. A NULL `ops` takes nothing. */
typedef struct mw__sample_out {
    const mw__sample_ops *ops;
    void *ud;
} mw__sample_out;

#endif
