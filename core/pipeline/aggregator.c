/*
 * aggregator.c - the shared aggregator: contexts in hash-sharded tables,
 * Datadog check-sampler semantics, the flush, and the queue of service
 * checks and events.
 *
 * Ownership: the aggregator owns every context and queued record.
 * Committers create contexts and change their values under the context's
 * shard lock; only a flush (on expiry) or mw__agg_free() frees a context.
 * Flushes are serialized by flush_mu, so a context's strings stay valid
 * while the flush emits it with no shard lock held.
 *
 * A context is a metric name, host, sorted unique tags, the submitting
 * check instance and the submission type: two instances reporting the same
 * series keep separate rate/monotonic_count state, as each Datadog check
 * has its own sampler.
 */
#include "core/base/util.h"
#include "core/pipeline/aggregator.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSHARDS        64
#define SHARD_OF(h)    ((size_t)((h) >> 58))
#define MAX_PCT        16
#define HIST_KEEP_MAX  (1u << 20) /* stored samples per histogram per flush */
#define DEFAULT_FLUSH  15.0
#define DEFAULT_EXPIRY 300.0
#define STACK_TAGS     32
#define STACK_KEY      1024
#define STACK_BATCH    256

typedef struct ctx {
    struct ctx *next;
    uint64_t hash;
    uint32_t keylen;
    uint16_t ntags;
    uint8_t type;
    uint8_t updated;  /* got a sample since the last flush */
    uint8_t has_cur;  /* rate: v is unflushed; monotonic_count: prev is set */
    uint8_t has_prev; /* rate: prev is set */
    uint8_t has_pair; /* monotonic_count: a delta was seen since the flush */
    double last_seen;
    double v;      /* gauge: last; count, monotonic_count: sum; rate: current */
    double t;      /* rate: time of v */
    double prev;   /* rate: previous value; monotonic_count: last value */
    double prev_t; /* rate: time of prev */
    double *hs;    /* histogram: samples since the flush (HIST_KEEP_MAX kept) */
    size_t hn, hcap;
    double hcount, hsum, hmin, hmax; /* histogram: exact over all samples */
    const char *key;                 /* keylen bytes: name \0 host \0 tags */
    const char *check, *check_id;
    const char **tags;
} ctx;

typedef struct shard {
    pthread_mutex_t mu;
    ctx **buckets;
    size_t mask;
    size_t n;
} shard;

/* One shard per 128 bytes so two shards' locks never share a cache line. */
typedef union padded_shard {
    shard s;
    char pad[128];
} padded_shard;

typedef struct qrec {
    struct qrec *next;
    mw_record rec;
} qrec;

/* A metric taken out of a context under its lock, emitted after unlock. */
typedef struct pend {
    const ctx *c;
    mw_metric_kind kind;
    double value;
    double *hs; /* histogram: the samples taken out, freed after emit */
    size_t hn;
    double hcount, hsum, hmin, hmax;
} pend;

/* Who submitted a batch; part of the context identity. */
typedef struct source {
    const char *check, *check_id;
    uint64_t hash;
} source;

struct mw__aggregator {
    double flush_interval, expiry;
    char *host;
    unsigned hist_aggs;
    size_t npct;
    double pct[MAX_PCT];
    char pct_suffix[MAX_PCT][24];
    padded_shard *shards;
    pthread_mutex_t q_mu;
    qrec *q_head, **q_tail;
    size_t q_n;
    pthread_mutex_t flush_mu; /* serializes flushes; guards pend */
    pend *pend;
    size_t npend, pend_cap;
};

/* ---------------------------------------------------------------- options */

static const struct {
    const char *name;
    unsigned bit;
} hist_names[] = {
    {"max", MW_HIST_MAX},     {"median", MW_HIST_MEDIAN}, {"avg", MW_HIST_AVG},
    {"count", MW_HIST_COUNT}, {"sum", MW_HIST_SUM},       {"min", MW_HIST_MIN},
};

/* Next comma-separated token of `*s`, spaces trimmed; 0 at the end. */
static int next_token(const char **s, const char **tok, size_t *n)
{
    const char *p = *s;
    while (*p == ' ' || *p == ',')
        p++;
    if (!*p)
        return 0;
    const char *end = strchr(p, ',');
    if (!end)
        end = p + strlen(p);
    *s = end;
    while (end > p && end[-1] == ' ')
        end--;
    *tok = p;
    *n = (size_t)(end - p);
    return 1;
}

