/*
 * status.c - `moonwatch status [--listen ADDR] [--json]`: asks a running
 * engine's status listener for GET /status (core/base/http.c on a loop
 * of its own) and prints it for a person: aligned tables, coloured only
 * on a terminal; --json prints the document as received.
 *
 * Exit status: 0 healthy, 1 the engine reports a failing source, 2 no
 * answer (or a usage error).
 */
#include "core/cli/cli.h"

#include "core/base/http.h"
#include "core/base/json.h"
#include "core/base/util.h"
#include "core/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FETCH_TIMEOUT 10.0
#define MAX_COLS      8

/* ------------------------------------------------------------- fetch */

typedef struct fetch {
    long status;
    char *body, *error;
} fetch;

/* GET /status from `addr` into f; MW_OK when it answered. */
static mw_code get_status(const char *addr, fetch *f)
{
    int is_unix = addr[0] == '/' || !strncmp(addr, "unix:", 5);
    char *url =
        is_unix ? mw__strdup("http://localhost/status") : mw__sprintf("http://%s/status", addr);
    size_t len;
    if (!url)
        return MW_ENOMEM;
    mw__http_opts o = {
        .url = url,
        .unix_socket = is_unix ? (addr[0] == '/' ? addr : addr + 5) : NULL,
        .timeout = FETCH_TIMEOUT,
        .connect_timeout = FETCH_TIMEOUT,
        .direct = 1,
    };
    mw_code rc = mw__http_fetch(&o, &f->status, &f->body, &len, &f->error);
    free(url);
    return rc == MW_OK ? MW_OK : MW_EIO;
}

/* ------------------------------------------------------------- tables */

typedef struct table {
    size_t ncols, nrows;
    char **cells; /* nrows * ncols, row 0 the header */
    size_t cap;
} table;

static void row(table *t, const char *const *cells)
{
    if (mw__grow(&t->cells, &t->cap, (t->nrows + 1) * t->ncols, sizeof *t->cells) != MW_OK)
        return;
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = mw__strdup(cells[i] ? cells[i] : "");
    t->nrows++;
}

/* The terminal colour of a cell, "" for none. */
static const char *colour_of(const char *cell, int on)
{
    if (!on)
        return "";
    if (!strcmp(cell, "ok") || !strcmp(cell, "up"))
        return "\033[32m";
    if (!strcmp(cell, "failing") || !strncmp(cell, "error", 5))
        return "\033[31m";
    if (!strcmp(cell, "starting"))
        return "\033[33m";
    return "";
}

static void print_table(table *t, int colour)
{
    size_t w[MAX_COLS] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t n = strlen(t->cells[r * t->ncols + c]);
            w[c] = n > w[c] ? n : w[c];
        }
    for (size_t r = 0; r < t->nrows; r++) {
        printf("  ");
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c], *col = colour_of(cell, colour);
            int last = c + 1 == t->ncols;
            if (r == 0 && colour)
                col = "\033[1m";
            printf("%s%-*s%s%s", col, last ? 0 : (int)w[c], cell, *col ? "\033[0m" : "",
                   last ? "\n" : "  ");
        }
    }
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------- rendering */

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void fmt_age(double secs, char *out, size_t n)
{
    long s = (long)secs;
    if (s < 120)
        snprintf(out, n, "%lds", s);
    else if (s < 7200)
        snprintf(out, n, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(out, n, "%ldh%02ldm", s / 3600, s % 3600 / 60);
}

static void fmt_bytes(double b, char *out, size_t n)
{
    if (b >= 1048576)
        snprintf(out, n, "%.1f MiB", b / 1048576);
    else
        snprintf(out, n, "%.1f KiB", b / 1024);
}

static void print_sources(const cJSON *doc, int colour)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, "sources"), *s;
    table t = {.ncols = 4};
    printf("sources (%d)\n", cJSON_GetArraySize(a));
    if (cJSON_GetArraySize(a) == 0) {
        printf("  none (no discovery source is on)\n");
        return;
    }
    row(&t, (const char *const[]){"NAME", "STATE", "SINCE", "ERROR"});
    cJSON_ArrayForEach(s, a)
    {
        char since[32];
        fmt_age(num(s, "since_seconds"), since, sizeof since);
        row(&t, (const char *const[]){str(s, "name"), str(s, "state"), since, str(s, "error")});
    }
    print_table(&t, colour);
}

