/*  =========================================================================
    ticker - a LAN-wide price ticker with last-value catch-up

    What it shows: a publisher quotes prices on "ticker.<SYMBOL>" every
    100 ms for about 3 s; some symbols move at every tick, some rarely, and
    HALTD is quoted once at the start and never again. A subscriber joins
    about 1 s late with the last-value option on "ticker.*": at once it gets
    the current price of every symbol (flagged MESH_FLAG_LAST_VALUE, HALTD
    included, which it would otherwise never see), then the live stream.
    The program checks that the subscriber got one last value per symbol
    before anything live, then every later quote of every symbol, none
    twice, none missing, in order (each quote carries the symbol's update
    number).

    Both roles in one process, on loopback, in a cluster of their own:

        build/debug/examples/ticker

    Across real hosts (same LAN, UDP broadcast allowed), give both the same
    cluster name; start the subscriber while the publisher runs:

        host-a$ build/debug/examples/ticker --role pub --iface eth0 --cluster t1 --seconds 30
        host-b$ build/debug/examples/ticker --role sub --iface eth0 --cluster t1

    The subscriber stops when the publisher leaves (or after 120 s). Exit 0
    when what the role should see happened, 1 otherwise, 2 on bad usage.
    ========================================================================= */

#include "meshbus.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TICK_MS         100
#define JOIN_AFTER_MS   1000    //  the subscriber joins this late (both roles in one process)
#define SUB_WAIT_MS     120000  //  a lone subscriber gives up after this

typedef struct {
    const char *name;
    double price;
    int every;                  //  quoted every N ticks; 0 = only at the start
} symbol_t;

static symbol_t symbols [] = {
    { "ACME",  101.00,  1 },
    { "GLOBX",  54.20,  2 },
    { "INITC",  12.75,  5 },
    { "HOOLI", 950.00,  7 },
    { "HALTD",   3.10,  0 },
};
#define SYMBOLS ((int) (sizeof symbols / sizeof symbols [0]))

//  ---------------------------------------------------------------------
//  Publisher

typedef struct {
    mesh_node_t *node;
    mesh_pubsub_t *pubsub;
    unsigned long updates [SYMBOLS];    //  quotes published per symbol
    unsigned rand_state;
} publisher_t;

