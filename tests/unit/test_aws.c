/*
 * test_aws.c - mw.aws.request through the engine, from real Lua checks,
 * against the in-process fake AWS server (tests/support/fake_aws.h),
 * which verifies every SigV4 signature: credentials from the
 * environment, from the container endpoint (FULL_URI, refreshed before
 * they expire, one lookup for concurrent requests) and from IMDSv2 (the
 * region from the identity document); none at all (the error names what
 * was tried); ExpiredTokenException (fetch again, retry once);
 * throttling (backoff, retry); AWS errors as "Type: message"; refusals;
 * pagination and batch limits of the fake. Throughout, the debug log,
 * every error and every result the checks saw are searched for the
 * secret keys, session tokens and signatures: none may appear.
 *
 * When it may (root), the test runs in a network namespace of its own
 * with only loopback up, so that nothing it does can leave the machine.
 * Every wait is bounded in steps and time.
 */
#include "moonwatch.h"
#include "core/base/aws.h"
#include "core/base/buf.h"
#include "core/base/util.h"
#include "core/engine.h"
#include "tests/support/fake_aws.h"
#include "tests/support/make.h"
#include "tests/support/run_now.h"
#include "test.h"
#include "tmptree.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define ECS "AmazonEC2ContainerServiceV20141113."

static char tmp[64];
static mw__faws *fake;
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static mw__buf seen; /* every log line, error and result text */

typedef struct result {
    int status; /* io.result, -1: none yet */
    char message[8192];
    double value;
} result;

static result res;
static int reported, reported_ok; /* io.result records seen, OK ones */

static void see(const char *s)
{
    pthread_mutex_lock(&seen_mu);
    mw__buf_adds(&seen, s);
    mw__buf_addc(&seen, '\n');
    pthread_mutex_unlock(&seen_mu);
}

static void log_line(mw_log_level level, const char *where, const char *msg, void *ud)
{
    (void)level;
    (void)ud;
    see(where ? where : "");
    see(msg);
}

static void collect(const mw_record *r, void *ud)
{
    (void)ud;
    if (r->message)
        see(r->message);
    if (r->type == MW_RECORD_SERVICE_CHECK && strcmp(r->name, "io.result") == 0) {
        res.status = r->status;
        reported++;
        reported_ok += r->status == 0;
        snprintf(res.message, sizeof res.message, "%s", r->message ? r->message : "");
    } else if (r->type == MW_RECORD_METRIC && strcmp(r->name, "io.value") == 0) {
        res.value = r->value;
    }
}

/* The check: one request from the instance, reported with everything it
 * returned (the result table walked whole, or the error). */
static void write_checks(void)
{
    tmptree_new(tmp, sizeof tmp, "mw-aws");
    tmptree_put(tmp, "checks/aws.lua",
                "local function dump(v)\n"
                "  if type(v) ~= 'table' then return tostring(v) end\n"
                "  local s = {}\n"
                "  for k, x in pairs(v) do s[#s + 1] = tostring(k) .. '=' .. dump(x) end\n"
                "  table.sort(s)\n"
                "  return '{' .. table.concat(s, ',') .. '}'\n"
                "end\n"
                "return { run = function(self)\n"
                "  local i = self.instance\n"
                "  local r, err = mw.aws.request{service = i.service or 'ecs', region = i.region,\n"
                "    target = '" ECS "' .. i.action, body = i.body}\n"
                "  if not r then return mw.service_check('io.result', mw.CRITICAL, nil, err) end\n"
                "  mw.gauge('io.value', r.status)\n"
                "  mw.service_check('io.result', mw.OK, nil, dump(r))\n"
                "end }\n");
    tmptree_put(
        tmp, "checks/pages.lua",
        "return { run = function(self)\n"
        "  local n, calls, tok = 0, 0, nil\n"
        "  repeat\n"
        "    local r, err = mw.aws.request{service = 'ecs', target = '" ECS "ListClusters',\n"
        "      body = {maxResults = 10, nextToken = tok}}\n"
        "    if not r then return mw.service_check('io.result', mw.CRITICAL, nil, err) end\n"
        "    calls = calls + 1\n"
        "    n = n + #r.json.clusterArns\n"
        "    tok = r.json.nextToken\n"
        "  until not tok or calls > 10\n"
        "  mw.gauge('io.value', n)\n"
        "  mw.service_check('io.result', mw.OK, nil, 'calls ' .. calls)\n"
        "end }\n");
}

