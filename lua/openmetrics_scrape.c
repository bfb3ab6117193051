/*
 * openmetrics_scrape.c - the scraper: parsed families submitted to a
 * check's sample destination with the names and types of Datadog's
 * OpenMetrics V2 check (see openmetrics_scrape.h). No Lua here.
 *
 * Ownership: a scraper owns copies of its options, its compiled patterns
 * and its scratch buffers (tag strings, metric names); all are freed by
 * mw__om_scraper_free().
 */
#include "lua/openmetrics_scrape.h"

#include "core/base/util.h"

#include <math.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes a canonical le / quantile value may need beyond its raw text. */
#define CANON_EXTRA 32

/* ------------------------------------------------------------- patterns */

/* A set of exact names (sorted, binary-searched) and patterns (tried in
 * order); each member carries the index of the option entry it came from. */
typedef struct exact_name {
    mw__str name;
    size_t idx;
} exact_name;

typedef struct pattern {
    regex_t re;
    size_t idx;
} pattern;

typedef struct nameset {
    exact_name *exact;
    size_t nexact;
    pattern *pat;
    size_t npat;
} nameset;

/* A pattern by V2's rule (re.escape would change it), or a glob. */
static int is_pattern(mw__str s, int globs)
{
    const char *special = globs ? "*?[" : "()[]{}?*+-|^$\\.&~# \t\n\r\v\f";
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i] && strchr(special, s.p[i]))
            return 1;
    return 0;
}

/* Copies the bracket expression at s.p[i] (a '['), `\d` written 0-9 and
 * `\x` as x (POSIX brackets have no escapes); returns the index after it. */
static size_t copy_bracket(mw__str s, size_t i, char *out, size_t *n)
{
    out[(*n)++] = s.p[i++];
    if (i < s.n && s.p[i] == '^')
        out[(*n)++] = s.p[i++];
    if (i < s.n && s.p[i] == ']')
        out[(*n)++] = s.p[i++];
    while (i < s.n && s.p[i] != ']') {
        if (s.p[i] == '\\' && i + 1 < s.n) {
            if (s.p[i + 1] == 'd')
                *n += mw__putstr(out + *n, "0-9");
            else
                out[(*n)++] = s.p[i + 1];
            i += 2;
        } else {
            out[(*n)++] = s.p[i++];
        }
    }
    if (i < s.n)
        out[(*n)++] = s.p[i++];
    return i;
}

/* Python regex to POSIX ERE: `(?:` becomes `(`, `\d` / `\D` become
 * [0-9] / [^0-9]; glibc's ERE knows \w \s \b. `out` holds 5 * s.n + 3. */
static void regex_to_ere(mw__str s, char *out)
{
    size_t n = 0, i = 0;
    while (i < s.n) {
        char c = s.p[i], d = i + 1 < s.n ? s.p[i + 1] : '\0';
        if (c == '[') {
            i = copy_bracket(s, i, out, &n);
        } else if (c == '\\' && (d == 'd' || d == 'D')) {
            n += mw__putstr(out + n, d == 'd' ? "[0-9]" : "[^0-9]");
            i += 2;
        } else if (c == '\\' && d) {
            out[n++] = c;
            out[n++] = d;
            i += 2;
        } else if (c == '(' && d == '?' && i + 2 < s.n && s.p[i + 2] == ':') {
            out[n++] = '(';
            i += 3;
        } else {
            out[n++] = c;
            i++;
        }
    }
    out[n] = '\0';
}

/* fnmatch.translate: the whole name, * ? [...] [!...]. */
static void glob_to_ere(mw__str s, char *out)
{
    size_t n = 0;
    out[n++] = '^';
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        const char *close = c == '[' ? memchr(s.p + i + 1, ']', s.n - i - 1) : NULL;
        if (c == '*') {
            n += mw__putstr(out + n, ".*");
        } else if (c == '?') {
            out[n++] = '.';
        } else if (close && close > s.p + i + 1) {
            out[n++] = '[';
            i++;
            if (s.p[i] == '!') {
                out[n++] = '^';
                i++;
            }
            for (; s.p + i < close; i++)
                out[n++] = s.p[i];
            out[n++] = ']';
        } else {
            if (strchr(".^$*+?()[]{}|\\", c))
                out[n++] = '\\';
            out[n++] = c;
        }
    }
    out[n++] = '$';
    out[n] = '\0';
}

