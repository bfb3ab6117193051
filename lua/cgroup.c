/*
 * cgroup.c - a container's cgroup found from its pid or its id, and its
 * numbers read from the v1 or v2 files (see cgroup.h).
 *
 * One call reads a dozen small files; their text goes through one
 * buffer, allocated for the call with the paths it builds and freed
 * before it returns. Every path is built from the operator's roots, a
 * validated id or pid, fixed names, and cgroup paths the kernel wrote
 * (checked component by component: no "." or "..").
 */
#include "lua/cgroup.h"

#include "core/base/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID_LEN      64
#define FILE_CAP    ((size_t)64 << 10) /* larger than any file read here */
#define SHORT_READ  2048        /* a read shorter than this got the whole file, see slurp() */
#define MAX_PID     4194304     /* the kernel's PID_MAX_LIMIT */
#define REL_MAX     512         /* a cgroup path inside its hierarchy */
#define MAX_TASKS   4096        /* ecs/<task> directories looked at */
#define NS_PER_TICK 10000000ull /* USER_HZ is 100 on Linux */
#define NS_PER_USEC 1000ull
#define UNLIMITED   ((uint64_t)1 << 62) /* a memory "limit" this high is none */

/* The v1 controllers whose files are read. */
enum ctrl { C_CPU, C_CPUACCT, C_MEMORY, C_BLKIO, C_PIDS, NCTRL };
static const char *const ctrl_names[NCTRL] = {"cpu", "cpuacct", "memory", "blkio", "pids"};

typedef struct work {
    int version;
    char dir[NCTRL][PATH_MAX]; /* v1: each controller's directory, "" when
                                * not found; v2: dir[0] */
    long pid;                  /* a process of the container, 0: none known */
    char path[PATH_MAX];
    char buf[FILE_CAP + 1];
} work;

typedef struct kv {
    const char *key;
    enum mw__cg_field f;
    uint64_t mul;
} kv;

/* ------------------------------------------------------------- files */

