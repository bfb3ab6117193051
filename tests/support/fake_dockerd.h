/*
 * fake_dockerd.h - a test double of the Docker Engine API on a unix socket
 * ("fdd"), for the Docker discovery source's unit tests and benchmarks.
 *
 * It serves, on its own thread (one epoll loop, non-blocking sockets,
 * HTTP/1.1 keep-alive, many connections), with or without a /v1.NN prefix:
 *
 *   GET|HEAD /_ping             "OK", header Api-Version: <max>
 *   GET /version                {Version, ApiVersion, MinAPIVersion, ...}
 *   GET /containers/json        running and paused containers, all of them
 *                               with ?all=1; `filters` must be valid JSON
 *                               and is otherwise ignored
 *   GET /containers/{ref}/json  inspect; ref = full id, name or id prefix;
 *                               404 {"message":"No such container: <ref>"}
 *   GET /images/{ref}/json      image inspect (RepoTags); ref = sha256:id,
 *                               id, id prefix or repo[:tag]
 *   GET /events                 chunked, one JSON line per event; `since`
 *                               and `until` (<sec>[.<frac>]) replay the
 *                               ring of the last 256 events inclusively as
 *                               dockerd does, then live (an `until` already
 *                               past ends the stream after the replay);
 *                               `filters` type, event and container honored
 *
 * A versioned path above the maximum answers 400 with Docker's JSON
 * message, one below the minimum 400 text/plain; an unversioned path gets
 * the maximum. Below 1.52 payloads carry the legacy fields (event status,
 * id, from; top-level NetworkSettings.IPAddress ...), from 1.52 they do
 * not, and /events negotiates its Content-Type through Accept
 * (application/json-seq records start with 0x1E). List, inspect and events
 * answer chunked, like dockerd. Payloads have the shape of the recordings
 * in tests/fixtures/docker; generated addresses are all in 127.0.0.0/8.
 *
 * Every control call below is thread-safe and takes effect before it
 * returns (events are written to the streams' sockets, or queued when a
 * reader is slow). Containers are named by `ref`: full id, name or unique
 * id prefix. Events get strictly increasing timeNano values from the real
 * clock, or from a manual clock once mw__fdd_clock_set() was called.
 *
 * Ownership: mw__fdd_new() returns a server the caller frees with
 * mw__fdd_free(); every string passed in is copied. Control calls return
 * 0, or -1 with the reason readable through mw__fdd_error().
 */
#ifndef MW_FAKE_DOCKERD_H
#define MW_FAKE_DOCKERD_H

#include <stddef.h>
#include <stdint.h>

typedef struct mw__fdd mw__fdd;

/* What a request asked for; counters, latency and overrides are per kind. */
typedef enum mw__fdd_ep {
    MW_FDD_EP_PING = 0,
    MW_FDD_EP_VERSION,
    MW_FDD_EP_LIST,    /* /containers/json */
    MW_FDD_EP_INSPECT, /* /containers/{ref}/json */
    MW_FDD_EP_IMAGE,   /* /images/{ref}/json */
    MW_FDD_EP_EVENTS,
    MW_FDD_EP_OTHER, /* anything else: 404 {"message":"page not found"} */
    MW_FDD_EP_COUNT  /* also "every kind" where an argument allows it */
} mw__fdd_ep;

typedef struct mw__fdd_opts {
    const char *socket_path;     /* required, under 108 bytes; replaced if it exists */
    const char *api_version;     /* maximum; NULL: "1.41" */
    const char *min_api_version; /* NULL: "1.12" */
    const char *engine_version;  /* NULL: "20.10.24+dfsg1" */
    int64_t clock_ns;            /* 0: real clock; else the manual clock's start */
    uint64_t seed;               /* generated ids; 0: a fixed default */
} mw__fdd_opts;

/* Listens on the socket and starts the server thread. NULL with `*err`
 * (caller frees) when the socket or thread cannot be made. */
mw__fdd *mw__fdd_new(const mw__fdd_opts *o, char **err);
/* Closes every connection, stops the thread, unlinks the socket, frees.
 * NULL is a no-op. */
void mw__fdd_free(mw__fdd *d);
/* Borrowed, lives as long as the server. */
const char *mw__fdd_socket_path(const mw__fdd *d);
/* The reason of the last failed control call (any thread); borrowed until
 * the next control call. */
