/*
 * sender.h - the typed samples one check instance submits during a run.
 *
 * Each instance owns one mw__sender. The Lua `mw` bindings append samples
 * to it while a run goes on (through the mw__sample_out interface of
 * lua/samples.h, which the sender implements); at the end of the run the scheduler commits
 * them into the shared aggregator in one batch (or discards them). Instance
 * tags (already sorted and deduplicated) are added to every sample by the
 * sender, so bindings pass only the sample's own tags.
 *
 * Strings passed in are borrowed for the call and copied into the sender's
 * own arena. A sender is used by one thread at a time (the worker running
 * its instance); the aggregator it commits into is shared.
 *
 * Validation (MW_EINVAL): names 1..MW_NAME_MAX bytes; no string may hold a
 * NUL byte; values finite; host at most MW_HOST_MAX bytes; at most
 * MW_TAGS_MAX tags with the instance's; service check status 0..3; event
 * title non-empty, alert_type error|warning|info|success (default info),
 * priority normal|low (default normal). Empty and duplicate tags are
 * dropped. Service checks take the commit's time as their timestamp,
 * events their own (or the commit's when 0).
 */
#ifndef MW_SENDER_H
#define MW_SENDER_H

#include "moonwatch.h"
#include "lua/samples.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mw__aggregator mw__aggregator;
typedef struct mw__sender mw__sender;

typedef struct mw__sender_opts {
    const char *check;       /* check name, e.g. "http_check" */
    const char *check_id;    /* "<check>:<hash>" */
    const char *const *tags; /* instance tags, sorted and deduplicated */
    size_t ntags;
    const char *host; /* default host of samples; NULL = engine's */
    size_t max_bytes; /* cap on what one run may buffer; 0: 8 MiB */
} mw__sender_opts;

/* Returns NULL on OOM. `agg` is borrowed and must outlive the sender. */
mw__sender *mw__sender_new(mw__aggregator *agg, const mw__sender_opts *o);
void mw__sender_free(mw__sender *s);

/*
 * Buffers one sample. `host.p` NULL means the sender's default host.
 * Returns MW_OK, MW_EINVAL (bad name: empty, or a non-finite value) or
 * MW_ENOMEM when the run's buffer would pass max_bytes.
 */
mw_code mw__sender_metric(mw__sender *s, mw_metric_type type, mw__str name, double value,
                          const mw__str *tags, size_t ntags, mw__str host);
mw_code mw__sender_service_check(mw__sender *s, mw__str name, int status, const mw__str *tags,
                                 size_t ntags, mw__str message);
mw_code mw__sender_event(mw__sender *s, const mw__event_in *ev);

/* The sender as the sandbox's sample destination (lua/samples.h). */
mw__sample_out mw__sender_out(mw__sender *s);

/* Samples buffered in the current run, and their bytes. */
size_t mw__sender_pending(const mw__sender *s);
size_t mw__sender_bytes(const mw__sender *s);

/* Moves the buffered samples into the aggregator, stamped with wall time
 * `now`. Returns how many were committed. */
size_t mw__sender_commit(mw__sender *s, double now);
/* Drops the buffered samples (a failed run still commits: the scheduler
 * decides; discard is for teardown). */
void mw__sender_discard(mw__sender *s);

#endif
