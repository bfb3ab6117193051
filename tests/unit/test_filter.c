/*
 * test_filter.c - container include/exclude lists: include beats
 * exclude (the pause defaults too), name items against names and image
 * items against images, unanchored matching, Datadog's `name$` image
 * rewrite, bad items reported with their list, index and origin and
 * skipped, kube_namespace items ignored, and empty lists that exclude
 * nothing but pause containers.
 *
 * Without AddressSanitizer, building a filter also runs with each
 * allocation failing in turn (malloc interposed by failalloc.h):
 * NULL or a working filter, and no leak.
 */
#include "core/base/util.h"
#include "discovery/filter.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "failalloc.h"

/* Excluded? with a fresh filter of the two lists (no problems expected). */
static int excluded(const char *include, const char *exclude, const char *name, const char *image)
{
    mw__diag diag = {0};
    mw__filter *f = mw__filter_new(include, exclude, "test", &diag);
    int r;

    CHECK(f != NULL);
    CHECK(diag.n == 0);
    for (size_t i = 0; i < diag.n; i++)
        fprintf(stderr, "unexpected: %s\n", diag.items[i]);
    r = f ? mw__filter_excluded(f, name, image) : -1;
    mw__filter_free(f);
    mw__diag_free(&diag);
    return r;
}

static void test_empty_lists(void)
{
    mw__diag diag = {0};
    mw__filter *f = mw__filter_new(NULL, NULL, "DD_CONTAINER_EXCLUDE", &diag);
    mw__filter *g = mw__filter_new("", " \t\n ", NULL, &diag);

    CHECK(f != NULL && g != NULL);
    CHECK(diag.n == 0);
    if (f && g) {
        CHECK(mw__filter_excluded(f, "web", "redis:7") == 0);
        CHECK(mw__filter_excluded(g, "web", "redis:7") == 0);
        CHECK(mw__filter_excluded(f, "", "") == 0);
        CHECK(mw__filter_excluded(f, NULL, NULL) == 0);
        /* The pause list applies even with no list given. */
        CHECK(mw__filter_excluded(f, "web", "registry.k8s.io/pause:3.9") == 1);
    }
    mw__filter_free(f);
    mw__filter_free(g);
    mw__filter_free(NULL);
    /* No filter: nothing excluded, pause containers included. */
    CHECK(mw__filter_excluded(NULL, "web", "registry.k8s.io/pause:3.9") == 0);
    mw__diag_free(&diag);
}

static void test_name_vs_image(void)
{
    /* An image item never looks at the name, and a name item never at
     * the image. */
    CHECK(excluded(NULL, "image:redis", "redis-cache", "nginx:1.25") == 0);
    CHECK(excluded(NULL, "image:redis", "web", "redis:7") == 1);
    CHECK(excluded(NULL, "name:redis", "web", "redis:7") == 0);
    CHECK(excluded(NULL, "name:redis", "redis-1", "nginx:1.25") == 1);
    /* Several items, any separator: any one excludes. */
    CHECK(excluded(NULL, "name:a1\timage:b2\n  name:c3 ", "x-c3", "y") == 1);
    CHECK(excluded(NULL, "name:a1\timage:b2\n  name:c3 ", "x", "b2:latest") == 1);
    CHECK(excluded(NULL, "name:a1\timage:b2\n  name:c3 ", "x", "y") == 0);
    /* Exclude items never match an empty name or image. */
    CHECK(excluded(NULL, "name:.* image:.*", "", "") == 0);
    CHECK(excluded(NULL, "name:.*", "", "redis") == 0);
    CHECK(excluded(NULL, "image:.*", "web", "") == 0);
}

