/*
 * mini_httpd.h - a small HTTP/1.1 and line-echo server for tests and
 * benchmarks, run in-process on its own thread: one epoll loop, non-
 * blocking sockets, keep-alive, delayed answers kept in a min-heap, so
 * that 10,000 connections waiting on a slow answer cost one thread.
 *
 * HTTP on 127.0.0.1 (and on a unix socket in a temp dir):
 *   /ok                 200 "ok\n"
 *   /delay/<ms>         200 "slow\n" after <ms> milliseconds
 *   /hang               never answers (the connection is kept until the
 *                       client closes it)
 *   /status/<n>         status n, body "status <n>\n"
 *   /bytes/<n>          n bytes of 'x'
 *   /redirect?to=<url>  302 with Location: <url>
 *   /headers            the request's headers as the body; the response
 *                       carries "X-Multi: a" and "X-Multi: b"
 *   /body               the request's body echoed back
 *   anything else       404
 * Echo on another 127.0.0.1 port: each line comes back as it was sent;
 * "BYE\n" answers "bye\n" and closes; "SILENT\n" is never answered.
 *
 * Ownership: the server owns its thread, sockets and temp dir; stop it
 * with mw__mhd_stop(), which joins the thread and removes the dir.
 */
#ifndef MW_MINI_HTTPD_H
#define MW_MINI_HTTPD_H

#include <stddef.h>

typedef struct mw__mhd mw__mhd;

typedef struct mw__mhd_stats {
    unsigned long accepted;    /* connections accepted */
    unsigned long closed;      /* connections closed (by either side) */
    unsigned long requests;    /* HTTP requests read */
    unsigned long open;        /* connections open now */
    unsigned long max_open;    /* most connections open at once */
    unsigned long max_delayed; /* most /delay requests waiting at once */
    unsigned long hung_gone;   /* /hang and SILENT connections the client closed */
} mw__mhd_stats;

/* Starts the server; NULL on failure (message on stderr). */
mw__mhd *mw__mhd_start(void);
void mw__mhd_stop(mw__mhd *s);

int mw__mhd_port(const mw__mhd *s);
int mw__mhd_echo_port(const mw__mhd *s);
const char *mw__mhd_unix_path(const mw__mhd *s);

/* A consistent copy of the counters. */
void mw__mhd_stats_get(mw__mhd *s, mw__mhd_stats *out);

/* Request number `n` (0 is the first; stats' `requests` counts them) as
 * "METHOD target" into buf; -1 when not yet made or no longer kept
 * (the last 64 are). */
int mw__mhd_request(mw__mhd *s, unsigned long n, char *buf, size_t size);

#endif
