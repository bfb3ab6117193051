/*
 * fake_ecs_agent.c - the fake ECS agent's state: its metadata and task
 * table, the answers of its routes in the agent's v1 shape, and every
 * control call (see fake_ecs_agent.h). The HTTP side is in
 * fake_ecs_agent_http.c.
 *
 * Ownership: tasks own their strings and containers; an answer's body is
 * malloc'd for the loop thread, which frees it once queued.
 */
#include "tests/support/fake_ecs_agent_int.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SHORT_ID_LEN 12 /* the agent matches ids this short or shorter as prefixes */
#define NOT_FOUND                                                                                  \
    "{\"Arn\":\"\",\"KnownStatus\":\"\",\"Family\":\"\",\"Version\":\"\",\"Containers\":null}"

/* ------------------------------------------------------------- helpers */

static char *dup_or(const char *s, const char *dflt)
{
    const char *v = s ? s : dflt;
    return v ? strdup(v) : NULL;
}

/* Replaces `*dst` with a copy of `s` (NULL: left as it is). */
static void set_str(char **dst, const char *s)
{
    char *n;
    if (!s || !(n = strdup(s)))
        return;
    free(*dst);
    *dst = n;
}

__attribute__((format(printf, 2, 3))) static int fail(mw__fea *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err, sizeof a->err, fmt, ap);
    va_end(ap);
    return -1;
}

static uint64_t next_rand(mw__fea *a)
{
    a->rng ^= a->rng << 13;
    a->rng ^= a->rng >> 7;
    a->rng ^= a->rng << 17;
    return a->rng;
}

void mw__feai_order(mw__fea *a, size_t *ix, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ix[i] = i;
    for (size_t i = n; !a->keep_order && i > 1; i--) {
        size_t j = (size_t)(next_rand(a) % i), t = ix[i - 1];
        ix[i - 1] = ix[j];
        ix[j] = t;
    }
}

/* ------------------------------------------------------------- tasks */

static void ctr_clear(mw__feai_ctr *c)
{
    free(c->docker_id);
    free(c->docker_name);
    free(c->name);
    free(c->type);
    free(c->known);
    free(c->image);
}

static void task_clear(mw__feai_task *t)
{
    free(t->arn);
    free(t->family);
    free(t->version);
    free(t->known);
    free(t->desired);
    for (size_t i = 0; i < t->nc; i++)
        ctr_clear(&t->c[i]);
    free(t->c);
    cJSON_Delete(t->doc);
    memset(t, 0, sizeof *t);
}

static mw__feai_task *task_find(mw__fea *a, const char *arn)
{
    for (size_t i = 0; i < a->ntasks; i++)
        if (strcmp(a->tasks[i].arn, arn) == 0)
            return &a->tasks[i];
    return NULL;
}

mw__feai_task *mw__feai_v4_task(mw__fea *a)
{
    if (a->v4_arn)
        return task_find(a, a->v4_arn);
    return a->ntasks ? &a->tasks[0] : NULL;
}

static mw__feai_ctr *ctr_find(mw__feai_task *t, const char *name)
{
    for (size_t i = 0; i < t->nc; i++)
        if (strcmp(t->c[i].name, name) == 0)
            return &t->c[i];
    return NULL;
}

static const char *jstr(const cJSON *o, const char *k1, const char *k2)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k1);
    if (!v && k2)
        v = cJSON_GetObjectItemCaseSensitive(o, k2);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int ctr_from(mw__feai_ctr *c, const cJSON *j)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "ExitCode");
    memset(c, 0, sizeof *c);
    c->name = dup_or(jstr(j, "Name", NULL), NULL);
    c->docker_id = dup_or(jstr(j, "DockerId", NULL), "");
    c->docker_name = dup_or(jstr(j, "DockerName", NULL), "");
    c->type = dup_or(jstr(j, "Type", NULL), "NORMAL");
    c->known = dup_or(jstr(j, "KnownStatus", NULL), "");
    c->image = dup_or(jstr(j, "Image", NULL), "");
    c->has_exit = cJSON_IsNumber(x);
    c->exit_code = c->has_exit ? (int)x->valuedouble : 0;
    return c->name && c->docker_id && c->docker_name && c->type && c->known && c->image ? 0 : -1;
}

