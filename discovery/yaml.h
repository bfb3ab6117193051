/*
 * yaml.h - YAML documents (libyaml) as cJSON trees.
 *
 * Scalars are typed the way users of Datadog configs expect: plain
 * integers and floats become numbers, true/false (any case) booleans,
 * null/~/empty nulls; quoted scalars stay strings. Anchors and aliases are
 * resolved. Errors land in `diag` as "name:line:col: message".
 *
 * The returned tree is the caller's (cJSON_Delete). Line numbers of the
 * nodes are kept in a side table only while parsing; callers that need a
 * position for a semantic error get it from mw__yaml_where().
 */
#ifndef MW_YAML_H
#define MW_YAML_H

#include "core/diag.h"

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct mw__yaml_pos {
    const cJSON *node;
    int line, col; /* 1-based */
} mw__yaml_pos;

/* Positions of the nodes of one parsed document (owned by the caller,
 * freed with mw__yaml_doc_free). */
typedef struct mw__yaml_doc {
    cJSON *root;
    mw__yaml_pos *pos;
    size_t npos;
} mw__yaml_doc;

/* Parses `len` bytes named `name` (for messages). Returns 0, or -1 after
 * adding the problem to `diag`. An empty document gives a NULL root. */
int mw__yaml_parse(const char *buf, size_t len, const char *name,
                   mw__yaml_doc *doc, mw__diag *diag);
/* Same, reading the file `path` (at most 4 MiB). */
int mw__yaml_load(const char *path, mw__yaml_doc *doc, mw__diag *diag);
void mw__yaml_doc_free(mw__yaml_doc *doc);

/* The position of `node` in its document; {0,0} when unknown. */
mw__yaml_pos mw__yaml_where(const mw__yaml_doc *doc, const cJSON *node);

#endif
