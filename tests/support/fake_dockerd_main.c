/*
 * fake_dockerd_main.c - the fake dockerd as a program, for trying a client
 * by hand or from a script:
 *
 *   fake_dockerd -s /tmp/fdd.sock [-a 1.41] [-m 1.12] [-n 100] [-c 10] [-l 5]
 *
 *   -s PATH  the socket (required)      -n N   start N generated containers
 *   -a VER   maximum API version        -c R   churn: R starts and R stops/s
 *   -m VER   minimum API version        -l MS  latency before each response
 *
 * Then it reads commands from stdin, one per line (see `help`), until
 * `quit`, SIGINT or SIGTERM; at the end of stdin it keeps serving.
 *
 * Ownership: everything lives in main's frame and the server handle.
 */
#include "tests/support/fake_dockerd.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORDS 64

typedef struct app {
    mw__fdd *d;
    double churn;     /* starts (and stops) per second */
    char (*ring)[65]; /* churned containers, oldest first */
    size_t ring_n, ring_head, ring_cap;
    unsigned churn_seq;
    int quit;
} app;

typedef int (*cmd_fn)(app *a, int argc, char **argv);

static int ok_or_say(app *a, int rc)
{
    if (rc != 0)
        printf("error: %s\n", mw__fdd_error(a->d));
    else
        printf("ok\n");
    return rc;
}

/* run NAME [IMAGE] [key=value ...]: the pairs become labels. */
static int c_run(app *a, int argc, char **argv)
{
    const char *labels[2 * MAX_WORDS + 1];
    size_t n = 0;
    char id[65];
    mw__fdd_spec s = {.name = argc > 1 ? argv[1] : NULL};
    for (int i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            s.image = argv[i];
            continue;
        }
        *eq = '\0';
        labels[n++] = argv[i];
        labels[n++] = eq + 1;
    }
    labels[n] = NULL;
    s.labels = labels;
    if (mw__fdd_run(a->d, &s, id) != 0)
        return ok_or_say(a, -1);
    printf("%s\n", id);
    return 0;
}

static int c_simple(app *a, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(mw__fdd *, const char *);
    } ops[] = {{"start", mw__fdd_start},     {"stop", mw__fdd_stop},
               {"destroy", mw__fdd_destroy}, {"pause", mw__fdd_pause},
               {"unpause", mw__fdd_unpause}, {"restart", mw__fdd_restart},
               {"exec", mw__fdd_exec_noise}, {"404", mw__fdd_inspect_404_once}};
    if (argc < 2)
        return ok_or_say(a, -1);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(argv[0], ops[i].name) == 0)
            return ok_or_say(a, ops[i].fn(a->d, argv[1]));
    return -1;
}

static int c_kill(app *a, int argc, char **argv)
{
    return ok_or_say(a, argc < 2 ? -1 : mw__fdd_kill(a->d, argv[1], argc > 2 ? atoi(argv[2]) : 9));
}

static int c_die(app *a, int argc, char **argv)
{
    int oom = argc > 3 && strcmp(argv[3], "oom") == 0;
    return ok_or_say(a, argc < 3 ? -1 : mw__fdd_die(a->d, argv[1], atoi(argv[2]), oom));
}

static int c_health(app *a, int argc, char **argv)
{
    return ok_or_say(a, argc < 3 ? -1 : mw__fdd_health(a->d, argv[1], argv[2]));
}

/* line TEXT...: the rest of the line, raw, as one event line. */
static int c_line(app *a, int argc, char **argv)
{
    char buf[4096] = "";
    for (int i = 1; i < argc; i++) {
        strncat(buf, argv[i], sizeof buf - strlen(buf) - 1);
        if (i + 1 < argc)
            strncat(buf, " ", sizeof buf - strlen(buf) - 1);
    }
    return ok_or_say(a, mw__fdd_inject_line(a->d, buf));
}

static int c_close(app *a, int argc, char **argv)
{
    int n = mw__fdd_close_streams(a->d, argc > 1 && strcmp(argv[1], "clean") == 0);
    printf("closed %d\n", n);
    return 0;
}

static int c_engine(app *a, int argc, char **argv)
{
    (void)argc;
    if (strcmp(argv[0], "down") == 0)
        return ok_or_say(a, mw__fdd_engine_down(a->d));
    if (strcmp(argv[0], "up") == 0)
        return ok_or_say(a, mw__fdd_engine_up(a->d));
    return ok_or_say(a, mw__fdd_engine_restart(a->d, 0));
}

static int c_bulk(app *a, int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
    return ok_or_say(a, n <= 0 ? -1 : mw__fdd_bulk_create(a->d, (size_t)n, NULL, 0));
}

static int c_stats(app *a, int argc, char **argv)
{
    static const char *const names[] = {"ping",  "version", "list", "inspect",
                                        "image", "events",  "other"};
    (void)argc;
    (void)argv;
    for (int i = 0; i < MW_FDD_EP_COUNT; i++)
        printf("%s=%llu ", names[i], (unsigned long long)mw__fdd_count(a->d, (mw__fdd_ep)i));
    printf("containers=%zu streams=%d\n", mw__fdd_container_count(a->d), mw__fdd_streams(a->d));
    return 0;
}

static int c_quit(app *a, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    a->quit = 1;
    return 0;
}

static int c_help(app *a, int argc, char **argv);

