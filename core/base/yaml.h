/*
 * yaml.h - YAML documents (libyaml) as cJSON trees.
 *
 * Scalars are typed the way users of Datadog configs expect (the Agent
 * reads them as YAML 1.1): plain integers (decimal, 0x, 0o) and floats
 * (.5, 1e3) become numbers, true/false (any case) and yes/no/on/off
 * (lower, Title or UPPER case) booleans, null/~/empty nulls. Quoted and
 * block scalars, `!!str`, y/n, .inf/.nan and integers a double cannot hold
 * exactly stay strings. Mapping keys are always strings; a duplicate key
 * is an error. Anchors, aliases and `<<` merge keys are resolved, at most
 * 100000 nodes in all. Only the first document of a stream is read. Input
 * is capped at 4 MiB, nesting at 128 levels. Errors land in `diag` as
 * "name:line:col: message".
 *
 * The returned tree is the caller's (cJSON_Delete via mw__yaml_doc_free),
 * with the position of each of its nodes (alias copies: the alias's) so
 * that a semantic error found later gets one from mw__yaml_where().
 */
#ifndef MW_YAML_H
#define MW_YAML_H

#include "moonwatch.h"
#include "core/base/diag.h"

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

/* Parses `len` bytes named `name` (for messages). MW_OK; MW_EPARSE or
 * MW_ENOMEM after adding the problem to `diag`. An empty document gives a
 * NULL root. */
mw_code mw__yaml_parse(const char *buf, size_t len, const char *name, mw__yaml_doc *doc,
                       mw__diag *diag);
/* Same, reading the file `path` (at most 4 MiB; MW_EIO when it cannot be
 * read, MW_EPARSE when it is larger). */
mw_code mw__yaml_load(const char *path, mw__yaml_doc *doc, mw__diag *diag);
void mw__yaml_doc_free(mw__yaml_doc *doc);

/* The position of `node` in its document; {0,0} when unknown. */
mw__yaml_pos mw__yaml_where(const mw__yaml_doc *doc, const cJSON *node);

#endif
