/* pg_conn.c — the actions and guards of the pg_conn machine
 * (spec/machines/pg_conn.toml): one PostgreSQL session on the ring. The pool (pg_pool.c) turns completions
 * into events and owns the request slots; see ioxide/pg.h for the model.
 *
 * Read buffer: one per connection, plain recv into [rlen, rcap). Messages
 * are parsed in place; the DataRows of the query being answered stay in the
 * buffer until its ReadyForQuery ([keep, rpos)), and the result's cells
 * point at them. The buffer is compacted (and grown, for a message or a
 * result larger than it) only when the recv is re-armed, and the cells are
 * rebased then.
 * Write buffer: two, so a send in flight never sees its buffer move; new
 * messages go to wb[fill] and leave at the end of the loop turn. */
#include "pg_internal.h"
#include "pg_conn_machine.h"
#include <ioxide/log.h>
#include <ioxide/reactor.h>
#include <ioxide/ud.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RBUF_MIN_FREE 2048u
#define RBUF_MAX (1u << 30)

/* The first reason wins: later failures of the same session are echoes. */
__attribute__((format(printf, 4, 5)))
static void set_fail(struct iox_pg_conn *c, int err, const char *sqlstate, const char *fmt, ...)
{
    if (c->fail_err) return;
    c->fail_err = err ? err : -EIO;
    snprintf(c->fail_sqlstate, sizeof c->fail_sqlstate, "%s", sqlstate ? sqlstate : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fail_msg, sizeof c->fail_msg, fmt, ap);
    va_end(ap);
}

void pg_conn_set_fail(struct iox_pg_conn *c, int err, const char *msg)
{
    set_fail(c, err, NULL, "%s", msg);
}

static void copy_str(char *dst, size_t cap, const struct iox_pg_str *s)
{
    if (!s || !s->ptr) { dst[0] = 0; return; }
    size_t n = (size_t)s->len < cap - 1 ? (size_t)s->len : cap - 1;
    memcpy(dst, s->ptr, n);
    dst[n] = 0;
}

/* ---- read buffer ---- */

static void rebase_cells(struct iox_pg_conn *c, const char *old_base, const char *new_base, uint32_t shift)
{
    for (uint32_t i = 0; i < c->ncells; i++)
        if (c->cells[i].ptr) c->cells[i].ptr = new_base + (c->cells[i].ptr - old_base) - shift;
}

int pg_conn_arm_recv(struct iox_pg_conn *c)
{
    if (c->dl.recv_armed || c->dl.fd < 0) return 0;
    uint32_t need = c->need;
    /* With TLS the recv lands in tin and is decrypted into rbuf: keep room
     * for a record already partly received plus this recv's. */
    if (c->tls && need < 2 * PG_TLS_IN) need = 2 * PG_TLS_IN;
    /* Compact: drop what no query needs any more. */
    if (c->keep > 0 && (c->rcap - c->rlen < RBUF_MIN_FREE || c->rcap - c->rlen < need)) {
        uint32_t shift = c->keep;
        memmove(c->rbuf, c->rbuf + shift, c->rlen - shift);
        rebase_cells(c, c->rbuf, c->rbuf, shift);
        c->rlen -= shift; c->rpos -= shift; c->keep = 0;
    }
    if (c->rcap - c->rlen < RBUF_MIN_FREE || c->rcap - c->rlen < need) {
        /* A message (or a result) larger than the buffer: grow. Rare; the
         * buffer keeps its size for the rest of the session. */
        uint64_t cap = c->rcap;
        while (cap - c->rlen < RBUF_MIN_FREE || cap - c->rlen < need) cap *= 2;
        if (cap > RBUF_MAX) {
            set_fail(c, -EMSGSIZE, NULL, "result larger than %u bytes", RBUF_MAX);
            return -EMSGSIZE;
        }
        char *nb = realloc(c->rbuf, cap);
        if (!nb) { set_fail(c, -ENOMEM, NULL, "out of memory growing the read buffer"); return -ENOMEM; }
        rebase_cells(c, c->rbuf, nb, 0);
        c->rbuf = nb;
        c->rcap = (uint32_t)cap;
    }
    int rc = c->tls ? iox_dial_recv(&c->dl, c->tin, PG_TLS_IN)
                    : iox_dial_recv(&c->dl, c->rbuf + c->rlen, c->rcap - c->rlen);
    if (rc < 0) { set_fail(c, rc, NULL, "no SQE for recv: %s", strerror(-rc)); return rc; }
    return 0;
}

/* ---- write side ---- */

static int start_send(struct iox_pg_conn *c)
{
    if (c->dl.send_busy || c->dl.fd < 0) return 0;
    if (!c->wb[c->fill].len && !(c->tls && pg_tls_out_pending(c))) return 0;
    unsigned s = c->fill;
    c->fill ^= 1;
    const char *buf = c->wb[s].buf;
    uint32_t len = (uint32_t)c->wb[s].len;
    if (c->tls) {
        /* The turn's output (or the handshake's) is encrypted here, once. */
        if (pg_tls_seal(c, c->wb[s].buf, c->wb[s].len) < 0) return -EPROTO;
        buf = c->tx.buf;
        len = (uint32_t)c->tx.len;
    }
    int rc = iox_dial_send(&c->dl, buf, len);
    if (rc < 0) { set_fail(c, rc, NULL, "no SQE for send: %s", strerror(-rc)); return rc; }
    return 0;
}

int pg_conn_act_send_out(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    return start_send(c) < 0 ? PG_CONN_EV_FAIL : PG_CONN_EV_NONE;
}

