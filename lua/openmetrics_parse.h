/*
 * openmetrics_parse.h - the Prometheus text format (0.0.4) and OpenMetrics
 * 1.0 parser, and the value helpers the scraper and the binding share.
 *
 * Zero-copy: every string it hands out (mw__str) points into the
 * caller's text and is valid as long as the text is; label values keep
 * their backslash escapes (mw__om_unescape() removes them). It allocates
 * nothing, so a callback may longjmp out of it (a Lua error). A malformed
 * line is counted and skipped, never fatal. Timestamps, exemplars and
 * comments are ignored; `# EOF` ends the exposition.
 *
 * Families follow the prometheus_client parser that Datadog's V2 check
 * uses: a family starts at a HELP/TYPE/UNIT line or at a sample that does
 * not belong to the family before it (such a sample opens an untyped
 * family of its own name). A counter family's name has no "_total"
 * (`# TYPE x_total counter` is family `x`). A family's samples are its
 * name plus the suffixes its type allows (counter: _total, _created;
 * histogram: _bucket, _count, _sum, _created; summary: _count, _sum,
 * _created).
 *
 * Nothing here holds state; any thread may call it.
 */
#ifndef MW_OPENMETRICS_PARSE_H
#define MW_OPENMETRICS_PARSE_H

#include "core/base/util.h"

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

/* The canonical text of an le / quantile label value, as V2 writes
 * str(float(value)): "1" -> "1.0", "0.250" -> "0.25"; text that is no
 * number is copied as is. `out` holds s.n + 32 bytes; returns the length. */
size_t mw__om_canon_value(mw__str s, char *out);

#endif