static mw_engine *new_engine(void)
{
    mw_config *cfg = mw_config_new();
    char dir[128];
    CHECK(mw_config_set(cfg, "no_bundled", "true", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "sink", "none", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "log_level", "debug", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "flush_interval", "600", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "docker", "off", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "ecs", "off", NULL) == MW_OK);
    CHECK(mw_config_set(cfg, "workers", "2", NULL) == MW_OK);
    CHECK(mw_config_set_log(cfg, log_line, NULL) == MW_OK);
    snprintf(dir, sizeof dir, "%s/checks", tmp);
    CHECK(mw_config_set(cfg, "checks_dir", dir, NULL) == MW_OK);
    mw_engine *eng = t_engine(cfg);
    t_asked_only(eng);
    mw_config_free(cfg);
    CHECK(mw_engine_add_sink(eng, collect, NULL) == MW_OK);
    return eng;
}

static const char *const aws_vars[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_ECS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_DISABLED",
    "ECS_CONTAINER_METADATA_URI_V4",
    "ECS_CONTAINER_METADATA_URI",
};

static void clear_env(void)
{
    for (size_t i = 0; i < MW_ARRAY_LEN(aws_vars); i++)
        unsetenv(aws_vars[i]);
}

/* The environment of a test: the ECS endpoint is the fake. */
static void base_env(int region)
{
    clear_env();
    setenv("AWS_ENDPOINT_URL_ECS", mw__faws_url(fake), 1);
    if (region)
        setenv("AWS_REGION", "us-east-1", 1);
}

/* Runs `id` now (t_run_now: once the previous run is done) and steps the
 * engine until it reported, at most `max_s`. */
static int run(mw_engine *eng, const char *id, double max_s)
{
    res.status = -1;
    res.message[0] = '\0';
    CHECK(t_run_now(eng, id) == MW_OK);
    double end = mw__mono() + max_s;
    while (res.status < 0 && mw__mono() < end) {
        for (int i = 0; i < 10; i++)
            mw_engine_step(eng, 5);
        mw_engine_flush(eng);
    }
    return res.status;
}

/* One check of `action` with `body` (JSON, may be NULL), run once. */
static int once(const char *action, const char *body, const char *extra, double timeout)
{
    char j[2048];
    snprintf(j, sizeof j, "{\"action\":\"%s\"%s%s%s%s}", action, body ? ",\"body\":" : "",
             body ? body : "", extra ? "," : "", extra ? extra : "");
    mw_engine *eng = new_engine();
    const char *id = t_schedule(eng, "aws", j, timeout);
    int st = id ? run(eng, id, timeout + 5) : -1;
    mw_engine_free(eng);
    return st;
}

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int contains(const char *hay, const char *needle)
{
    return needle && *needle && strstr(hay, needle) != NULL;
}

/* Remembers a secret to look for at the end. */
static char secrets[64][256];
static size_t nsecrets;

static void secret(const char *s)
{
    if (s && *s && nsecrets < 64)
        snprintf(secrets[nsecrets++], sizeof secrets[0], "%s", s);
}

static void last_signature(void)
{
    char sig[80];
    mw__faws_last_signature(fake, sig, sizeof sig);
    secret(sig);
}

/* ------------------------------------------------------------- cases */