static const char *join(work *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Formats a path into w->path; NULL when it does not fit. */
static const char *join(work *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->path, sizeof w->path, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < sizeof w->path ? w->path : NULL;
}

static int is_dir(const char *p)
{
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Reads `path` into w->buf, NUL-terminated: 0, or -1 when it is missing,
 * unreadable or larger than FILE_CAP. A read() shorter than SHORT_READ is
 * the whole file, which saves the read() that would only see its end:
 * cgroupfs files and /proc/<pid>/cgroup are one seq_file record (the
 * kernel grows its buffer to hold it), /proc/<pid>/net/dev has short
 * records (the kernel stops a read early only when its 4 KiB buffer is
 * nearly full), and a regular file returns less only at its end. */
static int slurp(work *w, const char *path)
{
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    size_t n = 0;
    ssize_t r = 0;
    if (fd < 0)
        return -1;
    for (;;) {
        r = read(fd, w->buf + n, FILE_CAP - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || (n += (size_t)r) >= FILE_CAP || (n < SHORT_READ && n == (size_t)r))
            break;
    }
    close(fd);
    if (r < 0 || n >= FILE_CAP)
        return -1;
    w->buf[n] = '\0';
    return 0;
}

/* A decimal number at `s` (leading blanks skipped); `*end` after it. */
static int parse_u64(const char *s, const char **end, uint64_t *out)
{
    uint64_t v = 0;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *end = s;
    *out = v;
    return 0;
}

static void set(mw__cg_stats *s, enum mw__cg_field f, uint64_t v)
{
    s->v[f] = v;
    s->set |= 1u << f;
}

static void unset(mw__cg_stats *s, enum mw__cg_field f)
{
    s->set &= ~(1u << f);
}

/* Calls fn(ud, line, len) for each line of `text`. */
static void each_line(const char *text, void (*fn)(void *ud, const char *l, size_t n), void *ud)
{
    while (*text) {
        const char *eol = strchr(text, '\n');
        size_t n = eol ? (size_t)(eol - text) : strlen(text);
        fn(ud, text, n);
        text += n + (eol ? 1 : 0);
    }
}

/* ------------------------------------------------------------- numbers */

typedef struct kv_scan {
    mw__cg_stats *s;
    const kv *want;
    size_t n;
} kv_scan;

/* "key value" lines (memory.stat, cpu.stat, cpuacct.stat). */
static void kv_line(void *ud, const char *l, size_t n)
{
    const kv_scan *k = ud;
    const char *sp = memchr(l, ' ', n), *end;
    uint64_t v;
    for (size_t i = 0; sp && i < k->n; i++) {
        size_t klen = strlen(k->want[i].key);
        if (klen == (size_t)(sp - l) && memcmp(l, k->want[i].key, klen) == 0 &&
            parse_u64(sp, &end, &v) == 0 && v <= UINT64_MAX / k->want[i].mul)
            set(k->s, k->want[i].f, v * k->want[i].mul);
    }
}

static void kv_file(work *w, mw__cg_stats *s, const char *dir, const char *file, const kv *want,
                    size_t n)
{
    kv_scan k = {s, want, n};
    if (dir[0] && slurp(w, join(w, "%s/%s", dir, file)) == 0)
        each_line(w->buf, kv_line, &k);
}

/* A file that holds one number; "max" and the like leave it unread. */
static int one_number(work *w, const char *dir, const char *file, uint64_t *v)
{
    const char *end;
    return dir[0] && slurp(w, join(w, "%s/%s", dir, file)) == 0 && parse_u64(w->buf, &end, v) == 0
               ? 0
               : -1;
}

static void single(work *w, mw__cg_stats *s, const char *dir, const char *file, enum mw__cg_field f)
{
    uint64_t v;
    if (one_number(w, dir, file, &v) == 0)
        set(s, f, v);
}

/* v1 blkio.throttle.io_service_bytes: "8:0 Read 4096" per device and op. */
static void blkio_line(void *ud, const char *l, size_t n)
{
    mw__cg_stats *s = ud;
    const char *op = memchr(l, ' ', n), *end;
    uint64_t v;
    if (!op || (size_t)(++op - l) >= n)
        return;
    size_t left = n - (size_t)(op - l);
    int read = left > 5 && memcmp(op, "Read ", 5) == 0;
    int write = left > 6 && memcmp(op, "Write ", 6) == 0;
    if ((read || write) && parse_u64(op + (read ? 5 : 6), &end, &v) == 0)
        s->v[read ? MW_CG_IO_READ : MW_CG_IO_WRITE] += v;
}

/* v2 io.stat: "8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0". */
static void iostat_line(void *ud, const char *l, size_t n)
{
    mw__cg_stats *s = ud;
    static const struct {
        const char *key;
        enum mw__cg_field f;
    } keys[] = {{" rbytes=", MW_CG_IO_READ}, {" wbytes=", MW_CG_IO_WRITE}};
    const char *end;
    uint64_t v;
    for (size_t i = 0; i < MW_ARRAY_LEN(keys); i++) {
        size_t kl = strlen(keys[i].key);
        for (const char *p = l; p + kl <= l + n; p++)
            if (memcmp(p, keys[i].key, kl) == 0 && parse_u64(p + kl, &end, &v) == 0) {
                s->v[keys[i].f] += v;
                break;
            }
    }
}

/* Totals over every device; 0 when the file lists none. */
static void io_file(work *w, mw__cg_stats *s, const char *dir, const char *file,
                    void (*line)(void *, const char *, size_t))
{
    if (!dir[0] || slurp(w, join(w, "%s/%s", dir, file)) != 0)
        return;
    set(s, MW_CG_IO_READ, 0);
    set(s, MW_CG_IO_WRITE, 0);
    each_line(w->buf, line, s);
}

static void read_v1(work *w, mw__cg_stats *s)
{
    static const kv acct[] = {
        {"user", MW_CG_CPU_USER, NS_PER_TICK},
        {"system", MW_CG_CPU_SYSTEM, NS_PER_TICK},
    };
    static const kv cpu[] = {
        {"nr_periods", MW_CG_CPU_PERIODS, 1},
        {"nr_throttled", MW_CG_CPU_THROTTLED, 1},
        {"throttled_time", MW_CG_CPU_THROTTLED_NS, 1},
    };
    static const kv mem[] = {
        {"total_rss", MW_CG_MEM_RSS, 1},
        {"total_cache", MW_CG_MEM_CACHE, 1},
        {"total_swap", MW_CG_MEM_SWAP, 1},
        {"hierarchical_memory_limit", MW_CG_MEM_LIMIT, 1},
        {"hierarchical_memsw_limit", MW_CG_MEM_SW_LIMIT, 1},
    };
    s->time = mw__mono();
    single(w, s, w->dir[C_CPUACCT], "cpuacct.usage", MW_CG_CPU_USAGE);
    kv_file(w, s, w->dir[C_CPUACCT], "cpuacct.stat", acct, MW_ARRAY_LEN(acct));
    kv_file(w, s, w->dir[C_CPU], "cpu.stat", cpu, MW_ARRAY_LEN(cpu));
    kv_file(w, s, w->dir[C_MEMORY], "memory.stat", mem, MW_ARRAY_LEN(mem));
    single(w, s, w->dir[C_MEMORY], "memory.usage_in_bytes", MW_CG_MEM_USAGE);
    if (s->v[MW_CG_MEM_LIMIT] >= UNLIMITED)
        unset(s, MW_CG_MEM_LIMIT);
    if (s->v[MW_CG_MEM_SW_LIMIT] >= UNLIMITED)
        unset(s, MW_CG_MEM_SW_LIMIT);
    io_file(w, s, w->dir[C_BLKIO], "blkio.throttle.io_service_bytes", blkio_line);
    single(w, s, w->dir[C_PIDS], "pids.current", MW_CG_THREADS);
}

/* memory.swap.max is swap alone; Docker's --memory-swap (and v1's memsw
 * limit, and Datadog's docker.mem.sw_limit) is memory plus swap. */
static void sw_limit_v2(work *w, mw__cg_stats *s)
{
    uint64_t swap;
    if (mw__cg_has(s, MW_CG_MEM_LIMIT) && one_number(w, w->dir[0], "memory.swap.max", &swap) == 0 &&
        swap <= UINT64_MAX - s->v[MW_CG_MEM_LIMIT])
        set(s, MW_CG_MEM_SW_LIMIT, s->v[MW_CG_MEM_LIMIT] + swap);
}

static void read_v2(work *w, mw__cg_stats *s)
{
    static const kv cpu[] = {
        {"usage_usec", MW_CG_CPU_USAGE, NS_PER_USEC},
        {"user_usec", MW_CG_CPU_USER, NS_PER_USEC},
        {"system_usec", MW_CG_CPU_SYSTEM, NS_PER_USEC},
        {"nr_periods", MW_CG_CPU_PERIODS, 1},
        {"nr_throttled", MW_CG_CPU_THROTTLED, 1},
        {"throttled_usec", MW_CG_CPU_THROTTLED_NS, NS_PER_USEC},
    };
    static const kv mem[] = {{"anon", MW_CG_MEM_RSS, 1}, {"file", MW_CG_MEM_CACHE, 1}};
    const char *d = w->dir[0];
    s->time = mw__mono();
    kv_file(w, s, d, "cpu.stat", cpu, MW_ARRAY_LEN(cpu));
    kv_file(w, s, d, "memory.stat", mem, MW_ARRAY_LEN(mem));
    single(w, s, d, "memory.current", MW_CG_MEM_USAGE);
    single(w, s, d, "memory.max", MW_CG_MEM_LIMIT); /* "max": none */
    single(w, s, d, "memory.swap.current", MW_CG_MEM_SWAP);
    sw_limit_v2(w, s);
    io_file(w, s, d, "io.stat", iostat_line);
    single(w, s, d, "pids.current", MW_CG_THREADS);
}

/* ------------------------------------------------------------- network */

typedef struct dev_scan {
    mw__cg_stats *s;
    int line;
} dev_scan;

/* /proc/<pid>/net/dev: two header lines, then "  eth0: rx_bytes rx_packets
 * (6 more) tx_bytes ...". */
static void dev_line(void *ud, const char *l, size_t n)
{
    dev_scan *d = ud;
    mw__cg_stats *s = d->s;
    const char *colon = memchr(l, ':', n), *p, *name = l;
    uint64_t v[9];
    if (d->line++ < 2 || !colon || s->nnet == MW_CG_MAX_IFACES)
        return;
    while (name < colon && *name == ' ')
        name++;
    size_t len = (size_t)(colon - name);
    if (len == 0 || len >= sizeof s->net[0].name || (len == 2 && memcmp(name, "lo", 2) == 0))
        return;
    p = colon + 1;
    for (int i = 0; i < 9; i++)
        if (parse_u64(p, &p, &v[i]) != 0)
            return;
    mw__cg_iface *f = &s->net[s->nnet++];
    memcpy(f->name, name, len);
    f->name[len] = '\0';
    f->rx_bytes = v[0];
    f->tx_bytes = v[8];
}

/* The network namespace of `pid`, as its link reads ("net:[4026531992]"). */
static int netns(work *w, const char *procfs, long pid, char *out, size_t size)
{
    const char *p = join(w, "%s/%ld/ns/net", procfs, pid);
    ssize_t n = p ? readlink(p, out, size - 1) : -1;
    if (n <= 0)
        return -1;
    out[n] = '\0';
    return 0;
}

/* Whether process w->pid has a network namespace of its own: in the
 * host's (--network host) the interfaces and their numbers are the host's;
 * pid 1's namespace under procfs_path is the host's. */
static int own_netns(work *w, const mw__host_paths *p)
{
    char mine[64], host[64];
    return w->pid > 0 && netns(w, p->procfs, w->pid, mine, sizeof mine) == 0 &&
           netns(w, p->procfs, 1, host, sizeof host) == 0 && strcmp(mine, host) != 0;
}

/* The container's interfaces from /proc/<pid>/net/dev: -1 when that
 * process is gone. */
static int read_net(work *w, const mw__host_paths *p, mw__cg_stats *s)
{
    dev_scan d = {s, 0};
    if (slurp(w, join(w, "%s/%ld/net/dev", p->procfs, w->pid)) != 0)
        return -1;
    s->own_netns = 1;
    s->pid = w->pid;
    each_line(w->buf, dev_line, &d);
    return 0;
}

/* ------------------------------------------------------------- locating */

int mw__cg_valid_id(const char *id)
{
    size_t i = 0;
    for (; id && i < ID_LEN; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    return id && id[i] == '\0';
}

/* `<id>`, or `<runtime>-<id>.scope` (docker-, cri-containerd-, libpod-). */
static int names_container(const char *c, size_t n, const char *id)
{
    if (n == ID_LEN)
        return memcmp(c, id, ID_LEN) == 0;
    return n >= ID_LEN + 8 && memcmp(c + n - 6, ".scope", 6) == 0 && c[n - 7 - ID_LEN] == '-' &&
           memcmp(c + n - 6 - ID_LEN, id, ID_LEN) == 0;
}

/* The length of cgroup path `p` (n bytes) up to and including its last
 * component that names container `id`; 0 when none does, or when the path
 * is not a plain absolute one (".", "..", empty components, too long). */
static size_t container_prefix(const char *p, size_t n, const char *id)
{
    size_t best = 0, i = 0;
    if (n == 0 || n >= REL_MAX || p[0] != '/')
        return 0;
    while (i < n) {
        size_t start = ++i, len;
        while (i < n && p[i] != '/')
            i++;
        len = i - start;
        if (len == 0 || (len == 1 && p[start] == '.') ||
            (len == 2 && p[start] == '.' && p[start + 1] == '.'))
            return 0;
        if (names_container(p + start, len, id))
            best = i;
    }
    return best;
}

/* Whether comma-separated `list` (n bytes) holds `name`. */
static int list_has(const char *list, size_t n, const char *name)
{
    size_t k = strlen(name);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && list[j] != ',')
            j++;
        if (j - i == k && memcmp(list + i, name, k) == 0)
            return 1;
        i = j + 1;
    }
    return 0;
}

/* Sets directory c (v1: controller c's) to `<root>/<mount>/<rel>` when it
 * is one. v1: the mount is the hierarchy's name as /proc/<pid>/cgroup
 * lists it ("cpu,cpuacct"), else the controller's own (the link systemd
 * makes); v2 has one hierarchy, mounted at the root. */
static void set_dir(work *w, const char *root, int c, const char *mount, size_t mlen,
                    const char *rel, size_t rlen)
{
    char *d = w->dir[c];
    int n = w->version == 2
                ? snprintf(d, PATH_MAX, "%s%.*s", root, (int)rlen, rel)
                : snprintf(d, PATH_MAX, "%s/%.*s%.*s", root, (int)mlen, mount, (int)rlen, rel);
    if (n > 0 && n < PATH_MAX && is_dir(d))
        return;
    n = w->version == 2 ? -1
                        : snprintf(d, PATH_MAX, "%s/%s%.*s", root, ctrl_names[c], (int)rlen, rel);
    if (n < 0 || n >= PATH_MAX || !is_dir(d))
        d[0] = '\0';
}

typedef struct pid_scan {
    work *w;
    const char *id, *root;
    int found;
} pid_scan;

/* One line of /proc/<pid>/cgroup: "hierarchy-id:controllers:path". */
static void pid_line(void *ud, const char *l, size_t n)
{
    pid_scan *ps = ud;
    work *w = ps->w;
    const char *c1 = memchr(l, ':', n),
               *c2 = c1 ? memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - l)) : 0;
    if (!c2)
        return;
    const char *ctrls = c1 + 1, *path = c2 + 1;
    size_t clen = (size_t)(c2 - ctrls), plen = n - (size_t)(path - l);
    size_t k = container_prefix(path, plen, ps->id);
    if (k == 0)
        return;
    if (w->version == 2 && clen == 0 && c1 - l == 1 && l[0] == '0') {
        set_dir(w, ps->root, 0, "", 0, path, k);
        ps->found |= w->dir[0][0] != '\0';
    }
    for (int c = 0; w->version == 1 && c < NCTRL; c++)
        if (list_has(ctrls, clen, ctrl_names[c])) {
            set_dir(w, ps->root, c, ctrls, clen, path, k);
            ps->found |= w->dir[c][0] != '\0';
        }
}