static void print_instances(const cJSON *doc, int colour)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, "instances"), *in;
    table t = {.ncols = 7};
    time_t now = time(NULL);
    printf("instances (%d)\n", cJSON_GetArraySize(a));
    row(&t, (const char *const[]){"ID", "RUNS", "ERRORS", "LAST RUN", "DURATION", "SAMPLES",
                                  "LAST ERROR"});
    cJSON_ArrayForEach(in, a)
    {
        char runs[24], errs[24], last[32] = "never", dur[32], samples[24];
        snprintf(runs, sizeof runs, "%.0f", num(in, "runs"));
        snprintf(errs, sizeof errs, "%.0f", num(in, "errors"));
        if (num(in, "last_run") > 0) {
            fmt_age((double)now - num(in, "last_run"), last, sizeof last - 4);
            strcat(last, " ago");
        }
        snprintf(dur, sizeof dur, "%.1f ms", num(in, "last_duration") * 1e3);
        snprintf(samples, sizeof samples, "%.0f", num(in, "samples"));
        row(&t, (const char *const[]){str(in, "id"), runs, errs, last, dur, samples,
                                      str(in, "last_error")});
    }
    print_table(&t, colour);
}

static void print_unresolved(const cJSON *doc, int colour)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, "unresolved"), *u;
    table t = {.ncols = 4};
    if (cJSON_GetArraySize(a) == 0)
        return;
    printf("unresolved configs (%d)\n", cJSON_GetArraySize(a));
    row(&t, (const char *const[]){"CHECK", "SERVICE", "SOURCE", "REASON"});
    cJSON_ArrayForEach(u, a)
    {
        row(&t, (const char *const[]){str(u, "check"), str(u, "service"), str(u, "source"),
                                      str(u, "reason")});
    }
    print_table(&t, colour);
}

/* The last reload's problems (their files' previous versions run). */
static void print_reload(const cJSON *doc)
{
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(doc, "reload"), "errors"),
                *e;
    if (cJSON_GetArraySize(errs) == 0)
        return;
    printf("reload errors (%d, previous versions keep running)\n", cJSON_GetArraySize(errs));
    cJSON_ArrayForEach(e, errs)
    {
        if (cJSON_IsString(e))
            printf("  %s\n", e->valuestring);
    }
}

/* The sum of a sink's drops over every reason. */
static double dropped_total(const cJSON *sink)
{
    const cJSON *r;
    double n = 0;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(sink, "dropped")) n +=
        cJSON_IsNumber(r) ? r->valuedouble : 0;
    return n;
}

/* Sinks that deliver somewhere (datadog) get a row of figures; the
 * others (stdout, prometheus, callback) are only named. */
static void print_sinks(const cJSON *doc, int colour)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, "sinks"), *s;
    table t = {.ncols = 6};
    printf("sinks (%d)\n", cJSON_GetArraySize(a));
    if (cJSON_GetArraySize(a) == 0) {
        printf("  none\n");
        return;
    }
    row(&t, (const char *const[]){"NAME", "STATE", "QUEUED", "SENT", "DROPPED", "ERROR"});
    cJSON_ArrayForEach(s, a)
    {
        char queued[64] = "-", sent[32] = "-", dropped[32] = "-", bytes[32];
        const char *state = str(s, "state");
        if (*state) {
            fmt_bytes(num(s, "queued_bytes"), bytes, sizeof bytes);
            snprintf(queued, sizeof queued, "%.0f (%s)", num(s, "queued_payloads"), bytes);
            snprintf(sent, sizeof sent, "%.0f", num(s, "sent_items"));
            snprintf(dropped, sizeof dropped, "%.0f", dropped_total(s));
        }
        row(&t, (const char *const[]){str(s, "name"), *state ? state : "up", queued, sent, dropped,
                                      str(s, "error")});
    }
    print_table(&t, colour);
}

