/*
 * bench_check_io.c - checks' non-blocking I/O under load, against
 * mini_httpd run as a separate process (its sockets and CPU are not
 * counted here).
 *
 *   bench_check_io slow [N [DELAY_MS [CHECK]]]
 *       N (10,000) instances of the bundled http_check against a server
 *       that answers after DELAY_MS (1,000): the wall time of a round of
 *       all of them (every run started at once, until the last one
 *       finished), the process's CPU time, RSS, and how many reported
 *       http.can_connect OK. Two rounds: the first is every instance's
 *       first run (init() reads the options, the aggregator makes the
 *       contexts), the second is the steady state. Goal: a round in
 *       <= 1.5 s on 2 cores. CHECK "trivial" runs the trivial check below
 *       instead.
 *   bench_check_io fast [SECONDS [CONCURRENCY...]]
 *       a trivial HTTP check (one GET of /ok, one gauge) run again as
 *       soon as its run ends, by 1, 8 and 64 instances at once: runs/s
 *       and CPU per run; then curl in a shell loop doing the same
 *       requests one after the other, as the floor reference.
 *
 * The engine runs started (its own control thread and one worker per
 * core); this thread only starts runs and watches counters.
 */
#include "moonwatch.h"
#include "bench.h"
#include "core/engine.h"
#include "core/base/util.h"

#include <curl/curl.h>
#include <libgen.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#ifndef BENCH_POLL_US
#define BENCH_POLL_US 1000
#endif
static pid_t server_pid;
static int http_port;
static char tmp[64];

/* Starts mini_httpd (next to this program's directory) and reads its
 * port. Exits on failure. */
static void start_server(const char *argv0)
{
    char self[PATH_MAX], bin[PATH_MAX + 32], ports[128];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        perror("readlink");
        exit(1);
    }
    self[n] = '\0';
    snprintf(bin, sizeof bin, "%s/../mini_httpd", dirname(self));
    snprintf(ports, sizeof ports, "%s/ports", tmp);
    server_pid = fork();
    if (server_pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execl(bin, "mini_httpd", "--port-file", ports, (char *)NULL);
        perror(bin);
        _exit(127);
    }
    for (int i = 0; i < 200 && !http_port; i++) {
        FILE *f = fopen(ports, "r");
        if (f) {
            if (fscanf(f, "http %d", &http_port) != 1)
                http_port = 0;
            fclose(f);
        }
        if (!http_port)
            usleep(10000);
    }
    if (!http_port) {
        fprintf(stderr, "%s: mini_httpd did not start (%s)\n", argv0, bin);
        exit(1);
    }
}

static void stop_server(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
}

typedef struct counts {
    unsigned long can_connect_ok, can_connect_other;
    double *diag[3]; /* t.begin, t.elapsed, t.end of each run (BENCH_DIAG) */
    size_t ndiag[3];
} counts;

static void count_records(const mw_record *r, void *ud)
{
    counts *c = ud;
    static const char *const names[3] = {"t.begin.max", "t.elapsed.max", "t.end.max"};
    for (int i = 0; i < 3 && r->type == MW_RECORD_METRIC; i++) {
        if (strcmp(r->name, names[i]) == 0 && c->diag[i]) {
            c->diag[i][c->ndiag[i]++] = r->value;
        }
    }
    if (r->type == MW_RECORD_SERVICE_CHECK && strcmp(r->name, "http.can_connect") == 0) {
        if (r->status == MW_STATUS_OK)
            c->can_connect_ok++;
        else
            c->can_connect_other++;
    }
}

static mw_engine *new_engine(const char *checks_dir)
{
    mw_config *cfg = mw_config_new();
    mw_config_set(cfg, "histogram_percentiles", "0.01,0.5,0.9,0.99", NULL);
    mw_config_set(cfg, "sink", "none", NULL);
    mw_config_set(cfg, "log_level", "error", NULL);
    mw_config_set(cfg, "flush_interval", "3600", NULL);
    mw_config_set(cfg, "docker", "off", NULL);
    if (getenv("BENCH_WORKERS"))
        mw_config_set(cfg, "workers", getenv("BENCH_WORKERS"), NULL);
    if (checks_dir)
        mw_config_set(cfg, "checks_dir", checks_dir, NULL);
    char *err = NULL;
    mw_engine *eng = NULL;
    mw_code rc = mw_engine_new(cfg, &eng, &err);
    mw_config_free(cfg);
    if (rc != MW_OK) {
        fprintf(stderr, "engine: %s\n", err ? err : mw_strerror(rc));
        exit(1);
    }
    return eng;
}

