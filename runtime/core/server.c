/* server.c — configuration from the environment, reactor threads, signals.
 *
 * Signals belong to one place: the main thread blocks them before starting
 * the reactors (threads inherit the mask) and waits for them with
 * sigwaitinfo. On SIGTERM/SIGINT it posts a shutdown message to every
 * reactor's ring through its own small ring (IORING_OP_MSG_RING): no eventfd,
 * no lock, no shared flag polled on the hot path. */
#include "core_internal.h"
#include <ioxide/log.h>
#include <ioxide/reactor.h>
#include <ioxide/ud.h>
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void iox_reactor_fini(struct iox_reactor *r);

int iox_env_u32(const char *name, uint32_t *out, uint32_t min, uint32_t max, char *why, size_t n)
{
    const char *v = getenv(name);
    if (!v || !*v) return 0;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || x < min || x > max || v[0] == '-') {
        snprintf(why, n, "%s=%s is not a number in [%u, %u]", name, v, min, max);
        return -EINVAL;
    }
    *out = (uint32_t)x;
    return 0;
}

/* IOX_RECV_BUFS=auto|inc|plain: the multishot recv's provided buffers.
 * "bundle" (IORING_RECVSEND_BUNDLE) is named so its refusal says why: a
 * bundle's bytes span several buffers, not adjacent in memory once they
 * are recycled out of order, and every consumer parses one contiguous
 * span per completion. */
static int recv_bufs_from_env(unsigned *out, char *why, size_t n)
{
    const char *v = getenv("IOX_RECV_BUFS");
    if (!v || !*v || !strcmp(v, "auto")) { *out = IOX_RECV_BUFS_AUTO; return 0; }
    if (!strcmp(v, "inc")) { *out = IOX_RECV_BUFS_INC; return 0; }
    if (!strcmp(v, "plain")) { *out = IOX_RECV_BUFS_PLAIN; return 0; }
    if (!strcmp(v, "bundle"))
        snprintf(why, n, "IOX_RECV_BUFS=bundle is not supported: a recv bundle spans several provided buffers "
                 "that are not adjacent in memory and every consumer parses one contiguous span; "
                 "use auto, inc (large buffers filled piecewise) or plain");
    else
        snprintf(why, n, "IOX_RECV_BUFS=%s is not one of auto, inc, plain", v);
    return -EINVAL;
}

int iox_server_config_from_env(struct iox_server_config *cfg, char *why, size_t why_len)
{
    uint32_t reactors = cfg->reactors, pin = cfg->pin < 0 ? 0 : 1;
    int rc = 0;
    rc |= iox_env_u32("REACTORS", &reactors, 1, 1024, why, why_len);
    rc |= iox_env_u32("IOX_PIN", &pin, 0, 1, why, why_len);
    rc |= iox_env_u32("IOX_SHUTDOWN_GRACE_MS", &cfg->shutdown_grace_ms, 0, 60000, why, why_len);
    rc |= iox_env_u32("IOX_RECV_BUFFERS", &cfg->ring.buf_count, 1, 32768, why, why_len);
    rc |= iox_env_u32("IOX_RECV_BUFSIZE", &cfg->ring.buf_size, 64, 1u << 20, why, why_len);
    rc |= iox_env_u32("IOX_SQ_ENTRIES", &cfg->ring.sq_entries, 8, 32768, why, why_len);
    const char *d = getenv("IOX_DIRECT_FDS");
    if (d && *d) {
        if (!strcmp(d, "auto")) cfg->ring.direct_fds = IOX_DIRECT_AUTO;
        else if (!strcmp(d, "on")) cfg->ring.direct_fds = IOX_DIRECT_ON;
        else if (!strcmp(d, "off")) cfg->ring.direct_fds = IOX_DIRECT_OFF;
        else {
            snprintf(why, why_len, "IOX_DIRECT_FDS=%s is not one of auto, on, off", d);
            rc = -EINVAL;
        }
    }
    rc |= recv_bufs_from_env(&cfg->ring.recv_bufs, why, why_len);
    if (rc) return -EINVAL;
    cfg->reactors = reactors;
    cfg->pin = pin ? 1 : -1;
    /* IOX_SHUTDOWN_GRACE_MS=0 means no grace: kept apart from "unset" as
     * UINT32_MAX (idempotent under iox_server_config_defaults). */
    if (getenv("IOX_SHUTDOWN_GRACE_MS") && cfg->shutdown_grace_ms == 0) cfg->shutdown_grace_ms = UINT32_MAX;
    return 0;
}

