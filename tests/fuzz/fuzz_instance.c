/*
 * fuzz_instance.c - libFuzzer target: a check-instance config as JSON
 * through parameter parsing, the instance id and canonical JSON.
 *
 * Properties: parsing either succeeds with sane parameters or names the
 * bad field; the canonical form is a fixed point (canonical of the
 * reparsed canonical is itself), which is what keeps instance ids stable
 * across reloads; the id of the reparsed canonical equals the original's.
 */
#include "core/base/json.h"
#include "core/pipeline/instance.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_params(const cJSON *inst, const cJSON *init)
{
    mw__instance_defaults d = {15, 10, (size_t)16 << 20};
    mw__instance_params p;
    char *err = NULL;
    if (mw__instance_params_parse(inst, init, &d, &p, &err) != 0) {
        if (!err)
            abort();
        free(err);
        return;
    }
    if (!(p.interval >= 1) || !(p.timeout > 0) || !isfinite(p.timeout))
        abort();
    for (size_t i = 1; i < p.ntags; i++)
        if (strcmp(p.tags[i - 1], p.tags[i]) >= 0)
            abort(); /* sorted and unique */
    mw__instance_params_free(&p);
}

/* canonical(parse(canonical(j))) == canonical(j), and the same id. */
static void check_canonical(const cJSON *inst, const cJSON *init)
{
    char *c1 = mw__json_canonical(inst);
    if (!c1)
        return;
    cJSON *re = cJSON_Parse(c1);
    if (!re)
        abort(); /* canonical JSON must parse back */
    char *c2 = mw__json_canonical(re);
    if (!c2 || strcmp(c1, c2) != 0)
        abort();
    char *id1 = mw__instance_id("fuzz", init, inst);
    char *id2 = mw__instance_id("fuzz", init, re);
    if (!id1 || !id2 || strcmp(id1, id2) != 0)
        abort();
    free(id1);
    free(id2);
    free(c2);
    cJSON_Delete(re);
    free(c1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root)
        return 0;
    /* {"init_config": ..., "instance": ...} or the instance alone. */
    const cJSON *inst = cJSON_GetObjectItemCaseSensitive(root, "instance");
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(root, "init_config");
    if (!inst)
        inst = root;
    check_params(inst, init);
    check_canonical(inst, init);
    cJSON_Delete(root);
    return 0;
}
