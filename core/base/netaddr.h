/*
 * netaddr.h - the link-local rule shared by checks' network I/O
 * (core/base/http.c) and ECS discovery (discovery/ecs/ecs_where.c): the
 * addresses where cloud metadata services answer, which label-configured
 * requests must not reach unless the operator allows it.
 *
 * The set: 169.254.0.0/16, fe80::/10, the IPv4-mapped forms of the
 * former (::ffff:169.254.x.y), and fd00:ec2::254 (the EC2 instance
 * metadata service over IPv6).
 *
 * Nothing here keeps state or allocates.
 */
#ifndef MW_NETADDR_H
#define MW_NETADDR_H

/* Whether the address `a` (network order: 4 bytes for AF_INET, 16 for
 * AF_INET6) is in the set; 0 for any other family. */
int mw__link_local(int family, const void *a);

/* Whether `host`, an address literal (dotted IPv4, or IPv6 with or
 * without brackets and with or without a zone, "fe80::1%eth0"), is in
 * the set: 1 it is, 0 it is not, -1 `host` is no address literal (a name,
 * or anything else). Callers that accept other spellings of an address
 * (curl's URL parser turns "2852039166" or "0xA9FEA9FE" into
 * "169.254.169.254") normalize first. When it is in the set, the address
 * as inet_ntop() writes it goes to `out` (`n` bytes, at least
 * INET6_ADDRSTRLEN; NULL: not wanted). */
int mw__link_local_host(const char *host, char *out, unsigned n);

#endif
