/*
 * aws_imds.c - EC2 instance metadata (IMDS) for the engine: the one rule
 * that says whether it is asked at all and where (shared by the
 * credentials chain, aws_chain.c, and the host name lookup), and one
 * blocking, bounded IMDSv2 read for the engine's start.
 *
 * IMDS is never asked without a reason: the SDKs try 169.254.169.254
 * blindly, which on an ordinary host costs a timeout and sends a request
 * to whatever answers there.
 */
#include "core/base/aws_int.h"

#include "core/base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IMDS_DEFAULT     "http://169.254.169.254"
#define IMDS_TOKEN_TTL   "60" /* one read: the token is not kept */
#define IMDS_REQ_TIMEOUT 1.0
#define IMDS_MAX_ANSWER  ((size_t)16 << 10)
#define IMDS_MAX_TOKEN   512

static int file_starts(const char *path, const char *prefix, int nocase)
{
    char *text = NULL;
    int yes = 0;
    if (mw__read_file(path, 4096, &text, NULL) == MW_OK)
        yes = nocase ? strncasecmp(text, prefix, strlen(prefix)) == 0
                     : strncmp(text, prefix, strlen(prefix)) == 0;
    free(text);
    return yes;
}

/* Which of the machine's files says it is an EC2 instance, or NULL. */
static const char *dmi_mark(const char *sysfs, char *path, size_t n)
{
    static const struct {
        const char *file, *prefix;
        int nocase;
    } marks[] = {
        {"devices/virtual/dmi/id/sys_vendor", "Amazon EC2", 0},
        {"devices/virtual/dmi/id/board_asset_tag", "i-", 0},
        {"hypervisor/uuid", "ec2", 1},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(marks); i++) {
        snprintf(path, n, "%s/%s", sysfs, marks[i].file);
        if (file_starts(path, marks[i].prefix, marks[i].nocase))
            return path;
    }
    return NULL;
}

static int http_url(const char *u)
{
    return u && (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0) &&
           !strpbrk(u, " \t\r\n");
}

static int env_is(const char *name, const char *value)
{
    const char *v = mw__aws_env(name);
    return v && strcasecmp(v, value) == 0;
}

/* The reason to ask on ECS: an ECS variable (not Fargate: checked before). */
static const char *ecs_reason(void)
{
    if (env_is("AWS_EXECUTION_ENV", "AWS_ECS_EC2"))
        return "AWS_EXECUTION_ENV is AWS_ECS_EC2";
    if (mw__aws_env("ECS_CONTAINER_METADATA_URI_V4"))
        return "ECS_CONTAINER_METADATA_URI_V4 is set (ECS on EC2)";
    if (mw__aws_env("ECS_CONTAINER_METADATA_URI"))
        return "ECS_CONTAINER_METADATA_URI is set (ECS on EC2)";
    return NULL;
}

/* `base` without its trailing '/', or NULL with `why` "out of memory". */
static char *base_of(const char *base, char *why, size_t n)
{
    size_t len = strlen(base);
    while (len > 0 && base[len - 1] == '/')
        len--;
    char *b = mw__strndup(base, len);
    if (!b)
        snprintf(why, n, "out of memory");
    return b;
}

