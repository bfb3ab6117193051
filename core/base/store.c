/*
 * store.c - persistent key-value stores (see store.h): a sorted array of
 * entries per scope, loaded from and saved to one file per scope.
 *
 * The file, written and read here only:
 *
 *   moonwatch-state 1\n
 *   <key length> <value length>\n<key><value>\n     (one per entry, sorted)
 *
 * Lengths in decimal; keys and values are raw bytes. Anything else (a
 * wrong header, a length past the caps, a missing newline, a key out of
 * order or twice, the file past its cap) makes the whole file unreadable.
 *
 * Ownership: a store owns its entries (key and value in one allocation)
 * and its strings; the directory is borrowed.
 */
#include "core/base/store.h"

#include "core/base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER "moonwatch-state 1\n"
/* A file is at most this: the cap, and each entry's lengths line. */
#define MAX_FILE (2 * MW_STORE_MAX_BYTES + sizeof HEADER)

struct mw__store_dir {
    char *path; /* NULL: in memory only */
    const mw__log *log;
    atomic_int warned;
};

typedef struct entry {
    char *key; /* key bytes, then the value's: one allocation */
    size_t kn, vn;
} entry;

struct mw__store {
    mw__store_dir *dir; /* NULL: in memory only */
    char *scope;
    char *file; /* "<dir>/<scope with '@' for ':'>.state"; NULL in memory */
    entry *v;
    size_t n, cap;
    size_t used;
    int dirty;
};

/* ------------------------------------------------------------- directory */

mw_code mw__store_dir_new(const char *dir, const mw__log *log, mw__store_dir **out)
{
    mw__store_dir *d = calloc(1, sizeof *d);
    *out = NULL;
    if (!d || (dir && !(d->path = mw__strdup(dir)))) {
        free(d);
        return MW_ENOMEM;
    }
    d->log = log;
    *out = d;
    return MW_OK;
}

void mw__store_dir_free(mw__store_dir *d)
{
    if (!d)
        return;
    free(d->path);
    free(d);
}

/* The first trouble with the directory is logged; the others are not. */
static void warn_once(mw__store *s, const char *what, const char *path, int err)
{
    if (atomic_exchange(&s->dir->warned, 1))
        return;
    mw__warn(s->dir->log, s->scope,
             "%s %s: %s; checks keep their state (mw.state) in memory only, lost when moonwatch "
             "stops (said once)",
             what, path, strerror(err));
}

/* ------------------------------------------------------------- entries */

static int cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

size_t mw__store_lower_bound(const mw__store *s, const char *k, size_t kn)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp(s->v[mid].key, s->v[mid].kn, k, kn) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int found(const mw__store *s, size_t i, const char *k, size_t kn)
{
    return i < s->n && cmp(s->v[i].key, s->v[i].kn, k, kn) == 0;
}

int mw__store_get(const mw__store *s, const char *k, size_t kn, const char **v, size_t *vn)
{
    size_t i = mw__store_lower_bound(s, k, kn);
    if (!found(s, i, k, kn))
        return 0;
    *v = s->v[i].key + s->v[i].kn;
    *vn = s->v[i].vn;
    return 1;
}

static size_t cost(size_t kn, size_t vn)
{
    return kn + vn + MW_STORE_ENTRY_COST;
}

static void remove_at(mw__store *s, size_t i)
{
    s->used -= cost(s->v[i].kn, s->v[i].vn);
    free(s->v[i].key);
    memmove(s->v + i, s->v + i + 1, (s->n - i - 1) * sizeof *s->v);
    s->n--;
}

/* Puts a new allocation `e` at `i` (replacing a found entry). */
static mw_code put_at(mw__store *s, size_t i, int replace, entry e)
{
    if (replace) {
        s->used -= cost(s->v[i].kn, s->v[i].vn);
        free(s->v[i].key);
        s->v[i] = e;
    } else {
        if (mw__grow(&s->v, &s->cap, s->n + 1, sizeof *s->v) != MW_OK)
            return MW_ENOMEM;
        memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof *s->v);
        s->v[i] = e;
        s->n++;
    }
    s->used += cost(e.kn, e.vn);
    return MW_OK;
}

static mw_code refuse(const char **why, const char *msg, mw_code rc)
{
    if (why)
        *why = msg;
    return rc;
}

