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

typedef struct mw__cli_args {
    mw_config *cfg;
    char **rest; /* arguments that are not common options */
    int nrest;
} mw__cli_args;

/* Parses the common options (-c, --checks-dir, --templates-dir,
 * --no-bundled, --log-level, --log-format, --flush-interval, --sink,
 * --hostname, --config-set KEY=VALUE); the others are kept in order in
 * `rest`. MW_OK; after printing the problem, MW_EINVAL (a flag without
 * its value, --set without '=') or what mw_config_load_file() or
 * mw_config_set() returned; MW_ENOMEM. On error `out` is left empty. */
mw_code mw__cli_common(int argc, char **argv, mw__cli_args *out);
void mw__cli_args_free(mw__cli_args *a);

int mw__cmd_run(int argc, char **argv);
int mw__cmd_check(int argc, char **argv);
int mw__cmd_validate(int argc, char **argv);
int mw__cmd_configcheck(int argc, char **argv);
int mw__cmd_status(int argc, char **argv);

#endif