int pg_conn_act_on_sent(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    int rc = iox_dial_sent(&c->dl, ev->res);
    if (rc < 0) { set_fail(c, rc, NULL, "no SQE for send: %s", strerror(-rc)); return PG_CONN_EV_FAIL; }
    if (rc > 0) return PG_CONN_EV_NONE;     /* the rest is on its way */
    c->wb[c->fill ^ 1].len = 0;
    /* What was queued while this send was in flight waits for the end of
     * the turn (the pool's flush): starting it here, in the middle of the
     * turn's completions, sent it without the queries the rest of the turn
     * adds — two small writes instead of one. */
    return PG_CONN_EV_NONE;
}

/* ---- connect ---- */

int pg_conn_act_open_socket(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    struct iox_pg_pool *p = c->pool;
    iox_dial_reset(&c->dl);     /* a new generation: late CQEs of the last session are dropped */
    c->fill = 0;
    c->wb[0].len = c->wb[1].len = 0;
    c->rlen = c->rpos = c->keep = c->need = 0;
    c->ncells = c->nrows = c->ncols = 0;
    c->res_error = c->saw_parse = 0;
    c->tag[0] = 0;
    c->prepared = 0;
    c->sasl = 0;
    c->have_key = 0;
    c->be_pid = c->be_key = 0;
    c->zombies = 0;
    c->cancel_deadline_ms = 0;
    c->fail_err = 0;
    c->fail_msg[0] = c->fail_sqlstate[0] = 0;
    c->was_up = 0;
    c->refused = c->hard = 0;
    c->tls_attempt = c->tls_failed = 0;
    c->hot_standby = c->read_only = -1;
    c->host = c->order[c->at < p->ci.nhosts ? c->at : 0];
    pg_tls_end(c);
    iox_pg_parser_init(&c->ps, 0);
    uint64_t now = pg_now(p);
    /* connect_timeout is per host attempt, as libpq's. */
    int rc = iox_dial_open(&c->dl, p->sa[c->host].ss_family, p->ci.connect_timeout_ms ? now + p->ci.connect_timeout_ms : 0);
    if (rc < 0) { set_fail(c, rc, NULL, "no SQE for socket: %s", strerror(-rc)); return PG_CONN_EV_FAIL; }
    return PG_CONN_EV_NONE;
}

