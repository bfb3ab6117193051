/*
 * fuzz_template.c - libFuzzer target: YAML text through the template
 * loader (libyaml events -> cJSON tree -> template validation).
 *
 * The loader only takes files, so each input is written to a memfd and
 * loaded through /proc/self/fd/N: no temporary file is left behind, and
 * the name ends in a `<check>.d/conf.yaml` shape the loader accepts. The
 * same bytes also go through mw__yaml_parse() directly, which must agree
 * with the file path on success or failure.
 */
#include "core/base/yaml.h"
#include "discovery/template.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes `data` into a fresh memfd; -1 on error. */
static int memfd_with(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_template", 0);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    return fd;
}

/* Every template the loader keeps must have the shape template.h
 * promises. */
static void check_set(const mw__template_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        const mw__template *t = &set->v[i];
        if (!t->check || !t->file || !cJSON_IsObject(t->init_config) ||
            !cJSON_IsArray(t->instances) || (cJSON_GetArraySize(t->instances) < 1 && !t->idle))
            abort();
        if (t->ad_identifiers && !cJSON_IsArray(t->ad_identifiers))
            abort();
        const cJSON *inst;
        cJSON_ArrayForEach(inst, t->instances) if (!cJSON_IsObject(inst)) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mw__diag diag = {0};
    mw__yaml_doc doc = {0};
    mw_code parsed = mw__yaml_parse((const char *)data, size, "fuzz.yaml", &doc, &diag);
    if (parsed != MW_OK && diag.n == 0)
        abort(); /* a failure must say why */
    mw__yaml_doc_free(&doc);

    int fd = memfd_with(data, size);
    if (fd < 0)
        goto out;
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    mw__template_set set = {0};
    size_t before = diag.n;
    mw_code rc = mw__template_load_file(&set, path, "fuzz", &diag);
    if (rc != MW_OK && diag.n == before)
        abort();
    if (parsed != MW_OK && rc == MW_OK)
        abort(); /* the file path parsed what the buffer path refused */
    check_set(&set);
    mw__template_set_finish(&set);
    mw__template_set_free(&set);
    close(fd);
out:
    mw__diag_free(&diag);
    return 0;
}
