/*  =========================================================================
    test_secret - the cluster secret: key derivation, MACs, freshness

    The derived key and the MACs must be computable by a peer in another
    language, so besides the C-only facts this file checks values computed
    with Python's hashlib and hmac: hard-coded ones (computed once, see each
    constant), and, when python3 is installed, a fresh computation through
    popen so that the check does not rest on a value copied by hand.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sodium.h>

#include "meshbus.h"
#include "mesh_secret.h"

//  The secret of docs/wire-beacon.md's signed example
#define PASSPHRASE  "correct horse battery staple"

//  Computed once with
//    python3 -c 'import hashlib; print(hashlib.blake2b(
//        b"correct horse battery staple", digest_size=32,
//        key=b"meshbus-mac-v1").hexdigest())'
static const char *passphrase_key_hex =
    "567077dcf2797fbc9a605743aba5ae0ee2ebeed3021e38e468d1a80c4518fa71";

//  Computed once with
//    python3 -c 'import hashlib, hmac, struct
//    k = hashlib.blake2b(b"correct horse battery staple", digest_size=32,
//                        key=b"meshbus-mac-v1").digest()
//    print(hmac.new(k, b"meshbus-hello-v1" + bytes(range(16))
//                   + struct.pack(">QQ", 1700000000000, 1700000000123)
//                   + bytes(range(32, 64)) + b"tcp://192.168.1.20:40000",
//                   hashlib.sha256).hexdigest())'
//  and the same with bytes(32) for the key (a node without CURVE).
static const char *hello_mac_hex =
    "c36448d083ccf677d78b41d8901faf39b0818b8f5c5fe3ae690d7b6c953067b0";
static const char *hello_mac_nokey_hex =
    "a7ee914bf32b1f75803eec88f21e8080937adcff5f75d1001107a70ad7c019a7";
#define HELLO_ENDPOINT  "tcp://192.168.1.20:40000"

static void
s_unhex (const char *hex, uint8_t *bin, size_t size)
{
    size_t got = 0;
    assert_int_equal (sodium_hex2bin (bin, size, hex, strlen (hex), NULL, &got, NULL), 0);
    assert_int_equal (got, size);
}

static void
s_hello_inputs (uint8_t id [16], uint8_t key [32])
{
    for (int i = 0; i < 16; i++)
        id [i] = (uint8_t) i;
    for (int i = 0; i < 32; i++)
        key [i] = (uint8_t) (32 + i);
}

//  A scratch directory per run, removed by s_rmdir
static void
s_tmpdir (char *dir, size_t cap)
{
    const char *base = getenv ("TMPDIR");
    snprintf (dir, cap, "%s/test_secret.XXXXXX", base && *base? base: P_tmpdir);
    assert_non_null (mkdtemp (dir));
}

static void
s_write (const char *path, const void *data, size_t size)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true (fd >= 0);
    assert_int_equal (write (fd, data, size), (ssize_t) size);
    close (fd);
}


//  --------------------------------------------------------------------------
//  Usage: what a node does with its secret

static void
test_usage_example (void **state)
{
    (void) state;
    mesh_secret_t secret;
    assert_int_equal (mesh_secret_from_bytes (&secret, PASSPHRASE, strlen (PASSPHRASE)), 0);

    const char *data = "any bytes a peer must vouch for";
    uint8_t mac [MESH_MAC_SIZE];
    mesh_secret_mac (&secret, data, strlen (data), mac);
    assert_true (mesh_secret_verify (&secret, data, strlen (data), mac));

    uint64_t now = mesh_secret_now_ms ();
    assert_true (mesh_secret_fresh (now - 1000, now));
}

static void
test_from_bytes_bounds (void **state)
{
    (void) state;
    uint8_t bytes [MESH_SECRET_MAX + 1];
    randombytes_buf (bytes, sizeof bytes);
    mesh_secret_t secret, before;
    memset (&secret, 0x5a, sizeof secret);
    before = secret;

    size_t bad [] = { 0, 1, MESH_SECRET_MIN - 1, MESH_SECRET_MAX + 1 };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        assert_int_equal (mesh_secret_from_bytes (&secret, bytes, bad [i]), -1);
        assert_int_equal (mesh_errno (), MESH_EINVAL);
        assert_non_null (strstr (mesh_last_error (), "16 to 4096 bytes"));
        //  A failure leaves the previous key in place
        assert_memory_equal (&secret, &before, sizeof secret);
    }
    assert_int_equal (mesh_secret_from_bytes (&secret, NULL, 32), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    print_message ("    reason: %s\n", mesh_last_error ());

    assert_int_equal (mesh_secret_from_bytes (&secret, bytes, MESH_SECRET_MIN), 0);
    assert_int_equal (mesh_secret_from_bytes (&secret, bytes, MESH_SECRET_MAX), 0);
}

static void
test_from_file (void **state)
{
    (void) state;
    char dir [256], path [300];
    s_tmpdir (dir, sizeof dir);
    mesh_secret_t from_file, from_bytes;

    //  A file holds the secret: the same key as from its bytes
    snprintf (path, sizeof path, "%s/pass", dir);
    s_write (path, PASSPHRASE, strlen (PASSPHRASE));
    assert_int_equal (mesh_secret_from_file (&from_file, path), 0);
    assert_int_equal (mesh_secret_from_bytes (&from_bytes, PASSPHRASE, strlen (PASSPHRASE)), 0);
    assert_memory_equal (&from_file, &from_bytes, sizeof from_file);

    //  The file's bytes, exactly: a trailing newline makes another secret
    snprintf (path, sizeof path, "%s/pass-nl", dir);
    s_write (path, PASSPHRASE "\n", strlen (PASSPHRASE) + 1);
    assert_int_equal (mesh_secret_from_file (&from_file, path), 0);
    assert_memory_not_equal (&from_file, &from_bytes, sizeof from_file);
    assert_int_equal (mesh_secret_from_bytes (&from_bytes, PASSPHRASE "\n",
                                              strlen (PASSPHRASE) + 1), 0);
    assert_memory_equal (&from_file, &from_bytes, sizeof from_file);

    //  Binary bytes, NULs included, at both bounds
    uint8_t bytes [MESH_SECRET_MAX + 1];
    randombytes_buf (bytes, sizeof bytes);
    bytes [3] = 0;
    size_t good [] = { MESH_SECRET_MIN, MESH_SECRET_MAX };
    for (size_t i = 0; i < 2; i++) {
        snprintf (path, sizeof path, "%s/good-%zu", dir, good [i]);
        s_write (path, bytes, good [i]);
        assert_int_equal (mesh_secret_from_file (&from_file, path), 0);
        assert_int_equal (mesh_secret_from_bytes (&from_bytes, bytes, good [i]), 0);
        assert_memory_equal (&from_file, &from_bytes, sizeof from_file);
        unlink (path);
    }

    //  Too short, too long, empty: the reason names the file and the size
    struct { size_t size; const char *says; } bad [] = {
        { 0, "holds 0 bytes" },
        { MESH_SECRET_MIN - 1, "holds 15 bytes" },
        { MESH_SECRET_MAX + 1, "holds 4097 bytes" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        snprintf (path, sizeof path, "%s/bad-%zu", dir, bad [i].size);
        s_write (path, bytes, bad [i].size);
        assert_int_equal (mesh_secret_from_file (&from_file, path), -1);
        assert_int_equal (mesh_errno (), MESH_EINVAL);
        print_message ("    reason: %s\n", mesh_last_error ());
        assert_non_null (strstr (mesh_last_error (), bad [i].says));
        assert_non_null (strstr (mesh_last_error (), "must be 16 to 4096 bytes"));
        assert_non_null (strstr (mesh_last_error (), path));
        unlink (path);
    }

    //  Missing file, a directory, no path
    snprintf (path, sizeof path, "%s/missing", dir);
    assert_int_equal (mesh_secret_from_file (&from_file, path), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    print_message ("    reason: %s\n", mesh_last_error ());
    assert_non_null (strstr (mesh_last_error (), strerror (ENOENT)));
    assert_non_null (strstr (mesh_last_error (), path));

    assert_int_equal (mesh_secret_from_file (&from_file, dir), -1);
    assert_non_null (strstr (mesh_last_error (), "not a regular file"));
    //  /dev/zero has no end: refused by its type, never read
    assert_int_equal (mesh_secret_from_file (&from_file, "/dev/zero"), -1);
    assert_non_null (strstr (mesh_last_error (), "not a regular file"));
    //  A FIFO is refused at once, not waited on for a writer
    snprintf (path, sizeof path, "%s/fifo", dir);
    assert_int_equal (mkfifo (path, 0600), 0);
    assert_int_equal (mesh_secret_from_file (&from_file, path), -1);
    assert_non_null (strstr (mesh_last_error (), "not a regular file"));
    unlink (path);
    assert_int_equal (mesh_secret_from_file (&from_file, ""), -1);
    assert_int_equal (mesh_secret_from_file (&from_file, NULL), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);

    snprintf (path, sizeof path, "%s/pass", dir);
    unlink (path);
    snprintf (path, sizeof path, "%s/pass-nl", dir);
    unlink (path);
    assert_int_equal (rmdir (dir), 0);
}


//  --------------------------------------------------------------------------
//  MACs

//  A secret file readable by group or others is refused with the fix
static void
test_from_file_readable_by_others_refused (void **state)
{
    (void) state;
    char dir [256], path [300];
    s_tmpdir (dir, sizeof dir);
    snprintf (path, sizeof path, "%s/secret", dir);
    s_write (path, PASSPHRASE, strlen (PASSPHRASE));
    mesh_secret_t secret;
    mode_t modes [] = { 0640, 0604, 0644, 0606 };
    for (size_t i = 0; i < sizeof modes / sizeof modes [0]; i++) {
        assert_int_equal (chmod (path, modes [i]), 0);
        assert_int_equal (mesh_secret_from_file (&secret, path), -1);
        assert_non_null (strstr (mesh_last_error (), "chmod 600"));
    }
    assert_int_equal (chmod (path, 0400), 0);
    assert_int_equal (mesh_secret_from_file (&secret, path), 0);
    unlink (path);
    rmdir (dir);
}

static void
test_mac_deterministic (void **state)
{
    (void) state;
    mesh_secret_t a, b, other;
    assert_int_equal (mesh_secret_from_bytes (&a, PASSPHRASE, strlen (PASSPHRASE)), 0);
    assert_int_equal (mesh_secret_from_bytes (&b, PASSPHRASE, strlen (PASSPHRASE)), 0);
    assert_int_equal (mesh_secret_from_bytes (&other, "correct horse battery staplE",
                                              strlen (PASSPHRASE)), 0);
    assert_memory_equal (&a, &b, sizeof a);
    assert_memory_not_equal (&a, &other, sizeof a);

    uint8_t data [200];
    for (size_t i = 0; i < sizeof data; i++)
        data [i] = (uint8_t) (i * 7);
    uint8_t mac_a [MESH_MAC_SIZE], mac_b [MESH_MAC_SIZE], mac_o [MESH_MAC_SIZE];
    mesh_secret_mac (&a, data, sizeof data, mac_a);
    mesh_secret_mac (&b, data, sizeof data, mac_b);
    mesh_secret_mac (&other, data, sizeof data, mac_o);
    assert_memory_equal (mac_a, mac_b, MESH_MAC_SIZE);
    assert_memory_not_equal (mac_a, mac_o, MESH_MAC_SIZE);
    //  Another key does not verify; an empty message has a MAC too
    assert_false (mesh_secret_verify (&other, data, sizeof data, mac_a));
    mesh_secret_mac (&a, NULL, 0, mac_b);
    assert_true (mesh_secret_verify (&a, NULL, 0, mac_b));
    assert_true (mesh_secret_verify (&a, data, 0, mac_b));
    assert_memory_not_equal (mac_a, mac_b, MESH_MAC_SIZE);
}

static void
test_verify_rejects_altered_data (void **state)
{
    (void) state;
    mesh_secret_t secret;
    assert_int_equal (mesh_secret_from_bytes (&secret, PASSPHRASE, strlen (PASSPHRASE)), 0);
    uint8_t data [64], mac [MESH_MAC_SIZE];
    randombytes_buf (data, sizeof data);
    mesh_secret_mac (&secret, data, sizeof data, mac);
    assert_true (mesh_secret_verify (&secret, data, sizeof data, mac));

    //  Every bit of the data and of the MAC matters
    for (size_t i = 0; i < sizeof data * 8; i++) {
        data [i / 8] ^= (uint8_t) (1 << (i % 8));
        assert_false (mesh_secret_verify (&secret, data, sizeof data, mac));
        data [i / 8] ^= (uint8_t) (1 << (i % 8));
    }
    for (size_t i = 0; i < MESH_MAC_SIZE * 8; i++) {
        mac [i / 8] ^= (uint8_t) (1 << (i % 8));
        assert_false (mesh_secret_verify (&secret, data, sizeof data, mac));
        mac [i / 8] ^= (uint8_t) (1 << (i % 8));
    }
    //  Shorter and longer data; NULLs from the network are a "no"
    assert_false (mesh_secret_verify (&secret, data, sizeof data - 1, mac));
    assert_false (mesh_secret_verify (&secret, data, 0, mac));
    assert_false (mesh_secret_verify (&secret, NULL, sizeof data, mac));
    assert_false (mesh_secret_verify (&secret, data, sizeof data, NULL));
    assert_true (mesh_secret_verify (&secret, data, sizeof data, mac));
}

static void
test_hello_mac (void **state)
{
    (void) state;
    mesh_secret_t secret;
    assert_int_equal (mesh_secret_from_bytes (&secret, PASSPHRASE, strlen (PASSPHRASE)), 0);
    uint8_t id [16], key [32], zeros [32] = { 0 };
    s_hello_inputs (id, key);
    uint64_t incarnation = 1700000000000ULL, time_ms = 1700000000123ULL;

    //  The values Python computed (see the constants at the top)
    uint8_t base [MESH_MAC_SIZE], expect [MESH_MAC_SIZE], mac [MESH_MAC_SIZE];
    mesh_secret_hello_mac (&secret, id, incarnation, time_ms, key, HELLO_ENDPOINT, base);
    s_unhex (hello_mac_hex, expect, sizeof expect);
    assert_memory_equal (base, expect, MESH_MAC_SIZE);
    mesh_secret_hello_mac (&secret, id, incarnation, time_ms, NULL, HELLO_ENDPOINT, mac);
    s_unhex (hello_mac_nokey_hex, expect, sizeof expect);
    assert_memory_equal (mac, expect, MESH_MAC_SIZE);
    //  No key is 32 zero bytes
    mesh_secret_hello_mac (&secret, id, incarnation, time_ms, zeros, HELLO_ENDPOINT, mac);
    assert_memory_equal (mac, expect, MESH_MAC_SIZE);

    //  Deterministic, and every input changes it
    mesh_secret_hello_mac (&secret, id, incarnation, time_ms, key, HELLO_ENDPOINT, mac);
    assert_memory_equal (mac, base, MESH_MAC_SIZE);
    for (size_t i = 0; i < sizeof id; i++) {
        id [i] ^= 0x01;
        mesh_secret_hello_mac (&secret, id, incarnation, time_ms, key, HELLO_ENDPOINT, mac);
        assert_memory_not_equal (mac, base, MESH_MAC_SIZE);
        id [i] ^= 0x01;
    }
    for (size_t i = 0; i < sizeof key; i++) {
        key [i] ^= 0x80;
        mesh_secret_hello_mac (&secret, id, incarnation, time_ms, key, HELLO_ENDPOINT, mac);
        assert_memory_not_equal (mac, base, MESH_MAC_SIZE);
        key [i] ^= 0x80;
    }
    for (int bit = 0; bit < 64; bit++) {
        mesh_secret_hello_mac (&secret, id, incarnation ^ (1ULL << bit), time_ms, key,
                               HELLO_ENDPOINT, mac);
        assert_memory_not_equal (mac, base, MESH_MAC_SIZE);
        mesh_secret_hello_mac (&secret, id, incarnation, time_ms ^ (1ULL << bit), key,
                               HELLO_ENDPOINT, mac);
        assert_memory_not_equal (mac, base, MESH_MAC_SIZE);
    }
    //  Incarnation and time swapped: fixed positions, not a bag of fields
    mesh_secret_hello_mac (&secret, id, time_ms, incarnation, key, HELLO_ENDPOINT, mac);
    assert_memory_not_equal (mac, base, MESH_MAC_SIZE);
    const char *endpoints [] = { "tcp://192.168.1.20:40001", "tcp://192.168.1.2:40000",
                                 "tcp://192.168.1.20:4000", "tcp://192.168.1.20:400000", "" };
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints [0]; i++) {
        mesh_secret_hello_mac (&secret, id, incarnation, time_ms, key, endpoints [i], mac);
        assert_memory_not_equal (mac, base, MESH_MAC_SIZE);
    }
    //  Another secret
    mesh_secret_t other;
    assert_int_equal (mesh_secret_from_bytes (&other, PASSPHRASE "!", strlen (PASSPHRASE) + 1), 0);
    mesh_secret_hello_mac (&other, id, incarnation, time_ms, key, HELLO_ENDPOINT, mac);
    assert_memory_not_equal (mac, base, MESH_MAC_SIZE);
}


//  --------------------------------------------------------------------------
//  Time

static void
test_fresh_window_edges (void **state)
{
    (void) state;
    uint64_t now = 1700000000000ULL;
    assert_true (mesh_secret_fresh (now, now));
    assert_true (mesh_secret_fresh (now - MESH_SECRET_SKEW_MS, now));
    assert_true (mesh_secret_fresh (now + MESH_SECRET_SKEW_MS, now));
    assert_false (mesh_secret_fresh (now - MESH_SECRET_SKEW_MS - 1, now));
    assert_false (mesh_secret_fresh (now + MESH_SECRET_SKEW_MS + 1, now));
    //  Extremes do not wrap around into "fresh"
    assert_false (mesh_secret_fresh (0, now));
    assert_false (mesh_secret_fresh (UINT64_MAX, now));
    assert_false (mesh_secret_fresh (now, 0));
    assert_false (mesh_secret_fresh (0, UINT64_MAX));
    assert_false (mesh_secret_fresh (UINT64_MAX, 0));
    assert_true (mesh_secret_fresh (0, MESH_SECRET_SKEW_MS));
    assert_true (mesh_secret_fresh (UINT64_MAX, UINT64_MAX - MESH_SECRET_SKEW_MS));
    assert_false (mesh_secret_fresh (UINT64_MAX, UINT64_MAX - MESH_SECRET_SKEW_MS - 1));
}

static void
test_now_is_the_wall_clock (void **state)
{
    (void) state;
    uint64_t before = (uint64_t) time (NULL) * 1000;
    uint64_t now = mesh_secret_now_ms ();
    uint64_t after = (uint64_t) time (NULL) * 1000 + 1000;
    assert_true (now >= before && now <= after);
}


//  --------------------------------------------------------------------------
//  The derived key is the one a Python peer computes

static void
test_derived_key_known_value (void **state)
{
    (void) state;
    mesh_secret_t secret;
    assert_int_equal (mesh_secret_from_bytes (&secret, PASSPHRASE, strlen (PASSPHRASE)), 0);
    uint8_t expect [32];
    s_unhex (passphrase_key_hex, expect, sizeof expect);
    assert_memory_equal (secret.key, expect, sizeof expect);
}

//  Runs python3 on random secrets and data: the derived key and the HMAC
//  must be those of hashlib.blake2b and hmac.
static void
test_derived_key_matches_python (void **state)
{
    (void) state;
    if (system ("python3 -c 'import hashlib, hmac' >/dev/null 2>&1") != 0) {
        print_message ("    skipped: no python3 (with hashlib) to compare with\n");
        skip ();
    }
    size_t sizes [] = { MESH_SECRET_MIN, 32, 33, 100, 1000, MESH_SECRET_MAX };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes [0]; i++) {
        uint8_t bytes [MESH_SECRET_MAX], data [48];
        randombytes_buf (bytes, sizes [i]);
        randombytes_buf (data, sizeof data);
        char bytes_hex [2 * MESH_SECRET_MAX + 1], data_hex [2 * sizeof data + 1];
        sodium_bin2hex (bytes_hex, sizeof bytes_hex, bytes, sizes [i]);
        sodium_bin2hex (data_hex, sizeof data_hex, data, sizeof data);

        //  The command holds hex only: nothing for the shell to interpret
        static char command [2 * MESH_SECRET_MAX + 512];
        snprintf (command, sizeof command,
                  "python3 -c 'import hashlib, hmac, sys\n"
                  "k = hashlib.blake2b(bytes.fromhex(sys.argv[1]), digest_size=32,"
                  " key=b\"meshbus-mac-v1\").digest()\n"
                  "print(k.hex(), hmac.new(k, bytes.fromhex(sys.argv[2]),"
                  " hashlib.sha256).hexdigest())' %s %s",
                  bytes_hex, data_hex);
        FILE *python = popen (command, "r");
        assert_non_null (python);
        char line [256] = "";
        assert_non_null (fgets (line, sizeof line, python));
        assert_int_equal (pclose (python), 0);

        mesh_secret_t secret;
        assert_int_equal (mesh_secret_from_bytes (&secret, bytes, sizes [i]), 0);
        uint8_t mac [MESH_MAC_SIZE];
        mesh_secret_mac (&secret, data, sizeof data, mac);
        char expect [2 * 32 + 1 + 2 * MESH_MAC_SIZE + 2];
        sodium_bin2hex (expect, 2 * 32 + 1, secret.key, 32);
        expect [2 * 32] = ' ';
        sodium_bin2hex (expect + 2 * 32 + 1, 2 * MESH_MAC_SIZE + 1, mac, MESH_MAC_SIZE);
        strcat (expect, "\n");
        assert_string_equal (line, expect);
    }
}

int
main (void)
{
    if (sodium_init () < 0)
        return 1;
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_usage_example),
        cmocka_unit_test (test_from_bytes_bounds),
        cmocka_unit_test (test_from_file),
        cmocka_unit_test (test_from_file_readable_by_others_refused),
        cmocka_unit_test (test_mac_deterministic),
        cmocka_unit_test (test_verify_rejects_altered_data),
        cmocka_unit_test (test_hello_mac),
        cmocka_unit_test (test_fresh_window_edges),
        cmocka_unit_test (test_now_is_the_wall_clock),
        cmocka_unit_test (test_derived_key_known_value),
        cmocka_unit_test (test_derived_key_matches_python),
    };
    return cmocka_run_group_tests_name ("secret", tests, NULL, NULL);
}
