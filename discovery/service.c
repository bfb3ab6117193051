/*
 * service.c - the service model built from a Docker container inspect
 * document (GET /containers/{id}/json): identity, image split, labels,
 * env, networks, ports, runtime state, tags, and the digest that tells
 * whether two services resolve templates alike.
 *
 * Ownership: mw__service_from_inspect() makes a calloc'd service that
 * owns every string, array and cJSON tree it points to, so
 * mw__service_free() releases a half-built one on every error path. The
 * inspect document is borrowed and never modified.
 *
 * Reading rules (any API version from 1.40 on):
 *  - Id and Config are required; every other field may be absent or
 *    null. A present field of the wrong type is an error naming it.
 *  - Addresses come from NetworkSettings.Networks only: API 1.52 removed
 *    the top-level NetworkSettings.IPAddress.
 *  - Labels and Env become objects sorted by key; a repeated key keeps
 *    its last value (as dockerd's own map does). An Env entry without '='
 *    has the value "", one with an empty name is dropped.
 *  - An image given as a bare id ("sha256:<hex>") that nobody resolved to
 *    a repo tag keeps the id as its long and short name (tag "latest"), so
 *    it never matches a template by accident.
 *
 * The building is a table of steps, each reading one group of fields;
 * mw__service_inspect_pick lists those fields, so that a source parses
 * nothing else of a document (most of an inspect is never read).
 */
#include "discovery/service.h"

#include "core/base/util.h"
#include "discovery/labels.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX    128 /* Docker ids are 64 hex; room for other engines */
#define OOM       "out of memory"
#define HEX64_LEN 64

/* ------------------------------------------------------------ what is read */

static const mw__json_pick health_pick[] = {{"Status", NULL}, {NULL, NULL}};
static const mw__json_pick state_pick[] = {
    {"Status", NULL},    {"Running", NULL}, {"Paused", NULL},        {"Restarting", NULL},
    {"OOMKilled", NULL}, {"Pid", NULL},     {"Health", health_pick}, {NULL, NULL},
};
static const mw__json_pick config_pick[] = {
    {"Hostname", NULL}, {"Image", NULL},        {"Labels", NULL},
    {"Env", NULL},      {"ExposedPorts", NULL}, {NULL, NULL},
};
static const mw__json_pick network_pick[] = {
    {"IPAddress", NULL}, {"GlobalIPv6Address", NULL}, {NULL, NULL}};
static const mw__json_pick networks_pick[] = {{"*", network_pick}, {NULL, NULL}};
static const mw__json_pick netset_pick[] = {
    {"Networks", networks_pick}, {"Ports", NULL}, {NULL, NULL}};
static const mw__json_pick host_config_pick[] = {{"NetworkMode", NULL}, {NULL, NULL}};

const mw__json_pick mw__service_inspect_pick[] = {
    {"Id", NULL},
    {"Name", NULL},
    {"RestartCount", NULL},
    {"State", state_pick},
    {"Config", config_pick},
    {"NetworkSettings", netset_pick},
    {"HostConfig", host_config_pick},
    {NULL, NULL},
};

/* ------------------------------------------------------------ errors */

/* Sets `*err` to the formatted message (first error only); returns
 * MW_EPARSE: the document does not hold what a service needs. */
__attribute__((format(printf, 2, 3))) static mw_code fail(char **err, const char *fmt, ...)
{
    va_list ap;

    if (*err)
        return MW_EPARSE;
    va_start(ap, fmt);
    *err = mw__vsprintf(fmt, ap);
    va_end(ap);
    return MW_EPARSE;
}

/* Sets `*err` to "out of memory" (first error only); returns MW_ENOMEM. */
static mw_code oom(char **err)
{
    fail(err, OOM);
    return MW_ENOMEM;
}

/* ------------------------------------------------------------ JSON access */

/* A member of `obj`, or NULL when `obj` is NULL or the member is absent or
 * JSON null. */
static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *j = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsNull(j) ? NULL : j;
}

/* An optional object member (`*out` NULL when absent). */
static mw_code opt_object(const cJSON *obj, const char *key, const char *path, const cJSON **out,
                          char **err)
{
    const cJSON *j = member(obj, key);

    *out = NULL;
    if (j && !cJSON_IsObject(j))
        return fail(err, "%s: not an object", path);
    *out = j;
    return MW_OK;
}

