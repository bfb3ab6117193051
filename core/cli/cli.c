/*
 * cli.c - the commands behind `moonwatch run|check|configcheck|validate` and the
 * options they share.
 */
#include "core/cli/cli.h"
#include "core/cli/heap.h"

#include "core/base/util.h"
#include "core/config.h"
#include "core/engine.h"
#include "discovery/template.h"
#include "lua/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------- options */

/* Flags that map onto a config key and take a value. */
static const struct flag {
    const char *flag;
    const char *key;
} value_flags[] = {
    {"--checks-dir", "checks_dir"},
    {"--templates-dir", "templates_dir"},
    {"--log-level", "log_level"},
    {"--log-format", "log_format"},
    {"--flush-interval", "flush_interval"},
    {"--sink", "sink"},
    {"--hostname", "hostname"},
    {"--docker-host", "docker_host"},
    {"--listen", "listen"},
};

extern char **environ;

/* Sets one config key from `origin` (the flag); what mw_config_set()
 * returned, printed when it is not MW_OK. */
static mw_code apply(mw_config *cfg, const char *key, const char *value, const char *origin)
{
    char *err = NULL;
    mw_code rc = mw__config_set_from(cfg, key, value, origin, &err);
    if (rc != MW_OK)
        fprintf(stderr, "moonwatch: %s\n", err ? err : "out of memory");
    mw_free(err);
    return rc;
}

/* --set KEY=VALUE: MW_EINVAL (printed) without '=', MW_ENOMEM, or what
 * apply() returned. */
static mw_code apply_set(mw_config *cfg, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq) {
        fprintf(stderr, "moonwatch: --set expects KEY=VALUE, got '%s'\n", kv);
        return MW_EINVAL;
    }
    char *key = mw__strndup(kv, (size_t)(eq - kv));
    mw_code rc = key ? apply(cfg, key, eq + 1, "flag:--set") : MW_ENOMEM;
    free(key);
    return rc;
}

/* What mw_config_load_file() returned, printed when it is not MW_OK. */
static mw_code load_file(mw_config *cfg, const char *path)
{
    char *err = NULL;
    mw_code rc = mw_config_load_file(cfg, path, &err);
    if (rc != MW_OK)
        fprintf(stderr, "%s\n", err ? err : "out of memory");
    mw_free(err);
    return rc;
}

/* -c first, so that flags override the file whatever their order.
 * MW_EINVAL (printed) for a -c without a file, or what load_file()
 * returned. */
static mw_code load_config_files(int argc, char **argv, mw_config *cfg)
{
    mw_code rc;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-c") && strcmp(argv[i], "--config"))
            continue;
        if (i + 1 >= argc) {
            fprintf(stderr, "moonwatch: %s needs a file\n", argv[i]);
            return MW_EINVAL;
        }
        if ((rc = load_file(cfg, argv[++i])) != MW_OK)
            return rc;
    }
    return MW_OK;
}

/* One argument at *i (and its value, *i moved past it): applied, or kept
 * in `out->rest`. MW_EINVAL (printed) for a flag without its value, or
 * what applying it returned. */
static mw_code parse_one(int argc, char **argv, int *i, mw__cli_args *out)
{
    const char *a = argv[*i];
    if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
        (*i)++;
        return MW_OK;
    }
    if (!strcmp(a, "--no-bundled"))
        return apply(out->cfg, "no_bundled", "true", "flag:--no-bundled");
    for (size_t k = 0; k < MW_ARRAY_LEN(value_flags); k++) {
        if (strcmp(a, value_flags[k].flag))
            continue;
        if (*i + 1 >= argc) {
            fprintf(stderr, "moonwatch: %s needs a value\n", a);
            return MW_EINVAL;
        }
        char origin[64];
        snprintf(origin, sizeof origin, "flag:%s", a);
        return apply(out->cfg, value_flags[k].key, argv[++(*i)], origin);
    }
    if (!strcmp(a, "--set")) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "moonwatch: --set needs KEY=VALUE\n");
            return MW_EINVAL;
        }
        return apply_set(out->cfg, argv[++(*i)]);
    }
    out->rest[out->nrest++] = argv[*i];
    return MW_OK;
}

/* The environment over the files, under the flags. What
 * mw__config_apply_env() returned, printed when it is not MW_OK. */
