/*
 * fake_aws.h - a test double of the Amazon ECS API and of the places AWS
 * credentials come from ("faws"), for mw.aws's unit tests (also a
 * program: fake_aws_main.c). HTTP/1.1 on 127.0.0.1 only, one request per
 * connection, served by a thread of its own.
 *
 *   POST /   the ECS API, AWS JSON 1.1 (X-Amz-Target
 *            AmazonEC2ContainerServiceV20141113.<Action>), every request
 *            SigV4-verified against the keys the server knows (the
 *            signature is computed again from the secret: canonical
 *            request, string to sign, signing key; fake_aws_sigv4.c).
 *            Refused as AWS refuses, with its JSON error bodies:
 *              no Authorization          403 MissingAuthenticationTokenException
 *              no X-Amz-Date, or twice   400 IncompleteSignatureException
 *              X-Amz-Date over 5 min off 400 InvalidSignatureException ("Signature expired")
 *              an unknown key            400 UnrecognizedClientException
 *              a temporary key without
 *              its X-Amz-Security-Token  400 UnrecognizedClientException
 *              a key past its expiry     400 ExpiredTokenException
 *              a signed header not sent,
 *              a wrong scope or signature 400 InvalidSignatureException (the
 *                                        message quotes the canonical request,
 *                                        as AWS does: the token with it)
 *            Actions: ListClusters, DescribeClusters (at most 100),
 *            ListContainerInstances, DescribeContainerInstances (at most
 *            100), ListServices, DescribeServices (at most 10); the List*
 *            ones paginate with maxResults (1..100; ListServices defaults
 *            to 10, the others to 100) and nextToken; deregistered
 *            instances and deleted services are left out of the lists as
 *            AWS leaves them out (fake_aws_ecs.c).
 *   GET /creds                  the container credentials endpoint
 *                               (AWS_CONTAINER_CREDENTIALS_FULL_URI): checks
 *                               the Authorization header against the token
 *                               set, mints new temporary credentials that
 *                               expire `lifetime` seconds later
 *   PUT /latest/api/token       IMDSv2: a session token, given
 *                               X-aws-ec2-metadata-token-ttl-seconds 1..21600
 *   GET /latest/meta-data/iam/security-credentials/[ROLE]
 *   GET /latest/meta-data/instance-id  MW_FAWS_INSTANCE_ID
 *   GET /latest/dynamic/instance-identity/document
 *                               IMDS, only with a valid
 *                               X-aws-ec2-metadata-token (else 401)
 *   GET /meta/task              a task metadata /task ({AvailabilityZone})
 *
 * Every control call is thread-safe and in effect when it returns.
 * Ownership: mw__faws_new() returns a server the caller frees with
 * mw__faws_free(); strings passed in are copied.
 */
#ifndef MW_FAKE_AWS_H
#define MW_FAKE_AWS_H

#include <stddef.h>
#include <stdint.h>

typedef struct mw__faws mw__faws;

typedef struct mw__faws_opts {
    int port;            /* 0: a free port */
    const char *region;  /* NULL: "us-east-1" */
    const char *account; /* NULL: "123456789012" */
} mw__faws_opts;

/* NULL with `*err` (caller frees) when the port or thread cannot be had. */
mw__faws *mw__faws_new(const mw__faws_opts *o, char **err);
void mw__faws_free(mw__faws *f);
/* "http://127.0.0.1:<port>"; borrowed. */
const char *mw__faws_url(const mw__faws *f);

/* A key the ECS API accepts: long-term (token NULL) or temporary, valid
 * until `expires` (Unix seconds; 0: never). */
int mw__faws_add_key(mw__faws *f, const char *key_id, const char *secret, const char *token,
                     double expires);
/* Credentials minted by /creds and IMDS live `seconds` (default 3600). */
void mw__faws_set_lifetime(mw__faws *f, double seconds);
/* The instance IMDS describes (instance-id, the identity document). */
#define MW_FAWS_INSTANCE_ID "i-0123456789abcdef0"

