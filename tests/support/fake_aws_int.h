/*
 * fake_aws_int.h - what the files of the fake AWS server share: the
 * server struct (fake_aws.c: sockets, keys, credentials endpoints) and
 * the ECS API's cluster model and actions (fake_aws_ecs.c). Everything
 * in the struct below `mu` is guarded by it.
 */
#ifndef MW_FAKE_AWS_INT_H
#define MW_FAKE_AWS_INT_H

#include "tests/support/fake_aws.h"

#include <cjson/cJSON.h>
#include <pthread.h>

#define FAWS_MAX_KEYS  256
#define FAWS_MAX_COUNT 32

typedef struct faws_key {
    char *id, *secret, *token;
    double expires;
} faws_key;

typedef struct faws_count {
    char name[64];
    uint64_t n;
} faws_count;

struct mw__faws {
    int lfd, stop_fd[2];
    pthread_t thread;
    char url[64];
    char region[32], account[32];

    pthread_mutex_t mu;
    faws_key keys[FAWS_MAX_KEYS];
    size_t nkeys;
    unsigned minted;
    double lifetime;
    char *auth_token;
    char imds_tokens[8][64];
    unsigned nimds;
    int imds_status; /* 0: IMDS answers; else every IMDS request gets it */
    char fail_action[96], fail_type[96], fail_msg[512];
    unsigned fail_times;
    int fail_status;
    faws_count counts[FAWS_MAX_COUNT];
    char last_refusal[8192];
    char last_sig[80]; /* the Signature of the last signed request */
    cJSON *clusters;   /* [{"name","arn","instances":[...],"services":[...]}] */
};

/* Under mu. */
void mw__faws_count_add(mw__faws *f, const char *name);

/* ---- fake_aws_ecs.c: runs `action` on the model (under mu): the HTTP
 * status and the answer (caller frees). */
int mw__faws_ecs_call(mw__faws *f, const char *action, const cJSON *in, char **out);

#endif
