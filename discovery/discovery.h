/*
 * discovery.h - the discovery side of an engine: its sources (Docker
 * now), the container filter, and the reconciler that turns the services
 * they find into scheduled instances.
 *
 * The engine makes one after loading its templates and hands over the
 * template set; scheduling goes back through `ops` (the engine's
 * scheduler), so discovery never reaches into the engine.
 *
 * Ownership: a mw__discovery owns the template set given to it, its
 * sources, filter, HTTP client and reconciler. It borrows the loop, log,
 * aggregator and config, which outlive it. Loop thread only.
 */
#ifndef MW_DISCOVERY_H
#define MW_DISCOVERY_H

#include "core/aggregator.h"
#include "core/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "discovery/reconcile.h"
#include "discovery/template.h"

typedef struct mw__discovery mw__discovery;

typedef struct mw__discovery_opts {
    mw__loop *loop;
    const mw__log *log;
    mw__aggregator *agg; /* Docker events and docker.service_up; may be NULL */
    const mw_config *cfg;
    mw__reconcile_ops ops; /* schedule NULL: only compute (configcheck) */
    int one_shot;          /* list once, no events stream (configcheck) */
} mw__discovery_opts;

/*
 * Makes the discovery for `cfg`, taking `set` (emptied). Returns NULL
 * with `*err` (caller frees) on a bad setting or OOM. When no source is
 * enabled (Docker off, or auto without a Docker host) it still returns a
 * discovery, with nothing to discover; `*why_off` (borrowed, may be
 * NULL) then says why.
 */
mw__discovery *mw__discovery_new(const mw__discovery_opts *o, mw__template_set *set,
                                 const char **why_off, char **err);
void mw__discovery_free(mw__discovery *d);

/* 1 once every enabled source has listed its services (immediately when
 * none is enabled). */
int mw__discovery_synced(const mw__discovery *d);
/* The last connection error of a source, NULL when none. Borrowed. */
const char *mw__discovery_error(const mw__discovery *d);

/* See mw__reconcile_describe(). */
int mw__discovery_describe(const mw__discovery *d, cJSON *resolved, cJSON *unresolved);

/* The templates it matches services against. Borrowed. */
const mw__template_set *mw__discovery_templates(const mw__discovery *d);

#endif
