/*
 * hostname.h - the host name the engine gives every record that names
 * none (the Datadog sink's `host`, the JSON lines' and Prometheus'
 * `host`), and where it came from, decided once when the engine is
 * made:
 *   1. the `hostname` key, from wherever it was set (flags > MW_HOSTNAME
 *      or DD_HOSTNAME > the config file);
 *   2. $DD_HOSTNAME, for an embedder whose config leaves the key unset;
 *   3. the EC2 instance id ("i-..."), read from instance metadata
 *      (IMDSv2) when mw__aws_imds_where() gives a reason to ask it:
 *      never on an ordinary host, never on Fargate (there: 4, the task's
 *      own host name);
 *   4. the system host name (gethostname), else "localhost".
 * A failed or refused IMDS read falls back to 4 with one warning.
 *
 * Blocking: only step 3 waits, at most `timeout` seconds, before any
 * check or source runs.
 */
#ifndef MW_HOSTNAME_H
#define MW_HOSTNAME_H

#include "moonwatch.h"
#include "core/base/log.h"

typedef struct mw__hostname_opts {
    const char *configured; /* the `hostname` key; NULL or "": not set */
    const char *origin;     /* where it was set ("env:DD_HOSTNAME"); NULL: "config" */
    int ec2_metadata;       /* MW_IMDS_AUTO, _ON or _OFF */
    const char *sysfs;      /* where DMI is read; NULL: "/sys" */
    double timeout;         /* the IMDS read, seconds; 0: 2 */
    const mw__log *log;     /* borrowed; may be NULL */
} mw__hostname_opts;

/*
 * The host name into `*name` and where it came from into `*origin` (both
 * caller frees): the key's origin for 1, "env:DD_HOSTNAME" for 2,
 * "ec2_instance_id" for 3, "system" for 4. MW_OK or MW_ENOMEM.
 */
mw_code mw__hostname_resolve(const mw__hostname_opts *o, char **name, char **origin);

#endif
