/*  =========================================================================
    mesh_secret - cluster secret: MACs on beacons and HELLO

    A cluster secret proves membership without CURVE: whoever holds the
    same bytes can compute the MACs, nobody else can. The secret is never
    used directly. Its bytes go through BLAKE2b-256 keyed with the text
    "meshbus-mac-v1" (libsodium crypto_generichash with a 14-byte key,
    Python hashlib.blake2b (secret, digest_size=32, key=b"meshbus-mac-v1")),
    so a passphrase and 32 random bytes end up as the same kind of key, and
    the derived key is useless for anything but these MACs. Only the
    derived key is kept; the secret itself is wiped as soon as it is read.

    MACs are HMAC-SHA-256 (crypto_auth_hmacsha256, 32 bytes), because every
    language has it in its standard library. Every MAC'd message starts
    with its own fixed text, so a MAC of one kind never verifies as another:
    a beacon starts with its magic "MSHB", the HELLO input with
    "meshbus-hello-v1". Each carries its send time; replay of a captured
    message is bounded by MESH_SECRET_SKEW_MS, not prevented.

    The secret file is read with a bound: fstat first, then at most
    MESH_SECRET_MAX + 1 bytes, so a wrong path (a log file, /dev/zero)
    fails clearly instead of being hashed. The file's bytes are the secret,
    exactly: a trailing newline is part of it. Two nodes whose files differ
    only by that newline are in different clusters; that is documented
    rather than guessed at, because stripping would make a random binary
    secret that happens to end in 0x0a mean something other than its bytes.
    ========================================================================= */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sodium.h>

#include "mesh_bytes.h"
#include "meshbus/pattern.h"
#include "mesh_util.h"
#include "mesh_secret.h"

//  Key of the BLAKE2b that derives the MAC key (no NUL: 14 bytes). Not a
//  secret: it separates this use of the cluster secret from any other.
#define S_DERIVE_KEY        "meshbus-mac-v1"
//  First bytes of the HELLO MAC input (no NUL: 16 bytes)
#define S_HELLO_PREFIX      "meshbus-hello-v1"

_Static_assert (sizeof (((mesh_secret_t *) 0)->key) == crypto_auth_hmacsha256_KEYBYTES,
                "the derived key is an HMAC-SHA-256 key");
_Static_assert (MESH_MAC_SIZE == crypto_auth_hmacsha256_BYTES, "MAC size");
_Static_assert (sizeof S_DERIVE_KEY - 1 <= crypto_generichash_KEYBYTES_MAX,
                "BLAKE2b key length");
_Static_assert (MESH_SECRET_MIN > 0 && MESH_SECRET_MIN <= MESH_SECRET_MAX, "bounds");


int
mesh_secret_from_bytes (mesh_secret_t *self, const void *secret, size_t size)
{
    assert (self);
    if (!secret)
        return mesh_fail (MESH_EINVAL, "no cluster secret given");
    if (size < MESH_SECRET_MIN || size > MESH_SECRET_MAX)
        return mesh_fail (MESH_EINVAL, "cluster secret of %zu bytes: must be %d to %d bytes",
                          size, MESH_SECRET_MIN, MESH_SECRET_MAX);
    //  Idempotent and thread safe; BLAKE2b and HMAC-SHA-256 do not need it
    //  (it only picks faster code), but a library user may call us first.
    if (sodium_init () < 0)
        return mesh_fail (MESH_ESYS, "libsodium failed to initialise");
    //  libsodium's generichash takes keys shorter than its recommended
    //  minimum of 16 bytes: it only rejects keys longer than 64. The test
    //  checks the result against Python's hashlib.
    mesh_secret_t derived;
    if (crypto_generichash (derived.key, sizeof derived.key, secret, size,
                            (const unsigned char *) S_DERIVE_KEY,
                            sizeof S_DERIVE_KEY - 1) != 0) {
        sodium_memzero (&derived, sizeof derived);
        return mesh_fail (MESH_ESYS, "cannot derive the cluster MAC key");
    }
    *self = derived;
    sodium_memzero (&derived, sizeof derived);
    return 0;
}

