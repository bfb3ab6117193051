/*
 * ecs_task.h - the Amazon ECS task model, and the readers of the JSON
 * documents that describe tasks. One shape whatever endpoint a task came
 * from, so that the ECS agent's introspection API (EC2) and the task
 * metadata endpoint v4 (EC2 and Fargate) feed the same model:
 *
 *   introspection  GET /v1/metadata          {Cluster, ContainerInstanceArn, Version}
 *   (MW_ECS_V1)    GET /v1/tasks             {"Tasks": [task, ...]}
 *                  GET /v1/tasks?dockerid=X  one bare task
 *                  task: {Arn, DesiredStatus?, KnownStatus, Family, Version,
 *                         Containers: [{DockerId, DockerName, Name, ...}]}
 *   v4 (MW_ECS_V4) GET ${ECS_CONTAINER_METADATA_URI_V4}/task   one task:
 *                  {Cluster, TaskARN, Family, Revision, DesiredStatus,
 *                   KnownStatus, AvailabilityZone?, LaunchType?,
 *                   Containers: [{DockerId, Name, DockerName, Image, Labels,
 *                   Type, KnownStatus, DesiredStatus, ExitCode?,
 *                   Ports: [{ContainerPort, Protocol}],
 *                   Networks: [{NetworkMode, IPv4Addresses: [...]}]}]}
 *                  GET .../taskWithTags: the same plus TaskTags and
 *                  ContainerInstanceTags (objects of strings)
 *
 * Reading rules, the same for both formats:
 *  - the task's ARN and every container's Name are required; every other
 *    field may be absent or null (the agent omits what is empty). A
 *    present field of the wrong type is an error that names it
 *    ("Tasks[2].Containers[0].DockerId: not a string");
 *  - fields the model does not hold (Ports, Volumes, Limits, ...) are
 *    ignored, whatever they contain;
 *  - a DockerId is "" until the agent has created the container, else
 *    1 to 128 of [A-Za-z0-9_.-] (64 hex on EC2, "<32 hex>-<digits>" on
 *    Fargate); an ARN starts with "arn:";
 *  - every string is at most MW_ECS_STR_MAX bytes, a task has at most
 *    MW_ECS_CONTAINERS_MAX containers, a container MW_ECS_PORTS_MAX
 *    ports and a task MW_ECS_TAGS_MAX resource tags of each kind: a bad
 *    agent cannot make tags or memory grow without bound;
 *  - containers are sorted by Name, then DockerId, and the digest does not
 *    depend on their order: the same task read twice, its containers in
 *    any order, has the same digest.
 *
 * Ownership: a mw__ecs_task owns every string, array and cJSON tree it
 * points to (mw__ecs_task_free); the documents read are borrowed and
 * never modified. Nothing here does I/O or keeps state.
 */
#ifndef MW_ECS_TASK_H
#define MW_ECS_TASK_H

#include "moonwatch.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define MW_ECS_STR_MAX        2048
#define MW_ECS_CONTAINERS_MAX 256
#define MW_ECS_ID_MAX         128
#define MW_ECS_PORTS_MAX      64
#define MW_ECS_TAGS_MAX       64

/* Which endpoint a task document came from: the field names differ. */
typedef enum mw__ecs_format {
    MW_ECS_V1 = 0, /* introspection: Arn, Version */
    MW_ECS_V4,     /* task metadata v4: TaskARN, Revision, Cluster, ... */
} mw__ecs_format;

/* One port of a v4 container (Ports[].ContainerPort, Protocol). */
typedef struct mw__ecs_port {
    int number;    /* 1..65535 */
    char proto[8]; /* "tcp" when the payload names none */
} mw__ecs_port;

typedef struct mw__ecs_container {
    char *docker_id;      /* "" until created */
    char *docker_name;    /* "" when absent */
    char *name;           /* the container's name in the task definition */
    char *type;           /* v4 "NORMAL", "CNI_PAUSE", ...; v1 lists the
                           * NORMAL ones only: "NORMAL" */
    char *image;          /* v4; NULL when absent */
    char *known_status;   /* v4 "PENDING", "RUNNING", "STOPPED"...; NULL */
    char *desired_status; /* v4; NULL */
    int has_exit_code;    /* v4, once it stopped */
    int exit_code;
    cJSON *labels; /* v4 Labels: object of strings; NULL when absent */
    char **ipv4;   /* v4 Networks[].IPv4Addresses[], in order */
    size_t nipv4;
    char *network_mode;  /* v4 Networks[0].NetworkMode ("awsvpc", "host"...); NULL */
    mw__ecs_port *ports; /* v4 Ports[] with a ContainerPort: ascending, unique */
    size_t nports;
} mw__ecs_container;

