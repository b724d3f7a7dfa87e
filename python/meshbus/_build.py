"""Build meshbus._meshbus, the compiled cffi extension (out-of-line API mode).

Two ways in:

* ``scons python`` runs this file with ``--static`` pointing at the tree's
  ``libmeshbus.a`` (built with -fPIC): the extension then holds the library
  and needs only libzmq, czmq, msgpack-c, libsodium and lmdb at run time.
* ``pip install ./python`` (setup.py, ``cffi_modules``) links the installed
  library found by ``pkg-config meshbus``.

The cdef below declares the part of include/meshbus.h the binding uses,
plus the glue of _glue.c (a queue between library callbacks and Python).
"""
import os
import shlex
import subprocess
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))

CDEF = r"""
typedef enum {
    MESH_OK = 0, MESH_EINVAL, MESH_ENOPEER, MESH_EAGAIN, MESH_ETOOBIG, MESH_ESTATE,
    MESH_ESYS, MESH_ETIMEDOUT, MESH_ENORESPONDERS, MESH_EFULL, MESH_EREMOTE,
    MESH_ECLOSED, MESH_EPROVIDERLEFT, ...
} mesh_err_t;
int mesh_errno (void);
const char *mesh_strerror (int err);
const char *mesh_last_error (void);

#define MESH_MAX_SUBJECT ...
#define MESH_DEFAULT_CALL_TIMEOUT ...
#define MESH_DEFAULT_PREFETCH ...
#define MESH_PUBSUB_QUEUE_MAX ...
#define MESH_SUB_DROP ...
#define MESH_SUB_BLOCK ...
#define MESH_FLAG_REPLAYED ...
#define MESH_FLAG_LAST_VALUE ...
#define MESH_JOB_ACK ...
#define MESH_JOB_NACK ...
#define MESH_JOB_DEAD ...
#define MESH_STORE_SYNC ...
#define MESH_STORE_GROUP ...
#define MESHBUS_VERSION_MAJOR ...
#define MESHBUS_VERSION_MINOR ...
#define MESHBUS_VERSION_PATCH ...

typedef struct _mesh_msg_t mesh_msg_t;
typedef struct _mesh_event_t mesh_event_t;
typedef struct _mesh_node_t mesh_node_t;
typedef struct _mesh_pubsub_t mesh_pubsub_t;
typedef struct _mesh_reqrep_t mesh_reqrep_t;
typedef struct _mesh_reply_t mesh_reply_t;
typedef struct _mesh_pipeline_t mesh_pipeline_t;

typedef struct {
    int kind;
    uint32_t flags;
    uint64_t seq;
    uint64_t id;
    uint64_t deadline;
    const char *subject;
    const char *reply;
    const char *ctype;
    const char *const *headers;
    size_t header_count;
} mesh_head_t;

const char *mesh_msg_sender (const mesh_msg_t *self);
const char *mesh_msg_subject (const mesh_msg_t *self);
const void *mesh_msg_body (const mesh_msg_t *self);
size_t mesh_msg_size (const mesh_msg_t *self);
void mesh_msg_destroy (mesh_msg_t **self_p);

int mesh_event_type (const mesh_event_t *self);
const char *mesh_event_name (const mesh_event_t *self);
const char *mesh_event_peer (const mesh_event_t *self);
const char *mesh_event_peer_name (const mesh_event_t *self);
const char *mesh_event_endpoint (const mesh_event_t *self);
const char *mesh_event_detail (const mesh_event_t *self);
uint64_t mesh_event_count (const mesh_event_t *self);
void mesh_event_destroy (mesh_event_t **self_p);

mesh_node_t *mesh_node_new (const char *name);
void mesh_node_destroy (mesh_node_t **self_p);
int mesh_node_set_cluster (mesh_node_t *self, const char *cluster);
int mesh_node_set_iface (mesh_node_t *self, const char *ifaces);
int mesh_node_set_beacon_port (mesh_node_t *self, int port);
int mesh_node_set_beacon_interval (mesh_node_t *self, int msecs);
int mesh_node_set_timeouts (mesh_node_t *self, int suspect_ms, int gone_ms);
int mesh_node_add_seed (mesh_node_t *self, const char *endpoint);
int mesh_node_set_bind (mesh_node_t *self, const char *host, int port);
int mesh_node_set_header (mesh_node_t *self, const char *key, const char *value);
int mesh_node_set_id (mesh_node_t *self, const char *hex_id);
int mesh_node_set_hwm (mesh_node_t *self, int messages);
int mesh_node_set_curve (mesh_node_t *self, const char *keyfile);
int mesh_node_set_trust (mesh_node_t *self, const char *dir);
int mesh_node_set_secret (mesh_node_t *self, const char *file);
int mesh_node_set_secret_bytes (mesh_node_t *self, const void *secret, size_t size);
const char *mesh_node_public_key (mesh_node_t *self);
int mesh_keygen (const char *path);
int mesh_node_start (mesh_node_t *self);
int mesh_node_stop (mesh_node_t *self);
const char *mesh_node_id (mesh_node_t *self);
const char *mesh_node_name (mesh_node_t *self);
const char *mesh_node_endpoint (mesh_node_t *self);
int mesh_node_dispatch (mesh_node_t *self, int timeout_ms);
mesh_event_t *mesh_node_event (mesh_node_t *self);
int mesh_node_fd (mesh_node_t *self);
int mesh_node_whisper (mesh_node_t *self, const char *peer, const char *subject,
                       const void *body, size_t size);
size_t mesh_node_peer_count (mesh_node_t *self);
char **mesh_node_peers (mesh_node_t *self);
void mesh_strv_free (char ***strv_p);
int mesh_node_peer_state (mesh_node_t *self, const char *peer);
char *mesh_node_peer_name (mesh_node_t *self, const char *peer);
char *mesh_node_peer_endpoint (mesh_node_t *self, const char *peer);
char *mesh_node_peer_header (mesh_node_t *self, const char *peer, const char *key);
char **mesh_node_peer_headers (mesh_node_t *self, const char *peer);
void mesh_node_count (mesh_node_t *self, const char *peer, const char *name, uint64_t delta);
uint64_t mesh_node_counter (mesh_node_t *self, const char *peer, const char *name);
char *mesh_node_stats_json (mesh_node_t *self);
bool mesh_subject_valid (const char *subject);
bool mesh_pattern_valid (const char *pattern);
bool mesh_subject_match (const char *pattern, const char *subject);

typedef struct {
    int mode;
    const char *durable;
    bool last_value;
    bool no_replay;
    uint64_t since_ms;
} mesh_sub_opts_t;
mesh_pubsub_t *mesh_pubsub_new (mesh_node_t *node);
void mesh_pubsub_destroy (mesh_pubsub_t **self_p);
int mesh_pubsub_set_data_dir (mesh_pubsub_t *self, const char *dir);
int mesh_pubsub_set_retention (mesh_pubsub_t *self, size_t count, size_t bytes, int age_ms);
int mesh_unsubscribe (mesh_pubsub_t *self, int sub_id);
int mesh_publish (mesh_pubsub_t *self, const char *subject, const void *body, size_t size);
int mesh_publish_ex (mesh_pubsub_t *self, const mesh_head_t *head, const void *body, size_t size);
size_t mesh_pubsub_subscribers (mesh_pubsub_t *self, const char *subject);

typedef struct {
    int timeout_ms;
    int retries;
    bool wait_for_provider;
    const char *ctype;
    const char *const *headers;
    size_t header_count;
} mesh_call_opts_t;
mesh_reqrep_t *mesh_reqrep_new (mesh_node_t *node);
void mesh_reqrep_destroy (mesh_reqrep_t **self_p);
int mesh_unserve (mesh_reqrep_t *self, const char *service);
size_t mesh_reqrep_providers (mesh_reqrep_t *self, const char *service);
int mesh_reqrep_set_settle (mesh_reqrep_t *self, int msecs);
int mesh_cast (mesh_reqrep_t *self, const char *service, const void *body, size_t size,
               bool all, const mesh_call_opts_t *opts);

typedef struct {
    int ack_timeout_ms;
    int max_deliveries;
    int backoff_ms;
} mesh_queue_opts_t;
mesh_pipeline_t *mesh_pipeline_new (mesh_node_t *node);
void mesh_pipeline_destroy (mesh_pipeline_t **self_p);
int mesh_pipeline_set_outbox (mesh_pipeline_t *self, const char *dir, int sync_mode);
int mesh_pipeline_flush (mesh_pipeline_t *self);
int mesh_pipeline_set_hold (mesh_pipeline_t *self, size_t max_jobs, size_t max_bytes);
int mesh_pipeline_set_queue (mesh_pipeline_t *self, const char *queue,
                             const mesh_queue_opts_t *opts);
uint64_t mesh_push (mesh_pipeline_t *self, const char *queue, const void *body, size_t size);
uint64_t mesh_push_ex (mesh_pipeline_t *self, const mesh_head_t *head, const void *body,
                       size_t size);
size_t mesh_pipeline_pending (mesh_pipeline_t *self, const char *queue);
int mesh_unwork (mesh_pipeline_t *self, const char *queue);
int mesh_job_done (mesh_pipeline_t *self, const char *producer, uint64_t job_id, bool ok);
int mesh_job_finish (mesh_pipeline_t *self, const char *producer, uint64_t job_id,
                     int outcome);
int mesh_dlq_replay (mesh_pipeline_t *self, const char *queue, uint64_t job_id);
uint64_t mesh_clock_ms (void);

void free (void *ptr);

/* _glue.c */
#define PYQ_MSG ...
#define PYQ_REQ ...
#define PYQ_JOB ...
#define PYQ_OUTCOME ...
#define PYQ_GATHER ...
typedef struct {
    int kind;
    int token;
    mesh_msg_t *msg;
    mesh_reply_t *reply;
    int err;
    char *error;
    const char *subject;
    const char *ctype;
    const char *sender;
    const char *sender_name;
    const char *body;
    size_t size;
    uint64_t seq;
    uint64_t id;
    uint32_t flags;
    size_t header_count;
    char provider [33];
    int same;
} pyq_item_t;
#define PYQ_SAME_SUBJECT ...
#define PYQ_SAME_SENDER ...
#define PYQ_SAME_CTYPE ...
typedef struct { ...; } pyq_t;
typedef struct { pyq_t *q; int token; } pyq_target_t;
pyq_t *pyq_new (void);
void pyq_destroy (pyq_t *q);
void pyq_close (pyq_t *q, mesh_pipeline_t *pl);
size_t pyq_drain (pyq_t *q, pyq_item_t *out, size_t max);
int pyq_dispatch (mesh_node_t *node, pyq_t *q, pyq_item_t *out, size_t max, int wait_ms);
size_t pyq_pending (pyq_t *q);
void pyq_release (pyq_item_t *items, size_t n);
int pyq_subscribe (mesh_pubsub_t *ps, const char *pattern, const mesh_sub_opts_t *opts,
                   pyq_target_t *t);
int pyq_serve (mesh_reqrep_t *rr, const char *service, pyq_target_t *t);
int pyq_work (mesh_pipeline_t *pl, const char *queue, int prefetch, pyq_target_t *t);
uint64_t pyq_call_async (mesh_reqrep_t *rr, const char *service, const void *body,
                         size_t size, const mesh_call_opts_t *opts, pyq_t *q, int local);
int pyq_call_wait (mesh_node_t *node, mesh_reqrep_t *rr, pyq_t *q, const char *service,
                   const void *body, size_t size, const mesh_call_opts_t *opts, int wait_ms,
                   pyq_item_t *out, uint64_t *call_id, int local);
int pyq_call_all (mesh_reqrep_t *rr, const char *service, const void *body, size_t size,
                  const mesh_call_opts_t *opts, pyq_target_t *t);
int pyq_reply (mesh_reply_t *reply, const void *body, size_t size, const char *ctype,
               const char *error);
int pyq_header_at (const mesh_msg_t *msg, size_t i, const char **key, size_t *klen,
                   const char **value, size_t *vlen);
size_t pyq_dlq_list (mesh_pipeline_t *pl, const char *queue, pyq_item_t *items,
                     char **reasons, char **queues, size_t max);
"""


