/*
 * docker_report.c - what the Docker events stream reports upward:
 * events for an OOM kill, a non-zero exit, a failed health check and a
 * restart loop, and the engine connectivity service check (see
 * docker_report.h).
 */
#include "discovery/docker/docker_report.h"

#include "core/base/util.h"

#include <stdlib.h>
#include <string.h>

#define WHERE "docker"

/* Tags for an event without a held service, built from the event's
 * attributes; each string is owned (an OOM leaves one out). */
typedef struct ev_tags {
    char *v[8];
    size_t n;
} ev_tags;

static void ev_tags_add(ev_tags *t, char *s)
{
    if (!s || t->n >= MW_ARRAY_LEN(t->v)) {
        free(s);
        return;
    }
    t->v[t->n++] = s;
}

static void ev_tags_build(ev_tags *t, const mw__docker_event *ev, const char *name)
{
    char *lname = NULL, *sname = NULL, *tag = NULL;

    memset(t, 0, sizeof(*t));
    ev_tags_add(t, mw__sprintf("container_id:%s", ev->id));
    if (name)
        ev_tags_add(t, mw__sprintf("container_name:%s", name));
    if (!ev->image)
        return;
    ev_tags_add(t, mw__sprintf("docker_image:%s", ev->image));
    if (mw__image_names(ev->image, &lname, &sname, &tag) == MW_OK) {
        ev_tags_add(t, mw__sprintf("image_name:%s", lname));
        ev_tags_add(t, mw__sprintf("short_image:%s", sname));
        ev_tags_add(t, mw__sprintf("image_tag:%s", tag));
    }
    free(lname);
    free(sname);
    free(tag);
}

static void ev_tags_free(ev_tags *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i]);
}

static const char *subj_name(mw__docker_subject s)
{
    if (s.svc)
        return s.svc->name;
    return s.ev->name ? s.ev->name : s.ev->id;
}

static const char *subj_image(mw__docker_subject s)
{
    if (s.svc)
        return s.svc->image;
    return s.ev->image ? s.ev->image : "unknown";
}

/* Queues one event record; takes `title` and `text` (either may be NULL
 * after an OOM: the event is then dropped and said so). */
static void report(const mw__source_cbs *out, const mw__log *log, mw__docker_subject s,
                   const char *alert, char *title, char *text)
{
    const char *name = s.svc ? s.svc->name : s.ev->name;
    char *key = mw__sprintf("docker:%s", name ? name : s.ev->id);
    mw_record rec = {0};
    ev_tags t = {0};

    if (!s.svc)
        ev_tags_build(&t, s.ev, name);
    rec.type = MW_RECORD_EVENT;
    rec.title = title;
    rec.text = text;
    rec.alert_type = alert;
    rec.priority = "normal";
    rec.aggregation_key = key;
    rec.source_type_name = "docker";
    rec.timestamp = s.ev->time;
    rec.tags = s.svc ? (const char *const *)s.svc->tags : (const char *const *)t.v;
    rec.ntags = s.svc ? s.svc->ntags : t.n;
    if (!title || !text || !key || out->record(out->ud, &rec) != MW_OK)
        mw__warn(log, WHERE, "event '%s' dropped: out of memory or record queue full",
                 title ? title : alert);
    ev_tags_free(&t);
    free(key);
    free(title);
    free(text);
}

void mw__docker_report_die(const mw__source_cbs *out, const mw__log *log, mw__docker_subject s)
{
    const char *code = s.ev->exit_code, *name = subj_name(s);

    if (!code || strcmp(code, "0") == 0)
        return;
    report(out, log, s, "error", mw__sprintf("Container %s exited with %s", name, code),
           mw__sprintf("Container %s (image %s) exited with code %s.", name, subj_image(s), code));
}

void mw__docker_report_oom(const mw__source_cbs *out, const mw__log *log, mw__docker_subject s)
{
    const char *name = subj_name(s);

    report(out, log, s, "error", mw__sprintf("Container %s ran out of memory", name),
           mw__sprintf("Container %s (image %s) was killed by the kernel's OOM killer.", name,
                       subj_image(s)));
}

void mw__docker_report_unhealthy(const mw__source_cbs *out, const mw__log *log,
                                 mw__docker_subject s)
{
    const char *name = subj_name(s);

    if (strcmp(s.ev->detail, "unhealthy") != 0)
        return;
    report(out, log, s, "warning", mw__sprintf("Container %s is unhealthy", name),
           mw__sprintf("Container %s (image %s) failed its health check.", name, subj_image(s)));
}

void mw__docker_report_restart_loop(const mw__source_cbs *out, const mw__log *log,
                                    mw__docker_subject s, int starts, long long window_s)
{
    const char *name = subj_name(s);

    report(out, log, s, "error", mw__sprintf("Container %s is restarting in a loop", name),
           mw__sprintf("Container %s (image %s) started %d times within %lld s.", name,
                       subj_image(s), starts, window_s));
}

void mw__docker_report_service_up(const mw__source_cbs *out, const mw__log *log, int up,
                                  const char *why)
{
    mw_record rec = {0};

    rec.type = MW_RECORD_SERVICE_CHECK;
    rec.name = MW_DOCKER_SERVICE_UP;
    rec.status = up ? MW_STATUS_OK : MW_STATUS_CRITICAL;
    rec.message = up ? "" : (why ? why : "not connected yet");
    rec.timestamp = (int64_t)mw__wall();
    if (out->record(out->ud, &rec) != MW_OK)
        mw__warn(log, WHERE, "%s service check dropped: record queue full", MW_DOCKER_SERVICE_UP);
}
