/*
 * forwarder.h - delivers Datadog payloads to the intake, in order, from
 * a bounded queue, on a loop thread of its own: the flushing thread only
 * queues (mw__fwd_push() never waits on the network).
 *
 * One payload is in flight at a time, the oldest, so the intake sees
 * them in the order they were queued. A network error, a timeout, a 5xx,
 * 408 or 429 keeps the payload at the head and retries it after a capped,
 * jittered backoff (a 429's or 503's Retry-After in seconds is honoured,
 * up to 10 minutes); any other status drops it ("rejected"), logging the
 * intake's message. When the queue passes `queue_max` bytes the oldest
 * payloads not in flight are dropped ("queue_full"). Outages and drops
 * are logged once per outage, not once per payload.
 *
 * The API key goes into the DD-API-KEY header only: never into the URL
 * or a log line (the intake's messages are logged with it blanked out).
 *
 * Ownership: the forwarder owns its thread, loop, HTTP client, queue and
 * a copy of its options' strings; `log` is borrowed and must outlive it.
 * mw__fwd_push() takes the payload. Every call is thread-safe.
 */
#ifndef MW_SINKS_FORWARDER_H
#define MW_SINKS_FORWARDER_H

#include "moonwatch.h"
#include "core/base/log.h"
#include "core/sinks/datadog.h"

#include <stdint.h>

/* Why payloads were dropped: the `reason:` tag of moonwatch.forwarder.dropped. */
typedef enum mw__fwd_reason {
    MW_FWD_QUEUE_FULL = 0, /* the queue passed its cap: the oldest went */
    MW_FWD_REJECTED,       /* the intake refused it (a 4xx but 408/429) */
    MW_FWD_SHUTDOWN,       /* still queued when shutdown_timeout ran out */
    MW_FWD_TOO_LARGE,      /* a record too large for any payload */
    MW_FWD_NREASONS
} mw__fwd_reason;

typedef struct mw__fwd_opts {
    const char *url;     /* the intake's base URL, "https://api.datadoghq.com" */
    const char *api_key; /* sent in the DD-API-KEY header only */
    const mw__log *log;
    size_t queue_max;    /* bytes of compressed payloads; 0: 32 MiB */
    double timeout;      /* one request, seconds; 0: 20 */
    double backoff_base; /* first retry's delay, seconds; 0: 1 */
    double backoff_max;  /* cap on a retry's delay, seconds; 0: 64 */
} mw__fwd_opts;

typedef struct mw__fwd_stats {
    uint64_t sent_payloads, sent_items;
    uint64_t retries; /* failed attempts that were retried */
    uint64_t dropped_payloads[MW_FWD_NREASONS];
    uint64_t dropped_items[MW_FWD_NREASONS]; /* points, service checks, events */
    uint64_t queued_payloads, queued_bytes;  /* now, the one in flight included */
    uint64_t queue_max;                      /* bytes: the bound */
    uint64_t failing_since; /* mw__mono_ns() of this outage's first failure; 0: delivering */
    char last_error[160];   /* the outage's latest failure ("POST /api/v1/series: HTTP 503") */
} mw__fwd_stats;

typedef struct mw__fwd mw__fwd;

/* Starts a forwarder into `*out`: MW_OK; MW_EINVAL without a URL or key;
 * MW_ENOMEM; MW_ESYS when its loop or thread cannot be made; MW_EIO when
 * libcurl cannot start. */
mw_code mw__fwd_new(const mw__fwd_opts *o, mw__fwd **out);

/* Waits up to `timeout` seconds for the queue to empty, then stops the
 * thread; what is left is dropped ("shutdown"), counted and logged. */
void mw__fwd_free(mw__fwd *f, double timeout);

/* Queues `p` (taken) behind the others. */
void mw__fwd_push(mw__fwd *f, mw__dd_payload *p);

/* Waits up to `timeout` seconds for every queued payload to be delivered
 * or dropped, retrying promptly meanwhile (backoff capped at 1 s).
 * MW_OK when the queue is empty, MW_ETIMEOUT otherwise. */
mw_code mw__fwd_drain(mw__fwd *f, double timeout);

/* Counts `items` dropped before they reached the queue. */
void mw__fwd_count_drop(mw__fwd *f, mw__fwd_reason why, size_t items);

void mw__fwd_stats_get(mw__fwd *f, mw__fwd_stats *out);

/* "queue_full", "rejected", "shutdown", "too_large". */
const char *mw__fwd_reason_name(mw__fwd_reason why);

#endif
