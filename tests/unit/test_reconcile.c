/*
 * test_reconcile.c - the instance diff: services in, schedule/unschedule
 * calls out. Proves: one schedule per new config, nothing for an
 * unchanged service, a changed service only swaps the configs that
 * changed, a removed service releases its instances, a restarted
 * container gets the same id, two services resolving the same config
 * share one instance, refusals and unresolved configs are kept with their
 * reason, freeing unschedules whatever is left, and with a scheduler that
 * gives configs back the configs it describes are the scheduler's.
 */
#include "core/base/util.h"
#include "discovery/reconcile.h"
#include "test.h"
#include "tests/support/svc_spec.h"

#include <stdlib.h>

/* ------------------------------------------------------------- fakes */

typedef struct calls {
    char *log[64]; /* "+id" or "-id" */
    size_t n;
    const char *refuse; /* check name the fake scheduler refuses */
    cJSON *store;       /* id -> {instance, init_config}; NULL: none kept */
    size_t asked;       /* configs asked back */
} calls;

static void calls_reset(calls *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->log[i]);
    c->n = 0;
}

static mw_code fake_schedule(void *ud, const mw__match_item *it, const char *id, char **err)
{
    calls *c = ud;
    if (c->refuse && strcmp(it->check, c->refuse) == 0) {
        *err = mw__sprintf("no check script %s.lua in the checks directories", it->check);
        return MW_ENOTFOUND;
    }
    if (c->n < MW_ARRAY_LEN(c->log))
        c->log[c->n++] = mw__sprintf("+%s", id);
    if (c->store) {
        cJSON *o = cJSON_AddObjectToObject(c->store, id);
        cJSON_AddItemToObject(o, "instance", cJSON_Duplicate(it->instance, 1));
        cJSON_AddItemToObject(o, "init_config", cJSON_Duplicate(it->init_config, 1));
    }
    return MW_OK;
}

static void fake_unschedule(void *ud, const char *id)
{
    calls *c = ud;
    if (c->n < MW_ARRAY_LEN(c->log))
        c->log[c->n++] = mw__sprintf("-%s", id);
    cJSON_DeleteItemFromObjectCaseSensitive(c->store, id);
}

static mw_code fake_config(void *ud, const char *id, cJSON **instance, cJSON **init_config)
{
    calls *c = ud;
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(c->store, id);
    c->asked++;
    if (!o)
        return MW_ENOTFOUND;
    *instance = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(o, "instance"), 1);
    *init_config = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(o, "init_config"), 1);
    return MW_OK;
}

static size_t count_prefix(const calls *c, char sign)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        k += c->log[i][0] == sign;
    return k;
}

/* A host-network busybox service with port 8080; `name` and `label`
 * vary between the tests. */
static mw__service *svc_new(const char *cid, const char *name, const char *label_value)
{
    char spec[512];
    snprintf(spec, sizeof spec,
             "{'cid':'%s','name':'%s','image':'busybox-mw:1','image_long':'busybox-mw',"
             "'image_short':'busybox-mw','image_tag':'1','host_network':true,"
             "'ports':[[8080,'tcp']],'hostname':'box',"
             "'tags':['container_id:%s','container_name:%s']}",
             cid, name, cid, name);
    mw__service *s = mw__test_service(spec);
    if (label_value)
        cJSON_AddStringToObject(s->labels, "com.datadoghq.ad.checks", label_value);
    uint64_t h = mw__hash(MW_HASH_INIT, cid, strlen(cid));
    h = mw__hash(h, name, strlen(name));
    if (label_value)
        h = mw__hash(h, label_value, strlen(label_value));
    s->digest = h;
    return s;
}

/* One file template for busybox-mw with two instances: one that carries
 * the container's tags, one that ignores them (so it is equal for every
 * container on the host network). */