/* A task from its JSON (v1 or v4 field names); 0, or -1 with a->err. */
static int task_from(mw__fea *a, mw__feai_task *t, const cJSON *j)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "Containers"), *it;
    memset(t, 0, sizeof *t);
    if (!jstr(j, "Arn", "TaskARN") || !*jstr(j, "Arn", "TaskARN"))
        return fail(a, "task without Arn or TaskARN");
    t->arn = strdup(jstr(j, "Arn", "TaskARN"));
    t->doc = cJSON_Duplicate(j, 1);
    t->family = dup_or(jstr(j, "Family", NULL), "");
    t->version = dup_or(jstr(j, "Version", "Revision"), "");
    t->known = dup_or(jstr(j, "KnownStatus", NULL), "RUNNING");
    t->desired = dup_or(jstr(j, "DesiredStatus", NULL), "");
    if (cJSON_IsArray(list) && cJSON_GetArraySize(list) > 0 &&
        !(t->c = calloc((size_t)cJSON_GetArraySize(list), sizeof *t->c)))
        return fail(a, "out of memory");
    cJSON_ArrayForEach(it, list)
    {
        if (!jstr(it, "Name", NULL))
            return fail(a, "container without Name in task %s", t->arn);
        if (ctr_from(&t->c[t->nc++], it) != 0)
            return fail(a, "out of memory");
    }
    return t->arn && t->doc && t->family && t->version && t->known && t->desired
               ? 0
               : fail(a, "out of memory");
}

/* Adds or replaces; mu held. */
static int put_locked(mw__fea *a, const cJSON *j)
{
    mw__feai_task t, *old;
    if (task_from(a, &t, j) != 0) {
        task_clear(&t);
        return -1;
    }
    if ((old = task_find(a, t.arn))) {
        task_clear(old);
        *old = t;
        return 0;
    }
    if (a->ntasks == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        mw__feai_task *n = realloc(a->tasks, cap * sizeof *n);
        if (!n) {
            task_clear(&t);
            return fail(a, "out of memory");
        }
        a->tasks = n;
        a->cap = cap;
    }
    a->tasks[a->ntasks++] = t;
    return 0;
}

/* ------------------------------------------------------------- answers */

/* DesiredStatus as the agent's v1 handler shows it: "" (left out) when
 * the task stopped and is not desired stopped, or runs and is desired
 * pending. */
static const char *v1_desired(const mw__feai_task *t)
{
    if ((!strcmp(t->known, "STOPPED") && strcmp(t->desired, "STOPPED")) ||
        (!strcmp(t->known, "RUNNING") && !strcmp(t->desired, "PENDING")))
        return "";
    return t->desired;
}

static cJSON *v1_container(const mw__feai_ctr *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "DockerId", c->docker_id);
    cJSON_AddStringToObject(o, "DockerName", c->docker_name);
    cJSON_AddStringToObject(o, "Name", c->name);
    return o;
}