/* Schedules one instance; its id is copied into `ids[i]`. */
static void schedule(mw_engine *eng, const char *check, const char *json, char **id_out)
{
    cJSON *inst = cJSON_Parse(json);
    const char *id = NULL;
    char *err = NULL;
    if (!inst || mw__engine_schedule(eng, check, "bench", inst, NULL, &id, &err) != MW_OK) {
        fprintf(stderr, "schedule %s: %s\n", check, err ? err : "bad json");
        exit(1);
    }
    *id_out = mw__strdup(id);
    cJSON_Delete(inst);
    free(err);
}

static uint64_t total_runs(mw_engine *eng)
{
    mw_engine_stats st = {.size = sizeof(mw_engine_stats)};
    mw_engine_stats_get(eng, &st);
    return st.runs;
}

/* ------------------------------------------------------------- slow */

typedef struct round_result {
    double wall, started, cpu, rss_peak;
    uint64_t done;
} round_result;

/* Starts a run of every instance at once and waits for the last one. */
static void one_round(mw_engine *eng, mw__sched *s, char **ids, int n, round_result *out)
{
    uint64_t runs0 = total_runs(eng);
    double cpu0 = bench_cpu_seconds(), t0 = mw__mono();
    for (int i = 0; i < n; i++)
        mw__sched_run_now(s, ids[i]);
    out->started = mw__mono() - t0;
    out->rss_peak = bench_rss_kib();
    /* runs in progress is a sum of counters; the total of runs walks every
     * instance, so it is only asked once nothing runs */
    for (unsigned k = 1; !(mw__sched_running(s) == 0 && total_runs(eng) >= runs0 + (uint64_t)n) &&
                         mw__mono() - t0 < 120;
         k++) {
        usleep(BENCH_POLL_US);
        double r = k % 20 ? 0 : bench_rss_kib();
        if (r > out->rss_peak)
            out->rss_peak = r;
    }
    out->wall = mw__mono() - t0;
    out->cpu = bench_cpu_seconds() - cpu0;
    out->done = total_runs(eng) - runs0;
}

static void write_trivial(void);

/* `check`: http_check, or "trivial" (one GET, one gauge: the I/O path
 * without http_check's own work). */