static void templates(mw__template_set *set)
{
    set->cap = set->n = 1;
    set->v = calloc(1, sizeof *set->v);
    mw__template *t = &set->v[0];
    t->check = mw__strdup("probe");
    t->file = mw__strdup("/t/probe.d/auto_conf.yaml");
    t->ad_identifiers = cJSON_Parse("[\"busybox-mw\"]");
    t->init_config = cJSON_CreateObject();
    t->instances = cJSON_Parse("[{\"url\":\"http://%%host%%:%%port%%/\"},"
                               "{\"url\":\"http://%%host%%:%%port%%/shared\","
                               "\"ignore_autodiscovery_tags\":true},"
                               "{\"url\":\"http://%%host%%:%%port_http%%/\"}]");
}

static mw__reconcile *new_rec(mw__template_set *set, calls *c)
{
    static const mw__tmplvars_opts vars = {0};
    mw__reconcile_ops ops = {
        .schedule = fake_schedule,
        .unschedule = fake_unschedule,
        .ud = c,
        .config = c->store ? fake_config : NULL,
    };
    return mw__reconcile_new(set, &vars, &ops, NULL);
}

/* ------------------------------------------------------------- tests */

static void test_add_change_remove(void)
{
    mw__template_set set = {0};
    calls c = {0};
    templates(&set);
    mw__reconcile *r = new_rec(&set, &c);
    const char *cid = "aaaa000000000000000000000000000000000000000000000000000000000001";

    mw__service *s1 = svc_new(cid, "web", NULL);
    CHECK(mw__reconcile_service(r, s1) == MW_OK);
    CHECK(c.n == 2); /* instance 3 is unresolved: no port named http */
    CHECK(count_prefix(&c, '+') == 2);
    CHECK(mw__reconcile_instances(r) == 2);
    char *first = mw__strdup(c.log[0]), *shared = mw__strdup(c.log[1]);
    calls_reset(&c);

    /* the same service again: nothing happens */
    CHECK(mw__reconcile_service(r, s1) == MW_OK);
    CHECK(c.n == 0);

    /* renamed: the tagged instance changes, the shared one stays */
    mw__service *s2 = svc_new(cid, "web2", NULL);
    CHECK(mw__reconcile_service(r, s2) == MW_OK);
    CHECK(c.n == 2);
    CHECK(count_prefix(&c, '+') == 1 && count_prefix(&c, '-') == 1);
    CHECK(c.n == 2 && c.log[1][0] == '-' && strcmp(c.log[1] + 1, first + 1) == 0);
    CHECK(mw__reconcile_instances(r) == 2);
    calls_reset(&c);

    /* gone: both released */
    mw__reconcile_remove(r, s2->id);
    CHECK(c.n == 2 && count_prefix(&c, '-') == 2);
    CHECK(mw__reconcile_instances(r) == 0 && mw__reconcile_services(r) == 0);
    calls_reset(&c);
    mw__reconcile_remove(r, s2->id); /* unknown: nothing */
    CHECK(c.n == 0);

    /* restarted with the first config: the very same ids come back */
    CHECK(mw__reconcile_service(r, s1) == MW_OK);
    CHECK(c.n == 2);
    CHECK_STR(c.log[0], first);
    CHECK_STR(c.log[1], shared);
    calls_reset(&c);

    mw__reconcile_free(r); /* unschedules what is left */
    CHECK(c.n == 2 && count_prefix(&c, '-') == 2);
    calls_reset(&c);
    free(first);
    free(shared);
    mw__service_free(s1);
    mw__service_free(s2);
    mw__template_set_free(&set);
}