int
mesh_secret_from_file (mesh_secret_t *self, const char *path)
{
    assert (self);
    if (!path || !*path)
        return mesh_fail (MESH_EINVAL, "cluster secret file: no path given");
    //  O_NONBLOCK: opening a FIFO would otherwise wait for a writer; the
    //  type check below refuses it. It changes nothing for a regular file.
    int fd;
    do
        fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    while (fd == -1 && errno == EINTR);
    if (fd == -1)
        return mesh_fail (MESH_EINVAL, "cluster secret file %.200s: %s", path, strerror (errno));

    //  fstat on the open file, not stat on the path: the file we check is
    //  the one we read. Only a regular file has a size worth checking.
    struct stat st;
    if (fstat (fd, &st) == -1) {
        int error = errno;
        close (fd);
        return mesh_fail (MESH_EINVAL, "cluster secret file %.200s: %s", path, strerror (error));
    }
    if (!S_ISREG (st.st_mode)) {
        close (fd);
        return mesh_fail (MESH_EINVAL, "cluster secret file %.200s: not a regular file", path);
    }
    //  as ssh does with its keys: a secret others can read is not one
    if (st.st_mode & 077) {
        close (fd);
        return mesh_fail (MESH_EINVAL, "cluster secret file %.200s is readable by others "
                          "(mode %04o): run chmod 600 %.200s", path,
                          (unsigned) (st.st_mode & 07777), path);
    }
    if (st.st_size < MESH_SECRET_MIN || st.st_size > MESH_SECRET_MAX) {
        close (fd);
        return mesh_fail (MESH_EINVAL, "cluster secret file %.200s holds %lld bytes: "
                          "must be %d to %d bytes", path, (long long) st.st_size,
                          MESH_SECRET_MIN, MESH_SECRET_MAX);
    }

    //  Read up to one byte more than allowed, so a file that grew since
    //  fstat is seen to be too long rather than silently cut.
    uint8_t buf [MESH_SECRET_MAX + 1];
    size_t size = 0;
    int error = 0;
    while (size < sizeof buf) {
        ssize_t got = read (fd, buf + size, sizeof buf - size);
        if (got == -1 && errno == EINTR)
            continue;
        if (got == -1) {
            error = errno;
            break;
        }
        if (got == 0)
            break;
        size += (size_t) got;
    }
    close (fd);

    int rc;
    if (error)
        rc = mesh_fail (MESH_EINVAL, "cluster secret file %.200s: %s", path, strerror (error));
    else
    if (size < MESH_SECRET_MIN || size > MESH_SECRET_MAX)
        rc = mesh_fail (MESH_EINVAL, "cluster secret file %.200s changed while read "
                        "(%zu bytes): must be %d to %d bytes", path, size,
                        MESH_SECRET_MIN, MESH_SECRET_MAX);
    else
        rc = mesh_secret_from_bytes (self, buf, size);
    sodium_memzero (buf, sizeof buf);
    return rc;
}

void
mesh_secret_mac (const mesh_secret_t *self, const void *data, size_t size,
                 uint8_t mac [MESH_MAC_SIZE])
{
    assert (self);
    assert (data || size == 0);
    assert (mac);
    crypto_auth_hmacsha256 (mac, data, size, self->key);
}

bool
mesh_secret_verify (const mesh_secret_t *self, const void *data, size_t size,
                    const uint8_t mac [MESH_MAC_SIZE])
{
    assert (self);
    //  data and mac come from the network: NULL is a failed check, not a crash
    if ((!data && size > 0) || !mac)
        return false;
    return crypto_auth_hmacsha256_verify (mac, data, size, self->key) == 0;
}

void
mesh_secret_hello_mac (const mesh_secret_t *self, const uint8_t *id, uint64_t incarnation,
                       uint64_t time_ms, const uint8_t *key, const char *endpoint,
                       uint8_t mac [MESH_MAC_SIZE])
{
    assert (self);
    assert (id);
    assert (endpoint);
    assert (mac);
    //  The fixed-size fields first, then the one variable-length field:
    //  every input maps to one byte string, with no separator to forge.
    uint8_t head [sizeof S_HELLO_PREFIX - 1 + 16 + 8 + 8 + 32];
    size_t at = 0;
    memcpy (head + at, S_HELLO_PREFIX, sizeof S_HELLO_PREFIX - 1);
    at += sizeof S_HELLO_PREFIX - 1;
    memcpy (head + at, id, 16);
    at += 16;
    mesh_put_be (head + at, incarnation, 8);
    at += 8;
    mesh_put_be (head + at, time_ms, 8);
    at += 8;
    if (key)
        memcpy (head + at, key, 32);
    else
        memset (head + at, 0, 32);
    at += 32;
    assert (at == sizeof head);

    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init (&state, self->key, sizeof self->key);
    crypto_auth_hmacsha256_update (&state, head, sizeof head);
    crypto_auth_hmacsha256_update (&state, (const unsigned char *) endpoint,
                                   strlen (endpoint));
    crypto_auth_hmacsha256_final (&state, mac);
    sodium_memzero (&state, sizeof state);
}

uint64_t
mesh_secret_now_ms (void)
{
    return mesh_clock_ms ();
}

bool
mesh_secret_fresh (uint64_t time_ms, uint64_t now_ms)
{
    //  Unsigned: subtract the smaller from the larger, never wrap
    uint64_t diff = time_ms > now_ms? time_ms - now_ms: now_ms - time_ms;
    return diff <= MESH_SECRET_SKEW_MS;
}