static int cmp_exact(const void *a, const void *b)
{
    const exact_name *x = a, *y = b;
    if (x->name.n != y->name.n)
        return x->name.n < y->name.n ? -1 : 1;
    return memcmp(x->name.p, y->name.p, x->name.n);
}

/* Adds `s` (entry `idx` of option `opt`) to `set`; arrays sized by the
 * caller. MW_OK, or MW_EINVAL / MW_ENOMEM with `err` filled. */
static mw_code nameset_add(nameset *set, mw__str s, size_t idx, int globs, const char *opt,
                           char *err, size_t errlen)
{
    if (s.n == 0 || memchr(s.p, '\0', s.n)) {
        snprintf(err, errlen, "option '%s': entry %zu is empty or holds a NUL byte", opt, idx + 1);
        return MW_EINVAL;
    }
    if (!is_pattern(s, globs)) {
        set->exact[set->nexact++] = (exact_name){s, idx};
        return MW_OK;
    }
    char *ere = malloc(5 * s.n + 3);
    if (!ere) {
        snprintf(err, errlen, "out of memory");
        return MW_ENOMEM;
    }
    (globs ? glob_to_ere : regex_to_ere)(s, ere);
    pattern *pt = &set->pat[set->npat];
    int rc = regcomp(&pt->re, ere, REG_EXTENDED | REG_NOSUB);
    free(ere);
    if (rc != 0) {
        char why[128];
        regerror(rc, &pt->re, why, sizeof(why));
        snprintf(err, errlen, "option '%s': entry %zu ('%.*s') is not a valid %s: %s", opt, idx + 1,
                 (int)(s.n > 80 ? 80 : s.n), s.p, globs ? "pattern" : "regular expression", why);
        return rc == REG_ESPACE ? MW_ENOMEM : MW_EINVAL;
    }
    pt->idx = idx;
    set->npat++;
    return MW_OK;
}

static void nameset_sort(nameset *set)
{
    if (set->nexact > 1)
        qsort(set->exact, set->nexact, sizeof(*set->exact), cmp_exact);
}

static void nameset_free(nameset *set)
{
    for (size_t i = 0; i < set->npat; i++)
        regfree(&set->pat[i].re);
    free(set->exact);
    free(set->pat);
    memset(set, 0, sizeof(*set));
}

static mw_code nameset_alloc(nameset *set, size_t n)
{
    set->exact = calloc(n ? n : 1, sizeof(*set->exact));
    set->pat = calloc(n ? n : 1, sizeof(*set->pat));
    return set->exact && set->pat ? MW_OK : MW_ENOMEM;
}

/* The entry index `name` selects, -1 when none does, -2 when regexec()
 * ran out of memory. `z` is `name` NUL-terminated (for regexec). */
static long nameset_find(const nameset *set, mw__str name, const char *z)
{
    exact_name key = {name, 0};
    const exact_name *hit =
        set->nexact ? bsearch(&key, set->exact, set->nexact, sizeof(key), cmp_exact) : NULL;
    if (hit)
        return (long)hit->idx;
    for (size_t i = 0; i < set->npat; i++) {
        int rc = regexec(&set->pat[i].re, z, 0, NULL, 0);
        if (rc == 0)
            return (long)set->pat[i].idx;
        if (rc != REG_NOMATCH)
            return -2;
    }
    return -1;
}

/* ------------------------------------------------------------- scraper */

typedef struct metric_entry {
    mw__str rename; /* p == NULL: keep the name */
    mw__om_type type;
    int native; /* no type given: the exposition's (or type_overrides') */
} metric_entry;

/* What to do with the family being parsed, decided at its start. */
typedef struct plan {
    mw__om_type type;   /* submitted as */
    mw__om_type native; /* as exposed: decides le / quantile handling */
    mw__str value, count, sum, bucket, quantile;
} plan;

