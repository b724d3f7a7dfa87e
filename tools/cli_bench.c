/*  =========================================================================
    meshbus bench - a thin entry into the benchmarks of bench/

    The benchmarks themselves (what each side does, how they alternate)
    live in bench/ around one raw-libzmq harness (bench/bench_raw.h) and
    are linked into the tool from there; this file parses the flags and
    lends the benchmarks the tool's way of making nodes, so that every
    common flag (--cluster, --port, --hwm, --curve, ...) reaches them.
    ========================================================================= */

#include "cli.h"
#include "bench.h"
#include <stdio.h>
#include <stdlib.h>

#define BENCH_DEFAULT_SIZE   100
#define BENCH_DEFAULT_COUNT  20000
#define BENCH_MAX_SIZE       (16 * 1024 * 1024)
#define BENCH_MAX_COUNT      10000000
#define PS_DEFAULT_ROUNDS    5
#define PS_MAX_SUBSCRIBERS   64

static const cli_opts_t *s_opts;        //  the flags, for s_node_new
static bool s_quiet;                    //  --json: no progress line

//  The benchmark's cluster, port and high-water mark unless the flags
//  name them (the high-water mark is the benchmark's: both sides use it)
static mesh_node_t *
s_node_new (const char *name, const bench_where_t *where)
{
    cli_opts_t opts = *s_opts;
    char port [16], hwm [16];
    if (!opts.cluster)
        opts.cluster = where->cluster;
    if (!opts.port) {
        snprintf (port, sizeof port, "%d", where->port);
        opts.port = port;
    }
    if (where->hwm) {
        snprintf (hwm, sizeof hwm, "%d", where->hwm);
        opts.hwm = hwm;
    }
    opts.name = name;
    return cli_node_new (&opts, name);
}

static void
s_progress (const char *label, size_t r, size_t rounds, const char *side)
{
    static cli_progress_t progress;
    static bool on = false;
    if (!label) {
        if (on)
            cli_progress_end (&progress);
        on = false;
        return;
    }
    if (!on)
        cli_progress_init (&progress, s_quiet);
    on = true;
    progress.shown = 0;                 //  every round shows
    cli_progress_show (&progress, "%s: round %zu of %zu, %s", label, r, rounds, side);
}

enum { B_SIZE = CLI_OPT (1), B_COUNT, B_SUBS, B_ROUNDS, B_KEYS, B_JSON, B_CURVE };

static const struct option s_bench_options [] = {
    { "size",        required_argument, NULL, B_SIZE },
    { "count",       required_argument, NULL, B_COUNT },
    { "subscribers", required_argument, NULL, B_SUBS },
    { "rounds",      required_argument, NULL, B_ROUNDS },
    { "keys",        required_argument, NULL, B_KEYS },
    { "json",        no_argument,       NULL, B_JSON },
    //  here a flag: CURVE on both sides, with a key pair made for the run
    { "curve",       no_argument,       NULL, B_CURVE },
    { NULL, 0, NULL, 0 }
};

static int
s_bench (const cli_cmd_t *cmd, cli_opts_t *opts, int argc, char **argv)
{
    cli_args_t args;
    cli_args_init (&args, cmd, opts, s_bench_options, NULL, argc, argv);
    long size = -1, count = -1, subs = 1, rounds = PS_DEFAULT_ROUNDS, keys = 0;
    bool json = false, subs_given = false;
    int c;
    while ((c = cli_getopt (&args)) >= 0) {
        int bad = 0;
        switch (c) {
            case B_SIZE:   bad = cli_long (cmd, "--size", optarg, 0, BENCH_MAX_SIZE, &size); break;
            case B_COUNT:  bad = cli_long (cmd, "--count", optarg, 1, BENCH_MAX_COUNT, &count); break;
            case B_SUBS:   bad = cli_long (cmd, "--subscribers", optarg, 1, PS_MAX_SUBSCRIBERS, &subs);
                           subs_given = true; break;
            case B_ROUNDS: bad = cli_long (cmd, "--rounds", optarg, 1, 1000, &rounds);
                           subs_given = true; break;
            case B_KEYS:   bad = cli_long (cmd, "--keys", optarg, 1, 100000, &keys); break;
            case B_JSON:   json = true; break;
            case B_CURVE:  opts->curve_ephemeral = true; break;
            default:       bad = -1;
        }
        if (bad)
            return CLI_USAGE;
    }
    if (c == CLI_STOP)
        return args.status;
    if (cli_positionals (&args, 1, 1))
        return CLI_USAGE;
    if (opts->curve)
        opts->curve_ephemeral = false;      //  a key file given wins
    const char *what = args.pos [0];
    if (subs_given && !streq_ (what, "pubsub"))
        return cli_usage (cmd, "--subscribers and --rounds are for bench pubsub");
    if (streq_ (what, "pubsub") && size == 0)
        return cli_usage (cmd, "bench pubsub: --size must be at least 1 (the first byte "
                          "marks warm-ups)");
    int hwm = MESH_DEFAULT_SNDHWM;
    if (streq_ (what, "pubsub") && opts->hwm && (hwm = atoi (opts->hwm)) < 1)
        return cli_fail ("bench pubsub: bad --hwm");
    //  the meshbus nodes take CURVE from the flag or the environment
    //  (cli_node_new): the raw side follows, so both pay for CURVE or neither
    bench_host = (bench_host_t) {
        .prog = "meshbus", .interrupted = cli_interrupted, .progress = s_progress,
        .curve = opts->curve != NULL || opts->curve_ephemeral
    };
    bench_node_hook = s_node_new;
    s_opts = opts;
    s_quiet = json;
    size_t n = count > 0? (size_t) count: 0;
    if (streq_ (what, "link"))
        return bench_rtt (size >= 0? (size_t) size: BENCH_DEFAULT_SIZE,
                          n? n: BENCH_DEFAULT_COUNT, json);
    if (streq_ (what, "pubsub"))
        return bench_pubsub (size > 0? (size_t) size: BENCH_DEFAULT_SIZE, n, (size_t) subs,
                             (size_t) rounds, hwm, json);
    if (streq_ (what, "reqrep"))
        return bench_reqrep (size >= 0? (size_t) size: 0, n, json);
    if (streq_ (what, "pipeline"))
        return bench_pipeline (size >= 0? (size_t) size: 0, n, json);
    if (streq_ (what, "handshake"))
        return bench_handshake ((size_t) keys, n, json);
    return cli_usage (cmd, "unknown benchmark '%s' (link, pubsub, reqrep, pipeline, handshake)",
                      what);
}

const cli_cmd_t cli_cmd_bench = {
    "bench", s_bench, "link|pubsub|reqrep|pipeline|handshake [--size B] [--count N] [--json] "
    "[FLAGS]",
    "meshbus and raw libzmq side by side in one run, and their ratio",
"Runs one benchmark with meshbus and with raw libzmq doing the same job in the same\n"
"run (bench/README.md says what each side does) and prints both and their ratio.\n"
"\n"
"  --size B             message size in bytes (default 100)\n"
"  --count N            messages per round\n"
"  --json               one JSON object instead of text\n"
"  --subscribers S      pubsub: fan-out to S subscribers (default 1)\n"
"  --rounds R           pubsub: rounds per side\n"
"  --curve              CURVE on both sides (a key pair made for the run)\n"
"  --keys K             handshake: trusted keys (default 1000)"
};
