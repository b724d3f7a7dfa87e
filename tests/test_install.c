/*  =========================================================================
    test_install - what `scons install` puts under a prefix is enough to
    build and run an application

    Installs into a fresh temporary prefix from $MESHBUS_SRC (set by
    tests/run.sh), copies tests/install_app.c out of the tree, builds it
    with nothing but `pkg-config --cflags --libs meshbus` from that prefix,
    runs it against the installed shared library, links it once more
    against the installed static library (`pkg-config --static`), and runs
    the installed `meshbus --help`. The teardown removes the prefix.
    The programs run by system() are not traced by valgrind.
    ========================================================================= */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

//  Run a shell command, its output into a file; returns its exit status
static int
s_run (const char *log, const char *fmt, ...)
{
    char command [8192];
    va_list args;
    va_start (args, fmt);
    int n = vsnprintf (command, sizeof command - 64, fmt, args);
    va_end (args);
    assert_true (n > 0 && (size_t) n < sizeof command - 64);
    snprintf (command + n, sizeof command - n, " >'%s' 2>&1", log);
    int status = system (command);
    return WIFEXITED (status)? WEXITSTATUS (status): -1;
}

//  Contents of a small file (the caller frees it); prints it too, so a
//  failure shows what the command said
static char *
s_slurp (const char *path, bool show)
{
    FILE *file = fopen (path, "r");
    assert_non_null (file);
    char *text = (char *) calloc (1, 65536);
    assert_non_null (text);
    size_t size = fread (text, 1, 65535, file);
    text [size] = 0;
    fclose (file);
    if (show)
        print_message ("%s", text);
    return text;
}

static bool
s_have (const char *program)
{
    char command [256];
    snprintf (command, sizeof command, "command -v %s >/dev/null 2>&1", program);
    return system (command) == 0;
}

//  The temporary prefix, removed by the teardown whatever happened
static char s_tmp [64];

static int
s_setup (void **state)
{
    (void) state;
    snprintf (s_tmp, sizeof s_tmp, "/tmp/meshbus-install-XXXXXX");
    return mkdtemp (s_tmp)? 0: -1;
}

static int
s_teardown (void **state)
{
    (void) state;
    char command [128];
    snprintf (command, sizeof command, "rm -rf '%s'", s_tmp);
    int rc = system (command);
    return rc == 0 && access (s_tmp, F_OK) != 0? 0: -1;
}