struct mw__om_scraper {
    char *arena; /* copies of every option string */
    size_t arena_len;
    mw__str ns, prefix;
    int all_metrics, buckets;
    metric_entry *entries;
    nameset metrics, exclude, overrides;
    mw__om_type *override_types;
    mw__str *exclude_labels, *include_labels, *rename_from, *rename_to, *tags;
    size_t nexclude_labels, ninclude_labels, nrename, ntags;
    size_t longest_label; /* longest label name a tag may get */
    int label_rules;      /* any of exclude / include / rename */

    /* per submit */
    const mw__sample_out *out;
    mw__om_result *r;
    plan plan;
    char *names; /* the current family's metric names */
    size_t names_cap;
    char *z; /* the current family's name, NUL-terminated */
    size_t z_cap;
    mw__str *tagv; /* MW_OM_MAX_LABELS + ntags */
    char *tagbuf;
    size_t tagbuf_cap;
    void (*tick)(void *);
    void *tick_ud;
};

/* Room for `need` bytes at `*p`, doubling from 256. */
static mw_code grow(char **p, size_t *cap, size_t need)
{
    return mw__grow(p, cap, need < 256 ? 256 : need, 1);
}

/* Copies `s` into the arena (sized by the caller). */
static mw__str keep(mw__om_scraper *sc, mw__str s)
{
    if (!s.p)
        return s;
    char *d = sc->arena + sc->arena_len;
    if (s.n)
        memcpy(d, s.p, s.n);
    d[s.n] = '\0';
    sc->arena_len += s.n + 1;
    return (mw__str){d, s.n};
}

static size_t strs_bytes(const mw__str *v, size_t n)
{
    size_t b = 0;
    for (size_t i = 0; v && i < n; i++)
        b += v[i].n + 1;
    return b;
}

static size_t config_bytes(const mw__om_config *c)
{
    size_t b = c->ns.n + c->raw_metric_prefix.n + 2;
    for (size_t i = 0; i < c->nmetrics; i++)
        b += c->metrics[i].match.n + c->metrics[i].rename.n + 2;
    b += strs_bytes(c->exclude_metrics, c->nexclude_metrics);
    b += strs_bytes(c->exclude_labels, c->nexclude_labels);
    b += strs_bytes(c->include_labels, c->ninclude_labels);
    b +=
        strs_bytes(c->rename_from, c->nrename_labels) + strs_bytes(c->rename_to, c->nrename_labels);
    b += strs_bytes(c->tags, c->ntags) + strs_bytes(c->override_names, c->noverrides);
    return b;
}

static mw__str *keep_all(mw__om_scraper *sc, const mw__str *v, size_t n)
{
    mw__str *out = calloc(n ? n : 1, sizeof(*out));
    for (size_t i = 0; out && i < n; i++)
        out[i] = keep(sc, v[i]);
    return out;
}

/* Parses a configured type; "native" (or none) sets *native. */
static mw_code config_type(mw__str t, mw__om_type *type, int *native)
{
    static const char *const names[] = {"counter", "gauge", "histogram", "summary"};
    static const mw__om_type types[] = {MW_OM_COUNTER, MW_OM_GAUGE, MW_OM_HISTOGRAM, MW_OM_SUMMARY};
    *native = !t.p || mw__str_is(t, "native");
    if (*native)
        return MW_OK;
    for (int i = 0; i < 4; i++)
        if (mw__str_is(t, names[i])) {
            *type = types[i];
            return MW_OK;
        }
    return MW_EINVAL;
}

static mw_code bad_type(mw__str t, const char *opt, mw__str key, char *err, size_t errlen)
{
    snprintf(err, errlen,
             "option '%s': type '%.*s' of '%.*s' is not one of counter, gauge, histogram, "
             "summary, native",
             opt, (int)(t.n > 40 ? 40 : t.n), t.p, (int)(key.n > 80 ? 80 : key.n), key.p);
    return MW_EINVAL;
}

static mw_code no_memory(char *err, size_t errlen)
{
    snprintf(err, errlen, "out of memory");
    return MW_ENOMEM;
}

