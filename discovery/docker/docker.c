/*
 * docker.c - the Docker source: version negotiation, the events stream,
 * list + inspect syncs, live event handling and reconnects (see docker.h
 * for the contract). DOCKER_HOST parsing and our own container id are in
 * docker_host.c; the records it reports (events, docker.service_up) are
 * made in docker_report.c, the container counts per image (from a list of
 * every container, asked every service_up_interval) in docker_counts.c.
 *
 * One connection at a time goes through these phases:
 *
 *   BACKOFF -> VERSION -> STREAM (waiting for /events headers) -> LIST
 *           -> INSPECT (listed containers) -> DRAIN (queued events
 *              applied, their inspects awaited) -> LIVE
 *
 * A failure in any phase tears the connection down (every transfer is
 * cancelled, queued events dropped) and arms the backoff timer; the held
 * services stay until the next sync's diff. one_shot skips STREAM and
 * ends in DONE.
 *
 * Containers are tracked in a hash table of `ctr` entries, one per
 * container id that is a service, has an inspect waiting or in flight,
 * or started recently (for the restart-loop event). An entry owns its
 * service, its in-flight request and the inspect document kept while the
 * image id is resolved. Inspects wait in one FIFO and run at most
 * `max_inflight` at a time; `pump()` starts them, and is called only at
 * the end of the handlers (never from inside the event dispatch), so a
 * teardown can never happen in the middle of a loop over the entries.
 *
 * Ownership: the source owns its strings (copied from the opts), its
 * entries, their services, the image cache and the queued events. The
 * loop, http, log and filter are borrowed.
 */
#include "discovery/docker/docker.h"

#include "core/base/json_pick.h"
#include "core/base/util.h"
#include "discovery/docker/docker_counts.h"
#include "discovery/docker/docker_events.h"
#include "discovery/docker/docker_report.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHERE "docker"

#define API_MAX_MINOR 43 /* we speak 1.43 at most */
#define API_MIN_MINOR 40 /* the oldest inspect shape the service model reads */

#define LIST_MAX    ((size_t)256 << 20)
#define INSPECT_MAX ((size_t)8 << 20)
#define SMALL_MAX   ((size_t)1 << 20) /* /version, /images/{id}/json */
#define ERRBODY_MAX 512               /* what an error body contributes to a message */

#define MS              1000000ULL
#define BACKOFF_MIN_NS  (100 * MS)
#define BACKOFF_MAX_NS  (10000 * MS)
#define QUEUE_MAX       20000 /* events held while a sync runs */
#define IMAGE_CACHE_MAX 512
#define RESTART_STARTS  3
#define RESTART_WINDOW  (60LL * 1000000000LL)
#define BAD_LOG_WINDOW  (60000 * MS)
#define BAD_LOG_BURST   5
#define CID_MAX         128
#define SLOW_RETRIES    3 /* timeouts in a row before it is an error */
#define DEFAULT_HOST    "unix:///var/run/docker.sock"
#define EVENTS_FILTER   "filters=%7B%22type%22%3A%5B%22container%22%5D%7D"
#define COUNTS_PATH     "/containers/json?all=1"

typedef enum phase {
    PH_BACKOFF = 0,
    PH_VERSION,
    PH_STREAM,
    PH_LIST,
    PH_INSPECT,
    PH_DRAIN,
    PH_LIVE,
    PH_DONE, /* one_shot finished (synced or failed) */
} phase;

typedef struct ctr ctr;
struct ctr {
    ctr *hnext;                     /* hash chain */
    ctr *wnext;                     /* FIFO of entries waiting for an inspect */
    mw__docker *d;                  /* for the request callbacks */
    mw__service *svc;               /* owned; NULL when not a service */
    mw__http_req *req;              /* the inspect or image request in flight */
    cJSON *inspect;                 /* owned while the image id is resolved */
    cJSON *created;                 /* owned: the inspect of a created, not yet
                                     * started container (see early_start) */
    uint64_t seq;                   /* bumped by every event naming the container */
    uint64_t req_seq;               /* `seq` when the request in flight started */
    uint64_t listed;                /* the list generation that last saw it */
    int want;                       /* an inspect is asked for */
    int slow;                       /* inspects in a row that timed out */
    int early;                      /* started while its create inspect was in
                                     * flight: that answer may serve early_start */
    int queued;                     /* in the FIFO */
    int sync;                       /* counted in sync_outstanding */
    int oom;                        /* an `oom` event came, its `die` not yet */
    int64_t starts[RESTART_STARTS]; /* timeNano of recent starts, a ring */
    size_t nstarts;
    char cid[]; /* as the engine sends it */
};

typedef struct qev {
    struct qev *next;
    mw__docker_event ev;
} qev;

/* A `die` with exit code 137 and no `oom` event before it: the dead
 * container is inspected for State.OOMKilled before `exited` is said. */
typedef struct probe {
    struct probe *next;
    mw__docker *d;
    mw__http_req *req;
    cJSON *attrs; /* the event's attributes (its labels) */
    char *name, *image;
    int exit_code;
    int64_t time;
    char cid[];
} probe;

typedef struct image_ent {
    struct image_ent *next;
    char *id;  /* Config.Image as written */
    char *tag; /* RepoTags[0]; NULL when the image has none */
} image_ent;

struct mw__docker {
    mw__loop *loop;
    mw__http *http;
    const mw__log *log;
    const mw__filter *filter;
    mw__source_cbs cbs;
    int include_self, one_shot;
    double timeout, service_up_interval;
    size_t max_inflight;

    char *host; /* as given, for log lines */
    char *base_url, *socket_path;
    char self_id[65]; /* "" when not in a container */
    char api[16];     /* negotiated "1.NN", "" before */

    phase phase;
    uint64_t gen; /* bumped by each teardown */
    uint64_t t_start;
    uint64_t backoff;
    uint64_t rng;
    int up;         /* -1 before the first report, then 0 / 1 */
    char *why;      /* the last failure */
    int was_synced; /* a sync succeeded since the last failure */
    mw__timer retry_timer, up_timer;

    mw__http_req *version_req, *events_req, *list_req;
    mw__http_req *counts_req; /* the list of every container, for the counts */
    int counts_failing;       /* its last answer was not usable (said once) */
    long stream_status;
    mw__buf stream_err; /* the body of a refused /events */
    mw__docker_lines lines;
    mw__docker_resume resume;
    qev *q_head, **q_tail;
    size_t q_len;
    int draining;

    ctr **buckets;
    size_t nbuckets, nctr, nsvc;
    ctr *w_head, **w_tail;
    size_t inflight, sync_outstanding;
    uint64_t list_gen;

    image_ent *images;
    size_t nimages;

    probe *probes;

    uint64_t bad_window;
    unsigned bad_logged;
    uint64_t bad_suppressed;

    mw__docker_stats stats;
};

