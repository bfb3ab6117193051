/*
 * openmetrics.c - Prometheus / OpenMetrics text: a zero-copy line parser,
 * a scraper that submits families into an instance's sender with Datadog
 * OpenMetrics V2 semantics, and the `mw.openmetrics` Lua table.
 *
 * Ownership: the parser allocates nothing and hands out spans of the
 * caller's text. A scraper owns copies of its options, its compiled
 * patterns and its scratch buffers (tag strings, metric names); all are
 * freed by mw__om_scraper_free(). The Lua binding keeps the scraper in a
 * userdata whose __gc frees it, so an error raised mid-scrape (the time
 * budget, the memory cap) leaks nothing; option arrays are userdata too.
 */
#include "lua/openmetrics.h"
#include "lua/sandbox_int.h"

#include "core/util.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRAPER_MT "mw.openmetrics.scraper"
/* Longest value token handed to strtod(). */
#define MAX_NUMBER 63
/* Bytes a canonical le / quantile value may need beyond its raw text. */
#define CANON_EXTRA 32

/* ------------------------------------------------------------- lexing */

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int metric_start(char c)
{
    return is_alpha(c) || c == '_' || c == ':';
}

static int metric_char(char c)
{
    return metric_start(c) || is_digit(c);
}

static int label_start(char c)
{
    return is_alpha(c) || c == '_';
}

static int label_char(char c)
{
    return label_start(c) || is_digit(c);
}

static const char *skip_blanks(const char *p, const char *e)
{
    while (p < e && is_blank(*p))
        p++;
    return p;
}

static const char *skip_token(const char *p, const char *e)
{
    while (p < e && !is_blank(*p))
        p++;
    return p;
}

static int str_eq(mw__str a, const char *b)
{
    size_t n = strlen(b);
    return a.n == n && memcmp(a.p, b, n) == 0;
}