const char *mw__fdd_error(mw__fdd *d);

/*
 * A container to create. Arrays are NULL-terminated and copied; every
 * field may be NULL/0.
 */
typedef struct mw__fdd_spec {
    const char *id;              /* 64 hex; NULL: generated */
    const char *name;            /* without '/'; NULL: "fdd-<n>" */
    const char *image;           /* NULL: "demo/busybox:1.0" */
    const char *cmd;             /* NULL: "sleep 3600" */
    const char *const *labels;   /* key, value, key, value, ..., NULL */
    const char *const *env;      /* "KEY=value", ..., NULL */
    const char *network_mode;    /* NULL: "default"; "host", "none",
                                  * "container:<id>" or a network name */
    const char *const *networks; /* name, ip, ..., NULL; ip "" = assigned.
                                  * NULL: by mode (default: bridge) */
    const char *const *ports;    /* "8080/tcp", "9090" or published
                                  * "18080:8080/tcp", ..., NULL */
    const char *health;          /* NULL: no healthcheck; else the status
                                  * it starts with ("starting" ...) */
} mw__fdd_spec;

/* Creates a container ("created"; event create). Its full id is written
 * to `id_out` when not NULL. */
int mw__fdd_create(mw__fdd *d, const mw__fdd_spec *s, char id_out[65]);
/* Creates and starts. */
int mw__fdd_run(mw__fdd *d, const mw__fdd_spec *s, char id_out[65]);
/* created/exited -> running: network connect per network, start. */
int mw__fdd_start(mw__fdd *d, const char *ref);
/* running/paused -> exited: kill (signal 15), die (exitCode 0),
 * network disconnect per network, stop. */
int mw__fdd_stop(mw__fdd *d, const char *ref);
/* kill (signal), then die with exitCode 128+signal and disconnects. */
int mw__fdd_kill(mw__fdd *d, const char *ref, int signal);
/* The process ended by itself: [oom,] die exitCode, disconnects; `oom`
 * 1: an oom event first and State.OOMKilled; 2: State.OOMKilled only
 * (an engine that missed the event). */
int mw__fdd_die(mw__fdd *d, const char *ref, int exit_code, int oom);
/* Removes it (a running one dies first: kill 9, die 137); event destroy. */
int mw__fdd_destroy(mw__fdd *d, const char *ref);
int mw__fdd_pause(mw__fdd *d, const char *ref);
int mw__fdd_unpause(mw__fdd *d, const char *ref);
/* kill, die, disconnects, stop, connects, start, restart (a manual
 * restart leaves RestartCount alone, as in dockerd). */
int mw__fdd_restart(mw__fdd *d, const char *ref);
/* Health.Status becomes `status`; event "health_status: <status>". */
int mw__fdd_health(mw__fdd *d, const char *ref, const char *status);
/* One healthcheck run's noise: exec_create, exec_start, exec_die. */
int mw__fdd_exec_noise(mw__fdd *d, const char *ref);
/* Renames it; event rename with oldName. */
int mw__fdd_rename(mw__fdd *d, const char *ref, const char *new_name);
/* Any other container event: the container's attributes plus `extra`
 * (key, value, ..., NULL). */
int mw__fdd_emit(mw__fdd *d, const char *ref, const char *action, const char *const *extra);
/* The full id of `ref` into `id_out`; -1 when unknown. */
int mw__fdd_resolve(mw__fdd *d, const char *ref, char id_out[65]);
/* Containers held, in any state. */
size_t mw__fdd_container_count(mw__fdd *d);

/*
 * Creates `n` running containers at once, otherwise like `tmpl` (may be
 * NULL; tmpl->id is ignored), each with its own generated id and bridge
 * address. They are named "<tmpl->name, or bulk>-<i>", i counting from 1
 * over every bulk call of this server. With `emit_events` each gets
 * create, connect and start events (the ring keeps the last 256 only).
 */
int mw__fdd_bulk_create(mw__fdd *d, size_t n, const mw__fdd_spec *tmpl, int emit_events);