/* An optional string member (`*out` NULL when absent). */
static mw_code opt_string(const cJSON *obj, const char *key, const char *path, const char **out,
                          char **err)
{
    const cJSON *j = member(obj, key);

    *out = NULL;
    if (j && !cJSON_IsString(j))
        return fail(err, "%s: not a string", path);
    *out = j ? j->valuestring : NULL;
    return MW_OK;
}

/* An optional integer member in [0, INT_MAX] (`*out` 0 when absent). */
static mw_code opt_count(const cJSON *obj, const char *key, const char *path, long *out, char **err)
{
    const cJSON *j = member(obj, key);
    double v;

    *out = 0;
    if (!j)
        return MW_OK;
    if (!cJSON_IsNumber(j))
        return fail(err, "%s: not a number", path);
    v = j->valuedouble;
    if (!(v >= 0 && v <= INT_MAX) || (double)(long)v != v)
        return fail(err, "%s: not an integer in [0, %d]", path, INT_MAX);
    *out = (long)v;
    return MW_OK;
}

/* A copy of `s`, "" when NULL. */
static mw_code dup_or_empty(const char *s, char **out, char **err)
{
    *out = mw__strdup(s ? s : "");
    return *out ? MW_OK : oom(err);
}

/* ------------------------------------------------------------ images */

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int mw__service_image_is_id(const char *image)
{
    if (!image)
        return 0;
    if (strncmp(image, "sha256:", 7) == 0)
        image += 7;
    return strlen(image) == HEX64_LEN && is_lower_hex(image, HEX64_LEN);
}

/* The last `c` in the first `n` bytes of `s`, or NULL. */
static const char *last_of(const char *s, size_t n, char c)
{
    while (n-- > 0)
        if (s[n] == c)
            return s + n;
    return NULL;
}

/* Where a digest suffix ("@sha256:...") starts, as Datadog finds it: the
 * last "@sha" past the first byte; else the end of the string. */
static size_t digest_start(const char *image)
{
    const char *at = NULL;

    for (const char *p = strstr(image + 1, "@sha"); p; p = strstr(p + 1, "@sha"))
        at = p;
    return at ? (size_t)(at - image) : strlen(image);
}

/* Datadog's SplitImageName. MW_OK, MW_EPARSE for a malformed reference,
 * MW_ENOMEM; the outputs are set only on success. */
static mw_code split_image(const char *image, char **long_name, char **short_name, char **tag)
{
    size_t n, long_len;
    const char *colon, *slash, *short_start, *tag_start = NULL;
    char *l, *s, *t;

    if (!image || !*image)
        return MW_EPARSE;
    n = digest_start(image);
    colon = last_of(image, n, ':');
    slash = last_of(image, n, '/');
    long_len = n;
    if (colon && (!slash || colon > slash)) {
        tag_start = colon + 1;
        long_len = (size_t)(colon - image);
    }
    short_start = slash ? slash + 1 : image;
    if (long_len == 0 || image + long_len <= short_start)
        return MW_EPARSE;
    l = mw__strndup(image, long_len);
    s = mw__strndup(short_start, (size_t)(image + long_len - short_start));
    if (tag_start && image + n > tag_start)
        t = mw__strndup(tag_start, (size_t)(image + n - tag_start));
    else
        t = mw__strdup("latest");
    if (!l || !s || !t) {
        free(l);
        free(s);
        free(t);
        return MW_ENOMEM;
    }
    *long_name = l;
    *short_name = s;
    *tag = t;
    return MW_OK;
}

mw_code mw__image_split(const char *image, char **long_name, char **short_name, char **tag)
{
    *long_name = *short_name = *tag = NULL;
    return split_image(image, long_name, short_name, tag);
}

mw_code mw__image_names(const char *image, char **long_name, char **short_name, char **tag)
{
    *long_name = *short_name = *tag = NULL;
    if (!mw__service_image_is_id(image))
        return split_image(image, long_name, short_name, tag);
    *long_name = mw__strdup(image);
    *short_name = mw__strdup(image);
    *tag = mw__strdup("latest");
    if (*long_name && *short_name && *tag)
        return MW_OK;
    free(*long_name);
    free(*short_name);
    free(*tag);
    *long_name = *short_name = *tag = NULL;
    return MW_ENOMEM;
}