static int print_human(const cJSON *doc, int colour)
{
    const cJSON *health = cJSON_GetObjectItemCaseSensitive(doc, "health"), *r;
    const cJSON *mem = cJSON_GetObjectItemCaseSensitive(doc, "memory");
    const cJSON *tot = cJSON_GetObjectItemCaseSensitive(doc, "totals");
    const char *hs = str(health, "status");
    char up[32], rss[32], lua[32];
    fmt_age(num(doc, "uptime_seconds"), up, sizeof up);
    fmt_bytes(num(mem, "rss_bytes"), rss, sizeof rss);
    fmt_bytes(num(mem, "lua_bytes"), lua, sizeof lua);
    printf("moonwatch %s on %s (pid %.0f), up %s, health: %s%s%s\n", str(doc, "version"),
           str(doc, "hostname"), num(doc, "pid"), up, colour_of(hs, colour), hs,
           *colour_of(hs, colour) ? "\033[0m" : "");
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(health, "reasons"))
    {
        if (cJSON_IsString(r))
            printf("  %s\n", r->valuestring);
    }
    if (*str(doc, "hostname_origin"))
        printf("host name from: %s\n", str(doc, "hostname_origin"));
    print_sources(doc, colour);
    printf("services: %.0f\n", num(doc, "services"));
    print_instances(doc, colour);
    print_unresolved(doc, colour);
    print_reload(doc);
    print_sinks(doc, colour);
    printf("memory: RSS %s, Lua %s\n", rss, lua);
    printf("totals: %.0f runs, %.0f errors, %.0f contexts, %.0f flushes, %.0f records\n",
           num(tot, "runs"), num(tot, "errors"), num(tot, "contexts"), num(tot, "flushes"),
           num(tot, "records"));
    return strcmp(hs, "ok") ? 1 : 0;
}

/* ------------------------------------------------------------- command */

int mw__cmd_status(int argc, char **argv)
{
    mw__cli_args a;
    fetch f = {0};
    int json = 0, rc = 2;
    cJSON *doc = NULL;
    if (mw__cli_common(argc, argv, &a) != MW_OK)
        return 2;
    mw__cli_say_notes(&a, NULL);
    for (int i = 0; i < a.nrest; i++) {
        if (strcmp(a.rest[i], "--json")) {
            fprintf(stderr, "moonwatch status: unexpected argument '%s'\n", a.rest[i]);
            goto out;
        }
        json = 1;
    }
    if (!a.cfg->listen) {
        fprintf(stderr, "moonwatch status: which engine? give --listen ADDR (or -c FILE "
                        "with listen:), the address its run listens on\n");
        goto out;
    }
    if (get_status(a.cfg->listen, &f) != MW_OK || f.status != 200) {
        fprintf(stderr, "moonwatch status: no status from %s: %s\n", a.cfg->listen,
                f.error  ? f.error
                : f.body ? f.body
                         : "no answer");
        goto out;
    }
    if (json) {
        fputs(f.body, stdout);
        rc = 0;
    } else if (!(doc = cJSON_Parse(f.body))) {
        fprintf(stderr, "moonwatch status: %s did not answer JSON\n", a.cfg->listen);
    } else {
        rc = print_human(doc, isatty(STDOUT_FILENO));
    }
out:
    cJSON_Delete(doc);
    free(f.body);
    free(f.error);
    mw__cli_args_free(&a);
    return rc;
}
