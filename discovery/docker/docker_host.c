/*
 * docker_host.c - where the Docker engine is and who we are: DOCKER_HOST
 * values parsed into a base URL and a unix socket path, and our own
 * container id read from /proc (see docker.h). No state, no I/O but the
 * two /proc reads.
 */
#include "discovery/docker/docker.h"

#include "core/base/util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ host parse */

/* Sets `*err` (when not NULL) to the message; returns MW_EINVAL. */
static mw_code fail_str(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static mw_code fail_str(char **err, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        va_start(ap, fmt);
        *err = mw__vsprintf(fmt, ap);
        va_end(ap);
    }
    return MW_EINVAL;
}

static mw_code oom(char **err)
{
    if (err)
        *err = mw__strdup("out of memory");
    return MW_ENOMEM;
}

static mw_code parse_port(const char *s, const char *whole, int *port, char **err)
{
    long v = 0;

    if (*s == '\0')
        return fail_str(err, "DOCKER_HOST '%s': empty port", whole);
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > 65535)
            return fail_str(err, "DOCKER_HOST '%s': bad port '%s'", whole, s);
        v = v * 10 + (*p - '0');
    }
    if (v < 1 || v > 65535)
        return fail_str(err, "DOCKER_HOST '%s': port %ld out of range", whole, v);
    *port = (int)v;
    return MW_OK;
}

static int host_char_ok(char c, int bracketed)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c == '.' || c == '-' || c == '_' || (bracketed && (c == ':' || c == '%'));
}

/* "host", "host:port", "[v6]" or "[v6]:port" (a trailing '/' allowed). */
static mw_code parse_tcp(const char *whole, const char *hp, char **base_url, char **err)
{
    size_t n = strlen(hp);
    char *copy, *host, *port_s = NULL;
    int port = 2375, bracketed = hp[0] == '[';
    mw_code rc;

    if (n > 0 && hp[n - 1] == '/')
        n--;
    copy = mw__strndup(hp, n);
    if (!copy)
        return oom(err);
    if (strpbrk(copy, "/?#@")) {
        rc = fail_str(err, "DOCKER_HOST '%s': unexpected path, query or user after host:port",
                      whole);
        goto out;
    }
    host = copy;
    if (bracketed) {
        char *close = strchr(copy, ']');
        if (!close) {
            rc = fail_str(err, "DOCKER_HOST '%s': missing ']'", whole);
            goto out;
        }
        *close = '\0';
        host = copy + 1;
        if (close[1] == ':')
            port_s = close + 2;
        else if (close[1] != '\0') {
            rc = fail_str(err, "DOCKER_HOST '%s': unexpected text after ']'", whole);
            goto out;
        }
    } else if ((port_s = strchr(copy, ':')) != NULL) {
        *port_s++ = '\0';
    }
    if (*host == '\0') {
        rc = fail_str(err, "DOCKER_HOST '%s': empty host", whole);
        goto out;
    }
    for (const char *p = host; *p; p++)
        if (!host_char_ok(*p, bracketed)) {
            rc =
                fail_str(err, "DOCKER_HOST '%s': unexpected character '%c' in the host", whole, *p);
            goto out;
        }
    if (port_s && (rc = parse_port(port_s, whole, &port, err)) != MW_OK)
        goto out;
    *base_url = bracketed ? mw__sprintf("http://[%s]:%d", host, port)
                          : mw__sprintf("http://%s:%d", host, port);
    rc = *base_url ? MW_OK : oom(err);
out:
    free(copy);
    return rc;
}

mw_code mw__docker_host_parse(const char *host, char **base_url, char **socket_path, char **err)
{
    *base_url = *socket_path = NULL;
    if (err)
        *err = NULL;
    if (!host || !*host)
        return fail_str(err, "DOCKER_HOST is empty");
    if (strncmp(host, "unix://", 7) == 0) {
        const char *path = host + 7;
        if (*path == '\0')
            return fail_str(err, "DOCKER_HOST '%s': no socket path", host);
        if (strlen(path) >= 108)
            return fail_str(err, "DOCKER_HOST '%s': socket path longer than 107 bytes", host);
        *base_url = mw__strdup("http://localhost");
        *socket_path = mw__strdup(path);
        if (*base_url && *socket_path)
            return MW_OK;
        free(*base_url);
        free(*socket_path);
        *base_url = *socket_path = NULL;
        return oom(err);
    }
    if (strncmp(host, "tcp://", 6) == 0)
        return parse_tcp(host, host + 6, base_url, err);
    return fail_str(err, "DOCKER_HOST '%s': unsupported, use unix:///path or tcp://host:port",
                    host);
}

/* ------------------------------------------------------------- own id */

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int hex64_at(const char *p)
{
    for (int i = 0; i < 64; i++)
        if (!is_hex(p[i]))
            return 0;
    return !is_hex(p[64]);
}

int mw__docker_self_id_parse(const char *text, char out[65])
{
    static const char *const markers[] = {"/docker/", "/containers/", "/docker-"};

    if (!text)
        return 0;
    for (size_t m = 0; m < MW_ARRAY_LEN(markers); m++) {
        size_t len = strlen(markers[m]);
        for (const char *p = strstr(text, markers[m]); p; p = strstr(p + 1, markers[m]))
            if (hex64_at(p + len)) {
                memcpy(out, p + len, 64);
                out[64] = '\0';
                return 1;
            }
    }
    return 0;
}

const char *mw__docker_self_id_read(char out[65])
{
    static const char *const files[] = {"/proc/self/cgroup", "/proc/self/mountinfo"};

    out[0] = '\0';
    for (size_t i = 0; i < MW_ARRAY_LEN(files); i++) {
        size_t len;
        char *text = NULL;
        int found = mw__read_file(files[i], 4 << 20, &text, &len) == MW_OK &&
                    mw__docker_self_id_parse(text, out);
        free(text);
        if (found)
            return files[i];
    }
    return NULL;
}
