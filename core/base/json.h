/*
 * json.h - JSON helpers every layer may use: the canonical form of a
 * document, the stable id of an instance hashed over it, and appending
 * JSON strings and numbers to a mw__buf.
 *
 * Strings returned are the caller's, freed with free(). Nothing here
 * holds state.
 */
#ifndef MW_JSON_H
#define MW_JSON_H

#include "moonwatch.h"
#include "core/base/buf.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* Writes `j` as JSON with object keys sorted at every level; NULL on
 * OOM. */
char *mw__json_canonical(const cJSON *j);

/*
 * The stable id of one check instance: "<check>:<16 hex digits>", a
 * 64-bit FNV-1a hash over the check name and the canonical JSON of
 * `init_config` (NULL hashes as null) and `instance`. The same config
 * always yields the same id. NULL on OOM.
 */
char *mw__instance_id(const char *check, const cJSON *init_config, const cJSON *instance);

/* Appends `s` (`n` bytes) as a quoted, escaped JSON string; bytes that
 * are not valid UTF-8 become U+FFFD. MW_ENOMEM at the buffer's cap. */
mw_code mw__json_str(mw__buf *out, const char *s, size_t n);

/* Appends a finite double in its shortest round-trip form (integers
 * without a fraction). MW_EINVAL when not finite. */
mw_code mw__json_num(mw__buf *out, double v);

#endif