static int str_same(mw__str a, mw__str b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* `s` is `base` followed by `suffix`. */
static int has_suffix(mw__str s, mw__str base, const char *suffix)
{
    size_t k = strlen(suffix);
    return s.n == base.n + k && memcmp(s.p, base.p, base.n) == 0 &&
           memcmp(s.p + base.n, suffix, k) == 0;
}

/* ------------------------------------------------------------- numbers */

static const double pow10_exact[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* strtod() on a bounded copy: NaN, Inf, hex and long mantissas. */
static int parse_value_slow(mw__str s, double *out)
{
    char buf[MAX_NUMBER + 1], *end;
    if (s.n == 0 || s.n > MAX_NUMBER)
        return -1;
    memcpy(buf, s.p, s.n);
    buf[s.n] = '\0';
    if (isspace((unsigned char)buf[0]))
        return -1;
    *out = strtod(buf, &end);
    return end == buf + s.n ? 0 : -1;
}

/* Decimal mantissa (at most 19 digits) and exponent; exact when both the
 * mantissa and the power of ten are exact doubles (Clinger's fast path). */
int mw__om_parse_value(mw__str s, double *out)
{
    const char *p = s.p, *e = s.p + s.n;
    uint64_t m = 0;
    int sig = 0, scale = 0, digits = 0, neg = 0;
    if (p < e && (*p == '+' || *p == '-'))
        neg = *p++ == '-';
    for (; p < e && is_digit(*p); p++, digits++) {
        if (sig == 19)
            return parse_value_slow(s, out);
        m = m * 10 + (uint64_t)(*p - '0');
        sig += m != 0;
    }
    if (p < e && *p == '.')
        for (p++; p < e && is_digit(*p); p++, digits++, scale--) {
            if (sig == 19)
                return parse_value_slow(s, out);
            m = m * 10 + (uint64_t)(*p - '0');
            sig += m != 0;
        }
    if (digits == 0)
        return parse_value_slow(s, out);
    if (p < e && (*p == 'e' || *p == 'E')) {
        int esign = 1, ex = 0, ed = 0;
        if (++p < e && (*p == '+' || *p == '-'))
            esign = *p++ == '-' ? -1 : 1;
        for (; p < e && is_digit(*p); p++, ed++)
            if (ex < 100000)
                ex = ex * 10 + (*p - '0');
        if (ed == 0)
            return -1;
        scale += esign * ex;
    }
    if (p != e || m > ((uint64_t)1 << 53) || scale < -22 || scale > 22)
        return parse_value_slow(s, out);
    double v = (double)m;
    v = scale < 0 ? v / pow10_exact[-scale] : v * pow10_exact[scale];
    *out = neg ? -v : v;
    return 0;
}

static size_t put(char *out, const char *s)
{
    size_t n = strlen(s);
    memcpy(out, s, n);
    return n;
}

/* Python's repr(float): the shortest digits that read back as `v`, fixed
 * notation for decimal exponents -4 < decpt <= 16, else d.ddde+XX. */
size_t mw__om_format_float(double v, char *out)
{
    char buf[40], digits[20];
    int prec, nd = 0, exp10;
    size_t n = 0;
    if (isnan(v))
        return put(out, "nan");
    if (isinf(v))
        return put(out, v < 0 ? "-inf" : "inf");
    if (v == 0)
        return put(out, "0");
    for (prec = 1; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec - 1, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (prec == 17)
        snprintf(buf, sizeof(buf), "%.16e", v);
    const char *p = buf;
    if (*p == '-')
        out[n++] = *p++;
    for (; *p != 'e'; p++)
        if (is_digit(*p))
            digits[nd++] = *p;
    exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    int decpt = exp10 + 1;
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            n += put(out + n, "0.");
            for (int i = 0; i < -decpt; i++)
                out[n++] = '0';
            memcpy(out + n, digits, (size_t)nd);
            return n + (size_t)nd;
        }
        for (int i = 0; i < decpt; i++)
            out[n++] = i < nd ? digits[i] : '0';
        out[n++] = '.';
        if (decpt >= nd) {
            out[n++] = '0';
            return n;
        }
        memcpy(out + n, digits + decpt, (size_t)(nd - decpt));
        return n + (size_t)(nd - decpt);
    }
    out[n++] = digits[0];
    if (nd > 1) {
        out[n++] = '.';
        memcpy(out + n, digits + 1, (size_t)(nd - 1));
        n += (size_t)(nd - 1);
    }
    n += (size_t)sprintf(out + n, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    return n;
}

/*
 * The canonical text of an le / quantile value without a float round
 * trip, for plain decimals of at most 15 significant digits whose repr is
 * fixed notation ("1" -> "1.0", "0.250" -> "0.25"). Returns 0 when the
 * value needs the general path.
 */
static size_t canon_plain(mw__str s, char *out)
{
    const char *p = s.p, *e = s.p + s.n, *ip, *fp = "";
    size_t il, fl = 0, digits, n = 0;
    int neg = 0;
    if (p < e && (*p == '+' || *p == '-'))
        neg = *p++ == '-';
    const char *d0 = p;
    while (p < e && *p == '0')
        p++;
    for (ip = p; p < e && is_digit(*p); p++)
        ;
    il = (size_t)(p - ip);
    digits = (size_t)(p - d0);
    if (p < e && *p == '.') {
        for (fp = ++p; p < e && is_digit(*p); p++)
            ;
        fl = (size_t)(p - fp);
        digits += fl;
        while (fl && fp[fl - 1] == '0')
            fl--;
    }
    if (p != e || digits == 0)
        return 0;
    if (il == 0 && fl == 0)
        return put(out, "0");
    if (neg)
        out[n++] = '-';
    if (il) {
        if (il + fl > 15)
            return 0;
        memcpy(out + n, ip, il);
        n += il;
        out[n++] = '.';
        if (!fl)
            out[n++] = '0';
    } else {
        size_t z = 0;
        while (z < fl && fp[z] == '0')
            z++;
        if (z > 3 || fl - z > 15)
            return 0;
        n += put(out + n, "0.");
    }
    memcpy(out + n, fp, fl);
    return n + fl;
}

/* V2's str(float(label) or 0); text that is no number is kept as is. */
static size_t canon_number(mw__str s, char *out)
{
    double v;
    size_t n = canon_plain(s, out);
    if (n)
        return n;
    if (mw__om_parse_value(s, &v) != 0) {
        memcpy(out, s.p, s.n);
        return s.n;
    }
    return mw__om_format_float(v, out);
}

size_t mw__om_unescape(mw__str in, char *out)
{
    const char *p = in.p, *e = in.p + in.n;
    size_t n = 0;
    while (p < e) {
        const char *bs = memchr(p, '\\', (size_t)(e - p));
        size_t run = (size_t)((bs ? bs : e) - p);
        memcpy(out + n, p, run);
        n += run;
        p += run;
        if (!bs)
            break;
        if (p + 1 < e && (p[1] == '\\' || p[1] == '"' || p[1] == 'n')) {
            out[n++] = p[1] == 'n' ? '\n' : p[1];
            p += 2;
        } else {
            out[n++] = *p++;
        }
    }
    return n;
}

/* ------------------------------------------------------------- parser */

typedef struct cur_family {
    mw__om_family f;
    mw__str decl; /* the name its metadata or first sample used */
    int open, announced, want;
    size_t nsamples;
} cur_family;

typedef struct parser {
    const mw__om_handler *h;
    void *ud;
    mw__om_stats st;
    cur_family cur;
    size_t line;
    int stop; /* 1: a callback stopped it; 2: # EOF */
    mw__om_label labels[MW_OM_MAX_LABELS];
} parser;

static void bad_line(parser *P, const char *why)
{
    P->st.malformed++;
    if (!P->st.first_bad_line) {
        P->st.first_bad_line = P->line;
        P->st.first_bad_reason = why;
    }
    if (P->h->malformed)
        P->h->malformed(P->ud, P->line, why);
}

/* Calls family() once; returns whether the family's samples are wanted. */
static int announce(parser *P)
{
    cur_family *c = &P->cur;
    if (!c->announced) {
        c->announced = 1;
        P->st.families++;
        int r = P->h->family ? P->h->family(P->ud, &c->f) : 1;
        if (r < 0)
            P->stop = 1;
        c->want = r > 0;
    }
    return c->want && !P->stop;
}

static void close_family(parser *P)
{
    if (P->cur.open && !P->cur.announced)
        announce(P);
    P->cur.open = 0;
}

static void open_family(parser *P, mw__str decl)
{
    close_family(P);
    memset(&P->cur, 0, sizeof(P->cur));
    P->cur.open = 1;
    P->cur.decl = decl;
    P->cur.f.name = decl;
    P->cur.f.type = MW_OM_UNKNOWN;
    P->cur.f.line = P->line;
}

typedef struct suffix {
    const char *s;
    mw__om_part part;
} suffix;

static const suffix counter_sfx[] = {
    {"_total", MW_OM_TOTAL},
    {"_created", MW_OM_CREATED},
    {NULL, MW_OM_VALUE},
};
static const suffix histogram_sfx[] = {
    {"_bucket", MW_OM_BUCKET},   {"_count", MW_OM_COUNT}, {"_sum", MW_OM_SUM},
    {"_created", MW_OM_CREATED}, {NULL, MW_OM_VALUE},
};
static const suffix summary_sfx[] = {
    {"_count", MW_OM_COUNT},
    {"_sum", MW_OM_SUM},
    {"_created", MW_OM_CREATED},
    {NULL, MW_OM_VALUE},
};

/* Whether sample `s` belongs to the current family, and as which part. */
static int belongs(const cur_family *c, mw__str s, mw__om_part *part)
{
    mw__str b = c->f.name;
    mw__om_type t = c->f.type;
    const suffix *x = t == MW_OM_COUNTER     ? counter_sfx
                      : t == MW_OM_HISTOGRAM ? histogram_sfx
                      : t == MW_OM_SUMMARY   ? summary_sfx
                                             : NULL;
    if (!c->open)
        return 0;
    *part = MW_OM_VALUE;
    if (str_same(s, b))
        return t != MW_OM_HISTOGRAM;
    if (t == MW_OM_OTHER) {
        *part = MW_OM_EXTRA;
        return s.n > b.n + 1 && memcmp(s.p, b.p, b.n) == 0 && s.p[b.n] == '_';
    }
    for (; x && x->s; x++)
        if (has_suffix(s, b, x->s)) {
            *part = x->part;
            return 1;
        }
    return 0;
}

static const struct {
    const char *name;
    mw__om_type type;
} type_names[] = {
    {"counter", MW_OM_COUNTER}, {"gauge", MW_OM_GAUGE},     {"histogram", MW_OM_HISTOGRAM},
    {"summary", MW_OM_SUMMARY}, {"untyped", MW_OM_UNKNOWN}, {"unknown", MW_OM_UNKNOWN},
    {"info", MW_OM_OTHER},      {"stateset", MW_OM_OTHER},  {"gaugehistogram", MW_OM_OTHER},
};

static int type_of(mw__str word, mw__om_type *t)
{
    for (size_t i = 0; i < MW_ARRAY_LEN(type_names); i++)
        if (str_eq(word, type_names[i].name)) {
            *t = type_names[i].type;
            return 0;
        }
    return -1;
}

enum meta_kind { META_HELP, META_TYPE, META_UNIT };

/* Applies a HELP / TYPE / UNIT line to the family it names. */
static void apply_meta(parser *P, enum meta_kind k, mw__str name, mw__str rest)
{
    mw__om_type t = MW_OM_UNKNOWN;
    if (k == META_TYPE && type_of(rest, &t) != 0) {
        bad_line(P, "unknown metric type in # TYPE");
        return;
    }
    cur_family *c = &P->cur;
    if (!c->open || c->nsamples || !str_same(c->decl, name))
        open_family(P, name);
    if (k == META_HELP) {
        c->f.help = rest;
    } else if (k == META_UNIT) {
        c->f.unit = rest;
    } else {
        c->f.type = t;
        c->f.type_name = rest;
        c->f.name = name;
        if (t == MW_OM_COUNTER && name.n > 6 && memcmp(name.p + name.n - 6, "_total", 6) == 0)
            c->f.name.n -= 6;
    }
}

/* A line starting with '#': metadata, `# EOF`, or a comment. */
static void meta_line(parser *P, const char *p, const char *e)
{
    static const char *const kw[] = {"HELP", "TYPE", "UNIT"};
    p = skip_blanks(p + 1, e);
    const char *w = p;
    p = skip_token(p, e);
    mw__str word = {w, (size_t)(p - w)};
    if (str_eq(word, "EOF")) {
        P->stop = 2;
        return;
    }
    for (int k = 0; k < 3; k++) {
        if (!str_eq(word, kw[k]))
            continue;
        p = skip_blanks(p, e);
        const char *n0 = p;
        if (p < e && metric_start(*p))
            while (p < e && metric_char(*p))
                p++;
        if (p == n0 || (p < e && !is_blank(*p))) {
            bad_line(P, "bad metric name in a # HELP, # TYPE or # UNIT line");
            return;
        }
        mw__str name = {n0, (size_t)(p - n0)};
        p = skip_blanks(p, e);
        mw__str rest = {p, (size_t)(e - p)};
        if (k != META_HELP)
            while (rest.n && is_blank(rest.p[rest.n - 1]))
                rest.n--;
        apply_meta(P, (enum meta_kind)k, name, rest);
        return;
    }
}

/* Reads `{name="value",...}` from p (at '{'); returns the position after
 * it, or NULL with *why set. */
static const char *parse_labels(parser *P, const char *p, const char *e, size_t *n,
                                const char **why)
{
    for (p++;;) {
        p = skip_blanks(p, e);
        if (p < e && *p == '}')
            return p + 1;
        if (*n == MW_OM_MAX_LABELS)
            return *why = "more than 128 labels", NULL;
        mw__om_label *l = &P->labels[*n];
        const char *n0 = p;
        if (p < e && label_start(*p))
            while (p < e && label_char(*p))
                p++;
        if (p == n0)
            return *why = "bad label name", NULL;
        l->name = (mw__str){n0, (size_t)(p - n0)};
        p = skip_blanks(p, e);
        if (p == e || *p != '=')
            return *why = "expected '=' after a label name", NULL;
        p = skip_blanks(p + 1, e);
        if (p == e || *p != '"')
            return *why = "expected '\"' before a label value", NULL;
        const char *v0 = ++p;
        l->escaped = 0;
        while (p < e && *p != '"') {
            if (*p != '\\') {
                p++;
                continue;
            }
            if (p + 1 == e || (p[1] != '\\' && p[1] != '"' && p[1] != 'n'))
                return *why = "bad escape in a label value", NULL;
            l->escaped = 1;
            p += 2;
        }
        if (p == e)
            return *why = "unterminated label value", NULL;
        l->value = (mw__str){v0, (size_t)(p - v0)};
        (*n)++;
        p = skip_blanks(p + 1, e);
        if (p < e && *p == ',') {
            p++;
            continue;
        }
        if (p < e && *p == '}')
            return p + 1;
        return *why = "expected ',' or '}' after a label", NULL;
    }
}

/* Labels, value and the ignored timestamp / exemplar of a wanted sample. */
static const char *parse_sample(parser *P, const char *p, const char *e, mw__om_sample *s)
{
    const char *why = NULL;
    s->nlabels = 0;
    if (p < e && *p == '{' && !(p = parse_labels(P, p, e, &s->nlabels, &why)))
        return why;
    if (p == e)
        return "no value";
    if (!is_blank(*p))
        return "no blank before the value";
    p = skip_blanks(p, e);
    const char *v0 = p;
    p = skip_token(p, e);
    if (p == v0 || mw__om_parse_value((mw__str){v0, (size_t)(p - v0)}, &s->value) != 0)
        return "bad value";
    p = skip_blanks(p, e);
    if (p == e || *p == '#')
        return NULL;
    const char *t0 = p;
    double ts;
    p = skip_token(p, e);
    if (mw__om_parse_value((mw__str){t0, (size_t)(p - t0)}, &ts) != 0 || !isfinite(ts))
        return "bad timestamp";
    p = skip_blanks(p, e);
    if (p < e && *p != '#')
        return "unexpected text after the timestamp";
    return NULL;
}

/*
 * A sample line. One of the current family's is parsed only when its
 * family is wanted; one that opens a family is parsed first, so a bad
 * line neither opens a family nor closes the current one.
 */
static void sample_line(parser *P, const char *p, const char *e)
{
    mw__om_sample s;
    const char *n0 = p, *why;
    while (p < e && metric_char(*p))
        p++;
    if (!metric_start(*n0) || (p < e && *p != '{' && !is_blank(*p))) {
        bad_line(P, "bad metric name");
        return;
    }
    s.name = (mw__str){n0, (size_t)(p - n0)};
    if (belongs(&P->cur, s.name, &s.part)) {
        P->cur.nsamples++;
        if (!announce(P))
            return;
        if ((why = parse_sample(P, p, e, &s)) != NULL) {
            bad_line(P, why);
            return;
        }
    } else {
        if ((why = parse_sample(P, p, e, &s)) != NULL) {
            bad_line(P, why);
            return;
        }
        open_family(P, s.name);
        s.part = MW_OM_VALUE;
        P->cur.nsamples++;
        if (!announce(P))
            return;
    }
    s.labels = P->labels;
    s.line = P->line;
    P->st.samples++;
    if (P->h->sample && P->h->sample(P->ud, &P->cur.f, &s) != 0)
        P->stop = 1;
}

static void one_line(parser *P, const char *p, const char *e)
{
    if (e > p && e[-1] == '\r')
        e--;
    p = skip_blanks(p, e);
    if (p == e)
        return;
    if (*p == '#')
        meta_line(P, p, e);
    else
        sample_line(P, p, e);
}

int mw__om_parse(const char *text, size_t len, const mw__om_handler *h, void *ud, mw__om_stats *st)
{
    parser P;
    memset(&P, 0, offsetof(parser, labels));
    P.h = h;
    P.ud = ud;
    const char *p = text, *end = text + len;
    while (p < end && !P.stop) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        P.line++;
        if (h->tick && P.line % MW_OM_TICK_LINES == 0)
            h->tick(ud);
        one_line(&P, p, nl ? nl : end);
        p = nl ? nl + 1 : end;
    }
    if (P.stop != 1)
        close_family(&P);
    P.st.lines = P.line;
    if (st)
        *st = P.st;
    return P.stop == 1;
}

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
                *n += put(out + *n, "0-9");
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
            n += put(out + n, d == 'd' ? "[0-9]" : "[^0-9]");
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
            n += put(out + n, ".*");
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
 * caller. Returns 0, or -1 with `err` filled. */
static int nameset_add(nameset *set, mw__str s, size_t idx, int globs, const char *opt, char *err,
                       size_t errlen)
{
    if (s.n == 0 || memchr(s.p, '\0', s.n)) {
        snprintf(err, errlen, "option '%s': entry %zu is empty or holds a NUL byte", opt, idx + 1);
        return -1;
    }
    if (!is_pattern(s, globs)) {
        set->exact[set->nexact++] = (exact_name){s, idx};
        return 0;
    }
    char *ere = malloc(5 * s.n + 3);
    if (!ere) {
        snprintf(err, errlen, "out of memory");
        return -1;
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
        return -1;
    }
    pt->idx = idx;
    set->npat++;
    return 0;
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

static int nameset_alloc(nameset *set, size_t n)
{
    set->exact = calloc(n ? n : 1, sizeof(*set->exact));
    set->pat = calloc(n ? n : 1, sizeof(*set->pat));
    return set->exact && set->pat ? 0 : -1;
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
    mw__sender *snd;
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

static int grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    char *q = realloc(*p, n);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
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
static int config_type(mw__str t, mw__om_type *type, int *native)
{
    static const char *const names[] = {"counter", "gauge", "histogram", "summary"};
    static const mw__om_type types[] = {MW_OM_COUNTER, MW_OM_GAUGE, MW_OM_HISTOGRAM, MW_OM_SUMMARY};
    *native = !t.p || str_eq(t, "native");
    if (*native)
        return 0;
    for (int i = 0; i < 4; i++)
        if (str_eq(t, names[i])) {
            *type = types[i];
            return 0;
        }
    return -1;
}

static int bad_type(mw__str t, const char *opt, mw__str key, char *err, size_t errlen)
{
    snprintf(err, errlen,
             "option '%s': type '%.*s' of '%.*s' is not one of counter, gauge, histogram, "
             "summary, native",
             opt, (int)(t.n > 40 ? 40 : t.n), t.p, (int)(key.n > 80 ? 80 : key.n), key.p);
    return -1;
}

static int compile_metrics(mw__om_scraper *sc, const mw__om_config *c, char *err, size_t errlen)
{
    sc->entries = calloc(c->nmetrics ? c->nmetrics : 1, sizeof(*sc->entries));
    if (!sc->entries || nameset_alloc(&sc->metrics, c->nmetrics) != 0)
        return snprintf(err, errlen, "out of memory"), -1;
    for (size_t i = 0; i < c->nmetrics; i++) {
        const mw__om_metric_spec *m = &c->metrics[i];
        metric_entry *en = &sc->entries[i];
        mw__str match = keep(sc, m->match);
        if (!match.p)
            return snprintf(err, errlen, "option 'metrics': entry %zu has no name", i + 1), -1;
        if (config_type(m->type, &en->type, &en->native) != 0)
            return bad_type(m->type, "metrics", m->match, err, errlen);
        if (nameset_add(&sc->metrics, match, i, c->globs, "metrics", err, errlen) != 0)
            return -1;
        /* V2: a pattern keeps each family's own name */
        if (m->rename.p && m->rename.n && !is_pattern(match, c->globs))
            en->rename = keep(sc, m->rename);
    }
    nameset_sort(&sc->metrics);
    return 0;
}

static int compile_names(mw__om_scraper *sc, nameset *set, const mw__str *v, size_t n, int globs,
                         const char *opt, char *err, size_t errlen)
{
    if (nameset_alloc(set, n) != 0)
        return snprintf(err, errlen, "out of memory"), -1;
    for (size_t i = 0; i < n; i++)
        if (nameset_add(set, keep(sc, v[i]), i, globs, opt, err, errlen) != 0)
            return -1;
    nameset_sort(set);
    return 0;
}

static int compile_overrides(mw__om_scraper *sc, const mw__om_config *c, char *err, size_t errlen)
{
    sc->override_types = calloc(c->noverrides ? c->noverrides : 1, sizeof(mw__om_type));
    if (!sc->override_types)
        return snprintf(err, errlen, "out of memory"), -1;
    for (size_t i = 0; i < c->noverrides; i++) {
        int native;
        if (config_type(c->override_types[i], &sc->override_types[i], &native) != 0 || native)
            return bad_type(c->override_types[i], "type_overrides", c->override_names[i], err,
                            errlen);
    }
    return compile_names(sc, &sc->overrides, c->override_names, c->noverrides, c->globs,
                         "type_overrides", err, errlen);
}

static int compile_labels(mw__om_scraper *sc, const mw__om_config *c, char *err, size_t errlen)
{
    sc->exclude_labels = keep_all(sc, c->exclude_labels, c->nexclude_labels);
    sc->include_labels = keep_all(sc, c->include_labels, c->ninclude_labels);
    sc->rename_from = keep_all(sc, c->rename_from, c->nrename_labels);
    sc->rename_to = keep_all(sc, c->rename_to, c->nrename_labels);
    sc->tags = keep_all(sc, c->tags, c->ntags);
    sc->tagv = calloc(MW_OM_MAX_LABELS + c->ntags, sizeof(*sc->tagv));
    if (!sc->exclude_labels || !sc->include_labels || !sc->rename_from || !sc->rename_to ||
        !sc->tags || !sc->tagv)
        return snprintf(err, errlen, "out of memory"), -1;
    sc->nexclude_labels = c->nexclude_labels;
    sc->ninclude_labels = c->ninclude_labels;
    sc->nrename = c->nrename_labels;
    sc->ntags = c->ntags;
    sc->label_rules = sc->nexclude_labels || sc->ninclude_labels || sc->nrename;
    sc->longest_label = sizeof("upper_bound");
    for (size_t i = 0; i < sc->nrename; i++) {
        if (sc->rename_to[i].n == 0)
            return snprintf(err, errlen, "option 'rename_labels': the new name of '%.*s' is empty",
                            (int)(sc->rename_from[i].n > 80 ? 80 : sc->rename_from[i].n),
                            sc->rename_from[i].p),
                   -1;
        if (sc->rename_to[i].n > sc->longest_label)
            sc->longest_label = sc->rename_to[i].n;
    }
    return 0;
}

mw__om_scraper *mw__om_scraper_new(const mw__om_config *c, char *err, size_t errlen)
{
    mw__om_scraper *sc = calloc(1, sizeof(*sc));
    if (!sc || !(sc->arena = malloc(config_bytes(c)))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    sc->ns = keep(sc, c->ns.p ? c->ns : (mw__str){"", 0});
    sc->prefix = keep(sc, c->raw_metric_prefix.p ? c->raw_metric_prefix : (mw__str){"", 0});
    sc->all_metrics = c->all_metrics;
    sc->buckets = c->collect_histogram_buckets;
    if (compile_metrics(sc, c, err, errlen) != 0 ||
        compile_names(sc, &sc->exclude, c->exclude_metrics, c->nexclude_metrics, c->globs,
                      "exclude_metrics", err, errlen) != 0 ||
        compile_overrides(sc, c, err, errlen) != 0 || compile_labels(sc, c, err, errlen) != 0)
        goto fail;
    return sc;
fail:
    mw__om_scraper_free(sc);
    return NULL;
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

static int build_names(mw__om_scraper *sc, mw__str base)
{
    size_t off = 0;
    if (grow(&sc->names, &sc->names_cap, 5 * (sc->ns.n + base.n + 16)) != 0)
        return -1;
    plan *pl = &sc->plan;
    pl->value = add_name(sc, &off, base, "");
    pl->count = add_name(sc, &off, base, ".count");
    pl->sum = add_name(sc, &off, base, ".sum");
    pl->bucket = add_name(sc, &off, base, ".bucket");
    pl->quantile = add_name(sc, &off, base, ".quantile");
    return 0;
}

/* The type a family is submitted as: the metrics entry's, else
 * type_overrides', else the exposition's. -1: out of memory. */
static int family_type(mw__om_scraper *sc, const metric_entry *en, mw__str name, mw__om_type native,
                       mw__om_type *type)
{
    long o = -1;
    *type = native;
    if (en && !en->native)
        *type = en->type;
    else if (sc->overrides.nexact || sc->overrides.npat)
        o = nameset_find(&sc->overrides, name, sc->z);
    if (o >= 0)
        *type = sc->override_types[o];
    return o == -2 ? -1 : 0;
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
    if (grow(&sc->z, &sc->z_cap, name.n + 1) != 0)
        goto oom;
    memcpy(sc->z, name.p, name.n);
    sc->z[name.n] = '\0';
    if (sc->exclude.nexact || sc->exclude.npat)
        i = nameset_find(&sc->exclude, name, sc->z);
    if (i != -1)
        return i == -2 ? (sc->r->rc = MW_ENOMEM, -1) : 0;
    if (!sc->all_metrics) {
        if ((i = nameset_find(&sc->metrics, name, sc->z)) < 0)
            return i == -2 ? (sc->r->rc = MW_ENOMEM, -1) : 0;
        en = &sc->entries[i];
    }
    sc->plan.native = f->type;
    if (family_type(sc, en, name, f->type, &sc->plan.type) != 0)
        goto oom;
    if (sc->plan.type == MW_OM_UNKNOWN || sc->plan.type == MW_OM_OTHER)
        return 0;
    if (build_names(sc, en && en->rename.p ? en->rename : name) != 0)
        goto oom;
    return 1;
oom:
    sc->r->rc = MW_ENOMEM;
    return -1;
}

/* Index of `name` in `v`, or -1. */
static long find_str(const mw__str *v, size_t n, mw__str name)
{
    for (size_t i = 0; i < n; i++)
        if (str_same(v[i], name))
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
        if (sc->plan.native == MW_OM_HISTOGRAM && str_eq(name, "le")) {
            name = (mw__str){"upper_bound", 11};
            canon = 1;
        } else if (sc->plan.native == MW_OM_SUMMARY && str_eq(name, "quantile")) {
            canon = 1;
        }
        if (sc->label_rules && !label_rule(sc, &name))
            continue;
        char *t = d;
        memcpy(d, name.p, name.n);
        d += name.n;
        *d++ = ':';
        d += canon        ? canon_number(l->value, d)
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
        if (str_eq(s->labels[i].name, "le")) {
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
    mw_code rc = sc->snd ? mw__sender_metric(sc->snd, type, *name, s->value, sc->tagv,
                                             (size_t)ntags, (mw__str){NULL, 0})
                         : MW_OK;
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

mw_code mw__om_submit(mw__om_scraper *sc, mw__sender *snd, const char *text, size_t len,
                      void (*tick)(void *), void *tick_ud, mw__om_result *r)
{
    mw__om_handler h = {.family = on_family, .sample = on_sample, .tick = NULL};
    mw__om_stats st;
    memset(r, 0, sizeof(*r));
    r->rc = MW_OK;
    sc->snd = snd;
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
    sc->snd = NULL;
    sc->r = NULL;
    return r->rc;
}

/* ------------------------------------------------------------- Lua: options */

#define FN_SUBMIT "mw.openmetrics.submit"

static int opt_error(lua_State *L, const char *key, const char *what)
{
    return luaL_error(L, FN_SUBMIT ": option '%s' %s", key, what);
}

/* An array of `n` items of `size` bytes, owned by a userdata left on the
 * stack (a raise frees it). */
static void *scratch(lua_State *L, size_t n, size_t size)
{
    void *p = lua_newuserdatauv(L, (n ? n : 1) * size, 0);
    memset(p, 0, (n ? n : 1) * size);
    return p;
}

/* Entries of the sequence at `idx`; raises when it is not a table whose
 * keys are exactly 1..n. */
static size_t list_len(lua_State *L, int idx, const char *key)
{
    size_t n = 0, len;
    if (lua_type(L, idx) != LUA_TTABLE)
        opt_error(L, key, "must be a list");
    len = (size_t)lua_rawlen(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        n++;
    }
    if (n != len)
        opt_error(L, key, "must be a list, not a map");
    return n;
}

static mw__str str_at(lua_State *L, int idx)
{
    mw__str s;
    s.p = lua_tolstring(L, idx, &s.n);
    return s;
}

/* A list of strings; the strings stay alive in the options table. */
static mw__str *read_strings(lua_State *L, int idx, const char *key, size_t *n)
{
    *n = list_len(L, idx, key);
    mw__str *v = scratch(L, *n, sizeof(*v));
    for (size_t i = 0; i < *n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, FN_SUBMIT ": option '%s': entry %d is a %s, not a string", key,
                       (int)i + 1, luaL_typename(L, -1));
        v[i] = str_at(L, -1);
        lua_pop(L, 1);
    }
    return v;
}

/* A map of strings to strings into `from` / `to`. */
static size_t read_string_map(lua_State *L, int idx, const char *key, mw__str **from, mw__str **to)
{
    size_t n = 0;
    if (lua_type(L, idx) != LUA_TTABLE)
        opt_error(L, key, "must be a map of strings");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        n++;
    }
    *from = scratch(L, n, sizeof(mw__str));
    *to = scratch(L, n, sizeof(mw__str));
    n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, FN_SUBMIT ": option '%s' must map strings to strings (found %s = %s)",
                       key, luaL_typename(L, -2), luaL_typename(L, -1));
        (*from)[n] = str_at(L, -2);
        (*to)[n++] = str_at(L, -1);
        lua_pop(L, 1);
    }
    return n;
}

/* Reads the optional string field `k` of the table on top into `out`. */
static void spec_field(lua_State *L, const char *name, const char *k, mw__str *out)
{
    int t = lua_getfield(L, -1, k);
    if (t == LUA_TSTRING)
        *out = str_at(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, FN_SUBMIT ": option 'metrics': field '%s' of '%s' must be a string", k, name);
    /* the string stays referenced by the table */
    lua_pop(L, 1);
}

/* One {name = rename | {name=, type=}} pair (key at -2, value at -1). */
static void read_spec(lua_State *L, mw__om_metric_spec *m)
{
    if (lua_type(L, -2) != LUA_TSTRING)
        luaL_error(L, FN_SUBMIT ": option 'metrics': a map entry's key must be a metric name");
    m->match = str_at(L, -2);
    if (lua_type(L, -1) == LUA_TSTRING) {
        m->rename = str_at(L, -1);
    } else if (lua_type(L, -1) == LUA_TTABLE) {
        spec_field(L, m->match.p, "name", &m->rename);
        spec_field(L, m->match.p, "type", &m->type);
    } else {
        luaL_error(L, FN_SUBMIT ": option 'metrics': the value of '%s' must be a string or a map",
                   m->match.p);
    }
}

static size_t spec_count(lua_State *L, int list, size_t n)
{
    size_t total = 0;
    for (size_t i = 1; i <= n; i++, lua_pop(L, 1)) {
        int t = lua_rawgeti(L, list, (lua_Integer)i);
        if (t == LUA_TSTRING) {
            total++;
            continue;
        }
        if (t != LUA_TTABLE)
            luaL_error(L, FN_SUBMIT ": option 'metrics': entry %d is a %s, not a name or a map",
                       (int)i, luaL_typename(L, -1));
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            total++;
        }
    }
    return total;
}

static void read_metrics(lua_State *L, int idx, mw__om_config *c)
{
    size_t n = list_len(L, idx, "metrics"), k = 0;
    size_t total = spec_count(L, idx, n);
    mw__om_metric_spec *v = scratch(L, total, sizeof(*v));
    for (size_t i = 1; i <= n; i++, lua_pop(L, 1)) {
        if (lua_rawgeti(L, idx, (lua_Integer)i) == LUA_TSTRING) {
            v[k++].match = str_at(L, -1);
            continue;
        }
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            read_spec(L, &v[k++]);
            lua_pop(L, 1);
        }
    }
    c->metrics = v;
    c->nmetrics = k;
    c->all_metrics = 0;
}

static int read_bool(lua_State *L, int idx, const char *key)
{
    if (lua_type(L, idx) != LUA_TBOOLEAN)
        opt_error(L, key, "must be true or false");
    return lua_toboolean(L, idx);
}

static mw__str read_string(lua_State *L, int idx, const char *key)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        opt_error(L, key, "must be a string");
    return str_at(L, idx);
}

