/*
 * The C ABI a Mesa driver uses to share its DRM file with the library, on the simulated GPU:
 * its own sync objects wrapped for jobs, a BO mapped where it reserved address space, and
 * dma-buf implicit sync through sync_files.
 */
#include <sys/mman.h>

#include "common.h"

static void
wrapped_syncobjs(agx_ws_device *dev)
{
   struct ctx c;
   ctx_init(&c, dev, 1 << 20);
   /* Stands for a sync object Mesa created on the same file. */
   agx_ws_syncobj *mesa, *w, *w2;
   uint32_t h, hw;
   OK(agx_ws_syncobj_create(dev, 0, &mesa));
   OK(agx_ws_syncobj_get_handle(mesa, &h));
   OK(agx_ws_syncobj_wrap(dev, h, &w));
   OK(agx_ws_syncobj_get_handle(w, &hw));
   CHECK(h == hw);

   uint64_t dst = ctx_alloc(&c, 4096);
   agx_ws_sim_stream *s;
   OK(agx_ws_sim_stream_create(&s));
   OK(agx_ws_sim_stream_fill(s, dst, 4096, 0x5a5a5a5a));
   struct agx_ws_render_desc d = render_desc(ctx_stream(&c, s, NULL), NULL);
   agx_ws_cmdbuf *cb;
   uint32_t index;
   OK(agx_ws_cmdbuf_create(dev, &cb));
   OK(agx_ws_cmdbuf_add_render(cb, &d, &index));
   struct agx_ws_sync_point out = {.syncobj = w, .point = 0};
   struct agx_ws_submit_info info = {
      .struct_size = sizeof(info),
      .signal_count = 1,
      .signals = &out,
   };
   agx_ws_job *job;
   OK(agx_ws_queue_submit(c.queue, cb, &info, &job));
   CHECK(wait_job(job).status == AGX_WS_JOB_COMPLETE);
   /* The caller's own handle saw the job's signal. */
   OK(agx_ws_syncobj_wait(mesa, 0, 0, 0));
   CHECK(all_bytes(ctx_cpu(&c, dst), 4096, 0x5a));

   /* Destroying the wrapper leaves the caller's object alive. */
   OK(agx_ws_syncobj_destroy(w));
   OK(agx_ws_syncobj_reset(mesa));
   OK(agx_ws_syncobj_wrap(dev, h, &w2));
   /* Handles that are not there: ENOENT, and 0 is EINVAL; nothing is created. */
   agx_ws_syncobj *none = NULL;
   FAILS(-ENOENT, agx_ws_syncobj_wrap(dev, h + 1000, &none));
   FAILS(-EINVAL, agx_ws_syncobj_wrap(dev, 0, &none));
   FAILS(-EINVAL, agx_ws_syncobj_wrap(dev, h, NULL));
   CHECK(none == NULL);
   OK(agx_ws_syncobj_destroy(w2));
   OK(agx_ws_syncobj_destroy(mesa));
   /* Once the owner destroyed it, the handle is gone. */
   FAILS(-ENOENT, agx_ws_syncobj_wrap(dev, h, &none));

   OK(agx_ws_job_destroy(job));
   OK(agx_ws_cmdbuf_destroy(cb));
   ctx_fini(&c);
}

