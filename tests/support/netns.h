/*
 * netns.h - moves a test into a network namespace of its own with only
 * loopback up, so that nothing it does can send a packet off this
 * machine: not a broken link-local refusal, not a DNS query. Needs root
 * (CAP_SYS_ADMIN); call it first, before any thread or socket exists.
 */
#ifndef MW_TEST_NETNS_H
#define MW_TEST_NETNS_H

#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* 1 when isolated, 0 when not allowed (not root). */
static inline int t_isolate_network(void)
{
    if (unshare(CLONE_NEWNET) != 0)
        return 0;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    int ok = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP;
    ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

#endif
