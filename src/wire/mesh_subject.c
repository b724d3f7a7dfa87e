/*  =========================================================================
    mesh_subject - subject and pattern validity, and the subject matcher

    Semantics are those of an AMQP topic exchange (RabbitMQ): a subject is
    a list of dot-separated tokens; in a pattern "*" matches exactly one
    token and "#" matches zero or more. So "a.#" matches "a" and "a.b.c",
    "a.#.b" matches "a.b", and "a.*" does not match "a".

    Validity is one pass over at most MESH_MAX_SUBJECT + 1 bytes: we never
    walk further than that, so an unterminated or huge string from a peer
    costs a bounded amount of work before it is refused.

    The matcher runs per publish per peer pattern, so it works in place on
    the two strings: no tokenising into arrays, no strlen, no allocation.
    It is the classic two-pointer wildcard algorithm (as for shell globs
    with "*" and "?"), applied to tokens instead of characters: "#" plays
    "*", and "*" plays "?". Only the most recent "#" is remembered as a
    backtrack point. That is enough: once a later "#" has matched, any way
    of giving more or fewer tokens to an earlier "#" can be had by giving
    them to the later one instead, because the tokens between the two were
    matched literally and "#" absorbs any run. So the work is bounded by
    (pattern tokens x subject tokens) token comparisons, at most about
    255 x 255 byte steps, and patterns like "#.#.#.#.x" cannot blow up.

    The matcher assumes both strings are valid (callers validate once, at
    subscribe and at receive). Given invalid strings it still stops at the
    terminating NUL and returns some answer; it just is not a meaningful one.
    ========================================================================= */

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>

#include "meshbus/pattern.h"
#include "mesh_limits.h"

//  A token ends at a dot or at the end of the string
static inline bool
s_is_end (char c)
{
    return c == '.' || c == '\0';
}

//  Is the token at t exactly the one-character wildcard w?
static inline bool
s_is_wild (const char *t, char w)
{
    return t [0] == w && s_is_end (t [1]);
}

//  The start of the token after the one at t, or the terminating NUL.
//  Tokens are short and this is only used on the backtrack path and on
//  wildcard tokens; literal tokens advance as they compare.
static inline const char *
s_next (const char *t)
{
    while (!s_is_end (*t))
        t++;
    return *t? t + 1: t;
}

//  Compare the literal token at *pattern with the token at *subject; if
//  equal, move both past their token (and its dot) and return true.
static inline bool
s_token_take (const char **pattern, const char **subject)
{
    const char *p = *pattern;
    const char *s = *subject;
    while (*p == *s && !s_is_end (*p)) {
        p++;
        s++;
    }
    if (!(s_is_end (*p) && s_is_end (*s)))
        return false;
    *pattern = *p? p + 1: p;
    *subject = *s? s + 1: s;
    return true;
}

//  One pass over the bytes; wildcards says whether "*" and "#" may appear
//  (as whole tokens only).
static bool
s_valid (const char *string, bool wildcards)
{
    if (!string)
        return false;
    size_t size = 0;            //  bytes so far
    size_t token = 0;           //  bytes in the current token
    bool wild = false;          //  current token holds "*" or "#"
    for (;; size++) {
        unsigned char c = (unsigned char) string [size];
        if (c != '\0' && size == MESH_MAX_SUBJECT)
            return false;       //  too long: stop reading here
        if (c == '\0' || c == '.') {
            if (token == 0 || (wild && token != 1))
                return false;   //  empty token, or "a*", "#b", "**"
            if (c == '\0')
                return true;    //  1..MESH_MAX_SUBJECT bytes, as checked above
            token = 0;
            wild = false;
        }
        else
        if (c <= 0x20 || c == 0x7f)
            return false;       //  space or control character
        else
        if (c == '*' || c == '#') {
            if (!wildcards)
                return false;
            wild = true;
            token++;
        }
        else
            token++;
    }
}

bool
mesh_subject_valid (const char *subject)
{
    return s_valid (subject, false);
}

bool
mesh_pattern_valid (const char *pattern)
{
    return s_valid (pattern, true);
}

bool
mesh_subject_match (const char *pattern, const char *subject)
{
    assert (pattern);
    assert (subject);
    const char *p = pattern;
    const char *s = subject;
    //  The last "#" seen: the pattern token after it, and the first subject
    //  token it has not yet absorbed. NULL until a "#" is seen.
    const char *hash_p = NULL;
    const char *hash_s = NULL;

    while (*s) {
        if (s_is_wild (p, '#')) {
            //  Try "#" as zero tokens first; backtracking gives it more
            p = s_next (p);
            hash_p = p;
            hash_s = s;
        }
        else
        if (s_is_wild (p, '*')) {
            p = s_next (p);
            s = s_next (s);
        }
        else
        if (*p && s_token_take (&p, &s))
            ;                   //  same literal token: both moved past it
        else
        if (hash_p) {
            //  Mismatch: let the last "#" absorb one more subject token
            //  and retry the rest of the pattern from just after it
            hash_s = s_next (hash_s);
            s = hash_s;
            p = hash_p;
        }
        else
            return false;
    }
    //  Subject used up: what is left of the pattern must match nothing
    while (s_is_wild (p, '#'))
        p = s_next (p);
    return *p == '\0';
}
