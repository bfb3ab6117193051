/*
 * mini_httpd_main.c - mini_httpd as a program, for benchmarks that want
 * the server's descriptors and CPU in a process of their own. Prints
 * "http <port>\necho <port>\n" (also to --port-file) and serves until
 * SIGTERM or SIGINT.
 */
#include "mini_httpd.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *port_file = argc == 3 && strcmp(argv[1], "--port-file") == 0 ? argv[2] : NULL;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* the server thread inherits it */
    mw__mhd *s = mw__mhd_start();
    if (!s)
        return 1;
    printf("http %d\necho %d\n", mw__mhd_port(s), mw__mhd_echo_port(s));
    fflush(stdout);
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (f) {
            fprintf(f, "http %d\necho %d\n", mw__mhd_port(s), mw__mhd_echo_port(s));
            fclose(f);
        }
    }
    int sig;
    sigwait(&set, &sig);
    mw__mhd_stats st;
    mw__mhd_stats_get(s, &st);
    fprintf(stderr, "mini_httpd: %lu requests, %lu connections, at most %lu open\n", st.requests,
            st.accepted, st.max_open);
    mw__mhd_stop(s);
    return 0;
}
