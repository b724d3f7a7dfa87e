/*  =========================================================================
    cli_sse - server-sent events for the monitor's feed (see cli_sse.h)

    libmicrohttpd runs one polling thread for every connection, so a
    stream may never block it waiting for an event. Each stream is a
    response whose content comes from a callback: when the callback has
    nothing to write it suspends its connection and returns 0 (the way
    the library asks for it: no busy loop, no thread), and the monitor's
    own thread resumes every suspended stream when the feed grew or at
    its next refresh. A resumed stream writes the new events, or a
    keep-alive comment once SSE_KEEPALIVE_MS passed without a write (the
    server closes a connection silent for 10 s; proxies do the same), or
    suspends again.

    Locks: the client list and each client's `suspended` are under
    self->lock, taken by the server's thread (callbacks) and the monitor's
    (wake, close); the feed is read through the view, under its own lock.
    ========================================================================= */

#include "cli_sse.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct _client_t client_t;
struct _client_t {
    cli_sse_t *owner;
    struct MHD_Connection *connection;
    uint64_t next;                  //  first event not written yet
    char *buf;                      //  what is being written
    size_t len, off;
    bool suspended;
    int64_t last_ms;                //  last write (monotonic)
    client_t *prev, *next_client;
};

struct _cli_sse_t {
    cli_view_t *view;
    pthread_mutex_t lock;
    client_t *clients;
    size_t count;
    bool closing;
};

cli_sse_t *
cli_sse_new (cli_view_t *view)
{
    cli_sse_t *self = (cli_sse_t *) calloc (1, sizeof *self);
    if (self) {
        self->view = view;
        pthread_mutex_init (&self->lock, NULL);
    }
    return self;
}

void
cli_sse_destroy (cli_sse_t **self_p)
{
    if (*self_p) {
        //  the daemon stopped: it freed every response, and with it every client
        pthread_mutex_destroy (&(*self_p)->lock);
        free (*self_p);
        *self_p = NULL;
    }
}

static ssize_t
s_read (void *cls, uint64_t pos, char *buf, size_t max)
{
    (void) pos;
    client_t *client = (client_t *) cls;
    cli_sse_t *self = client->owner;
    if (client->off == client->len) {
        free (client->buf);
        client->buf = NULL;
        client->len = client->off = 0;
        pthread_mutex_lock (&self->lock);
        bool closing = self->closing;
        pthread_mutex_unlock (&self->lock);
        if (closing)
            return MHD_CONTENT_READER_END_OF_STREAM;
        int64_t now = cli_view_mono_ms ();
        if (cli_view_events_next (self->view) > client->next)
            client->buf = cli_view_events_sse (self->view, &client->next);
        else
        if (now - client->last_ms >= SSE_KEEPALIVE_MS)
            client->buf = strdup (": keep-alive\n\n");
        client->len = client->buf? strlen (client->buf): 0;
        if (client->len == 0) {
            //  nothing to say: wait, off the server's loop, for cli_sse_wake
            pthread_mutex_lock (&self->lock);
            client->suspended = true;
            MHD_suspend_connection (client->connection);
            pthread_mutex_unlock (&self->lock);
            return 0;
        }
    }
    size_t n = client->len - client->off < max? client->len - client->off: max;
    memcpy (buf, client->buf + client->off, n);
    client->off += n;
    client->last_ms = cli_view_mono_ms ();
    return (ssize_t) n;
}

//  The response is gone (the client left, or the daemon stopped)
static void
s_free (void *cls)
{
    client_t *client = (client_t *) cls;
    cli_sse_t *self = client->owner;
    pthread_mutex_lock (&self->lock);
    if (client->prev)
        client->prev->next_client = client->next_client;
    else
        self->clients = client->next_client;
    if (client->next_client)
        client->next_client->prev = client->prev;
    self->count--;
    pthread_mutex_unlock (&self->lock);
    free (client->buf);
    free (client);
}

enum MHD_Result
cli_sse_reply (cli_sse_t *self, struct MHD_Connection *connection, uint64_t since)
{
    pthread_mutex_lock (&self->lock);
    bool full = self->count >= SSE_MAX_CLIENTS || self->closing;
    pthread_mutex_unlock (&self->lock);
    client_t *client = full? NULL: (client_t *) calloc (1, sizeof *client);
    struct MHD_Response *response = client
        ? MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 4096, s_read, client, s_free)
        : NULL;
    if (!response) {
        free (client);
        static const char busy [] = "too many event streams\n";
        response = MHD_create_response_from_buffer (sizeof busy - 1, (void *) busy,
                                                    MHD_RESPMEM_PERSISTENT);
        if (!response)
            return MHD_NO;
        MHD_add_response_header (response, "Content-Type", "text/plain");
        MHD_add_response_header (response, "Retry-After", "5");
        enum MHD_Result rc = MHD_queue_response (connection, 503, response);
        MHD_destroy_response (response);
        return rc;
    }
    client->owner = self;
    client->connection = connection;
    client->next = since;
    client->last_ms = cli_view_mono_ms ();
    //  the first write says how long a browser waits before it reconnects
    client->buf = strdup ("retry: 2000\n\n");
    client->len = client->buf? strlen (client->buf): 0;
    pthread_mutex_lock (&self->lock);
    client->next_client = self->clients;
    if (self->clients)
        self->clients->prev = client;
    self->clients = client;
    self->count++;
    pthread_mutex_unlock (&self->lock);
    MHD_add_response_header (response, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header (response, "Cache-Control", "no-store");
    MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header (response, "X-Accel-Buffering", "no");
    enum MHD_Result rc = MHD_queue_response (connection, 200, response);
    MHD_destroy_response (response);
    return rc;
}

//  The connections are resumed after our lock is let go (the library
//  takes its own there, and calls s_free holding none of ours): a
//  suspended connection is not freed, so the list taken stays valid
void
cli_sse_wake (cli_sse_t *self)
{
    struct MHD_Connection *waiting [SSE_MAX_CLIENTS];
    size_t count = 0;
    pthread_mutex_lock (&self->lock);
    for (client_t *client = self->clients; client && count < SSE_MAX_CLIENTS;
         client = client->next_client)
        if (client->suspended) {
            client->suspended = false;
            waiting [count++] = client->connection;
        }
    pthread_mutex_unlock (&self->lock);
    for (size_t i = 0; i < count; i++)
        MHD_resume_connection (waiting [i]);
}

void
cli_sse_close (cli_sse_t *self)
{
    pthread_mutex_lock (&self->lock);
    self->closing = true;
    pthread_mutex_unlock (&self->lock);
    cli_sse_wake (self);
}
