/*
 * tmptree.h - a temporary directory of files for a test (check scripts,
 * templates): made with tmptree_new(), filled with tmptree_put(), removed
 * with tmptree_remove(). Header-only; include after test.h. The tree's
 * path lives in the caller's buffer.
 */
#ifndef MW_TMPTREE_H
#define MW_TMPTREE_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Makes /tmp/<prefix>-XXXXXX into `dir` (at least 64 bytes). */
static inline void tmptree_new(char *dir, size_t size, const char *prefix)
{
    snprintf(dir, size, "/tmp/%s-XXXXXX", prefix);
    CHECK(mkdtemp(dir) != NULL);
}

/* Writes `text` to `dir`/`rel`, making the directories on the way. */
static inline void tmptree_put(const char *dir, const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        CHECK(mkdir(path, 0755) == 0 || errno == EEXIST);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
}

static inline void tmptree_remove(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

#endif
