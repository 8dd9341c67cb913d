/*
 * The objects of the ABI doing real work on the simulated GPU: parameters, BOs (map, bind,
 * bind_at, unbind, dma-buf), sync objects (signal, reset, wait with timeout, sync_file export
 * and import, status), command buffers with access descriptions and their analysis verdicts,
 * compute commands, submits with in- and out-syncs, explicit ordering, and several threads
 * submitting at once.
 */
#include <pthread.h>

#include "common.h"

static void
test_params(agx_ws_device *dev)
{
   struct agx_ws_params p;
   memset(&p, 0xcd, sizeof(p));
   p.struct_size = sizeof(p);
   OK(agx_ws_device_get_params(dev, &p));
   CHECK(p.struct_size == sizeof(p));
   CHECK(p.vm_start < p.vm_end);
   CHECK(p.max_commands_per_submission > 0 && p.max_attachments > 0);
   CHECK(p.core_count > 0 && p.pad == 0);
   CHECK(p.fault_ext && (p.fault_ext_features & AGX_WS_FAULT_EXT_RESULTS));
   CHECK(memchr(p.gpu_name, 0, sizeof(p.gpu_name)) != NULL);
   uint64_t t0, t1;
   OK(agx_ws_device_get_gpu_time(dev, &t0));
   OK(agx_ws_device_get_gpu_time(dev, &t1));
   CHECK(t1 >= t0);

   agx_ws_device *up;
   OK(agx_ws_device_open("sim:upstream", &up));
   OK(agx_ws_device_get_params(up, &p));
   CHECK(p.fault_ext == 0 && p.recovery_policy == AGX_WS_RECOVERY_UNKNOWN);
   OK(agx_ws_device_destroy(up));
}

static void
test_memory(agx_ws_device *dev)
{
   agx_ws_vm *vm;
   agx_ws_bo *bo, *priv, *imported;
   OK(agx_ws_vm_create(dev, &vm));
   OK(agx_ws_bo_create(dev, 5000, 0, NULL, &bo));
   void *p1, *p2;
   uint64_t s1, s2, va, va2;
   OK(agx_ws_bo_map(bo, &p1, &s1));
   OK(agx_ws_bo_map(bo, &p2, &s2));
   CHECK(p1 == p2 && s1 == s2 && s1 == 16384); /* rounded up to the GPU page */
   memset(p1, 0x5a, s1);
   OK(agx_ws_vm_bind(vm, bo, AGX_WS_ACCESS_READ, AGX_WS_VA_GENERAL, &va));
   OK(agx_ws_vm_bind(vm, bo, AGX_WS_ACCESS_READ, AGX_WS_VA_SHADER, &va2));
   CHECK(va != va2);
   OK(agx_ws_vm_unbind(vm, va2));
   FAILS(-ENOENT, agx_ws_vm_unbind(vm, va2));
   OK(agx_ws_vm_bind_at(vm, bo, 0, 16384, 0x7000000000ull, AGX_WS_ACCESS_READ | AGX_WS_ACCESS_WRITE));
   FAILS(-EINVAL, agx_ws_vm_bind_at(vm, bo, 0, 16384, 0x7000000000ull, AGX_WS_ACCESS_READ));
   OK(agx_ws_vm_unbind(vm, 0x7000000000ull));

   /* dma-buf round trip: importing our own buffer gives the same memory. */
   int fd = -1;
   OK(agx_ws_bo_export(bo, &fd));
   CHECK(fd >= 0);
   OK(agx_ws_bo_import(dev, fd, &imported));
   close(fd);
   void *p3;
   uint64_t s3;
   OK(agx_ws_bo_map(imported, &p3, &s3));
   CHECK(s3 == s1 && ((uint8_t *)p3)[100] == 0x5a);
   OK(agx_ws_bo_destroy(imported));

   /* VM-private BOs cannot be exported. */
   OK(agx_ws_bo_create(dev, 4096, AGX_WS_BO_WRITEBACK, vm, &priv));
   FAILS(-EINVAL, agx_ws_bo_export(priv, &fd));
   OK(agx_ws_bo_destroy(priv));

   OK(agx_ws_bo_destroy(bo)); /* still bound at va: the object lives on */
   OK(agx_ws_vm_unbind(vm, va));
   OK(agx_ws_vm_destroy(vm));
}

