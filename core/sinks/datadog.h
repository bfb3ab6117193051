/*
 * datadog.h - Datadog intake payloads built from flushed records: the
 * v1 series (/api/v1/series), service checks (/api/v1/check_run) and
 * events (/api/v1/events, one event per payload), as JSON compressed
 * with zlib (Content-Encoding: deflate).
 *
 * A builder is fed the records of one flush, then finished; each payload
 * it completes on the way is compressed on a thread of the builder's own
 * (while the next one is written) and handed, in order, to `emit`, which
 * takes it over; emit is called on that thread. A
 * series or check_run payload is cut when its JSON would pass
 * `max_json` bytes; that bound is kept small enough that even
 * incompressible JSON stays under the intake's compressed limit
 * (MW_DD_MAX_COMPRESSED), and far under its uncompressed one
 * (62,914,560 bytes for series).
 *
 * Ownership: the builder copies what it keeps of its options (host,
 * tags). A mw__dd_payload is malloc'd and freed with mw__dd_payload_free()
 * by whoever holds it last. Feeding is not thread-safe: one flushing
 * thread at a time (the engine holds its flush lock).
 */
#ifndef MW_SINKS_DATADOG_H
#define MW_SINKS_DATADOG_H

#include "moonwatch.h"

#include <stddef.h>

/* The series intake's limit on a compressed payload, bytes. */
#define MW_DD_MAX_COMPRESSED 3200000u
/* Default cut of a payload's JSON: under MW_DD_MAX_COMPRESSED even when
 * deflate cannot shrink it (deflate adds at most ~0.03% then). */
#define MW_DD_MAX_JSON 3000000u

typedef enum mw__dd_kind {
    MW_DD_SERIES = 0,
    MW_DD_CHECK_RUN,
    MW_DD_EVENT,
} mw__dd_kind;

typedef struct mw__dd_payload {
    struct mw__dd_payload *prev, *next; /* the forwarder's queue */
    mw__dd_kind kind;
    char *body; /* zlib-compressed JSON */
    size_t len;
    size_t json_len; /* before compression */
    size_t items;    /* points, service checks or events in it */
    unsigned attempts;
    int in_flight;
} mw__dd_payload;

/* The intake path of a payload kind ("/api/v1/series" ...). */
const char *mw__dd_path(mw__dd_kind kind);
void mw__dd_payload_free(mw__dd_payload *p);

typedef struct mw__dd_builder_opts {
    const char *host;        /* for records without one */
    const char *const *tags; /* added to every record (DD_TAGS) */
    size_t ntags;
    size_t max_json;                           /* 0: MW_DD_MAX_JSON */
    int level;                                 /* zlib level; 0: 1 (fast) */
    void (*emit)(void *ud, mw__dd_payload *p); /* takes `p`; on the compressor */
    void *ud;
    /* A record whose JSON alone passes max_json is dropped and counted
     * here (may be NULL). */
    void (*too_large)(void *ud, size_t items);
} mw__dd_builder_opts;

typedef struct mw__dd_builder mw__dd_builder;

/* MW_OK, MW_ENOMEM, MW_ESYS when its thread cannot start. */
mw_code mw__dd_builder_new(const mw__dd_builder_opts *o, mw__dd_builder **out);
void mw__dd_builder_free(mw__dd_builder *b);

/* Adds one record; completes a payload when the next one would pass the
 * cut. MW_OK; MW_EINVAL for a record that cannot be written (not finite,
 * too large: counted through too_large); MW_ENOMEM. */
mw_code mw__dd_builder_add(mw__dd_builder *b, const mw_record *rec);

/* Completes the payloads being built and returns once every payload of
 * the flush was emitted (what could not be compressed is lost and
 * counted through too_large). MW_OK. */
mw_code mw__dd_builder_finish(mw__dd_builder *b);

#endif
