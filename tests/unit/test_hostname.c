/*
 * test_hostname.c - the engine's host name (core/hostname.h) and the rule
 * for asking EC2 instance metadata (mw__aws_imds_where): the precedence
 * configured > DD_HOSTNAME > the EC2 instance id > the system's; no
 * request at all without a reason, with AWS_EC2_METADATA_DISABLED, with
 * `ec2_metadata: off` or on Fargate; an IMDS that refuses, is not there
 * or does not answer falls back to the system's name, with one warning,
 * within its bound. IMDS is the fake of tests/support/fake_aws.h on
 * 127.0.0.1, strict as the real one (a GET without a valid token is 401,
 * a PUT without its TTL header 400); the test runs in a network
 * namespace of its own when it can, where 169.254.169.254 is unreachable
 * whatever happens.
 */
#include "core/base/aws.h"
#include "core/base/util.h"
#include "core/hostname.h"
#include "tests/support/fake_aws.h"

#include "test.h"
#include "tmptree.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static mw__faws *fake;
static char sysfs[256]; /* an empty /sys: no DMI */
static char logged[8192];
static int warnings;

static void log_fn(mw_log_level level, const char *where, const char *msg, void *ud)
{
    (void)ud;
    if (level == MW_LOG_WARN)
        warnings++;
    size_t n = strlen(logged);
    snprintf(logged + n, sizeof logged - n, "%s: %s\n", where ? where : "-", msg);
}

static const mw__log test_log = {.level = MW_LOG_DEBUG, .fd = 2, .fn = log_fn};

static const char *const vars[] = {
    "DD_HOSTNAME",       "AWS_EC2_METADATA_DISABLED",     "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EXECUTION_ENV", "ECS_CONTAINER_METADATA_URI_V4", "ECS_CONTAINER_METADATA_URI",
};

static void clear_env(void)
{
    for (size_t i = 0; i < MW_ARRAY_LEN(vars); i++)
        unsetenv(vars[i]);
    logged[0] = '\0';
    warnings = 0;
}

static void at_fake(void)
{
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", mw__faws_url(fake), 1);
}

/* Resolves with `configured` (may be NULL) and `mode`; the host name and
 * origin into the buffers, the requests the fake got into `*reqs`. */
static void resolve(const char *configured, int mode, char *name, char *origin, uint64_t *reqs)
{
    uint64_t before = mw__faws_count(fake, "requests");
    mw__hostname_opts o = {
        .configured = configured,
        .origin = configured ? "file:/etc/moonwatch.yaml:3" : NULL,
        .ec2_metadata = mode,
        .sysfs = sysfs,
        .log = &test_log,
    };
    char *n = NULL, *g = NULL;
    CHECK(mw__hostname_resolve(&o, &n, &g) == MW_OK);
    snprintf(name, 256, "%s", n ? n : "");
    snprintf(origin, 256, "%s", g ? g : "");
    free(n);
    free(g);
    *reqs = mw__faws_count(fake, "requests") - before;
}

static const char *system_name(void)
{
    static char buf[256];
    if (gethostname(buf, sizeof buf - 1) != 0 || !buf[0])
        snprintf(buf, sizeof buf, "localhost");
    return buf;
}

/* ------------------------------------------------------------- the fake */

/* One raw request to the fake; its HTTP status. */
static int raw_status(const char *request)
{
    int port = atoi(strrchr(mw__faws_url(fake), ':') + 1), status = -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char buf[256] = "";
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        send(fd, request, strlen(request), 0) > 0 && recv(fd, buf, sizeof buf - 1, 0) > 12)
        status = atoi(buf + 9);
    if (fd >= 0)
        close(fd);
    return status;
}

