/*
 * filter.h - container include/exclude lists in Datadog's
 * DD_CONTAINER_INCLUDE / DD_CONTAINER_EXCLUDE syntax: space-separated
 * `image:<regex>` and `name:<regex>` items (`kube_namespace:` items are
 * accepted and ignored). Regexes are POSIX extended, unanchored (a match
 * anywhere counts, as with Go's MatchString). A container that matches an
 * include item is kept even if it matches an exclude item.
 *
 * Besides the given lists, the pause containers of ECS and Kubernetes
 * (Datadog's default pause list) are excluded unless included.
 *
 * A mw__filter owns its compiled regexes. It is immutable once built and
 * may be shared by threads.
 */
#ifndef MW_FILTER_H
#define MW_FILTER_H

#include "core/base/diag.h"

typedef struct mw__filter mw__filter;

/*
 * Compiles the lists (either may be NULL or empty). Each bad item (an
 * unknown prefix, an empty regex, a regex that does not compile) is added
 * to `diag` (when not NULL) as "<what>: include item N '<item>': <reason>"
 * or "<what>: exclude item N ...", N counting from 1 within its list,
 * where `what` names the origin ("DD_CONTAINER_INCLUDE/EXCLUDE",
 * "config"; NULL: "container filter"), and skipped; the others still
 * apply. Returns NULL only on OOM.
 */
mw__filter *mw__filter_new(const char *include, const char *exclude, const char *what,
                           mw__diag *diag);
void mw__filter_free(mw__filter *f);

/* 1 when the container (name without '/', image as written) is excluded.
 * A NULL filter excludes nothing. */
int mw__filter_excluded(const mw__filter *f, const char *name, const char *image);

#endif
