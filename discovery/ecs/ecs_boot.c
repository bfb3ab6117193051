/*
 * ecs_boot.c - this boot's id against the one recorded in the state
 * directory (see ecs_boot.h). The record is replaced atomically: written
 * to a temporary file, then renamed over it.
 */
#include "discovery/ecs/ecs_boot.h"

#include "core/base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BOOT_FILE "boot_id"

/* A boot id: 1..63 of [0-9a-fA-F-], whitespace around it dropped, into
 * `out`; 0, or -1 with errno (EINVAL for something else). */
static int read_id(const char *path, char out[MW_ECS_BOOT_ID_MAX])
{
    char buf[MW_ECS_BOOT_ID_MAX + 8];
    size_t n = 0;
    ssize_t r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *p = buf;

    out[0] = '\0';
    if (fd < 0)
        return -1;
    while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    n = strspn(p, "0123456789abcdefABCDEF-");
    if (n == 0 || n >= MW_ECS_BOOT_ID_MAX || strspn(p + n, " \n\t\r") != strlen(p + n)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* Writes `id` as the record; 0, or -1 with errno. */
static int write_id(const char *dir, const char *id)
{
    char *tmp = mw__sprintf("%s/" BOOT_FILE ".tmp", dir), *dst = mw__sprintf("%s/" BOOT_FILE, dir);
    int fd = -1, rc = -1, saved;
    size_t n = strlen(id);

    if (!tmp || !dst) {
        errno = ENOMEM;
        goto out;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        goto out;
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        goto out;
    if (write(fd, id, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
        goto out;
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    rc = rename(tmp, dst);
out:
    saved = errno;
    if (fd >= 0)
        close(fd);
    if (rc != 0 && tmp)
        unlink(tmp);
    free(tmp);
    free(dst);
    errno = saved;
    return rc;
}

static mw_code warn(mw__ecs_boot *b, const char *what, const char *path, int err)
{
    b->warning = mw__sprintf("%s %s: %s; a reboot of this host cannot be told from one run of "
                             "moonwatch to the next",
                             what, path, strerror(err));
    return b->warning ? MW_OK : MW_ENOMEM;
}

mw_code mw__ecs_boot_check(const char *procfs, const char *state_dir, mw__ecs_boot *out)
{
    char *kernel = mw__sprintf("%s/sys/kernel/random/boot_id", procfs ? procfs : "/proc");
    char *record = state_dir ? mw__sprintf("%s/" BOOT_FILE, state_dir) : NULL;
    mw_code rc = MW_ENOMEM;

    memset(out, 0, sizeof *out);
    if (!kernel || (state_dir && !record))
        goto out;
    if (read_id(kernel, out->now) != 0) {
        rc = warn(out, "cannot read the boot id at", kernel, errno);
        goto out;
    }
    if (!state_dir) {
        rc = MW_OK;
        goto out;
    }
    if (read_id(record, out->before) != 0 && errno != ENOENT) {
        rc = warn(out, "cannot read", record, errno);
        goto out;
    }
    out->rebooted = out->before[0] && strcmp(out->before, out->now) != 0;
    rc = MW_OK;
    if (strcmp(out->before, out->now) != 0 && write_id(state_dir, out->now) != 0)
        rc = warn(out, "cannot write", record, errno);
out:
    free(kernel);
    free(record);
    return rc;
}

void mw__ecs_boot_clear(mw__ecs_boot *b)
{
    free(b->warning);
    b->warning = NULL;
}
