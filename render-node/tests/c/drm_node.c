/*
 * A program that knows nothing of the simulator finds and uses the render node the preload
 * library provides (LD_PRELOAD=libagx_render_node.so): libdrm's device enumeration and version
 * query, raw asahi ioctls, shared BO mappings, sync_files, dma-bufs, fds duplicated and closed,
 * and finally agx-winsys on the node's fd (agx_ws_device_open_fd), submitting a job that runs on
 * the simulated GPU (an AGX-looking stream: an opaque job). Prints what it found; exits non-zero
 * naming the first check that failed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/sync_file.h>
#include <xf86drm.h>

#include "asahi_drm.h"
#ifdef WITH_WINSYS
#include "agx_winsys.h"
#endif

#define CHECK(cond)                                                                     \
   do {                                                                                 \
      if (!(cond)) {                                                                    \
         fprintf(stderr, "%s:%d: CHECK failed: %s (errno %d: %s)\n", __FILE__, __LINE__, \
                 #cond, errno, strerror(errno));                                        \
         exit(1);                                                                       \
      }                                                                                 \
   } while (0)

static const char *
find_node(void)
{
   drmDevicePtr devs[16];
   int n = drmGetDevices2(0, devs, 16);
   CHECK(n >= 1);
   static char path[64];
   path[0] = 0;
   for (int i = 0; i < n; i++) {
      drmDevicePtr d = devs[i];
      if (!(d->available_nodes & (1 << DRM_NODE_RENDER)) || d->bustype != DRM_BUS_PLATFORM)
         continue;
      printf("device: %s, platform %s", d->nodes[DRM_NODE_RENDER],
             d->businfo.platform->fullname);
      int agx = 0;
      for (char **c = d->deviceinfo.platform->compatible; c && *c; c++) {
         printf(", %s", *c);
         agx |= strcmp(*c, "apple,agx-t8103") == 0;
      }
      printf("\n");
      if (agx)
         snprintf(path, sizeof(path), "%s", d->nodes[DRM_NODE_RENDER]);
   }
   drmFreeDevices(devs, n);
   CHECK(path[0] != 0);
   return path;
}

static void
check_version(int fd)
{
   drmVersionPtr v = drmGetVersion(fd);
   CHECK(v != NULL);
   printf("driver: %s (%s), %d.%d.%d\n", v->name, v->desc, v->version_major, v->version_minor,
          v->version_patchlevel);
   CHECK(strcmp(v->name, "asahi") == 0);
   drmFreeVersion(v);
   CHECK(drmGetNodeTypeFromFd(fd) == DRM_NODE_RENDER);
   struct stat st;
   CHECK(fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 226);
   drmDevicePtr d;
   CHECK(drmGetDevice2(fd, 0, &d) == 0);
   CHECK(d->bustype == DRM_BUS_PLATFORM);
   drmFreeDevice(&d);
   uint64_t cap = 0;
   CHECK(drmGetCap(fd, DRM_CAP_SYNCOBJ_TIMELINE, &cap) == 0 && cap == 1);
}

static void
check_raw_ioctls(int fd)
{
   struct drm_asahi_params_global p;
   memset(&p, 0, sizeof(p));
   struct drm_asahi_get_params gp = {.param_group = 0, .pointer = (uintptr_t)&p, .size = sizeof(p)};
   CHECK(drmIoctl(fd, DRM_IOCTL_ASAHI_GET_PARAMS, &gp) == 0);
   printf("gpu: generation %u variant %c revision %#x, vm %#" PRIx64 "..%#" PRIx64 "\n",
          p.gpu_generation, p.gpu_variant, p.gpu_revision, (uint64_t)p.vm_start,
          (uint64_t)p.vm_end);
   CHECK(p.gpu_generation == 13);

   /* A BO mapped twice: one memory. */
   struct drm_asahi_gem_create gc = {.size = 16384};
   CHECK(drmIoctl(fd, DRM_IOCTL_ASAHI_GEM_CREATE, &gc) == 0 && gc.handle != 0);
   struct drm_asahi_gem_mmap_offset mo = {.handle = gc.handle};
   CHECK(drmIoctl(fd, DRM_IOCTL_ASAHI_GEM_MMAP_OFFSET, &mo) == 0);
   uint32_t *a = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_SHARED, fd, mo.offset);
   uint32_t *b = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_SHARED, fd, mo.offset);
   CHECK(a != MAP_FAILED && b != MAP_FAILED);
   a[100] = 0xfeedface;
   CHECK(b[100] == 0xfeedface);
   /* MAP_FIXED over a range the caller reserved. */
   void *r = mmap(NULL, 16384, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
   uint32_t *c = mmap(r, 16384, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, mo.offset);
   CHECK(c == r && c[100] == 0xfeedface);
   CHECK(mmap(NULL, 1 << 20, PROT_READ, MAP_SHARED, fd, mo.offset) == MAP_FAILED &&
         errno == EINVAL);
   munmap(a, 16384);
   munmap(b, 16384);
   munmap(c, 16384);

   /* dma-buf export and import: the same object; its size by lseek, as Mesa asks. */
   int dmabuf = -1;
   CHECK(drmPrimeHandleToFD(fd, gc.handle, DRM_CLOEXEC | DRM_RDWR, &dmabuf) == 0);
   CHECK(lseek(dmabuf, 0, SEEK_END) == 16384);
   uint32_t h2 = 0;
   CHECK(drmPrimeFDToHandle(fd, dmabuf, &h2) == 0 && h2 == gc.handle);
   close(dmabuf);

   /* A signalled syncobj's sync_file: pollable, and its ioctls answered. */
   uint32_t so = 0;
   CHECK(drmSyncobjCreate(fd, DRM_SYNCOBJ_CREATE_SIGNALED, &so) == 0);
   int sf = -1;
   CHECK(drmSyncobjExportSyncFile(fd, so, &sf) == 0 && sf >= 0);
   struct pollfd pfd = {.fd = sf, .events = POLLIN};
   CHECK(poll(&pfd, 1, 5000) == 1 && (pfd.revents & POLLIN));
   struct sync_file_info info;
   memset(&info, 0, sizeof(info));
   CHECK(ioctl(sf, SYNC_IOC_FILE_INFO, &info) == 0 && info.status == 1);
   close(sf);
   CHECK(drmSyncobjDestroy(fd, so) == 0);

   /* Bad input: a bad pointer is EFAULT, an unknown handle ENOENT, as from the kernel. */
   CHECK(drmIoctl(fd, DRM_IOCTL_ASAHI_GEM_CREATE, (void *)16) == -1 && errno == EFAULT);
   struct drm_asahi_gem_mmap_offset bad = {.handle = 999};
   CHECK(drmIoctl(fd, DRM_IOCTL_ASAHI_GEM_MMAP_OFFSET, &bad) == -1 && errno == ENOENT);
   struct drm_gem_close cl = {.handle = gc.handle};
   CHECK(drmIoctl(fd, DRM_IOCTL_GEM_CLOSE, &cl) == 0);
}