static void test_shared_instance(void)
{
    mw__template_set set = {0};
    calls c = {0};
    templates(&set);
    mw__reconcile *r = new_rec(&set, &c);
    mw__service *a = svc_new("a1", "a", NULL), *b = svc_new("b1", "b", NULL);
    mw__reconcile_service(r, a);
    mw__reconcile_service(r, b);
    /* a: 2 instances; b: its tagged one, the shared one is a's */
    CHECK(count_prefix(&c, '+') == 3);
    CHECK(mw__reconcile_instances(r) == 3);
    calls_reset(&c);
    mw__reconcile_remove(r, a->id);
    CHECK(c.n == 1 && count_prefix(&c, '-') == 1); /* the shared one stays for b */
    calls_reset(&c);
    mw__reconcile_remove(r, b->id);
    CHECK(c.n == 2 && count_prefix(&c, '-') == 2);
    calls_reset(&c);
    mw__reconcile_free(r);
    CHECK(c.n == 0);
    mw__service_free(a);
    mw__service_free(b);
    mw__template_set_free(&set);
}

static const cJSON *find_by(const cJSON *arr, const char *key, const char *val)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(it, key));
        if (v && strcmp(v, val) == 0)
            return it;
    }
    return NULL;
}

static void test_describe_and_refusals(void)
{
    mw__template_set set = {0};
    calls c = {.refuse = "nosuch"};
    templates(&set);
    mw__reconcile *r = new_rec(&set, &c);
    mw__service *s = svc_new("c1", "labelled",
                             "{\"nosuch\":{\"instances\":[{\"x\":1}]},"
                             "\"probe\":{\"instances\":[{\"url\":\"%%host%%:%%port%%\"}]}}");
    CHECK(mw__reconcile_service(r, s) == MW_OK);
    /* the label config of probe replaces the file template of probe */
    CHECK(count_prefix(&c, '+') == 1);
    cJSON *res = cJSON_CreateArray(), *unres = cJSON_CreateArray();
    CHECK(mw__reconcile_describe(r, res, unres) == MW_OK);
    CHECK(cJSON_GetArraySize(res) == 1);
    CHECK(cJSON_GetArraySize(unres) == 1);
    const cJSON *ok = find_by(res, "check", "probe");
    CHECK(ok != NULL);
    if (ok) {
        const cJSON *inst = cJSON_GetObjectItem(ok, "instance");
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(inst, "url")), "127.0.0.1:8080");
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(ok, "service")), "docker://c1");
        CHECK(strncmp(cJSON_GetStringValue(cJSON_GetObjectItem(ok, "id")), "probe:", 6) == 0);
    }
    const cJSON *bad = find_by(unres, "check", "nosuch");
    CHECK(bad != NULL);
    if (bad)
        CHECK(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(bad, "reason")), "nosuch.lua") !=
              NULL);
    cJSON_Delete(res);
    cJSON_Delete(unres);
    calls_reset(&c);
    mw__reconcile_free(r);
    CHECK(c.n == 1);
    calls_reset(&c);
    mw__service_free(s);
    mw__template_set_free(&set);
}

static void test_describe_from_scheduler(void)
{
    mw__template_set set = {0};
    calls c = {.store = cJSON_CreateObject()};
    templates(&set);
    mw__reconcile *r = new_rec(&set, &c);
    mw__service *s = svc_new("c1", "web", NULL);
    CHECK(mw__reconcile_service(r, s) == MW_OK);
    CHECK(count_prefix(&c, '+') == 2);
    cJSON *res = cJSON_CreateArray(), *unres = cJSON_CreateArray();
    CHECK(mw__reconcile_describe(r, res, unres) == MW_OK);
    CHECK(c.asked == 2); /* the scheduled configs come from the scheduler */
    CHECK(cJSON_GetArraySize(res) == 2);
    CHECK(cJSON_GetArraySize(unres) == 1);
    const cJSON *o;
    cJSON_ArrayForEach(o, res)
    {
        const cJSON *inst = cJSON_GetObjectItem(o, "instance");
        const char *url = cJSON_GetStringValue(cJSON_GetObjectItem(inst, "url"));
        CHECK(url && strncmp(url, "http://127.0.0.1:8080/", 22) == 0);
        CHECK(cJSON_IsObject(cJSON_GetObjectItem(o, "init_config")));
    }
    cJSON_Delete(res);
    cJSON_Delete(unres);
    /* gone from the scheduler behind the reconciler's back: still
     * described, without a config */
    cJSON_Delete(c.store);
    c.store = cJSON_CreateObject();
    res = cJSON_CreateArray();
    unres = cJSON_CreateArray();
    CHECK(mw__reconcile_describe(r, res, unres) == MW_OK);
    CHECK(cJSON_GetArraySize(res) == 2);
    CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(res, 0), "instance") == NULL);
    cJSON_Delete(res);
    cJSON_Delete(unres);
    mw__reconcile_free(r);
    calls_reset(&c);
    cJSON_Delete(c.store);
    mw__service_free(s);
    mw__template_set_free(&set);
}