static mw_code apply_env(mw__cli_args *out)
{
    char *err = NULL;
    mw_code rc = mw__config_apply_env(out->cfg, environ, &out->notes, &err);
    if (rc != MW_OK)
        fprintf(stderr, "moonwatch: %s\n", err ? err : mw_strerror(rc));
    free(err);
    return rc;
}

mw_code mw__cli_common(int argc, char **argv, mw__cli_args *out)
{
    mw_code rc = MW_ENOMEM;
    memset(out, 0, sizeof *out);
    out->cfg = mw_config_new();
    out->rest = calloc((size_t)argc + 1, sizeof *out->rest);
    if (!out->cfg || !out->rest)
        goto out;
    if ((rc = load_config_files(argc, argv, out->cfg)) != MW_OK || (rc = apply_env(out)) != MW_OK)
        goto out;
    for (int i = 0; i < argc && rc == MW_OK; i++)
        rc = parse_one(argc, argv, &i, out);
out:
    if (rc != MW_OK)
        mw__cli_args_free(out);
    return rc;
}

void mw__cli_args_free(mw__cli_args *a)
{
    mw_config_free(a->cfg);
    free(a->rest);
    mw__diag_free(&a->notes);
    memset(a, 0, sizeof *a);
}

void mw__cli_say_notes(mw__cli_args *a, const mw__log *log)
{
    for (size_t i = 0; i < a->notes.n; i++) {
        if (log)
            mw__warn(log, "config", "%s", a->notes.items[i]);
        else
            fprintf(stderr, "moonwatch: warning: %s\n", a->notes.items[i]);
    }
    mw__diag_free(&a->notes);
}

/* The one-shot commands print what they find and send nothing anywhere,
 * whatever DD_API_KEY says: `check` writes JSON lines (`sinks`
 * MW_SINK_STDOUT), configcheck and validate flush nothing (0). */
static void one_shot_sinks(mw_config *cfg, unsigned sinks)
{
    cfg->sinks = sinks;
    cfg->sinks_given = 1;
    cfg->sinks_exact = 1;
}

/* What mw_engine_new() returned, printed when it is not MW_OK. Only
 * `run` serves the status listener: the one-shot commands leave the
 * config file's `listen` to the daemon, which may hold the address. */
static mw_code make_engine(mw_config *cfg, int serve, mw_engine **eng)
{
    char *err = NULL;
    if (!serve)
        mw_config_set(cfg, "listen", "", NULL);
    mw_code rc = mw_engine_new(cfg, eng, &err);
    if (rc != MW_OK)
        fprintf(stderr, "moonwatch: %s\n", err ? err : mw_strerror(rc));
    mw_free(err);
    return rc;
}

/* ------------------------------------------------------------- run */

/* How often `run` hands the heap's free pages back to the system. */
#define TRIM_INTERVAL 30

/*
 * An allocator keeps what the threads free, resident, between the objects
 * still live there: under container churn, instances, contexts and
 * inspects come and go on the control thread and the workers, and RSS
 * creeps up by the holes they leave. mw_heap_trim() gives every whole
 * free page back (well under a millisecond for a 10 MB heap). A
 * process-wide choice, so the program's and not the library's: an
 * embedder keeps its own allocator policy.
 */
static void trim_heap(void)
{
    mw_heap_trim();
}

/* SIGHUP: the config file (-c, with the flags over it as at start) and
 * the checks and templates directories read again. A config file with a
 * problem changes nothing (the problem is printed); the reload's problems
 * are logged and shown by the status. */
static void hangup(mw_engine *eng, int argc, char **argv)
{
    mw__cli_args fresh;
    mw__info(mw__engine_log(eng), "reload", "SIGHUP: reloading");
    if (mw__cli_common(argc, argv, &fresh) == MW_OK) {
        mw__engine_reconfigure(eng, fresh.cfg);
        mw__cli_args_free(&fresh);
    } else {
        mw__error(mw__engine_log(eng), "reload", "config: not applied (see the problem above)");
    }
    mw_engine_reload(eng, NULL);
}

/* Waits for one of the stop signals in `set`, reloading on SIGHUP and
 * trimming the heap meanwhile; returns the stop signal. */
static int wait_for_stop(const sigset_t *set, mw_engine *eng, int argc, char **argv)
{
    const struct timespec every = {TRIM_INTERVAL, 0};
    for (;;) {
        int sig = sigtimedwait(set, NULL, &every);
        if (sig == SIGHUP)
            hangup(eng, argc, argv);
        else if (sig > 0)
            return sig;
        else if (errno == EAGAIN)
            trim_heap();
    }
}

