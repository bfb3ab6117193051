/*
 * ecs_report.c - the ECS sources' records (see ecs_report.h): titles and
 * texts of the task events, one function per kind in a table.
 */
#include "discovery/ecs/ecs_report.h"

#include "core/base/buf.h"
#include "core/base/util.h"

#include <stdlib.h>
#include <string.h>

#define WHERE "ecs"

void mw__ecs_report_agent_up(const mw__source_cbs *out, const mw__log *log, const char *name,
                             int up, const char *why)
{
    mw_record rec = {0};

    if (!out->record)
        return;
    rec.type = MW_RECORD_SERVICE_CHECK;
    rec.name = name;
    rec.status = up ? MW_STATUS_OK : MW_STATUS_CRITICAL;
    rec.message = up ? "" : (why ? why : "no answer yet");
    rec.timestamp = (int64_t)mw__wall();
    if (out->record(out->ud, &rec) != MW_OK)
        mw__warn(log, "ecs", "%s service check dropped: record queue full", name);
}

/* ------------------------------------------------------------- events */

typedef struct words {
    char *title, *text;
    const char *alert;
} words;

static const char *family_of(const mw__ecs_event *ev)
{
    return ev->family && ev->family[0] ? ev->family : ev->task_arn;
}

/* "a, b" of the task's containers into `b` (capped). */
static const char *names(mw__buf *b, const mw__ecs_event *ev)
{
    mw__buf_reset(b);
    for (size_t i = 0; i < ev->ncontainers; i++)
        mw__buf_addf(b, "%s%s", i ? ", " : "", ev->containers[i]);
    return ev->ncontainers ? mw__buf_str(b) : "none";
}

static words fail_words(const mw__ecs_event *ev, mw__buf *b, double timeout)
{
    MW_UNUSED(b), MW_UNUSED(timeout);
    if (ev->exit_code < 0)
        return (words){
            mw__sprintf("ECS task %s: container %s never started", family_of(ev), ev->container),
            mw__sprintf("Task %s stopped before its container %s started.", ev->task_arn,
                        ev->container),
            "error"};
    return (words){mw__sprintf("ECS task %s: container %s exited with %d", family_of(ev),
                               ev->container, ev->exit_code),
                   mw__sprintf("Container %s (%.12s) of task %s exited with code %d.",
                               ev->container, ev->docker_id, ev->task_arn, ev->exit_code),
                   "error"};
}

static words oom_words(const mw__ecs_event *ev, mw__buf *b, double timeout)
{
    MW_UNUSED(b), MW_UNUSED(timeout);
    return (words){mw__sprintf("ECS task %s: container %s was killed by the OOM killer",
                               family_of(ev), ev->container),
                   mw__sprintf("Container %s (%.12s) of task %s ran out of memory and was "
                               "killed by the kernel's OOM killer (exit code %d).",
                               ev->container, ev->docker_id, ev->task_arn, ev->exit_code),
                   "error"};
}

static words pending_words(const mw__ecs_event *ev, mw__buf *b, double timeout)
{
    return (words){mw__sprintf("ECS task %s is pending for %.0f s (containers %s)", family_of(ev),
                               ev->pending_s, names(b, ev)),
                   mw__sprintf("Task %s has not reached RUNNING in %.0f s (ecs_pending_timeout: "
                               "%g s): an image that cannot be pulled, no room on the instance, "
                               "or a container that does not start?",
                               ev->task_arn, ev->pending_s, timeout),
                   "warning"};
}

static words terminate_words(const mw__ecs_event *ev, mw__buf *b, double timeout)
{
    MW_UNUSED(timeout);
    return (words){mw__sprintf("ECS task %s stopped (containers %s)", family_of(ev), names(b, ev)),
                   mw__sprintf("Task %s stopped and every container of it exited 0: scaled "
                               "in, replaced by a deployment, or stopped.",
                               ev->task_arn),
                   "info"};
}

static words (*const kinds[])(const mw__ecs_event *, mw__buf *, double) = {
    [MW_ECS_EV_FAIL] = fail_words,
    [MW_ECS_EV_OOM] = oom_words,
    [MW_ECS_EV_PENDING] = pending_words,
    [MW_ECS_EV_TERMINATE] = terminate_words,
};

/* Sends one event record; takes `w`'s strings. */
static void send(const mw__source_cbs *out, const mw__log *log, words w, const char *key,
                 const char *const *tags, size_t ntags)
{
    mw_record rec = {0};

    rec.type = MW_RECORD_EVENT;
    rec.title = w.title;
    rec.text = w.text;
    rec.alert_type = w.alert;
    rec.priority = "normal";
    rec.aggregation_key = key;
    rec.source_type_name = MW_ECS_SOURCE_TYPE;
    rec.timestamp = (int64_t)mw__wall();
    rec.tags = tags;
    rec.ntags = ntags;
    if (!w.title || !w.text || !key || !out->record || out->record(out->ud, &rec) != MW_OK)
        mw__warn(log, WHERE, "ECS event '%s' dropped: out of memory or record queue full",
                 w.title ? w.title : "?");
    free(w.title);
    free(w.text);
}

/* `tags` and "ecs_event:<kind>" in a new array of borrowed strings. */
static const char **with_kind(const char *const *tags, size_t ntags, const char *kind_tag)
{
    const char **all = malloc((ntags + 1) * sizeof *all);

    if (!all)
        return NULL;
    if (ntags)
        memcpy(all, tags, ntags * sizeof *all);
    all[ntags] = kind_tag;
    return all;
}

void mw__ecs_report_event(const mw__source_cbs *out, const mw__log *log, const mw__ecs_event *ev,
                          const char *const *tags, size_t ntags, double timeout)
{
    mw__buf b;
    char *kind = mw__sprintf("ecs_event:%s", mw__ecs_event_name(ev->kind));
    char *key = mw__sprintf(MW_ECS_SOURCE_TYPE ":%s", ev->task_arn);
    const char **all = kind ? with_kind(tags, ntags, kind) : NULL;

    mw__buf_init(&b, 4096);
    if ((size_t)ev->kind < MW_ARRAY_LEN(kinds) && all)
        send(out, log, kinds[ev->kind](ev, &b, timeout), key, all, ntags + 1);
    else
        mw__warn(log, WHERE, "ECS event of task %s dropped: out of memory", ev->task_arn);
    mw__buf_free(&b);
    free(all);
    free(key);
    free(kind);
}

void mw__ecs_report_reboot(const mw__source_cbs *out, const mw__log *log, const char *before,
                           const char *now)
{
    static const char *const tags[] = {"ecs_event:reboot"};
    words w = {mw__strdup("ECS container instance rebooted"),
               mw__sprintf("This host booted again since moonwatch last ran on it (boot id %s, "
                           "%s before).",
                           now, before),
               "warning"};

    send(out, log, w, MW_ECS_SOURCE_TYPE ":reboot", tags, 1);
}
