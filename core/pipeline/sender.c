/*
 * sender.c - one check instance's samples for the run in progress.
 *
 * Samples are written into one capped byte arena as they come, already in
 * the aggregator's canonical form (instance tags merged, tags sorted and
 * unique, default host filled in, key hashed), so the commit is a pointer
 * walk plus one lock per context shard. The arena is freed after each
 * commit, and an idle instance (most of them, most of the time) holds none
 * of it; a run's first sample sizes it for what the last run wrote, so a
 * run like the last one allocates it once instead of growing it from 64
 * bytes a sample at a time.
 *
 * Arena entry: an `entry` header, then for a metric the mw__agg_sample and
 * its key; for a service check or an event the key (name or title, host,
 * tags) followed by its other strings, NUL-terminated. Entries are 8-byte
 * aligned (offsets, not pointers: the arena may move while it grows).
 *
 * The sender owns copies of its check name, id, host and instance tags.
 */
#include "core/base/buf.h"
#include "core/base/util.h"
#include "core/pipeline/aggregator.h"
#include "core/pipeline/sender.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_BYTES (8u << 20)
#define ALIGN8(n)         (((n) + 7) & ~(size_t)7)

/* Event strings after the key, in this order; absent ones are empty and
 * flagged as such in `present`. */
enum { EV_TEXT, EV_ALERT, EV_PRIORITY, EV_AGGKEY, EV_SOURCE, EV_NSTR };

typedef struct entry {
    uint32_t size; /* whole entry, padding included */
    uint8_t rec;   /* mw_record_type */
    uint8_t present;
    uint16_t unused;
    double ts; /* event: its timestamp, 0 = commit time */
    int status;
    int unused2;
    mw__agg_sample s; /* key (and the other strings) follow */
} entry;

/* The sample must end the header: its key follows it in memory. */
_Static_assert(sizeof(entry) == offsetof(entry, s) + sizeof(mw__agg_sample), "entry layout");

struct mw__sender {
    mw__aggregator *agg;
    char *check, *check_id, *host;
    size_t host_n;
    mw__str *itags;
    size_t nitags;
    char *itag_mem;
    mw__buf arena;
    size_t last_bytes; /* what the last committed run wrote */
    size_t pending;
    size_t itag_bytes; /* instance tags' bytes, NULs included */
    mw__str *scratch;  /* a sample's own tags, to sort */
    size_t scratch_cap;
    size_t tag_bytes; /* scratch tags' bytes, NULs included */
    const mw__agg_sample **batch;
    size_t batch_cap;
    const char **tagv; /* decoded tags of a service check or event */
    size_t tagv_cap;
};

/* ---------------------------------------------------------------- lifetime */

static mw_code copy_itags(mw__sender *s, const char *const *tags, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += strlen(tags[i]) + 1;
    s->itags = malloc((n ? n : 1) * sizeof(*s->itags));
    s->itag_mem = malloc(bytes ? bytes : 1);
    if (!s->itags || !s->itag_mem)
        return MW_ENOMEM;
    char *p = s->itag_mem;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(tags[i]);
        memcpy(p, tags[i], len + 1);
        s->itags[i] = (mw__str){p, len};
        p += len + 1;
    }
    /* Callers promise sorted and unique; the merge depends on it. */
    s->nitags = mw__agg_tags_canon(s->itags, n);
    for (size_t i = 0; i < s->nitags; i++)
        s->itag_bytes += s->itags[i].n + 1;
    return MW_OK;
}

mw__sender *mw__sender_new(mw__aggregator *agg, const mw__sender_opts *o)
{
    mw__sender *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->agg = agg;
    mw__buf_init(&s->arena, o->max_bytes ? o->max_bytes : DEFAULT_MAX_BYTES);
    s->check = o->check ? mw__strdup(o->check) : NULL;
    s->check_id = o->check_id ? mw__strdup(o->check_id) : NULL;
    s->host = mw__strdup(o->host ? o->host : mw__agg_host(agg));
    if ((o->check && !s->check) || (o->check_id && !s->check_id) || !s->host ||
        copy_itags(s, o->tags, o->tags ? o->ntags : 0) != MW_OK) {
        mw__sender_free(s);
        return NULL;
    }
    s->host_n = strlen(s->host);
    return s;
}