static void conn_fail(mw__docker *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pump(mw__docker *d);
static void sync_maybe_done(mw__docker *d);

/* ------------------------------------------------------------- own id */

static void read_self_id(mw__docker *d)
{
    const char *from = mw__docker_self_id_read(d->self_id);

    if (from)
        mw__debug(d->log, WHERE, "running in container %.12s (from %s)", d->self_id, from);
}

static int is_self(const mw__docker *d, const char *cid)
{
    return !d->include_self && d->self_id[0] && strcmp(cid, d->self_id) == 0;
}

/* ----------------------------------------------------------- entries */

static size_t bucket_of(const mw__docker *d, const char *cid)
{
    return (size_t)(mw__hash(MW_HASH_INIT, cid, strlen(cid)) & (d->nbuckets - 1));
}

static ctr *ctr_find(const mw__docker *d, const char *cid)
{
    for (ctr *e = d->buckets[bucket_of(d, cid)]; e; e = e->hnext)
        if (strcmp(e->cid, cid) == 0)
            return e;
    return NULL;
}

static void table_grow(mw__docker *d)
{
    size_t n = d->nbuckets * 2;
    ctr **b = calloc(n, sizeof(*b));

    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < d->nbuckets; i++)
        for (ctr *e = d->buckets[i], *next; e; e = next) {
            size_t k = (size_t)(mw__hash(MW_HASH_INIT, e->cid, strlen(e->cid)) & (n - 1));
            next = e->hnext;
            e->hnext = b[k];
            b[k] = e;
        }
    free(d->buckets);
    d->buckets = b;
    d->nbuckets = n;
}

/* The entry of `cid`, made when absent; NULL on OOM or an absurd id. */
static ctr *ctr_get(mw__docker *d, const char *cid)
{
    ctr *e = ctr_find(d, cid);
    size_t len = strlen(cid);

    if (e || len == 0 || len > CID_MAX)
        return e;
    if (d->nctr >= d->nbuckets)
        table_grow(d);
    e = calloc(1, sizeof(*e) + len + 1);
    if (!e)
        return NULL;
    memcpy(e->cid, cid, len + 1);
    e->d = d;
    e->hnext = d->buckets[bucket_of(d, cid)];
    d->buckets[bucket_of(d, cid)] = e;
    d->nctr++;
    return e;
}

