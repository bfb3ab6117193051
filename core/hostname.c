/*
 * hostname.c - the engine's host name and its origin (see hostname.h).
 */
#include "core/hostname.h"

#include "core/base/aws.h"
#include "core/base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IMDS_TIMEOUT 2.0
#define INSTANCE_ID  "/latest/meta-data/instance-id"

/* "i-" and 8 to 32 lower-case hex digits: what EC2 instance ids are. */
static int instance_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 10 || n > 34 || strncmp(s, "i-", 2) != 0)
        return 0;
    return strspn(s + 2, "0123456789abcdef") == n - 2;
}

static char *system_name(void)
{
    char buf[256] = "";
    if (gethostname(buf, sizeof buf - 1) != 0 || !buf[0])
        snprintf(buf, sizeof buf, "localhost");
    return mw__strdup(buf);
}

/* The instance id, or NULL (logged once when IMDS was asked and failed). */
static char *ec2_instance_id(const mw__hostname_opts *o)
{
    char why[512], *id = NULL, *err = NULL;
    char *base = mw__aws_imds_where(o->ec2_metadata, o->sysfs, why, sizeof why);
    if (!base) {
        mw__debug(o->log, "hostname", "EC2 instance metadata not asked: %s", why);
        return NULL;
    }
    double timeout = o->timeout > 0 ? o->timeout : IMDS_TIMEOUT;
    mw_code rc = mw__aws_imds_get(base, INSTANCE_ID, timeout, &id, &err);
    if (rc == MW_OK && !instance_id_ok(id)) {
        rc = MW_EPARSE;
        err = mw__sprintf("GET %s%s: \"%.40s\" is not an instance id", base, INSTANCE_ID, id);
        free(id);
        id = NULL;
    }
    if (rc != MW_OK)
        mw__warn(o->log, "hostname",
                 "no EC2 instance id (asked because %s): %s; the host name is the system's", why,
                 err ? err : mw_strerror(rc));
    else
        mw__info(o->log, "hostname", "host name %s: the EC2 instance id (asked because %s)", id,
                 why);
    free(err);
    free(base);
    return id;
}

mw_code mw__hostname_resolve(const mw__hostname_opts *o, char **name, char **origin)
{
    const char *env = getenv("DD_HOSTNAME");
    *name = *origin = NULL;
    if (o->configured && o->configured[0]) {
        *name = mw__strdup(o->configured);
        *origin = mw__strdup(o->origin ? o->origin : "config");
    } else if (env && env[0]) {
        *name = mw__strdup(env);
        *origin = mw__strdup("env:DD_HOSTNAME");
    } else if ((*name = ec2_instance_id(o)) != NULL) {
        *origin = mw__strdup("ec2_instance_id");
    } else {
        *name = system_name();
        *origin = mw__strdup("system");
    }
    if (*name && *origin)
        return MW_OK;
    free(*name);
    free(*origin);
    *name = *origin = NULL;
    return MW_ENOMEM;
}