static void
fixed_maps(agx_ws_device *dev)
{
   const size_t page = 16384, len = 4 * page;
   uint8_t *r = mmap(NULL, len + page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
   CHECK(r != MAP_FAILED);
   agx_ws_bo *bo, *bo2;
   OK(agx_ws_bo_create(dev, len, AGX_WS_BO_WRITEBACK, NULL, &bo));
   void *p = NULL;
   FAILS(-EINVAL, agx_ws_bo_map_fixed(bo, r + 1, &p));
   FAILS(-EINVAL, agx_ws_bo_map_fixed(bo, NULL, &p));
   CHECK(p == NULL);
   OK(agx_ws_bo_map_fixed(bo, r, &p));
   CHECK(p == r);
   memcpy(r + 100, "placed", 6); /* writable where it was placed */
   void *again;
   uint64_t size;
   OK(agx_ws_bo_map(bo, &again, &size));
   CHECK(again == r && size == len);
   FAILS(-EBUSY, agx_ws_bo_map_fixed(bo, r, &p));
   /* The pages are the BO's: a second file importing it sees the bytes. */
   int fd;
   OK(agx_ws_bo_export(bo, &fd));
   agx_ws_device *peer;
   OK(agx_ws_sim_open_peer(dev, &peer));
   OK(agx_ws_bo_import(peer, fd, &bo2));
   void *p2;
   OK(agx_ws_bo_map(bo2, &p2, &size));
   CHECK(memcmp((uint8_t *)p2 + 100, "placed", 6) == 0);
   OK(agx_ws_bo_destroy(bo2));
   OK(agx_ws_device_destroy(peer));
   close(fd);
   OK(agx_ws_bo_destroy(bo));
   CHECK(munmap(r, len + page) == 0);
}

static int
status(agx_ws_device *dev, int fd)
{
   int32_t st;
   OK(agx_ws_sync_file_status(dev, fd, &st));
   return st;
}

static void
dmabuf_implicit_sync(agx_ws_device *dev)
{
   struct ctx c;
   ctx_init(&c, dev, 1 << 20);
   agx_ws_bo *bo;
   int dmabuf, f;
   OK(agx_ws_bo_create(dev, 16384, 0, NULL, &bo));
   OK(agx_ws_bo_export(bo, &dmabuf));
   OK(agx_ws_dmabuf_export_sync_file(dev, dmabuf, AGX_WS_DMABUF_WRITE, &f));
   CHECK(status(dev, f) == AGX_WS_FENCE_SIGNALED);
   close(f);

   /* A job in flight writes the buffer: its fence goes in as the writer. */
   OK(agx_ws_sim_hold(dev));
   agx_ws_job *job = submit_clear(&c, ctx_alloc(&c, 4096), 4096, 0x01010101);
   int jf;
   OK(agx_ws_job_export_sync_file(job, &jf));
   OK(agx_ws_dmabuf_import_sync_file(dev, dmabuf, AGX_WS_DMABUF_WRITE, jf));
   int r, w;
   OK(agx_ws_dmabuf_export_sync_file(dev, dmabuf, AGX_WS_DMABUF_READ, &r));
   OK(agx_ws_dmabuf_export_sync_file(dev, dmabuf, AGX_WS_DMABUF_READ_WRITE, &w));
   CHECK(status(dev, r) == AGX_WS_FENCE_PENDING);
   CHECK(status(dev, w) == AGX_WS_FENCE_PENDING);
   OK(agx_ws_sim_release(dev));
   CHECK(wait_job(job).status == AGX_WS_JOB_COMPLETE);
   CHECK(status(dev, r) == AGX_WS_FENCE_SIGNALED);
   CHECK(status(dev, w) == AGX_WS_FENCE_SIGNALED);
   close(r);
   close(w);

   /* Bad arguments: nothing changes. */
   int none = -7;
   FAILS(-EINVAL, agx_ws_dmabuf_export_sync_file(dev, dmabuf, 0, &none));
   FAILS(-EINVAL, agx_ws_dmabuf_export_sync_file(dev, dmabuf, 4, &none));
   FAILS(-EBADF, agx_ws_dmabuf_export_sync_file(dev, -1, AGX_WS_DMABUF_READ, &none));
   CHECK(none == -7);
   int p[2];
   CHECK(pipe(p) == 0);
   FAILS(-ENOTTY, agx_ws_dmabuf_export_sync_file(dev, p[0], AGX_WS_DMABUF_READ, &none));
   FAILS(-ENOTTY, agx_ws_dmabuf_import_sync_file(dev, p[0], AGX_WS_DMABUF_READ, jf));
   FAILS(-EINVAL, agx_ws_dmabuf_import_sync_file(dev, dmabuf, AGX_WS_DMABUF_READ, p[0]));
   close(p[0]);
   close(p[1]);
   close(jf);
   close(dmabuf);
   OK(agx_ws_job_destroy(job));
   OK(agx_ws_bo_destroy(bo));
   ctx_fini(&c);
}

int
main(void)
{
   agx_ws_device *dev;
   OK(agx_ws_device_open("sim", &dev));
   wrapped_syncobjs(dev);
   fixed_maps(dev);
   dmabuf_implicit_sync(dev);
   OK(agx_ws_device_destroy(dev));
   printf("interop: ok\n");
   return 0;
}