/* 1 when `flag` is among the arguments left, then taken out of them. */
static int take_flag(mw__cli_args *a, const char *flag)
{
    int found = 0, n = 0;
    for (int i = 0; i < a->nrest; i++) {
        if (!strcmp(a->rest[i], flag))
            found = 1;
        else
            a->rest[n++] = a->rest[i];
    }
    a->nrest = n;
    return found;
}

/* run --print-config: the config, and no engine; exit status 0. */
static int print_config_and_exit(mw__cli_args *a)
{
    mw__cli_say_notes(a, NULL);
    mw__cli_print_config(a->cfg, stdout);
    mw__cli_args_free(a);
    return 0;
}

int mw__cmd_run(int argc, char **argv)
{
    mw__cli_args a;
    if (mw__cli_common(argc, argv, &a) != MW_OK)
        return 2;
    int print = take_flag(&a, "--print-config");
    if (a.nrest == 0 && print)
        return print_config_and_exit(&a);
    if (a.nrest > 0) {
        fprintf(stderr, "moonwatch run: unexpected argument '%s'\n", a.rest[0]);
        mw__cli_args_free(&a);
        return 2;
    }
    /* Block the stop signals and SIGHUP in every thread; this one waits
     * for them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (a.cfg->watch_dirs < 0) /* the daemon follows its directories unless told not to */
        a.cfg->watch_dirs = 1;
    mw_engine *eng = NULL;
    int rc = 1, sig = 0;
    if (make_engine(a.cfg, 1, &eng) != MW_OK) {
        mw__cli_say_notes(&a, NULL);
        goto out;
    }
    mw__cli_say_notes(&a, mw__engine_log(eng)); /* in the log's format */
    if (mw_engine_load(eng) != MW_OK || mw_engine_start(eng) != MW_OK)
        goto out;
    mw__info(mw__engine_log(eng), NULL, "moonwatch %s running", MW_VERSION);
    sig = wait_for_stop(&set, eng, argc, argv);
    mw__info(mw__engine_log(eng), NULL, "signal %d: stopping", sig);
    mw_engine_stop(eng); /* with a final flush */
    rc = 0;
out:
    mw_engine_free(eng);
    mw__cli_args_free(&a);
    return rc;
}

/* ------------------------------------------------------------- check */

typedef struct check_opts {
    const char *name;
    const char *instance;
    const char *init_config;
    long times;
} check_opts;

/* MW_OK, or MW_EINVAL after printing the problem. */
static mw_code parse_check(mw__cli_args *a, check_opts *o)
{
    memset(o, 0, sizeof *o);
    o->times = 1;
    for (int i = 0; i < a->nrest; i++) {
        const char *x = a->rest[i];
        const char *v = i + 1 < a->nrest ? a->rest[i + 1] : NULL;
        if (!strcmp(x, "--instance") || !strcmp(x, "--init-config") || !strcmp(x, "--times")) {
            if (!v) {
                fprintf(stderr, "moonwatch check: %s needs a value\n", x);
                return MW_EINVAL;
            }
            i++;
            if (!strcmp(x, "--instance"))
                o->instance = v;
            else if (!strcmp(x, "--init-config"))
                o->init_config = v;
            else if ((o->times = strtol(v, NULL, 10)) < 1 || o->times > 1000) {
                fprintf(stderr, "moonwatch check: --times expects 1..1000\n");
                return MW_EINVAL;
            }
        } else if (!o->name && x[0] != '-') {
            o->name = x;
        } else {
            fprintf(stderr, "moonwatch check: unexpected argument '%s'\n", x);
            return MW_EINVAL;
        }
    }
    if (!o->name) {
        fprintf(stderr, "usage: moonwatch check NAME [--instance JSON] [--init-config JSON] "
                        "[--times N]\n");
        return MW_EINVAL;
    }
    return MW_OK;
}

/* `text` (NULL: none, *out NULL) as a JSON object into `*out`. MW_OK, or
 * MW_EPARSE after printing the problem. */
static mw_code parse_json_arg(const char *what, const char *text, cJSON **out)
{
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    *out = NULL;
    if (!text)
        return MW_OK;
    if (!cJSON_IsObject(j)) {
        fprintf(stderr, "moonwatch check: %s must be a JSON object, got: %s\n", what, text);
        cJSON_Delete(j);
        return MW_EPARSE;
    }
    *out = j;
    return MW_OK;
}