static int bench_slow(int n, int delay_ms, const char *check)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/checks", tmp);
    write_trivial();
    mw_engine *eng = new_engine(dir);
    /* no timers: every run of the round is one this thread starts */
    mw__sched_set_manual(mw__engine_sched(eng), 1);
    counts c = {0};
    mw_engine_add_sink(eng, count_records, &c);
    char **ids = calloc((size_t)n, sizeof *ids);
    char json[256];
    double t0 = mw__mono(), base = t0;
    int diag = getenv("BENCH_DIAG") && strcmp(check, "trivial") == 0;
    for (int i = 0; i < 3 && diag; i++)
        c.diag[i] = calloc((size_t)n + 1, sizeof(double));
    for (int i = 0; i < n; i++) {
        snprintf(json, sizeof json,
                 "{\"name\":\"b%d\",\"url\":\"http://127.0.0.1:%d/delay/%d?i=%d\","
                 "\"timeout\":30,\"min_collection_interval\":3600,\"diag\":%.6f}",
                 i, http_port, delay_ms, i, diag ? base : 0.0);
        schedule(eng, check, json, &ids[i]);
    }
    double sched_s = mw__mono() - t0;
    double rss_idle = bench_rss_kib();
    mw_engine_stats st = {.size = sizeof(mw_engine_stats)};
    mw_engine_stats_get(eng, &st);
    if (mw_engine_start(eng) != MW_OK) {
        fprintf(stderr, "cannot start the engine\n");
        return 1;
    }
    mw__sched *s = mw__engine_sched(eng);
    round_result r1, r2;
    fprintf(stderr, "bench_check_io: %d instances scheduled, rounds begin\n", n);
    one_round(eng, s, ids, n, &r1);
    mw_engine_flush(eng); /* the counts below are the second round's */
    c.can_connect_ok = c.can_connect_other = 0;
    for (int i = 0; i < 3; i++)
        c.ndiag[i] = 0;
    t0 = mw__mono();
    one_round(eng, s, ids, n, &r2);
    mw_engine_stop(eng);
    mw_engine_flush(eng);
    printf("%s x %d against a server answering after %d ms (%u workers):\n", check, n, delay_ms,
           (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    printf("  scheduled in %.2f s (sandboxes made), RSS %.1f MiB, Lua %.1f MiB\n", sched_s,
           rss_idle / 1024, (double)st.lua_bytes / 1048576.0);
    const round_result *rr[2] = {&r1, &r2};
    for (int i = 0; i < 2; i++)
        printf("  %s round: %.3f s wall (all started in %.3f s), %.2f s CPU, %llu runs done, peak "
               "RSS %.1f MiB\n",
               i ? "second" : "first", rr[i]->wall, rr[i]->started, rr[i]->cpu,
               (unsigned long long)rr[i]->done, rr[i]->rss_peak / 1024);
    uint64_t done = r2.done;
    printf("  second round: http.can_connect OK %lu, other %lu\n", c.can_connect_ok,
           c.can_connect_other);
    static const char *const what[3] = {"run started", "request took", "run ended"};
    for (int i = 0; i < 3 && diag; i++) {
        size_t k = c.ndiag[i];
        qsort(c.diag[i], k, sizeof(double), bench_cmp_double);
        if (k)
            printf("  %-12s min %.3f  p50 %.3f  p90 %.3f  max %.3f s%s\n", what[i],
                   c.diag[i][0] - (i != 1 ? t0 - base : 0),
                   c.diag[i][k / 2] - (i != 1 ? t0 - base : 0),
                   c.diag[i][k * 9 / 10] - (i != 1 ? t0 - base : 0),
                   c.diag[i][k - 1] - (i != 1 ? t0 - base : 0),
                   i != 1 ? " after the round began" : "");
        free(c.diag[i]);
    }
    for (int i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    mw_engine_free(eng);
    if (strcmp(check, "http_check") != 0)
        return done == (uint64_t)n ? 0 : 1;
    return done == (uint64_t)n && c.can_connect_ok == (unsigned long)n ? 0 : 1;
}

/* ------------------------------------------------------------- fast */

/* Runs `k` instances of the trivial check back to back for `secs`:
 * returns runs/s, CPU seconds per run in `*cpu_per_run`. */
static double closed_loop(int k, double secs, double *cpu_per_run)
{
    char dir[128], json[256];
    snprintf(dir, sizeof dir, "%s/checks", tmp);
    mw_engine *eng = new_engine(dir);
    mw__sched_set_manual(mw__engine_sched(eng), 1);
    char **ids = calloc((size_t)k, sizeof *ids);
    uint64_t *seen = calloc((size_t)k, sizeof *seen);
    for (int i = 0; i < k; i++) {
        snprintf(json, sizeof json,
                 "{\"url\":\"http://127.0.0.1:%d/ok\",\"n\":%d,\"min_collection_interval\":3600}",
                 http_port, i);
        schedule(eng, "trivial", json, &ids[i]);
    }
    mw_engine_start(eng);
    mw__sched *s = mw__engine_sched(eng);
    mw_instance_stats is = {.size = sizeof(mw_instance_stats)};
    for (int i = 0; i < k; i++) {
        mw_engine_instance_stats(eng, ids[i], &is);
        seen[i] = is.runs;
        mw__sched_run_now(s, ids[i]);
    }
    double t0 = mw__mono(), cpu0 = bench_cpu_seconds();
    uint64_t runs = 0;
    while (mw__mono() - t0 < secs) {
        for (int i = 0; i < k; i++) {
            mw_engine_instance_stats(eng, ids[i], &is);
            if (is.runs > seen[i]) {
                runs += is.runs - seen[i];
                seen[i] = is.runs;
                mw__sched_run_now(s, ids[i]);
            }
        }
        if (k > 1)
            usleep(50);
    }
    double wall = mw__mono() - t0, cpu = bench_cpu_seconds() - cpu0;
    mw_engine_stop(eng);
    mw_engine_stats st = {.size = sizeof(mw_engine_stats)};
    mw_engine_stats_get(eng, &st);
    if (st.errors)
        fprintf(stderr, "  (%llu failed runs)\n", (unsigned long long)st.errors);
    for (int i = 0; i < k; i++)
        free(ids[i]);
    free(ids);
    free(seen);
    mw_engine_free(eng);
    *cpu_per_run = runs ? cpu / (double)runs : 0;
    return (double)runs / wall;
}

/* curl in a shell loop: requests/s and CPU per request (the children's). */
static double curl_loop(int count, double *cpu_per_req)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "i=0; while [ $i -lt %d ]; do curl -s -o /dev/null http://127.0.0.1:%d/ok || exit 1;"
             " i=$((i+1)); done",
             count, http_port);
    struct rusage before, after;
    getrusage(RUSAGE_CHILDREN, &before);
    double t0 = mw__mono();
    int rc = system(cmd);
    double wall = mw__mono() - t0;
    getrusage(RUSAGE_CHILDREN, &after);
    double cpu = (double)(after.ru_utime.tv_sec - before.ru_utime.tv_sec) +
                 (double)(after.ru_utime.tv_usec - before.ru_utime.tv_usec) / 1e6 +
                 (double)(after.ru_stime.tv_sec - before.ru_stime.tv_sec) +
                 (double)(after.ru_stime.tv_usec - before.ru_stime.tv_usec) / 1e6;
    if (rc != 0)
        fprintf(stderr, "  curl loop failed (%d)\n", rc);
    *cpu_per_req = cpu / count;
    return count / wall;
}