static int hist_bit(const char *tok, size_t n)
{
    for (size_t i = 0; i < MW_ARRAY_LEN(hist_names); i++)
        if (strlen(hist_names[i].name) == n && memcmp(hist_names[i].name, tok, n) == 0)
            return (int)hist_names[i].bit;
    return -1;
}

mw_code mw__agg_parse_aggregates(const char *list, unsigned *bits)
{
    const char *tok;
    size_t n;
    unsigned all = 0;
    if (!list)
        return MW_EINVAL;
    while (next_token(&list, &tok, &n)) {
        int b = hist_bit(tok, n);
        if (b < 0)
            return MW_EINVAL;
        all |= (unsigned)b;
    }
    *bits = all;
    return MW_OK;
}

static int valid_pct(double p)
{
    return p > 0 && p <= 1;
}

mw_code mw__agg_parse_percentiles(const char *list, double *out, size_t max, size_t *count)
{
    const char *tok;
    size_t n, k = 0;
    if (!list)
        return MW_EINVAL;
    while (next_token(&list, &tok, &n)) {
        char tmp[32], *end;
        if (n >= sizeof(tmp) || k == max)
            return MW_EINVAL;
        memcpy(tmp, tok, n);
        tmp[n] = '\0';
        double p = strtod(tmp, &end);
        if (end == tmp || *end || !valid_pct(p))
            return MW_EINVAL;
        out[k++] = p;
    }
    *count = k;
    return MW_OK;
}

static void set_percentiles(mw__aggregator *agg, const mw__agg_opts *o)
{
    static const double dflt[] = {0.95};
    const double *p = o->hist_percentiles ? o->hist_percentiles : dflt;
    size_t n = o->hist_percentiles ? o->n_percentiles : MW_ARRAY_LEN(dflt);
    for (size_t i = 0; i < n && agg->npct < MAX_PCT; i++) {
        if (!valid_pct(p[i]))
            continue;
        agg->pct[agg->npct] = p[i];
        /* Datadog's naming, whole percents: 0.95 -> ".95percentile". */
        snprintf(agg->pct_suffix[agg->npct], sizeof(agg->pct_suffix[0]), ".%.0fpercentile",
                 p[i] * 100);
        agg->npct++;
    }
}

/* ---------------------------------------------------------------- lifetime */

static mw_code shards_new(mw__aggregator *agg)
{
    agg->shards = aligned_alloc(128, NSHARDS * sizeof(padded_shard));
    if (!agg->shards)
        return MW_ENOMEM;
    for (size_t i = 0; i < NSHARDS; i++) {
        shard *sh = &agg->shards[i].s;
        pthread_mutex_init(&sh->mu, NULL);
        sh->n = 0;
        sh->mask = 15;
        sh->buckets = calloc(sh->mask + 1, sizeof(ctx *));
        if (!sh->buckets) {
            for (size_t j = 0; j <= i; j++) {
                free(agg->shards[j].s.buckets);
                pthread_mutex_destroy(&agg->shards[j].s.mu);
            }
            free(agg->shards);
            agg->shards = NULL;
            return MW_ENOMEM;
        }
    }
    return MW_OK;
}

mw__aggregator *mw__agg_new(const mw__agg_opts *o)
{
    mw__aggregator *agg = calloc(1, sizeof(*agg));
    if (!agg)
        return NULL;
    agg->flush_interval = o->flush_interval > 0 ? o->flush_interval : DEFAULT_FLUSH;
    agg->expiry = o->context_expiry > 0 ? o->context_expiry : DEFAULT_EXPIRY;
    agg->hist_aggs = o->hist_aggregates ? o->hist_aggregates : MW_HIST_DEFAULT;
    set_percentiles(agg, o);
    agg->host = mw__strdup(o->host ? o->host : "");
    if (!agg->host || shards_new(agg) != MW_OK) {
        free(agg->host);
        free(agg);
        return NULL;
    }
    pthread_mutex_init(&agg->q_mu, NULL);
    pthread_mutex_init(&agg->flush_mu, NULL);
    agg->q_tail = &agg->q_head;
    return agg;
}

