/*  =========================================================================
    test_sublist - the trie of patterns answers as mesh_subject_match does

    mesh_subject_match is checked against a reference from the definition
    in test_subject.c; here the trie is checked against it: random sets of
    patterns (drawn from a small alphabet with many "*" and "#", so that
    most subjects match some and miss others), entries added and removed in
    random order, and for each random subject the set of entries the trie
    reports must be exactly the set of patterns the matcher accepts, each
    entry once. Then the shapes that break tries: "#" chains, "#" at both
    ends, duplicates, removal down to an empty trie, and 10 000 siblings.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshbus/pattern.h"

#define RANDOM_SEED     0x7375626c697374ULL     //  "sublist"
#define ROUNDS          200
#define PATTERNS        300     //  per round
#define SUBJECTS        300     //  matched per round

static uint64_t s_rng_state;

static uint32_t
s_random (uint32_t bound)
{
    //  xorshift64*: repeatable on every platform
    s_rng_state ^= s_rng_state >> 12;
    s_rng_state ^= s_rng_state << 25;
    s_rng_state ^= s_rng_state >> 27;
    return (uint32_t) ((s_rng_state * 0x2545F4914F6CDD1DULL) >> 33) % bound;
}

//  Tokens that share prefixes, so that literal lookups must compare whole
//  tokens ("a" is not "ab"), and one byte at each end of what is allowed
static const char *s_alphabet [] = { "a", "ab", "b", "ba", "c", "!", "~", "\x80\xff" };
#define ALPHABET_SIZE (sizeof s_alphabet / sizeof s_alphabet [0])

static void
s_append (char *buffer, size_t *at, const char *token)
{
    if (*at)
        buffer [(*at)++] = '.';
    size_t size = strlen (token);
    memcpy (buffer + *at, token, size);
    *at += size;
    buffer [*at] = '\0';
}

static void
s_random_subject (char *buffer)
{
    size_t at = 0, count = 1 + s_random (6);
    for (size_t i = 0; i < count; i++)
        s_append (buffer, &at, s_alphabet [s_random (ALPHABET_SIZE)]);
}

static void
s_random_pattern (char *buffer)
{
    size_t at = 0, count = 1 + s_random (6);
    for (size_t i = 0; i < count; i++) {
        uint32_t roll = s_random (10);
        s_append (buffer, &at, roll < 2? "#": roll < 4? "*":
                               s_alphabet [s_random (ALPHABET_SIZE)]);
    }
}

//  An entry is its index into the round's pattern table, plus one
typedef struct {
    size_t *hits;               //  times each entry was reported
} seen_t;

static void
s_seen (void *value, void *arg)
{
    seen_t *seen = (seen_t *) arg;
    seen->hits [(size_t) (uintptr_t) value - 1]++;
}

static void
test_random_against_matcher (void **state)
{
    (void) state;
    s_rng_state = RANDOM_SEED;
    static char patterns [PATTERNS][64];
    static bool present [PATTERNS];
    static size_t hits [PATTERNS];
    size_t matches = 0, misses = 0;
    for (int round = 0; round < ROUNDS; round++) {
        mesh_sublist_t *list = mesh_sublist_new ();
        assert_non_null (list);
        size_t count = 0;
        for (size_t i = 0; i < PATTERNS; i++) {
            s_random_pattern (patterns [i]);
            //  a few duplicates of earlier patterns, under their own entry
            if (i && s_random (8) == 0)
                strcpy (patterns [i], patterns [s_random ((uint32_t) i)]);
            present [i] = s_random (4) != 0;
            if (present [i]) {
                assert_int_equal (mesh_sublist_insert (list, patterns [i],
                                                       (void *) (uintptr_t) (i + 1)), 0);
                count++;
            }
        }
        //  remove some again, in random order
        for (size_t n = 0; n < PATTERNS / 4; n++) {
            size_t i = s_random (PATTERNS);
            if (present [i]) {
                assert_int_equal (mesh_sublist_remove (list, patterns [i],
                                                       (void *) (uintptr_t) (i + 1)), 0);
                present [i] = false;
                count--;
            }
            else        //  an entry never added (or already gone) is not there
                assert_int_equal (mesh_sublist_remove (list, patterns [i],
                                                       (void *) (uintptr_t) (i + 1)), -1);
        }
        assert_int_equal (mesh_sublist_size (list), count);
        for (size_t n = 0; n < SUBJECTS; n++) {
            char subject [64];
            s_random_subject (subject);
            memset (hits, 0, sizeof hits);
            seen_t seen = { hits };
            size_t reported = mesh_sublist_match (list, subject, s_seen, &seen);
            size_t want = 0;
            for (size_t i = 0; i < PATTERNS; i++) {
                bool match = present [i] && mesh_subject_match (patterns [i], subject);
                want += match;
                if (hits [i] != (match? 1u: 0u))
                    fail_msg ("round %d: \"%s\" vs \"%s\" (entry %zu): reported %zu times, "
                              "matcher says %d", round, patterns [i], subject, i, hits [i], match);
            }
            assert_int_equal (reported, want);
            matches += want;
            misses += count - want;
        }
        mesh_sublist_destroy (&list);
        assert_null (list);
    }
    //  both answers well exercised, or the check proves little
    assert_true (matches > ROUNDS * SUBJECTS * 5);
    assert_true (misses > matches);
}

static size_t
s_count (mesh_sublist_t *list, const char *subject)
{
    return mesh_sublist_match (list, subject, NULL, NULL);
}

static void
test_shapes (void **state)
{
    (void) state;
    mesh_sublist_t *list = mesh_sublist_new ();
    int a, b, c, d, e;
    assert_int_equal (mesh_sublist_insert (list, "#", &a), 0);
    assert_int_equal (mesh_sublist_insert (list, "#.#.#.#.x", &b), 0);
    assert_int_equal (mesh_sublist_insert (list, "a.#", &c), 0);
    assert_int_equal (mesh_sublist_insert (list, "#.a", &d), 0);
    assert_int_equal (mesh_sublist_insert (list, "a.*", &e), 0);
    assert_int_equal (mesh_sublist_insert (list, "a.*", &e), 0);   //  twice: reported twice
    assert_int_equal (s_count (list, "a"), 3);          //  #, a.#, #.a
    assert_int_equal (s_count (list, "a.b"), 4);        //  #, a.#, a.* twice
    assert_int_equal (s_count (list, "x"), 2);          //  #, #.#.#.#.x
    assert_int_equal (s_count (list, "a.a.a.a.a.a.a.a.a.x"), 3);    //  #, #...x, a.#
    //  a long subject of one-byte tokens: "#" chains cost no blow-up
    char subject [256];
    size_t at = 0;
    for (int i = 0; i < 127; i++) {
        subject [at++] = 'a';
        subject [at++] = i < 126? '.': '\0';
    }
    assert_int_equal (s_count (list, subject), 3);      //  #, a.#, #.a
    //  invalid patterns are refused, nothing is added
    assert_int_equal (mesh_sublist_insert (list, "a..b", &a), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_int_equal (mesh_sublist_insert (list, "a*", &a), -1);
    assert_int_equal (mesh_sublist_size (list), 6);
    //  removal down to nothing: every entry goes, nothing matches
    assert_int_equal (mesh_sublist_remove (list, "a.*", &e), 0);
    assert_int_equal (s_count (list, "a.b"), 3);
    assert_int_equal (mesh_sublist_remove (list, "a.*", &e), 0);
    assert_int_equal (mesh_sublist_remove (list, "a.*", &e), -1);
    assert_int_equal (mesh_sublist_remove (list, "a.#", &d), -1);   //  wrong entry
    assert_int_equal (mesh_sublist_remove (list, "#", &a), 0);
    assert_int_equal (mesh_sublist_remove (list, "#.#.#.#.x", &b), 0);
    assert_int_equal (mesh_sublist_remove (list, "a.#", &c), 0);
    assert_int_equal (mesh_sublist_remove (list, "#.a", &d), 0);
    assert_int_equal (mesh_sublist_size (list), 0);
    assert_int_equal (s_count (list, "a"), 0);
    mesh_sublist_destroy (&list);
    mesh_sublist_destroy (&list);       //  safe twice
}

//  10 000 siblings under one node, the benchmark's shape: every one found,
//  every removal keeps the others reachable (backward-shift deletion)
static void
test_many_siblings (void **state)
{
    (void) state;
    mesh_sublist_t *list = mesh_sublist_new ();
    char name [64];
    for (uintptr_t i = 0; i < 10000; i++) {
        snprintf (name, sizeof name, "user.%zu.#", (size_t) i);
        assert_int_equal (mesh_sublist_insert (list, name, (void *) (i + 1)), 0);
    }
    for (size_t i = 0; i < 10000; i++) {
        snprintf (name, sizeof name, "user.%zu.event", i);
        assert_int_equal (s_count (list, name), 1);
    }
    assert_int_equal (s_count (list, "user.10000.event"), 0);
    assert_int_equal (s_count (list, "user"), 0);
    //  remove the odd ones, in a scattered order
    for (uintptr_t n = 0; n < 5000; n++) {
        uintptr_t i = 2 * ((n * 7919) % 5000) + 1;
        snprintf (name, sizeof name, "user.%zu.#", (size_t) i);
        assert_int_equal (mesh_sublist_remove (list, name, (void *) (i + 1)), 0);
    }
    assert_int_equal (mesh_sublist_size (list), 5000);
    for (size_t i = 0; i < 10000; i++) {
        snprintf (name, sizeof name, "user.%zu", i);
        assert_int_equal (s_count (list, name), i % 2 == 0? 1: 0);
    }
    mesh_sublist_destroy (&list);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_random_against_matcher),
        cmocka_unit_test (test_shapes),
        cmocka_unit_test (test_many_siblings),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
