/*  =========================================================================
    test_subject - subject and pattern validity, and the subject matcher

    The semantics are RabbitMQ's topic exchange, so the tables carry the
    examples of its tutorial besides our own edge cases. Every string is
    copied into a heap buffer of its exact size before the code under test
    sees it, so under ASan or valgrind a read past the NUL is an error, not
    luck. Then the matcher is checked against a plain recursive reference
    (written here, from the definition, over token arrays) on many random
    pairs, and validity against a reference that splits on dots.
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

#include "meshbus.h"
#include "mesh_limits.h"

//  Random cross-check size, and the fixed seed that makes it repeatable
#define RANDOM_PAIRS    200000
#define RANDOM_STRINGS  200000
#define RANDOM_SEED     0x6d657368627573ULL     //  "meshbus"

//  Tokens in the longest subject: one-byte tokens and their dots
#define MAX_TOKENS      ((MESH_MAX_SUBJECT + 1) / 2)


//  --------------------------------------------------------------------------
//  Helpers

//  Exact-size heap copies, so a read past the NUL is caught
static bool
s_match (const char *pattern, const char *subject)
{
    char *p = strdup (pattern);
    char *s = strdup (subject);
    assert_non_null (p);
    assert_non_null (s);
    bool result = mesh_subject_match (p, s);
    free (p);
    free (s);
    return result;
}

static bool
s_subject_valid (const char *string)
{
    char *copy = strdup (string);
    assert_non_null (copy);
    bool result = mesh_subject_valid (copy);
    free (copy);
    return result;
}

static bool
s_pattern_valid (const char *string)
{
    char *copy = strdup (string);
    assert_non_null (copy);
    bool result = mesh_pattern_valid (copy);
    free (copy);
    return result;
}

//  A string of count copies of unit, then tail (a static buffer)
static const char *
s_repeat (const char *unit, size_t count, const char *tail)
{
    static char buffer [4096];
    size_t at = 0;
    size_t unit_size = strlen (unit);
    for (size_t i = 0; i < count; i++) {
        assert_true (at + unit_size < sizeof buffer);
        memcpy (buffer + at, unit, unit_size);
        at += unit_size;
    }
    assert_true (at + strlen (tail) < sizeof buffer);
    strcpy (buffer + at, tail);
    return buffer;
}

//  xorshift64*: the same sequence on every libc
static uint64_t s_rng_state = RANDOM_SEED;

static uint32_t
s_random (uint32_t limit)
{
    s_rng_state ^= s_rng_state >> 12;
    s_rng_state ^= s_rng_state << 25;
    s_rng_state ^= s_rng_state >> 27;
    return (uint32_t) ((s_rng_state * 0x2545F4914F6CDD1DULL) >> 32) % limit;
}


//  --------------------------------------------------------------------------
//  Reference implementations, straight from the definitions

typedef struct {
    size_t count;
    char tokens [MESH_MAX_SUBJECT + 1][MESH_MAX_SUBJECT + 1];
} s_tokens_t;

//  Split on every dot, keeping empty tokens
static void
s_split (const char *string, s_tokens_t *out)
{
    out->count = 0;
    size_t size = 0;
    for (const char *c = string;; c++) {
        if (*c == '.' || *c == '\0') {
            out->tokens [out->count][size] = '\0';
            out->count++;
            size = 0;
            if (*c == '\0')
                break;
        }
        else
            out->tokens [out->count][size++] = *c;
    }
}

static bool
s_ref_valid (const char *string, bool wildcards)
{
    size_t size = strlen (string);
    if (size < 1 || size > MESH_MAX_SUBJECT)
        return false;
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char) string [i];
        if (c <= ' ' || c == 0x7f)
            return false;
    }
    static s_tokens_t split;
    s_split (string, &split);
    for (size_t i = 0; i < split.count; i++) {
        const char *token = split.tokens [i];
        if (*token == '\0')
            return false;
        if (strchr (token, '*') || strchr (token, '#')) {
            if (!wildcards)
                return false;
            if (strcmp (token, "*") && strcmp (token, "#"))
                return false;
        }
    }
    return true;
}

//  Does pattern [p..] match subject [s..]? Exponential in the worst case:
//  fine for the short random strings it is used on.
static bool
s_ref_match_at (const s_tokens_t *pattern, size_t p, const s_tokens_t *subject, size_t s)
{
    if (p == pattern->count)
        return s == subject->count;
    const char *token = pattern->tokens [p];
    if (strcmp (token, "#") == 0)
        return s_ref_match_at (pattern, p + 1, subject, s)
            || (s < subject->count && s_ref_match_at (pattern, p, subject, s + 1));
    if (s == subject->count)
        return false;
    if (strcmp (token, "*") == 0 || strcmp (token, subject->tokens [s]) == 0)
        return s_ref_match_at (pattern, p + 1, subject, s + 1);
    return false;
}

static bool
s_ref_match (const char *pattern, const char *subject)
{
    static s_tokens_t pattern_tokens, subject_tokens;
    s_split (pattern, &pattern_tokens);
    s_split (subject, &subject_tokens);
    return s_ref_match_at (&pattern_tokens, 0, &subject_tokens, 0);
}


//  --------------------------------------------------------------------------
//  Tests

static void
test_usage_example (void **state)
{
    (void) state;
    //  Check what a user hands us once, then match on every publish
    assert_true (mesh_subject_valid ("orders.eu.created"));
    assert_true (mesh_pattern_valid ("orders.*.created"));
    assert_true (mesh_pattern_valid ("orders.#"));
    assert_false (mesh_subject_valid ("orders.*"));     //  wildcards are for patterns
    assert_false (mesh_pattern_valid ("orders..eu"));   //  empty token

    assert_true (mesh_subject_match ("orders.*.created", "orders.eu.created"));
    assert_false (mesh_subject_match ("orders.*.created", "orders.eu.deleted"));
    assert_true (mesh_subject_match ("orders.#", "orders"));        //  "#" is zero or more
    assert_true (mesh_subject_match ("orders.#", "orders.eu.created"));
    assert_false (mesh_subject_match ("orders.*", "orders"));       //  "*" is exactly one
}

typedef struct {
    const char *pattern;
    const char *subject;
    bool match;
} match_case_t;

static const match_case_t s_match_cases [] = {
    //  Literal tokens: whole tokens only, no prefixes
    { "orders.eu.created",  "orders.eu.created",        true  },
    { "orders.eu.created",  "orders.eu.deleted",        false },
    { "orders",             "orders.eu",                false },
    { "orders.eu",          "orders",                   false },
    { "a",                  "ab",                       false },
    { "ab",                 "a",                        false },
    { "a.b",                "a.bc",                     false },
    { "a.bc",               "a.b",                      false },
    { "a.b",                "ab",                       false },
    { "ab",                 "a.b",                      false },
    { "A",                  "a",                        false },
    { "ünï.côdé",           "ünï.côdé",                 true  },
    { "ünï.côdé",           "ünï.côde",                 false },
    { "ü.*",                "ü.x",                      true  },
    //  "*": exactly one token
    { "*",                  "a",                        true  },
    { "*",                  "a.b",                      false },
    { "a.*",                "a",                        false },
    { "a.*",                "a.b",                      true  },
    { "a.*",                "a.b.c",                    false },
    { "a.*",                "b.a",                      false },
    { "*.*",                "a",                        false },
    { "*.*",                "a.b",                      true  },
    { "*.*",                "a.b.c",                    false },
    { "*.a",                "a",                        false },
    { "*.a",                "x.a",                      true  },
    //  "#": zero or more tokens
    { "#",                  "a",                        true  },
    { "#",                  "a.b.c",                    true  },
    { "a.#",                "a",                        true  },
    { "a.#",                "a.b.c",                    true  },
    { "a.#",                "b",                        false },
    { "a.#",                "b.a",                      false },
    { "a.#",                "ab",                       false },
    { "#.a",                "a",                        true  },
    { "#.a",                "x.y.a",                    true  },
    { "#.a",                "a.x",                      false },
    { "#.a",                "x.a.y",                    false },
    { "#.a",                "xa",                       false },
    { "a.#.b",              "a.b",                      true  },
    { "a.#.b",              "a.x.b",                    true  },
    { "a.#.b",              "a.x.y.b",                  true  },
    { "a.#.b",              "a.b.b",                    true  },
    { "a.#.b",              "a",                        false },
    { "a.#.b",              "b",                        false },
    { "a.#.b",              "a.x.y",                    false },
    { "a.#.b",              "a.b.c",                    false },
    { "a.#.b",              "b.a.b",                    false },
    //  Several "#", and "#" next to "*"
    { "#.#",                "a",                        true  },
    { "#.#",                "a.b.c",                    true  },
    { "a.#.#",              "a",                        true  },
    { "a.#.#.#",            "a",                        true  },
    { "a.#.#.*",            "a",                        false },
    { "a.#.#.b",            "a.b",                      true  },
    { "a.#.#.b",            "a.x.y.z.b",                true  },
    { "a.#.#.b",            "a.x",                      false },
    { "#.*",                "a",                        true  },
    { "#.*",                "a.b.c",                    true  },
    { "*.#",                "a",                        true  },
    { "*.#",                "a.b.c",                    true  },
    { "*.#.*",              "a",                        false },
    { "*.#.*",              "a.b",                      true  },
    { "*.#.*",              "a.b.c.d",                  true  },
    { "#.*.*",              "a",                        false },
    { "#.*.*",              "a.b",                      true  },
    { "#.b.#",              "b",                        true  },
    { "#.b.#",              "a.b.c",                    true  },
    { "#.b.#",              "a.c",                      false },
    //  Backtracking: the first place a literal fits is not always the one
    { "#.a.b",              "a.a.b",                    true  },
    { "#.a.b",              "a.b.a.b",                  true  },
    { "#.a.b",              "a.b.a",                    false },
    { "a.#.b.c",            "a.b.c.b.c",                true  },
    { "a.#.b.c",            "a.b.c.b",                  false },
    { "#.a.*",              "a.a.a",                    true  },
    { "#.a.*",              "a.b.a",                    false },
    { "#.a.#.b",            "x.a.y.a.z.b",              true  },
    { "#.a.#.b",            "x.b.y.b",                  false },
    { "*.a.#",              "b.a",                      true  },
    { "*.a.#",              "a.b",                      false },
    //  RabbitMQ tutorial 5: bindings "*.orange.*", "*.*.rabbit", "lazy.#"
    { "*.orange.*",         "quick.orange.rabbit",      true  },
    { "*.*.rabbit",         "quick.orange.rabbit",      true  },
    { "lazy.#",             "quick.orange.rabbit",      false },
    { "*.orange.*",         "lazy.orange.elephant",     true  },
    { "*.*.rabbit",         "lazy.orange.elephant",     false },
    { "lazy.#",             "lazy.orange.elephant",     true  },
    { "*.orange.*",         "quick.orange.fox",         true  },
    { "*.*.rabbit",         "quick.orange.fox",         false },
    { "lazy.#",             "quick.orange.fox",         false },
    { "*.orange.*",         "lazy.brown.fox",           false },
    { "*.*.rabbit",         "lazy.brown.fox",           false },
    { "lazy.#",             "lazy.brown.fox",           true  },
    { "*.orange.*",         "lazy.pink.rabbit",         false },
    { "*.*.rabbit",         "lazy.pink.rabbit",         true  },
    { "lazy.#",             "lazy.pink.rabbit",         true  },
    { "*.orange.*",         "quick.brown.fox",          false },
    { "*.*.rabbit",         "quick.brown.fox",          false },
    { "lazy.#",             "quick.brown.fox",          false },
    { "*.orange.*",         "quick.orange.male.rabbit", false },
    { "*.*.rabbit",         "quick.orange.male.rabbit", false },
    { "lazy.#",             "quick.orange.male.rabbit", false },
    { "*.orange.*",         "lazy.orange.male.rabbit",  false },
    { "*.*.rabbit",         "lazy.orange.male.rabbit",  false },
    { "lazy.#",             "lazy.orange.male.rabbit",  true  },
    { "*.orange.*",         "orange",                   false },
    { "lazy.#",             "lazy",                     true  },
    //  RabbitMQ tutorial 5 (logs): "kern.*", "*.critical", "kern.#"
    { "kern.*",             "kern.critical",            true  },
    { "kern.*",             "kern",                     false },
    { "kern.*",             "kern.disk.critical",       false },
    { "kern.*",             "cron.critical",            false },
    { "kern.*",             "kernel.critical",          false },
    { "*.critical",         "kern.critical",            true  },
    { "*.critical",         "cron.critical",            true  },
    { "*.critical",         "critical",                 false },
    { "*.critical",         "a.kern.critical",          false },
    { "*.critical",         "kern.critical.x",          false },
    { "kern.#",             "kern",                     true  },
    { "kern.#",             "kern.critical",            true  },
    { "kern.#",             "kern.disk.critical",       true  },
    { "kern.#",             "kernel.critical",          false },
    { "kern.#",             "cron.kern",                false },
};

static void
test_match_table (void **state)
{
    (void) state;
    size_t count = sizeof s_match_cases / sizeof s_match_cases [0];
    assert_true (count >= 60);
    for (size_t i = 0; i < count; i++) {
        const match_case_t *c = &s_match_cases [i];
        //  The table itself must hold valid inputs only
        if (!s_pattern_valid (c->pattern) || !s_subject_valid (c->subject))
            fail_msg ("row %zu: invalid input \"%s\" / \"%s\"", i, c->pattern, c->subject);
        bool match = s_match (c->pattern, c->subject);
        if (match != c->match)
            fail_msg ("row %zu: \"%s\" vs \"%s\": got %d, want %d",
                      i, c->pattern, c->subject, match, c->match);
        //  and the reference agrees with the table
        assert_int_equal (s_ref_match (c->pattern, c->subject), c->match);
    }
}

typedef struct {
    const char *string;
    bool subject;               //  valid as a subject?
    bool pattern;               //  valid as a pattern?
} valid_case_t;

static const valid_case_t s_valid_cases [] = {
    { "",                       false,  false },
    { ".",                      false,  false },
    { "..",                     false,  false },
    { "a.",                     false,  false },
    { ".a",                     false,  false },
    { "a..b",                   false,  false },
    { "a.*.",                   false,  false },
    { "*.",                     false,  false },
    { ".#",                     false,  false },
    { "a",                      true,   true  },
    { "a.b.c",                  true,   true  },
    { "orders.eu.created",      true,   true  },
    { "a/b-c_d:e@f",            true,   true  },
    { "$SYS.x",                 true,   true  },
    { "!",                      true,   true  },    //  0x21, first printable
    { "~",                      true,   true  },    //  0x7e, last printable
    //  Wildcards: whole tokens in patterns, never in subjects
    { "*",                      false,  true  },
    { "#",                      false,  true  },
    { "a.*",                    false,  true  },
    { "#.a",                    false,  true  },
    { "a.#.b",                  false,  true  },
    { "*.*",                    false,  true  },
    { "#.#",                    false,  true  },
    { "*.#.*",                  false,  true  },
    { "a*",                     false,  false },
    { "*a",                     false,  false },
    { "a.#b",                   false,  false },
    { "#b.a",                   false,  false },
    { "a.b*",                   false,  false },
    { "a*b",                    false,  false },
    { "**",                     false,  false },
    { "##",                     false,  false },
    { "*#",                     false,  false },
    { "a.ü*",                   false,  false },
    //  Spaces and control characters
    { "a b",                    false,  false },
    { " a",                     false,  false },
    { "a ",                     false,  false },
    { "a.\x20",                 false,  false },
    { "a\tb",                   false,  false },
    { "a\nb",                   false,  false },
    { "a\rb",                   false,  false },
    { "\x01",                   false,  false },
    { "\x1f",                   false,  false },
    { "a\x7f",                  false,  false },
    { "\x7f.*",                 false,  false },
    //  Bytes from 0x80 up are data (UTF-8 subjects)
    { "\x80",                   true,   true  },
    { "\xff",                   true,   true  },
    { "ünï.côdé",               true,   true  },
    { "заказы.*",               false,  true  },
    { "日本.東京",              true,   true  },
};

static void
test_valid_table (void **state)
{
    (void) state;
    size_t count = sizeof s_valid_cases / sizeof s_valid_cases [0];
    assert_true (count >= 30);
    for (size_t i = 0; i < count; i++) {
        const valid_case_t *c = &s_valid_cases [i];
        if (s_subject_valid (c->string) != c->subject)
            fail_msg ("row %zu: \"%s\" as a subject: want %d", i, c->string, c->subject);
        if (s_pattern_valid (c->string) != c->pattern)
            fail_msg ("row %zu: \"%s\" as a pattern: want %d", i, c->string, c->pattern);
        assert_int_equal (s_ref_valid (c->string, false), c->subject);
        assert_int_equal (s_ref_valid (c->string, true), c->pattern);
    }
    assert_false (mesh_subject_valid (NULL));
    assert_false (mesh_pattern_valid (NULL));
}

static void
test_valid_lengths (void **state)
{
    (void) state;
    _Static_assert (MESH_MAX_SUBJECT == 255, "the lengths below assume 255");
    //  One token, at the limit and one past it
    assert_true (s_subject_valid (s_repeat ("a", 255, "")));
    assert_true (s_pattern_valid (s_repeat ("a", 255, "")));
    assert_false (s_subject_valid (s_repeat ("a", 256, "")));
    assert_false (s_pattern_valid (s_repeat ("a", 256, "")));
    assert_false (s_subject_valid (s_repeat ("a", 1000, "")));
    //  The most tokens, at the limit and one past it
    assert_true (s_subject_valid (s_repeat ("a.", 127, "b")));
    assert_false (s_subject_valid (s_repeat ("a.", 127, "bc")));
    assert_false (s_subject_valid (s_repeat ("a.", 128, "b")));
    assert_true (s_pattern_valid (s_repeat ("#.", 127, "#")));
    assert_false (s_subject_valid (s_repeat ("#.", 127, "#")));
    assert_true (s_pattern_valid (s_repeat ("*.", 127, "*")));
    assert_false (s_pattern_valid (s_repeat ("*.", 128, "*")));
    //  Too long, whatever comes at the end
    assert_false (s_subject_valid (s_repeat ("a", 255, ".")));
    assert_false (s_subject_valid (s_repeat ("a", 255, ".b")));
    assert_false (s_pattern_valid (s_repeat ("a", 255, ".#")));

    //  Validity reads at most MESH_MAX_SUBJECT + 1 bytes: a buffer of that
    //  many bytes with no NUL is refused without reading past it (ASan and
    //  valgrind would see the overrun)
    char *unterminated = malloc (MESH_MAX_SUBJECT + 1);
    assert_non_null (unterminated);
    memset (unterminated, 'a', MESH_MAX_SUBJECT + 1);
    assert_false (mesh_subject_valid (unterminated));
    assert_false (mesh_pattern_valid (unterminated));
    unterminated [MESH_MAX_SUBJECT - 1] = '.';
    assert_false (mesh_subject_valid (unterminated));
    free (unterminated);
}

static void
test_match_longest (void **state)
{
    (void) state;
    //  128 one-byte tokens, 255 bytes: the most a subject can have
    char subject [MESH_MAX_SUBJECT + 1];
    strcpy (subject, s_repeat ("a.", MAX_TOKENS - 1, "a"));
    assert_true (s_subject_valid (subject));
    assert_true (s_match ("#", subject));
    assert_true (s_match ("a.#", subject));
    assert_true (s_match ("#.a", subject));
    assert_true (s_match (s_repeat ("*.", MAX_TOKENS - 1, "*"), subject));
    assert_false (s_match (s_repeat ("*.", MAX_TOKENS - 2, "*"), subject));
    assert_true (s_match (s_repeat ("*.", MAX_TOKENS - 2, "#"), subject));
    assert_true (s_match (s_repeat ("#.", MAX_TOKENS - 1, "#"), subject));
    assert_true (s_match (s_repeat ("a.", MAX_TOKENS - 1, "a"), subject));
    assert_false (s_match (s_repeat ("a.", MAX_TOKENS - 1, "b"), subject));
}

static void
test_match_pathological (void **state)
{
    (void) state;
    //  Patterns that make a naive backtracking matcher exponential. These
    //  must simply finish; the bounded backtracking keeps them quadratic
    //  at worst. 127 tokens: "a.a. ... .a" (253 bytes), and the same
    //  ending in "x".
    char all_a [MESH_MAX_SUBJECT + 1];
    char ends_x [MESH_MAX_SUBJECT + 1];
    strcpy (all_a, s_repeat ("a.", 126, "a"));
    strcpy (ends_x, s_repeat ("a.", 126, "x"));
    assert_true (s_subject_valid (all_a));
    assert_true (s_subject_valid (ends_x));

    assert_false (s_match ("#.#.#.#.#.#.#.#.x", all_a));
    assert_true (s_match ("#.#.#.#.#.#.#.#.x", ends_x));

    //  As many "#" as fit, then a token that never comes
    const char *hashes = s_repeat ("#.", 126, "x");
    assert_true (s_pattern_valid (hashes));
    assert_false (s_match (hashes, all_a));
    assert_true (s_match (hashes, ends_x));

    //  "#" between literals that match almost everywhere
    const char *interleaved = s_repeat ("#.a.", 63, "x");
    assert_true (s_pattern_valid (interleaved));
    assert_false (s_match (interleaved, all_a));
    assert_true (s_match (interleaved, ends_x));

    const char *stars = s_repeat ("#.*.", 63, "x");
    assert_false (s_match (stars, all_a));
    assert_true (s_match (stars, ends_x));
}

//  Tokens for random strings: "a" is a prefix of "ab", and "b" of "ba",
//  so a matcher that compares prefixes instead of whole tokens is caught
static const char *s_alphabet [] = { "a", "b", "ab", "ba" };
#define ALPHABET_SIZE   (sizeof s_alphabet / sizeof s_alphabet [0])

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
s_random_subject (char *buffer, const char **tokens, size_t *count)
{
    size_t at = 0;
    *count = 1 + s_random (7);
    for (size_t i = 0; i < *count; i++) {
        tokens [i] = s_alphabet [s_random (ALPHABET_SIZE)];
        s_append (buffer, &at, tokens [i]);
    }
}

//  Half the patterns are made from the subject (so that many match), half
//  are drawn freely
static void
s_random_pattern (char *buffer, const char **tokens, size_t count)
{
    size_t at = 0;
    if (s_random (2)) {
        for (size_t i = 0; i < count; i++) {
            uint32_t roll = s_random (10);
            if (roll == 0) {
                s_append (buffer, &at, "#");                //  insert, keep
                s_append (buffer, &at, tokens [i]);
            }
            else
            if (roll == 1)
                s_append (buffer, &at, "*");                //  replace
            else
            if (roll == 2)
                s_append (buffer, &at, "#");                //  replace
            else
            if (roll == 3)
                ;                                           //  drop
            else
            if (roll == 4)                                  //  change
                s_append (buffer, &at, s_alphabet [s_random (ALPHABET_SIZE)]);
            else
                s_append (buffer, &at, tokens [i]);         //  keep
        }
        if (at == 0 || s_random (8) == 0)
            s_append (buffer, &at, "#");
    }
    else {
        size_t size = 1 + s_random (6);
        for (size_t i = 0; i < size; i++) {
            uint32_t roll = s_random (10);
            s_append (buffer, &at, roll < 3? "#": roll < 5? "*":
                                   s_alphabet [s_random (ALPHABET_SIZE)]);
        }
    }
}

static void
test_match_random (void **state)
{
    (void) state;
    s_rng_state = RANDOM_SEED;
    size_t matched = 0;
    for (size_t n = 0; n < RANDOM_PAIRS; n++) {
        char subject [MESH_MAX_SUBJECT + 1];
        char pattern [MESH_MAX_SUBJECT + 1];
        const char *tokens [MAX_TOKENS];
        size_t count;
        s_random_subject (subject, tokens, &count);
        s_random_pattern (pattern, tokens, count);
        assert_true (mesh_subject_valid (subject));
        assert_true (mesh_pattern_valid (pattern));
        bool want = s_ref_match (pattern, subject);
        bool got = s_match (pattern, subject);
        if (got != want)
            fail_msg ("pair %zu: \"%s\" vs \"%s\": got %d, want %d",
                      n, pattern, subject, got, want);
        matched += got;
    }
    //  Both answers well exercised, or the check proves little
    assert_true (matched > RANDOM_PAIRS / 5);
    assert_true (matched < RANDOM_PAIRS * 4 / 5);
}

static void
test_valid_random (void **state)
{
    (void) state;
    //  Short strings over the bytes that matter to validity
    static const char bytes [] = "ab.*#. \t\x7f\x80\xff!~";
    s_rng_state = RANDOM_SEED;
    size_t subjects = 0, patterns = 0;
    for (size_t n = 0; n < RANDOM_STRINGS; n++) {
        char string [16];
        size_t size = s_random (sizeof string);
        for (size_t i = 0; i < size; i++)
            string [i] = bytes [s_random (sizeof bytes - 1)];
        string [size] = '\0';
        bool subject = s_subject_valid (string);
        bool pattern = s_pattern_valid (string);
        if (subject != s_ref_valid (string, false) || pattern != s_ref_valid (string, true))
            fail_msg ("string %zu \"%s\": subject %d, pattern %d", n, string, subject, pattern);
        subjects += subject;
        patterns += pattern;
    }
    assert_true (subjects > 0);
    assert_true (patterns > subjects);
}


int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_usage_example),
        cmocka_unit_test (test_match_table),
        cmocka_unit_test (test_valid_table),
        cmocka_unit_test (test_valid_lengths),
        cmocka_unit_test (test_match_longest),
        cmocka_unit_test (test_match_pathological),
        cmocka_unit_test (test_match_random),
        cmocka_unit_test (test_valid_random),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
