/*
 * A Gallium-style flow: two GL contexts on two files of one GPU (kill-inflight policy, as
 * upstream recovers today). Context A renders; while A has a pass in flight, a fault is
 * injected in context B. Then get_device_reset_status-style queries: A is innocent once, then
 * NO_RESET; B guilty once; the reset callbacks run once each; both contexts are recreated and
 * render again.
 */
#include "common.h"

struct cb_record {
   int calls;
   uint32_t status;
};

static void
on_reset(void *data, uint32_t status)
{
   struct cb_record *r = data;
   r->calls++;
   r->status = status;
}

struct gl_context {
   struct ctx c;
   agx_ws_reset_tracker *tracker;
   struct cb_record cb;
};

static void
gl_context_create(struct gl_context *g, agx_ws_device *dev)
{
   memset(g, 0, sizeof(*g));
   ctx_init(&g->c, dev, 8 << 20);
   OK(agx_ws_reset_tracker_create(&g->tracker));
   OK(agx_ws_reset_tracker_set_callback(g->tracker, on_reset, &g->cb));
   OK(agx_ws_queue_set_reset_tracker(g->c.queue, g->tracker));
}

static void
gl_context_destroy(struct gl_context *g)
{
   ctx_fini(&g->c);
   OK(agx_ws_reset_tracker_destroy(g->tracker));
}

static uint32_t
reset_status(struct gl_context *g)
{
   uint32_t s = 99;
   OK(agx_ws_reset_tracker_get_status(g->tracker, &s));
   return s;
}

/* A few clear passes that must complete, checked in memory. */
static void
render_frames(struct gl_context *g, uint8_t first)
{
   for (uint8_t i = 0; i < 3; i++) {
      uint64_t dst = ctx_alloc(&g->c, 4096);
      uint8_t v = first + i;
      agx_ws_job *job = submit_clear(&g->c, dst, 4096, v * 0x01010101u);
      struct agx_ws_job_outcome o = wait_job(job);
      CHECK(o.status == AGX_WS_JOB_COMPLETE);
      CHECK(o.guilt == AGX_WS_GUILT_NONE);
      CHECK(o.reset_status == AGX_WS_NO_RESET);
      CHECK(o.vk_result == 0);
      CHECK(all_bytes(ctx_cpu(&g->c, dst), 4096, v));
      OK(agx_ws_job_destroy(job));
   }
   CHECK(reset_status(g) == AGX_WS_NO_RESET);
}

