/*
 * source.h - what every discovery source (Docker, ECS) hands upward, and
 * nothing else: services as they appear, change and go, what it knows of
 * services another source found (the ECS agent's task identity of Docker
 * containers), its sync and connection state, and records (events,
 * service checks, gauges) about what it watches, such as Docker's OOM
 * kills, docker.service_up, docker.containers.running and ecs.agent.up.
 *
 * Discovery owns this interface; the engine implements `record` by
 * queueing the record for its next flush (a gauge becomes a gauge sample,
 * as a check's), so no source ever reaches into the aggregator.
 * Everything passed is borrowed for the call (copy what you keep). All
 * calls come from the discovery loop's thread.
 */
#ifndef MW_SOURCE_H
#define MW_SOURCE_H

#include "moonwatch.h"
#include "discovery/service.h"

/* An event, service check or gauge (type MW_RECORD_METRIC, kind
 * MW_KIND_GAUGE, `timestamp` set) for the engine's next flush; `host`
 * NULL means the engine's host name. MW_OK, or why the record was
 * dropped (MW_ENOMEM: out of memory or the queue is full; MW_EINVAL: a
 * metric record of another kind or a bad name, value or tag). */
typedef mw_code (*mw__record_fn)(void *ud, const mw_record *rec);

/* A container the source watched ended (Docker's `die`). */
typedef struct mw__source_exit {
    const char *cid;
    const mw__service *svc; /* as held, NULL when none (filtered out, gone) */
    const cJSON *labels;    /* its labels: the service's, else the event's
                             * attributes (which hold every label); may be NULL */
    const char *name;       /* the container's name, NULL when unknown */
    const char *image;      /* its image as written, NULL when unknown */
    int exit_code;          /* -1 when not given */
    int oom;                /* killed by the OOM killer */
    int64_t time;           /* Unix seconds */
} mw__source_exit;

typedef struct mw__source_cbs {
    /* A service appeared or changed (its digest differs). */
    void (*upsert)(void *ud, const mw__service *svc);
    /* A service is gone (`id` as in mw__service.id). */
    void (*remove)(void *ud, const char *id);
    /* The set now equals what the source watches (after the initial
     * sync and after every reconnect's resync). */
    void (*synced)(void *ud);
    /* Connection state changed; `why` is NULL when up. Reported once per
     * change, not per retry. */
    void (*connected)(void *ud, int up, const char *why);
    /* Records about what the source watches; NULL: none are made. */
    mw__record_fn record;
    /* For a source that describes containers another source finds (the
     * ECS agent on EC2, by Docker id): what it says of container `cid`
     * may have changed, so the owner applies that container's service
     * again with it. NULL from sources of services only. */
    void (*annotate)(void *ud, const char *cid);
    /* A container ended (Docker: each `die`, with the exit code and
     * whether the OOM killer did it). NULL: not wanted. */
    void (*exited)(void *ud, const mw__source_exit *x);
    /* A container started, or started again in place (Docker: each
     * `start`): what is known of it, as for `exited` (`exit_code` -1,
     * `oom` 0). NULL: not wanted. */
    void (*started)(void *ud, const mw__source_exit *x);
    void *ud;
} mw__source_cbs;

#endif