static void ctr_unlink(mw__docker *d, ctr *e)
{
    ctr **pp = &d->buckets[bucket_of(d, e->cid)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    d->nctr--;
}

static void ctr_release(ctr *e)
{
    if (e->req)
        mw__http_cancel(e->req);
    cJSON_Delete(e->inspect);
    cJSON_Delete(e->created);
    mw__service_free(e->svc);
    free(e);
}

static int starts_recent(const mw__docker *d, const ctr *e)
{
    for (size_t i = 0; i < e->nstarts; i++)
        if (e->starts[i] > d->resume.last_nano - RESTART_WINDOW)
            return 1;
    return 0;
}

/* Frees an entry that holds nothing any more. */
static void ctr_gc(mw__docker *d, ctr *e)
{
    if (e->svc || e->created || e->req || e->want || e->queued || e->sync || e->oom ||
        starts_recent(d, e))
        return;
    ctr_unlink(d, e);
    ctr_release(e);
}

static void gc_all(mw__docker *d)
{
    for (size_t i = 0; i < d->nbuckets; i++)
        for (ctr *e = d->buckets[i], *next; e; e = next) {
            next = e->hnext;
            ctr_gc(d, e);
        }
}

/* The sync waits for this entry no more once nothing is pending on it. */
static void ctr_settle(mw__docker *d, ctr *e)
{
    if (e->sync && !e->req && !e->want) {
        e->sync = 0;
        d->sync_outstanding--;
    }
}

static void ctr_mark_sync(mw__docker *d, ctr *e)
{
    if (!e->sync) {
        e->sync = 1;
        d->sync_outstanding++;
    }
}

/* Asks for an inspect; the one in flight, if any, is answered first and
 * then repeated (the newest event wins). Started by pump(). */
static void ctr_want(mw__docker *d, ctr *e)
{
    e->want = 1;
    if (e->req || e->queued)
        return;
    e->queued = 1;
    e->wnext = NULL;
    *d->w_tail = e;
    d->w_tail = &e->wnext;
}

static void service_drop(mw__docker *d, ctr *e)
{
    mw__service *svc = e->svc;

    if (!svc)
        return;
    e->svc = NULL;
    d->nsvc--;
    if (d->cbs.remove)
        d->cbs.remove(d->cbs.ud, svc->id);
    mw__service_free(svc);
}

/* Takes `svc`: stores it, and tells the owner when it is new or its
 * digest changed. */
static void service_put(mw__docker *d, ctr *e, mw__service *svc)
{
    mw__service *old = e->svc;
    int changed = !old || old->digest != svc->digest || old->provisional != svc->provisional;

    e->svc = svc;
    if (!old)
        d->nsvc++;
    mw__service_free(old);
    if (changed && d->cbs.upsert)
        d->cbs.upsert(d->cbs.ud, svc);
}

/* ---------------------------------------------------------- image cache */

static image_ent *image_find(const mw__docker *d, const char *id)
{
    for (image_ent *i = d->images; i; i = i->next)
        if (strcmp(i->id, id) == 0)
            return i;
    return NULL;
}

static void images_free(mw__docker *d)
{
    for (image_ent *i = d->images, *next; i; i = next) {
        next = i->next;
        free(i->id);
        free(i->tag);
        free(i);
    }
    d->images = NULL;
    d->nimages = 0;
}

/* Remembers what `id` resolved to (`tag` NULL: no tag); OOM forgets. */
static void image_put(mw__docker *d, const char *id, const char *tag)
{
    image_ent *i;

    if (image_find(d, id))
        return;
    if (d->nimages >= IMAGE_CACHE_MAX)
        images_free(d); /* images are few; a full cache is a rare reset */
    i = calloc(1, sizeof(*i));
    if (!i)
        return;
    i->id = mw__strdup(id);
    i->tag = tag ? mw__strdup(tag) : NULL;
    if (!i->id || (tag && !i->tag)) {
        free(i->id);
        free(i->tag);
        free(i);
        return;
    }
    i->next = d->images;
    d->images = i;
    d->nimages++;
}

/* ----------------------------------------------------------- requests */

/* GET `path` (versioned unless `raw`), with the request timeout unless
 * `stream`. NULL with `*err` set (caller frees). */
static mw__http_req *get(mw__docker *d, const char *path, int raw, int stream, size_t max_body,
                         void (*done)(void *, const mw__http_result *), void *ud, char **err)
{
    mw__http_opts o = {0};
    mw__http_req *r;
    char *url = raw ? mw__sprintf("%s%s", d->base_url, path)
                    : mw__sprintf("%s/v%s%s", d->base_url, d->api, path);

    *err = NULL;
    if (!url) {
        *err = mw__strdup("out of memory");
        return NULL;
    }
    o.url = url;
    o.unix_socket = d->socket_path;
    o.timeout = stream ? 0 : d->timeout;
    o.connect_timeout = d->timeout;
    o.max_body = max_body;
    o.done = done;
    o.ud = ud;
    r = mw__http_start(d->http, &o, err);
    free(url);
    return r;
}

/* A response body's {"message": ...}, or its first bytes, for logs. */
static char *body_message(const char *body, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "message");
    char *out;

    if (cJSON_IsString(m))
        out = mw__strndup(m->valuestring, strnlen(m->valuestring, ERRBODY_MAX));
    else
        out = mw__strndup(body, len < ERRBODY_MAX ? len : ERRBODY_MAX);
    cJSON_Delete(root);
    if (out) /* one line, whatever the body held */
        for (char *p = out; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
    return out;
}

/* Why a non-stream request failed, or NULL when it got a 200. */
static char *result_error(const char *what, const mw__http_result *r)
{
    char *msg, *out;

    if (r->code != MW_OK)
        return mw__sprintf("%s: %s", what, r->error ? r->error : mw_strerror(r->code));
    if (r->status == 200)
        return NULL;
    msg = body_message(r->body, r->len);
    out = mw__sprintf("%s: HTTP %ld%s%s", what, r->status, msg && *msg ? ": " : "", msg ? msg : "");
    free(msg);
    return out;
}

/* --------------------------------------------------------- records */

static void service_up_emit(mw__docker *d)
{
    if (d->cbs.record && !d->one_shot)
        mw__docker_report_service_up(&d->cbs, d->log, d->up == 1, d->why);
}

/* ----------------------------------------------------- container counts */

static const char *image_resolve(void *ud, const char *image)
{
    const image_ent *i = image_find(ud, image);
    return i ? i->tag : NULL;
}

/* The counts were not sent this time: said once until they are sent
 * again. Never a connection failure: the service check and the services
 * do not depend on them. */
static void counts_fail(mw__docker *d, const char *why)
{
    if (d->counts_failing)
        mw__debug(d->log, WHERE, "container counts not sent: %s", why);
    else
        mw__warn(d->log, WHERE, "container counts not sent: %s (said once until they are back)",
                 why);
    d->counts_failing = 1;
}

static void on_counts(void *ud, const mw__http_result *r)
{
    mw__docker *d = ud;
    char *why = result_error("GET " COUNTS_PATH, r);
    cJSON *root = NULL;
    mw_code rc;

    d->counts_req = NULL;
    if (why) {
        counts_fail(d, why);
        goto out;
    }
    root = cJSON_ParseWithLength(r->body, r->len);
    rc = mw__docker_counts_report(&d->cbs, d->log, root, image_resolve, d, (int64_t)mw__wall());
    if (rc != MW_OK) {
        counts_fail(d, rc == MW_EPARSE ? "GET " COUNTS_PATH ": not a JSON array" : "out of memory");
        goto out;
    }
    if (d->counts_failing)
        mw__info(d->log, WHERE, "container counts are sent again");
    d->counts_failing = 0;
    d->stats.counts++;
out:
    free(why);
    cJSON_Delete(root);
}

/* One list of every container, while live only (a sync lists the running
 * ones itself), and never two at once: a tick that finds the last one
 * still in flight is skipped. */
static void counts_start(mw__docker *d)
{
    char *err = NULL, *why;

    if (!d->cbs.record || d->one_shot || d->phase != PH_LIVE)
        return;
    if (d->counts_req) {
        mw__debug(d->log, WHERE, "container counts skipped: the last list is still in flight");
        return;
    }
    d->counts_req = get(d, COUNTS_PATH, 0, 0, LIST_MAX, on_counts, d, &err);
    if (!d->counts_req) {
        why = mw__sprintf("GET " COUNTS_PATH ": %s", err ? err : "out of memory");
        counts_fail(d, why ? why : "out of memory");
        free(why);
    }
    free(err);
}

/* Every service_up_interval: the service check, the container counts,
 * and a sweep of the entries kept only to see restart loops (a container
 * that started and went), which nothing else visits once the stream is
 * live. */
static void up_timer_cb(mw__timer *t)
{
    mw__docker *d = t->ud;

    service_up_emit(d);
    if (d->phase == PH_LIVE) {
        gc_all(d);
        counts_start(d);
    }
    mw__timer_start(d->loop, &d->up_timer,
                    mw__loop_now(d->loop) + (uint64_t)(d->service_up_interval * 1e9));
}

static void set_connected(mw__docker *d, int up)
{
    if (d->up == up)
        return;
    d->up = up;
    service_up_emit(d);
    if (d->cbs.connected)
        d->cbs.connected(d->cbs.ud, up, up ? NULL : d->why);
}

/* Whether `ev` is reported: records are wanted and the container is not
 * filtered out. */
static int report_wanted(const mw__docker *d, const mw__docker_event *ev, const ctr *e)
{
    const char *name, *image;

    if (!d->cbs.record || d->one_shot)
        return 0;
    if (e && e->svc)
        return 1;
    name = ev->name ? ev->name : "";
    image = ev->image ? ev->image : "";
    return !d->filter || !mw__filter_excluded(d->filter, name, image);
}

/* The subject of `ev`'s report: its container as held (NULL
 * when not a service). */
static mw__docker_subject subject(const mw__docker_event *ev, const ctr *e)
{
    return (mw__docker_subject){ev, e ? e->svc : NULL};
}

static void report_die(mw__docker *d, const mw__docker_event *ev, const ctr *e)
{
    if (report_wanted(d, ev, e))
        mw__docker_report_die(&d->cbs, d->log, subject(ev, e));
}

static void report_oom(mw__docker *d, const mw__docker_event *ev, const ctr *e)
{
    if (report_wanted(d, ev, e))
        mw__docker_report_oom(&d->cbs, d->log, subject(ev, e));
}

static void report_unhealthy(mw__docker *d, const mw__docker_event *ev, const ctr *e)
{
    if (report_wanted(d, ev, e))
        mw__docker_report_unhealthy(&d->cbs, d->log, subject(ev, e));
}

/* Records a start; the third within RESTART_WINDOW is a restart loop. */
static void note_start(mw__docker *d, const mw__docker_event *ev, ctr *e)
{
    int64_t oldest;

    e->starts[e->nstarts % RESTART_STARTS] = ev->time_nano;
    e->nstarts++;
    if (e->nstarts < RESTART_STARTS)
        return;
    oldest = e->starts[e->nstarts % RESTART_STARTS];
    if (ev->time_nano - oldest > RESTART_WINDOW)
        return;
    e->nstarts = 0; /* one event per loop of three starts */
    if (report_wanted(d, ev, e))
        mw__docker_report_restart_loop(&d->cbs, d->log, subject(ev, e), RESTART_STARTS,
                                       RESTART_WINDOW / 1000000000LL);
}

/* ----------------------------------------------------------- inspects */

static void on_inspect(void *ud, const mw__http_result *r);
static void on_image(void *ud, const mw__http_result *r);

/* What of an inspect the source reads; NULL when it is not JSON. */
static cJSON *parse_inspect(const mw__http_result *r)
{
    return mw__json_pick_parse(r->body, r->len, mw__service_inspect_pick);
}

/* The answer is still the one wanted: no event came since it was asked. */
static int ctr_fresh(const ctr *e)
{
    return !e->want && e->seq == e->req_seq;
}

static int inspect_running(const cJSON *root)
{
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(root, "State");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(state, "Status");

    if (cJSON_IsString(status))
        return strcmp(status->valuestring, "running") == 0;
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(state, "Running")) &&
           !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(state, "Paused")) &&
           !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(state, "Restarting"));
}

static const char *inspect_image(const cJSON *root)
{
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(root, "Config");
    const cJSON *image = cJSON_GetObjectItemCaseSensitive(config, "Image");

    return cJSON_IsString(image) ? image->valuestring : NULL;
}

/* Builds the service from an inspect of a running container and stores
 * it, or drops the container when the filter excludes it. */
static void ctr_build(mw__docker *d, ctr *e, const cJSON *root, const char *image, int provisional)
{
    char *err = NULL;
    mw__service *svc = NULL;

    if (mw__service_from_inspect(root, image, &svc, &err) != MW_OK) {
        mw__warn(d->log, WHERE, "container %.12s: inspect not usable: %s", e->cid,
                 err ? err : "out of memory");
        free(err);
        return;
    }
    if (d->filter && mw__filter_excluded(d->filter, svc->name, svc->image)) {
        mw__debug(d->log, WHERE, "container %s (%s) excluded by the filter", svc->name, svc->image);
        mw__service_free(svc);
        service_drop(d, e);
        return;
    }
    svc->provisional = provisional;
    service_put(d, e, svc);
}

