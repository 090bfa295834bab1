/* commands.h — the command table and the commands themselves.
 *
 * A command runs where its keys live. The table says how: at the origin
 * (no key: PING, ECHO, HELLO, ...), on the owner of argv[1] (GET, SET,
 * INCR, TTL, ...), split per owner and gathered (MGET, DEL, EXISTS, MSET),
 * or on every reactor (DBSIZE, FLUSHALL). Checks that need no key (arity,
 * FLUSHALL's option) are made at the origin; the rest where the command
 * runs. Errors are redis-server 7.0's texts. */
#ifndef RESP_COMMANDS_H
#define RESP_COMMANDS_H
#include "keyspace.h"
#include "rbuf.h"
#include "resp_parser.h"

/* One reactor's data: its keys. */
struct resp_db {
    struct keyspace ks;
    unsigned reactor, nreactors;
};

enum resp_route {
    ROUTE_HERE,    /* run at the origin: run() */
    ROUTE_KEY,     /* run on the owner of argv[1]: run() */
    ROUTE_KEYS,    /* argv[1..]: part() on each owner with its keys, gathered */
    ROUTE_PAIRS,   /* argv[1..] as key value pairs: part() per owner */
    ROUTE_ALL,     /* part() on every reactor, no arguments */
    ROUTE_QUIT,    /* +OK, then close */
};

struct resp_cmd {
    const char *name;       /* lower case, as redis-server names it in errors */
    int arity;              /* > 0 exactly, < 0 at least -arity (argv[0] counted) */
    uint8_t route, id;
    /* ROUTE_HERE / ROUTE_KEY: the whole command, its reply into out. */
    void (*run)(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out);
    /* ROUTE_KEYS / PAIRS / ALL: this owner's share; returns a count and
     * may append values to out (MGET: one bulk or nil per key). */
    long long (*part)(struct resp_db *db, const struct resp_arg *argv, unsigned argc, struct rbuf *out);
    /* The gathered answer from the parts' counts (values: MGET's own). */
    void (*done)(long long sum, struct rbuf *out);
};

enum { CMD_MGET = 1 };

/* The command named argv[0] (any case), or NULL. */
const struct resp_cmd *resp_cmd_find(const char *name, size_t len);
/* The command with this table index. */
const struct resp_cmd *resp_cmd_at(unsigned i);
unsigned resp_cmd_index(const struct resp_cmd *c);
/* 0, or -1 with the error reply written (arity; MSET's pairs; FLUSHALL's
 * option): checks made where the command arrives. */
int resp_cmd_check(const struct resp_cmd *c, const struct resp_arg *argv, unsigned argc, struct rbuf *out);
/* The unknown-command error for argv. */
void resp_cmd_unknown(const struct resp_arg *argv, unsigned argc, struct rbuf *out);
/* Which reactor owns key. */
static inline unsigned resp_owner(const char *k, size_t n, unsigned nreactors)
{
    return nreactors <= 1 ? 0 : (unsigned)((ks_hash(k, n) >> 32) % nreactors);
}

#endif