/* Finds the cgroup through /proc/<pid>/cgroup; 0 when that process is
 * gone or not in container `id` (a pid reused since). */
static int locate_by_pid(work *w, const mw__host_paths *p, const char *id, long pid)
{
    pid_scan ps = {w, id, p->cgroup, 0};
    if (slurp(w, join(w, "%s/%ld/cgroup", p->procfs, pid)) != 0)
        return 0;
    each_line(w->buf, pid_line, &ps);
    if (ps.found)
        w->pid = pid;
    return ps.found;
}

/* `<hier>/ecs/<task>/<id>`: ECS puts a task's containers under its id. */
static int find_ecs(work *w, const char *hier, const char *id, char *rel)
{
    char ecs[PATH_MAX];
    int n = snprintf(ecs, sizeof ecs, "%s/ecs", hier), found = 0, seen = 0;
    DIR *d = n > 0 && (size_t)n < sizeof ecs ? opendir(ecs) : NULL;
    for (struct dirent *e; d && !found && seen < MAX_TASKS && (e = readdir(d)); seen++) {
        if (e->d_name[0] == '.' || strlen(e->d_name) > 128)
            continue;
        found = is_dir(join(w, "%s/%s/%s", ecs, e->d_name, id)) &&
                snprintf(rel, REL_MAX, "/ecs/%s/%s", e->d_name, id) < REL_MAX;
    }
    if (d)
        closedir(d);
    return found;
}