static void test_compute_only(void)
{
    /* configcheck: no ops, the wanted set is still computed */
    mw__template_set set = {0};
    templates(&set);
    static const mw__tmplvars_opts vars = {0};
    mw__reconcile *r = mw__reconcile_new(&set, &vars, NULL, NULL);
    mw__service *s = svc_new("d1", "x", NULL);
    CHECK(mw__reconcile_service(r, s) == MW_OK);
    cJSON *res = cJSON_CreateArray(), *unres = cJSON_CreateArray();
    CHECK(mw__reconcile_describe(r, res, unres) == MW_OK);
    CHECK(cJSON_GetArraySize(res) == 2);
    CHECK(cJSON_GetArraySize(unres) == 1);
    const cJSON *u = cJSON_GetArrayItem(unres, 0);
    const char *why = u ? cJSON_GetStringValue(cJSON_GetObjectItem(u, "reason")) : NULL;
    CHECK(why && strstr(why, "port_http") != NULL);
    cJSON_Delete(res);
    cJSON_Delete(unres);
    mw__reconcile_free(r);
    mw__service_free(s);
    mw__template_set_free(&set);
}

/* A provisional service (from the create inspect: pid 0) is applied only
 * when all its configs resolve; the full one that follows then changes
 * nothing when its configs resolve the same. */
static void test_provisional(void)
{
    mw__template_set set = {0};
    calls c = {0};
    templates(&set); /* one of its instances never resolves */
    mw__reconcile *r = new_rec(&set, &c);

    mw__service *p = svc_new("e1", "early", NULL);
    p->provisional = 1;
    p->digest ^= 1;
    CHECK(mw__reconcile_service(r, p) == MW_OK);
    CHECK(c.n == 0 && mw__reconcile_services(r) == 0);
    mw__service *full = svc_new("e1", "early", NULL);
    CHECK(mw__reconcile_service(r, full) == MW_OK);
    CHECK(c.n == 2 && count_prefix(&c, '+') == 2);
    calls_reset(&c);

    /* a label config that resolves without pid or addresses */
    const char *lbl = "{\"probe\":{\"instances\":[{\"url\":\"%%host%%:%%port%%\"}]}}";
    mw__service *p2 = svc_new("e2", "early2", lbl);
    p2->provisional = 1;
    p2->digest ^= 1;
    CHECK(mw__reconcile_service(r, p2) == MW_OK);
    CHECK(c.n == 1 && count_prefix(&c, '+') == 1);
    calls_reset(&c);
    mw__service *full2 = svc_new("e2", "early2", lbl);
    CHECK(mw__reconcile_service(r, full2) == MW_OK);
    CHECK(c.n == 0); /* same config, same id: nothing restarts */
    calls_reset(&c);
    mw__reconcile_free(r);
    calls_reset(&c);
    mw__service_free(p);
    mw__service_free(full);
    mw__service_free(p2);
    mw__service_free(full2);
    mw__template_set_free(&set);
}

int main(void)
{
    test_provisional();
    test_add_change_remove();
    test_shared_instance();
    test_describe_and_refusals();
    test_describe_from_scheduler();
    test_compute_only();
    return TEST_RESULT();
}
