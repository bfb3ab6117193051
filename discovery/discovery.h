/*
 * discovery.h - the discovery side of an engine: its sources (Docker, the
 * ECS agent on EC2, the ECS task metadata endpoint), the container filter,
 * the ECS task events, and the reconciler that turns the services they
 * find into scheduled instances.
 *
 * The engine makes one after loading its templates and hands over the
 * template set; scheduling goes back through `ops` (the engine's
 * scheduler), so discovery never reaches into the engine.
 *
 * What the sources report besides services (Docker events,
 * docker.service_up, the Docker container counts, ecs.agent.up) goes to
 * the engine through `record` (see discovery/source.h), never into the
 * pipeline directly.
 *
 * The join of Docker and ECS: the ECS agent source finds no services.
 * Each Docker service of a task container is handed to the reconciler as
 * a view with its ECS identity (tags, and `extra` for the %%task_arn%%
 * variables; discovery/ecs/ecs_ident.h), from a model that knows the
 * container (the task metadata's, else the agent's), else from the
 * container's com.amazonaws.ecs.* labels, which say the same: the view
 * built at the container's start from its labels is the one the agent's
 * answer confirms, so nothing is scheduled twice. When a model's answer
 * about a container changes, its Docker service is applied again. A task
 * container that starts while the agent's model does not know it gets a
 * ?dockerid= lookup, after its service went to the reconciler. Docker
 * events about a task container carry its task tags too.
 *
 * The task metadata endpoint ($ECS_CONTAINER_METADATA_URI_V4, else
 * $ECS_CONTAINER_METADATA_URI; discovery/ecs/ecs_meta.h) describes the
 * task moonwatch runs in. With a Docker engine here (EC2, awsvpc), the
 * engine finds the containers and the endpoint only adds to their
 * identity (availability zone, launch type, the task's address and
 * resource tags): one container, one service. Without one (Fargate), the
 * endpoint's RUNNING containers are the services.
 *
 * ECS task events (discovery/ecs/ecs_events.h): the models' tasks and
 * Docker's container exits feed one deriver; its events become records
 * (source_type_name amazon_ecs) with the container's tags (its view,
 * when it is a service) or the task's, plus ecs_event:<kind>. A reboot
 * of the host is checked once, when ECS is first found here.

 * Ownership: a mw__discovery owns the template set given to it, its
 * sources, filter, HTTP client and reconciler. It borrows the loop, the
 * log and the strings of its options, which outlive it. Loop thread
 * only.
 */
#ifndef MW_DISCOVERY_H
#define MW_DISCOVERY_H

#include "core/base/log.h"
#include "core/base/loop.h"
#include "discovery/ecs/ecs_agent.h"
#include "discovery/ecs/ecs_meta.h"
#include "discovery/ecs/ecs_where.h"
#include "discovery/reconcile.h"
#include "discovery/source.h"
#include "discovery/template.h"

typedef struct mw__discovery mw__discovery;

/* docker_mode: auto runs Docker discovery when a Docker host was given
 * (option or $DOCKER_HOST) or the default socket exists. */
enum { MW_DOCKER_AUTO = 0, MW_DOCKER_ON, MW_DOCKER_OFF };

typedef struct mw__discovery_opts {
    mw__loop *loop;
    const mw__log *log;
    mw__record_fn record; /* Docker events, docker.service_up, container
                           * counts, ecs.agent.up...; NULL: none */
    void *record_ud;
    /* Docker */
    int docker_mode;               /* MW_DOCKER_* */
    const char *docker_host;       /* NULL: $DOCKER_HOST, else the default socket */
    const char *container_include; /* DD_CONTAINER_INCLUDE syntax; NULL: none */
    const char *container_exclude;
    int discover_self; /* moonwatch's own container may be a service */
    /* ECS (discovery/ecs/ecs_where.h says when an agent is asked) */
    int ecs_mode;                  /* MW_ECS_*; off: no ECS identity at all */
    const char *ecs_agent_url;     /* NULL: from the environment or the rules */
    const char *ecs_config_path;   /* NULL: the default */
    double ecs_poll_interval;      /* seconds; 0: 5 */
    int ecs_collect_resource_tags; /* the task's resource tags as tags (/taskWithTags) */
    double ecs_pending_timeout;    /* seconds; 0: 300 */
    const char *procfs_path;       /* the host's /proc (its boot id); NULL: /proc */
    const char *state_dir;         /* where the boot id is kept; NULL: not kept */
    /* template variables */
    const char *host_network_host;    /* %%host%% on the host network; NULL: 127.0.0.1 */
    const char *const *env_allowlist; /* %%env_VAR%% names allowed */
    size_t n_env_allowlist;
    mw__reconcile_ops ops; /* schedule NULL: only compute (configcheck) */
    int one_shot;          /* list once, no events stream (configcheck) */
} mw__discovery_opts;

/*
 * Makes the discovery for `o` into `*out`, taking `set` (emptied). When no
 * source is enabled (Docker off, or auto without a Docker host) it still
 * makes one, with nothing to discover; `*why_off` (borrowed, may be NULL)
 * then says why. MW_OK; MW_ENOMEM; MW_EINVAL for a bad setting (a
 * malformed Docker host); MW_EIO when the HTTP client cannot be made.
 * On error `*err` says what failed (caller frees). A bad ECS agent URL
 * is not an error: it is logged and ECS stays off.
 */
mw_code mw__discovery_new(const mw__discovery_opts *o, mw__template_set *set, mw__discovery **out,
                          const char **why_off, char **err);
void mw__discovery_free(mw__discovery *d);

/* 1 once every enabled source has listed its services (immediately when
 * none is enabled); one_shot: once the ECS agent answered or failed too. */
int mw__discovery_synced(const mw__discovery *d);
/* A source's connection state, for the status listener. */
#define MW_SOURCES 3
typedef struct mw__source_health {
    const char *name; /* "docker", "ecs_agent", "ecs_metadata" */
    int up;           /* 1 answering, 0 failing, -1 no answer yet */
    uint64_t since;   /* monotonic ns of the last change (or of its start) */
    const char *why;  /* the failure, NULL when up; borrowed */
} mw__source_health;
/* The enabled sources' health into `out` (room for MW_SOURCES); returns
 * how many. Loop thread. */
size_t mw__discovery_health(const mw__discovery *d, mw__source_health *out);
/* Services known now. */
size_t mw__discovery_services(const mw__discovery *d);
/* The last connection error of a source, NULL when none. Borrowed. */
const char *mw__discovery_error(const mw__discovery *d);

/* See mw__reconcile_describe(): MW_OK, or MW_ENOMEM. */
mw_code mw__discovery_describe(const mw__discovery *d, cJSON *resolved, cJSON *unresolved);

/* The ECS agent source, NULL while none is asked. Borrowed. */
mw__ecs_agent *mw__discovery_ecs(const mw__discovery *d);
/* The ECS task metadata source, NULL when there is none. Borrowed. */
mw__ecs_meta *mw__discovery_ecs_meta(const mw__discovery *d);

/* Replaces the templates it matches services against with `set` (taken,
 * emptied) and matches every known service again through the reconciler:
 * only instances whose resolved config changed are replaced. Loop
 * thread. */
void mw__discovery_set_templates(mw__discovery *d, mw__template_set *set);

/* The templates it matches services against. Borrowed. */
const mw__template_set *mw__discovery_templates(const mw__discovery *d);

#endif
