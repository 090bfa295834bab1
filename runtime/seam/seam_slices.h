/* seam_slices.h — the slice table behind incremental provided buffers
 * (IOU_PBUF_RING_INC, Linux 6.12), shared by the real ring and the
 * simulated one so the machines' tests run the same books.
 *
 * With incremental buffers the kernel fills one provided buffer piecewise:
 * successive receives (of any socket of the ring) each take the next bytes
 * of the buffer at the ring's head, and their CQEs carry the same buffer id
 * with IORING_CQE_F_BUF_MORE while the kernel keeps using it. A buffer may
 * go back to the kernel only when (a) a CQE without BUF_MORE said the
 * kernel is done with it and (b) every slice handed out of it came back.
 *
 * Each CQE with bytes becomes a slice: {buffer id, offset}. Its offset is
 * the buffer's fill cursor, advanced by the CQE's length, in CQE order —
 * the kernel posts a buffer's CQEs in the order it fills it (one issuer
 * thread, task work posting each CQE as its recv commits). The slice's
 * handle (not the kernel's buffer id) is what the CQE then carries in its
 * upper 16 bits, so consumers keep calling iox_seam_buf / _return with
 * `flags >> IOX_CQE_BUFFER_SHIFT` as before.
 *
 * Hot path: take and put are a few loads and stores, no allocation (the
 * tables are allocated once, at ring creation). */
#ifndef IOX_SEAM_SLICES_H
#define IOX_SEAM_SLICES_H
#include <stdint.h>

#define IOX_SLICE_NONE 0xffffu

struct iox_slice {
    uint32_t off;     /* where the slice's bytes start in its buffer */
    uint16_t bid;     /* its buffer; IOX_SLICE_NONE while the handle is free */
    uint16_t next;    /* free list link */
};

struct iox_slice_buf {
    uint32_t cursor;  /* bytes the kernel has filled so far */
    uint16_t refs;    /* slices of it not yet returned */
    uint8_t in_kernel;/* given to the kernel and not yet finished by it */
    uint8_t pad;
};

struct iox_slices {
    struct iox_slice *slot;      /* by handle */
    struct iox_slice_buf *buf;   /* by buffer id */
    unsigned nslots, nbufs;
    unsigned nfree;
    uint16_t free_head;
    unsigned violations;         /* returns of a free handle, CQEs for a buffer the kernel had not */
};

/* Allocate the tables (cold, at ring creation): nbufs buffers, all in the
 * kernel; nslots handles (≤ 65535). Returns 0 or -ENOMEM. */
int iox_slices_init(struct iox_slices *t, unsigned nbufs, unsigned nslots);
void iox_slices_fini(struct iox_slices *t);
/* Slices handed out and not yet returned. */
static inline unsigned iox_slices_out(const struct iox_slices *t) { return t->nslots - t->nfree; }

/* A CQE carrying len > 0 bytes of buffer bid; kernel_done: it had no
 * BUF_MORE (the kernel finished the buffer). Returns the handle for the
 * CQE, or IOX_SLICE_NONE when every handle is out (the caller leaves the
 * CQE for later). */
static inline unsigned iox_slices_take(struct iox_slices *t, unsigned bid, uint32_t len, int kernel_done)
{
    if (!t->nfree) return IOX_SLICE_NONE;
    struct iox_slice_buf *b = &t->buf[bid];
    if (!b->in_kernel) t->violations++;   /* a kernel/seam disagreement: counted, still served */
    unsigned h = t->free_head;
    struct iox_slice *s = &t->slot[h];
    t->free_head = s->next;
    t->nfree--;
    s->bid = (uint16_t)bid;
    s->off = b->cursor;
    b->cursor += len;
    b->refs++;
    if (kernel_done) b->in_kernel = 0;
    return h;
}

/* The buffer id and offset of handle h. */
static inline unsigned iox_slices_bid(const struct iox_slices *t, unsigned h) { return t->slot[h].bid; }
static inline uint32_t iox_slices_off(const struct iox_slices *t, unsigned h) { return t->slot[h].off; }

/* Handle h comes back. Returns the buffer id to give back to the kernel
 * now (its last slice, and the kernel is done with it: its cursor is reset
 * and it counts as the kernel's again), else IOX_SLICE_NONE — also for a
 * handle that was not out (counted in violations). */
static inline unsigned iox_slices_put(struct iox_slices *t, unsigned h)
{
    if (h >= t->nslots || t->slot[h].bid == IOX_SLICE_NONE) { t->violations++; return IOX_SLICE_NONE; }
    struct iox_slice *s = &t->slot[h];
    unsigned bid = s->bid;
    s->bid = IOX_SLICE_NONE;
    s->next = t->free_head;
    t->free_head = (uint16_t)h;
    t->nfree++;
    struct iox_slice_buf *b = &t->buf[bid];
    if (--b->refs || b->in_kernel) return IOX_SLICE_NONE;
    b->cursor = 0;
    b->in_kernel = 1;
    return bid;
}

#endif