/* The container's cgroup path inside hierarchy `hier`, into `rel`: where
 * Docker's cgroupfs driver puts it, where its systemd driver does, or
 * under an ECS task. */
static int find_layout(work *w, const char *hier, const char *id, char *rel)
{
    static const struct {
        const char *before, *after;
    } layouts[] = {{"/docker/", ""}, {"/system.slice/docker-", ".scope"}};
    for (size_t i = 0; i < MW_ARRAY_LEN(layouts); i++) {
        snprintf(rel, REL_MAX, "%s%s%s", layouts[i].before, id, layouts[i].after);
        if (is_dir(join(w, "%s%s", hier, rel)))
            return 1;
    }
    return find_ecs(w, hier, id, rel);
}

static int locate_by_id(work *w, const mw__host_paths *p, const char *id)
{
    char rel[REL_MAX], hier[PATH_MAX];
    int found = 0;
    if (w->version == 2) {
        if (!find_layout(w, p->cgroup, id, rel))
            return 0;
        set_dir(w, p->cgroup, 0, "", 0, rel, strlen(rel));
        return w->dir[0][0] != '\0';
    }
    /* v1: the layout is the runtime's, the same in every hierarchy; it is
     * looked for in the first hierarchy mounted under its own name. */
    for (int c = 0; c < NCTRL && !found; c++)
        found = snprintf(hier, sizeof hier, "%s/%s", p->cgroup, ctrl_names[c]) < (int)sizeof hier &&
                is_dir(hier) && find_layout(w, hier, id, rel);
    for (int c = 0; found && c < NCTRL; c++)
        set_dir(w, p->cgroup, c, ctrl_names[c], strlen(ctrl_names[c]), rel, strlen(rel));
    return found;
}

