/*
 * fake_ecs_agent_main.c - the fake ECS agent as a program, for the
 * integration test, the demo and trying a client by hand:
 *
 *   fake_ecs_agent [-p PORT] [-c CLUSTER] [-f FILE]... [-l MS] [-P PORT_FILE] [-o]
 *
 *   -p PORT   127.0.0.1:PORT (default: a free port)
 *   -c NAME   the cluster /v1/metadata names (default "default")
 *   -f FILE   tasks to serve: a /v1/tasks document or one task (repeatable)
 *   -l MS     latency before each answer
 *   -P FILE   write "port N" there once listening
 *   -o        keep tasks and containers in the order added
 *
 * It also serves the task metadata endpoint v4 of one of its tasks at
 * http://127.0.0.1:PORT/v4/... (printed as "v4 URL" after "port N").
 *
 * It prints "port N" and reads commands from stdin, one per line (see
 * `help`), until `quit`, SIGINT or SIGTERM; at the end of stdin it keeps
 * serving. Each command answers "ok", a value, or "error: <why>".
 *
 * Ownership: everything lives in main's frame and the server handle.
 */
#include "tests/support/fake_ecs_agent.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define MAX_WORDS 64

typedef int (*cmd_fn)(mw__fea *a, int argc, char **argv);

static int said(mw__fea *a, int rc)
{
    if (rc != 0)
        printf("error: %s\n", mw__fea_error(a));
    else
        printf("ok\n");
    return rc;
}

static int bad_usage(void)
{
    printf("error: bad arguments (try help)\n");
    return -1;
}

/* task ARN FAMILY VERSION [KNOWN [DESIRED]]: a task without containers
 * (added or replaced). */
static int c_task(mw__fea *a, int argc, char **argv)
{
    char json[4096];
    if (argc < 4)
        return bad_usage();
    snprintf(json, sizeof json,
             "{\"Arn\":\"%s\",\"Family\":\"%s\",\"Version\":\"%s\",\"KnownStatus\":\"%s\","
             "\"DesiredStatus\":\"%s\",\"Containers\":[]}",
             argv[1], argv[2], argv[3], argc > 4 ? argv[4] : "RUNNING",
             argc > 5 ? argv[5] : "RUNNING");
    return said(a, mw__fea_put_task(a, json));
}

/* container ARN NAME DOCKERID [DOCKERNAME] */
static int c_container(mw__fea *a, int argc, char **argv)
{
    if (argc < 4)
        return bad_usage();
    return said(a, mw__fea_put_container(a, argv[1], argv[2], argv[3], argc > 4 ? argv[4] : NULL));
}

/* status ARN KNOWN [DESIRED] */
static int c_status(mw__fea *a, int argc, char **argv)
{
    if (argc < 3)
        return bad_usage();
    return said(a, mw__fea_task_status(a, argv[1], argv[2], argc > 3 ? argv[3] : NULL));
}

/* stop ARN NAME EXITCODE */
static int c_stop(mw__fea *a, int argc, char **argv)
{
    if (argc < 4)
        return bad_usage();
    return said(a, mw__fea_container_stop(a, argv[1], argv[2], atoi(argv[3])));
}

/* cstatus ARN NAME KNOWN: a container's KnownStatus (v4) */
static int c_cstatus(mw__fea *a, int argc, char **argv)
{
    if (argc < 4)
        return bad_usage();
    return said(a, mw__fea_container_status(a, argv[1], argv[2], argv[3]));
}

/* v4 ARN|- [SELF]: the task the v4 endpoint describes, the asking one */
static int c_v4(mw__fea *a, int argc, char **argv)
{
    if (argc < 2)
        return bad_usage();
    return said(
        a, mw__fea_v4_select(a, strcmp(argv[1], "-") ? argv[1] : NULL, argc > 2 ? argv[2] : NULL));
}

/* stats DOCKERID FILE|null, or stats FILE (a /task/stats document) */
static int c_stats_put(mw__fea *a, int argc, char **argv)
{
    if (argc == 2)
        return said(a, mw__fea_load_stats(a, argv[1]));
    if (argc < 3)
        return bad_usage();
    if (strcmp(argv[2], "null") == 0)
        return said(a, mw__fea_put_stats(a, argv[1], NULL));
    FILE *f = fopen(argv[2], "r");
    char buf[1 << 16];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    if (!f)
        return bad_usage();
    buf[n] = '\0';
    return said(a, mw__fea_put_stats(a, argv[1], buf));
}

