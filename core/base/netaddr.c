/*
 * netaddr.c - the link-local rule (see netaddr.h).
 */
#include "core/base/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

static int v4_link_local(const unsigned char *a)
{
    return a[0] == 169 && a[1] == 254;
}

static int v6_link_local(const unsigned char *a)
{
    static const unsigned char ec2[16] = {0xfd, 0, 0x0e, 0xc2, 0, 0, 0,    0,
                                          0,    0, 0,    0,    0, 0, 0x02, 0x54};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return 1;
    if (memcmp(a, ec2, sizeof ec2) == 0)
        return 1;
    return memcmp(a, mapped, sizeof mapped) == 0 && v4_link_local(a + 12);
}

int mw__link_local(int family, const void *a)
{
    if (family == AF_INET)
        return v4_link_local(a);
    if (family == AF_INET6)
        return v6_link_local(a);
    return 0;
}

int mw__link_local_host(const char *host, char *out, unsigned n)
{
    char buf[INET6_ADDRSTRLEN + 2];
    unsigned char a[16];
    size_t len = host ? strlen(host) : 0;
    int family = AF_INET;

    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, host, len);
    buf[len] = '\0';
    if (strchr(buf, ':')) {
        family = AF_INET6;
        buf[strcspn(buf, "%")] = '\0'; /* the zone names an interface */
    }
    if (inet_pton(family, buf, a) != 1)
        return -1;
    if (!mw__link_local(family, a))
        return 0;
    if (out && !inet_ntop(family, a, out, (socklen_t)n))
        out[0] = '\0';
    return 1;
}