int iox_listener_config_from_env(struct iox_listener_config *l, char *why, size_t why_len)
{
    uint32_t port = l->port, lowat = l->notsent_lowat;
    int rc = 0;
    rc |= iox_env_u32("PORT", &port, 1, 65535, why, why_len);
    /* 0 turns it off (the kernel's default: no limit). */
    rc |= iox_env_u32("IOX_NOTSENT_LOWAT", &lowat, 0, 1u << 30, why, why_len);
    if (rc) return -EINVAL;
    if (!l->host && getenv("HOST") && *getenv("HOST")) l->host = getenv("HOST");
    l->port = (uint16_t)port;
    l->notsent_lowat = getenv("IOX_NOTSENT_LOWAT") && lowat == 0 ? UINT32_MAX : lowat;
    return 0;
}

/* The documented defaults for what a configuration leaves zero. */
void iox_server_config_defaults(struct iox_server_config *cfg)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (!cfg->reactors) cfg->reactors = ncpu > 0 ? (unsigned)ncpu : 1;
    if (!cfg->pin) cfg->pin = 1;
    if (!cfg->shutdown_grace_ms) cfg->shutdown_grace_ms = 3000;   /* UINT32_MAX: none (see reactor.h) */
}

static void listener_defaults(struct iox_listener_config *l)
{
    if (!l->host || !*l->host) l->host = "0.0.0.0";
    if (!l->port) l->port = 8080;
    if (l->backlog <= 0) l->backlog = 4096;
    if (!l->notsent_lowat) l->notsent_lowat = 128 * 1024;
}

/* ---- startup handshake (startup only: a mutex is fine here) ---- */

struct startup {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned ready, failed;
    int go;                /* 1 serve, -1 abort */
    char why[512];
};

struct server {
    const struct iox_server_config *cfg;
    struct iox_reactor *reactors;
    int *ring_fds;
    _Atomic unsigned running;
    struct startup st;
};

/* "0.0.0.0", "::", "[::1]", "127.0.0.1" → a socket address. */
static int parse_host(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    char buf[64];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof buf) {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = 0;
        host = buf;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *len = sizeof *a4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *len = sizeof *a6;
        return 0;
    }
    return -EINVAL;
}