static const struct command {
    const char *name, *usage;
    cmd_fn fn;
} commands[] = {
    {"run", "run NAME [IMAGE] [label=value ...]", c_run},
    {"start", "start REF", c_simple},
    {"stop", "stop REF", c_simple},
    {"restart", "restart REF", c_simple},
    {"pause", "pause REF", c_simple},
    {"unpause", "unpause REF", c_simple},
    {"destroy", "destroy REF", c_simple},
    {"exec", "exec REF   (healthcheck exec_* noise)", c_simple},
    {"404", "404 REF    (the next inspect of REF is 404)", c_simple},
    {"kill", "kill REF [SIGNAL]", c_kill},
    {"die", "die REF CODE [oom]", c_die},
    {"health", "health REF STATUS", c_health},
    {"line", "line RAW-EVENT-TEXT", c_line},
    {"close", "close [clean]   (end every event stream)", c_close},
    {"down", "down      (engine down)", c_engine},
    {"up", "up        (engine up)", c_engine},
    {"restart-engine", "restart-engine", c_engine},
    {"bulk", "bulk N    (N running containers)", c_bulk},
    {"stats", "stats", c_stats},
    {"quit", "quit", c_quit},
    {"help", "help", c_help},
};

static int c_help(app *a, int argc, char **argv)
{
    (void)a;
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        printf("  %s\n", commands[i].usage);
    return 0;
}

static void run_line(app *a, char *line)
{
    char *argv[MAX_WORDS], *save = NULL;
    int argc = 0;
    for (char *w = strtok_r(line, " \t\r\n", &save); w && argc < MAX_WORDS;
         w = strtok_r(NULL, " \t\r\n", &save))
        argv[argc++] = w;
    if (!argc)
        return;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[0], commands[i].name) == 0) {
            commands[i].fn(a, argc, argv);
            fflush(stdout);
            return;
        }
    printf("unknown command %s (try help)\n", argv[0]);
    fflush(stdout);
}

/* One churn step: start a container, and stop and remove the oldest
 * churned one once the ring of them is full. */
static void churn_step(app *a)
{
    char name[64], id[65];
    mw__fdd_spec s = {.name = name, .labels = (const char *[]){"churn", "1", NULL}};
    snprintf(name, sizeof name, "churn-%u", ++a->churn_seq);
    if (mw__fdd_run(a->d, &s, id) != 0)
        return;
    if (a->ring_n == a->ring_cap) {
        const char *old = a->ring[a->ring_head];
        mw__fdd_stop(a->d, old);
        mw__fdd_destroy(a->d, old);
        a->ring_head = (a->ring_head + 1) % a->ring_cap;
        a->ring_n--;
    }
    memcpy(a->ring[(a->ring_head + a->ring_n) % a->ring_cap], id, 65);
    a->ring_n++;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int usage(const char *argv0)
{
    fprintf(stderr, "usage: %s -s SOCKET [-a MAXAPI] [-m MINAPI] [-n N] [-c PER_SEC] [-l MS]\n",
            argv0);
    return 2;
}

static int serve(app *a, int sfd)
{
    char line[8192];
    int stdin_open = 1;
    double next = now_s();
    while (!a->quit) {
        struct pollfd p[2] = {{.fd = sfd, .events = POLLIN},
                              {.fd = stdin_open ? 0 : -1, .events = POLLIN}};
        int timeout = a->churn > 0 ? (int)((next - now_s()) * 1000) : -1;
        if (poll(p, 2, timeout < 0 && a->churn > 0 ? 0 : timeout) < 0 && errno != EINTR)
            return 1;
        if (p[0].revents)
            break;
        if (p[1].revents) {
            if (fgets(line, sizeof line, stdin))
                run_line(a, line);
            else
                stdin_open = 0;
        }
        for (int k = 0; a->churn > 0 && now_s() >= next && k < 1000; k++) {
            churn_step(a);
            next += 1.0 / a->churn;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    mw__fdd_opts o = {0};
    app a = {0};
    long bulk = 0;
    unsigned latency = 0;
    int opt;
    while ((opt = getopt(argc, argv, "s:a:m:n:c:l:h")) != -1) {
        switch (opt) {
        case 's':
            o.socket_path = optarg;
            break;
        case 'a':
            o.api_version = optarg;
            break;
        case 'm':
            o.min_api_version = optarg;
            break;
        case 'n':
            bulk = strtol(optarg, NULL, 10);
            break;
        case 'c':
            a.churn = strtod(optarg, NULL);
            break;
        case 'l':
            latency = (unsigned)strtoul(optarg, NULL, 10);
            break;
        default:
            return usage(argv[0]);
        }
    }
    if (!o.socket_path)
        return usage(argv[0]);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL); /* before the server thread exists */
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);

    char *err = NULL;
    a.d = mw__fdd_new(&o, &err);
    if (!a.d || sfd < 0) {
        fprintf(stderr, "fake_dockerd: %s\n", err ? err : "signalfd failed");
        free(err);
        mw__fdd_free(a.d);
        return 1;
    }
    a.ring_cap = a.churn > 0 ? (size_t)(a.churn * 10) + 1 : 1;
    a.ring = calloc(a.ring_cap, sizeof(*a.ring));
    int rc = a.ring ? 0 : 1;
    if (rc == 0 && bulk > 0 && mw__fdd_bulk_create(a.d, (size_t)bulk, NULL, 0) != 0) {
        fprintf(stderr, "fake_dockerd: %s\n", mw__fdd_error(a.d));
        rc = 1;
    }
    if (rc == 0 && latency)
        mw__fdd_set_latency(a.d, MW_FDD_EP_COUNT, latency);
    if (rc == 0) {
        fprintf(stderr, "fake_dockerd: listening on %s (API %s)\n", o.socket_path,
                o.api_version ? o.api_version : "1.41");
        rc = serve(&a, sfd);
    }
    free(a.ring);
    mw__fdd_free(a.d);
    close(sfd);
    return rc;
}
