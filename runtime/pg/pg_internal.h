/* pg_internal.h — the pool's and the connection machine's data (internal to
 * runtime/pg/pg_pool.c and runtime/pg/pg_conn.c). The API is ioxide/pg.h. */
#ifndef IOX_PG_INTERNAL_H
#define IOX_PG_INTERNAL_H
#include <ioxide/pg.h>
#include <ioxide/pg_parser.h>
#include <ioxide/stream_dial.h>
#include "pg_auth.h"
#include "pg_conninfo.h"
#include "pg_conn_machine.h"
#include "pg_frontend.h"
#include <sys/socket.h>
#include <openssl/ssl.h>

struct iox_pg_pool;

/* A query: waiting in the pool's FIFO or in flight on one connection. */
struct pg_req {
    struct pg_req *next;
    const struct iox_pg_stmt *stmt;   /* NULL: simple query */
    iox_pg_result_cb cb;
    void *user;                       /* the caller's pointer, or &user_val */
    /* A user value carried by value (iox_pg_query_v): an iox_conn_ref fits,
     * so an HTTP handler hands its request's handle over as it is. */
    _Alignas(8) unsigned char user_val[IOX_PG_USER_MAX];
    uint64_t deadline_ms;             /* 0: none; while waiting: since submission,
                                       * on a connection: since it got there */
    /* cb == NULL on a connection's in-flight list: a zombie — answered at its
     * deadline (-ETIMEDOUT) and cancelled, kept in line until the server's
     * ReadyForQuery for it, whose result is swallowed. */
    uint8_t sent_parse;               /* this query carried its statement's Parse */
    /* Waiting queries keep their Bind/Execute/Sync (or Query) bytes here. */
    struct iox_pg_wbuf msg;
    char inl[200];
};

struct pg_req_list { struct pg_req *head, *tail; uint32_t n; };

/* Machine arg: the completion being delivered. */
struct iox_pg_event {
    int32_t res;
    unsigned op;
};

#define PG_ERRMSG 256

struct iox_pg_conn {
    struct iox_pg_pool *pool;
    uint32_t idx;
    pg_conn_state_t state;     /* written only by pg_conn_fire() and pg_conn_init() */
    /* The socket, on the client kit (ioxide/stream_dial.h): descriptor,
     * generation (bumped per session: late CQEs are dropped), ops in flight
     * (close waits for 0), the armed recv, the send in flight, the
     * connect/auth deadline while not ready, the backoff and when to
     * reconnect. */
    struct iox_dial dl;
    uint8_t fill;
    /* Read side: [0, rlen) received; parse position rpos; [keep, rpos) holds
     * the current query's DataRows (cells point there). */
    char *rbuf;
    uint32_t rcap, rlen, rpos, keep, need;
    struct iox_pg_parser ps;
    /* Write side: double buffer, wb[fill] takes new messages while
     * wb[fill ^ 1] is being sent (by dl: wb[fill ^ 1], or tx with TLS). */
    struct iox_pg_wbuf wb[2];
    /* TLS (pg_tls.c): ssl on memory BIOs; recv lands in tin (ciphertext),
     * is decrypted into rbuf; wb is encrypted into tx at send time. */
    SSL *ssl;
    BIO *bio_in, *bio_out;     /* network → ssl, ssl → network (ssl owns both) */
    uint8_t tls, tls_up;       /* tls: recv/send go through ssl; tls_up: handshake done */
    char *tin;
    struct iox_pg_wbuf tx;
    char tls_peer[64];         /* the server certificate's CN, for a refusal's message */
    /* Queries in flight, oldest first. */
    struct pg_req_list inflight;
    uint64_t prepared;         /* statements whose Parse was sent (bit = id) */
    /* The current query's result. */
    struct iox_pg_str *cells;
    uint32_t ncells, cells_cap, nrows, ncols;
    uint8_t res_error, saw_parse;
    char sqlstate[6];
    char errmsg[PG_ERRMSG];
    char tag[64];
    /* BackendKeyData (the CancelRequest's pid and secret key). */
    int32_t be_pid, be_key;
    uint8_t have_key;
    /* Cancel (state cancelling): zombies in flight (0 or 1) and the
     * recovery deadline, when the session is dropped if still cancelling. */
    uint8_t zombies;
    uint64_t cancel_deadline_ms;
    /* Auth. */
    uint8_t sasl;
    struct iox_pg_scram scram;
    /* Host selection (docs/pg-client.md "Several hosts"): a pass tries
     * the hosts in order[0..nhosts) (shuffled per pass with
     * load_balance_hosts=random); at is the position of this attempt, host
     * = order[at]. pass2: prefer-standby's second pass, accepting any.
     * refused: the server answered the startup with an error or the
     * authentication failed (libpq then tries no other host); hard: the
     * attempt that just ended ends the pass (set by drop). */
    uint8_t order[IOX_PG_MAX_HOSTS];
    uint8_t at, host, pass2, refused, hard;
    /* sslmode allow / prefer (libpq): second_method — this attempt uses the
     * other encryption (allow: TLS, prefer: plaintext); tls_attempt: it
     * negotiated TLS; tls_failed: its handshake failed. */
    uint8_t second_method, tls_attempt, tls_failed;
    char pass_err[PG_ERRMSG];  /* this pass's reasons, host by host (a 503's body) */
    /* What the server is, for target_session_attrs: -1 unknown, 0 off, 1 on
     * (ParameterStatus in_hot_standby / default_transaction_read_only, or
     * the check query's answer). */
    int8_t hot_standby, read_only;
    /* Why the session ended (for failed queries and logs). */
    int fail_err;
    uint8_t was_up, fail_logged;
    char fail_sqlstate[6];
    char fail_msg[PG_ERRMSG];
};

