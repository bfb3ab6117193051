/*
 * ecs_boot.h - whether the host rebooted since moonwatch last ran on it
 * (the ECS `reboot` event): the boot id the kernel gives
 * (<procfs>/sys/kernel/random/boot_id, procfs_path) against the one
 * recorded in <state_dir>/boot_id, which is then replaced by this boot's.
 *
 * A state directory that cannot be made, read or written is not an
 * error: the check says why (for one warning) and moonwatch goes on
 * without it. The first run on a host records its boot id and says
 * nothing else.
 *
 * Ownership: a mw__ecs_boot is the caller's; its warning is freed by
 * mw__ecs_boot_clear(). Nothing here keeps state between calls.
 */
#ifndef MW_ECS_BOOT_H
#define MW_ECS_BOOT_H

#include "moonwatch.h"

#define MW_ECS_BOOT_ID_MAX 64

typedef struct mw__ecs_boot {
    char now[MW_ECS_BOOT_ID_MAX];    /* this boot's id; "" when unreadable */
    char before[MW_ECS_BOOT_ID_MAX]; /* the recorded one; "" when none */
    int rebooted;                    /* both known, and they differ */
    char *warning;                   /* why the state was not used; NULL */
} mw__ecs_boot;

/* Reads, compares and records (see above) into `*out`. `procfs` NULL:
 * "/proc". MW_OK (a warning may be set); MW_ENOMEM. */
mw_code mw__ecs_boot_check(const char *procfs, const char *state_dir, mw__ecs_boot *out);
void mw__ecs_boot_clear(mw__ecs_boot *b);

#endif
