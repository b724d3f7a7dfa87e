/*  =========================================================================
    meshbus monitor - a node that joins the mesh and serves what it sees
    over HTTP: the dashboard page, /metrics for Prometheus and a JSON API

    The HTTP server is libmicrohttpd, one internal thread polling every
    connection (epoll where there is one): a thousand idle or hostile
    clients cost file descriptors, not threads, and a client that sends
    too long a request or garbage is answered (414, 400) or cut by the
    library, never parsed by us. Handlers only copy strings the view
    renders under its lock, so the node's thread (gathering stats every
    --interval) and the server's never share anything else. Read-only:
    every method but GET and HEAD is refused.
    ========================================================================= */

#include "cli.h"
#include "monitor/cli_view.h"
#include "monitor/cli_assets.h"
#include "monitor/cli_sse.h"
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/resource.h>

#define MONITOR_DEFAULT_HTTP    "127.0.0.1:8222"
#define MONITOR_CONNECTIONS     2048    //  at once; more are refused by the server
#define MONITOR_IDLE_S          10      //  a connection silent this long is closed

static enum MHD_Result
s_reply (struct MHD_Connection *connection, unsigned status, const char *type,
         const void *data, size_t size, bool copy)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (
        size, (void *) data, copy? MHD_RESPMEM_MUST_COPY: MHD_RESPMEM_PERSISTENT);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, "Content-Type", type);
    MHD_add_response_header (response, "Cache-Control", "no-store");
    MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
    //  the page loads nothing but its own scripts and styles
    MHD_add_response_header (response, "Content-Security-Policy",
                             "default-src 'self'; img-src 'self' data:");
    enum MHD_Result rc = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result
s_reply_text (struct MHD_Connection *connection, unsigned status, const char *type, char *text)
{
    if (!text)
        return s_reply (connection, 500, "text/plain", "out of memory\n", 14, false);
    enum MHD_Result rc = s_reply (connection, status, type, text, strlen (text), true);
    free (text);
    return rc;
}

//  "since" of /api/events: digits only, else 0 (the whole feed)
static uint64_t
s_since (struct MHD_Connection *connection)
{
    const char *text = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "since");
    if (!text || !*text || strlen (text) > 19 || strspn (text, "0123456789") != strlen (text))
        return 0;
    return strtoull (text, NULL, 10);
}

//  Does the client want the feed as server-sent events? (EventSource
//  sends Accept: text/event-stream; /api/events/stream asks in its path)
static bool
s_wants_stream (struct MHD_Connection *connection, const char *url)
{
    if (streq_ (url, "/api/events/stream"))
        return true;
    const char *accept = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Accept");
    return accept && strstr (accept, "text/event-stream");
}

//  Where a stream starts: after Last-Event-ID (a browser reconnecting),
//  else at since, else at the oldest event kept
static uint64_t
s_stream_from (struct MHD_Connection *connection)
{
    const char *last = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Last-Event-ID");
    if (last && *last && strlen (last) <= 19 && strspn (last, "0123456789") == strlen (last))
        return strtoull (last, NULL, 10) + 1;
    return s_since (connection);
}

typedef struct {
    cli_view_t *view;
    cli_sse_t *sse;
} s_server_t;