/* A CancelRequest on a fresh connection: ops owned by the pool (not a
 * session), one at a time per slot: socket → connect → send the 16 bytes →
 * recv (the server closes when it has processed it, as libpq waits) →
 * close. Which op completed says what comes next; nothing else decides. */
struct pg_cancel {
    /* The socket (ioxide/stream_dial.h): generation bumped per use (late
     * CQEs are dropped), ops in flight (0 and no fd: the slot is free), the
     * send of msg, the deadline after which the ops are cancelled. */
    struct iox_dial dl;
    uint8_t cancelled;         /* its ops were cancelled (stop, deadline) */
    uint32_t conn;             /* the session it cancels (for logs) */
    uint8_t host;              /* the host that session is on (ci.hosts[], sa[]): the cancel goes there */
    int32_t pid;
    unsigned char msg[16];
    char rbuf[64];
};

struct iox_pg_pool {
    struct iox_reactor *r;
    struct iox_pg_pool_config cfg;
    struct iox_pg_conninfo ci;
    SSL_CTX *ssl_ctx;          /* NULL: no TLS is negotiated (sslmode disable/allow, Unix socket) */
    struct sockaddr_storage sa[IOX_PG_MAX_HOSTS];   /* one per ci.hosts[i] */
    socklen_t salen[IOX_PG_MAX_HOSTS];
    uint64_t rng;              /* load_balance_hosts=random: xorshift64*, per pool (per reactor) */
    int on_host;               /* the host the last "sessions on" line named (-1: none yet) */
    uint32_t logged_hash[IOX_PG_MAX_HOSTS];   /* a host's connect failure repeated by every pass is logged once */
    struct iox_pg_conn *conns;
    struct pg_req *reqs;
    struct pg_req *free_reqs;
    struct pg_req_list waiting;
    uint32_t nreqs;
    uint8_t stopping, tick_armed, guard_fired;
    unsigned ops;              /* ops in flight across the pool (incl. tick) */
    int owner;                 /* the pool's kind id in user_data (iox_reactor_register_kind) */
    uint64_t now_ms;
    uint64_t sessions;
    /* For the stats scrape (the kind's counters hook): queries taken,
     * refused at once (-EAGAIN, -ENOTCONN, ...), that waited in the queue,
     * that failed after they were taken. */
    uint64_t n_queries, n_refused, n_waited, n_failed;
    uint64_t n_cancels, n_cancel_failed;   /* CancelRequests started; of them failed (logged) */
    /* Cancel connections (cfg.size slots; user_data slot PG_CANCEL_BIT | i). */
    struct pg_cancel *cancels;
    /* Notification and notice callbacks (iox_pg_on_notify / iox_pg_on_notice). */
    iox_pg_notify_cb on_notify;
    void *notify_arg;
    iox_pg_notice_cb on_notice;
    void *notice_arg;
    /* iox_pg_listen: the channels, LISTENed on one session at a time (the
     * listener, -1: none yet), again on another when it is lost. */
    char listen_ch[IOX_PG_LISTEN_MAX][64];
    unsigned nlisten;
    int listener;
    unsigned nup;
    unsigned want;             /* slots [0, want) hold (or retry) a session: min_size, grown by load */
    int was_up;                /* for "database is back" logs */
    char last_error[PG_ERRMSG];
    char last_logged[PG_ERRMSG];   /* a failure repeated by every retry is logged once */
};

