/*  =========================================================================
    test_msg - messages built by patterns: mesh_msg_new and mesh_msg_set

    mesh_msg_set must leave a message that reads exactly as mesh_msg_new
    builds it (every accessor), whatever it held before, and must never
    touch a copy made earlier with mesh_msg_dup. mesh_msg_new is the
    oracle: it encodes and decodes a real envelope.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshbus.h"
#include "meshbus/pattern.h"
#include "mesh_limits.h"

//  Every accessor of a and b agrees
static void
s_assert_same (const mesh_msg_t *a, const mesh_msg_t *b)
{
    assert_string_equal (mesh_msg_sender (a), mesh_msg_sender (b));
    assert_string_equal (mesh_msg_sender_name (a), mesh_msg_sender_name (b));
    assert_int_equal (mesh_msg_kind (a), mesh_msg_kind (b));
    assert_int_equal (mesh_msg_flags (a), mesh_msg_flags (b));
    assert_true (mesh_msg_seq (a) == mesh_msg_seq (b));
    assert_true (mesh_msg_id (a) == mesh_msg_id (b));
    assert_true (mesh_msg_deadline (a) == mesh_msg_deadline (b));
    assert_string_equal (mesh_msg_subject (a), mesh_msg_subject (b));
    assert_string_equal (mesh_msg_reply (a), mesh_msg_reply (b));
    assert_string_equal (mesh_msg_ctype (a), mesh_msg_ctype (b));
    assert_int_equal (mesh_msg_size (a), mesh_msg_size (b));
    assert_non_null (mesh_msg_body (a));
    assert_non_null (mesh_msg_body (b));
    if (mesh_msg_size (a))
        assert_memory_equal (mesh_msg_body (a), mesh_msg_body (b), mesh_msg_size (a));
    assert_int_equal (mesh_msg_header_count (a), mesh_msg_header_count (b));
    for (size_t i = 0; i < mesh_msg_header_count (a); i++) {
        const char *ka, *va, *kb, *vb;
        size_t kla, vla, klb, vlb;
        assert_true (mesh_msg_header_at (a, i, &ka, &kla, &va, &vla));
        assert_true (mesh_msg_header_at (b, i, &kb, &klb, &vb, &vlb));
        assert_int_equal (kla, klb);
        assert_int_equal (vla, vlb);
        assert_memory_equal (ka, kb, kla);
        assert_memory_equal (va, vb, vla);
        char key [MESH_MAX_HEADER_KEY + 1];
        memcpy (key, ka, kla);
        key [kla] = 0;
        const char *ha = mesh_msg_header (a, key), *hb = mesh_msg_header (b, key);
        assert_non_null (ha);
        assert_non_null (hb);
        assert_string_equal (ha, hb);
    }
    assert_null (mesh_msg_header (a, "no-such-header"));
    assert_null (mesh_msg_header (b, "no-such-header"));
}

//  Refill a message made for something else with a job, as the pipeline
//  worker does for each job of a batch
static void
test_usage_example (void **state)
{
    (void) state;
    mesh_head_t first = { .kind = 37, .id = 1, .seq = 1, .subject = "jobs.resize" };
    mesh_msg_t *job = mesh_msg_new (&first, "a", 1, "0123456789abcdef0123456789abcdef", "producer");
    assert_non_null (job);

    mesh_head_t head = { .kind = 37, .id = 2, .seq = 1, .subject = "jobs.resize",
                         .reply = "fedcba9876543210fedcba9876543210" };
    assert_int_equal (mesh_msg_set (job, &head, "second job", 10,
                                    "0123456789abcdef0123456789abcdef", "producer"), 0);
    assert_true (mesh_msg_id (job) == 2);
    assert_string_equal (mesh_msg_reply (job), "fedcba9876543210fedcba9876543210");
    assert_int_equal (mesh_msg_size (job), 10);
    assert_memory_equal (mesh_msg_body (job), "second job", 10);

    mesh_msg_t *oracle = mesh_msg_new (&head, "second job", 10,
                                       "0123456789abcdef0123456789abcdef", "producer");
    assert_non_null (oracle);
    s_assert_same (job, oracle);
    mesh_msg_destroy (&oracle);
    mesh_msg_destroy (&job);
    assert_null (job);
}

//  A table of heads: every field, absent strings, headers, empty and
//  large bodies (a framed one included); each one set over each other
static void
test_same_as_new (void **state)
{
    (void) state;
    static const char *headers [] = { "trace", "abc-123", "empty", "", "k", "v" };
    size_t big_size = MESH_MAX_INLINE_BODY + 10;
    char *big = (char *) malloc (big_size);
    assert_non_null (big);
    for (size_t i = 0; i < big_size; i++)
        big [i] = (char) (i * 7);
    struct {
        mesh_head_t head;
        const void *body;
        size_t size;
        const char *sender, *name;
    } cases [] = {
        { { .kind = 37 }, NULL, 0, NULL, NULL },
        { { .kind = 37, .subject = "" , .reply = "", .ctype = "" }, "", 0, "", "" },
        { { .kind = 16, .flags = 0x10000 | MESH_FLAG_FRAMES, .seq = 300, .id = UINT64_MAX,
            .deadline = 1700000000000ull, .subject = "a.b.c", .reply = "r",
            .ctype = "application/json", .headers = headers, .header_count = 3 },
          "{\"x\":1}", 7, "0123456789abcdef0123456789abcdef", "node-1" },
        { { .kind = 255, .id = 1, .subject = "x" }, "tiny", 4, "s", "n" },
        { { .kind = 40, .id = 9, .subject = "large.body", .flags = 0x20000 },
          big, big_size, "0123456789abcdef0123456789abcdef", "" },
        { { .kind = 41, .id = 10, .subject = "just.inline" }, big, MESH_MAX_INLINE_BODY,
          "x", "y" },
    };
    size_t ncases = sizeof cases / sizeof cases [0];
    for (size_t from = 0; from < ncases; from++)
        for (size_t to = 0; to < ncases; to++) {
            mesh_msg_t *msg = mesh_msg_new (&cases [from].head, cases [from].body,
                                            cases [from].size, cases [from].sender,
                                            cases [from].name);
            assert_non_null (msg);
            mesh_msg_header (msg, "trace");     //  a header cache to drop
            assert_int_equal (mesh_msg_set (msg, &cases [to].head, cases [to].body,
                                            cases [to].size, cases [to].sender,
                                            cases [to].name), 0);
            mesh_msg_t *oracle = mesh_msg_new (&cases [to].head, cases [to].body,
                                               cases [to].size, cases [to].sender,
                                               cases [to].name);
            assert_non_null (oracle);
            s_assert_same (msg, oracle);
            //  and again over itself (the buffer is reused)
            assert_int_equal (mesh_msg_set (msg, &cases [to].head, cases [to].body,
                                            cases [to].size, cases [to].sender,
                                            cases [to].name), 0);
            s_assert_same (msg, oracle);
            mesh_msg_t *copy = mesh_msg_dup (msg);
            assert_non_null (copy);
            s_assert_same (copy, oracle);
            mesh_msg_destroy (&copy);
            mesh_msg_destroy (&oracle);
            mesh_msg_destroy (&msg);
        }
    free (big);
}

//  A copy made before a refill keeps what it had
static void
test_copy_untouched (void **state)
{
    (void) state;
    mesh_head_t one = { .kind = 37, .id = 1, .subject = "q.one", .reply = "origin-one" };
    mesh_head_t two = { .kind = 37, .id = 2, .subject = "q.two", .reply = "origin-two" };
    char body_one [100], body_two [100];
    memset (body_one, '1', sizeof body_one);
    memset (body_two, '2', sizeof body_two);
    //  small bodies live inside the frame object (VSM), large ones outside
    size_t sizes [] = { 0, 3, 100 };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes [0]; s++) {
        mesh_msg_t *msg = mesh_msg_new (&one, body_one, sizes [s], "p", "n");
        assert_non_null (msg);
        assert_int_equal (mesh_msg_set (msg, &one, body_one, sizes [s], "p", "n"), 0);
        mesh_msg_t *kept = mesh_msg_dup (msg);
        assert_non_null (kept);
        assert_int_equal (mesh_msg_set (msg, &two, body_two, sizes [s], "p", "n"), 0);
        mesh_msg_t *kept_too = mesh_msg_dup (msg);
        assert_int_equal (mesh_msg_set (msg, &one, body_one, sizes [s], "p", "n"), 0);
        mesh_msg_destroy (&msg);

        assert_true (mesh_msg_id (kept) == 1);
        assert_string_equal (mesh_msg_subject (kept), "q.one");
        assert_string_equal (mesh_msg_reply (kept), "origin-one");
        assert_int_equal (mesh_msg_size (kept), sizes [s]);
        if (sizes [s])
            assert_memory_equal (mesh_msg_body (kept), body_one, sizes [s]);
        assert_true (mesh_msg_id (kept_too) == 2);
        assert_string_equal (mesh_msg_subject (kept_too), "q.two");
        if (sizes [s])
            assert_memory_equal (mesh_msg_body (kept_too), body_two, sizes [s]);
        mesh_msg_destroy (&kept);
        mesh_msg_destroy (&kept_too);
    }
}

//  Content taken from the message itself (its own body, subject, sender)
static void
test_set_from_itself (void **state)
{
    (void) state;
    mesh_head_t head = { .kind = 37, .id = 5, .subject = "self.subject", .reply = "me" };
    const char *text = "the body refers to the message's own bytes";
    mesh_msg_t *msg = mesh_msg_new (&head, text, strlen (text), "sender-x", "name-x");
    assert_non_null (msg);
    assert_int_equal (mesh_msg_set (msg, &head, text, strlen (text), "sender-x", "name-x"), 0);
    mesh_head_t again = { .kind = 38, .id = 6, .subject = mesh_msg_subject (msg),
                          .reply = mesh_msg_reply (msg) };
    //  a tail of its own body, its own strings
    const char *body = (const char *) mesh_msg_body (msg) + 4;
    assert_int_equal (mesh_msg_set (msg, &again, body, strlen (text) - 4,
                                    mesh_msg_sender (msg), mesh_msg_sender_name (msg)), 0);
    assert_int_equal (mesh_msg_kind (msg), 38);
    assert_string_equal (mesh_msg_subject (msg), "self.subject");
    assert_string_equal (mesh_msg_reply (msg), "me");
    assert_string_equal (mesh_msg_sender (msg), "sender-x");
    assert_string_equal (mesh_msg_sender_name (msg), "name-x");
    assert_int_equal (mesh_msg_size (msg), strlen (text) - 4);
    assert_memory_equal (mesh_msg_body (msg), text + 4, strlen (text) - 4);
    mesh_msg_destroy (&msg);
}

//  A head that breaks a limit fails as mesh_msg_new does, and leaves the
//  message as it was
static void
test_bad_heads (void **state)
{
    (void) state;
    char long_subject [MESH_MAX_SUBJECT + 2];
    memset (long_subject, 's', sizeof long_subject - 1);
    long_subject [sizeof long_subject - 1] = 0;
    char long_ctype [MESH_MAX_CTYPE + 2];
    memset (long_ctype, 'c', sizeof long_ctype - 1);
    long_ctype [sizeof long_ctype - 1] = 0;
    char long_key [MESH_MAX_HEADER_KEY + 2];
    memset (long_key, 'k', sizeof long_key - 1);
    long_key [sizeof long_key - 1] = 0;
    const char *bad_headers [] = { long_key, "v" };
    const char *many [2 * (MESH_MAX_HEADERS + 1)];
    for (size_t i = 0; i < 2 * (MESH_MAX_HEADERS + 1); i++)
        many [i] = "x";
    mesh_head_t bad [] = {
        { .kind = 37, .subject = long_subject },
        { .kind = 37, .reply = long_subject },
        { .kind = 37, .ctype = long_ctype },
        { .kind = 256 },
        { .kind = -1 },
        { .kind = 37, .headers = bad_headers, .header_count = 1 },
        { .kind = 37, .headers = many, .header_count = MESH_MAX_HEADERS + 1 },
    };
    mesh_head_t good = { .kind = 37, .id = 77, .subject = "still.here" };
    mesh_msg_t *msg = mesh_msg_new (&good, "keep", 4, "s", "n");
    assert_non_null (msg);
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        assert_null (mesh_msg_new (&bad [i], "b", 1, "s", "n"));
        assert_int_equal (mesh_msg_set (msg, &bad [i], "b", 1, "s", "n"), -1);
        assert_int_equal (mesh_errno (), MESH_ETOOBIG);
        assert_true (mesh_msg_id (msg) == 77);
        assert_string_equal (mesh_msg_subject (msg), "still.here");
        assert_int_equal (mesh_msg_size (msg), 4);
        assert_memory_equal (mesh_msg_body (msg), "keep", 4);
    }
    mesh_msg_destroy (&msg);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_usage_example),
        cmocka_unit_test (test_same_as_new),
        cmocka_unit_test (test_copy_untouched),
        cmocka_unit_test (test_set_from_itself),
        cmocka_unit_test (test_bad_heads),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
