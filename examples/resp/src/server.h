/* server.h — one reactor's RESP server: its keys, its scratch, its pools
 * of connections, hop messages and gathers. Made on each reactor in
 * on_start (resp_server_start), found by the stream callbacks through the
 * reactor's service registry. */
#ifndef RESP_SERVER_H
#define RESP_SERVER_H
#include "commands.h"
#include "resp_conn_machine.h"
#include <ioxide/reactor.h>
#include <ioxide/stream.h>

struct resp_conn {
    resp_conn_state_t state;
    uint8_t more;             /* the last parse needs more bytes: stop offering */
    size_t used;              /* bytes of this on_data consumed so far */
    size_t step;              /* bytes the last parsed request spans */
    struct resp_conn *free_next;
    struct resp_server *rs;
};

/* The event argument: the stream and the bytes on_data was offered. */
struct resp_ev {
    struct iox_stream *s;
    const char *p;
    size_t n;
};

struct hop;
struct gather;

struct resp_server {
    struct iox_reactor *r;
    struct resp_db db;
    struct resp_parser ps;       /* the request being run */
    struct rbuf out;             /* a reply being built here */
    struct rbuf hop_out;         /* a hopped command's reply, built here before it goes home */
    struct resp_arg *dargv;      /* a hopped request's decoded arguments */
    uint32_t dcap;
    struct resp_conn *free_conns;
    struct hop *free_hops;
    struct gather *free_gathers;
    int sweep_owner;
    uint64_t hops_out, hops_in;  /* counters */
    uint64_t big_out, big_back;  /* replies too big for their hop's buffer: sent home, returned */
};

struct resp_config {
    uint64_t max_bulk;
    uint32_t max_args;
};
extern struct resp_config resp_cfg;

int resp_server_start(struct iox_reactor *r, void *app_ctx);
void resp_server_stop(struct iox_reactor *r, void *app_ctx);
struct resp_server *resp_server_of(struct iox_reactor *r);

/* The stream protocol's callbacks (src/conn.c). */
void resp_on_open(struct iox_stream *s, void *ctx);
long resp_on_data(struct iox_stream *s, const char *p, size_t n, void *ctx);
void resp_on_close(struct iox_stream *s, enum iox_stream_cause cause, void *ctx);
int resp_on_timeout(struct iox_stream *s, void *ctx);

/* Run argv[0..argc) for stream s (src/shard.c): here, or hopped to the
 * keys' reactors with a reply slot. 0 when done or under way, 1 for QUIT,
 * -ENOSPC when it needs a reply slot and none is free (nothing was run). */
int resp_dispatch(struct resp_server *rs, struct iox_stream *s, const struct resp_arg *argv, unsigned argc);
int resp_shard_start(struct resp_server *rs);
void resp_shard_stop(struct resp_server *rs);

#endif
