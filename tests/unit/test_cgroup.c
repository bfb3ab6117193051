/*
 * test_cgroup.c - a container's numbers from the fixture cgroup trees
 * (tests/fixtures/cgroup/v1 and v2, laid out as a host's /proc and
 * /sys/fs/cgroup): the cgroup found from the pid or from the id in each
 * runtime's layout, never from a path the caller gives; every file's
 * numbers in the right unit; limits that mean "none" left out; the
 * interfaces only of a container with a network namespace of its own;
 * and mw.container.stats as a check sees it.
 */
#include "test.h"

#include "core/base/util.h"
#include "lua/cgroup.h"
#include "tests/support/make.h"
#include "tmptree.h"

#include <stdlib.h>
#include <string.h>

/* The containers of the fixtures (sha256 of "fixture-a" ... "fixture-d"). */
#define ID_A "06ada57c26aa5cf429e9f2c0a99e3e4a42daecd45fc4c955d7c1399ab4227ae8"
#define ID_B "e0ef56d6eb603d9ffe87e74c28b8210b0ea93839e2ea4fb64f1fc2c66e95e391"
#define ID_C "39610bca9443fdb6ae772d781954447c0bb23c05bcb2f08e72d6cc5f70209726"
#define ID_D "f6441161b5da9315df77b8a7908bb2ef396e39ae545ae8cf728e8fb74d17294c"

static char v1_proc[512], v1_cg[512], v2_proc[512], v2_cg[512];
static mw__host_paths v1, v2;

static void setup(void)
{
    snprintf(v1_proc, sizeof v1_proc, "%s/cgroup/v1/proc", MW_TEST_FIXTURES);
    snprintf(v1_cg, sizeof v1_cg, "%s/cgroup/v1/sys/fs/cgroup", MW_TEST_FIXTURES);
    snprintf(v2_proc, sizeof v2_proc, "%s/cgroup/v2/proc", MW_TEST_FIXTURES);
    snprintf(v2_cg, sizeof v2_cg, "%s/cgroup/v2/sys/fs/cgroup", MW_TEST_FIXTURES);
    v1 = (mw__host_paths){v1_proc, v1_cg};
    v2 = (mw__host_paths){v2_proc, v2_cg};
}

static int has(const mw__cg_stats *s, enum mw__cg_field f, uint64_t want)
{
    if (!mw__cg_has(s, f)) {
        fprintf(stderr, "field %d unset\n", (int)f);
        return 0;
    }
    if (s->v[f] != want)
        fprintf(stderr, "field %d: %llu, want %llu\n", (int)f, (unsigned long long)s->v[f],
                (unsigned long long)want);
    return s->v[f] == want;
}

static const mw__cg_iface *iface(const mw__cg_stats *s, const char *name)
{
    for (size_t i = 0; i < s->nnet; i++)
        if (strcmp(s->net[i].name, name) == 0)
            return &s->net[i];
    return NULL;
}

/* Every number of container A, whose pid's /proc/<pid>/cgroup names the
 * co-mounted "cpu,cpuacct" hierarchy. */
