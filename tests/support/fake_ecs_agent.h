/*
 * fake_ecs_agent.h - a test double of the Amazon ECS container agent's
 * introspection API ("fea"), for the ECS source's unit tests and
 * benchmarks, the integration test and the demo (also a program:
 * fake_ecs_agent_main.c). HTTP/1.1 on 127.0.0.1 only, served by a thread
 * of its own (one epoll loop, non-blocking sockets, keep-alive).
 *
 * Strict like the real agent (amazon-ecs-agent, agent/handlers/v1):
 *
 *   GET /v1/metadata            {"Cluster","ContainerInstanceArn","Version"}
 *   GET /v1/tasks               {"Tasks":[task, ...]}: tasks, and the
 *                               containers of each, in an order that
 *                               changes from one answer to the next (the
 *                               agent walks Go maps) unless `keep_order`
 *   GET /v1/tasks?dockerid=ID   the task of container ID, one bare task:
 *                               an ID over 12 characters must be the full
 *                               id, a shorter one is a prefix (several
 *                               tasks match: 400); none: 404 with the
 *                               agent's empty task
 *                               {"Arn":"","KnownStatus":"","Family":"",
 *                               "Version":"","Containers":null}
 *   GET /v1/tasks?taskarn=ARN   that task; unknown: 404 as above
 *   dockerid and taskarn both   400, empty body
 *   any other path              404 "404 page not found\n" (paths are
 *                               exact: no trailing '/', no prefix)
 *   a method but GET or HEAD    405
 *
 * The task metadata endpoint v4 of one task (the first one put, or the one
 * mw__fea_v4_select() names) under MW_FEA_V4_PATH, as the ECS agent
 * serves it to the containers of a task (${ECS_CONTAINER_METADATA_URI_V4}
 * is mw__fea_v4_url()):
 *
 *   GET ${URI}                  the asking container (mw__fea_v4_select's
 *                               `self`); 404 when none is named
 *   GET ${URI}/task             the task: the JSON it was put with (every
 *                               v4 field: Labels, Networks, Ports, Limits,
 *                               AvailabilityZone...), its statuses and
 *                               containers as they are now, containers in
 *                               a changing order; TaskTags and
 *                               ContainerInstanceTags left out
 *   GET ${URI}/taskWithTags     the same with the tags
 *   GET ${URI}/task/stats       {DockerId: stats or null} for each
 *                               container of the task that has an id
 *   GET ${URI}/stats            the asking container's stats
 *
 * A task is served in the agent's v1 shape: Arn, DesiredStatus (left
 * out as the agent leaves it out: when empty, when the task is STOPPED
 * and not desired so, or RUNNING and desired PENDING), KnownStatus,
 * Family, Version, and Containers: {DockerId, DockerName, Name} of the
 * NORMAL ones (the agent hides internal containers such as the CNI
 * pause container). The server holds more than v1 shows - container
 * types, statuses, exit codes, images - for the task metadata v4 shape.
 *
 * Every control call is thread-safe and in effect when it returns.
 * Ownership: mw__fea_new() returns a server the caller frees with
 * mw__fea_free(); strings passed in are copied. Control calls return 0,
 * or -1 with the reason readable through mw__fea_error().
 */
#ifndef MW_FAKE_ECS_AGENT_H
#define MW_FAKE_ECS_AGENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct mw__fea mw__fea;

/* What a request asked for; counters, latency and overrides are per kind. */
typedef enum mw__fea_ep {
    MW_FEA_EP_METADATA = 0, /* /v1/metadata */
    MW_FEA_EP_TASKS,        /* /v1/tasks */
    MW_FEA_EP_TASK,         /* /v1/tasks?dockerid= or ?taskarn= */
    MW_FEA_EP_OTHER,        /* anything else */
    MW_FEA_EP_V4_CONTAINER, /* task metadata v4: ${URI} (the asking container) */
    MW_FEA_EP_V4_TASK,      /* ${URI}/task, ${URI}/taskWithTags */
    MW_FEA_EP_V4_STATS,     /* ${URI}/task/stats, ${URI}/stats */
    MW_FEA_EP_COUNT         /* also "every kind" where an argument allows it */
} mw__fea_ep;

typedef struct mw__fea_opts {
    int port;                 /* 0: a free port */
    const char *cluster;      /* NULL: "default" */
    const char *instance_arn; /* NULL: an ARN in us-west-2 */
    const char *version;      /* NULL: "Amazon ECS Agent - v1.30.0 (02ff320c)" */
    int keep_order;           /* serve tasks and containers in the order added */
    uint64_t seed;            /* the shuffles; 0: a fixed default */
} mw__fea_opts;

/* Listens and starts the server thread. NULL with `*err` (caller frees)
 * when the port or thread cannot be had. */
