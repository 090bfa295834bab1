/* core_internal.h — the reactor's own helpers, shared by reactor.c,
 * kind.c and server.c; not part of the API. */
#ifndef IOX_CORE_INTERNAL_H
#define IOX_CORE_INTERNAL_H
#include <ioxide/reactor.h>
#include <stddef.h>

/* Call one hook (offsetof(struct iox_kind, on_flush) ...) of every kind. */
void iox_reactor_kinds_call(struct iox_reactor *r, size_t hook_offset);
#define IOX_KINDS_CALL(r, hook) iox_reactor_kinds_call((r), offsetof(struct iox_kind, hook))
/* Free the registry's arrays (iox_reactor_fini). */
void iox_reactor_kinds_free(struct iox_reactor *r);
/* Open every listener's protocol on this reactor (its thread, after
 * on_start); 0 or -errno with why. Close them (after the loop). */
int iox_reactor_open_protocols(struct iox_reactor *r, char *why, size_t why_len);
void iox_reactor_close_protocols(struct iox_reactor *r);
/* A listener's accept is still in the ring. */
int iox_reactor_accepting(const struct iox_reactor *r);

#endif