void mw__sender_free(mw__sender *s)
{
    if (!s)
        return;
    mw__buf_free(&s->arena);
    free(s->check);
    free(s->check_id);
    free(s->host);
    free(s->itags);
    free(s->itag_mem);
    free(s->scratch);
    free(s->batch);
    free(s->tagv);
    free(s);
}

size_t mw__sender_pending(const mw__sender *s)
{
    return s->pending;
}

size_t mw__sender_bytes(const mw__sender *s)
{
    return s->arena.len;
}

/* ---------------------------------------------------------------- buffering */

/* Validates the sample's tags and copies their descriptors to scratch (the
 * key writer sorts them in place). */
static mw_code load_tags(mw__sender *s, const mw__str *tags, size_t n)
{
    if (n + s->nitags > MW_TAGS_MAX || (n && !tags))
        return MW_EINVAL;
    if (mw__grow(&s->scratch, &s->scratch_cap, n, sizeof(mw__str)) != 0)
        return MW_ENOMEM;
    s->tag_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if ((!tags[i].p && tags[i].n) || (tags[i].n && memchr(tags[i].p, '\0', tags[i].n)))
            return MW_EINVAL;
        s->scratch[i] = tags[i];
        s->tag_bytes += tags[i].n + 1;
    }
    return MW_OK;
}

static mw_code resolve_host(const mw__sender *s, mw__str *host)
{
    if (!host->p) {
        *host = (mw__str){s->host, s->host_n};
        return MW_OK;
    }
    if (host->n > MW_HOST_MAX || memchr(host->p, '\0', host->n))
        return MW_EINVAL;
    return MW_OK;
}

static size_t extras_bytes(const mw__str *x, size_t nx)
{
    size_t n = 0;
    for (size_t i = 0; i < nx; i++)
        n += x[i].n + 1;
    return n;
}

/*
 * Appends one entry: the key of `name`/`host`/instance + `n` sample tags
 * (in s->scratch), then the `nx` extra strings. Returns the entry (valid
 * until the arena next grows) or NULL with *rc set.
 */
static entry *append(mw__sender *s, uint8_t rec, mw__str name, mw__str host, size_t n,
                     const mw__str *x, size_t nx, mw_code *rc)
{
    size_t bound = sizeof(entry) + 7 + extras_bytes(x, nx) + name.n + host.n + 2 + s->itag_bytes +
                   s->tag_bytes;
    /* each reserve asks for its entry's bound, a little over what it
     * writes: one entry's worth of slack keeps the last one in room */
    size_t want = !s->arena.p && s->last_bytes ? s->last_bytes + bound : bound;
    *rc = bound > UINT32_MAX ? MW_ENOMEM : mw__buf_reserve(&s->arena, want);
    if (*rc != MW_OK && want > bound) /* the hint is only a hint */
        *rc = mw__buf_reserve(&s->arena, bound);
    if (*rc != MW_OK)
        return NULL;
    entry *e = (entry *)mw__buf_tail(&s->arena);
    char *key = (char *)(e + 1), *p;
    size_t kept;
    memset(e, 0, sizeof(*e));
    e->rec = rec;
    e->s.keylen =
        (uint32_t)mw__agg_key_write(key, name, host, s->itags, s->nitags, s->scratch, n, &kept);
    e->s.ntags = (uint16_t)kept;
    p = key + e->s.keylen;
    for (size_t i = 0; i < nx; i++) {
        if (x[i].n)
            memcpy(p, x[i].p, x[i].n);
        p[x[i].n] = '\0';
        p += x[i].n + 1;
    }
    e->size = (uint32_t)ALIGN8((size_t)(p - (char *)e));
    mw__buf_setlen(&s->arena, s->arena.len + e->size);
    s->pending++;
    return e;
}