static int make_listener(const struct iox_listener_config *l, int reuseport, char *why, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (parse_host(l->host, l->port, &ss, &sslen) < 0) {
        snprintf(why, n, "HOST=%s is not an IPv4 or IPv6 address (a literal such as 0.0.0.0, ::, [::1])", l->host);
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(why, n, "socket: %s%s", strerror(e), e == EMFILE ? " — raise `ulimit -n`" : "");
        return -e;
    }
    int one = 1, lowat = (int)l->notsent_lowat;
    /* TCP_NODELAY and TCP_NOTSENT_LOWAT on the listener are inherited by
     * accepted sockets: one setsockopt at startup instead of one per
     * connection. A v6 listener takes v6 only: "::" and "0.0.0.0" are two
     * listeners, as in nginx. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
        (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
        (l->notsent_lowat != UINT32_MAX &&
         setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat) < 0)) {
        int e = errno;
        snprintf(why, n, "setsockopt on the listener %s:%u: %s", l->host, l->port, strerror(e));
        close(fd);
        return -e;
    }
    if (bind(fd, (struct sockaddr *)&ss, sslen) < 0) {
        int e = errno;
        if (e == EADDRINUSE)
            snprintf(why, n, "cannot listen on %s:%u: %s — another process holds the port; stop it or set PORT",
                     l->host, l->port, strerror(e));
        else if (e == EACCES)
            snprintf(why, n, "cannot listen on %s:%u: %s — ports below 1024 need root; set PORT", l->host, l->port, strerror(e));
        else if (e == EADDRNOTAVAIL)
            snprintf(why, n, "cannot listen on %s:%u: %s — no interface has that address; set HOST", l->host, l->port, strerror(e));
        else
            snprintf(why, n, "cannot bind %s:%u: %s", l->host, l->port, strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}

/* listen() on every reactor's sockets, back to back, once all reactors are
 * ready: before that, connections are refused rather than queued on the
 * first listener of the SO_REUSEPORT group (the kernel spreads connections
 * only over sockets that are listening when they arrive). */
static int listen_all(struct iox_reactor *rs, unsigned n, const struct iox_server_config *cfg,
                      char *why, size_t wn)
{
    for (unsigned i = 0; i < n; i++) {
        for (unsigned k = 0; k < cfg->nlisteners; k++) {
            const struct iox_listener_config *l = &cfg->listeners[k];
            if (listen(rs[i].listeners[k].fd, l->backlog) < 0) {
                int e = errno;
                snprintf(why, wn, "listen on %s:%u: %s", l->host, l->port, strerror(e));
                return -e;
            }
        }
    }
    return 0;
}

struct thread_arg { struct server *s; unsigned id; };

static void reactor_loop(struct iox_reactor *r)
{
    for (;;) {
        iox_reactor_flush(r);
        /* Leave only once the accept has ended too: a multishot accept still
         * in the ring holds the listener open after our close(), and the
         * ring's teardown is asynchronous, so the port would stay taken for
         * a moment after exit. */
        if (r->stopping && !iox_reactor_accepting(r) && iox_reactor_kinds_busy(r) == 0) {
            if (!r->counted_out) {
                r->counted_out = 1;
                atomic_fetch_sub(r->running, 1);
            }
            /* Others may still send us messages (hop): serve them until
             * every reactor is done. The tick wakes us to look again. */
            /* ...and until what we sent is delivered. */
            if (atomic_load(r->running) == 0 && iox_reactor_msgs_outstanding(r) == 0) break;
        }
        int rc = iox_reactor_turn(r);
        if (rc < 0) {
            IOX_ERROR("io_uring_submit_and_wait: %s — stopping this reactor", strerror(-rc));
            break;
        }
    }
}

static void *reactor_main(void *arg)
{
    struct thread_arg *ta = arg;
    struct server *s = ta->s;
    struct iox_reactor *r = &s->reactors[ta->id];
    const struct iox_server_config *cfg = s->cfg;
    char tag[16], why[512] = "";
    snprintf(tag, sizeof tag, "r%u", ta->id);
    iox_log_set_thread_tag(tag);
    free(ta);

    int ok = 1;
    if (cfg->pin > 0) {
        /* Reactor i takes the i-th CPU the process may use, so an outer
         * `taskset` (benchmarks, containers) is respected, not overridden. */
        cpu_set_t allowed, set;
        CPU_ZERO(&set);
        if (sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) > 0) {
            unsigned k = r->id % (unsigned)CPU_COUNT(&allowed), seen = 0;
            for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
                if (CPU_ISSET(cpu, &allowed) && seen++ == k) { CPU_SET(cpu, &set); break; }
            int e = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
            if (e) IOX_WARN("cannot pin to a CPU: %s (running unpinned)", strerror(e));
        }
    }
    /* The ring is created here: SINGLE_ISSUER binds it to this thread. */
    struct iox_uring_config rc = cfg->ring;
    if (iox_seam_uring_create(&rc, &r->uring, why, sizeof why) < 0) ok = 0;
    if (ok) {
        r->seam = iox_seam_uring_seam(r->uring);
        r->ring_fd = iox_seam_uring_ring_fd(r->uring);
        s->ring_fds[r->id] = r->ring_fd;
        if (!r->tick_ms) r->tick_ms = 250;
    }
    /* The listeners' protocols first (their tables, their kinds), then the
     * application's hook, which may find them through the protocol's own
     * lookup. Nothing is accepted before the first loop turn. */
    if (ok && iox_reactor_open_protocols(r, why, sizeof why) < 0) ok = 0;
    /* The file table once the protocols said how many connections they
     * hold, before anything is accepted. */
    if (ok && iox_seam_uring_files(r->uring, r->want_conns, why, sizeof why) < 0) ok = 0;
    if (ok && cfg->on_start && cfg->on_start(r, cfg->app_ctx) != 0) {
        snprintf(why, sizeof why, "reactor %u: application start hook failed", r->id);
        ok = 0;
    }
    pthread_mutex_lock(&s->st.mu);
    if (ok) s->st.ready++;
    else if (!s->st.failed++) snprintf(s->st.why, sizeof s->st.why, "%s", why);
    pthread_cond_broadcast(&s->st.cv);
    while (!s->st.go) pthread_cond_wait(&s->st.cv, &s->st.mu);
    int go = s->st.go;
    pthread_mutex_unlock(&s->st.mu);

    if (ok && go > 0) {
        reactor_loop(r);
        IOX_DEBUG("loop ended: %llu accepted, %llu stale CQEs",
                  (unsigned long long)r->n_accepted, (unsigned long long)r->n_stale_cqes);
    }
    if (ok && cfg->on_stop) cfg->on_stop(r, cfg->app_ctx);
    iox_reactor_fini(r);
    iox_seam_uring_destroy(r->uring);
    r->uring = NULL;
    return NULL;
}