static mw_code compile_metrics(mw__om_scraper *sc, const mw__om_config *c, char *err, size_t errlen)
{
    mw_code rc;
    sc->entries = calloc(c->nmetrics ? c->nmetrics : 1, sizeof(*sc->entries));
    if (!sc->entries || nameset_alloc(&sc->metrics, c->nmetrics) != MW_OK)
        return no_memory(err, errlen);
    for (size_t i = 0; i < c->nmetrics; i++) {
        const mw__om_metric_spec *m = &c->metrics[i];
        metric_entry *en = &sc->entries[i];
        mw__str match = keep(sc, m->match);
        if (!match.p) {
            snprintf(err, errlen, "option 'metrics': entry %zu has no name", i + 1);
            return MW_EINVAL;
        }
        if (config_type(m->type, &en->type, &en->native) != MW_OK)
            return bad_type(m->type, "metrics", m->match, err, errlen);
        if ((rc = nameset_add(&sc->metrics, match, i, c->globs, "metrics", err, errlen)) != MW_OK)
            return rc;
        /* V2: a pattern keeps each family's own name */
        if (m->rename.p && m->rename.n && !is_pattern(match, c->globs))
            en->rename = keep(sc, m->rename);
    }
    nameset_sort(&sc->metrics);
    return MW_OK;
}

static mw_code compile_names(mw__om_scraper *sc, nameset *set, const mw__str *v, size_t n,
                             int globs, const char *opt, char *err, size_t errlen)
{
    mw_code rc;
    if (nameset_alloc(set, n) != MW_OK)
        return no_memory(err, errlen);
    for (size_t i = 0; i < n; i++)
        if ((rc = nameset_add(set, keep(sc, v[i]), i, globs, opt, err, errlen)) != MW_OK)
            return rc;
    nameset_sort(set);
    return MW_OK;
}

static mw_code compile_overrides(mw__om_scraper *sc, const mw__om_config *c, char *err,
                                 size_t errlen)
{
    sc->override_types = calloc(c->noverrides ? c->noverrides : 1, sizeof(mw__om_type));
    if (!sc->override_types)
        return no_memory(err, errlen);
    for (size_t i = 0; i < c->noverrides; i++) {
        int native;
        if (config_type(c->override_types[i], &sc->override_types[i], &native) != MW_OK || native)
            return bad_type(c->override_types[i], "type_overrides", c->override_names[i], err,
                            errlen);
    }
    return compile_names(sc, &sc->overrides, c->override_names, c->noverrides, c->globs,
                         "type_overrides", err, errlen);
}

static mw_code compile_labels(mw__om_scraper *sc, const mw__om_config *c, char *err, size_t errlen)
{
    sc->exclude_labels = keep_all(sc, c->exclude_labels, c->nexclude_labels);
    sc->include_labels = keep_all(sc, c->include_labels, c->ninclude_labels);
    sc->rename_from = keep_all(sc, c->rename_from, c->nrename_labels);
    sc->rename_to = keep_all(sc, c->rename_to, c->nrename_labels);
    sc->tags = keep_all(sc, c->tags, c->ntags);
    sc->tagv = calloc(MW_OM_MAX_LABELS + c->ntags, sizeof(*sc->tagv));
    if (!sc->exclude_labels || !sc->include_labels || !sc->rename_from || !sc->rename_to ||
        !sc->tags || !sc->tagv)
        return no_memory(err, errlen);
    sc->nexclude_labels = c->nexclude_labels;
    sc->ninclude_labels = c->ninclude_labels;
    sc->nrename = c->nrename_labels;
    sc->ntags = c->ntags;
    sc->label_rules = sc->nexclude_labels || sc->ninclude_labels || sc->nrename;
    sc->longest_label = sizeof("upper_bound");
    for (size_t i = 0; i < sc->nrename; i++) {
        if (sc->rename_to[i].n == 0) {
            snprintf(err, errlen, "option 'rename_labels': the new name of '%.*s' is empty",
                     (int)(sc->rename_from[i].n > 80 ? 80 : sc->rename_from[i].n),
                     sc->rename_from[i].p);
            return MW_EINVAL;
        }
        if (sc->rename_to[i].n > sc->longest_label)
            sc->longest_label = sc->rename_to[i].n;
    }
    return MW_OK;
}

