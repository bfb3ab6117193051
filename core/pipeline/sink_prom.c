/*
 * sink_prom.c - the Prometheus sink (see sink_prom.h): series keyed by
 * their rendered sample name, `name{label="value",...}`, built once when
 * a record arrives, so that a render only copies keys and formats
 * values.
 *
 * Two chained hash tables: series by key, families by name. Each family
 * holds its series in an array (swap-removed when one expires); a render
 * sorts the families by name and writes each with its HELP and TYPE.
 */
#include "core/pipeline/sink_prom.h"

#include "core/base/util.h"
#include "core/pipeline/aggregator.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SC_FAMILY  "moonwatch_service_check_status"
#define SC_HELP    "Status of each service check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"
#define MAX_LABELS (MW_TAGS_MAX + 2)
#define FAMILY_MAX (MW_NAME_MAX * 2 + 16)
/* How often records prune expired series when nobody renders. */
#define PRUNE_EVERY 10.0

typedef struct family family;

typedef struct series {
    struct series *next; /* in its hash chain */
    family *fam;
    size_t idx; /* in fam->v */
    uint64_t hash;
    double value, updated;
    size_t len;
    char key[]; /* name{labels}, NUL-terminated */
} series;

struct family {
    family *next;
    uint64_t hash;
    int counter;
    char *name, *help;
    series **v;
    size_t n, cap;
};

typedef struct label {
    size_t name_off, name_len; /* in the names scratch */
    const char *val;
    size_t val_len;
    size_t order; /* stable sort */
} label;

struct mw__prom {
    pthread_mutex_t lock;
    double expiry, last_prune;
    series **sb;
    size_t snb, nseries;
    family **fb;
    size_t fnb, nfam;
    /* scratch of mw__prom_add (one adder at a time) */
    mw__buf key, names;
    label *labels;
};

/* ------------------------------------------------------------- names */

