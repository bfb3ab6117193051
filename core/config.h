/*
 * config.h - the engine's configuration: defaults, `key: value` setters
 * shared by the YAML config file, the environment (MW_<KEY> and the
 * Datadog DD_* names), the CLI flags and mw_config_set(); the key table
 * (defaults, which keys are secret) and where each value came from.
 *
 * A mw_config owns its strings and directory lists, and the text and
 * origin of every key set (wiped when freed: they may hold api_key).
 */
#ifndef MW_CONFIG_H
#define MW_CONFIG_H

#include "moonwatch.h"
#include "core/base/diag.h"
#include "core/base/log.h"
#include "core/pipeline/aggregator.h"
#include "discovery/discovery.h"

#define MW_MAX_PERCENTILES 8
/* Where moonwatch keeps what it must remember from one run to the next
 * (the host's boot id). */
#define MW_STATE_DIR_DEFAULT "/var/lib/moonwatch"

/* What the `sink` option lists (a comma or space list). */
#define MW_SINK_STDOUT     1u
#define MW_SINK_DATADOG    2u
#define MW_SINK_PROMETHEUS 4u /* /metrics: needs `listen`, which alone also turns it on */

typedef struct mw__strlist {
    char **v;
    size_t n;
} mw__strlist;

struct mw_config {
    double flush_interval;
    double default_interval;
    double check_timeout;
    double check_memory_limit_mb;
    double context_expiry;
    double time_slice; /* seconds a run may hold a worker before preemption */
    mw_log_level log_level;
    int log_json;
    mw_log_fn log_fn; /* NULL: standard error */
    void *log_ud;
    int no_bundled;
    unsigned sinks;  /* MW_SINK_* bits the `sink` option listed */
    int sinks_given; /* 0: `sink` not set (stdout, or datadog with a key) */
    int sinks_exact; /* 1: no datadog added for a key (the CLI's one-shot commands) */
    /* the Datadog sink; NULL: from DD_API_KEY, DD_DD_URL, DD_SITE, DD_TAGS */
    char *api_key; /* zeroed when freed; never logged nor shown */
    char *dd_url;
    char *site;
    char *dd_tags;
    double forwarder_queue_mb;
    double forwarder_timeout;     /* one request, seconds */
    double forwarder_backoff_max; /* seconds */
    double shutdown_timeout;      /* seconds for the final delivery */
    char *hostname;
    int ec2_metadata; /* MW_IMDS_AUTO / _ON / _OFF: whether IMDS may be asked */
    mw__strlist checks_dirs;
    mw__strlist templates_dirs;
    /* discovery */
    char *docker_host;       /* NULL: $DOCKER_HOST, else the default socket */
    int docker_mode;         /* MW_DOCKER_AUTO / _ON / _OFF */
    char *container_include; /* DD_CONTAINER_INCLUDE syntax; NULL: none */
    char *container_exclude;
    mw__strlist env_allowlist; /* %%env_VAR%% names allowed */
    char *host_network_host;   /* NULL: 127.0.0.1 */
    int discover_self;
    int ecs_mode;               /* MW_ECS_AUTO / _ON / _OFF */
    char *ecs_agent_url;        /* NULL: by the rules of discovery/ecs/ecs_where.h */
    char *ecs_config_path;      /* NULL: /host/etc/ecs/ecs.config or /etc/ecs/ecs.config */
    double ecs_poll_interval;   /* seconds */
    int ecs_collect_tags;       /* ecs_collect_resource_tags */
    double ecs_pending_timeout; /* seconds */
    char *state_dir;            /* NULL: MW_STATE_DIR_DEFAULT; boot id, checks' mw.state */
    /* checks' I/O */
    mw__strlist unix_sockets; /* unix_socket paths mw.http may use */
    int allow_link_local;     /* link-local (cloud metadata) addresses allowed */
    /* the host's files, as checks see them */
    char *procfs_path;   /* NULL: /host/proc when it exists, else /proc */
    char *cgroup_root;   /* NULL: /host/sys/fs/cgroup when it exists, else /sys/fs/cgroup */
    unsigned workers;    /* worker threads; 0: one per core */
    int watchdog_signal; /* 0: runs time themselves, no signal */
    /* the status listener (core/status.h) */
    char *listen;        /* NULL: none */
    int listen_any;      /* addresses beyond loopback allowed */
    double health_grace; /* seconds a source may fail before /healthz says 503 */
    int watch_dirs;      /* watch_config_dirs: 1 on, 0 off, -1 not set (the
                          * engine: off; `moonwatch run`: on) */
    unsigned hist_aggregates;
    double percentiles[MW_MAX_PERCENTILES];
    size_t npercentiles;
    /* per row of the key table (mw__config_key_at): the text each key was
     * set to (lists: the items joined with ", ") and where it came from;
     * NULL: the default */
    char **given;
    char **origin;
};

