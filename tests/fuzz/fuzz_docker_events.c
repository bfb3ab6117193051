/*
 * fuzz_docker_events.c - libFuzzer target: the Docker `/events` stream
 * decoder (discovery/docker_events.h), bytes as the socket delivers them.
 *
 * Byte 0 picks the line cap (64, 512, 4096 bytes or the real 1 MiB) and
 * seeds the chunking; the rest is the stream. It goes through the line
 * splitter twice: in one feed, and cut into chunks of 0 to 15 bytes.
 *
 * Properties: the lines and errors reported are the same however the
 * stream is cut; a line is NUL-terminated at its length, holds no '\n',
 * never starts with a record separator and never passes the cap. Each
 * line is parsed from an exact-size copy (so a read past its end is
 * caught): a parsed event has its Type, Action and a non-empty Actor.ID,
 * an action that is Action up to ": ", non-negative times with timeNano
 * exact for integers a double holds; a refused line says why and leaves
 * the event empty. Every event is applied to a resume watermark, which
 * must then see it as applied and give back its timeNano as `since`.
 */
#include "core/base/util.h"
#include "discovery/docker/docker_events.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What one pass over the stream reported, in order, as a hash. */
typedef struct transcript {
    uint64_t hash;
    size_t lines, errors;
    size_t cap;
    mw__docker_resume resume; /* only the first pass parses */
    int parse;
} transcript;

static void check_event(const mw__docker_event *ev)
{
    size_t alen = strlen(ev->action);
    if (!ev->type || !ev->action_raw || !ev->id || !ev->id[0] || !ev->detail || !ev->scope)
        abort();
    if (strncmp(ev->action_raw, ev->action, alen) != 0 || strstr(ev->action, ": "))
        abort(); /* the action is Action up to ": " */
    if (ev->action_raw[alen] ? strcmp(ev->action_raw + alen + 2, ev->detail) != 0
                             : ev->detail[0] != '\0')
        abort();
    if (ev->time < 0 || ev->time_nano < 0)
        abort();
    if (mw__docker_event_attr(ev, "name") != ev->name)
        abort();
    /* timeNano is read from the text: it must agree with the number
     * cJSON saw wherever a double holds it exactly. */
    const cJSON *tn = cJSON_GetObjectItemCaseSensitive(ev->root, "timeNano");
    if (cJSON_IsNumber(tn) && tn->valuedouble < 9007199254740992.0 &&
        tn->valuedouble == floor(tn->valuedouble) && (double)ev->time_nano != tn->valuedouble)
        abort();
}

/* The watermark must hold the event it was given (unless older). */
static void check_resume(mw__docker_resume *r, const mw__docker_event *ev)
{
    char since[MW_DOCKER_SINCE_SIZE], want[MW_DOCKER_SINCE_SIZE];
    int older = r->n > 0 && ev->time_nano < r->last_nano;

    if (!mw__docker_resume_seen(r, ev))
        mw__docker_resume_applied(r, ev);
    if (!older && !mw__docker_resume_seen(r, ev))
        abort();
    if (!mw__docker_resume_since(r, since))
        abort();
    if (strcmp(since, mw__docker_since_format(r->last_nano, want)) != 0)
        abort();
    int64_t sec, nsec;
    if (sscanf(since, "%" SCNd64 ".%9" SCNd64, &sec, &nsec) != 2 ||
        sec * 1000000000 + nsec != r->last_nano)
        abort();
}

static void parse_line(transcript *t, const char *line, size_t len)
{
    char *copy = malloc(len ? len : 1), *err = NULL;
    mw__docker_event ev;

    if (!copy)
        abort();
    memcpy(copy, line, len);
    mw_code rc = mw__docker_event_parse(copy, len, &ev, &err);
    if (rc == MW_OK) {
        if (err)
            abort();
        check_event(&ev);
        check_resume(&t->resume, &ev);
    } else if (rc == MW_EPARSE) {
        if (!err || ev.root || ev.action)
            abort(); /* says why, holds nothing */
    } else if (rc != MW_ENOMEM) {
        abort();
    }
    mw__docker_event_free(&ev);
    free(err);
    free(copy);
}

static mw_code on_line(void *ud, const char *line, size_t len, const char *err)
{
    transcript *t = ud;
    unsigned char kind = line ? 'L' : 'E';

    t->hash = mw__hash(t->hash, &kind, 1);
    if (!line) {
        if (!err || !err[0])
            abort();
        t->errors++;
        t->hash = mw__hash(t->hash, err, strlen(err));
        return MW_OK;
    }
    if (err || line[len] != '\0' || len > t->cap || memchr(line, '\n', len) ||
        (len > 0 && line[0] == 0x1E))
        abort();
    t->lines++;
    t->hash = mw__hash(t->hash, &len, sizeof len);
    t->hash = mw__hash(t->hash, line, len);
    if (t->parse)
        parse_line(t, line, len);
    return MW_OK;
}

static void feed(mw__docker_lines *s, transcript *t, const char *p, size_t n)
{
    if (mw__docker_lines_feed(s, p, n, on_line, t) != MW_OK)
        abort(); /* the callback never stops it; no OOM below 1 MiB */
}

/* Feeds `n` bytes at once (seed 0) or in chunks of 0 to 15 bytes whose
 * sizes come from `seed`, then ends the stream. */
static void run(transcript *t, const char *p, size_t n, unsigned seed)
{
    mw__docker_lines s;

    mw__docker_lines_init(&s, t->cap);
    if (seed == 0)
        feed(&s, t, p, n);
    for (size_t off = 0, k; seed && off < n; off += k) {
        seed = seed * 1103515245u + 12345u;
        k = (seed >> 16) & 15;
        if (k > n - off)
            k = n - off;
        feed(&s, t, p + off, k);
    }
    if (mw__docker_lines_finish(&s, on_line, t) != MW_OK)
        abort();
    mw__docker_lines_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t caps[] = {64, 512, 4096, MW_DOCKER_LINE_MAX};

    if (size < 1)
        return 0;
    size_t cap = caps[data[0] & 3];
    const char *stream = (const char *)data + 1;
    size_t n = size - 1;
    transcript whole = {.hash = MW_HASH_INIT, .cap = cap, .parse = 1};
    transcript cut = {.hash = MW_HASH_INIT, .cap = cap};

    mw__docker_resume_init(&whole.resume);
    run(&whole, stream, n, 0);
    run(&cut, stream, n, (unsigned)data[0] | 0x100u);
    if (whole.hash != cut.hash || whole.lines != cut.lines || whole.errors != cut.errors)
        abort(); /* the chunking changed what was reported */
    return 0;
}