static void
test_sync(agx_ws_device *dev)
{
   agx_ws_syncobj *a, *b, *tl;
   int32_t st;
   OK(agx_ws_syncobj_create(dev, 0, &a));
   OK(agx_ws_syncobj_status(a, 0, &st));
   CHECK(st == AGX_WS_FENCE_PENDING);
   FAILS(-ETIME, agx_ws_syncobj_wait(a, 0, 1000000, AGX_WS_WAIT_FOR_SUBMIT));
   OK(agx_ws_syncobj_signal(a, 0));
   OK(agx_ws_syncobj_wait(a, 0, 0, 0));
   OK(agx_ws_syncobj_status(a, 0, &st));
   CHECK(st == AGX_WS_FENCE_SIGNALED);

   int fd;
   OK(agx_ws_syncobj_export_sync_file(a, 0, &fd));
   OK(agx_ws_sync_file_status(dev, fd, &st));
   CHECK(st == AGX_WS_FENCE_SIGNALED);
   OK(agx_ws_syncobj_create(dev, 0, &b));
   OK(agx_ws_syncobj_import_sync_file(b, fd, 0));
   close(fd);
   OK(agx_ws_syncobj_wait(b, 0, SEC, 0));
   OK(agx_ws_syncobj_reset(a));
   OK(agx_ws_syncobj_status(a, 0, &st));
   CHECK(st == AGX_WS_FENCE_PENDING);

   /* Timelines. */
   OK(agx_ws_syncobj_create(dev, 0, &tl));
   OK(agx_ws_syncobj_signal(tl, 3));
   uint64_t v = 0;
   OK(agx_ws_syncobj_query(tl, 0, &v));
   CHECK(v == 3);
   OK(agx_ws_syncobj_wait(tl, 2, 0, 0));
   FAILS(-ETIME, agx_ws_syncobj_wait(tl, 5, 1000000, AGX_WS_WAIT_FOR_SUBMIT));
   struct agx_ws_sync_point pts[2] = {{a, 0}, {tl, 3}};
   uint32_t first = 99;
   OK(agx_ws_syncobj_wait_many(dev, pts, 2, SEC, AGX_WS_WAIT_FOR_SUBMIT, &first));
   CHECK(first == 1);
   FAILS(-ETIME, agx_ws_syncobj_wait_many(dev, pts, 2, 1000000,
                                          AGX_WS_WAIT_ALL | AGX_WS_WAIT_FOR_SUBMIT, NULL));
   OK(agx_ws_syncobj_transfer(a, 0, tl, 3));
   OK(agx_ws_syncobj_wait(a, 0, 0, 0));

   OK(agx_ws_syncobj_destroy(a));
   OK(agx_ws_syncobj_destroy(b));
   OK(agx_ws_syncobj_destroy(tl));
}

