/*
 * reload.c - the engine's hot reload (see reload.h): the new template set
 * with the previous version of each broken file kept, the changed
 * scripts swapped in with their instances replaced, the static configs
 * diffed by instance id, and the set handed to discovery.
 */
#include "core/reload.h"

#include "core/base/json.h"
#include "core/base/util.h"
#include "core/engine.h"
#include "lua/sandbox.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- templates */

/* 1 when a problem of `diag` (from `from` on) is about `file`. */
static int file_broken(const mw__diag *diag, size_t from, const char *file)
{
    size_t n = strlen(file);
    for (size_t i = from; i < diag->n; i++)
        if (strncmp(diag->items[i], file, n) == 0 && diag->items[i][n] == ':')
            return 1;
    return 0;
}

static void template_clear(mw__template *t)
{
    free(t->check);
    free(t->file);
    cJSON_Delete(t->ad_identifiers);
    cJSON_Delete(t->init_config);
    cJSON_Delete(t->instances);
}

/* A deep copy of `src` appended to `set`; MW_OK or MW_ENOMEM. */
static mw_code template_append_copy(mw__template_set *set, const mw__template *src)
{
    mw__template t = *src;
    t.check = mw__strdup(src->check);
    t.file = mw__strdup(src->file);
    t.ad_identifiers = src->ad_identifiers ? cJSON_Duplicate(src->ad_identifiers, 1) : NULL;
    t.init_config = cJSON_Duplicate(src->init_config, 1);
    t.instances = cJSON_Duplicate(src->instances, 1);
    if (!t.check || !t.file || (src->ad_identifiers && !t.ad_identifiers) || !t.init_config ||
        !t.instances || mw__grow(&set->v, &set->cap, set->n + 1, sizeof *set->v) != MW_OK) {
        template_clear(&t);
        return MW_ENOMEM;
    }
    set->v[set->n++] = t;
    return MW_OK;
}

/* Drops from `set` what came from a file with a problem in `diag` past
 * `from`, and puts back the previous version of those files from `old`. */
static mw_code keep_broken(mw__template_set *set, const mw__template_set *old, const mw__diag *diag,
                           size_t from)
{
    size_t k = 0;
    for (size_t i = 0; i < set->n; i++) {
        if (file_broken(diag, from, set->v[i].file))
            template_clear(&set->v[i]);
        else
            set->v[k++] = set->v[i];
    }
    set->n = k;
    for (size_t i = 0; i < old->n; i++)
        if (file_broken(diag, from, old->v[i].file) &&
            template_append_copy(set, &old->v[i]) != MW_OK)
            return MW_ENOMEM;
    return MW_OK;
}

/* ------------------------------------------------------------- static configs */

typedef struct stat_inst {
    char *id;
    const mw__template *t;
    const cJSON *inst;
} stat_inst;

static int by_id(const void *a, const void *b)
{
    return strcmp(((const stat_inst *)a)->id, ((const stat_inst *)b)->id);
}

static void stat_free(stat_inst *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].id);
    free(v);
}

/* 1 when `t` runs at start (a static config that can run). */
static int is_static(const mw__template *t)
{
    return !t->ad_identifiers && !t->idle && !t->no_check;
}

static int by_file(const void *a, const void *b)
{
    const mw__template *x = *(const mw__template *const *)a, *y = *(const mw__template *const *)b;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->check, y->check);
}

/* 1 when `a` and `b` schedule the very same static instances. */
static int same_static(const mw__template *a, const mw__template *b)
{
    return is_static(a) == is_static(b) && strcmp(a->check, b->check) == 0 &&
           cJSON_Compare(a->init_config, b->init_config, 1) &&
           cJSON_Compare(a->instances, b->instances, 1);
}

/* The templates of `set` sorted by file; NULL on OOM. */
static const mw__template **sorted(const mw__template_set *set)
{
    const mw__template **v = calloc(set->n + 1, sizeof *v);
    for (size_t i = 0; v && i < set->n; i++)
        v[i] = &set->v[i];
    if (v)
        qsort(v, set->n, sizeof *v, by_file);
    return v;
}

