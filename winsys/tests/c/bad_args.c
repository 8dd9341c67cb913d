/*
 * Bad arguments from C: NULL pointers, destroyed handles (use after destroy, double destroy),
 * handles of the wrong kind, garbage handles, wrong struct sizes, invalid enum values and
 * flags. Every one is an error code; nothing crashes and the good objects stay usable.
 */
#include "common.h"

int
main(void)
{
   agx_ws_device *dev = NULL;
   FAILS(-EINVAL, agx_ws_device_open("sim", NULL));
   FAILS(-EINVAL, agx_ws_device_open("nvidia", &dev));
   CHECK(dev == NULL);
   CHECK(strstr(agx_ws_last_error(), "agx_ws_device_open") != NULL);
   FAILS(-EINVAL, agx_ws_device_open("sim:policy=bogus", &dev));
   OK(agx_ws_device_open("sim", &dev));

   /* NULL handles and NULL out-parameters. */
   agx_ws_vm *vm = NULL;
   FAILS(-EINVAL, agx_ws_vm_create(NULL, &vm));
   FAILS(-EINVAL, agx_ws_vm_create(dev, NULL));
   FAILS(-EINVAL, agx_ws_device_destroy(NULL));
   FAILS(-EINVAL, agx_ws_device_get_params(dev, NULL));
   FAILS(-EINVAL, agx_ws_device_get_gpu_time(dev, NULL));
   FAILS(-EINVAL, agx_ws_reset_tracker_create(NULL));
   FAILS(-EINVAL, agx_ws_job_wait(NULL, 0, NULL));
   FAILS(-EINVAL, agx_ws_vk_device_check_status(NULL, NULL));
   CHECK(vm == NULL);

   /* Wrong struct sizes. */
   struct agx_ws_params p = {.struct_size = sizeof(p) - 8};
   FAILS(-EINVAL, agx_ws_device_get_params(dev, &p));
   p.struct_size = 0;
   FAILS(-EINVAL, agx_ws_device_get_params(dev, &p));
   p.struct_size = sizeof(p) + 4;
   FAILS(-EINVAL, agx_ws_device_get_params(dev, &p));
   p.struct_size = sizeof(p);
   OK(agx_ws_device_get_params(dev, &p));
   CHECK(p.gpu_name[0] == 'G');

   struct ctx c;
   ctx_init(&c, dev, 1 << 20);
   agx_ws_cmdbuf *cb;
   OK(agx_ws_cmdbuf_create(dev, &cb));
   struct agx_ws_render_desc d = render_desc(c.code_va, NULL);
   d.struct_size = 8;
   FAILS(-EINVAL, agx_ws_cmdbuf_add_render(cb, &d, NULL));
   d = render_desc(c.code_va, NULL);
   FAILS(-EINVAL, agx_ws_cmdbuf_add_render(cb, NULL, NULL));
   struct agx_ws_render_access access = {.struct_size = sizeof(access) - 1};
   d.access = &access;
   FAILS(-EINVAL, agx_ws_cmdbuf_add_render(cb, &d, NULL));
   access.struct_size = sizeof(access);
   access.color_count = 1; /* and colors NULL */
   FAILS(-EINVAL, agx_ws_cmdbuf_add_render(cb, &d, NULL));
   struct agx_ws_color_attachment color = {.range = {c.data_va, 64}, .load = 7};
   access.colors = &color;
   FAILS(-EINVAL, agx_ws_cmdbuf_add_render(cb, &d, NULL)); /* load 7 */
   color.load = AGX_WS_LOAD_OP_LOAD;
   access.flags = 1u << 31;
   FAILS(-EINVAL, agx_ws_cmdbuf_add_render(cb, &d, NULL));
   access.flags = 0;
   d.samples = 3;
   FAILS(-EINVAL, agx_ws_cmdbuf_add_render(cb, &d, NULL));
   d.samples = 1;
   d.width_px = 0;
   FAILS(-EINVAL, agx_ws_cmdbuf_add_render(cb, &d, NULL));
   d.width_px = 64;
   d.flags = 1u << 30;
   FAILS(-EINVAL, agx_ws_cmdbuf_add_render(cb, &d, NULL));
   d.flags = 0;
   d.deps.render = AGX_WS_DEP_THROUGH;
   d.deps.render_index = 5; /* a later command */
   FAILS(-EINVAL, agx_ws_cmdbuf_add_render(cb, &d, NULL));
   d.deps.render = 42;
   FAILS(-EINVAL, agx_ws_cmdbuf_add_render(cb, &d, NULL));
   d.deps.render = AGX_WS_DEP_DEFAULT;
   d.fragment_attachment_count = 100000; /* absurd count */
   struct agx_ws_range att = {c.data_va, 64};
   d.fragment_attachments = &att;
   FAILS(-EINVAL, agx_ws_cmdbuf_add_render(cb, &d, NULL));
   d.fragment_attachment_count = 1;
   uint32_t count = 99;
   OK(agx_ws_cmdbuf_get_count(cb, &count));
   CHECK(count == 0); /* nothing half-added */
   OK(agx_ws_cmdbuf_add_render(cb, &d, NULL));
   uint32_t reasons;
   FAILS(-EINVAL, agx_ws_cmdbuf_get_reasons(cb, 1, &reasons));

   struct agx_ws_compute_desc cd = {.struct_size = sizeof(cd)};
   cd.cdm_ctrl_stream_base = 0x1000;
   cd.cdm_ctrl_stream_end = 0x800; /* before the base */
   FAILS(-EINVAL, agx_ws_cmdbuf_add_compute(cb, &cd, NULL));
   cd.cdm_ctrl_stream_end = 0x1000;
   struct agx_ws_dispatch disp = {.flags = 1u << 9};
   struct agx_ws_compute_access ca = {.struct_size = sizeof(ca), .dispatch_count = 1,
                                      .dispatches = &disp};
   cd.access = &ca;
   FAILS(-EINVAL, agx_ws_cmdbuf_add_compute(cb, &cd, NULL));
   ca.struct_size = 0;
   FAILS(-EINVAL, agx_ws_cmdbuf_add_compute(cb, &cd, NULL));

   /* Bad enums and flags elsewhere. */
   agx_ws_queue *q2 = NULL;
   FAILS(-EINVAL, agx_ws_queue_create(c.vm, 17, &q2));
   uint64_t va;
   FAILS(-EINVAL, agx_ws_vm_bind(c.vm, c.data, 0, AGX_WS_VA_GENERAL, &va));
   FAILS(-EINVAL, agx_ws_vm_bind(c.vm, c.data, 1u << 7, AGX_WS_VA_GENERAL, &va));
   FAILS(-EINVAL, agx_ws_vm_bind(c.vm, c.data, AGX_WS_ACCESS_READ, 9, &va));
   FAILS(-EINVAL, agx_ws_vm_bind(c.vm, c.code, AGX_WS_ACCESS_WRITE, AGX_WS_VA_SHADER, &va));
   FAILS(-ENOENT, agx_ws_vm_unbind(c.vm, 0x1234000));
   agx_ws_bo *bo = NULL;
   FAILS(-EINVAL, agx_ws_bo_create(dev, 0, 0, NULL, &bo));
   FAILS(-EINVAL, agx_ws_bo_create(dev, 4096, 1u << 5, NULL, &bo));
   FAILS(-EINVAL, agx_ws_sim_inject(c.queue, 5, 0));
   agx_ws_reset_tracker *t;
   OK(agx_ws_reset_tracker_create(&t));
   FAILS(-EINVAL, agx_ws_reset_tracker_observe(t, 4));
   agx_ws_syncobj *so;
   FAILS(-EINVAL, agx_ws_syncobj_create(dev, 1u << 3, &so));
   OK(agx_ws_syncobj_create(dev, 0, &so));
   FAILS(-EINVAL, agx_ws_syncobj_wait(so, 0, 0, 1u << 8));
   FAILS(-EINVAL, agx_ws_syncobj_wait_many(dev, NULL, 1, 0, 0, NULL));
   FAILS(-EINVAL, agx_ws_syncobj_wait_many(dev, NULL, 0, 0, 0, NULL)); /* no objects */
   FAILS(-EBADF, agx_ws_syncobj_import_sync_file(so, -1, 0));
   FAILS(-EBADF, agx_ws_bo_import(dev, -1, &bo));

   /* An empty command buffer, and a submit_info of the wrong size. */
   agx_ws_cmdbuf *empty;
   agx_ws_job *job = NULL;
   OK(agx_ws_cmdbuf_create(dev, &empty));
   FAILS(-EINVAL, agx_ws_queue_submit(c.queue, empty, NULL, &job));
   struct agx_ws_submit_info si = {.struct_size = 4};
   FAILS(-EINVAL, agx_ws_queue_submit(c.queue, cb, &si, &job));
   CHECK(job == NULL);

   /* Garbage and wrong-kind handles: -EBADF, never a crash. */
   FAILS(-EBADF, agx_ws_vm_destroy((agx_ws_vm *)(uintptr_t)0xdeadbeef));
   FAILS(-EBADF, agx_ws_bo_map((agx_ws_bo *)c.vm, (void **)&va, &va));
   FAILS(-EBADF, agx_ws_queue_destroy((agx_ws_queue *)dev));
   FAILS(-EBADF, agx_ws_device_destroy((agx_ws_device *)t));
   FAILS(-EBADF, agx_ws_sim_stream_destroy((agx_ws_sim_stream *)&c));
   bool lost;
   OK(agx_ws_reset_tracker_is_lost(t, &lost)); /* untouched by the failed destroy */
   CHECK(!lost);

   /* Use after destroy and double destroy. */
   OK(agx_ws_syncobj_destroy(so));
   FAILS(-EBADF, agx_ws_syncobj_signal(so, 0));
   FAILS(-EBADF, agx_ws_syncobj_destroy(so));
   OK(agx_ws_reset_tracker_destroy(t));
   FAILS(-EBADF, agx_ws_reset_tracker_get_status(t, &reasons));
   OK(agx_ws_cmdbuf_destroy(empty));
   FAILS(-EBADF, agx_ws_queue_submit(c.queue, empty, NULL, &job));
   agx_ws_bo *tmp;
   OK(agx_ws_bo_create(dev, 4096, 0, NULL, &tmp));
   OK(agx_ws_bo_destroy(tmp));
   void *ptr;
   uint64_t size;
   FAILS(-EBADF, agx_ws_bo_map(tmp, &ptr, &size));
   FAILS(-EBADF, agx_ws_vm_bind(c.vm, tmp, AGX_WS_ACCESS_READ, AGX_WS_VA_GENERAL, &va));
   agx_ws_vk_device *vk;
   OK(agx_ws_vk_device_create(&vk));
   OK(agx_ws_vk_device_destroy(vk));
   int32_t r;
   FAILS(-EBADF, agx_ws_vk_device_check_status(vk, &r));
   struct agx_ws_fault_counts fc = {.struct_size = sizeof(fc)};
   FAILS(-EBADF, agx_ws_vk_device_get_fault_info(vk, &fc, NULL));
   agx_ws_sim_stream *s;
   OK(agx_ws_sim_stream_create(&s));
   OK(agx_ws_sim_stream_fill(s, c.data_va, 64, 0));
   uint8_t small[16];
   FAILS(-ENOSPC, agx_ws_sim_stream_write(s, small, sizeof(small), NULL));
   FAILS(-EINVAL, agx_ws_sim_stream_write(s, NULL, 4096, NULL));
   FAILS(-EINVAL, agx_ws_sim_stream_rmw(s, 0, 0, 0, 9));
   OK(agx_ws_sim_stream_destroy(s));
   FAILS(-EBADF, agx_ws_sim_stream_spin(s, 10));

   /* A device destroyed before its objects: they keep working. */
   agx_ws_device *dev2;
   OK(agx_ws_device_open("sim", &dev2));
   struct ctx c2;
   ctx_init(&c2, dev2, 1 << 20);
   uint64_t dst = ctx_alloc(&c2, 64);
   OK(agx_ws_sim_stream_create(&s));
   OK(agx_ws_sim_stream_fill(s, dst, 64, 0x09090909));
   struct agx_ws_render_desc d2 = render_desc(ctx_stream(&c2, s, NULL), NULL);
   agx_ws_cmdbuf *cb2;
   OK(agx_ws_cmdbuf_create(dev2, &cb2));
   OK(agx_ws_cmdbuf_add_render(cb2, &d2, NULL));
   OK(agx_ws_device_destroy(dev2));
   FAILS(-EBADF, agx_ws_device_destroy(dev2));
   agx_ws_job *j2;
   OK(agx_ws_queue_submit(c2.queue, cb2, NULL, &j2));
   CHECK(wait_job(j2).status == AGX_WS_JOB_COMPLETE);
   CHECK(all_bytes(ctx_cpu(&c2, dst), 64, 9));
   OK(agx_ws_job_destroy(j2));
   OK(agx_ws_cmdbuf_destroy(cb2));
   ctx_fini(&c2);

   /* The good objects still work after all that. */
   agx_ws_job *j;
   OK(agx_ws_queue_submit(c.queue, cb, NULL, &j));
   struct agx_ws_job_outcome o = {.struct_size = sizeof(o) + 1};
   FAILS(-EINVAL, agx_ws_job_wait(j, SEC, &o));
   o.struct_size = sizeof(o);
   OK(agx_ws_job_wait(j, SEC, &o));
   OK(agx_ws_job_destroy(j));
   FAILS(-EBADF, agx_ws_job_wait(j, SEC, &o));

   OK(agx_ws_cmdbuf_destroy(cb));
   ctx_fini(&c);
   OK(agx_ws_device_destroy(dev));
   FAILS(-EBADF, agx_ws_device_get_params(dev, &p));
   printf("bad_args: ok\n");
   return 0;
}
