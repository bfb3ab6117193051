/*
 * fuzz_docker_inspect.c - libFuzzer target: a container inspect document
 * (GET /containers/{id}/json) into the service model, as the Docker
 * source builds it (mw__service_from_inspect).
 *
 * The input is the JSON document. When its Config.Image is a bare image
 * id and the document has a top-level "RepoTags" list, RepoTags[0]
 * stands for the repo tag the source would have resolved it to (as from
 * GET /images/{id}/json), and is passed as the override.
 *
 * Properties: a refused document gets a message; a built service has the
 * shape service.h promises (id "docker://<cid>", an image split into
 * long / short / tag, labels and env as objects of strings sorted by key
 * without repeats, networks sorted by name, ports ascending and unique in
 * 1..65535, tags sorted and unique) and the digest of its fields; the
 * document printed and parsed again builds the same service (same
 * digest), and so does the document read as the Docker source reads it
 * (mw__service_inspect_pick), or it is refused with the same message.
 * Then the service's identifiers, and each template variable resolved on
 * its own against it: resolved, or a reason naming it.
 */
#include "discovery/match.h"
#include "discovery/service.h"
#include "discovery/tmplvars.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_sorted_strings(const cJSON *o, int env)
{
    const cJSON *c, *prev = NULL;

    if (!cJSON_IsObject(o))
        abort();
    cJSON_ArrayForEach(c, o)
    {
        if (!cJSON_IsString(c) || !c->string || (prev && strcmp(prev->string, c->string) >= 0))
            abort(); /* strings, sorted by key, no repeats */
        if (env && (!c->string[0] || strchr(c->string, '=')))
            abort();
        prev = c;
    }
}

static void check_image(const mw__service *s)
{
    if (!s->image[0] || !s->image_long[0] || !s->image_short[0] || !s->image_tag[0])
        abort();
    if (mw__service_image_is_id(s->image))
        return;
    size_t nl = strlen(s->image_long), ns = strlen(s->image_short);
    if (strncmp(s->image, s->image_long, nl) != 0 || ns > nl ||
        strcmp(s->image_long + nl - ns, s->image_short) != 0)
        abort(); /* long is a prefix of the image, short a suffix of long */
}

static void check_shape(const mw__service *s)
{
    if (!s->id || !s->cid || strncmp(s->id, "docker://", 9) != 0 || strcmp(s->id + 9, s->cid) != 0)
        abort();
    if (!s->name || !s->hostname || !s->state || !s->health)
        abort();
    check_image(s);
    check_sorted_strings(s->labels, 0);
    check_sorted_strings(s->env, 1);
    for (size_t i = 0; i < s->nnets; i++)
        if (!s->nets[i].ip || !s->nets[i].ip6 ||
            (i > 0 && strcmp(s->nets[i - 1].name, s->nets[i].name) >= 0))
            abort();
    for (size_t i = 0; i < s->nports; i++) {
        const mw__svc_port *p = &s->ports[i], *q = i > 0 ? p - 1 : NULL;
        if (p->number < 1 || p->number > 65535 || !p->proto[0] ||
            strspn(p->proto, "abcdefghijklmnopqrstuvwxyz") != strlen(p->proto))
            abort();
        if (q &&
            (q->number > p->number || (q->number == p->number && strcmp(q->proto, p->proto) >= 0)))
            abort();
    }
    for (size_t i = 0; i < s->ntags; i++)
        if (!strchr(s->tags[i], ':') || (i > 0 && strcmp(s->tags[i - 1], s->tags[i]) >= 0))
            abort();
    if (s->digest != mw__service_digest(s))
        abort();
}

static void check_identifiers(const mw__service *s)
{
    const char *ids[3];
    size_t n = mw__match_identifiers(s, ids);
    const char *check_id = mw__service_label(s, "com.datadoghq.ad.check.id");

    if (n < 1 || n > 3)
        abort();
    if (check_id && check_id[0] && (n != 1 || strcmp(ids[0], check_id) != 0))
        abort();
}

