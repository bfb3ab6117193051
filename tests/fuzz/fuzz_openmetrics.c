/*
 * fuzz_openmetrics.c - libFuzzer target: Prometheus text 0.0.4 and
 * OpenMetrics 1.0 expositions through the parser (lua/openmetrics_parse.h)
 * and the scraper that submits what it parses (lua/openmetrics_scrape.h).
 *
 * Byte 0 picks one of four scraper configs (its low 2 bits: every family
 * under a namespace; names, regular expressions, renames, label rules and
 * type overrides; shell globs with a raw prefix and kept labels; no
 * namespace, buckets off) and what the checking handler's family() answers
 * (bits 2-3: every family; only those with an even-length name; stop at
 * the third family; none). The rest is the exposition, copied to a buffer
 * of its exact size so that a read past its end is caught.
 *
 * Parser properties: every span handed out lies in the text; names are
 * metric names, label names label names; a value without escapes holds no
 * backslash and mw__om_unescape() never lengthens one; a sample comes
 * after its family's family() call, on a line not before the previous
 * sample's, as the part of its family its name says (the name plus the
 * part's suffix); a finite value printed by mw__om_format_float() reads
 * back exactly; the stats count what the handler saw, and the parse says
 * it was stopped exactly when the handler stopped it.
 * Scraper properties: submitting succeeds; what a sender refuses is
 * counted as refused, so with and without a sender the same samples are
 * taken into account; the committed samples go into an aggregator that is
 * freed with the input.
 */
#include "core/pipeline/aggregator.h"
#include "core/pipeline/sender.h"
#include "lua/openmetrics_parse.h"
#include "lua/openmetrics_scrape.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S(s) ((mw__str){s, sizeof(s) - 1})

enum { WANT_ALL, WANT_EVEN, WANT_STOP_THIRD, WANT_NONE };

typedef struct seen {
    const char *text, *end;
    int mode;
    size_t families, samples, malformed, first_bad, last_line, nlines;
    int stopped, announced;
    mw__om_family cur;
} seen;

static void within(const seen *w, mw__str s)
{
    if (s.p && (s.p < w->text || s.p + s.n > w->end))
        abort();
}