static void check_v1_a(const mw__cg_stats *s)
{
    CHECK(s->version == 1);
    CHECK(has(s, MW_CG_CPU_USAGE, 5000000000u));     /* cpuacct.usage, ns */
    CHECK(has(s, MW_CG_CPU_USER, 300u * 10000000u)); /* cpuacct.stat, USER_HZ ticks */
    CHECK(has(s, MW_CG_CPU_SYSTEM, 150u * 10000000u));
    CHECK(has(s, MW_CG_CPU_PERIODS, 120));
    CHECK(has(s, MW_CG_CPU_THROTTLED, 7));
    CHECK(has(s, MW_CG_CPU_THROTTLED_NS, 250000000));
    CHECK(has(s, MW_CG_MEM_RSS, 52428800)); /* total_rss, not rss */
    CHECK(has(s, MW_CG_MEM_CACHE, 8388608));
    CHECK(has(s, MW_CG_MEM_SWAP, 1048576));
    CHECK(has(s, MW_CG_MEM_LIMIT, 268435456));
    CHECK(has(s, MW_CG_MEM_SW_LIMIT, 536870912));
    CHECK(has(s, MW_CG_MEM_USAGE, 62914560));
    CHECK(has(s, MW_CG_IO_READ, 1048576 + 524288)); /* both devices */
    CHECK(has(s, MW_CG_IO_WRITE, 4194304 + 65536));
    CHECK(has(s, MW_CG_THREADS, 9));
    CHECK(s->time > 0 && s->time <= mw__mono());
    /* its own network namespace: eth0 and eth1, not lo */
    CHECK(s->own_netns == 1 && s->pid == 4321 && s->nnet == 2);
    const mw__cg_iface *eth0 = iface(s, "eth0");
    CHECK(eth0 && eth0->rx_bytes == 73400320 && eth0->tx_bytes == 2097152);
    CHECK(iface(s, "eth1") && !iface(s, "lo"));
}

static void test_v1(void)
{
    mw__cg_stats s;
    char err[256] = "";
    CHECK(mw__cg_stats_read(&v1, ID_A, 4321, NULL, &s, err, sizeof err) == MW_OK);
    check_v1_a(&s);
    /* Without the pid: found as docker/<id>, its interfaces through the
     * first process of cgroup.procs. */
    CHECK(mw__cg_stats_read(&v1, ID_A, 0, NULL, &s, err, sizeof err) == MW_OK);
    check_v1_a(&s);
    /* A pid that is not the container's any more: found by id instead. */
    CHECK(mw__cg_stats_read(&v1, ID_A, 5555, NULL, &s, err, sizeof err) == MW_OK);
    check_v1_a(&s);
    /* A pid that is gone. */
    CHECK(mw__cg_stats_read(&v1, ID_A, 99999, NULL, &s, err, sizeof err) == MW_OK);
    check_v1_a(&s);

    /* B: systemd's layout; no limit (the kernel's "unlimited" value), no
     * swap accounting, no blkio or pids controller, no process. */
    CHECK(mw__cg_stats_read(&v1, ID_B, 0, NULL, &s, err, sizeof err) == MW_OK);
    CHECK(s.version == 1);
    CHECK(has(&s, MW_CG_CPU_USAGE, 1200000000));
    CHECK(has(&s, MW_CG_CPU_USER, 800000000) && has(&s, MW_CG_CPU_SYSTEM, 400000000));
    CHECK(has(&s, MW_CG_MEM_RSS, 10485760) && has(&s, MW_CG_MEM_USAGE, 11534336));
    CHECK(!mw__cg_has(&s, MW_CG_MEM_LIMIT) && !mw__cg_has(&s, MW_CG_MEM_SW_LIMIT));
    CHECK(!mw__cg_has(&s, MW_CG_IO_READ) && !mw__cg_has(&s, MW_CG_THREADS));
    CHECK(s.own_netns == 0 && s.nnet == 0 && s.pid == 0);
}

