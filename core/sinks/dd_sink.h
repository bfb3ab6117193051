/*
 * dd_sink.h - the Datadog sink: the engine's records, at each flush,
 * built into intake payloads (datadog.h) and queued on a forwarder
 * (forwarder.h) that delivers them.
 *
 * Settings left NULL / 0 by the engine come from the environment, as the
 * Datadog Agent reads it: DD_API_KEY, DD_DD_URL (a full base URL) or
 * DD_SITE (the intake is then https://api.<site>, by default
 * https://api.datadoghq.com), DD_TAGS (space- or comma-separated).
 *
 * Ownership: the sink owns its builder and forwarder and copies its
 * settings; `log` is borrowed. mw__dd_sink_record() is a mw_sink_fn for
 * the flushing thread, which calls mw__dd_sink_flushed() after the last
 * record of each flush (the engine's flush lock keeps them in one
 * thread at a time); the other calls are thread-safe.
 */
#ifndef MW_SINKS_DD_SINK_H
#define MW_SINKS_DD_SINK_H

#include "moonwatch.h"
#include "core/base/log.h"
#include "core/sinks/forwarder.h"

typedef struct mw__dd_sink_opts {
    const char *api_key; /* NULL: $DD_API_KEY */
    const char *url;     /* NULL: $DD_DD_URL, else https://api.<site> */
    const char *site;    /* NULL: $DD_SITE, else datadoghq.com */
    const char *tags;    /* NULL: $DD_TAGS */
    const char *host;    /* for records without one */
    const mw__log *log;
    size_t queue_max;    /* bytes; 0: 32 MiB */
    double timeout;      /* one request, seconds; 0: 20 */
    double backoff_base; /* first retry's delay, seconds; 0: 1 */
    double backoff_max;  /* seconds; 0: 64 */
    size_t max_json;     /* payload cut; 0: MW_DD_MAX_JSON (tests make it small) */
} mw__dd_sink_opts;

typedef struct mw__dd_sink mw__dd_sink;

/* The API key the sink would use (opts', else $DD_API_KEY), or NULL when
 * none is set: the sink is off then. Borrowed. */
const char *mw__dd_api_key(const char *configured);

/* A sink into `*out`. MW_EINVAL without an API key or with a bad URL,
 * `*err` saying why (never with the key in it; caller frees); MW_ENOMEM;
 * MW_ESYS / MW_EIO as mw__fwd_new(). */
mw_code mw__dd_sink_new(const mw__dd_sink_opts *o, mw__dd_sink **out, char **err);

/* Waits up to `timeout` s for the queue, then frees (see mw__fwd_free()). */
void mw__dd_sink_free(mw__dd_sink *s, double timeout);

/* mw_sink_fn: `ud` is the sink. */
void mw__dd_sink_record(const mw_record *rec, void *ud);

/* Completes this flush's payloads and queues them. */
void mw__dd_sink_flushed(mw__dd_sink *s);

/* Calls `fn` once per drop reason with the items dropped since the last
 * call (0 included) and the tag "reason:<name>": the engine submits them
 * as the count moonwatch.forwarder.dropped. */
void mw__dd_sink_report(mw__dd_sink *s, void (*fn)(void *ud, const char *tag, double n), void *ud);

/* mw__fwd_drain() of its forwarder. */
mw_code mw__dd_sink_drain(mw__dd_sink *s, double timeout);

/* Its forwarder's counters. */
void mw__dd_sink_stats(mw__dd_sink *s, mw__fwd_stats *out);

/* The intake's base URL in use (no key in it). Borrowed. */
const char *mw__dd_sink_url(const mw__dd_sink *s);

#endif
