/*  =========================================================================
    test_pattern_names - every name a user may give travels through the
    real announcement path of each pattern, in one process

    A subscription pattern, a queue name or a service name reaches the
    peers inside an announcement (the shared codec, src/wire/
    mesh_announce.c): the pattern writes it, the core carries it, the
    peer's pattern reads it in on_announce. A name that starts with a
    byte the codec or a pattern's reader treats specially would vanish
    there: a queue named "images..." once was read as the pipeline's
    incarnation line and never got a job (D1). So each test announces one
    name per allowed first byte (0x21..0xff but '.' and DEL; the
    wildcards as whole tokens), over real nodes on loopback, and checks
    that the peer acts on every one of them exactly once. tests/test_announce.c
    checks the codec alone; the CLI tests do the same across processes.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "meshbus.h"

#define WAIT_MS     15000       //  ceiling of every wait; valgrind is slow
#include "testnet.h"

static s_net_t s_netw;

//  Allowed as the first byte of a subject token (what mesh_subject_valid
//  takes): visible ASCII and every byte from 0x80, but the separator '.'
static bool
s_first_byte (int c, bool wildcards)
{
    if (c <= 0x20 || c == 0x7f || c == '.')
        return false;
    return wildcards || (c != '*' && c != '#');
}

static mesh_node_t *
s_started (const char *name)
{
    mesh_node_t *node = s_node (&s_netw, name);
    assert_int_equal (mesh_node_start (node), 0);
    return node;
}

static void
s_pump (mesh_node_t *a, mesh_node_t *b, int msecs)
{
    int64_t until = s_now () + msecs;
    do {
        mesh_node_dispatch (a, 1);
        mesh_node_dispatch (b, 1);
    } while (s_now () < until);
}

static void
s_meet (mesh_node_t *a, mesh_node_t *b)
{
    int64_t until = s_now () + WAIT_MS;
    while ((mesh_node_peer_count (a) < 1 || mesh_node_peer_count (b) < 1) && s_now () < until)
        s_pump (a, b, 5);
    assert_int_equal (mesh_node_peer_count (a), 1);
    assert_int_equal (mesh_node_peer_count (b), 1);
}

static int
s_setup (void **state)
{
    (void) state;
    s_netw = s_net_named ("test-names");
    return 0;
}

//  ---------------------------------------------------------------------
//  1. Pub-sub: a subscriber announces one pattern per first byte; the
//  publisher routes each subject to it and to nothing else.

typedef struct {
    long got [256];             //  messages by first byte of their subject
    long total;
    long wrong;                 //  a body that is not its subject
} s_subs_t;

static void
s_on_msg (mesh_pubsub_t *pubsub, const mesh_msg_t *msg, void *arg)
{
    (void) pubsub;
    s_subs_t *subs = (s_subs_t *) arg;
    const char *subject = mesh_msg_subject (msg);
    subs->got [(uint8_t) subject [0]]++;
    subs->total++;
    if (!s_body_is (msg, subject))
        subs->wrong++;
}

//  The subject published for first byte c: the wildcards stand alone in
//  their token ("*.star" and "#.hash" are the patterns, "q.star" and
//  "q.r.hash" the subjects), the others start a one-token name
static void
s_pub_names (int c, char *pattern, char *subject, size_t size)
{
    if (c == '*') {
        snprintf (pattern, size, "*.star");
        snprintf (subject, size, "*.star");   //  overwritten below
        subject [0] = 'q';
    }
    else
    if (c == '#') {
        snprintf (pattern, size, "#.hash");
        snprintf (subject, size, "q.r.hash");
    }
    else {
        snprintf (pattern, size, "%cname", c);
        snprintf (subject, size, "%cname", c);
    }
}

static void
test_pubsub_every_first_byte (void **state)
{
    (void) state;
    mesh_node_t *a = s_started ("publisher");
    mesh_node_t *b = s_started ("subscriber");
    s_meet (a, b);
    mesh_pubsub_t *pub = mesh_pubsub_new (a);
    mesh_pubsub_t *sub = mesh_pubsub_new (b);
    assert_non_null (pub);
    assert_non_null (sub);
    s_subs_t subs;
    memset (&subs, 0, sizeof subs);
    int patterns = 0;
    char pattern [16], subject [16];
    for (int c = 0; c < 256; c++)
        if (s_first_byte (c, true)) {
            s_pub_names (c, pattern, subject, sizeof pattern);
            assert_true (mesh_subscribe (sub, pattern, NULL, s_on_msg, &subs) > 0);
            patterns++;
        }
    //  the last pattern's subject is routed once the whole announcement is in
    s_pub_names (0xff, pattern, subject, sizeof pattern);
    int64_t until = s_now () + WAIT_MS;
    while (mesh_pubsub_subscribers (pub, subject) != 1 && s_now () < until)
        s_pump (a, b, 5);
    int published = 0;
    for (int c = 0; c < 256; c++)
        if (s_first_byte (c, true)) {
            s_pub_names (c, pattern, subject, sizeof pattern);
            assert_int_equal (mesh_pubsub_subscribers (pub, subject), 1);
            assert_int_equal (mesh_publish (pub, subject, subject, strlen (subject)), 1);
            published++;
        }
    assert_int_equal (published, patterns);
    //  a subject no pattern matches goes nowhere
    assert_int_equal (mesh_pubsub_subscribers (pub, "zz.top"), 0);
    until = s_now () + WAIT_MS;
    while (subs.total < published && s_now () < until)
        s_pump (a, b, 5);
    s_pump (a, b, 100);             //  anything extra would arrive now
    assert_int_equal (subs.total, published);
    assert_int_equal (subs.wrong, 0);
    for (int c = 0; c < 256; c++)
        if (s_first_byte (c, false) && c != 'q')
            assert_int_equal (subs.got [c], 1);
    assert_int_equal (subs.got ['q'], 3);   //  "qname", "q.star", "q.r.hash"
    assert_int_equal (mesh_node_counter (a, mesh_node_id (b), "pubsub.malformed.subscription"), 0);
    assert_int_equal (mesh_node_counter (a, mesh_node_id (b), "pubsub.malformed.announcement"), 0);
    mesh_pubsub_destroy (&sub);
    mesh_pubsub_destroy (&pub);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

//  ---------------------------------------------------------------------
//  2. Pipeline: a worker announces one queue per first byte, each with
//  its own prefetch, before the producer knows any of them (so the
//  producer finds its workers again when each queue first appears); one
//  job pushed to each runs exactly once.

typedef struct {
    long ran [256];             //  jobs by first byte of their queue
    long total;
    long wrong;                 //  a body that is not its queue's name
} s_jobs_t;

static int
s_on_job (mesh_pipeline_t *pl, const mesh_msg_t *job, void *arg)
{
    (void) pl;
    s_jobs_t *jobs = (s_jobs_t *) arg;
    const char *queue = mesh_msg_subject (job);
    jobs->ran [(uint8_t) queue [0]]++;
    jobs->total++;
    if (!s_body_is (job, queue))
        jobs->wrong++;
    return MESH_JOB_ACK;
}

static void
test_pipeline_every_first_byte (void **state)
{
    (void) state;
    mesh_node_t *a = s_started ("producer");
    mesh_node_t *b = s_started ("worker");
    s_meet (a, b);
    mesh_pipeline_t *producer = mesh_pipeline_new (a);
    mesh_pipeline_t *worker = mesh_pipeline_new (b);
    assert_non_null (producer);
    assert_non_null (worker);
    s_jobs_t jobs;
    memset (&jobs, 0, sizeof jobs);
    int queues = 0;
    char queue [16];
    for (int c = 0; c < 256; c++)
        if (s_first_byte (c, false)) {
            //  "images", "@1", "inc", "queue": what the reader must not mistake
            snprintf (queue, sizeof queue, "%cmages", c);
            assert_int_equal (mesh_work (worker, queue, 1 + c % 7, s_on_job, &jobs), 0);
            queues++;
        }
    s_pump (a, b, 300);             //  the announcement arrives before any push
    int64_t until = s_now () + WAIT_MS;
    for (int c = 0; c < 256; c++)
        if (s_first_byte (c, false)) {
            snprintf (queue, sizeof queue, "%cmages", c);
            assert_true (mesh_push (producer, queue, queue, strlen (queue)) > 0);
        }
    while (mesh_pipeline_pending (producer, NULL) && s_now () < until)
        s_pump (a, b, 5);
    assert_int_equal (mesh_pipeline_pending (producer, NULL), 0);
    s_pump (a, b, 100);
    assert_int_equal (jobs.total, queues);
    assert_int_equal (jobs.wrong, 0);
    for (int c = 0; c < 256; c++)
        assert_int_equal (jobs.ran [c], s_first_byte (c, false)? 1: 0);
    assert_int_equal (mesh_node_counter (a, mesh_node_id (b), "pipeline.malformed.announcement"), 0);
    assert_int_equal (mesh_node_counter (a, mesh_node_id (b), "pipeline.redelivered"), 0);
    mesh_pipeline_destroy (&worker);
    mesh_pipeline_destroy (&producer);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

//  ---------------------------------------------------------------------
//  3. Request-reply: a server announces one service per first byte; a
//  client calls each and gets its own answer.

static void
s_echo (mesh_reqrep_t *rr, const mesh_msg_t *req, mesh_reply_t *reply, void *arg)
{
    (void) rr; (void) arg;
    mesh_reply_set (reply, mesh_msg_subject (req), strlen (mesh_msg_subject (req)));
}

static void
test_reqrep_every_first_byte (void **state)
{
    (void) state;
    mesh_node_t *a = s_started ("client");
    mesh_node_t *b = s_started ("server");
    s_meet (a, b);
    mesh_reqrep_t *client = mesh_reqrep_new (a);
    mesh_reqrep_t *server = mesh_reqrep_new (b);
    assert_non_null (client);
    assert_non_null (server);
    char service [16];
    int services = 0;
    for (int c = 0; c < 256; c++)
        if (s_first_byte (c, false)) {
            snprintf (service, sizeof service, "%cvc", c);
            assert_int_equal (mesh_serve (server, service, s_echo, NULL), 0);
            services++;
        }
    int answered = 0;
    for (int c = 0; c < 256; c++)
        if (s_first_byte (c, false)) {
            snprintf (service, sizeof service, "%cvc", c);
            int64_t until = s_now () + WAIT_MS;
            while (mesh_reqrep_providers (client, service) < 1 && s_now () < until)
                s_pump (a, b, 5);
            assert_int_equal (mesh_reqrep_providers (client, service), 1);
            uint64_t id = mesh_call_async (client, service, "?", 1, NULL, NULL, NULL);
            assert_true (id > 0);
            mesh_msg_t *rep = NULL;
            uint64_t got = 0;
            int err = 0;
            until = s_now () + WAIT_MS;
            while (!got && s_now () < until) {
                mesh_node_dispatch (b, 1);
                rep = mesh_reqrep_recv (client, 1, &got, &err);
            }
            assert_int_equal (got, id);
            assert_int_equal (err, 0);
            assert_non_null (rep);
            assert_true (s_body_is (rep, service));
            mesh_msg_destroy (&rep);
            answered++;
        }
    assert_int_equal (answered, services);
    mesh_reqrep_destroy (&server);
    mesh_reqrep_destroy (&client);
    mesh_node_destroy (&b);
    mesh_node_destroy (&a);
}

int
main (void)
{
    srandom ((unsigned) time (NULL) ^ (unsigned) getpid ());
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup (test_pubsub_every_first_byte, s_setup),
        cmocka_unit_test_setup (test_pipeline_every_first_byte, s_setup),
        cmocka_unit_test_setup (test_reqrep_every_first_byte, s_setup),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