static void test_env(void)
{
    base_env(1);
    mw__faws_put_cluster(fake, "prod");
    mw__faws_add_key(fake, "AKIDENVLONGTERM00001", "envSecret/Long+Term0001abcdefghijklmnopqr",
                     NULL, 0);
    secret("AKIDENVLONGTERM00001");
    secret("envSecret/Long+Term0001abcdefghijklmnopqr");
    setenv("AWS_ACCESS_KEY_ID", "AKIDENVLONGTERM00001", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envSecret/Long+Term0001abcdefghijklmnopqr", 1);
    CHECK(once("ListClusters", "{}", NULL, 5) == 0);
    CHECK(contains(res.message, "cluster/prod"));
    CHECK(contains(res.message, "status=200"));
    CHECK(contains(res.message, "json={clusterArns="));
    last_signature();

    /* a wrong secret: the fake recomputes the signature and refuses */
    setenv("AWS_SECRET_ACCESS_KEY", "envSecret/WRONG+wrong0001abcdefghijklmnopqr", 1);
    secret("envSecret/WRONG+wrong0001abcdefghijklmnopqr");
    CHECK(once("ListClusters", NULL, NULL, 5) == 2);
    CHECK(starts(res.message, "InvalidSignatureException: The request signature we calculated"));

    /* temporary keys: the token is sent; without it the key is refused */
    mw__faws_add_key(fake, "ASIAENVTEMPORARY0001", "envSecret/Temp+0001abcdefghijklmnopqrst",
                     "envSessionToken/IQoJb3JpZ2luX2VjEPr//////////wEaCXVzLWVhc3QtMSJH", 0);
    secret("ASIAENVTEMPORARY0001");
    secret("envSecret/Temp+0001abcdefghijklmnopqrst");
    secret("envSessionToken/IQoJb3JpZ2luX2VjEPr//////////wEaCXVzLWVhc3QtMSJH");
    setenv("AWS_ACCESS_KEY_ID", "ASIAENVTEMPORARY0001", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envSecret/Temp+0001abcdefghijklmnopqrst", 1);
    CHECK(once("ListClusters", NULL, NULL, 5) == 2);
    CHECK_STR(res.message, "UnrecognizedClientException: The security token included in the "
                           "request is invalid.");
    setenv("AWS_SESSION_TOKEN", "envSessionToken/IQoJb3JpZ2luX2VjEPr//////////wEaCXVzLWVhc3QtMSJH",
           1);
    CHECK(once("ListClusters", NULL, NULL, 5) == 0);
    last_signature();

    /* a wrong secret with a token: AWS's message quotes the canonical
     * request, token included; the check sees it redacted */
    setenv("AWS_SECRET_ACCESS_KEY", "envSecret/WRONG+wrong0001abcdefghijklmnopqr", 1);
    CHECK(once("ListClusters", NULL, NULL, 5) == 2);
    char refusal[8192];
    mw__faws_last_refusal(fake, refusal, sizeof refusal);
    CHECK(contains(refusal, "envSessionToken/IQoJb3JpZ2luX2VjEPr")); /* the fake did echo it */
    CHECK(contains(res.message, "x-amz-security-token:[redacted]"));
}

static void test_pages_and_limits(void)
{
    base_env(1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENVLONGTERM00001", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envSecret/Long+Term0001abcdefghijklmnopqr", 1);
    for (int i = 0; i < 24; i++) {
        char name[32];
        snprintf(name, sizeof name, "c%02d", i);
        mw__faws_put_cluster(fake, name);
    }
    uint64_t before = mw__faws_count(fake, "ListClusters");
    mw_engine *eng = new_engine();
    const char *id = t_schedule(eng, "pages", "{}", 5);
    CHECK(run(eng, id, 10) == 0);
    CHECK(res.value == 25); /* "prod" and 24 more */
    CHECK_STR(res.message, "calls 3");
    CHECK(mw__faws_count(fake, "ListClusters") - before == 3);
    mw_engine_free(eng);

    /* the model: an instance and a service, described; batch limits */
    CHECK(mw__faws_put_instance(
              fake, "prod",
              "{\"ec2InstanceId\":\"i-0abc\",\"status\":\"ACTIVE\",\"agentConnected\":true,"
              "\"runningTasksCount\":3,\"pendingTasksCount\":0,\"versionInfo\":{\"agentVersion\":"
              "\"1.80.0\"},\"remainingResources\":[{\"name\":\"CPU\",\"type\":\"INTEGER\","
              "\"integerValue\":1024}],\"registeredResources\":[]}") == 0);
    CHECK(once("DescribeContainerInstances",
               "{\"cluster\":\"prod\",\"containerInstances\":[\"i-0abc\"]}", NULL, 5) == 0);
    CHECK(contains(res.message, "agentVersion=1.80.0"));
    CHECK(contains(res.message, "runningTasksCount=3"));
    CHECK(mw__faws_put_service(
              fake, "prod",
              "{\"serviceName\":\"web\",\"desiredCount\":2,\"runningCount\":1,"
              "\"pendingCount\":1,\"events\":[{\"id\":\"e1\",\"createdAt\":"
              "1700000000.5,\"message\":\"(service web) has started 1 tasks\"}]}") == 0);
    CHECK(once("DescribeServices", "{\"cluster\":\"prod\",\"services\":[\"web\"]}", NULL, 5) == 0);
    CHECK(contains(res.message, "desiredCount=2"));
    CHECK(contains(res.message, "has started 1 tasks"));
    CHECK(once("DescribeServices",
               "{\"cluster\":\"prod\",\"services\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\","
               "\"h\",\"i\",\"j\",\"k\"]}",
               NULL, 5) == 2);
    CHECK_STR(res.message, "InvalidParameterException: services can have at most 10 items.");
    CHECK(once("ListServices", "{\"cluster\":\"nope\"}", NULL, 5) == 2);
    CHECK_STR(res.message, "ClusterNotFoundException: Cluster not found.");
}

static void test_errors_and_refusals(void)
{
    base_env(1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDENVLONGTERM00001", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envSecret/Long+Term0001abcdefghijklmnopqr", 1);
    mw__faws_fail_next(fake, "ListClusters", 1, 400, "AccessDeniedException",
                       "User: arn:aws:iam::123456789012:user/mw is not authorized to perform: "
                       "ecs:ListClusters");
    CHECK(once("ListClusters", NULL, NULL, 5) == 2);
    CHECK_STR(res.message, "AccessDeniedException: User: arn:aws:iam::123456789012:user/mw is "
                           "not authorized to perform: ecs:ListClusters");
    CHECK(once("DeleteCluster", "{\"cluster\":\"prod\"}", NULL, 5) == 2);
    CHECK(contains(res.message, "action \"DeleteCluster\" is not allowed"));
    CHECK(once("ListClusters", NULL, "\"service\":\"s3\"", 5) == 2);
    CHECK(contains(res.message, "service \"s3\" is not allowed"));
    CHECK(once("ListClusters", NULL, "\"region\":\"us-east-1:evil\"", 5) == 2);
    CHECK(contains(res.message, "is not a region name"));

    /* throttled twice, then answered */
    uint64_t errs = mw__faws_count(fake, "errors");
    mw__faws_fail_next(fake, NULL, 2, 400, "ThrottlingException", "Rate exceeded");
    CHECK(once("ListClusters", NULL, NULL, 5) == 0);
    CHECK(mw__faws_count(fake, "errors") - errs == 2);
    /* 5xx too; and always throttled: given up with the error */
    mw__faws_fail_next(fake, NULL, 1, 503, "ServiceUnavailableException", "try later");
    CHECK(once("ListClusters", NULL, NULL, 5) == 0);
    mw__faws_fail_next(fake, NULL, 100, 400, "ThrottlingException", "Rate exceeded");
    CHECK(once("ListClusters", NULL, NULL, 5) == 2);
    CHECK_STR(res.message, "ThrottlingException: Rate exceeded");
    mw__faws_fail_next(fake, NULL, 0, 0, NULL, NULL);
}

static void test_full_uri_refresh(void)
{
    char url[256];
    base_env(1);
    snprintf(url, sizeof url, "%s/creds", mw__faws_url(fake));
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-auth-token-XYZZY", 1);
    secret("container-auth-token-XYZZY");
    mw__faws_set_auth_token(fake, "container-auth-token-XYZZY");
    mw__faws_set_lifetime(fake, 3600);
    uint64_t creds0 = mw__faws_count(fake, "creds"), rej0 = mw__faws_count(fake, "rejected");

    /* five checks at once: one lookup */
    mw_engine *eng = new_engine();
    const char *ids[5];
    for (int i = 0; i < 5; i++) {
        char j[128];
        snprintf(j, sizeof j, "{\"action\":\"ListClusters\",\"n\":%d}", i);
        ids[i] = t_schedule(eng, "aws", j, 5);
    }
    reported = reported_ok = 0;
    for (int i = 0; i < 5; i++)
        CHECK(mw__sched_run_now(mw__engine_sched(eng), ids[i]) == MW_OK);
    for (double end = mw__mono() + 10; reported < 5 && mw__mono() < end;) {
        for (int i = 0; i < 10; i++)
            mw_engine_step(eng, 5);
        mw_engine_flush(eng);
    }
    CHECK(reported_ok == 5);
    CHECK(mw__faws_count(fake, "creds") - creds0 == 1);
    secret(mw__faws_last_secret(fake));
    secret(mw__faws_last_token(fake));
    mw_engine_free(eng);

    /* credentials that live 4 s */
    mw__faws_set_lifetime(fake, 4);
    creds0 = mw__faws_count(fake, "creds");
    eng = new_engine();
    for (int i = 0; i < 5; i++) {
        char j[128];
        snprintf(j, sizeof j, "{\"action\":\"ListClusters\",\"n\":%d}", i);
        ids[i] = t_schedule(eng, "aws", j, 5);
    }

    /* 7 s of requests over credentials that live 4 s: refreshed before
     * they expire, no request refused */
    double end = mw__mono() + 7;
    int runs = 0, good = 0;
    while (mw__mono() < end && runs < 200) {
        good += run(eng, ids[runs % 5], 5) == 0;
        runs++;
        secret(mw__faws_last_secret(fake));
        secret(mw__faws_last_token(fake));
        last_signature();
        for (int i = 0; i < 20; i++)
            mw_engine_step(eng, 5);
    }
    CHECK(runs > 3 && good == runs);
    CHECK(mw__faws_count(fake, "creds") - creds0 >= 2); /* 3 or 4 unless the machine crawls */
    CHECK(mw__faws_count(fake, "rejected") == rej0);

    /* ExpiredTokenException: fetched again and retried once */
    uint64_t c1 = mw__faws_count(fake, "creds");
    mw__faws_fail_next(fake, "ListClusters", 1, 400, "ExpiredTokenException",
                       "The security token included in the request is expired");
    CHECK(run(eng, ids[0], 5) == 0);
    CHECK(mw__faws_count(fake, "creds") - c1 == 1);
    secret(mw__faws_last_secret(fake));
    secret(mw__faws_last_token(fake));
    mw_engine_free(eng);

    /* a wrong authorization token: no credentials, and why */
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-auth-token", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    CHECK(once("ListClusters", NULL, NULL, 5) == 2);
    CHECK_STR(res.message, "no AWS credentials: environment (AWS_ACCESS_KEY_ID not set), ECS task "
                           "role (HTTP 401), EC2 instance metadata (AWS_EC2_METADATA_DISABLED is "
                           "true)");

    /* the token from a file (read at each fetch, EKS-style) */
    char path[128];
    snprintf(path, sizeof path, "%s/token", tmp);
    tmptree_put(tmp, "token", "container-auth-token-XYZZY\n");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path, 1);
    CHECK(once("ListClusters", NULL, NULL, 5) == 0);
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");

    /* FULL_URI over http only to loopback or the container hosts: refused
     * before anything is sent */
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.1/creds", 1);
    CHECK(once("ListClusters", NULL, NULL, 5) == 2);
    CHECK(contains(res.message, "ECS task role (AWS_CONTAINER_CREDENTIALS_FULL_URI over http "
                                "must name a loopback address"));
    mw__faws_set_lifetime(fake, 3600);
}

/* A GET straight to the fake's IMDS without a token: refused. */
static int imds_without_token(void)
{
    int port = atoi(strrchr(mw__faws_url(fake), ':') + 1), status = -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char buf[256] = "";
    const char *rq = "GET /latest/meta-data/iam/security-credentials/ HTTP/1.1\r\n"
                     "Host: 127.0.0.1\r\n\r\n";
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        send(fd, rq, strlen(rq), 0) > 0 && recv(fd, buf, sizeof buf - 1, 0) > 12)
        status = atoi(buf + 9);
    if (fd >= 0)
        close(fd);
    return status;
}

