/*
 * mini_proxy.h - a small HTTP forward proxy for tests, run in-process on
 * its own thread on 127.0.0.1, that records every request it receives.
 *
 * It never sends anything off loopback:
 *   GET http://127.x.y.z:port/path (or [::1], or localhost)
 *                      forwarded to that loopback address (one request
 *                      per connection), the answer relayed back
 *   any other absolute-form request (169.254.169.254, a name, ...)
 *                      answered by the proxy itself: 200 "canned by
 *                      mini_proxy\n", nothing is connected to
 *   CONNECT host:port  recorded, answered 403 (it tunnels nothing)
 *   anything else      400
 * Every connection is closed after its one answer ("Connection: close").
 *
 * Ownership: the proxy owns its thread and sockets; stop it with
 * mw__mproxy_stop(), which joins the thread.
 */
#ifndef MW_MINI_PROXY_H
#define MW_MINI_PROXY_H

#include <stddef.h>

typedef struct mw__mproxy mw__mproxy;

/* Starts the proxy; NULL on failure (message on stderr). */
mw__mproxy *mw__mproxy_start(void);
void mw__mproxy_stop(mw__mproxy *p);

int mw__mproxy_port(const mw__mproxy *p);

/* Requests received so far (each "METHOD target", as sent: "GET
 * http://169.254.169.254/ HTTP/1.1" is "GET http://169.254.169.254/"). */
size_t mw__mproxy_count(mw__mproxy *p);
/* Copies request `i` (from 0) into `out`; 0, or -1 when there is none. */
int mw__mproxy_request(mw__mproxy *p, size_t i, char *out, size_t n);
/* Whether a request received so far contains `needle` (a host, say). */
int mw__mproxy_saw(mw__mproxy *p, const char *needle);
/* Forgets the requests received so far. */
void mw__mproxy_clear(mw__mproxy *p);

#endif