static cJSON *v1_task(mw__fea *a, const mw__feai_task *t)
{
    cJSON *o = cJSON_CreateObject(), *list;
    size_t *ix = calloc(t->nc ? t->nc : 1, sizeof *ix);
    const char *desired = v1_desired(t);
    if (!o || !ix) {
        free(ix);
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddStringToObject(o, "Arn", t->arn);
    if (*desired)
        cJSON_AddStringToObject(o, "DesiredStatus", desired);
    cJSON_AddStringToObject(o, "KnownStatus", t->known);
    cJSON_AddStringToObject(o, "Family", t->family);
    cJSON_AddStringToObject(o, "Version", t->version);
    list = cJSON_AddArrayToObject(o, "Containers");
    mw__feai_order(a, ix, t->nc);
    for (size_t i = 0; i < t->nc; i++)
        if (!strcmp(t->c[ix[i]].type, "NORMAL"))
            cJSON_AddItemToArray(list, v1_container(&t->c[ix[i]]));
    free(ix);
    return o;
}

void mw__feai_answer_json(mw__feai_answer *out, int status, cJSON *doc)
{
    out->status = status;
    out->ctype = "application/json";
    out->body = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (!out->body) {
        out->status = 500;
        out->body = strdup("{}");
    }
    out->len = out->body ? strlen(out->body) : 0;
}

void mw__feai_answer_text(mw__feai_answer *out, int status, const char *ctype, const char *text)
{
    out->status = status;
    out->ctype = ctype;
    out->body = strdup(text);
    out->len = out->body ? strlen(out->body) : 0;
}

static void answer_metadata(mw__fea *a, mw__feai_answer *out)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "Cluster", a->cluster);
    if (*a->instance_arn)
        cJSON_AddStringToObject(o, "ContainerInstanceArn", a->instance_arn);
    else
        cJSON_AddNullToObject(o, "ContainerInstanceArn");
    cJSON_AddStringToObject(o, "Version", a->version);
    mw__feai_answer_json(out, 200, o);
}

static void answer_tasks(mw__fea *a, mw__feai_answer *out)
{
    cJSON *o = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(o, "Tasks");
    size_t *ix = calloc(a->ntasks ? a->ntasks : 1, sizeof *ix);
    if (!ix) {
        cJSON_Delete(o);
        mw__feai_answer_json(out, 500, NULL);
        return;
    }
    mw__feai_order(a, ix, a->ntasks);
    for (size_t i = 0; i < a->ntasks; i++)
        cJSON_AddItemToArray(list, v1_task(a, &a->tasks[ix[i]]));
    free(ix);
    mw__feai_answer_json(out, 200, o);
}

/* The tasks with a container whose id is `id` (> 12: exactly) or starts
 * with it; the first into `*found`. */
static size_t tasks_of_id(mw__fea *a, const char *id, mw__feai_task **found)
{
    size_t n = 0, len = strlen(id);
    *found = NULL;
    for (size_t i = 0; i < a->ntasks; i++) {
        mw__feai_task *t = &a->tasks[i];
        for (size_t k = 0; k < t->nc; k++) {
            const char *d = t->c[k].docker_id;
            int hit = len > SHORT_ID_LEN ? !strcmp(d, id) : *d && !strncmp(d, id, len);
            if (hit) {
                if (!*found)
                    *found = t;
                n++;
                break;
            }
        }
    }
    return n;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The decoded value of `key` in the query into `out`; 1 when present. */
static int qget(const char *q, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        const char *end = strchr(p, '&'), *v;
        size_t n = 0;
        if (!end)
            end = p + strlen(p);
        if (strncmp(p, key, klen) != 0 || (p[klen] != '=' && p + klen != end))
            continue;
        for (v = p[klen] == '=' ? p + klen + 1 : end; v < end && n + 1 < cap; v++) {
            if (*v == '%' && v + 2 < end && hexval(v[1]) >= 0 && hexval(v[2]) >= 0) {
                out[n++] = (char)(hexval(v[1]) * 16 + hexval(v[2]));
                v += 2;
            } else {
                out[n++] = *v == '+' ? ' ' : *v;
            }
        }
        out[n] = '\0';
        return 1;
    }
    return 0;
}

static void answer_task(mw__fea *a, const char *query, mw__feai_answer *out)
{
    char id[256], arn[2048];
    int has_id = qget(query, "dockerid", id, sizeof id);
    int has_arn = qget(query, "taskarn", arn, sizeof arn);
    mw__feai_task *t = NULL;
    size_t n;

    if (has_id && has_arn) {
        mw__feai_answer_text(out, 400, "text/plain; charset=utf-8", "");
        return;
    }
    if (has_id) {
        n = tasks_of_id(a, id, &t);
        if (n > 1) {
            mw__feai_answer_text(out, 400, "text/plain; charset=utf-8", "");
            return;
        }
    } else {
        t = task_find(a, arn);
    }
    if (!t)
        mw__feai_answer_text(out, 404, "application/json", NOT_FOUND);
    else
        mw__feai_answer_json(out, 200, v1_task(a, t));
}

