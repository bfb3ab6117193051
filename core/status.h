/*
 * status.h - an engine's status listener: GET /status (the engine's state
 * as JSON), /healthz (200 while the loop turns and no source has failed
 * longer than health_grace, else 503 with the reasons) and /metrics (the
 * Prometheus sink, core/pipeline/sink_prom.h), served by
 * core/base/httpd.c on the engine's control loop.
 *
 * Nothing it serves carries a secret: no instance or init config, no
 * environment, and user:password@ in any URL of a message is masked.
 *
 * Ownership: the engine makes one when `listen` is set, after its other
 * parts, and frees it before its loop. The Prometheus sink it registers
 * lives as long as it does.
 */
#ifndef MW_STATUS_H
#define MW_STATUS_H

#include "moonwatch.h"
#include "core/base/json.h"

typedef struct mw__status mw__status;

/* Binds cfg->listen and registers the Prometheus sink. MW_OK; MW_EINVAL
 * (an address that is not allowed); MW_ESYS (bind); MW_ENOMEM; `*err`
 * says why (caller frees). */
mw_code mw__status_new(mw_engine *eng, mw__status **out, char **err);
void mw__status_free(mw__status *s);
/* The bound address ("127.0.0.1:PORT" or a socket path). Borrowed. */
const char *mw__status_addr(const mw__status *s);

/* The /status document (caller deletes), NULL on OOM; and whether the
 * engine is healthy, with the reasons it is not appended to `reasons`
 * (a JSON array). Loop thread. */
cJSON *mw__status_json(mw_engine *eng);
int mw__status_health(mw_engine *eng, cJSON *reasons);

#endif
