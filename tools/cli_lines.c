/*  =========================================================================
    cli_lines - what the subcommands share for reading their input: counts
    given as flags, and lines from stdin read without stdio, so that poll()
    sees what is really waiting and the node keeps being served between
    lines (acknowledgements, replay requests, credit, new subscribers)
    ========================================================================= */

#include "meshbus_cli.h"
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

int
cli_count (const char *text, const char *what, long min, long *count)
{
    char *end;
    *count = strtol (text, &end, 10);
    if (*end || end == text || *count < min)
        return cli_fail ("%s: '%s' is not a number >= %ld", what, text, min), -1;
    return 0;
}

int
cli_next_line (cli_lines_t *r, mesh_node_t *node, char *out, size_t cap, int wait_ms)
{
    char *nl = (char *) memchr (r->buf, '\n', r->len);
    if (!nl && (r->eof || r->len == sizeof r->buf)) {
        if (r->len == 0)
            return -1;
        nl = r->buf + r->len;       //  last line without newline, or a full buffer
    }
    if (nl) {
        size_t n = (size_t) (nl - r->buf);
        size_t copy = n < cap - 1? n: cap - 1;
        memcpy (out, r->buf, copy);
        out [copy] = 0;
        size_t used = n < r->len? n + 1: n;
        memmove (r->buf, r->buf + used, r->len - used);
        r->len -= used;
        return 1;
    }
    struct pollfd fds [2] = {
        { .fd = 0, .events = POLLIN },
        { .fd = mesh_node_fd (node), .events = POLLIN },
    };
    poll (fds, 2, wait_ms);
    mesh_node_dispatch (node, 0);
    if (fds [0].revents & (POLLIN | POLLHUP)) {
        ssize_t got = read (0, r->buf + r->len, sizeof r->buf - r->len);
        if (got <= 0)
            r->eof = true;
        else
            r->len += (size_t) got;
    }
    return 0;
}