static void ctx_free(ctx *c)
{
    free(c->hs);
    free(c);
}

static void shard_free(shard *sh)
{
    for (size_t b = 0; b <= sh->mask; b++) {
        ctx *c = sh->buckets[b];
        while (c) {
            ctx *next = c->next;
            ctx_free(c);
            c = next;
        }
    }
    free(sh->buckets);
    pthread_mutex_destroy(&sh->mu);
}

void mw__agg_free(mw__aggregator *agg)
{
    if (!agg)
        return;
    for (size_t i = 0; i < NSHARDS; i++)
        shard_free(&agg->shards[i].s);
    for (qrec *q = agg->q_head, *next; q; q = next) {
        next = q->next;
        free(q);
    }
    pthread_mutex_destroy(&agg->q_mu);
    pthread_mutex_destroy(&agg->flush_mu);
    free(agg->shards);
    free(agg->pend);
    free(agg->host);
    free(agg);
}

const char *mw__agg_host(const mw__aggregator *agg)
{
    return agg->host;
}

size_t mw__agg_contexts(mw__aggregator *agg)
{
    size_t n = 0;
    for (size_t i = 0; i < NSHARDS; i++) {
        shard *sh = &agg->shards[i].s;
        pthread_mutex_lock(&sh->mu);
        n += sh->n;
        pthread_mutex_unlock(&sh->mu);
    }
    return n;
}

/* ---------------------------------------------------------------- contexts */

static void source_init(source *src, const char *check, const char *check_id)
{
    /* "" and NULL are the same "not from a check". */
    src->check = check && *check ? check : NULL;
    src->check_id = check_id && *check_id ? check_id : NULL;
    src->hash = 0;
    if (src->check_id)
        src->hash ^= mw__agg_hash(src->check_id, strlen(src->check_id));
    if (src->check)
        src->hash ^= mw__agg_hash(src->check, strlen(src->check)) * 0x9E3779B97F4A7C15ULL;
}

/* The key hash is already well mixed: xor in who and how it was sent. */
static uint64_t ctx_hash(const mw__agg_sample *s, const source *src)
{
    return s->hash ^ src->hash ^ ((uint64_t)(s->type + 1) * 0xC2B2AE3D27D4EB4FULL);
}

static int str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static int ctx_match(const ctx *c, uint64_t h, const mw__agg_sample *s, const source *src)
{
    return c->hash == h && c->keylen == s->keylen && c->type == s->type &&
           memcmp(c->key, MW__AGG_SAMPLE_KEY(s), s->keylen) == 0 &&
           str_eq(c->check_id, src->check_id) && str_eq(c->check, src->check);
}

static char *copy_opt(char **dst, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *r = memcpy(*dst, s, n);
    *dst += n;
    return r;
}

/* One allocation: the struct, the tag pointers, then the strings. */
static ctx *ctx_new(const mw__agg_sample *s, uint64_t h, const source *src)
{
    size_t clen = src->check ? strlen(src->check) + 1 : 0;
    size_t ilen = src->check_id ? strlen(src->check_id) + 1 : 0;
    ctx *c = calloc(1, sizeof(*c) + s->ntags * sizeof(char *) + s->keylen + clen + ilen);
    if (!c)
        return NULL;
    c->hash = h;
    c->keylen = s->keylen;
    c->ntags = s->ntags;
    c->type = s->type;
    c->tags = (const char **)(c + 1);
    char *k = (char *)(c->tags + s->ntags);
    memcpy(k, MW__AGG_SAMPLE_KEY(s), s->keylen);
    c->key = k;
    char *p = k + s->keylen;
    c->check = copy_opt(&p, src->check);
    c->check_id = copy_opt(&p, src->check_id);
    /* Skip name and host; the tags follow. */
    const char *t = k + strlen(k) + 1;
    t += strlen(t) + 1;
    for (size_t i = 0; i < s->ntags; i++, t += strlen(t) + 1)
        c->tags[i] = t;
    return c;
}