mw__fea *mw__fea_new(const mw__fea_opts *o, char **err);
/* Closes every connection, stops the thread, frees. NULL is a no-op. */
void mw__fea_free(mw__fea *a);
int mw__fea_port(const mw__fea *a);
/* "http://127.0.0.1:<port>"; borrowed, lives as long as the server. */
const char *mw__fea_url(const mw__fea *a);
/* The path of the v4 endpoint, and its URL (what
 * $ECS_CONTAINER_METADATA_URI_V4 holds); borrowed. */
#define MW_FEA_V4_PATH "/v4/a8b2b0a8a4c14d4e9d1c6f2b1e0d3c4b-0123456789"
const char *mw__fea_v4_url(const mw__fea *a);
/* The reason of the last failed control call; borrowed until the next. */
const char *mw__fea_error(mw__fea *a);

/*
 * Adds a task, or replaces the task of the same ARN: the JSON text of one
 * task in the v1 shape (Arn, Version) or the v4 shape (TaskARN,
 * Revision); its containers may carry Type (default NORMAL), KnownStatus,
 * ExitCode and Image besides DockerId, DockerName and Name.
 */
int mw__fea_put_task(mw__fea *a, const char *json);
/* Every task of a file: a /v1/tasks document, or one task. */
int mw__fea_load(mw__fea *a, const char *path);
int mw__fea_remove_task(mw__fea *a, const char *arn);
/* No task at all (GET /v1/tasks answers {"Tasks":[]}). */
int mw__fea_clear(mw__fea *a);
size_t mw__fea_task_count(mw__fea *a);
/* A task's KnownStatus, and its DesiredStatus unless `desired` is NULL. */
int mw__fea_task_status(mw__fea *a, const char *arn, const char *known, const char *desired);
/* Adds container `name` to task `arn`, or sets its DockerId (the agent
 * knows it once it created the container) and DockerName (NULL: kept, or
 * "" for a new one). */
int mw__fea_put_container(mw__fea *a, const char *arn, const char *name, const char *docker_id,
                          const char *docker_name);
/* Container `name` of task `arn` stopped: KnownStatus STOPPED, ExitCode. */
int mw__fea_container_stop(mw__fea *a, const char *arn, const char *name, int exit_code);
/* Container `name` of task `arn` has KnownStatus `known` (v4). */
int mw__fea_container_status(mw__fea *a, const char *arn, const char *name, const char *known);
/* The task the v4 endpoint describes (NULL: the first one put) and the
 * container asking (NULL: none). */
int mw__fea_v4_select(mw__fea *a, const char *arn, const char *self);
/* One container's stats document for /task/stats and /stats (NULL or
 * "null": its entry is null). */
int mw__fea_put_stats(mw__fea *a, const char *docker_id, const char *json);
/* Every entry of a /task/stats document file. */
int mw__fea_load_stats(mw__fea *a, const char *path);
/* The metadata's fields (NULL: kept). */
int mw__fea_set_metadata(mw__fea *a, const char *cluster, const char *instance_arn,
                         const char *version);

/* The agent goes away: its socket and every connection are closed, a
 * connect is refused. up: it listens again on the same port. */
int mw__fea_down(mw__fea *a);
int mw__fea_up(mw__fea *a);

/* The next `times` requests of kind `ep` answer `status` with `body`
 * (any text: a malformed payload; NULL: ""). times 0 cancels. */
int mw__fea_fail_next(mw__fea *a, mw__fea_ep ep, int status, const char *body, unsigned times);
/* Delay before each answer of kind `ep` (MW_FEA_EP_COUNT: every kind); the
 * answer holds the state at the request's arrival. */
int mw__fea_set_latency(mw__fea *a, mw__fea_ep ep, unsigned ms);

/* One served request, for the log. */
typedef struct mw__fea_request {
    mw__fea_ep ep;
    int status;
    char method[8];
    char target[512]; /* path and query as sent, cut to fit */
    double at;        /* when it was answered (CLOCK_MONOTONIC seconds; its
                       * latency, if any, still to come) */
} mw__fea_request;

/* Requests answered of one kind (MW_FEA_EP_COUNT: all) since the start
 * or the last reset. */
uint64_t mw__fea_count(mw__fea *a, mw__fea_ep ep);
void mw__fea_counts_reset(mw__fea *a);
/* The last request of kind `ep` (MW_FEA_EP_COUNT: any) into `out`; -1
 * when none is logged. The log keeps the last 1024. */
int mw__fea_last_request(mw__fea *a, mw__fea_ep ep, mw__fea_request *out);
/* Waits until mw__fea_count(ep) >= n (0) or `timeout_ms` passes (-1). */
int mw__fea_wait_count(mw__fea *a, mw__fea_ep ep, uint64_t n, int timeout_ms);

#endif