static int c_remove(mw__fea *a, int argc, char **argv)
{
    return argc < 2 ? bad_usage() : said(a, mw__fea_remove_task(a, argv[1]));
}

static int c_clear(mw__fea *a, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return said(a, mw__fea_clear(a));
}

static int c_load(mw__fea *a, int argc, char **argv)
{
    return argc < 2 ? bad_usage() : said(a, mw__fea_load(a, argv[1]));
}

static int c_updown(mw__fea *a, int argc, char **argv)
{
    (void)argc;
    return said(a, strcmp(argv[0], "down") == 0 ? mw__fea_down(a) : mw__fea_up(a));
}

static const char *const ep_names[] = {"metadata",    "tasks",  "task",   "other",
                                       "v4container", "v4task", "v4stats"};

static int ep_of(const char *s)
{
    for (int i = 0; i < MW_FEA_EP_COUNT; i++)
        if (strcmp(s, ep_names[i]) == 0)
            return i;
    return strcmp(s, "all") == 0 ? MW_FEA_EP_COUNT : -1;
}

/* fail KIND STATUS [TIMES [BODY...]]: the rest of the line is the body. */
static int c_fail(mw__fea *a, int argc, char **argv)
{
    char body[4096] = "";
    int ep = argc > 2 ? ep_of(argv[1]) : -1;
    if (ep < 0 || ep == MW_FEA_EP_COUNT)
        return bad_usage();
    for (int i = 4; i < argc; i++) {
        strncat(body, argv[i], sizeof body - strlen(body) - 1);
        if (i + 1 < argc)
            strncat(body, " ", sizeof body - strlen(body) - 1);
    }
    return said(a, mw__fea_fail_next(a, (mw__fea_ep)ep, atoi(argv[2]), body,
                                     argc > 3 ? (unsigned)atoi(argv[3]) : 1));
}

/* latency KIND|all MS */
static int c_latency(mw__fea *a, int argc, char **argv)
{
    int ep = argc > 2 ? ep_of(argv[1]) : -1;
    if (ep < 0)
        return bad_usage();
    return said(a, mw__fea_set_latency(a, (mw__fea_ep)ep, (unsigned)atoi(argv[2])));
}

static int c_stats(mw__fea *a, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    for (int i = 0; i < MW_FEA_EP_COUNT; i++)
        printf("%s=%llu ", ep_names[i], (unsigned long long)mw__fea_count(a, (mw__fea_ep)i));
    printf("held=%zu\n", mw__fea_task_count(a));
    return 0;
}

/* last KIND|all: "STATUS METHOD TARGET" of the last such request. */
static int c_last(mw__fea *a, int argc, char **argv)
{
    mw__fea_request r;
    int ep = argc > 1 ? ep_of(argv[1]) : -1;
    if (ep < 0)
        return bad_usage();
    if (mw__fea_last_request(a, (mw__fea_ep)ep, &r) != 0) {
        printf("none\n");
        return 0;
    }
    printf("%d %s %s\n", r.status, r.method, r.target);
    return 0;
}

static int c_help(mw__fea *a, int argc, char **argv);

static const struct command {
    const char *name, *usage;
    cmd_fn fn;
} commands[] = {
    {"task", "task ARN FAMILY VERSION [KNOWN [DESIRED]]   (no containers yet)", c_task},
    {"container", "container ARN NAME DOCKERID [DOCKERNAME]", c_container},
    {"status", "status ARN KNOWN [DESIRED]", c_status},
    {"stop", "stop ARN NAME EXITCODE   (container stopped)", c_stop},
    {"cstatus", "cstatus ARN NAME KNOWN   (a container's KnownStatus, v4)", c_cstatus},
    {"v4", "v4 ARN|- [SELF]   (the task the v4 endpoint describes, the asking container)", c_v4},
    {"putstats", "putstats DOCKERID FILE|null, or putstats FILE   (v4 stats)", c_stats_put},
    {"remove", "remove ARN", c_remove},
    {"clear", "clear     (no task)", c_clear},
    {"load", "load FILE", c_load},
    {"down", "down      (the agent goes away)", c_updown},
    {"up", "up        (and comes back)", c_updown},
    {"fail", "fail metadata|tasks|task|other|v4container|v4task|v4stats STATUS [TIMES [BODY...]]",
     c_fail},
    {"latency", "latency metadata|tasks|task|other|v4container|v4task|v4stats|all MS", c_latency},
    {"stats", "stats", c_stats},
    {"last", "last metadata|tasks|task|other|all   (STATUS METHOD TARGET)", c_last},
    {"quit", "quit", NULL},
    {"help", "help", c_help},
};