static size_t schedule_one(mw_engine *eng, const char *name, const char *src, const cJSON *inst,
                           const cJSON *init, const char **ids, size_t n)
{
    char *err = NULL;
    const char *id = NULL;
    mw_code rc = mw__engine_schedule(eng, name, src, inst, init, &id, &err);
    if (rc == MW_OK) {
        ids[n++] = id;
    } else if (rc != MW_ESTATE) {
        fprintf(stderr, "%s: %s\n", src, err ? err : mw_strerror(rc));
    }
    free(err);
    return n;
}

/* The instances to run: --instance, else the check's static configs, else {}. */
static size_t schedule_check(mw_engine *eng, const check_opts *o, const char **ids, size_t max)
{
    size_t n = 0;
    cJSON *inst = NULL, *init = NULL;
    if (parse_json_arg("--instance", o->instance, &inst) != MW_OK ||
        parse_json_arg("--init-config", o->init_config, &init) != MW_OK)
        goto out;
    if (inst) {
        n = schedule_one(eng, o->name, "--instance", inst, init, ids, n);
        goto out;
    }
    mw__template_set set = {0};
    mw__diag diag = {0};
    mw__engine_load_templates(eng, &set, &diag);
    for (size_t t = 0; t < set.n; t++) {
        if (strcmp(set.v[t].check, o->name) || set.v[t].ad_identifiers)
            continue;
        const cJSON *i;
        cJSON_ArrayForEach(i, set.v[t].instances) if (n < max) n = schedule_one(
            eng, o->name, set.v[t].file, i, init ? init : set.v[t].init_config, ids, n);
    }
    mw__template_set_free(&set);
    mw__diag_free(&diag);
    if (n == 0) {
        cJSON *empty = cJSON_CreateObject();
        n = schedule_one(eng, o->name, "(no config)", empty, init, ids, n);
        cJSON_Delete(empty);
    }
out:
    cJSON_Delete(inst);
    cJSON_Delete(init);
    return n;
}

/* Runs the instances `times` rounds; the exit status: 1 when one of them
 * had errors, else 0. */
static int run_rounds(mw_engine *eng, const char **ids, size_t n, long times)
{
    mw__sched *s = mw__engine_sched(eng);
    for (long t = 0; t < times; t++) {
        if (t > 0)
            sleep(1); /* rates and monotonic counts need time between samples */
        for (size_t i = 0; i < n; i++)
            mw__sched_run_now(s, ids[i]);
        while (mw__sched_running(s) > 0) /* runs may wait on I/O */
            mw_engine_step(eng, 10);
    }
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        mw_instance_stats st = {.size = sizeof(mw_instance_stats)};
        if (mw_engine_instance_stats(eng, ids[i], &st) == MW_OK && st.errors > 0)
            failed = 1;
    }
    return failed;
}

int mw__cmd_check(int argc, char **argv)
{
    mw__cli_args a;
    check_opts o;
    const char *ids[256];
    if (mw__cli_common(argc, argv, &a) != MW_OK)
        return 2;
    mw__cli_say_notes(&a, NULL);
    int rc = 2;
    mw_engine *eng = NULL;
    if (parse_check(&a, &o) != MW_OK)
        goto out;
    one_shot_sinks(a.cfg, MW_SINK_STDOUT);
    if (make_engine(a.cfg, 0, &eng) != MW_OK)
        goto out;
    mw__sched_set_manual(mw__engine_sched(eng), 1);
    size_t n = schedule_check(eng, &o, ids, MW_ARRAY_LEN(ids));
    if (n == 0) {
        rc = 1;
        goto out;
    }
    rc = run_rounds(eng, ids, n, o.times);
    mw_engine_flush(eng);
out:
    mw_engine_free(eng);
    mw__cli_args_free(&a);
    return rc;
}

/* ------------------------------------------------------------- configcheck */

static void print_config_text(const cJSON *o)
{
    const cJSON *svc = cJSON_GetObjectItem(o, "service");
    char *inst = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "instance"));
    char *init = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "init_config"));
    printf("=== %s (%s) ===\n", cJSON_GetStringValue(cJSON_GetObjectItem(o, "check")),
           cJSON_GetStringValue(cJSON_GetObjectItem(o, "id")));
    printf("source:      %s\n", cJSON_GetStringValue(cJSON_GetObjectItem(o, "source")));
    if (cJSON_IsString(svc))
        printf("service:     %s (%s)\n", svc->valuestring,
               cJSON_GetStringValue(cJSON_GetObjectItem(o, "container_name")));
    printf("instance:    %s\ninit_config: %s\n\n", inst ? inst : "?", init ? init : "?");
    cJSON_free(inst);
    cJSON_free(init);
}

