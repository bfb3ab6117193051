/*
 * sink_json.h - the JSON-lines sink's format: one flushed record as one line.
 *
 * mw__record_json() renders one mw_record as one JSON line, exactly the
 * "JSON-lines sink" format of DESIGN.md, keys in that order:
 *
 *   metric:        type, metric, kind, value, timestamp, interval, tags,
 *                  host, check, check_id
 *   service_check: type, check (the service check's name), status, message,
 *                  timestamp, tags, host, check_id
 *   event:         type, title, text, alert_type, priority,
 *                  aggregation_key, source_type_name, timestamp, tags, host
 *
 * `check` and `check_id` are left out when NULL (a sample submitted from C
 * rather than by a check instance); any other NULL string prints as null.
 * Strings are escaped for JSON; bytes that are not valid UTF-8 become
 * U+FFFD. Numbers print in the shortest form that reads back to the same
 * double (integers without a fraction).
 */
#ifndef MW_SINK_JSON_H
#define MW_SINK_JSON_H

#include "moonwatch.h"
#include "core/base/buf.h"

/*
 * Appends the line for `rec`, '\n' included, to `out`. On error nothing is
 * appended: MW_EINVAL for a non-finite number or an unknown record type,
 * MW_ENOMEM when `out` reaches its cap.
 */
mw_code mw__record_json(const mw_record *rec, mw__buf *out);

#endif
