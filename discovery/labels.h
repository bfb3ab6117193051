/*
 * labels.h - check configs carried by a container's own labels, in
 * Datadog's two formats, under the prefixes `com.datadoghq.ad.` and
 * `moonwatch.ad.`:
 *
 *   v1: <prefix>check_names, <prefix>init_configs, <prefix>instances -
 *       JSON arrays of equal length; element i of `instances` is one
 *       instance object or a list of them.
 *   v2: <prefix>checks - a JSON object {check: {init_config?, instances,
 *       logs?}}; when present it wins over v1 of the same prefix.
 *
 *   Also <prefix>ignore_autodiscovery_tags ("true", "1", "t"...) for v1,
 *   and "ignore_autodiscovery_tags": true / "name" inside a v2 check.
 *
 * When both prefixes carry a config, `moonwatch.ad.` wins for the checks
 * it names. Labels are untrusted: a check name must be a plain name
 * ([A-Za-z0-9_.-], no leading '.', no "..", at most 250 bytes, the rule of
 * mw__check_find()) and nothing in a label can name a script, a path or
 * code (those are decided by the operator's checks directories). Each
 * label value is capped at MW_LABEL_JSON_MAX bytes.
 *
 * A problem costs only what it touches: bad JSON or unequal v1 lengths
 * drop that prefix's format; a bad name, init_config or instance drops
 * that one check; the other checks of the container still load. A v2
 * check with `logs` and no instances (Datadog logs-only) is skipped
 * without a problem.
 *
 * Tags: <prefix>tags (`com.datadoghq.ad.tags`) is a JSON list of
 * "key:value" strings the Datadog Agent adds to everything the container
 * reports; the service model adds them to the container's tags
 * (mw__label_tags), so they reach its instances as the other container
 * tags do. As the Agent reads them, an item that is not a string with
 * exactly one ':' between a non-empty key and value is skipped; here it
 * is also reported. At most MW_LABEL_TAGS_MAX tags per label, each at
 * most MW_LABEL_TAG_MAX bytes.
 *
 * Every mw__label_config owns its strings and cJSON trees.
 */
#ifndef MW_LABELS_H
#define MW_LABELS_H

#include "moonwatch.h"

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct mw__label_config {
    char *check;
    char *source;       /* the label it came from, e.g. "com.datadoghq.ad.checks" */
    cJSON *init_config; /* object ({} when absent or null) */
    cJSON *instances;   /* array of objects, at least one (a v1 element
                         * that is a list contributes all of its objects) */
    int ignore_ad_tags; /* the config asks for no autodiscovery tags */
} mw__label_config;

#define MW_LABEL_JSON_MAX (256 * 1024)
#define MW_LABEL_TAGS_MAX 100
#define MW_LABEL_TAG_MAX  200

typedef struct mw__label_configs {
    mw__label_config *v; /* sorted by check name (stable: configs of the
                          * same check keep their label order) */
    size_t n, cap;
    int disable_files; /* a v1 check_names of [] was given: no file
                        * template applies to this container */
    char **errors;     /* one message per problem: "label <key>: <reason>"
                        * (bad JSON with its byte offset, unequal lengths,
                        * bad check name, wrong types); the configs that
                        * parsed are still in `v` */
    size_t nerrors;
} mw__label_configs;

/*
 * Reads the label configs of a container from `labels` (an object of
 * strings; NULL: none). MW_OK (problems are in `out->errors`), or
 * MW_ENOMEM (what was read so far is kept in `out`, which
 * mw__label_configs_free() releases either way).
 */
mw_code mw__label_configs_parse(const cJSON *labels, mw__label_configs *out);
void mw__label_configs_free(mw__label_configs *c);

/* Takes one tag (borrowed for the call); anything but MW_OK stops. */
typedef mw_code (*mw__label_tag_fn)(void *ud, const char *tag);

/*
 * Calls `add(ud, tag)` for each tag of the `<prefix>tags` labels of
 * `labels` (both prefixes, `com.datadoghq.ad.` first). When `problems` is
 * not NULL, each thing skipped is added to its errors, as
 * mw__label_configs_parse() does. MW_OK; MW_ENOMEM when a report fails;
 * the code `add` stopped with.
 */
mw_code mw__label_tags(const cJSON *labels, mw__label_tag_fn add, void *ud,
                       mw__label_configs *problems);

/* "an object", "a list", "a string", "a number", "a boolean" or "null",
 * for messages about a JSON value of the wrong kind. */
const char *mw__json_type_name(const cJSON *v);

#endif
