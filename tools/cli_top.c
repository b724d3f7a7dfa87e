/*  =========================================================================
    meshbus top - the mesh live in a terminal, one row per node

    Plain ANSI escapes and termios, not ncurses: the view is a table
    redrawn whole once a second, so curses' screen diffing buys nothing,
    while it would add a library to the tool and to every machine that
    runs it (and terminfo lookups to go wrong under tmux, screen or a
    dumb TERM). Every terminal of the last thirty years knows the half
    dozen sequences used here. --once (or stdout not a terminal) prints
    one snapshot without any escape, for scripts.
    ========================================================================= */

#include "cli.h"
#include "monitor/cli_view.h"
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

typedef enum { SORT_NAME, SORT_STATE, SORT_UPTIME, SORT_RTT, SORT_IN, SORT_OUT, SORT_DROPS,
               SORT_COUNT } s_sort_t;
static const char *s_sort_names [] = { "name", "state", "uptime", "rtt", "in", "out", "drops" };

typedef struct {
    s_sort_t sort;
    bool reverse;
    char selected [33];             //  id of the node in the second pane
    int rows, cols;
    bool ansi;
    const char *want;               //  --select: a node's name or id prefix, or NULL
} s_screen_t;

static s_screen_t *s_cmp_screen;    //  for qsort's comparator

//  Text from the network, made safe for a terminal: no control bytes;
//  cut to cap - 1 bytes, never inside a UTF-8 character
static void
s_safe (char *out, size_t cap, const char *text)
{
    const unsigned char *t = (const unsigned char *) text;
    size_t n = 0;
    for (; t [n] && n + 1 < cap; n++)
        out [n] = t [n] < 0x20 || t [n] == 0x7f? '?': (char) t [n];
    if (t [n])                      //  cut: back to where a character starts
        while (n > 0 && (t [n] & 0xC0) == 0x80)
            n--;
    out [n] = 0;
}

static void
s_duration (char *out, size_t cap, int64_t ms)
{
    if (ms < 0)
        snprintf (out, cap, "-");
    else
    if (ms < 3600000)
        snprintf (out, cap, "%lldm%02llds", (long long) (ms / 60000), (long long) (ms / 1000 % 60));
    else
    if (ms < 86400000)
        snprintf (out, cap, "%lldh%02lldm", (long long) (ms / 3600000), (long long) (ms / 60000 % 60));
    else
        snprintf (out, cap, "%lldd%02lldh", (long long) (ms / 86400000), (long long) (ms / 3600000 % 24));
}

static void
s_rtt (char *out, size_t cap, int64_t us)
{
    if (us < 0)
        snprintf (out, cap, "-");
    else
    if (us < 10000)
        snprintf (out, cap, "%.2fms", us / 1000.0);
    else
        snprintf (out, cap, "%.0fms", us / 1000.0);
}

static int
s_compare (const void *a, const void *b)
{
    const view_node_t *x = *(const view_node_t * const *) a, *y = *(const view_node_t * const *) b;
    double dx = 0, dy = 0;
    int c = 0;
    switch (s_cmp_screen->sort) {
        case SORT_NAME:   c = strcmp (x->name, y->name); break;
        case SORT_STATE:  c = strcmp (x->state, y->state); break;
        case SORT_UPTIME: dx = (double) x->uptime_ms, dy = (double) y->uptime_ms; break;
        case SORT_RTT:    dx = (double) x->rtt_us, dy = (double) y->rtt_us; break;
        case SORT_IN:     dx = x->rate_in, dy = y->rate_in; break;
        case SORT_OUT:    dx = x->rate_out, dy = y->rate_out; break;
        default:          dx = (double) x->drops, dy = (double) y->drops; break;
    }
    if (!c && s_cmp_screen->sort != SORT_NAME && s_cmp_screen->sort != SORT_STATE)
        c = dx < dy? 1: dx > dy? -1: 0;      //  numbers: biggest first
    if (!c)
        c = strcmp (x->id, y->id);
    return s_cmp_screen->reverse? -c: c;
}

