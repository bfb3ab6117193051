/*
 * aws.h - AWS API requests made for checks (mw.aws.request): the
 * engine's AWS credentials, one cache shared by every worker; the region
 * and endpoint of a service; requests in AWS JSON 1.1 signed with SigV4
 * (by libcurl, through mw__http); AWS's JSON errors, retries and
 * backoff.
 *
 * Credentials, in the order of the AWS SDKs' default chain (the shared
 * config and credentials files, web identity and SSO are not read):
 *   1. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, for
 *      temporary credentials, AWS_SESSION_TOKEN;
 *   2. the container credentials endpoint (the ECS task role):
 *      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI under http://169.254.170.2,
 *      else AWS_CONTAINER_CREDENTIALS_FULL_URI (https, or http to a
 *      loopback address, 169.254.170.2, 169.254.170.23 or fd00:ec2::23),
 *      with the Authorization header from the file named by
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, else from
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN;
 *   3. EC2 instance metadata, IMDSv2 only (a session token first), when
 *      mw__aws_imds_where() says there is a reason to ask it (the SDKs
 *      try it blindly as a last resort).
 * The default region: AWS_REGION, AWS_DEFAULT_REGION, else the task
 * metadata (ECS_CONTAINER_METADATA_URI_V4 or ECS_CONTAINER_METADATA_URI:
 * /task's AvailabilityZone, else its TaskARN), else the EC2 instance
 * identity document (under the same reason as credentials).
 *
 * Threads: lookups of credentials and regions run on the home loop (the
 * engine's control loop) with an HTTP client of their own; requests run
 * on the loop of the worker that asks, and wait for a lookup through a
 * message posted back to that loop. Temporary credentials are fetched
 * again on the home loop before they expire (5 minutes before, or at
 * half their life when that is shorter), while requests go on with the
 * ones held; only a request that finds none usable waits, and all such
 * requests wait for the same lookup.
 *
 * Secrets: keys, tokens and signatures are never logged, never in an
 * error or a result (answers and errors are scrubbed of the credentials
 * used), and every copy made here is zeroed before it is freed.
 *
 * Ownership: the engine owns the mw__aws (freed after the workers'
 * loops have stopped and before the home loop). A request belongs to its
 * caller until its `done` runs (then it is freed) or mw__aws_cancel().
 */
#ifndef MW_AWS_H
#define MW_AWS_H

#include "moonwatch.h"
#include "core/base/http.h"
#include "core/base/log.h"
#include "core/base/loop.h"

#include <stddef.h>

typedef struct mw__aws mw__aws;
typedef struct mw__aws_req mw__aws_req;

/* The `ec2_metadata` setting: whether IMDS may be asked. */
enum { MW_IMDS_AUTO = 0, MW_IMDS_ON, MW_IMDS_OFF };

typedef struct mw__aws_opts {
    mw__loop *home;     /* where lookups run; borrowed */
    const mw__log *log; /* borrowed; may be NULL */
    const char *sysfs;  /* where DMI is read; NULL: "/sys" */
    int imds;           /* MW_IMDS_AUTO, _ON or _OFF */
} mw__aws_opts;

/* A new handle into `*out`: MW_OK or MW_ENOMEM. Nothing is looked up
 * before the first request. */
mw_code mw__aws_new(const mw__aws_opts *o, mw__aws **out);
/* Zeroes and frees the credentials; no request may be left. NULL: no-op. */
void mw__aws_free(mw__aws *a);

/* ------------------------------------------------------------- requests */

typedef struct mw__aws_result {
    mw_code code;      /* MW_OK: a 2xx answer; else `error` says why */
    long status;       /* HTTP status, 0 when none */
    const char *body;  /* the answer (scrubbed), NUL-terminated; borrowed */
    size_t len;        /* for the callback only */
    const char *error; /* "AccessDeniedException: User ... is not ...",
                        * "no AWS credentials: environment (...), ...",
                        * "POST http://...: timed out after 2.0 s" */
} mw__aws_result;

typedef struct mw__aws_call {
    const char *service; /* one of the allowed services ("ecs") */
    const char *region;  /* NULL: the default region */
    const char *target;  /* X-Amz-Target: "<the service's prefix>.<Action>" */
    const char *body;    /* JSON text, copied; NULL: "{}" */
    size_t body_len;
    double deadline;     /* monotonic seconds: no wait or retry past it */
    size_t max_body;     /* cap on the answer; 0: 10 MiB */
    int deny_link_local; /* the check's I/O policy for the API endpoint */
    mw__http *http;      /* the caller's client, on `loop`; borrowed */
    mw__loop *loop;
    void (*done)(void *ud, const mw__aws_result *r);
    void *ud;
} mw__aws_call;

/*
 * Starts a request; its `done` runs later on `loop`, never from inside
 * this call. NULL with `*err` (caller frees) when the call is refused
 * at once: a service not allowed, a target not of that service or not a
 * read-only action (List*, Describe*, Get*), a malformed region, OOM.
 */