int
main(void)
{
   agx_ws_device *dev, *peer;
   OK(agx_ws_device_open("sim:policy=kill-inflight", &dev));
   OK(agx_ws_sim_open_peer(dev, &peer));

   struct agx_ws_params p = {.struct_size = sizeof(p)};
   OK(agx_ws_device_get_params(dev, &p));
   CHECK(p.backend == AGX_WS_BACKEND_SIMULATED);
   CHECK(p.fault_ext == 1);
   CHECK(p.recovery_policy == AGX_WS_RECOVERY_KILL_INFLIGHT);

   struct gl_context a, b;
   gl_context_create(&a, dev);
   gl_context_create(&b, peer);
   render_frames(&a, 1);
   render_frames(&b, 11);

   /* Put a 2 MiB pass of A (tens of microseconds of GPU time) in flight together with B's
    * work, whose first command runs 100 us and has a fault injected after 10 us. */
   OK(agx_ws_sim_hold(dev));
   uint64_t big = ctx_alloc(&a.c, 2 << 20);
   agx_ws_job *victim = submit_clear(&a.c, big, 2 << 20, 0x40404040);
   /* Queued behind the victim: cancelled when A's queue is banned. */
   agx_ws_job *behind = submit_clear(&a.c, ctx_alloc(&a.c, 4096), 4096, 0x41414141);
   OK(agx_ws_sim_inject(b.c.queue, AGX_WS_INJECT_FAULT, 10000));
   agx_ws_job *culprit =
      submit_clear_after(&b.c, ctx_alloc(&b.c, 4096), 4096, 0x07070707, 100000);
   OK(agx_ws_sim_release(dev));

   /* Gallium cleans up whichever batch signalled first: the cancelled one may come before the
    * killed one. It never ran; A is innocent all the same, not unknown. */
   struct agx_ws_job_outcome bo = wait_job(behind);
   CHECK(bo.status == AGX_WS_JOB_CANCELLED);
   CHECK(bo.reset_status == AGX_WS_INNOCENT_CONTEXT_RESET);
   OK(agx_ws_job_destroy(behind));

   struct agx_ws_job_outcome vo = wait_job(victim);
   CHECK(vo.status == AGX_WS_JOB_KILLED);
   CHECK(vo.guilt == AGX_WS_GUILT_INNOCENT);
   CHECK(vo.reset_status == AGX_WS_INNOCENT_CONTEXT_RESET);
   CHECK(vo.vk_result == -4);
   struct agx_ws_job_outcome co = wait_job(culprit);
   CHECK(co.status == AGX_WS_JOB_FAULTED);
   CHECK(co.guilt == AGX_WS_GUILT_GUILTY);
   CHECK(co.reset_status == AGX_WS_GUILTY_CONTEXT_RESET);
   CHECK(co.has_fault && co.fault.kind == AGX_WS_FAULT_INJECTED);

   /* The kernel's view agrees. */
   struct agx_ws_queue_state qs = {.struct_size = sizeof(qs)};
   OK(agx_ws_queue_get_state(a.c.queue, &qs));
   CHECK(qs.banned && qs.guilt == AGX_WS_GUILT_INNOCENT && qs.reset_count >= 1);
   OK(agx_ws_queue_get_state(b.c.queue, &qs));
   CHECK(qs.banned && qs.guilt == AGX_WS_GUILT_GUILTY);

   /* get_device_reset_status: reported once, then NO_RESET; callbacks ran once. */
   bool lost = false;
   OK(agx_ws_reset_tracker_is_lost(a.tracker, &lost));
   CHECK(lost);
   CHECK(reset_status(&a) == AGX_WS_INNOCENT_CONTEXT_RESET);
   CHECK(reset_status(&a) == AGX_WS_NO_RESET);
   CHECK(reset_status(&b) == AGX_WS_GUILTY_CONTEXT_RESET);
   CHECK(reset_status(&b) == AGX_WS_NO_RESET);
   CHECK(a.cb.calls == 1 && a.cb.status == AGX_WS_INNOCENT_CONTEXT_RESET);
   CHECK(b.cb.calls == 1 && b.cb.status == AGX_WS_GUILTY_CONTEXT_RESET);

   /* The lost contexts refuse work; a refused submit changes nothing latched. */
   agx_ws_cmdbuf *cb;
   agx_ws_job *j;
   OK(agx_ws_cmdbuf_create(dev, &cb));
   agx_ws_sim_stream *s;
   OK(agx_ws_sim_stream_create(&s));
   OK(agx_ws_sim_stream_fill(s, ctx_alloc(&a.c, 64), 64, 0));
   struct agx_ws_render_desc d = render_desc(ctx_stream(&a.c, s, NULL), NULL);
   OK(agx_ws_cmdbuf_add_render(cb, &d, NULL));
   FAILS(-ECANCELED, agx_ws_queue_submit(a.c.queue, cb, NULL, &j));
   CHECK(reset_status(&a) == AGX_WS_NO_RESET);
   CHECK(a.cb.calls == 1);
   OK(agx_ws_cmdbuf_destroy(cb));

   OK(agx_ws_job_destroy(victim));
   OK(agx_ws_job_destroy(culprit));
   OK(agx_ws_vm_unbind(a.c.vm, a.c.data_va));
   gl_context_destroy(&a);
   gl_context_destroy(&b);

   /* The application makes new contexts: they work, with no reset to report. */
   gl_context_create(&a, dev);
   gl_context_create(&b, peer);
   render_frames(&a, 21);
   render_frames(&b, 31);
   CHECK(a.cb.calls == 0 && b.cb.calls == 0);
   gl_context_destroy(&a);
   gl_context_destroy(&b);

   OK(agx_ws_device_destroy(peer));
   OK(agx_ws_device_destroy(dev));
   printf("gallium_reset: ok\n");
   return 0;
}
