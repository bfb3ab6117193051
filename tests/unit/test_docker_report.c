/*
 * test_docker_report.c - the records docker_report.c makes of Docker
 * events about containers the source holds no service for: the tags come
 * from the event's own attributes, and an image given as a bare id is
 * named by that id (image_name, short_image), with tag "latest", as the
 * services' tags name it, never "sha256".
 */
#include "discovery/docker/docker_report.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

#define ID  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define IMG "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

typedef struct got {
    int n;
    char tags[1024];
    char title[256];
} got;

static mw_code keep(void *ud, const mw_record *rec)
{
    got *g = ud;
    g->n++;
    snprintf(g->title, sizeof g->title, "%s", rec->title ? rec->title : "");
    g->tags[0] = '\0';
    for (size_t i = 0; i < rec->ntags; i++) {
        strncat(g->tags, rec->tags[i], sizeof g->tags - strlen(g->tags) - 2);
        strncat(g->tags, "|", sizeof g->tags - strlen(g->tags) - 1);
    }
    return MW_OK;
}

static void parse(const char *image, mw__docker_event *ev)
{
    char line[512];
    snprintf(line, sizeof line,
             "{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":\"" ID
             "\",\"Attributes\":{\"exitCode\":\"3\",\"image\":\"%s\",\"name\":\"job\"}},"
             "\"time\":1700000000,\"timeNano\":1700000000000000000}",
             image);
    CHECK(mw__docker_event_parse(line, strlen(line), ev, NULL) == MW_OK);
}

static void test_image_id(void)
{
    got g = {0};
    mw__source_cbs out = {.record = keep, .ud = &g};
    mw__docker_event ev;

    parse(IMG, &ev);
    mw__docker_report_die(&out, NULL, (mw__docker_subject){&ev, NULL});
    CHECK(g.n == 1);
    CHECK(strstr(g.title, "job exited with 3") != NULL);
    CHECK(strstr(g.tags, "docker_image:" IMG "|") != NULL);
    CHECK(strstr(g.tags, "image_name:" IMG "|") != NULL);
    CHECK(strstr(g.tags, "short_image:" IMG "|") != NULL);
    CHECK(strstr(g.tags, "image_tag:latest|") != NULL);
    CHECK(strstr(g.tags, "image_name:sha256|") == NULL);
    mw__docker_event_free(&ev);
}

static void test_image_name(void)
{
    got g = {0};
    mw__source_cbs out = {.record = keep, .ud = &g};
    mw__docker_event ev;

    parse("registry:5000/team/app:2.1", &ev);
    mw__docker_report_die(&out, NULL, (mw__docker_subject){&ev, NULL});
    CHECK(g.n == 1);
    CHECK(strstr(g.tags, "image_name:registry:5000/team/app|") != NULL);
    CHECK(strstr(g.tags, "short_image:app|") != NULL);
    CHECK(strstr(g.tags, "image_tag:2.1|") != NULL);
    CHECK(strstr(g.tags, "container_name:job|") != NULL);
    CHECK(strstr(g.tags, "container_id:" ID "|") != NULL);
    mw__docker_event_free(&ev);
}

int main(void)
{
    test_image_id();
    test_image_name();
    return TEST_RESULT();
}
