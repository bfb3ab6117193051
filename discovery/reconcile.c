/*
 * reconcile.c - the instance diff (see reconcile.h).
 *
 * Two hash tables: services by id, each with the configs it wants, and
 * instance references by id. Applying a service acquires the references
 * of its new configs before releasing those of its old ones, so an
 * instance both sets share is never unscheduled and scheduled again.
 */
#include "discovery/reconcile.h"

#include "core/base/json.h"
#include "core/base/util.h"

#include <stdlib.h>
#include <string.h>

typedef struct want {
    mw__match_item it;
    char *id;        /* instance id, when resolved */
    char *sched_err; /* the scheduler refused it */
    int held;        /* holds a reference on `id` */
} want;

/* What both tables chain: an entry starts with its node. */
typedef struct node {
    struct node *next;
    char *id;
} node;

typedef struct table {
    node **b;
    size_t nb, n;
} table;

typedef struct svc_entry {
    node n; /* id: the service's */
    char *name;
    uint64_t digest;
    want *w;
    size_t nw;
} svc_entry;

typedef struct inst_ref {
    node n; /* id: the instance's */
    unsigned refs;
} inst_ref;

struct mw__reconcile {
    const mw__template_set *set;
    const mw__tmplvars_opts *vars;
    mw__reconcile_ops ops;
    const mw__log *log;
    table svcs;  /* svc_entry */
    table insts; /* inst_ref */
};

/* ------------------------------------------------------------- tables */

static size_t bucket(const table *t, const char *key)
{
    return (size_t)(mw__hash(MW_HASH_INIT, key, strlen(key)) & (t->nb - 1));
}

/* Where `id` is in `t`, or where it would go: *slot is NULL then. */
static node **slot(table *t, const char *id)
{
    node **pp = &t->b[bucket(t, id)];
    while (*pp && strcmp((*pp)->id, id) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* MW_OK, or MW_ENOMEM. */
static mw_code table_init(table *t)
{
    t->nb = 64;
    t->n = 0;
    t->b = calloc(t->nb, sizeof *t->b);
    return t->b ? MW_OK : MW_ENOMEM;
}

/* Doubles the buckets when full. A failed grow is harmless: chains just
 * get longer. */
static void table_grow(table *t)
{
    if (t->n < t->nb)
        return;
    table nt = {calloc(t->nb * 2, sizeof *t->b), t->nb * 2, t->n};
    if (!nt.b)
        return;
    for (size_t i = 0; i < t->nb; i++) {
        for (node *e = t->b[i], *next; e; e = next) {
            next = e->next;
            node **head = &nt.b[bucket(&nt, e->id)];
            e->next = *head;
            *head = e;
        }
    }
    free(t->b);
    *t = nt;
}

static void table_add(table *t, node *e)
{
    e->next = NULL;
    *slot(t, e->id) = e;
    t->n++;
    table_grow(t);
}

static void table_unlink(table *t, node **pp)
{
    *pp = (*pp)->next;
    t->n--;
}

/* ------------------------------------------------------------- references */

/* Takes a reference on `w->id`, scheduling it when it is new. */
static void acquire(mw__reconcile *r, const svc_entry *s, want *w)
{
    inst_ref *have = (inst_ref *)*slot(&r->insts, w->id);
    if (have) {
        have->refs++;
        w->held = 1;
        return;
    }
    inst_ref *ref = calloc(1, sizeof *ref);
    if (!ref || !(ref->n.id = mw__strdup(w->id))) {
        free(ref);
        w->sched_err = mw__strdup("out of memory");
        return;
    }
    if (r->ops.schedule) {
        char *err = NULL;
        mw_code rc = r->ops.schedule(r->ops.ud, &w->it, w->id, &err);
        if (rc != MW_OK) {
            w->sched_err = rc == MW_ESTATE ? mw__strdup("an identical instance is already "
                                                        "scheduled from a static config")
                                           : (err ? err : mw__strdup(mw_strerror(rc)));
            if (rc == MW_ESTATE)
                free(err);
            mw__error(r->log, s->n.id, "cannot schedule %s from %s: %s", w->it.check, w->it.source,
                      w->sched_err ? w->sched_err : "out of memory");
            free(ref->n.id);
            free(ref);
            return;
        }
        mw__info(r->log, w->id, "scheduled for %s (%s) from %s", s->n.id, s->name, w->it.source);
    }
    ref->refs = 1;
    table_add(&r->insts, &ref->n);
    w->held = 1;
}

/* Drops the config of a want that holds its instance when the scheduler
 * can give it back (ops.config): its id stands for it from now on. */
static void shed(const mw__reconcile *r, want *w)
{
    if (!w->held || !r->ops.config)
        return;
    cJSON_Delete(w->it.instance);
    cJSON_Delete(w->it.init_config);
    w->it.instance = w->it.init_config = NULL;
}

static void release(mw__reconcile *r, const svc_entry *s, want *w, const char *why)
{
    if (!w->held)
        return;
    w->held = 0;
    node **pp = slot(&r->insts, w->id);
    inst_ref *ref = (inst_ref *)*pp;
    if (!ref || --ref->refs > 0)
        return;
    table_unlink(&r->insts, pp);
    if (r->ops.unschedule) {
        r->ops.unschedule(r->ops.ud, ref->n.id);
        mw__info(r->log, ref->n.id, "unscheduled: %s (%s) %s", s->n.id, s->name, why);
    }
    free(ref->n.id);
    free(ref);
}

/* ------------------------------------------------------------- services */

static void wants_free(want *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(w[i].it.check);
        free(w[i].it.source);
        cJSON_Delete(w[i].it.init_config);
        cJSON_Delete(w[i].it.instance);
        free(w[i].it.reason);
        free(w[i].id);
        free(w[i].sched_err);
    }
    free(w);
}

static void release_all(mw__reconcile *r, svc_entry *s, const char *why)
{
    for (size_t i = 0; i < s->nw; i++)
        release(r, s, &s->w[i], why);
}

static void svc_entry_free(svc_entry *s)
{
    wants_free(s->w, s->nw);
    free(s->n.id);
    free(s->name);
    free(s);
}

/* Moves the match items into wants, with their instance ids. */
static want *wants_from(mw__match_result *m, size_t *n)
{
    want *w = calloc(m->n ? m->n : 1, sizeof *w);
    if (!w)
        return NULL;
    for (size_t i = 0; i < m->n; i++) {
        w[i].it = m->v[i];
        memset(&m->v[i], 0, sizeof m->v[i]);
        if (w[i].it.instance &&
            !(w[i].id = mw__instance_id(w[i].it.check, w[i].it.init_config, w[i].it.instance)))
            w[i].sched_err = mw__strdup("out of memory");
    }
    *n = m->n;
    return w;
}

static void log_problems(mw__reconcile *r, const mw__service *svc, const mw__match_result *m,
                         const want *w, size_t n)
{
    for (size_t i = 0; i < m->nproblems; i++)
        mw__warn(r->log, svc->id, "%s", m->problems[i]);
    for (size_t i = 0; i < n; i++)
        if (w[i].it.reason)
            mw__warn(r->log, svc->id, "unresolved %s (instance %zu) from %s: %s", w[i].it.check,
                     w[i].it.index, w[i].it.source, w[i].it.reason);
}

/* A provisional service (pid and addresses not known yet) is applied
 * only when every config resolves without them. */
static int all_resolved(const mw__match_result *m)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].reason)
            return 0;
    return 1;
}