/* Where an inspect ends: one more is started if an event asked for it
 * meanwhile; the sync may be over; the entry may go. */
static void ctr_done(mw__docker *d, ctr *e)
{
    if (e->want)
        ctr_want(d, e);
    ctr_settle(d, e);
    ctr_gc(d, e);
    pump(d);
    sync_maybe_done(d);
}

/* Asks what image id `image` stands for. MW_OK; MW_ENOMEM; MW_EIO when
 * the request cannot start (logged). */
static mw_code start_image(mw__docker *d, ctr *e, const char *image)
{
    char *path = mw__sprintf("/images/%s/json", image), *err = NULL;

    if (!path)
        return MW_ENOMEM;
    e->req = get(d, path, 0, 0, SMALL_MAX, on_image, e, &err);
    free(path);
    if (!e->req) {
        mw__warn(d->log, WHERE, "GET /images/%s/json: %s", image, err ? err : "out of memory");
        free(err);
        return MW_EIO;
    }
    d->inflight++;
    return MW_OK;
}

/* A container that was created and not started yet: its inspect already
 * has what the service needs but the pid and addresses, so that its
 * `start` can schedule at once (early_start) instead of waiting for an
 * inspect the engine answers only once the start is over. Kept for live
 * `create` events only, at most one per container, until it starts or
 * goes. Takes `root`. */
static void keep_created(mw__docker *d, ctr *e, cJSON *root)
{
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(root, "State");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(state, "Status");

    cJSON_Delete(e->created);
    e->created = NULL;
    if (d->phase == PH_LIVE && cJSON_IsString(status) &&
        strcmp(status->valuestring, "created") == 0)
        e->created = root;
    else
        cJSON_Delete(root);
}

/* Marks a created container's inspect as running, without what only the
 * start gives: pid 0, no addresses; and no hostname either when it will
 * get an address, so that %%host%% cannot fall back to it. */
static void created_as_running(cJSON *root)
{
    cJSON *state = cJSON_GetObjectItemCaseSensitive(root, "State");
    cJSON *config = cJSON_GetObjectItemCaseSensitive(root, "Config");
    cJSON *host = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "HostConfig"), "NetworkMode");
    const char *mode = cJSON_GetStringValue(host);

    if (cJSON_IsObject(state)) {
        cJSON_ReplaceItemInObjectCaseSensitive(state, "Status", cJSON_CreateString("running"));
        cJSON_ReplaceItemInObjectCaseSensitive(state, "Running", cJSON_CreateTrue());
        cJSON_ReplaceItemInObjectCaseSensitive(state, "Pid", cJSON_CreateNumber(0));
    }
    if (cJSON_IsObject(config) && !(mode && (!strcmp(mode, "host") || !strcmp(mode, "none"))))
        cJSON_ReplaceItemInObjectCaseSensitive(config, "Hostname", cJSON_CreateString(""));
}

/*
 * On `start` of a container whose `create` inspect is at hand: a
 * provisional service from it, so that instances whose config does not
 * depend on the pid or addresses are scheduled now. The inspect that
 * follows replaces it; the reconciler skips a provisional service whose
 * configs do not all resolve, so nothing is half-known.
 */
static void early_start(mw__docker *d, ctr *e)
{
    cJSON *root = e->created;
    const char *image;

    e->created = NULL;
    e->early = 0;
    if (!root || e->svc || d->phase != PH_LIVE) {
        cJSON_Delete(root);
        return;
    }
    image = inspect_image(root);
    if (image && mw__service_image_is_id(image) && !image_find(d, image)) {
        cJSON_Delete(root); /* the image must be resolved first */
        return;
    }
    created_as_running(root);
    ctr_build(d, e, root,
              image && mw__service_image_is_id(image) ? image_find(d, image)->tag : NULL, 1);
    cJSON_Delete(root);
}

/* A fresh 200 inspect: running or not, image resolved or to resolve. */
static void inspect_apply(mw__docker *d, ctr *e, cJSON *root)
{
    const char *image = inspect_image(root);
    image_ent *cached;

    if (!inspect_running(root)) {
        service_drop(d, e);
        keep_created(d, e, root);
        return;
    }
    if (!image || !mw__service_image_is_id(image)) {
        ctr_build(d, e, root, NULL, 0);
        cJSON_Delete(root);
        return;
    }
    cached = image_find(d, image);
    if (cached || start_image(d, e, image) != MW_OK) {
        ctr_build(d, e, root, cached ? cached->tag : NULL, 0);
        cJSON_Delete(root);
        return;
    }
    e->inspect = root; /* kept until the image answers */
}

/*
 * An inspect that timed out: the engine answers, but not for this
 * container (busy creating, starting or removing it, under load). Only
 * this container waits: it is asked again until it answers or an event
 * settles it, while the stream and the other containers go on. Said once
 * as a warning, once more as an error when it keeps failing, then quietly.
 * (A refused or broken connection is another matter: conn_fail.)
 */
static void inspect_slow(mw__docker *d, ctr *e, const mw__http_result *r)
{
    const char *why = r->error ? r->error : "timed out";

    if (!ctr_fresh(e))
        return; /* a newer event asked for another inspect anyway */
    if (d->one_shot) {
        mw__warn(d->log, WHERE, "container %.12s: inspect %s; left out", e->cid, why);
        return;
    }
    e->slow++;
    e->want = 1;
    if (e->sync) { /* the sync does not wait for it: it comes in live */
        e->sync = 0;
        d->sync_outstanding--;
    }
    if (e->slow == 1)
        mw__warn(d->log, WHERE, "container %.12s: inspect %s; asking again", e->cid, why);
    else if (e->slow == SLOW_RETRIES)
        mw__error(d->log, WHERE,
                  "container %.12s: inspect %s, %d times in a row; still asking (the engine "
                  "is overloaded or the container is stuck)",
                  e->cid, why, e->slow);
    else
        mw__debug(d->log, WHERE, "container %.12s: inspect %s (%d times)", e->cid, why, e->slow);
}

static void on_inspect(void *ud, const mw__http_result *r)
{
    ctr *e = ud;
    mw__docker *d = e->d;
    cJSON *root;

    e->req = NULL;
    d->inflight--;
    if (r->code == MW_EIO) {
        conn_fail(d, "GET /containers/%.12s/json: %s", e->cid, r->error ? r->error : "failed");
        return;
    }
    if (r->code == MW_ETIMEOUT) {
        inspect_slow(d, e, r);
        ctr_done(d, e);
        return;
    }
    e->slow = 0;
    if (!ctr_fresh(e)) {
        /* An event overtook it: a die/stop won, or another inspect follows;
         * a create inspect overtaken by the start may still serve. */
        if (e->early && r->code == MW_OK && r->status == 200 && (root = parse_inspect(r))) {
            e->early = 0;
            if (inspect_running(root)) {
                inspect_apply(d, e, root); /* answered after the start */
            } else {
                keep_created(d, e, root);
                early_start(d, e);
            }
        }
    } else if (r->code == MW_OK && r->status == 404) {
        mw__debug(d->log, WHERE, "container %.12s is gone (404 on inspect)", e->cid);
        service_drop(d, e);
    } else if (r->code != MW_OK || r->status != 200) {
        char *why = result_error("inspect", r);
        mw__warn(d->log, WHERE, "container %.12s: %s; left as it was", e->cid,
                 why ? why : "out of memory");
        free(why);
    } else if (!(root = parse_inspect(r))) {
        mw__warn(d->log, WHERE, "container %.12s: inspect is not JSON; left as it was", e->cid);
    } else {
        inspect_apply(d, e, root);
    }
    ctr_done(d, e);
}

