/*
 * cli.h - the moonwatch commands (run, check, validate, configcheck, status)
 * behind main().
 *
 * Each command takes its own argv (after the command name) and returns the
 * process exit status (not a mw_code). Options common to every command are parsed by
 * mw__cli_common() into a mw_config the caller owns.
 */
#ifndef MW_CLI_H
#define MW_CLI_H

#include "moonwatch.h"
#include "core/base/diag.h"
#include "core/base/log.h"

#include <stdio.h>

typedef struct mw__cli_args {
    mw_config *cfg;
    char **rest; /* arguments that are not common options */
    int nrest;
    mw__diag notes; /* warnings about the environment (an unknown MW_ name) */
} mw__cli_args;

/* Parses the common options (-c, --checks-dir, --templates-dir,
 * --no-bundled, --log-level, --log-format, --flush-interval, --sink,
 * --hostname, --set KEY=VALUE); the others are kept in order in
 * `rest`. Precedence: flags > environment (MW_<KEY>, DD_*) > -c files >
 * defaults. MW_OK; after printing the problem, MW_EINVAL (a flag without
 * its value, --set without '=') or what mw_config_load_file() or
 * mw_config_set() returned; MW_ENOMEM. On error `out` is left empty. */
mw_code mw__cli_common(int argc, char **argv, mw__cli_args *out);
void mw__cli_args_free(mw__cli_args *a);

/* The notes of mw__cli_common() as warnings: to `log`, else stderr. */
void mw__cli_say_notes(mw__cli_args *a, const mw__log *log);

int mw__cmd_run(int argc, char **argv);
int mw__cmd_check(int argc, char **argv);
int mw__cmd_validate(int argc, char **argv);
int mw__cmd_configcheck(int argc, char **argv);
int mw__cmd_status(int argc, char **argv);
int mw__cmd_config(int argc, char **argv);

/* Every key of the effective config with its value (secrets masked) and
 * origin, one per line. */
void mw__cli_print_config(const mw_config *cfg, FILE *f);

#endif