char *mw__aws_imds_where(int mode, const char *sysfs, char *why, size_t n)
{
    const char *ep = mw__aws_env("AWS_EC2_METADATA_SERVICE_ENDPOINT"), *ecs;
    char path[512];
    if (!sysfs)
        sysfs = "/sys";
    if (env_is("AWS_EC2_METADATA_DISABLED", "true")) {
        snprintf(why, n, "AWS_EC2_METADATA_DISABLED is true");
        return NULL;
    }
    if (mode == MW_IMDS_OFF) {
        snprintf(why, n, "ec2_metadata is off");
        return NULL;
    }
    if (env_is("AWS_EXECUTION_ENV", "AWS_ECS_FARGATE")) {
        snprintf(why, n, "on Fargate (AWS_EXECUTION_ENV is AWS_ECS_FARGATE), which has no IMDS");
        return NULL;
    }
    if (ep && !http_url(ep)) {
        snprintf(why, n, "AWS_EC2_METADATA_SERVICE_ENDPOINT is not an http(s) URL");
        return NULL;
    }
    if (ep) {
        snprintf(why, n, "AWS_EC2_METADATA_SERVICE_ENDPOINT is set");
        return base_of(ep, why, n);
    }
    if (mode == MW_IMDS_ON) {
        snprintf(why, n, "ec2_metadata is on");
        return base_of(IMDS_DEFAULT, why, n);
    }
    if ((ecs = ecs_reason()) != NULL) {
        snprintf(why, n, "%s", ecs);
        return base_of(IMDS_DEFAULT, why, n);
    }
    if (dmi_mark(sysfs, path, sizeof path)) {
        snprintf(why, n, "%s says Amazon EC2", path);
        return base_of(IMDS_DEFAULT, why, n);
    }
    snprintf(why, n,
             "not on EC2: AWS_EC2_METADATA_SERVICE_ENDPOINT and the ECS variables not set, and "
             "%s/devices/virtual/dmi/id does not say Amazon EC2",
             sysfs);
    return NULL;
}

/* ------------------------------------------------------------- one read */

/* One request of the read, within what is left until `deadline`: the
 * first line of a 200 answer into `*out`; else an error with `*err`
 * ("PUT <url>: HTTP 401", "GET <url>: timed out after 1.0 s"). */
static mw_code imds_fetch(mw__http_opts *o, double deadline, char **out, char **err)
{
    double left = deadline - mw__mono();
    long status = 0;
    char *body = NULL, *why = NULL;
    size_t len = 0;
    if (left < 0.05) {
        *err = mw__sprintf("%s %s: no time left", o->method, o->url);
        return MW_ETIMEOUT;
    }
    o->timeout = o->connect_timeout = left < IMDS_REQ_TIMEOUT ? left : IMDS_REQ_TIMEOUT;
    mw_code rc = mw__http_fetch(o, &status, &body, &len, &why);
    if (rc != MW_OK) {
        *err = mw__sprintf("%s %s: %s", o->method, o->url, why ? why : mw_strerror(rc));
    } else if (status != 200 || !len) {
        rc = MW_EIO;
        *err = mw__sprintf("%s %s: HTTP %ld%s", o->method, o->url, status,
                           status == 200 ? " with an empty answer" : "");
    } else {
        rc = (*out = mw__strndup(body, strcspn(body, "\r\n"))) ? MW_OK : MW_ENOMEM;
    }
    if (body)
        mw__wipe_free(body);
    free(why);
    return rc;
}

static mw_code imds_read(const char *base, const char *path, double deadline, char **body,
                         char **err)
{
    char url[1024], line[IMDS_MAX_TOKEN + 64];
    char *token = NULL;
    const char *put_h[] = {"X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL};
    mw__http_opts o = {
        .url = url,
        .method = "PUT",
        .body = "",
        .headers = put_h,
        .nheaders = 1,
        .max_body = IMDS_MAX_ANSWER,
        .wipe = 1,
        .direct = 1, /* the host's own endpoint: never through a proxy */
    };
    snprintf(url, sizeof url, "%s/latest/api/token", base);
    mw_code rc = imds_fetch(&o, deadline, &token, err);
    if (rc != MW_OK)
        return rc;
    if (strlen(token) > IMDS_MAX_TOKEN) {
        mw__wipe_free(token);
        *err = mw__sprintf("PUT %s: the token is not one", url);
        return MW_EPARSE;
    }
    snprintf(line, sizeof line, "X-aws-ec2-metadata-token: %s", token);
    mw__wipe_free(token);
    const char *get_h[] = {line};
    snprintf(url, sizeof url, "%s%s", base, path);
    o.method = "GET";
    o.body = NULL;
    o.headers = get_h;
    rc = imds_fetch(&o, deadline, body, err);
    mw__wipe(line, sizeof line);
    return rc;
}

mw_code mw__aws_imds_get(const char *base, const char *path, double timeout, char **body,
                         char **err)
{
    *body = *err = NULL;
    return imds_read(base, path, mw__mono() + timeout, body, err);
}