static void write_trivial(void)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/checks", tmp);
    mkdir(dir, 0755);
    bench_put(dir, "trivial.lua",
              "return { run = function(self)\n"
              "  local t0 = mw.time()\n"
              "  local r, err = mw.http.get(self.instance.url)\n"
              "  if not r then error(err) end\n"
              "  mw.gauge('trivial.status', r.status)\n"
              "  if self.instance.diag then\n"
              "    mw.histogram('t.begin', t0 - self.instance.diag)\n"
              "    mw.histogram('t.elapsed', r.elapsed)\n"
              "    mw.histogram('t.end', mw.time() - self.instance.diag)\n"
              "  end\n"
              "end }\n");
}

static int bench_fast(double secs, const int *conc, int nconc)
{
    write_trivial();
    printf("trivial HTTP check (GET /ok, one gauge), each instance run again as soon as it "
           "ends, %.0f s each:\n",
           secs);
    for (int i = 0; i < nconc; i++) {
        double cpr, rps = closed_loop(conc[i], secs, &cpr);
        printf("  %3d at once: %8.0f runs/s, %6.1f us CPU per run\n", conc[i], rps, cpr * 1e6);
    }
    double cpr, rps = curl_loop(300, &cpr);
    printf("  curl in a shell loop (floor reference, one after the other): %6.0f requests/s, "
           "%6.1f us CPU per request\n",
           rps, cpr * 1e6);
    return 0;
}

/* ------------------------------------------------------------- curl */

#define FLOOR_CAP    128 /* transfers per multi handle: the engine's DRV_CAP */
#define FLOOR_ROUNDS 2   /* as `slow`: the first runs, then the steady state */

typedef struct floor_sock floor_sock;

typedef struct floor_multi {
    CURLM *multi;
    int ep;            /* its thread's epoll set */
    floor_sock **dead; /* its thread's sockets to free after their events */
    double due;        /* curl's timeout, monotonic seconds; < 0: none */
    int touched;       /* had an event: its finished transfers are read */
} floor_multi;

/* A socket curl watches; freed once the events read with it are done
 * (curl may close one socket while handling another's event). */
struct floor_sock {
    floor_multi *fm;
    curl_socket_t fd;
    floor_sock *next_dead; /* on the dead list once curl is done with it */
};

typedef struct floor_thread {
    pthread_t thr;
    int ep, first, count, nmulti, delay_ms;
    floor_multi *m;
    struct curl_slist *headers;
    pthread_barrier_t *go, *done;
    double end;     /* when its round's last transfer finished */
    int ok, failed; /* transfers of the round answered 200, or not */
    floor_sock *dead;
} floor_thread;

static uint32_t floor_events(int what)
{
    return (what == CURL_POLL_IN || what == CURL_POLL_INOUT ? EPOLLIN : 0) |
           (what == CURL_POLL_OUT || what == CURL_POLL_INOUT ? EPOLLOUT : 0);
}

