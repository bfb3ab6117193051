/*
 * test_config.c - the key table, the environment (MW_<KEY>, DD_*), the
 * origin each value records and the masking of secrets: the precedence
 * the CLI builds by applying file, then environment, then flags.
 */
#include "core/config.h"

#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int key_row(const char *key)
{
    for (size_t i = 0; i < mw__config_nkeys(); i++)
        if (!strcmp(mw__config_key_at(i)->key, key))
            return (int)i;
    return -1;
}

/* The shown value of `key` into buf, its origin into *origin. */
static const char *shown(const mw_config *c, const char *key, const char **origin, char *buf,
                         size_t n)
{
    char *v = mw__config_show(c, (size_t)key_row(key), origin);
    snprintf(buf, n, "%s", v ? v : "(null)");
    free(v);
    return buf;
}

static char *write_file(const char *text)
{
    char *path = strdup("/tmp/mw_test_config_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        abort();
    close(fd);
    return path;
}

static void test_table(void)
{
    CHECK(mw__config_nkeys() > 40);
    CHECK(key_row("api_key") >= 0);
    CHECK(mw__config_key_at(mw__config_nkeys()) == NULL);
    for (size_t i = 0; i < mw__config_nkeys(); i++) {
        const mw__config_key *k = mw__config_key_at(i);
        mw_config *c = mw_config_new();
        /* every non-empty default is a value its setter takes */
        if (k->def[0] && strcmp(k->key, "checks_dir") && strcmp(k->key, "templates_dir"))
            CHECK(mw_config_set(c, k->key, k->def, NULL) == MW_OK);
        mw_config_free(c);
    }
}

static void test_precedence(void)
{
    char buf[256], *err = NULL;
    const char *origin = NULL;
    char *path = write_file("flush_interval: 3\nhostname: from-file\nlog_level: warn\n"
                            "site: file.example\n");
    char *envp[] = {"MW_FLUSH_INTERVAL=7",
                    "DD_HOSTNAME=dd-host",
                    "DD_LOG_LEVEL=TRACE",
                    "MW_SITE=env.example",
                    "DD_SITE=dd.example",
                    "PATH=/bin",
                    NULL};
    mw_config *c = mw_config_new();
    mw__diag notes = {0};

    CHECK_STR(shown(c, "flush_interval", &origin, buf, sizeof buf), "15");
    CHECK_STR(origin, "default");
    CHECK(mw_config_load_file(c, path, &err) == MW_OK);
    CHECK_STR(shown(c, "flush_interval", &origin, buf, sizeof buf), "3");
    char want[128];
    snprintf(want, sizeof want, "file:%s:1", path);
    CHECK_STR(origin, want);
    CHECK(mw__config_apply_env(c, envp, &notes, &err) == MW_OK);
    CHECK(notes.n == 0);
    /* environment over file */
    CHECK_NEAR(c->flush_interval, 7, 1e-9);
    CHECK_STR(shown(c, "flush_interval", &origin, buf, sizeof buf), "7");
    CHECK_STR(origin, "env:MW_FLUSH_INTERVAL");
    CHECK_STR(c->hostname, "dd-host");
    CHECK_STR(shown(c, "hostname", &origin, buf, sizeof buf), "dd-host");
    CHECK_STR(origin, "env:DD_HOSTNAME");
    CHECK(c->log_level == MW_LOG_DEBUG); /* Datadog's trace */
    /* MW_ over DD_ */
    CHECK_STR(c->site, "env.example");
    CHECK_STR(shown(c, "site", &origin, buf, sizeof buf), "env.example");
    CHECK_STR(origin, "env:MW_SITE");
    /* flags over the environment */
    CHECK(mw__config_set_from(c, "flush_interval", "0.5", "flag:--set", &err) == MW_OK);
    CHECK_STR(shown(c, "flush_interval", &origin, buf, sizeof buf), "0.5");
    CHECK_STR(origin, "flag:--set");
    /* a copy keeps them */
    mw_config *d = mw__config_dup(c);
    CHECK(d != NULL);
    CHECK_STR(shown(d, "flush_interval", &origin, buf, sizeof buf), "0.5");
    CHECK_STR(origin, "flag:--set");
    mw_config_free(d);
    mw_config_free(c);
    mw__diag_free(&notes);
    unlink(path);
    free(path);
}

static void test_lists(void)
{
    char buf[256], *err = NULL;
    const char *origin = NULL;
    char *envp[] = {"DD_CONTAINER_INCLUDE=name:web image:nginx", "MW_CHECKS_DIRS=/a,/b",
                    "MW_CONTAINER_EXCLUDE=name:x{1,2}", NULL};
    mw_config *c = mw_config_new();
    CHECK(mw_config_set(c, "container_include", "name:db", NULL) == MW_OK);
    CHECK(mw__config_apply_env(c, envp, NULL, &err) == MW_OK);
    CHECK_STR(c->container_include, "name:db name:web image:nginx");
    CHECK_STR(shown(c, "container_include", &origin, buf, sizeof buf),
              "name:db, name:web image:nginx");
    CHECK_STR(origin, "api + env:DD_CONTAINER_INCLUDE");
    CHECK(c->checks_dirs.n == 2);
    CHECK_STR(c->container_exclude, "name:x{1,2}"); /* a regex's comma is no separator */
    mw_config_free(c);
}

static void test_env_errors(void)
{
    char *err = NULL;
    char *typo[] = {"MW_FLUSH_INTRVAL=3", "MW_lower=1", "MWX=1", NULL};
    char *bad[] = {"MW_FLUSH_INTERVAL=soon", NULL};
    char *bad_dd[] = {"DD_LOG_LEVEL=loud", NULL};
    mw__diag notes = {0};
    mw_config *c = mw_config_new();
    CHECK(mw__config_apply_env(c, typo, &notes, &err) == MW_OK);
    CHECK(notes.n == 1); /* only the one that looks like a key */
    CHECK(notes.n == 1 && strstr(notes.items[0], "MW_FLUSH_INTRVAL") != NULL);
    CHECK(mw__config_apply_env(c, bad, NULL, &err) == MW_EINVAL);
    CHECK(err && strstr(err, "$MW_FLUSH_INTERVAL") != NULL);
    free(err);
    err = NULL;
    CHECK(mw__config_apply_env(c, bad_dd, NULL, &err) == MW_EINVAL);
    CHECK(err && strstr(err, "$DD_LOG_LEVEL") != NULL);
    free(err);
    mw__diag_free(&notes);
    mw_config_free(c);
}

static void test_masking(void)
{
    char buf[256];
    const char *origin = NULL;
    char *envp[] = {"DD_API_KEY=0123456789abcdefWXYZ", NULL};
    mw_config *c = mw_config_new();
    CHECK(mw__config_apply_env(c, envp, NULL, NULL) == MW_OK);
    CHECK_STR(c->api_key, "0123456789abcdefWXYZ");
    CHECK_STR(shown(c, "api_key", &origin, buf, sizeof buf), "***WXYZ");
    CHECK_STR(origin, "env:DD_API_KEY");
    CHECK(mw_config_set(c, "api_key", "short", NULL) == MW_OK);
    CHECK_STR(shown(c, "api_key", &origin, buf, sizeof buf), "***");
    CHECK(mw_config_set(c, "dd_url", "https://user:hunter2@intake.example/x", NULL) == MW_OK);
    CHECK_STR(shown(c, "dd_url", &origin, buf, sizeof buf), "https://user:***@intake.example/x");
    CHECK(mw_config_set(c, "dd_url", "https://intake.example/a@b", NULL) == MW_OK);
    CHECK_STR(shown(c, "dd_url", &origin, buf, sizeof buf), "https://intake.example/a@b");
    char *m = mw__config_mask("abcdefghijkl");
    CHECK_STR(m, "***ijkl");
    free(m);
    mw_config_free(c);
}

int main(void)
{
    test_table();
    test_precedence();
    test_lists();
    test_env_errors();
    test_masking();
    return TEST_RESULT();
}