static int c_help(mw__fea *a, int argc, char **argv)
{
    (void)a;
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        printf("  %s\n", commands[i].usage);
    return 0;
}

/* Runs one command line; 1 for quit. */
static int run_line(mw__fea *a, char *line)
{
    char *argv[MAX_WORDS], *save = NULL;
    int argc = 0;
    for (char *w = strtok_r(line, " \t\r\n", &save); w && argc < MAX_WORDS;
         w = strtok_r(NULL, " \t\r\n", &save))
        argv[argc++] = w;
    if (!argc)
        return 0;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[0], commands[i].name) != 0)
            continue;
        if (!commands[i].fn)
            return 1;
        commands[i].fn(a, argc, argv);
        fflush(stdout);
        return 0;
    }
    printf("error: unknown command %s (try help)\n", argv[0]);
    fflush(stdout);
    return 0;
}

static int serve(mw__fea *a, int sfd)
{
    char line[8192];
    int stdin_open = 1;
    for (;;) {
        struct pollfd p[2] = {{.fd = sfd, .events = POLLIN},
                              {.fd = stdin_open ? 0 : -1, .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            return 1;
        if (p[0].revents)
            return 0;
        if (!p[1].revents)
            continue;
        if (!fgets(line, sizeof line, stdin))
            stdin_open = 0;
        else if (run_line(a, line))
            return 0;
    }
}

static int usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [-p PORT] [-c CLUSTER] [-f FILE]... [-l MS] [-P PORT_FILE] [-o]\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    mw__fea_opts o = {0};
    const char *files[16], *port_file = NULL;
    size_t nfiles = 0;
    unsigned latency = 0;
    int opt, rc = 0;
    while ((opt = getopt(argc, argv, "p:c:f:l:P:oh")) != -1) {
        switch (opt) {
        case 'p':
            o.port = atoi(optarg);
            break;
        case 'c':
            o.cluster = optarg;
            break;
        case 'f':
            if (nfiles == sizeof files / sizeof files[0])
                return usage(argv[0]);
            files[nfiles++] = optarg;
            break;
        case 'l':
            latency = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'P':
            port_file = optarg;
            break;
        case 'o':
            o.keep_order = 1;
            break;
        default:
            return usage(argv[0]);
        }
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL); /* before the server thread exists */
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    char *err = NULL;
    mw__fea *a = mw__fea_new(&o, &err);
    if (!a || sfd < 0) {
        fprintf(stderr, "fake_ecs_agent: %s\n", err ? err : "signalfd failed");
        free(err);
        mw__fea_free(a);
        return 1;
    }
    for (size_t i = 0; i < nfiles && rc == 0; i++)
        if (mw__fea_load(a, files[i]) != 0) {
            fprintf(stderr, "fake_ecs_agent: %s\n", mw__fea_error(a));
            rc = 1;
        }
    if (rc == 0 && latency)
        mw__fea_set_latency(a, MW_FEA_EP_COUNT, latency);
    if (rc == 0) {
        printf("port %d\nv4 %s\n", mw__fea_port(a), mw__fea_v4_url(a));
        fflush(stdout);
        FILE *f = port_file ? fopen(port_file, "w") : NULL;
        if (f) {
            fprintf(f, "port %d\n", mw__fea_port(a));
            fclose(f);
        }
        fprintf(stderr, "fake_ecs_agent: listening on %s\n", mw__fea_url(a));
        rc = serve(a, sfd);
    }
    mw__fea_free(a);
    close(sfd);
    return rc;
}