static int floor_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp)
{
    (void)e;
    floor_multi *fm = ud;
    floor_sock *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            epoll_ctl(fm->ep, EPOLL_CTL_DEL, fd, NULL);
            s->fm = NULL;
            s->next_dead = *fm->dead;
            *fm->dead = s;
        }
        return 0;
    }
    struct epoll_event ev = {.events = floor_events(what)};
    if (!s) {
        if (!(s = malloc(sizeof *s)))
            return -1;
        s->fm = fm;
        s->fd = fd;
        ev.data.ptr = s;
        curl_multi_assign(fm->multi, fd, s);
        return epoll_ctl(fm->ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -1;
    }
    ev.data.ptr = s;
    return epoll_ctl(fm->ep, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -1;
}

static int floor_timer(CURLM *multi, long ms, void *ud)
{
    (void)multi;
    floor_multi *fm = ud;
    fm->due = ms < 0 ? -1 : mw__mono() + (double)ms / 1000.0;
    return 0;
}

static size_t floor_discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* A new easy handle for request `i`, set up as the engine sets up a
 * check's GET (core/base/http.c: set_common, set_easy). */
static CURL *floor_easy(floor_thread *t, int i, int delay_ms)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/delay/%d?i=%d", http_port, delay_ms, i);
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, floor_discard);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, floor_discard);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "moonwatch/" MW_VERSION);
    curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 1024L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)(10 << 20));
    return e;
}

/* Reads the finished transfers of `fm`; returns how many. */
static int floor_reap(floor_thread *t, floor_multi *fm)
{
    int n = 0, left;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(fm->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        long code = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
        if (msg->data.result == CURLE_OK && code == 200)
            t->ok++;
        else
            t->failed++;
        CURL *e = msg->easy_handle;
        curl_multi_remove_handle(fm->multi, e);
        curl_easy_cleanup(e);
        n++;
    }
    return n;
}

/* Frees the sockets curl is done with (see floor_sock). */
static void floor_free_dead(floor_thread *t)
{
    while (t->dead) {
        floor_sock *s = t->dead;
        t->dead = s->next_dead;
        free(s);
    }
}

