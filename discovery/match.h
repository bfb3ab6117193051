/*
 * match.h - which check configs a service wants: file templates matched
 * by `ad_identifiers`, and configs from the service's own labels, with
 * their template variables resolved and the service's tags merged in.
 *
 * Identifiers of a service, in Datadog's order: `docker://<id>`, the long
 * image name without tag (when it differs from the short one), the short
 * image name - or only the value of the `com.datadoghq.ad.check.id` label
 * when the container has one. A template matches when any of its
 * ad_identifiers equals one of them, or is the identifier of the
 * service's origin (moonwatch's own: no image can be named so):
 * MW_AD_ANY_CONTAINER, which every container of the Docker engine matches,
 * or MW_AD_ECS_TASK_CONTAINER, which every container found through the
 * ECS task metadata endpoint matches (no engine here: its numbers come
 * from the endpoint, not from a cgroup).
 *
 * Precedence: a label config of check C replaces every file template of
 * C for that service; a v1 `check_names` of [] disables file templates
 * for it altogether. A template whose check has no script (`no_check`)
 * matches nothing: `configcheck` lists it once, not per container. A
 * template's top-level `ignore_autodiscovery_tags` holds for all of its
 * instances.
 *
 * Each instance is resolved on its own (mw__tmplvars_resolve over the
 * instance, and over init_config). Unless the instance sets
 * `ignore_autodiscovery_tags: true` (or its label config does), the
 * service's tags are merged into the instance's `tags` (deduplicated,
 * sorted; no `tags` key is added when there is nothing to put in it). A
 * resolution failure yields an item with `reason` set and no config:
 * "%%port%%: the container exposes no port", "init_config: %%env_X%%:
 * ...", or "\"tags\" must be a list of strings, found a string".
 *
 * A mw__match_result owns its items and everything in them.
 */
#ifndef MW_MATCH_H
#define MW_MATCH_H

#include "discovery/service.h"
#include "discovery/template.h"
#include "discovery/tmplvars.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* The identifier every container of the Docker engine matches (the
 * bundled `docker` template's): a name no image reference can have. */
#define MW_AD_ANY_CONTAINER "_any_container"
/* The identifier every container of the ECS task metadata endpoint
 * matches (the bundled `ecs_fargate` template's). */
#define MW_AD_ECS_TASK_CONTAINER "_ecs_task_container"

typedef struct mw__match_item {
    char *check;
    char *source;       /* the template file, or "label:<key>" (v2:
                         * "<prefix>checks", v1: "<prefix>instances") */
    size_t index;       /* the instance's index in its template or label
                         * config (0-based) */
    cJSON *init_config; /* resolved; NULL when unresolved */
    cJSON *instance;    /* resolved, tags merged; NULL when unresolved */
    char *reason;       /* NULL when resolved; else why not */
} mw__match_item;

typedef struct mw__match_result {
    mw__match_item *v;
    size_t n, cap;
    char **problems; /* label problems ("docker://<id> label <key>: ..."),
                      * to log once per change of the service */
    size_t nproblems;
} mw__match_result;

/* The identifiers of `svc`, in order (borrowed from it), at most 3.
 * Returns their count. */
size_t mw__match_identifiers(const mw__service *svc, const char *out[3]);

/*
 * Fills `out` with every config `svc` wants from the templates in `set`
 * (those with ad_identifiers; static ones are not for services) and from
 * its labels. Items are in a stable order: templates in set order, then
 * labels in check-name order. A config that does not resolve is an item
 * with its reason, not an error. MW_OK, or MW_ENOMEM (out holds what was
 * done; free it either way).
 */
mw_code mw__match_service(const mw__template_set *set, const mw__service *svc,
                          const mw__tmplvars_opts *vars, mw__match_result *out);
void mw__match_result_free(mw__match_result *r);

#endif
