/*
 * json_pick.h - parse only the members of a JSON document that a reader
 * asks for: the others are checked and stepped over without building
 * anything. For large documents of which a few fields are read (a
 * container inspect, a container list), it saves most of the parse's
 * allocations and its cJSON_Delete.
 *
 * A pick is a list of member names, each with the pick of its value or
 * NULL for the whole value. Where the value of a member with a pick is an
 * object, only its picked members are kept; where it is an array, its
 * elements are picked alike; any other value is kept whole, so that a
 * reader still sees (and names) a field of the wrong type. "*" picks
 * every member of an object.
 *
 * Ownership: the returned tree is the caller's (cJSON_Delete); the text
 * and the pick are borrowed. Nothing here holds state.
 */
#ifndef MW_JSON_PICK_H
#define MW_JSON_PICK_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct mw__json_pick {
    const char *key;                   /* a member name, "*" for all; NULL ends */
    const struct mw__json_pick *value; /* what of its value; NULL: all of it */
} mw__json_pick;

/*
 * Parses the JSON value at the start of `text` (`len` bytes, no NUL
 * needed; what follows the value is ignored, as cJSON_ParseWithLength
 * does) keeping what `pick` names. NULL when the text is not JSON, nests
 * deeper than cJSON allows, or on OOM. The members kept are those
 * cJSON_ParseWithLength would have built, in their order (repeated keys
 * included).
 */
cJSON *mw__json_pick_parse(const char *text, size_t len, const mw__json_pick *pick);

#endif
