/*  =========================================================================
    test_announce - the one announcement codec (src/wire/mesh_announce.c)

    What every pattern announces goes through it, so it must give back
    exactly what was written: fields starting with every byte a C string
    can hold, fields with the separators and the escape in them, fields at
    and past the length limit, records at the field limit, the empty
    announcement. And what a peer sends is input: garbage is refused or
    skipped, never read past, never mistaken for a record. (The pipeline
    once took a queue named "images..." for its incarnation line: a record
    here is never a version line and a version line never a record.)
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
#include "mesh_announce.h"

//  Encode one record, parse the text back, compare field by field
static void
s_round_trip (const char *const *fields, size_t count)
{
    mesh_announcement_t *out = mesh_announcement_new ();
    assert_non_null (out);
    assert_int_equal (mesh_announcement_add (out, fields, count), 0);
    assert_int_equal (mesh_announcement_add (out, fields, count), 0);    //  twice: records stay apart
    mesh_announcement_t *in = mesh_announcement_parse (mesh_announcement_data (out),
                                                       mesh_announcement_size (out));
    assert_non_null (in);
    assert_int_equal (mesh_announcement_malformed (in), 0);
    assert_int_equal (mesh_announcement_count (in), 2);
    for (size_t r = 0; r < 2; r++) {
        const mesh_record_t *record = mesh_announcement_record (in, r);
        assert_non_null (record);
        assert_int_equal (record->fields, count);
        for (size_t i = 0; i < count; i++)
            assert_string_equal (record->field [i], fields [i]? fields [i]: "");
    }
    assert_null (mesh_announcement_record (in, 2));
    assert_true (mesh_announcement_same (in, mesh_announcement_data (out),
                                         mesh_announcement_size (out)));
    mesh_announcement_destroy (&in);
    mesh_announcement_destroy (&out);
    assert_null (out);
    mesh_announcement_destroy (&out);   //  twice is safe
}

//  The usage: a pattern writes its records, a peer reads them back
static void
test_records_round_trip (void **state)
{
    (void) state;
    const char *queue [] = { "queue", "images.resize", "4" };
    s_round_trip (queue, 3);
    const char *sub [] = { "sub", "0", "L", "", "orders.#" };   //  an empty field
    s_round_trip (sub, 5);
    const char *tag [] = { "svc" };
    s_round_trip (tag, 1);
}

//  A name starting with every byte value 1..255, with the TAB, LF and
//  backslash of the format anywhere in it
static void
test_every_first_byte (void **state)
{
    (void) state;
    for (int c = 1; c < 256; c++) {
        char name [8] = { (char) c, 'm', 'a', 'g', 'e', 's', 0 };
        const char *fields [] = { "queue", name, "1" };
        s_round_trip (fields, 3);
        const char *as_tag [] = { name, name };
        s_round_trip (as_tag, 2);
    }
    const char *nasty [] = { "x", "\\", "\t", "\n", "\\t", "a\\nb", "@1", "i123\tb" };
    s_round_trip (nasty, 8);
    const char *versions [] = { "@1", "@2" };   //  a record that looks like a version line
    s_round_trip (versions, 2);
    const char *images [] = { "queue", "images..", "images...", "i", "i1" };
    s_round_trip (images, 5);
}

//  Fields at the length limit pass, one byte more is refused; a record at
//  the field limit passes, one more field is refused; no tag is refused
static void
test_limits (void **state)
{
    (void) state;
    char *big = (char *) malloc (MESH_ANNOUNCE_MAX_FIELD + 2);
    memset (big, '\\', MESH_ANNOUNCE_MAX_FIELD + 1);    //  escaped: twice as long on the wire
    for (size_t len = MESH_ANNOUNCE_MAX_FIELD - 1; len <= MESH_ANNOUNCE_MAX_FIELD; len++) {
        big [len] = 0;
        const char *fields [] = { "big", big };
        s_round_trip (fields, 2);
        big [len] = '\\';
    }
    big [MESH_ANNOUNCE_MAX_FIELD + 1] = 0;
    mesh_announcement_t *out = mesh_announcement_new ();
    const char *too_big [] = { "big", big };
    assert_int_equal (mesh_announcement_add (out, too_big, 2), -1);
    assert_int_equal (mesh_errno (), MESH_ETOOBIG);
    const char *many [MESH_ANNOUNCE_MAX_FIELDS + 1];
    for (size_t i = 0; i <= MESH_ANNOUNCE_MAX_FIELDS; i++)
        many [i] = "f";
    s_round_trip (many, MESH_ANNOUNCE_MAX_FIELDS);
    assert_int_equal (mesh_announcement_add (out, many, MESH_ANNOUNCE_MAX_FIELDS + 1), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    const char *no_tag [] = { "", "x" };
    assert_int_equal (mesh_announcement_add (out, no_tag, 2), -1);
    assert_int_equal (mesh_announcement_add (out, many, 0), -1);
    //  nothing refused was written: still the empty announcement
    mesh_announcement_t *in = mesh_announcement_parse (mesh_announcement_data (out),
                                                       mesh_announcement_size (out));
    assert_non_null (in);
    assert_int_equal (mesh_announcement_count (in), 0);
    assert_int_equal (mesh_announcement_malformed (in), 0);
    mesh_announcement_destroy (&in);
    mesh_announcement_destroy (&out);
    free (big);
}

typedef struct {
    const char *text;
    bool parsed;                //  read at all (a version we know)
    size_t records;             //  then: records kept
    size_t malformed;           //  and records skipped
} garbage_t;

//  What a peer may send instead: refused whole, or bad records skipped
static void
test_garbage (void **state)
{
    (void) state;
    const garbage_t cases [] = {
        { "", false, 0, 0 },
        { "@", false, 0, 0 },
        { "@1", false, 0, 0 },                  //  no LF after the version
        { "@2\nsvc\ta\n", false, 0, 0 },        //  a version we do not read
        { "@x\nsvc\ta\n", false, 0, 0 },
        { "@01234567\n", false, 0, 0 },         //  version too long
        { "svc\ta\n", false, 0, 0 },            //  no version line: the old formats
        { "i123\tb\nimages\t4\n", false, 0, 0 },
        { "@1\n", true, 0, 0 },
        { "@1\nsvc\ta\n", true, 1, 0 },
        { "@1\nsvc\ta", true, 0, 1 },           //  last line without LF
        { "@1\n\n", true, 0, 1 },               //  empty line: no tag
        { "@1\n\ta\n", true, 0, 1 },            //  empty tag
        { "@1\nsvc\\x\n", true, 0, 1 },         //  unknown escape
        { "@1\nsvc\\\n", true, 0, 1 },          //  escape at the end
        { "@1\na\tb\tc\td\te\tf\tg\th\ti\n", true, 0, 1 },     //  nine fields
        { "@1\nbad\\q\nsvc\tok\n", true, 1, 1 },    //  the bad record alone goes
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        mesh_announcement_t *in = mesh_announcement_parse (cases [i].text, strlen (cases [i].text));
        if (!cases [i].parsed) {
            if (in)
                print_message ("case %zu parsed\n", i);
            assert_null (in);
            continue;
        }
        assert_non_null (in);
        assert_int_equal (mesh_announcement_count (in), cases [i].records);
        assert_int_equal (mesh_announcement_malformed (in), cases [i].malformed);
        mesh_announcement_destroy (&in);
    }
    //  a NUL inside a field, and a field one byte over the limit
    const char nul [] = "@1\nsvc\ta\0b\nsvc\tc\n";
    mesh_announcement_t *in = mesh_announcement_parse (nul, sizeof nul - 1);
    assert_int_equal (mesh_announcement_count (in), 1);
    assert_string_equal (mesh_announcement_record (in, 0)->field [1], "c");
    assert_int_equal (mesh_announcement_malformed (in), 1);
    mesh_announcement_destroy (&in);
    size_t size = 4 + 4 + MESH_ANNOUNCE_MAX_FIELD + 1 + 1;
    char *long_field = (char *) malloc (size);
    memcpy (long_field, "@1\nbig\t", 7);
    memset (long_field + 7, 'x', MESH_ANNOUNCE_MAX_FIELD + 1);
    long_field [7 + MESH_ANNOUNCE_MAX_FIELD + 1] = '\n';
    in = mesh_announcement_parse (long_field, 7 + MESH_ANNOUNCE_MAX_FIELD + 2);
    assert_int_equal (mesh_announcement_count (in), 0);
    assert_int_equal (mesh_announcement_malformed (in), 1);
    mesh_announcement_destroy (&in);
    free (long_field);
}

//  More lines than MESH_ANNOUNCE_MAX_RECORDS: the rest is counted, not kept
static void
test_record_limit (void **state)
{
    (void) state;
    mesh_announcement_t *out = mesh_announcement_new ();
    const char *fields [] = { "svc", "a.b" };
    for (int i = 0; i < MESH_ANNOUNCE_MAX_RECORDS + 3; i++)
        assert_int_equal (mesh_announcement_add (out, fields, 2), 0);
    mesh_announcement_t *in = mesh_announcement_parse (mesh_announcement_data (out),
                                                       mesh_announcement_size (out));
    assert_int_equal (mesh_announcement_count (in), MESH_ANNOUNCE_MAX_RECORDS);
    assert_int_equal (mesh_announcement_malformed (in), 3);
    mesh_announcement_destroy (&in);
    mesh_announcement_destroy (&out);
}

//  Deltas: for random lists and random edits (records added, removed or
//  replaced anywhere, several at once), the diff is one run of whole
//  records, no larger than what changed, and applying it to the old value
//  gives the new one exactly
static uint64_t s_rng = 0x64656c7461ULL;
static uint32_t
s_rand (uint32_t bound)
{
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return (uint32_t) ((s_rng * 0x2545F4914F6CDD1DULL) >> 33) % bound;
}

static size_t
s_list (char *out, const int *items, size_t count)
{
    size_t at = (size_t) sprintf (out, "@1\n");
    for (size_t i = 0; i < count; i++)
        at += (size_t) sprintf (out + at, "sub\t0\t-\t\tuser.%d.#\n", items [i]);
    return at;
}

static void
test_delta_round_trip (void **state)
{
    (void) state;
    static int a [400], b [400];
    static char old [400 * 40], now [400 * 40];
    for (int round = 0; round < 20000; round++) {
        size_t na = s_rand (300), nb = 0;
        for (size_t i = 0; i < na; i++)
            a [i] = (int) s_rand (50);          //  repeats: prefix and suffix may overlap
        //  b: a with one run replaced by a random run (possibly empty)
        size_t from = na? s_rand ((uint32_t) na + 1): 0;
        size_t to = from + s_rand ((uint32_t) (na - from) + 1);
        for (size_t i = 0; i < from; i++)
            b [nb++] = a [i];
        size_t run = nb;
        for (size_t n = s_rand (4); n; n--)
            b [nb++] = (int) s_rand (50);
        static char scratch [400 * 40];
        size_t inserted = s_list (scratch, b + run, nb - run) - 3;     //  without "@1\n"
        run = nb - run;
        for (size_t i = to; i < na; i++)
            b [nb++] = a [i];
        size_t os = s_list (old, a, na), ns = s_list (now, b, nb);
        size_t at, cut, added;
        mesh_announce_diff (old, os, now, ns, &at, &cut, &added);
        assert_true (at <= os && cut <= os - at && at + added <= ns);
        assert_true (at == 0 || old [at - 1] == '\n');     //  whole records
        assert_true (added <= inserted);        //  no more than what changed
        (void) run;
        uint8_t delta [MESH_ANNOUNCE_DELTA_HEAD + sizeof now];
        mesh_announce_delta_head (delta, at, cut);
        memcpy (delta + MESH_ANNOUNCE_DELTA_HEAD, now + at, added);
        size_t size = 0;
        char *got = (char *) mesh_announce_apply (old, os, delta,
                                                  MESH_ANNOUNCE_DELTA_HEAD + added, 1 << 20, &size);
        assert_non_null (got);
        assert_int_equal (size, ns);
        assert_memory_equal (got, now, ns);
        assert_int_equal (got [size], 0);
        free (got);
    }
}

//  A delta that does not fit the value it claims to apply to is refused
//  (input from the network): never read or written out of bounds
static void
test_delta_refused (void **state)
{
    (void) state;
    const char *old = "@1\nsvc\ta\n";
    size_t os = strlen (old), size;
    uint8_t delta [MESH_ANNOUNCE_DELTA_HEAD + 4];
    memcpy (delta + MESH_ANNOUNCE_DELTA_HEAD, "svc\n", 4);
    mesh_announce_delta_head (delta, os + 1, 0);            //  at past the end
    assert_null (mesh_announce_apply (old, os, delta, sizeof delta, 1 << 20, &size));
    mesh_announce_delta_head (delta, 3, os - 2);            //  cut past the end
    assert_null (mesh_announce_apply (old, os, delta, sizeof delta, 1 << 20, &size));
    mesh_announce_delta_head (delta, os, 0);                //  over the size limit
    assert_null (mesh_announce_apply (old, os, delta, sizeof delta, os + 3, &size));
    assert_null (mesh_announce_apply (old, os, delta, 7, 1 << 20, &size));   //  too short
    mesh_announce_delta_head (delta, 0xffffffffu, 0xffffffffu);
    assert_null (mesh_announce_apply (old, os, delta, sizeof delta, 1 << 20, &size));
    mesh_announce_delta_head (delta, os, 0);                //  exactly at the end: fits
    char *got = (char *) mesh_announce_apply (old, os, delta, sizeof delta, os + 4, &size);
    assert_non_null (got);
    assert_int_equal (size, os + 4);
    free (got);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_records_round_trip),
        cmocka_unit_test (test_every_first_byte),
        cmocka_unit_test (test_limits),
        cmocka_unit_test (test_garbage),
        cmocka_unit_test (test_record_limit),
        cmocka_unit_test (test_delta_round_trip),
        cmocka_unit_test (test_delta_refused),
    };
    return cmocka_run_group_tests_name ("announce", tests, NULL, NULL);
}