void mw__feai_answer_get(mw__fea *a, const char *path, const char *query, mw__fea_ep *ep,
                         mw__feai_answer *out)
{
    char probe[8];
    if (!strcmp(path, "/v1/metadata")) {
        *ep = MW_FEA_EP_METADATA;
        answer_metadata(a, out);
    } else if (!strcmp(path, "/v1/tasks") && query &&
               (qget(query, "dockerid", probe, sizeof probe) ||
                qget(query, "taskarn", probe, sizeof probe))) {
        *ep = MW_FEA_EP_TASK;
        answer_task(a, query, out);
    } else if (!strcmp(path, "/v1/tasks")) {
        *ep = MW_FEA_EP_TASKS;
        answer_tasks(a, out);
    } else if (!strncmp(path, MW_FEA_V4_PATH, strlen(MW_FEA_V4_PATH))) {
        mw__feai_answer_v4(a, path + strlen(MW_FEA_V4_PATH), ep, out);
    } else {
        *ep = MW_FEA_EP_OTHER;
        mw__feai_answer_text(out, 404, "text/plain; charset=utf-8", "404 page not found\n");
    }
}

void mw__feai_log(mw__fea *a, mw__fea_ep ep, int status, const char *method, const char *target)
{
    mw__fea_request *r = &a->log[a->nlog % MW_FEAI_LOG];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    r->at = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    r->ep = ep;
    r->status = status;
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->target, sizeof r->target, "%s", target);
    a->nlog++;
    a->counts[ep]++;
    pthread_cond_broadcast(&a->cv);
}

/* ------------------------------------------------------------- lifecycle */

mw__fea *mw__fea_new(const mw__fea_opts *o, char **err)
{
    mw__fea_opts none = {0};
    mw__fea *a = calloc(1, sizeof *a);
    char why[256] = "out of memory";

    if (!o)
        o = &none;
    *err = NULL;
    if (!a)
        goto fail;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->ep = a->wake_fd = a->lfd = -1;
    a->port = o->port;
    a->keep_order = o->keep_order;
    a->rng = o->seed ? o->seed : 0x9e3779b97f4a7c15ULL;
    a->cluster = dup_or(o->cluster, "default");
    a->instance_arn = dup_or(o->instance_arn, "arn:aws:ecs:us-west-2:012345678910:"
                                              "container-instance/default/"
                                              "0123456789abcdef0123456789abcdef");
    a->version = dup_or(o->version, "Amazon ECS Agent - v1.30.0 (02ff320c)");
    if (!a->cluster || !a->instance_arn || !a->version)
        goto fail;
    if (mw__feai_listen(a, why, sizeof why) != 0)
        goto fail;
    snprintf(a->url, sizeof a->url, "http://127.0.0.1:%d", a->port);
    snprintf(a->v4_url, sizeof a->v4_url, "%s%s", a->url, MW_FEA_V4_PATH);
    a->want_up = a->is_up = 1;
    if (pthread_create(&a->thr, NULL, mw__feai_main, a) != 0) {
        snprintf(why, sizeof why, "cannot start the server thread");
        goto fail;
    }
    a->threaded = 1;
    return a;
fail:
    *err = strdup(why);
    mw__fea_free(a);
    return NULL;
}