typedef struct mw__ecs_task {
    char *arn;
    char *family;                  /* "" when absent */
    char *version;                 /* the revision, a string ("8"); "" when absent */
    char *known_status;            /* "" when absent */
    char *desired_status;          /* "" when omitted (the agent omits it at times) */
    char *cluster;                 /* v4 Cluster as given (a name or an ARN); NULL */
    char *availability_zone;       /* v4; NULL */
    char *launch_type;             /* v4 "EC2", "FARGATE", "EXTERNAL"; NULL */
    cJSON *resource_tags;          /* v4 /taskWithTags: ContainerInstanceTags and
                                    * TaskTags (which win) as one object of
                                    * strings; NULL when neither is there */
    mw__ecs_container *containers; /* sorted by name, then docker_id */
    size_t ncontainers;
    uint64_t digest; /* over every field above */
} mw__ecs_task;

/* GET /v1/metadata of the ECS agent. */
typedef struct mw__ecs_metadata {
    char *cluster;      /* as given: a name or an ARN; "" when absent */
    char *instance_arn; /* the container instance ARN; "" while unregistered */
    char *version;      /* "Amazon ECS Agent - v1.30.0 (02ff320c)"; "" */
} mw__ecs_metadata;

/*
 * Reads one task object `j` in format `f` into `*out` (free with
 * mw__ecs_task_free). `path` prefixes the field names in messages ("" or
 * NULL for a bare task, "Tasks[3]" for an item of a list). MW_OK;
 * MW_EPARSE with `*err` naming the field; MW_ENOMEM ("out of memory").
 * On error `*out` is NULL; `*err` is the caller's (may be NULL when even
 * the message could not be made; `err` itself may be NULL).
 */
mw_code mw__ecs_task_read(const cJSON *j, mw__ecs_format f, const char *path, mw__ecs_task **out,
                          char **err);

/* The same from text: one task document (`len` bytes), as the
 * ?dockerid= and v4 /task answers are. MW_EPARSE also when it is not
 * JSON. */
mw_code mw__ecs_task_parse(const char *text, size_t len, mw__ecs_format f, mw__ecs_task **out,
                           char **err);

void mw__ecs_task_free(mw__ecs_task *t);

/* The digest of `t`'s fields (what mw__ecs_task_read leaves in
 * t->digest). */
uint64_t mw__ecs_task_digest(const mw__ecs_task *t);

/* The container of `t` with Docker id `docker_id`, or NULL. */
const mw__ecs_container *mw__ecs_task_container(const mw__ecs_task *t, const char *docker_id);

/*
 * The task list of a GET /v1/tasks answer: `*tasks` is the "Tasks" array
 * of `root` (borrowed from it; NULL when Tasks is null: no task). MW_OK;
 * MW_EPARSE with `*err` (caller frees) when `root` is not an object or
 * Tasks is missing or not an array. The items are read one by one with
 * mw__ecs_task_read(), so that one bad task costs only itself.
 */
mw_code mw__ecs_tasks_array(const cJSON *root, const cJSON **tasks, char **err);

/*
 * A digest of any JSON value that ignores the order of object members
 * and of array items: two answers that list the same tasks and
 * containers in another order (the agent walks Go maps) have the same
 * digest. Used to skip re-reading a task that did not change.
 */
uint64_t mw__ecs_json_digest(const cJSON *j);

/* Reads a GET /v1/metadata answer into `*out` (free with
 * mw__ecs_metadata_clear). MW_OK; MW_EPARSE with `*err` naming the
 * field; MW_ENOMEM. On error `*out` is left empty. */
mw_code mw__ecs_metadata_parse(const char *text, size_t len, mw__ecs_metadata *out, char **err);
void mw__ecs_metadata_clear(mw__ecs_metadata *m);

/* 1 when `s` is a Docker id as the model keeps it (1..128 of
 * [A-Za-z0-9_.-]). */
int mw__ecs_id_valid(const char *s);

#endif