mw__aws_req *mw__aws_start(mw__aws *a, const mw__aws_call *c, char **err);
/* Stops a request; its `done` is not called. Safe from `done` of
 * another request; on the loop thread of the request. */
void mw__aws_cancel(mw__aws_req *r);

/* The services requests may name, "ecs" ...: NULL-terminated. */
extern const char *const mw__aws_services[];

/* ------------------------------------------------------------- IMDS
 *
 * aws_imds.c: no state. */

/*
 * Whether EC2 instance metadata is asked, and where: its base URL (no
 * trailing '/'; caller frees) with `why` saying the reason, or NULL with
 * `why` saying why not. The first rule that applies:
 *   1. AWS_EC2_METADATA_DISABLED=true: never;
 *   2. `mode` MW_IMDS_OFF: never;
 *   3. AWS_EXECUTION_ENV=AWS_ECS_FARGATE: never (Fargate has no IMDS);
 *   4. AWS_EC2_METADATA_SERVICE_ENDPOINT set: there (not an http(s)
 *      URL: never);
 *   5. `mode` MW_IMDS_ON: http://169.254.169.254;
 *   6. ECS on EC2 (AWS_EXECUTION_ENV=AWS_ECS_EC2,
 *      ECS_CONTAINER_METADATA_URI_V4 or ECS_CONTAINER_METADATA_URI set):
 *      the same;
 *   7. the machine says it is EC2 (under `sysfs`, NULL "/sys": DMI
 *      sys_vendor "Amazon EC2", DMI board_asset_tag "i-...", or a Xen
 *      hypervisor/uuid "ec2..."): the same;
 *   8. else never.
 */
char *mw__aws_imds_where(int mode, const char *sysfs, char *why, size_t n);

/*
 * One IMDSv2 read, blocking the calling thread (on a loop and HTTP client
 * of its own, never through a proxy): PUT /latest/api/token with
 * X-aws-ec2-metadata-token-ttl-seconds, then GET `path` with
 * X-aws-ec2-metadata-token; each request at most 1 s, both within
 * `timeout` seconds. MW_OK with the answer's first line in `*body`
 * (caller frees); else MW_ETIMEOUT, MW_EIO, MW_EPARSE or MW_ENOMEM with
 * `*err` (caller frees; no token in it): "PUT http://.../latest/api/token:
 * HTTP 403". IMDSv1 (a GET without a token) is never used.
 */
mw_code mw__aws_imds_get(const char *base, const char *path, double timeout, char **body,
                         char **err);

/* ------------------------------------------------------------- parsing
 *
 * What the engine reads of AWS's answers (aws_json.c; no state, fuzzed
 * by tests/fuzz/fuzz_aws_json.c). Strings returned are the caller's. */

typedef struct mw__aws_creds {
    char *key_id, *secret, *token; /* token NULL: long-term keys */
    double expires;                /* Unix seconds; 0: never */
} mw__aws_creds;

/* Zeroes and frees the strings; `c` is left empty. */
void mw__aws_creds_clear(mw__aws_creds *c);

/*
 * A credentials document of the container endpoint or of IMDS
 * ({"AccessKeyId","SecretAccessKey","Token","Expiration"}, IMDS's "Code"
 * "Success") into `*out`. MW_OK; MW_EPARSE with `why` (no secret in it:
 * "no AccessKeyId", "Code \"...\"", "Expiration \"...\" is not a time");
 * MW_ENOMEM. Every copy of the document's strings is zeroed.
 */
mw_code mw__aws_parse_creds(const char *doc, size_t len, mw__aws_creds *out, char *why,
                            size_t whylen);

/* An ISO 8601 UTC time ("2024-05-01T12:00:00Z", fractions and "+00:00"
 * allowed) as Unix seconds; -1 when it is not one. */
double mw__aws_parse_time(const char *s);

/*
 * An AWS JSON error answer: `*type` the __type (or "code"/"Code") without
 * its "namespace#" prefix, else `header_type` (x-amzn-ErrorType, its
 * ":..." suffix dropped); `*msg` the message/Message. Either may be NULL
 * when absent. MW_OK (something found), MW_ENOTFOUND, MW_ENOMEM.
 */
mw_code mw__aws_parse_error(const char *body, size_t len, const char *header_type, char **type,
                            char **msg);

/* The region in a task metadata /task document (AvailabilityZone less
 * its zone letter, else the TaskARN's) or an instance identity document
 * ("region"); NULL when none (or OOM). */
char *mw__aws_parse_region(const char *doc, size_t len);

/* 1 when `r` looks like a region name ("us-east-1": lower-case letters,
 * digits and '-', 1 to 32 bytes). */
int mw__aws_region_ok(const char *r);

/*
 * A copy of `s` (`n` bytes) with each occurrence of the `nsec` strings of
 * `secrets` (NULL and "" skipped) and of "Signature=<hex>" replaced by
 * "[redacted]"; its length in `*outlen`. NULL on OOM.
 */
char *mw__aws_scrub(const char *s, size_t n, const char *const *secrets, size_t nsec,
                    size_t *outlen);

#endif
