/*  =========================================================================
    cli_io - bodies in and out of the meshbus tool, as bytes

    Bodies are bytes: a NUL or any other byte value goes through unchanged,
    and a line of stdin is one message however long it is, up to the body
    limit; a longer line is refused whole and said, never split (splitting
    once turned a 50 MB line into 763 messages and lost a byte per piece).

    Output that a person or a line-oriented tool reads (sub, recv) keeps
    one message per line by escaping what would break a line; --raw and
    call give the bytes as they are. Writes notice a reader that went away
    (SIGPIPE is ignored in the tool, so a write fails with EPIPE): the
    subcommand then ends as `yes | head -1` does, with exit status 0.
    ========================================================================= */

#include "cli.h"
#include <czmq.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

//  ---------------------------------------------------------------------
//  Headers

int
cli_header_add (const cli_cmd_t *cmd, cli_headers_t *headers, const char *text)
{
    const char *eq = strchr (text, '=');
    if (!eq || eq == text)
        return cli_usage (cmd, "-H '%s': a header is KEY=VALUE", text), -1;
    if (headers->count == MESH_MAX_HEADERS)
        return cli_usage (cmd, "-H: at most %d headers", MESH_MAX_HEADERS), -1;
    size_t key = (size_t) (eq - text), value = strlen (eq + 1);
    if (key > MESH_MAX_HEADER_KEY || value > MESH_MAX_HEADER_VALUE)
        return cli_usage (cmd, "-H '%.40s...': a key has at most %d bytes, a value %d",
                          text, MESH_MAX_HEADER_KEY, MESH_MAX_HEADER_VALUE), -1;
    size_t total = key + value;
    for (size_t i = 0; i < headers->count; i++)
        total += strlen (headers->list [2 * i]) + strlen (headers->list [2 * i + 1]);
    if (total > MESH_MAX_HEADERS_BYTES)
        return cli_usage (cmd, "-H: headers have at most %d bytes together",
                          MESH_MAX_HEADERS_BYTES), -1;
    //  argv outlives the command: the key is cut out of a copy kept for it
    char *copy = strdup (text);
    if (!copy)
        return cli_usage (cmd, "out of memory"), -1;
    copy [key] = 0;
    headers->list [2 * headers->count] = copy;
    headers->list [2 * headers->count + 1] = copy + key + 1;
    headers->count++;
    return 0;
}

//  ---------------------------------------------------------------------
//  Lines of stdin

#define LINE_READ   65536           //  bytes read at a time
#define LINE_MAX_   ((size_t) MESH_MAX_BODY)

static int
s_grow (cli_lines_t *r, size_t need)
{
    if (need <= r->cap)
        return 0;
    size_t cap = r->cap? r->cap: LINE_READ;
    while (cap < need)
        cap *= 2;
    char *buf = (char *) realloc (r->buf, cap);
    if (!buf)
        return -1;
    r->buf = buf;
    r->cap = cap;
    return 0;
}

static size_t s_taken;             //  bytes of the line last returned

