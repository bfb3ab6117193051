/*
 * filter.c - container include/exclude lists (DD_CONTAINER_INCLUDE /
 * DD_CONTAINER_EXCLUDE syntax) compiled to POSIX extended regexes, plus
 * Datadog's default pause-container exclusions.
 *
 * Ownership: a mw__filter owns its compiled regexes and nothing else;
 * the list strings and the diag are borrowed for the call. Once built it
 * is only read (regexec on a shared regex_t is thread-safe), so threads
 * may share it.
 *
 * As in Datadog's agent (pkg/util/containers/filter.go):
 *  - an image without ':' is matched as "<image>:", and an image regex
 *    ending in '$' with no ':' in it (`nginx$`) becomes
 *    `nginx(@sha256)?:.*`, so that it still matches a tagged image;
 *  - exclude items never match an empty name or image;
 *  - include items win over every exclude item, the defaults included.
 * The regexes are POSIX extended, not Go's RE2: no \d, (?i) or lazy
 * quantifiers. An empty regex ("name:") would exclude everything, so it
 * is reported as a bad item rather than compiled.
 */
#include "discovery/filter.h"

#include "core/base/util.h"

#include <ctype.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULTS_ORIGIN "built-in pause list"
#define IMAGE_BUF       256 /* images up to this long are matched without malloc */

enum { INCLUDE, EXCLUDE };
enum { BY_IMAGE, BY_NAME, BY_NOTHING };

/*
 * Pause (pod infrastructure) container images, excluded unless included.
 * Datadog's list (GetPauseContainerExcludeList), plus the ECS pause
 * images served from ECR. Each with a word every image it matches holds
 * (outside any group or alternation of the pattern), tried with strstr()
 * before the regex: most images do not hold it.
 */
static const struct {
    const char *pattern, *word;
} pause_images[] = {
    {"kubernetes/pause", "pause"},                    /* docker.io/kubernetes/pause */
    {"amazon/amazon-ecs-pause", "pause"},             /* ECS awsvpc task pause */
    {"amazonaws\\.com/ecs/.*pause", "pause"},         /* the same from an ECR registry */
    {"openshift/origin-pod", "pod"},                  /* OpenShift 3 */
    {".*rhel7/pod-infrastructure", "pod"},            /* registry.access.redhat.com */
    {"google(_|-)containers/pause.*", "pause"},       /* *.gcr.io, *.jfrog.io mirrors */
    {".*gcr\\.io(.*)/pause.*", "pause"},              /* k8s.gcr.io/pause, gcr.io/gke-release */
    {".*azureedge\\.net(.*)/pause.*", "pause"},       /* Azure's gcr mirrors */
    {"(amazonaws\\.com/)?eks/pause.*", "pause"},      /* EKS */
    {"rancher/pause.*", "pause"},                     /* rancher/pause-amd64 */
    {"rancher/mirrored-pause.*", "pause"},            /* rancher/mirrored-pause:3.7 */
    {"mcr\\.microsoft\\.com(.*)/pause.*", "pause"},   /* mcr.microsoft.com/oss/kubernetes/pause */
    {"aksrepos\\.azurecr\\.io(.*)/pause.*", "pause"}, /* AKS */
    {"kubeletwin/pause.*", "pause"},                  /* Windows nodes */
    {"ecr(.*)amazonaws\\.com/pause.*", "pause"},      /* ecr.<region>.amazonaws.com/pause */
    {"upstream/pause.*", "pause"},                    /* *.ecr.<region>.amazonaws.com/upstream */
    {"cdk/pause.*", "pause"},                         /* Charmed Kubernetes */
    {"giantswarm/pause.*", "pause"},                  /* Giant Swarm */
    {"registry\\.k8s\\.io/pause.*", "pause"},         /* registry.k8s.io/pause */
};

/* A compiled regex, with a text every match contains (NULL: none known),
 * tried with strstr() before the regex. */
typedef struct guarded_re {
    regex_t re;
    const char *must;
} guarded_re;

typedef struct relist {
    guarded_re *p;
    size_t n, cap;
} relist;

struct mw__filter {
    relist lists[2][2]; /* [INCLUDE|EXCLUDE][BY_IMAGE|BY_NAME] */
};

static const struct {
    const char *prefix;
    int by;
} prefixes[] = {
    {"image:", BY_IMAGE},
    {"name:", BY_NAME},
    {"kube_namespace:", BY_NOTHING}, /* no pods here: accepted, ignored */
};

/* ------------------------------------------------------------ building */

/* Appends a compiled regex; MW_OK, or MW_ENOMEM (`re` then freed). */
static mw_code relist_push(relist *l, regex_t *re, const char *must)
{
    if (mw__grow(&l->p, &l->cap, l->n + 1, sizeof *l->p) != MW_OK) {
        regfree(re);
        return MW_ENOMEM;
    }
    l->p[l->n++] = (guarded_re){*re, must};
    return MW_OK;
}

/* `nginx$` -> `nginx(@sha256)?:.*` (Datadog's PreprocessImageFilter);
 * other patterns are copied. NULL on OOM. */
static char *image_pattern(const char *pat)
{
    size_t n = strlen(pat);

    if (n > 0 && pat[n - 1] == '$' && !strchr(pat, ':'))
        return mw__sprintf("%.*s(@sha256)?:.*", (int)(n - 1), pat);
    return mw__strdup(pat);
}

/* Reports a bad item; a failed report is dropped (the diag says so). */
static void report(mw__diag *diag, const char *what, const char *list, size_t index,
                   const char *item, const char *reason)
{
    if (diag)
        (void)mw__diag_add(diag, what, 0, 0, "%s item %zu '%s': %s", list, index, item, reason);
}

