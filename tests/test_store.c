/*  =========================================================================
    test_store - the LMDB store: records, metadata, sync modes, map growth,
    crash safety and damaged files

    Every test works in its own mkdtemp directory and removes it. Crash
    tests run this program again (argv[0] --crash-child DIR MODE FD): the
    child writes records 1, 2, 3... and reports each key on a pipe once it
    is durable (SYNC: after put returns; GROUP: after flush returns); the
    parent kills it with SIGKILL at a random moment and checks that every
    reported key is in the reopened store with the right value. The map
    growth test shrinks the map with MESH_STORE_MAPSIZE / MESH_STORE_MAPMAX.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "meshbus.h"
#include "tmpdir.h"

#define CRASH_CHILD     "--crash-child"
#define COUNT_CHILD     "--count-child"
#define CRASH_RECORDS   200     //  reported records before the kill
#define CRASH_ROUNDS    3       //  kills per sync mode, on the same store

static const char *s_argv0;

//  --------------------------------------------------------------------------
//  Helpers


static char *
s_path (const char *dir, const char *file)
{
    char *path = (char *) malloc (strlen (dir) + strlen (file) + 2);
    sprintf (path, "%s/%s", dir, file);
    return path;
}

//  The value of record key in the crash and bulk tests: its size and
//  bytes follow from the key, so a torn or misplaced record shows.
static size_t
s_value (uint64_t key, char *buf, size_t cap)
{
    size_t size = 20 + key % 80;
    assert_true (size <= cap);
    int n = snprintf (buf, cap, "value-%llu:", (unsigned long long) key);
    for (size_t i = (size_t) n; i < size; i++)
        buf [i] = (char) ('a' + (key + i) % 26);
    return size;
}

static void
s_assert_value (mesh_store_t *store, uint64_t key)
{
    char expect [128];
    size_t size = s_value (key, expect, sizeof expect);
    size_t got_size = 0;
    char *got = (char *) mesh_store_get (store, key, &got_size);
    if (!got)
        fail_msg ("record %llu missing", (unsigned long long) key);
    assert_int_equal (got_size, size);
    assert_memory_equal (got, expect, size);
    free (got);
}

typedef struct {
    uint64_t keys [64];
    char values [64][32];
    size_t count;
    size_t stop_after;          //  0 = never stop
} s_collect_t;

static bool
s_collect (uint64_t key, const void *data, size_t size, void *arg)
{
    s_collect_t *c = (s_collect_t *) arg;
    assert_true (c->count < 64);
    c->keys [c->count] = key;
    snprintf (c->values [c->count], 32, "%.*s", (int) size, (const char *) data);
    c->count++;
    return !(c->stop_after && c->count >= c->stop_after);
}

static void
s_put_str (mesh_store_t *store, uint64_t key, const char *value)
{
    assert_int_equal (mesh_store_put (store, key, value, strlen (value)), 0);
}

static void
s_assert_str (mesh_store_t *store, uint64_t key, const char *value)
{
    size_t size = 0;
    char *got = (char *) mesh_store_get (store, key, &size);
    assert_non_null (got);
    assert_int_equal (size, strlen (value));
    assert_memory_equal (got, value, size);
    free (got);
}


//  --------------------------------------------------------------------------
//  Usage

static void
test_usage_example (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_store");

    //  A store is a directory and a name; each write is durable on return
    mesh_store_t *store = mesh_store_new (dir, "outbox", MESH_STORE_SYNC);
    assert_non_null (store);
    assert_int_equal (mesh_store_put (store, 1, "first", 5), 0);
    assert_int_equal (mesh_store_put (store, 2, "second", 6), 0);
    assert_int_equal (mesh_store_put (store, 3, "third", 5), 0);
    mesh_store_destroy (&store);
    assert_null (store);
    mesh_store_destroy (&store);            //  safe twice

    //  Reopened, the records come back in key order
    store = mesh_store_new (dir, "outbox", MESH_STORE_SYNC);
    assert_non_null (store);
    s_collect_t seen = { .count = 0 };
    assert_int_equal (mesh_store_scan (store, 0, s_collect, &seen), 3);
    assert_int_equal (seen.keys [0], 1);
    assert_string_equal (seen.values [0], "first");
    assert_int_equal (seen.keys [1], 2);
    assert_string_equal (seen.values [1], "second");
    assert_int_equal (seen.keys [2], 3);
    assert_string_equal (seen.values [2], "third");
    mesh_store_destroy (&store);
    t_tmpdir_remove (&dir);
}


//  --------------------------------------------------------------------------
//  Records and metadata, in both sync modes

static void
s_put_get_replace_delete (int mode)
{
    char *dir = t_tmpdir_new ("test_store");
    mesh_store_t *store = mesh_store_new (dir, "records", mode);
    assert_non_null (store);

    //  Missing: NULL, and mesh_errno() says it is not an error
    assert_null (mesh_store_get (store, 7, NULL));
    assert_int_equal (mesh_errno (), MESH_OK);

    s_put_str (store, 7, "seven");
    s_assert_str (store, 7, "seven");
    s_put_str (store, 7, "seven, longer now");      //  replace
    s_assert_str (store, 7, "seven, longer now");
    assert_int_equal (mesh_store_count (store), 1);

    //  Empty records are records
    assert_int_equal (mesh_store_put (store, 8, NULL, 0), 0);
    size_t size = 99;
    void *empty = mesh_store_get (store, 8, &size);
    assert_non_null (empty);
    assert_int_equal (size, 0);
    free (empty);

    assert_int_equal (mesh_store_delete (store, 7), 0);
    assert_null (mesh_store_get (store, 7, NULL));
    assert_int_equal (mesh_store_delete (store, 7), 0);     //  absent: nothing to do
    assert_int_equal (mesh_store_count (store), 1);
    assert_int_equal (mesh_store_flush (store), 0);

    //  Keys sort as numbers, over the whole 64-bit range
    uint64_t keys [] = { UINT64_MAX, 0, 1ULL << 40, 255, 256, 1ULL << 63, 65536 };
    for (size_t i = 0; i < sizeof keys / sizeof keys [0]; i++)
        assert_int_equal (mesh_store_put (store, keys [i], &keys [i], 8), 0);
    assert_int_equal (mesh_store_delete (store, 8), 0);
    s_collect_t seen = { .count = 0 };
    assert_int_equal (mesh_store_scan (store, 0, s_collect, &seen), 7);
    uint64_t sorted [] = { 0, 255, 256, 65536, 1ULL << 40, 1ULL << 63, UINT64_MAX };
    for (size_t i = 0; i < 7; i++)
        assert_true (seen.keys [i] == sorted [i]);
    assert_true (mesh_store_first (store) == 0);
    assert_true (mesh_store_last (store) == UINT64_MAX);
    mesh_store_destroy (&store);
    t_tmpdir_remove (&dir);
}

static void
test_put_get_replace_delete (void **state)
{
    (void) state;
    s_put_get_replace_delete (MESH_STORE_SYNC);
    s_put_get_replace_delete (MESH_STORE_GROUP);
}

static void
s_scan_from_and_stop (int mode)
{
    char *dir = t_tmpdir_new ("test_store");
    mesh_store_t *store = mesh_store_new (dir, "scan", mode);
    assert_non_null (store);
    for (uint64_t key = 10; key <= 100; key += 10) {
        char value [16];
        snprintf (value, sizeof value, "v%llu", (unsigned long long) key);
        s_put_str (store, key, value);
    }
    //  From a key between records: starts at the next one
    s_collect_t seen = { .count = 0 };
    assert_int_equal (mesh_store_scan (store, 35, s_collect, &seen), 7);
    assert_int_equal (seen.keys [0], 40);
    assert_string_equal (seen.values [0], "v40");
    assert_int_equal (seen.keys [6], 100);

    //  From an exact key, stopping after 3: the callback's false counts
    s_collect_t three = { .count = 0, .stop_after = 3 };
    assert_int_equal (mesh_store_scan (store, 50, s_collect, &three), 3);
    assert_int_equal (three.count, 3);
    assert_int_equal (three.keys [0], 50);
    assert_int_equal (three.keys [2], 70);

    //  Past the end
    s_collect_t none = { .count = 0 };
    assert_int_equal (mesh_store_scan (store, 101, s_collect, &none), 0);
    assert_int_equal (none.count, 0);
    mesh_store_destroy (&store);
    t_tmpdir_remove (&dir);
}

static void
test_scan_from_a_key_and_stop_early (void **state)
{
    (void) state;
    s_scan_from_and_stop (MESH_STORE_SYNC);
    s_scan_from_and_stop (MESH_STORE_GROUP);
}

static void
s_first_last_count (int mode)
{
    char *dir = t_tmpdir_new ("test_store");
    mesh_store_t *store = mesh_store_new (dir, "edges", mode);
    assert_non_null (store);
    assert_int_equal (mesh_store_first (store), 0);
    assert_int_equal (mesh_store_last (store), 0);
    assert_int_equal (mesh_store_count (store), 0);
    s_collect_t seen = { .count = 0 };
    assert_int_equal (mesh_store_scan (store, 0, s_collect, &seen), 0);

    s_put_str (store, 42, "x");
    assert_int_equal (mesh_store_first (store), 42);
    assert_int_equal (mesh_store_last (store), 42);
    assert_int_equal (mesh_store_count (store), 1);
    s_put_str (store, 17, "y");
    s_put_str (store, 99, "z");
    assert_int_equal (mesh_store_first (store), 17);
    assert_int_equal (mesh_store_last (store), 99);
    assert_int_equal (mesh_store_count (store), 3);
    mesh_store_destroy (&store);
    t_tmpdir_remove (&dir);
}

static void
test_first_last_count (void **state)
{
    (void) state;
    s_first_last_count (MESH_STORE_SYNC);
    s_first_last_count (MESH_STORE_GROUP);
}

static void
s_trim (int mode)
{
    char *dir = t_tmpdir_new ("test_store");
    mesh_store_t *store = mesh_store_new (dir, "trim", mode);
    assert_non_null (store);
    assert_int_equal (mesh_store_trim (store, 100), 0);         //  empty
    //  Enough records for several pages, so the trim crosses pages
    char value [128];
    for (uint64_t key = 1; key <= 5000; key++)
        assert_int_equal (mesh_store_put (store, key, value, s_value (key, value, sizeof value)), 0);
    assert_int_equal (mesh_store_trim (store, 0), 0);
    assert_int_equal (mesh_store_trim (store, 1), 0);
    assert_int_equal (mesh_store_trim (store, 2), 1);
    assert_int_equal (mesh_store_trim (store, 2501), 2499);
    assert_int_equal (mesh_store_count (store), 2500);
    assert_int_equal (mesh_store_first (store), 2501);
    assert_int_equal (mesh_store_trim (store, 2501), 0);        //  again: nothing
    s_assert_value (store, 2501);
    s_assert_value (store, 5000);
    assert_null (mesh_store_get (store, 2500, NULL));

    //  Pending group writes below the mark are trimmed too
    for (uint64_t key = 1; key <= 10; key++)
        s_put_str (store, key, "late");
    assert_int_equal (mesh_store_trim (store, 2600), 10 + 99);
    assert_int_equal (mesh_store_first (store), 2600);
    assert_int_equal (mesh_store_trim (store, UINT64_MAX), 2401);
    assert_int_equal (mesh_store_count (store), 0);
    mesh_store_destroy (&store);

    store = mesh_store_new (dir, "trim", mode);
    assert_int_equal (mesh_store_count (store), 0);
    mesh_store_destroy (&store);
    t_tmpdir_remove (&dir);
}

static void
test_trim (void **state)
{
    (void) state;
    s_trim (MESH_STORE_SYNC);
    s_trim (MESH_STORE_GROUP);
}

static void
s_meta (int mode)
{
    char *dir = t_tmpdir_new ("test_store");
    mesh_store_t *store = mesh_store_new (dir, "meta", mode);
    assert_non_null (store);
    assert_null (mesh_store_meta_get (store, "position"));
    assert_int_equal (mesh_errno (), MESH_OK);
    assert_int_equal (mesh_store_meta_set (store, "position", "41"), 0);
    char *value = mesh_store_meta_get (store, "position");
    assert_string_equal (value, "41");
    free (value);
    assert_int_equal (mesh_store_meta_set (store, "position", "1042"), 0);
    assert_int_equal (mesh_store_meta_set (store, "acked", ""), 0);
    assert_int_equal (mesh_store_meta_set (store, "gone", "soon"), 0);
    assert_int_equal (mesh_store_meta_set (store, "gone", NULL), 0);   //  NULL deletes
    assert_null (mesh_store_meta_get (store, "gone"));

    //  Keys: 1 .. 511 bytes (LMDB's key limit)
    assert_int_equal (mesh_store_meta_set (store, "", "x"), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    char long_key [600];
    memset (long_key, 'k', sizeof long_key - 1);
    long_key [sizeof long_key - 1] = 0;
    assert_int_equal (mesh_store_meta_set (store, long_key, "x"), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    long_key [511] = 0;
    assert_int_equal (mesh_store_meta_set (store, long_key, "max"), 0);

    //  Metadata and records live apart
    assert_int_equal (mesh_store_count (store), 0);
    mesh_store_destroy (&store);

    store = mesh_store_new (dir, "meta", mode);
    value = mesh_store_meta_get (store, "position");
    assert_string_equal (value, "1042");
    free (value);
    value = mesh_store_meta_get (store, "acked");
    assert_string_equal (value, "");
    free (value);
    value = mesh_store_meta_get (store, long_key);
    assert_string_equal (value, "max");
    free (value);
    mesh_store_destroy (&store);
    t_tmpdir_remove (&dir);
}

static void
test_meta_set_get_overwrite (void **state)
{
    (void) state;
    s_meta (MESH_STORE_SYNC);
    s_meta (MESH_STORE_GROUP);
}


//  --------------------------------------------------------------------------
//  Sync modes

//  The number of records another process sees in the store now
static long
s_count_elsewhere (const char *dir, const char *name)
{
    int fds [2];
    assert_int_equal (pipe (fds), 0);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        dup2 (fds [1], STDOUT_FILENO);
        execl (s_argv0, s_argv0, COUNT_CHILD, dir, name, (char *) NULL);
        _exit (127);
    }
    close (fds [1]);
    char text [64] = "";
    ssize_t n = read (fds [0], text, sizeof text - 1);
    close (fds [0]);
    int status;
    waitpid (pid, &status, 0);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    assert_true (n > 0);
    return atol (text);
}

static void
test_sync_mode_is_durable_at_once (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_store");
    mesh_store_t *store = mesh_store_new (dir, "sync", MESH_STORE_SYNC);
    assert_non_null (store);
    s_put_str (store, 1, "one");
    assert_int_equal (s_count_elsewhere (dir, "sync"), 1);
    s_put_str (store, 2, "two");
    assert_int_equal (mesh_store_delete (store, 1), 0);
    assert_int_equal (mesh_store_meta_set (store, "k", "v"), 0);
    assert_int_equal (s_count_elsewhere (dir, "sync"), 1);
    assert_int_equal (mesh_store_flush (store), 0);             //  nothing to do
    mesh_store_destroy (&store);
    t_tmpdir_remove (&dir);
}

static void
test_group_mode_reads_see_pending_writes (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_store");
    mesh_store_t *store = mesh_store_new (dir, "group", MESH_STORE_GROUP);
    assert_non_null (store);
    s_put_str (store, 5, "five");
    assert_int_equal (mesh_store_meta_set (store, "pos", "5"), 0);

    //  This process sees the pending writes...
    s_assert_str (store, 5, "five");
    assert_int_equal (mesh_store_count (store), 1);
    assert_int_equal (mesh_store_first (store), 5);
    assert_int_equal (mesh_store_last (store), 5);
    char *pos = mesh_store_meta_get (store, "pos");
    assert_string_equal (pos, "5");
    free (pos);
    s_collect_t seen = { .count = 0 };
    assert_int_equal (mesh_store_scan (store, 0, s_collect, &seen), 1);
    //  ...reading did not commit them: another process sees nothing yet
    assert_int_equal (s_count_elsewhere (dir, "group"), 0);

    //  Flush is the durability point
    assert_int_equal (mesh_store_flush (store), 0);
    assert_int_equal (s_count_elsewhere (dir, "group"), 1);
    assert_int_equal (mesh_store_flush (store), 0);             //  nothing pending

    //  A pending delete hides a committed record
    assert_int_equal (mesh_store_delete (store, 5), 0);
    assert_null (mesh_store_get (store, 5, NULL));
    assert_int_equal (mesh_store_count (store), 0);
    assert_int_equal (s_count_elsewhere (dir, "group"), 1);

    //  The group commits by itself: never more than 63 writes pending...
    assert_int_equal (mesh_store_flush (store), 0);
    for (uint64_t key = 100; key < 300; key++)
        s_put_str (store, key, "auto");
    long seen_elsewhere = s_count_elsewhere (dir, "group");
    assert_true (seen_elsewhere >= 200 - 63 && seen_elsewhere <= 200);
    //  ...and a write 10 ms after the group began commits it
    assert_int_equal (mesh_store_flush (store), 0);
    s_put_str (store, 300, "old");
    usleep (15000);
    s_put_str (store, 301, "due");
    assert_int_equal (s_count_elsewhere (dir, "group"), 202);

    //  destroy flushes what is pending
    s_put_str (store, 1000, "last");
    mesh_store_destroy (&store);
    store = mesh_store_new (dir, "group", MESH_STORE_SYNC);
    assert_int_equal (mesh_store_count (store), 203);
    s_assert_str (store, 1000, "last");
    assert_null (mesh_store_get (store, 5, NULL));
    mesh_store_destroy (&store);
    t_tmpdir_remove (&dir);
}

//  Callers switch threads between calls under their own lock (pub-sub
//  publishes from application threads and trims on the dispatch thread).
typedef struct {
    mesh_store_t *store;
    uint64_t from;
    bool flush;
} s_writer_t;

static void *
s_writer (void *arg)
{
    s_writer_t *w = (s_writer_t *) arg;
    for (uint64_t key = w->from; key < w->from + 10; key++)
        if (mesh_store_put (w->store, key, "t", 1))
            return (void *) 1;
    if (w->flush && mesh_store_flush (w->store))
        return (void *) 1;
    return NULL;
}

static void
test_group_mode_across_threads (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_store");
    mesh_store_t *store = mesh_store_new (dir, "threads", MESH_STORE_GROUP);
    assert_non_null (store);
    for (int round = 0; round < 4; round++) {
        s_writer_t w = { store, (uint64_t) round * 10 + 1, round % 2 == 1 };
        pthread_t thread;
        void *result;
        assert_int_equal (pthread_create (&thread, NULL, s_writer, &w), 0);
        assert_int_equal (pthread_join (thread, &result), 0);
        assert_null (result);
    }
    assert_int_equal (mesh_store_count (store), 40);
    assert_int_equal (mesh_store_trim (store, 11), 10);
    mesh_store_destroy (&store);
    t_tmpdir_remove (&dir);
}

static void
test_modes_share_one_file (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_store");
    mesh_store_t *store = mesh_store_new (dir, "both", MESH_STORE_GROUP);
    s_put_str (store, 1, "group");
    mesh_store_destroy (&store);
    store = mesh_store_new (dir, "both", MESH_STORE_SYNC);
    s_assert_str (store, 1, "group");
    s_put_str (store, 2, "sync");
    mesh_store_destroy (&store);
    store = mesh_store_new (dir, "both", MESH_STORE_GROUP);
    s_assert_str (store, 2, "sync");
    mesh_store_destroy (&store);
    t_tmpdir_remove (&dir);
}


//  --------------------------------------------------------------------------
//  Sizes

static void
s_fill (uint8_t *buf, size_t size, uint64_t seed)
{
    for (size_t i = 0; i < size; i++)
        buf [i] = (uint8_t) ((i * 31 + seed * 7) >> 3);
}

static void
s_large_values (int mode)
{
    char *dir = t_tmpdir_new ("test_store");
    size_t size = 1 << 20;
    uint8_t *buf = (uint8_t *) malloc (size);
    mesh_store_t *store = mesh_store_new (dir, "large", mode);
    assert_non_null (store);
    for (uint64_t key = 1; key <= 8; key++) {
        s_fill (buf, size, key);
        assert_int_equal (mesh_store_put (store, key, buf, size), 0);
    }
    //  Replace one with a smaller value, then a larger one again
    assert_int_equal (mesh_store_put (store, 3, "small", 5), 0);
    s_fill (buf, size, 3);
    assert_int_equal (mesh_store_put (store, 3, buf, size), 0);
    assert_int_equal (mesh_store_flush (store), 0);
    mesh_store_destroy (&store);

    store = mesh_store_new (dir, "large", mode);
    assert_int_equal (mesh_store_count (store), 8);
    for (uint64_t key = 1; key <= 8; key++) {
        size_t got_size = 0;
        uint8_t *got = (uint8_t *) mesh_store_get (store, key, &got_size);
        assert_non_null (got);
        assert_int_equal (got_size, size);
        s_fill (buf, size, key);
        assert_memory_equal (got, buf, size);
        free (got);
    }
    mesh_store_destroy (&store);
    free (buf);
    t_tmpdir_remove (&dir);
}

static void
test_large_values (void **state)
{
    (void) state;
    s_large_values (MESH_STORE_SYNC);
    s_large_values (MESH_STORE_GROUP);
}

typedef struct {
    uint64_t next;
    bool ok;
} s_order_t;

static bool
s_check_order (uint64_t key, const void *data, size_t size, void *arg)
{
    s_order_t *order = (s_order_t *) arg;
    char expect [128];
    size_t expect_size = s_value (key, expect, sizeof expect);
    if (key != order->next || size != expect_size || memcmp (data, expect, size))
        order->ok = false;
    order->next++;
    return order->ok;
}

static void
test_many_records_in_group_mode (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_store");
    mesh_store_t *store = mesh_store_new (dir, "many", MESH_STORE_GROUP);
    assert_non_null (store);
    char value [128];
    for (uint64_t key = 1; key <= 100000; key++)
        assert_int_equal (mesh_store_put (store, key, value, s_value (key, value, sizeof value)), 0);
    assert_int_equal (mesh_store_flush (store), 0);
    mesh_store_destroy (&store);

    store = mesh_store_new (dir, "many", MESH_STORE_GROUP);
    assert_int_equal (mesh_store_count (store), 100000);
    assert_int_equal (mesh_store_first (store), 1);
    assert_int_equal (mesh_store_last (store), 100000);
    s_order_t order = { 1, true };
    assert_int_equal (mesh_store_scan (store, 0, s_check_order, &order), 100000);
    assert_true (order.ok);
    mesh_store_destroy (&store);
    t_tmpdir_remove (&dir);
}

typedef struct {
    size_t count;
    bool ok;
} s_verify_t;

//  Records of the growth test: 16 KiB, every byte derived from the key
static bool
s_verify_filled (uint64_t key, const void *data, size_t size, void *arg)
{
    s_verify_t *v = (s_verify_t *) arg;
    uint8_t expect [16384];
    s_fill (expect, sizeof expect, key);
    if (size != sizeof expect || memcmp (data, expect, size))
        v->ok = false;
    v->count++;
    return true;
}

static void
s_map_growth (int mode)
{
    char *dir = t_tmpdir_new ("test_store");
    setenv ("MESH_STORE_MAPSIZE", "1M", 1);
    setenv ("MESH_STORE_MAPMAX", "4M", 1);
    mesh_store_t *store = mesh_store_new (dir, "grow", mode);
    assert_non_null (store);
    uint8_t buf [16384];
    uint64_t key = 1;
    while (key < 1000) {
        s_fill (buf, sizeof buf, key);
        if (mesh_store_put (store, key, buf, sizeof buf))
            break;
        key++;
    }
    //  More than the initial map went in, and the cap stopped it cleanly
    assert_true (key < 1000);
    assert_int_equal (mesh_errno (), MESH_EFULL);
    assert_non_null (strstr (mesh_last_error (), "full"));
    print_message ("    %s mode: %llu records of 16 KiB before: %s\n",
                   mode == MESH_STORE_SYNC? "sync": "group",
                   (unsigned long long) key - 1, mesh_last_error ());
    //  Knocking again does not stretch the cap
    char *path = s_path (dir, "grow.lmdb");
    for (int i = 0; i < 100; i++) {
        s_fill (buf, sizeof buf, key);
        //  (group mode: the put joins the group; its flush fails)
        if (mesh_store_put (store, key, buf, sizeof buf) == 0)
            assert_int_equal (mesh_store_flush (store), -1);
        assert_int_equal (mesh_errno (), MESH_EFULL);
    }
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_true (st.st_size <= (4 << 20) + (1 << 20));
    free (path);
    //  Writes of a group that did not fit are reported by flush, once
    int rc = mesh_store_flush (store);
    assert_true (rc == 0 || mesh_errno () == MESH_EFULL);
    assert_int_equal (mesh_store_flush (store), 0);
    size_t count = mesh_store_count (store);
    assert_true (count * sizeof buf > (1 << 20));
    assert_true (count * sizeof buf < (4 << 20));
    s_verify_t verify = { 0, true };
    mesh_store_scan (store, 0, s_verify_filled, &verify);
    assert_int_equal (verify.count, count);
    assert_true (verify.ok);

    //  A full store can still be emptied, and then takes records again
    assert_int_equal (mesh_store_delete (store, mesh_store_last (store)), 0);
    assert_int_equal (mesh_store_trim (store, mesh_store_first (store) + count / 2),
                      count / 2);
    assert_int_equal (mesh_store_flush (store), 0);
    s_fill (buf, sizeof buf, 5000);
    assert_int_equal (mesh_store_put (store, 5000, buf, sizeof buf), 0);
    assert_int_equal (mesh_store_flush (store), 0);
    mesh_store_destroy (&store);

    //  Without the knobs, the reopened store grows to the default map
    unsetenv ("MESH_STORE_MAPSIZE");
    unsetenv ("MESH_STORE_MAPMAX");
    store = mesh_store_new (dir, "grow", mode);
    assert_non_null (store);
    for (key = 10000; key < 10400; key++) {
        s_fill (buf, sizeof buf, key);
        assert_int_equal (mesh_store_put (store, key, buf, sizeof buf), 0);
    }
    assert_int_equal (mesh_store_flush (store), 0);
    verify = (s_verify_t) { 0, true };
    mesh_store_scan (store, 0, s_verify_filled, &verify);
    assert_int_equal (verify.count, count - count / 2 - 1 + 1 + 400);
    assert_true (verify.ok);
    mesh_store_destroy (&store);
    t_tmpdir_remove (&dir);
}

static void
test_map_grows_then_full_at_the_cap (void **state)
{
    (void) state;
    s_map_growth (MESH_STORE_SYNC);
    s_map_growth (MESH_STORE_GROUP);
}


//  --------------------------------------------------------------------------
//  Crash safety

//  Child: write records 1.. (after what the store holds) until killed,
//  reporting each key on fd once it is durable.
static int
s_crash_child (const char *dir, int mode, int fd)
{
    mesh_store_t *store = mesh_store_new (dir, "crash", mode);
    if (!store) {
        fprintf (stderr, "child: %s\n", mesh_last_error ());
        return 1;
    }
    FILE *out = fdopen (fd, "w");
    setvbuf (out, NULL, _IONBF, 0);
    uint64_t reported = mesh_store_last (store);
    char value [128];
    for (uint64_t key = reported + 1; ; key++) {
        if (mesh_store_put (store, key, value, s_value (key, value, sizeof value))) {
            fprintf (stderr, "child: %s\n", mesh_last_error ());
            return 1;
        }
        if (mode == MESH_STORE_GROUP && key % 16 != 0)
            continue;
        if (mode == MESH_STORE_GROUP && mesh_store_flush (store)) {
            fprintf (stderr, "child: %s\n", mesh_last_error ());
            return 1;
        }
        for (; reported < key; reported++)
            fprintf (out, "%llu\n", (unsigned long long) reported + 1);
    }
}

static void
s_crash (int mode)
{
    char *dir = t_tmpdir_new ("test_store");
    srand ((unsigned) getpid ());
    uint64_t max_reported = 0;
    for (int round = 0; round < CRASH_ROUNDS; round++) {
        int fds [2];
        assert_int_equal (pipe (fds), 0);
        pid_t pid = fork ();
        assert_true (pid >= 0);
        if (pid == 0) {
            close (fds [0]);
            char mode_text [8], fd_text [16];
            snprintf (mode_text, sizeof mode_text, "%d", mode);
            snprintf (fd_text, sizeof fd_text, "%d", fds [1]);
            execl (s_argv0, s_argv0, CRASH_CHILD, dir, mode_text, fd_text, (char *) NULL);
            _exit (127);
        }
        close (fds [1]);
        FILE *in = fdopen (fds [0], "r");
        size_t reported = 0;
        char line [64];
        while (reported < CRASH_RECORDS && fgets (line, sizeof line, in)) {
            uint64_t key = strtoull (line, NULL, 10);
            assert_true (key == max_reported + 1);          //  in order, none skipped
            max_reported = key;
            reported++;
        }
        assert_int_equal (reported, CRASH_RECORDS);
        usleep ((useconds_t) (rand () % 3000));           //  kill at a random moment
        kill (pid, SIGKILL);
        int status;
        waitpid (pid, &status, 0);
        assert_true (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
        fclose (in);

        //  Every reported key is there with its value; the store holds
        //  exactly the keys 1..last, all intact, and takes writes again.
        mesh_store_t *store = mesh_store_new (dir, "crash", mode);
        assert_non_null (store);
        for (uint64_t key = 1; key <= max_reported; key++)
            s_assert_value (store, key);
        uint64_t last = mesh_store_last (store);
        assert_true (last >= max_reported);
        assert_int_equal (mesh_store_first (store), 1);
        assert_int_equal (mesh_store_count (store), last);
        s_order_t order = { 1, true };
        assert_int_equal (mesh_store_scan (store, 0, s_check_order, &order), last);
        assert_true (order.ok);
        print_message ("    %s round %d: %llu reported, %llu in the store\n",
                       mode == MESH_STORE_SYNC? "sync": "group", round,
                       (unsigned long long) max_reported, (unsigned long long) last);
        max_reported = last;        //  the next child continues after last
        mesh_store_destroy (&store);
    }
    t_tmpdir_remove (&dir);
}

static void
test_crash_loses_nothing_reported_sync (void **state)
{
    (void) state;
    s_crash (MESH_STORE_SYNC);
}

static void
test_crash_loses_nothing_flushed_group (void **state)
{
    (void) state;
    s_crash (MESH_STORE_GROUP);
}


//  --------------------------------------------------------------------------
//  Files, names and damage

static void
s_write_file (const char *path, const void *data, size_t size)
{
    int fd = open (path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true (fd >= 0);
    assert_int_equal (write (fd, data, size), (ssize_t) size);
    close (fd);
}

static void
s_assert_refused (const char *dir, const char *name, const char *path, const char *why)
{
    assert_null (mesh_store_new (dir, name, MESH_STORE_SYNC));
    assert_int_equal (mesh_errno (), MESH_ESYS);
    print_message ("    %s\n", mesh_last_error ());
    assert_non_null (strstr (mesh_last_error (), path));
    if (why)
        assert_non_null (strstr (mesh_last_error (), why));
}

static void
test_random_bytes_file_is_refused (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_store");
    char *path = s_path (dir, "junk.lmdb");
    uint8_t junk [65536];
    srand (7);
    for (size_t i = 0; i < sizeof junk; i++)
        junk [i] = (uint8_t) rand ();
    s_write_file (path, junk, sizeof junk);
    s_assert_refused (dir, "junk", path, "not an LMDB store");
    s_write_file (path, junk, 10);                  //  shorter than a header
    s_assert_refused (dir, "junk", path, NULL);
    //  The file is left as it was
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (st.st_size, 10);
    free (path);
    t_tmpdir_remove (&dir);
}

static void
test_truncated_file_is_refused (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_store");
    char *path = s_path (dir, "cut.lmdb");
    mesh_store_t *store = mesh_store_new (dir, "cut", MESH_STORE_GROUP);
    char value [128];
    for (uint64_t key = 1; key <= 20000; key++)
        assert_int_equal (mesh_store_put (store, key, value, s_value (key, value, sizeof value)), 0);
    mesh_store_destroy (&store);
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    off_t full = st.st_size;
    assert_true (full > 100 * 4096);

    long page = sysconf (_SC_PAGESIZE);
    off_t cuts [] = { full - page, full / 2, 2 * page + 1, page + 100, 100 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts [0]; i++) {
        assert_int_equal (truncate (path, cuts [i]), 0);
        s_assert_refused (dir, "cut", path, i < 3? "truncated": NULL);
        //  the check looked at the free list in a file made long enough
        //  for that: it is put back as it was
        assert_int_equal (stat (path, &st), 0);
        assert_int_equal (st.st_size, cuts [i]);
    }
    free (path);
    t_tmpdir_remove (&dir);
}

//  Pages LMDB took past the end of the file and freed in the same txn are
//  never written, though the meta's last page counts them (a put and the
//  delete cancelling it in one group: what a failed commit on a full disk
//  leaves pending, tests/cli/test_cli_outbox.sh). LMDB reads only pages it
//  wrote: such a file is sound and opens, with its records, and takes
//  writes.
static void
test_short_file_of_free_pages_opens (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_store");
    char *path = s_path (dir, "short.lmdb");
    mesh_store_t *store = mesh_store_new (dir, "short", MESH_STORE_GROUP);
    static char big [400000];
    memset (big, 'b', sizeof big);
    //  a free list LMDB loads for the big put, with no run long enough
    for (uint64_t key = 1; key <= 8; key++)
        assert_int_equal (mesh_store_put (store, key, big, 20000), 0);
    assert_int_equal (mesh_store_flush (store), 0);
    for (uint64_t key = 1; key <= 8; key += 2)
        assert_int_equal (mesh_store_delete (store, key), 0);
    assert_int_equal (mesh_store_flush (store), 0);
    s_put_str (store, 100, "kept");
    assert_int_equal (mesh_store_flush (store), 0);
    //  pages past the end, freed in the same txn
    assert_int_equal (mesh_store_put (store, 200, big, sizeof big), 0);
    assert_int_equal (mesh_store_delete (store, 200), 0);
    assert_int_equal (mesh_store_flush (store), 0);
    mesh_store_destroy (&store);

    MDB_env *env;
    MDB_envinfo info;
    MDB_stat mst;
    struct stat st;
    assert_int_equal (mdb_env_create (&env), 0);
    mdb_env_set_maxdbs (env, 4);
    assert_int_equal (mdb_env_open (env, path, MDB_NOSUBDIR | MDB_RDONLY, 0600), 0);
    mdb_env_info (env, &info);
    mdb_env_stat (env, &mst);
    mdb_env_close (env);
    assert_int_equal (stat (path, &st), 0);
    uint64_t needed = ((uint64_t) info.me_last_pgno + 1) * mst.ms_psize;
    print_message ("    %lld bytes, the meta counts %llu\n", (long long) st.st_size,
                   (unsigned long long) needed);
    assert_true ((uint64_t) st.st_size < needed);

    store = mesh_store_new (dir, "short", MESH_STORE_SYNC);
    assert_non_null (store);
    s_assert_str (store, 100, "kept");
    assert_int_equal (mesh_store_count (store), 5);
    assert_int_equal (mesh_store_put (store, 300, big, sizeof big), 0);
    size_t size = 0;
    void *got = mesh_store_get (store, 300, &size);
    assert_non_null (got);
    assert_int_equal (size, sizeof big);
    assert_memory_equal (got, big, sizeof big);
    free (got);
    mesh_store_destroy (&store);
    free (path);
    t_tmpdir_remove (&dir);
}

static void
test_damaged_header_is_refused (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_store");
    char *path = s_path (dir, "hdr.lmdb");
    mesh_store_t *store = mesh_store_new (dir, "hdr", MESH_STORE_SYNC);
    s_put_str (store, 1, "x");
    mesh_store_destroy (&store);
    //  Overwrite both meta pages' magic
    int fd = open (path, O_RDWR);
    long page = sysconf (_SC_PAGESIZE);
    uint8_t zeros [64] = { 0 };
    assert_int_equal (pwrite (fd, zeros, sizeof zeros, 0), (ssize_t) sizeof zeros);
    assert_int_equal (pwrite (fd, zeros, sizeof zeros, page), (ssize_t) sizeof zeros);
    close (fd);
    s_assert_refused (dir, "hdr", path, NULL);
    free (path);
    t_tmpdir_remove (&dir);
}

static void
test_foreign_lmdb_file_is_refused (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_store");
    char *path = s_path (dir, "other.lmdb");
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal (mdb_env_create (&env), 0);
    assert_int_equal (mdb_env_open (env, path, MDB_NOSUBDIR, 0600), 0);
    assert_int_equal (mdb_txn_begin (env, NULL, 0, &txn), 0);
    assert_int_equal (mdb_dbi_open (txn, NULL, 0, &dbi), 0);
    MDB_val key = { 5, (void *) "users" }, value = { 3, (void *) "bob" };
    assert_int_equal (mdb_put (txn, dbi, &key, &value, 0), 0);
    assert_int_equal (mdb_txn_commit (txn), 0);
    mdb_env_close (env);
    s_assert_refused (dir, "other", path, "another program");
    free (path);
    t_tmpdir_remove (&dir);
}

static void
test_names_directories_and_double_open (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_store");

    //  Bad names and modes
    const char *bad [] = { "", "a/b", ".hidden", "..", "tab\there" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        assert_null (mesh_store_new (dir, bad [i], MESH_STORE_SYNC));
        assert_int_equal (mesh_errno (), MESH_EINVAL);
    }
    assert_null (mesh_store_new (NULL, "x", MESH_STORE_SYNC));
    assert_null (mesh_store_new (dir, NULL, MESH_STORE_SYNC));
    assert_null (mesh_store_new (dir, "x", 7));
    assert_int_equal (mesh_errno (), MESH_EINVAL);

    //  The directory is made, parents too, mode 0700
    char *deep = s_path (dir, "a/b/c");
    mesh_store_t *one = mesh_store_new (deep, "one", MESH_STORE_SYNC);
    assert_non_null (one);
    struct stat st;
    assert_int_equal (stat (deep, &st), 0);
    assert_true (S_ISDIR (st.st_mode));
    assert_int_equal (st.st_mode & 0777, 0700);

    //  Two stores share a directory and do not mix
    mesh_store_t *two = mesh_store_new (deep, "two", MESH_STORE_GROUP);
    assert_non_null (two);
    s_put_str (one, 1, "one");
    s_put_str (two, 1, "two");
    s_assert_str (one, 1, "one");
    s_assert_str (two, 1, "two");

    //  One file is opened once per process, whatever the spelling
    char *spelled = s_path (dir, "a/./b/../b/c/");
    assert_null (mesh_store_new (spelled, "one", MESH_STORE_GROUP));
    assert_int_equal (mesh_errno (), MESH_ESTATE);
    assert_non_null (strstr (mesh_last_error (), "already open"));
    mesh_store_destroy (&one);
    one = mesh_store_new (spelled, "one", MESH_STORE_GROUP);
    assert_non_null (one);
    s_assert_str (one, 1, "one");

    //  A file where the directory should be
    char *file = s_path (dir, "plain");
    s_write_file (file, "x", 1);
    assert_null (mesh_store_new (file, "x", MESH_STORE_SYNC));
    assert_non_null (strstr (mesh_last_error (), file));

    mesh_store_destroy (&one);
    mesh_store_destroy (&two);
    free (file);
    free (spelled);
    free (deep);
    t_tmpdir_remove (&dir);
}

int
main (int argc, char *argv [])
{
    s_argv0 = argv [0];
    if (argc == 5 && strcmp (argv [1], CRASH_CHILD) == 0)
        return s_crash_child (argv [2], atoi (argv [3]), atoi (argv [4]));
    if (argc == 4 && strcmp (argv [1], COUNT_CHILD) == 0) {
        mesh_store_t *store = mesh_store_new (argv [2], argv [3], MESH_STORE_SYNC);
        if (!store)
            return 1;
        printf ("%zu\n", mesh_store_count (store));
        mesh_store_destroy (&store);
        return 0;
    }
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_usage_example),
        cmocka_unit_test (test_put_get_replace_delete),
        cmocka_unit_test (test_scan_from_a_key_and_stop_early),
        cmocka_unit_test (test_first_last_count),
        cmocka_unit_test (test_trim),
        cmocka_unit_test (test_meta_set_get_overwrite),
        cmocka_unit_test (test_sync_mode_is_durable_at_once),
        cmocka_unit_test (test_group_mode_reads_see_pending_writes),
        cmocka_unit_test (test_group_mode_across_threads),
        cmocka_unit_test (test_modes_share_one_file),
        cmocka_unit_test (test_large_values),
        cmocka_unit_test (test_many_records_in_group_mode),
        cmocka_unit_test (test_map_grows_then_full_at_the_cap),
        cmocka_unit_test (test_crash_loses_nothing_reported_sync),
        cmocka_unit_test (test_crash_loses_nothing_flushed_group),
        cmocka_unit_test (test_random_bytes_file_is_refused),
        cmocka_unit_test (test_truncated_file_is_refused),
        cmocka_unit_test (test_short_file_of_free_pages_opens),
        cmocka_unit_test (test_damaged_header_is_refused),
        cmocka_unit_test (test_foreign_lmdb_file_is_refused),
        cmocka_unit_test (test_names_directories_and_double_open),
    };
    return cmocka_run_group_tests_name ("store", tests, NULL, NULL);
}