/* RepoTags[0] of an image inspect, or NULL. */
static const char *repo_tag(const cJSON *img)
{
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(img, "RepoTags");
    const cJSON *first = cJSON_IsArray(tags) ? cJSON_GetArrayItem(tags, 0) : NULL;

    return cJSON_IsString(first) && first->valuestring[0] ? first->valuestring : NULL;
}

static void on_image(void *ud, const mw__http_result *r)
{
    ctr *e = ud;
    mw__docker *d = e->d;
    cJSON *root = e->inspect, *img = NULL;
    const char *image = inspect_image(root), *tag = NULL;

    e->req = NULL;
    e->inspect = NULL;
    d->inflight--;
    if (r->code == MW_ETIMEOUT || r->code == MW_EIO) {
        cJSON_Delete(root);
        conn_fail(d, "GET /images/%s/json: %s", image ? image : "?",
                  r->error ? r->error : "failed");
        return;
    }
    if (r->code == MW_OK && r->status == 200 && (img = cJSON_ParseWithLength(r->body, r->len))) {
        tag = repo_tag(img);
        image_put(d, image, tag);
    } else if (!(r->code == MW_OK && r->status == 404)) {
        char *why = result_error("image inspect", r);
        mw__warn(d->log, WHERE, "image %s: %s; its id stands for its name", image,
                 why ? why : "not JSON");
        free(why);
    } else {
        image_put(d, image, NULL); /* gone: nothing to resolve it to */
    }
    if (ctr_fresh(e))
        ctr_build(d, e, root, tag, 0);
    cJSON_Delete(img);
    cJSON_Delete(root);
    ctr_done(d, e);
}

static void start_inspect(mw__docker *d, ctr *e)
{
    char *path = mw__sprintf("/containers/%s/json", e->cid), *err = NULL;

    e->req_seq = e->seq;
    e->want = 0;
    e->req = path ? get(d, path, 0, 0, INSPECT_MAX, on_inspect, e, &err) : NULL;
    free(path);
    if (!e->req) {
        conn_fail(d, "GET /containers/%.12s/json: %s", e->cid, err ? err : "out of memory");
        free(err);
        return;
    }
    d->inflight++;
    d->stats.inspects++;
}

/* Starts waiting inspects up to the bound. */
static void pump(mw__docker *d)
{
    uint64_t gen = d->gen;

    while (d->w_head && d->inflight < d->max_inflight && d->gen == gen) {
        ctr *e = d->w_head;
        d->w_head = e->wnext;
        if (!d->w_head)
            d->w_tail = &d->w_head;
        e->queued = 0;
        if (e->want && !e->req)
            start_inspect(d, e);
        else
            ctr_gc(d, e);
    }
}

/* ------------------------------------------------------------- exits */

static void probe_free(probe *p)
{
    if (p->req)
        mw__http_cancel(p->req);
    cJSON_Delete(p->attrs);
    free(p->name);
    free(p->image);
    free(p);
}

static void probe_unlink(mw__docker *d, probe *p)
{
    probe **pp = &d->probes;

    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
}

/* The inspect of a dead container: its State.OOMKilled. */
static void on_probe(void *ud, const mw__http_result *r)
{
    probe *p = ud;
    mw__docker *d = p->d;
    cJSON *root =
        r->code == MW_OK && r->status == 200 ? cJSON_ParseWithLength(r->body, r->len) : NULL;
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(root, "State");
    mw__source_exit x = {p->cid,
                         NULL,
                         p->attrs,
                         p->name,
                         p->image,
                         p->exit_code,
                         cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(state, "OOMKilled")),
                         p->time};

    p->req = NULL;
    probe_unlink(d, p);
    cJSON_Delete(root);
    d->cbs.exited(d->cbs.ud, &x);
    probe_free(p);
}

/* Asks the inspect of `ev`'s dead container; 0 when it is on its way. */
static int probe_start(mw__docker *d, const mw__docker_event *ev, int code)
{
    size_t len = strlen(ev->id);
    probe *p = calloc(1, sizeof *p + len + 1);
    char *path = mw__sprintf("/containers/%s/json", ev->id), *err = NULL;

    if (!p || !path)
        goto fail;
    memcpy(p->cid, ev->id, len + 1);
    p->d = d;
    p->exit_code = code;
    p->time = ev->time;
    p->attrs = ev->attributes ? cJSON_Duplicate(ev->attributes, 1) : NULL;
    p->name = ev->name ? mw__strdup(ev->name) : NULL;
    p->image = ev->image ? mw__strdup(ev->image) : NULL;
    p->req = get(d, path, 0, 0, INSPECT_MAX, on_probe, p, &err);
    if (!p->req)
        goto fail;
    p->next = d->probes;
    d->probes = p;
    free(path);
    return 0;
fail:
    free(err);
    free(path);
    if (p)
        probe_free(p);
    return -1;
}

/* `die`: the exit said through `exited`, after a probe for an exit 137
 * that no `oom` event explained (the engine may miss it: it is a kill). */
static void say_exited(mw__docker *d, const mw__docker_event *ev, ctr *e)
{
    char *end = NULL;
    long code = ev->exit_code ? strtol(ev->exit_code, &end, 10) : -1;
    int oom = e && e->oom;
    mw__source_exit x;

    if (e)
        e->oom = 0;
    if (!d->cbs.exited || d->one_shot)
        return;
    if (ev->exit_code && (!end || *end || code < 0 || code > 255))
        code = -1;
    if (code == 137 && !oom && probe_start(d, ev, (int)code) == 0)
        return;
    x = (mw__source_exit){
        ev->id,   e ? e->svc : NULL, e && e->svc ? e->svc->labels : ev->attributes,
        ev->name, ev->image,         (int)code,
        oom,      ev->time};
    d->cbs.exited(d->cbs.ud, &x);
}

/* `start`: said through `started`, with the event's labels unless the
 * service is already held. */
static void say_started(mw__docker *d, const mw__docker_event *ev, const ctr *e)
{
    mw__source_exit x;

    if (!d->cbs.started || d->one_shot)
        return;
    x = (mw__source_exit){
        ev->id,   e ? e->svc : NULL, e && e->svc ? e->svc->labels : ev->attributes,
        ev->name, ev->image,         -1,
        0,        ev->time};
    d->cbs.started(d->cbs.ud, &x);
}

/* ------------------------------------------------------------- events */

typedef void (*event_fn)(mw__docker *d, const mw__docker_event *ev);

/* The entry an event needs, made when absent (inspecting events only). */
static ctr *event_ctr(mw__docker *d, const mw__docker_event *ev, int make)
{
    ctr *e = make ? ctr_get(d, ev->id) : ctr_find(d, ev->id);

    if (!e && make)
        mw__warn(d->log, WHERE, "container %.12s: %s event dropped: out of memory", ev->id,
                 ev->action);
    return e;
}

static void ev_inspect(mw__docker *d, const mw__docker_event *ev)
{
    ctr *e = event_ctr(d, ev, 1);

    if (!e)
        return;
    e->seq++;
    if (d->draining)
        ctr_mark_sync(d, e);
    ctr_want(d, e);
}