/* Doubles the bucket array; on OOM the table just stays denser. */
static void shard_grow(shard *sh)
{
    size_t nmask = sh->mask * 2 + 1;
    ctx **nb = calloc(nmask + 1, sizeof(ctx *));
    if (!nb)
        return;
    for (size_t b = 0; b <= sh->mask; b++) {
        for (ctx *c = sh->buckets[b], *next; c; c = next) {
            next = c->next;
            c->next = nb[c->hash & nmask];
            nb[c->hash & nmask] = c;
        }
    }
    free(sh->buckets);
    sh->buckets = nb;
    sh->mask = nmask;
}

static ctx *shard_upsert(shard *sh, uint64_t h, const mw__agg_sample *s, const source *src)
{
    for (ctx *c = sh->buckets[h & sh->mask]; c; c = c->next)
        if (ctx_match(c, h, s, src))
            return c;
    ctx *c = ctx_new(s, h, src);
    if (!c)
        return NULL;
    if (sh->n >= sh->mask + 1)
        shard_grow(sh);
    c->next = sh->buckets[h & sh->mask];
    sh->buckets[h & sh->mask] = c;
    sh->n++;
    return c;
}

/* ---------------------------------------------------------------- samples */

static void rate_add(ctx *c, double v, double now)
{
    if (c->has_cur) {
        c->prev = c->v;
        c->prev_t = c->t;
        c->has_prev = 1;
    }
    c->v = v;
    c->t = now;
    c->has_cur = 1;
}

/* A decrease is a counter reset: that delta is skipped, not negated. */
static void monotonic_add(ctx *c, double v)
{
    if (c->has_cur) {
        if (v >= c->prev)
            c->v += v - c->prev;
        c->has_pair = 1;
    }
    c->prev = v;
    c->has_cur = 1;
}

static void hist_add(ctx *c, double v)
{
    if (c->hcount == 0 || v < c->hmin)
        c->hmin = v;
    if (c->hcount == 0 || v > c->hmax)
        c->hmax = v;
    c->hcount++;
    c->hsum += v;
    if (c->hn == c->hcap && c->hcap < HIST_KEEP_MAX) {
        size_t ncap = c->hcap ? c->hcap * 2 : 8;
        double *nh = realloc(c->hs, ncap * sizeof(double));
        if (!nh)
            return;
        c->hs = nh;
        c->hcap = ncap;
    }
    if (c->hn < c->hcap)
        c->hs[c->hn++] = v;
}

static void ctx_add(ctx *c, double v, double now)
{
    switch (c->type) {
    case MW_GAUGE:
        c->v = v;
        break;
    case MW_COUNT:
        c->v += v;
        break;
    case MW_RATE:
        rate_add(c, v, now);
        break;
    case MW_MONOTONIC_COUNT:
        monotonic_add(c, v);
        break;
    default:
        hist_add(c, v);
        break;
    }
    c->updated = 1;
    c->last_seen = now;
}

static size_t commit_shard(shard *sh, const mw__agg_sample *const *s, const uint64_t *h, size_t n,
                           const source *src, double now)
{
    size_t taken = 0;
    pthread_mutex_lock(&sh->mu);
    for (size_t i = 0; i < n; i++) {
        ctx *c = shard_upsert(sh, h[i], s[i], src);
        if (c) {
            ctx_add(c, s[i]->value, now);
            taken++;
        }
    }
    pthread_mutex_unlock(&sh->mu);
    return taken;
}

static size_t commit_one(mw__aggregator *agg, const mw__agg_sample *s, const source *src,
                         double now)
{
    uint64_t h = ctx_hash(s, src);
    return commit_shard(&agg->shards[SHARD_OF(h)].s, &s, &h, 1, src, now);
}

/*
 * Groups the batch by shard (a counting sort) so each shard's lock is
 * taken once for all of its samples. The sort is stable: samples of one
 * context keep their order, which gauge and rate depend on.
 */
