/*
 * embed.c - a host program that knows only moonwatch.h and links the
 * shared library: it drives the engine from its own poll() loop through
 * mw_engine_fd()/mw_engine_step(), receives records in a sink callback
 * and log lines in a log callback, and reads the version and the stats
 * structs the way a program built against another version would. Proves
 * the exported API is enough to embed the engine.
 */
#define _POSIX_C_SOURCE 200809L
#include <moonwatch.h>

#include <pthread.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int gauges, statuses, sized_records, failures;
static int log_lines, log_scheduled;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);                    \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static void on_record(const mw_record *r, void *ud)
{
    (void)ud;
    if (MW_HAS_FIELD(r, mw_record, check_id) && r->size == sizeof(mw_record))
        sized_records++;
    if (r->type == MW_RECORD_METRIC && !strcmp(r->name, "embed.value") && r->value == 7)
        gauges++;
    if (r->type == MW_RECORD_SERVICE_CHECK && !strcmp(r->name, "moonwatch.check_status") &&
        r->status == MW_STATUS_OK)
        statuses++;
}

/* Log lines arrive here, from any of the engine's threads. */
static void on_log(mw_log_level level, const char *where, const char *msg, void *ud)
{
    (void)where;
    pthread_mutex_lock(&log_mu);
    log_lines++;
    if (level == MW_LOG_INFO && strstr(msg, "1 instances scheduled") && ud == &log_lines)
        log_scheduled++;
    pthread_mutex_unlock(&log_mu);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check_version(void)
{
    EXPECT(mw_version() == MW_VERSION_NUM);
    EXPECT(strcmp(mw_version_string(), MW_VERSION) == 0);
    EXPECT(MW_VERSION_NUM ==
           ((MW_VERSION_MAJOR << 16) | (MW_VERSION_MINOR << 8) | MW_VERSION_PATCH));
}

static mw_engine *make_engine(const char *dir_base)
{
    char dir[512], *err = NULL;
    mw_engine *eng = NULL;
    mw_config *cfg = mw_config_new();
    mw_config_set(cfg, "no_bundled", "true", NULL);
    mw_config_set(cfg, "sink", "none", NULL);
    mw_config_set(cfg, "flush_interval", "0.5", NULL);
    mw_config_set(cfg, "log_level", "info", NULL);
    EXPECT(mw_config_set(cfg, "no_such_option", "1", &err) == MW_EINVAL && err &&
           strstr(err, "no_such_option"));
    mw_free(err);
    EXPECT(mw_config_set_log(cfg, on_log, &log_lines) == MW_OK);
    mw_code rc = mw_engine_new(cfg, &eng, &err);
    mw_config_free(cfg);
    if (rc != MW_OK) {
        fprintf(stderr, "mw_engine_new: %s\n", err ? err : mw_strerror(rc));
        exit(1);
    }
    snprintf(dir, sizeof dir, "%s/checks", dir_base);
    mw_engine_add_checks_dir(eng, dir);
    snprintf(dir, sizeof dir, "%s/templates", dir_base);
    mw_engine_add_templates_dir(eng, dir);
    mw_engine_add_sink(eng, on_record, NULL);
    return eng;
}

/* The stats structs as a program built against this header fills them,
 * and as one built against a smaller first version would. */
static void check_stats(mw_engine *eng)
{
    mw_engine_stats st = {.size = sizeof st}, tiny = {.size = 1};
    EXPECT(mw_engine_stats_get(eng, &st) == MW_OK);
    EXPECT(st.size == sizeof st && st.instances == 1 && st.runs >= 2);
    EXPECT(MW_HAS_FIELD(&st, mw_engine_stats, lua_bytes));
    EXPECT(mw_engine_stats_get(eng, &tiny) == MW_EINVAL);

    char *json = mw_engine_instances_json(eng);
    EXPECT(json && strstr(json, "\"check\":\"embed\""));
    mw_instance_stats is = {.size = sizeof is};
    const char *id = json ? strstr(json, "\"id\":\"") : NULL;
    char idbuf[128] = "";
    if (id && sscanf(id + 6, "%127[^\"]", idbuf) == 1) {
        EXPECT(mw_engine_instance_stats(eng, idbuf, &is) == MW_OK);
        EXPECT(is.size == sizeof is && is.runs >= 2 && is.last_error[0] == '\0');
    } else {
        EXPECT(!"an instance id in mw_engine_instances_json()");
    }
    EXPECT(mw_engine_instance_stats(eng, "embed:0000", &is) == MW_ENOTFOUND);
    mw_free(json);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: embed DIR (holding checks/ and templates/)\n");
        return 2;
    }
    check_version();
    mw_engine *eng = make_engine(argv[1]);
    if (mw_engine_load(eng) != MW_OK)
        return 1;
    struct pollfd pfd = {.fd = mw_engine_fd(eng), .events = POLLIN};
    EXPECT(pfd.fd >= 0);
    double end = now() + 10;
    int wakeups = 0;
    while ((gauges < 2 || statuses < 2) && now() < end) {
        if (poll(&pfd, 1, 1000) > 0)
            wakeups++;
        mw_engine_step(eng, 0);
    }
    EXPECT(gauges >= 2 && statuses >= 2 && wakeups > 0);
    EXPECT(sized_records >= gauges + statuses);
    check_stats(eng);
    EXPECT(mw_engine_stop(eng) == MW_ESTATE);
    mw_engine_free(eng);
    EXPECT(log_scheduled == 1 && log_lines >= 1);
    printf("%d passed, %d failed\n", failures == 0, failures);
    if (failures)
        fprintf(stderr, "gauges=%d statuses=%d wakeups=%d records=%d log=%d/%d\n", gauges, statuses,
                wakeups, sized_records, log_lines, log_scheduled);
    return failures ? 1 : 0;
}
