/*
 * fake_dockerd.c - the fake dockerd's state and control calls: start and
 * stop of the server, the container table (by id, name and id prefix),
 * the events each container operation emits (attributes, timeNano) and
 * the ring of the last 256 of them, and the knobs tests turn.
 *
 * Every call takes `mu` for its whole duration, so an operation's events
 * reach the streams together and in order. The HTTP side lives in
 * fake_dockerd_http.c, the payloads in fake_dockerd_json.c.
 *
 * Ownership: the server owns every container, image and ring entry; the
 * caller's strings are copied. mw__fdd_free() releases everything.
 */
#include "tests/support/fake_dockerd_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_IMAGE "demo/busybox:1.0"
#define DEFAULT_CMD   "sleep 3600"
#define DEFAULT_PATH  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---- small helpers ---- */

static int fail(mw__fdd *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(mw__fdd *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, sizeof d->err, fmt, ap);
    va_end(ap);
    return -1;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void hex64(uint64_t *state, char out[65])
{
    for (int i = 0; i < 4; i++)
        snprintf(out + 16 * i, 17, "%016llx", (unsigned long long)splitmix(state));
}

static uint64_t fnv(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* A stable 64 hex for a name (image and network ids). */
static void hex_of_name(const char *salt, const char *name, char out[65])
{
    uint64_t st = fnv(salt) ^ fnv(name);
    hex64(&st, out);
}

static int is_hex64(const char *s)
{
    size_t i = 0;
    for (; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return i == 64;
}

static size_t strv_len(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t mw__fddi_now_ns(mw__fdd *d)
{
    int64_t t = d->manual_clock ? d->clock_ns : real_ns();
    return t > d->last_ns ? t : d->last_ns;
}

/* The next event's timeNano: above every earlier one. */
static int64_t stamp(mw__fdd *d)
{
    int64_t t = d->manual_clock ? d->clock_ns : real_ns();
    if (t <= d->last_ns)
        t = d->last_ns + 1;
    d->last_ns = t;
    if (d->manual_clock)
        d->clock_ns = t + 1;
    return t;
}

int mw__fddi_parse_version(const char *s, int *out)
{
    char *end;
    errno = 0;
    long major = strtol(s, &end, 10);
    if (end == s || *end != '.' || errno)
        return -1;
    const char *m = end + 1;
    long minor = strtol(m, &end, 10);
    if (end == m || *end || errno || major < 0 || major > 99 || minor < 0 || minor > 999)
        return -1;
    *out = MW_FDDI_VER((int)major, (int)minor);
    return 0;
}

/* ---- the container table ---- */

static size_t bucket(const mw__fdd *d, const char *key)
{
    return (size_t)(fnv(key) & (d->nbuckets - 1));
}

static void index_ctr(mw__fdd *d, mw__fddi_ctr *c)
{
    size_t bi = bucket(d, c->id), bn = bucket(d, c->name);
    c->next_id = d->by_id[bi];
    d->by_id[bi] = c;
    c->next_name = d->by_name[bn];
    d->by_name[bn] = c;
}

static void unindex_name(mw__fdd *d, mw__fddi_ctr *c)
{
    mw__fddi_ctr **pp = &d->by_name[bucket(d, c->name)];
    while (*pp && *pp != c)
        pp = &(*pp)->next_name;
    if (*pp)
        *pp = c->next_name;
}

static void unindex(mw__fdd *d, mw__fddi_ctr *c)
{
    mw__fddi_ctr **pp = &d->by_id[bucket(d, c->id)];
    while (*pp && *pp != c)
        pp = &(*pp)->next_id;
    if (*pp)
        *pp = c->next_id;
    unindex_name(d, c);
}

static int rehash(mw__fdd *d, size_t nb)
{
    mw__fddi_ctr **bi = calloc(nb, sizeof(*bi)), **bn = calloc(nb, sizeof(*bn));
    if (!bi || !bn) {
        free(bi);
        free(bn);
        return -1;
    }
    free(d->by_id);
    free(d->by_name);
    d->by_id = bi;
    d->by_name = bn;
    d->nbuckets = nb;
    for (size_t i = 0; i < d->nctrs; i++)
        index_ctr(d, d->ctrs[i]);
    return 0;
}

/* Makes room for one more container. */
static int table_grow(mw__fdd *d)
{
    if (d->nctrs == d->ctrs_cap) {
        size_t cap = d->ctrs_cap ? d->ctrs_cap * 2 : 64;
        mw__fddi_ctr **v = realloc(d->ctrs, cap * sizeof(*v));
        if (!v)
            return -1;
        d->ctrs = v;
        d->ctrs_cap = cap;
    }
    if (d->nctrs + 1 > d->nbuckets)
        return rehash(d, d->nbuckets ? d->nbuckets * 2 : 64);
    return 0;
}

static mw__fddi_ctr *by_id(mw__fdd *d, const char *id)
{
    if (!d->nbuckets)
        return NULL;
    for (mw__fddi_ctr *c = d->by_id[bucket(d, id)]; c; c = c->next_id)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

static mw__fddi_ctr *by_name(mw__fdd *d, const char *name)
{
    if (!d->nbuckets)
        return NULL;
    for (mw__fddi_ctr *c = d->by_name[bucket(d, name)]; c; c = c->next_name)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

/* dockerd's order: full id, name, unique id prefix. */
mw__fddi_ctr *mw__fddi_find(mw__fdd *d, const char *ref)
{
    if (!ref || !*ref)
        return NULL;
    mw__fddi_ctr *c = by_id(d, ref);
    if (!c)
        c = by_name(d, ref[0] == '/' ? ref + 1 : ref);
    if (c)
        return c;
    size_t n = strlen(ref);
    for (size_t i = 0; i < d->nctrs && n < 64; i++) {
        if (strncmp(d->ctrs[i]->id, ref, n) != 0)
            continue;
        if (c)
            return NULL; /* ambiguous */
        c = d->ctrs[i];
    }
    return c;
}

static void ctr_free(mw__fddi_ctr *c)
{
    if (!c)
        return;
    free(c->name);
    free(c->image);
    free(c->cmd);
    free(c->network_mode);
    free(c->health);
    for (size_t i = 0; i < 2 * c->nlabels; i++)
        free(c->labels[i]);
    free(c->labels);
    for (size_t i = 0; i < c->nenv; i++)
        free(c->env[i]);
    free(c->env);
    for (size_t i = 0; i < c->nnets; i++)
        free(c->nets[i].name);
    free(c->nets);
    free(c->ports);
    free(c);
}

static void table_remove(mw__fdd *d, mw__fddi_ctr *c)
{
    unindex(d, c);
    memmove(d->ctrs + c->idx, d->ctrs + c->idx + 1, (d->nctrs - c->idx - 1) * sizeof(*d->ctrs));
    d->nctrs--;
    for (size_t i = c->idx; i < d->nctrs; i++)
        d->ctrs[i]->idx = i;
    ctr_free(c);
}

static void table_clear(mw__fdd *d)
{
    for (size_t i = 0; i < d->nctrs; i++)
        ctr_free(d->ctrs[i]);
    d->nctrs = 0;
    if (d->nbuckets) {
        memset(d->by_id, 0, d->nbuckets * sizeof(*d->by_id));
        memset(d->by_name, 0, d->nbuckets * sizeof(*d->by_name));
    }
}

/* ---- images ---- */

static void image_full_name(const char *ref, char *out, size_t cap)
{
    const char *slash = strrchr(ref, '/');
    const char *colon = strchr(slash ? slash : ref, ':');
    snprintf(out, cap, "%s%s", ref, colon || strchr(ref, '@') ? "" : ":latest");
}

mw__fddi_image *mw__fddi_find_image(mw__fdd *d, const char *ref)
{
    char full[512];
    const char *hex = strncmp(ref, "sha256:", 7) == 0 ? ref + 7 : ref;
    size_t n = strlen(hex);
    image_full_name(ref, full, sizeof full);
    for (size_t i = 0; i < d->nimgs; i++)
        if (strcmp(d->imgs[i].name, full) == 0)
            return &d->imgs[i];
    for (size_t i = 0; n && n <= 64 && i < d->nimgs; i++)
        if (strncmp(d->imgs[i].id + 7, hex, n) == 0)
            return &d->imgs[i];
    return NULL;
}

/* The image of a new container, registered the first time. */
static int image_id_for(mw__fdd *d, const char *image, char out[72])
{
    char full[512], hex[65];
    image_full_name(image, full, sizeof full);
    for (size_t i = 0; i < d->nimgs; i++)
        if (strcmp(d->imgs[i].name, full) == 0) {
            memcpy(out, d->imgs[i].id, 72);
            return 0;
        }
    mw__fddi_image *v = realloc(d->imgs, (d->nimgs + 1) * sizeof(*v));
    if (!v)
        return -1;
    d->imgs = v;
    mw__fddi_image *img = &v[d->nimgs];
    if (!(img->name = strdup(full)))
        return -1;
    hex_of_name("image", full, hex);
    snprintf(img->id, sizeof img->id, "sha256:%s", hex);
    img->created_ns = mw__fddi_now_ns(d) - 86400LL * 1000000000;
    d->nimgs++;
    memcpy(out, img->id, 72);
    return 0;
}

/* ---- events and the ring ---- */

static void ev_clear(mw__fddi_ev *e)
{
    free(e->modern);
    free(e->legacy);
    free(e->type);
    free(e->action);
    free(e->actor);
    free(e->name);
    memset(e, 0, sizeof(*e));
}

static void ring_clear(mw__fdd *d)
{
    for (size_t i = 0; i < MW_FDDI_RING; i++)
        ev_clear(&d->ring[i]);
    d->ring_head = d->ring_n = 0;
}

/* The slot of a new event, the oldest one dropped when full. */
static mw__fddi_ev *ring_slot(mw__fdd *d)
{
    size_t i = (d->ring_head + d->ring_n) % MW_FDDI_RING;
    if (d->ring_n == MW_FDDI_RING) {
        d->ring_head = (d->ring_head + 1) % MW_FDDI_RING;
        d->ring_n--;
    }
    ev_clear(&d->ring[i]);
    return &d->ring[i];
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Renders, keeps and sends one event. Lost while the engine is down. */
static int push_event(mw__fdd *d, const char *type, const char *action, const char *actor,
                      const char *from, const char *name, const char *const *attrs, size_t npairs)
{
    if (d->down)
        return 0;
    int64_t t = stamp(d);
    mw__fddi_sb m = {0}, l = {0};
    mw__fddi_json_event(&m, type, action, actor, from, attrs, npairs, t, 0);
    mw__fddi_json_event(&l, type, action, actor, from, attrs, npairs, t, 1);
    if (m.oom || l.oom) {
        mw__fddi_sb_free(&m);
        mw__fddi_sb_free(&l);
        return fail(d, "event %s %s: out of memory", type, action);
    }
    mw__fddi_ev *e = ring_slot(d);
    e->t = t;
    e->modern = m.p;
    e->modern_len = m.len;
    e->legacy = l.p;
    e->legacy_len = l.len;
    e->type = strdup(type);
    e->action = strdup(action);
    e->actor = strdup(actor);
    e->name = dup_or_null(name);
    d->ring_n++;
    mw__fddi_broadcast(d, e);
    return 0;
}

/* A key/value pair; `seq` keeps the sort stable (the last of equal
 * keys wins where that matters). */
typedef struct attr {
    const char *k, *v;
    size_t seq;
} attr;

static int attr_cmp(const void *a, const void *b)
{
    const attr *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static void push_attr(attr *a, size_t *n, const char *k, const char *v)
{
    a[*n] = (attr){k, v, *n};
    (*n)++;
}

static int in_pairs(const char *const *extra, const char *key)
{
    for (size_t i = 0; extra && extra[i] && extra[i + 1]; i += 2)
        if (strcmp(extra[i], key) == 0)
            return 1;
    return 0;
}

/* A container event: every label, image and name, then `extra`
 * (key, value, ..., NULL) over them, sorted by key as Go's maps are. */
static int emit_ctr(mw__fdd *d, const mw__fddi_ctr *c, const char *action, const char *const *extra)
{
    size_t nextra = strv_len(extra) / 2, n = 0, max = c->nlabels + 2 + nextra;
    attr *a = malloc(max * sizeof(*a));
    const char **flat = malloc(2 * max * sizeof(*flat));
    if (!a || !flat) {
        free(a);
        free(flat);
        return fail(d, "event %s: out of memory", action);
    }
    const char *const base[] = {"image", c->image, "name", c->name, NULL};
    for (size_t i = 0; i < c->nlabels; i++)
        if (!in_pairs(base, c->labels[2 * i]) && !in_pairs(extra, c->labels[2 * i]))
            push_attr(a, &n, c->labels[2 * i], c->labels[2 * i + 1]);
    for (size_t i = 0; i < 4; i += 2)
        if (!in_pairs(extra, base[i]))
            push_attr(a, &n, base[i], base[i + 1]);
    for (size_t i = 0; i < nextra; i++)
        push_attr(a, &n, extra[2 * i], extra[2 * i + 1]);
    qsort(a, n, sizeof(*a), attr_cmp);
    for (size_t i = 0; i < n; i++) {
        flat[2 * i] = a[i].k;
        flat[2 * i + 1] = a[i].v;
    }
    int rc = push_event(d, "container", action, c->id, c->image, c->name, flat, n);
    free(a);
    free(flat);
    return rc;
}

static const char *net_type(const char *name)
{
    if (strcmp(name, "host") == 0)
        return "host";
    return strcmp(name, "none") == 0 ? "null" : "bridge";
}

static int emit_nets(mw__fdd *d, const mw__fddi_ctr *c, const char *action)
{
    for (size_t i = 0; i < c->nnets; i++) {
        const mw__fddi_net *n = &c->nets[i];
        const char *attrs[] = {"container", c->id, "name", n->name, "type", net_type(n->name)};
        if (push_event(d, "network", action, n->net_id, NULL, NULL, attrs, 3) != 0)
            return -1;
    }
    return 0;
}

/* ---- building a container from a spec ---- */

/* Labels sorted by key; of a repeated key the last value wins. */
static int copy_labels(mw__fddi_ctr *c, const char *const *labels)
{
    size_t n = strv_len(labels) / 2;
    attr *a = malloc((n ? n : 1) * sizeof(*a));
    c->labels = calloc(2 * n + 1, sizeof(char *));
    if (!a || !c->labels) {
        free(a);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        a[i] = (attr){labels[2 * i], labels[2 * i + 1], i};
    qsort(a, n, sizeof(*a), attr_cmp);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i + 1 < n && strcmp(a[i].k, a[i + 1].k) == 0)
            continue;
        char *k = strdup(a[i].k), *v = strdup(a[i].v);
        c->labels[2 * c->nlabels] = k;
        c->labels[2 * c->nlabels + 1] = v;
        if (k || v)
            c->nlabels++;
        rc = k && v ? 0 : -1;
    }
    free(a);
    return rc;
}

static int copy_env(mw__fddi_ctr *c, const char *const *env)
{
    size_t n = strv_len(env);
    int has_path = 0;
    c->env = calloc(n + 2, sizeof(char *));
    if (!c->env)
        return -1;
    for (size_t i = 0; i < n; i++) {
        has_path |= strncmp(env[i], "PATH=", 5) == 0;
        if (!(c->env[c->nenv++] = strdup(env[i])))
            return -1;
    }
    if (!has_path && !(c->env[c->nenv++] = strdup(DEFAULT_PATH)))
        return -1;
    return 0;
}

/* Addresses are handed out in 127.0.0.0/8: 127.0.0.2, 127.0.0.3, ... */
static void assign_ip(mw__fdd *d, mw__fddi_net *n)
{
    unsigned k = ++d->ip_seq;
    snprintf(n->ip, sizeof n->ip, "127.0.%u.%u", (k / 254) % 256, k % 254 + 1);
}

static void finish_net(mw__fddi_net *n)
{
    unsigned a = 0, b = 0, x = 0, y = 0;
    int ok = n->ip[0] && sscanf(n->ip, "%u.%u.%u.%u", &a, &b, &x, &y) == 4;
    hex_of_name("network", n->name, n->net_id);
    snprintf(n->gw, sizeof n->gw, "%s", ok ? "127.0.0.1" : "");
    if (ok)
        snprintf(n->mac, sizeof n->mac, "02:42:%02x:%02x:%02x:%02x", a & 255, b & 255, x & 255,
                 y & 255);
}

static int add_net(mw__fdd *d, mw__fddi_ctr *c, const char *name, const char *ip)
{
    mw__fddi_net *n = &c->nets[c->nnets];
    memset(n, 0, sizeof(*n));
    if (!(n->name = strdup(name)))
        return -1;
    c->nnets++;
    if (ip && *ip)
        snprintf(n->ip, sizeof n->ip, "%s", ip);
    else if (strcmp(name, "host") != 0 && strcmp(name, "none") != 0)
        assign_ip(d, n);
    finish_net(n);
    return 0;
}

static int copy_networks(mw__fdd *d, mw__fddi_ctr *c, const mw__fdd_spec *s)
{
    size_t n = strv_len(s->networks) / 2;
    const char *mode = s->network_mode ? s->network_mode : "default";
    if (!(c->network_mode = strdup(mode)))
        return -1;
    c->nets = calloc(n ? n : 1, sizeof(*c->nets));
    if (!c->nets)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (add_net(d, c, s->networks[2 * i], s->networks[2 * i + 1]) != 0)
            return -1;
    if (n || strncmp(mode, "container:", 10) == 0)
        return 0;
    int bridge = strcmp(mode, "default") == 0 || strcmp(mode, "bridge") == 0;
    return add_net(d, c, bridge ? "bridge" : mode, "");
}

static int port_cmp(const void *a, const void *b)
{
    char ka[32], kb[32];
    const mw__fddi_port *pa = a, *pb = b;
    snprintf(ka, sizeof ka, "%u/%s", pa->priv, pa->proto);
    snprintf(kb, sizeof kb, "%u/%s", pb->priv, pb->proto);
    return strcmp(ka, kb);
}

/* "8080", "8080/udp" or "18080:8080/tcp". */
static int parse_port(const char *s, mw__fddi_port *p)
{
    unsigned a = 0, b = 0;
    int used = 0;
    memset(p, 0, sizeof(*p));
    snprintf(p->proto, sizeof p->proto, "tcp");
    if (sscanf(s, "%u:%u%n", &a, &b, &used) == 2) {
        p->pub = a;
        p->priv = b;
    } else if (sscanf(s, "%u%n", &a, &used) == 1) {
        p->priv = a;
    } else {
        return -1;
    }
    if (s[used] == '/' && s[used + 1] && strlen(s + used + 1) < sizeof p->proto)
        snprintf(p->proto, sizeof p->proto, "%s", s + used + 1);
    else if (s[used])
        return -1;
    return p->priv && p->priv < 65536 && p->pub < 65536 ? 0 : -1;
}

static int copy_ports(mw__fdd *d, mw__fddi_ctr *c, const char *const *ports)
{
    size_t n = strv_len(ports);
    c->ports = calloc(n ? n : 1, sizeof(*c->ports));
    if (!c->ports)
        return fail(d, "spec.ports: out of memory");
    for (size_t i = 0; i < n; i++)
        if (parse_port(ports[i], &c->ports[c->nports++]) != 0)
            return fail(d, "spec.ports[%zu]: \"%s\" is not [host:]port[/proto]", i, ports[i]);
    qsort(c->ports, c->nports, sizeof(*c->ports), port_cmp);
    return 0;
}

static int check_spec(mw__fdd *d, const mw__fdd_spec *s, const char *name)
{
    if (s->id && !is_hex64(s->id))
        return fail(d, "spec.id: \"%s\" is not 64 lowercase hex digits", s->id);
    if (s->id && by_id(d, s->id))
        return fail(d, "spec.id: %s exists", s->id);
    if (!*name || strchr(name, '/'))
        return fail(d, "spec.name: \"%s\" is empty or has a '/'", name);
    if (by_name(d, name))
        return fail(d, "spec.name: the name \"/%s\" is already in use", name);
    if (strv_len(s->labels) % 2 || strv_len(s->networks) % 2)
        return fail(d, "spec.labels/networks: odd number of strings (key, value pairs)");
    return 0;
}

static int fill_ctr(mw__fdd *d, mw__fddi_ctr *c, const mw__fdd_spec *s, const char *name)
{
    const char *image = s->image ? s->image : DEFAULT_IMAGE;
    if (s->id)
        memcpy(c->id, s->id, 65);
    else
        hex64(&d->rng, c->id);
    c->name = strdup(name);
    c->image = strdup(image);
    c->cmd = strdup(s->cmd && *s->cmd ? s->cmd : DEFAULT_CMD);
    c->health = dup_or_null(s->health);
    if (!c->name || !c->image || !c->cmd || (s->health && !c->health) ||
        copy_labels(c, s->labels) != 0 || copy_env(c, s->env) != 0 || copy_networks(d, c, s) != 0 ||
        image_id_for(d, image, c->image_id) != 0)
        return fail(d, "create %s: out of memory", name);
    if (copy_ports(d, c, s->ports) != 0)
        return -1;
    c->state = MW_FDDI_CREATED;
    c->created_ns = mw__fddi_now_ns(d);
    return 0;
}

/* Builds and indexes a container; no events. */
static mw__fddi_ctr *ctr_new(mw__fdd *d, const mw__fdd_spec *s, const char *name)
{
    char gen[32];
    if (!name) {
        snprintf(gen, sizeof gen, "fdd-%u", ++d->name_seq);
        name = gen;
    }
    if (check_spec(d, s, name) != 0)
        return NULL;
    mw__fddi_ctr *c = calloc(1, sizeof(*c));
    if (!c || table_grow(d) != 0) {
        free(c);
        fail(d, "create %s: out of memory", name);
        return NULL;
    }
    if (fill_ctr(d, c, s, name) != 0) {
        ctr_free(c);
        return NULL;
    }
    c->idx = d->nctrs;
    d->ctrs[d->nctrs++] = c;
    index_ctr(d, c);
    return c;
}

/* ---- state changes (lock held) ---- */

static void new_endpoints(mw__fdd *d, mw__fddi_ctr *c)
{
    for (size_t i = 0; i < c->nnets; i++)
        hex64(&d->rng, c->nets[i].ep_id);
}

static int do_start(mw__fdd *d, mw__fddi_ctr *c, int quiet)
{
    if (c->state == MW_FDDI_RUNNING || c->state == MW_FDDI_PAUSED)
        return fail(d, "start %s: already running", c->name);
    if (c->health && c->started_ns) {
        free(c->health); /* health checks start over */
        c->health = strdup("starting");
    }
    c->state = MW_FDDI_RUNNING;
    c->exit_code = 0;
    c->oom_killed = 0;
    c->pid = 1000 + (int)(splitmix(&d->rng) % 60000);
    c->started_ns = mw__fddi_now_ns(d);
    c->finished_ns = 0;
    new_endpoints(d, c);
    if (quiet)
        return 0;
    return emit_nets(d, c, "connect") == 0 && emit_ctr(d, c, "start", NULL) == 0 ? 0 : -1;
}

/* The process is gone: [oom], die, disconnects (oom 2: OOMKilled with
 * no oom event, as an engine that missed it). */
static int do_die(mw__fdd *d, mw__fddi_ctr *c, int code, int oom)
{
    char num[16];
    snprintf(num, sizeof num, "%d", code);
    const char *extra[] = {"exitCode", num, NULL};
    c->state = MW_FDDI_EXITED;
    c->exit_code = code;
    c->oom_killed = oom != 0;
    c->finished_ns = mw__fddi_now_ns(d);
    if (oom == 1 && emit_ctr(d, c, "oom", NULL) != 0)
        return -1;
    if (emit_ctr(d, c, "die", extra) != 0)
        return -1;
    return emit_nets(d, c, "disconnect");
}

static int do_kill(mw__fdd *d, mw__fddi_ctr *c, int sig, int code)
{
    char num[16];
    snprintf(num, sizeof num, "%d", sig);
    const char *extra[] = {"signal", num, NULL};
    if (emit_ctr(d, c, "kill", extra) != 0)
        return -1;
    return do_die(d, c, code, 0);
}

static int need_up(mw__fdd *d, mw__fddi_ctr *c, const char *what)
{
    if (c->state == MW_FDDI_RUNNING || c->state == MW_FDDI_PAUSED)
        return 0;
    return fail(d, "%s %s: not running", what, c->name);
}

/* Looks `ref` up with the lock held; sets the error when unknown. */
static mw__fddi_ctr *lookup(mw__fdd *d, const char *ref, const char *what)
{
    mw__fddi_ctr *c = mw__fddi_find(d, ref);
    if (!c)
        fail(d, "%s: no such container: %s", what, ref ? ref : "(null)");
    return c;
}

/* ---- lifecycle ---- */

static void copy_version(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s);
}

static int init_versions(mw__fdd *d, const mw__fdd_opts *o)
{
    const char *max = o->api_version ? o->api_version : "1.41";
    const char *min = o->min_api_version ? o->min_api_version : "1.12";
    if (mw__fddi_parse_version(max, &d->max_ver) != 0 ||
        mw__fddi_parse_version(min, &d->min_ver) != 0 || d->min_ver > d->max_ver)
        return fail(d, "opts.api_version/min_api_version: \"%s\"/\"%s\" are not 1.NN, min <= max",
                    max, min);
    copy_version(d->max_str, sizeof d->max_str, max);
    copy_version(d->min_str, sizeof d->min_str, min);
    return 0;
}

static int init_sync(mw__fdd *d)
{
    pthread_condattr_t ca;
    if (pthread_mutex_init(&d->mu, NULL) != 0)
        return -1;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        pthread_mutex_destroy(&d->mu);
        return -1;
    }
    return 0;
}

static int init_server(mw__fdd *d, const mw__fdd_opts *o)
{
    if (!o || !o->socket_path || !*o->socket_path)
        return fail(d, "opts.socket_path: missing");
    if (strlen(o->socket_path) >= 108)
        return fail(d, "opts.socket_path: longer than 107 bytes: %s", o->socket_path);
    if (init_versions(d, o) != 0)
        return -1;
    d->path = strdup(o->socket_path);
    d->engine_version = strdup(o->engine_version ? o->engine_version : "20.10.24+dfsg1");
    if (!d->path || !d->engine_version)
        return fail(d, "out of memory");
    d->rng = o->seed ? o->seed : 0x6d6f6f6e77617463ULL;
    d->manual_clock = o->clock_ns != 0;
    d->clock_ns = o->clock_ns;
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    d->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (d->epfd < 0 || d->wake_fd < 0)
        return fail(d, "epoll/eventfd: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &d->tag_wake};
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->wake_fd, &ev) != 0)
        return fail(d, "epoll_ctl: %s", strerror(errno));
    if (mw__fddi_listen(d, d->err, sizeof d->err) != 0)
        return -1;
    if (pthread_create(&d->thread, NULL, mw__fddi_loop, d) != 0)
        return fail(d, "pthread_create failed");
    d->thread_started = 1;
    return 0;
}

static void release(mw__fdd *d)
{
    mw__fddi_free_conns(d);
    mw__fddi_unlisten(d);
    if (d->epfd >= 0)
        close(d->epfd);
    if (d->wake_fd >= 0)
        close(d->wake_fd);
    table_clear(d);
    free(d->ctrs);
    free(d->by_id);
    free(d->by_name);
    for (size_t i = 0; i < d->nimgs; i++)
        free(d->imgs[i].name);
    free(d->imgs);
    ring_clear(d);
    for (size_t i = 0; i < MW_FDD_EP_COUNT; i++)
        free(d->ovr[i].body);
    for (size_t i = 0; i < d->ngone; i++)
        free(d->gone[i]);
    free(d->gone);
    mw__fddi_sb_free(&d->scratch);
    free(d->path);
    free(d->engine_version);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

mw__fdd *mw__fdd_new(const mw__fdd_opts *o, char **err)
{
    mw__fdd *d = calloc(1, sizeof(*d));
    if (!d) {
        if (err)
            *err = strdup("fake_dockerd: out of memory");
        return NULL;
    }
    d->epfd = d->listen_fd = d->wake_fd = -1;
    if (init_sync(d) != 0) {
        free(d);
        if (err)
            *err = strdup("fake_dockerd: mutex/cond init failed");
        return NULL;
    }
    if (init_server(d, o) != 0) {
        if (err)
            *err = strdup(d->err);
        release(d);
        return NULL;
    }
    return d;
}

void mw__fdd_free(mw__fdd *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    pthread_mutex_unlock(&d->mu);
    mw__fddi_wake(d);
    if (d->thread_started)
        pthread_join(d->thread, NULL);
    release(d);
}

const char *mw__fdd_socket_path(const mw__fdd *d)
{
    return d->path;
}

const char *mw__fdd_error(mw__fdd *d)
{
    return d->err;
}

/* ---- control calls ---- */

#define LOCKED(d, expr)                                                                            \
    do {                                                                                           \
        pthread_mutex_lock(&(d)->mu);                                                              \
        int rc_ = (expr);                                                                          \
        pthread_mutex_unlock(&(d)->mu);                                                            \
        return rc_;                                                                                \
    } while (0)

static int create_locked(mw__fdd *d, const mw__fdd_spec *s, char *id_out, int start)
{
    static const mw__fdd_spec none;
    mw__fddi_ctr *c = ctr_new(d, s ? s : &none, s ? s->name : NULL);
    if (!c)
        return -1;
    if (id_out)
        memcpy(id_out, c->id, 65);
    if (emit_ctr(d, c, "create", NULL) != 0)
        return -1;
    return start ? do_start(d, c, 0) : 0;
}

int mw__fdd_create(mw__fdd *d, const mw__fdd_spec *s, char id_out[65])
{
    LOCKED(d, create_locked(d, s, id_out, 0));
}

int mw__fdd_run(mw__fdd *d, const mw__fdd_spec *s, char id_out[65])
{
    LOCKED(d, create_locked(d, s, id_out, 1));
}

static int start_locked(mw__fdd *d, const char *ref)
{
    mw__fddi_ctr *c = lookup(d, ref, "start");
    return c ? do_start(d, c, 0) : -1;
}

int mw__fdd_start(mw__fdd *d, const char *ref)
{
    LOCKED(d, start_locked(d, ref));
}

static int stop_locked(mw__fdd *d, const char *ref)
{
    mw__fddi_ctr *c = lookup(d, ref, "stop");
    if (!c || need_up(d, c, "stop") != 0 || do_kill(d, c, 15, 0) != 0)
        return -1;
    return emit_ctr(d, c, "stop", NULL);
}

int mw__fdd_stop(mw__fdd *d, const char *ref)
{
    LOCKED(d, stop_locked(d, ref));
}

static int kill_locked(mw__fdd *d, const char *ref, int sig)
{
    mw__fddi_ctr *c = lookup(d, ref, "kill");
    if (!c || need_up(d, c, "kill") != 0)
        return -1;
    return do_kill(d, c, sig, 128 + sig);
}

int mw__fdd_kill(mw__fdd *d, const char *ref, int signal)
{
    LOCKED(d, kill_locked(d, ref, signal));
}

static int die_locked(mw__fdd *d, const char *ref, int code, int oom)
{
    mw__fddi_ctr *c = lookup(d, ref, "die");
    if (!c || need_up(d, c, "die") != 0)
        return -1;
    return do_die(d, c, code, oom);
}

int mw__fdd_die(mw__fdd *d, const char *ref, int exit_code, int oom)
{
    LOCKED(d, die_locked(d, ref, exit_code, oom));
}

static int destroy_locked(mw__fdd *d, const char *ref)
{
    mw__fddi_ctr *c = lookup(d, ref, "destroy");
    if (!c)
        return -1;
    if (c->state == MW_FDDI_RUNNING || c->state == MW_FDDI_PAUSED)
        if (do_kill(d, c, 9, 137) != 0)
            return -1;
    int rc = emit_ctr(d, c, "destroy", NULL);
    table_remove(d, c);
    return rc;
}

int mw__fdd_destroy(mw__fdd *d, const char *ref)
{
    LOCKED(d, destroy_locked(d, ref));
}

static int pause_locked(mw__fdd *d, const char *ref, int pause)
{
    mw__fddi_ctr *c = lookup(d, ref, pause ? "pause" : "unpause");
    if (!c)
        return -1;
    if (c->state != (pause ? MW_FDDI_RUNNING : MW_FDDI_PAUSED))
        return fail(d, "%s %s: container is %s", pause ? "pause" : "unpause", c->name,
                    pause ? "not running" : "not paused");
    c->state = pause ? MW_FDDI_PAUSED : MW_FDDI_RUNNING;
    return emit_ctr(d, c, pause ? "pause" : "unpause", NULL);
}

int mw__fdd_pause(mw__fdd *d, const char *ref)
{
    LOCKED(d, pause_locked(d, ref, 1));
}

int mw__fdd_unpause(mw__fdd *d, const char *ref)
{
    LOCKED(d, pause_locked(d, ref, 0));
}

static int restart_locked(mw__fdd *d, const char *ref)
{
    mw__fddi_ctr *c = lookup(d, ref, "restart");
    if (!c)
        return -1;
    if (c->state == MW_FDDI_RUNNING || c->state == MW_FDDI_PAUSED)
        if (do_kill(d, c, 15, 0) != 0 || emit_ctr(d, c, "stop", NULL) != 0)
            return -1;
    if (do_start(d, c, 0) != 0)
        return -1;
    return emit_ctr(d, c, "restart", NULL);
}

int mw__fdd_restart(mw__fdd *d, const char *ref)
{
    LOCKED(d, restart_locked(d, ref));
}

static int health_locked(mw__fdd *d, const char *ref, const char *status)
{
    char action[96];
    mw__fddi_ctr *c = lookup(d, ref, "health");
    if (!c)
        return -1;
    if (!status || !*status || strlen(status) > 64)
        return fail(d, "health %s: bad status", c->name);
    char *h = strdup(status);
    if (!h)
        return fail(d, "health: out of memory");
    free(c->health);
    c->health = h;
    snprintf(action, sizeof action, "health_status: %s", status);
    return emit_ctr(d, c, action, NULL);
}

int mw__fdd_health(mw__fdd *d, const char *ref, const char *status)
{
    LOCKED(d, health_locked(d, ref, status));
}

static int exec_noise_locked(mw__fdd *d, const char *ref)
{
    char exec_id[65];
    mw__fddi_ctr *c = lookup(d, ref, "exec_noise");
    if (!c)
        return -1;
    hex64(&d->rng, exec_id);
    const char *extra_create[] = {"execID", exec_id, NULL};
    const char *extra_die[] = {"execID", exec_id, "exitCode", "0", NULL};
    if (emit_ctr(d, c, "exec_create: /bin/sh -c true", extra_create) != 0 ||
        emit_ctr(d, c, "exec_start: /bin/sh -c true", extra_create) != 0)
        return -1;
    return emit_ctr(d, c, "exec_die", extra_die);
}

int mw__fdd_exec_noise(mw__fdd *d, const char *ref)
{
    LOCKED(d, exec_noise_locked(d, ref));
}

static int rename_locked(mw__fdd *d, const char *ref, const char *new_name)
{
    char old[300];
    mw__fddi_ctr *c = lookup(d, ref, "rename");
    if (!c)
        return -1;
    if (!new_name || !*new_name || strchr(new_name, '/'))
        return fail(d, "rename %s: bad new name", c->name);
    if (by_name(d, new_name))
        return fail(d, "rename %s: the name \"/%s\" is already in use", c->name, new_name);
    char *n = strdup(new_name);
    if (!n)
        return fail(d, "rename: out of memory");
    snprintf(old, sizeof old, "/%s", c->name);
    unindex_name(d, c);
    free(c->name);
    c->name = n;
    size_t bn = bucket(d, c->name);
    c->next_name = d->by_name[bn];
    d->by_name[bn] = c;
    const char *extra[] = {"oldName", old, NULL};
    return emit_ctr(d, c, "rename", extra);
}

int mw__fdd_rename(mw__fdd *d, const char *ref, const char *new_name)
{
    LOCKED(d, rename_locked(d, ref, new_name));
}

static int emit_locked(mw__fdd *d, const char *ref, const char *action, const char *const *extra)
{
    mw__fddi_ctr *c = lookup(d, ref, "emit");
    if (!c)
        return -1;
    if (!action || !*action || strv_len(extra) % 2)
        return fail(d, "emit %s: no action, or odd extra attributes", c->name);
    return emit_ctr(d, c, action, extra);
}

int mw__fdd_emit(mw__fdd *d, const char *ref, const char *action, const char *const *extra)
{
    LOCKED(d, emit_locked(d, ref, action, extra));
}

static int resolve_locked(mw__fdd *d, const char *ref, char *id_out)
{
    mw__fddi_ctr *c = lookup(d, ref, "resolve");
    if (!c)
        return -1;
    if (id_out)
        memcpy(id_out, c->id, 65);
    return 0;
}

int mw__fdd_resolve(mw__fdd *d, const char *ref, char id_out[65])
{
    LOCKED(d, resolve_locked(d, ref, id_out));
}

size_t mw__fdd_container_count(mw__fdd *d)
{
    pthread_mutex_lock(&d->mu);
    size_t n = d->nctrs;
    pthread_mutex_unlock(&d->mu);
    return n;
}

static int bulk_locked(mw__fdd *d, size_t n, const mw__fdd_spec *tmpl, int events)
{
    static const mw__fdd_spec none;
    mw__fdd_spec s = tmpl ? *tmpl : none;
    const char *prefix = s.name ? s.name : "bulk";
    char name[300];
    s.id = NULL;
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s-%u", prefix, ++d->bulk_seq);
        mw__fddi_ctr *c = ctr_new(d, &s, name);
        if (!c)
            return -1;
        if (events && emit_ctr(d, c, "create", NULL) != 0)
            return -1;
        if (do_start(d, c, !events) != 0)
            return -1;
    }
    return 0;
}

int mw__fdd_bulk_create(mw__fdd *d, size_t n, const mw__fdd_spec *tmpl, int emit_events)
{
    LOCKED(d, bulk_locked(d, n, tmpl, emit_events));
}

/* ---- raw stream data, disconnects, engine restarts ---- */

static int inject_line_locked(mw__fdd *d, const char *line)
{
    if (d->down)
        return 0;
    size_t n = strlen(line);
    char *text = malloc(n + 2);
    if (!text)
        return fail(d, "inject_line: out of memory");
    memcpy(text, line, n);
    memcpy(text + n, "\n", 2);
    mw__fddi_ev *e = ring_slot(d);
    e->t = stamp(d);
    e->raw = 1;
    e->modern = text;
    e->modern_len = n + 1;
    e->legacy = strdup(text);
    e->legacy_len = n + 1;
    d->ring_n++;
    mw__fddi_broadcast(d, e);
    return e->legacy ? 0 : fail(d, "inject_line: out of memory");
}

int mw__fdd_inject_line(mw__fdd *d, const char *line)
{
    LOCKED(d, inject_line_locked(d, line));
}

static int inject_raw_locked(mw__fdd *d, const void *p, size_t n, int chunked)
{
    mw__fddi_broadcast_raw(d, p, n, chunked);
    return 0;
}

int mw__fdd_inject_chunk(mw__fdd *d, const void *p, size_t n)
{
    LOCKED(d, inject_raw_locked(d, p, n, 1));
}

int mw__fdd_inject_wire(mw__fdd *d, const void *p, size_t n)
{
    LOCKED(d, inject_raw_locked(d, p, n, 0));
}

int mw__fdd_close_streams(mw__fdd *d, int clean)
{
    LOCKED(d, mw__fddi_end_streams(d, clean));
}

static int down_locked(mw__fdd *d)
{
    if (d->down)
        return 0;
    d->down = 1;
    mw__fddi_unlisten(d);
    mw__fddi_kill_all(d);
    ring_clear(d);
    return 0;
}

int mw__fdd_engine_down(mw__fdd *d)
{
    pthread_mutex_lock(&d->mu);
    int rc = down_locked(d);
    pthread_mutex_unlock(&d->mu);
    mw__fddi_wake(d);
    return rc;
}

static int up_locked(mw__fdd *d)
{
    if (!d->down)
        return 0;
    if (mw__fddi_listen(d, d->err, sizeof d->err) != 0)
        return -1;
    d->down = 0;
    return 0;
}

int mw__fdd_engine_up(mw__fdd *d)
{
    LOCKED(d, up_locked(d));
}

static int restart_engine_locked(mw__fdd *d, int flags)
{
    down_locked(d);
    if (flags & MW_FDD_RESTART_CLEAR)
        table_clear(d);
    for (size_t i = 0; (flags & MW_FDD_RESTART_STOP_ALL) && i < d->nctrs; i++) {
        mw__fddi_ctr *c = d->ctrs[i];
        if (c->state == MW_FDDI_RUNNING || c->state == MW_FDDI_PAUSED) {
            c->state = MW_FDDI_EXITED;
            c->exit_code = 137;
            c->finished_ns = mw__fddi_now_ns(d);
        }
    }
    return up_locked(d);
}

int mw__fdd_engine_restart(mw__fdd *d, int flags)
{
    pthread_mutex_lock(&d->mu);
    int rc = restart_engine_locked(d, flags);
    pthread_mutex_unlock(&d->mu);
    mw__fddi_wake(d);
    return rc;
}

/* ---- request knobs ---- */

static int gone_locked(mw__fdd *d, const char *ref)
{
    char **v = realloc(d->gone, (d->ngone + 1) * sizeof(*v));
    if (!v)
        return fail(d, "inspect_404_once: out of memory");
    d->gone = v;
    if (!(v[d->ngone] = strdup(ref)))
        return fail(d, "inspect_404_once: out of memory");
    d->ngone++;
    return 0;
}

int mw__fdd_inspect_404_once(mw__fdd *d, const char *ref)
{
    if (!ref || !*ref)
        return -1;
    LOCKED(d, gone_locked(d, ref));
}

static int fail_next_locked(mw__fdd *d, mw__fdd_ep ep, int status, const char *body, unsigned times)
{
    if ((unsigned)ep >= MW_FDD_EP_COUNT || status < 100 || status > 999)
        return fail(d, "fail_next: bad endpoint %d or status %d", (int)ep, status);
    char *b = strdup(body ? body : "{\"message\":\"injected failure\"}");
    if (!b)
        return fail(d, "fail_next: out of memory");
    free(d->ovr[ep].body);
    d->ovr[ep].body = b;
    d->ovr[ep].status = status;
    d->ovr[ep].times = times;
    return 0;
}

int mw__fdd_fail_next(mw__fdd *d, mw__fdd_ep ep, int status, const char *body, unsigned times)
{
    LOCKED(d, fail_next_locked(d, ep, status, body, times));
}

static int truncate_locked(mw__fdd *d, mw__fdd_ep ep, size_t bytes)
{
    if ((unsigned)ep >= MW_FDD_EP_COUNT)
        return fail(d, "truncate_next: bad endpoint %d", (int)ep);
    d->ovr[ep].trunc_bytes = bytes;
    d->ovr[ep].trunc_times = 1;
    return 0;
}

int mw__fdd_truncate_next(mw__fdd *d, mw__fdd_ep ep, size_t body_bytes)
{
    LOCKED(d, truncate_locked(d, ep, body_bytes));
}

static int latency_locked(mw__fdd *d, mw__fdd_ep ep, unsigned ms)
{
    if ((unsigned)ep > MW_FDD_EP_COUNT)
        return fail(d, "set_latency: bad endpoint %d", (int)ep);
    for (int i = 0; i < MW_FDD_EP_COUNT; i++)
        if (ep == MW_FDD_EP_COUNT || (int)ep == i)
            d->latency_ms[i] = ms;
    return 0;
}

int mw__fdd_set_latency(mw__fdd *d, mw__fdd_ep ep, unsigned ms)
{
    LOCKED(d, latency_locked(d, ep, ms));
}

static int api_locked(mw__fdd *d, const char *max, const char *min)
{
    char old_max_str[16], old_min_str[16]; /* init_versions writes over d->m*_str */
    memcpy(old_max_str, d->max_str, sizeof old_max_str);
    memcpy(old_min_str, d->min_str, sizeof old_min_str);
    mw__fdd_opts o = {.api_version = max ? max : old_max_str,
                      .min_api_version = min ? min : old_min_str};
    int old_max = d->max_ver, old_min = d->min_ver;
    if (init_versions(d, &o) != 0) {
        d->max_ver = old_max;
        d->min_ver = old_min;
        return -1;
    }
    return 0;
}

int mw__fdd_set_api_version(mw__fdd *d, const char *max, const char *min)
{
    LOCKED(d, api_locked(d, max, min));
}

/* ---- clock ---- */

void mw__fdd_clock_set(mw__fdd *d, int64_t ns)
{
    pthread_mutex_lock(&d->mu);
    d->manual_clock = 1;
    d->clock_ns = ns;
    pthread_mutex_unlock(&d->mu);
}

void mw__fdd_clock_advance(mw__fdd *d, int64_t ns)
{
    pthread_mutex_lock(&d->mu);
    if (!d->manual_clock) {
        d->manual_clock = 1;
        d->clock_ns = mw__fddi_now_ns(d);
    }
    d->clock_ns += ns;
    pthread_mutex_unlock(&d->mu);
}

int64_t mw__fdd_last_event_ns(mw__fdd *d)
{
    pthread_mutex_lock(&d->mu);
    int64_t t = d->last_ns;
    pthread_mutex_unlock(&d->mu);
    return t;
}

/* ---- counters, the request log, waiting ---- */

uint64_t mw__fdd_count(mw__fdd *d, mw__fdd_ep ep)
{
    uint64_t n = 0;
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < MW_FDD_EP_COUNT; i++)
        if (ep == MW_FDD_EP_COUNT || (int)ep == i)
            n += d->counts[i];
    pthread_mutex_unlock(&d->mu);
    return n;
}

void mw__fdd_counts_reset(mw__fdd *d)
{
    pthread_mutex_lock(&d->mu);
    memset(d->counts, 0, sizeof d->counts);
    d->log_head = d->log_n = 0;
    pthread_mutex_unlock(&d->mu);
}

int mw__fdd_last_request(mw__fdd *d, mw__fdd_ep ep, mw__fdd_request *out)
{
    int rc = -1;
    pthread_mutex_lock(&d->mu);
    for (size_t k = d->log_n; k-- > 0;) {
        const mw__fdd_request *r = &d->log[(d->log_head + k) % MW_FDDI_LOG];
        if (ep == MW_FDD_EP_COUNT || r->ep == ep) {
            *out = *r;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

size_t mw__fdd_requests(mw__fdd *d, mw__fdd_request *out, size_t max)
{
    pthread_mutex_lock(&d->mu);
    size_t n = d->log_n < max ? d->log_n : max, skip = d->log_n - n;
    for (size_t k = 0; k < n; k++)
        out[k] = d->log[(d->log_head + skip + k) % MW_FDDI_LOG];
    pthread_mutex_unlock(&d->mu);
    return n;
}

int mw__fdd_streams(mw__fdd *d)
{
    pthread_mutex_lock(&d->mu);
    int n = d->nstreams;
    pthread_mutex_unlock(&d->mu);
    return n;
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* Waits (lock held) until `done` holds or the deadline passes. */
static int wait_until(mw__fdd *d, int (*done)(mw__fdd *, const void *), const void *arg, int ms)
{
    struct timespec ts;
    deadline_after(&ts, ms < 0 ? 0 : ms);
    while (!done(d, arg))
        if (pthread_cond_timedwait(&d->cv, &d->mu, &ts) == ETIMEDOUT)
            return done(d, arg) ? 0 : -1;
    return 0;
}

static int enough_streams(mw__fdd *d, const void *arg)
{
    return d->nstreams >= *(const int *)arg;
}

int mw__fdd_wait_streams(mw__fdd *d, int n, int timeout_ms)
{
    LOCKED(d, wait_until(d, enough_streams, &n, timeout_ms));
}

typedef struct count_goal {
    mw__fdd_ep ep;
    uint64_t n;
} count_goal;

static int enough_requests(mw__fdd *d, const void *arg)
{
    const count_goal *g = arg;
    uint64_t n = 0;
    for (int i = 0; i < MW_FDD_EP_COUNT; i++)
        if (g->ep == MW_FDD_EP_COUNT || (int)g->ep == i)
            n += d->counts[i];
    return n >= g->n;
}

int mw__fdd_wait_count(mw__fdd *d, mw__fdd_ep ep, uint64_t n, int timeout_ms)
{
    count_goal g = {ep, n};
    LOCKED(d, wait_until(d, enough_requests, &g, timeout_ms));
}

/* ---- /events filters ---- */

static int in_list(char *const *v, const char *s, int prefix)
{
    for (; *v; v++)
        if (strcmp(*v, s) == 0 || (prefix && strncmp(s, *v, strlen(*v)) == 0))
            return 1;
    return 0;
}

/* dockerd: a bare health_status, exec_create or exec_start among the
 * event filters makes every event filter a prefix match. */
static int fuzzy_events(char *const *v)
{
    static const char *const bare[] = {"health_status", "exec_create", "exec_start"};
    for (; *v; v++)
        for (size_t i = 0; i < 3; i++)
            if (strcmp(*v, bare[i]) == 0)
                return 1;
    return 0;
}

int mw__fddi_filter_match(const mw__fddi_filter *f, const mw__fddi_ev *ev)
{
    if (ev->raw)
        return 1;
    if (f->types && !in_list(f->types, ev->type, 0))
        return 0;
    if (f->events && !in_list(f->events, ev->action, fuzzy_events(f->events)))
        return 0;
    if (f->containers && !in_list(f->containers, ev->actor, 1) &&
        !(ev->name && in_list(f->containers, ev->name, 1)))
        return 0;
    return 1;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

void mw__fddi_filter_free(mw__fddi_filter *f)
{
    strv_free(f->types);
    strv_free(f->events);
    strv_free(f->containers);
    memset(f, 0, sizeof(*f));
}