static svc_entry *svc_entry_new(mw__reconcile *r, const mw__service *svc)
{
    svc_entry *s = calloc(1, sizeof *s);
    if (!s || !(s->n.id = mw__strdup(svc->id)) ||
        !(s->name = mw__strdup(svc->name ? svc->name : ""))) {
        if (s)
            free(s->n.id);
        free(s);
        return NULL;
    }
    table_add(&r->svcs, &s->n);
    return s;
}

mw_code mw__reconcile_service(mw__reconcile *r, const mw__service *svc)
{
    svc_entry *s = (svc_entry *)*slot(&r->svcs, svc->id);
    mw__match_result m = {0};
    want *w = NULL;
    size_t nw = 0;
    char *name;
    mw_code rc;
    if (s && s->digest == svc->digest)
        return MW_OK;
    if ((rc = mw__match_service(r->set, svc, r->vars, &m)) != MW_OK)
        goto out;
    if (svc->provisional && !all_resolved(&m))
        goto out; /* the full service follows */
    rc = MW_ENOMEM;
    if (!(w = wants_from(&m, &nw)) || (!s && !(s = svc_entry_new(r, svc))))
        goto out;
    if (!svc->provisional)
        log_problems(r, svc, &m, w, nw);
    if ((name = mw__strdup(svc->name ? svc->name : "")) != NULL) {
        free(s->name);
        s->name = name;
    }
    for (size_t i = 0; i < nw; i++)
        if (w[i].id && !w[i].sched_err) {
            acquire(r, s, &w[i]);
            shed(r, &w[i]);
        }
    release_all(r, s, "config changed");
    wants_free(s->w, s->nw);
    s->w = w;
    s->nw = nw;
    s->digest = svc->digest;
    w = NULL;
    rc = MW_OK;
out:
    if (w)
        wants_free(w, nw);
    mw__match_result_free(&m);
    return rc;
}

void mw__reconcile_remove(mw__reconcile *r, const char *svc_id)
{
    node **pp = slot(&r->svcs, svc_id);
    svc_entry *s = (svc_entry *)*pp;
    if (!s)
        return;
    table_unlink(&r->svcs, pp);
    release_all(r, s, "gone");
    svc_entry_free(s);
}