static void print_unresolved_text(const cJSON *o)
{
    printf("%s for %s (%s) from %s: %s\n", cJSON_GetStringValue(cJSON_GetObjectItem(o, "check")),
           cJSON_GetStringValue(cJSON_GetObjectItem(o, "service")),
           cJSON_GetStringValue(cJSON_GetObjectItem(o, "container_name")),
           cJSON_GetStringValue(cJSON_GetObjectItem(o, "source")),
           cJSON_GetStringValue(cJSON_GetObjectItem(o, "reason")));
}

static void print_not_scheduled_text(const cJSON *o)
{
    printf("%s from %s: %s\n", cJSON_GetStringValue(cJSON_GetObjectItem(o, "check")),
           cJSON_GetStringValue(cJSON_GetObjectItem(o, "source")),
           cJSON_GetStringValue(cJSON_GetObjectItem(o, "reason")));
}

static void print_configcheck(const cJSON *doc, int json)
{
    if (json) {
        char *s = cJSON_PrintUnformatted(doc);
        if (s)
            printf("%s\n", s);
        cJSON_free(s);
        return;
    }
    const cJSON *it, *un = cJSON_GetObjectItem(doc, "unresolved");
    const cJSON *idle = cJSON_GetObjectItem(doc, "not_scheduled");
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "resolved")) print_config_text(it);
    if (cJSON_GetArraySize(un) > 0)
        printf("=== unresolved ===\n");
    cJSON_ArrayForEach(it, un) print_unresolved_text(it);
    if (cJSON_GetArraySize(idle) > 0)
        printf("%s=== not scheduled ===\n", cJSON_GetArraySize(un) > 0 ? "\n" : "");
    cJSON_ArrayForEach(it, idle) print_not_scheduled_text(it);
}

int mw__cmd_configcheck(int argc, char **argv)
{
    mw__cli_args a;
    int json = 0, rc = 1;
    double timeout = 30;
    if (mw__cli_common(argc, argv, &a) != MW_OK)
        return 2;
    mw__cli_say_notes(&a, NULL);
    for (int i = 0; i < a.nrest; i++) {
        if (!strcmp(a.rest[i], "--json")) {
            json = 1;
        } else if (!strcmp(a.rest[i], "--timeout") && i + 1 < a.nrest) {
            timeout = strtod(a.rest[++i], NULL);
        } else {
            fprintf(stderr, "usage: moonwatch configcheck [--json] [--timeout SEC]\n");
            mw__cli_args_free(&a);
            return 2;
        }
    }
    mw_engine *eng = NULL;
    char *err = NULL;
    cJSON *doc = NULL;
    one_shot_sinks(a.cfg, 0);
    if (make_engine(a.cfg, 0, &eng) == MW_OK)
        doc = mw__engine_configcheck(eng, timeout > 0 ? timeout : 30, &err);
    if (doc) {
        print_configcheck(doc, json);
        rc = 0;
    } else if (eng) {
        fprintf(stderr, "moonwatch configcheck: %s\n", err ? err : "out of memory");
    }
    cJSON_Delete(doc);
    free(err);
    mw_engine_free(eng);
    mw__cli_args_free(&a);
    return rc;
}

/* ------------------------------------------------------------- validate */

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int is_template_file(const char *p)
{
    return ends_with(p, ".yaml") || ends_with(p, ".yml") || ends_with(p, ".yaml.default");
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

typedef struct validation {
    mw__template_set set;
    mw__diag diag;
    mw__diag notes;         /* what is worth knowing but not wrong */
    mw__strlist check_dirs; /* given dirs that hold checks, then bundled */
    size_t files;
    int strict; /* a template whose check has no script is a problem */
} validation;

/* Syntax-checks every *.lua in `dir`; returns how many there were. */
static size_t validate_checks_dir(validation *v, const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !ends_with(e->d_name, ".lua"))
            continue;
        char *p = mw__sprintf("%s/%s", dir, e->d_name);
        if (p)
            mw__sandbox_check_syntax(p, &v->diag);
        free(p);
        n++;
    }
    closedir(d);
    return n;
}

