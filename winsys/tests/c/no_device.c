/*
 * What every build of the library does on a machine without an asahi GPU (CI, this one): no
 * device is ever handed out silently. `auto` and NULL fail and say what was looked for;
 * agx_ws_device_open_fd refuses fds that are not asahi devices and leaves them exactly as they
 * were (open, same flags, same offset, no fd leaked by the library).
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "common.h"

static int
count_fds(void)
{
   int n = 0;
   DIR *d = opendir("/proc/self/fd");
   CHECK(d != NULL);
   while (readdir(d))
      n++;
   closedir(d);
   return n;
}

struct fd_state {
   int fl, fd_flags;
   off_t off;
   struct stat st;
};

static struct fd_state
fd_state(int fd)
{
   struct fd_state s;
   s.fl = fcntl(fd, F_GETFL);
   s.fd_flags = fcntl(fd, F_GETFD);
   s.off = lseek(fd, 0, SEEK_CUR);
   CHECK(s.fl >= 0 && s.fd_flags >= 0);
   CHECK(fstat(fd, &s.st) == 0);
   return s;
}

static void
refused_and_untouched(int fd, const char *what)
{
   struct fd_state before = fd_state(fd);
   agx_ws_device *dev = (agx_ws_device *)0x1; /* must stay unwritten */
   int fds = count_fds();
   FAILS(-ENODEV, agx_ws_device_open_fd(fd, &dev));
   if (!strstr(agx_ws_last_error(), "not an asahi device")) {
      fprintf(stderr, "%s: unclear error: %s\n", what, agx_ws_last_error());
      exit(1);
   }
   CHECK(dev == (agx_ws_device *)0x1);
   CHECK(count_fds() == fds);
   struct fd_state after = fd_state(fd);
   CHECK(after.fl == before.fl && after.fd_flags == before.fd_flags);
   CHECK(after.off == before.off);
   CHECK(after.st.st_ino == before.st.st_ino && after.st.st_dev == before.st.st_dev);
   printf("open_fd(%s): %s\n", what, agx_ws_last_error());
}

int
main(void)
{
   agx_ws_device *dev = NULL;

   /* No silent simulator: auto (and NULL with AGXWS_DEVICE unset) means the asahi node. */
   unsetenv("AGXWS_DEVICE");
   FAILS(-ENODEV, agx_ws_device_open(NULL, &dev));
   CHECK(dev == NULL);
   const char *why = agx_ws_last_error();
   printf("open(NULL): %s\n", why);
   CHECK(strstr(why, "no asahi render node") != NULL);
   CHECK(strstr(why, "/dev/dri/renderD*") != NULL);
#ifdef AGX_WS_SIM
   CHECK(strstr(why, "AGXWS_DEVICE=sim") != NULL);
#else
   CHECK(strstr(why, "no simulated device") != NULL);
   /* A library without the simulator refuses to make one. */
   FAILS(-EINVAL, agx_ws_device_open("sim", &dev));
   CHECK(strstr(agx_ws_last_error(), "no simulated device") != NULL);
   CHECK(dev == NULL);
#endif
   FAILS(-ENODEV, agx_ws_device_open("auto", &dev));
   CHECK(dev == NULL);
   setenv("AGXWS_DEVICE", "auto", 1);
   FAILS(-ENODEV, agx_ws_device_open(NULL, &dev));
   unsetenv("AGXWS_DEVICE");

   /* agx_ws_device_open_fd on fds that are not asahi devices. */
   int null = open("/dev/null", O_RDWR | O_CLOEXEC);
   CHECK(null >= 0);
   refused_and_untouched(null, "/dev/null");

   int p[2];
   CHECK(pipe(p) == 0);
   refused_and_untouched(p[0], "pipe read end");
   refused_and_untouched(p[1], "pipe write end");
   CHECK(write(p[1], "x", 1) == 1); /* both ends still work */
   char c;
   CHECK(read(p[0], &c, 1) == 1 && c == 'x');

   FILE *tmp = tmpfile();
   CHECK(tmp != NULL);
   int f = fileno(tmp);
   CHECK(write(f, "0123456789", 10) == 10);
   CHECK(lseek(f, 3, SEEK_SET) == 3);
   refused_and_untouched(f, "a regular file at offset 3");

   FAILS(-EBADF, agx_ws_device_open_fd(-1, &dev));
   FAILS(-EINVAL, agx_ws_device_open_fd(null, NULL));
   int closed = dup(null);
   CHECK(closed >= 0 && close(closed) == 0);
   FAILS(-EBADF, agx_ws_device_open_fd(closed, &dev));

   close(null);
   close(p[0]);
   close(p[1]);
   fclose(tmp);
   printf("no_device: ok\n");
   return 0;
}