/* user_data slot index of the pool's tick and of the close guard timer. */
#define PG_TICK_IDX 0xfffffffeu
#define PG_GUARD_IDX 0xfffffffdu
#define PG_CTL_CANCEL_IDX 0xfffffffcu
#define PG_CANCEL_BIT 0x40000000u      /* slot index of a cancel connection: PG_CANCEL_BIT | i */

/* pg_pool.c, used by pg_conn.c */
uint64_t pg_ud(struct iox_pg_conn *c, unsigned op);
void pg_req_free(struct iox_pg_pool *p, struct pg_req *q);
void pg_req_complete(struct iox_pg_conn *c, struct pg_req *q, const struct iox_pg_res *res);
void pg_fail_req(struct iox_pg_pool *p, struct pg_req *q, int err, const char *sqlstate, const char *msg);
void pg_req_answer_early(struct iox_pg_pool *p, struct pg_req *q, int err, const char *msg);
int pg_cancel_start(struct iox_pg_conn *c);
void pg_pool_listen_session(struct iox_pg_pool *p, struct iox_pg_conn *c);
void pg_pool_listener_lost(struct iox_pg_pool *p, struct iox_pg_conn *c);
void pg_pool_take_waiting(struct iox_pg_pool *p);
void pg_pool_note_down(struct iox_pg_pool *p);
void pg_conn_deliver(struct iox_pg_conn *c, int event, const struct iox_pg_event *ev);
uint64_t pg_now(const struct iox_pg_pool *p);
int pg_conn_is_up(const struct iox_pg_conn *c);
int pg_conn_arm_recv(struct iox_pg_conn *c);
void pg_conn_set_fail(struct iox_pg_conn *c, int err, const char *msg);
/* Start a pass: order = 0..nhosts-1, shuffled with load_balance_hosts=random; at = 0. */
void pg_pass_begin(struct iox_pg_conn *c);

/* pg_tls.c: TLS over memory BIOs, so the reactor never blocks: the ring
 * moves ciphertext between the socket and tin / tx; SSL_read and
 * SSL_write only touch the BIOs. */
#define PG_TLS_IN 17408u       /* one TLS record and its overhead */
/* The pool's SSL_CTX per ci (verification, versions, client cert). 0 or
 * -EINVAL with err (a file that cannot be loaded). */
int pg_tls_ctx_open(struct iox_pg_pool *p, char *err, size_t errlen);
void pg_tls_ctx_close(struct iox_pg_pool *p);
/* Start the handshake on c (sets c->tls). 1 done, 0 more to do, -1 failed (reason set). */
int pg_tls_begin(struct iox_pg_conn *c);
int pg_tls_handshake(struct iox_pg_conn *c);
/* n ciphertext bytes arrived in tin: feed them, and once the handshake is
 * done decrypt what is complete into rbuf. 0, or -1 (reason set). */
int pg_tls_received(struct iox_pg_conn *c, uint32_t n);
/* Encrypt n plaintext bytes (may be 0) and move all pending ciphertext to
 * tx. 0, or -1 (reason set). */
int pg_tls_seal(struct iox_pg_conn *c, const char *data, size_t n);
/* Ciphertext waits in the output BIO (handshake messages). */
int pg_tls_out_pending(const struct iox_pg_conn *c);
/* Free the session's TLS state (at release). */
void pg_tls_end(struct iox_pg_conn *c);
/* SCRAM channel binding data (RFC 5929 tls-server-end-point, as libpq
 * computes it): the server certificate hashed with its signature's digest,
 * SHA-256 when that is MD5 or SHA-1. The length (≤ cap), or -1 with the
 * reason in msg (no certificate, an algorithm without a digest: Ed25519). */
int pg_tls_server_end_point(struct iox_pg_conn *c, unsigned char *out, size_t cap, char *msg, size_t msg_cap);

#endif