void mw__fea_free(mw__fea *a)
{
    if (!a)
        return;
    if (a->threaded) {
        pthread_mutex_lock(&a->mu);
        a->stopping = 1;
        pthread_mutex_unlock(&a->mu);
        mw__feai_wake(a);
        pthread_join(a->thr, NULL);
    }
    mw__feai_close_all(a);
    for (size_t i = 0; i < a->ntasks; i++)
        task_clear(&a->tasks[i]);
    free(a->tasks);
    for (int i = 0; i < MW_FEA_EP_COUNT; i++)
        free(a->over[i].body);
    free(a->cluster);
    free(a->instance_arn);
    free(a->version);
    free(a->v4_arn);
    free(a->v4_self);
    cJSON_Delete(a->stats);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

int mw__fea_port(const mw__fea *a)
{
    return a->port;
}

const char *mw__fea_url(const mw__fea *a)
{
    return a->url;
}

const char *mw__fea_v4_url(const mw__fea *a)
{
    return a->v4_url;
}

const char *mw__fea_error(mw__fea *a)
{
    return a->err;
}

/* ------------------------------------------------------------- control */

int mw__fea_put_task(mw__fea *a, const char *json)
{
    cJSON *j = cJSON_Parse(json);
    int rc;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return fail(a, "not a JSON object");
    }
    pthread_mutex_lock(&a->mu);
    rc = put_locked(a, j);
    pthread_mutex_unlock(&a->mu);
    cJSON_Delete(j);
    return rc;
}

/* A whole file into `*text` (NUL-terminated, caller frees); 0 or -1. */
static int slurp(mw__fea *a, const char *path, char **text)
{
    FILE *f = fopen(path, "r");
    size_t cap = 0, n = 0, r;

    *text = NULL;
    if (!f)
        return fail(a, "%s: %s", path, strerror(errno));
    do {
        if (n + 4096 > cap) {
            char *g = realloc(*text, cap = cap * 2 + 8192);
            if (!g)
                break;
            *text = g;
        }
        r = fread(*text + n, 1, cap - n - 1, f);
        n += r;
    } while (r > 0);
    fclose(f);
    if (!*text)
        return fail(a, "out of memory");
    (*text)[n] = '\0';
    return 0;
}

int mw__fea_load(mw__fea *a, const char *path)
{
    char *text = NULL;
    cJSON *doc, *tasks, *it;
    int rc = 0;

    if (slurp(a, path, &text) != 0)
        return -1;
    doc = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return fail(a, "%s: not a JSON object", path);
    }
    tasks = cJSON_GetObjectItemCaseSensitive(doc, "Tasks");
    pthread_mutex_lock(&a->mu);
    if (cJSON_IsArray(tasks)) {
        cJSON_ArrayForEach(it, tasks) rc |= put_locked(a, it);
    } else {
        rc = put_locked(a, doc);
    }
    pthread_mutex_unlock(&a->mu);
    cJSON_Delete(doc);
    return rc ? -1 : 0;
}

