/*
 * reload.h - the engine's hot reload: its checks and templates
 * directories read again and diffed against what runs, and only the
 * delta applied (see mw_engine_reload() in include/moonwatch.h).
 *
 * A reload loads a new template set and checks each loaded script for a
 * change, then applies:
 * - a changed script (that compiles): every instance of its check is
 *   replaced by one of the same config and id running the new script;
 * - static configs: the instances of configs gone are unscheduled, those
 *   of new configs scheduled, unchanged ones left alone;
 * - discovered instances: the new set goes to discovery, which matches
 *   every known service again through the same reconciler path as a
 *   container change (mw__discovery_set_templates()).
 * A template file or a script with a problem keeps its previous version
 * running; the problem ("file:line:col: message") goes to `diag`.
 *
 * Control thread only (the engine's loop thread, or the thread that steps
 * a hosted engine). Owns nothing past the call.
 */
#ifndef MW_RELOAD_H
#define MW_RELOAD_H

#include "moonwatch.h"
#include "core/base/diag.h"

#include <stddef.h>

typedef struct mw__reload_result {
    size_t replaced; /* instances replaced (same id, new script) */
    size_t added;    /* static instances scheduled */
    size_t removed;  /* static instances unscheduled */
    size_t scripts;  /* scripts that changed */
    size_t services; /* discovered services matched again */
} mw__reload_result;

/* Runs one reload of `eng` (loaded: MW_ESTATE otherwise). Problems go to
 * `diag`; MW_OK even when there are some (the rest is applied), MW_ENOMEM
 * when the new set could not be built (nothing changed). */
mw_code mw__reload_run(mw_engine *eng, mw__diag *diag, mw__reload_result *res);

#endif