static void test_v2(void)
{
    mw__cg_stats s;
    char err[256] = "";
    /* C: its pid sits in a child cgroup (".../docker-<id>.scope/init"):
     * the container's cgroup is the scope. On the host's network: no
     * interfaces. */
    CHECK(mw__cg_stats_read(&v2, ID_C, 6001, NULL, &s, err, sizeof err) == MW_OK);
    CHECK(s.version == 2);
    CHECK(has(&s, MW_CG_CPU_USAGE, 7000000000u)); /* usec to ns */
    CHECK(has(&s, MW_CG_CPU_USER, 4500000000u) && has(&s, MW_CG_CPU_SYSTEM, 2500000000u));
    CHECK(has(&s, MW_CG_CPU_PERIODS, 300) && has(&s, MW_CG_CPU_THROTTLED, 12));
    CHECK(has(&s, MW_CG_CPU_THROTTLED_NS, 600000000));
    CHECK(has(&s, MW_CG_MEM_RSS, 41943040) && has(&s, MW_CG_MEM_CACHE, 16777216));
    CHECK(has(&s, MW_CG_MEM_USAGE, 59768832) && has(&s, MW_CG_MEM_SWAP, 2097152));
    CHECK(has(&s, MW_CG_MEM_LIMIT, 536870912));
    CHECK(has(&s, MW_CG_MEM_SW_LIMIT, 536870912 + 268435456)); /* memory + swap */
    CHECK(has(&s, MW_CG_IO_READ, 3145728 + 1048576) && has(&s, MW_CG_IO_WRITE, 1048576));
    CHECK(has(&s, MW_CG_THREADS, 4));
    CHECK(s.own_netns == 0 && s.nnet == 0);
    /* Without its pid: found in systemd's layout; its own cgroup.procs is
     * empty (the processes are in init/), so no process, no interfaces. */
    CHECK(mw__cg_stats_read(&v2, ID_C, 0, NULL, &s, err, sizeof err) == MW_OK);
    CHECK(has(&s, MW_CG_CPU_USAGE, 7000000000u) && s.pid == 0);

    /* D: an ECS task's container (ecs/<task>/<id>), no limits ("max"), no
     * io.stat, an awsvpc network namespace of its own. */
    CHECK(mw__cg_stats_read(&v2, ID_D, 0, NULL, &s, err, sizeof err) == MW_OK);
    CHECK(has(&s, MW_CG_CPU_USAGE, 250000000) && has(&s, MW_CG_MEM_RSS, 2097152));
    CHECK(!mw__cg_has(&s, MW_CG_MEM_LIMIT) && !mw__cg_has(&s, MW_CG_MEM_SW_LIMIT));
    CHECK(!mw__cg_has(&s, MW_CG_IO_READ) && has(&s, MW_CG_THREADS, 1));
    CHECK(s.own_netns == 1 && s.pid == 7001 && s.nnet == 1);
    CHECK(iface(&s, "eth0") && iface(&s, "eth0")->rx_bytes == 900000 &&
          iface(&s, "eth0")->tx_bytes == 300000);
    /* Its pid seen from a cgroup namespace of its own ("/../.."): that
     * path is refused, the id is looked for instead. */
    CHECK(mw__cg_stats_read(&v2, ID_D, 7002, NULL, &s, err, sizeof err) == MW_OK);
    CHECK(has(&s, MW_CG_CPU_USAGE, 250000000));
}

/* A location found once is read again without looking (the pid's
 * /proc/<pid>/cgroup is not read twice); a different pid or id looks
 * again; a location whose cgroup went away is looked for anew. */
