/*
 * moonwatch.h - the public C API of the moonwatch engine.
 *
 * An engine discovers services, schedules sandboxed Lua check instances on
 * them and aggregates what they emit into records that reach sinks. All of
 * its state lives in its handle: two engines in one process share nothing.
 *
 * Ownership rules, everywhere in this header:
 *  - `const char *` arguments are borrowed for the duration of the call;
 *    the engine copies what it keeps.
 *  - Memory returned through a `char **` is the caller's, freed with
 *    mw_free().
 *  - `_free(NULL)` is a no-op.
 *  - Pointers inside a record handed to a sink callback are valid only
 *    during that callback.
 */
#ifndef MOONWATCH_H
#define MOONWATCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MW_BUILDING)
#define MW_API __attribute__((visibility("default")))
#else
#define MW_API
#endif

#define MW_VERSION "0.1.0"

/* Error codes. Only ever appended to. */
typedef enum mw_code {
    MW_OK = 0,
    MW_ENOMEM,    /* out of memory, or a memory cap was reached */
    MW_EINVAL,    /* invalid argument or configuration value */
    MW_EIO,       /* reading or writing a file or descriptor failed */
    MW_EPARSE,    /* a template, script or payload did not parse */
    MW_ENOTFOUND, /* no such check, instance or file */
    MW_ESTATE,    /* not allowed in the engine's current state */
    MW_ESYS,      /* a system call failed (see errno in the log) */
    MW_ETIMEOUT,  /* a time budget ran out */
    MW_ECHECK,    /* a check run failed */
} mw_code;

/* Static string describing `code`; never NULL. */
MW_API const char *mw_strerror(mw_code code);

/* Frees memory the engine handed to the caller. */
MW_API void mw_free(void *p);

/* ---------------------------------------------------------------- config */

typedef struct mw_config mw_config;

/* A configuration with every default set. Returns NULL on OOM. */
MW_API mw_config *mw_config_new(void);
MW_API void mw_config_free(mw_config *cfg);

/*
 * Sets one option by name, the same names as the YAML config file:
 *   flush_interval (seconds), log_level (debug|info|warn|error),
 *   log_format (text|json), hostname, checks_dir, templates_dir (both
 *   append), no_bundled (true|false), default_interval (seconds),
 *   check_timeout (seconds), check_memory_limit_mb, histogram_aggregates
 *   (comma list of max,median,avg,count,sum,min), histogram_percentiles
 *   (comma list of 0.95,...), context_expiry (seconds), sink (stdout|none).
 * On error returns MW_EINVAL and, when `err` is not NULL, a message the
 * caller frees with mw_free().
 */
MW_API mw_code mw_config_set(mw_config *cfg, const char *key, const char *value, char **err);

/* Loads a YAML config file (keys as for mw_config_set). Errors are
 * reported as "file:line:col: message" through `err`. */
MW_API mw_code mw_config_load_file(mw_config *cfg, const char *path, char **err);

/* ---------------------------------------------------------------- records */

typedef enum mw_record_type {
    MW_RECORD_METRIC = 0,
    MW_RECORD_SERVICE_CHECK,
    MW_RECORD_EVENT,
} mw_record_type;

/* The flushed kind of a metric, as in the Datadog series API. */
typedef enum mw_metric_kind {
    MW_KIND_GAUGE = 0,
    MW_KIND_COUNT,
    MW_KIND_RATE,
} mw_metric_kind;

/* What a check submits (the aggregation applied before the flush). */
typedef enum mw_metric_type {
    MW_GAUGE = 0,
    MW_COUNT,
    MW_RATE,
    MW_MONOTONIC_COUNT,
    MW_HISTOGRAM,
} mw_metric_type;

typedef enum mw_status {
    MW_STATUS_OK = 0,
    MW_STATUS_WARNING = 1,
    MW_STATUS_CRITICAL = 2,
    MW_STATUS_UNKNOWN = 3,
} mw_status;

/*
 * One flushed record. Fields that do not apply to `type` are NULL / 0.
 * metric: name, kind, value, interval; service_check: name, status,
 * message; event: title, text, alert_type, priority, aggregation_key,
 * source_type_name. All: timestamp (Unix seconds), tags, host, check,
 * check_id (NULL when not from a check).
 */
typedef struct mw_record {
    mw_record_type type;
    const char *name;
    mw_metric_kind kind;
    double value;
    double interval;
    int status;
    const char *message;
    const char *title;
    const char *text;
    const char *alert_type;
    const char *priority;
    const char *aggregation_key;
    const char *source_type_name;
    int64_t timestamp;
    const char *const *tags;
    size_t ntags;
    const char *host;
    const char *check;
    const char *check_id;
} mw_record;