//  One line of output, cut to the screen's width when on a terminal
static void
s_line (s_screen_t *screen, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void
s_line (s_screen_t *screen, const char *fmt, ...)
{
    char line [1024];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    if (screen->ansi && screen->cols > 0 && strlen (line) > (size_t) screen->cols)
        line [screen->cols] = 0;
    printf ("%s%s\n", line, screen->ansi? "\033[K": "");
}

//  A row's field: its number, or 0
static double
s_num (json_t *row, const char *field)
{
    json_t *value = json_object_get (row, field);
    return json_is_number (value)? json_number_value (value): 0;
}

//  A row's name (a subject, a service, a queue: any byte but controls),
//  cut to width columns
static const char *
s_row_name (json_t *row, const char *field, char *out, size_t cap)
{
    const char *text = json_string_value (json_object_get (row, field));
    s_safe (out, cap, text? text: "?");
    return out;
}

//  The tables of the pattern pane; returns the lines written, at most
//  budget (the rows left on the screen)
static int
s_pattern_pane (s_screen_t *screen, json_t *tables, int budget)
{
    int lines = 0;
    char name [48];
    size_t i;
    json_t *row;
#define ROOM()  (lines < budget)
#define MORE(table) do { \
        json_int_t more = json_integer_value (json_object_get (tables, table ".more")); \
        if (more > 0 && ROOM ()) { s_line (screen, "  (+%lld more)", (long long) more); lines++; } \
    } while (0)
    json_t *subs = json_object_get (tables, "subscriptions");
    if (json_array_size (subs) && ROOM ()) {
        s_line (screen, "  %-40s %12s %10s", "SUBSCRIPTION", "RECEIVED", "RECV/s");
        lines++;
        json_array_foreach (subs, i, row) {
            if (!ROOM ())
                break;
            s_line (screen, "  %-40s %12.0f %10.1f", s_row_name (row, "pattern", name, 41),
                    s_num (row, "received"), s_num (row, "rate"));
            lines++;
        }
        MORE ("subscriptions");
    }
    json_t *services = json_object_get (tables, "services");
    if (json_array_size (services) && ROOM ()) {
        s_line (screen, "  %-40s %12s %10s %10s %10s", "SERVICE (served here)", "SERVED",
                "CALLS/s", "ERRORS", "ERR/s");
        lines++;
        json_array_foreach (services, i, row) {
            if (!ROOM ())
                break;
            s_line (screen, "  %-40s %12.0f %10.1f %10.0f %10.1f",
                    s_row_name (row, "service", name, 41), s_num (row, "served"),
                    s_num (row, "rate"), s_num (row, "errors"), s_num (row, "errors_rate"));
            lines++;
        }
        MORE ("services");
    }
    json_t *calls = json_object_get (tables, "calls");
    if (json_array_size (calls) && ROOM ()) {
        s_line (screen, "  %-40s %12s %10s %10s %10s %10s", "CALLED (from here)", "CALLS",
                "CALLS/s", "ERRORS", "MEAN ms", "P99<= ms");
        lines++;
        json_array_foreach (calls, i, row) {
            if (!ROOM ())
                break;
            char p99 [16];
            json_t *bound = json_object_get (row, "p99_le_ms");
            if (json_is_number (bound))
                snprintf (p99, sizeof p99, "%.1f", json_number_value (bound));
            else
                snprintf (p99, sizeof p99, "-");
            s_line (screen, "  %-40s %12.0f %10.1f %10.0f %10.2f %10s",
                    s_row_name (row, "service", name, 41), s_num (row, "calls"),
                    s_num (row, "rate"), s_num (row, "errors"), s_num (row, "mean_ms"), p99);
            lines++;
        }
        MORE ("calls");
    }
    json_t *queues = json_object_get (tables, "queues");
    if (json_array_size (queues) && ROOM ()) {
        s_line (screen, "  %-40s %9s %9s %9s %9s %9s %9s", "QUEUE (pushed here)", "PENDING",
                "READY", "IN-FLIGHT", "DEAD", "DONE/s", "WORKERS");
        lines++;
        json_array_foreach (queues, i, row) {
            if (!ROOM ())
                break;
            s_line (screen, "  %-40s %9.0f %9.0f %9.0f %9.0f %9.1f %9.0f",
                    s_row_name (row, "queue", name, 41), s_num (row, "pending"),
                    s_num (row, "ready"), s_num (row, "in_flight"), s_num (row, "dead"),
                    s_num (row, "rate"), s_num (row, "workers"));
            lines++;
        }
        MORE ("queues");
    }
    json_t *works = json_object_get (tables, "works");
    if (json_array_size (works) && ROOM ()) {
        s_line (screen, "  %-40s %12s %10s %10s", "QUEUE (worked here)", "HANDLED", "JOBS/s",
                "FAILED");
        lines++;
        json_array_foreach (works, i, row) {
            if (!ROOM ())
                break;
            s_line (screen, "  %-40s %12.0f %10.1f %10.0f", s_row_name (row, "queue", name, 41),
                    s_num (row, "handled"), s_num (row, "rate"), s_num (row, "failed"));
            lines++;
        }
        MORE ("works");
    }
#undef ROOM
#undef MORE
    return lines;
}

