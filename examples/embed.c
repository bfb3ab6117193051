/*
 * embed.c - the smallest complete program embedding moonwatch through
 * its public API (moonwatch.h and libmoonwatch.so only):
 *
 *   cc embed.c $(pkg-config --cflags --libs moonwatch) -o embed
 *   ./embed /tmp/embed-demo [SECONDS]
 *
 * It writes a check (hello.lua) and its template (hello.d/conf.yaml, run
 * every second) into the directory given, makes an engine that also runs
 * the bundled checks (found in the share/moonwatch of the library's
 * prefix), drives it from its own poll() loop for SECONDS (3 by default;
 * an instance's first run comes within its interval), flushes, and
 * prints every record it received. Exits 0 when the check's metric came
 * back, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L
#include <moonwatch.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int hello_seen;

static void print_record(const mw_record *r, void *ud)
{
    (void)ud;
    switch (r->type) {
    case MW_RECORD_METRIC:
        printf("metric %s %g", r->name, r->value);
        if (!strcmp(r->name, "hello.answer") && r->value == 42)
            hello_seen = 1;
        break;
    case MW_RECORD_SERVICE_CHECK:
        printf("service_check %s %d", r->name, r->status);
        break;
    case MW_RECORD_EVENT:
        printf("event %s", r->title ? r->title : "");
        break;
    }
    for (size_t i = 0; i < r->ntags; i++)
        printf("%s%s", i ? "," : " ", r->tags[i]);
    printf(" check=%s\n", r->check ? r->check : "-");
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) == EOF) {
        perror(path);
        if (f)
            fclose(f);
        return -1;
    }
    return fclose(f);
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return 0;
    perror(path);
    return -1;
}

/* DIR/checks/hello.lua and DIR/templates/hello.d/conf.yaml */
static int write_check(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/checks", dir);
    if (make_dir(dir) || make_dir(p))
        return -1;
    snprintf(p, sizeof p, "%s/checks/hello.lua", dir);
    if (write_file(p, "return { run = function(self)\n"
                      "  mw.gauge('hello.answer', 42)\n"
                      "end }\n"))
        return -1;
    snprintf(p, sizeof p, "%s/templates", dir);
    if (make_dir(p))
        return -1;
    snprintf(p, sizeof p, "%s/templates/hello.d", dir);
    if (make_dir(p))
        return -1;
    snprintf(p, sizeof p, "%s/templates/hello.d/conf.yaml", dir);
    return write_file(p, "init_config:\ninstances:\n  - tags: ['from:embed']\n"
                         "    min_collection_interval: 1\n");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || (argc == 3 && atof(argv[2]) <= 0)) {
        fprintf(stderr, "usage: %s DIR [SECONDS] (written: DIR/checks, DIR/templates)\n", argv[0]);
        return 2;
    }
    double seconds = argc == 3 ? atof(argv[2]) : 3;
    if (write_check(argv[1]))
        return 1;
    printf("libmoonwatch %s (built against %s)\n", mw_version_string(), MW_VERSION);

    mw_config *cfg = mw_config_new();
    if (!cfg)
        return 1;
    char *err = NULL;
    if (mw_config_set(cfg, "sink", "none", &err) != MW_OK ||
        mw_config_set(cfg, "log_level", "warn", &err) != MW_OK ||
        mw_config_set(cfg, "docker", "off", &err) != MW_OK ||
        mw_config_set(cfg, "ecs", "off", &err) != MW_OK) {
        fprintf(stderr, "config: %s\n", err ? err : "?");
        mw_free(err);
        mw_config_free(cfg);
        return 1;
    }
    mw_engine *eng = NULL;
    mw_code rc = mw_engine_new(cfg, &eng, &err);
    mw_config_free(cfg);
    if (rc != MW_OK) {
        fprintf(stderr, "mw_engine_new: %s\n", err ? err : mw_strerror(rc));
        mw_free(err);
        return 1;
    }

    char dir[4096];
    snprintf(dir, sizeof dir, "%s/checks", argv[1]);
    mw_engine_add_checks_dir(eng, dir);
    snprintf(dir, sizeof dir, "%s/templates", argv[1]);
    mw_engine_add_templates_dir(eng, dir);
    mw_engine_add_sink(eng, print_record, NULL);
    if ((rc = mw_engine_load(eng)) != MW_OK) {
        fprintf(stderr, "mw_engine_load: %s\n", mw_strerror(rc));
        mw_engine_free(eng);
        return 1;
    }

    /* The host's loop: wait on the engine's descriptor, let it step. */
    struct pollfd pfd = {.fd = mw_engine_fd(eng), .events = POLLIN};
    double end = now() + seconds;
    while (now() < end) {
        poll(&pfd, 1, 100);
        mw_engine_step(eng, 0);
    }
    mw_engine_flush(eng);
    mw_engine_stats st = {.size = sizeof st};
    mw_engine_stats_get(eng, &st);
    printf("%llu instance(s), %llu run(s)\n", (unsigned long long)st.instances,
           (unsigned long long)st.runs);
    mw_engine_free(eng);
    return hello_seen ? 0 : 1;
}