mw_code mw__sender_metric(mw__sender *s, mw_metric_type type, mw__str name, double value,
                          const mw__str *tags, size_t ntags, mw__str host)
{
    mw_code rc = MW_EINVAL;
    if (mw__agg_check_name(name, MW_NAME_MAX) != MW_OK || !isfinite(value) ||
        (unsigned)type > MW_HISTOGRAM)
        goto out;
    if ((rc = load_tags(s, tags, ntags)) != MW_OK || (rc = resolve_host(s, &host)) != MW_OK)
        goto out;
    entry *e = append(s, MW_RECORD_METRIC, name, host, ntags, NULL, 0, &rc);
    if (!e)
        goto out;
    e->s.type = (uint8_t)type;
    e->s.value = value;
    e->s.hash = mw__agg_hash(e + 1, e->s.keylen);
out:
    return rc;
}

/* NUL-free text; a NULL pointer counts as absent. */
static int text_ok(mw__str t)
{
    return t.p ? !memchr(t.p, '\0', t.n) : t.n == 0;
}

mw_code mw__sender_service_check(mw__sender *s, mw__str name, int status, const mw__str *tags,
                                 size_t ntags, mw__str message)
{
    mw_code rc = MW_EINVAL;
    mw__str host = {NULL, 0};
    if (mw__agg_check_name(name, MW_NAME_MAX) != MW_OK || status < 0 || status > 3 ||
        !text_ok(message))
        goto out;
    if ((rc = load_tags(s, tags, ntags)) != MW_OK || (rc = resolve_host(s, &host)) != MW_OK)
        goto out;
    entry *e = append(s, MW_RECORD_SERVICE_CHECK, name, host, ntags, &message, 1, &rc);
    if (e)
        e->status = status;
out:
    return rc;
}

static int one_of(mw__str v, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (strlen(*allowed) == v.n && memcmp(*allowed, v.p, v.n) == 0)
            return 1;
    return 0;
}

/* Fills defaults, checks the closed vocabularies; builds the extras. */
static mw_code event_strings(const mw__event_in *ev, mw__str *x, uint8_t *present)
{
    static const char *const alerts[] = {"error", "warning", "info", "success", NULL};
    static const char *const prios[] = {"normal", "low", NULL};
    x[EV_TEXT] = ev->text;
    x[EV_ALERT] = ev->alert_type.p ? ev->alert_type : (mw__str){"info", 4};
    x[EV_PRIORITY] = ev->priority.p ? ev->priority : (mw__str){"normal", 6};
    x[EV_AGGKEY] = ev->aggregation_key;
    x[EV_SOURCE] = ev->source_type_name;
    *present = 0;
    for (int i = 0; i < EV_NSTR; i++) {
        if (!text_ok(x[i]))
            return MW_EINVAL;
        if (x[i].p)
            *present |= (uint8_t)(1u << i);
        else
            x[i] = (mw__str){"", 0};
    }
    if (!one_of(x[EV_ALERT], alerts) || !one_of(x[EV_PRIORITY], prios))
        return MW_EINVAL;
    return MW_OK;
}

mw_code mw__sender_event(mw__sender *s, const mw__event_in *ev)
{
    mw__str x[EV_NSTR], host = {NULL, 0};
    uint8_t present;
    mw_code rc = MW_EINVAL;
    if (!ev->title.p || ev->title.n == 0 || !text_ok(ev->title) || !isfinite(ev->timestamp) ||
        ev->timestamp < 0)
        goto out;
    if ((rc = event_strings(ev, x, &present)) != MW_OK)
        goto out;
    if ((rc = load_tags(s, ev->tags, ev->ntags)) != MW_OK || (rc = resolve_host(s, &host)) != MW_OK)
        goto out;
    entry *e = append(s, MW_RECORD_EVENT, ev->title, host, ev->ntags, x, EV_NSTR, &rc);
    if (e) {
        e->present = present;
        e->ts = ev->timestamp;
    }
out:
    return rc;
}

