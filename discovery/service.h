/*
 * service.h - the service model: one discovered container, whatever
 * source found it (Docker now, ECS later), in the one shape that matching,
 * template variables and tags read.
 *
 * A mw__service owns every string, array and cJSON tree it points to;
 * mw__service_free() releases them. Services are built on the discovery
 * loop and never shared across threads.
 */
#ifndef MW_SERVICE_H
#define MW_SERVICE_H

#include "moonwatch.h"

#include "core/base/json_pick.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mw__svc_network {
    char *name; /* "bridge", "host", a user network */
    char *ip;   /* IPv4 address, "" when none */
    char *ip6;  /* global IPv6 address, "" when none */
} mw__svc_network;

typedef struct mw__svc_port {
    int number;    /* container port */
    char proto[8]; /* "tcp", "udp", "sctp" */
    char *name;    /* NULL when the source has no name for it */
} mw__svc_port;

/* Where a service was found. */
enum {
    MW_SVC_DOCKER = 0,    /* a container of a Docker engine (its inspect) */
    MW_SVC_TASK_METADATA, /* a container the ECS task metadata endpoint lists,
                           * with no Docker engine here: no pid, no cgroup
                           * to read, the image's exposed ports unknown */
};

typedef struct mw__service {
    int origin;            /* MW_SVC_* */
    char *id;              /* "docker://<id>" */
    char *cid;             /* "<64 hex>" (Docker), "<32 hex>-<digits>" (Fargate) */
    char *name;            /* container name, no leading '/' */
    char *image;           /* as written ("redis:7", "docker.io/library/redis@sha256:..."),
                            * or the resolved repo tag when the container was
                            * created from a bare sha256 image id; an id
                            * nobody resolved stays as it is, and is then its
                            * own image_long and image_short (tag "latest") */
    char *image_long;      /* without tag or digest ("docker.io/library/redis") */
    char *image_short;     /* last path component ("redis") */
    char *image_tag;       /* "7"; "latest" when the image names none */
    cJSON *labels;         /* object: label -> string */
    cJSON *env;            /* object: VAR -> string (Config.Env) */
    cJSON *extra;          /* object: key -> string, the values a source has
                            * for %%extra_<key>%% (and Datadog's
                            * %%kube_<key>%%); NULL when it has none, as for
                            * every Docker container */
    mw__svc_network *nets; /* sorted by name */
    size_t nnets;
    int host_network;    /* HostConfig.NetworkMode == "host" */
    mw__svc_port *ports; /* ascending by number, unique (number, proto) */
    size_t nports;
    long pid;       /* State.Pid, 0 when unknown */
    char *hostname; /* Config.Hostname, "" when none */
    char *health;   /* "healthy" "unhealthy" "starting" or "" (no healthcheck) */
    char *state;    /* "running" "paused" "restarting" "exited" ... */
    int restart_count;
    int provisional; /* built before the container's post-start inspect
                      * (from the one made at `create`): pid and
                      * addresses are not known yet */
    char **tags;     /* sorted, unique: container_name, container_id,
                      * image_name (long), short_image, image_tag,
                      * docker_image (as written), env/service/version
                      * from the com.datadoghq.tags.{env,service,version}
                      * labels, else DD_ENV/DD_SERVICE/DD_VERSION env,
                      * and the key:value items of the
                      * com.datadoghq.ad.tags label (mw__label_tags) */
    size_t ntags;
    uint64_t digest; /* hash over every field above except state,
                      * health and provisional: equal digests resolve templates equally */
} mw__service;

/* What a source that has no inspect document knows of a container. */
typedef struct mw__service_parts {
    int origin;                  /* MW_SVC_* */
    const char *cid;             /* required: 1..128 of [A-Za-z0-9_.-] */
    const char *name;            /* NULL: "" */
    const char *image;           /* required: split as an inspect's Config.Image */
    const cJSON *labels;         /* an object of strings; NULL: none */
    const mw__svc_network *nets; /* copied and sorted by name ("" for a NULL address) */
    size_t nnets;
    int host_network;
    const mw__svc_port *ports; /* copied, sorted, unique (names are not kept) */
    size_t nports;
    const char *state; /* NULL: "running" */
} mw__service_parts;

/*
 * Builds a service from a container inspect document (GET
 * /containers/{id}/json), any API version from 1.40 on, into `*out`
 * (free with mw__service_free()). `image` overrides Config.Image when not
 * NULL (the repo tag a sha256 image id resolved to). MW_OK; MW_EPARSE
 * with `*err` naming the missing or malformed field; MW_ENOMEM with
 * `*err` "out of memory". On error `*out` is NULL, and `*err` (caller
 * frees; `err` may be NULL) is NULL when even the message could not be
 * made.
 */
mw_code mw__service_from_inspect(const cJSON *inspect, const char *image, mw__service **out,
                                 char **err);
void mw__service_free(mw__service *s);

/* The members of an inspect that mw__service_from_inspect() reads, and
 * those that tell whether the container runs (State.Running, Paused,
 * Restarting, OOMKilled): what a source needs to parse of one
 * (mw__json_pick_parse()). */
extern const mw__json_pick mw__service_inspect_pick[];

/* Builds a service from `p` (copied) into `*out`, with the same tags and
 * digest rules as mw__service_from_inspect() (no env: the container's
 * environment is not known). MW_OK; MW_EPARSE with `*err` naming the part
 * (a bad id, image, label, network or port); MW_ENOMEM. Free with
 * mw__service_free(). */
mw_code mw__service_from_parts(const mw__service_parts *p, mw__service **out, char **err);

/* The digest of `s` (every field but state and health, labels, env and
 * extra in any key order), for sources that build a service by hand. */
uint64_t mw__service_digest(const mw__service *s);

/* 1 when Config.Image names a bare image id ("sha256:<hex>" or 64 hex),
 * which the source resolves to a repo tag before building the service. */
int mw__service_image_is_id(const char *image);

/*
 * Splits an image reference the way Datadog's SplitImageName does:
 * "docker.io/library/redis:7" -> long "docker.io/library/redis", short
 * "redis", tag "7"; "host:5000/a/b@sha256:..." -> long "host:5000/a/b",
 * short "b", tag "latest" (a reference without a tag gets "latest"; a
 * registry port is not a tag). Each out string is malloc'd (caller
 * frees). MW_OK; MW_EPARSE for an empty or malformed reference;
 * MW_ENOMEM. On error the three are NULL.
 */
mw_code mw__image_split(const char *image, char **long_name, char **short_name, char **tag);

/* The image names of a container's tags (image_name, short_image,
 * image_tag): mw__image_split(), except that a bare image id (see
 * mw__service_image_is_id()) is both names, with tag "latest". Same
 * returns and ownership. */
mw_code mw__image_names(const char *image, char **long_name, char **short_name, char **tag);

/* A label's value, or NULL. */
const char *mw__service_label(const mw__service *s, const char *key);
/* An environment variable's value, or NULL. */
const char *mw__service_env(const mw__service *s, const char *var);

#endif
