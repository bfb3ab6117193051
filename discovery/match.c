/*
 * match.c - the check configs one service wants: file templates whose
 * ad_identifiers name it, and the configs in its own labels, each
 * instance resolved against the service and given its tags.
 *
 * The result owns every item and string in it; the template set and the
 * service are only read. An instance that does not resolve becomes an
 * item with a reason and never disturbs its neighbours.
 */
#include "discovery/match.h"

#include "core/base/util.h"
#include "discovery/labels.h"

#include <stdlib.h>
#include <string.h>

#define CHECK_ID_LABEL "com.datadoghq.ad.check.id"

size_t mw__match_identifiers(const mw__service *svc, const char *out[3])
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(svc->labels, CHECK_ID_LABEL);
    size_t n = 0;
    if (cJSON_IsString(id) && id->valuestring && id->valuestring[0]) {
        out[0] = id->valuestring;
        return 1;
    }
    const char *lng = svc->image_long, *shrt = svc->image_short;
    if (svc->id && svc->id[0])
        out[n++] = svc->id;
    if (lng && lng[0] && !(shrt && strcmp(lng, shrt) == 0))
        out[n++] = lng;
    if (shrt && shrt[0])
        out[n++] = shrt;
    return n;
}

/* ------------------------------------------------------------ result */

static void item_free(mw__match_item *it)
{
    free(it->check);
    free(it->source);
    cJSON_Delete(it->init_config);
    cJSON_Delete(it->instance);
    free(it->reason);
}

/* Moves `it` into `r`; on failure `it` stays the caller's. MW_OK, or
 * MW_ENOMEM. */
static mw_code push_item(mw__match_result *r, mw__match_item *it)
{
    if (mw__grow(&r->v, &r->cap, r->n + 1, sizeof *r->v) != MW_OK)
        return MW_ENOMEM;
    r->v[r->n++] = *it;
    memset(it, 0, sizeof *it);
    return MW_OK;
}

/* MW_OK, or MW_ENOMEM. */
static mw_code push_problem(mw__match_result *r, const char *svc_id, const char *msg)
{
    char *line = mw__sprintf("%s %s", svc_id ? svc_id : "?", msg);
    char **nv = line ? realloc(r->problems, (r->nproblems + 1) * sizeof *nv) : NULL;
    if (!nv) {
        free(line);
        return MW_ENOMEM;
    }
    r->problems = nv;
    r->problems[r->nproblems++] = line;
    return MW_OK;
}

void mw__match_result_free(mw__match_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        item_free(&r->v[i]);
    free(r->v);
    for (size_t i = 0; i < r->nproblems; i++)
        free(r->problems[i]);
    free(r->problems);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------ tags */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A sorted, deduplicated array of the strings in `v` (n of them). */
static cJSON *sorted_unique(const char **v, size_t n)
{
    cJSON *out = cJSON_CreateArray();
    qsort(v, n, sizeof *v, cmp_str);
    for (size_t i = 0; out && i < n; i++) {
        if (i > 0 && strcmp(v[i], v[i - 1]) == 0)
            continue;
        cJSON *s = cJSON_CreateString(v[i]);
        if (!s || !cJSON_AddItemToArray(out, s)) {
            cJSON_Delete(s);
            cJSON_Delete(out);
            out = NULL;
        }
    }
    return out;
}

/*
 * Merges the service's tags into the instance's `tags`. MW_OK; MW_EINVAL
 * with *reason set when `tags` is not a list of strings; MW_ENOMEM.
 */
static mw_code merge_tags(cJSON *inst, const mw__service *svc, char **reason)
{
    cJSON *tags = cJSON_GetObjectItemCaseSensitive(inst, "tags");
    size_t n = 0, own = 0;
    int i = 0;
    if (tags && !cJSON_IsNull(tags) && !cJSON_IsArray(tags)) {
        *reason =
            mw__sprintf("\"tags\" must be a list of strings, found %s", mw__json_type_name(tags));
        return *reason ? MW_EINVAL : MW_ENOMEM;
    }
    for (const cJSON *t = cJSON_IsArray(tags) ? tags->child : NULL; t; t = t->next, i++) {
        if (cJSON_IsString(t))
            continue;
        *reason = mw__sprintf("\"tags\"[%d] must be a string, found %s", i, mw__json_type_name(t));
        return *reason ? MW_EINVAL : MW_ENOMEM;
    }
    own = (size_t)i;
    if (own + svc->ntags == 0)
        return MW_OK;
    const char **all = malloc((own + svc->ntags) * sizeof *all);
    if (!all)
        return MW_ENOMEM;
    for (const cJSON *t = cJSON_IsArray(tags) ? tags->child : NULL; t; t = t->next)
        all[n++] = t->valuestring;
    for (size_t k = 0; k < svc->ntags; k++)
        all[n++] = svc->tags[k];
    cJSON *merged = sorted_unique(all, n);
    free(all);
    if (!merged)
        return MW_ENOMEM;
    /* `all` borrowed from `tags`: replace only after the copy is made.
     * The key is set here, checked: cJSON's own replace does not check
     * its copy of the key. */
    merged->string = mw__strdup("tags");
    if (!merged->string || (tags ? !cJSON_ReplaceItemViaPointer(inst, tags, merged)
                                 : !cJSON_AddItemToObject(inst, "tags", merged))) {
        cJSON_Delete(merged);
        return MW_ENOMEM;
    }
    return MW_OK;
}

/* ------------------------------------------------------------ items */

typedef struct config_ref {
    const char *check;
    const char *source;
    const cJSON *init_config;
    int ignore_ad_tags;
} config_ref;

/* Resolves init_config and the instance into `it`. MW_OK; MW_EINVAL
 * with it->reason set when they do not resolve; MW_ENOMEM. */
static mw_code resolve_item(mw__match_item *it, const config_ref *cfg, const cJSON *inst,
                            const mw__service *svc, const mw__tmplvars_opts *vars)
{
    char *why = NULL;
    mw_code rc = mw__tmplvars_resolve(cfg->init_config, svc, vars, &it->init_config, &why);
    if (rc == MW_EINVAL && !(it->reason = mw__sprintf("init_config: %s", why)))
        rc = MW_ENOMEM;
    free(why);
    if (rc != MW_OK)
        return rc;
    rc = mw__tmplvars_resolve(inst, svc, vars, &it->instance, &it->reason);
    if (rc != MW_OK)
        return rc;
    if (!cfg->ignore_ad_tags &&
        !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it->instance, "ignore_autodiscovery_tags")))
        rc = merge_tags(it->instance, svc, &it->reason);
    return rc;
}

