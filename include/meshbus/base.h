/*  =========================================================================
    meshbus/base.h - errors, logging, subjects and helpers every part uses

    Conventions: actions return 0 or -1 with the reason in mesh_errno();
    constructors and queries return an object or NULL; `T **` arguments are
    taken over by the callee on success; const returns are borrowed.
    ========================================================================= */

#ifndef MESHBUS_BASE_H_INCLUDED
#define MESHBUS_BASE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MESHBUS_VERSION_MAJOR 0
#define MESHBUS_VERSION_MINOR 1
#define MESHBUS_VERSION_PATCH 0

//  Limits a user meets (the wire's full list is in src/wire/mesh_limits.h)
#define MESH_MAX_SUBJECT              255     //  bytes in a subject, pattern, service or queue name
#define MESH_MAX_BODY           (256 * 1024 * 1024)   //  bytes in one message's body
#define MESH_MAX_CTYPE          127     //  bytes in a content type
#define MESH_MAX_HEADERS        32      //  user headers per message
#define MESH_MAX_HEADER_KEY     64      //  bytes in one header key
#define MESH_MAX_HEADER_VALUE   1024    //  bytes in one header value
#define MESH_MAX_HEADERS_BYTES  8192    //  keys + values of one message together

//  ---------------------------------------------------------------------
//  Errors

typedef enum {
    MESH_OK = 0,
    MESH_EINVAL,            //  bad argument (name too long, bad endpoint...)
    MESH_ENOPEER,           //  no such peer, or it is gone
    MESH_EAGAIN,            //  link full (high-water mark) or nothing ready
    MESH_ETOOBIG,           //  a field or body breaks a limit
    MESH_ESTATE,            //  wrong node state (not started, already started)
    MESH_ESYS,              //  an operating system or libzmq call failed
    MESH_ETIMEDOUT,         //  deadline passed
    MESH_ENORESPONDERS,     //  nobody offers what was asked for
    MESH_EFULL,             //  a bounded store is full
    MESH_EREMOTE,           //  the remote side answered with an error
    MESH_ECLOSED,           //  the node is stopping
    MESH_EPROVIDERLEFT,     //  a call's provider left (or failed) and no retry remains
} mesh_err_t;

//  Reason for the last failure in this thread.
int
    mesh_errno (void);
//  Text for an error code.
const char *
    mesh_strerror (int err);
//  Text of the last failure in this thread, with detail where there is
//  some ("interface eth9 not found"). Borrowed, valid until the next call.
const char *
    mesh_last_error (void);

//  Logging. The library never writes to stdout or stderr itself: every
//  line it has to say (peer events with verbose nodes, security refusals,
//  bad key files) goes to the handler installed here, or nowhere. The
//  handler may be called from any thread of the library, one line at a
//  time; node is the name of the node that speaks (may be ""). Lines
//  above level are not formatted at all.
typedef enum {
    MESH_LOG_ERROR = 0,     //  something failed that the user must fix
    MESH_LOG_WARNING,       //  refused or dropped input, misconfiguration
    MESH_LOG_INFO,          //  peer events and links of verbose nodes
    MESH_LOG_DEBUG,         //  the same for nodes that are not verbose
} mesh_log_level_t;

typedef void (mesh_log_fn) (mesh_log_level_t level, const char *node,
                            const char *line, void *arg);
//  Install handler (NULL: the library is silent, the default) for lines
//  at level and below. Process-wide; call it before starting nodes.
void
    mesh_set_log (mesh_log_fn *handler, mesh_log_level_t level, void *arg);

//  ---------------------------------------------------------------------
//  Small helpers

//  Milliseconds since the epoch (wall clock), for deadlines.
uint64_t
    mesh_clock_ms (void);
//  Hash of a string key for tables keyed by peer id (for czmq's
//  zhashx_set_key_hasher): mixes all 32 chars of an id; any other string
//  is hashed byte by byte.
size_t
    mesh_id_hash (const void *key);

//  ---------------------------------------------------------------------
//  Subjects: dot-separated tokens ("orders.eu.created"). In a pattern, "*"
//  matches exactly one token and "#" zero or more (AMQP topic exchange).

//  A subject: 1..255 bytes, tokens non-empty, no "*" or "#" tokens, no
//  spaces or control characters.
bool
    mesh_subject_valid (const char *subject);
//  A pattern: like a subject, but tokens may be "*" or "#" (a token that
//  merely contains them, like "a*", is invalid).
bool
    mesh_pattern_valid (const char *pattern);
//  Does subject match pattern? Both assumed valid.
bool
    mesh_subject_match (const char *pattern, const char *subject);

#ifdef __cplusplus
}
#endif

#endif
