/*
 * openmetrics_scrape.h - the scraper that submits a parsed exposition to
 * a check's sample destination (lua/samples.h) with the names and types
 * of Datadog's OpenMetrics V2 check (OpenMetricsBaseCheckV2).
 *
 * A scraper (mw__om_scraper) is compiled options plus scratch buffers,
 * owned by its creator and freed with mw__om_scraper_free(). The options
 * are copied; nothing of the config is borrowed after mw__om_scraper_new().
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
#ifndef MW_OPENMETRICS_SCRAPE_H
#define MW_OPENMETRICS_SCRAPE_H

#include "lua/openmetrics_parse.h"
#include "lua/samples.h"

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
 * Parses `text` and submits the selected families to `out` (NULL, or
 * NULL ops: count only). `tick` (may be NULL) runs every MW_OM_TICK_LINES lines
 * with `tick_ud`; it may longjmp, nothing is leaked (the scraper holds
 * all scratch memory). Returns r->rc.
 */
mw_code mw__om_submit(mw__om_scraper *sc, const mw__sample_out *out, const char *text, size_t len,
                      void (*tick)(void *), void *tick_ud, mw__om_result *r);

#endif