def _pkg_config(*args):
    out = subprocess.check_output(("pkg-config",) + args, text=True)
    return shlex.split(out)


def make_ffi(static_lib=None, include_dir=None):
    """The FFI builder: with static_lib, link that libmeshbus.a (and the
    libraries it uses, by pkg-config); else the installed meshbus."""
    ffi = FFI()
    ffi.cdef(CDEF)
    with open(os.path.join(HERE, "_glue.c")) as f:
        glue = f.read()
    include_dirs, library_dirs, libraries, extra_objects, rpath = [], [], [], [], []
    if static_lib:
        include_dirs.append(include_dir)
        extra_objects.append(static_lib)
        flags = _pkg_config("--libs", "libczmq", "libzmq", "msgpack", "libsodium", "lmdb")
        libraries = [f[2:] for f in flags if f.startswith("-l")] + ["pthread"]
        library_dirs = [f[2:] for f in flags if f.startswith("-L")]
    else:
        for f in _pkg_config("--cflags", "--libs", "meshbus"):
            if f.startswith("-I"):
                include_dirs.append(f[2:])
            elif f.startswith("-L"):
                library_dirs.append(f[2:])
                rpath.append(f[2:])
            elif f.startswith("-l"):
                libraries.append(f[2:])
    ffi.set_source("meshbus._meshbus", '#include "meshbus.h"\n' + glue,
                   include_dirs=include_dirs, library_dirs=library_dirs,
                   libraries=libraries, extra_objects=extra_objects,
                   runtime_library_dirs=rpath,
                   extra_compile_args=["-O2", "-std=gnu11"])
    return ffi


def _from_pkg_config():
    try:
        return make_ffi()
    except (OSError, subprocess.CalledProcessError):
        sys.exit("meshbus: the C library is not installed (pkg-config meshbus failed);\n"
                 "build and install it first: scons -Q -j2 install")


# cffi_modules="meshbus/_build.py:ffibuilder" (setup.py) calls this, so
# that running the file for scons never asks pkg-config for meshbus
ffibuilder = _from_pkg_config


if __name__ == "__main__":
    # python3 _build.py --static LIB.a --include DIR --out DIR
    import argparse
    import tempfile
    args = argparse.ArgumentParser()
    args.add_argument("--static", required=True)
    args.add_argument("--include", required=True)
    args.add_argument("--out", required=True)
    opts = args.parse_args()
    ffi = make_ffi(os.path.abspath(opts.static), os.path.abspath(opts.include))
    with tempfile.TemporaryDirectory() as tmp:
        so = ffi.compile(tmpdir=tmp)
        os.makedirs(os.path.join(opts.out, "meshbus"), exist_ok=True)
        os.replace(so, os.path.join(opts.out, "meshbus", os.path.basename(so)))
