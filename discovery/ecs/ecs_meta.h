/*
 * ecs_meta.h - the ECS task metadata source: the task moonwatch runs in,
 * as its task metadata endpoint describes it (v4, or v3: the URL of
 * $ECS_CONTAINER_METADATA_URI_V4, else $ECS_CONTAINER_METADATA_URI; see
 * ecs_where.h), kept live by polling.
 *
 * Requests (each with a timeout; the URL is the one the ECS agent set,
 * link-local on AWS):
 *  - GET ${URI} once, to learn moonwatch's own container (its DockerId),
 *    unless `include_self`;
 *  - GET ${URI}/task (or /taskWithTags with `with_tags`) every
 *    `poll_interval`, diffed against the task held.
 *
 * Two roles, chosen by its owner:
 *  - `services` (Fargate, or no Docker engine here): each container of
 *    Type NORMAL and KnownStatus RUNNING, with a Docker id, not filtered
 *    out and not moonwatch's own, is a service docker://<DockerId>
 *    (origin MW_SVC_TASK_METADATA): its name (DockerName, else Name), its
 *    Image, its Labels (the Docker labels), its network's first IPv4
 *    address, its Ports. Every service is upserted again when the task
 *    changed (its identity may have), removed when it goes;
 *  - identity only (a Docker engine here finds the same containers): no
 *    services; `annotate` is called for each container of a task that
 *    changed, as the agent source does.
 * Either way mw__ecs_meta_task_of() gives a container's task, and each
 * poll's task is handed to `events` (ecs_events.h).
 *
 * Failures: a refused or failed request, or an HTTP error, keeps what was
 * held and starts an outage (one warning, retries after a capped,
 * jittered backoff: backoff_min doubling to backoff_max, +-20 %), the
 * first success says how long it lasted. A payload that is not a task (not
 * JSON, Containers not an array, a field of the wrong type) is an error
 * named once (not once per poll) and keeps the last good task; polling
 * goes on. Unknown and omitted fields are tolerated.
 *
 * one_shot (configcheck): self and one poll, then `synced`, answered or
 * not; no retries, no events.
 *
 * Ownership: the source owns its task, its services and its strings
 * (copied from the opts); loop, http, log, filter and events are
 * borrowed and outlive it. Loop thread only; nothing is called back from
 * inside mw__ecs_meta_new().
 */
#ifndef MW_ECS_META_H
#define MW_ECS_META_H

#include "moonwatch.h"
#include "core/base/http.h"
#include "core/base/log.h"
#include "core/base/loop.h"
#include "discovery/ecs/ecs_events.h"
#include "discovery/ecs/ecs_task.h"
#include "discovery/filter.h"
#include "discovery/source.h"

typedef struct mw__ecs_meta mw__ecs_meta;

typedef struct mw__ecs_meta_opts {
    const char *url; /* the endpoint, without trailing '/' */
    mw__loop *loop;
    mw__http *http;
    const mw__log *log;
    const mw__filter *filter; /* NULL: none */
    int include_self;         /* moonwatch's own container may be a service */
    int services;             /* 1: its containers are services (see above) */
    int with_tags;            /* GET /taskWithTags (ecs_collect_resource_tags) */
    double poll_interval;     /* seconds; 0: 5 */
    double request_timeout;   /* seconds; 0: 5 */
    double backoff_min;       /* seconds; 0: 0.5 */
    double backoff_max;       /* seconds; 0: 10 */
    int one_shot;
    mw__ecs_events *events; /* NULL: none */
    /* upsert / remove (services only), synced after the first poll
     * (answered, malformed or, one_shot, failed), connected on each
     * change, annotate (identity only). record is not used. */
    mw__source_cbs cbs;
} mw__ecs_meta_opts;

/* Makes the source and starts (on the next loop iteration). MW_OK;
 * MW_EINVAL for a URL that is not http(s)://; MW_ENOMEM. On error `*out`
 * is NULL and `*err` (when not NULL) says why (caller frees). */
mw_code mw__ecs_meta_new(const mw__ecs_meta_opts *o, mw__ecs_meta **out, char **err);
/* Stops every request and timer and frees everything, without callbacks.
 * Not from inside one of its callbacks. */
void mw__ecs_meta_free(mw__ecs_meta *m);

/* The task held when it lists container `cid`, and that container
 * (`*ctr`); NULL otherwise. Borrowed until the next poll. */
const mw__ecs_task *mw__ecs_meta_task_of(const mw__ecs_meta *m, const char *cid,
                                         const mw__ecs_container **ctr);
/* The task held (NULL before the first good answer), and the service of
 * id "docker://<id>" (NULL when none). Borrowed until the next poll. */
const mw__ecs_task *mw__ecs_meta_task(const mw__ecs_meta *m);
const mw__service *mw__ecs_meta_get(const mw__ecs_meta *m, const char *id);

typedef struct mw__ecs_meta_stats {
    uint64_t polls;     /* good task answers */
    uint64_t changes;   /* answers whose task differed from the one held */
    uint64_t malformed; /* answers that were not a task */
    uint64_t failures;  /* requests that failed */
    uint64_t outages;
    size_t services;              /* held now */
    int up;                       /* -1 not known yet, 0, 1 */
    char self[MW_ECS_ID_MAX + 1]; /* moonwatch's own DockerId, "" when not known */
} mw__ecs_meta_stats;
void mw__ecs_meta_stats_get(const mw__ecs_meta *m, mw__ecs_meta_stats *out);

#endif