static enum MHD_Result
s_handle (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_size, void **state)
{
    (void) version, (void) upload_data;
    s_server_t *server = (s_server_t *) cls;
    cli_view_t *view = server->view;
    //  refused before any body is read; a GET's body is read and dropped
    //  (the handler is called per chunk), and the answer comes after it
    if (!streq_ (method, "GET") && !streq_ (method, "HEAD"))
        return s_reply (connection, 405, "text/plain", "read-only: GET or HEAD\n", 23, false);
    if (*state == NULL) {
        *state = (void *) 1;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (streq_ (url, "/metrics"))
        return s_reply_text (connection, 200, "text/plain; version=0.0.4; charset=utf-8",
                             cli_view_metrics (view));
    if (streq_ (url, "/api/nodes"))
        return s_reply_text (connection, 200, "application/json", cli_view_nodes_json (view));
    if ((streq_ (url, "/api/events") || streq_ (url, "/api/events/stream"))
    &&  s_wants_stream (connection, url))
        return cli_sse_reply (server->sse, connection, s_stream_from (connection));
    if (streq_ (url, "/api/events"))
        return s_reply_text (connection, 200, "application/json",
                             cli_view_events_json (view, s_since (connection)));
    if (strncmp (url, "/api/node/", 10) == 0) {
        char *json = strlen (url + 10) == 32? cli_view_node_json (view, url + 10): NULL;
        if (json)
            return s_reply_text (connection, 200, "application/json", json);
        return s_reply (connection, 404, "application/json",
                        "{\"error\": \"no such node\"}", 25, false);
    }
    const char *path = streq_ (url, "/")? "/index.html": url;
    for (const cli_asset_t *asset = cli_assets; asset->path; asset++)
        if (streq_ (path, asset->path))
            return s_reply (connection, 200, asset->type, asset->data, asset->size, false);
    return s_reply (connection, 404, "text/plain", "not found\n", 10, false);
}

//  ADDR:PORT or [IPV6]:PORT, numeric only (no name lookups)
static int
s_parse_listen (const char *text, struct sockaddr_storage *addr, socklen_t *len)
{
    char host [128];
    const char *colon = strrchr (text, ':');
    if (!colon || colon == text || (size_t) (colon - text) >= sizeof host)
        return -1;
    memcpy (host, text, (size_t) (colon - text));
    host [colon - text] = 0;
    char *end;
    errno = 0;
    long port = strtol (colon + 1, &end, 10);
    if (!colon [1] || *end || errno || port < 0 || port > 65535)
        return -1;
    memset (addr, 0, sizeof *addr);
    size_t hlen = strlen (host);
    if (host [0] == '[' && hlen > 2 && host [hlen - 1] == ']') {
        host [hlen - 1] = 0;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *) addr;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons ((uint16_t) port);
        *len = sizeof *a6;
        return inet_pton (AF_INET6, host + 1, &a6->sin6_addr) == 1? 0: -1;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *) addr;
    a4->sin_family = AF_INET;
    a4->sin_port = htons ((uint16_t) port);
    *len = sizeof *a4;
    return inet_pton (AF_INET, host, &a4->sin_addr) == 1? 0: -1;
}

enum { MONITOR_HTTP = CLI_OPT (1), MONITOR_INTERVAL = CLI_OPT (2), MONITOR_TIMEOUT = 't' };

static const struct option s_monitor_options [] = {
    { "http",     required_argument, NULL, MONITOR_HTTP },
    { "interval", required_argument, NULL, MONITOR_INTERVAL },
    { "timeout",  required_argument, NULL, MONITOR_TIMEOUT },
    { NULL, 0, NULL, 0 }
};

