/*
 * reconcile.h - the instance diff: for each service, the configs it
 * wants (mw__match_service) against the instances it has, so that the
 * running set always equals the wanted set - never a duplicate, never an
 * orphan.
 *
 * Instances are keyed by their stable id ("<check>:<hash of the resolved
 * config>", mw__instance_id), so a container that restarts with the same
 * config gets the same id, and a service that changes only gains and
 * loses the instances whose config changed. Two services that resolve to
 * the very same config share one instance (reference counted).
 *
 * A provisional service (built before the container's pid and addresses
 * are known) is applied only when all of its configs resolve; otherwise
 * it changes nothing and the full service that follows is applied.
 *
 * Configs that do not resolve, or that the scheduler refuses (no such
 * check script, a bad option), are kept with their reason for
 * `configcheck` and logged once per change of their service.
 *
 * Ownership: a mw__reconcile borrows the template set, the options and
 * the log (they outlive it) and owns its copies of everything else. It
 * lives on one thread (the discovery loop's).
 */
#ifndef MW_RECONCILE_H
#define MW_RECONCILE_H

#include "moonwatch.h"
#include "core/base/log.h"
#include "discovery/match.h"

#include <cjson/cJSON.h>

typedef struct mw__reconcile_ops {
    /* Schedule the resolved config `it` under `id`. MW_OK, or an error
     * with `*err` (caller frees). NULL: nothing is scheduled (the
     * reconciler only keeps the wanted set, as `configcheck` needs). */
    mw_code (*schedule)(void *ud, const mw__match_item *it, const char *id, char **err);
    /* Unschedule `id` (scheduled through `schedule` before). */
    void (*unschedule)(void *ud, const char *id);
    void *ud;
    /* Copies of the resolved config scheduled as `id` into `*instance`
     * and `*init_config` (caller deletes). MW_OK, MW_ENOTFOUND, MW_ENOMEM.
     * Given, the reconciler keeps no copy of a config once it is
     * scheduled (the scheduler has one: with 10,000 containers, a second
     * copy is some 13 MB) and asks for it in mw__reconcile_describe();
     * NULL: it keeps its own. */
    mw_code (*config)(void *ud, const char *id, cJSON **instance, cJSON **init_config);
} mw__reconcile_ops;

typedef struct mw__reconcile mw__reconcile;

/* NULL on OOM. */
mw__reconcile *mw__reconcile_new(const mw__template_set *set, const mw__tmplvars_opts *vars,
                                 const mw__reconcile_ops *ops, const mw__log *log);
/* Unschedules every instance it scheduled, then frees. */
void mw__reconcile_free(mw__reconcile *r);

/* A service appeared or changed: diff its wanted configs against its
 * instances. MW_OK, or MW_ENOMEM (the service keeps its previous
 * instances, and the next change retries). */
mw_code mw__reconcile_service(mw__reconcile *r, const mw__service *svc);
/* A service is gone: its instances are released. */
void mw__reconcile_remove(mw__reconcile *r, const char *svc_id);

/* The template set changed (the caller swapped what `set` points to, or
 * gives a new one): every tracked service is matched again, through
 * `again(ud, svc_id)`, which looks the service up and hands it to
 * mw__reconcile_service() (a service it no longer finds is removed).
 * Instances whose resolved config is unchanged keep running: only those
 * of changed configs are replaced. */
void mw__reconcile_rematch(mw__reconcile *r, const mw__template_set *set,
                           void (*again)(void *ud, const char *svc_id), void *ud);

/* Services tracked, and instances scheduled through `ops`. */
size_t mw__reconcile_services(const mw__reconcile *r);
size_t mw__reconcile_instances(const mw__reconcile *r);

/* Appends {check, id, service, source, init_config, instance} to
 * `resolved` and {check, service, source, reason} to `unresolved` for
 * every service, in a stable order (service id, then match order).
 * MW_OK, or MW_ENOMEM. */
mw_code mw__reconcile_describe(const mw__reconcile *r, cJSON *resolved, cJSON *unresolved);

#endif
