/*
 * config_cmd.c - `moonwatch config` (and `run --print-config`): the
 * effective configuration, each key with its value and origin, secrets
 * masked (`--json`: one object, key: {value, origin}); `config --list-keys` prints the key table
 * (key, default, note) for the tests that keep deploy/moonwatch.yaml and the README in step.
 */
#include "core/cli/cli.h"

#include "core/config.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mw__cli_print_config(const mw_config *cfg, FILE *f)
{
    for (size_t i = 0; i < mw__config_nkeys(); i++) {
        const char *origin = "default";
        char *v = mw__config_show(cfg, i, &origin);
        const mw__config_key *k = mw__config_key_at(i);
        if (v && !*v && k->note && !strcmp(origin, "default"))
            fprintf(f, "%-26s %-24s (%s: %s)\n", k->key, "\"\"", origin, k->note);
        else
            fprintf(f, "%-26s %-24s (%s)\n", k->key, !v ? "?" : *v ? v : "\"\"", origin);
        free(v);
    }
}

/* The same as one JSON object: {"key": {"value": "...", "origin": "..."}}. */
static int print_config_json(const mw_config *cfg, FILE *f)
{
    cJSON *doc = cJSON_CreateObject(), *o;
    char *text = NULL;
    int ok = doc != NULL;
    for (size_t i = 0; ok && i < mw__config_nkeys(); i++) {
        const char *origin = "default";
        char *v = mw__config_show(cfg, i, &origin);
        ok = v && (o = cJSON_AddObjectToObject(doc, mw__config_key_at(i)->key)) &&
             cJSON_AddStringToObject(o, "value", v) && cJSON_AddStringToObject(o, "origin", origin);
        free(v);
    }
    if (ok && (text = cJSON_PrintUnformatted(doc)))
        fprintf(f, "%s\n", text);
    cJSON_free(text);
    cJSON_Delete(doc);
    return text ? 0 : 1;
}

/* What kind of key: "secret", "list" or "value". */
static const char *kind(const mw__config_key *k)
{
    return k->flags & MW_KEY_SECRET ? "secret" : k->flags & MW_KEY_LIST ? "list" : "value";
}

/* key<TAB>default<TAB>MW_ name<TAB>kind<TAB>note, one line per key; ""
 * for no default, - for no note. */
static void list_keys(FILE *f)
{
    for (size_t i = 0; i < mw__config_nkeys(); i++) {
        const mw__config_key *k = mw__config_key_at(i);
        fprintf(f, "%s\t%s\tMW_", k->key, k->def[0] ? k->def : "\"\"");
        for (const char *p = k->key; *p; p++)
            fputc(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p, f);
        fprintf(f, "\t%s\t%s\n", kind(k), k->note ? k->note : "-");
    }
}

int mw__cmd_config(int argc, char **argv)
{
    mw__cli_args a;
    int rc = 2;
    if (mw__cli_common(argc, argv, &a) != MW_OK)
        return 2;
    mw__cli_say_notes(&a, NULL);
    if (a.nrest == 1 && !strcmp(a.rest[0], "--list-keys")) {
        list_keys(stdout);
        rc = 0;
    } else if (a.nrest == 1 && !strcmp(a.rest[0], "--json")) {
        rc = print_config_json(a.cfg, stdout);
    } else if (a.nrest == 0) {
        mw__cli_print_config(a.cfg, stdout);
        rc = 0;
    } else {
        fprintf(stderr, "usage: moonwatch config [-c FILE] [--set KEY=VALUE]... "
                        "[--json | --list-keys]\n");
    }
    mw__cli_args_free(&a);
    return rc;
}