static void ev_remove(mw__docker *d, const mw__docker_event *ev)
{
    ctr *e = event_ctr(d, ev, 0);

    if (!e)
        return;
    e->seq++;
    e->want = 0;
    e->early = 0;
    cJSON_Delete(e->created);
    e->created = NULL;
    service_drop(d, e);
    ctr_settle(d, e);
    ctr_gc(d, e);
}

static void ev_start(mw__docker *d, const mw__docker_event *ev)
{
    ctr *e = event_ctr(d, ev, 1);

    if (e) {
        note_start(d, ev, e);
        e->early = !e->created && !e->svc && e->req != NULL;
        early_start(d, e);
    }
    say_started(d, ev, e);
    ev_inspect(d, ev);
}

static void ev_health(mw__docker *d, const mw__docker_event *ev)
{
    report_unhealthy(d, ev, ctr_find(d, ev->id));
    ev_inspect(d, ev);
}

static void ev_die(mw__docker *d, const mw__docker_event *ev)
{
    ctr *e = ctr_find(d, ev->id);

    report_die(d, ev, e);
    say_exited(d, ev, e);
    ev_remove(d, ev);
}

static void ev_oom(mw__docker *d, const mw__docker_event *ev)
{
    ctr *e = d->cbs.exited ? event_ctr(d, ev, 1) : ctr_find(d, ev->id);

    if (e && d->cbs.exited)
        e->oom = 1; /* for the `die` that follows, which removes it */
    report_oom(d, ev, e);
}

static const struct {
    const char *action;
    event_fn fn;
} event_table[] = {
    {"create", ev_inspect},  {"start", ev_start},
    {"unpause", ev_inspect}, {"health_status", ev_health},
    {"rename", ev_inspect},  {"update", ev_inspect},
    {"die", ev_die},         {"stop", ev_remove},
    {"destroy", ev_remove},  {"pause", ev_remove},
    {"oom", ev_oom},
    /* kill: nothing; the die that follows a fatal signal removes it */
};

static void event_apply(mw__docker *d, const mw__docker_event *ev)
{
    if (mw__docker_resume_seen(&d->resume, ev)) {
        d->stats.dup_events++;
        return;
    }
    mw__docker_resume_applied(&d->resume, ev);
    d->stats.events++;
    if (strcmp(ev->type, "container") != 0 || is_self(d, ev->id))
        return;
    for (size_t i = 0; i < MW_ARRAY_LEN(event_table); i++)
        if (strcmp(ev->action, event_table[i].action) == 0) {
            event_table[i].fn(d, ev);
            return;
        }
}

static void queue_free(mw__docker *d)
{
    for (qev *q = d->q_head, *next; q; q = next) {
        next = q->next;
        mw__docker_event_free(&q->ev);
        free(q);
    }
    d->q_head = NULL;
    d->q_tail = &d->q_head;
    d->q_len = 0;
}

/* Takes the event: held until the sync's inspects are done. */
static void queue_push(mw__docker *d, mw__docker_event *ev)
{
    qev *q;

    if (d->q_len >= QUEUE_MAX) {
        mw__docker_event_free(ev);
        conn_fail(d, "more than %d events arrived during the sync", QUEUE_MAX);
        return;
    }
    q = malloc(sizeof(*q));
    if (!q) {
        mw__docker_event_free(ev);
        conn_fail(d, "out of memory queueing an event during the sync");
        return;
    }
    q->ev = *ev;
    q->next = NULL;
    *d->q_tail = q;
    d->q_tail = &q->next;
    d->q_len++;
}

/* Applies the events queued during the sync, in order. */
static void queue_drain(mw__docker *d)
{
    uint64_t gen = d->gen;

    d->draining = 1;
    while (d->q_head && d->gen == gen) {
        qev *q = d->q_head;
        d->q_head = q->next;
        if (!d->q_head)
            d->q_tail = &d->q_head;
        d->q_len--;
        event_apply(d, &q->ev);
        mw__docker_event_free(&q->ev);
        free(q);
    }
    d->draining = 0;
}

static void bad_line(mw__docker *d, const char *why)
{
    uint64_t now = mw__loop_now(d->loop);

    d->stats.bad_events++;
    if (d->bad_window == 0 || now - d->bad_window >= BAD_LOG_WINDOW) {
        if (d->bad_suppressed)
            mw__warn(d->log, WHERE, "%" PRIu64 " more malformed event lines were not logged",
                     d->bad_suppressed);
        d->bad_window = now;
        d->bad_logged = 0;
        d->bad_suppressed = 0;
    }
    if (d->bad_logged++ < BAD_LOG_BURST)
        mw__warn(d->log, WHERE, "malformed event line skipped: %s", why);
    else
        d->bad_suppressed++;
}

static mw_code on_line(void *ud, const char *line, size_t len, const char *err)
{
    mw__docker *d = ud;
    mw__docker_event ev;
    char *perr = NULL;

    if (d->phase < PH_STREAM || d->phase > PH_LIVE)
        return MW_ESTATE; /* torn down by an earlier line */
    if (err) {
        bad_line(d, err);
        return MW_OK;
    }
    if (mw__docker_event_parse(line, len, &ev, &perr) != MW_OK) {
        bad_line(d, perr ? perr : "out of memory");
        free(perr);
        return MW_OK;
    }
    if (d->phase < PH_DRAIN) {
        queue_push(d, &ev);
        return MW_OK;
    }
    event_apply(d, &ev);
    mw__docker_event_free(&ev);
    return MW_OK;
}

/* ---------------------------------------------------------- connection */

static void teardown(mw__docker *d)
{
    d->gen++;
    if (d->version_req)
        mw__http_cancel(d->version_req);
    if (d->events_req)
        mw__http_cancel(d->events_req);
    if (d->list_req)
        mw__http_cancel(d->list_req);
    if (d->counts_req)
        mw__http_cancel(d->counts_req);
    d->version_req = d->events_req = d->list_req = d->counts_req = NULL;
    for (size_t i = 0; i < d->nbuckets; i++)
        for (ctr *e = d->buckets[i]; e; e = e->hnext) {
            if (e->req)
                mw__http_cancel(e->req);
            e->req = NULL;
            cJSON_Delete(e->inspect);
            cJSON_Delete(e->created);
            e->inspect = e->created = NULL;
            e->early = 0;
            e->want = e->queued = e->sync = 0;
        }
    d->w_head = NULL;
    d->w_tail = &d->w_head;
    d->inflight = d->sync_outstanding = 0;
    queue_free(d);
    /* The line splitter may be feeding the line that led here; it is
     * reset by the next start_stream(). */
    mw__buf_free(&d->stream_err);
    gc_all(d);
}

/* Next retry delay: doubling from 100 ms to 10 s, +-20 % jitter. */
static uint64_t backoff_next(mw__docker *d)
{
    uint64_t base = d->backoff;
    double jitter;

    d->rng ^= d->rng << 13;
    d->rng ^= d->rng >> 7;
    d->rng ^= d->rng << 17;
    jitter = 0.8 + 0.4 * (double)(d->rng >> 11) / (double)(1ULL << 53);
    d->backoff = base * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : base * 2;
    return (uint64_t)((double)base * jitter);
}

