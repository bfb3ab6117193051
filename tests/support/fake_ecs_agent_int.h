/*
 * fake_ecs_agent_int.h - what the fake ECS agent's two parts share:
 *   fake_ecs_agent.c       the task table, the JSON answers, every control
 *                          call;
 *   fake_ecs_agent_http.c  the epoll loop, connections, HTTP and routes.
 *
 * Locking: everything in struct mw__fea is guarded by `mu` except what is
 * marked "loop thread". Going down and up is asked of the loop thread
 * (`want_up`), which answers through `cv`.
 *
 * Ownership: the server owns its tasks and their strings, its overrides
 * and its connections.
 */
#ifndef MW_FAKE_ECS_AGENT_INT_H
#define MW_FAKE_ECS_AGENT_INT_H

#include "tests/support/fake_ecs_agent.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define MW_FEAI_LOG 1024

typedef struct mw__feai_ctr {
    char *docker_id, *docker_name, *name, *type, *known, *image;
    int has_exit;
    int exit_code;
} mw__feai_ctr;

typedef struct mw__feai_task {
    char *arn, *family, *version, *known, *desired;
    mw__feai_ctr *c;
    size_t nc;
    cJSON *doc; /* the JSON it was put with: the v4 fields the struct does
                 * not hold (Labels, Networks, Ports, Limits, tags...) */
} mw__feai_task;

typedef struct mw__feai_override {
    int status;
    char *body;
    unsigned times;
} mw__feai_override;

typedef struct mw__feai_conn mw__feai_conn;

struct mw__fea {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* counts grew; the loop went down or up */
    pthread_t thr;
    int threaded;
    int ep, wake_fd;      /* loop thread (made before it starts) */
    int lfd;              /* loop thread: the listener, -1 while down */
    mw__feai_conn *conns; /* loop thread */
    int stopping;         /* loop thread */
    int want_up, is_up;   /* asked of the loop, and what it did */
    int port;
    char url[64];
    char err[256];
    char *cluster, *instance_arn, *version;
    mw__feai_task *tasks;
    size_t ntasks, cap;
    int keep_order;
    uint64_t rng;
    mw__feai_override over[MW_FEA_EP_COUNT];
    unsigned latency[MW_FEA_EP_COUNT];
    uint64_t counts[MW_FEA_EP_COUNT];
    mw__fea_request log[MW_FEAI_LOG];
    size_t nlog; /* requests logged in all */
    /* task metadata v4 */
    char v4_url[128]; /* mw__fea_v4_url() */
    char *v4_arn;     /* the task it describes; NULL: the first one */
    char *v4_self;    /* the container asking (GET ${URI}); NULL: none */
    cJSON *stats;     /* Docker id -> one container's stats document */
};

/* An answer made under `mu`: status, content type and body (malloc'd). */
typedef struct mw__feai_answer {
    int status;
    const char *ctype;
    char *body;
    size_t len;
} mw__feai_answer;

/* The answer to GET `path` with query `query` (NULL: none), its kind in
 * `*ep`; called by the loop thread with `mu` held. */
void mw__feai_answer_get(mw__fea *a, const char *path, const char *query, mw__fea_ep *ep,
                         mw__feai_answer *out);
/* The answer to a task metadata v4 path (`rest`: what follows
 * MW_FEA_V4_PATH), its kind in `*ep`; `mu` held (fake_ecs_agent_v4.c). */
void mw__feai_answer_v4(mw__fea *a, const char *rest, mw__fea_ep *ep, mw__feai_answer *out);
/* The task the v4 endpoint describes, NULL when none; `mu` held. */
mw__feai_task *mw__feai_v4_task(mw__fea *a);
/* Answers: JSON (takes `doc`), or text. */
void mw__feai_answer_json(mw__feai_answer *out, int status, cJSON *doc);
void mw__feai_answer_text(mw__feai_answer *out, int status, const char *ctype, const char *text);
/* A permutation of 0..n-1 into `ix`, shuffled unless keep_order; `mu` held. */
void mw__feai_order(mw__fea *a, size_t *ix, size_t n);

/* Counts and logs an answered request; `mu` held. */
void mw__feai_log(mw__fea *a, mw__fea_ep ep, int status, const char *method, const char *target);

/* The loop thread (fake_ecs_agent_http.c). */
int mw__feai_listen(mw__fea *a, char *err, size_t errcap);
void *mw__feai_main(void *arg);
void mw__feai_wake(mw__fea *a);
void mw__feai_close_all(mw__fea *a);

#endif
