/*
 * openmetrics.h - the Prometheus text format (0.0.4) and OpenMetrics 1.0
 * parser, and the scraper that submits what it parses into an instance's
 * sender with the names and types of Datadog's OpenMetrics V2 check
 * (OpenMetricsBaseCheckV2).
 *
 * Parser: zero-copy. Every string it hands out (mw__str) points into the
 * caller's text and is valid as long as the text is; label values keep
 * their backslash escapes (mw__om_unescape() removes them). It allocates
 * nothing, so a callback may longjmp out of it (a Lua error). A malformed
 * line is counted and skipped, never fatal. Timestamps, exemplars and
 * comments are ignored; `# EOF` ends the exposition.
 *
 * Families follow the prometheus_client parser that V2 uses: a family
 * starts at a HELP/TYPE/UNIT line or at a sample that does not belong to
 * the family before it (such a sample opens an untyped family of its own
 * name). A counter family's name has no "_total" (`# TYPE x_total counter`
 * is family `x`). A family's samples are its name plus the suffixes its
 * type allows (counter: _total, _created; histogram: _bucket, _count,
 * _sum, _created; summary: _count, _sum, _created).
 *
 * Scraper (mw__om_scraper): compiled options plus scratch buffers, owned
 * by its creator and freed with mw__om_scraper_free(). The options are
 * copied; nothing of the config is borrowed after mw__om_scraper_new().
 * What it submits, per family (decided once per family, not per series):
 *   counter    <ns>.<name>.count   monotonic_count (the _total series)
 *   gauge      <ns>.<name>         gauge
 *   histogram  <ns>.<name>.bucket  monotonic_count, tag upper_bound:<le>
 *                                  (not the +Inf bucket), .sum / .count
 *                                  monotonic_count
 *   summary    <ns>.<name>.quantile gauge, tag quantile:<q>; .sum / .count
 *                                  monotonic_count
 *   untyped and other types: nothing, unless a type is configured.
 * _created series are never submitted; NaN and ±Inf values are skipped.
 * Labels become tags "label:value" (`le` becomes `upper_bound`; le and
 * quantile values are written as Python writes floats: "1.0", "0.005").
 *
 * Threads: a scraper is used by one thread at a time.
 */
#ifndef MW_OPENMETRICS_H
#define MW_OPENMETRICS_H

#include "core/sender.h"

#include <lua.h>
#include <stddef.h>

/* Labels one sample may carry; a line with more is malformed. */
#define MW_OM_MAX_LABELS 128
/* Lines between two calls of a handler's tick(). */
#define MW_OM_TICK_LINES 4096

typedef enum mw__om_type {
    MW_OM_UNKNOWN = 0, /* no TYPE, "untyped" or "unknown" */
    MW_OM_COUNTER,
    MW_OM_GAUGE,
    MW_OM_HISTOGRAM,
    MW_OM_SUMMARY,
    MW_OM_OTHER, /* info, stateset, gaugehistogram: parsed, never submitted */
} mw__om_type;

/* Which series of its family a sample is. */
typedef enum mw__om_part {
    MW_OM_VALUE = 0, /* the family's own name (a counter's in format 0.0.4) */
    MW_OM_TOTAL,     /* <counter>_total */
    MW_OM_CREATED,   /* <family>_created */
    MW_OM_BUCKET,
    MW_OM_COUNT,
    MW_OM_SUM,
    MW_OM_EXTRA, /* another suffix, of an MW_OM_OTHER family */
} mw__om_part;

typedef struct mw__om_family {
    mw__str name;      /* family name (a counter's without "_total") */
    mw__str help;      /* as written, escapes kept; p == NULL: no HELP */
    mw__str unit;      /* p == NULL: no UNIT */
    mw__str type_name; /* as written in TYPE; p == NULL: no TYPE */
    mw__om_type type;
    size_t line; /* 1-based line where it starts */
} mw__om_family;

typedef struct mw__om_label {
    mw__str name;
    mw__str value; /* between the quotes, escapes kept */
    int escaped;   /* value holds a backslash escape */
} mw__om_label;

typedef struct mw__om_sample {
    mw__str name;
    mw__om_part part;
    const mw__om_label *labels;
    size_t nlabels;
    double value; /* NaN and ±Inf as written */
    size_t line;
} mw__om_sample;

/*
 * What the parser calls. family() runs once per family, before its first
 * sample (or at its end when it has none): return 1 to get its samples,
 * 0 to skip them (their lines are then not validated past the name), a
 * negative number to stop. sample() returns 0 to go on, else stops.
 * malformed() (may be NULL) gets each bad line with a static reason.
 * tick() (may be NULL) runs every MW_OM_TICK_LINES lines.
 */
typedef struct mw__om_handler {
    int (*family)(void *ud, const mw__om_family *f);
    int (*sample)(void *ud, const mw__om_family *f, const mw__om_sample *s);
    void (*malformed)(void *ud, size_t line, const char *reason);
    void (*tick)(void *ud);
} mw__om_handler;

