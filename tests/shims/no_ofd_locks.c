/* LD_PRELOAD shim for tests/no_ofd_locks.rs: a file system without open
 * file description locks, as some NFS and FUSE mounts are. Every
 * F_OFD_GETLK/SETLK/SETLKW (36, 37, 38) fails with ENOLCK, as the kernel
 * answers there; every other fcntl goes through. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
static int deny(int cmd) { return cmd == 36 || cmd == 37 || cmd == 38; }
static int fwd(const char *sym, int fd, int cmd, void *arg) {
    int (*real)(int, int, ...) = (int (*)(int, int, ...))dlsym(RTLD_NEXT, sym);
    return real(fd, cmd, arg);
}
int fcntl(int fd, int cmd, ...) {
    va_list ap; va_start(ap, cmd); void *arg = va_arg(ap, void *); va_end(ap);
    if (deny(cmd)) { errno = ENOLCK; return -1; }
    return fwd("fcntl", fd, cmd, arg);
}
int fcntl64(int fd, int cmd, ...) {
    va_list ap; va_start(ap, cmd); void *arg = va_arg(ap, void *); va_end(ap);
    if (deny(cmd)) { errno = ENOLCK; return -1; }
    return fwd("fcntl64", fd, cmd, arg);
}
