/*
 * The library reaches the kernel through libc, never through raw system calls: a render node
 * that lives in an LD_PRELOAD library (Mesa's drm-shim, the simulated GPU's preload) only sees
 * what goes through libc's symbols. This program defines fcntl, ioctl and close itself, which
 * binds every call the linked library makes to them (as a preload would), and checks that
 * agx_ws_device_open_fd's duplicate, its DRM_IOCTL_VERSION probe and the duplicate's close all
 * came through.
 */
/* Plain fcntl: with 64-bit file offsets <fcntl.h> would name the definition below fcntl64,
 * which is not the symbol the library calls. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/ioctl.h>

#include "common.h"

static int watched = -1, dup_of_watched = -1;
static int dup_calls, ioctl_calls, close_calls;

int
fcntl(int fd, int cmd, ...)
{
   static int (*real)(int, int, ...);
   if (!real)
      real = (int (*)(int, int, ...))dlsym(RTLD_NEXT, "fcntl");
   va_list ap;
   va_start(ap, cmd);
   long arg = va_arg(ap, long);
   va_end(ap);
   int r = real(fd, cmd, arg);
   if (fd == watched && cmd == F_DUPFD_CLOEXEC && r >= 0) {
      dup_calls++;
      dup_of_watched = r;
   }
   return r;
}

int
ioctl(int fd, unsigned long request, ...)
{
   static int (*real)(int, unsigned long, ...);
   if (!real)
      real = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
   va_list ap;
   va_start(ap, request);
   void *arg = va_arg(ap, void *);
   va_end(ap);
   if (fd == dup_of_watched && dup_of_watched >= 0)
      ioctl_calls++;
   return real(fd, request, arg);
}

int
close(int fd)
{
   static int (*real)(int);
   if (!real)
      real = (int (*)(int))dlsym(RTLD_NEXT, "close");
   if (fd == dup_of_watched && dup_of_watched >= 0)
      close_calls++;
   return real(fd);
}

int
main(void)
{
   int p[2];
   CHECK(pipe(p) == 0);
   watched = p[0];
   agx_ws_device *dev = NULL;
   FAILS(-ENODEV, agx_ws_device_open_fd(p[0], &dev));
   if (dup_calls != 1 || ioctl_calls < 1 || close_calls != 1) {
      fprintf(stderr, "libc calls seen: fcntl(F_DUPFD_CLOEXEC) %d, ioctl %d, close %d\n",
              dup_calls, ioctl_calls, close_calls);
      return 1;
   }
   printf("libc_calls: ok (dup %d, ioctl %d, close %d)\n", dup_calls, ioctl_calls, close_calls);
   return 0;
}
