/*
 * store.h - small persistent key-value stores, one per scope (a check
 * instance's `mw.state`), held in memory and saved under one directory
 * (the engine's <state_dir>/checks) as one file per scope.
 *
 * Keys and values are byte strings (any bytes): a key of 1 to
 * MW_STORE_MAX_KEY bytes, a value of at most MW_STORE_MAX_VALUE bytes;
 * a scope holds at most MW_STORE_MAX_BYTES, counting each entry as its
 * key, its value and MW_STORE_ENTRY_COST bytes. Keys are kept sorted, so
 * the keys under a prefix are one range.
 *
 * Files: the scope names its file ("amazon_ecs:0123abcd" is
 * "amazon_ecs@0123abcd.state"): [A-Za-z0-9_.:-] only, no leading '.',
 * so no caller can name a path. A save writes a temporary file in the
 * directory (mkstemp), syncs it and renames it over the scope's file:
 * a reader sees the old state or the new one, never half of one. The
 * directory and its parent are made (0700) when missing. A file that
 * cannot be read, or is not one of ours, is warned about and the scope
 * starts empty; a directory that cannot be written is warned about once
 * per mw__store_dir, and its scopes go on in memory (each save tries
 * again, silently).
 *
 * Threads: a mw__store_dir is shared (its strings are read-only, its
 * warning flag atomic); a mw__store belongs to one thread at a time.
 * Ownership: the engine owns the mw__store_dir, which must outlive its
 * stores; a store is its opener's until mw__store_close().
 */
#ifndef MW_STORE_H
#define MW_STORE_H

#include "moonwatch.h"
#include "core/base/log.h"

#include <stddef.h>

#define MW_STORE_MAX_KEY    1024
#define MW_STORE_MAX_VALUE  ((size_t)64 << 10)
#define MW_STORE_MAX_BYTES  ((size_t)1 << 20)
#define MW_STORE_ENTRY_COST 16
#define MW_STORE_MAX_SCOPE  240

typedef struct mw__store_dir mw__store_dir;
typedef struct mw__store mw__store;

/* Stores saved under `dir` (an absolute path, copied; NULL: in memory
 * only), warnings to `log` (borrowed; may be NULL). MW_OK, MW_ENOMEM.
 * Nothing is made on disk before a store is saved. */
mw_code mw__store_dir_new(const char *dir, const mw__log *log, mw__store_dir **out);
/* No store of it may be left. NULL: no-op. */
void mw__store_dir_free(mw__store_dir *d);

/* 1 when `scope` may name a store (see above). */
int mw__store_scope_valid(const char *scope);

/* Opens the store of `scope` in `d` (NULL: in memory only), loading its
 * file when there is one. MW_OK; MW_EINVAL (not a valid scope);
 * MW_ENOMEM. */
mw_code mw__store_open(mw__store_dir *d, const char *scope, mw__store **out);
/* Saves (when changed) and frees. NULL: no-op. */
void mw__store_close(mw__store *s);

/* The value of key `k` (`kn` bytes) into `*v` / `*vn` (borrowed until
 * the next set); 0 when there is none. */
int mw__store_get(const mw__store *s, const char *k, size_t kn, const char **v, size_t *vn);
/*
 * Sets key `k` to the `vn` bytes at `v`; `v` NULL deletes it. MW_OK;
 * MW_EINVAL (an empty or too long key, a too long value) or MW_ENOMEM
 * (past MW_STORE_MAX_BYTES, or out of memory), with `*why` (may be NULL)
 * a static string saying which; the store is then unchanged.
 */
mw_code mw__store_set(mw__store *s, const char *k, size_t kn, const char *v, size_t vn,
                      const char **why);

/* The number of keys; the index of the first key not below `k`; key `i`
 * (borrowed until the next set). */
size_t mw__store_count(const mw__store *s);
size_t mw__store_lower_bound(const mw__store *s, const char *k, size_t kn);
void mw__store_key(const mw__store *s, size_t i, const char **k, size_t *kn);
/* Bytes held, as the cap counts them. */
size_t mw__store_used(const mw__store *s);

/* Saves the store when it changed since it was loaded or last saved:
 * MW_OK (saved, nothing to save, or in memory only); MW_EIO when it
 * could not be written (warned once per directory; it stays changed, so
 * the next save tries again); MW_ENOMEM. */
mw_code mw__store_save(mw__store *s);

#endif