static void test_imds(void)
{
    base_env(0);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", mw__faws_url(fake), 1);
    uint64_t tok0 = mw__faws_count(fake, "imds_token"), cr0 = mw__faws_count(fake, "imds_creds");
    CHECK(imds_without_token() == 401);
    CHECK(once("ListClusters", NULL, NULL, 5) == 0); /* the region from the identity document */
    CHECK(contains(res.message, "cluster/prod"));
    CHECK(mw__faws_count(fake, "imds_token") - tok0 >= 1);
    CHECK(mw__faws_count(fake, "imds_creds") - cr0 == 1);
    secret(mw__faws_last_secret(fake));
    secret(mw__faws_last_token(fake));
    last_signature();

    /* the region from the task metadata */
    char uri[256];
    snprintf(uri, sizeof uri, "%s/meta", mw__faws_url(fake));
    setenv("ECS_CONTAINER_METADATA_URI_V4", uri, 1);
    CHECK(once("ListClusters", NULL, NULL, 5) == 0);
}

static void test_none(void)
{
    clear_env();
    setenv("AWS_ENDPOINT_URL_ECS", mw__faws_url(fake), 1);
    CHECK(once("ListClusters", NULL, "\"region\":\"us-east-1\"", 5) == 2);
    CHECK(starts(res.message,
                 "no AWS credentials: environment (AWS_ACCESS_KEY_ID not set), ECS task role "
                 "(AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI "
                 "not set), EC2 instance metadata ("));
    /* no region either */
    CHECK(once("ListClusters", NULL, NULL, 5) == 2);
    CHECK(contains(res.message, "no AWS"));
}