int pg_conn_act_start_connect(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    struct iox_pg_pool *p = c->pool;
    if (p->sa[c->host].ss_family != AF_UNIX) {
        /* Queries are small and pipelined: never wait for Nagle. Once per
         * session, not on the hot path. */
        int one = 1;
        if (setsockopt(c->dl.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
            IOX_WARN("pg: TCP_NODELAY: %s", strerror(errno));
    }
    int rc = iox_dial_connect(&c->dl, (const struct sockaddr *)&p->sa[c->host], p->salen[c->host]);
    if (rc < 0) { set_fail(c, rc, NULL, "no SQE for connect: %s", strerror(-rc)); return PG_CONN_EV_FAIL; }
    return PG_CONN_EV_NONE;
}

int pg_conn_act_start_session(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    struct iox_pg_conninfo *ci = &c->pool->ci;
    const char *extra[IOX_PG_STARTUP_EXTRA_SLOTS];
    iox_pg_conninfo_startup_extra(ci, extra);
    int rc = iox_pg_build_startup(&c->wb[c->fill], ci->user, ci->dbname,
                                  ci->application_name[0] ? ci->application_name : "ioxide", extra);
    if (rc < 0) { set_fail(c, rc, NULL, "cannot build the startup message: %s", strerror(-rc)); return PG_CONN_EV_FAIL; }
    return pg_conn_arm_recv(c) < 0 ? PG_CONN_EV_FAIL : PG_CONN_EV_NONE;
}

/* ---- TLS negotiation (pg_tls.c does the OpenSSL side) ---- */

int pg_conn_guard_wants_tls(const struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    const struct iox_pg_pool *p = c->pool;
    if (!p->ssl_ctx || p->sa[c->host].ss_family == AF_UNIX) return 0;   /* libpq: no TLS on a socket */
    /* allow: plaintext first, TLS on the retry; prefer: the other way round. */
    if (p->ci.sslmode == IOX_PG_SSL_ALLOW) return c->second_method;
    if (p->ci.sslmode == IOX_PG_SSL_PREFER) return !c->second_method;
    return 1;
}

int pg_conn_guard_other_encryption(const struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    const struct iox_pg_pool *p = c->pool;
    if (p->stopping || c->second_method || !p->ssl_ctx || p->sa[c->host].ss_family == AF_UNIX) return 0;
    if (p->ci.sslmode == IOX_PG_SSL_PREFER) return c->tls_attempt && (c->tls_failed || c->refused);
    if (p->ci.sslmode == IOX_PG_SSL_ALLOW) return !c->tls_attempt && c->refused;
    return 0;
}

int pg_conn_act_retry_encryption(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    c->second_method = 1;
    IOX_DEBUG("pg: connection %u: retrying %s port %u %s (sslmode=%s)", c->idx, c->pool->ci.hosts[c->host].host,
              c->pool->ci.hosts[c->host].port, c->pool->ci.sslmode == IOX_PG_SSL_ALLOW ? "with TLS" : "without TLS",
              c->pool->ci.sslmode == IOX_PG_SSL_ALLOW ? "allow" : "prefer");
    return pg_conn_act_open_socket(c, ev);
}

int pg_conn_guard_tls_required(const struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    return c->pool->ci.sslmode >= IOX_PG_SSL_REQUIRE;
}

int pg_conn_act_start_ssl_request(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    static const unsigned char req[8] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};     /* length 8, 80877103 */
    int rc = iox_pg_wbuf_append(&c->wb[c->fill], req, sizeof req);
    if (rc < 0) { set_fail(c, rc, NULL, "cannot queue the SSLRequest: %s", strerror(-rc)); return PG_CONN_EV_FAIL; }
    return pg_conn_arm_recv(c) < 0 ? PG_CONN_EV_FAIL : PG_CONN_EV_NONE;
}

int pg_conn_act_ssl_answer(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    char a = c->rbuf[0];
    /* Anything after the one byte would be unencrypted data slipped in
     * before the handshake (CVE-2021-23222): libpq refuses it too. */
    if ((a == 'S' || a == 'N') && c->rlen != 1) {
        set_fail(c, -EPROTO, NULL, "received unencrypted data after the SSL response");
        return PG_CONN_EV_FAIL;
    }
    c->rlen = c->rpos = c->keep = 0;
    if (a == 'S') return PG_CONN_EV_SSL_YES;
    if (a == 'N') return PG_CONN_EV_SSL_NO;
    if (a == 'E') set_fail(c, -EPROTO, NULL, "the server answered the SSLRequest with an error (a server older than 7.0?)");
    else set_fail(c, -EPROTO, NULL, "received invalid response to SSL negotiation: '%c'", a >= 0x20 && a < 0x7f ? a : '?');
    return PG_CONN_EV_FAIL;
}

int pg_conn_act_refuse_plaintext(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    static const char *const names[] = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"};
    set_fail(c, -EPROTO, NULL, "server does not support SSL, but SSL was required (sslmode=%s)",
             names[c->pool->ci.sslmode]);
    return PG_CONN_EV_FAIL;
}

/* Send what the handshake produced now if the socket is free (else the
 * end-of-turn flush sends it), and wait for the server. */
static int tls_step(struct iox_pg_conn *c, int r)
{
    c->tls_attempt = 1;
    if (r < 0) { c->tls_failed = 1; return PG_CONN_EV_FAIL; }
    if (start_send(c) < 0) return PG_CONN_EV_FAIL;
    if (r == 1) return PG_CONN_EV_TLS_DONE;
    return pg_conn_arm_recv(c) < 0 ? PG_CONN_EV_FAIL : PG_CONN_EV_NONE;
}

int pg_conn_act_tls_start(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    return tls_step(c, pg_tls_begin(c));
}

int pg_conn_act_tls_input(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    return tls_step(c, pg_tls_handshake(c));
}

/* ---- authentication ---- */

static int protocol_error(struct iox_pg_conn *c, int r)
{
    set_fail(c, -EPROTO, NULL, "protocol error from the server: %s (%s) in a '%c' message at offset %zu",
             iox_pg_result_name(r), iox_pg_error_reason(r), c->ps.err_type ? c->ps.err_type : '?',
             c->ps.err_off);
    return PG_CONN_EV_FAIL;
}

static void server_error(const struct iox_pg_msg *m, char *state, char *msg, size_t cap)
{
    copy_str(state, 6, iox_pg_notice_field(m, 'C'));
    copy_str(msg, cap, iox_pg_notice_field(m, 'M'));
}

/* channel_binding=require and the server asks for a password: no binding. */
static int refuse_password(struct iox_pg_conn *c, const char *kind)
{
    set_fail(c, -EACCES, NULL, "channel_binding=require, but the server asks for a %s password, which cannot bind "
             "the channel (pg_hba.conf: use scram-sha-256)", kind);
    return -1;
}

/* A field of an 'E'/'N' message as a C string (on the wire it ends with
 * its NUL), "" when absent. */
static const char *field(const struct iox_pg_msg *m, char code)
{
    const struct iox_pg_str *f = iox_pg_notice_field(m, code);
    return f && f->ptr ? f->ptr : "";
}

/* NotificationResponse / NoticeResponse: to the pool's callbacks. */
static void async_message(struct iox_pg_conn *c, const struct iox_pg_msg *m)
{
    struct iox_pg_pool *p = c->pool;
    if (m->type == IOX_PG_NOTIFICATION) {
        if (!p->on_notify) return;
        struct iox_pg_notification n = {
            .channel = m->notify.channel.ptr ? m->notify.channel.ptr : "",
            .payload = m->notify.payload.ptr ? m->notify.payload.ptr : "",
            .pid = m->notify.pid,
        };
        p->on_notify(p->notify_arg, &n);
        return;
    }
    const char *sev = field(m, 'V');
    if (!sev[0]) sev = field(m, 'S');
    struct iox_pg_notice n = {
        .severity = sev, .sqlstate = field(m, 'C'), .message = field(m, 'M'),
        .detail = field(m, 'D'), .hint = field(m, 'H'), .pid = c->be_pid,
    };
    if (p->on_notice) p->on_notice(p->notice_arg, &n);
    else IOX_DEBUG("pg: connection %u: %s: %s", c->idx, n.severity, n.message);
}

static int auth_request(struct iox_pg_conn *c, const struct iox_pg_msg *m)
{
    struct iox_pg_conninfo *ci = &c->pool->ci;
    struct iox_pg_wbuf *w = &c->wb[c->fill];
    char out[512];
    size_t on;
    int rc = 0;
    int require_cb = ci->channel_binding == IOX_PG_CB_REQUIRE;
    switch (m->auth.code) {
    case IOX_PG_AUTH_OK:
        /* As libpq: a required binding that did not happen (trust, cert, a
         * SCRAM exchange without -PLUS) fails the session. */
        if (require_cb && !(c->sasl && c->scram.cbind == IOX_PG_CBIND_SERVER_END && c->scram.state == IOX_PG_SCRAM_DONE)) {
            set_fail(c, -EACCES, NULL, "channel_binding=require, but the server authenticated the session without "
                     "channel binding (pg_hba.conf: use scram-sha-256 over hostssl)");
            return -1;
        }
        return 0;
    case IOX_PG_AUTH_CLEARTEXT:
        if (require_cb) return refuse_password(c, "cleartext");
        rc = iox_pg_build_password(w, ci->password);
        break;
    case IOX_PG_AUTH_MD5: {
        if (require_cb) return refuse_password(c, "MD5");
        char md5[36];
        rc = iox_pg_md5_password(md5, ci->user, ci->password, (const unsigned char *)m->auth.salt);
        if (!rc) rc = iox_pg_build_password(w, md5);
        break;
    }
    case IOX_PG_AUTH_SASL: {
        /* libpq's choice: -PLUS over TLS unless channel_binding=disable;
         * plain SCRAM tells the server we could have bound ("y") when TLS
         * is up, so a man in the middle cannot strip the -PLUS offer. */
        int tls = c->tls && c->tls_up;
        int plus = tls && ci->channel_binding != IOX_PG_CB_DISABLE && iox_pg_sasl_has_mech(m, "SCRAM-SHA-256-PLUS");
        if (!plus && require_cb) {
            set_fail(c, -EACCES, NULL, "channel_binding=require, but the server offers no SCRAM-SHA-256-PLUS%s",
                     tls ? "" : " (the session has no TLS)");
            return -1;
        }
        if (!plus && !iox_pg_sasl_has_mech(m, "SCRAM-SHA-256")) {
            set_fail(c, -EPROTONOSUPPORT, NULL, "the server offers no SASL mechanism ioxide speaks (SCRAM-SHA-256)");
            return -1;
        }
        if ((rc = iox_pg_scram_init(&c->scram, NULL, ci->password, NULL))) break;
        c->sasl = 1;
        if (plus) {
            unsigned char hash[64];
            char why[160];
            int hn = pg_tls_server_end_point(c, hash, sizeof hash, why, sizeof why);
            if (hn < 0) {
                set_fail(c, -EPROTO, NULL, "SCRAM-SHA-256-PLUS: %s", why);
                return -1;
            }
            rc = iox_pg_scram_bind(&c->scram, IOX_PG_CBIND_SERVER_END, hash, (size_t)hn);
        } else if (tls && ci->channel_binding != IOX_PG_CB_DISABLE) {
            rc = iox_pg_scram_bind(&c->scram, IOX_PG_CBIND_UNUSED, NULL, 0);
        }
        if (!rc && !(rc = iox_pg_scram_client_first(&c->scram, out, sizeof out, &on)))
            rc = iox_pg_build_sasl_initial(w, plus ? "SCRAM-SHA-256-PLUS" : "SCRAM-SHA-256", out, on);
        break;
    }
    case IOX_PG_AUTH_SASL_CONTINUE:
        if (!c->sasl) { rc = -EPROTO; break; }
        if (!(rc = iox_pg_scram_client_final(&c->scram, m->auth.data, m->auth.data_len, out, sizeof out, &on)))
            rc = iox_pg_build_sasl_response(w, out, on);
        break;
    case IOX_PG_AUTH_SASL_FINAL:
        if (!c->sasl) { rc = -EPROTO; break; }
        rc = iox_pg_scram_verify_final(&c->scram, m->auth.data, m->auth.data_len);
        if (rc == -EACCES) {
            set_fail(c, -EACCES, NULL, "the server's SCRAM signature does not match: it does not know the password (not the real server?)");
            return -1;
        }
        break;
    default:
        set_fail(c, -EPROTONOSUPPORT, NULL, "the server asks for authentication method %d, which ioxide does not support "
                 "(use scram-sha-256, md5, password or trust in pg_hba.conf)", m->auth.code);
        return -1;
    }
    if (rc) {
        set_fail(c, rc, NULL, "authentication step %d for user \"%s\" failed: %s", m->auth.code, ci->user, strerror(-rc));
        return -1;
    }
    return 0;
}

/* PostgreSQL 14+ reports in_hot_standby and default_transaction_read_only
 * (GUC_REPORT): target_session_attrs is then decided without a query. */
static int bool_value(const struct iox_pg_str *v)
{
    if (v->len == 2 && !memcmp(v->ptr, "on", 2)) return 1;
    if (v->len == 3 && !memcmp(v->ptr, "off", 3)) return 0;
    return -1;
}

static void note_parameter(struct iox_pg_conn *c, const struct iox_pg_msg *m)
{
    const struct iox_pg_str *n = &m->param.name;
    if (n->len == 14 && !memcmp(n->ptr, "in_hot_standby", 14)) c->hot_standby = (int8_t)bool_value(&m->param.value);
    else if (n->len == 29 && !memcmp(n->ptr, "default_transaction_read_only", 29))
        c->read_only = (int8_t)bool_value(&m->param.value);
}

int pg_conn_act_auth_input(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    for (;;) {
        struct iox_pg_msg m;
        size_t n;
        int r = iox_pg_parse(&c->ps, c->rbuf + c->rpos, c->rlen - c->rpos, &m, &n);
        if (r == IOX_PG_NEED_MORE) { c->need = (uint32_t)n; break; }
        if (r < 0) return protocol_error(c, r);
        c->rpos += (uint32_t)n;
        c->keep = c->rpos;
        c->need = 0;
        switch (m.type) {
        case IOX_PG_AUTHENTICATION:
            if (auth_request(c, &m) < 0) { c->refused = 1; return PG_CONN_EV_FAIL; }
            break;
        case IOX_PG_ERROR_RESPONSE: {
            c->refused = 1;     /* the server answered: libpq tries no other host */
            char state[6], msg[PG_ERRMSG];
            server_error(&m, state, msg, sizeof msg);
            const char *user = c->pool->ci.user;
            /* libpq says where a refused password came from. */
            const char *hint = !strcmp(state, "28P01") && c->pool->ci.password_from_file
                                   ? " (the password was retrieved from the password file)" : "";
            if (!strncmp(state, "28", 2))
                set_fail(c, -EACCES, state, "authentication failed for user \"%s\": %s%s", user, msg, hint);
            else
                set_fail(c, -ECONNREFUSED, state, "the server refused the session for user \"%s\": %s", user, msg);
            /* One clear line, not one per retry; none when sslmode allow /
             * prefer retries the host the other way (the retry's outcome
             * is what counts). */
            if (pg_conn_guard_other_encryption(c, NULL))
                IOX_DEBUG("pg: %s (retrying with the other sslmode method)", c->fail_msg);
            else if (strcmp(c->pool->last_logged, c->fail_msg)) {
                IOX_ERROR("pg: %s", c->fail_msg);
                snprintf(c->pool->last_logged, sizeof c->pool->last_logged, "%s", c->fail_msg);
            }
            c->fail_logged = 1;
            return PG_CONN_EV_FAIL;
        }
        case IOX_PG_READY_FOR_QUERY:
            if (c->sasl) { iox_pg_scram_clear(&c->scram); c->sasl = 0; }
            if (pg_conn_arm_recv(c) < 0) return PG_CONN_EV_FAIL;
            return PG_CONN_EV_ESTABLISHED;
        case IOX_PG_PARAMETER_STATUS:
            note_parameter(c, &m);
            break;
        case IOX_PG_BACKEND_KEY_DATA:
            c->be_pid = m.key.pid;
            c->be_key = m.key.secret;
            c->have_key = 1;
            break;
        case IOX_PG_NOTICE_RESPONSE:
            async_message(c, &m);
            break;
        default:
            set_fail(c, -EPROTO, NULL, "unexpected '%c' message during authentication", m.type);
            return PG_CONN_EV_FAIL;
        }
    }
    return pg_conn_arm_recv(c) < 0 ? PG_CONN_EV_FAIL : PG_CONN_EV_NONE;
}

int pg_conn_act_session_up(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    struct iox_pg_pool *p = c->pool;
    c->dl.backoff_ms = 0;
    c->dl.deadline_ms = 0;
    c->was_up = 1;
    p->sessions++;
    p->nup++;
    /* One line when the pool's sessions are somewhere new: the first
     * session, or (one host list, not load-balanced) another host. */
    if (!p->was_up || (p->on_host != c->host && !p->ci.load_balance)) {
        const struct iox_pg_host *h = &p->ci.hosts[c->host];
        if (p->ci.nhosts > 1)
            IOX_INFO("pg: sessions on %s port %u (host %u of %u, target_session_attrs=%s) as \"%s\" (database \"%s\")",
                     h->host, h->port, c->host + 1, p->ci.nhosts, iox_pg_target_name(p->ci.target), p->ci.user,
                     p->ci.dbname);
        else
            IOX_INFO("pg: connected to %s port %u as \"%s\" (database \"%s\")", h->host, h->port, p->ci.user,
                     p->ci.dbname);
        p->on_host = c->host;
    }
    if (!p->was_up) {
        p->was_up = 1;
        p->last_error[0] = 0;
        p->last_logged[0] = 0;
        memset(p->logged_hash, 0, sizeof p->logged_hash);   /* the next outage is logged again */
    }
    pg_pool_listen_session(p, c);
    pg_pool_take_waiting(p);
    return PG_CONN_EV_NONE;
}

/* ---- results ---- */

static int add_row(struct iox_pg_conn *c, const struct iox_pg_msg *m)
{
    uint16_t n = m->list.count;
    if (c->nrows && n != c->ncols) {
        set_fail(c, -EPROTO, NULL, "DataRow with %u columns after rows of %u", n, c->ncols);
        return -1;
    }
    if (c->ncells + n > c->cells_cap) {
        uint32_t cap = c->cells_cap ? c->cells_cap : 64;
        while (cap < c->ncells + n) cap *= 2;
        struct iox_pg_str *nc = realloc(c->cells, cap * sizeof *nc);
        if (!nc) { set_fail(c, -ENOMEM, NULL, "out of memory for result cells"); return -1; }
        c->cells = nc;
        c->cells_cap = cap;
    }
    iox_pg_datarow_columns(m, c->cells + c->ncells, n);
    c->ncells += n;
    c->ncols = n;
    c->nrows++;
    return 0;
}

static void reset_result(struct iox_pg_conn *c)
{
    c->ncells = c->nrows = c->ncols = 0;
    c->res_error = 0;
    c->saw_parse = 0;
    c->tag[0] = 0;
}

int pg_conn_act_query_input(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    struct iox_pg_pool *p = c->pool;
    for (;;) {
        struct iox_pg_msg m;
        size_t n;
        int r = iox_pg_parse(&c->ps, c->rbuf + c->rpos, c->rlen - c->rpos, &m, &n);
        if (r == IOX_PG_NEED_MORE) { c->need = (uint32_t)n; break; }
        if (r < 0) return protocol_error(c, r);
        c->rpos += (uint32_t)n;
        c->need = 0;
        switch (m.type) {
        case IOX_PG_PARSE_COMPLETE:
            c->saw_parse = 1;
            break;
        case IOX_PG_BIND_COMPLETE: case IOX_PG_CLOSE_COMPLETE: case IOX_PG_NO_DATA:
        case IOX_PG_PARAM_DESCRIPTION: case IOX_PG_PORTAL_SUSPENDED:
        case IOX_PG_PARAMETER_STATUS:
            break;
        case IOX_PG_NOTICE_RESPONSE: case IOX_PG_NOTIFICATION:
            async_message(c, &m);
            break;
        case IOX_PG_ROW_DESCRIPTION:
            /* Simple protocol: a new statement's rows replace the last's. */
            c->ncells = c->nrows = c->ncols = 0;
            break;
        case IOX_PG_DATA_ROW:
            if (!c->inflight.head) { set_fail(c, -EPROTO, NULL, "DataRow with no query in flight"); return PG_CONN_EV_FAIL; }
            if (add_row(c, &m) < 0) return PG_CONN_EV_FAIL;
            break;
        case IOX_PG_COMMAND_COMPLETE:
            copy_str(c->tag, sizeof c->tag, &m.complete.tag);
            break;
        case IOX_PG_EMPTY_QUERY:
            c->tag[0] = 0;
            break;
        case IOX_PG_ERROR_RESPONSE: {
            const struct iox_pg_str *sev = iox_pg_notice_field(&m, 'V');
            if (!sev || !sev->ptr) sev = iox_pg_notice_field(&m, 'S');
            int fatal = sev && sev->ptr && (!strncmp(sev->ptr, "FATAL", 5) || !strncmp(sev->ptr, "PANIC", 5));
            if (fatal || !c->inflight.head) {
                char state[6], msg[PG_ERRMSG];
                server_error(&m, state, msg, sizeof msg);
                set_fail(c, -ECONNRESET, state, "the server ended the session: %s", msg);
                return PG_CONN_EV_FAIL;
            }
            c->res_error = 1;
            server_error(&m, c->sqlstate, c->errmsg, sizeof c->errmsg);
            break;
        }
        case IOX_PG_READY_FOR_QUERY: {
            struct pg_req *q = c->inflight.head;
            if (!q) { set_fail(c, -EPROTO, NULL, "ReadyForQuery with no query in flight"); return PG_CONN_EV_FAIL; }
            c->inflight.head = q->next;
            if (!q->next) c->inflight.tail = NULL;
            c->inflight.n--;
            /* A Parse that failed left no statement: the next query parses again. */
            if (q->sent_parse && !c->saw_parse && q->stmt) c->prepared &= ~(1ull << q->stmt->id);
            if (!q->cb) {
                /* The zombie of a cancelled query, answered at its deadline:
                 * its result (57014 query_canceled, or rows if it finished
                 * before the cancel landed) goes nowhere. */
                IOX_DEBUG("pg: connection %u: the cancelled query ended (%s)", c->idx,
                          c->res_error ? c->sqlstate : "it finished first");
                c->zombies--;
                pg_req_free(p, q);
                reset_result(c);
                break;
            }
            struct iox_pg_res res = {
                .status = c->res_error ? IOX_PG_ERROR : IOX_PG_OK,
                .err = 0,
                .sqlstate = c->res_error ? c->sqlstate : "",
                .message = c->res_error ? c->errmsg : "",
                .command_tag = c->tag,
                .nrows = c->nrows, .ncols = c->ncols,
                .cells = c->cells,
                .pool = p,
            };
            pg_req_complete(c, q, &res);
            reset_result(c);
            break;
        }
        case IOX_PG_AUTHENTICATION: case IOX_PG_BACKEND_KEY_DATA:
        default:
            set_fail(c, -EPROTO, NULL, "unexpected '%c' message in a session", m.type);
            return PG_CONN_EV_FAIL;
        }
        if (!c->ncells) c->keep = c->rpos;
    }
    if (p->waiting.n) pg_pool_take_waiting(p);
    if (pg_conn_arm_recv(c) < 0) return PG_CONN_EV_FAIL;
    return PG_CONN_EV_INPUT_DONE;   /* busy: [drained] -> ready */
}

int pg_conn_guard_drained(const struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    return c->inflight.n == 0;
}

int pg_conn_guard_cancel_pending(const struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    return c->zombies > 0;
}

/* ---- cancel (ready/busy, timeout -> cancelling) ---- */

int pg_conn_act_cancel_query(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    struct iox_pg_pool *p = c->pool;
    struct pg_req *q = c->inflight.head;
    if (!q || !q->cb) {
        set_fail(c, -ETIMEDOUT, NULL, "query deadline with no query to cancel");
        return PG_CONN_EV_FAIL;
    }
    c->zombies++;
    c->cancel_deadline_ms = pg_now(p) + p->ci.query_timeout_ms;
    /* A cancel that cannot start (no BackendKeyData, no SQE) is logged;
     * the recovery deadline still bounds the session. */
    pg_cancel_start(c);
    char msg[128];
    snprintf(msg, sizeof msg, "query timed out after %u ms (query_timeout_ms); it was cancelled", p->ci.query_timeout_ms);
    pg_req_answer_early(p, q, -ETIMEDOUT, msg);
    return PG_CONN_EV_NONE;
}

/* ---- the end of a session ---- */

/* Append src to the string in dst[0, cap), cut at cap - 1. */
static void append(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(dst), k = strlen(src);
    if (k > cap - 1 - n) k = cap - 1 - n;
    memcpy(dst + n, src, k);
    dst[n + k] = 0;
}

int pg_conn_act_drop(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    struct iox_pg_pool *p = c->pool;
    if (!c->fail_err) set_fail(c, -ECANCELED, NULL, "the pool is closing");
    if (c->was_up) p->nup--;
    /* A lost session, a server that refused the startup, or a stopping
     * pool ends the pass; any other failure moves on to the next host. */
    c->hard = c->was_up || c->refused || p->stopping;
    uint32_t nfailed = c->inflight.n - c->zombies;   /* a zombie was answered already */
    if (!c->fail_logged && !p->stopping) {
        const struct iox_pg_host *h = &p->ci.hosts[c->host];
        uint32_t hash = 2166136261u;      /* FNV-1a of the reason: a reason repeated by every pass is logged once */
        for (const char *s = c->fail_msg; *s; s++) hash = (hash ^ (unsigned char)*s) * 16777619u;
        if (!c->was_up && pg_conn_guard_other_encryption(c, NULL))
            IOX_DEBUG("pg: %s port %u: %s (retrying with the other sslmode method)", h->host, h->port, c->fail_msg);
        else if (c->was_up)
            IOX_WARN("pg: connection %u lost: %s (%u quer%s failed)", c->idx, c->fail_msg, nfailed,
                     nfailed == 1 ? "y" : "ies");
        else if (p->logged_hash[c->host] != hash) {
            IOX_WARN("pg: cannot connect to %s port %u: %s (%s)", h->host, h->port, c->fail_msg,
                     p->ci.nhosts > 1 ? "trying the next host; each pass over the list after a backoff"
                                      : "retrying with backoff");
            p->logged_hash[c->host] = hash;
            snprintf(p->last_logged, sizeof p->last_logged, "%s", c->fail_msg);
        } else
            IOX_DEBUG("pg: connect retry to %s port %u failed: %s", h->host, h->port, c->fail_msg);
    }
    /* For a 503's body: with several hosts, what each host of this pass
     * said so far (a connect failure names its host already). */
    if (p->ci.nhosts > 1 && !c->was_up) {
        char where[300] = "";
        if (strncmp(c->fail_msg, "connect to ", 11))
            snprintf(where, sizeof where, "%.200s port %u: ", p->ci.hosts[c->host].host, p->ci.hosts[c->host].port);
        if (c->pass_err[0]) append(c->pass_err, sizeof c->pass_err, "; ");
        append(c->pass_err, sizeof c->pass_err, where);
        append(c->pass_err, sizeof c->pass_err, c->fail_msg);
        memcpy(p->last_error, c->pass_err, sizeof p->last_error);
    } else {
        snprintf(p->last_error, sizeof p->last_error, "%s", c->fail_msg);
    }
    char msg[PG_ERRMSG + 32];
    snprintf(msg, sizeof msg, "%s%s", c->was_up ? "connection lost: " : "", c->fail_msg);
    struct pg_req *q = c->inflight.head;
    c->inflight.head = c->inflight.tail = NULL;
    c->inflight.n = 0;
    c->prepared = 0;
    reset_result(c);
    c->was_up = 0;
    /* Unsent output is dropped (a send in flight keeps its buffer, which
     * is not touched again: nothing appends to a closing session). */
    c->wb[c->fill].len = 0;
    c->zombies = 0;
    while (q) {
        struct pg_req *next = q->next;
        if (!q->cb) pg_req_free(p, q);            /* a zombie: answered already */
        else pg_fail_req(p, q, c->fail_err, c->fail_sqlstate, msg);
        q = next;
    }
    if (c->sasl) { iox_pg_scram_clear(&c->scram); c->sasl = 0; }
    pg_pool_listener_lost(p, c);
    pg_pool_note_down(p);
    int rc = iox_dial_cancel(&c->dl);
    if (rc < 0) IOX_WARN("pg: cannot cancel ops on connection %u: %s (the socket is shut down)", c->idx, strerror(-rc));
    return PG_CONN_EV_OP_DONE;
}

/* closing, op_done: the close waits for every op on the socket... */
int pg_conn_guard_ops_in_flight(const struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    return c->dl.ops > 0;
}

/* ...and there may be no socket to close at all. */
int pg_conn_guard_no_socket(const struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    return c->dl.fd < 0;
}

/* Runs in closing_socket: no op is in flight and there is a socket. */
int pg_conn_act_close_socket(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    /* No SQE: closed directly (nothing is in flight), closed raised. */
    return iox_dial_close(&c->dl) ? PG_CONN_EV_CLOSED : PG_CONN_EV_NONE;
}

int pg_conn_act_release(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    c->fail_logged = 0;
    pg_tls_end(c);      /* every op has ended: nothing reads tin or tx any more */
    return PG_CONN_EV_RELEASED;     /* down: [host_left] next_host, [second_pass], end_pass */
}

/* ---- several hosts: the pass over the list ---- */

static uint64_t rng_next(struct iox_pg_pool *p)
{
    uint64_t x = p->rng;            /* xorshift64*: never 0 (seeded non-zero) */
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    p->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

void pg_pass_begin(struct iox_pg_conn *c)
{
    struct iox_pg_pool *p = c->pool;
    unsigned n = p->ci.nhosts;
    for (unsigned i = 0; i < n; i++) c->order[i] = (uint8_t)i;
    if (p->ci.load_balance)          /* Fisher-Yates, as libpq's libpq_prng shuffle */
        for (unsigned i = n; i > 1; i--) {
            unsigned j = (unsigned)(rng_next(p) % i);
            uint8_t t = c->order[i - 1]; c->order[i - 1] = c->order[j]; c->order[j] = t;
        }
    c->at = 0;
    c->pass2 = 0;
    c->second_method = 0;
    c->pass_err[0] = 0;
}

int pg_conn_guard_host_left(const struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    return !c->hard && c->at + 1u < c->pool->ci.nhosts;
}

int pg_conn_guard_second_pass(const struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    return !c->hard && !c->pass2 && c->pool->ci.target == IOX_PG_TARGET_PREFER_STANDBY;
}

int pg_conn_act_next_host(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    c->at++;
    c->second_method = 0;
    return pg_conn_act_open_socket(c, ev);
}

int pg_conn_act_start_second_pass(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    c->at = 0;
    c->pass2 = 1;
    c->second_method = 0;
    IOX_DEBUG("pg: connection %u: no standby answered (target_session_attrs=prefer-standby): any server now", c->idx);
    return pg_conn_act_open_socket(c, ev);
}

/* The backoff is per pass over the list, not per host. */
int pg_conn_act_end_pass(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    struct iox_pg_pool *p = c->pool;
    c->dl.retry_at_ms = pg_now(p) + iox_dial_backoff(&c->dl, 100, p->cfg.backoff_max_ms);
    pg_pass_begin(c);
    return PG_CONN_EV_NONE;
}

/* ---- target_session_attrs (libpq's PQconnectPoll, CONNECTION_CHECK_TARGET) ---- */

static unsigned target_of(const struct iox_pg_conn *c)
{
    return c->pass2 ? IOX_PG_TARGET_ANY : c->pool->ci.target;
}

int pg_conn_guard_session_fits(const struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    switch (target_of(c)) {
    case IOX_PG_TARGET_READ_WRITE:
        return c->read_only == 0 && c->hot_standby == 0;
    case IOX_PG_TARGET_READ_ONLY:
        return c->read_only >= 0 && c->hot_standby >= 0 && (c->read_only == 1 || c->hot_standby == 1);
    case IOX_PG_TARGET_PRIMARY:
        return c->hot_standby == 0;
    case IOX_PG_TARGET_STANDBY: case IOX_PG_TARGET_PREFER_STANDBY:
        return c->hot_standby == 1;
    default:
        return 1;
    }
}

int pg_conn_guard_check_needed(const struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    unsigned t = target_of(c);
    if (t == IOX_PG_TARGET_READ_WRITE || t == IOX_PG_TARGET_READ_ONLY) return c->read_only < 0 || c->hot_standby < 0;
    return t != IOX_PG_TARGET_ANY && c->hot_standby < 0;
}

int pg_conn_act_start_check(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    unsigned t = target_of(c);
    const char *sql = t == IOX_PG_TARGET_READ_WRITE || t == IOX_PG_TARGET_READ_ONLY
                          ? "SHOW transaction_read_only" : "SELECT pg_catalog.pg_is_in_recovery()";
    int rc = iox_pg_build_query(&c->wb[c->fill], sql);
    if (rc < 0) { set_fail(c, rc, NULL, "cannot queue the session check: %s", strerror(-rc)); return PG_CONN_EV_FAIL; }
    c->res_error = 0;
    c->tag[0] = 0;
    return PG_CONN_EV_NONE;     /* the recv is armed (auth_input); the flush sends it */
}

int pg_conn_act_check_input(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    unsigned t = target_of(c);
    for (;;) {
        struct iox_pg_msg m;
        size_t n;
        int r = iox_pg_parse(&c->ps, c->rbuf + c->rpos, c->rlen - c->rpos, &m, &n);
        if (r == IOX_PG_NEED_MORE) { c->need = (uint32_t)n; break; }
        if (r < 0) return protocol_error(c, r);
        c->rpos += (uint32_t)n;
        c->keep = c->rpos;
        c->need = 0;
        switch (m.type) {
        case IOX_PG_DATA_ROW: {
            struct iox_pg_str v;
            if (m.list.count != 1 || iox_pg_datarow_columns(&m, &v, 1) < 0 || v.len < 1) {
                set_fail(c, -EPROTO, NULL, "unexpected answer to the session check (target_session_attrs=%s)",
                         iox_pg_target_name(c->pool->ci.target));
                return PG_CONN_EV_FAIL;
            }
            if (t == IOX_PG_TARGET_READ_WRITE || t == IOX_PG_TARGET_READ_ONLY) {
                /* libpq: "on" proves one of the two is on, "off" that both are off. */
                int on = v.len >= 2 && !memcmp(v.ptr, "on", 2);
                c->read_only = c->hot_standby = (int8_t)on;
            } else {
                c->hot_standby = (int8_t)(v.ptr[0] == 't');
            }
            break;
        }
        case IOX_PG_ROW_DESCRIPTION: case IOX_PG_COMMAND_COMPLETE: case IOX_PG_PARAMETER_STATUS:
        case IOX_PG_NOTICE_RESPONSE:
            if (m.type == IOX_PG_PARAMETER_STATUS) note_parameter(c, &m);
            break;
        case IOX_PG_ERROR_RESPONSE: {
            char state[6], msg[PG_ERRMSG];
            server_error(&m, state, msg, sizeof msg);
            set_fail(c, -EPROTO, state, "the session check failed (target_session_attrs=%s): %s",
                     iox_pg_target_name(c->pool->ci.target), msg);
            return PG_CONN_EV_FAIL;
        }
        case IOX_PG_READY_FOR_QUERY:
            if (c->hot_standby < 0 || (c->read_only < 0 && (t == IOX_PG_TARGET_READ_WRITE || t == IOX_PG_TARGET_READ_ONLY))) {
                set_fail(c, -EPROTO, NULL, "the session check returned no row (target_session_attrs=%s)",
                         iox_pg_target_name(c->pool->ci.target));
                return PG_CONN_EV_FAIL;
            }
            if (pg_conn_arm_recv(c) < 0) return PG_CONN_EV_FAIL;
            return PG_CONN_EV_CHECKED;      /* [session_fits] session_up, else reject_session */
        default:
            set_fail(c, -EPROTO, NULL, "unexpected '%c' message in the session check", m.type);
            return PG_CONN_EV_FAIL;
        }
    }
    return pg_conn_arm_recv(c) < 0 ? PG_CONN_EV_FAIL : PG_CONN_EV_NONE;
}

int pg_conn_act_reject_session(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    const char *why;
    switch (target_of(c)) {
    case IOX_PG_TARGET_READ_WRITE: why = "session is read-only"; break;
    case IOX_PG_TARGET_READ_ONLY: why = "session is not read-only"; break;
    case IOX_PG_TARGET_PRIMARY: why = "server is in hot standby mode"; break;
    default: why = "server is not in hot standby mode"; break;
    }
    set_fail(c, -EAGAIN, NULL, "%s (target_session_attrs=%s)", why, iox_pg_target_name(c->pool->ci.target));
    return PG_CONN_EV_FAIL;
}

int pg_conn_act_finish(struct iox_pg_conn *c, const struct iox_pg_event *ev)
{
    (void)ev;
    pg_tls_end(c);
    return PG_CONN_EV_NONE;
}
