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

#include "core/diag.h"

typedef struct mw__filter mw__filter;

/*
 * Compiles the lists (either may be NULL or empty). Each bad item (an
 * unknown prefix, a regex that does not compile) is added to `diag` as
 * "<what>: item N '<item>': <reason>", where `what` names the origin
 * ("DD_CONTAINER_EXCLUDE", "config container_exclude"), and skipped; the
 * others still apply. Returns NULL only on OOM.
 */
mw__filter *mw__filter_new(const char *include, const char *exclude, const char *what,
                           mw__diag *diag);
void mw__filter_free(mw__filter *f);

/* 1 when the container (name without '/', image as written) is excluded. */
int mw__filter_excluded(const mw__filter *f, const char *name, const char *image);

#endif
