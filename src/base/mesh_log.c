/*  =========================================================================
    mesh_log - where the library's words go

    A library that prints to stderr breaks the programs that embed it (a
    curses screen, a daemon whose stderr is a socket, a CLI whose stderr is
    parsed), so libmeshbus writes nothing itself: every line goes through
    one process-wide handler the application installs, or nowhere. The
    handler and level are read without a lock on the hot path; installing
    one is done before nodes start (documented), so a torn read cannot be
    seen in practice, and both are atomics so none is possible.
    ========================================================================= */

#include "meshbus/pattern.h"
#include "mesh_util.h"
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

static _Atomic (mesh_log_fn *) s_handler = NULL;
static _Atomic (void *) s_arg = NULL;
static atomic_int s_level = MESH_LOG_ERROR;

void
mesh_set_log (mesh_log_fn *handler, mesh_log_level_t level, void *arg)
{
    atomic_store (&s_arg, arg);
    atomic_store (&s_level, (int) level);
    atomic_store (&s_handler, handler);
}

void
mesh_logv (mesh_log_level_t level, const char *node, const char *fmt, va_list args)
{
    mesh_log_fn *handler = atomic_load (&s_handler);
    if (!handler || (int) level > atomic_load (&s_level))
        return;
    char line [512];
    vsnprintf (line, sizeof line, fmt, args);
    handler (level, node? node: "", line, atomic_load (&s_arg));
}

void
mesh_log (mesh_log_level_t level, const char *node, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    mesh_logv (level, node, fmt, args);
    va_end (args);
}