/* Marks in `keep_a`/`keep_b` the templates of `a` and `b` (sorted by
 * file) that are the same file with the same static instances: only the
 * others are diffed, so a reload costs what changed, not what runs. */
static void mark_unchanged(const mw__template **a, size_t na, const mw__template **b, size_t nb,
                           char *keep_a, char *keep_b)
{
    size_t i = 0, j = 0;
    while (i < na && j < nb) {
        int c = by_file(&a[i], &b[j]);
        if (c == 0 && same_static(a[i], b[j]))
            keep_a[i] = keep_b[j] = 1;
        i += c <= 0;
        j += c >= 0;
    }
}

static size_t static_count(const mw__template **v, size_t n, const char *keep)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (!keep[i] && is_static(v[i]))
            c += (size_t)cJSON_GetArraySize(v[i]->instances);
    return c;
}

/* The static instances of the templates of `v` not kept, sorted by id;
 * NULL on OOM. */
static stat_inst *static_list(const mw__template **v, size_t nv, const char *keep, size_t *n)
{
    stat_inst *out = calloc(static_count(v, nv, keep) + 1, sizeof *out);
    *n = 0;
    for (size_t i = 0; out && i < nv; i++) {
        const mw__template *t = v[i];
        const cJSON *inst;
        if (keep[i] || !is_static(t))
            continue;
        cJSON_ArrayForEach(inst, t->instances)
        {
            out[*n] = (stat_inst){mw__instance_id(t->check, t->init_config, inst), t, inst};
            if (!out[*n].id) {
                stat_free(out, *n);
                return NULL;
            }
            (*n)++;
        }
    }
    if (out)
        qsort(out, *n, sizeof *out, by_id);
    return out;
}

static void add_static(mw_engine *eng, const stat_inst *s, mw__diag *diag, mw__reload_result *res)
{
    char *err = NULL;
    mw_code rc = mw__engine_schedule_id(eng, s->t->check, s->t->file, s->inst, s->t->init_config,
                                        s->id, &err);
    if (rc == MW_OK)
        res->added++;
    else
        mw__diag_add(diag, s->t->file, 0, 0, "check %s: %s", s->t->check,
                     err ? err : mw_strerror(rc));
    free(err);
}

/* Applies the id diff of the static instances `a` (before) and `b`
 * (after), both sorted: unschedules what only `a` has, schedules what
 * only `b` has. */
static void apply_diff(mw_engine *eng, const stat_inst *a, size_t na, const stat_inst *b, size_t nb,
                       mw__diag *diag, mw__reload_result *res)
{
    size_t i = 0, j = 0;
    while (i < na || j < nb) {
        int c = i == na ? 1 : j == nb ? -1 : strcmp(a[i].id, b[j].id);
        if (c < 0 && mw__sched_remove(mw__engine_sched(eng), a[i].id) == MW_OK)
            res->removed++;
        if (c > 0)
            add_static(eng, &b[j], diag, res);
        i += c <= 0;
        j += c >= 0;
    }
}

/* Unschedules the static instances only `old` has, schedules those only
 * `set` has; files whose static instances did not change are skipped. */
static mw_code diff_static(mw_engine *eng, const mw__template_set *old, const mw__template_set *set,
                           mw__diag *diag, mw__reload_result *res)
{
    size_t na = 0, nb = 0;
    const mw__template **va = sorted(old), **vb = sorted(set);
    char *ka = calloc(old->n + 1, 1), *kb = calloc(set->n + 1, 1);
    stat_inst *a = NULL, *b = NULL;
    mw_code rc = MW_ENOMEM;
    if (!va || !vb || !ka || !kb)
        goto out;
    mark_unchanged(va, old->n, vb, set->n, ka, kb);
    if (!(a = static_list(va, old->n, ka, &na)) || !(b = static_list(vb, set->n, kb, &nb)))
        goto out;
    apply_diff(eng, a, na, b, nb, diag, res);
    rc = MW_OK;
out:
    if (a)
        stat_free(a, na);
    if (b)
        stat_free(b, nb);
    free(va);
    free(vb);
    free(ka);
    free(kb);
    return rc;
}