static int
publish_tick (publisher_t *self, int tick)
{
    for (int i = 0; i < SYMBOLS; i++) {
        if (tick > 0 && (symbols [i].every == 0 || tick % symbols [i].every))
            continue;
        //  a small random walk, in cents
        self->rand_state = self->rand_state * 1103515245u + 12345u;
        int cents = (int) ((self->rand_state >> 16) % 41) - 20;
        if (symbols [i].price + cents / 100.0 > 0.01)
            symbols [i].price += cents / 100.0;
        char subject [64], body [64];
        snprintf (subject, sizeof subject, "ticker.%s", symbols [i].name);
        int size = snprintf (body, sizeof body, "%s %.2f %lu", symbols [i].name,
                             symbols [i].price, ++self->updates [i]);
        if (mesh_publish (self->pubsub, subject, body, (size_t) size) < 0) {
            fprintf (stderr, "ticker: publish: %s\n", mesh_last_error ());
            return -1;
        }
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Subscriber

typedef struct {
    mesh_node_t *node;
    mesh_pubsub_t *pubsub;
    unsigned long seen [SYMBOLS];       //  last update number received, per symbol
    int last_values;                    //  MESH_FLAG_LAST_VALUE messages
    bool has_last_value [SYMBOLS];
    long live;                          //  live quotes
    int errors;
    int64_t joined_at, caught_up_at;
    char publisher [33];                //  who quotes, to notice it leave
} subscriber_t;

static int
symbol_index (const char *name)
{
    for (int i = 0; i < SYMBOLS; i++)
        if (strcmp (symbols [i].name, name) == 0)
            return i;
    return -1;
}

static void
on_quote (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    (void) pubsub;
    subscriber_t *self = (subscriber_t *) arg;
    char text [64], name [16];
    double price;
    unsigned long update;
    snprintf (text, sizeof text, "%.*s", (int) mesh_msg_size (msg), (const char *) mesh_msg_body (msg));
    int i = sscanf (text, "%15s %lf %lu", name, &price, &update) == 3? symbol_index (name): -1;
    if (i < 0) {
        printf ("  sub: ?? %s '%s'\n", mesh_msg_subject (msg), text);
        self->errors++;
        return;
    }
    snprintf (self->publisher, sizeof self->publisher, "%s", mesh_msg_sender (msg));
    bool last_value = (mesh_msg_flags (msg) & MESH_FLAG_LAST_VALUE) != 0;
    if (last_value) {
        //  the current price, at once: must come before anything live
        printf ("  sub: last value  %-6s %8.2f (quote #%lu)\n", name, price, update);
        if (self->live > 0 || self->has_last_value [i]) {
            printf ("  sub:   ^ unexpected: after live quotes, or twice\n");
            self->errors++;
        }
        self->has_last_value [i] = true;
        self->seen [i] = update;
        if (++self->last_values == SYMBOLS)
            self->caught_up_at = (int64_t) mesh_clock_ms ();
        return;
    }
    //  live: the next update of this symbol, nothing skipped or repeated
    if (self->live++ < 12 || update % 10 == 0)
        printf ("  sub: live        %-6s %8.2f (quote #%lu)\n", name, price, update);
    if (self->seen [i] && update != self->seen [i] + 1) {
        printf ("  sub:   ^ expected quote #%lu of %s\n", self->seen [i] + 1, name);
        self->errors++;
    }
    self->seen [i] = update;
}

static subscriber_t *
subscriber_new (const char *cluster, const char *iface)
{
    subscriber_t *self = (subscriber_t *) calloc (1, sizeof (subscriber_t));
    self->node = mesh_node_new ("ticker-sub");
    self->pubsub = mesh_pubsub_new (self->node);
    mesh_sub_opts_t opts = { .mode = MESH_SUB_DROP, .last_value = true };
    self->joined_at = (int64_t) mesh_clock_ms ();
    if (mesh_node_set_cluster (self->node, cluster)
    ||  mesh_node_set_iface (self->node, iface)
    ||  mesh_subscribe (self->pubsub, "ticker.*", &opts, on_quote, self) < 0
    ||  mesh_node_start (self->node)) {
        fprintf (stderr, "ticker: subscriber: %s\n", mesh_last_error ());
        self->errors++;
    }
    return self;
}

static void
subscriber_destroy (subscriber_t **self_p)
{
    if (*self_p) {
        mesh_pubsub_destroy (&(*self_p)->pubsub);
        mesh_node_destroy (&(*self_p)->node);
        free (*self_p);
        *self_p = NULL;
    }
}

//  Handle what arrived; true if the publisher we listen to left
static bool
subscriber_pump (subscriber_t *self, int timeout_ms)
{
    bool left = false;
    mesh_node_dispatch (self->node, timeout_ms);
    mesh_event_t *event;
    while ((event = mesh_node_event (self->node))) {
        int type = mesh_event_type (event);
        if (type >= MESH_EVENT_PATTERN) {
            //  GAP, REPLAYED, GAP_LOST: loss, which the check counts too
            printf ("  sub: event %s %llu\n", mesh_event_name (event),
                    (unsigned long long) mesh_event_count (event));
            if (type == MESH_EVENT_GAP || type == MESH_EVENT_GAP_LOST)
                self->errors++;
        }
        if (type == MESH_EVENT_EXIT && strcmp (mesh_event_peer (event), self->publisher) == 0)
            left = true;
        mesh_event_destroy (&event);
    }
    return left;
}

//  ---------------------------------------------------------------------

static int
usage (void)
{
    fprintf (stderr, "usage: ticker [--role both|pub|sub] [--iface IFACE] [--cluster NAME] "
             "[--seconds S]\n(--role pub or sub needs --cluster, the same on every host)\n");
    return 2;
}

int
main (int argc, char **argv)
{
    const char *role = "both", *iface = NULL, *cluster_arg = NULL;
    int seconds = 3;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp (argv [i], "--role") == 0)
            role = argv [++i];
        else
        if (i + 1 < argc && strcmp (argv [i], "--iface") == 0)
            iface = argv [++i];
        else
        if (i + 1 < argc && strcmp (argv [i], "--cluster") == 0)
            cluster_arg = argv [++i];
        else
        if (i + 1 < argc && strcmp (argv [i], "--seconds") == 0)
            seconds = atoi (argv [++i]);
        else
            return usage ();
    }
    bool both = strcmp (role, "both") == 0;
    bool pub = both || strcmp (role, "pub") == 0;
    bool sub = both || strcmp (role, "sub") == 0;
    if ((!pub && !sub) || seconds < 1 || (!both && !cluster_arg))
        return usage ();
    char cluster [128];
    if (cluster_arg)
        snprintf (cluster, sizeof cluster, "%s", cluster_arg);
    else
        snprintf (cluster, sizeof cluster, "ticker-%d-%llu", (int) getpid (),
                  (unsigned long long) (mesh_clock_ms () % 1000000));
    printf ("ticker: role %s, cluster %s, beacon on %s\n", role, cluster, iface? iface: "loopback");
    int rc = 0;

    if (!pub) {
        //  A lone subscriber on another host: until the publisher leaves
        subscriber_t *s = subscriber_new (cluster, iface);
        int64_t deadline = (int64_t) mesh_clock_ms () + SUB_WAIT_MS;
        while (!s->errors && (int64_t) mesh_clock_ms () < deadline)
            if (subscriber_pump (s, 100) && s->live + s->last_values > 0)
                break;
        printf ("ticker: %d last value(s), %ld live quote(s), %d error(s)\n",
                s->last_values, s->live, s->errors);
        if (s->errors || s->live + s->last_values == 0)
            rc = 1;
        subscriber_destroy (&s);
        printf ("ticker: %s\n", rc == 0? "OK": "FAILED");
        return rc;
    }

    publisher_t p = { .node = mesh_node_new ("ticker-pub"), .rand_state = (unsigned) getpid () };
    p.pubsub = mesh_pubsub_new (p.node);
    if (mesh_node_set_cluster (p.node, cluster)
    ||  mesh_node_set_iface (p.node, iface)
    ||  mesh_node_start (p.node)) {
        fprintf (stderr, "ticker: publisher: %s\n", mesh_last_error ());
        rc = 1;
    }
    subscriber_t *s = NULL;
    int ticks = seconds * 1000 / TICK_MS;
    int64_t start = (int64_t) mesh_clock_ms ();
    for (int tick = 0; tick < ticks && rc == 0; tick++) {
        if (publish_tick (&p, tick))
            rc = 1;
        if (tick == 0)
            printf ("  pub: first quote of %d symbols; %s\n", SYMBOLS,
                    both? "the subscriber joins in 1 s": "quoting for a while");
        if (both && !s && tick * TICK_MS >= JOIN_AFTER_MS) {
            printf ("  pub: tick %d (%d ms): the subscriber joins now\n", tick, tick * TICK_MS);
            s = subscriber_new (cluster, iface);
        }
        //  run both nodes until the next tick is due
        int64_t next = start + (int64_t) (tick + 1) * TICK_MS;
        while ((int64_t) mesh_clock_ms () < next) {
            mesh_node_dispatch (p.node, s? 0: (int) (next - (int64_t) mesh_clock_ms ()));
            if (s)
                subscriber_pump (s, 5);
        }
    }
    //  let the last quotes arrive
    int64_t settle = (int64_t) mesh_clock_ms () + 300;
    while (s && (int64_t) mesh_clock_ms () < settle) {
        mesh_node_dispatch (p.node, 0);
        subscriber_pump (s, 5);
    }
    if (!both && rc == 0) {
        //  stay a little so subscribers can ask for what a gap lost
        int64_t until = (int64_t) mesh_clock_ms () + 500;
        while ((int64_t) mesh_clock_ms () < until)
            mesh_node_dispatch (p.node, 50);
        printf ("ticker: published");
        for (int i = 0; i < SYMBOLS; i++)
            printf (" %s:%lu", symbols [i].name, p.updates [i]);
        printf ("\n");
    }
    if (s && rc == 0) {
        printf ("check:\n");
        if (s->last_values != SYMBOLS) {
            printf ("  %d last values, expected one per symbol (%d)\n", s->last_values, SYMBOLS);
            rc = 1;
        }
        else
            printf ("  one last value per symbol, %lld ms after the subscriber started\n",
                    (long long) (s->caught_up_at - s->joined_at));
        for (int i = 0; i < SYMBOLS; i++)
            if (s->seen [i] != p.updates [i]) {
                printf ("  %s: last quote seen #%lu, published #%lu\n", symbols [i].name,
                        s->seen [i], p.updates [i]);
                rc = 1;
            }
        if (s->errors) {
            printf ("  %d error(s) above\n", s->errors);
            rc = 1;
        }
        if (rc == 0)
            printf ("  then %ld live quotes, none missing, none twice, in order\n", s->live);
    }
    else
    if (both && rc == 0) {
        printf ("ticker: the subscriber never joined\n");
        rc = 1;
    }
    subscriber_destroy (&s);
    mesh_pubsub_destroy (&p.pubsub);
    mesh_node_destroy (&p.node);
    printf ("ticker: %s\n", rc == 0? "OK": "FAILED");
    return rc;
}