/* Called once per record at each flush, on the flushing thread: the
 * engine's for periodic flushes, the caller's for mw_engine_flush(). */
typedef void (*mw_sink_fn)(const mw_record *rec, void *ud);

/* ---------------------------------------------------------------- engine */

typedef struct mw_engine mw_engine;

/* A new engine; `cfg` is copied. Returns NULL on error (with a message
 * through `err` when not NULL, freed with mw_free()). */
MW_API mw_engine *mw_engine_new(const mw_config *cfg, char **err);

/* Stops the engine if it runs, unschedules everything and frees it. */
MW_API void mw_engine_free(mw_engine *eng);

/* Adds a directory to search for `<name>.lua` checks / templates. Before
 * mw_engine_load(). */
MW_API mw_code mw_engine_add_checks_dir(mw_engine *eng, const char *dir);
MW_API mw_code mw_engine_add_templates_dir(mw_engine *eng, const char *dir);

/* Registers a sink. `ud` is passed back unchanged. */
MW_API mw_code mw_engine_add_sink(mw_engine *eng, mw_sink_fn fn, void *ud);

/* Loads templates and schedules the static configs. Problems with single
 * files are logged and skipped; returns MW_OK unless nothing could load. */
MW_API mw_code mw_engine_load(mw_engine *eng);

/* Runs the engine on a thread of its own until mw_engine_stop(). */
MW_API mw_code mw_engine_start(mw_engine *eng);
MW_API mw_code mw_engine_stop(mw_engine *eng);

/*
 * Alternatively, drive the engine from the host's loop: mw_engine_fd()
 * is a descriptor that becomes readable when the engine has work;
 * mw_engine_step() does the due work, waiting at most `timeout_ms`
 * (0: do not wait, -1: until something is due). Not while started.
 */
MW_API int mw_engine_fd(mw_engine *eng);
MW_API mw_code mw_engine_step(mw_engine *eng, int timeout_ms);

/* Flushes the aggregator to the sinks now. Thread-safe. */
MW_API mw_code mw_engine_flush(mw_engine *eng);

/* Submits a metric sample from C, as a check would. `tags` may be NULL
 * when `ntags` is 0; `host` NULL means the engine's hostname. Thread-safe. */
MW_API mw_code mw_engine_submit(mw_engine *eng, mw_metric_type type, const char *name, double value,
                                const char *const *tags, size_t ntags, const char *host);

/*
 * A prepared series for hosts that submit the same metric often: its
 * context key (name, sorted tags, host) is built once, so each
 * mw_series_submit() only updates the aggregator. Returns NULL on bad
 * arguments or OOM. The series must be freed before its engine; submitting
 * is thread-safe. An idle series' context still expires like any other
 * and comes back with the next submission.
 */
typedef struct mw_series mw_series;
MW_API mw_series *mw_series_new(mw_engine *eng, mw_metric_type type, const char *name,
                                const char *const *tags, size_t ntags, const char *host);
MW_API mw_code mw_series_submit(mw_series *s, double value);
MW_API void mw_series_free(mw_series *s);

/* ---------------------------------------------------------------- stats */

typedef struct mw_engine_stats {
    uint64_t instances; /* scheduled instances */
    uint64_t runs;      /* check runs finished */
    uint64_t errors;    /* runs that failed */
    uint64_t contexts;  /* live aggregator contexts */
    uint64_t flushes;
    uint64_t records;   /* records delivered to sinks */
    uint64_t lua_bytes; /* memory held by all sandboxes */
} mw_engine_stats;

typedef struct mw_instance_stats {
    uint64_t runs;
    uint64_t errors;
    uint64_t warnings;
    uint64_t samples;     /* samples emitted */
    double last_duration; /* seconds */
    double avg_duration;  /* seconds, over all runs */
    int64_t last_run;     /* Unix seconds of the last run's start */
    char last_error[256]; /* "" when the last run succeeded */
} mw_instance_stats;

MW_API mw_code mw_engine_stats_get(mw_engine *eng, mw_engine_stats *out);

/* Stats of the instance `check_id` ("<check>:<hash>"). Thread-safe. */
MW_API mw_code mw_engine_instance_stats(mw_engine *eng, const char *check_id,
                                        mw_instance_stats *out);

/* The ids of every scheduled instance, as a JSON array string the caller
 * frees with mw_free(). */
MW_API char *mw_engine_instances_json(mw_engine *eng);

#ifdef __cplusplus
}
#endif
#endif /* MOONWATCH_H */