#ifdef WITH_WINSYS
/* agx-winsys on the node's fd, as Mesa's screen would hand it: one job on the simulated GPU. */
static void
check_winsys(int fd)
{
   agx_ws_device *dev = NULL;
   int r = agx_ws_device_open_fd(fd, &dev);
   if (r)
      fprintf(stderr, "agx_ws_device_open_fd: %d: %s\n", r, agx_ws_last_error());
   CHECK(r == 0 && dev != NULL);
   struct agx_ws_params params;
   memset(&params, 0, sizeof(params));
   params.struct_size = sizeof(params);
   CHECK(agx_ws_device_get_params(dev, &params) == 0);
   agx_ws_vm *vm;
   agx_ws_queue *q;
   agx_ws_bo *code;
   void *map;
   uint64_t size, va;
   CHECK(agx_ws_vm_create(dev, &vm) == 0);
   CHECK(agx_ws_queue_create(vm, AGX_WS_PRIORITY_MEDIUM, &q) == 0);
   CHECK(agx_ws_bo_create(dev, 16384, AGX_WS_BO_WRITEBACK, NULL, &code) == 0);
   CHECK(agx_ws_bo_map(code, &map, &size) == 0);
   /* An AGX VDM "terminate" block word: not the simulator's language, so an opaque job. */
   ((uint32_t *)map)[0] = 6u << 29;
   CHECK(agx_ws_vm_bind(vm, code, AGX_WS_ACCESS_READ, AGX_WS_VA_GENERAL, &va) == 0);
   struct agx_ws_render_desc d;
   memset(&d, 0, sizeof(d));
   d.struct_size = sizeof(d);
   d.width_px = 64;
   d.height_px = 64;
   d.layers = 1;
   d.samples = 1;
   d.utile_width_px = 32;
   d.utile_height_px = 32;
   d.sample_size_bytes = 4;
   d.vdm_ctrl_stream_base = va;
   agx_ws_cmdbuf *cb;
   agx_ws_job *job;
   uint32_t index;
   CHECK(agx_ws_cmdbuf_create(dev, &cb) == 0);
   CHECK(agx_ws_cmdbuf_add_render(cb, &d, &index) == 0);
   CHECK(agx_ws_queue_submit(q, cb, NULL, &job) == 0);
   struct agx_ws_job_outcome o;
   memset(&o, 0, sizeof(o));
   o.struct_size = sizeof(o);
   CHECK(agx_ws_job_wait(job, 10ull * 1000 * 1000 * 1000, &o) == 0);
   printf("winsys job: status %u guilt %u\n", o.status, o.guilt);
   CHECK(o.status == AGX_WS_JOB_COMPLETE);
   CHECK(agx_ws_job_destroy(job) == 0);
   CHECK(agx_ws_cmdbuf_destroy(cb) == 0);
   CHECK(agx_ws_queue_destroy(q) == 0);
   CHECK(agx_ws_bo_destroy(code) == 0);
   CHECK(agx_ws_vm_destroy(vm) == 0);
   CHECK(agx_ws_device_destroy(dev) == 0);
}
#endif

int
main(void)
{
   const char *path = find_node();
   int fd = open(path, O_RDWR | O_CLOEXEC);
   CHECK(fd >= 0);
   check_version(fd);
   check_raw_ioctls(fd);

   /* The file lives while any of its fds does; a duplicate is the same file. */
   struct drm_asahi_gem_create gc = {.size = 16384};
   CHECK(drmIoctl(fd, DRM_IOCTL_ASAHI_GEM_CREATE, &gc) == 0);
   int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
   CHECK(dup_fd >= 0);
   close(fd);
   struct drm_asahi_gem_mmap_offset mo = {.handle = gc.handle};
   CHECK(drmIoctl(dup_fd, DRM_IOCTL_ASAHI_GEM_MMAP_OFFSET, &mo) == 0);
   /* Closed: no longer the node (EBADF from the real kernel). */
   CHECK(drmGetVersion(fd) == NULL);

#ifdef WITH_WINSYS
   check_winsys(dup_fd);
   /* The library worked on its own duplicate: ours is untouched. */
   CHECK(drmIoctl(dup_fd, DRM_IOCTL_ASAHI_GEM_MMAP_OFFSET, &mo) == 0);
#endif
   close(dup_fd);
   printf("ok\n");
   return 0;
}