static void
s_draw (cli_view_t *view, s_screen_t *screen)
{
    if (screen->ansi) {
        struct winsize ws;
        if (ioctl (STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
            screen->rows = ws.ws_row, screen->cols = ws.ws_col;
        printf ("\033[H");
    }
    cli_view_lock (view);
    size_t count = cli_view_node_count (view);
    const view_node_t *order [VIEW_MAX_NODES];
    for (size_t i = 0; i < count; i++)
        order [i] = cli_view_node (view, i);
    s_cmp_screen = screen;
    qsort (order, count, sizeof order [0], s_compare);
    size_t alive = 0;
    for (size_t i = 0; i < count; i++)
        alive += !streq_ (order [i]->state, "GONE");
    s_line (screen, "meshbus top - %zu nodes, %zu links, sorted by %s%s%s", alive,
            cli_view_link_count (view), s_sort_names [screen->sort],
            screen->reverse? " (reversed)": "",
            screen->ansi? "   [q]uit [n]ame s[t]ate [u]ptime [r]tt [i]n [o]ut [d]rops [R]everse [j/k] select": "");
    if (screen->ansi)
        printf ("\033[7m");
    s_line (screen, "%-16s %-8s %-21s %-10s %8s %8s %9s %9s %8s %s", "NAME", "ID", "HOST",
            "STATE", "UPTIME", "RTT", "IN/s", "OUT/s", "DROPS", "MAIN DROP");
    if (screen->ansi)
        printf ("\033[0m");
    bool found = false;
    for (size_t i = 0; i < count && screen->want && !found; i++)
        if (streq_ (order [i]->name, screen->want)
        ||  strncmp (order [i]->id, screen->want, strlen (screen->want)) == 0) {
            snprintf (screen->selected, sizeof screen->selected, "%s", order [i]->id);
            screen->want = NULL;        //  found once: j/k move on from it
            found = true;
        }
    for (size_t i = 0; i < count; i++)
        found |= streq_ (order [i]->id, screen->selected);
    if (!found && count)
        snprintf (screen->selected, sizeof screen->selected, "%s", order [0]->id);
    int budget = screen->ansi? screen->rows - 4 - 8: 1 << 30;   //  rows left for the table
    int shown = 0;
    size_t selected_index = 0;
    for (size_t i = 0; i < count; i++) {
        const view_node_t *node = order [i];
        bool sel = streq_ (node->id, screen->selected);
        if (sel)
            selected_index = (size_t) (node - cli_view_node (view, 0));
        if (shown >= budget && !sel)
            continue;
        char name [64], host [64], uptime [16], rtt [16], reason [64];
        s_safe (name, 17, node->name);
        const char *endpoint = strncmp (node->endpoint, "tcp://", 6) == 0? node->endpoint + 6
                                                                         : node->endpoint;
        s_safe (host, 22, endpoint);
        s_duration (uptime, sizeof uptime, node->uptime_ms);
        s_rtt (rtt, sizeof rtt, node->self? -1: node->rtt_us);
        s_safe (reason, sizeof reason, streq_ (node->state, "GONE")? node->left: node->drop_reason);
        if (screen->ansi && sel)
            printf ("\033[1m");
        s_line (screen, "%-16s %-8.8s %-21s %-10s %8s %8s %9.1f %9.1f %8llu %s", name, node->id,
                host, node->state, uptime, rtt, node->rate_in, node->rate_out,
                (unsigned long long) node->drops, reason);
        if (screen->ansi && sel)
            printf ("\033[0m");
        shown++;
    }
    //  second pane: the selected node's subscriptions, services, calls
    //  and queues, with rates (cli_patterns.c)
    const view_node_t *node = count? cli_view_node (view, selected_index): NULL;
    if (node) {
        char name [64];
        s_safe (name, sizeof name, node->name);
        s_line (screen, "%s", "");
        s_line (screen, "%s%s (%.8s) patterns%s", screen->ansi? "\033[7m": "", name, node->id,
                screen->ansi? "\033[0m": "");
        int budget_rows = screen->ansi? screen->rows - shown - 6: 1 << 30;
        json_t *tables = cli_view_patterns (view, selected_index);
        int lines = s_pattern_pane (screen, tables, budget_rows);
        json_decref (tables);
        if (!lines)
            s_line (screen, "  %s", node->stats? "(no subscriptions, services, calls or queues)"
                                               : "(did not answer)");
    }
    cli_view_unlock (view);
    if (screen->ansi)
        printf ("\033[J");
    fflush (stdout);
}

static struct termios s_saved;
static bool s_raw = false;

static void
s_terminal (bool raw)
{
    if (raw && !s_raw && tcgetattr (STDIN_FILENO, &s_saved) == 0) {
        struct termios t = s_saved;
        t.c_lflag &= ~(ICANON | ECHO);
        t.c_cc [VMIN] = 0, t.c_cc [VTIME] = 0;
        tcsetattr (STDIN_FILENO, TCSANOW, &t);
        s_raw = true;
        printf ("\033[?1049h\033[?25l\033[H\033[2J");       //  own screen, no cursor
    }
    else
    if (!raw && s_raw) {
        tcsetattr (STDIN_FILENO, TCSANOW, &s_saved);
        s_raw = false;
        printf ("\033[?25h\033[?1049l");
        fflush (stdout);
    }
}

//  Move the selection one row up or down in the order shown
static void
s_select (cli_view_t *view, s_screen_t *screen, int step)
{
    cli_view_lock (view);
    size_t count = cli_view_node_count (view);
    const view_node_t *order [VIEW_MAX_NODES];
    for (size_t i = 0; i < count; i++)
        order [i] = cli_view_node (view, i);
    s_cmp_screen = screen;
    qsort (order, count, sizeof order [0], s_compare);
    for (size_t i = 0; i < count; i++)
        if (streq_ (order [i]->id, screen->selected)) {
            size_t to = step < 0? (i? i - 1: 0): (i + 1 < count? i + 1: i);
            snprintf (screen->selected, sizeof screen->selected, "%s", order [to]->id);
            break;
        }
    cli_view_unlock (view);
}

//  A key: false to quit
static bool
s_key (cli_view_t *view, s_screen_t *screen, char key)
{
    switch (key) {
        case 'q': case 'Q': return false;
        case 'n': screen->sort = SORT_NAME; break;
        case 't': screen->sort = SORT_STATE; break;
        case 'u': screen->sort = SORT_UPTIME; break;
        case 'r': screen->sort = SORT_RTT; break;
        case 'i': screen->sort = SORT_IN; break;
        case 'o': screen->sort = SORT_OUT; break;
        case 'd': screen->sort = SORT_DROPS; break;
        case 'R': screen->reverse = !screen->reverse; break;
        case 'j': s_select (view, screen, 1); break;
        case 'k': s_select (view, screen, -1); break;
        default: break;
    }
    return true;
}

enum { TOP_ONCE = CLI_OPT (1), TOP_SORT = CLI_OPT (2), TOP_INTERVAL = CLI_OPT (3),
       TOP_SELECT = CLI_OPT (4) };

static const struct option s_top_options [] = {
    { "once",     no_argument,       NULL, TOP_ONCE },
    { "sort",     required_argument, NULL, TOP_SORT },
    { "interval", required_argument, NULL, TOP_INTERVAL },
    { "select",   required_argument, NULL, TOP_SELECT },
    { NULL, 0, NULL, 0 }
};

static int
s_top (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv)
{
    cli_args_t args;
    cli_args_init (&args, cmd, opts, s_top_options, "", argc, argv);
    s_screen_t screen = { SORT_NAME, false, "", 24, 80, false, NULL };
    bool once = false;
    double interval = 1;
    int c;
    while ((c = cli_getopt (&args)) >= 0) {
        int bad = 0;
        switch (c) {
            case TOP_ONCE:     once = true; break;
            case TOP_SELECT:   screen.want = optarg; break;
            case TOP_INTERVAL: bad = cli_seconds (cmd, "--interval", optarg, 0.1, 3600, &interval); break;
            case TOP_SORT: {
                bool known = false;
                for (int i = 0; i < SORT_COUNT; i++)
                    if (streq_ (optarg, s_sort_names [i]))
                        screen.sort = (s_sort_t) i, known = true;
                if (!known)
                    bad = cli_usage (cmd, "--sort wants name, state, uptime, rtt, in, out or drops");
                break;
            }
            default:           bad = -1;
        }
        if (bad)
            return CLI_USAGE;
    }
    if (c == CLI_STOP)
        return args.status;
    if (cli_positionals (&args, 0, 0))
        return CLI_USAGE;
    once |= !isatty (STDOUT_FILENO) || !isatty (STDIN_FILENO);
    mesh_node_t *node = cli_node_new (opts, "top");
    cli_view_t *view = node? cli_view_new (node): NULL;
    if (!view) {
        mesh_node_destroy (&node);
        return CLI_FAILED;
    }
    int64_t step = (int64_t) (interval * 1000);
    int rc = 0;
    if (once) {
        //  discovery settles for about one and a half beacon intervals (as
        //  `meshbus stats`), then two refreshes an interval apart for rates
        int64_t until = (int64_t) cli_view_mono_ms () + 1500;
        for (int round = 0; round < 2 && !cli_interrupted () && !rc; round++) {
            while (!cli_interrupted () && (int64_t) cli_view_mono_ms () < until) {
                mesh_event_t *event = mesh_node_wait_event (node, 100);
                mesh_event_destroy (&event);
            }
            rc = cli_view_refresh (view, (int) (step * 3 / 4 > 500? step * 3 / 4: 500))? 1: 0;
            until = (int64_t) cli_view_mono_ms () + step;
        }
        if (!rc)
            s_draw (view, &screen);
        else
            cli_fail ("%s", mesh_last_error ());
    }
    else {
        screen.ansi = true;
        s_terminal (true);
        bool running = true;
        int64_t next = 0;
        while (running && !cli_interrupted ()) {
            if ((int64_t) cli_view_mono_ms () >= next) {
                //  short answers: keys wait while the view gathers
                if (cli_view_refresh (view, (int) (step / 2 < 500? step / 2: 500))) {
                    rc = 1;
                    break;
                }
                next = (int64_t) cli_view_mono_ms () + step;
                s_draw (view, &screen);
            }
            struct pollfd in = { STDIN_FILENO, POLLIN, 0 };
            if (poll (&in, 1, 0) > 0) {
                char keys [16];
                ssize_t n = read (STDIN_FILENO, keys, sizeof keys);
                for (ssize_t i = 0; i < n && running; i++)
                    running = s_key (view, &screen, keys [i]);
                if (n == 0)
                    running = false;        //  stdin closed
                if (running)
                    s_draw (view, &screen);
            }
            mesh_event_t *event = mesh_node_wait_event (node, 50);
            mesh_event_destroy (&event);
        }
        s_terminal (false);
        if (rc)
            cli_fail ("%s", mesh_last_error ());
    }
    cli_view_destroy (&view);
    mesh_node_destroy (&node);
    return rc;
}

const cli_cmd_t cli_cmd_top = {
    "top", s_top, "[--once] [--sort COLUMN] [--select NODE] [--interval S] [FLAGS]",
    "the mesh live in the terminal: a row per node, the selected node's patterns",
"Joins the mesh and, every interval, asks every node for its counters: one row\n"
"per node (name, id, host, state, uptime, round-trip time, messages a second in\n"
"and out, drops and their main reason), and below the selected node's patterns:\n"
"subscriptions with messages received a second, services served with calls and\n"
"errors a second, services called with latency, queues with pending, in-flight\n"
"and dead jobs (the busiest 50 of each). Keys: q quit; n t u r i o d sort by name,\n"
"state, uptime, rtt, in, out, drops; R reverse; j/k select.\n"
"\n"
"  --once               print one snapshot and exit (also when not on a terminal)\n"
"  --sort COLUMN        name (default), state, uptime, rtt, in, out or drops\n"
"  --select NODE        the node of the second pane, by name or id prefix\n"
"  --interval S         refresh every S seconds (default 1)"
};