/* Raw stream data, to every open event stream whatever its filters:
 * `line` plus '\n' as one chunk (also kept in the ring under the next
 * timeNano, so a replay sends it again); exactly `n` bytes as one chunk
 * (to split a line across chunks); or bytes with no chunk framing at all
 * (to break the framing itself). */
int mw__fdd_inject_line(mw__fdd *d, const char *line);
int mw__fdd_inject_chunk(mw__fdd *d, const void *p, size_t n);
int mw__fdd_inject_wire(mw__fdd *d, const void *p, size_t n);

/* Ends every event stream: abruptly (the socket is shut down, no final
 * chunk) or, with `clean`, with the final chunk (the connection stays
 * open for keep-alive). Returns the number of streams ended. */
int mw__fdd_close_streams(mw__fdd *d, int clean);

#define MW_FDD_RESTART_CLEAR    1 /* no containers after the restart */
#define MW_FDD_RESTART_STOP_ALL 2 /* running/paused ones are exited (137), silently */
/* The engine goes down (socket unlinked, every connection closed, the
 * event ring cleared, events while down are lost) and, for restart, up
 * again. Between down and up the test may change the containers. */
int mw__fdd_engine_restart(mw__fdd *d, int flags);
int mw__fdd_engine_down(mw__fdd *d);
int mw__fdd_engine_up(mw__fdd *d);

/* The next inspect naming `ref` (as sent, or resolving to the same
 * container) answers 404, as for a container removed meanwhile. */
int mw__fdd_inspect_404_once(mw__fdd *d, const char *ref);
/* The next `times` requests of kind `ep` answer `status` with `body`
 * (JSON; NULL: {"message":"injected failure"}). times 0 cancels. */
int mw__fdd_fail_next(mw__fdd *d, mw__fdd_ep ep, int status, const char *body, unsigned times);
/* The next response of kind `ep` stops after `body_bytes` of its body
 * (chunk framing included) and the connection is closed. */
int mw__fdd_truncate_next(mw__fdd *d, mw__fdd_ep ep, size_t body_bytes);
/* Delay before each response of kind `ep` (MW_FDD_EP_COUNT: every kind)
 * is written; the request is answered with the state at its arrival. */
int mw__fdd_set_latency(mw__fdd *d, mw__fdd_ep ep, unsigned ms);
/* New maximum and minimum API versions ("1.NN"; NULL keeps one). */
int mw__fdd_set_api_version(mw__fdd *d, const char *max, const char *min);

/* The manual clock: events from now on are stamped `ns`, `ns`+1, ...
 * (always above the last one). advance moves it forward. */
void mw__fdd_clock_set(mw__fdd *d, int64_t ns);
void mw__fdd_clock_advance(mw__fdd *d, int64_t ns);
/* timeNano of the last event emitted, 0 when none yet. */
int64_t mw__fdd_last_event_ns(mw__fdd *d);

/* One served request, for the log. */
typedef struct mw__fdd_request {
    mw__fdd_ep ep;
    int status;
    char method[8];
    char version[16]; /* "1.41" as in the /v1.41 prefix; "" when unversioned */
    char target[512]; /* path and query as sent, cut to fit */
} mw__fdd_request;

/* Requests served of one kind (MW_FDD_EP_COUNT: all) since the start or
 * the last reset. */
uint64_t mw__fdd_count(mw__fdd *d, mw__fdd_ep ep);
void mw__fdd_counts_reset(mw__fdd *d);
/* The last request of kind `ep` (MW_FDD_EP_COUNT: any) into `out`; -1
 * when none is logged. The log keeps the last 1024 requests. */
int mw__fdd_last_request(mw__fdd *d, mw__fdd_ep ep, mw__fdd_request *out);
/* Up to `max` logged requests, oldest first; returns how many. */
size_t mw__fdd_requests(mw__fdd *d, mw__fdd_request *out, size_t max);

/* Event streams open now. */
int mw__fdd_streams(mw__fdd *d);
/* Waits until at least `n` event streams are open (0) or `timeout_ms`
 * passes (-1). */
int mw__fdd_wait_streams(mw__fdd *d, int n, int timeout_ms);
/* Waits until mw__fdd_count(ep) >= n (0) or `timeout_ms` passes (-1). */
int mw__fdd_wait_count(mw__fdd *d, mw__fdd_ep ep, uint64_t n, int timeout_ms);

#endif
