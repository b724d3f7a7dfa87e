/*  tmpdir.h - a scratch directory per test: made with mkdtemp under /tmp,
    removed with everything in it. Header-only; include after <cmocka.h>. */
#ifndef TMPDIR_H_INCLUDED
#define TMPDIR_H_INCLUDED

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

//  "/tmp/PREFIX.XXXXXX" made; the caller frees it with t_tmpdir_remove
static inline char *
t_tmpdir_new (const char *prefix)
{
    char *dir = (char *) malloc (strlen (prefix) + 16);
    assert_non_null (dir);
    sprintf (dir, "/tmp/%s.XXXXXX", prefix);
    assert_non_null (mkdtemp (dir));
    return dir;
}

static inline int
t_tmpdir_rm (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

static inline void
t_tmpdir_remove (char **dir_p)
{
    if (*dir_p)
        nftw (*dir_p, t_tmpdir_rm, 16, FTW_DEPTH | FTW_PHYS);
    free (*dir_p);
    *dir_p = NULL;
}

#endif