/* Each reader takes the option's value at `idx` (an absolute index). */
typedef void (*opt_reader)(lua_State *L, int idx, const char *key, mw__om_config *c);

static void o_namespace(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    c->ns = read_string(L, idx, key);
}
static void o_prefix(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    c->raw_metric_prefix = read_string(L, idx, key);
}
static void o_metrics(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    (void)key;
    read_metrics(L, idx, c);
}
static void o_exclude_metrics(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    c->exclude_metrics = read_strings(L, idx, key, &c->nexclude_metrics);
}
static void o_exclude_labels(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    c->exclude_labels = read_strings(L, idx, key, &c->nexclude_labels);
}
static void o_include_labels(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    c->include_labels = read_strings(L, idx, key, &c->ninclude_labels);
}
static void o_rename_labels(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    mw__str *from, *to;
    c->nrename_labels = read_string_map(L, idx, key, &from, &to);
    c->rename_from = from;
    c->rename_to = to;
}
static void o_tags(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    c->tags = read_strings(L, idx, key, &c->ntags);
}
static void o_buckets(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    c->collect_histogram_buckets = read_bool(L, idx, key);
}
static void o_type_overrides(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    mw__str *names, *types;
    c->noverrides = read_string_map(L, idx, key, &names, &types);
    c->override_names = names;
    c->override_types = types;
}
static void o_globs(lua_State *L, int idx, const char *key, mw__om_config *c)
{
    c->globs = read_bool(L, idx, key);
}