static int
s_monitor (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv)
{
    cli_args_t args;
    cli_args_init (&args, cmd, opts, s_monitor_options, "t:", argc, argv);
    const char *listen = MONITOR_DEFAULT_HTTP;
    double interval = 1, timeout = -1;
    int c;
    while ((c = cli_getopt (&args)) >= 0) {
        int bad = 0;
        switch (c) {
            case MONITOR_HTTP:     listen = optarg; break;
            case MONITOR_INTERVAL: bad = cli_seconds (cmd, "--interval", optarg, 0.1, 3600, &interval); break;
            case MONITOR_TIMEOUT:  bad = cli_seconds (cmd, "--timeout", optarg, 0, 1e7, &timeout); break;
            default:               bad = -1;
        }
        if (bad)
            return CLI_USAGE;
    }
    if (c == CLI_STOP)
        return args.status;
    if (cli_positionals (&args, 0, 0))
        return CLI_USAGE;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    if (s_parse_listen (listen, &addr, &addr_len))
        return cli_usage (cmd, "--http wants ADDR:PORT with a numeric address, not '%s'", listen);
    //  every HTTP client is a file descriptor: allow as many as we can
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit (RLIMIT_NOFILE, &limit);
    }
    mesh_node_t *node = cli_node_new (opts, "monitor");
    if (!node)
        return CLI_FAILED;
    cli_view_t *view = cli_view_new (node);
    s_server_t server = { view, view? cli_sse_new (view): NULL };
    struct MHD_Daemon *daemon = server.sse? MHD_start_daemon (
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME
        | (addr.ss_family == AF_INET6? MHD_USE_IPv6: 0),
        0, NULL, NULL, s_handle, &server,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned) MONITOR_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) MONITOR_IDLE_S,
        MHD_OPTION_END): NULL;
    if (!daemon) {
        int rc = cli_fail ("cannot serve HTTP on %s (%s)", listen,
                           errno? strerror (errno): "libmicrohttpd refused");
        cli_sse_destroy (&server.sse);
        cli_view_destroy (&view);
        mesh_node_destroy (&node);
        return rc;
    }
    //  the address as bound (port 0 = one the system chose): scripts read it
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_BIND_PORT);
    char host [INET6_ADDRSTRLEN] = "?";
    inet_ntop (addr.ss_family, addr.ss_family == AF_INET6
               ? (void *) &((struct sockaddr_in6 *) &addr)->sin6_addr
               : (void *) &((struct sockaddr_in *) &addr)->sin_addr, host, sizeof host);
    printf (addr.ss_family == AF_INET6? "monitor: http://[%s]:%u/\n": "monitor: http://%s:%u/\n",
            host, info? (unsigned) info->port: 0);
    fflush (stdout);

    int64_t step = (int64_t) (interval * 1000);
    int64_t until = timeout < 0? INT64_MAX: (int64_t) cli_view_mono_ms () + (int64_t) (timeout * 1000);
    int rc = 0;
    while (!cli_interrupted () && (int64_t) cli_view_mono_ms () < until) {
        int64_t next = (int64_t) cli_view_mono_ms () + step;
        //  the answers may take most of the interval, never all of it
        if (cli_view_refresh (view, (int) (step * 3 / 4)) < 0) {
            rc = cli_fail ("%s", mesh_last_error ());
            break;
        }
        cli_sse_wake (server.sse);      //  new events, or a keep-alive due
        int64_t left;
        while (!cli_interrupted () && (left = next - (int64_t) cli_view_mono_ms ()) > 0) {
            mesh_event_t *event = mesh_node_wait_event (node, left < 200? (int) left: 200);
            if (event) {
                cli_view_event (view, event);
                mesh_event_destroy (&event);
            }
            cli_sse_wake (server.sse);  //  at most 200 ms late, keep-alives too
        }
    }
    cli_sse_close (server.sse);
    MHD_stop_daemon (daemon);
    cli_sse_destroy (&server.sse);
    cli_view_destroy (&view);
    mesh_node_destroy (&node);
    return rc;
}

const cli_cmd_t cli_cmd_monitor = {
    "monitor", s_monitor, "[--http ADDR:PORT] [--interval S] [--timeout S] [FLAGS]",
    "join the mesh and serve a live dashboard, /metrics and a JSON API over HTTP",
"Joins the mesh as a node and, every interval, asks every peer for its counters\n"
"(as `meshbus stats` does). Serves, read-only:\n"
"  /             the dashboard: the mesh as a graph, nodes, patterns, events\n"
"  /metrics      every counter of every node, Prometheus text format\n"
"  /api/nodes    nodes and links as JSON; /api/node/ID one node's counters,\n"
"                pattern tables and rates; /api/events?since=N the event feed,\n"
"                as server-sent events with Accept: text/event-stream or at\n"
"                /api/events/stream (docs/observe.md)\n"
"Prints \"monitor: http://ADDR:PORT/\" once serving (port 0: one the system picks).\n"
"\n"
"  --http ADDR:PORT     where to serve (default " MONITOR_DEFAULT_HTTP "; [::1]:PORT for IPv6)\n"
"  --interval S         how often to gather the counters (default 1)\n"
"  -t, --timeout S      stop serving after S seconds (default: until Ctrl-C)"
};
