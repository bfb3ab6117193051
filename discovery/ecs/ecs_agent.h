/*
 * ecs_agent.h - the ECS source on EC2: the task model of one Amazon ECS
 * container agent, kept live from its introspection API, so that the
 * Docker services of task containers can carry their task identity.
 *
 * It finds no services of its own (the Docker source finds the
 * containers): it tells what it knows about containers by their Docker
 * id, through `cbs.annotate`, and whoever joins the two (discovery.c)
 * reads the model with mw__ecs_agent_task_of().
 *
 * Requests (every one with a timeout, never to a link-local address):
 *  - GET /v1/metadata (cluster, container instance ARN, agent version):
 *    at start, after every outage, and when told the agent restarted
 *    (mw__ecs_agent_restarted: its container started again);
 *  - GET /v1/tasks every `poll_interval`, diffed against the model: a
 *    task whose JSON is unchanged (order-insensitive digest) is not read
 *    again; a new, changed or gone task has each of its containers
 *    annotated, after the whole answer is applied. One malformed task is
 *    skipped (its problem logged once, not once per poll); the others
 *    are applied;
 *  - GET /v1/tasks?dockerid=<id> at once for a container the model does
 *    not know (mw__ecs_agent_lookup: Docker reported a task container
 *    that started since the last poll), at most `max_lookups` in flight,
 *    never two for one id, not again for an id the agent answered 404
 *    until the next poll, none before the first poll answered (it covers
 *    every container) nor during an outage. Nothing waits for it: the
 *    container's labels
 *    give its identity meanwhile, and the answer only confirms it.
 *
 * Task events (ecs_events.h): after each poll every task of the model is
 * handed to `events`, and each task it dropped is said gone.
 *
 * Outages: a request that fails (refused, timed out, an HTTP error, an
 * answer that is not a task list) keeps the model as it was and starts
 * an outage: one warning, `connected(0, why)`, the service check
 * ecs.agent.up CRITICAL with the reason, retries after a capped,
 * jittered backoff (`backoff_min` doubling to `backoff_max`, +-20 %),
 * metadata first. Failures within an outage are logged at debug level;
 * the first success says how long it lasted. ecs.agent.up also goes out
 * every `service_up_interval`. Lookups never start or end an outage.
 *
 * one_shot (configcheck): metadata and one poll, then `synced`, success
 * or not; no lookups, no retries, no records.
 *
 * Ownership: the source owns its model and its strings (copied from the
 * opts); loop, http and log are borrowed and outlive it. Everything runs
 * on the loop thread; nothing is called back from inside
 * mw__ecs_agent_new(), lookup() or restarted().
 */
#ifndef MW_ECS_AGENT_H
#define MW_ECS_AGENT_H

#include "moonwatch.h"
#include "core/base/http.h"
#include "core/base/log.h"
#include "core/base/loop.h"
#include "discovery/ecs/ecs_events.h"
#include "discovery/ecs/ecs_task.h"
#include "discovery/source.h"

#define MW_ECS_AGENT_UP      "ecs.agent.up"
#define MW_ECS_AGENT_DEFAULT "http://localhost:51678"

typedef struct mw__ecs_agent mw__ecs_agent;

typedef struct mw__ecs_agent_opts {
    const char *url; /* "http://host:port" of the introspection API;
                      * NULL: MW_ECS_AGENT_DEFAULT */
    mw__loop *loop;
    mw__http *http;
    const mw__log *log;
    double poll_interval;       /* seconds; 0: 5 */
    double request_timeout;     /* seconds per request; 0: 5 */
    double backoff_min;         /* seconds; 0: 0.5 */
    double backoff_max;         /* seconds; 0: 10 */
    double service_up_interval; /* seconds; 0: 15 */
    size_t max_lookups;         /* ?dockerid= in flight; 0: 16 */
    int one_shot;
    mw__ecs_events *events; /* each poll's tasks and those gone; NULL: none */
    /* upsert and remove are not used; annotate(cid) when what the model
     * says of container `cid` may have changed; synced after the first
     * poll that answered (one_shot: after the poll, answered or not);
     * connected on each change; record: ecs.agent.up (NULL: none). */
    mw__source_cbs cbs;
} mw__ecs_agent_opts;

/* Makes the source and starts (on the next loop iteration). MW_OK;
 * MW_EINVAL for a URL that is not http(s)://; MW_ENOMEM. On error `*out`
 * is NULL and `*err` (when not NULL) says why (caller frees). */
mw_code mw__ecs_agent_new(const mw__ecs_agent_opts *o, mw__ecs_agent **out, char **err);
/* Stops every request and timer and frees the model, without callbacks.
 * Not from inside one of its callbacks. */
void mw__ecs_agent_free(mw__ecs_agent *a);

/* The task the model says container `cid` belongs to, and that
 * container in it (`*ctr`); NULL when the model does not know `cid`.
 * Borrowed until the next loop iteration's callbacks. */
const mw__ecs_task *mw__ecs_agent_task_of(const mw__ecs_agent *a, const char *cid,
                                          const mw__ecs_container **ctr);
/* The task of ARN `arn` in the model, NULL when it has none. Borrowed as
 * above. */
const mw__ecs_task *mw__ecs_agent_task(const mw__ecs_agent *a, const char *arn);
/* The agent's cluster as /v1/metadata said it (a name or an ARN), NULL
 * before it answered. Borrowed. */
const char *mw__ecs_agent_cluster(const mw__ecs_agent *a);

/* Asks GET /v1/tasks?dockerid=`cid` now, unless the model knows `cid`,
 * one is in flight, the agent answered 404 for it since the last poll,
 * no poll answered yet, the agent is down, or `max_lookups` are in
 * flight. */
void mw__ecs_agent_lookup(mw__ecs_agent *a, const char *cid);
/* The agent restarted: its metadata is read again, and its tasks, now. */
void mw__ecs_agent_restarted(mw__ecs_agent *a);

typedef struct mw__ecs_agent_stats {
    uint64_t polls;         /* /v1/tasks answers applied */
    uint64_t failures;      /* requests of the poll cycle that failed */
    uint64_t outages;       /* outages begun */
    uint64_t metadata;      /* /v1/metadata answers read */
    uint64_t tasks_read;    /* tasks read into the model */
    uint64_t tasks_skipped; /* tasks whose JSON had not changed */
    uint64_t bad_tasks;     /* tasks skipped as malformed */
    uint64_t annotated;     /* annotate calls */
    uint64_t lookups;       /* ?dockerid= requests */
    uint64_t lookups_found;
    uint64_t lookups_404;
    uint64_t lookups_skipped; /* not asked: known, in flight, 404'd, down, or at the cap */
    size_t tasks, containers; /* in the model now */
    int up;                   /* -1 not known yet, 0, 1 */
} mw__ecs_agent_stats;
void mw__ecs_agent_stats_get(const mw__ecs_agent *a, mw__ecs_agent_stats *out);

#endif