mw__om_scraper *mw__om_scraper_new(const mw__om_config *c, char *err, size_t errlen)
{
    mw__om_scraper *sc = calloc(1, sizeof(*sc)), *res = NULL;
    if (!sc || !(sc->arena = malloc(config_bytes(c)))) {
        no_memory(err, errlen);
        goto out;
    }
    sc->ns = keep(sc, c->ns.p ? c->ns : (mw__str){"", 0});
    sc->prefix = keep(sc, c->raw_metric_prefix.p ? c->raw_metric_prefix : (mw__str){"", 0});
    sc->all_metrics = c->all_metrics;
    sc->buckets = c->collect_histogram_buckets;
    if (compile_metrics(sc, c, err, errlen) != MW_OK ||
        compile_names(sc, &sc->exclude, c->exclude_metrics, c->nexclude_metrics, c->globs,
                      "exclude_metrics", err, errlen) != MW_OK ||
        compile_overrides(sc, c, err, errlen) != MW_OK ||
        compile_labels(sc, c, err, errlen) != MW_OK)
        goto out;
    res = sc;
    sc = NULL;
out:
    mw__om_scraper_free(sc);
    return res;
}

void mw__om_scraper_free(mw__om_scraper *sc)
{
    if (!sc)
        return;
    nameset_free(&sc->metrics);
    nameset_free(&sc->exclude);
    nameset_free(&sc->overrides);
    free(sc->entries);
    free(sc->override_types);
    free(sc->exclude_labels);
    free(sc->include_labels);
    free(sc->rename_from);
    free(sc->rename_to);
    free(sc->tags);
    free(sc->tagv);
    free(sc->tagbuf);
    free(sc->names);
    free(sc->z);
    free(sc->arena);
    free(sc);
}

/* ------------------------------------------------------------- submit */

/* Writes "<ns>.<base><suffix>" at names + *off. */
static mw__str add_name(mw__om_scraper *sc, size_t *off, mw__str base, const char *sfx)
{
    char *d = sc->names + *off;
    size_t n = 0, k = strlen(sfx);
    if (sc->ns.n) {
        memcpy(d, sc->ns.p, sc->ns.n);
        d[sc->ns.n] = '.';
        n = sc->ns.n + 1;
    }
    memcpy(d + n, base.p, base.n);
    memcpy(d + n + base.n, sfx, k);
    n += base.n + k;
    *off += n;
    return (mw__str){d, n};
}

static mw_code build_names(mw__om_scraper *sc, mw__str base)
{
    size_t off = 0;
    if (grow(&sc->names, &sc->names_cap, 5 * (sc->ns.n + base.n + 16)) != MW_OK)
        return MW_ENOMEM;
    plan *pl = &sc->plan;
    pl->value = add_name(sc, &off, base, "");
    pl->count = add_name(sc, &off, base, ".count");
    pl->sum = add_name(sc, &off, base, ".sum");
    pl->bucket = add_name(sc, &off, base, ".bucket");
    pl->quantile = add_name(sc, &off, base, ".quantile");
    return MW_OK;
}

/* The type a family is submitted as: the metrics entry's, else
 * type_overrides', else the exposition's. */
static mw_code family_type(mw__om_scraper *sc, const metric_entry *en, mw__str name,
                           mw__om_type native, mw__om_type *type)
{
    long o = -1;
    *type = native;
    if (en && !en->native)
        *type = en->type;
    else if (sc->overrides.nexact || sc->overrides.npat)
        o = nameset_find(&sc->overrides, name, sc->z);
    if (o >= 0)
        *type = sc->override_types[o];
    return o == -2 ? MW_ENOMEM : MW_OK;
}

/* Stops the parse (a handler's -1): out of memory. */
static int stop_nomem(mw__om_scraper *sc)
{
    sc->r->rc = MW_ENOMEM;
    return -1;
}