/* One row of the key table. */
#define MW_KEY_LIST   1u /* each setting adds to the list */
#define MW_KEY_SECRET 2u /* shown masked, never whole */
typedef struct mw__config_key {
    const char *key;
    mw_code (*set)(mw_config *c, const char *v, char **err);
    const char *def;  /* the default as a value ("" when none) */
    const char *note; /* what "" stands for, or NULL */
    unsigned flags;   /* MW_KEY_* */
} mw__config_key;

/* The key table: how many rows, and row i (NULL past the end). */
size_t mw__config_nkeys(void);
const mw__config_key *mw__config_key_at(size_t i);

/* mw_config_set() recording where the value comes from: "file:PATH:LINE",
 * "env:MW_X", "env:DD_X", "flag:--set" ... (copied). */
mw_code mw__config_set_from(mw_config *c, const char *key, const char *value, const char *origin,
                            char **err);

/* The environment (an environ-style array): the Datadog names (DD_API_KEY,
 * DD_SITE, DD_TAGS, DD_HOSTNAME, DD_LOG_LEVEL, DD_CONTAINER_INCLUDE,
 * DD_CONTAINER_EXCLUDE, DD_DD_URL), then MW_<KEY> for every key (upper
 * case), so that MW_ wins over DD_. An MW_ name that is no key adds a
 * warning to `notes`. MW_OK; MW_EINVAL with `*err` naming the variable;
 * MW_ENOMEM. */
mw_code mw__config_apply_env(mw_config *c, char *const *envp, mw__diag *notes, char **err);

/* Where `key` was set ("env:DD_HOSTNAME", "file:PATH:LINE", "flag:--set",
 * "api"), or NULL when it keeps its default. Borrowed from `c`. */
const char *mw__config_origin(const mw_config *c, const char *key);

/* Row i's effective text and origin ("default" when not set); the text
 * of a secret key (or credentials in a URL) masked: "***" and at most
 * the last 4 characters. Caller frees; NULL on OOM. */
char *mw__config_show(const mw_config *c, size_t i, const char **origin);

/* `v` masked as a secret: "***" plus its last 4 characters when it has
 * at least 12, else "***". Caller frees. */
char *mw__config_mask(const char *v);

/* Appends a copy of `s`: MW_OK or MW_ENOMEM. */
mw_code mw__strlist_add(mw__strlist *l, const char *s);
void mw__strlist_free(mw__strlist *l);

/* Deep copy; NULL on OOM. */
mw_config *mw__config_dup(const mw_config *c);

/* The host's /proc and cgroup tree for checks: the configured path, else
 * the one the host mounts into the agent's container (/host/proc,
 * /host/sys/fs/cgroup) when it is a directory, else the usual one.
 * Borrowed (c's string or a literal). */
const char *mw__config_procfs(const mw_config *c);
const char *mw__config_cgroup_root(const mw_config *c);

/* The state directory: the configured one, else MW_STATE_DIR_DEFAULT.
 * Borrowed. */
const char *mw__config_state_dir(const mw_config *c);

/* The directory holding the bundled checks/ and templates/: $MOONWATCH_DATADIR,
 * else the share/moonwatch beside libmoonwatch.so's lib/ or the running
 * program's bin/ when installed, else the configured prefix's, else the
 * source tree. Borrowed. */
const char *mw__bundled_dir(void);

#endif
