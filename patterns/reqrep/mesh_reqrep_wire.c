/*  =========================================================================
    mesh_reqrep_wire - parse a peer's announcement of its services

    Input from the network: every length is bounded by what remains and by
    MESH_MAX_SUBJECT before anything is copied, every name is checked with
    mesh_subject_valid, and nothing is allocated.
    ========================================================================= */

#include "meshbus/pattern.h"
#include "mesh_reqrep_wire.h"
#include <string.h>

size_t
mesh_rr_parse_services (const void *text, size_t size, size_t max,
                        mesh_rr_name_fn *fn, void *arg, size_t *refused)
{
    const char *at = (const char *) text;
    const char *nul = (const char *) memchr (at, 0, size);
    const char *end = nul? nul: at + size;
    size_t bad = 0, names = 0;
    *refused = 0;
    while (at < end) {
        const char *nl = (const char *) memchr (at, '\n', (size_t) (end - at));
        size_t len = (size_t) ((nl? nl: end) - at);
        char name [MESH_MAX_SUBJECT + 1];
        if (len > 0 && len <= MESH_MAX_SUBJECT) {
            memcpy (name, at, len);
            name [len] = 0;
            if (!mesh_subject_valid (name))
                bad++;
            else
            if (names == max)
                (*refused)++;
            else {
                names++;
                fn (name, arg);
            }
        }
        else
        if (len)
            bad++;
        at += len + (nl? 1: 0);
    }
    return bad;
}
