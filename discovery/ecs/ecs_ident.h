/*
 * ecs_ident.h - the ECS identity of one container (which task it runs
 * in, and which container of the task definition it is), from the two
 * places that tell it, and what follows from it: the tags, under the
 * Datadog Agent's names, and the `extra` values behind the
 * %%task_arn%%-style template variables.
 *
 * The two places hold the same facts:
 *  - the com.amazonaws.ecs.* Docker labels the ECS agent puts on every
 *    container it creates (task-arn, container-name,
 *    task-definition-family, task-definition-version, cluster), known as
 *    soon as the container is;
 *  - the task model (ecs_task.h), from the agent's introspection API (or
 *    task metadata v4), with the cluster of the agent's /v1/metadata.
 * mw__ecs_ident_for() takes the model's values where it has them and the
 * labels' for the rest, and normalizes both the same way (the cluster's
 * short name from a name or a cluster ARN), so a container tagged from
 * its labels keeps exactly the same tags once the agent answers: no
 * reschedule, no flapping, never two values of one tag.
 *
 * Tags: task_arn, task_family, task_version, task_name (the family),
 * ecs_cluster_name and cluster_name (the short name), ecs_container_name,
 * region (the task ARN's fourth field), ecs_launch_type (lower case) and
 * availability_zone where known, and the task's resource tags as
 * <key>:<value> where the model has them (/taskWithTags, with
 * ecs_collect_resource_tags). `extra` (template variables): task_arn,
 * task_family, task_version, task_name, ecs_cluster_name,
 * ecs_container_name, and the others where known, under the tags' names.
 *
 * Ownership: a mw__ecs_ident owns its strings (mw__ecs_ident_clear). A
 * mw__ecs_view borrows its base service, which must outlive it, and owns
 * only what it adds. Nothing here keeps state.
 */
#ifndef MW_ECS_IDENT_H
#define MW_ECS_IDENT_H

#include "moonwatch.h"
#include "discovery/ecs/ecs_task.h"
#include "discovery/service.h"

#include <cjson/cJSON.h>

#define MW_ECS_LABEL_TASK_ARN  "com.amazonaws.ecs.task-arn"
#define MW_ECS_LABEL_CONTAINER "com.amazonaws.ecs.container-name"
#define MW_ECS_LABEL_FAMILY    "com.amazonaws.ecs.task-definition-family"
#define MW_ECS_LABEL_VERSION   "com.amazonaws.ecs.task-definition-version"
#define MW_ECS_LABEL_CLUSTER   "com.amazonaws.ecs.cluster"

typedef struct mw__ecs_ident {
    char *task_arn;
    char *family; /* NULL when unknown, as every field below */
    char *version;
    char *cluster;        /* the short name */
    char *container_name; /* in the task definition */
    char *region;         /* from the task ARN */
    char *availability_zone;
    char *launch_type;    /* lower case: "ec2", "fargate", "external" */
    char *ipv4;           /* the container's first IPv4 address in the task
                           * metadata (its awsvpc address); NULL */
    cJSON *resource_tags; /* the task's (/taskWithTags): key -> value; NULL */
} mw__ecs_ident;

/*
 * The identity of a container from its Docker labels (`labels`, an
 * object of strings; may be NULL) and its task in the model (`task` and
 * its container `ctr`; both NULL when the model does not know it).
 * `agent_cluster` is the cluster the agent reported (/v1/metadata; NULL:
 * unknown), `launch_type` the one to assume when the model does not say
 * ("EC2" for containers found on a Docker engine; NULL: none). MW_OK;
 * MW_ENOTFOUND when neither a task nor a task-arn label is there (not an
 * ECS container: `*out` empty); MW_ENOMEM.
 */
mw_code mw__ecs_ident_for(const cJSON *labels, const mw__ecs_task *task,
                          const mw__ecs_container *ctr, const char *agent_cluster,
                          const char *launch_type, mw__ecs_ident *out);
void mw__ecs_ident_clear(mw__ecs_ident *id);
/* 1 when both say the same (NULL fields equal). */
int mw__ecs_ident_equal(const mw__ecs_ident *a, const mw__ecs_ident *b);

/* Takes one "key:value" tag (borrowed for the call). */
typedef mw_code (*mw__ecs_tag_fn)(void *ud, const char *tag);
/* Calls `add` for each tag of `id` (see above), in a fixed order. MW_OK,
 * MW_ENOMEM, or what `add` stopped with. */
mw_code mw__ecs_ident_tags(const mw__ecs_ident *id, mw__ecs_tag_fn add, void *ud);
/* Adds the extra values of `id` to the object `extra`, replacing keys of
 * the same name. MW_OK or MW_ENOMEM. */
mw_code mw__ecs_ident_extra(const mw__ecs_ident *id, cJSON *extra);

/* The short name of a cluster given as a name or as an ARN (the part
 * after "cluster/"); malloc'd, NULL on OOM or for "" / NULL. */
char *mw__ecs_cluster_short(const char *cluster);
/* The region of an ARN ("arn:aws:ecs:us-west-2:..." -> "us-west-2");
 * malloc'd, NULL when it has none or on OOM. */
char *mw__ecs_arn_region(const char *arn);
/* The cluster named in a task ARN of the long form
 * "arn:...:task/<cluster>/<id>"; malloc'd, NULL for the short form. */
char *mw__ecs_arn_task_cluster(const char *arn);

/*
 * A Docker service seen with its ECS identity: `svc` is a shallow copy
 * of the base service whose tags are the base's and the identity's
 * (sorted, unique) and whose `extra` holds the identity's values, with
 * its digest made again. A base with no network address (an awsvpc task
 * container on EC2 shares its pause container's network) gets the
 * identity's IPv4 address on a network "awsvpc", so that %%host%% is
 * the task's address. It is handed to what reads services (matching,
 * the reconciler) like any service, but is never passed to
 * mw__service_free(): mw__ecs_view_clear() releases what the view owns.
 */
typedef struct mw__ecs_view {
    mw__service svc;
    char **own; /* the tag strings the view added */
    size_t nown;
    mw__svc_network *nets; /* svc.nets when the view added one; NULL */
    char *ip;              /* the address it added */
} mw__ecs_view;

/* MW_OK or MW_ENOMEM (the view is then empty). */
mw_code mw__ecs_view_make(const mw__service *base, const mw__ecs_ident *id, mw__ecs_view *out);
void mw__ecs_view_clear(mw__ecs_view *v);

#endif