/* Decides, once per family, whether and how its samples are submitted. */
static int on_family(void *ud, const mw__om_family *f)
{
    mw__om_scraper *sc = ud;
    mw__str name = f->name;
    const metric_entry *en = NULL;
    long i = -1;
    if (sc->prefix.n && name.n >= sc->prefix.n && memcmp(name.p, sc->prefix.p, sc->prefix.n) == 0) {
        name.p += sc->prefix.n;
        name.n -= sc->prefix.n;
    }
    if (grow(&sc->z, &sc->z_cap, name.n + 1) != MW_OK)
        return stop_nomem(sc);
    memcpy(sc->z, name.p, name.n);
    sc->z[name.n] = '\0';
    if (sc->exclude.nexact || sc->exclude.npat)
        i = nameset_find(&sc->exclude, name, sc->z);
    if (i != -1)
        return i == -2 ? stop_nomem(sc) : 0;
    if (!sc->all_metrics) {
        if ((i = nameset_find(&sc->metrics, name, sc->z)) < 0)
            return i == -2 ? stop_nomem(sc) : 0;
        en = &sc->entries[i];
    }
    sc->plan.native = f->type;
    if (family_type(sc, en, name, f->type, &sc->plan.type) != MW_OK)
        return stop_nomem(sc);
    if (sc->plan.type == MW_OM_UNKNOWN || sc->plan.type == MW_OM_OTHER)
        return 0;
    if (build_names(sc, en && en->rename.p ? en->rename : name) != MW_OK)
        return stop_nomem(sc);
    return 1;
}

/* Index of `name` in `v`, or -1. */
static long find_str(const mw__str *v, size_t n, mw__str name)
{
    for (size_t i = 0; i < n; i++)
        if (mw__str_eq(v[i], name))
            return (long)i;
    return -1;
}

/* exclude_labels, include_labels, rename_labels: 0 drops the label. */
static int label_rule(const mw__om_scraper *sc, mw__str *name)
{
    if (find_str(sc->exclude_labels, sc->nexclude_labels, *name) >= 0)
        return 0;
    if (sc->ninclude_labels && find_str(sc->include_labels, sc->ninclude_labels, *name) < 0)
        return 0;
    long r = find_str(sc->rename_from, sc->nrename, *name);
    if (r >= 0)
        *name = sc->rename_to[r];
    return 1;
}

/* Bytes the tags of `s` may take. */
static size_t tags_bound(const mw__om_scraper *sc, const mw__om_sample *s)
{
    size_t b = 0;
    for (size_t i = 0; i < s->nlabels; i++)
        b += (s->labels[i].name.n > sc->longest_label ? s->labels[i].name.n : sc->longest_label) +
             s->labels[i].value.n + CANON_EXTRA;
    return b;
}

/* Writes "name:value" for each kept label into tagbuf and the static tags
 * after them; returns the number of tags, or -1 on OOM. */
static long build_tags(mw__om_scraper *sc, const mw__om_sample *s)
{
    if (grow(&sc->tagbuf, &sc->tagbuf_cap, tags_bound(sc, s)) != 0)
        return -1;
    char *d = sc->tagbuf;
    size_t n = 0;
    for (size_t i = 0; i < s->nlabels; i++) {
        const mw__om_label *l = &s->labels[i];
        mw__str name = l->name;
        int canon = 0;
        if (sc->plan.native == MW_OM_HISTOGRAM && mw__str_is(name, "le")) {
            name = (mw__str){"upper_bound", 11};
            canon = 1;
        } else if (sc->plan.native == MW_OM_SUMMARY && mw__str_is(name, "quantile")) {
            canon = 1;
        }
        if (sc->label_rules && !label_rule(sc, &name))
            continue;
        char *t = d;
        memcpy(d, name.p, name.n);
        d += name.n;
        *d++ = ':';
        d += canon        ? mw__om_canon_value(l->value, d)
             : l->escaped ? mw__om_unescape(l->value, d)
                          : (memcpy(d, l->value.p, l->value.n), l->value.n);
        sc->tagv[n++] = (mw__str){t, (size_t)(d - t)};
    }
    for (size_t i = 0; i < sc->ntags; i++)
        sc->tagv[n++] = sc->tags[i];
    return (long)n;
}

/* A bucket whose le is +Inf or -Inf (V2 skips them: +Inf is the count). */
static int infinite_bucket(const mw__om_sample *s, int *has_le)
{
    *has_le = 0;
    for (size_t i = 0; i < s->nlabels; i++)
        if (mw__str_is(s->labels[i].name, "le")) {
            double v;
            *has_le = 1;
            return mw__om_parse_value(s->labels[i].value, &v) == 0 && isinf(v);
        }
    return 0;
}

