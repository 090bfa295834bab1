/* ioxide.h — everything public, in one include.
 *
 *   reactor.h      reactors, the server, listeners, the kind registry, messages
 *   seam.h         the ring seam (real io_uring; seam_sim.h: the simulated ring)
 *   ud.h           the user_data encoding of every SQE
 *   log.h          the log
 *   stream.h       the protocol-neutral stream connection (server side)
 *   stream_client.h the client kit: pooled, pipelined outbound connections
 *   stream_core.h  the socket mechanics stream connections share (stream, HTTP)
 *   stream_dial.h  the outbound socket client connections share (client kit, pg)
 *   http_server.h  the HTTP/1.1 server as a protocol (config, application)
 *   http_conn.h    an HTTP connection: writing answers, async requests
 *   http_parser.h  the generated HTTP/1.1 request parser
 *   pg.h           the PostgreSQL client pool
 *   pg_parser.h    the generated PostgreSQL backend-message parser
 *   file_stream.h  streaming a file as a response body on the ring */
#ifndef IOXIDE_H
#define IOXIDE_H
#include <ioxide/reactor.h>
#include <ioxide/seam.h>
#include <ioxide/ud.h>
#include <ioxide/log.h>
#include <ioxide/stream.h>
#include <ioxide/stream_client.h>
#include <ioxide/stream_core.h>
#include <ioxide/stream_dial.h>
#include <ioxide/http_parser.h>
#include <ioxide/http_server.h>
#include <ioxide/http_conn.h>
#include <ioxide/pg_parser.h>
#include <ioxide/pg.h>
#include <ioxide/file_stream.h>
#endif