mw_code mw__store_set(mw__store *s, const char *k, size_t kn, const char *v, size_t vn,
                      const char **why)
{
    size_t i = mw__store_lower_bound(s, k, kn);
    int have = found(s, i, k, kn);
    if (kn == 0 || kn > MW_STORE_MAX_KEY)
        return refuse(why, "a key is 1 to 1024 bytes", MW_EINVAL);
    if (!v) {
        if (have) {
            remove_at(s, i);
            s->dirty = 1;
        }
        return MW_OK;
    }
    if (vn > MW_STORE_MAX_VALUE)
        return refuse(why, "a value is at most 64 KiB", MW_EINVAL);
    if (have && s->v[i].vn == vn && memcmp(s->v[i].key + kn, v, vn) == 0)
        return MW_OK;
    size_t old = have ? cost(s->v[i].kn, s->v[i].vn) : 0;
    if (s->used - old + cost(kn, vn) > MW_STORE_MAX_BYTES)
        return refuse(why, "the check's state would pass its cap of 1 MiB", MW_ENOMEM);
    entry e = {malloc(kn + vn + 1), kn, vn};
    if (!e.key)
        return refuse(why, "out of memory", MW_ENOMEM);
    memcpy(e.key, k, kn);
    memcpy(e.key + kn, v, vn);
    e.key[kn + vn] = '\0';
    if (put_at(s, i, have, e) != MW_OK) {
        free(e.key);
        return refuse(why, "out of memory", MW_ENOMEM);
    }
    s->dirty = 1;
    return MW_OK;
}

size_t mw__store_count(const mw__store *s)
{
    return s->n;
}

void mw__store_key(const mw__store *s, size_t i, const char **k, size_t *kn)
{
    *k = s->v[i].key;
    *kn = s->v[i].kn;
}

size_t mw__store_used(const mw__store *s)
{
    return s->used;
}

/* ------------------------------------------------------------- the file */

/* A decimal length at `*p` (before `end`) ending with `stop`; -1 when
 * not one or larger than `max`. */
static long read_len(const char **p, const char *end, char stop, size_t max)
{
    const char *q = *p;
    size_t v = 0;
    if (q == end || *q < '0' || *q > '9')
        return -1;
    while (q < end && *q >= '0' && *q <= '9') {
        v = v * 10 + (size_t)(*q++ - '0');
        if (v > max)
            return -1;
    }
    if (q == end || *q != stop)
        return -1;
    *p = q + 1;
    return (long)v;
}

/* Fills the empty store `s` from the file's text; -1 when malformed
 * (the store is then emptied again). */
static int parse(mw__store *s, const char *p, size_t len)
{
    const char *end = p + len;
    if (len < sizeof HEADER - 1 || memcmp(p, HEADER, sizeof HEADER - 1) != 0)
        return -1;
    p += sizeof HEADER - 1;
    while (p < end) {
        long kn = read_len(&p, end, ' ', MW_STORE_MAX_KEY);
        long vn = kn > 0 ? read_len(&p, end, '\n', MW_STORE_MAX_VALUE) : -1;
        if (vn < 0 || (size_t)(end - p) < (size_t)(kn + vn) + 1 || p[kn + vn] != '\n' ||
            (s->n && cmp(s->v[s->n - 1].key, s->v[s->n - 1].kn, p, (size_t)kn) >= 0) ||
            mw__store_set(s, p, (size_t)kn, p + kn, (size_t)vn, NULL) != MW_OK)
            return -1;
        p += kn + vn + 1;
    }
    return 0;
}

static void clear(mw__store *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].key);
    s->n = 0;
    s->used = 0;
}

static void load(mw__store *s)
{
    char *text = NULL;
    size_t len = 0;
    mw_code rc = mw__read_file(s->file, MAX_FILE, &text, &len);
    if (rc == MW_EIO && (errno == ENOENT || errno == ENOTDIR)) /* none yet; a save says why */
        return;
    if (rc == MW_EIO && errno != EFBIG) {
        warn_once(s, "cannot read", s->file, errno);
    } else if (rc != MW_OK || parse(s, text, len) != 0) {
        clear(s);
        if (rc != MW_ENOMEM)
            mw__warn(s->dir->log, s->scope,
                     "%s is not a state file moonwatch wrote (damaged?): the check starts with "
                     "an empty state, and the file is replaced at its next save",
                     s->file);
    }
    free(text);
    s->dirty = 0;
}