/* A process of the container for its interfaces: the first of
 * cgroup.procs (a pid known to be in it is used instead). */
static void first_proc(work *w)
{
    const char *end;
    uint64_t v;
    for (int c = 0; !w->pid && c < NCTRL; c++)
        if (w->dir[c][0] && slurp(w, join(w, "%s/cgroup.procs", w->dir[c])) == 0 &&
            parse_u64(w->buf, &end, &v) == 0 && v > 0 && v <= MAX_PID)
            w->pid = (long)v;
}

/* ------------------------------------------------------------- reading */

static int loc_matches(const mw__cg_loc *l, const char *id, long pid)
{
    return l && l->version && l->pid == pid && strcmp(l->id, id) == 0;
}

/* w's directories from a location found before. */
static void loc_load(work *w, const mw__host_paths *p, const mw__cg_loc *l)
{
    w->version = l->version;
    w->pid = l->proc;
    for (int c = 0; c < NCTRL; c++) {
        int n = l->off[c] == UINT16_MAX
                    ? -1
                    : snprintf(w->dir[c], PATH_MAX, "%s%s", p->cgroup, l->dirs + l->off[c]);
        if (n < 0 || n >= PATH_MAX)
            w->dir[c][0] = '\0';
    }
}

/* Keeps what w found in `l`; nothing when it does not fit. */
static void loc_save(const work *w, const mw__host_paths *p, const char *id, long pid, int netns,
                     mw__cg_loc *l)
{
    size_t root = strlen(p->cgroup), used = 0;
    l->version = 0;
    for (int c = 0; c < NCTRL; c++) {
        l->off[c] = UINT16_MAX;
        if (!w->dir[c][0])
            continue;
        size_t n = strlen(w->dir[c] + root) + 1;
        if (used + n > sizeof l->dirs)
            return;
        memcpy(l->dirs + used, w->dir[c] + root, n);
        l->off[c] = (uint16_t)used;
        used += n;
    }
    memcpy(l->id, id, ID_LEN + 1);
    l->pid = pid;
    l->proc = w->pid;
    l->own_netns = netns;
    l->version = w->version;
}

