/*
 * ecs_where.h - whether to ask an Amazon ECS agent for task identities,
 * and where it is. moonwatch never probes an address on a hunch: on an
 * ordinary host it sends nothing anywhere. It asks an agent only for a
 * reason, in this order:
 *
 *   ecs: off                         never (labels are not read either)
 *   ecs_agent_url (config)           that URL
 *   $ECS_AGENT_URL, $DD_ECS_AGENT_URL that URL
 *   ecs: on                          http://localhost:51678
 *   $ECS_CONTAINER_METADATA_URI_V4 or $ECS_CONTAINER_METADATA_URI, not
 *   on Fargate ($AWS_EXECUTION_ENV AWS_ECS_FARGATE)
 *                                    http://localhost:51678 (moonwatch
 *                                    runs in a task on an EC2 instance)
 *   the ECS agent's config file (ecs_config_path; by default
 *   /host/etc/ecs/ecs.config when /host is a directory, as when the
 *   host's root is mounted into moonwatch's container, else
 *   /etc/ecs/ecs.config) exists      http://localhost:51678
 *   else, with ecs: auto             later, if a container named
 *                                    `ecs-agent` runs on the Docker
 *                                    engine (the agent runs on the host
 *                                    network: http://localhost:51678)
 *
 * A URL must be http:// or https:// with a host, and never a link-local
 * address (169.254.0.0/16, fe80::/10, fd00:ec2::254): the introspection
 * API listens on the instance itself.
 *
 * Nothing here keeps state; strings returned are the caller's.
 */
#ifndef MW_ECS_WHERE_H
#define MW_ECS_WHERE_H

#include "moonwatch.h"

/* The `ecs` setting. */
enum { MW_ECS_AUTO = 0, MW_ECS_ON, MW_ECS_OFF };

/* The verdict. */
typedef enum mw__ecs_verdict {
    MW_ECS_NEVER = 0, /* off */
    MW_ECS_LATER,     /* auto, no reason yet: an ecs-agent container would be one */
    MW_ECS_HERE,      /* ask the agent at `*url` */
} mw__ecs_verdict;

/* The ECS agent container's name on the Docker engine. */
#define MW_ECS_AGENT_CONTAINER "ecs-agent"

/*
 * Decides for `mode` (MW_ECS_*), the configured `url` and `config_path`
 * (both may be NULL), reading the environment and the file system.
 * `*url` gets the URL (MW_ECS_HERE only; caller frees) and `*why` the
 * reason (caller frees), as a log line would say it. MW_OK; MW_EINVAL
 * when a URL from the environment is not usable (`*why` says which and
 * why, the verdict is MW_ECS_NEVER); MW_ENOMEM.
 */
mw_code mw__ecs_where(int mode, const char *url, const char *config_path, mw__ecs_verdict *verdict,
                      char **out_url, char **why);

/* MW_OK when `url` is an http(s) URL with a host that is not link-local;
 * else MW_EINVAL with `*err` (caller frees) saying why. */
mw_code mw__ecs_url_check(const char *url, char **err);

/* The variables the ECS agent sets in every task's containers: where the
 * task metadata endpoint is (v4, else v3). */
#define MW_ECS_METADATA_V4_VAR "ECS_CONTAINER_METADATA_URI_V4"
#define MW_ECS_METADATA_V3_VAR "ECS_CONTAINER_METADATA_URI"

/*
 * The task metadata endpoint of the task moonwatch runs in, from the
 * environment only (never from a config an instance or label could
 * set): $ECS_CONTAINER_METADATA_URI_V4, else $ECS_CONTAINER_METADATA_URI,
 * without trailing '/'. It is a link-local address on AWS
 * (169.254.170.2), which is allowed here: the ECS agent put it there.
 * MW_OK with `*url` (caller frees) and `*var` (the variable's name,
 * static), or `*url` NULL when neither is set; MW_EINVAL when the value
 * is not an http(s) URL with a host (`*why`, caller frees); MW_ENOMEM.
 */
mw_code mw__ecs_metadata_url(char **url, const char **var, char **why);

/* The agent's config file to look for when none is configured. */
const char *mw__ecs_config_path_default(void);

#endif
