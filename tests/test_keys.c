/*  =========================================================================
    test_keys - CURVE key files (keygen, load, garbage) and the trust store
    (skips, duplicates, rescan, revocation, pinning, 1 000 keys), and the
    `meshbus keygen` command

    Every test works in its own mkdtemp directory and removes it. Whether a
    rescan read files is asserted through mesh_trust_reads (a counter kept
    for tests), never through timing. The CLI test runs the tool named by
    $MESHBUS_TOOL (tests/run.sh sets it) and is skipped without it.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sodium.h>
#include <czmq.h>

#include "meshbus.h"
#include "tmpdir.h"
#include "mesh_keys.h"

#define MANY_KEYS       1000

//  --------------------------------------------------------------------------
//  Helpers


//  dir/file into a static buffer per call site is error prone: callers own it
static char *
s_path (const char *dir, const char *file)
{
    char *path = (char *) malloc (strlen (dir) + strlen (file) + 2);
    sprintf (path, "%s/%s", dir, file);
    return path;
}

static void
s_write (const char *dir, const char *file, const void *data, size_t size)
{
    char *path = s_path (dir, file);
    FILE *out = fopen (path, "wb");
    assert_non_null (out);
    assert_int_equal (fwrite (data, 1, size, out), size);
    assert_int_equal (fclose (out), 0);
    //  secret key files must be private to be loaded at all (tested below)
    assert_int_equal (chmod (path, 0600), 0);
    free (path);
}

static void
s_write_str (const char *dir, const char *file, const char *text)
{
    s_write (dir, file, text, strlen (text));
}

//  A whole file into a NUL-terminated buffer the caller frees
static char *
s_read (const char *path, size_t *size_p)
{
    FILE *in = fopen (path, "rb");
    assert_non_null (in);
    char *text = (char *) calloc (1, 1 << 16);
    assert_non_null (text);
    size_t size = fread (text, 1, (1 << 16) - 1, in);
    fclose (in);
    if (size_p)
        *size_p = size;
    return text;
}

static char *
s_read_in (const char *dir, const char *file)
{
    char *path = s_path (dir, file);
    char *text = s_read (path, NULL);
    free (path);
    return text;
}

static void
s_unlink (const char *dir, const char *file)
{
    char *path = s_path (dir, file);
    assert_int_equal (unlink (path), 0);
    free (path);
}

//  A .pub file as zcert writes it, holding public_text
static void
s_write_pub (const char *dir, const char *file, const char *public_text)
{
    char text [512];
    snprintf (text, sizeof text,
              "#   ZeroMQ CURVE Public Certificate\n"
              "metadata\n"
              "    name = \"%s\"\n"
              "curve\n"
              "    public-key = \"%s\"\n", file, public_text);
    s_write_str (dir, file, text);
}

//  A new key pair; its public key written as dir/file, binary key in key
static void
s_new_pub (const char *dir, const char *file, uint8_t *key)
{
    char public_text [41], secret_text [41];
    assert_int_equal (zmq_curve_keypair (public_text, secret_text), 0);
    s_write_pub (dir, file, public_text);
    if (key)
        assert_non_null (zmq_z85_decode (key, public_text));
}

//  Keys as written in a key file, decoded with zconfig directly
static void
s_file_keys (const char *path, uint8_t *public_key, uint8_t *secret_key)
{
    zconfig_t *config = zconfig_load (path);
    assert_non_null (config);
    const char *public_text = zconfig_get (config, "curve/public-key", NULL);
    assert_non_null (public_text);
    assert_non_null (zmq_z85_decode (public_key, public_text));
    if (secret_key) {
        const char *secret_text = zconfig_get (config, "curve/secret-key", NULL);
        assert_non_null (secret_text);
        assert_non_null (zmq_z85_decode (secret_key, secret_text));
    }
    zconfig_destroy (&config);
}

static mode_t
s_mode (const char *path)
{
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    return st.st_mode & 07777;
}

//  Warnings a trust store gives, kept for the test to look at
typedef struct {
    int count;
    char lines [16][512];
} s_warnings_t;

static void
s_on_warn (void *arg, const char *line)
{
    s_warnings_t *w = (s_warnings_t *) arg;
    if (w->count < 16)
        snprintf (w->lines [w->count], sizeof w->lines [0], "%s", line);
    w->count++;
}

static bool
s_warned (s_warnings_t *w, const char *text)
{
    for (int i = 0; i < w->count && i < 16; i++)
        if (strstr (w->lines [i], text))
            return true;
    return false;
}


//  --------------------------------------------------------------------------
//  Usage

static void
test_usage_example (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_keys");
    char *alice = s_path (dir, "alice");

    //  A key pair: alice.key for the node, alice.pub for those who trust it
    assert_int_equal (mesh_keygen (alice), 0);
    char *key_path = s_path (dir, "alice.key");
    uint8_t public_key [MESH_KEY_SIZE], secret_key [MESH_KEY_SIZE];
    assert_int_equal (mesh_keys_load (key_path, public_key, secret_key), 0);

    //  A trust directory holds .pub files; the store keeps their keys
    mesh_trust_t *trust = mesh_trust_new (dir, NULL, NULL);
    assert_non_null (trust);
    assert_int_equal (mesh_trust_size (trust), 1);
    assert_true (mesh_trust_has (trust, public_key));
    assert_false (mesh_trust_has (trust, secret_key));

    //  Remove the .pub and rescan: the key comes back as revoked
    s_unlink (dir, "alice.pub");
    uint8_t revoked [4 * MESH_KEY_SIZE];
    assert_int_equal (mesh_trust_rescan (trust, revoked, 4), 1);
    assert_memory_equal (revoked, public_key, MESH_KEY_SIZE);
    assert_false (mesh_trust_has (trust, public_key));
    mesh_trust_destroy (&trust);
    assert_null (trust);
    mesh_trust_destroy (&trust);            //  safe twice

    sodium_memzero (secret_key, sizeof secret_key);
    free (key_path);
    free (alice);
    t_tmpdir_remove (&dir);
}


//  --------------------------------------------------------------------------
//  Key files

static void
test_keygen_writes_both_files (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_keys");
    char *base = s_path (dir, "node");
    char *key_path = s_path (dir, "node.key");
    char *pub_path = s_path (dir, "node.pub");

    //  The modes are ours whatever the umask says
    mode_t saved = umask (0);
    assert_int_equal (mesh_keys_generate (base), 0);
    umask (saved);
    assert_int_equal (s_mode (key_path), 0600);
    assert_int_equal (s_mode (pub_path), 0644);

    char *key_text = s_read (key_path, NULL);
    char *pub_text = s_read (pub_path, NULL);
    assert_non_null (strstr (key_text, "secret-key = \""));
    assert_non_null (strstr (key_text, "public-key = \""));
    assert_non_null (strstr (pub_text, "public-key = \""));
    assert_null (strstr (pub_text, "secret"));
    assert_non_null (strstr (pub_text, "name = \"node\""));
    assert_non_null (strstr (pub_text, "created-by = \"meshbus keygen\""));

    //  Same public key in both
    uint8_t from_key [MESH_KEY_SIZE], from_pub [MESH_KEY_SIZE];
    s_file_keys (key_path, from_key, NULL);
    s_file_keys (pub_path, from_pub, NULL);
    assert_memory_equal (from_key, from_pub, MESH_KEY_SIZE);

    //  A second keygen on the name fails and changes nothing
    assert_int_equal (mesh_keys_generate (base), -1);
    assert_non_null (strstr (mesh_last_error (), "exists"));
    char *key_again = s_read (key_path, NULL);
    char *pub_again = s_read (pub_path, NULL);
    assert_string_equal (key_again, key_text);
    assert_string_equal (pub_again, pub_text);
    assert_int_equal (s_mode (key_path), 0600);

    //  With only the .pub there, no .key appears either
    assert_int_equal (unlink (key_path), 0);
    assert_int_equal (mesh_keygen (base), -1);
    assert_int_equal (access (key_path, F_OK), -1);
    free (pub_again);
    pub_again = s_read (pub_path, NULL);
    assert_string_equal (pub_again, pub_text);

    //  A strict umask does not make the .pub unreadable to others
    char *other = s_path (dir, "other");
    char *other_pub = s_path (dir, "other.pub");
    saved = umask (077);
    assert_int_equal (mesh_keygen (other), 0);
    umask (saved);
    assert_int_equal (s_mode (other_pub), 0644);

    //  Where nothing can be written: an error, and no half pair left
    assert_int_equal (mesh_keygen ("/nonexistent-dir-of-test-keys/x"), -1);
    assert_int_equal (mesh_errno (), MESH_ESYS);
    assert_int_equal (mesh_keygen (""), -1);
    assert_int_equal (mesh_keygen (NULL), -1);

    sodium_memzero (key_text, strlen (key_text));
    sodium_memzero (key_again, strlen (key_again));
    free (key_text);
    free (pub_text);
    free (key_again);
    free (pub_again);
    free (other);
    free (other_pub);
    free (base);
    free (key_path);
    free (pub_path);
    t_tmpdir_remove (&dir);
}

//  Anything at either name stops keygen before it writes: here a directory
//  where the .pub would go
static void
test_keygen_refuses_any_existing_name (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_keys");
    char *base = s_path (dir, "half");
    char *key_path = s_path (dir, "half.key");
    char *pub_path = s_path (dir, "half.pub");
    assert_int_equal (mkdir (pub_path, 0755), 0);
    assert_int_equal (mesh_keygen (base), -1);
    assert_non_null (strstr (mesh_last_error (), "half.pub exists"));
    assert_int_equal (access (key_path, F_OK), -1);
    //  and a dangling symbolic link at the .key
    assert_int_equal (rmdir (pub_path), 0);
    assert_int_equal (symlink ("nowhere", key_path), 0);
    assert_int_equal (mesh_keygen (base), -1);
    assert_int_equal (access (pub_path, F_OK), -1);
    free (base);
    free (key_path);
    free (pub_path);
    t_tmpdir_remove (&dir);
}

static void
test_load_round_trip (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_keys");
    char *base = s_path (dir, "rt");
    char *key_path = s_path (dir, "rt.key");
    char *pub_path = s_path (dir, "rt.pub");
    assert_int_equal (mesh_keygen (base), 0);

    uint8_t written_public [MESH_KEY_SIZE], written_secret [MESH_KEY_SIZE];
    s_file_keys (key_path, written_public, written_secret);

    uint8_t public_key [MESH_KEY_SIZE], secret_key [MESH_KEY_SIZE];
    assert_int_equal (mesh_keys_load (key_path, public_key, secret_key), 0);
    assert_memory_equal (public_key, written_public, MESH_KEY_SIZE);
    assert_memory_equal (secret_key, written_secret, MESH_KEY_SIZE);

    //  The secret is the public key's scalar, as CurveZMQ needs it
    uint8_t derived [MESH_KEY_SIZE];
    assert_int_equal (crypto_scalarmult_base (derived, secret_key), 0);
    assert_memory_equal (derived, public_key, MESH_KEY_SIZE);

    //  The .pub gives the same public key; the .key does too without secret
    uint8_t from_pub [MESH_KEY_SIZE];
    assert_int_equal (mesh_keys_load (pub_path, from_pub, NULL), 0);
    assert_memory_equal (from_pub, public_key, MESH_KEY_SIZE);
    assert_int_equal (mesh_keys_load (key_path, from_pub, NULL), 0);
    assert_memory_equal (from_pub, public_key, MESH_KEY_SIZE);

    //  czmq reads our files: zcert_load gives the same keys
    zcert_t *cert = zcert_load (key_path);
    assert_non_null (cert);
    assert_memory_equal (zcert_public_key (cert), public_key, MESH_KEY_SIZE);
    assert_memory_equal (zcert_secret_key (cert), secret_key, MESH_KEY_SIZE);
    assert_string_equal (zcert_meta (cert, "name"), "rt");
    zcert_destroy (&cert);

    //  ... and we read czmq's: zcert_save writes NAME and NAME_secret
    cert = zcert_new ();
    assert_non_null (cert);
    char *czmq_path = s_path (dir, "czmq.pub");
    char *czmq_secret = s_path (dir, "czmq.pub_secret");
    assert_int_equal (zcert_save (cert, czmq_path), 0);
    assert_int_equal (mesh_keys_load (czmq_path, from_pub, NULL), 0);
    assert_memory_equal (from_pub, zcert_public_key (cert), MESH_KEY_SIZE);
    assert_int_equal (mesh_keys_load (czmq_secret, public_key, secret_key), 0);
    assert_memory_equal (public_key, zcert_public_key (cert), MESH_KEY_SIZE);
    assert_memory_equal (secret_key, zcert_secret_key (cert), MESH_KEY_SIZE);
    zcert_destroy (&cert);

    sodium_memzero (secret_key, sizeof secret_key);
    sodium_memzero (written_secret, sizeof written_secret);
    free (czmq_path);
    free (czmq_secret);
    free (base);
    free (key_path);
    free (pub_path);
    t_tmpdir_remove (&dir);
}

static void
test_load_pub_with_secret_required_fails (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_keys");
    char *base = s_path (dir, "p");
    char *pub_path = s_path (dir, "p.pub");
    assert_int_equal (mesh_keygen (base), 0);
    uint8_t public_key [MESH_KEY_SIZE], secret_key [MESH_KEY_SIZE];
    assert_int_equal (mesh_keys_load (pub_path, public_key, secret_key), -1);
    assert_int_equal (mesh_errno (), MESH_EINVAL);
    assert_non_null (strstr (mesh_last_error (), "no curve/secret-key"));
    assert_non_null (strstr (mesh_last_error (), pub_path));
    free (base);
    free (pub_path);
    t_tmpdir_remove (&dir);
}

typedef struct {
    const char *name;
    const char *text;           //  NULL: built by the test
    const char *reason;         //  part of the error
} s_bad_file_t;

#define BAD_PUBLIC   "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"

static void
test_malformed_files_are_refused (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_keys");
    //  Two real key pairs, to mix their halves
    char pub_a [41], sec_a [41], pub_b [41], sec_b [41];
    assert_int_equal (zmq_curve_keypair (pub_a, sec_a), 0);
    assert_int_equal (zmq_curve_keypair (pub_b, sec_b), 0);
    char good [512], mixed [512], truncated [512];
    snprintf (good, sizeof good, "curve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n",
              pub_a, sec_a);
    snprintf (mixed, sizeof mixed, "curve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n",
              pub_a, sec_b);
    snprintf (truncated, sizeof truncated, "%.*s", (int) strlen (good) / 2, good);

    s_bad_file_t table [] = {
        { "empty", "", "empty file" },
        { "words", "hello, this is not a key\n", "" },
        { "no-curve", "metadata\n    name = \"x\"\n", "no curve/public-key" },
        { "no-value", "curve\n    public-key\n", "" },
        { "empty-value", "curve\n    public-key = \"\"\n", "0 characters" },
        { "truncated", truncated, "" },
        { "short-39", "curve\n    public-key = \"" BAD_PUBLIC "\"\n", NULL },
        { "long-41", NULL, "41 characters" },
        { "bad-z85", NULL, "not Z85" },
        { "z85-overflow", "curve\n    public-key = \"%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%\"\n",
          "not Z85" },
        { "mixed-halves", mixed, "does not belong" },
        { "bad-secret", "curve\n    public-key = \"" BAD_PUBLIC "\"\n    secret-key = \"short\"\n",
          "secret-key has 5 characters" },
        { NULL, NULL, NULL }
    };
    //  the 39-character key and its neighbours
    char line [512];
    for (s_bad_file_t *bad = table; bad->name; bad++) {
        const char *text = bad->text;
        if (streq (bad->name, "short-39")) {
            snprintf (line, sizeof line, "curve\n    public-key = \"%.39s\"\n", pub_a);
            text = line;
            bad->reason = "39 characters";
        }
        else
        if (streq (bad->name, "long-41")) {
            snprintf (line, sizeof line, "curve\n    public-key = \"%sx\"\n", pub_a);
            text = line;
        }
        else
        if (streq (bad->name, "bad-z85")) {
            snprintf (line, sizeof line, "curve\n    public-key = \"%s\"\n", pub_a);
            char *at = strstr (line, pub_a);
            at [7] = '~';           //  not in the Z85 alphabet
            at [20] = ',';
            text = line;
        }
        s_write_str (dir, bad->name, text);
        char *path = s_path (dir, bad->name);
        uint8_t public_key [MESH_KEY_SIZE], secret_key [MESH_KEY_SIZE];
        int rc = mesh_keys_load (path, public_key, secret_key);
        if (rc != -1)
            fail_msg ("%s was accepted", bad->name);
        assert_int_equal (mesh_errno (), MESH_EINVAL);
        if (!strstr (mesh_last_error (), bad->reason) || !strstr (mesh_last_error (), path))
            fail_msg ("%s: reason '%s'", bad->name, mesh_last_error ());
        free (path);
    }

    //  Binary: random bytes, a NUL in the middle of a good file, a 1 MiB file
    uint8_t noise [4096];
    for (int round = 0; round < 50; round++) {
        size_t size = 1 + randombytes_uniform (sizeof noise);
        randombytes_buf (noise, size);
        noise [0] = 0x01;           //  a control byte, whatever else came
        s_write (dir, "noise", noise, size);
        char *path = s_path (dir, "noise");
        uint8_t public_key [MESH_KEY_SIZE];
        assert_int_equal (mesh_keys_load (path, public_key, NULL), -1);
        assert_non_null (strstr (mesh_last_error (), "binary data"));
        free (path);
    }
    char with_nul [512];
    size_t good_len = strlen (good);
    memcpy (with_nul, good, good_len);
    with_nul [10] = 0;
    s_write (dir, "nul", with_nul, good_len);
    size_t big_size = 1 << 20;
    char *big = (char *) malloc (big_size);
    assert_non_null (big);
    memset (big, '#', big_size);
    memcpy (big, good, good_len);
    for (size_t i = good_len + 79; i < big_size; i += 80)
        big [i] = '\n';
    s_write (dir, "big", big, big_size);
    free (big);

    const char *more [][2] = {
        { "nul", "binary data" },
        { "big", "1048576 bytes" },
        { "missing", "No such file" },
        { ".", "not a regular file" },
    };
    for (size_t i = 0; i < sizeof more / sizeof more [0]; i++) {
        char *path = s_path (dir, more [i][0]);
        uint8_t public_key [MESH_KEY_SIZE];
        assert_int_equal (mesh_keys_load (path, public_key, NULL), -1);
        if (!strstr (mesh_last_error (), more [i][1]))
            fail_msg ("%s: reason '%s'", more [i][0], mesh_last_error ());
        free (path);
    }
    //  A FIFO does not hang the reader
    char *fifo = s_path (dir, "fifo.pub");
    assert_int_equal (mkfifo (fifo, 0600), 0);
    uint8_t public_key [MESH_KEY_SIZE];
    assert_int_equal (mesh_keys_load (fifo, public_key, NULL), -1);
    assert_non_null (strstr (mesh_last_error (), "not a regular file"));
    free (fifo);
    assert_int_equal (mesh_keys_load ("", public_key, NULL), -1);

    //  The good file itself loads: the table's failures are the edits
    s_write_str (dir, "good", good);
    char *path = s_path (dir, "good");
    uint8_t secret_key [MESH_KEY_SIZE];
    assert_int_equal (mesh_keys_load (path, public_key, secret_key), 0);
    sodium_memzero (secret_key, sizeof secret_key);
    free (path);
    t_tmpdir_remove (&dir);
}


//  --------------------------------------------------------------------------
//  Trust store

static void
test_trust_skips_malformed_and_duplicates (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_keys");
    uint8_t a [MESH_KEY_SIZE], b [MESH_KEY_SIZE], c [MESH_KEY_SIZE], hidden [MESH_KEY_SIZE];
    s_new_pub (dir, "a.pub", a);
    s_new_pub (dir, "b.pub", b);
    s_new_pub (dir, "c.pub", c);
    s_write_str (dir, "broken.pub", "curve\n    public-key = \"tooshort\"\n");
    char *b_text = s_read_in (dir, "b.pub");
    s_write_str (dir, "z-copy-of-b.pub", b_text);       //  later by name: the duplicate
    free (b_text);
    //  Ignored silently: dotfiles, other suffixes, directories
    s_new_pub (dir, ".hidden.pub", hidden);
    s_new_pub (dir, "d.pub.bak", NULL);
    s_write_str (dir, "README", "not a key\n");
    char *sub = s_path (dir, "sub.pub");
    assert_int_equal (mkdir (sub, 0755), 0);
    free (sub);

    s_warnings_t warnings = { 0 };
    mesh_trust_t *trust = mesh_trust_new (dir, s_on_warn, &warnings);
    assert_non_null (trust);
    assert_int_equal (mesh_trust_size (trust), 3);
    assert_true (mesh_trust_has (trust, a));
    assert_true (mesh_trust_has (trust, b));
    assert_true (mesh_trust_has (trust, c));
    assert_false (mesh_trust_has (trust, hidden));
    assert_int_equal (mesh_trust_skipped_malformed (trust), 1);
    assert_int_equal (mesh_trust_skipped_duplicate (trust), 1);
    assert_int_equal (warnings.count, 2);
    assert_true (s_warned (&warnings, "broken.pub"));
    assert_true (s_warned (&warnings, "8 characters"));
    assert_true (s_warned (&warnings, "z-copy-of-b.pub: same key as b.pub"));
    assert_int_equal (mesh_trust_reads (trust), 5);

    //  No change: nothing revoked, nothing read, no warning repeated
    uint8_t revoked [4 * MESH_KEY_SIZE];
    assert_int_equal (mesh_trust_rescan (trust, revoked, 4), 0);
    assert_int_equal (mesh_trust_rescan (trust, NULL, 0), 0);
    assert_int_equal (mesh_trust_reads (trust), 5);
    assert_int_equal (warnings.count, 2);
    assert_int_equal (mesh_trust_skipped_malformed (trust), 1);
    assert_int_equal (mesh_trust_skipped_duplicate (trust), 1);
    assert_int_equal (mesh_trust_size (trust), 3);

    //  The broken file fixed (renamed into place): read once, trusted
    uint8_t fixed [MESH_KEY_SIZE];
    s_new_pub (dir, "broken.tmp", fixed);
    char *from = s_path (dir, "broken.tmp"), *to = s_path (dir, "broken.pub");
    assert_int_equal (rename (from, to), 0);
    free (from);
    free (to);
    assert_int_equal (mesh_trust_rescan (trust, revoked, 4), 0);
    assert_int_equal (mesh_trust_reads (trust), 6);
    assert_true (mesh_trust_has (trust, fixed));
    assert_int_equal (mesh_trust_size (trust), 4);
    assert_int_equal (warnings.count, 2);
    mesh_trust_destroy (&trust);
    t_tmpdir_remove (&dir);
}

static void
test_rescan_revokes_a_removed_key (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_keys");
    uint8_t keys [3][MESH_KEY_SIZE];
    s_new_pub (dir, "one.pub", keys [0]);
    s_new_pub (dir, "two.pub", keys [1]);
    s_new_pub (dir, "three.pub", keys [2]);
    mesh_trust_t *trust = mesh_trust_new (dir, NULL, NULL);
    assert_non_null (trust);
    assert_int_equal (mesh_trust_size (trust), 3);

    s_unlink (dir, "two.pub");
    uint8_t revoked [4 * MESH_KEY_SIZE];
    assert_int_equal (mesh_trust_rescan (trust, revoked, 4), 1);
    assert_memory_equal (revoked, keys [1], MESH_KEY_SIZE);
    assert_false (mesh_trust_has (trust, keys [1]));
    assert_true (mesh_trust_has (trust, keys [0]));
    assert_true (mesh_trust_has (trust, keys [2]));
    assert_int_equal (mesh_trust_size (trust), 2);
    assert_int_equal (mesh_trust_reads (trust), 3);     //  nothing read for a removal

    //  Reported once: the next rescan has nothing more
    assert_int_equal (mesh_trust_rescan (trust, revoked, 4), 0);

    //  More revoked than room: all counted, max reported
    s_unlink (dir, "one.pub");
    s_unlink (dir, "three.pub");
    memset (revoked, 0, sizeof revoked);
    assert_int_equal (mesh_trust_rescan (trust, revoked, 1), 2);
    assert_true (memcmp (revoked, keys [0], MESH_KEY_SIZE) == 0
              || memcmp (revoked, keys [2], MESH_KEY_SIZE) == 0);
    uint8_t zero [MESH_KEY_SIZE] = { 0 };
    assert_memory_equal (revoked + MESH_KEY_SIZE, zero, MESH_KEY_SIZE);
    assert_int_equal (mesh_trust_size (trust), 0);
    assert_false (mesh_trust_has (trust, keys [0]));
    mesh_trust_destroy (&trust);
    t_tmpdir_remove (&dir);
}

static void
test_rescan_trusts_added_and_changed_keys (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_keys");
    uint8_t first [MESH_KEY_SIZE], added [MESH_KEY_SIZE], replaced [MESH_KEY_SIZE];
    s_new_pub (dir, "first.pub", first);
    mesh_trust_t *trust = mesh_trust_new (dir, NULL, NULL);
    assert_non_null (trust);

    s_new_pub (dir, "added.pub", added);
    assert_false (mesh_trust_has (trust, added));
    uint8_t revoked [4 * MESH_KEY_SIZE];
    assert_int_equal (mesh_trust_rescan (trust, revoked, 4), 0);
    assert_true (mesh_trust_has (trust, added));
    assert_int_equal (mesh_trust_size (trust), 2);
    assert_int_equal (mesh_trust_reads (trust), 2);

    //  A file that now holds another key: the old one is revoked
    s_new_pub (dir, "first.new", replaced);
    char *from = s_path (dir, "first.new"), *to = s_path (dir, "first.pub");
    assert_int_equal (rename (from, to), 0);
    free (from);
    free (to);
    assert_int_equal (mesh_trust_rescan (trust, revoked, 4), 1);
    assert_memory_equal (revoked, first, MESH_KEY_SIZE);
    assert_false (mesh_trust_has (trust, first));
    assert_true (mesh_trust_has (trust, replaced));
    assert_int_equal (mesh_trust_reads (trust), 3);
    mesh_trust_destroy (&trust);
    t_tmpdir_remove (&dir);
}

//  A key held by two files stays trusted while either is there
static void
test_duplicate_keeps_key_when_holder_goes (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_keys");
    uint8_t key [MESH_KEY_SIZE];
    s_new_pub (dir, "a.pub", key);
    char *text = s_read_in (dir, "a.pub");
    s_write_str (dir, "b.pub", text);
    free (text);
    s_warnings_t warnings = { 0 };
    mesh_trust_t *trust = mesh_trust_new (dir, s_on_warn, &warnings);
    assert_non_null (trust);
    assert_int_equal (mesh_trust_size (trust), 1);
    assert_int_equal (mesh_trust_skipped_duplicate (trust), 1);
    assert_int_equal (warnings.count, 1);

    s_unlink (dir, "a.pub");
    uint8_t revoked [MESH_KEY_SIZE];
    assert_int_equal (mesh_trust_rescan (trust, revoked, 1), 0);
    assert_true (mesh_trust_has (trust, key));
    assert_int_equal (mesh_trust_size (trust), 1);
    assert_int_equal (warnings.count, 1);           //  b.pub holds it now, silently

    s_unlink (dir, "b.pub");
    assert_int_equal (mesh_trust_rescan (trust, revoked, 1), 1);
    assert_memory_equal (revoked, key, MESH_KEY_SIZE);
    assert_false (mesh_trust_has (trust, key));
    mesh_trust_destroy (&trust);
    t_tmpdir_remove (&dir);
}

static void
test_pinned_key_survives (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_keys");
    uint8_t own [MESH_KEY_SIZE], listed [MESH_KEY_SIZE];
    s_new_pub (dir, "listed.pub", listed);
    char public_text [41], secret_text [41];
    assert_int_equal (zmq_curve_keypair (public_text, secret_text), 0);
    assert_non_null (zmq_z85_decode (own, public_text));

    mesh_trust_t *trust = mesh_trust_new (dir, NULL, NULL);
    assert_non_null (trust);
    assert_false (mesh_trust_has (trust, own));
    mesh_trust_pin (trust, own);
    mesh_trust_pin (trust, own);                //  twice is once
    mesh_trust_pin (trust, listed);             //  pinned and in the directory
    assert_true (mesh_trust_has (trust, own));
    assert_int_equal (mesh_trust_size (trust), 1);  //  pinned keys not counted

    //  Neither revoked when the directory empties
    s_unlink (dir, "listed.pub");
    uint8_t revoked [4 * MESH_KEY_SIZE];
    assert_int_equal (mesh_trust_rescan (trust, revoked, 4), 0);
    assert_true (mesh_trust_has (trust, own));
    assert_true (mesh_trust_has (trust, listed));
    assert_int_equal (mesh_trust_size (trust), 0);
    mesh_trust_destroy (&trust);
    t_tmpdir_remove (&dir);
}

static void
test_unreadable_directory (void **state)
{
    (void) state;
    assert_null (mesh_trust_new ("/nonexistent-dir-of-test-keys", NULL, NULL));
    assert_int_equal (mesh_errno (), MESH_ESYS);
    assert_non_null (strstr (mesh_last_error (), "/nonexistent-dir-of-test-keys"));
    assert_null (mesh_trust_new ("", NULL, NULL));

    //  The directory goes away: rescan fails and the keys stay as they were
    char *dir = t_tmpdir_new ("test_keys");
    uint8_t key [MESH_KEY_SIZE];
    s_new_pub (dir, "k.pub", key);
    char *with_slash = s_path (dir, "");
    mesh_trust_t *trust = mesh_trust_new (with_slash, NULL, NULL);
    free (with_slash);
    assert_non_null (trust);
    s_unlink (dir, "k.pub");
    assert_int_equal (rmdir (dir), 0);
    uint8_t revoked [MESH_KEY_SIZE];
    assert_int_equal (mesh_trust_rescan (trust, revoked, 1), -1);
    assert_true (mesh_trust_has (trust, key));
    assert_int_equal (mesh_trust_size (trust), 1);
    mesh_trust_destroy (&trust);
    free (dir);
}

//  With warn NULL the lines go to the log handler (mesh_set_log), and
//  with no handler installed the library writes nothing to stderr: a
//  program that embeds it (a curses view, a daemon) owns its stderr
static char s_logged [1024];

static void
s_capture (mesh_log_level_t level, const char *node, const char *line, void *arg)
{
    (void) node;
    assert_int_equal (level, MESH_LOG_WARNING);
    assert_ptr_equal (arg, s_logged);
    snprintf (s_logged + strlen (s_logged), sizeof s_logged - strlen (s_logged), "%s\n", line);
}

static void
test_warnings_go_to_the_log_handler (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_keys");
    s_write_str (dir, "bad.pub", "garbage\n    = =\n");
    char *log = s_path (dir, "stderr.txt");
    fflush (stderr);
    int saved = dup (2);
    int fd = open (log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true (saved >= 0 && fd >= 0);
    dup2 (fd, 2);
    close (fd);
    //  no handler: silent
    mesh_trust_t *trust = mesh_trust_new (dir, NULL, NULL);
    assert_non_null (trust);
    assert_int_equal (mesh_trust_skipped_malformed (trust), 1);
    mesh_trust_destroy (&trust);
    //  a handler: the line goes there
    s_logged [0] = 0;
    mesh_set_log (s_capture, MESH_LOG_WARNING, s_logged);
    trust = mesh_trust_new (dir, NULL, NULL);
    mesh_set_log (NULL, MESH_LOG_ERROR, NULL);
    fflush (stderr);
    dup2 (saved, 2);
    close (saved);
    assert_non_null (trust);
    assert_non_null (strstr (s_logged, "trust: skipped"));
    assert_non_null (strstr (s_logged, "bad.pub"));
    size_t size = 0;
    char *text = s_read (log, &size);
    assert_int_equal (size, 0);
    free (text);
    free (log);
    mesh_trust_destroy (&trust);
    t_tmpdir_remove (&dir);
}

//  A secret key file that group or others can read is refused, with the
//  command that fixes it (as ssh refuses such identity files)
static void
test_secret_key_readable_by_others_refused (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_keys");
    char *base = s_path (dir, "open");
    char *key_path = s_path (dir, "open.key");
    char *pub_path = s_path (dir, "open.pub");
    assert_int_equal (mesh_keygen (base), 0);
    uint8_t public_key [MESH_KEY_SIZE], secret_key [MESH_KEY_SIZE];
    mode_t modes [] = { 0640, 0604, 0644, 0660 };
    for (size_t i = 0; i < sizeof modes / sizeof modes [0]; i++) {
        assert_int_equal (chmod (key_path, modes [i]), 0);
        assert_int_equal (mesh_keys_load (key_path, public_key, secret_key), -1);
        assert_non_null (strstr (mesh_last_error (), "chmod 600"));
        assert_non_null (strstr (mesh_last_error (), key_path));
    }
    //  the public half may be read by anyone, and is
    assert_int_equal (chmod (key_path, 0644), 0);
    assert_int_equal (mesh_keys_load (key_path, public_key, NULL), 0);
    assert_int_equal (mesh_keys_load (pub_path, public_key, NULL), 0);
    assert_int_equal (chmod (key_path, 0600), 0);
    assert_int_equal (mesh_keys_load (key_path, public_key, secret_key), 0);
    assert_int_equal (chmod (key_path, 0400), 0);
    assert_int_equal (mesh_keys_load (key_path, public_key, secret_key), 0);
    free (base);
    free (key_path);
    free (pub_path);
    t_tmpdir_remove (&dir);
}

static void
test_thousand_keys (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_keys");
    uint8_t (*keys) [MESH_KEY_SIZE] = calloc (MANY_KEYS, MESH_KEY_SIZE);
    assert_non_null (keys);
    for (int i = 0; i < MANY_KEYS; i++) {
        char name [32];
        snprintf (name, sizeof name, "node-%04d.pub", i);
        s_new_pub (dir, name, keys [i]);
    }
    //  A few made by keygen among them
    char *base = s_path (dir, "made-by-keygen");
    assert_int_equal (mesh_keys_generate (base), 0);
    free (base);
    char *pub_path = s_path (dir, "made-by-keygen.pub");
    uint8_t generated [MESH_KEY_SIZE];
    assert_int_equal (mesh_keys_load (pub_path, generated, NULL), 0);
    free (pub_path);

    mesh_trust_t *trust = mesh_trust_new (dir, NULL, NULL);
    assert_non_null (trust);
    assert_int_equal (mesh_trust_size (trust), MANY_KEYS + 1);
    assert_int_equal (mesh_trust_reads (trust), MANY_KEYS + 1);     //  one read per file
    for (int i = 0; i < MANY_KEYS; i++)
        assert_true (mesh_trust_has (trust, keys [i]));
    assert_true (mesh_trust_has (trust, generated));
    uint8_t stranger [MESH_KEY_SIZE];
    for (int i = 0; i < 100; i++) {
        randombytes_buf (stranger, sizeof stranger);
        assert_false (mesh_trust_has (trust, stranger));
    }
    //  No change: no file read
    uint8_t revoked [MESH_KEY_SIZE];
    assert_int_equal (mesh_trust_rescan (trust, revoked, 1), 0);
    assert_int_equal (mesh_trust_reads (trust), MANY_KEYS + 1);
    //  One removed among a thousand: exactly that one
    s_unlink (dir, "node-0500.pub");
    assert_int_equal (mesh_trust_rescan (trust, revoked, 1), 1);
    assert_memory_equal (revoked, keys [500], MESH_KEY_SIZE);
    assert_int_equal (mesh_trust_reads (trust), MANY_KEYS + 1);
    assert_int_equal (mesh_trust_size (trust), MANY_KEYS);
    mesh_trust_destroy (&trust);
    free (keys);
    t_tmpdir_remove (&dir);
}

//  Lookups from another thread while rescans change the directory: the
//  ZAP handler's situation. A key never touched stays trusted throughout.
typedef struct {
    mesh_trust_t *trust;
    const uint8_t *key;
    atomic_bool stop;
    int misses;
} s_lookup_t;

static void *
s_lookup_loop (void *arg)
{
    s_lookup_t *l = (s_lookup_t *) arg;
    while (!atomic_load (&l->stop))
        if (!mesh_trust_has (l->trust, l->key))
            l->misses++;
    return NULL;
}

static void
test_lookups_during_rescans (void **state)
{
    (void) state;
    char *dir = t_tmpdir_new ("test_keys");
    uint8_t steady [MESH_KEY_SIZE];
    s_new_pub (dir, "steady.pub", steady);
    mesh_trust_t *trust = mesh_trust_new (dir, NULL, NULL);
    assert_non_null (trust);
    s_lookup_t lookup = { trust, steady, false, 0 };
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_lookup_loop, &lookup), 0);
    for (int round = 0; round < 20; round++) {
        char name [32];
        snprintf (name, sizeof name, "churn-%d.pub", round);
        s_new_pub (dir, name, NULL);
        assert_int_equal (mesh_trust_rescan (trust, NULL, 0), 0);
        s_unlink (dir, name);
        uint8_t revoked [MESH_KEY_SIZE];
        assert_int_equal (mesh_trust_rescan (trust, revoked, 1), 1);
    }
    atomic_store (&lookup.stop, true);
    pthread_join (thread, NULL);
    assert_int_equal (lookup.misses, 0);
    mesh_trust_destroy (&trust);
    t_tmpdir_remove (&dir);
}


//  --------------------------------------------------------------------------
//  The tool

static int
s_run (const char *command, char *output, size_t cap)
{
    FILE *child = popen (command, "r");
    assert_non_null (child);
    size_t size = fread (output, 1, cap - 1, child);
    output [size] = 0;
    int status = pclose (child);
    return WIFEXITED (status)? WEXITSTATUS (status): -1;
}

static void
test_cli_keygen (void **state)
{
    (void) state;
    const char *tool = getenv ("MESHBUS_TOOL");
    if (!tool) {
        print_message ("skipped: MESHBUS_TOOL is not set (tests/run.sh sets it)\n");
        skip ();
    }
    char *dir = t_tmpdir_new ("test_keys");
    char *base = s_path (dir, "cli-node");
    char *key_path = s_path (dir, "cli-node.key");
    char *pub_path = s_path (dir, "cli-node.pub");
    char command [2048], output [4096];
    snprintf (command, sizeof command, "'%s' keygen '%s' 2>&1", tool, base);
    assert_int_equal (s_run (command, output, sizeof output), 0);
    assert_non_null (strstr (output, key_path));
    assert_non_null (strstr (output, pub_path));
    assert_int_equal (s_mode (key_path), 0600);

    //  It printed the key the files hold
    uint8_t public_key [MESH_KEY_SIZE], secret_key [MESH_KEY_SIZE];
    assert_int_equal (mesh_keys_load (key_path, public_key, secret_key), 0);
    sodium_memzero (secret_key, sizeof secret_key);
    char public_text [41];
    zmq_z85_encode (public_text, public_key, MESH_KEY_SIZE);
    assert_non_null (strstr (output, public_text));
    char *pub_text = s_read (pub_path, NULL);
    assert_null (strstr (pub_text, "secret"));
    free (pub_text);

    //  Again: exit 1, one line saying why, files untouched
    assert_int_equal (s_run (command, output, sizeof output), 1);
    assert_non_null (strstr (output, "meshbus: "));
    assert_non_null (strstr (output, "exists"));
    uint8_t again [MESH_KEY_SIZE];
    assert_int_equal (mesh_keys_load (pub_path, again, NULL), 0);
    assert_memory_equal (again, public_key, MESH_KEY_SIZE);

    //  No NAME: a usage error
    snprintf (command, sizeof command, "'%s' keygen 2>&1", tool);
    assert_int_equal (s_run (command, output, sizeof output), 2);
    assert_non_null (strstr (output, "usage: meshbus keygen NAME"));
    free (base);
    free (key_path);
    free (pub_path);
    t_tmpdir_remove (&dir);
}


int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_usage_example),
        cmocka_unit_test (test_keygen_writes_both_files),
        cmocka_unit_test (test_keygen_refuses_any_existing_name),
        cmocka_unit_test (test_load_round_trip),
        cmocka_unit_test (test_load_pub_with_secret_required_fails),
        cmocka_unit_test (test_malformed_files_are_refused),
        cmocka_unit_test (test_trust_skips_malformed_and_duplicates),
        cmocka_unit_test (test_rescan_revokes_a_removed_key),
        cmocka_unit_test (test_rescan_trusts_added_and_changed_keys),
        cmocka_unit_test (test_duplicate_keeps_key_when_holder_goes),
        cmocka_unit_test (test_pinned_key_survives),
        cmocka_unit_test (test_unreadable_directory),
        cmocka_unit_test (test_warnings_go_to_the_log_handler),
        cmocka_unit_test (test_secret_key_readable_by_others_refused),
        cmocka_unit_test (test_thousand_keys),
        cmocka_unit_test (test_lookups_during_rescans),
        cmocka_unit_test (test_cli_keygen),
    };
    return cmocka_run_group_tests_name ("keys", tests, NULL, NULL);
}