size_t mw__agg_commit(mw__aggregator *agg, const mw__agg_sample *const *samples, size_t n,
                      const char *check, const char *check_id, double now)
{
    const mw__agg_sample *sstack[STACK_BATCH], **order = sstack;
    uint64_t hstack[STACK_BATCH], *hs = hstack;
    size_t start[NSHARDS + 1] = {0}, fill[NSHARDS], taken = 0;
    source src;
    source_init(&src, check, check_id);
    if (n == 1)
        return commit_one(agg, samples[0], &src, now);
    if (n > STACK_BATCH) {
        order = malloc(n * sizeof(*order));
        hs = malloc(n * sizeof(*hs));
        if (!order || !hs) {
            /* No memory to group: still commit, a lock per sample. */
            for (size_t i = 0; i < n; i++)
                taken += commit_one(agg, samples[i], &src, now);
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++)
        start[SHARD_OF(ctx_hash(samples[i], &src)) + 1]++;
    for (size_t i = 0; i < NSHARDS; i++) {
        start[i + 1] += start[i];
        fill[i] = start[i];
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t h = ctx_hash(samples[i], &src);
        size_t k = fill[SHARD_OF(h)]++;
        order[k] = samples[i];
        hs[k] = h;
    }
    for (size_t i = 0; i < NSHARDS; i++) {
        size_t cnt = start[i + 1] - start[i];
        if (cnt)
            taken +=
                commit_shard(&agg->shards[i].s, order + start[i], hs + start[i], cnt, &src, now);
    }
out:
    if (order != sstack)
        free(order);
    if (hs != hstack)
        free(hs);
    return taken;
}

static mw_code metric_args_ok(mw_metric_type type, const char *name, double value,
                              const char *const *tags, size_t ntags, const char *host)
{
    mw__str nm = {name, name ? strlen(name) : 0};
    if (mw__agg_check_name(nm, MW_NAME_MAX) != MW_OK || !isfinite(value))
        return MW_EINVAL;
    if ((unsigned)type > MW_HISTOGRAM || ntags > MW_TAGS_MAX || (ntags && !tags))
        return MW_EINVAL;
    if (host && strlen(host) > MW_HOST_MAX)
        return MW_EINVAL;
    for (size_t i = 0; i < ntags; i++)
        if (!tags[i])
            return MW_EINVAL;
    return MW_OK;
}

/* Writes the sample header and its canonical key into `kb` (room: the
 * header + mw__agg_key_bound()). */
static const mw__agg_sample *build_sample(char *kb, mw_metric_type type, double value, mw__str name,
                                          mw__str host, mw__str *tags, size_t ntags)
{
    mw__agg_sample *s = (mw__agg_sample *)kb;
    size_t kept;
    s->keylen =
        (uint32_t)mw__agg_key_write(kb + sizeof(*s), name, host, NULL, 0, tags, ntags, &kept);
    s->ntags = (uint16_t)kept;
    s->type = (uint8_t)type;
    s->value = value;
    s->hash = mw__agg_hash(kb + sizeof(*s), s->keylen);
    return s;
}

mw_code mw__agg_metric(mw__aggregator *agg, mw_metric_type type, const char *name, double value,
                       const char *const *tags, size_t ntags, const char *host, const char *check,
                       const char *check_id, double now)
{
    mw__str tstack[STACK_TAGS], *ts = tstack;
    union {
        mw__agg_sample s;
        char b[STACK_KEY];
    } kstack;
    char *kb = kstack.b;
    mw_code rc = metric_args_ok(type, name, value, tags, ntags, host);
    if (rc != MW_OK)
        goto out;
    rc = MW_ENOMEM;
    if (ntags > STACK_TAGS && !(ts = malloc(ntags * sizeof(*ts))))
        goto out;
    for (size_t i = 0; i < ntags; i++)
        ts[i] = (mw__str){tags[i], strlen(tags[i])};
    mw__str nm = {name, strlen(name)};
    mw__str hs = host ? (mw__str){host, strlen(host)} : (mw__str){agg->host, strlen(agg->host)};
    size_t bound = sizeof(mw__agg_sample) + mw__agg_key_bound(nm, hs, NULL, 0, ts, ntags);
    if (bound > sizeof(kstack) && !(kb = malloc(bound)))
        goto out;
    const mw__agg_sample *one = build_sample(kb, type, value, nm, hs, ts, ntags);
    if (mw__agg_commit(agg, &one, 1, check, check_id, now) == 1)
        rc = MW_OK;
out:
    if (ts != tstack)
        free(ts);
    if (kb != kstack.b)
        free(kb);
    return rc;
}

/* ---------------------------------------------------------------- series */

/* A prepared series: header + canonical key in one block, built once. */
struct mw__agg_series {
    mw__aggregator *agg;
    mw__agg_sample s; /* the key follows */
};

mw__agg_series *mw__agg_series_new(mw__aggregator *agg, mw_metric_type type, const char *name,
                                   const char *const *tags, size_t ntags, const char *host,
                                   mw_code *rc)
{
    mw__str tstack[STACK_TAGS], *ts = tstack;
    mw__agg_series *se = NULL;
    *rc = metric_args_ok(type, name, 0, tags, ntags, host);
    if (*rc != MW_OK)
        return NULL;
    *rc = MW_ENOMEM;
    if (ntags > STACK_TAGS && !(ts = malloc(ntags * sizeof(*ts))))
        return NULL;
    for (size_t i = 0; i < ntags; i++)
        ts[i] = (mw__str){tags[i], strlen(tags[i])};
    mw__str nm = {name, strlen(name)};
    mw__str hs = host ? (mw__str){host, strlen(host)} : (mw__str){agg->host, strlen(agg->host)};
    se = malloc(sizeof(*se) + mw__agg_key_bound(nm, hs, NULL, 0, ts, ntags));
    if (se) {
        se->agg = agg;
        build_sample((char *)&se->s, type, 0, nm, hs, ts, ntags);
        *rc = MW_OK;
    }
    if (ts != tstack)
        free(ts);
    return se;
}

mw_code mw__agg_series_add(mw__agg_series *se, double value, double now)
{
    if (!isfinite(value))
        return MW_EINVAL;
    source src;
    source_init(&src, NULL, NULL);
    se->s.value = value;
    return commit_one(se->agg, &se->s, &src, now) == 1 ? MW_OK : MW_ENOMEM;
}

void mw__agg_series_free(mw__agg_series *se)
{
    free(se);
}

/* ---------------------------------------------------------------- queue */

/* The string fields of a record, for copying them generically. */
#define REC_STRINGS(r)                                                                             \
    {                                                                                              \
        &(r)->name, &(r)->message, &(r)->title, &(r)->text, &(r)->alert_type, &(r)->priority,      \
            &(r)->aggregation_key, &(r)->source_type_name, &(r)->host, &(r)->check, &(r)->check_id \
    }

static qrec *qrec_copy(const mw_record *rec)
{
    mw_record tmp = *rec;
    const char **fields[] = REC_STRINGS(&tmp);
    tmp.size = sizeof tmp;
    size_t bytes = 0;
    for (size_t i = 0; i < MW_ARRAY_LEN(fields); i++)
        bytes += *fields[i] ? strlen(*fields[i]) + 1 : 0;
    for (size_t i = 0; i < rec->ntags; i++)
        bytes += rec->tags[i] ? strlen(rec->tags[i]) + 1 : 0;
    qrec *q = malloc(sizeof(*q) + rec->ntags * sizeof(char *) + bytes);
    if (!q)
        return NULL;
    const char **tags = (const char **)(q + 1);
    char *p = (char *)(tags + rec->ntags);
    for (size_t i = 0; i < MW_ARRAY_LEN(fields); i++)
        *fields[i] = copy_opt(&p, *fields[i]);
    tmp.ntags = 0;
    for (size_t i = 0; i < rec->ntags; i++)
        if (rec->tags[i]) /* a NULL tag is dropped, never flushed */
            tags[tmp.ntags++] = copy_opt(&p, rec->tags[i]);
    tmp.tags = tags;
    q->rec = tmp;
    q->next = NULL;
    return q;
}

/* A gauge record is a sample like a check's gauge, taken at its
 * timestamp (its flushed timestamp is still the flush's). */
static mw_code record_gauge(mw__aggregator *agg, const mw_record *rec)
{
    if (rec->kind != MW_KIND_GAUGE || rec->timestamp <= 0)
        return MW_EINVAL;
    return mw__agg_metric(agg, MW_GAUGE, rec->name, rec->value, rec->tags, rec->ntags, rec->host,
                          rec->check, rec->check_id, (double)rec->timestamp);
}

mw_code mw__agg_record(mw__aggregator *agg, const mw_record *rec)
{
    if (rec->type == MW_RECORD_METRIC)
        return record_gauge(agg, rec);
    if (rec->type != MW_RECORD_SERVICE_CHECK && rec->type != MW_RECORD_EVENT)
        return MW_EINVAL;
    qrec *q = qrec_copy(rec);
    if (!q)
        return MW_ENOMEM;
    mw_code rc = MW_OK;
    pthread_mutex_lock(&agg->q_mu);
    if (agg->q_n >= MW_AGG_QUEUE_MAX) {
        rc = MW_ENOMEM;
    } else {
        *agg->q_tail = q;
        agg->q_tail = &q->next;
        agg->q_n++;
        q = NULL;
    }
    pthread_mutex_unlock(&agg->q_mu);
    free(q);
    return rc;
}

/* ---------------------------------------------------------------- flush */

typedef void (*emit_fn)(const mw_record *rec, void *ud);

static int rate_take(ctx *c, pend *p)
{
    if (!c->has_cur)
        return 0;
    int ok = c->has_prev && c->t > c->prev_t;
    double r = ok ? (c->v - c->prev) / (c->t - c->prev_t) : 0;
    /* The flushed value becomes the base of the next rate. */
    c->prev = c->v;
    c->prev_t = c->t;
    c->has_prev = 1;
    c->has_cur = 0;
    if (!ok || r < 0)
        return 0;
    p->kind = MW_KIND_GAUGE;
    p->value = r;
    return 1;
}

static int hist_take(ctx *c, pend *p)
{
    p->hs = c->hs;
    p->hn = c->hn;
    p->hcount = c->hcount;
    p->hsum = c->hsum;
    p->hmin = c->hmin;
    p->hmax = c->hmax;
    c->hs = NULL;
    c->hn = c->hcap = 0;
    c->hcount = c->hsum = 0;
    return p->hcount > 0;
}

/* Moves what `c` has to flush into `p` and resets it; 0: nothing to emit. */
static int ctx_take(ctx *c, pend *p)
{
    p->kind = MW_KIND_GAUGE;
    p->value = c->v;
    switch (c->type) {
    case MW_GAUGE:
        return 1;
    case MW_COUNT:
        p->kind = MW_KIND_COUNT;
        c->v = 0;
        return 1;
    case MW_RATE:
        return rate_take(c, p);
    case MW_MONOTONIC_COUNT:
        if (!c->has_pair)
            return 0;
        p->kind = MW_KIND_COUNT;
        c->v = 0;
        c->has_pair = 0;
        return 1;
    default:
        return hist_take(c, p);
    }
}

/* Room for one more pending record: 0, or -1 on OOM. */
static int pend_reserve(mw__aggregator *agg)
{
    if (agg->npend < agg->pend_cap)
        return 0;
    size_t ncap = agg->pend_cap ? agg->pend_cap * 2 : 64;
    pend *np = realloc(agg->pend, ncap * sizeof(*np));
    if (!np)
        return -1;
    agg->pend = np;
    agg->pend_cap = ncap;
    return 0;
}

static void pend_push(mw__aggregator *agg, ctx *c)
{
    /* Reserve before taking: without room the context keeps its data
     * (and stays updated) for the next flush instead of losing it. */
    if (pend_reserve(agg) != 0)
        return;
    pend p = {.c = c};
    int has = ctx_take(c, &p);
    c->updated = 0;
    if (has)
        agg->pend[agg->npend++] = p;
    else
        free(p.hs);
}

/* A record carrying everything of `c` but the value, kind and name. */
static mw_record ctx_record(const mw__aggregator *agg, const ctx *c, double now)
{
    mw_record r = {.size = sizeof r, .type = MW_RECORD_METRIC};
    r.name = c->key;
    r.host = c->key + strlen(c->key) + 1;
    r.tags = c->tags;
    r.ntags = c->ntags;
    r.check = c->check;
    r.check_id = c->check_id;
    r.timestamp = (int64_t)floor(now);
    r.interval = agg->flush_interval;
    return r;
}

static size_t emit_one(mw_record *r, const char *name, mw_metric_kind kind, double v, emit_fn emit,
                       void *ud)
{
    if (!isfinite(v))
        return 0;
    r->name = name;
    r->kind = kind;
    r->value = v;
    if (emit)
        emit(r, ud);
    return 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least p of them <= it. */
static double percentile(const double *s, size_t n, double p)
{
    double rank = ceil(p * (double)n - 1e-9);
    if (rank < 1)
        rank = 1;
    if (rank > (double)n)
        rank = (double)n;
    return s[(size_t)rank - 1];
}

static double hist_value(const mw__aggregator *agg, const pend *p, unsigned bit)
{
    switch (bit) {
    case MW_HIST_MAX:
        return p->hmax;
    case MW_HIST_MIN:
        return p->hmin;
    case MW_HIST_MEDIAN:
        return p->hs[(p->hn - 1) / 2];
    case MW_HIST_AVG:
        return p->hsum / p->hcount;
    case MW_HIST_SUM:
        return p->hsum;
    default: /* count, as a per-second rate over the interval */
        return p->hcount / agg->flush_interval;
    }
}

static size_t emit_hist(const mw__aggregator *agg, mw_record *r, const pend *p, emit_fn emit,
                        void *ud)
{
    char name[MW_NAME_MAX + 32];
    const char *base = p->c->key;
    size_t n = 0;
    qsort(p->hs, p->hn, sizeof(double), cmp_double);
    for (size_t i = 0; i < MW_ARRAY_LEN(hist_names); i++) {
        unsigned bit = hist_names[i].bit;
        if (!(agg->hist_aggs & bit) || (bit == MW_HIST_MEDIAN && p->hn == 0))
            continue;
        snprintf(name, sizeof(name), "%s.%s", base, hist_names[i].name);
        n += emit_one(r, name, bit == MW_HIST_COUNT ? MW_KIND_RATE : MW_KIND_GAUGE,
                      hist_value(agg, p, bit), emit, ud);
    }
    for (size_t i = 0; i < agg->npct && p->hn; i++) {
        snprintf(name, sizeof(name), "%s%s", base, agg->pct_suffix[i]);
        n += emit_one(r, name, MW_KIND_GAUGE, percentile(p->hs, p->hn, agg->pct[i]), emit, ud);
    }
    return n;
}

static size_t emit_pend(const mw__aggregator *agg, double now, emit_fn emit, void *ud)
{
    size_t n = 0;
    for (size_t i = 0; i < agg->npend; i++) {
        pend *p = &agg->pend[i];
        mw_record r = ctx_record(agg, p->c, now);
        if (p->c->type == MW_HISTOGRAM)
            n += emit_hist(agg, &r, p, emit, ud);
        else
            n += emit_one(&r, p->c->key, p->kind, p->value, emit, ud);
        free(p->hs);
    }
    return n;
}

/* Takes the updated contexts out under the lock, unlinks the expired ones;
 * emits and frees after unlocking. */
static size_t flush_shard(mw__aggregator *agg, shard *sh, double now, emit_fn emit, void *ud)
{
    ctx *dead = NULL;
    agg->npend = 0;
    pthread_mutex_lock(&sh->mu);
    for (size_t b = 0; b <= sh->mask; b++) {
        for (ctx **pp = &sh->buckets[b]; *pp;) {
            ctx *c = *pp;
            if (c->updated) {
                pend_push(agg, c);
            } else if (now - c->last_seen >= agg->expiry) {
                *pp = c->next;
                c->next = dead;
                dead = c;
                sh->n--;
                continue;
            }
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&sh->mu);
    size_t n = emit_pend(agg, now, emit, ud);
    while (dead) {
        ctx *next = dead->next;
        ctx_free(dead);
        dead = next;
    }
    return n;
}

static size_t flush_queue(mw__aggregator *agg, emit_fn emit, void *ud)
{
    size_t n = 0;
    pthread_mutex_lock(&agg->q_mu);
    qrec *q = agg->q_head;
    agg->q_head = NULL;
    agg->q_tail = &agg->q_head;
    agg->q_n = 0;
    pthread_mutex_unlock(&agg->q_mu);
    while (q) {
        qrec *next = q->next;
        if (emit)
            emit(&q->rec, ud);
        n++;
        free(q);
        q = next;
    }
    return n;
}

size_t mw__agg_flush(mw__aggregator *agg, double now, void (*emit)(const mw_record *rec, void *ud),
                     void *ud)
{
    size_t n = 0;
    pthread_mutex_lock(&agg->flush_mu);
    for (size_t i = 0; i < NSHARDS; i++)
        n += flush_shard(agg, &agg->shards[i].s, now, emit, ud);
    n += flush_queue(agg, emit, ud);
    pthread_mutex_unlock(&agg->flush_mu);
    return n;
}