static void floor_round(floor_thread *t)
{
    int pending = 0;
    t->ok = t->failed = 0;
    for (int i = 0; i < t->count; i++) {
        CURL *e = floor_easy(t, t->first + i, t->delay_ms);
        if (e && curl_multi_add_handle(t->m[i / FLOOR_CAP].multi, e) == CURLM_OK)
            pending++;
        else {
            curl_easy_cleanup(e);
            t->failed++;
        }
    }
    struct epoll_event evs[256];
    while (pending > 0) {
        double now = mw__mono(), next = -1;
        for (int k = 0; k < t->nmulti; k++)
            if (t->m[k].due >= 0 && (next < 0 || t->m[k].due < next))
                next = t->m[k].due;
        int wait = next < 0 ? 1000 : next <= now ? 0 : (int)((next - now) * 1000) + 1;
        int n = epoll_wait(t->ep, evs, 256, wait);
        int running;
        for (int k = 0; k < n; k++) {
            floor_sock *s = evs[k].data.ptr;
            floor_multi *fm = s->fm;
            if (!fm)
                continue; /* closed while an earlier event was handled */
            int flags = (evs[k].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                        (evs[k].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                        (evs[k].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(fm->multi, s->fd, flags, &running);
            fm->touched = 1;
        }
        now = mw__mono();
        for (int k = 0; k < t->nmulti; k++) {
            floor_multi *fm = &t->m[k];
            if (fm->due >= 0 && fm->due <= now) {
                fm->due = -1;
                curl_multi_socket_action(fm->multi, CURL_SOCKET_TIMEOUT, 0, &running);
                fm->touched = 1;
            }
            if (fm->touched) {
                fm->touched = 0;
                pending -= floor_reap(t, fm);
            }
        }
        floor_free_dead(t);
    }
    t->end = mw__mono();
}

static void *floor_main(void *arg)
{
    floor_thread *t = arg;
    for (int r = 0; r < FLOOR_ROUNDS; r++) {
        pthread_barrier_wait(t->go);
        floor_round(t);
        pthread_barrier_wait(t->done);
    }
    return NULL;
}

static int floor_thread_init(floor_thread *t, int first, int count)
{
    t->first = first;
    t->count = count;
    t->nmulti = (count + FLOOR_CAP - 1) / FLOOR_CAP;
    t->m = calloc((size_t)t->nmulti + 1, sizeof *t->m);
    t->ep = -1;
    t->headers = curl_slist_append(NULL, "Expect:");
    if ((t->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || !t->m || !t->headers)
        return -1;
    for (int k = 0; k < t->nmulti; k++) {
        floor_multi *fm = &t->m[k];
        fm->due = -1;
        fm->ep = t->ep;
        fm->dead = &t->dead;
        if (!(fm->multi = curl_multi_init()))
            return -1;
        curl_multi_setopt(fm->multi, CURLMOPT_SOCKETFUNCTION, floor_socket);
        curl_multi_setopt(fm->multi, CURLMOPT_SOCKETDATA, (void *)fm);
        curl_multi_setopt(fm->multi, CURLMOPT_TIMERFUNCTION, floor_timer);
        curl_multi_setopt(fm->multi, CURLMOPT_TIMERDATA, (void *)fm);
        curl_multi_setopt(fm->multi, CURLMOPT_MAXCONNECTS, (long)FLOOR_CAP);
    }
    return 0;
}

static void floor_thread_free(floor_thread *t)
{
    for (int k = 0; t->m && k < t->nmulti; k++)
        curl_multi_cleanup(t->m[k].multi);
    floor_free_dead(t); /* the idle connections' sockets, closed by the cleanup */
    free(t->m);
    curl_slist_free_all(t->headers);
    if (t->ep >= 0)
        close(t->ep);
}

static int bench_curl(int n, int delay_ms)
{
    int nt = (int)sysconf(_SC_NPROCESSORS_ONLN), rc = 0;
    if (nt < 1)
        nt = 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    floor_thread *t = calloc((size_t)nt, sizeof *t);
    pthread_barrier_t go, done;
    pthread_barrier_init(&go, NULL, (unsigned)nt + 1);
    pthread_barrier_init(&done, NULL, (unsigned)nt + 1);
    for (int i = 0; i < nt; i++) {
        int first = n * i / nt, count = n * (i + 1) / nt - first;
        t[i].go = &go;
        t[i].done = &done;
        t[i].delay_ms = delay_ms;
        if (floor_thread_init(&t[i], first, count) != 0 ||
            pthread_create(&t[i].thr, NULL, floor_main, &t[i]) != 0) {
            fprintf(stderr, "bench_check_io: cannot set up curl thread %d\n", i);
            exit(1);
        }
    }
    printf("libcurl alone x %d against a server answering after %d ms (%d threads, no engine, "
           "no Lua):\n",
           n, delay_ms, nt);
    for (int r = 0; r < FLOOR_ROUNDS; r++) {
        double cpu0 = bench_cpu_seconds(), t0 = mw__mono(), end = t0;
        int ok = 0, failed = 0;
        pthread_barrier_wait(&go);
        pthread_barrier_wait(&done);
        for (int i = 0; i < nt; i++) {
            end = t[i].end > end ? t[i].end : end;
            ok += t[i].ok;
            failed += t[i].failed;
        }
        printf("  %s round: %.3f s wall, %.2f s CPU, %d answered 200, %d not, RSS %.1f MiB\n",
               r ? "second" : "first", end - t0, bench_cpu_seconds() - cpu0, ok, failed,
               bench_rss_kib() / 1024);
        rc |= ok != n;
    }
    for (int i = 0; i < nt; i++) {
        pthread_join(t[i].thr, NULL);
        floor_thread_free(&t[i]);
    }
    free(t);
    pthread_barrier_destroy(&go);
    pthread_barrier_destroy(&done);
    curl_global_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "all";
    snprintf(tmp, sizeof tmp, "/tmp/mw-bench-io-XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    start_server(argv[0]);
    int rc = 0;
    if (!strcmp(mode, "slow") || !strcmp(mode, "all")) {
        int n = argc > 2 && !strcmp(mode, "slow") ? atoi(argv[2]) : 10000;
        int delay = argc > 3 && !strcmp(mode, "slow") ? atoi(argv[3]) : 1000;
        const char *check = argc > 4 && !strcmp(mode, "slow") ? argv[4] : "http_check";
        rc |= bench_slow(n, delay, check);
    }
    if (!strcmp(mode, "curl") || !strcmp(mode, "all")) {
        int n = argc > 2 && !strcmp(mode, "curl") ? atoi(argv[2]) : 10000;
        int delay = argc > 3 && !strcmp(mode, "curl") ? atoi(argv[3]) : 1000;
        rc |= bench_curl(n, delay);
    }
    if (!strcmp(mode, "fast") || !strcmp(mode, "all")) {
        double secs = argc > 2 && !strcmp(mode, "fast") ? atof(argv[2]) : 5;
        int conc[8] = {1, 8, 64}, nconc = 3;
        if (argc > 3 && !strcmp(mode, "fast")) {
            nconc = 0;
            for (int i = 3; i < argc && nconc < 8; i++)
                conc[nconc++] = atoi(argv[i]);
        }
        rc |= bench_fast(secs, conc, nconc);
    }
    stop_server();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmp);
    return rc;
}