static void
test_analysis(agx_ws_device *dev, struct ctx *c)
{
   agx_ws_cmdbuf *cb;
   OK(agx_ws_cmdbuf_create(dev, &cb));
   uint64_t dst = ctx_alloc(c, 4096), src = ctx_alloc(c, 4096);
   uint32_t reasons, idx;

   /* Load + blend + store: not restartable. */
   struct agx_ws_color_attachment color = {
      .range = {dst, 4096}, .load = AGX_WS_LOAD_OP_LOAD, .store = AGX_WS_STORE_OP_STORE,
      .blend = 1};
   struct agx_ws_shader_access tex = {.range = {src, 4096}, .kind = AGX_WS_SHADER_READ};
   struct agx_ws_render_access ra = {
      .struct_size = sizeof(ra), .color_count = 1, .colors = &color,
      .shader_access_count = 1, .shader_accesses = &tex};
   struct agx_ws_render_desc d = render_desc(c->code_va, &ra);
   OK(agx_ws_cmdbuf_add_render(cb, &d, &idx));
   OK(agx_ws_cmdbuf_get_reasons(cb, idx, &reasons));
   CHECK(reasons & AGX_WS_REASON_BLEND_ON_LOADED);

   /* Clear + store with a depth aspect loaded read-only: restartable. */
   color.load = AGX_WS_LOAD_OP_CLEAR;
   color.blend = 0;
   struct agx_ws_ds_attachment depth = {
      .range = {src, 4096}, .load = AGX_WS_LOAD_OP_LOAD, .store = AGX_WS_STORE_OP_DONT_CARE,
      .read_only = 1};
   ra.depth = &depth;
   OK(agx_ws_cmdbuf_add_render(cb, &d, &idx));
   OK(agx_ws_cmdbuf_get_reasons(cb, idx, &reasons));
   CHECK(reasons == 0);

   /* Unknown shader accesses, and no description at all. */
   ra.flags = AGX_WS_RENDER_ACCESS_SHADER_UNKNOWN;
   OK(agx_ws_cmdbuf_add_render(cb, &d, &idx));
   OK(agx_ws_cmdbuf_get_reasons(cb, idx, &reasons));
   CHECK(reasons & AGX_WS_REASON_UNKNOWN_ACCESS);
   d.access = NULL;
   OK(agx_ws_cmdbuf_add_render(cb, &d, &idx));
   OK(agx_ws_cmdbuf_get_reasons(cb, idx, &reasons));
   CHECK(reasons == AGX_WS_REASON_UNKNOWN_ACCESS);

   /* Occlusion query accumulating, transform feedback appending. */
   ra.flags = 0;
   ra.depth = NULL;
   struct agx_ws_occlusion_query oq = {.range = {src, 8}, .reset_in_command = 0};
   struct agx_ws_xfb xfb = {.buffer = {src + 64, 256}, .counter = {src + 512, 4},
                            .has_counter = 1, .append = 1};
   ra.occlusion_query_count = 1;
   ra.occlusion_queries = &oq;
   ra.xfb_count = 1;
   ra.xfbs = &xfb;
   ra.shader_access_count = 0;
   d.access = &ra;
   OK(agx_ws_cmdbuf_add_render(cb, &d, &idx));
   OK(agx_ws_cmdbuf_get_reasons(cb, idx, &reasons));
   CHECK(reasons & AGX_WS_REASON_OCCLUSION_ACCUMULATE);
   CHECK(reasons & AGX_WS_REASON_XFB_APPEND);

   /* Compute: declared copy (restartable), atomics, undeclared. */
   struct agx_ws_range r_src = {src, 4096}, r_dst = {dst, 4096};
   struct agx_ws_dispatch disp = {.read_count = 1, .reads = &r_src,
                                  .overwrite_count = 1, .overwrites = &r_dst};
   struct agx_ws_compute_access ca = {.struct_size = sizeof(ca), .dispatch_count = 1,
                                      .dispatches = &disp};
   struct agx_ws_compute_desc cd = {.struct_size = sizeof(cd), .access = &ca,
                                    .cdm_ctrl_stream_base = c->code_va,
                                    .cdm_ctrl_stream_end = c->code_va + 32};
   OK(agx_ws_cmdbuf_add_compute(cb, &cd, &idx));
   OK(agx_ws_cmdbuf_get_reasons(cb, idx, &reasons));
   CHECK(reasons == 0);
   struct agx_ws_dispatch atomics = {.atomic_count = 1, .atomics = &r_src};
   ca.dispatches = &atomics;
   OK(agx_ws_cmdbuf_add_compute(cb, &cd, &idx));
   OK(agx_ws_cmdbuf_get_reasons(cb, idx, &reasons));
   CHECK(reasons & AGX_WS_REASON_ATOMICS);
   cd.access = NULL;
   OK(agx_ws_cmdbuf_add_compute(cb, &cd, &idx));
   OK(agx_ws_cmdbuf_get_reasons(cb, idx, &reasons));
   CHECK(reasons == AGX_WS_REASON_COMPUTE_UNDECLARED);
   uint32_t n;
   OK(agx_ws_cmdbuf_get_count(cb, &n));
   CHECK(n == idx + 1);
   OK(agx_ws_cmdbuf_reset(cb));
   OK(agx_ws_cmdbuf_get_count(cb, &n));
   CHECK(n == 0);
   OK(agx_ws_cmdbuf_destroy(cb));
}