/* Every IMDS request (the token's PUT too) is answered `status` without
 * a body, as an IMDS that refuses (403) or fails (500); 0: IMDS works. */
void mw__faws_set_imds_status(mw__faws *f, int status);
/* The Authorization /creds requires (NULL: none). */
void mw__faws_set_auth_token(mw__faws *f, const char *token);
/* The secret and token of the last minted credentials (for the tests
 * that look for them where they must not be); borrowed until the next
 * mint. */
const char *mw__faws_last_secret(mw__faws *f);
const char *mw__faws_last_token(mw__faws *f);

/* The next `times` ECS API calls of `action` (NULL: any) answer
 * `status` with the AWS error `type` and `message` (after the signature
 * was verified). times 0 cancels. */
void mw__faws_fail_next(mw__faws *f, const char *action, unsigned times, int status,
                        const char *type, const char *message);

/* The cluster model. A cluster; its container instances (a JSON object
 * of DescribeContainerInstances' shape with containerInstanceArn, or
 * ec2InstanceId from which the ARN is made; replaced by ARN) and its
 * services (DescribeServices' shape with serviceName; replaced by name).
 * A test changes them as it goes. */
int mw__faws_put_cluster(mw__faws *f, const char *name);
int mw__faws_put_instance(mw__faws *f, const char *cluster, const char *json);
int mw__faws_put_service(mw__faws *f, const char *cluster, const char *json);
int mw__faws_remove_instance(mw__faws *f, const char *cluster, const char *arn);
int mw__faws_remove_service(mw__faws *f, const char *cluster, const char *name);
/* A whole model: {"clusters":[{"name":..,"containerInstances":[..],
 * "services":[..]}]}. */
int mw__faws_load(mw__faws *f, const char *json);

/* Answers counted by name since the start: an ECS action ("ListClusters":
 * every call of it whose signature was good, an injected error included),
 * "rejected" (signature or token refusals), "creds" (/creds answered
 * with credentials), "imds_token", "imds_creds", "imds_instance_id",
 * "imds_refused" (no or a bad token), "imds_failed" (set_imds_status),
 * "errors" (injected errors sent), "requests" (every request, read or
 * not). */
uint64_t mw__faws_count(mw__faws *f, const char *name);
/* CPU time the server's thread has used (seconds): what a benchmark
 * takes off the process's CPU time. */
double mw__faws_cpu_seconds(mw__faws *f);
/* The body of the last refusal (copied into `out`). */
void mw__faws_last_refusal(mw__faws *f, char *out, size_t n);
/* The Signature=... value of the last ECS API request that had one. */
void mw__faws_last_signature(mw__faws *f, char *out, size_t n);

/* ---- fake_aws_sigv4.c: the verification, on its own for unit tests. */

typedef struct mw__faws_hdr {
    const char *name, *value;
} mw__faws_hdr;

typedef struct mw__faws_sig_req {
    const char *method, *path, *query; /* query without '?', "" when none */
    const mw__faws_hdr *hdrs;
    size_t nhdrs;
    const char *body;
    size_t body_len;
} mw__faws_sig_req;

/* What the verifier needs of a key id: its secret and token (NULL when
 * unknown); 1 when found. */
typedef int (*mw__faws_key_fn)(void *ud, const char *key_id, const char **secret,
                               const char **token, double *expires);

/*
 * Verifies the SigV4 signature of `rq` for `region`/`service` at `now`
 * (Unix seconds). 0 when good; else the HTTP status, with the AWS error
 * `type` and `msg` filled.
 */
int mw__faws_sigv4_verify(const mw__faws_sig_req *rq, const char *region, const char *service,
                          double now, mw__faws_key_fn keys, void *ud, char *type, size_t tn,
                          char *msg, size_t mn);

#endif