/* ------------------------------------------------------------- scripts */

/* The current text of `s`'s check into `*out` when it changed and
 * compiles; NULL when unchanged, gone or broken (the problem in `diag`). */
static void script_fresh(mw_engine *eng, const mw__script *s, mw__diag *diag, mw__script **out)
{
    const mw__strlist *dirs = mw__engine_checks_dirs(eng);
    char *path = mw__check_find((const char *const *)dirs->v, dirs->n, s->check), *err = NULL;
    mw__script *n = NULL;
    *out = NULL;
    if (!path)
        goto out; /* gone: the instances keep the script they have */
    if (mw__script_load(s->check, path, &n, &err) != MW_OK) {
        mw__diag_add(diag, path, 0, 0, "%s", err ? err : "cannot read");
        goto out;
    }
    if (n->len == s->len && strcmp(n->path, s->path) == 0 && memcmp(n->text, s->text, s->len) == 0)
        goto out;
    if (mw__sandbox_check_syntax(path, diag) != MW_OK)
        goto out;
    *out = n;
    n = NULL;
out:
    mw__script_unref(n);
    free(err);
    free(path);
}

/* Replaces every instance running `old` by one of the same config and id
 * running the script now loaded for the check. */
static void replace_users(mw_engine *eng, const mw__script *old, mw__diag *diag,
                          mw__reload_result *res)
{
    cJSON *users = NULL, *u;
    if (mw__sched_script_users(mw__engine_sched(eng), old, &users) != MW_OK) {
        mw__diag_add(diag, old->path, 0, 0, "out of memory: instances kept");
        return;
    }
    cJSON_ArrayForEach(u, users)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(u, "id"));
        const char *src = cJSON_GetStringValue(cJSON_GetObjectItem(u, "source"));
        char *err = NULL;
        mw__sched_remove(mw__engine_sched(eng), id);
        mw_code rc =
            mw__engine_schedule_id(eng, old->check, src, cJSON_GetObjectItem(u, "instance"),
                                   cJSON_GetObjectItem(u, "init_config"), id, &err);
        if (rc == MW_OK)
            res->replaced++;
        else
            mw__diag_add(diag, src, 0, 0, "%s: %s", id, err ? err : mw_strerror(rc));
        free(err);
    }
    cJSON_Delete(users);
}

/* Swaps in each script that changed and compiles, replacing its instances. */
static void reload_scripts(mw_engine *eng, mw__diag *diag, mw__reload_result *res)
{
    size_t n = 0;
    mw__script **v = mw__engine_scripts(eng, &n);
    for (size_t i = 0; i < n; i++) {
        mw__script *fresh = NULL, *old = v[i];
        script_fresh(eng, old, diag, &fresh);
        if (!fresh)
            continue;
        v[i] = fresh; /* instances scheduled from now on take it */
        replace_users(eng, old, diag, res);
        mw__script_unref(old);
        res->scripts++;
    }
}

/* ------------------------------------------------------------- the run */

mw_code mw__reload_run(mw_engine *eng, mw__diag *diag, mw__reload_result *res)
{
    mw__discovery *disc = mw__engine_discovery(eng);
    mw__template_set set = {0};
    size_t from = diag->n;
    mw_code rc = MW_ESTATE;
    memset(res, 0, sizeof *res);
    if (!disc)
        goto out;
    const mw__template_set *old = mw__discovery_templates(disc);
    mw__engine_load_templates(eng, &set, diag);
    if ((rc = keep_broken(&set, old, diag, from)) != MW_OK)
        goto out;
    reload_scripts(eng, diag, res);
    if ((rc = diff_static(eng, old, &set, diag, res)) != MW_OK)
        goto out;
    mw__discovery_set_templates(disc, &set); /* `old` is freed there */
    res->services = mw__discovery_services(disc);
out:
    mw__template_set_free(&set);
    return rc;
}
