/*
 * openmetrics_parse.c - the Prometheus text format (0.0.4) and OpenMetrics
 * 1.0 line parser, and the value helpers the scraper shares (see
 * openmetrics_parse.h). No Lua and no engine here: text in, callbacks
 * out.
 *
 * Ownership: the parser allocates nothing and hands out spans of the
 * caller's text.
 */
#include "lua/openmetrics_parse.h"

#include "core/base/util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest value token handed to strtod(). */
#define MAX_NUMBER 63

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

/* Python's repr(float): the shortest digits that read back as `v`, fixed
 * notation for decimal exponents -4 < decpt <= 16, else d.ddde+XX. */
size_t mw__om_format_float(double v, char *out)
{
    char buf[40], digits[20];
    int prec, nd = 0, exp10;
    size_t n = 0;
    if (isnan(v))
        return mw__putstr(out, "nan");
    if (isinf(v))
        return mw__putstr(out, v < 0 ? "-inf" : "inf");
    if (v == 0)
        return mw__putstr(out, "0");
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
            n += mw__putstr(out + n, "0.");
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
        return mw__putstr(out, "0");
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
        n += mw__putstr(out + n, "0.");
    }
    memcpy(out + n, fp, fl);
    return n + fl;
}

size_t mw__om_canon_value(mw__str s, char *out)
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
    if (mw__str_eq(s, b))
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
        if (mw__str_is(word, type_names[i].name)) {
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
    if (!c->open || c->nsamples || !mw__str_eq(c->decl, name))
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
    if (mw__str_is(word, "EOF")) {
        P->stop = 2;
        return;
    }
    for (int k = 0; k < 3; k++) {
        if (!mw__str_is(word, kw[k]))
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