int mw__fea_remove_task(mw__fea *a, const char *arn)
{
    mw__feai_task *t;
    int rc = 0;
    pthread_mutex_lock(&a->mu);
    if (!(t = task_find(a, arn))) {
        rc = fail(a, "no task %s", arn);
    } else {
        task_clear(t);
        *t = a->tasks[--a->ntasks];
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int mw__fea_clear(mw__fea *a)
{
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->ntasks; i++)
        task_clear(&a->tasks[i]);
    a->ntasks = 0;
    pthread_mutex_unlock(&a->mu);
    return 0;
}

size_t mw__fea_task_count(mw__fea *a)
{
    pthread_mutex_lock(&a->mu);
    size_t n = a->ntasks;
    pthread_mutex_unlock(&a->mu);
    return n;
}

int mw__fea_task_status(mw__fea *a, const char *arn, const char *known, const char *desired)
{
    mw__feai_task *t;
    int rc = 0;
    pthread_mutex_lock(&a->mu);
    if (!(t = task_find(a, arn))) {
        rc = fail(a, "no task %s", arn);
    } else {
        set_str(&t->known, known);
        set_str(&t->desired, desired);
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int mw__fea_put_container(mw__fea *a, const char *arn, const char *name, const char *docker_id,
                          const char *docker_name)
{
    mw__feai_task *t;
    mw__feai_ctr *c, *grown;
    int rc = 0;
    pthread_mutex_lock(&a->mu);
    if (!(t = task_find(a, arn))) {
        rc = fail(a, "no task %s", arn);
    } else if ((c = ctr_find(t, name))) {
        set_str(&c->docker_id, docker_id);
        set_str(&c->docker_name, docker_name);
    } else if (!(grown = realloc(t->c, (t->nc + 1) * sizeof *grown))) {
        rc = fail(a, "out of memory");
    } else {
        t->c = grown;
        c = &t->c[t->nc];
        memset(c, 0, sizeof *c);
        c->name = strdup(name);
        c->docker_id = dup_or(docker_id, "");
        c->docker_name = dup_or(docker_name, "");
        c->type = strdup("NORMAL");
        c->known = strdup("");
        c->image = strdup("");
        if (!c->name || !c->docker_id || !c->docker_name || !c->type || !c->known || !c->image) {
            ctr_clear(c);
            rc = fail(a, "out of memory");
        } else {
            t->nc++;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int mw__fea_container_stop(mw__fea *a, const char *arn, const char *name, int exit_code)
{
    mw__feai_task *t;
    mw__feai_ctr *c = NULL;
    int rc = 0;
    pthread_mutex_lock(&a->mu);
    if (!(t = task_find(a, arn)) || !(c = ctr_find(t, name))) {
        rc = fail(a, "no container %s in task %s", name, arn);
    } else {
        set_str(&c->known, "STOPPED");
        c->has_exit = 1;
        c->exit_code = exit_code;
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int mw__fea_container_status(mw__fea *a, const char *arn, const char *name, const char *known)
{
    mw__feai_task *t;
    mw__feai_ctr *c = NULL;
    int rc = 0;
    pthread_mutex_lock(&a->mu);
    if (!(t = task_find(a, arn)) || !(c = ctr_find(t, name)))
        rc = fail(a, "no container %s in task %s", name, arn);
    else
        set_str(&c->known, known);
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int mw__fea_v4_select(mw__fea *a, const char *arn, const char *self)
{
    char *x = arn ? strdup(arn) : NULL, *y = self ? strdup(self) : NULL;
    if ((arn && !x) || (self && !y)) {
        free(x);
        free(y);
        return fail(a, "out of memory");
    }
    pthread_mutex_lock(&a->mu);
    free(a->v4_arn);
    free(a->v4_self);
    a->v4_arn = x;
    a->v4_self = y;
    pthread_mutex_unlock(&a->mu);
    return 0;
}

/* Sets one entry of the stats map; takes `doc` (NULL: null). mu held. */
static int stats_put_locked(mw__fea *a, const char *docker_id, cJSON *doc)
{
    if (!a->stats && !(a->stats = cJSON_CreateObject())) {
        cJSON_Delete(doc);
        return fail(a, "out of memory");
    }
    if (!doc && !(doc = cJSON_CreateNull()))
        return fail(a, "out of memory");
    cJSON_DeleteItemFromObjectCaseSensitive(a->stats, docker_id);
    cJSON_AddItemToObject(a->stats, docker_id, doc);
    return 0;
}

int mw__fea_put_stats(mw__fea *a, const char *docker_id, const char *json)
{
    cJSON *doc = json ? cJSON_Parse(json) : NULL;
    int rc;
    if (json && !doc)
        return fail(a, "stats: not JSON");
    pthread_mutex_lock(&a->mu);
    rc = stats_put_locked(a, docker_id, cJSON_IsNull(doc) ? (cJSON_Delete(doc), NULL) : doc);
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int mw__fea_load_stats(mw__fea *a, const char *path)
{
    char *text = NULL;
    cJSON *doc, *it;
    int rc = 0;
    if (slurp(a, path, &text) != 0)
        return -1;
    doc = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return fail(a, "%s: not a JSON object", path);
    }
    pthread_mutex_lock(&a->mu);
    while (rc == 0 && (it = doc->child)) {
        cJSON_DetachItemViaPointer(doc, it);
        char *id = strdup(it->string);
        rc = id ? stats_put_locked(a, id, cJSON_IsNull(it) ? (cJSON_Delete(it), NULL) : it)
                : (cJSON_Delete(it), fail(a, "out of memory"));
        free(id);
    }
    pthread_mutex_unlock(&a->mu);
    cJSON_Delete(doc);
    return rc;
}

int mw__fea_set_metadata(mw__fea *a, const char *cluster, const char *instance_arn,
                         const char *version)
{
    pthread_mutex_lock(&a->mu);
    set_str(&a->cluster, cluster);
    set_str(&a->instance_arn, instance_arn);
    set_str(&a->version, version);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

/* Asks the loop to go down or up and waits until it did (10 s at most). */
static int go(mw__fea *a, int up)
{
    struct timespec until;
    int rc = 0;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&a->mu);
    a->want_up = up;
    pthread_mutex_unlock(&a->mu);
    mw__feai_wake(a);
    pthread_mutex_lock(&a->mu);
    while (a->is_up != up && rc == 0)
        rc = pthread_cond_timedwait(&a->cv, &a->mu, &until);
    if (a->is_up != up)
        rc = fail(a, "%s", up ? a->err[0] ? a->err : "cannot listen again" : "cannot go down");
    pthread_mutex_unlock(&a->mu);
    return rc ? -1 : 0;
}

int mw__fea_down(mw__fea *a)
{
    return go(a, 0);
}

int mw__fea_up(mw__fea *a)
{
    return go(a, 1);
}

int mw__fea_fail_next(mw__fea *a, mw__fea_ep ep, int status, const char *body, unsigned times)
{
    char *b = strdup(body ? body : "");
    if (ep < 0 || ep >= MW_FEA_EP_COUNT || !b) {
        free(b);
        return fail(a, "bad kind or out of memory");
    }
    pthread_mutex_lock(&a->mu);
    free(a->over[ep].body);
    a->over[ep] = (mw__feai_override){status, b, times};
    pthread_mutex_unlock(&a->mu);
    return 0;
}

int mw__fea_set_latency(mw__fea *a, mw__fea_ep ep, unsigned ms)
{
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < MW_FEA_EP_COUNT; i++)
        if (ep == MW_FEA_EP_COUNT || (int)ep == i)
            a->latency[i] = ms;
    pthread_mutex_unlock(&a->mu);
    return 0;
}

static uint64_t count_locked(mw__fea *a, mw__fea_ep ep)
{
    uint64_t n = 0;
    for (int i = 0; i < MW_FEA_EP_COUNT; i++)
        if (ep == MW_FEA_EP_COUNT || (int)ep == i)
            n += a->counts[i];
    return n;
}

uint64_t mw__fea_count(mw__fea *a, mw__fea_ep ep)
{
    pthread_mutex_lock(&a->mu);
    uint64_t n = count_locked(a, ep);
    pthread_mutex_unlock(&a->mu);
    return n;
}

void mw__fea_counts_reset(mw__fea *a)
{
    pthread_mutex_lock(&a->mu);
    memset(a->counts, 0, sizeof a->counts);
    pthread_mutex_unlock(&a->mu);
}

int mw__fea_last_request(mw__fea *a, mw__fea_ep ep, mw__fea_request *out)
{
    int rc = -1;
    pthread_mutex_lock(&a->mu);
    for (size_t k = 0; k < a->nlog && k < MW_FEAI_LOG && rc != 0; k++) {
        const mw__fea_request *r = &a->log[(a->nlog - 1 - k) % MW_FEAI_LOG];
        if (ep == MW_FEA_EP_COUNT || r->ep == ep) {
            *out = *r;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int mw__fea_wait_count(mw__fea *a, mw__fea_ep ep, uint64_t n, int timeout_ms)
{
    struct timespec until;
    int rc = 0;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&a->mu);
    while (count_locked(a, ep) < n && rc == 0)
        rc = pthread_cond_timedwait(&a->cv, &a->mu, &until);
    rc = count_locked(a, ep) >= n ? 0 : -1;
    pthread_mutex_unlock(&a->mu);
    return rc;
}