static void
test_install_and_build_an_application (void **state)
{
    (void) state;
    const char *tmp = s_tmp;
    const char *src = getenv ("MESHBUS_SRC");
    if (!src || !*src) {
        print_message ("skipped: MESHBUS_SRC is not set (tests/run.sh sets it)\n");
        skip ();
    }
    const char *tools [] = { "scons", "cc", "pkg-config" };
    for (size_t i = 0; i < 3; i++)
        if (!s_have (tools [i])) {
            print_message ("skipped: %s is not installed\n", tools [i]);
            skip ();
        }
    char log [256], pc_path [256];
    snprintf (log, sizeof log, "%s/log", tmp);
    snprintf (pc_path, sizeof pc_path, "%s/lib/pkgconfig", tmp);

    //  1. install (the release build; builds what is not built yet)
    int rc = s_run (log, "scons -C '%s' -Q install PREFIX='%s'", src, tmp);
    char *out = s_slurp (log, rc != 0);
    free (out);
    assert_int_equal (rc, 0);
    const char *installed [] = { "include/meshbus.h", "include/meshbus/node.h",
                                 "include/meshbus/pattern.h", "lib/libmeshbus.so", "lib/libmeshbus.a",
                                 "lib/libmeshbus.so.0", "lib/libmeshbus.so.0.1.0",
                                 "lib/pkgconfig/meshbus.pc", "bin/meshbus",
                                 "share/man/man1/meshbus.1" };
    for (size_t i = 0; i < sizeof installed / sizeof installed [0]; i++) {
        char path [512];
        snprintf (path, sizeof path, "%s/%s", tmp, installed [i]);
        if (access (path, R_OK) != 0)
            print_message ("not installed: %s\n", path);
        assert_int_equal (access (path, R_OK), 0);
    }

    //  the shared library as a distribution ships it: its SONAME is the
    //  major version, and the unversioned name is a link (for -lmeshbus)
    rc = s_run (log, "readelf -d '%s/lib/libmeshbus.so.0.1.0' | grep SONAME", tmp);
    out = s_slurp (log, rc != 0);
    assert_non_null (strstr (out, "[libmeshbus.so.0]"));
    free (out);
    rc = s_run (log, "test -L '%s/lib/libmeshbus.so' && test -L '%s/lib/libmeshbus.so.0' "
                "&& readlink '%s/lib/libmeshbus.so.0'", tmp, tmp, tmp);
    out = s_slurp (log, rc != 0);
    assert_int_equal (rc, 0);
    assert_non_null (strstr (out, "libmeshbus.so.0.1.0"));
    free (out);
    //  Libs.private names exactly the libraries the library is linked
    //  with: every NEEDED entry (but libc's) has its -l, and every -l is
    //  NEEDED (pthread aside: glibc 2.34 folded it into libc)
    rc = s_run (log, "needed=$(readelf -d '%s/lib/libmeshbus.so.0.1.0' | sed -n "
                "'s/.*NEEDED.*\\[lib\\([a-z0-9_]*\\)\\.so.*/\\1/p' | grep -v '^c$' | sort); "
                "private=$(PKG_CONFIG_PATH='%s' pkg-config --static --libs-only-l meshbus "
                "| tr ' ' '\\n' | sed -n 's/^-l//p' | grep -v -e '^meshbus$' -e '^pthread$' "
                "| sort); echo \"needed: $needed\"; echo \"private: $private\"; "
                "test -n \"$needed\" && test \"$needed\" = \"$private\"", tmp, pc_path);
    out = s_slurp (log, rc != 0);
    assert_int_equal (rc, 0);
    free (out);
    //  the man page holds every subcommand that --help lists, and renders
    rc = s_run (log, "for c in $('%s/bin/meshbus' --help | sed -n 's/^  \\([a-z]*\\) .*/\\1/p'); "
                "do grep -q \"^.SS meshbus $c \" '%s/share/man/man1/meshbus.1' || "
                "{ echo \"missing: $c\"; exit 1; }; done; "
                "test $(grep -c '^.SS meshbus' '%s/share/man/man1/meshbus.1') -ge 14", tmp, tmp, tmp);
    out = s_slurp (log, rc != 0);
    assert_int_equal (rc, 0);
    free (out);
    if (s_have ("man")) {
        rc = s_run (log, "MANWIDTH=80 man -l '%s/share/man/man1/meshbus.1' | grep -c 'meshbus *pub *SUBJECT'",
                    tmp);
        out = s_slurp (log, rc != 0);
        assert_int_equal (rc, 0);
        free (out);
    }

    //  2. an application outside the tree, built with pkg-config only
    rc = s_run (log, "cp '%s/tests/install_app.c' '%s/app.c'", src, tmp);
    assert_int_equal (rc, 0);
    rc = s_run (log, "cd '%s' && cc -std=c11 -Wall -Wextra -Werror app.c -o app "
                "$(PKG_CONFIG_PATH='%s' pkg-config --cflags --libs meshbus)", tmp, pc_path);
    out = s_slurp (log, rc != 0);
    free (out);
    assert_int_equal (rc, 0);

    //  3. it runs against the installed shared library, not another one
    rc = s_run (log, "LD_LIBRARY_PATH='%s/lib' ldd '%s/app'", tmp, tmp);
    out = s_slurp (log, false);
    char expected [512];
    snprintf (expected, sizeof expected, "%s/lib/libmeshbus.so", tmp);
    if (!strstr (out, expected))
        print_message ("app is not linked with %s:\n%s", expected, out);
    assert_non_null (strstr (out, expected));
    free (out);
    rc = s_run (log, "LD_LIBRARY_PATH='%s/lib' '%s/app'", tmp, tmp);
    out = s_slurp (log, rc != 0);
    assert_int_equal (rc, 0);
    assert_non_null (strstr (out, "at tcp://"));
    free (out);

    //  4. and linked statically against libmeshbus.a (pkg-config --static)
    rc = s_run (log, "cd '%s' && cc -std=c11 app.c -o app-static "
                "$(PKG_CONFIG_PATH='%s' pkg-config --cflags meshbus) "
                "$(PKG_CONFIG_PATH='%s' pkg-config --static --libs meshbus "
                "| sed 's/-lmeshbus\\b/-l:libmeshbus.a/') && ./app-static",
                tmp, pc_path, pc_path);
    out = s_slurp (log, rc != 0);
    assert_int_equal (rc, 0);
    assert_non_null (strstr (out, "at tcp://"));
    free (out);

    //  5. the installed tool
    rc = s_run (log, "'%s/bin/meshbus' --help", tmp);
    out = s_slurp (log, rc != 0);
    assert_int_equal (rc, 0);
    assert_non_null (strstr (out, "usage: meshbus"));
    free (out);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_install_and_build_an_application,
                                         s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
