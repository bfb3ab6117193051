/*
 * docker.h - the Docker source: keeps the set of running containers of
 * one Docker engine as services, live, from the Engine API, and reports
 * what it sees of the engine (events, docker.service_up, the container
 * counts per image) as records.
 *
 * Start (and every reconnect): negotiate the API version (GET /version:
 * min(our max 1.43, ApiVersion), versioned paths /v1.NN/...), open the
 * /events stream filtered to containers (with `since` = the last applied
 * timeNano after a reconnect), then list running containers and inspect
 * each (bounded concurrency), then apply the events that queued up
 * meanwhile, and report `synced`. Nothing started in between is missed;
 * a container seen in the list but gone from `docker ps` since a previous
 * sync is removed (the resync diff), so after any reconnect the set
 * equals `docker ps`.
 *
 * Events: start, unpause, health_status: *, rename, update -> inspect and
 * (re)build the service; die, stop, destroy, pause -> remove it. `kill`
 * changes nothing by itself: a signal that ends the process is always
 * followed by `die`, and one that does not (SIGHUP...) leaves a running
 * container, which stays a service. An inspect that finds the container
 * not running (exited, paused, restarting) removes it too. Paused
 * containers are not services. Events are de-duplicated over the
 * inclusive `since` (mw__docker_resume). A 404 on inspect means the
 * container is gone. An inspect that times out (the engine busy with that
 * container) is asked again until it answers or an event settles the
 * container, without holding up the others; only a refused or broken
 * connection tears the connection down.
 *
 * Events that arrive while a sync runs are queued in order (not dropped)
 * and applied once the listed containers are inspected. An inspect
 * already in flight for a container is never duplicated: a newer event
 * asks for one more when it returns, and an answer that a later die /
 * stop / destroy / pause overtook is dropped (per-container sequence
 * numbers), so it cannot bring the container back. A service is passed
 * to `upsert` only when new or when its digest changed; a health or state
 * change alone updates the held copy silently.
 *
 * Early start: a live `create` is inspected too, and the answer kept
 * until the container starts (or goes). Its `start` then upserts at once
 * a provisional service from it (pid 0, no addresses yet), without
 * waiting for the engine to finish the start and answer the inspect that
 * follows, which then replaces it. The reconciler applies a provisional
 * service only when all of its configs resolve without pid or addresses.
 *
 * Disconnects: the stream ending or failing, or the engine being down at
 * start, leads to a reconnect after a capped, jittered backoff (100 ms
 * doubling to 10 s, +-20 %), reported through `connected`.
 *
 * Containers excluded by the filter, and moonwatch's own container (its
 * id read from /proc/self/cgroup or /proc/self/mountinfo) unless
 * `include_self`, never become services.
 *
 * The source also reports Docker events through `cbs.record`: `oom`, `die`
 * with a non-zero exit code, health turning unhealthy, and restart loops
 * (3 starts of one container within 60 s) as events with
 * source_type_name "docker" and the container's tags; and the service
 * check `docker.service_up` (OK while connected, CRITICAL with the reason
 * when not) on every (re)connect or failure and every `service_up_interval`.
 *
 * Container counts: on the same timer, while live (not during a sync,
 * not while disconnected), one GET /containers/json?all=1 (the request
 * timeout, the list's size cap, never two at once: a tick that finds the
 * last one in flight is skipped) becomes the gauges of docker_counts.h,
 * `docker.containers.running` / `.stopped` per image and their `.total`s,
 * as Datadog's check sends them: every listed container counts, the
 * filter and the own container notwithstanding. A list that fails (an
 * error status, a timeout, not JSON) sends no counts that time and is
 * logged once until the counts are sent again; it never tears the
 * connection down and touches neither the services nor docker.service_up.
 *
 * Each `die` goes to `cbs.exited` too (when set, not one_shot): the exit
 * code, and whether the OOM killer did it - an `oom` event came first,
 * or, for an exit 137 without one, the dead container's inspect says
 * State.OOMKilled (the exit is then said once that inspect answered).
 * Each `start` goes to `cbs.started` (when set, not one_shot): a
 * container restarted in place (a restart policy, `docker start` of an
 * exited one) has the same id, and its next exit is another one.
 *
 * Ownership: the source owns its services; a service passed to `upsert`
 * and a record passed to `record` are borrowed for the call (copy what
 * you keep). Everything runs on the loop thread. The opts' strings are
 * copied; loop, http, log and filter are borrowed and must outlive the
 * source.
 */