/* ---------------------------------------------------------------- commit */

/* Points `r` at the strings of entry `e`'s key: name, host, tags. */
static const char *decode_key(mw__sender *s, const entry *e, mw_record *r)
{
    const char *p = (const char *)(e + 1);
    r->name = p;
    p += strlen(p) + 1;
    r->host = p;
    p += strlen(p) + 1;
    for (size_t i = 0; i < e->s.ntags; i++, p += strlen(p) + 1)
        s->tagv[i] = p;
    r->tags = s->tagv;
    r->ntags = e->s.ntags;
    return p;
}

static const char *next_str(const char **p)
{
    const char *r = *p;
    *p += strlen(r) + 1;
    return r;
}

static void decode_event(const entry *e, const char *p, mw_record *r)
{
    const char **dst[EV_NSTR] = {&r->text, &r->alert_type, &r->priority, &r->aggregation_key,
                                 &r->source_type_name};
    r->title = r->name;
    r->name = NULL;
    for (int i = 0; i < EV_NSTR; i++) {
        const char *v = next_str(&p);
        *dst[i] = (e->present & (1u << i)) ? v : NULL;
    }
    if (!r->text)
        r->text = "";
}

/* Queues a service check or event entry into the aggregator. */
static size_t commit_record(mw__sender *s, const entry *e, double now)
{
    mw_record r = {.type = (mw_record_type)e->rec, .check = s->check, .check_id = s->check_id};
    if (mw__grow(&s->tagv, &s->tagv_cap, e->s.ntags, sizeof(char *)) != 0)
        return 0;
    const char *p = decode_key(s, e, &r);
    r.timestamp = (int64_t)floor(e->ts > 0 ? e->ts : now);
    if (e->rec == MW_RECORD_SERVICE_CHECK) {
        r.status = e->status;
        r.message = p;
    } else {
        decode_event(e, p, &r);
    }
    return mw__agg_record(s->agg, &r) == MW_OK;
}

static void arena_done(mw__sender *s)
{
    s->last_bytes = s->arena.len;
    s->pending = 0;
    mw__buf_free(&s->arena);
}

size_t mw__sender_commit(mw__sender *s, double now)
{
    size_t n = 0, done = 0;
    if (mw__grow(&s->batch, &s->batch_cap, s->pending, sizeof(*s->batch)) != 0)
        goto out;
    for (size_t off = 0; off < s->arena.len;) {
        const entry *e = (const entry *)(s->arena.p + off);
        if (e->rec == MW_RECORD_METRIC)
            s->batch[n++] = &e->s;
        else
            done += commit_record(s, e, now);
        off += e->size;
    }
    done += mw__agg_commit(s->agg, s->batch, n, s->check, s->check_id, now);
out:
    arena_done(s);
    return done;
}

void mw__sender_discard(mw__sender *s)
{
    arena_done(s);
}

/* ---------------------------------------------------------------- interface */

static mw_code out_metric(void *ud, mw_metric_type type, mw__str name, double value,
                          const mw__str *tags, size_t ntags, mw__str host)
{
    return mw__sender_metric(ud, type, name, value, tags, ntags, host);
}

static mw_code out_service_check(void *ud, mw__str name, int status, const mw__str *tags,
                                 size_t ntags, mw__str message)
{
    return mw__sender_service_check(ud, name, status, tags, ntags, message);
}

static mw_code out_event(void *ud, const mw__event_in *ev)
{
    return mw__sender_event(ud, ev);
}

static const mw__sample_ops sender_ops = {
    .metric = out_metric,
    .service_check = out_service_check,
    .event = out_event,
};

mw__sample_out mw__sender_out(mw__sender *s)
{
    return (mw__sample_out){s ? &sender_ops : NULL, s};
}