static void validate_path(validation *v, const char *p)
{
    if (is_dir(p)) {
        if (validate_checks_dir(v, p) > 0)
            mw__strlist_add(&v->check_dirs, p);
        mw__templates_load_dir(&v->set, p, &v->diag);
    } else if (ends_with(p, ".lua")) {
        mw__sandbox_check_syntax(p, &v->diag);
    } else if (is_template_file(p)) {
        char *check = mw__template_check_name(p);
        if (check)
            mw__template_load_file(&v->set, p, check, &v->diag);
        else
            mw__diag_add(&v->diag, p, 0, 0,
                         "cannot tell the check's name from the path "
                         "(expected <check>.d/<file>.yaml or <check>.yaml)");
        free(check);
    } else if (access(p, F_OK) != 0) {
        mw__diag_add(&v->diag, p, 0, 0, "%s", strerror(errno));
    } else {
        mw__diag_add(&v->diag, p, 0, 0, "not a template (.yaml) or a check (.lua)");
    }
    v->files++;
}

/* 1 when a template before `i` is of the same check and has no script. */
static int missing_said(const mw__template_set *set, size_t i)
{
    for (size_t k = 0; k < i; k++)
        if (set->v[k].no_check && strcmp(set->v[k].check, set->v[i].check) == 0)
            return 1;
    return 0;
}

/* A template whose check has no script loads and runs nothing: a note,
 * once per check (with --strict, a problem for each file, as a typo in a
 * check name would be). Templates that schedule nothing by themselves
 * (configuration discovery, only empty items) say so in a note. */
static void validate_checks_exist(validation *v, const mw__strlist *extra)
{
    for (size_t i = 0; i < extra->n; i++)
        mw__strlist_add(&v->check_dirs, extra->v[i]);
    mw__template_set_mark_checks(&v->set, (const char *const *)v->check_dirs.v, v->check_dirs.n);
    for (size_t i = 0; i < v->set.n; i++) {
        const mw__template *t = &v->set.v[i];
        if (t->idle)
            mw__diag_add(&v->notes, t->file, 0, 0, "note: %s", t->idle);
        if (t->no_check && v->strict)
            mw__diag_add(&v->diag, t->file, 0, 0,
                         "check '%s' has no %s.lua in the checks directories", t->check, t->check);
        else if (t->no_check && !missing_said(&v->set, i))
            mw__diag_add(&v->notes, t->file, 0, 0,
                         "note: no check named %s: loaded, nothing runs until %s.lua is in a "
                         "checks directory",
                         t->check, t->check);
    }
}

int mw__cmd_validate(int argc, char **argv)
{
    mw__cli_args a;
    if (mw__cli_common(argc, argv, &a) != MW_OK)
        return 2;
    mw__cli_say_notes(&a, NULL);
    validation v = {0};
    int npaths = 0;
    for (int i = 0; i < a.nrest; i++) {
        if (!strcmp(a.rest[i], "--strict"))
            v.strict = 1;
        else
            a.rest[npaths++] = a.rest[i];
    }
    if (npaths == 0) {
        fprintf(stderr, "usage: moonwatch validate [--strict] PATH...\n");
        mw__cli_args_free(&a);
        return 2;
    }
    mw_engine *eng = NULL;
    int rc = 2;
    one_shot_sinks(a.cfg, 0);
    if (make_engine(a.cfg, 0, &eng) != MW_OK)
        goto out;
    for (int i = 0; i < npaths; i++)
        validate_path(&v, a.rest[i]);
    validate_checks_exist(&v, mw__engine_checks_dirs(eng));
    for (size_t i = 0; i < v.diag.n; i++)
        printf("%s\n", v.diag.items[i]);
    for (size_t i = 0; i < v.notes.n; i++)
        fprintf(stderr, "%s\n", v.notes.items[i]);
    fprintf(stderr, "%zu path(s), %zu template(s), %zu problem(s), %zu note(s)\n", v.files, v.set.n,
            v.diag.n, v.notes.n);
    rc = v.diag.n ? 1 : 0;
out:
    mw_engine_free(eng);
    mw__template_set_free(&v.set);
    mw__diag_free(&v.diag);
    mw__diag_free(&v.notes);
    mw__strlist_free(&v.check_dirs);
    mw__cli_args_free(&a);
    return rc;
}
