/*  =========================================================================
    secure_cluster - CURVE links, a trusted-key directory and revocation

        build/debug/examples/secure_cluster

    Makes two key pairs (mesh_keygen, as `meshbus keygen` does) and a trust
    directory holding both public keys, in a temporary directory. Node
    "vault" serves "vault.get" over CURVE (its loop in a thread of its own,
    as if in another process); node "teller" calls it. Then the teller's
    key file is removed from the trust directory: within a couple of
    seconds the vault cuts the teller's links, refuses its key, and the
    teller's next call fails with "no responders". Loopback, cluster "secure-example" (or MESHBUS_EXAMPLE_CLUSTER).
    Bounded: every wait has a timeout; exit 0 when all went as described.
    ========================================================================= */

#include "meshbus.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/stat.h>

static volatile int s_stop;

static void *
vault_loop (void *arg)
{
    while (!s_stop)
        mesh_node_dispatch ((mesh_node_t *) arg, 50);
    return NULL;
}

static void
on_get (mesh_reqrep_t *rr, const mesh_msg_t *request, mesh_reply_t *reply, void *arg)
{
    (void) rr; (void) request; (void) arg;
    mesh_reply_set (reply, "42 gold bars", 12);
}

static mesh_node_t *
secure_node (const char *name, const char *keyfile, const char *trust)
{
    const char *cluster = getenv ("MESHBUS_EXAMPLE_CLUSTER");
    mesh_node_t *node = mesh_node_new (name);
    if (!node
    ||  mesh_node_set_cluster (node, cluster? cluster: "secure-example")
    ||  mesh_node_set_beacon_interval (node, 200)
    ||  mesh_node_set_curve (node, keyfile)     //  every link is CurveZMQ
    ||  mesh_node_set_trust (node, trust)       //  only these keys get in
    ||  mesh_node_start (node)) {
        fprintf (stderr, "%s: %s\n", name, mesh_last_error ());
        mesh_node_destroy (&node);
    }
    return node;
}

int
main (void)
{
    char dir [] = "/tmp/meshbus-secure-XXXXXX";
    if (!mkdtemp (dir))
        return 1;
    char trust [64], vault_key [96], teller_key [96], path [96];
    snprintf (trust, sizeof trust, "%s/trust", dir);
    //  keygen writes NAME.key (secret, 0600) and NAME.pub: put the pair
    //  straight into the trust directory, which only reads *.pub files
    snprintf (path, sizeof path, "%s/vault", trust);
    snprintf (vault_key, sizeof vault_key, "%s.key", path);
    int rc = mkdir (trust, 0700) || mesh_keygen (path);
    snprintf (path, sizeof path, "%s/teller", trust);
    snprintf (teller_key, sizeof teller_key, "%s.key", path);
    rc = rc || mesh_keygen (path);
    if (rc) {
        fprintf (stderr, "keygen: %s\n", mesh_last_error ());
        return 1;
    }
    mesh_node_t *vault = secure_node ("vault", vault_key, trust);
    mesh_node_t *teller = secure_node ("teller", teller_key, trust);
    mesh_reqrep_t *vrr = vault? mesh_reqrep_new (vault): NULL;
    mesh_reqrep_t *trr = teller? mesh_reqrep_new (teller): NULL;
    rc = vrr && trr? 0: 1;
    if (rc == 0)
        rc = mesh_serve (vrr, "vault.get", on_get, NULL);
    //  the vault's own loop, as it would run in its own process
    pthread_t thread;
    bool running = rc == 0 && pthread_create (&thread, NULL, vault_loop, vault) == 0;
    mesh_call_opts_t opts = { .timeout_ms = 2000 };
    mesh_msg_t *reply = NULL;
    if (running && mesh_reqrep_wait_providers (trr, "vault.get", 1, 5000) == 0)
        reply = mesh_call (trr, "vault.get", "", 0, &opts);
    if (reply)
        printf ("teller got \"%.*s\" over CURVE from vault (key %.8s...)\n",
                (int) mesh_msg_size (reply), (const char *) mesh_msg_body (reply),
                mesh_node_public_key (vault));
    else {
        fprintf (stderr, "teller: %s\n", mesh_last_error ());
        rc = 1;
    }
    mesh_msg_destroy (&reply);

    //  Revoke: remove the teller's public key from the trust directory.
    //  The vault re-reads it every second and cuts the teller's links.
    snprintf (path, sizeof path, "%s/teller.pub", trust);
    if (rc == 0 && unlink (path) == 0) {
        uint64_t until = mesh_clock_ms () + 6000;
        while (!mesh_node_counter (vault, NULL, "trust.revoked") && mesh_clock_ms () < until)
            mesh_node_dispatch (teller, 100);
        printf ("vault: teller's key revoked, %llu link(s) cut\n",
                (unsigned long long) mesh_node_counter (vault, NULL, "links.cut"));
        //  the teller loses the vault once its link is gone
        until = mesh_clock_ms () + 6000;
        while (mesh_reqrep_providers (trr, "vault.get") && mesh_clock_ms () < until)
            mesh_node_dispatch (teller, 100);
        mesh_reqrep_set_settle (trr, 0);
        mesh_msg_t *after = mesh_call (trr, "vault.get", "", 0, &opts);
        printf ("teller calls again: %s\n", after? "answered (unexpected)": mesh_last_error ());
        rc = mesh_node_counter (vault, NULL, "trust.revoked") == 1 && !after? 0: 1;
        mesh_msg_destroy (&after);
    }
    if (running) {
        s_stop = 1;
        pthread_join (thread, NULL);
    }
    mesh_reqrep_destroy (&trr);
    mesh_reqrep_destroy (&vrr);
    mesh_node_destroy (&teller);
    mesh_node_destroy (&vault);
    //  the temporary key files
    const char *names [] = { "vault.key", "vault.pub", "teller.key", "teller.pub" };
    for (int i = 0; i < 4; i++) {
        snprintf (path, sizeof path, "%s/%s", trust, names [i]);
        unlink (path);
    }
    rmdir (trust);
    rmdir (dir);
    return rc;
}