static void test_unanchored(void)
{
    CHECK(excluded(NULL, "name:dd", "my-dd-agent", "x") == 1);
    CHECK(excluded(NULL, "name:^dd-", "my-dd-agent", "x") == 0);
    CHECK(excluded(NULL, "name:^dd-", "dd-agent", "x") == 1);
    CHECK(excluded(NULL, "image:edi", "x", "docker.io/library/redis:7") == 1);
    CHECK(excluded(NULL, "name:^web$", "web", "x") == 1);
    CHECK(excluded(NULL, "name:^web$", "web-2", "x") == 0);
    /* `redis$` (no ':') matches redis with any tag or digest, as Datadog
     * rewrites it to `redis(@sha256)?:.*`; an image without a tag is
     * matched as "redis:". */
    CHECK(excluded(NULL, "image:^redis$", "x", "redis") == 1);
    CHECK(excluded(NULL, "image:^redis$", "x", "redis:7") == 1);
    CHECK(excluded(NULL, "image:^redis$", "x", "redis@sha256:5bef0874") == 1);
    CHECK(excluded(NULL, "image:^redis$", "x", "redis-cache:7") == 0);
    CHECK(excluded(NULL, "image:^redis$", "x", "myredis:7") == 0);
    CHECK(excluded(NULL, "image:^redis:7$", "x", "redis:7") == 1);
    CHECK(excluded(NULL, "image:^redis:7$", "x", "redis:70") == 0);
    CHECK(excluded(NULL, "image:redis:$", "x", "redis") == 1);
    /* POSIX extended syntax: alternation, groups, bounds. */
    CHECK(excluded(NULL, "name:^(a|b){2}-[0-9]+$", "ab-12", "x") == 1);
    CHECK(excluded(NULL, "name:^(a|b){2}-[0-9]+$", "abc-12", "x") == 0);
}

static void test_long_image(void)
{
    char image[400], pattern[16];

    /* Past the stack buffer, the ':' is still appended. */
    memset(image, 'a', sizeof(image) - 1);
    image[sizeof(image) - 1] = '\0';
    snprintf(pattern, sizeof(pattern), "image:^a+:$");
    CHECK(excluded(NULL, pattern, "x", image) == 1);
    CHECK(excluded(NULL, pattern, "x", "aaaa") == 1);
    CHECK(excluded(NULL, pattern, "x", "aaaa:1") == 0);
}

static void test_include_beats_exclude(void)
{
    CHECK(excluded("name:keep", "image:.*", "keep-me", "redis:7") == 0);
    CHECK(excluded("name:keep", "image:.*", "other", "redis:7") == 1);
    CHECK(excluded("image:redis", "name:.*", "cache", "redis:7") == 0);
    CHECK(excluded("image:redis", "name:.*", "cache", "nginx:1") == 1);
    /* An include list alone excludes nothing. */
    CHECK(excluded("name:^a$", NULL, "b", "redis:7") == 0);
    /* Include wins over the pause defaults too. */
    CHECK(excluded(NULL, NULL, "p", "k8s.gcr.io/pause:3.9") == 1);
    CHECK(excluded("image:pause", NULL, "p", "k8s.gcr.io/pause:3.9") == 0);
    CHECK(excluded("name:^infra$", NULL, "infra", "amazon/amazon-ecs-pause:0.1.0") == 0);
    /* Includes match empty values (only excludes skip them). */
    CHECK(excluded("name:^$", "image:.*", "", "redis:7") == 0);
}

static void test_kube_namespace_ignored(void)
{
    mw__diag diag = {0};
    mw__filter *f = mw__filter_new("kube_namespace:(", "kube_namespace:.* name:^x$", "t", &diag);

    CHECK(f != NULL);
    CHECK(diag.n == 0); /* accepted: not even compiled */
    if (f) {
        CHECK(mw__filter_excluded(f, "web", "redis:7") == 0);
        CHECK(mw__filter_excluded(f, "x", "redis:7") == 1);
    }
    mw__filter_free(f);
    mw__diag_free(&diag);
}