static int name_ok(mw__str s, int label)
{
    static const char first[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:";
    if (s.n == 0 || !memchr(first, s.p[0], label ? sizeof(first) - 2 : sizeof(first) - 1))
        return 0;
    for (size_t i = 1; i < s.n; i++)
        if (!memchr(first, s.p[i], label ? sizeof(first) - 2 : sizeof(first) - 1) &&
            !(s.p[i] >= '0' && s.p[i] <= '9'))
            return 0;
    return 1;
}

static int on_family(void *ud, const mw__om_family *f)
{
    seen *w = ud;
    within(w, f->name);
    within(w, f->help);
    within(w, f->unit);
    within(w, f->type_name);
    if (!name_ok(f->name, 0) || f->line < 1 || f->line > w->nlines)
        abort();
    w->families++;
    w->cur = *f;
    w->announced = 1;
    switch (w->mode) {
    case WANT_EVEN:
        return f->name.n % 2 == 0;
    case WANT_STOP_THIRD:
        if (w->families == 3) {
            w->stopped = 1;
            return -1;
        }
        return 1;
    case WANT_NONE:
        return 0;
    default:
        return 1;
    }
}

/* The name a sample of part `part` has in family `f`. */
static int part_name_ok(const mw__om_family *f, const mw__om_sample *s)
{
    static const char *const suffix[] = {
        [MW_OM_VALUE] = "",         [MW_OM_TOTAL] = "_total", [MW_OM_CREATED] = "_created",
        [MW_OM_BUCKET] = "_bucket", [MW_OM_COUNT] = "_count", [MW_OM_SUM] = "_sum",
    };
    if (s->name.n < f->name.n || memcmp(s->name.p, f->name.p, f->name.n) != 0)
        return 0;
    if (s->part == MW_OM_EXTRA)
        return f->type == MW_OM_OTHER && s->name.n > f->name.n + 1 && s->name.p[f->name.n] == '_';
    size_t k = strlen(suffix[s->part]);
    return s->name.n == f->name.n + k && memcmp(s->name.p + f->name.n, suffix[s->part], k) == 0;
}

static void check_label(const seen *w, const mw__om_label *l)
{
    char buf[4096];
    within(w, l->name);
    within(w, l->value);
    if (!name_ok(l->name, 1))
        abort();
    if (!l->escaped && memchr(l->value.p, '\\', l->value.n))
        abort();
    if (l->value.n <= sizeof(buf) && mw__om_unescape(l->value, buf) > l->value.n)
        abort();
}

static void check_value(double v)
{
    char buf[64];
    double back;
    if (!isfinite(v))
        return;
    size_t n = mw__om_format_float(v, buf);
    if (n == 0 || n >= 40 || mw__om_parse_value((mw__str){buf, n}, &back) != 0 || back != v)
        abort(); /* printed as Python does, and read back exactly */
}

static int on_sample(void *ud, const mw__om_family *f, const mw__om_sample *s)
{
    seen *w = ud;
    within(w, s->name);
    if (!w->announced || f->name.p != w->cur.name.p || f->name.n != w->cur.name.n)
        abort(); /* after its family() */
    if (w->mode == WANT_NONE || (w->mode == WANT_EVEN && f->name.n % 2))
        abort(); /* of a family that was not wanted */
    if (!name_ok(s->name, 0) || !part_name_ok(f, s) || s->nlabels > MW_OM_MAX_LABELS)
        abort();
    if (s->line < w->last_line || s->line > w->nlines)
        abort();
    w->last_line = s->line;
    for (size_t i = 0; i < s->nlabels; i++)
        check_label(w, &s->labels[i]);
    check_value(s->value);
    w->samples++;
    return 0;
}

static void on_malformed(void *ud, size_t line, const char *reason)
{
    seen *w = ud;
    if (!reason || !reason[0] || line < 1 || line > w->nlines)
        abort();
    if (!w->malformed++)
        w->first_bad = line;
}

static void check_parse(const char *text, size_t len, int mode)
{
    mw__om_handler h = {.family = on_family, .sample = on_sample, .malformed = on_malformed};
    seen w = {.text = text, .end = text + len, .mode = mode, .nlines = 1};
    mw__om_stats st;
    for (size_t i = 0; i < len; i++)
        w.nlines += text[i] == '\n';
    int rc = mw__om_parse(text, len, &h, &w, &st);
    if (rc != w.stopped || st.families != w.families || st.samples != w.samples ||
        st.malformed != w.malformed || st.first_bad_line != w.first_bad || st.lines > w.nlines)
        abort();
    if ((st.first_bad_reason != NULL) != (w.malformed > 0))
        abort();
}

/* ---- the scraper ---- */

static const mw__om_metric_spec metrics1[] = {
    {S("go_goroutines"), S("goroutines"), {NULL, 0}},
    {S("^process_(?:cpu|open)_\\w+"), {NULL, 0}, {NULL, 0}},
    {S("http_requests"), {NULL, 0}, S("counter")},
    {S("\\d+_seconds$"), {NULL, 0}, S("native")},
    {S("summary"), S("renamed"), S("summary")},
    {S("histo[a-z]*"), {NULL, 0}, S("histogram")},
};
static const mw__str exclude1[] = {S("process_open_fds"), S("^go_gc_.*")};
static const mw__str exclude_labels1[] = {S("instance"), S("job")};
static const mw__str rename_from1[] = {S("code"), S("le")};
static const mw__str rename_to1[] = {S("status_code"), S("bound")};
static const mw__str tags1[] = {S("env:fuzz"), S("team:core")};
static const mw__str override_names1[] = {S("untyped_thing"), S("^legacy_.*")};
static const mw__str override_types1[] = {S("gauge"), S("counter")};

static const mw__om_metric_spec metrics2[] = {
    {S("cpu_*"), {NULL, 0}, {NULL, 0}},
    {S("?emory_[a-z]*"), {NULL, 0}, S("gauge")},
    {S("[!x]*_total"), {NULL, 0}, {NULL, 0}},
    {S("load1"), S("load.1"), {NULL, 0}},
};
static const mw__str include_labels2[] = {S("cpu"), S("mode"), S("le"), S("quantile")};
static const mw__str override_names3[] = {S("*_info"), S("[a-m]*")};
static const mw__str override_types3[] = {S("gauge"), S("counter")};

static mw__om_config config_of(int which)
{
    mw__om_config c;
    memset(&c, 0, sizeof(c));
    c.collect_histogram_buckets = 1;
    switch (which) {
    case 0:
        c.ns = S("app");
        c.all_metrics = 1;
        break;
    case 1:
        c.ns = S("svc");
        c.metrics = metrics1;
        c.nmetrics = sizeof(metrics1) / sizeof(metrics1[0]);
        c.exclude_metrics = exclude1;
        c.nexclude_metrics = 2;
        c.exclude_labels = exclude_labels1;
        c.nexclude_labels = 2;
        c.rename_from = rename_from1;
        c.rename_to = rename_to1;
        c.nrename_labels = 2;
        c.tags = tags1;
        c.ntags = 2;
        c.override_names = override_names1;
        c.override_types = override_types1;
        c.noverrides = 2;
        break;
    case 2:
        c.ns = S("node");
        c.raw_metric_prefix = S("node_");
        c.globs = 1;
        c.metrics = metrics2;
        c.nmetrics = sizeof(metrics2) / sizeof(metrics2[0]);
        c.include_labels = include_labels2;
        c.ninclude_labels = 4;
        break;
    default:
        c.all_metrics = 1;
        c.globs = 1;
        c.collect_histogram_buckets = 0;
        c.override_names = override_names3;
        c.override_types = override_types3;
        c.noverrides = 2;
        break;
    }
    return c;
}

static void check_submit(const char *text, size_t len, int which)
{
    mw__agg_opts ao = {.flush_interval = 15, .context_expiry = 3600, .host = "h"};
    mw__sender_opts so = {.check = "openmetrics", .check_id = "openmetrics:1"};
    mw__om_config c = config_of(which);
    mw__om_result with, without;
    char err[256];

    mw__om_scraper *sc = mw__om_scraper_new(&c, err, sizeof(err));
    mw__aggregator *agg = mw__agg_new(&ao);
    mw__sender *snd = agg ? mw__sender_new(agg, &so) : NULL;
    if (!sc || !snd)
        abort(); /* the configs are good */
    mw__sample_out out = mw__sender_out(snd);
    if (mw__om_submit(sc, &out, text, len, NULL, NULL, &with) != MW_OK ||
        mw__om_submit(sc, NULL, text, len, NULL, NULL, &without) != MW_OK)
        abort();
    if (with.submitted + with.rejected != without.submitted + without.rejected ||
        with.malformed != without.malformed || with.families != without.families ||
        with.nonfinite != without.nonfinite)
        abort();
    mw__sender_commit(snd, 1000);
    mw__sender_free(snd);
    mw__agg_free(agg);
    mw__om_scraper_free(sc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t len = size - 1;
    char *text = malloc(len ? len : 1);
    if (!text)
        abort();
    memcpy(text, data + 1, len);
    check_parse(text, len, (data[0] >> 2) & 3);
    check_submit(text, len, data[0] & 3);
    free(text);
    return 0;
}