typedef struct mw__om_stats {
    size_t lines;     /* lines read */
    size_t families;  /* families seen */
    size_t samples;   /* samples given to sample() */
    size_t malformed; /* lines skipped as malformed */
    size_t first_bad_line;
    const char *first_bad_reason; /* static; NULL when none */
} mw__om_stats;

/* Parses `len` bytes of `text` (no NUL needed). Fills `st` (may be NULL).
 * Returns 0, or 1 when a callback stopped it. */
int mw__om_parse(const char *text, size_t len, const mw__om_handler *h, void *ud, mw__om_stats *st);

/* Writes `in` without its escapes (\\ \" \n) to `out`, which has room for
 * in.n bytes; returns the length written. */
size_t mw__om_unescape(mw__str in, char *out);

/* Parses a sample value: a number, NaN, +Inf, -Inf (any case). Returns 0,
 * or -1 when `s` is not one. */
int mw__om_parse_value(mw__str s, double *out);

/* Writes `v` as Python's str(float) does ("1.0", "0.005", "1e-05",
 * "inf"), 0 and -0 as "0". `out` holds at least 32 bytes; returns the
 * length. */
size_t mw__om_format_float(double v, char *out);

/* ------------------------------------------------------------- scraper */

typedef struct mw__om_scraper mw__om_scraper;

/* One entry of `metrics`: a name, a regular expression (POSIX extended,
 * searched anywhere in the name, as V2's re.search; `(?:` and `\d` are
 * accepted) or, with `globs`, a shell glob matching the whole name. A
 * string is a pattern when it holds a character Python's re.escape would
 * escape (a glob: one of `*?[`). `rename` (exact names only) replaces the
 * name; `type` (counter|gauge|histogram|summary|native) replaces the
 * exposition's. p == NULL: not given. */
typedef struct mw__om_metric_spec {
    mw__str match;
    mw__str rename;
    mw__str type;
} mw__om_metric_spec;

typedef struct mw__om_config {
    mw__str ns;                /* namespace: "<ns>." prefixes every name; may be empty */
    mw__str raw_metric_prefix; /* removed from family names before anything else */
    int all_metrics;           /* 1: every family, `metrics` unused */
    const mw__om_metric_spec *metrics;
    size_t nmetrics;
    const mw__str *exclude_metrics; /* names or patterns, as `metrics` */
    size_t nexclude_metrics;
    const mw__str *exclude_labels;
    size_t nexclude_labels;
    const mw__str *include_labels; /* non-empty: only these labels */
    size_t ninclude_labels;
    const mw__str *rename_from, *rename_to; /* rename_labels */
    size_t nrename_labels;
    const mw__str *tags; /* added to every metric */
    size_t ntags;
    const mw__str *override_names, *override_types; /* type_overrides */
    size_t noverrides;
    int collect_histogram_buckets; /* V1: send_histograms_buckets */
    int globs; /* V1 pattern syntax for metrics, exclude_metrics, type_overrides */
} mw__om_config;

/* Compiles `c`. Returns NULL with a message naming the option in `err`
 * (`errlen` bytes) when an option is bad, or on OOM. */
mw__om_scraper *mw__om_scraper_new(const mw__om_config *c, char *err, size_t errlen);
void mw__om_scraper_free(mw__om_scraper *sc);

typedef struct mw__om_result {
    size_t submitted; /* samples the sender took */
    size_t nonfinite; /* samples skipped for a NaN or ±Inf value */
    size_t rejected;  /* samples the sender refused (too many tags, a NUL, a long name) */
    size_t malformed; /* lines skipped as malformed */
    size_t first_bad_line;
    const char *first_bad_reason; /* static; NULL when none */
    size_t families;              /* families seen */
    mw_code rc; /* MW_ENOMEM: the sender's run buffer is full (or OOM); submission stopped */
} mw__om_result;

/*
 * Parses `text` and submits the selected families into `snd` (NULL:
 * count only). `tick` (may be NULL) runs every MW_OM_TICK_LINES lines
 * with `tick_ud`; it may longjmp, nothing is leaked (the scraper holds
 * all scratch memory). Returns r->rc.
 */
mw_code mw__om_submit(mw__om_scraper *sc, mw__sender *snd, const char *text, size_t len,
                      void (*tick)(void *), void *tick_ud, mw__om_result *r);

/* ------------------------------------------------------------- Lua */

/*
 * Pushes the read-only `mw.openmetrics` table (for lua/api.c):
 *   submit(text [, opts]) -> submitted, skipped
 *     opts: namespace, raw_metric_prefix, metrics, exclude_metrics,
 *     exclude_labels, include_labels, rename_labels, tags,
 *     collect_histogram_buckets (alias send_histograms_buckets),
 *     type_overrides, globs. A bad option raises, naming it. Samples go
 *     to the sandbox's sender; skipped = malformed lines + refused
 *     samples, reported once per call as a warning (mw.warning).
 *   parse(text) -> {{name=, type=, help=, unit=, samples={{name=,
 *     labels={...}, value=}, ...}}, ...}, skipped
 */
int mw__open_openmetrics(lua_State *L);

#endif
