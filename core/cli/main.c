/*
 * main.c - the moonwatch command line: dispatches to one command.
 */
#include "core/cli/cli.h"
#include "core/cli/heap.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

/* Thousands of checks each holding a connection need as many descriptors:
 * take the hard limit (the soft one is often 1024). */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int usage(FILE *f)
{
    fprintf(f, "usage: moonwatch COMMAND [options]\n"
               "\n"
               "commands:\n"
               "  run [-c FILE] [--print-config]\n"
               "                           run the engine (the daemon); --print-config:\n"
               "                           print the effective config and exit\n"
               "  check NAME [--instance JSON] [--init-config JSON] [--times N]\n"
               "                           run one check now and print what it emitted\n"
               "  configcheck [--json]     discover once and print every resolved config,\n"
               "                           every one that did not resolve, and every\n"
               "                           template that schedules nothing, with why\n"
               "  validate [--strict] PATH...\n"
               "                           report every problem in templates and checks\n"
               "                           (--strict: a template whose check has no\n"
               "                           script is one too)\n"
               "  status [--listen ADDR] [--json]\n"
               "                           ask a running engine (run --listen ADDR) for\n"
               "                           its sources, instances and health\n"
               "  config [--json | --list-keys]\n"
               "                           print the effective config: every key, its\n"
               "                           value (secrets masked) and where it came\n"
               "                           from (the same as run --print-config)\n"
               "  version                  print the version and the allocator\n"
               "\n"
               "common options:\n"
               "  -c FILE                  YAML config file\n"
               "  --checks-dir DIR         add a checks directory (repeatable)\n"
               "  --templates-dir DIR      add a templates directory (repeatable)\n"
               "  --no-bundled             leave out the bundled checks and templates\n"
               "  --flush-interval SEC     aggregator flush interval (default 15)\n"
               "  --sink LIST              where flushed records go: stdout, datadog,\n"
               "                           prometheus (needs --listen), none (default\n"
               "                           stdout, or datadog when DD_API_KEY is set)\n"
               "  --log-level LEVEL        debug, info, warn, error, off\n"
               "  --log-format text|json\n"
               "  --hostname NAME          default host of samples\n"
               "  --docker-host URL        unix:///path or tcp://host:port (default\n"
               "                           $DOCKER_HOST, else unix:///var/run/docker.sock)\n"
               "  --listen ADDR            run: serve /status, /healthz and /metrics on\n"
               "                           127.0.0.1:PORT, [::1]:PORT or a unix socket path\n"
               "  --set KEY=VALUE          any config-file option\n"
               "\n"
               "Every key is also MW_<KEY> in the environment (MW_FLUSH_INTERVAL=5);\n"
               "precedence: flags > environment > -c file > defaults.\n");
    return f == stderr ? 2 : 0;
}

static const struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
} commands[] = {
    {"run", mw__cmd_run},           {"check", mw__cmd_check},
    {"validate", mw__cmd_validate}, {"configcheck", mw__cmd_configcheck},
    {"status", mw__cmd_status},     {"config", mw__cmd_config},
};

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help"))
        return usage(stdout);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("moonwatch %s\nmalloc: %s\n", MW_VERSION, mw_heap_allocator());
        return 0;
    }
    raise_nofile();
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "moonwatch: unknown command '%s'\n", cmd);
    return usage(stderr);
}