/* Each variable alone, so that one unresolved does not hide the next. */
static void check_variables(const mw__service *s)
{
    static const char *const vars[] = {
        "%%host%%",         "http://%%host%%:%%port%%/x",
        "%%host_bridge%%",  "%%port%%",
        "%%port_0%%",       "%%port_1%%",
        "%%port_http%%",    "%%pid%%",
        "%%hostname%%",     "%%container_name%%",
        "%%container_id%%", "%%env_DD_ENV%%",
        "%%env_PATH%%",
    };
    static const char *const allow[] = {"DD_ENV"};
    mw__tmplvars_opts o = {.env_allow = allow, .nenv_allow = 1};

    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        cJSON *t = cJSON_CreateString(vars[i]);
        char *why = NULL;
        if (!t)
            abort();
        cJSON *r = NULL;
        mw_code rc = mw__tmplvars_resolve(t, s, &o, &r, &why);
        if ((rc == MW_OK) != (r != NULL) || !r == !why || (rc != MW_OK && rc != MW_EINVAL) ||
            (why && strncmp(why, "%%", 2) != 0))
            abort(); /* either a value or a reason naming the variable */
        cJSON_Delete(r);
        free(why);
        cJSON_Delete(t);
    }
}

/* RepoTags[0] for a document whose image is a bare id, else NULL. */
static const char *resolved_image(const cJSON *doc)
{
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(doc, "Config");
    const cJSON *image = cJSON_GetObjectItemCaseSensitive(config, "Image");
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(doc, "RepoTags");

    if (!cJSON_IsString(image) || !mw__service_image_is_id(image->valuestring))
        return NULL;
    return cJSON_IsArray(tags) && cJSON_IsString(tags->child) ? tags->child->valuestring : NULL;
}

/* The same document printed and read back must build the same. */
static void check_reparsed(const cJSON *doc, const mw__service *s)
{
    char *text = cJSON_PrintUnformatted(doc);
    cJSON *again = text ? cJSON_Parse(text) : NULL;
    char *err = NULL;
    mw__service *t = NULL;

    if (!again)
        abort();
    mw_code rc = mw__service_from_inspect(again, resolved_image(again), &t, &err);
    if ((rc == MW_OK) != (t != NULL) || !s != !t || (s && s->digest != t->digest))
        abort();
    mw__service_free(t);
    free(err);
    cJSON_Delete(again);
    free(text);
}

/* The Docker source reads only mw__service_inspect_pick of a document:
 * where that reading succeeds, it builds the same service or refuses it
 * with the same message. */
static void check_picked(const uint8_t *data, size_t size, const char *image, const mw__service *s,
                         const char *err)
{
    cJSON *doc = mw__json_pick_parse((const char *)data, size, mw__service_inspect_pick);
    char *why = NULL;
    mw__service *t = NULL;

    if (!doc)
        return;
    mw_code rc = mw__service_from_inspect(doc, image, &t, &why);
    if ((rc == MW_OK) != (s != NULL) || (s && s->digest != t->digest) ||
        (!s && rc == MW_EPARSE && (!err || !why || strcmp(err, why) != 0)))
        abort();
    mw__service_free(t);
    free(why);
    cJSON_Delete(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
    char *err = NULL;
    mw__service *s = NULL;

    if (!doc)
        return 0;
    mw_code rc = mw__service_from_inspect(doc, resolved_image(doc), &s, &err);
    if (rc != MW_OK) {
        if ((rc != MW_EPARSE && rc != MW_ENOMEM) || s || !err || !err[0])
            abort(); /* a refusal names the field */
    } else {
        if (err)
            abort();
        check_shape(s);
        check_identifiers(s);
        check_variables(s);
    }
    check_reparsed(doc, s);
    check_picked(data, size, resolved_image(doc), s, err);
    mw__service_free(s);
    free(err);
    cJSON_Delete(doc);
    return 0;
}