static int name_char(char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

/* `s` (n bytes) as a metric or label name into `out` (room for 2n + 5),
 * camelCase turned into snake_case (as promtool's lint wants). */
static size_t sanitise(const char *s, size_t n, char *out, int is_label)
{
    size_t k = 0;
    if (n == 0)
        return (size_t)sprintf(out, "%s", is_label ? "tag" : "_");
    if (is_label && n >= 2 && s[0] == '_' && s[1] == '_')
        k = mw__putstr(out, "tag");
    else if (s[0] >= '0' && s[0] <= '9')
        out[k++] = '_';
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') {
            char prev = i ? s[i - 1] : '_';
            if ((prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9'))
                out[k++] = '_';
            c = (char)(c - 'A' + 'a');
        }
        out[k++] = name_char(c, 0) ? c : '_';
    }
    out[k] = '\0';
    if (is_label && !strcmp(out, "le")) /* reserved for histograms and summaries */
        k = (size_t)sprintf(out, "tag_le");
    else if (is_label && !strcmp(out, "quantile"))
        k = (size_t)sprintf(out, "tag_quantile");
    return k;
}

/* Whether `name` ends with a suffix Prometheus keeps for counters,
 * histograms and summaries. */
static int reserved_suffix(const char *name, size_t n)
{
    static const char *const sfx[] = {"_total", "_count", "_sum", "_bucket"};
    for (size_t i = 0; i < MW_ARRAY_LEN(sfx); i++) {
        size_t k = strlen(sfx[i]);
        if (n >= k && !strcmp(name + n - k, sfx[i]))
            return 1;
    }
    return 0;
}

/* Length of the valid UTF-8 sequence at `s` (n bytes left), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0xC2 ? 0 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : s[0] < 0xF5 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

static mw_code add_escaped(mw__buf *b, const char *v, size_t n)
{
    mw_code rc = MW_OK;
    for (size_t i = 0; i < n && rc == MW_OK; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '\\' || c == '"')
            rc = mw__buf_add(b, c == '\\' ? "\\\\" : "\\\"", 2);
        else if (c == '\n')
            rc = mw__buf_add(b, "\\n", 2);
        else if (c < 0x80)
            rc = mw__buf_addc(b, (char)c);
        else {
            size_t k = utf8_len((const unsigned char *)v + i, n - i);
            rc = k ? mw__buf_add(b, v + i, k) : mw__buf_addc(b, '?');
            i += k ? k - 1 : 0;
        }
    }
    return rc;
}

/* ------------------------------------------------------------- labels */

static mw_code push_label(mw__prom *p, size_t *n, const char *name, size_t nlen, const char *val,
                          size_t vlen)
{
    char tmp[MW_NAME_MAX * 4 + 16];
    if (*n == MAX_LABELS || nlen > MW_NAME_MAX * 2)
        return MW_EINVAL;
    size_t off = p->names.len, k = sanitise(name, nlen, tmp, 1);
    if (mw__buf_add(&p->names, tmp, k) != MW_OK)
        return MW_ENOMEM;
    p->labels[*n] = (label){off, k, val, vlen, *n};
    (*n)++;
    return MW_OK;
}

static int label_cmp(const void *a, const void *b, void *base)
{
    const label *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp((const char *)base + x->name_off, (const char *)base + y->name_off, n);
    if (c == 0 && x->name_len != y->name_len)
        c = x->name_len < y->name_len ? -1 : 1;
    return c ? c : (x->order < y->order ? -1 : 1);
}

/* The record's labels: host, check (service checks) and its tags. */
static mw_code collect_labels(mw__prom *p, const mw_record *rec, size_t *n)
{
    mw_code rc = MW_OK;
    *n = 0;
    mw__buf_reset(&p->names);
    if (rec->type == MW_RECORD_SERVICE_CHECK && rec->name)
        rc = push_label(p, n, "check", 5, rec->name, strlen(rec->name));
    if (rc == MW_OK && rec->host && rec->host[0])
        rc = push_label(p, n, "host", 4, rec->host, strlen(rec->host));
    for (size_t i = 0; i < rec->ntags && rc == MW_OK; i++) {
        const char *t = rec->tags[i], *colon = strchr(t, ':');
        if (!t[0])
            continue;
        if (colon)
            rc = push_label(p, n, t, (size_t)(colon - t), colon + 1, strlen(colon + 1));
        else
            rc = push_label(p, n, t, strlen(t), "true", 4);
    }
    return rc;
}

/* Sorted labels, values of equal names joined, into `b`. */
static mw_code write_labels(mw__prom *p, size_t n, mw__buf *b)
{
    const char *names = mw__buf_str(&p->names);
    mw_code rc = MW_OK;
    qsort_r(p->labels, n, sizeof *p->labels, label_cmp, (void *)names);
    for (size_t i = 0; i < n && rc == MW_OK; i++) {
        const label *l = &p->labels[i];
        int same = i > 0 && l->name_len == p->labels[i - 1].name_len &&
                   !memcmp(names + l->name_off, names + p->labels[i - 1].name_off, l->name_len);
        if (same) {
            mw__buf_setlen(b, b->len - 1); /* reopen the value */
            rc = mw__buf_addc(b, ',');
        } else {
            rc = mw__buf_adds(b, i ? "," : "{");
            if (rc == MW_OK)
                rc = mw__buf_add(b, names + l->name_off, l->name_len);
            if (rc == MW_OK)
                rc = mw__buf_add(b, "=\"", 2);
        }
        if (rc == MW_OK)
            rc = add_escaped(b, l->val, l->val_len);
        if (rc == MW_OK)
            rc = mw__buf_addc(b, '"');
    }
    if (rc == MW_OK && n)
        rc = mw__buf_addc(b, '}');
    return rc;
}

/* ------------------------------------------------------------- tables */

static mw_code grow_series(mw__prom *p)
{
    size_t nb = p->snb ? p->snb * 2 : 1024;
    series **v = calloc(nb, sizeof *v);
    if (!v)
        return MW_ENOMEM;
    for (size_t i = 0; i < p->snb; i++)
        for (series *s = p->sb[i], *next; s; s = next) {
            next = s->next;
            s->next = v[s->hash & (nb - 1)];
            v[s->hash & (nb - 1)] = s;
        }
    free(p->sb);
    p->sb = v;
    p->snb = nb;
    return MW_OK;
}

static mw_code grow_families(mw__prom *p)
{
    size_t nb = p->fnb ? p->fnb * 2 : 64;
    family **v = calloc(nb, sizeof *v);
    if (!v)
        return MW_ENOMEM;
    for (size_t i = 0; i < p->fnb; i++)
        for (family *f = p->fb[i], *next; f; f = next) {
            next = f->next;
            f->next = v[f->hash & (nb - 1)];
            v[f->hash & (nb - 1)] = f;
        }
    free(p->fb);
    p->fb = v;
    p->fnb = nb;
    return MW_OK;
}

static family *find_family(mw__prom *p, const char *name, uint64_t h)
{
    for (family *f = p->fnb ? p->fb[h & (p->fnb - 1)] : NULL; f; f = f->next)
        if (f->hash == h && !strcmp(f->name, name))
            return f;
    return NULL;
}

static family *new_family(mw__prom *p, const char *name, uint64_t h, int counter, const char *help)
{
    if (p->nfam >= p->fnb && grow_families(p) != MW_OK)
        return NULL;
    family *f = calloc(1, sizeof *f);
    if (!f || !(f->name = mw__strdup(name)) || !(f->help = mw__strdup(help))) {
        if (f)
            free(f->name);
        free(f);
        return NULL;
    }
    f->hash = h;
    f->counter = counter;
    f->next = p->fb[h & (p->fnb - 1)];
    p->fb[h & (p->fnb - 1)] = f;
    p->nfam++;
    return f;
}

static void drop_family(mw__prom *p, family *f)
{
    family **pp = &p->fb[f->hash & (p->fnb - 1)];
    while (*pp != f)
        pp = &(*pp)->next;
    *pp = f->next;
    p->nfam--;
    free(f->v);
    free(f->name);
    free(f->help);
    free(f);
}

static series *find_series(mw__prom *p, const char *key, size_t len, uint64_t h)
{
    for (series *s = p->snb ? p->sb[h & (p->snb - 1)] : NULL; s; s = s->next)
        if (s->hash == h && s->len == len && !memcmp(s->key, key, len))
            return s;
    return NULL;
}

static series *new_series(mw__prom *p, family *f, const char *key, size_t len, uint64_t h)
{
    if (p->nseries >= p->snb && grow_series(p) != MW_OK)
        return NULL;
    if (mw__grow(&f->v, &f->cap, f->n + 1, sizeof *f->v) != MW_OK)
        return NULL;
    series *s = malloc(sizeof *s + len + 1);
    if (!s)
        return NULL;
    *s = (series){.fam = f, .idx = f->n, .hash = h, .len = len};
    memcpy(s->key, key, len + 1);
    f->v[f->n++] = s;
    s->next = p->sb[h & (p->snb - 1)];
    p->sb[h & (p->snb - 1)] = s;
    p->nseries++;
    return s;
}

static void drop_series(mw__prom *p, series *s)
{
    series **pp = &p->sb[s->hash & (p->snb - 1)];
    family *f = s->fam;
    while (*pp != s)
        pp = &(*pp)->next;
    *pp = s->next;
    f->v[s->idx] = f->v[--f->n];
    f->v[s->idx]->idx = s->idx;
    p->nseries--;
    free(s);
    if (f->n == 0)
        drop_family(p, f);
}

/* Under the lock. */
static void prune(mw__prom *p, double now)
{
    p->last_prune = now;
    for (size_t b = 0; b < p->fnb; b++)
        for (family *f = p->fb[b], *fnext; f; f = fnext) {
            fnext = f->next; /* f may go with its last series */
            for (size_t i = f->n; i-- > 0;)
                if (now - f->v[i]->updated > p->expiry)
                    drop_series(p, f->v[i]);
        }
}

/* ------------------------------------------------------------- records */

/* The family name and help of `rec` into `name` (FAMILY_MAX bytes);
 * whether it is a counter. -1: not exposed. */
static int family_of(const mw_record *rec, char *name, char *help, size_t hn)
{
    if (rec->type == MW_RECORD_SERVICE_CHECK) {
        snprintf(name, FAMILY_MAX, "%s", SC_FAMILY);
        snprintf(help, hn, "%s", SC_HELP);
        return 0;
    }
    if (rec->type != MW_RECORD_METRIC || !rec->name || strlen(rec->name) > MW_NAME_MAX)
        return -1;
    int counter = rec->kind == MW_KIND_COUNT;
    size_t k = sanitise(rec->name, strlen(rec->name), name, 0);
    if (counter && (k < 6 || strcmp(name + k - 6, "_total")))
        strcpy(name + k, "_total");
    else if (!counter && reserved_suffix(name, k))
        strcpy(name + k, "_value");
    snprintf(help, hn, "moonwatch %s %s",
             counter                     ? "count"
             : rec->kind == MW_KIND_RATE ? "rate"
                                         : "gauge",
             rec->name);
    return counter;
}

static void help_escape(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\\')
            *s = ' ';
}

/* Under the lock: the value of series `key` of family `name`. */
static mw_code store(mw__prom *p, const char *name, int counter, const char *help, double v,
                     double now)
{
    const char *key = mw__buf_str(&p->key);
    size_t len = p->key.len;
    uint64_t fh = mw__hash(0, name, strlen(name)), sh = mw__hash(0, key, len);
    family *f = find_family(p, name, fh);
    if (f && f->counter != counter)
        return MW_EINVAL;
    if (!f && !(f = new_family(p, name, fh, counter, help)))
        return MW_ENOMEM;
    series *s = find_series(p, key, len, sh);
    if (!s && !(s = new_series(p, f, key, len, sh))) {
        if (f->n == 0)
            drop_family(p, f);
        return MW_ENOMEM;
    }
    s->value = counter ? s->value + v : v;
    s->updated = now;
    return MW_OK;
}

mw_code mw__prom_add(mw__prom *p, const mw_record *rec, double now)
{
    char name[FAMILY_MAX], help[FAMILY_MAX + 64];
    size_t n;
    int counter = family_of(rec, name, help, sizeof help);
    if (counter < 0)
        return MW_OK;
    help_escape(help);
    mw__buf_reset(&p->key);
    mw_code rc = collect_labels(p, rec, &n);
    if (rc == MW_OK && (rc = mw__buf_adds(&p->key, name)) == MW_OK)
        rc = write_labels(p, n, &p->key);
    if (rc != MW_OK)
        return rc;
    double v = rec->type == MW_RECORD_SERVICE_CHECK ? (double)rec->status : rec->value;
    pthread_mutex_lock(&p->lock);
    rc = store(p, name, counter, help, v, now);
    if (now - p->last_prune >= PRUNE_EVERY)
        prune(p, now);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void mw__prom_sink(const mw_record *rec, void *ud)
{
    mw__prom_add(ud, rec, mw__wall());
}

/* ------------------------------------------------------------- render */

/* The shortest text that reads back as `v` (integers without a point). */
static size_t fmt_value(double v, char *out)
{
    if (isnan(v))
        return mw__putstr(out, "NaN");
    if (isinf(v))
        return mw__putstr(out, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 1e15) {
        char tmp[24];
        size_t n = 0, k = 0;
        unsigned long long u = (unsigned long long)fabs(v);
        do
            tmp[n++] = (char)('0' + u % 10);
        while ((u /= 10) > 0);
        if (v < 0)
            out[k++] = '-';
        while (n)
            out[k++] = tmp[--n];
        out[k] = '\0';
        return k;
    }
    int k = snprintf(out, 32, "%.15g", v);
    if (strtod(out, NULL) != v)
        k = snprintf(out, 32, "%.17g", v);
    return (size_t)k;
}

static int family_cmp(const void *a, const void *b)
{
    return strcmp((*(family *const *)a)->name, (*(family *const *)b)->name);
}

static mw_code render_family(const family *f, mw__buf *out)
{
    char num[40];
    mw_code rc = mw__buf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                              f->counter ? "counter" : "gauge");
    for (size_t i = 0; i < f->n && rc == MW_OK; i++) {
        const series *s = f->v[i];
        size_t k = fmt_value(s->value, num + 1);
        num[0] = ' ';
        num[k + 1] = '\n';
        if ((rc = mw__buf_reserve(out, s->len + k + 2)) == MW_OK) {
            char *t = mw__buf_tail(out);
            memcpy(t, s->key, s->len);
            memcpy(t + s->len, num, k + 2);
            mw__buf_setlen(out, out->len + s->len + k + 2);
        }
    }
    return rc;
}

mw_code mw__prom_render(mw__prom *p, double now, mw__buf *out)
{
    mw_code rc = MW_OK;
    pthread_mutex_lock(&p->lock);
    prune(p, now);
    family **v = p->nfam ? malloc(p->nfam * sizeof *v) : NULL;
    size_t n = 0;
    if (p->nfam && !v)
        rc = MW_ENOMEM;
    for (size_t b = 0; v && b < p->fnb; b++)
        for (family *f = p->fb[b]; f; f = f->next)
            v[n++] = f;
    if (n)
        qsort(v, n, sizeof *v, family_cmp);
    for (size_t i = 0; i < n && rc == MW_OK; i++)
        rc = render_family(v[i], out);
    pthread_mutex_unlock(&p->lock);
    free(v);
    return rc;
}

size_t mw__prom_series(mw__prom *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->nseries;
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* ------------------------------------------------------------- lifecycle */

mw__prom *mw__prom_new(double expiry)
{
    mw__prom *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (!(p->labels = calloc(MAX_LABELS, sizeof *p->labels))) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    p->expiry = expiry > 0 ? expiry : 300;
    p->last_prune = mw__wall();
    mw__buf_init(&p->key, (size_t)1 << 20);
    mw__buf_init(&p->names, (size_t)1 << 20);
    return p;
}

void mw__prom_free(mw__prom *p)
{
    if (!p)
        return;
    for (size_t b = 0; b < p->snb; b++)
        for (series *s = p->sb[b], *next; s; s = next) {
            next = s->next;
            free(s);
        }
    for (size_t b = 0; b < p->fnb; b++)
        for (family *f = p->fb[b], *next; f; f = next) {
            next = f->next;
            free(f->v);
            free(f->name);
            free(f->help);
            free(f);
        }
    free(p->sb);
    free(p->fb);
    free(p->labels);
    mw__buf_free(&p->key);
    mw__buf_free(&p->names);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
