/*  =========================================================================
    cli_sse - the monitor's event feed as server-sent events (/api/events
    with Accept: text/event-stream, or /api/events/stream)
    ========================================================================= */

#ifndef CLI_SSE_H_INCLUDED
#define CLI_SSE_H_INCLUDED

#include "cli_view.h"
#include <microhttpd.h>

#define SSE_MAX_CLIENTS     256     //  streams at once; more are answered 503
#define SSE_KEEPALIVE_MS    5000    //  a comment line this often: proxies and the
                                    //  server's idle timeout see a live stream

typedef struct _cli_sse_t cli_sse_t;

cli_sse_t *
    cli_sse_new (cli_view_t *view);
//  After cli_sse_close and MHD_stop_daemon
void
    cli_sse_destroy (cli_sse_t **self_p);
//  Answer connection with a stream of the events numbered since and later
enum MHD_Result
    cli_sse_reply (cli_sse_t *self, struct MHD_Connection *connection, uint64_t since);
//  New events, or time passed: every waiting stream writes what it has
void
    cli_sse_wake (cli_sse_t *self);
//  Before MHD_stop_daemon: every stream ends
void
    cli_sse_close (cli_sse_t *self);

#endif