static void conn_fail(mw__docker *d, const char *fmt, ...)
{
    va_list ap;
    char *why;
    uint64_t delay;
    mw_log_level level;

    if (d->phase == PH_BACKOFF || d->phase == PH_DONE)
        return;
    va_start(ap, fmt);
    why = mw__vsprintf(fmt, ap);
    va_end(ap);
    /* A retry failing as the one before is logged at debug: an engine
     * down for an hour makes one warning, not one per retry. */
    level =
        !d->was_synced && why && d->why && strcmp(why, d->why) == 0 ? MW_LOG_DEBUG : MW_LOG_WARN;
    free(d->why);
    d->why = why ? why : mw__strdup("out of memory");
    teardown(d);
    if (d->one_shot) {
        d->phase = PH_DONE;
        mw__error(d->log, WHERE, "cannot read containers from %s: %s", d->host,
                  d->why ? d->why : "?");
        d->up = -1; /* always report the failure that ends a one-shot */
        set_connected(d, 0);
        return;
    }
    d->phase = PH_BACKOFF;
    delay = backoff_next(d);
    if (d->was_synced)
        mw__log_write(d->log, level, WHERE, "disconnected from %s: %s; reconnecting in %.1f s",
                      d->host, d->why ? d->why : "?", (double)delay / 1e9);
    else
        mw__log_write(d->log, level, WHERE, "cannot connect to %s: %s; retrying in %.1f s", d->host,
                      d->why ? d->why : "?", (double)delay / 1e9);
    d->was_synced = 0;
    mw__timer_start(d->loop, &d->retry_timer, mw__loop_now(d->loop) + delay);
    set_connected(d, 0);
}

static void sync_done(mw__docker *d)
{
    double ms = (double)(mw__loop_now(d->loop) - d->t_start) / 1e6;

    d->phase = d->one_shot ? PH_DONE : PH_LIVE;
    d->stats.syncs++;
    d->backoff = BACKOFF_MIN_NS;
    d->was_synced = 1;
    gc_all(d);
    mw__info(d->log, WHERE, "connected to %s (API %s), %zu containers synced in %.0f ms", d->host,
             d->api, d->nsvc, ms);
    set_connected(d, 1);
    if (d->cbs.synced)
        d->cbs.synced(d->cbs.ud);
}

static void sync_maybe_done(mw__docker *d)
{
    if (d->phase == PH_INSPECT && d->sync_outstanding == 0) {
        d->phase = PH_DRAIN;
        queue_drain(d);
        if (d->phase != PH_DRAIN)
            return; /* torn down while draining */
        pump(d);
    }
    if (d->phase == PH_DRAIN && d->sync_outstanding == 0)
        sync_done(d);
}

/* What of a container list's items is read. */
static const mw__json_pick list_pick[] = {{"Id", NULL}, {"State", NULL}, {NULL, NULL}};

/* The list's running containers, marked with this generation; the held
 * services it does not name are gone. */
static void on_list(void *ud, const mw__http_result *r)
{
    mw__docker *d = ud;
    char *why = result_error("GET /containers/json", r);
    cJSON *root = NULL, *item;
    uint64_t gen = d->gen;

    d->list_req = NULL;
    if (why) {
        conn_fail(d, "%s", why);
        free(why);
        return;
    }
    root = mw__json_pick_parse(r->body, r->len, list_pick);
    if (!cJSON_IsArray(root)) {
        cJSON_Delete(root);
        conn_fail(d, "GET /containers/json: not a JSON array");
        return;
    }
    d->list_gen++;
    cJSON_ArrayForEach(item, root)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "Id");
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(item, "State");
        ctr *e;

        if (!cJSON_IsString(id) ||
            (cJSON_IsString(state) && strcmp(state->valuestring, "running") != 0))
            continue; /* paused containers are not services */
        if (is_self(d, id->valuestring))
            continue;
        e = ctr_get(d, id->valuestring);
        if (!e) {
            cJSON_Delete(root);
            conn_fail(d, "out of memory tracking %zu containers", d->nctr);
            return;
        }
        e->listed = d->list_gen;
    }
    cJSON_Delete(root);
    d->phase = PH_INSPECT;
    for (size_t i = 0; i < d->nbuckets && d->gen == gen; i++)
        for (ctr *e = d->buckets[i], *next; e && d->gen == gen; e = next) {
            next = e->hnext;
            if (e->listed != d->list_gen) {
                service_drop(d, e); /* not running any more */
                ctr_gc(d, e);
                continue;
            }
            ctr_mark_sync(d, e);
            ctr_want(d, e);
        }
    if (d->gen != gen)
        return;
    pump(d);
    sync_maybe_done(d);
}

static void start_list(mw__docker *d)
{
    char *err = NULL;

    d->phase = PH_LIST;
    d->list_req = get(d, "/containers/json", 0, 0, LIST_MAX, on_list, d, &err);
    if (!d->list_req) {
        conn_fail(d, "GET /containers/json: %s", err ? err : "out of memory");
        free(err);
    }
}

static void on_stream_headers(void *ud, long status)
{
    mw__docker *d = ud;

    d->stream_status = status;
    if (status == 200 && d->phase == PH_STREAM)
        start_list(d); /* the engine subscribed us before sending these */
}

static int on_stream_data(void *ud, const char *p, size_t n)
{
    mw__docker *d = ud;
    uint64_t gen = d->gen;
    mw_code rc;

    if (d->stream_status != 200) {
        size_t room = ERRBODY_MAX - d->stream_err.len;
        mw__buf_add(&d->stream_err, p, n < room ? n : room);
        return 0;
    }
    rc = mw__docker_lines_feed(&d->lines, p, n, on_line, d);
    if (d->gen != gen)
        return 1; /* torn down: this transfer is cancelled already */
    if (rc != MW_OK) {
        conn_fail(d, "events stream: %s", mw_strerror(rc));
        return 1;
    }
    pump(d);
    return 0;
}

static mw_code on_stream_cut(void *ud, const char *line, size_t len, const char *err)
{
    MW_UNUSED(line);
    MW_UNUSED(len);
    bad_line(ud, err ? err : "cut line");
    return MW_OK;
}

static void on_stream_done(void *ud, const mw__http_result *r)
{
    mw__docker *d = ud;
    char *msg = NULL;

    d->events_req = NULL;
    if (d->stream_status == 200)
        mw__docker_lines_finish(&d->lines, on_stream_cut, d);
    if (r->code != MW_OK) {
        conn_fail(d, "events stream: %s", r->error ? r->error : mw_strerror(r->code));
    } else if (d->stream_status != 200) {
        msg = body_message(mw__buf_str(&d->stream_err), d->stream_err.len);
        conn_fail(d, "GET /events: HTTP %ld%s%s", r->status, msg && *msg ? ": " : "",
                  msg ? msg : "");
    } else {
        conn_fail(d, "events stream ended");
    }
    free(msg);
}

static void start_stream(mw__docker *d)
{
    mw__http_opts o = {0};
    char since[MW_DOCKER_SINCE_SIZE], *url, *err = NULL;

    d->phase = PH_STREAM;
    d->stream_status = 0;
    mw__buf_reset(&d->stream_err);
    mw__docker_lines_free(&d->lines); /* a cut line of the last stream */
    mw__docker_lines_init(&d->lines, MW_DOCKER_LINE_MAX);
    if (mw__docker_resume_since(&d->resume, since))
        url = mw__sprintf("%s/v%s/events?%s&since=%s", d->base_url, d->api, EVENTS_FILTER, since);
    else
        url = mw__sprintf("%s/v%s/events?%s", d->base_url, d->api, EVENTS_FILTER);
    if (!url) {
        conn_fail(d, "out of memory");
        return;
    }
    o.url = url;
    o.unix_socket = d->socket_path;
    o.connect_timeout = d->timeout;
    o.on_data = on_stream_data;
    o.on_headers = on_stream_headers;
    o.done = on_stream_done;
    o.ud = d;
    d->events_req = mw__http_start(d->http, &o, &err);
    free(url);
    if (!d->events_req) {
        conn_fail(d, "GET /events: %s", err ? err : "out of memory");
        free(err);
    }
}