/* ------------------------------------------------------------ key/value objects */

typedef struct kv {
    const char *key; /* not NUL-terminated at key_len for env entries */
    size_t key_len;
    const char *value; /* NUL-terminated */
    size_t order;      /* position in the document: the last one wins */
} kv;

static int kv_cmp(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);

    if (c != 0)
        return c;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int same_key(const kv *x, const kv *y)
{
    return x->key_len == y->key_len && memcmp(x->key, y->key, x->key_len) == 0;
}

/* Adds key -> string to `o`; MW_OK, or MW_ENOMEM. */
static mw_code add_string(cJSON *o, const char *key, size_t key_len, const char *value)
{
    char *k = mw__strndup(key, key_len);
    cJSON *v = k ? cJSON_CreateString(value) : NULL;
    int ok = v && cJSON_AddItemToObject(o, k, v);

    if (!ok)
        cJSON_Delete(v);
    free(k);
    return ok ? MW_OK : MW_ENOMEM;
}

/* An object of the pairs, sorted by key, the last of equal keys kept
 * (sorts `v`). NULL on OOM. */
static cJSON *object_from(kv *v, size_t n)
{
    cJSON *o = cJSON_CreateObject();

    if (!o)
        return NULL;
    if (n > 1)
        qsort(v, n, sizeof(*v), kv_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && same_key(&v[i], &v[i + 1]))
            continue;
        if (add_string(o, v[i].key, v[i].key_len, v[i].value) != MW_OK) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

/* ------------------------------------------------------------ build steps */

typedef struct source {
    const cJSON *doc;    /* the inspect document */
    const cJSON *config; /* its Config, checked by read_identity */
    const cJSON *netset; /* its NetworkSettings, NULL when absent */
    const char *image;   /* the caller's override, or NULL */
} source;

/* A step: MW_OK, MW_EPARSE (a field is missing or malformed) or
 * MW_ENOMEM, with `*err` saying which. */
typedef mw_code (*build_step)(mw__service *s, source *in, char **err);

/* Ids become URL path segments: keep them to id characters. */
static int valid_id(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/* Id, Config (both required), Name, Config.Hostname, NetworkSettings. */
static mw_code read_identity(mw__service *s, source *in, char **err)
{
    const cJSON *id = member(in->doc, "Id");
    const char *name, *hostname;
    mw_code rc;

    if (!id)
        return fail(err, "Id: missing");
    if (!cJSON_IsString(id))
        return fail(err, "Id: not a string");
    if (!valid_id(id->valuestring))
        return fail(err, "Id: not a container id");
    in->config = member(in->doc, "Config");
    if (!in->config)
        return fail(err, "Config: missing");
    if (!cJSON_IsObject(in->config))
        return fail(err, "Config: not an object");
    if ((rc = opt_object(in->doc, "NetworkSettings", "NetworkSettings", &in->netset, err)) !=
            MW_OK ||
        (rc = opt_string(in->doc, "Name", "Name", &name, err)) != MW_OK ||
        (rc = opt_string(in->config, "Hostname", "Config.Hostname", &hostname, err)) != MW_OK)
        return rc;
    if (name && name[0] == '/')
        name++;
    s->cid = mw__strdup(id->valuestring);
    s->id = mw__sprintf("docker://%s", id->valuestring);
    if (!s->cid || !s->id)
        return oom(err);
    if ((rc = dup_or_empty(name, &s->name, err)) != MW_OK)
        return rc;
    return dup_or_empty(hostname, &s->hostname, err);
}

/* The override or Config.Image, and its split. */
static mw_code read_image(mw__service *s, source *in, char **err)
{
    const char *image = in->image, *path = "image";
    mw_code rc;

    if (!image) {
        path = "Config.Image";
        if ((rc = opt_string(in->config, "Image", path, &image, err)) != MW_OK)
            return rc;
        if (!image)
            return fail(err, "%s: missing", path);
    }
    if (!*image)
        return fail(err, "%s: empty", path);
    if (!(s->image = mw__strdup(image)))
        return oom(err);
    rc = mw__image_names(image, &s->image_long, &s->image_short, &s->image_tag);
    if (rc == MW_EPARSE)
        return fail(err, "%s: malformed image reference '%s'", path, image);
    return rc == MW_OK ? MW_OK : oom(err);
}

/* An object of strings (`path` names it in messages) copied into a new
 * object sorted by key; an empty one when `labels` is NULL. */
static mw_code labels_object(const cJSON *labels, const char *path, cJSON **out, char **err)
{
    const cJSON *c;
    kv *v = NULL;
    size_t n = 0;

    if (labels && labels->child) {
        v = calloc((size_t)cJSON_GetArraySize(labels), sizeof(*v));
        if (!v)
            return oom(err);
    }
    cJSON_ArrayForEach(c, labels)
    {
        if (!cJSON_IsString(c)) {
            free(v);
            return fail(err, "%s.%s: not a string", path, c->string);
        }
        v[n] = (kv){c->string, strlen(c->string), c->valuestring, n};
        n++;
    }
    *out = object_from(v, n);
    free(v);
    return *out ? MW_OK : oom(err);
}

/* Config.Labels: an object of strings. */
static mw_code read_labels(mw__service *s, source *in, char **err)
{
    const cJSON *labels;
    mw_code rc;

    if ((rc = opt_object(in->config, "Labels", "Config.Labels", &labels, err)) != MW_OK)
        return rc;
    return labels_object(labels, "Config.Labels", &s->labels, err);
}

/* Config.Env: an array of "NAME=value" strings. */
static mw_code read_env(mw__service *s, source *in, char **err)
{
    const cJSON *env = member(in->config, "Env"), *c;
    kv *v = NULL;
    size_t n = 0, i = 0;

    if (env && !cJSON_IsArray(env))
        return fail(err, "Config.Env: not an array");
    if (env && env->child) {
        v = calloc((size_t)cJSON_GetArraySize(env), sizeof(*v));
        if (!v)
            return oom(err);
    }
    cJSON_ArrayForEach(c, env)
    {
        const char *eq;
        if (!cJSON_IsString(c)) {
            free(v);
            return fail(err, "Config.Env[%zu]: not a string", i);
        }
        i++;
        eq = strchr(c->valuestring, '=');
        v[n] = (kv){c->valuestring, eq ? (size_t)(eq - c->valuestring) : strlen(c->valuestring),
                    eq ? eq + 1 : "", n};
        if (v[n].key_len > 0)
            n++;
    }
    s->env = object_from(v, n);
    free(v);
    return s->env ? MW_OK : oom(err);
}

static int net_cmp(const void *a, const void *b)
{
    return strcmp(((const mw__svc_network *)a)->name, ((const mw__svc_network *)b)->name);
}

/* An optional string field of network `net`, copied ("" when absent). */
static mw_code net_string(const cJSON *net, const char *key, char **out, char **err)
{
    const cJSON *j = member(net, key);

    if (j && !cJSON_IsString(j))
        return fail(err, "NetworkSettings.Networks.%s.%s: not a string", net->string, key);
    return dup_or_empty(j ? j->valuestring : NULL, out, err);
}

/* NetworkSettings.Networks, sorted by name; HostConfig.NetworkMode. */
static mw_code read_networks(mw__service *s, source *in, char **err)
{
    const cJSON *nets, *hc, *c;
    const char *mode;
    mw_code rc;

    if ((rc = opt_object(in->netset, "Networks", "NetworkSettings.Networks", &nets, err)) !=
            MW_OK ||
        (rc = opt_object(in->doc, "HostConfig", "HostConfig", &hc, err)) != MW_OK ||
        (rc = opt_string(hc, "NetworkMode", "HostConfig.NetworkMode", &mode, err)) != MW_OK)
        return rc;
    s->host_network = mode && strcmp(mode, "host") == 0;
    if (!nets || !nets->child)
        return MW_OK;
    s->nets = calloc((size_t)cJSON_GetArraySize(nets), sizeof(*s->nets));
    if (!s->nets)
        return oom(err);
    cJSON_ArrayForEach(c, nets)
    {
        mw__svc_network *n = &s->nets[s->nnets++];
        if (!cJSON_IsNull(c) && !cJSON_IsObject(c))
            return fail(err, "NetworkSettings.Networks.%s: not an object", c->string);
        if (!(n->name = mw__strdup(c->string)))
            return oom(err);
        if ((rc = net_string(c, "IPAddress", &n->ip, err)) != MW_OK ||
            (rc = net_string(c, "GlobalIPv6Address", &n->ip6, err)) != MW_OK)
            return rc;
    }
    qsort(s->nets, s->nnets, sizeof(*s->nets), net_cmp);
    for (size_t i = 1; i < s->nnets; i++)
        if (strcmp(s->nets[i - 1].name, s->nets[i].name) == 0)
            return fail(err, "NetworkSettings.Networks.%s: duplicate network", s->nets[i].name);
    return MW_OK;
}

/* "80/tcp" (or "80", tcp) -> number and protocol; MW_OK, or MW_EPARSE
 * if malformed. */
static mw_code parse_port(const char *key, mw__svc_port *p)
{
    long number = 0;
    size_t i = 0, plen;
    const char *proto;

    for (; key[i] >= '0' && key[i] <= '9' && i < 6; i++)
        number = number * 10 + (key[i] - '0');
    if (i == 0 || number < 1 || number > 65535 || (key[i] != '/' && key[i] != '\0'))
        return MW_EPARSE;
    proto = key[i] == '/' ? key + i + 1 : "tcp";
    plen = strlen(proto);
    if (plen == 0 || plen >= sizeof(p->proto))
        return MW_EPARSE;
    for (size_t j = 0; j < plen; j++)
        if (proto[j] < 'a' || proto[j] > 'z')
            return MW_EPARSE;
    p->number = (int)number;
    memcpy(p->proto, proto, plen + 1);
    p->name = NULL;
    return MW_OK;
}

static int port_cmp(const void *a, const void *b)
{
    const mw__svc_port *x = a, *y = b;

    if (x->number != y->number)
        return x->number < y->number ? -1 : 1;
    return strcmp(x->proto, y->proto);
}

/* Sorts s->ports and drops repeats (none has a name yet). */
static void sort_ports(mw__service *s)
{
    size_t kept = 0;

    qsort(s->ports, s->nports, sizeof(*s->ports), port_cmp);
    for (size_t i = 0; i < s->nports; i++)
        if (kept == 0 || port_cmp(&s->ports[kept - 1], &s->ports[i]) != 0)
            s->ports[kept++] = s->ports[i];
    s->nports = kept;
}

/* Parses the keys of one port map into `s->ports`. */
static mw_code add_ports(mw__service *s, const cJSON *map, const char *path, char **err)
{
    const cJSON *c;

    cJSON_ArrayForEach(c, map)
    {
        if (parse_port(c->string, &s->ports[s->nports]) != MW_OK)
            return fail(err, "%s: bad port '%s'", path, c->string);
        s->nports++;
    }
    return MW_OK;
}

/* Config.ExposedPorts and NetworkSettings.Ports keys: sorted, unique. */
static mw_code read_ports(mw__service *s, source *in, char **err)
{
    const cJSON *exposed, *published;
    size_t n;
    mw_code rc;

    if ((rc = opt_object(in->config, "ExposedPorts", "Config.ExposedPorts", &exposed, err)) !=
            MW_OK ||
        (rc = opt_object(in->netset, "Ports", "NetworkSettings.Ports", &published, err)) != MW_OK)
        return rc;
    n = (size_t)cJSON_GetArraySize(exposed) + (size_t)cJSON_GetArraySize(published);
    if (n == 0)
        return MW_OK;
    if (!(s->ports = calloc(n, sizeof(*s->ports))))
        return oom(err);
    if ((rc = add_ports(s, exposed, "Config.ExposedPorts", err)) != MW_OK ||
        (rc = add_ports(s, published, "NetworkSettings.Ports", err)) != MW_OK)
        return rc;
    sort_ports(s);
    return MW_OK;
}

/* State.Pid, State.Status, State.Health.Status, RestartCount. */
static mw_code read_state(mw__service *s, source *in, char **err)
{
    const cJSON *state, *health;
    const char *status, *health_status;
    long restarts;
    mw_code rc;

    if ((rc = opt_object(in->doc, "State", "State", &state, err)) != MW_OK ||
        (rc = opt_count(state, "Pid", "State.Pid", &s->pid, err)) != MW_OK ||
        (rc = opt_string(state, "Status", "State.Status", &status, err)) != MW_OK ||
        (rc = opt_object(state, "Health", "State.Health", &health, err)) != MW_OK ||
        (rc = opt_string(health, "Status", "State.Health.Status", &health_status, err)) != MW_OK ||
        (rc = opt_count(in->doc, "RestartCount", "RestartCount", &restarts, err)) != MW_OK)
        return rc;
    s->restart_count = (int)restarts;
    if ((rc = dup_or_empty(status, &s->state, err)) != MW_OK)
        return rc;
    return dup_or_empty(health_status, &s->health, err);
}

/* The unified service tag: the label's value, else the env var's; NULL
 * when neither is set or both are empty. */
static const char *unified_tag(const mw__service *s, const char *label, const char *var)
{
    const char *v = mw__service_label(s, label);

    if (!v || !*v)
        v = mw__service_env(s, var);
    return v && *v ? v : NULL;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends one tag; room for it was made by make_tags(). */
typedef struct tag_list {
    mw__service *s;
    size_t cap;
} tag_list;

/* Appends `tag`, which the list takes (freed here on OOM). */
static mw_code push_owned(tag_list *l, char *tag)
{
    if (!tag || mw__grow(&l->s->tags, &l->cap, l->s->ntags + 1, sizeof(*l->s->tags)) != MW_OK) {
        free(tag);
        return MW_ENOMEM;
    }
    l->s->tags[l->s->ntags++] = tag;
    return MW_OK;
}

static mw_code push_tag(void *ud, const char *tag)
{
    return push_owned(ud, mw__strdup(tag));
}

/* The tags, sorted and unique: the container's own, then those of its
 * com.datadoghq.ad.tags label (what it holds that is not key:value is
 * skipped here and reported where its configs are matched). Runs after
 * every field it reads. */
static mw_code make_tags(mw__service *s, source *in, char **err)
{
    const char *pairs[][2] = {
        {"container_name", s->name},
        {"container_id", s->cid},
        {"image_name", s->image_long},
        {"short_image", s->image_short},
        {"image_tag", s->image_tag},
        {"docker_image", s->image},
        {"env", unified_tag(s, "com.datadoghq.tags.env", "DD_ENV")},
        {"service", unified_tag(s, "com.datadoghq.tags.service", "DD_SERVICE")},
        {"version", unified_tag(s, "com.datadoghq.tags.version", "DD_VERSION")},
    };
    tag_list l = {s, 0};
    size_t kept = 0;

    MW_UNUSED(in);
    for (size_t i = 0; i < MW_ARRAY_LEN(pairs); i++)
        if (pairs[i][1] && *pairs[i][1] &&
            push_owned(&l, mw__sprintf("%s:%s", pairs[i][0], pairs[i][1])) != MW_OK)
            return oom(err);
    if (mw__label_tags(s->labels, push_tag, &l, NULL) != MW_OK)
        return oom(err);
    if (s->ntags)
        qsort(s->tags, s->ntags, sizeof(*s->tags), str_cmp);
    for (size_t i = 0; i < s->ntags; i++) {
        if (kept > 0 && strcmp(s->tags[kept - 1], s->tags[i]) == 0)
            free(s->tags[i]);
        else
            s->tags[kept++] = s->tags[i];
    }
    s->ntags = kept;
    return MW_OK;
}

static const build_step build_steps[] = {
    read_identity, read_image, read_labels, read_env,
    read_networks, read_ports, read_state,  make_tags,
};

/* ------------------------------------------------------------ from parts */

static mw_code parts_identity(mw__service *s, const mw__service_parts *p, char **err)
{
    mw_code rc;

    if (!p->cid)
        return fail(err, "container id: missing");
    if (!valid_id(p->cid))
        return fail(err, "container id: not a container id");
    s->cid = mw__strdup(p->cid);
    s->id = mw__sprintf("docker://%s", p->cid);
    if (!s->cid || !s->id)
        return oom(err);
    if ((rc = dup_or_empty(p->name, &s->name, err)) != MW_OK ||
        (rc = dup_or_empty(NULL, &s->hostname, err)) != MW_OK ||
        (rc = dup_or_empty(NULL, &s->health, err)) != MW_OK)
        return rc;
    return dup_or_empty(p->state ? p->state : "running", &s->state, err);
}

static mw_code parts_networks(mw__service *s, const mw__service_parts *p, char **err)
{
    mw_code rc;

    s->host_network = p->host_network != 0;
    if (p->nnets == 0)
        return MW_OK;
    if (!(s->nets = calloc(p->nnets, sizeof(*s->nets))))
        return oom(err);
    for (size_t i = 0; i < p->nnets; i++) {
        mw__svc_network *n = &s->nets[s->nnets++];
        if (!p->nets[i].name || !p->nets[i].name[0])
            return fail(err, "networks[%zu]: no name", i);
        if ((rc = dup_or_empty(p->nets[i].name, &n->name, err)) != MW_OK ||
            (rc = dup_or_empty(p->nets[i].ip, &n->ip, err)) != MW_OK ||
            (rc = dup_or_empty(p->nets[i].ip6, &n->ip6, err)) != MW_OK)
            return rc;
    }
    qsort(s->nets, s->nnets, sizeof(*s->nets), net_cmp);
    for (size_t i = 1; i < s->nnets; i++)
        if (strcmp(s->nets[i - 1].name, s->nets[i].name) == 0)
            return fail(err, "networks: %s twice", s->nets[i].name);
    return MW_OK;
}

static mw_code parts_ports(mw__service *s, const mw__service_parts *p, char **err)
{
    if (p->nports == 0)
        return MW_OK;
    if (!(s->ports = calloc(p->nports, sizeof(*s->ports))))
        return oom(err);
    for (size_t i = 0; i < p->nports; i++) {
        const mw__svc_port *q = &p->ports[i];
        if (q->number < 1 || q->number > 65535 || !q->proto[0] ||
            memchr(q->proto, '\0', sizeof(q->proto)) == NULL)
            return fail(err, "ports[%zu]: not a port", i);
        s->ports[s->nports].number = q->number;
        memcpy(s->ports[s->nports].proto, q->proto, sizeof(q->proto));
        s->nports++;
    }
    sort_ports(s);
    return MW_OK;
}

mw_code mw__service_from_parts(const mw__service_parts *p, mw__service **out, char **err)
{
    source in = {NULL, NULL, NULL, p->image ? p->image : ""};
    char *e = NULL;
    mw__service *s = calloc(1, sizeof(*s));
    mw_code rc;

    *out = NULL;
    if (!s) {
        rc = oom(&e);
        goto out;
    }
    s->origin = p->origin;
    if ((rc = parts_identity(s, p, &e)) != MW_OK || (rc = read_image(s, &in, &e)) != MW_OK ||
        (rc = labels_object(p->labels, "Labels", &s->labels, &e)) != MW_OK ||
        (rc = labels_object(NULL, "Env", &s->env, &e)) != MW_OK ||
        (rc = parts_networks(s, p, &e)) != MW_OK || (rc = parts_ports(s, p, &e)) != MW_OK ||
        (rc = make_tags(s, &in, &e)) != MW_OK)
        goto out;
    s->digest = mw__service_digest(s);
    *out = s;
    s = NULL;
out:
    mw__service_free(s);
    if (err)
        *err = e;
    else
        free(e);
    return rc;
}

/* ------------------------------------------------------------ digest */

static uint64_t hash_u64(uint64_t h, uint64_t v)
{
    unsigned char b[8];

    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return mw__hash(h, b, sizeof(b));
}

/* NULL and "" hash apart; the NUL ends the string unambiguously. */
static uint64_t hash_str(uint64_t h, const char *s)
{
    unsigned char present = s != NULL;

    h = mw__hash(h, &present, 1);
    return s ? mw__hash(h, s, strlen(s) + 1) : h;
}

/* An object of strings, whatever its key order: the sum of the hashes of
 * its pairs. */
static uint64_t hash_object(uint64_t h, const cJSON *o)
{
    const cJSON *c;
    uint64_t sum = 0, n = 0;

    cJSON_ArrayForEach(c, o)
    {
        uint64_t p = hash_str(MW_HASH_INIT, c->string);
        p = hash_u64(p, (uint64_t)(c->type & 0xFF));
        sum += hash_str(p, cJSON_IsString(c) ? c->valuestring : NULL);
        n++;
    }
    return hash_u64(hash_u64(h, n), sum);
}

uint64_t mw__service_digest(const mw__service *s)
{
    const char *strs[] = {s->id,         s->cid,         s->name,      s->image,
                          s->image_long, s->image_short, s->image_tag, s->hostname};
    uint64_t h = MW_HASH_INIT;

    for (size_t i = 0; i < MW_ARRAY_LEN(strs); i++)
        h = hash_str(h, strs[i]);
    h = hash_object(hash_object(hash_object(h, s->labels), s->env), s->extra);
    h = hash_u64(h, s->nnets);
    for (size_t i = 0; i < s->nnets; i++)
        h = hash_str(hash_str(hash_str(h, s->nets[i].name), s->nets[i].ip), s->nets[i].ip6);
    h = hash_u64(hash_u64(h, (uint64_t)(s->host_network != 0)), (uint64_t)s->origin);
    h = hash_u64(h, s->nports);
    for (size_t i = 0; i < s->nports; i++) {
        h = hash_u64(h, (uint64_t)s->ports[i].number);
        h = hash_str(hash_str(h, s->ports[i].proto), s->ports[i].name);
    }
    h = hash_u64(hash_u64(h, (uint64_t)s->pid), (uint64_t)s->restart_count);
    h = hash_u64(h, s->ntags);
    for (size_t i = 0; i < s->ntags; i++)
        h = hash_str(h, s->tags[i]);
    return h;
}

/* ------------------------------------------------------------ public */

mw_code mw__service_from_inspect(const cJSON *inspect, const char *image, mw__service **out,
                                 char **err)
{
    source in = {inspect, NULL, NULL, image};
    char *e = NULL;
    mw__service *s = NULL;
    mw_code rc;

    *out = NULL;
    if (!cJSON_IsObject(inspect)) {
        rc = fail(&e, "inspect: not an object");
        goto out;
    }
    if (!(s = calloc(1, sizeof(*s)))) {
        rc = oom(&e);
        goto out;
    }
    /* A step that failed without a message ran out of memory formatting
     * it: *err is left NULL rather than lie. */
    for (size_t i = 0; i < MW_ARRAY_LEN(build_steps); i++)
        if ((rc = build_steps[i](s, &in, &e)) != MW_OK)
            goto out;
    s->digest = mw__service_digest(s);
    *out = s;
    s = NULL;
    rc = MW_OK;
out:
    mw__service_free(s);
    if (err)
        *err = e;
    else
        free(e);
    return rc;
}

void mw__service_free(mw__service *s)
{
    if (!s)
        return;
    free(s->id);
    free(s->cid);
    free(s->name);
    free(s->image);
    free(s->image_long);
    free(s->image_short);
    free(s->image_tag);
    cJSON_Delete(s->labels);
    cJSON_Delete(s->env);
    cJSON_Delete(s->extra);
    for (size_t i = 0; i < s->nnets; i++) {
        free(s->nets[i].name);
        free(s->nets[i].ip);
        free(s->nets[i].ip6);
    }
    free(s->nets);
    for (size_t i = 0; i < s->nports; i++)
        free(s->ports[i].name);
    free(s->ports);
    free(s->hostname);
    free(s->health);
    free(s->state);
    for (size_t i = 0; i < s->ntags; i++)
        free(s->tags[i]);
    free(s->tags);
    free(s);
}

/* The string value of `key` in `o`, or NULL. */
static const char *string_member(const cJSON *o, const char *key)
{
    const cJSON *j = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

const char *mw__service_label(const mw__service *s, const char *key)
{
    return s ? string_member(s->labels, key) : NULL;
}

const char *mw__service_env(const mw__service *s, const char *var)
{
    return s ? string_member(s->env, var) : NULL;
}