#ifndef MW_DOCKER_H
#define MW_DOCKER_H

#include "moonwatch.h"
#include "core/base/http.h"
#include "core/base/log.h"
#include "core/base/loop.h"
#include "discovery/filter.h"
#include "discovery/service.h"
#include "discovery/source.h"

typedef struct mw__docker mw__docker;

typedef struct mw__docker_opts {
    const char *host; /* "unix:///path" or "tcp://host:port";
                       * NULL: $DOCKER_HOST, else
                       * unix:///var/run/docker.sock */
    mw__loop *loop;
    mw__http *http;
    const mw__log *log;
    const mw__filter *filter; /* NULL: none */
    int include_self;
    double request_timeout;     /* seconds per non-stream request; 0: 10 */
    size_t max_inflight;        /* concurrent inspects; 0: 32 */
    double service_up_interval; /* seconds; 0: 15 */
    int one_shot;               /* version + list + inspect once, report synced,
                                 * no events stream, no reconnect, no
                                 * records (configcheck); on a
                                 * failure `connected(0, why)` is the last
                                 * call */
    const char *self_id;        /* the id of the container moonwatch runs in;
                                 * NULL: read from /proc/self/cgroup, then
                                 * /proc/self/mountinfo (tests set it) */
    mw__source_cbs cbs;         /* record NULL: no events, service checks or
                                 * container counts */
} mw__docker_opts;

/* Makes the source into `*out` and starts connecting (asynchronously, on
 * the loop: no callback runs before the next loop iteration). MW_OK;
 * MW_EINVAL for a malformed host; MW_ENOMEM. On error `*out` is NULL and
 * `*err` (when `err` is not NULL) says why (caller frees). */
mw_code mw__docker_new(const mw__docker_opts *o, mw__docker **out, char **err);
/* Stops every transfer and timer and frees the services, without calling
 * `remove` for them. Not from inside one of the source's callbacks. */
void mw__docker_free(mw__docker *d);

/* Services held now. */
size_t mw__docker_count(const mw__docker *d);
/* A held service by id ("docker://..."), borrowed; NULL when absent. */
const mw__service *mw__docker_get(const mw__docker *d, const char *id);

typedef struct mw__docker_stats {
    uint64_t events;     /* events applied */
    uint64_t dup_events; /* dropped as replays */
    uint64_t bad_events; /* malformed lines */
    uint64_t inspects;
    uint64_t reconnects;
    uint64_t syncs;
    uint64_t counts;  /* container counts reported */
    uint64_t tracked; /* containers with an entry: services, pending
                       * inspects, and recent starts (restart loops) */
    int connected;
    char api_version[16];
} mw__docker_stats;
void mw__docker_stats_get(const mw__docker *d, mw__docker_stats *out);

/* Parses a DOCKER_HOST value into a base URL ("http://localhost" or
 * "http://host:port") and a unix socket path (NULL for tcp), both malloc'd.
 * MW_OK; MW_EINVAL for a malformed or unsupported value; MW_ENOMEM. On
 * error both are NULL and `*err` (when `err` is not NULL) says why
 * (caller frees). */
mw_code mw__docker_host_parse(const char *host, char **base_url, char **socket_path, char **err);

/* Finds a container id in the text of /proc/self/cgroup or
 * /proc/self/mountinfo: 64 hex digits right after "/docker/",
 * "/containers/" or "/docker-" (systemd's docker-<id>.scope). Writes it
 * to `out` and returns 1, or returns 0. */
int mw__docker_self_id_parse(const char *text, char out[65]);

/* Our own container id from /proc/self/cgroup, else /proc/self/mountinfo,
 * into `out`; returns the file it came from, or NULL (out is "") when we
 * are not in a container. */
const char *mw__docker_self_id_read(char out[65]);

#endif