static const struct {
    const char *key;
    opt_reader read;
} opt_readers[] = {
    {"namespace", o_namespace},
    {"raw_metric_prefix", o_prefix},
    {"metrics", o_metrics},
    {"exclude_metrics", o_exclude_metrics},
    {"exclude_labels", o_exclude_labels},
    {"include_labels", o_include_labels},
    {"rename_labels", o_rename_labels},
    {"tags", o_tags},
    {"collect_histogram_buckets", o_buckets},
    {"send_histograms_buckets", o_buckets},
    {"type_overrides", o_type_overrides},
    {"globs", o_globs},
};

/* Fills `c` from the options table at `idx`; arrays it needs are pushed
 * as userdata and must stay on the stack while `c` is used. */
static void read_opts(lua_State *L, int idx, mw__om_config *c)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t i = 0;
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, FN_SUBMIT ": option names must be strings (found a %s)",
                       luaL_typename(L, -2));
        const char *key = lua_tostring(L, -2);
        while (i < MW_ARRAY_LEN(opt_readers) && strcmp(key, opt_readers[i].key) != 0)
            i++;
        if (i == MW_ARRAY_LEN(opt_readers))
            luaL_error(L, FN_SUBMIT ": unknown option '%s'", key);
        int value = lua_gettop(L);
        opt_readers[i].read(L, value, key, c);
        /* keep what the reader pushed below the key for lua_next */
        lua_pushvalue(L, value - 1);
        lua_remove(L, value);
        lua_remove(L, value - 1);
    }
}