/* Finds the container's cgroup and the process for its interfaces. */
static int locate(work *w, const mw__host_paths *p, const char *id, long pid)
{
    for (int c = 0; c < NCTRL; c++)
        w->dir[c][0] = '\0';
    w->pid = 0;
    w->version = access(join(w, "%s/cgroup.controllers", p->cgroup), F_OK) == 0 ? 2 : 1;
    if (!(pid > 0 && locate_by_pid(w, p, id, pid)) && !locate_by_id(w, p, id))
        return 0;
    first_proc(w);
    return 1;
}

static void read_numbers(work *w, mw__cg_stats *out)
{
    memset(out, 0, sizeof *out);
    out->version = w->version;
    if (w->version == 2)
        read_v2(w, out);
    else
        read_v1(w, out);
}

/* Reads where `loc` says; 0 when nothing is there any more (no number
 * read, or the process for the interfaces is gone): look again. */
static int read_cached(work *w, const mw__host_paths *p, mw__cg_loc *loc, mw__cg_stats *out)
{
    loc_load(w, p, loc);
    read_numbers(w, out);
    if (out->set == 0 || (loc->own_netns && read_net(w, p, out) != 0)) {
        loc->version = 0;
        return 0;
    }
    return 1;
}

mw_code mw__cg_stats_read(const mw__host_paths *p, const char *id, long pid, mw__cg_loc *loc,
                          mw__cg_stats *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!mw__cg_valid_id(id) || pid < 0 || pid > MAX_PID) {
        snprintf(err, errlen, "%s", !mw__cg_valid_id(id) ? "not a container id" : "not a pid");
        return MW_EINVAL;
    }
    work *w = malloc(sizeof *w);
    mw_code rc = MW_OK;
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return MW_ENOMEM;
    }
    if (loc_matches(loc, id, pid) && read_cached(w, p, loc, out))
        goto out;
    if (loc)
        loc->version = 0;
    if (!locate(w, p, id, pid)) {
        snprintf(err, errlen,
                 "no cgroup of container %.12s under %s (stopped, or not on this host)", id,
                 p->cgroup);
        rc = MW_ENOTFOUND;
        goto out;
    }
    read_numbers(w, out);
    int netns = own_netns(w, p);
    if (netns)
        read_net(w, p, out);
    if (loc)
        loc_save(w, p, id, pid, netns, loc);
out:
    free(w);
    return rc;
}