/* Makes `dir`, and its parent when that is missing too. */
static int make_dir(const char *dir)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return 0;
    if (errno != ENOENT)
        return -1;
    char *parent = mw__strdup(dir), *slash = parent ? strrchr(parent, '/') : NULL;
    int rc = -1;
    if (slash && slash != parent) {
        *slash = '\0';
        rc = (mkdir(parent, 0755) == 0 || errno == EEXIST) ? mkdir(dir, 0700) : -1;
        if (rc != 0 && errno == EEXIST)
            rc = 0;
    }
    int e = errno;
    free(parent);
    errno = e;
    return rc;
}

/* The whole file's text (caller frees), its length in `*len`. */
static char *serialize(const mw__store *s, size_t *len)
{
    size_t cap = sizeof HEADER + s->n * 48 + s->used, n = sizeof HEADER - 1;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    memcpy(buf, HEADER, n);
    for (size_t i = 0; i < s->n; i++) {
        const entry *e = &s->v[i];
        n += (size_t)snprintf(buf + n, cap - n, "%zu %zu\n", e->kn, e->vn);
        memcpy(buf + n, e->key, e->kn + e->vn);
        n += e->kn + e->vn;
        buf[n++] = '\n';
    }
    *len = n;
    return buf;
}

/* Writes `text` to a temporary file beside `s->file` and renames it
 * over it: 0, or -1 with errno. */
static int replace_file(mw__store *s, const char *text, size_t len)
{
    char *tmp = mw__sprintf("%s.XXXXXX", s->file);
    int fd, rc = -1, made = 0, e;
    if (!tmp) {
        errno = ENOMEM;
        return -1;
    }
    if (make_dir(s->dir->path) != 0 || (fd = mkstemp(tmp)) < 0)
        goto out;
    made = 1;
    int written = mw__write_all(fd, text, len) == 0 && fsync(fd) == 0;
    if (close(fd) == 0 && written && rename(tmp, s->file) == 0)
        rc = 0;
out:
    e = errno;
    if (rc != 0 && made)
        unlink(tmp);
    free(tmp);
    errno = e;
    return rc;
}

mw_code mw__store_save(mw__store *s)
{
    if (!s->dirty || !s->file)
        return MW_OK;
    size_t len = 0;
    char *text = serialize(s, &len);
    if (!text)
        return MW_ENOMEM;
    int rc = replace_file(s, text, len);
    int e = errno;
    free(text);
    if (rc != 0) {
        warn_once(s, "cannot save the check's state in", s->dir->path, e);
        return MW_EIO;
    }
    s->dirty = 0;
    return MW_OK;
}

/* ------------------------------------------------------------- scopes */

int mw__store_scope_valid(const char *scope)
{
    size_t n = strlen(scope);
    return n > 0 && n <= MW_STORE_MAX_SCOPE && scope[0] != '.' &&
           strspn(scope, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-") == n;
}

/* "<dir>/<scope, ':' as '@'>.state" (caller frees). */
static char *file_of(const char *dir, const char *scope)
{
    char *f = mw__sprintf("%s/%s.state", dir, scope);
    for (char *p = f ? f + strlen(dir) + 1 : NULL; p && *p; p++)
        if (*p == ':')
            *p = '@';
    return f;
}

mw_code mw__store_open(mw__store_dir *d, const char *scope, mw__store **out)
{
    mw_code rc = MW_EINVAL;
    mw__store *s = NULL;
    *out = NULL;
    if (!mw__store_scope_valid(scope))
        goto out;
    rc = MW_ENOMEM;
    if (!(s = calloc(1, sizeof *s)) || !(s->scope = mw__strdup(scope)))
        goto out;
    s->dir = d && d->path ? d : NULL;
    if (s->dir && !(s->file = file_of(d->path, scope)))
        goto out;
    if (s->file)
        load(s);
    *out = s;
    s = NULL;
    rc = MW_OK;
out:
    mw__store_close(s);
    return rc;
}

void mw__store_close(mw__store *s)
{
    if (!s)
        return;
    if (s->scope)
        mw__store_save(s);
    clear(s);
    free(s->v);
    free(s->file);
    free(s->scope);
    free(s);
}