/* Post a payload-less message (IOX_MSG_SHUTDOWN, IOX_MSG_HUP) to every
 * reactor through a ring of our own. */
static int broadcast(struct server *s, struct io_uring *ctl, uint32_t kind)
{
    for (unsigned i = 0; i < s->cfg->reactors; i++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(ctl);
        if (!sqe) { io_uring_submit(ctl); sqe = io_uring_get_sqe(ctl); }
        if (!sqe) return -EBUSY;
        io_uring_prep_msg_ring(sqe, s->ring_fds[i], kind, iox_ud_ptr(IOX_OP_MSG, NULL), 0);
        io_uring_sqe_set_data64(sqe, i);
    }
    int r = io_uring_submit_and_wait(ctl, s->cfg->reactors);
    if (r < 0) return r;
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(ctl, &cqe) == 0) {
        if (cqe->res < 0)
            IOX_ERROR("message %u to reactor %llu: %s", kind, (unsigned long long)cqe->user_data, strerror(-cqe->res));
        io_uring_cqe_seen(ctl, cqe);
    }
    return 0;
}

int iox_server_run(const struct iox_server_config *cfg_in)
{
    struct server s;
    memset(&s, 0, sizeof s);
    char why[512];
    /* Our own copy with the documented defaults in every zero field: a
     * zeroed configuration means what the header says it means. */
    struct iox_server_config c = *cfg_in;
    const struct iox_server_config *cfg = &c;
    iox_server_config_defaults(&c);
    if (c.nlisteners == 0 || !c.listeners) {
        fprintf(stderr, "ioxide: no listener configured — set iox_server_config.listeners, each with "
                        "its protocol in .proto (or use a protocol's one-call server)\n");
        return 1;
    }
    if (c.nlisteners > IOX_MAX_LISTENERS) {
        fprintf(stderr, "ioxide: %u listeners configured; at most %u\n", c.nlisteners, IOX_MAX_LISTENERS);
        return 1;
    }
    struct iox_listener_config ls[IOX_MAX_LISTENERS];
    for (unsigned k = 0; k < c.nlisteners; k++) {
        ls[k] = cfg_in->listeners[k];
        listener_defaults(&ls[k]);
        if (!ls[k].proto || !ls[k].proto->open || !ls[k].proto->on_accept) {
            fprintf(stderr, "ioxide: listener %u (%s:%u) has no protocol — set its .proto\n", k, ls[k].host, ls[k].port);
            return 1;
        }
    }
    c.listeners = ls;
    s.cfg = cfg;
    pthread_mutex_init(&s.st.mu, NULL);
    pthread_cond_init(&s.st.cv, NULL);

    /* A plain bind first: with SO_REUSEPORT alone a second server of the
     * same user would silently share the port instead of failing. */
    for (unsigned k = 0; k < c.nlisteners; k++) {
        int probe = make_listener(&ls[k], 0, why, sizeof why);
        if (probe < 0) {
            fprintf(stderr, "ioxide: %s\n", why);
            return 1;
        }
        close(probe);
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    s.reactors = calloc(cfg->reactors, sizeof *s.reactors);
    s.ring_fds = calloc(cfg->reactors, sizeof *s.ring_fds);
    if (!s.reactors || !s.ring_fds) { fprintf(stderr, "ioxide: out of memory\n"); return 1; }
    unsigned started = 0;
    atomic_store(&s.running, cfg->reactors);
    for (unsigned i = 0; i < cfg->reactors; i++) {
        struct iox_reactor *r = &s.reactors[i];
        r->id = i;
        r->nreactors = cfg->reactors;
        r->peer_ring_fds = s.ring_fds;
        r->running = &s.running;
        if (reactor_alloc_public(r, cfg) < 0 || iox_reactor_msgs_init(r) < 0) {
            fprintf(stderr, "ioxide: out of memory for the reactors\n");
            return 1;
        }
        /* Bound now (a taken port fails before any thread starts); listening
         * only once every reactor is ready, see listen_all(). */
        for (unsigned k = 0; k < c.nlisteners; k++) {
            r->listeners[k].fd = make_listener(&ls[k], 1, why, sizeof why);
            if (r->listeners[k].fd < 0) {
                fprintf(stderr, "ioxide: %s\n", why);
                for (unsigned j = 0; j <= i; j++)
                    for (unsigned q = 0; q < c.nlisteners; q++)
                        if (s.reactors[j].listeners && s.reactors[j].listeners[q].fd >= 0) close(s.reactors[j].listeners[q].fd);
                return 1;
            }
        }
    }
    for (unsigned i = 0; i < cfg->reactors; i++) {
        struct iox_reactor *r = &s.reactors[i];
        struct thread_arg *ta = malloc(sizeof *ta);
        if (!ta) { snprintf(s.st.why, sizeof s.st.why, "out of memory"); s.st.failed++; break; }
        ta->s = &s;
        ta->id = i;
        int e = pthread_create(&r->thread, NULL, reactor_main, ta);
        if (e) {
            free(ta);
            snprintf(s.st.why, sizeof s.st.why, "pthread_create: %s", strerror(e));
            s.st.failed++;
            break;
        }
        started++;
    }
    pthread_mutex_lock(&s.st.mu);
    while (s.st.ready + s.st.failed < cfg->reactors && s.st.ready + s.st.failed < started + (started < cfg->reactors))
        pthread_cond_wait(&s.st.cv, &s.st.mu);
    if (!s.st.failed && listen_all(s.reactors, cfg->reactors, cfg, s.st.why, sizeof s.st.why) < 0)
        s.st.failed++;
    s.st.go = s.st.failed ? -1 : 1;
    pthread_cond_broadcast(&s.st.cv);
    pthread_mutex_unlock(&s.st.mu);

    int status = 0;
    if (s.st.failed) {
        fprintf(stderr, "ioxide: %s\n", s.st.why);
        status = 1;
    } else {
        for (unsigned k = 0; k < c.nlisteners; k++)
            IOX_INFO("listening on %s:%u (%s) with %u reactor%s", ls[k].host, ls[k].port, ls[k].proto->name,
                     cfg->reactors, cfg->reactors == 1 ? "" : "s");
        struct io_uring ctl;
        int rc = io_uring_queue_init(8, &ctl, 0);
        if (rc < 0) {
            fprintf(stderr, "ioxide: control ring: %s\n", strerror(-rc));
            status = 1;
        }
        for (;;) {
            siginfo_t si;
            int sig = sigwaitinfo(&set, &si);
            if (sig < 0) {
                if (errno == EINTR) continue;
                IOX_ERROR("sigwaitinfo: %s", strerror(errno));
                break;
            }
            if (sig == SIGHUP) {
                /* Every reactor hears it (kinds reopen their log files),
                 * after the application's own hook. */
                if (cfg->on_sighup) cfg->on_sighup(cfg->app_ctx);
                if (rc == 0 && broadcast(&s, &ctl, IOX_MSG_HUP) < 0)
                    IOX_WARN("SIGHUP: cannot notify the reactors (log files are not reopened); "
                             "snapshots are picked up on their own");
                continue;
            }
            IOX_INFO("%s: stopping (grace %u ms)", sig == SIGINT ? "SIGINT" : "SIGTERM",
                     cfg->shutdown_grace_ms == UINT32_MAX ? 0 : cfg->shutdown_grace_ms);
            if (rc == 0 && broadcast(&s, &ctl, IOX_MSG_SHUTDOWN) < 0) status = 1;
            break;
        }
        if (rc == 0) io_uring_queue_exit(&ctl);
    }
    for (unsigned i = 0; i < started; i++) pthread_join(s.reactors[i].thread, NULL);
    if (!status) IOX_INFO("stopped");
    free(s.reactors);
    free(s.ring_fds);
    return status;
}