static int starts_with(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_bad_items(void)
{
    mw__diag diag = {0};
    mw__filter *f =
        mw__filter_new("image:[z-a] name:^in$", "name:^ok$ image:( bogus:x name: Image:y",
                       "DD_CONTAINER_EXCLUDE", &diag);

    CHECK(f != NULL);
    CHECK(diag.n == 5);
    if (diag.n == 5) {
        /* The reason after the item is regerror()'s text. */
        CHECK(starts_with(diag.items[0], "DD_CONTAINER_EXCLUDE: include item 1 'image:[z-a]': "));
        CHECK(strlen(diag.items[0]) >
              strlen("DD_CONTAINER_EXCLUDE: include item 1 'image:[z-a]': "));
        CHECK(starts_with(diag.items[1], "DD_CONTAINER_EXCLUDE: exclude item 2 'image:(': "));
        CHECK(strlen(diag.items[1]) > strlen("DD_CONTAINER_EXCLUDE: exclude item 2 'image:(': "));
        CHECK_STR(diag.items[2], "DD_CONTAINER_EXCLUDE: exclude item 3 'bogus:x': unknown filter, "
                                 "expected image:, name: or kube_namespace:");
        CHECK_STR(diag.items[3], "DD_CONTAINER_EXCLUDE: exclude item 4 'name:': empty regex");
        /* Prefixes are case-sensitive, as Datadog's. */
        CHECK_STR(diag.items[4], "DD_CONTAINER_EXCLUDE: exclude item 5 'Image:y': unknown filter, "
                                 "expected image:, name: or kube_namespace:");
    }
    for (size_t i = 0; i < diag.n; i++)
        printf("  reported: %s\n", diag.items[i]);
    /* The good items still apply; the bad ones match nothing. */
    if (f) {
        CHECK(mw__filter_excluded(f, "ok", "redis:7") == 1);
        CHECK(mw__filter_excluded(f, "in", "k8s.gcr.io/pause:3.9") == 0);
        CHECK(mw__filter_excluded(f, "other", "redis:7") == 0);
        CHECK(mw__filter_excluded(f, "other", "(") == 0);
    }
    mw__filter_free(f);
    mw__diag_free(&diag);

    /* No diag: the bad items are skipped all the same; NULL origin. */
    f = mw__filter_new(NULL, "image:( name:^ok$", NULL, NULL);
    CHECK(f != NULL && mw__filter_excluded(f, "ok", "x") == 1);
    mw__filter_free(f);
    f = mw__filter_new("bad", NULL, NULL, &diag);
    CHECK(diag.n == 1 && starts_with(diag.items[0], "container filter: include item 1 'bad': "));
    mw__filter_free(f);
    mw__diag_free(&diag);
}

static void test_pause_defaults(void)
{
    static const char *const pause[] = {
        "gcr.io/google_containers/pause-amd64:3.0",
        "asia.gcr.io/google_containers/pause-amd64:3.0",
        "k8s.gcr.io/pause:3.9",
        "k8s.gcr.io/pause",
        "gcr.io/gke-release/pause-win:1.1.0",
        "eu.gcr.io/k8s-artifacts-prod/pause:3.3",
        "registry.k8s.io/pause:3.9",
        "kubernetes/pause:latest",
        "docker.io/kubernetes/pause",
        "amazon/amazon-ecs-pause:0.1.0",
        "123456789012.dkr.ecr.us-west-2.amazonaws.com/ecs/pause:1.0",
        "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/pause:3.5",
        "eks/pause-amd64",
        "mcr.microsoft.com/oss/kubernetes/pause:3.6",
        "mcr.microsoft.com/k8s/core/pause-amd64",
        "rancher/pause:3.2",
        "rancher/mirrored-pause:3.7",
        "openshift/origin-pod",
        "docker.io/openshift/origin-pod:v3.11",
        "registry.access.redhat.com/rhel7/pod-infrastructure:latest",
        "k8s-gcrio.azureedge.net/pause-amd64",
        "aksrepos.azurecr.io/mirror/pause-amd64:3.1",
        "kubeletwin/pause:latest",
        "ecr.us-east-1.amazonaws.com/pause",
        "cdk/pause-amd64",
        "giantswarm/pause",
        "602401143452.dkr.ecr.us-west-2.amazonaws.com/upstream/pause:3.9",
        "docker.jfrog.io/google-containers/pause:3.1",
    };
    static const char *const kept[] = {
        "redis:7",
        "demo/busybox:1.0",
        "nginx",
        "registry.local:5000/team/cache:7.2",
        "k8s.gcr.io/kube-proxy:v1.29.0",
        "rancher/rancher-agent:v2.8",
        "amazon/amazon-ecs-agent:latest",
        "example/pause-reporter:1", /* "pause" alone is not enough */
    };
    mw__diag diag = {0};
    mw__filter *f = mw__filter_new(NULL, NULL, "test", &diag);

    CHECK(f != NULL);
    CHECK(diag.n == 0); /* every default compiles */
    if (!f)
        return;
    for (size_t i = 0; i < MW_ARRAY_LEN(pause); i++) {
        int r = mw__filter_excluded(f, "POD", pause[i]);
        if (r != 1)
            fprintf(stderr, "pause image kept: %s\n", pause[i]);
        CHECK(r == 1);
    }
    for (size_t i = 0; i < MW_ARRAY_LEN(kept); i++) {
        int r = mw__filter_excluded(f, "POD", kept[i]);
        if (r != 0)
            fprintf(stderr, "image excluded: %s\n", kept[i]);
        CHECK(r == 0);
    }
    /* The defaults look at the image only. */
    CHECK(mw__filter_excluded(f, "k8s_POD_pause", "redis:7") == 0);
    mw__filter_free(f);
    mw__diag_free(&diag);
}

/* ------------------------------------------------------------ allocation failures */

#ifndef FAILALLOC_SKIP

#include <dlfcn.h>
#include <regex.h>

/*
 * glibc's regcomp() is not safe against a failed allocation itself: when
 * one of the reallocs in re_dfa_add_node() fails after others moved their
 * blocks, the dfa keeps the freed pointers (a leak, then a double free in
 * regfree). So each regcomp() here is one allocation point: refused as a
 * whole with REG_ESPACE, or run with nothing inside it refused.
 */
typedef int (*regcomp_fn)(regex_t *, const char *, int);

/* libc's regcomp, found on the first call (before any arming). */
static regcomp_fn real_regcomp(void)
{
    static regcomp_fn fn;

    if (!fn) {
        void *sym = dlsym(RTLD_NEXT, "regcomp");
        /* POSIX's way to turn dlsym's object pointer into a function's. */
        memcpy(&fn, &sym, sizeof(sym));
    }
    return fn;
}

int regcomp(regex_t *re, const char *pattern, int cflags)
{
    failalloc_state st;
    int rc;

    if (failalloc_point())
        return REG_ESPACE;
    st = failalloc_pause();
    rc = real_regcomp()(re, pattern, cflags);
    failalloc_resume(st);
    return rc;
}

static void test_allocation_failures(void)
{
    long n, points = 0;

    CHECK(real_regcomp() != NULL);
    for (n = 1;; n++) {
        long before = failalloc_live();
        mw__diag diag = {0};
        mw__filter *f;
        int ok = 1, built;

        failalloc_arm(n);
        f = mw__filter_new("name:^keep$", "image:^redis$ image:( name:^dd-", "t", &diag);
        failalloc_disarm();
        /* Built: it must work in full (a report may have been dropped). */
        if (f)
            ok = mw__filter_excluded(f, "keep", "redis:7") == 0 &&
                 mw__filter_excluded(f, "web", "redis:7") == 1 &&
                 mw__filter_excluded(f, "dd-agent", "x") == 1 &&
                 mw__filter_excluded(f, "web", "k8s.gcr.io/pause:3.9") == 1 &&
                 mw__filter_excluded(f, "web", "nginx") == 0 && diag.n <= 1;
        if (!ok)
            fprintf(stderr, "filter: allocation %ld: wrong filter\n", n);
        CHECK(ok);
        built = f != NULL;
        mw__filter_free(f);
        mw__diag_free(&diag);
        if (failalloc_live() != before)
            fprintf(stderr, "filter: allocation %ld: leak\n", n);
        CHECK(failalloc_live() == before);
        if (failalloc_refused() == 0) {
            CHECK(built);
            break;
        }
        points = n;
    }
    CHECK(points > 20);
}

#else

static void test_allocation_failures(void)
{
    printf("allocation failures: skipped under a sanitizer that owns malloc\n");
}

#endif

int main(void)
{
    test_empty_lists();
    test_name_vs_image();
    test_unanchored();
    test_long_image();
    test_include_beats_exclude();
    test_kube_namespace_ignored();
    test_bad_items();
    test_pause_defaults();
    test_allocation_failures();
    return TEST_RESULT();
}