/* The ids of every tracked service (caller frees the array and each). */
static char **service_ids(const mw__reconcile *r, size_t *n)
{
    char **ids = calloc(r->svcs.n ? r->svcs.n : 1, sizeof *ids);
    *n = 0;
    for (size_t i = 0; ids && i < r->svcs.nb; i++) {
        for (node *e = r->svcs.b[i]; e; e = e->next) {
            ((svc_entry *)e)->digest = 0; /* matched again whatever the service says */
            if ((ids[*n] = mw__strdup(e->id)) != NULL)
                (*n)++;
        }
    }
    return ids;
}

void mw__reconcile_rematch(mw__reconcile *r, const mw__template_set *set,
                           void (*again)(void *ud, const char *svc_id), void *ud)
{
    size_t n = 0;
    char **ids = service_ids(r, &n);
    r->set = set;
    for (size_t i = 0; i < n; i++) {
        again(ud, ids[i]);
        free(ids[i]);
    }
    free(ids);
}

/* ------------------------------------------------------------- lifecycle */

mw__reconcile *mw__reconcile_new(const mw__template_set *set, const mw__tmplvars_opts *vars,
                                 const mw__reconcile_ops *ops, const mw__log *log)
{
    mw__reconcile *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->set = set;
    r->vars = vars;
    if (ops)
        r->ops = *ops;
    r->log = log;
    if (table_init(&r->svcs) != MW_OK || table_init(&r->insts) != MW_OK) {
        free(r->svcs.b);
        free(r);
        return NULL;
    }
    return r;
}

void mw__reconcile_free(mw__reconcile *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->svcs.nb; i++) {
        for (node *e = r->svcs.b[i], *next; e; e = next) {
            next = e->next;
            release_all(r, (svc_entry *)e, "engine stopping");
            svc_entry_free((svc_entry *)e);
        }
    }
    for (size_t i = 0; i < r->insts.nb; i++) {
        for (node *e = r->insts.b[i], *next; e; e = next) {
            next = e->next;
            free(e->id);
            free(e);
        }
    }
    free(r->svcs.b);
    free(r->insts.b);
    free(r);
}

size_t mw__reconcile_services(const mw__reconcile *r)
{
    return r->svcs.n;
}

size_t mw__reconcile_instances(const mw__reconcile *r)
{
    return r->insts.n;
}

/* ------------------------------------------------------------- describe */

static int by_id(const void *a, const void *b)
{
    return strcmp((*(svc_entry *const *)a)->n.id, (*(svc_entry *const *)b)->n.id);
}

/* Appends one want to `resolved` or `unresolved`. MW_OK, or MW_ENOMEM. */
static mw_code describe_want(const mw__reconcile *r, const svc_entry *s, const want *w,
                             cJSON *resolved, cJSON *unresolved)
{
    const char *reason = w->it.reason ? w->it.reason : w->sched_err;
    cJSON *o = cJSON_CreateObject(), *ic = NULL, *in = NULL;
    mw_code rc = MW_ENOMEM;
    if (!o || !cJSON_AddStringToObject(o, "check", w->it.check) ||
        (!reason && !cJSON_AddStringToObject(o, "id", w->id)) ||
        !cJSON_AddStringToObject(o, "service", s->n.id) ||
        !cJSON_AddStringToObject(o, "container_name", s->name) ||
        !cJSON_AddStringToObject(o, "source", w->it.source))
        goto out;
    if (reason && !cJSON_AddStringToObject(o, "reason", reason))
        goto out;
    if (!reason) {
        if (w->it.instance) {
            ic = cJSON_Duplicate(w->it.init_config, 1);
            in = cJSON_Duplicate(w->it.instance, 1);
        } else if (r->ops.config(r->ops.ud, w->id, &in, &ic) == MW_ENOTFOUND) {
            goto add; /* unscheduled from outside meanwhile: no config to show */
        }
        if (!ic || !in || !cJSON_AddItemToObject(o, "init_config", ic))
            goto out;
        ic = NULL;
        if (!cJSON_AddItemToObject(o, "instance", in))
            goto out;
        in = NULL;
    }
add:
    if (!cJSON_AddItemToArray(reason ? unresolved : resolved, o))
        goto out;
    o = NULL;
    rc = MW_OK;
out:
    cJSON_Delete(ic);
    cJSON_Delete(in);
    cJSON_Delete(o);
    return rc;
}

mw_code mw__reconcile_describe(const mw__reconcile *r, cJSON *resolved, cJSON *unresolved)
{
    svc_entry **all = calloc(r->svcs.n ? r->svcs.n : 1, sizeof *all);
    mw_code rc = MW_OK;
    size_t n = 0;
    if (!all)
        return MW_ENOMEM;
    for (size_t i = 0; i < r->svcs.nb; i++)
        for (node *e = r->svcs.b[i]; e; e = e->next)
            all[n++] = (svc_entry *)e;
    qsort(all, n, sizeof *all, by_id);
    for (size_t i = 0; i < n && rc == MW_OK; i++)
        for (size_t j = 0; j < all[i]->nw && rc == MW_OK; j++)
            rc = describe_want(r, all[i], &all[i]->w[j], resolved, unresolved);
    free(all);
    return rc;
}
