/*
 * ecs_report.c - the ECS source's records (see ecs_report.h).
 */
#include "discovery/ecs/ecs_report.h"

#include "core/base/util.h"

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