/*
 * Compiles one item ("image:<re>") into `f`'s list `which`. MW_OK
 * (compiled, ignored or reported), or MW_ENOMEM.
 */
static mw_code add_item(mw__filter *f, int which, const char *item, const char *must, size_t index,
                        const char *what, mw__diag *diag)
{
    const char *list = which == INCLUDE ? "include" : "exclude";
    char msg[256], *pat = NULL;
    regex_t re;
    size_t i;
    int rc;

    for (i = 0; i < MW_ARRAY_LEN(prefixes); i++)
        if (strncmp(item, prefixes[i].prefix, strlen(prefixes[i].prefix)) == 0)
            break;
    if (i == MW_ARRAY_LEN(prefixes)) {
        report(diag, what, list, index, item,
               "unknown filter, expected image:, name: or kube_namespace:");
        return MW_OK;
    }
    if (prefixes[i].by == BY_NOTHING)
        return MW_OK;
    item += strlen(prefixes[i].prefix);
    if (!*item) {
        report(diag, what, list, index, item - strlen(prefixes[i].prefix), "empty regex");
        return MW_OK;
    }
    pat = prefixes[i].by == BY_IMAGE ? image_pattern(item) : mw__strdup(item);
    if (!pat)
        return MW_ENOMEM;
    rc = regcomp(&re, pat, REG_EXTENDED | REG_NOSUB);
    free(pat);
    if (rc == REG_ESPACE)
        return MW_ENOMEM;
    if (rc != 0) {
        regerror(rc, &re, msg, sizeof(msg));
        report(diag, what, list, index, item - strlen(prefixes[i].prefix), msg);
        return MW_OK;
    }
    return relist_push(&f->lists[which][prefixes[i].by], &re, must);
}

/* Compiles every whitespace-separated item of `text`; MW_OK, or
 * MW_ENOMEM. */
static mw_code add_list(mw__filter *f, int which, const char *text, const char *what,
                        mw__diag *diag)
{
    size_t index = 0;

    while (text && *text) {
        const char *end;
        char *item;
        mw_code rc;

        while (isspace((unsigned char)*text))
            text++;
        if (!*text)
            break;
        for (end = text; *end && !isspace((unsigned char)*end); end++)
            ;
        if (!(item = mw__strndup(text, (size_t)(end - text))))
            return MW_ENOMEM;
        rc = add_item(f, which, item, NULL, ++index, what, diag);
        free(item);
        if (rc != MW_OK)
            return rc;
        text = end;
    }
    return MW_OK;
}

/* The pause images, as exclude items. MW_OK, or MW_ENOMEM. */
static mw_code add_defaults(mw__filter *f, mw__diag *diag)
{
    for (size_t i = 0; i < MW_ARRAY_LEN(pause_images); i++) {
        char *item = mw__sprintf("image:%s", pause_images[i].pattern);
        mw_code rc =
            item ? add_item(f, EXCLUDE, item, pause_images[i].word, i + 1, DEFAULTS_ORIGIN, diag)
                 : MW_ENOMEM;
        free(item);
        if (rc != MW_OK)
            return rc;
    }
    return MW_OK;
}

mw__filter *mw__filter_new(const char *include, const char *exclude, const char *what,
                           mw__diag *diag)
{
    mw__filter *f = calloc(1, sizeof(*f));

    if (!f)
        return NULL;
    if (!what)
        what = "container filter";
    if (add_list(f, INCLUDE, include, what, diag) != MW_OK ||
        add_list(f, EXCLUDE, exclude, what, diag) != MW_OK || add_defaults(f, diag) != MW_OK) {
        mw__filter_free(f);
        return NULL;
    }
    return f;
}

void mw__filter_free(mw__filter *f)
{
    if (!f)
        return;
    for (int w = 0; w < 2; w++) {
        for (int by = 0; by < 2; by++) {
            relist *l = &f->lists[w][by];
            for (size_t i = 0; i < l->n; i++)
                regfree(&l->p[i].re);
            free(l->p);
        }
    }
    free(f);
}

/* ------------------------------------------------------------ matching */

static int any_match(const relist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if ((!l->p[i].must || strstr(s, l->p[i].must)) && regexec(&l->p[i].re, s, 0, NULL, 0) == 0)
            return 1;
    return 0;
}

/* Whether list `which` matches `name` or `image` (NULL: not tried); an
 * image without ':' is matched as "<image>:". */
static int list_matches(const mw__filter *f, int which, const char *name, const char *image)
{
    char buf[IMAGE_BUF], *heap = NULL;
    const char *img = image;
    size_t n;
    int hit;

    if (name && any_match(&f->lists[which][BY_NAME], name))
        return 1;
    if (!image || f->lists[which][BY_IMAGE].n == 0)
        return 0;
    n = strlen(image);
    if (n > 0 && !strchr(image, ':')) {
        if (n + 2 <= sizeof(buf)) {
            memcpy(buf, image, n);
            memcpy(buf + n, ":", 2);
            img = buf;
        } else if ((heap = mw__sprintf("%s:", image)) != NULL) {
            img = heap;
        } /* out of memory: match the image as it is */
    }
    hit = any_match(&f->lists[which][BY_IMAGE], img);
    free(heap);
    return hit;
}

int mw__filter_excluded(const mw__filter *f, const char *name, const char *image)
{
    if (!f)
        return 0;
    name = name ? name : "";
    image = image ? image : "";
    if (list_matches(f, INCLUDE, name, image))
        return 0;
    /* Exclude items never match an empty value (as Datadog). */
    return list_matches(f, EXCLUDE, *name ? name : NULL, *image ? image : NULL);
}
