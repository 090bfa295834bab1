/* ioxide/ud.h — the one encoding of io_uring user_data.
 *
 *   63      56 55     48 47          32 31                 0
 *  +---------+---------+--------------+--------------------+
 *  |   op    |  owner  |  generation  |     slot index     |
 *  +---------+---------+--------------+--------------------+
 *
 * op: what the SQE was (enum iox_op); owner: which table the slot indexes
 * (enum iox_owner); generation: the slot's generation when the SQE was
 * queued — a CQE whose generation differs from the slot's current one
 * belongs to a closed, reused slot and is dropped. Messages from other
 * reactors (MSG_RING) carry a pointer instead: owner IOX_OWN_MSG, and the
 * low 48 bits are the payload address (x86-64 / arm64 user space) — the
 * first message of a batch (IOX_OP_MSG, res = how many, chained through
 * iox_msg.next). The sender's own completion of the MSG_RING
 * (IOX_OP_MSG_SENT) is an ordinary iox_ud whose slot is the destination
 * reactor. */
#ifndef IOX_UD_H
#define IOX_UD_H
#include <stdint.h>

enum iox_op {
    IOX_OP_NONE = 0,
    IOX_OP_ACCEPT, IOX_OP_RECV, IOX_OP_SEND, IOX_OP_CLOSE, IOX_OP_CANCEL,
    IOX_OP_SHUTDOWN, IOX_OP_TICK, IOX_OP_MSG, IOX_OP_MSG_SENT, IOX_OP_READ,
    IOX_OP_CONNECT, IOX_OP_SOCKET, IOX_OP_TIMEOUT, IOX_OP_WRITE, IOX_OP_SPLICE,
    IOX_OP_PEERNAME, IOX_OP_READ_FIXED, IOX_OP_SEND_ZC,
    IOX_OP_UNSENT,   /* SIOCOUTQ on the ring (a deadline's check, stream_core.c) */
    IOX_OP__COUNT
};

/* Owners 0 and 1 belong to the reactor; every other id is handed out by
 * iox_reactor_register_kind (a kind's completions come back to its on_cqe),
 * so nothing is reserved for any protocol. */
enum iox_owner {
    IOX_OWN_REACTOR = 0,      /* the reactor itself: listeners, tick, control */
    IOX_OWN_MSG = 1,          /* cross-reactor message (pointer payload) */
    IOX_OWN_FIRST_KIND = 2,   /* the first id iox_reactor_register_kind gives */
    IOX_OWN_MAX = 255         /* owner is 8 bits of user_data */
};

static inline uint64_t iox_ud(unsigned op, unsigned owner, uint32_t gen, uint32_t idx)
{
    return ((uint64_t)(op & 0xff) << 56) | ((uint64_t)(owner & 0xff) << 48) |
           ((uint64_t)(gen & 0xffff) << 32) | idx;
}
static inline unsigned iox_ud_op(uint64_t ud) { return (unsigned)(ud >> 56); }
static inline unsigned iox_ud_owner(uint64_t ud) { return (unsigned)(ud >> 48) & 0xff; }
static inline uint32_t iox_ud_gen(uint64_t ud) { return (uint32_t)(ud >> 32) & 0xffff; }
static inline uint32_t iox_ud_idx(uint64_t ud) { return (uint32_t)ud; }

static inline uint64_t iox_ud_ptr(unsigned op, const void *p)
{
    return ((uint64_t)(op & 0xff) << 56) | ((uint64_t)IOX_OWN_MSG << 48) |
           ((uint64_t)(uintptr_t)p & 0xffffffffffffull);
}
static inline void *iox_ud_to_ptr(uint64_t ud)
{
    return (void *)(uintptr_t)(ud & 0xffffffffffffull);
}

#endif