/* ------------------------------------------------------------- Lua: submit */

typedef struct scraper_box {
    mw__om_scraper *sc;
} scraper_box;

static int box_gc(lua_State *L)
{
    scraper_box *b = lua_touserdata(L, 1);
    mw__om_scraper_free(b->sc);
    b->sc = NULL;
    return 0;
}

static scraper_box *push_box(lua_State *L)
{
    scraper_box *b = lua_newuserdatauv(L, sizeof(*b), 0);
    b->sc = NULL;
    if (luaL_newmetatable(L, SCRAPER_MT)) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return b;
}

static void lua_tick(void *ud)
{
    mw__budget_poll(ud);
}

/* mw.warning's effect: counted for the run, logged with the check id. */
static void warn_skipped(lua_State *L, const char *fn, size_t skipped, size_t line, const char *why)
{
    mw__sandbox *sb = mw__sandbox_of(L);
    if (!sb)
        return;
    sb->warnings++;
    mw__log_write(sb->log, MW_LOG_WARN, sb->check_id,
                  "%s: skipped %zu malformed line(s) or sample(s); the first at line %zu: %s", fn,
                  skipped, line, why ? why : "?");
}

static int om_submit(lua_State *L)
{
    mw__om_config c;
    mw__om_result r;
    char err[256];
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    scraper_box *b = push_box(L);
    memset(&c, 0, sizeof(c));
    c.all_metrics = 1;
    c.collect_histogram_buckets = 1;
    if (!lua_isnil(L, 2))
        read_opts(L, 2, &c);
    b->sc = mw__om_scraper_new(&c, err, sizeof(err));
    if (!b->sc)
        return luaL_error(L, FN_SUBMIT ": %s", err);
    mw__sandbox *sb = mw__sandbox_of(L);
    mw__om_submit(b->sc, sb ? sb->sender : NULL, text, len, lua_tick, L, &r);
    mw__om_scraper_free(b->sc);
    b->sc = NULL;
    if (r.rc == MW_ENOMEM)
        return luaL_error(L,
                          FN_SUBMIT ": cannot buffer the samples (the run's samples reached its "
                                    "memory limit, or memory ran out) after %zu",
                          r.submitted);
    size_t skipped = r.malformed + r.rejected;
    if (skipped)
        warn_skipped(L, FN_SUBMIT, skipped, r.first_bad_line, r.first_bad_reason);
    lua_pushinteger(L, (lua_Integer)r.submitted);
    lua_pushinteger(L, (lua_Integer)skipped);
    return 2;
}