/* "1.41" -> 41 (major 1 only); -1 when malformed. */
static int api_minor(const char *v)
{
    int minor = 0, n = 0;

    if (!v || strncmp(v, "1.", 2) != 0)
        return -1;
    for (v += 2; *v >= '0' && *v <= '9' && n < 4; v++, n++)
        minor = minor * 10 + (*v - '0');
    return n == 0 || *v ? -1 : minor;
}

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Picks min(1.43, ApiVersion), within what both sides accept. MW_OK;
 * MW_EPARSE when the answer has no usable ApiVersion, MW_EINVAL when the
 * versions do not meet (the connection failed then). */
static mw_code negotiate(mw__docker *d, const cJSON *root)
{
    const char *api = json_str(root, "ApiVersion"), *min = json_str(root, "MinAPIVersion");
    int theirs = api_minor(api), their_min = min ? api_minor(min) : 0, ours;

    if (theirs < 0) {
        conn_fail(d, "GET /version: no usable ApiVersion (%s)", api ? api : "absent");
        return MW_EPARSE;
    }
    if (theirs < API_MIN_MINOR) {
        conn_fail(d, "engine API %s is older than 1.%d, the oldest supported", api, API_MIN_MINOR);
        return MW_EINVAL;
    }
    ours = theirs < API_MAX_MINOR ? theirs : API_MAX_MINOR;
    if (their_min > ours) {
        conn_fail(d, "engine API needs at least %s, newer than 1.%d, the newest supported", min,
                  API_MAX_MINOR);
        return MW_EINVAL;
    }
    snprintf(d->api, sizeof(d->api), "1.%d", ours);
    memcpy(d->stats.api_version, d->api, sizeof(d->stats.api_version));
    return MW_OK;
}

static void on_version(void *ud, const mw__http_result *r)
{
    mw__docker *d = ud;
    char *why = result_error("GET /version", r);
    cJSON *root;
    mw_code rc;

    d->version_req = NULL;
    if (why) {
        conn_fail(d, "%s", why);
        free(why);
        return;
    }
    root = cJSON_ParseWithLength(r->body, r->len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        conn_fail(d, "GET /version: not a JSON object");
        return;
    }
    rc = negotiate(d, root);
    cJSON_Delete(root);
    if (rc != MW_OK)
        return;
    if (d->one_shot)
        start_list(d);
    else
        start_stream(d);
}

static void connect_start(mw__docker *d)
{
    char *err = NULL;

    if (d->t_start)
        d->stats.reconnects++;
    d->t_start = mw__loop_now(d->loop);
    d->phase = PH_VERSION;
    d->version_req = get(d, "/version", 1, 0, SMALL_MAX, on_version, d, &err);
    if (!d->version_req) {
        conn_fail(d, "GET /version: %s", err ? err : "out of memory");
        free(err);
    }
}

static void retry_timer_cb(mw__timer *t)
{
    connect_start(t->ud);
}

/* ------------------------------------------------------------- public */

static mw_code copy_opts(mw__docker *d, const mw__docker_opts *o, char **err)
{
    const char *host = o->host ? o->host : getenv("DOCKER_HOST");
    mw_code rc;

    if (!host || !*host)
        host = DEFAULT_HOST;
    if ((rc = mw__docker_host_parse(host, &d->base_url, &d->socket_path, err)) != MW_OK)
        return rc;
    if (!(d->host = mw__strdup(host)))
        return MW_ENOMEM;
    d->loop = o->loop;
    d->http = o->http;
    d->log = o->log;
    d->filter = o->filter;
    d->cbs = o->cbs;
    d->include_self = o->include_self;
    d->one_shot = o->one_shot;
    d->timeout = o->request_timeout > 0 ? o->request_timeout : 10;
    d->max_inflight = o->max_inflight ? o->max_inflight : 32;
    d->service_up_interval = o->service_up_interval > 0 ? o->service_up_interval : 15;
    if (o->self_id)
        snprintf(d->self_id, sizeof(d->self_id), "%s", o->self_id);
    else
        read_self_id(d);
    return MW_OK;
}

mw_code mw__docker_new(const mw__docker_opts *o, mw__docker **out, char **err)
{
    mw__docker *d = calloc(1, sizeof(*d));
    mw_code rc = MW_ENOMEM;

    *out = NULL;
    if (err)
        *err = NULL;
    if (!d)
        goto out;
    d->nbuckets = 64;
    d->buckets = calloc(d->nbuckets, sizeof(*d->buckets));
    d->q_tail = &d->q_head;
    d->w_tail = &d->w_head;
    d->up = -1;
    d->backoff = BACKOFF_MIN_NS;
    d->rng = (mw__mono_ns() ^ (uint64_t)(uintptr_t)d) | 1;
    mw__buf_init(&d->stream_err, ERRBODY_MAX);
    mw__docker_lines_init(&d->lines, MW_DOCKER_LINE_MAX);
    mw__docker_resume_init(&d->resume);
    mw__timer_init(&d->retry_timer, retry_timer_cb, d);
    mw__timer_init(&d->up_timer, up_timer_cb, d);
    if (!d->buckets || (rc = copy_opts(d, o, err)) != MW_OK)
        goto out;
    /* First attempt on the next loop iteration: no callback from here. */
    d->phase = PH_BACKOFF;
    mw__timer_start(d->loop, &d->retry_timer, mw__loop_now(d->loop));
    if (!d->one_shot)
        mw__timer_start(d->loop, &d->up_timer,
                        mw__loop_now(d->loop) + (uint64_t)(d->service_up_interval * 1e9));
    *out = d;
    d = NULL;
    rc = MW_OK;
out:
    if (rc == MW_ENOMEM && err && !*err)
        *err = mw__strdup("out of memory");
    mw__docker_free(d);
    return rc;
}

void mw__docker_free(mw__docker *d)
{
    if (!d)
        return;
    if (d->loop) {
        mw__timer_stop(d->loop, &d->retry_timer);
        mw__timer_stop(d->loop, &d->up_timer);
    }
    if (d->buckets) {
        teardown(d);
        for (size_t i = 0; i < d->nbuckets; i++)
            for (ctr *e = d->buckets[i], *next; e; e = next) {
                next = e->hnext;
                ctr_release(e);
            }
    }
    free(d->buckets);
    while (d->probes) {
        probe *p = d->probes;
        d->probes = p->next;
        probe_free(p);
    }
    images_free(d);
    mw__docker_lines_free(&d->lines);
    mw__buf_free(&d->stream_err);
    free(d->why);
    free(d->host);
    free(d->base_url);
    free(d->socket_path);
    free(d);
}

size_t mw__docker_count(const mw__docker *d)
{
    return d ? d->nsvc : 0;
}

const mw__service *mw__docker_get(const mw__docker *d, const char *id)
{
    const ctr *e;

    if (!d || !id || strncmp(id, "docker://", 9) != 0)
        return NULL;
    e = ctr_find(d, id + 9);
    return e ? e->svc : NULL;
}

void mw__docker_stats_get(const mw__docker *d, mw__docker_stats *out)
{
    *out = d->stats;
    out->connected = d->up == 1;
    out->tracked = d->nctr;
}
