/*
 * template.h - check templates from template directories, in the Datadog
 * layout: `<dir>/<check>.d/<any>.yaml` or `.yml` (and `<any>.yaml.default`,
 * used only when the check has no other config) and `<dir>/<check>.yaml`.
 * Hidden files, other extensions (`conf.yaml.example`) and Datadog's JMX
 * `metrics.yaml` are not templates.
 *
 * Keys: ad_identifiers (absent: a static config, scheduled at start),
 * init_config, instances (each with optional min_collection_interval,
 * tags, service, timeout, ignore_autodiscovery_tags, memory_limit_mb).
 * Each problem lands in a mw__diag as "file:line:col: message" and only
 * that file (or that instance) is skipped. A min_collection_interval
 * below 1 is set to 1 and reported, without skipping anything. A known
 * option set to null is removed (absent); one that holds a template
 * variable is checked once resolved.
 *
 * The rest of Datadog's file format loads as the Agent reads it:
 * - `logs` or `jmx_metrics` with no instances (a logs-only or JMX metrics
 *   file): nothing loaded, nothing reported;
 * - `discovery: {...}` with no instances (configuration discovery): a
 *   template with no instances, `idle` saying why;
 * - null items of `instances` (a `-` holding only comments) are skipped
 *   silently; a file with nothing else is loaded `idle`;
 * - top-level `ignore_autodiscovery_tags` (all instances),
 *   `check_tag_cardinality` (low, orchestrator or high; every container
 *   tag is added whatever it says), `cel_selector` (a mapping; not
 *   evaluated: matching uses ad_identifiers), `advanced_ad_identifiers`
 *   (Kubernetes services: loaded `idle` when there are no
 *   ad_identifiers); `docker_images` without ad_identifiers is a problem;
 *   other top-level keys are ignored.
 *
 * A mw__template_set owns its templates and their cJSON trees.
 */
#ifndef MW_TEMPLATE_H
#define MW_TEMPLATE_H

#include "core/base/diag.h"

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct mw__template {
    char *check;           /* check name */
    char *file;            /* path of the YAML file it came from */
    cJSON *ad_identifiers; /* array of strings; NULL for a static config */
    cJSON *init_config;    /* object, {} when absent or null */
    cJSON *instances;      /* array of objects; empty only when `idle` */
    int is_default;        /* from a *.yaml.default file */
    int ignore_ad_tags;    /* top-level ignore_autodiscovery_tags: true */
    int no_check;          /* no <check>.lua (mw__template_set_mark_checks) */
    const char *idle;      /* static text: why the file schedules nothing
                            * by itself (configuration discovery, only
                            * empty items, advanced_ad_identifiers); NULL
                            * when it can */
} mw__template;

typedef struct mw__template_set {
    mw__template *v;
    size_t n, cap;
} mw__template_set;

/* Loads every template under `dir` into `set`, in a stable order (sorted
 * by path). `.default` files of a check that has another file in any
 * directory loaded into the same set are dropped by
 * mw__template_set_finish(). Returns the number of problems added. */
size_t mw__templates_load_dir(mw__template_set *set, const char *dir, mw__diag *diag);

/* Parses one template file for check `check` and appends it (a Datadog
 * logs-only or JMX metrics file appends nothing). MW_OK; else, after
 * adding its problems to `diag`: MW_EIO (the file cannot be read),
 * MW_EPARSE (not YAML), MW_EINVAL (not a usable template), MW_ENOMEM. */
mw_code mw__template_load_file(mw__template_set *set, const char *path, const char *check,
                               mw__diag *diag);

/* Drops `.default` configs superseded by another config of the same check. */
void mw__template_set_finish(mw__template_set *set);

/* Sets `no_check` on every template whose check has no `<check>.lua` in
 * `dirs` (mw__check_find). Returns how many templates have none. */
size_t mw__template_set_mark_checks(mw__template_set *set, const char *const *dirs, size_t ndirs);

/* Why nothing is scheduled from `t` whatever the containers: its `idle`
 * reason, "no check named <check> (...)", or both joined by "; ". NULL
 * when it can run, or when the text cannot be allocated. Caller frees. */
char *mw__template_not_scheduled(const mw__template *t);
void mw__template_set_free(mw__template_set *set);

/* The check name a template path stands for: "<check>" from
 * ".../<check>.d/x.yaml" or ".../<check>.yaml" (a parent named `conf.d`
 * is Datadog's root, not a check); NULL when neither or when the name is
 * not a valid check name (caller frees). */
char *mw__template_check_name(const char *path);

/* 1 when the `n` bytes at `s` make a valid check name. Check names become
 * file names: [A-Za-z0-9_.-] only, no "..", no leading '.', at most 250
 * bytes - no path separators, no hidden files, nothing a shell or a URL
 * would need quoting for. Labels are held to the same rule. */
int mw__check_name_valid(const char *s, size_t n);

/* Finds `<name>.lua` in the checks directories, first regular file wins.
 * Returns a path the caller frees, or NULL. Names with '/', '..', a
 * leading '.', more than 250 bytes or anything other than [A-Za-z0-9_.-]
 * are refused (NULL). */
char *mw__check_find(const char *const *dirs, size_t ndirs, const char *name);

#endif