static void test_secrets(void)
{
    const char *s = mw__buf_str(&seen);
    CHECK(seen.len > 1000); /* the debug log and results were seen */
    CHECK(contains(s, "credentials from the ECS task role (temporary, expire"));
    for (size_t i = 0; i < nsecrets; i++) {
        if (contains(s, secrets[i])) {
            fprintf(stderr, "secret %zu (%.6s...) seen\n", i, secrets[i]);
            CHECK(0);
        }
    }
    CHECK(nsecrets > 10);
}

/* ------------------------------------------------------------- main */

static int isolate_network(void)
{
    if (unshare(CLONE_NEWNET) != 0)
        return 0;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    int ok = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP;
    ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

int main(void)
{
    if (!isolate_network())
        printf("not isolated (not root?): running on the host's network, loopback only\n");
    mw__buf_init(&seen, 64u << 20);
    char *err = NULL;
    fake = mw__faws_new(NULL, &err);
    CHECK(fake != NULL);
    if (!fake) {
        fprintf(stderr, "%s\n", err ? err : "?");
        return TEST_RESULT();
    }
    write_checks();
    test_env();
    test_pages_and_limits();
    test_errors_and_refusals();
    test_full_uri_refresh();
    test_imds();
    test_none();
    test_secrets();
    mw__faws_free(fake);
    clear_env();
    tmptree_remove(tmp);
    mw__buf_free(&seen);
    return TEST_RESULT();
}
