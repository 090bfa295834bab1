/* seam_slices.c — allocation of the slice table (see seam_slices.h). */
#include "seam_slices.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int iox_slices_init(struct iox_slices *t, unsigned nbufs, unsigned nslots)
{
    memset(t, 0, sizeof *t);
    if (nslots > 65535) nslots = 65535;   /* 0xffff is the list's end */
    t->slot = calloc(nslots, sizeof *t->slot);
    t->buf = calloc(nbufs, sizeof *t->buf);
    if (!t->slot || !t->buf) { iox_slices_fini(t); return -ENOMEM; }
    t->nslots = t->nfree = nslots;
    t->nbufs = nbufs;
    for (unsigned i = 0; i < nslots; i++) {
        t->slot[i].bid = IOX_SLICE_NONE;
        t->slot[i].next = (uint16_t)(i + 1 < nslots ? i + 1 : IOX_SLICE_NONE);
    }
    t->free_head = 0;
    for (unsigned b = 0; b < nbufs; b++) t->buf[b].in_kernel = 1;
    return 0;
}

void iox_slices_fini(struct iox_slices *t)
{
    free(t->slot);
    free(t->buf);
    t->slot = NULL;
    t->buf = NULL;
    t->nslots = t->nfree = 0;
}