/* ------------------------------------------------------------- Lua: parse */

/* Stack slots of a parse: the result list, the current family's samples. */
typedef struct lparse {
    lua_State *L;
    int result, samples;
    lua_Integer nfam, nsamples;
} lparse;

static void push_unescaped(lua_State *L, mw__str s, int escaped)
{
    luaL_Buffer b;
    if (!escaped) {
        lua_pushlstring(L, s.p, s.n);
        return;
    }
    char *d = luaL_buffinitsize(L, &b, s.n);
    luaL_pushresultsize(&b, mw__om_unescape(s, d));
}

static const char *type_word(const mw__om_family *f)
{
    switch (f->type) {
    case MW_OM_COUNTER:
        return "counter";
    case MW_OM_GAUGE:
        return "gauge";
    case MW_OM_HISTOGRAM:
        return "histogram";
    case MW_OM_SUMMARY:
        return "summary";
    default:
        return f->type == MW_OM_OTHER ? NULL : "unknown";
    }
}

static void set_str(lua_State *L, const char *k, mw__str s, int escaped)
{
    if (!s.p)
        return;
    push_unescaped(L, s, escaped);
    lua_setfield(L, -2, k);
}

static int lp_family(void *ud, const mw__om_family *f)
{
    lparse *lp = ud;
    lua_State *L = lp->L;
    const char *t = type_word(f);
    lua_createtable(L, 0, 5);
    set_str(L, "name", f->name, 0);
    if (t)
        lua_pushstring(L, t);
    else
        lua_pushlstring(L, f->type_name.p, f->type_name.n);
    lua_setfield(L, -2, "type");
    set_str(L, "help", f->help, f->help.p && memchr(f->help.p, '\\', f->help.n));
    set_str(L, "unit", f->unit, 0);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "samples");
    lua_replace(L, lp->samples);
    lua_rawseti(L, lp->result, ++lp->nfam);
    lp->nsamples = 0;
    return 1;
}

