/*
 * fake_aws_main.c - the fake AWS server (fake_aws.h) as a program, for
 * trying mw.aws by hand and for the demo:
 *
 *   fake_aws [--port N] [--region R] [--key ID --secret S [--token T]]
 *            [--lifetime SECONDS] [--auth-token T] [--model FILE.json]
 *            [--imds-status HTTP_STATUS]
 *
 * Prints its URL (to point AWS_ENDPOINT_URL_ECS,
 * AWS_CONTAINER_CREDENTIALS_FULL_URI=<url>/creds or
 * AWS_EC2_METADATA_SERVICE_ENDPOINT at) and serves on 127.0.0.1 until
 * SIGTERM or SIGINT. On SIGUSR1 it prints the Signature of the last ECS
 * API request it verified, on a line of its own (for the tests that look
 * for it where it must not be); on SIGUSR2 "requests N", how many
 * requests it was sent (for the tests that expect none). --imds-status
 * makes every IMDS request answer that status. The model file is {"clusters":[{"name":..,
 * "containerInstances":[..],"services":[..]}]}.
 */
#include "tests/support/fake_aws.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n = 0;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n)
        buf[n] = '\0';
    else
        free(buf), buf = NULL;
    if (f)
        fclose(f);
    return buf;
}

static const char *arg(int argc, char **argv, const char *name)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

int main(int argc, char **argv)
{
    const char *port = arg(argc, argv, "--port"), *model = arg(argc, argv, "--model");
    const char *key = arg(argc, argv, "--key"), *secret = arg(argc, argv, "--secret");
    const char *life = arg(argc, argv, "--lifetime"), *auth = arg(argc, argv, "--auth-token");
    mw__faws_opts o = {.port = port ? atoi(port) : 0, .region = arg(argc, argv, "--region")};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* the server thread inherits it */
    char *err = NULL;
    mw__faws *f = mw__faws_new(&o, &err);
    if (!f) {
        fprintf(stderr, "fake_aws: %s\n", err ? err : "cannot start");
        return 1;
    }
    if (key && secret)
        mw__faws_add_key(f, key, secret, arg(argc, argv, "--token"), 0);
    if (life)
        mw__faws_set_lifetime(f, atof(life));
    mw__faws_set_auth_token(f, auth);
    if (arg(argc, argv, "--imds-status"))
        mw__faws_set_imds_status(f, atoi(arg(argc, argv, "--imds-status")));
    char *text = model ? slurp(model) : NULL;
    if (model && (!text || mw__faws_load(f, text) != 0)) {
        fprintf(stderr, "fake_aws: %s: not a model\n", model);
        free(text);
        mw__faws_free(f);
        return 1;
    }
    free(text);
    printf("%s\n", mw__faws_url(f));
    fflush(stdout);
    int sig;
    while (sigwait(&set, &sig) == 0 && (sig == SIGUSR1 || sig == SIGUSR2)) {
        char s[80];
        if (sig == SIGUSR1)
            mw__faws_last_signature(f, s, sizeof s);
        else
            snprintf(s, sizeof s, "requests %llu",
                     (unsigned long long)mw__faws_count(f, "requests"));
        printf("%s\n", s);
        fflush(stdout);
    }
    mw__faws_free(f);
    return 0;
}
