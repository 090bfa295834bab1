/* access_log.h — the opt-in access log (iox_http_config.access_log): one
 * line per request in the combined log format, written by each reactor to
 * its own file through the ring (ioxide/logfile.h). Internal: the
 * connection code calls these hooks only when hs->alog is set, so a server
 * without the log pays one predictable branch per hook.
 *
 * A request's line is made of what is known when its head is parsed (peer,
 * time, request line, Referer, User-Agent: kept in a record, because the
 * head's bytes are gone by the time an async answer ends) and what its
 * answer adds (status, body bytes). It is written when the answer is
 * complete, in request order. */
#ifndef IOX_ACCESS_LOG_H
#define IOX_ACCESS_LOG_H
#include <ioxide/http_conn.h>

struct iox_alog;

/* Open hs's log (hs->cfg.access_log set): the reactor's own file, its
 * records and peer table. 0, or -errno with the reason in why. */
int iox_alog_open(struct iox_http_server *hs, char *why, size_t why_len);
/* Write what is buffered and free everything (the loop has ended). */
void iox_alog_close(struct iox_http_server *hs);
/* The per-reactor file name for template `path`: "%r" is replaced by the
 * reactor's index; without one, ".<index>" is appended when there are
 * several reactors. 0, or -ENAMETOOLONG. */
int iox_alog_path(const char *path, unsigned reactor, unsigned nreactors, char *out, size_t out_len);

/* A connection was adopted: ask the ring for its peer address. */
void iox_alog_conn_open(struct iox_conn *c);
/* Request s was parsed (req: its head, valid only now). */
void iox_alog_request(struct iox_conn *c, struct iox_rslot *s, const struct iox_http_request *req);
/* Request s is answered by the runtime without a parsed head (400, 431, …). */
void iox_alog_reject(struct iox_conn *c, struct iox_rslot *s);
/* The target request's head was written: its status (0: an interim 100
 * Continue, which does not set it) and the head's bytes. */
void iox_alog_head(struct iox_conn *c, int status, size_t head_bytes);
/* n bytes of the target request's answer were written (head included). */
void iox_alog_count(struct iox_conn *c, size_t n);
/* Request s's answer is complete: its line goes out. */
void iox_alog_done(struct iox_conn *c, struct iox_rslot *s);
/* The connection closes with request s unanswered or half answered: its
 * line goes out with the status written so far, or 499 (nginx's "client
 * closed request") when none was. */
void iox_alog_abandon(struct iox_conn *c, struct iox_rslot *s);
/* The peer-address completion (op IOX_OP_PEERNAME of the HTTP kind). */
void iox_alog_peer_cqe(struct iox_http_server *hs, const struct iox_cqe *cqe);

#endif