static int lp_sample(void *ud, const mw__om_family *f, const mw__om_sample *s)
{
    lparse *lp = ud;
    lua_State *L = lp->L;
    (void)f;
    lua_createtable(L, 0, 3);
    lua_pushlstring(L, s->name.p, s->name.n);
    lua_setfield(L, -2, "name");
    lua_pushnumber(L, s->value);
    lua_setfield(L, -2, "value");
    lua_createtable(L, 0, (int)s->nlabels);
    for (size_t i = 0; i < s->nlabels; i++) {
        lua_pushlstring(L, s->labels[i].name.p, s->labels[i].name.n);
        push_unescaped(L, s->labels[i].value, s->labels[i].escaped);
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "labels");
    lua_rawseti(L, lp->samples, ++lp->nsamples);
    return 0;
}

static void lp_tick(void *ud)
{
    mw__budget_poll(((lparse *)ud)->L);
}

static int om_parse(lua_State *L)
{
    size_t len;
    mw__om_stats st;
    const char *text = luaL_checklstring(L, 1, &len);
    lua_settop(L, 1);
    lua_newtable(L);
    lua_pushnil(L);
    lparse lp = {.L = L, .result = 2, .samples = 3};
    mw__om_handler h = {.family = lp_family, .sample = lp_sample, .tick = lp_tick};
    mw__om_parse(text, len, &h, &lp, &st);
    if (st.malformed)
        warn_skipped(L, "mw.openmetrics.parse", st.malformed, st.first_bad_line,
                     st.first_bad_reason);
    lua_pushvalue(L, 2);
    lua_pushinteger(L, (lua_Integer)st.malformed);
    return 2;
}

/* ------------------------------------------------------------- Lua: table */

static const luaL_Reg om_funcs[] = {
    {"submit", om_submit},
    {"parse", om_parse},
    {NULL, NULL},
};

int mw__open_openmetrics(lua_State *L)
{
    lua_createtable(L, 0, 3);
    luaL_setfuncs(L, om_funcs, 0);
    lua_pushliteral(L, "mw.openmetrics");
    lua_setfield(L, -2, "__name");
    mw__push_readonly(L, -1);
    lua_remove(L, -2);
    return 1;
}
