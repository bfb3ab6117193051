/*
 * aws_int.h - what the files of the AWS module share (not for use outside
 * core/base/aws*.c): the handle, the credentials cache and its waiters
 * (aws.c), the lookups run on the home loop (aws_chain.c), and the
 * requests (aws_req.c).
 *
 * Locking: fields marked "mu" are read and written under `mu` from any
 * thread; fields marked "home" only on the home loop's thread. A waiter
 * belongs to its request; the home thread only moves it from the queue
 * to "posted" (under `mu`) and posts it to the request's loop, after
 * which only that loop's thread touches it.
 */
#ifndef MW_AWS_INT_H
#define MW_AWS_INT_H

#include "core/base/aws.h"
#include "core/base/buf.h"

#include <pthread.h>

/* A request waiting for a lookup. */
typedef struct mw__aws_waiter {
    mw__loop *loop;         /* the request's */
    void (*fire)(void *ud); /* on `loop`, when the lookup ended */
    void *ud;
    int state;  /* W_IDLE, W_QUEUED (mu), W_POSTED */
    int orphan; /* cancelled while posted: freed when the message runs */
    struct mw__aws_waiter *prev, *next;
} mw__aws_waiter;

enum { W_IDLE = 0, W_QUEUED, W_POSTED };

/* What one request signs with: copies, cleared with mw__aws_snap_clear. */
typedef struct mw__aws_snap {
    mw__aws_creds creds;
    char *region; /* the default region, when asked for */
    unsigned gen; /* the generation of the credentials */
} mw__aws_snap;

/* A lookup on the home loop (aws_chain.c). */
typedef struct mw__aws_job {
    int stage;
    int after;       /* the stage that waits for the IMDS token */
    int want_region; /* look the default region up */
    int want_creds;  /* look credentials up */
    char *region;    /* found */
    mw__aws_creds creds;
    const char *source; /* where the credentials came from */
    mw__buf tried;      /* "environment (...), ECS task role (...), ..." */
    mw__buf rtried;     /* the same for the region */
    int imds_checked;   /* imds_base / imds_why are known */
    char *imds_base;    /* NULL: IMDS is not asked (imds_why says why) */
    char imds_why[256];
    char *imds_token; /* secret */
    char *role;
    mw__http_req *req;
    long status;
    char *body; /* the last answer; secret: zeroed when freed */
    size_t len;
    char *error; /* the last transport error */
} mw__aws_job;

struct mw__aws {
    pthread_mutex_t mu;
    mw__loop *home;
    const mw__log *log;
    char *sysfs;
    int imds; /* MW_IMDS_AUTO, _ON or _OFF */

    mw__aws_creds creds;  /* mu: key_id NULL when none */
    const char *source;   /* mu */
    unsigned gen;         /* mu: bumped with every new set */
    double refresh_at;    /* mu: wall seconds; HUGE_VAL: never */
    double usable_until;  /* mu: wall seconds */
    char *region;         /* mu: the default region, once found */
    char *creds_fail;     /* mu: why the last lookup found none */
    char *region_fail;    /* mu */
    double retry_at;      /* mu: monotonic; no new lookup after a failure before */
    unsigned fails;       /* mu: lookups failed in a row */
    int busy;             /* mu: a lookup is posted or running */
    int job_region;       /* mu: the lookup posted looks for the region */
    int job_creds;        /* mu: and for credentials */
    int used;             /* mu: credentials handed out since they were fetched */
    mw__aws_waiter *wait; /* mu */

    mw__http *http;  /* home */
    mw__timer timer; /* home: the next refresh */
    mw__aws_job job; /* home */
};

/* ---- aws.c */

enum { MW_AWS_READY = 0, MW_AWS_WAIT, MW_AWS_FAIL };

/*
 * What a request signs with, into `snap` (with the default region when
 * `need_region`): MW_AWS_READY; MW_AWS_WAIT (`w` queued: its fire runs
 * once a lookup ended, then ask again); MW_AWS_FAIL with `*err` (caller
 * frees: "no AWS credentials: ...", or NULL on OOM).
 */
int mw__aws_acquire(mw__aws *a, int need_region, mw__aws_snap *snap, mw__aws_waiter *w, char **err);
/* Takes `w` off the queue; one posted is freed when its message runs.
 * Returns 1 when `w` may be freed now. */
int mw__aws_waiter_drop(mw__aws *a, mw__aws_waiter *w);
/* The credentials of generation `gen` were refused as expired: drop them
 * so that the next acquire looks again. */
void mw__aws_invalidate(mw__aws *a, unsigned gen);
void mw__aws_snap_clear(mw__aws_snap *s);

/* Called by aws_chain.c on the home thread when a lookup ended (the job
 * holds what it found and what it tried). */
void mw__aws_job_done(mw__aws *a);

/* ---- aws_chain.c (home thread) */

/* Starts the lookup of the job (a->job prepared: want_region). */
void mw__aws_chain_start(mw__aws *a);
/* Cancels a lookup in flight and frees what the job holds. */
void mw__aws_chain_clear(mw__aws *a);

/* ---- aws_req.c */

/* The value of environment variable `name`, NULL when unset or empty. */
const char *mw__aws_env(const char *name);

#endif