static void test_loc(void)
{
    char dir[128], proc[192], cg[192], cmd[1024], err[256];
    mw__cg_stats s;
    mw__cg_loc loc;
    memset(&loc, 0, sizeof loc);
    tmptree_new(dir, sizeof dir, "mw-cgloc");
    snprintf(cmd, sizeof cmd, "cp -a '%s/cgroup/v2/.' '%s/'", MW_TEST_FIXTURES, dir);
    CHECK(system(cmd) == 0);
    snprintf(proc, sizeof proc, "%s/proc", dir);
    snprintf(cg, sizeof cg, "%s/sys/fs/cgroup", dir);
    mw__host_paths p = {proc, cg};
    CHECK(mw__cg_stats_read(&p, ID_C, 6001, &loc, &s, err, sizeof err) == MW_OK);
    CHECK(loc.version == 2 && loc.pid == 6001 && has(&s, MW_CG_THREADS, 4));
    tmptree_put(dir, "proc/6001/cgroup", "0::/elsewhere\n"); /* not read again */
    CHECK(mw__cg_stats_read(&p, ID_C, 6001, &loc, &s, err, sizeof err) == MW_OK);
    CHECK(has(&s, MW_CG_THREADS, 4) && has(&s, MW_CG_MEM_LIMIT, 536870912));
    /* another pid: looked for, by that pid then by the id */
    CHECK(mw__cg_stats_read(&p, ID_C, 6002, &loc, &s, err, sizeof err) == MW_OK);
    CHECK(loc.pid == 6002 && has(&s, MW_CG_THREADS, 4));
    /* D, by id, with its interfaces; then C again */
    CHECK(mw__cg_stats_read(&p, ID_D, 0, &loc, &s, err, sizeof err) == MW_OK);
    CHECK(loc.own_netns == 1 && loc.proc == 7001 && s.nnet == 1);
    CHECK(mw__cg_stats_read(&p, ID_D, 0, &loc, &s, err, sizeof err) == MW_OK);
    CHECK(s.nnet == 1 && has(&s, MW_CG_CPU_USAGE, 250000000));
    /* 30 interfaces, net/dev longer than one short read: read to its end */
    char dev[8192] = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n";
    for (int i = 0; i < 30; i++)
        snprintf(dev + strlen(dev), sizeof dev - strlen(dev),
                 "  veth%-2d: %12d %8d 0 0 0 0 0 0 %12d %8d 0 0 0 0 0 0\n", i, 1000 + i, i,
                 2000 + i, i);
    CHECK(strlen(dev) > 2048); /* more than one read() */
    tmptree_put(dir, "proc/7001/net/dev", dev);
    CHECK(mw__cg_stats_read(&p, ID_D, 0, &loc, &s, err, sizeof err) == MW_OK);
    CHECK(s.nnet == 30 && iface(&s, "veth29") && iface(&s, "veth29")->tx_bytes == 2029);
    /* D's process is gone (a restart): looked for anew, cgroup.procs says 7003 */
    snprintf(cmd, sizeof cmd, "mv '%s/proc/7001' '%s/proc/7003'", dir, dir);
    CHECK(system(cmd) == 0);
    tmptree_put(dir, "sys/fs/cgroup/ecs/5b1f0c2a9e2d4d6e8b0a7c1d2e3f4a5b/" ID_D "/cgroup.procs",
                "7003\n");
    CHECK(mw__cg_stats_read(&p, ID_D, 0, &loc, &s, err, sizeof err) == MW_OK);
    CHECK(loc.proc == 7003 && s.pid == 7003 && s.nnet == 30);
    /* D's cgroup moves (made anew elsewhere): found there */
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/sys/fs/cgroup/system.slice' && mv "
             "'%s/sys/fs/cgroup/ecs/5b1f0c2a9e2d4d6e8b0a7c1d2e3f4a5b/" ID_D
             "' '%s/sys/fs/cgroup/system.slice/docker-" ID_D ".scope'",
             dir, dir, dir);
    CHECK(system(cmd) == 0);
    CHECK(mw__cg_stats_read(&p, ID_D, 0, &loc, &s, err, sizeof err) == MW_OK);
    CHECK(has(&s, MW_CG_CPU_USAGE, 250000000) && loc.version == 2);
    CHECK(strstr(loc.dirs + loc.off[0], "system.slice/docker-") != NULL);
    /* gone altogether: not found, nothing kept */
    snprintf(cmd, sizeof cmd, "rm -rf '%s/sys/fs/cgroup/system.slice/docker-" ID_D ".scope'", dir);
    CHECK(system(cmd) == 0);
    CHECK(mw__cg_stats_read(&p, ID_D, 0, &loc, &s, err, sizeof err) == MW_ENOTFOUND);
    CHECK(loc.version == 0);
    tmptree_remove(dir);
}

/* The id and pid are all a caller gives: anything else is refused before
 * a file is opened; an unknown container is not found, with why. */
