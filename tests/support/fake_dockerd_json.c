/*
 * fake_dockerd_json.c - the fake dockerd's payloads: a string builder and
 * the JSON of /containers/json, inspect, image inspect, /version and event
 * lines, in the shape of the recordings in tests/fixtures/docker (field
 * order, legacy fields below API 1.52, Go's string escaping).
 *
 * Ownership: the builder owns its buffer (mw__fddi_sb_free); renderers
 * only append to the builder they are given and read the objects.
 */
#include "tests/support/fake_dockerd_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void mw__fddi_sb_reserve(mw__fddi_sb *b, size_t more)
{
    if (b->oom || b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

void mw__fddi_sb_put(mw__fddi_sb *b, const void *p, size_t n)
{
    mw__fddi_sb_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void mw__fddi_sb_str(mw__fddi_sb *b, const char *s)
{
    mw__fddi_sb_put(b, s, strlen(s));
}

/* Go's encoding/json escapes control characters, '"', '\\', the HTML
 * characters <, > and &, and U+2028/U+2029. */
static const char *escape_of(unsigned char ch, char tmp[8])
{
    switch (ch) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    case '<':
    case '>':
    case '&':
        break;
    default:
        if (ch >= 0x20)
            return NULL;
    }
    snprintf(tmp, 8, "\\u%04x", ch);
    return tmp;
}

/* A JSON string of `pre` (plain ASCII) followed by `s`. */
static void json_pre(mw__fddi_sb *b, const char *pre, const char *s)
{
    size_t n = strlen(s), run = 0;
    char tmp[8];
    mw__fddi_sb_reserve(b, n + strlen(pre) + 2);
    mw__fddi_sb_put(b, "\"", 1);
    mw__fddi_sb_str(b, pre);
    for (size_t i = 0; i < n; i++) {
        const unsigned char *u = (const unsigned char *)s + i;
        const char *esc = escape_of(*u, tmp);
        int sep = u[0] == 0xe2 && i + 2 < n && u[1] == 0x80 && (u[2] == 0xa8 || u[2] == 0xa9);
        if (!esc && !sep) {
            run++;
            continue;
        }
        mw__fddi_sb_put(b, s + i - run, run);
        run = 0;
        if (sep) {
            mw__fddi_sb_str(b, u[2] == 0xa8 ? "\\u2028" : "\\u2029");
            i += 2;
        } else {
            mw__fddi_sb_str(b, esc);
        }
    }
    mw__fddi_sb_put(b, s + n - run, run);
    mw__fddi_sb_put(b, "\"", 1);
}

void mw__fddi_sb_json(mw__fddi_sb *b, const char *s)
{
    if (s)
        json_pre(b, "", s);
    else
        mw__fddi_sb_put(b, "null", 4);
}

void mw__fddi_sb_i64(mw__fddi_sb *b, int64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--i] = '-';
    mw__fddi_sb_put(b, tmp + i, sizeof tmp - i);
}

void mw__fddi_sb_fmt(mw__fddi_sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        mw__fddi_sb_put(b, tmp, (size_t)n);
        return;
    }
    mw__fddi_sb_reserve(b, (size_t)n);
    if (b->oom)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void mw__fddi_sb_time(mw__fddi_sb *b, int64_t ns)
{
    if (ns <= 0) {
        mw__fddi_sb_str(b, "0001-01-01T00:00:00Z");
        return;
    }
    time_t sec = (time_t)(ns / 1000000000);
    long frac = (long)(ns % 1000000000);
    struct tm tm;
    char tmp[48], fr[16];
    gmtime_r(&sec, &tm);
    strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
    mw__fddi_sb_str(b, tmp);
    if (frac) {
        int n = snprintf(fr, sizeof fr, ".%09ld", frac);
        while (n > 1 && fr[n - 1] == '0')
            n--;
        mw__fddi_sb_put(b, fr, (size_t)n);
    }
    mw__fddi_sb_put(b, "Z", 1);
}

void mw__fddi_sb_free(mw__fddi_sb *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void mw__fddi_sb_release(mw__fddi_sb *b)
{
    if (b->cap > MW_FDDI_SB_KEEP) {
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
    b->len = 0;
}

/* ---- pieces shared by list and inspect ---- */

static void json_kv_object(mw__fddi_sb *b, char *const *kv, size_t npairs)
{
    mw__fddi_sb_put(b, "{", 1);
    for (size_t i = 0; i < npairs; i++) {
        if (i)
            mw__fddi_sb_put(b, ",", 1);
        mw__fddi_sb_json(b, kv[2 * i]);
        mw__fddi_sb_put(b, ":", 1);
        mw__fddi_sb_json(b, kv[2 * i + 1]);
    }
    mw__fddi_sb_put(b, "}", 1);
}

static int is_up(const mw__fddi_ctr *c)
{
    return c->state == MW_FDDI_RUNNING || c->state == MW_FDDI_PAUSED;
}

static const char *state_name(const mw__fddi_ctr *c)
{
    static const char *const names[] = {"created", "running", "paused", "exited"};
    return names[c->state];
}

/* One NetworkSettings.Networks entry; a stopped container keeps the
 * network with its addresses blanked, as dockerd does. */
static void json_endpoint(mw__fddi_sb *b, const mw__fddi_ctr *c, const mw__fddi_net *n, int inspect)
{
    int up = is_up(c);
    mw__fddi_sb_json(b, n->name);
    mw__fddi_sb_str(b, ":{\"IPAMConfig\":null,\"Links\":null,\"Aliases\":");
    if (inspect && up && strcmp(n->name, "bridge") != 0 && strcmp(n->name, "host") != 0) {
        mw__fddi_sb_put(b, "[", 1);
        char hn[13];
        memcpy(hn, c->id, 12);
        hn[12] = '\0';
        mw__fddi_sb_json(b, hn);
        mw__fddi_sb_put(b, "]", 1);
    } else {
        mw__fddi_sb_str(b, "null");
    }
    mw__fddi_sb_str(b, ",\"NetworkID\":");
    mw__fddi_sb_json(b, n->net_id);
    mw__fddi_sb_str(b, ",\"EndpointID\":");
    mw__fddi_sb_json(b, up ? n->ep_id : "");
    mw__fddi_sb_str(b, ",\"Gateway\":");
    mw__fddi_sb_json(b, up ? n->gw : "");
    mw__fddi_sb_str(b, ",\"IPAddress\":");
    mw__fddi_sb_json(b, up ? n->ip : "");
    mw__fddi_sb_str(b, ",\"IPPrefixLen\":");
    mw__fddi_sb_str(b, up && n->ip[0] ? "16" : "0");
    mw__fddi_sb_str(b, ",\"IPv6Gateway\":\"\",\"GlobalIPv6Address\":\"\","
                       "\"GlobalIPv6PrefixLen\":0,\"MacAddress\":");
    mw__fddi_sb_json(b, up ? n->mac : "");
    mw__fddi_sb_str(b, ",\"DriverOpts\":null}");
}

static void json_networks(mw__fddi_sb *b, const mw__fddi_ctr *c, int inspect)
{
    mw__fddi_sb_str(b, "\"Networks\":{");
    for (size_t i = 0; i < c->nnets; i++) {
        if (i)
            mw__fddi_sb_put(b, ",", 1);
        json_endpoint(b, c, &c->nets[i], inspect);
    }
    mw__fddi_sb_put(b, "}", 1);
}

static void json_status(mw__fddi_sb *b, const mw__fddi_ctr *c, int64_t now)
{
    int64_t since = c->state == MW_FDDI_EXITED ? c->finished_ns : c->started_ns;
    int64_t secs = (now - since) / 1000000000;
    char ago[48];
    /* go-units' HumanDuration, as far as tests get */
    if (secs < 1)
        snprintf(ago, sizeof ago, "Less than a second");
    else if (secs == 1)
        snprintf(ago, sizeof ago, "1 second");
    else if (secs < 60)
        snprintf(ago, sizeof ago, "%lld seconds", (long long)secs);
    else if (secs < 120)
        snprintf(ago, sizeof ago, "About a minute");
    else
        snprintf(ago, sizeof ago, "%lld minutes", (long long)(secs / 60));

    char s[128];
    const char *h = c->health;
    switch (c->state) {
    case MW_FDDI_CREATED:
        snprintf(s, sizeof s, "Created");
        break;
    case MW_FDDI_EXITED:
        snprintf(s, sizeof s, "Exited (%d) %s ago", c->exit_code, ago);
        break;
    default:
        snprintf(s, sizeof s, "Up %s%s%s%s%s", ago, c->state == MW_FDDI_PAUSED ? " (Paused)" : "",
                 h ? (strcmp(h, "starting") == 0 ? " (health: " : " (") : "", h ? h : "",
                 h ? ")" : "");
    }
    mw__fddi_sb_json(b, s);
}

static void json_list_ports(mw__fddi_sb *b, const mw__fddi_ctr *c)
{
    static const char *const host_ips[] = {"0.0.0.0", "::"};
    int first = 1;
    mw__fddi_sb_str(b, "\"Ports\":[");
    for (size_t i = 0; i < c->nports; i++) {
        const mw__fddi_port *p = &c->ports[i];
        for (int k = 0; k < (p->pub && is_up(c) ? 2 : 1); k++) {
            mw__fddi_sb_str(b, first ? "{" : ",{");
            first = 0;
            if (p->pub && is_up(c))
                mw__fddi_sb_fmt(b, "\"IP\":\"%s\",\"PrivatePort\":%u,\"PublicPort\":%u,",
                                host_ips[k], p->priv, p->pub);
            else
                mw__fddi_sb_fmt(b, "\"PrivatePort\":%u,", p->priv);
            mw__fddi_sb_fmt(b, "\"Type\":\"%s\"}", p->proto);
        }
    }
    mw__fddi_sb_put(b, "]", 1);
}

void mw__fddi_json_list_item(mw__fddi_sb *b, const mw__fddi_ctr *c, int ver, int64_t now)
{
    (void)ver; /* the list items' top-level addresses were never there */
    mw__fddi_sb_reserve(b, 1500);
    mw__fddi_sb_str(b, "{\"Id\":\"");
    mw__fddi_sb_put(b, c->id, 64);
    mw__fddi_sb_str(b, "\",\"Names\":[");
    json_pre(b, "/", c->name);
    mw__fddi_sb_str(b, "],\"Image\":");
    mw__fddi_sb_json(b, c->image);
    mw__fddi_sb_str(b, ",\"ImageID\":");
    mw__fddi_sb_json(b, c->image_id);
    mw__fddi_sb_str(b, ",\"Command\":");
    mw__fddi_sb_json(b, c->cmd);
    mw__fddi_sb_str(b, ",\"Created\":");
    mw__fddi_sb_i64(b, c->created_ns / 1000000000);
    mw__fddi_sb_put(b, ",", 1);
    json_list_ports(b, c);
    mw__fddi_sb_str(b, ",\"Labels\":");
    json_kv_object(b, c->labels, c->nlabels);
    mw__fddi_sb_str(b, ",\"State\":");
    mw__fddi_sb_json(b, state_name(c));
    mw__fddi_sb_str(b, ",\"Status\":");
    json_status(b, c, now);
    mw__fddi_sb_str(b, ",\"HostConfig\":{\"NetworkMode\":");
    mw__fddi_sb_json(b, c->network_mode);
    mw__fddi_sb_str(b, "},\"NetworkSettings\":{");
    json_networks(b, c, 0);
    mw__fddi_sb_str(b, "},\"Mounts\":[]}");
}

/* ---- inspect ---- */

/* The command split on spaces: Path and Args, or all of it for Cmd. */
static void json_words(mw__fddi_sb *b, const char *cmd, int skip_first)
{
    const char *p = cmd;
    int n = 0;
    mw__fddi_sb_put(b, "[", 1);
    while (*p) {
        while (*p == ' ')
            p++;
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (!len)
            break;
        if (n++ >= skip_first) {
            char *w = strndup(p, len);
            if (!w) {
                b->oom = 1;
                return;
            }
            if (n > skip_first + 1)
                mw__fddi_sb_put(b, ",", 1);
            mw__fddi_sb_json(b, w);
            free(w);
        }
        p += len;
    }
    mw__fddi_sb_put(b, "]", 1);
}

static void json_state(mw__fddi_sb *b, const mw__fddi_ctr *c)
{
    int running = is_up(c);
    mw__fddi_sb_str(b, "\"State\":{\"Status\":");
    mw__fddi_sb_json(b, state_name(c));
    mw__fddi_sb_fmt(b,
                    ",\"Running\":%s,\"Paused\":%s,\"Restarting\":false,\"OOMKilled\":%s,"
                    "\"Dead\":false,\"Pid\":%d,\"ExitCode\":%d,\"Error\":\"\",\"StartedAt\":\"",
                    running ? "true" : "false", c->state == MW_FDDI_PAUSED ? "true" : "false",
                    c->oom_killed ? "true" : "false", running ? c->pid : 0, c->exit_code);
    mw__fddi_sb_time(b, c->started_ns);
    mw__fddi_sb_str(b, "\",\"FinishedAt\":\"");
    mw__fddi_sb_time(b, c->finished_ns);
    mw__fddi_sb_put(b, "\"", 1);
    if (c->health) {
        mw__fddi_sb_str(b, ",\"Health\":{\"Status\":");
        mw__fddi_sb_json(b, c->health);
        mw__fddi_sb_fmt(b, ",\"FailingStreak\":%d,\"Log\":[]}",
                        strcmp(c->health, "unhealthy") == 0 ? 3 : 0);
    }
    mw__fddi_sb_put(b, "}", 1);
}

static void port_key(char *out, size_t cap, const mw__fddi_port *p)
{
    snprintf(out, cap, "%u/%s", p->priv, p->proto);
}

static void json_port_bindings(mw__fddi_sb *b, const mw__fddi_ctr *c)
{
    char key[32];
    int first = 1;
    mw__fddi_sb_str(b, "\"PortBindings\":{");
    for (size_t i = 0; i < c->nports; i++) {
        if (!c->ports[i].pub)
            continue;
        port_key(key, sizeof key, &c->ports[i]);
        mw__fddi_sb_fmt(b, "%s\"%s\":[{\"HostIp\":\"\",\"HostPort\":\"%u\"}]", first ? "" : ",",
                        key, c->ports[i].pub);
        first = 0;
    }
    mw__fddi_sb_put(b, "}", 1);
}

/* HostConfig fields no test varies, as recorded. */
static const char host_config_tail[] =
    "\"RestartPolicy\":{\"Name\":\"no\",\"MaximumRetryCount\":0},\"AutoRemove\":false,"
    "\"VolumeDriver\":\"\",\"VolumesFrom\":null,\"CapAdd\":null,\"CapDrop\":null,"
    "\"CgroupnsMode\":\"host\",\"Dns\":[],\"DnsOptions\":[],\"DnsSearch\":[],\"ExtraHosts\":null,"
    "\"GroupAdd\":null,\"IpcMode\":\"private\",\"Cgroup\":\"\",\"Links\":null,\"OomScoreAdj\":0,"
    "\"PidMode\":\"\",\"Privileged\":false,\"PublishAllPorts\":false,\"ReadonlyRootfs\":false,"
    "\"SecurityOpt\":null,\"UTSMode\":\"\",\"UsernsMode\":\"\",\"ShmSize\":67108864,"
    "\"Runtime\":\"runc\",\"ConsoleSize\":[0,0],\"Isolation\":\"\",\"CpuShares\":0,"
    "\"Memory\":0,\"NanoCpus\":0,\"CgroupParent\":\"\",\"BlkioWeight\":0,"
    "\"BlkioWeightDevice\":[],\"BlkioDeviceReadBps\":[],\"BlkioDeviceWriteBps\":[],"
    "\"BlkioDeviceReadIOps\":[],\"BlkioDeviceWriteIOps\":[],\"CpuPeriod\":0,\"CpuQuota\":0,"
    "\"CpuRealtimePeriod\":0,\"CpuRealtimeRuntime\":0,\"CpusetCpus\":\"\",\"CpusetMems\":\"\","
    "\"Devices\":[],\"DeviceCgroupRules\":null,\"DeviceRequests\":null,\"KernelMemory\":0,"
    "\"KernelMemoryTCP\":0,\"MemoryReservation\":0,\"MemorySwap\":0,\"MemorySwappiness\":null,"
    "\"OomKillDisable\":false,\"PidsLimit\":null,\"Ulimits\":[],\"CpuCount\":0,\"CpuPercent\":0,"
    "\"IOMaximumIOps\":0,\"IOMaximumBandwidth\":0,\"MaskedPaths\":[\"/proc/asound\","
    "\"/proc/acpi\",\"/proc/kcore\",\"/proc/keys\",\"/proc/latency_stats\",\"/proc/timer_list\","
    "\"/proc/timer_stats\",\"/proc/sched_debug\",\"/proc/scsi\",\"/sys/firmware\"],"
    "\"ReadonlyPaths\":[\"/proc/bus\",\"/proc/fs\",\"/proc/irq\",\"/proc/sys\","
    "\"/proc/sysrq-trigger\"]}";

static void json_paths(mw__fddi_sb *b, const mw__fddi_ctr *c)
{
    static const char *const files[] = {"ResolvConfPath", "resolv.conf", "HostnamePath",
                                        "hostname",       "HostsPath",   "hosts"};
    for (size_t i = 0; i < 6; i += 2)
        mw__fddi_sb_fmt(b, "\"%s\":\"/var/lib/docker/containers/%s/%s\",", files[i], c->id,
                        files[i + 1]);
    mw__fddi_sb_fmt(b, "\"LogPath\":\"/var/lib/docker/containers/%s/%s-json.log\",", c->id, c->id);
}

static void json_host_config(mw__fddi_sb *b, const mw__fddi_ctr *c)
{
    mw__fddi_sb_str(b, "\"HostConfig\":{\"Binds\":null,\"ContainerIDFile\":\"\","
                       "\"LogConfig\":{\"Type\":\"json-file\",\"Config\":{}},\"NetworkMode\":");
    mw__fddi_sb_json(b, c->network_mode);
    mw__fddi_sb_put(b, ",", 1);
    json_port_bindings(b, c);
    mw__fddi_sb_put(b, ",", 1);
    mw__fddi_sb_put(b, host_config_tail, sizeof host_config_tail - 1);
}

static void json_graph_driver(mw__fddi_sb *b, const mw__fddi_ctr *c)
{
    static const char *const dirs[] = {"MergedDir", "merged",  "UpperDir",
                                       "diff",      "WorkDir", "work"};
    mw__fddi_sb_fmt(
        b, "\"GraphDriver\":{\"Data\":{\"LowerDir\":\"/var/lib/docker/overlay2/%s-init/diff\"",
        c->id);
    for (size_t i = 0; i < 6; i += 2)
        mw__fddi_sb_fmt(b, ",\"%s\":\"/var/lib/docker/overlay2/%s/%s\"", dirs[i], c->id,
                        dirs[i + 1]);
    mw__fddi_sb_str(b, "},\"Name\":\"overlay2\"}");
}

static void json_config(mw__fddi_sb *b, const mw__fddi_ctr *c)
{
    char key[32];
    mw__fddi_sb_str(b, "\"Config\":{\"Hostname\":\"");
    mw__fddi_sb_put(b, c->id, 12);
    mw__fddi_sb_str(b, "\",\"Domainname\":\"\",\"User\":\"\",\"AttachStdin\":false,"
                       "\"AttachStdout\":false,\"AttachStderr\":false,");
    if (c->nports) {
        mw__fddi_sb_str(b, "\"ExposedPorts\":{");
        for (size_t i = 0; i < c->nports; i++) {
            port_key(key, sizeof key, &c->ports[i]);
            mw__fddi_sb_fmt(b, "%s\"%s\":{}", i ? "," : "", key);
        }
        mw__fddi_sb_str(b, "},");
    }
    mw__fddi_sb_str(b, "\"Tty\":false,\"OpenStdin\":false,\"StdinOnce\":false,\"Env\":[");
    for (size_t i = 0; i < c->nenv; i++) {
        if (i)
            mw__fddi_sb_put(b, ",", 1);
        mw__fddi_sb_json(b, c->env[i]);
    }
    mw__fddi_sb_str(b, "],\"Cmd\":");
    json_words(b, c->cmd, 0);
    if (c->health)
        mw__fddi_sb_str(b, ",\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"true\"],"
                           "\"Interval\":2000000000,\"Timeout\":2000000000,\"Retries\":2}");
    mw__fddi_sb_str(b, ",\"Image\":");
    mw__fddi_sb_json(b, c->image);
    mw__fddi_sb_str(b, ",\"Volumes\":null,\"WorkingDir\":\"\",\"Entrypoint\":null,"
                       "\"OnBuild\":null,\"Labels\":");
    json_kv_object(b, c->labels, c->nlabels);
    mw__fddi_sb_put(b, "}", 1);
}

static void json_ports_map(mw__fddi_sb *b, const mw__fddi_ctr *c)
{
    char key[32];
    mw__fddi_sb_str(b, "\"Ports\":{");
    for (size_t i = 0; is_up(c) && i < c->nports; i++) {
        const mw__fddi_port *p = &c->ports[i];
        port_key(key, sizeof key, p);
        mw__fddi_sb_fmt(b, "%s\"%s\":", i ? "," : "", key);
        if (p->pub)
            mw__fddi_sb_fmt(b,
                            "[{\"HostIp\":\"0.0.0.0\",\"HostPort\":\"%u\"},"
                            "{\"HostIp\":\"::\",\"HostPort\":\"%u\"}]",
                            p->pub, p->pub);
        else
            mw__fddi_sb_str(b, "null");
    }
    mw__fddi_sb_put(b, "}", 1);
}

/* Below 1.52 the default bridge endpoint is repeated at the top level. */
static void json_legacy_endpoint(mw__fddi_sb *b, const mw__fddi_ctr *c)
{
    const mw__fddi_net *n = NULL;
    for (size_t i = 0; i < c->nnets; i++)
        if (strcmp(c->nets[i].name, "bridge") == 0)
            n = &c->nets[i];
    int up = n && is_up(c);
    mw__fddi_sb_str(b, "\"EndpointID\":");
    mw__fddi_sb_json(b, up ? n->ep_id : "");
    mw__fddi_sb_str(b, ",\"Gateway\":");
    mw__fddi_sb_json(b, up ? n->gw : "");
    mw__fddi_sb_str(b, ",\"GlobalIPv6Address\":\"\",\"GlobalIPv6PrefixLen\":0,\"IPAddress\":");
    mw__fddi_sb_json(b, up ? n->ip : "");
    mw__fddi_sb_fmt(b, ",\"IPPrefixLen\":%d,\"IPv6Gateway\":\"\",\"MacAddress\":", up ? 16 : 0);
    mw__fddi_sb_json(b, up ? n->mac : "");
    mw__fddi_sb_put(b, ",", 1);
}

static void json_network_settings(mw__fddi_sb *b, const mw__fddi_ctr *c, int ver)
{
    mw__fddi_sb_str(b, "\"NetworkSettings\":{\"Bridge\":\"\",\"SandboxID\":\"");
    if (is_up(c))
        mw__fddi_sb_put(b, c->id, 64); /* any 64 hex does */
    mw__fddi_sb_str(b, "\",\"HairpinMode\":false,\"LinkLocalIPv6Address\":\"\","
                       "\"LinkLocalIPv6PrefixLen\":0,");
    json_ports_map(b, c);
    mw__fddi_sb_str(b, ",\"SandboxKey\":\"");
    if (is_up(c)) {
        mw__fddi_sb_str(b, "/var/run/docker/netns/");
        mw__fddi_sb_put(b, c->id, 12);
    }
    mw__fddi_sb_str(b, "\",\"SecondaryIPAddresses\":null,\"SecondaryIPv6Addresses\":null,");
    if (ver < MW_FDDI_V152)
        json_legacy_endpoint(b, c);
    json_networks(b, c, 1);
    mw__fddi_sb_put(b, "}", 1);
}

void mw__fddi_json_inspect(mw__fddi_sb *b, const mw__fddi_ctr *c, int ver)
{
    mw__fddi_sb_reserve(b, 6000);
    mw__fddi_sb_str(b, "{\"Id\":\"");
    mw__fddi_sb_put(b, c->id, 64);
    mw__fddi_sb_str(b, "\",\"Created\":\"");
    mw__fddi_sb_time(b, c->created_ns);
    mw__fddi_sb_str(b, "\",\"Path\":");
    const char *sp = strchr(c->cmd, ' ');
    char *path = strndup(c->cmd, sp ? (size_t)(sp - c->cmd) : strlen(c->cmd));
    if (!path) {
        b->oom = 1;
        return;
    }
    mw__fddi_sb_json(b, path);
    free(path);
    mw__fddi_sb_str(b, ",\"Args\":");
    json_words(b, c->cmd, 1);
    mw__fddi_sb_put(b, ",", 1);
    json_state(b, c);
    mw__fddi_sb_str(b, ",\"Image\":");
    mw__fddi_sb_json(b, c->image_id);
    mw__fddi_sb_put(b, ",", 1);
    json_paths(b, c);
    mw__fddi_sb_str(b, "\"Name\":");
    json_pre(b, "/", c->name);
    mw__fddi_sb_fmt(b,
                    ",\"RestartCount\":%d,\"Driver\":\"overlay2\",\"Platform\":\"linux\","
                    "\"MountLabel\":\"\",\"ProcessLabel\":\"\",\"AppArmorProfile\":\"\","
                    "\"ExecIDs\":null,",
                    c->restart_count);
    json_host_config(b, c);
    mw__fddi_sb_put(b, ",", 1);
    json_graph_driver(b, c);
    mw__fddi_sb_str(b, ",\"Mounts\":[],");
    json_config(b, c);
    mw__fddi_sb_put(b, ",", 1);
    json_network_settings(b, c, ver);
    mw__fddi_sb_put(b, "}", 1);
}

/* ---- images, version, events ---- */

void mw__fddi_json_image(mw__fddi_sb *b, const mw__fddi_image *img, int ver)
{
    const char *hex = img->id + 7;
    mw__fddi_sb_str(b, "{\"Id\":");
    mw__fddi_sb_json(b, img->id);
    mw__fddi_sb_str(b, ",\"RepoTags\":[");
    mw__fddi_sb_json(b, img->name);
    mw__fddi_sb_str(b, "],\"RepoDigests\":[],\"Parent\":\"\",\"Comment\":\"Imported from -\","
                       "\"Created\":\"");
    mw__fddi_sb_time(b, img->created_ns);
    mw__fddi_sb_str(b, "\",\"DockerVersion\":\"\",\"Author\":\"\",\"Config\":{\"Hostname\":\"\","
                       "\"Domainname\":\"\",\"User\":\"\",\"AttachStdin\":false,"
                       "\"AttachStdout\":false,\"AttachStderr\":false,\"Tty\":false,"
                       "\"OpenStdin\":false,\"StdinOnce\":false,\"Env\":null,\"Cmd\":null,"
                       "\"Image\":\"\",\"Volumes\":null,\"WorkingDir\":\"\",\"Entrypoint\":null,"
                       "\"OnBuild\":null,\"Labels\":null},\"Architecture\":\"amd64\","
                       "\"Os\":\"linux\",\"Size\":1187232,");
    if (ver < MW_FDDI_VER(1, 44))
        mw__fddi_sb_str(b, "\"VirtualSize\":1187232,");
    mw__fddi_sb_fmt(b,
                    "\"GraphDriver\":{\"Data\":{\"MergedDir\":\"/var/lib/docker/overlay2/%s/"
                    "merged\",\"UpperDir\":\"/var/lib/docker/overlay2/%s/diff\","
                    "\"WorkDir\":\"/var/lib/docker/overlay2/%s/work\"},\"Name\":\"overlay2\"},",
                    hex, hex, hex);
    mw__fddi_sb_fmt(b, "\"RootFS\":{\"Type\":\"layers\",\"Layers\":[\"sha256:%s\"]},", hex);
    mw__fddi_sb_str(b, "\"Metadata\":{\"LastTagTime\":\"");
    mw__fddi_sb_time(b, img->created_ns);
    mw__fddi_sb_str(b, "\"}}");
}

void mw__fddi_json_version(mw__fddi_sb *b, const mw__fdd *d)
{
    const char *v = d->engine_version;
    mw__fddi_sb_str(b, "{\"Platform\":{\"Name\":\"\"},\"Components\":[{\"Name\":\"Engine\","
                       "\"Version\":");
    mw__fddi_sb_json(b, v);
    mw__fddi_sb_fmt(b,
                    ",\"Details\":{\"ApiVersion\":\"%s\",\"Arch\":\"amd64\","
                    "\"BuildTime\":\"2026-05-07T21:09:36.000000000+00:00\","
                    "\"Experimental\":\"false\",\"GitCommit\":\"5d6db84\","
                    "\"GoVersion\":\"go1.19.8\",\"KernelVersion\":\"6.1.0\","
                    "\"MinAPIVersion\":\"%s\",\"Os\":\"linux\"}},",
                    d->max_str, d->min_str);
    mw__fddi_sb_str(b,
                    "{\"Name\":\"containerd\",\"Version\":\"1.6.20~ds1\",\"Details\":"
                    "{\"GitCommit\":\"1.6.20~ds1-1+deb12u3\"}},{\"Name\":\"runc\","
                    "\"Version\":\"1.1.5+ds1\",\"Details\":{\"GitCommit\":\"1.1.5+ds1-1+deb12u1\""
                    "}},{\"Name\":\"docker-init\",\"Version\":\"0.19.0\",\"Details\":"
                    "{\"GitCommit\":\"\"}}],\"Version\":");
    mw__fddi_sb_json(b, v);
    mw__fddi_sb_fmt(b,
                    ",\"ApiVersion\":\"%s\",\"MinAPIVersion\":\"%s\",\"GitCommit\":\"5d6db84\","
                    "\"GoVersion\":\"go1.19.8\",\"Os\":\"linux\",\"Arch\":\"amd64\","
                    "\"KernelVersion\":\"6.1.0\","
                    "\"BuildTime\":\"2026-05-07T21:09:36.000000000+00:00\"}\n",
                    d->max_str, d->min_str);
}

void mw__fddi_json_event(mw__fddi_sb *b, const char *type, const char *action, const char *actor,
                         const char *from, const char *const *attrs, size_t npairs, int64_t t,
                         int legacy)
{
    mw__fddi_sb_put(b, "{", 1);
    /* Legacy lines: container events carry status, id and from; image
     * events status and id; network events none of them. */
    if (legacy && strcmp(type, "network") != 0) {
        mw__fddi_sb_str(b, "\"status\":");
        mw__fddi_sb_json(b, action);
        mw__fddi_sb_str(b, ",\"id\":");
        mw__fddi_sb_json(b, actor);
        if (from && strcmp(type, "container") == 0) {
            mw__fddi_sb_str(b, ",\"from\":");
            mw__fddi_sb_json(b, from);
        }
        mw__fddi_sb_put(b, ",", 1);
    }
    mw__fddi_sb_str(b, "\"Type\":");
    mw__fddi_sb_json(b, type);
    mw__fddi_sb_str(b, ",\"Action\":");
    mw__fddi_sb_json(b, action);
    mw__fddi_sb_str(b, ",\"Actor\":{\"ID\":");
    mw__fddi_sb_json(b, actor);
    mw__fddi_sb_str(b, ",\"Attributes\":{");
    for (size_t i = 0; i < npairs; i++) {
        if (i)
            mw__fddi_sb_put(b, ",", 1);
        mw__fddi_sb_json(b, attrs[2 * i]);
        mw__fddi_sb_put(b, ":", 1);
        mw__fddi_sb_json(b, attrs[2 * i + 1]);
    }
    mw__fddi_sb_str(b, "}},\"scope\":\"local\",\"time\":");
    mw__fddi_sb_i64(b, t / 1000000000);
    mw__fddi_sb_str(b, ",\"timeNano\":");
    mw__fddi_sb_i64(b, t);
    mw__fddi_sb_str(b, "}\n");
}