int
cli_next_line (cli_lines_t *r, mesh_node_t *node, const char **line, size_t *size,
               int wait_ms)
{
    //  the line returned last time is dropped now, not before: the caller
    //  used it in place
    if (s_taken) {
        memmove (r->buf, r->buf + s_taken, r->len - s_taken);
        r->len -= s_taken;
        r->scan = 0;
        s_taken = 0;
    }
    while (true) {
        char *nl = (char *) memchr (r->buf + r->scan, '\n', r->len - r->scan);
        if (r->skipping) {
            //  inside a refused line: drop bytes up to its newline
            if (!nl) {
                r->len = r->scan = 0;
                if (r->eof)
                    return -1;
            }
            else {
                size_t used = (size_t) (nl - r->buf) + 1;
                memmove (r->buf, r->buf + used, r->len - used);
                r->len -= used;
                r->scan = 0;
                r->skipping = false;
                continue;
            }
        }
        else
        if (nl || (r->eof && r->len)) {
            size_t n = nl? (size_t) (nl - r->buf): r->len;
            if (n > LINE_MAX_) {
                //  the whole over-long line arrived at once: refused all
                //  the same (it would fail to send, or worse, go unsaid)
                fprintf (stderr, "meshbus: refused a line of %zu bytes, more than the body "
                         "limit of %zu: it was not sent, not even in part\n", n, LINE_MAX_);
                r->refused++;
                size_t used = nl? n + 1: n;
                memmove (r->buf, r->buf + used, r->len - used);
                r->len -= used;
                r->scan = 0;
                continue;
            }
            *line = r->buf;
            *size = n;
            s_taken = nl? n + 1: n;
            return 1;
        }
        else
        if (r->eof)
            return -1;
        else {
            r->scan = r->len;
            if (r->len > LINE_MAX_) {
                fprintf (stderr, "meshbus: refused a line of more than %zu bytes (the body "
                         "limit): it was not sent, not even in part\n", LINE_MAX_);
                r->refused++;
                r->skipping = true;
                r->len = r->scan = 0;
                continue;
            }
        }
        //  more input, serving the node meanwhile
        struct pollfd fds [2] = {
            { .fd = 0, .events = POLLIN },
            { .fd = node? mesh_node_fd (node): -1, .events = POLLIN },
        };
        poll (fds, node? 2: 1, wait_ms);
        if (node)
            mesh_node_dispatch (node, 0);
        if (!(fds [0].revents & (POLLIN | POLLHUP | POLLERR)))
            return 0;
        if (s_grow (r, r->len + LINE_READ)) {
            fprintf (stderr, "meshbus: out of memory reading a line of %zu bytes\n", r->len);
            return -1;
        }
        ssize_t got = read (0, r->buf + r->len, LINE_READ);
        if (got < 0 && errno == EINTR)
            return 0;
        if (got <= 0)
            r->eof = true;
        else
            r->len += (size_t) got;
    }
}

void
cli_lines_free (cli_lines_t *r)
{
    free (r->buf);
    memset (r, 0, sizeof *r);
    s_taken = 0;
}

char *
cli_read_file (const char *path, size_t *size)
{
    bool in = streq_ (path, "-");
    FILE *file = in? stdin: fopen (path, "rb");
    if (!file) {
        cli_fail ("%s: %s", path, strerror (errno));
        return NULL;
    }
    size_t len = 0, cap = 65536;
    char *buf = (char *) malloc (cap);
    while (buf) {
        if (len == cap) {
            if (cap > LINE_MAX_) {
                cli_fail ("%s: more than %zu bytes, the body limit", in? "stdin": path,
                          LINE_MAX_);
                free (buf);
                buf = NULL;
                break;
            }
            char *grown = (char *) realloc (buf, cap * 2);
            if (!grown) {
                free (buf);
                buf = NULL;
                cli_fail ("out of memory reading %s", path);
                break;
            }
            buf = grown;
            cap *= 2;
        }
        size_t n = fread (buf + len, 1, cap - len, file);
        len += n;
        if (n == 0) {
            if (ferror (file)) {
                cli_fail ("%s: %s", path, strerror (errno));
                free (buf);
                buf = NULL;
            }
            break;
        }
    }
    if (!in)
        fclose (file);
    if (buf && len > LINE_MAX_) {
        cli_fail ("%s: %zu bytes, more than the body limit of %zu", path, len, LINE_MAX_);
        free (buf);
        buf = NULL;
    }
    *size = len;
    return buf;
}

//  ---------------------------------------------------------------------
//  Output

static bool s_closed = false;

bool
cli_stdout_closed (void)
{
    if (!s_closed) {
        //  A pipe whose reader left shows POLLERR on its write end: a
        //  subscriber with nothing to print still ends at once
        struct pollfd fd = { .fd = 1, .events = 0 };
        if (poll (&fd, 1, 0) == 1 && (fd.revents & (POLLERR | POLLHUP)))
            s_closed = true;
    }
    return s_closed;
}

