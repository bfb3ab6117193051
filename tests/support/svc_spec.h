/*
 * svc_spec.h - services for tests, described in a compact JSON spec with
 * single quotes standing for double quotes, so that each test states
 * exactly what the container has:
 *
 *   {'cid':..., 'name':..., 'image':..., 'image_long':..., 'image_short':...,
 *    'image_tag':..., 'labels':{}, 'env':{}, 'nets':[[name, ip, ip6]],
 *    'host_network':true, 'ports':[[n, proto, name?]], 'pid':n,
 *    'hostname':..., 'tags':[...], 'extra':{}, 'origin':'task_metadata'}
 *
 * Absent fields get defaults: a redis:7 container named "web" with id
 * MW_TEST_CID, and no `extra` (NULL) unless given. The service is the caller's, freed with
 * mw__service_free().
 */
#ifndef MW_TEST_SVC_SPEC_H
#define MW_TEST_SVC_SPEC_H

#include "discovery/service.h"

#include <cjson/cJSON.h>

#define MW_TEST_CID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* Parses a spec (single quotes for double); NULL, said on stderr, when
 * it is not JSON. The tree is the caller's. */
cJSON *mw__test_spec_parse(const char *spec);

/* The service a spec describes; its digest is left 0. */
mw__service *mw__test_service(const char *spec);

#endif
