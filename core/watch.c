/*
 * watch.c - inotify on directories with a debounce (see watch.h). The
 * descriptor is non-blocking and read until empty on each readiness;
 * watch descriptors are kept with their paths so that a directory made
 * inside a watched one can be watched by its full path.
 */
#include "core/watch.h"

#include "core/base/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define MASK                                                                                       \
    (IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB |            \
     IN_DELETE_SELF | IN_MOVE_SELF)
#define MAX_WATCHES 4096 /* directories; past this, changes there go unseen */

typedef struct wd_path {
    int wd;
    char *path;
} wd_path;

struct mw__watch {
    mw__loop *loop;
    const mw__log *log;
    int fd;
    mw__io io;
    int io_on; /* io started */
    mw__timer timer;
    uint64_t debounce_ns;
    void (*fn)(void *ud);
    void *ud;
    wd_path *v;
    size_t n, cap;
};

/* Watches `path` (a directory); 0, or -1 when it cannot be watched. */
static int add_one(mw__watch *w, const char *path)
{
    if (w->n >= MAX_WATCHES)
        return -1;
    int wd = inotify_add_watch(w->fd, path, MASK | IN_ONLYDIR);
    if (wd < 0)
        return -1;
    for (size_t i = 0; i < w->n; i++)
        if (w->v[i].wd == wd)
            return 0;
    char *p = mw__strdup(path);
    if (!p || mw__grow(&w->v, &w->cap, w->n + 1, sizeof *w->v) != MW_OK) {
        free(p);
        inotify_rm_watch(w->fd, wd);
        return -1;
    }
    w->v[w->n++] = (wd_path){wd, p};
    return 0;
}

/* Watches `dir` and the directories right inside it (`<check>.d`). */
static void add_tree(mw__watch *w, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d || add_one(w, dir) != 0) {
        if (d)
            closedir(d);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *sub = mw__sprintf("%s/%s", dir, e->d_name);
        struct stat st;
        if (sub && stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            add_one(w, sub);
        free(sub);
    }
    closedir(d);
}

static const char *path_of(const mw__watch *w, int wd)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->v[i].wd == wd)
            return w->v[i].path;
    return NULL;
}

static void fire(mw__timer *t)
{
    mw__watch *w = t->ud;
    w->fn(w->ud);
}

/* A directory made inside a watched one is watched too. */
static void on_event(mw__watch *w, const struct inotify_event *ev)
{
    const char *parent = path_of(w, ev->wd);
    if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO)) && parent && ev->len) {
        char *sub = mw__sprintf("%s/%s", parent, ev->name);
        if (sub)
            add_one(w, sub);
        free(sub);
    }
}

static void on_readable(mw__io *io, uint32_t events)
{
    mw__watch *w = io->ud;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;
    int seen = 0;
    MW_UNUSED(events);
    while ((n = read(w->fd, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            on_event(w, ev);
            p += sizeof *ev + ev->len;
        }
        seen = 1;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR)
        mw__warn(w->log, "watch", "inotify: %s", strerror(errno));
    if (seen) /* debounce: the last change of a burst counts */
        mw__timer_start(w->loop, &w->timer, mw__loop_update_time(w->loop) + w->debounce_ns);
}

mw_code mw__watch_new(mw__loop *loop, const mw__log *log, const char *const *dirs, size_t ndirs,
                      unsigned debounce_ms, void (*fn)(void *ud), void *ud, mw__watch **out)
{
    mw_code rc = MW_ENOMEM;
    mw__watch *w = calloc(1, sizeof *w);
    *out = NULL;
    if (!w)
        goto out;
    *w = (mw__watch){.loop = loop, .log = log, .fn = fn, .ud = ud, .fd = -1};
    w->debounce_ns = (uint64_t)debounce_ms * 1000000u;
    mw__timer_init(&w->timer, fire, w);
    rc = MW_ESYS;
    if ((w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
        goto out;
    for (size_t i = 0; i < ndirs; i++)
        add_tree(w, dirs[i]);
    if ((rc = mw__io_start(loop, &w->io, w->fd, EPOLLIN, on_readable, w)) != MW_OK)
        goto out;
    w->io_on = 1;
    *out = w;
    w = NULL;
out:
    mw__watch_free(w);
    return rc;
}

void mw__watch_free(mw__watch *w)
{
    if (!w)
        return;
    mw__timer_stop(w->loop, &w->timer);
    if (w->fd >= 0) {
        if (w->io_on)
            mw__io_stop(w->loop, &w->io);
        close(w->fd);
    }
    for (size_t i = 0; i < w->n; i++)
        free(w->v[i].path);
    free(w->v);
    free(w);
}

size_t mw__watch_count(const mw__watch *w)
{
    return w ? w->n : 0;
}