/* The name and type a sample is submitted with under the family's plan;
 * NULL when V2 submits nothing for it. */
static const mw__str *sample_target(const mw__om_scraper *sc, const mw__om_sample *s,
                                    mw_metric_type *type)
{
    const plan *pl = &sc->plan;
    *type = MW_MONOTONIC_COUNT;
    if (s->part == MW_OM_CREATED)
        return NULL;
    switch (pl->type) {
    case MW_OM_GAUGE:
        *type = MW_GAUGE;
        return &pl->value;
    case MW_OM_COUNTER:
        return s->part == MW_OM_VALUE || s->part == MW_OM_TOTAL ? &pl->count : NULL;
    case MW_OM_HISTOGRAM:
        if (s->part == MW_OM_BUCKET)
            return sc->buckets ? &pl->bucket : NULL;
        /* fall through */
    case MW_OM_SUMMARY:
        if (s->part == MW_OM_COUNT)
            return &pl->count;
        if (s->part == MW_OM_SUM)
            return &pl->sum;
        *type = MW_GAUGE;
        return pl->type == MW_OM_SUMMARY && s->part == MW_OM_VALUE ? &pl->quantile : NULL;
    default:
        return NULL;
    }
}

static void refuse(mw__om_result *r, size_t line)
{
    r->rejected++;
    if (!r->first_bad_line) {
        r->first_bad_line = line;
        r->first_bad_reason = "sample refused (too many tags, a NUL byte, a name over 200 bytes "
                              "or a bucket without le)";
    }
}

static int on_sample(void *ud, const mw__om_family *f, const mw__om_sample *s)
{
    mw__om_scraper *sc = ud;
    mw_metric_type type;
    int has_le = 1;
    (void)f;
    const mw__str *name = sample_target(sc, s, &type);
    if (!name)
        return 0;
    if (!isfinite(s->value)) {
        sc->r->nonfinite++;
        return 0;
    }
    if (name == &sc->plan.bucket && (infinite_bucket(s, &has_le) || !has_le)) {
        if (!has_le)
            refuse(sc->r, s->line);
        return 0;
    }
    long ntags = build_tags(sc, s);
    if (ntags < 0) {
        sc->r->rc = MW_ENOMEM;
        return 1;
    }
    mw_code rc = MW_OK;
    if (sc->out && sc->out->ops)
        rc = sc->out->ops->metric(sc->out->ud, type, *name, s->value, sc->tagv, (size_t)ntags,
                                  (mw__str){NULL, 0});
    if (rc == MW_OK) {
        sc->r->submitted++;
    } else if (rc == MW_ENOMEM) {
        sc->r->rc = MW_ENOMEM;
        return 1;
    } else {
        refuse(sc->r, s->line);
    }
    return 0;
}

/* The parser passes the scraper to tick(); the caller's tick wants its own. */
static void forward_tick(void *ud)
{
    mw__om_scraper *sc = ud;
    sc->tick(sc->tick_ud);
}

mw_code mw__om_submit(mw__om_scraper *sc, const mw__sample_out *out, const char *text, size_t len,
                      void (*tick)(void *), void *tick_ud, mw__om_result *r)
{
    mw__om_handler h = {.family = on_family, .sample = on_sample, .tick = NULL};
    mw__om_stats st;
    memset(r, 0, sizeof(*r));
    r->rc = MW_OK;
    sc->out = out;
    sc->r = r;
    sc->tick = tick;
    sc->tick_ud = tick_ud;
    if (tick)
        h.tick = forward_tick;
    mw__om_parse(text, len, &h, sc, &st);
    r->malformed = st.malformed;
    r->families = st.families;
    if (st.first_bad_line && (!r->first_bad_line || st.first_bad_line < r->first_bad_line)) {
        r->first_bad_line = st.first_bad_line;
        r->first_bad_reason = st.first_bad_reason;
    }
    sc->out = NULL;
    sc->r = NULL;
    return r->rc;
}
