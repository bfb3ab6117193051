/*
 * fake_dockerd_int.h - what the fake dockerd's three parts share:
 *   fake_dockerd.c      lifecycle, the container table, events and the ring,
 *                       every control call;
 *   fake_dockerd_http.c the epoll loop, connections, HTTP and the routes;
 *   fake_dockerd_json.c the string builder and every JSON payload.
 *
 * Locking: everything in struct mw__fdd is guarded by `mu`, except what is
 * marked "loop thread". Connections are freed only by the loop thread,
 * after the epoll batch that may still name them; other threads only mark
 * them dead (and shut their socket down).
 *
 * Ownership: the server owns its containers, images, ring entries and
 * connections; a container's strings are its own.
 */
#ifndef MW_FAKE_DOCKERD_INT_H
#define MW_FAKE_DOCKERD_INT_H

#include "tests/support/fake_dockerd.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define MW_FDDI_RING      256
#define MW_FDDI_LOG       1024
#define MW_FDDI_HDR_MAX   (64 * 1024)        /* request line and headers */
#define MW_FDDI_BODY_MAX  (256 * 1024)       /* request bodies (read, ignored) */
#define MW_FDDI_IN_MAX    (1024 * 1024)      /* one connection's input buffer */
#define MW_FDDI_OUT_MAX   (64 * 1024 * 1024) /* queued to one slow reader */
#define MW_FDDI_VER(M, m) ((M)*1000 + (m))
#define MW_FDDI_V152      MW_FDDI_VER(1, 52)

/* A growing string; `oom` sticks once an allocation failed. */
typedef struct mw__fddi_sb {
    char *p;
    size_t len, cap;
    int oom;
} mw__fddi_sb;