/* One item per instance of `list`. MW_OK, or MW_ENOMEM. */
static mw_code add_items(mw__match_result *r, const config_ref *cfg, const cJSON *list,
                         const mw__service *svc, const mw__tmplvars_opts *vars)
{
    size_t idx = 0;
    for (const cJSON *inst = list ? list->child : NULL; inst; inst = inst->next, idx++) {
        mw__match_item it = {.index = idx};
        mw_code rc = MW_ENOMEM;
        it.check = mw__strdup(cfg->check);
        it.source = mw__strdup(cfg->source);
        if (it.check && it.source)
            rc = resolve_item(&it, cfg, inst, svc, vars);
        if (rc == MW_EINVAL) {
            /* Never half-filled: an unresolved item carries no config. */
            cJSON_Delete(it.init_config);
            cJSON_Delete(it.instance);
            it.init_config = it.instance = NULL;
            rc = MW_OK;
        }
        if (rc == MW_OK)
            rc = push_item(r, &it);
        item_free(&it);
        if (rc != MW_OK)
            return rc;
    }
    return MW_OK;
}

/* ------------------------------------------------------------ matching */

/* The identifier every service of its origin matches, and no other. */
static const char *origin_identifier(const mw__service *svc)
{
    return svc->origin == MW_SVC_TASK_METADATA ? MW_AD_ECS_TASK_CONTAINER : MW_AD_ANY_CONTAINER;
}

static int template_matches(const mw__template *t, const mw__service *svc, const char *const *ids,
                            size_t nids)
{
    const cJSON *ad;
    cJSON_ArrayForEach(ad, t->ad_identifiers)
    {
        if (cJSON_IsString(ad) && strcmp(ad->valuestring, origin_identifier(svc)) == 0)
            return 1;
        for (size_t i = 0; cJSON_IsString(ad) && i < nids; i++)
            if (strcmp(ad->valuestring, ids[i]) == 0)
                return 1;
    }
    return 0;
}

static int label_has_check(const mw__label_configs *lc, const char *check)
{
    for (size_t i = 0; i < lc->n; i++)
        if (strcmp(lc->v[i].check, check) == 0)
            return 1;
    return 0;
}

/* MW_OK, or MW_ENOMEM. */
static mw_code match_templates(const mw__template_set *set, const mw__service *svc,
                               const mw__tmplvars_opts *vars, const mw__label_configs *lc,
                               mw__match_result *out)
{
    const char *ids[3];
    size_t nids = mw__match_identifiers(svc, ids);
    mw_code rc;
    for (size_t i = 0; set && !lc->disable_files && i < set->n; i++) {
        const mw__template *t = &set->v[i];
        if (!t->ad_identifiers || t->no_check || label_has_check(lc, t->check) ||
            !template_matches(t, svc, ids, nids))
            continue;
        config_ref cfg = {t->check, t->file, t->init_config, t->ignore_ad_tags};
        if ((rc = add_items(out, &cfg, t->instances, svc, vars)) != MW_OK)
            return rc;
    }
    return MW_OK;
}

/* MW_OK, or MW_ENOMEM. */
static mw_code match_labels(const mw__label_configs *lc, const mw__service *svc,
                            const mw__tmplvars_opts *vars, mw__match_result *out)
{
    for (size_t i = 0; i < lc->n; i++) {
        const mw__label_config *c = &lc->v[i];
        char *source = mw__sprintf("label:%s", c->source);
        config_ref cfg = {c->check, source, c->init_config, c->ignore_ad_tags};
        mw_code rc = source ? add_items(out, &cfg, c->instances, svc, vars) : MW_ENOMEM;
        free(source);
        if (rc != MW_OK)
            return rc;
    }
    return MW_OK;
}

mw_code mw__match_service(const mw__template_set *set, const mw__service *svc,
                          const mw__tmplvars_opts *vars, mw__match_result *out)
{
    mw__label_configs lc = {0};
    mw_code rc = mw__label_configs_parse(svc->labels, &lc);
    for (size_t i = 0; rc == MW_OK && i < lc.nerrors; i++)
        rc = push_problem(out, svc->id, lc.errors[i]);
    if (rc == MW_OK)
        rc = match_templates(set, svc, vars, &lc, out);
    if (rc == MW_OK)
        rc = match_labels(&lc, svc, vars, out);
    mw__label_configs_free(&lc);
    return rc;
}
