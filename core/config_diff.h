/*
 * config_diff.h - which settings differ between two configurations, for
 * applying a re-read config file to a running engine (SIGHUP): the keys
 * that can change live, and those that need a restart, by the names the
 * config file uses.
 *
 * Pure: borrows both configurations for the call.
 */
#ifndef MW_CONFIG_DIFF_H
#define MW_CONFIG_DIFF_H

#include "core/config.h"

#include <stddef.h>

/* The keys a running engine takes from a new config at once. */
enum { MW_LIVE_LOG_LEVEL = 1u, MW_LIVE_INTERVAL = 2u, MW_LIVE_TIMEOUT = 4u, MW_LIVE_MEMORY = 8u };

/* Puts into `restart` (room for `max`, literals) the names of the keys
 * that differ between `a` and `b` and need a restart; returns how many
 * (possibly more than `max`). `*live` gets the MW_LIVE_* bits of the keys
 * that differ and can change live. */
size_t mw__config_diff(const mw_config *a, const mw_config *b, unsigned *live, const char **restart,
                       size_t max);

#endif