static void test_refused(void)
{
    mw__cg_stats s;
    char err[256];
    const char *bad[] = {
        "",
        "06ada57c26aa",                                                     /* short id */
        ID_A "0",                                                           /* 65 */
        "06ADA57C26AA5CF429E9F2C0A99E3E4A42DAECD45FC4C955D7C1399AB4227AE8", /* upper */
        "../../../../../../../../../../../../../../../../../../../../etc",
        ("docker://" ID_A),
        "06ada57c26aa5cf429e9f2c0a99e3e4a42daecd45fc4c955d7c1399ab4227ae/",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        CHECK(mw__cg_stats_read(&v1, bad[i], 0, NULL, &s, err, sizeof err) == MW_EINVAL);
        CHECK_STR(err, "not a container id");
    }
    CHECK(mw__cg_stats_read(&v1, ID_A, -1, NULL, &s, err, sizeof err) == MW_EINVAL);
    CHECK(mw__cg_stats_read(&v1, ID_A, 4194305, NULL, &s, err, sizeof err) == MW_EINVAL);
    CHECK(mw__cg_stats_read(&v1, ID_C, 0, NULL, &s, err, sizeof err) == MW_ENOTFOUND);
    CHECK(strstr(err, "no cgroup of container 39610bca9443 under ") && strstr(err, v1_cg));
    /* The pid of another container does not lend it its cgroup. */
    CHECK(mw__cg_stats_read(&v2, ID_D, 6001, NULL, &s, err, sizeof err) == MW_OK);
    CHECK(has(&s, MW_CG_CPU_USAGE, 250000000));
}

/* mw.container.stats: the numbers as a table, nil and why for a missing
 * container, an error for an argument that is not an id or a pid. */
static void test_lua(void)
{
    const char *src =
        "local A, C = '" ID_A "', '" ID_C "'\n"
        "return { run = function(self)\n"
        "  local s = assert(mw.container.stats(A, 4321))\n"
        "  assert(s.cgroup == 1 and math.type(s.cpu.usage_ns) == 'integer')\n"
        "  assert(s.cpu.usage_ns == 5000000000 and s.cpu.user_ns == 3000000000)\n"
        "  assert(s.cpu.throttled_periods == 7 and s.cpu.throttled_ns == 250000000)\n"
        "  assert(s.mem.rss == 52428800 and s.mem.limit == 268435456)\n"
        "  assert(s.mem.sw_limit == 536870912 and s.io.read_bytes == 1572864)\n"
        "  assert(s.threads == 9 and s.time <= mw.time())\n"
        "  assert(s.net.eth0.rx_bytes == 73400320 and s.net.lo == nil)\n"
        "  local t, err = mw.container.stats(C)\n"
        "  assert(t == nil and err:find('no cgroup of container 39610bca9443', 1, true), err)\n"
        "  for _, bad in ipairs({'', A:upper(), A .. '0', '../' .. A:sub(4), 42, {}}) do\n"
        "    local ok, e = pcall(mw.container.stats, bad)\n"
        "    assert(not ok and e:find('container id', 1, true), tostring(bad))\n"
        "  end\n"
        "  for _, pid in ipairs({0, -1, 1.5, '4321', 4194305}) do\n"
        "    local ok, e = pcall(mw.container.stats, A, pid)\n"
        "    assert(not ok and e:find('a process id', 1, true), tostring(pid))\n"
        "  end\n"
        "  assert(not pcall(function() mw.container.stats = nil end))\n"
        "end }";
    mw__sandbox_opts o = {
        .check = "docker",
        .check_id = "docker:1",
        .script = src,
        .script_len = strlen(src),
        .paths = &v1,
    };
    char *err = NULL;
    mw__sandbox *sb = mw__sandbox_new(&o, &err);
    CHECK(sb != NULL);
    if (!sb) {
        fprintf(stderr, "%s\n", err);
        free(err);
        return;
    }
    mw__budget *b = t_budget(1, 0.002);
    mw__sandbox_begin(sb, mw__mono() + 5);
    mw__run_status st;
    while ((st = mw__sandbox_resume(sb, mw__budget_slot_get(b, 0))) == MW_RUN_PREEMPTED)
        ;
    CHECK(st == MW_RUN_OK);
    if (st != MW_RUN_OK)
        fprintf(stderr, "run: %s\n", mw__sandbox_error(sb));
    mw__sandbox_free(sb);
    mw__budget_free(b);
}

int main(void)
{
    setup();
    test_v1();
    test_v2();
    test_refused();
    test_loc();
    test_lua();
    return TEST_RESULT();
}
