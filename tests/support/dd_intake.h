/*
 * dd_intake.h - a fake Datadog intake for tests: HTTP/1.1 on 127.0.0.1,
 * on a thread of its own (poll, keep-alive, a few connections at once).
 * It records every request it reads (method, path, query, the headers a
 * sink must send, the body inflated when Content-Encoding is deflate)
 * and answers as its mode says:
 *
 *   DDI_ACCEPT  202 {"status":"ok"}
 *   DDI_FAIL    500
 *   DDI_LIMIT   429 with "Retry-After: <retry_after>"
 *   DDI_HANG    no answer (the client times out and closes)
 *   DDI_REJECT  400 {"errors":[...]} whose message quotes the request's
 *               DD-API-KEY, as a careless intake might
 *
 * Ownership: the intake owns its thread, sockets and records; the
 * records are read under dd_intake_lock() and valid until the unlock.
 */
#ifndef MW_DD_INTAKE_H
#define MW_DD_INTAKE_H

#include <pthread.h>
#include <stddef.h>

typedef enum dd_intake_mode {
    DDI_ACCEPT,
    DDI_FAIL,
    DDI_LIMIT,
    DDI_HANG,
    DDI_REJECT
} dd_intake_mode;

typedef struct dd_intake_req {
    char method[8];
    char path[128];  /* without the query */
    char query[256]; /* "" when none */
    char api_key[128];
    char encoding[32]; /* Content-Encoding */
    char type[64];     /* Content-Type */
    char *body;        /* inflated, NUL-terminated; NULL when it did not inflate */
    size_t len;
    int status;  /* what it was answered; 0: not answered */
    double when; /* monotonic seconds it was read */
} dd_intake_req;

typedef struct dd_intake dd_intake;

/* NULL on failure (message on stderr). */
dd_intake *dd_intake_start(void);
void dd_intake_stop(dd_intake *in);
int dd_intake_port(const dd_intake *in);

/* What the following requests get. */
void dd_intake_set_mode(dd_intake *in, dd_intake_mode mode, int retry_after);

/* The records: lock, read reqs[0..n), unlock. */
void dd_intake_lock(dd_intake *in, const dd_intake_req **reqs, size_t *n);
void dd_intake_unlock(dd_intake *in);

/* Requests read so far / answered with a 2xx so far. */
size_t dd_intake_count(dd_intake *in);
size_t dd_intake_accepted(dd_intake *in);

#endif
