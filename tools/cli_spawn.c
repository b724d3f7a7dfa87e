/*  =========================================================================
    cli_spawn - run a command for `serve --exec` and `work --exec`

    posix_spawn (glibc) rather than fork: no copy of a process that has
    libzmq's threads and sockets, and the child's setup (pipes on 0 and 1,
    its own process group, default SIGPIPE) is declared, not hand-written
    between fork and exec. The child gets its own process group so that a
    deadline kills what it started too: `sh -c 'sleep 25'` killed alone
    leaves sleep holding the output pipe open, and the job would wait on.
    ========================================================================= */

#include "cli.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int
cli_spawn_run (const char *cmd, const void *body, size_t size, uint64_t deadline,
               size_t max_out, char **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    int in_pipe [2], out_pipe [2];
    if (pipe2 (in_pipe, O_CLOEXEC))
        return -1;
    if (pipe2 (out_pipe, O_CLOEXEC)) {
        close (in_pipe [0]);
        close (in_pipe [1]);
        return -1;
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, in_pipe [0], 0);
    posix_spawn_file_actions_adddup2 (&actions, out_pipe [1], 1);
    posix_spawnattr_init (&attr);
    sigset_t defaults;
    sigemptyset (&defaults);
    sigaddset (&defaults, SIGPIPE);     //  ignored in the tool; a child expects it
    sigaddset (&defaults, SIGINT);
    sigaddset (&defaults, SIGTERM);
    posix_spawnattr_setsigdefault (&attr, &defaults);
    posix_spawnattr_setpgroup (&attr, 0);
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    char *argv [] = { (char *) "sh", (char *) "-c", (char *) cmd, NULL };
    pid_t pid;
    fflush (stdout);
    int err = posix_spawn (&pid, "/bin/sh", &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy (&actions);
    posix_spawnattr_destroy (&attr);
    close (in_pipe [0]);
    close (out_pipe [1]);
    if (err) {
        close (in_pipe [1]);
        close (out_pipe [0]);
        errno = err;
        return -1;
    }
    fcntl (in_pipe [1], F_SETFL, O_NONBLOCK);
    int in_fd = in_pipe [1], out_fd = out_pipe [0];
    size_t written = 0, cap = 0;
    if (size == 0) {
        close (in_fd);
        in_fd = -1;
    }
    bool killed = false;
    while (out_fd >= 0) {
        int wait = 200;
        if (cli_interrupted ()) {
            //  Ctrl-C reaches our process group, not the command's: end it
            kill (-pid, SIGKILL);
            killed = true;
            break;
        }
        if (deadline) {
            int64_t left = (int64_t) deadline - (int64_t) mesh_clock_ms ();
            if (left <= 0) {
                kill (-pid, SIGKILL);   //  the whole group
                killed = true;
                break;
            }
            wait = left < wait? (int) left: wait;
        }
        struct pollfd fds [2] = { { .fd = out_fd, .events = POLLIN },
                                  { .fd = in_fd, .events = POLLOUT } };
        if (poll (fds, in_fd >= 0? 2: 1, wait) < 0 && errno != EINTR)
            break;
        if (in_fd >= 0 && (fds [1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write (in_fd, (const char *) body + written, size - written);
            if (n > 0)
                written += (size_t) n;
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                written = size;         //  it stopped reading: fine
            if (written == size) {
                close (in_fd);
                in_fd = -1;
            }
        }
        if (fds [0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (*out_size + 4096 > cap && cap < max_out) {
                cap = cap? cap * 2: 8192;
                char *grown = (char *) realloc (*out, cap);
                if (!grown)
                    break;
                *out = grown;
            }
            char sink [4096];
            bool room = *out_size + 4096 <= cap;
            ssize_t n = read (out_fd, room? *out + *out_size: sink, 4096);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                close (out_fd);
                out_fd = -1;
            }
            else
            if (room)
                *out_size += (size_t) n;
        }
    }
    if (in_fd >= 0)
        close (in_fd);
    if (out_fd >= 0)
        close (out_fd);
    int status = 0;
    //  the output closed: the child is ending. A grandchild that closed
    //  its stdout and lives on is not waited for (its group is ours only
    //  to kill at the deadline)
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (killed)
        return -2;
    return WIFEXITED (status)? WEXITSTATUS (status): 128 + WTERMSIG (status);
}