/* The fake refuses what the real IMDS refuses. */
static void test_fake_is_strict(void)
{
    CHECK(raw_status("GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n\r\n") == 401);
    CHECK(raw_status("GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n"
                     "X-aws-ec2-metadata-token: made-up\r\n\r\n") == 401);
    CHECK(raw_status("PUT /latest/api/token HTTP/1.1\r\nHost: x\r\n"
                     "Content-Length: 0\r\n\r\n") == 400);
    CHECK(raw_status("PUT /latest/api/token HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                     "X-aws-ec2-metadata-token-ttl-seconds: 99999\r\n\r\n") == 400);
}

/* ------------------------------------------------------------- precedence */

static void test_precedence(void)
{
    char name[256], origin[256];
    uint64_t reqs;

    /* the key wins over everything, and nothing is asked */
    clear_env();
    at_fake();
    setenv("DD_HOSTNAME", "dd-host", 1);
    resolve("cfg-host", MW_IMDS_AUTO, name, origin, &reqs);
    CHECK_STR(name, "cfg-host");
    CHECK_STR(origin, "file:/etc/moonwatch.yaml:3");
    CHECK(reqs == 0);

    /* then DD_HOSTNAME (an embedder's config without the key) */
    resolve(NULL, MW_IMDS_AUTO, name, origin, &reqs);
    CHECK_STR(name, "dd-host");
    CHECK_STR(origin, "env:DD_HOSTNAME");
    CHECK(reqs == 0);

    /* then the instance id: a token, then one GET with it */
    unsetenv("DD_HOSTNAME");
    uint64_t tok = mw__faws_count(fake, "imds_token");
    uint64_t refused = mw__faws_count(fake, "imds_refused");
    resolve(NULL, MW_IMDS_AUTO, name, origin, &reqs);
    CHECK_STR(name, MW_FAWS_INSTANCE_ID);
    CHECK_STR(origin, "ec2_instance_id");
    CHECK(reqs == 2);
    CHECK(mw__faws_count(fake, "imds_token") - tok == 1);
    CHECK(mw__faws_count(fake, "imds_refused") == refused);
    CHECK(strstr(logged, "AWS_EC2_METADATA_SERVICE_ENDPOINT is set") != NULL);
    CHECK(warnings == 0);

    /* then the system's */
    clear_env();
    resolve(NULL, MW_IMDS_AUTO, name, origin, &reqs);
    CHECK_STR(name, system_name());
    CHECK_STR(origin, "system");
    CHECK(reqs == 0);
    CHECK(warnings == 0);
}

/* ------------------------------------------------------------- reasons */

/* Each way of saying no, with the fake where IMDS would be: not one
 * request. */
static void test_no_request(void)
{
    char name[256], origin[256];
    uint64_t reqs;
    static const struct {
        const char *var, *value;
        int mode;
        const char *why;
    } cases[] = {
        {"AWS_EC2_METADATA_DISABLED", "true", MW_IMDS_AUTO, "AWS_EC2_METADATA_DISABLED"},
        {"AWS_EC2_METADATA_DISABLED", "TRUE", MW_IMDS_ON, "AWS_EC2_METADATA_DISABLED"},
        {"AWS_EXECUTION_ENV", "AWS_ECS_FARGATE", MW_IMDS_AUTO, "Fargate"},
        {"AWS_EXECUTION_ENV", "AWS_ECS_FARGATE", MW_IMDS_ON, "Fargate"},
        {NULL, NULL, MW_IMDS_OFF, "ec2_metadata is off"},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        clear_env();
        at_fake();
        setenv("ECS_CONTAINER_METADATA_URI_V4", "http://127.0.0.1:9/v4", 1);
        if (cases[i].var)
            setenv(cases[i].var, cases[i].value, 1);
        resolve(NULL, cases[i].mode, name, origin, &reqs);
        CHECK_STR(origin, "system");
        CHECK(reqs == 0);
        CHECK(warnings == 0);
        CHECK(strstr(logged, cases[i].why) != NULL);
    }
    /* no reason at all: nothing is asked, quickly */
    clear_env();
    double t0 = mw__mono();
    resolve(NULL, MW_IMDS_AUTO, name, origin, &reqs);
    CHECK(mw__mono() - t0 < 0.5);
    CHECK_STR(origin, "system");
    CHECK(strstr(logged, "not on EC2") != NULL);
}

static int where_is(int mode, const char *sys, const char *want_base, const char *want_why)
{
    char why[512];
    char *base = mw__aws_imds_where(mode, sys, why, sizeof why);
    int ok = want_base ? base && strcmp(base, want_base) == 0 : !base;
    ok = ok && strstr(why, want_why) != NULL;
    if (!ok)
        fprintf(stderr, "where: %s (%s)\n", base ? base : "NULL", why);
    free(base);
    return ok;
}

/* The reasons to ask, without asking (the real address is never used). */
static void test_reasons(void)
{
    const char *imds = "http://169.254.169.254";
    char dmi[256];
    clear_env();
    CHECK(where_is(MW_IMDS_AUTO, sysfs, NULL, "not on EC2"));
    CHECK(where_is(MW_IMDS_ON, sysfs, imds, "ec2_metadata is on"));
    setenv("ECS_CONTAINER_METADATA_URI", "http://169.254.170.2/v3", 1);
    CHECK(where_is(MW_IMDS_AUTO, sysfs, imds, "ECS_CONTAINER_METADATA_URI is set"));
    setenv("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4", 1);
    CHECK(where_is(MW_IMDS_AUTO, sysfs, imds, "ECS_CONTAINER_METADATA_URI_V4 is set"));
    clear_env();
    setenv("AWS_EXECUTION_ENV", "AWS_ECS_EC2", 1);
    CHECK(where_is(MW_IMDS_AUTO, sysfs, imds, "AWS_ECS_EC2"));
    clear_env();
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1/", 1);
    CHECK(where_is(MW_IMDS_AUTO, sysfs, "http://127.0.0.1:1", "SERVICE_ENDPOINT is set"));
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "file:///etc/passwd", 1);
    CHECK(where_is(MW_IMDS_ON, sysfs, NULL, "not an http(s) URL"));
    setenv("AWS_EC2_METADATA_DISABLED", "false", 1); /* only "true" disables */
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
    CHECK(where_is(MW_IMDS_AUTO, sysfs, "http://127.0.0.1:1", "is set"));
    clear_env();

    /* DMI: the vendor, or an asset tag that is an instance id */
    tmptree_new(dmi, sizeof dmi, "mw-test-dmi");
    tmptree_put(dmi, "devices/virtual/dmi/id/sys_vendor", "QEMU\n");
    tmptree_put(dmi, "devices/virtual/dmi/id/board_asset_tag", "none\n");
    CHECK(where_is(MW_IMDS_AUTO, dmi, NULL, "not on EC2"));
    tmptree_put(dmi, "devices/virtual/dmi/id/board_asset_tag", "i-0123456789abcdef0\n");
    CHECK(where_is(MW_IMDS_AUTO, dmi, imds, "board_asset_tag says Amazon EC2"));
    tmptree_put(dmi, "devices/virtual/dmi/id/sys_vendor", "Amazon EC2\n");
    CHECK(where_is(MW_IMDS_AUTO, dmi, imds, "sys_vendor says Amazon EC2"));
    CHECK(where_is(MW_IMDS_OFF, dmi, NULL, "ec2_metadata is off"));
    tmptree_remove(dmi);
}

/* ------------------------------------------------------------- failures */

/* A listening socket nobody accepts from: connects, never answers. */
static int silent_port(int *fd)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    if (*fd < 0 || bind(*fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(*fd, 4) != 0 ||
        getsockname(*fd, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    return ntohs(sa.sin_port);
}

static void test_failures(void)
{
    char name[256], origin[256], url[64];
    uint64_t reqs;

    /* IMDS refuses: the system's name, one warning that says why */
    clear_env();
    at_fake();
    mw__faws_set_imds_status(fake, 403);
    resolve(NULL, MW_IMDS_AUTO, name, origin, &reqs);
    mw__faws_set_imds_status(fake, 0);
    CHECK_STR(name, system_name());
    CHECK_STR(origin, "system");
    CHECK(reqs == 1); /* the token was refused: no GET without one */
    CHECK(warnings == 1);
    CHECK(strstr(logged, "/latest/api/token: HTTP 403; the host name is the system's") != NULL);

    /* nothing listens there */
    int fd = -1, port = silent_port(&fd);
    CHECK(port > 0);
    close(fd); /* now refused */
    clear_env();
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    double t0 = mw__mono();
    resolve(NULL, MW_IMDS_ON, name, origin, &reqs);
    CHECK(mw__mono() - t0 < 1.5);
    CHECK_STR(origin, "system");
    CHECK(warnings == 1);

    /* it accepts and never answers: bounded by 1 s a request */
    port = silent_port(&fd);
    CHECK(port > 0);
    clear_env();
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    t0 = mw__mono();
    resolve(NULL, MW_IMDS_AUTO, name, origin, &reqs);
    double took = mw__mono() - t0;
    close(fd);
    CHECK(took > 0.8 && took < 2.5);
    CHECK_STR(origin, "system");
    CHECK(warnings == 1);
    CHECK(strstr(logged, "timed out") != NULL);
}

/* ------------------------------------------------------------- main */

static void isolate_network(void)
{
    if (unshare(CLONE_NEWNET) != 0)
        return; /* not allowed here: the tests never name 169.254.169.254 anyway */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    if (fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    if (fd >= 0)
        close(fd);
}

int main(void)
{
    char *err = NULL;
    isolate_network();
    fake = mw__faws_new(&(mw__faws_opts){0}, &err);
    CHECK(fake != NULL);
    if (!fake) {
        fprintf(stderr, "fake: %s\n", err ? err : "?");
        free(err);
        return TEST_RESULT();
    }
    tmptree_new(sysfs, sizeof sysfs, "mw-test-sys");
    test_fake_is_strict();
    test_precedence();
    test_no_request();
    test_reasons();
    test_failures();
    tmptree_remove(sysfs);
    mw__faws_free(fake);
    return TEST_RESULT();
}