/* Render then compute consuming it, gated on a user sync object, signalling another. */
static void
test_submit(agx_ws_device *dev, struct ctx *c)
{
   uint64_t src = ctx_alloc(c, 4096), dst = ctx_alloc(c, 4096);
   agx_ws_sim_stream *s;
   OK(agx_ws_sim_stream_create(&s));
   OK(agx_ws_sim_stream_fill(s, src, 4096, 0x11111111));
   struct agx_ws_color_attachment color = {
      .range = {src, 4096}, .load = AGX_WS_LOAD_OP_CLEAR, .store = AGX_WS_STORE_OP_STORE};
   struct agx_ws_render_access ra = {.struct_size = sizeof(ra), .color_count = 1,
                                     .colors = &color};
   struct agx_ws_render_desc d = render_desc(ctx_stream(c, s, NULL), &ra);

   OK(agx_ws_sim_stream_create(&s));
   OK(agx_ws_sim_stream_copy(s, dst, src, 4096));
   OK(agx_ws_sim_stream_atomic_add(s, dst, 5));
   uint64_t len;
   uint64_t cva = ctx_stream(c, s, &len);
   struct agx_ws_range r_src = {src, 4096}, r_dst = {dst, 4096};
   struct agx_ws_dispatch disp = {.read_count = 1, .reads = &r_src,
                                  .atomic_count = 1, .atomics = &r_dst};
   struct agx_ws_compute_access ca = {.struct_size = sizeof(ca), .dispatch_count = 1,
                                      .dispatches = &disp};
   struct agx_ws_compute_desc cd = {
      .struct_size = sizeof(cd), .cdm_ctrl_stream_base = cva, .cdm_ctrl_stream_end = cva + len,
      .attachment_count = 1, .attachments = &r_dst, .access = &ca,
      /* Explicit ordering: after the render pass (command 0). */
      .deps = {.render = AGX_WS_DEP_THROUGH, .render_index = 0,
               .compute = AGX_WS_DEP_PREVIOUS_SUBMITS}};

   agx_ws_cmdbuf *cb;
   OK(agx_ws_cmdbuf_create(dev, &cb));
   OK(agx_ws_cmdbuf_add_render(cb, &d, NULL));
   OK(agx_ws_cmdbuf_add_compute(cb, &cd, NULL));

   agx_ws_syncobj *gate, *done;
   OK(agx_ws_syncobj_create(dev, 0, &gate));
   OK(agx_ws_syncobj_create(dev, 0, &done));
   OK(agx_ws_syncobj_signal(gate, 0));
   struct agx_ws_sync_point wait = {gate, 0}, signal = {done, 0};
   struct agx_ws_submit_info info = {
      .struct_size = sizeof(info), .wait_count = 1, .waits = &wait,
      .signal_count = 1, .signals = &signal};
   agx_ws_job *job;
   OK(agx_ws_queue_submit(c->queue, cb, &info, &job));
   OK(agx_ws_syncobj_wait(done, 0, SEC, AGX_WS_WAIT_FOR_SUBMIT));
   struct agx_ws_job_outcome o = wait_job(job);
   CHECK(o.status == AGX_WS_JOB_COMPLETE && o.has_fault == 0);
   int32_t st;
   OK(agx_ws_syncobj_status(done, 0, &st));
   CHECK(st == AGX_WS_FENCE_SIGNALED);
   uint8_t *p = ctx_cpu(c, dst);
   CHECK(p[0] == 0x16 && all_bytes(p + 1, 4095, 0x11));
   OK(agx_ws_queue_wait_idle(c->queue, SEC));
   struct agx_ws_queue_state qs = {.struct_size = sizeof(qs)};
   OK(agx_ws_queue_get_state(c->queue, &qs));
   CHECK(!qs.banned && qs.reset_count == 0);

   /* A hang is ended by the watchdog. */
   OK(agx_ws_job_destroy(job));
   OK(agx_ws_cmdbuf_destroy(cb));
   OK(agx_ws_syncobj_destroy(gate));
   OK(agx_ws_syncobj_destroy(done));
}