void mw__fddi_sb_reserve(mw__fddi_sb *b, size_t more);
void mw__fddi_sb_put(mw__fddi_sb *b, const void *p, size_t n);
void mw__fddi_sb_str(mw__fddi_sb *b, const char *s);
/* `s` as a JSON string (escaped like Go's encoder), or null. */
void mw__fddi_sb_json(mw__fddi_sb *b, const char *s);
void mw__fddi_sb_i64(mw__fddi_sb *b, int64_t v);
void mw__fddi_sb_fmt(mw__fddi_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* RFC 3339 with nanoseconds, trailing zeros trimmed (Go's RFC3339Nano). */
void mw__fddi_sb_time(mw__fddi_sb *b, int64_t ns);
void mw__fddi_sb_free(mw__fddi_sb *b);
/* Empties `b`, and frees its buffer when it grew past MW_FDDI_SB_KEEP: a
 * list of 10,000 containers takes some 10 MiB, which a builder kept for
 * the server's life would hold resident to no use (and charge to the
 * engine under test in the figures of bench_discovery). */
#define MW_FDDI_SB_KEEP (64 * 1024)
void mw__fddi_sb_release(mw__fddi_sb *b);

enum { MW_FDDI_CREATED, MW_FDDI_RUNNING, MW_FDDI_PAUSED, MW_FDDI_EXITED };

typedef struct mw__fddi_net {
    char *name;
    char ip[40], gw[40], mac[18];
    char net_id[65], ep_id[65];
} mw__fddi_net;

typedef struct mw__fddi_port {
    unsigned priv, pub; /* pub 0: exposed only */
    char proto[8];
} mw__fddi_port;

typedef struct mw__fddi_ctr {
    char id[65];
    char image_id[72]; /* "sha256:<64 hex>" */
    char *name, *image, *cmd, *network_mode, *health;
    char **labels; /* key, value, ... sorted by key */
    size_t nlabels;
    char **env;
    size_t nenv;
    mw__fddi_net *nets;
    size_t nnets;
    mw__fddi_port *ports;
    size_t nports;
    int state, exit_code, oom_killed, pid, restart_count;
    int64_t created_ns, started_ns, finished_ns;
    size_t idx; /* in mw__fdd.ctrs */
    struct mw__fddi_ctr *next_id, *next_name;
} mw__fddi_ctr;

typedef struct mw__fddi_image {
    char *name; /* repo:tag */
    char id[72];
    int64_t created_ns;
} mw__fddi_image;

/* One event in the ring, rendered once per shape. */
typedef struct mw__fddi_ev {
    int64_t t;
    int raw;               /* injected line: sent to every stream */
    char *modern, *legacy; /* with the trailing '\n' */
    size_t modern_len, legacy_len;
    char *type, *action, *actor, *name;
} mw__fddi_ev;

/* An /events subscription's filters (NULL-terminated lists, NULL: any). */
typedef struct mw__fddi_filter {
    char **types, **events, **containers;
} mw__fddi_filter;

typedef struct mw__fddi_conn {
    int fd;
    struct mw__fddi_conn *prev, *next;
    char *in;
    size_t in_len, in_cap;
    mw__fddi_sb out;
    size_t out_off;
    int64_t hold_until; /* monotonic ms; nothing written before */
    int dead, close_after, want_out;
    /* An event stream. */
    int stream, legacy, seq;
    int64_t until; /* 0: none */
    mw__fddi_filter filter;
} mw__fddi_conn;

typedef struct mw__fddi_override {
    int status;
    char *body;
    unsigned times;
    size_t trunc_bytes;
    unsigned trunc_times;
} mw__fddi_override;

struct mw__fdd {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int thread_started;
    int epfd, listen_fd, wake_fd;
    int stop, down;
    char *path;
    int max_ver, min_ver;
    char max_str[16], min_str[16];
    char *engine_version;
    char err[256];

    int manual_clock;
    int64_t clock_ns, last_ns;
    uint64_t rng;
    unsigned name_seq, bulk_seq, ip_seq;

    mw__fddi_ctr **ctrs; /* creation order */
    size_t nctrs, ctrs_cap;
    mw__fddi_ctr **by_id, **by_name;
    size_t nbuckets;
    mw__fddi_image *imgs;
    size_t nimgs;

    mw__fddi_ev ring[MW_FDDI_RING];
    size_t ring_head, ring_n; /* oldest at ring_head */

    mw__fddi_conn *conns;
    int nstreams;
    int ndead;

    unsigned latency_ms[MW_FDD_EP_COUNT];
    mw__fddi_override ovr[MW_FDD_EP_COUNT];
    char **gone; /* inspect_404_once */
    size_t ngone;

    uint64_t counts[MW_FDD_EP_COUNT];
    mw__fdd_request log[MW_FDDI_LOG];
    size_t log_head, log_n;

    mw__fddi_sb scratch; /* loop thread */
    char date[40];       /* loop thread */
    int64_t date_sec;    /* loop thread */
    int tag_listen, tag_wake;
};

/* fake_dockerd.c */
int64_t mw__fddi_now_ns(mw__fdd *d);
mw__fddi_ctr *mw__fddi_find(mw__fdd *d, const char *ref);
mw__fddi_image *mw__fddi_find_image(mw__fdd *d, const char *ref);
int mw__fddi_parse_version(const char *s, int *out);
int mw__fddi_filter_match(const mw__fddi_filter *f, const mw__fddi_ev *ev);
void mw__fddi_filter_free(mw__fddi_filter *f);

/* fake_dockerd_http.c */
int mw__fddi_listen(mw__fdd *d, char *err, size_t errcap);
void mw__fddi_unlisten(mw__fdd *d);
void *mw__fddi_loop(void *arg);
void mw__fddi_wake(mw__fdd *d);
/* Sends a ring event to every open stream whose filters take it. */
void mw__fddi_broadcast(mw__fdd *d, const mw__fddi_ev *ev);
/* Sends `n` bytes (as one chunk when `chunked`) to every open stream. */
void mw__fddi_broadcast_raw(mw__fdd *d, const void *p, size_t n, int chunked);
int mw__fddi_end_streams(mw__fdd *d, int clean);
void mw__fddi_kill_all(mw__fdd *d);
void mw__fddi_free_conns(mw__fdd *d);

/* fake_dockerd_json.c */
/* One /containers/json element, or the inspect document. */
void mw__fddi_json_list_item(mw__fddi_sb *b, const mw__fddi_ctr *c, int ver, int64_t now);
void mw__fddi_json_inspect(mw__fddi_sb *b, const mw__fddi_ctr *c, int ver);
void mw__fddi_json_image(mw__fddi_sb *b, const mw__fddi_image *img, int ver);
void mw__fddi_json_version(mw__fddi_sb *b, const mw__fdd *d);
/* An event line with its '\n'; attrs are key, value pairs sorted by key. */
void mw__fddi_json_event(mw__fddi_sb *b, const char *type, const char *action, const char *actor,
                         const char *from, const char *const *attrs, size_t npairs, int64_t t,
                         int legacy);

#endif