int
cli_write (const void *data, size_t size)
{
    if (s_closed)
        return -1;
    if (size && fwrite (data, 1, size, stdout) != size) {
        s_closed = true;
        return -1;
    }
    return 0;
}

int
cli_flush (void)
{
    if (s_closed)
        return -1;
    if (fflush (stdout)) {
        s_closed = true;
        return -1;
    }
    return 0;
}

//  Length of the valid UTF-8 sequence at s (n bytes left), 0 if none
static size_t
s_utf8_seq (const unsigned char *s, size_t n)
{
    unsigned char c = s [0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
    else return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s [i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s [i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
    ||  (cp >= 0xd800 && cp <= 0xdfff))
        return 0;               //  overlong, beyond Unicode, or a surrogate
    return len;
}

bool
cli_utf8_valid (const void *data, size_t size)
{
    const unsigned char *s = (const unsigned char *) data;
    for (size_t i = 0; i < size; ) {
        size_t len = s_utf8_seq (s + i, size - i);
        if (!len)
            return false;
        i += len;
    }
    return true;
}

int
cli_write_escaped (const void *data, size_t size)
{
    const unsigned char *s = (const unsigned char *) data;
    char out [8];
    for (size_t i = 0; i < size; ) {
        unsigned char c = s [i];
        size_t len = s_utf8_seq (s + i, size - i);
        const char *esc = NULL;
        if (c == '\n') esc = "\\n";
        else if (c == '\t') esc = "\\t";
        else if (c == '\r') esc = "\\r";
        else if (c == '\\') esc = "\\\\";
        else if (c < 0x20 || c == 0x7f || len == 0
             || (len == 2 && c == 0xc2 && s [i + 1] < 0xa0)) {
            //  control bytes, C1 controls (U+0080..U+009F) and bytes that
            //  are not UTF-8: one \xHH per byte, so the bytes can be rebuilt
            size_t bytes = len? len: 1;
            for (size_t k = 0; k < bytes; k++) {
                snprintf (out, sizeof out, "\\x%02x", s [i + k]);
                if (cli_write (out, 4))
                    return -1;
            }
            i += bytes;
            continue;
        }
        if (esc) {
            if (cli_write (esc, 2))
                return -1;
            i++;
        }
        else {
            if (cli_write (s + i, len))
                return -1;
            i += len;
        }
    }
    return 0;
}

int
cli_write_json_string (const char *text, size_t size)
{
    if (cli_write ("\"", 1))
        return -1;
    char out [8];
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char) text [i];
        int rc;
        if (c == '"') rc = cli_write ("\\\"", 2);
        else if (c == '\\') rc = cli_write ("\\\\", 2);
        else if (c == '\n') rc = cli_write ("\\n", 2);
        else if (c == '\t') rc = cli_write ("\\t", 2);
        else if (c == '\r') rc = cli_write ("\\r", 2);
        else if (c < 0x20 || c == 0x7f) {
            snprintf (out, sizeof out, "\\u%04x", c);
            rc = cli_write (out, 6);
        }
        else rc = cli_write (&text [i], 1);
        if (rc)
            return -1;
    }
    return cli_write ("\"", 1);
}

//  ---------------------------------------------------------------------
//  Progress

void
cli_progress_init (cli_progress_t *p, bool quiet)
{
    memset (p, 0, sizeof *p);
    p->on = !quiet && isatty (2);
    p->started = mesh_clock_ms ();
}

void
cli_progress_show (cli_progress_t *p, const char *fmt, ...)
{
    if (!p->on)
        return;
    uint64_t now = mesh_clock_ms ();
    if (p->shown && now - p->shown < 200)
        return;                 //  five updates a second are enough to read
    p->shown = now;
    char line [160];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    fprintf (stderr, "\r\033[K%s, %.1f s", line, (double) (now - p->started) / 1000);
}

void
cli_progress_end (cli_progress_t *p)
{
    if (p->on && p->shown)
        fprintf (stderr, "\r\033[K");
    p->shown = 0;
}