static void
test_hang(void)
{
   agx_ws_device *dev;
   OK(agx_ws_device_open("sim:hang-timeout-ms=1", &dev));
   struct ctx c;
   ctx_init(&c, dev, 1 << 20);
   OK(agx_ws_sim_inject(c.queue, AGX_WS_INJECT_HANG, 1000));
   agx_ws_job *j = submit_clear_after(&c, ctx_alloc(&c, 64), 64, 1, 100000);
   struct agx_ws_job_outcome o = wait_job(j);
   CHECK(o.status == AGX_WS_JOB_TIMED_OUT && o.guilt == AGX_WS_GUILT_GUILTY);
   OK(agx_ws_job_destroy(j));
   ctx_fini(&c);

   /* A firmware crash: device gone everywhere. */
   ctx_init(&c, dev, 1 << 20);
   OK(agx_ws_sim_hold(dev));
   j = submit_clear(&c, ctx_alloc(&c, 64), 64, 1);
   OK(agx_ws_sim_crash_firmware(dev));
   o = wait_job(j);
   CHECK(o.status == AGX_WS_JOB_DEVICE_GONE && o.guilt == AGX_WS_GUILT_UNKNOWN);
   agx_ws_vm *vm;
   FAILS(-ENODEV, agx_ws_vm_create(dev, &vm));
   OK(agx_ws_job_destroy(j));
   ctx_fini(&c);
   OK(agx_ws_device_destroy(dev));
}

struct worker {
   agx_ws_device *dev;
   int id, failures;
};

static void *
worker_main(void *arg)
{
   struct worker *w = arg;
   struct ctx c;
   ctx_init(&c, w->dev, 1 << 20);
   for (int i = 0; i < 8; i++) {
      uint64_t dst = ctx_alloc(&c, 1024);
      agx_ws_job *j = submit_clear(&c, dst, 1024, (uint32_t)(w->id + i) * 0x01010101u);
      struct agx_ws_job_outcome o = wait_job(j);
      if (o.status != AGX_WS_JOB_COMPLETE || !all_bytes(ctx_cpu(&c, dst), 1024, w->id + i))
         w->failures++;
      OK(agx_ws_job_destroy(j));
   }
   ctx_fini(&c);
   return NULL;
}

static void
test_threads(agx_ws_device *dev)
{
   struct worker w[4];
   pthread_t t[4];
   for (int i = 0; i < 4; i++) {
      w[i] = (struct worker){.dev = dev, .id = 10 * (i + 1)};
      CHECK(pthread_create(&t[i], NULL, worker_main, &w[i]) == 0);
   }
   for (int i = 0; i < 4; i++) {
      CHECK(pthread_join(t[i], NULL) == 0);
      CHECK(w[i].failures == 0);
   }
}

int
main(void)
{
   agx_ws_device *dev;
   OK(agx_ws_device_open("sim", &dev));
   test_params(dev);
   test_memory(dev);
   test_sync(dev);
   struct ctx c;
   ctx_init(&c, dev, 1 << 20);
   test_analysis(dev, &c);
   test_submit(dev, &c);
   ctx_fini(&c);
   test_hang();
   test_threads(dev);
   OK(agx_ws_device_destroy(dev));
   printf("objects: ok\n");
   return 0;
}
