/*
 * docker_events.h - the Docker Engine `/events` stream, decoded: bytes as
 * they arrive → lines → events, and what a reconnect needs to resume.
 *
 * Three independent pieces, none of which does I/O:
 *
 * - mw__docker_lines splits a byte stream fed in arbitrary chunks (as
 *   libcurl's write callback delivers it) into lines. It tolerates "\r\n",
 *   skips RFC 7464 record separators (0x1E) at line starts, and never holds
 *   more than its cap: a longer line is reported once and dropped up to
 *   the next '\n'. It owns its buffer.
 *
 * - mw__docker_event_parse() turns one line into a mw__docker_event. The
 *   event owns the parsed cJSON tree and its split action; every other
 *   string in it points into that tree and lives until
 *   mw__docker_event_free(). Both shapes are accepted: API < 1.52 adds
 *   `status`, `id` and `from`, which repeat Action, Actor.ID and the image
 *   and are ignored; 1.52+ carries only Type, Action and Actor.
 *
 * - mw__docker_resume keeps the watermark of applied events: the `since`
 *   to reconnect with, and the keys of the events applied at exactly that
 *   timeNano, which the daemon sends again because `since` is inclusive.
 *   It holds no heap memory.
 */
#ifndef MW_DOCKER_EVENTS_H
#define MW_DOCKER_EVENTS_H

#include "moonwatch.h"
#include "core/base/buf.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* The default cap on one event line. Real events are under 4 KiB; a
 * container with many long labels stays far below this. */
#define MW_DOCKER_LINE_MAX (1024 * 1024)

/*
 * Called once per line. On a good line `line` is its text, without the
 * '\n' or a trailing '\r', NUL-terminated, borrowed for the call only, and
 * `err` is NULL. On a line that could not be kept (over the cap, or cut by
 * the end of the stream) `line` is NULL and `err` says why. Returning
 * anything but MW_OK stops the feed, which returns that code.
 */
typedef mw_code (*mw__docker_line_fn)(void *ud, const char *line, size_t len, const char *err);

typedef struct mw__docker_lines {
    mw__buf line; /* the line so far, across chunks */
    int skipping; /* over the cap: drop bytes up to the next '\n' */
} mw__docker_lines;

/* An empty splitter keeping at most `max` bytes of one line. */
void mw__docker_lines_init(mw__docker_lines *s, size_t max);
/* Frees the buffer; the splitter is left empty and can be fed again. */
void mw__docker_lines_free(mw__docker_lines *s);

/*
 * Feeds `n` bytes, calling `fn` for each line they complete. Returns
 * MW_OK, MW_ENOMEM when memory runs out below the cap, or what `fn`
 * returned to stop.
 */
mw_code mw__docker_lines_feed(mw__docker_lines *s, const char *p, size_t n, mw__docker_line_fn fn,
                              void *ud);

/*
 * The stream ended: a partial line left in the buffer is a cut event,
 * reported to `fn` as an error (never parsed), and the splitter is reset.
 */
mw_code mw__docker_lines_finish(mw__docker_lines *s, mw__docker_line_fn fn, void *ud);

typedef struct mw__docker_event {
    cJSON *root;             /* owned: the whole line, parsed */
    char *action;            /* owned: Action up to ": " ("health_status") */
    const char *action_raw;  /* Action as sent ("health_status: healthy") */
    const char *detail;      /* Action after ": " ("healthy"), else "" */
    const char *type;        /* Type: "container", "image", "network", ... */
    const char *id;          /* Actor.ID, never empty */
    const cJSON *attributes; /* Actor.Attributes: all labels plus the keys
                              * below; NULL when absent */
    const char *name;        /* attribute "name", NULL when absent */
    const char *image;       /* attribute "image" */
    const char *exit_code;   /* attribute "exitCode" (die), a string */
    const char *signal;      /* attribute "signal" (kill), a string */
    const char *scope;       /* "local" or "swarm"; "" when absent */
    int64_t time;            /* Unix seconds */
    int64_t time_nano;       /* Unix nanoseconds, exact; time * 1e9 when the
                              * line has no timeNano; 0 when it has neither */
} mw__docker_event;

/*
 * Parses one line (`len` bytes, NUL not needed) into `*ev`. On error
 * returns MW_EPARSE, leaves `*ev` empty (safe to free) and, when `err` is
 * not NULL, sets `*err` to a message naming the field or the fault, which
 * the caller frees with free(). An empty line, invalid UTF-8, a NUL byte,
 * trailing bytes after the object, a missing or non-string Type, Action or
 * Actor.ID, a non-object Actor or Actor.Attributes, or non-numeric time
 * fields are errors. MW_ENOMEM when memory runs out.
 */
mw_code mw__docker_event_parse(const char *line, size_t len, mw__docker_event *ev, char **err);

/* Frees what the event owns and empties it; NULL or empty is a no-op. */
void mw__docker_event_free(mw__docker_event *ev);

/* A string attribute (a label, or name/image/...) borrowed from the event,
 * or NULL when absent or not a string. */
const char *mw__docker_event_attr(const mw__docker_event *ev, const char *key);

/* "<sec>.<9-digit nsec>" and its NUL. */
#define MW_DOCKER_SINCE_SIZE 32

/*
 * Formats a timeNano as the `since` query value, e.g. 1795631294000000042
 * → "1795631294.000000042". A negative value is formatted as 0. Writes
 * into `out` (MW_DOCKER_SINCE_SIZE bytes) and returns it.
 */
char *mw__docker_since_format(int64_t time_nano, char out[MW_DOCKER_SINCE_SIZE]);

/* The daemon buffers 256 events, so no more than that can be replayed at
 * one timeNano. */
#define MW_DOCKER_RESUME_KEYS 256

typedef struct mw__docker_resume {
    int64_t last_nano;                    /* highest timeNano applied; 0 before the first */
    size_t n;                             /* keys held, at most MW_DOCKER_RESUME_KEYS */
    size_t next;                          /* where the next key goes once the ring is full */
    uint64_t keys[MW_DOCKER_RESUME_KEYS]; /* hashes of Type+Action+Actor.ID
                                           * applied at last_nano */
} mw__docker_resume;

/* Nothing applied yet: no `since`, nothing to drop. */
void mw__docker_resume_init(mw__docker_resume *r);

/*
 * 1 when `ev` was already applied: its timeNano equals the watermark and
 * its Type+Action+Actor.ID is among those recorded there. An event older
 * than the watermark is not a replay (a resumed stream starts at `since`):
 * it is a live event the daemon stamped before one it sent earlier, and
 * must be applied, so this returns 0 for it.
 */
int mw__docker_resume_seen(const mw__docker_resume *r, const mw__docker_event *ev);

/* Records `ev` as applied: a newer timeNano moves the watermark and
 * forgets the older keys; an older one changes nothing. */
void mw__docker_resume_applied(mw__docker_resume *r, const mw__docker_event *ev);

/* The `since` for a reconnect into `out`; returns 0 and leaves `out` empty
 * when nothing was applied yet (connect without `since`, then resync). */
int mw__docker_resume_since(const mw__docker_resume *r, char out[MW_DOCKER_SINCE_SIZE]);

#endif
