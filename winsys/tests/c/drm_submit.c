/*
 * Mesa's path: a driver that lays out its own VM, encodes its own cmdbufs (the uAPI's
 * drm_asahi_cmd_* payloads from asahi_drm.h, attachment commands, barriers) and owns its sync
 * objects hands them to agx_ws_queue_submit_drm with an access description per hardware
 * command (replay policy):
 *
 * - a wrapped VM carries queues but no library allocation, and outlives its wrapper;
 * - a Gallium-shaped batch (compute, then fragment attachments + render) completes, signals the
 *   caller's binary syncobj and timeline point, and writes memory;
 * - described restartable work in flight during another file's fault is replayed (memory right,
 *   no reset); the same work undescribed is killed (innocent reset, queue banned, -ECANCELED);
 * - malformed submits are refused with -EINVAL and change nothing.
 */
#include <drm.h>

#include "asahi_drm.h"
#include "common.h"

/* The simulator's command streams live in the caller's code memory; the payloads point at
 * them exactly as Mesa's point at VDM/CDM streams. */
struct drm_cmdbuf {
   uint8_t bytes[4096];
   uint32_t size;
};

static void
emit(struct drm_cmdbuf *b, uint16_t type, uint16_t vdm, uint16_t cdm, const void *payload,
     uint16_t size)
{
   struct drm_asahi_cmd_header h = {
      .cmd_type = type, .size = size, .vdm_barrier = vdm, .cdm_barrier = cdm};
   CHECK(b->size + sizeof(h) + size <= sizeof(b->bytes));
   memcpy(b->bytes + b->size, &h, sizeof(h));
   memcpy(b->bytes + b->size + sizeof(h), payload, size);
   b->size += sizeof(h) + size;
}

static void
emit_render(struct drm_cmdbuf *b, uint64_t stream_va, uint64_t att_va, uint64_t att_size,
            uint16_t vdm, uint16_t cdm)
{
   struct drm_asahi_attachment att = {.pointer = att_va, .size = att_size};
   emit(b, DRM_ASAHI_SET_FRAGMENT_ATTACHMENTS, DRM_ASAHI_BARRIER_NONE, DRM_ASAHI_BARRIER_NONE,
        &att, sizeof(att));
   struct drm_asahi_cmd_render r = {
      .vdm_ctrl_stream_base = stream_va,
      .width_px = 64,
      .height_px = 64,
      .layers = 1,
      .samples = 1,
      .utile_width_px = 16,
      .utile_height_px = 16,
      .sample_size_B = 4,
   };
   emit(b, DRM_ASAHI_CMD_RENDER, vdm, cdm, &r, sizeof(r));
}

static void
emit_compute(struct drm_cmdbuf *b, uint64_t stream_va, uint64_t stream_size)
{
   struct drm_asahi_cmd_compute c = {
      .cdm_ctrl_stream_base = stream_va,
      .cdm_ctrl_stream_end = stream_va + stream_size,
   };
   emit(b, DRM_ASAHI_CMD_COMPUTE, 0, 0, &c, sizeof(c));
}

static uint64_t
fill_stream(struct ctx *c, uint64_t spin_ns, uint64_t dst, uint64_t len, uint32_t pattern,
            uint64_t *size)
{
   agx_ws_sim_stream *s;
   OK(agx_ws_sim_stream_create(&s));
   if (spin_ns)
      OK(agx_ws_sim_stream_spin(s, spin_ns));
   OK(agx_ws_sim_stream_fill(s, dst, len, pattern));
   return ctx_stream(c, s, size);
}

/* A clear-and-store pass over [dst, dst + len): restartable. */
struct clear_access {
   struct agx_ws_color_attachment color;
   struct agx_ws_render_access access;
};

static void
clear_access(struct clear_access *a, uint64_t dst, uint64_t len)
{
   memset(a, 0, sizeof(*a));
   a->color.range = (struct agx_ws_range){dst, len};
   a->color.load = AGX_WS_LOAD_OP_CLEAR;
   a->color.store = AGX_WS_STORE_OP_STORE;
   a->access.struct_size = sizeof(a->access);
   a->access.color_count = 1;
   a->access.colors = &a->color;
}

static struct agx_ws_drm_submit
drm_submit(const struct drm_cmdbuf *b, const struct agx_ws_drm_sync *syncs, uint32_t in,
           uint32_t out, const struct agx_ws_command_access *commands, uint32_t count)
{
   return (struct agx_ws_drm_submit){
      .struct_size = sizeof(struct agx_ws_drm_submit),
      .in_sync_count = in,
      .out_sync_count = out,
      .command_count = count,
      .syncs = syncs,
      .cmdbuf = b->bytes,
      .cmdbuf_size = b->size,
      .commands = commands,
   };
}

/* The driver's context: its own VM (made here through the library, then only named by id),
 * wrapped; a queue on the wrapper. */
struct driver_ctx {
   struct ctx c;          /* the owned VM, memory bound in it, and its own queue (unused) */
   agx_ws_vm *wrapped;
   agx_ws_queue *queue;   /* on the wrapped VM */
   agx_ws_reset_tracker *tracker;
};

/* Wraps the caller's VM (by id, as Mesa's agx_device knows it) and creates a queue on it. */
static void
driver_wrap(struct driver_ctx *d)
{
   agx_ws_device *dev = d->c.dev;
   uint32_t vm_id = 0;
   OK(agx_ws_vm_get_id(d->c.vm, &vm_id));
   CHECK(vm_id != 0);

   /* The USC window as Mesa places it: the first 4 GiB boundary at or above vm_start. */
   struct agx_ws_params p = {.struct_size = sizeof(p)};
   OK(agx_ws_device_get_params(dev, &p));
   uint64_t usc = (p.vm_start + 0xffffffffull) & ~0xffffffffull;
   if (!usc)
      usc = 1ull << 32;

   FAILS(-EINVAL, agx_ws_vm_wrap(dev, vm_id, usc + 1, &d->wrapped));
   OK(agx_ws_vm_wrap(dev, vm_id, usc, &d->wrapped));
   OK(agx_ws_queue_create(d->wrapped, AGX_WS_PRIORITY_MEDIUM, &d->queue));
   uint32_t qid = 0, own_qid = 0;
   OK(agx_ws_queue_get_id(d->queue, &qid));
   OK(agx_ws_queue_get_id(d->c.queue, &own_qid));
   CHECK(qid != 0 && qid != own_qid);

   /* The wrapped VM's addresses are the caller's: the library allocates none. */
   uint64_t va;
   FAILS(-EINVAL,
         agx_ws_vm_bind(d->wrapped, d->c.data, AGX_WS_ACCESS_READ, AGX_WS_VA_GENERAL, &va));
   OK(agx_ws_reset_tracker_create(&d->tracker));
   OK(agx_ws_queue_set_reset_tracker(d->queue, d->tracker));
}

static void
driver_unwrap(struct driver_ctx *d)
{
   OK(agx_ws_queue_destroy(d->queue));
   OK(agx_ws_vm_destroy(d->wrapped));
   OK(agx_ws_reset_tracker_destroy(d->tracker));
}

static void
driver_ctx_init(struct driver_ctx *d, agx_ws_device *dev)
{
   memset(d, 0, sizeof(*d));
   ctx_init(&d->c, dev, 8 << 20);
   driver_wrap(d);
}

static void
driver_ctx_fini(struct driver_ctx *d)
{
   driver_unwrap(d);
   ctx_fini(&d->c);
}

static uint32_t
reset_status(struct driver_ctx *d)
{
   uint32_t s = 99;
   OK(agx_ws_reset_tracker_get_status(d->tracker, &s));
   return s;
}

/* A Gallium batch: compute (overwriting one range) then a render pass clearing another. */
static void
gallium_batch(struct driver_ctx *d)
{
   struct ctx *c = &d->c;
   uint64_t cdst = ctx_alloc(c, 4096), rdst = ctx_alloc(c, 4096), csize;
   uint64_t cs = fill_stream(c, 0, cdst, 4096, 0x11111111, &csize);
   uint64_t rs = fill_stream(c, 0, rdst, 4096, 0x22222222, NULL);
   struct drm_cmdbuf b = {.size = 0};
   emit_compute(&b, cs, csize);
   emit_render(&b, rs, rdst, 4096, DRM_ASAHI_BARRIER_NONE, 1);

   struct agx_ws_range over = {cdst, 4096};
   struct agx_ws_dispatch dispatch = {.overwrite_count = 1, .overwrites = &over};
   struct agx_ws_compute_access compute = {
      .struct_size = sizeof(compute), .dispatch_count = 1, .dispatches = &dispatch};
   struct clear_access render;
   clear_access(&render, rdst, 4096);
   struct agx_ws_command_access commands[2] = {{.compute = &compute},
                                               {.render = &render.access}};

   /* The driver's own sync objects: a binary out-fence and a point on a timeline. */
   agx_ws_syncobj *binary, *timeline;
   OK(agx_ws_syncobj_create(c->dev, 0, &binary));
   OK(agx_ws_syncobj_create(c->dev, 0, &timeline));
   uint32_t hb, ht;
   OK(agx_ws_syncobj_get_handle(binary, &hb));
   OK(agx_ws_syncobj_get_handle(timeline, &ht));
   struct agx_ws_drm_sync syncs[2] = {
      {.sync_type = DRM_ASAHI_SYNC_SYNCOBJ, .handle = hb},
      {.sync_type = DRM_ASAHI_SYNC_TIMELINE_SYNCOBJ, .handle = ht, .timeline_value = 5},
   };
   struct agx_ws_drm_submit sub = drm_submit(&b, syncs, 0, 2, commands, 2);
   agx_ws_job *job;
   OK(agx_ws_queue_submit_drm(d->queue, &sub, &job));
   struct agx_ws_job_outcome o = wait_job(job);
   CHECK(o.status == AGX_WS_JOB_COMPLETE && o.guilt == AGX_WS_GUILT_NONE);
   OK(agx_ws_syncobj_wait(binary, 0, SEC, 0));
   OK(agx_ws_syncobj_wait(timeline, 5, SEC, 0));
   CHECK(all_bytes(ctx_cpu(c, cdst), 4096, 0x11));
   CHECK(all_bytes(ctx_cpu(c, rdst), 4096, 0x22));
   /* A second poll of a finished job: the same outcome. */
   struct agx_ws_job_outcome again = {.struct_size = sizeof(again)};
   OK(agx_ws_job_wait(job, 0, &again));
   CHECK(again.status == AGX_WS_JOB_COMPLETE);
   OK(agx_ws_job_destroy(job));
   OK(agx_ws_syncobj_destroy(binary));
   OK(agx_ws_syncobj_destroy(timeline));
}

/* A long restartable-or-not pass of `d` in flight while `peer`'s queue faults. */
static struct agx_ws_job_outcome
victim_of_fault(struct driver_ctx *d, struct ctx *peer, int describe, uint64_t *dst)
{
   struct ctx *c = &d->c;
   *dst = ctx_alloc(c, 1 << 20);
   uint64_t rs = fill_stream(c, 200000, *dst, 1 << 20, 0x5a5a5a5a, NULL);
   struct drm_cmdbuf b = {.size = 0};
   emit_render(&b, rs, *dst, 1 << 20, 0, 0);
   struct clear_access render;
   clear_access(&render, *dst, 1 << 20);
   struct agx_ws_command_access cmd = {.render = &render.access};
   struct agx_ws_drm_submit sub = drm_submit(&b, NULL, 0, 0, &cmd, describe ? 1 : 0);

   OK(agx_ws_sim_hold(c->dev));
   agx_ws_job *victim;
   OK(agx_ws_queue_submit_drm(d->queue, &sub, &victim));
   OK(agx_ws_sim_inject(peer->queue, AGX_WS_INJECT_FAULT, 10000));
   agx_ws_job *culprit = submit_clear_after(peer, ctx_alloc(peer, 4096), 4096, 0x07070707,
                                            100000);
   OK(agx_ws_sim_release(c->dev));
   struct agx_ws_job_outcome co = wait_job(culprit);
   CHECK(co.status == AGX_WS_JOB_FAULTED && co.guilt == AGX_WS_GUILT_GUILTY);
   OK(agx_ws_job_destroy(culprit));
   struct agx_ws_job_outcome o = wait_job(victim);
   OK(agx_ws_job_destroy(victim));
   return o;
}

static void
refused(struct driver_ctx *d)
{
   struct ctx *c = &d->c;
   uint64_t dst = ctx_alloc(c, 4096);
   uint64_t rs = fill_stream(c, 0, dst, 4096, 0x33333333, NULL);
   struct drm_cmdbuf b = {.size = 0};
   emit_render(&b, rs, dst, 4096, 0, 0);
   struct clear_access render;
   clear_access(&render, dst, 4096);
   struct agx_ws_command_access cmd = {.render = &render.access};
   struct agx_ws_command_access wrong = {.compute = (const void *)&render.access};
   struct agx_ws_command_access two[2] = {cmd, cmd};
   agx_ws_syncobj *out;
   OK(agx_ws_syncobj_create(c->dev, 0, &out));
   uint32_t h;
   OK(agx_ws_syncobj_get_handle(out, &h));
   struct agx_ws_drm_sync sync = {.sync_type = DRM_ASAHI_SYNC_SYNCOBJ, .handle = h};
   agx_ws_job *job = NULL;

   struct agx_ws_drm_submit sub = drm_submit(&b, &sync, 0, 1, two, 2);
   FAILS(-EINVAL, agx_ws_queue_submit_drm(d->queue, &sub, &job));
   sub = drm_submit(&b, &sync, 0, 1, &wrong, 1);
   FAILS(-EINVAL, agx_ws_queue_submit_drm(d->queue, &sub, &job));
   struct agx_ws_render_access bad = render.access;
   bad.struct_size = 4;
   struct agx_ws_command_access bad_cmd = {.render = &bad};
   sub = drm_submit(&b, &sync, 0, 1, &bad_cmd, 1);
   FAILS(-EINVAL, agx_ws_queue_submit_drm(d->queue, &sub, &job));
   sub = drm_submit(&b, &sync, 0, 1, &cmd, 1);
   sub.cmdbuf_size -= 8;
   FAILS(-EINVAL, agx_ws_queue_submit_drm(d->queue, &sub, &job));
   sub = drm_submit(&b, &sync, 0, 1, &cmd, 1);
   sub.struct_size = 8;
   FAILS(-EINVAL, agx_ws_queue_submit_drm(d->queue, &sub, &job));

   /* Job infos are the library's: a driver cmdbuf holding one is refused. */
   struct drm_cmdbuf own = {.size = 0};
   uint8_t info[24] = {0};
   emit(&own, 0x8000, DRM_ASAHI_BARRIER_NONE, DRM_ASAHI_BARRIER_NONE, info, sizeof(info));
   memcpy(own.bytes + own.size, b.bytes, b.size);
   own.size += b.size;
   sub = drm_submit(&own, &sync, 0, 1, &cmd, 1);
   FAILS(-EINVAL, agx_ws_queue_submit_drm(d->queue, &sub, &job));
   CHECK(job == NULL);

   /* None of it reached the kernel: the out-fence was never attached, and memory is as it was. */
   int32_t status = 99;
   OK(agx_ws_syncobj_status(out, 0, &status));
   CHECK(status == AGX_WS_FENCE_PENDING);
   CHECK(all_bytes(ctx_cpu(c, dst), 4096, 0));

   /* The well-formed submit still goes through. */
   sub = drm_submit(&b, &sync, 0, 1, &cmd, 1);
   OK(agx_ws_queue_submit_drm(d->queue, &sub, &job));
   CHECK(wait_job(job).status == AGX_WS_JOB_COMPLETE);
   CHECK(all_bytes(ctx_cpu(c, dst), 4096, 0x33));
   OK(agx_ws_job_destroy(job));
   OK(agx_ws_syncobj_destroy(out));
}

int
main(void)
{
   agx_ws_device *dev, *peer_dev;
   OK(agx_ws_device_open("sim:policy=replay", &dev));
   OK(agx_ws_sim_open_peer(dev, &peer_dev));
   struct driver_ctx d;
   struct ctx peer;
   driver_ctx_init(&d, dev);
   ctx_init(&peer, peer_dev, 1 << 20);

   gallium_batch(&d);
   refused(&d);

   /* Described restartable work survives another file's fault: replayed, memory right. */
   uint64_t dst;
   struct agx_ws_job_outcome o = victim_of_fault(&d, &peer, 1, &dst);
   CHECK(o.status == AGX_WS_JOB_REPLAYED && o.replay_count >= 1);
   CHECK(o.guilt == AGX_WS_GUILT_NONE && o.reset_status == AGX_WS_NO_RESET);
   CHECK(all_bytes(ctx_cpu(&d.c, dst), 1 << 20, 0x5a));
   CHECK(reset_status(&d) == AGX_WS_NO_RESET);
   ctx_fini(&peer);
   ctx_init(&peer, peer_dev, 1 << 20);

   /* The same work undescribed is killed: an innocent reset, and the queue is banned. */
   o = victim_of_fault(&d, &peer, 0, &dst);
   CHECK(o.status == AGX_WS_JOB_KILLED && o.guilt == AGX_WS_GUILT_INNOCENT);
   CHECK(reset_status(&d) == AGX_WS_INNOCENT_CONTEXT_RESET);
   struct drm_cmdbuf b = {.size = 0};
   emit_render(&b, fill_stream(&d.c, 0, dst, 64, 0, NULL), dst, 64, 0, 0);
   struct agx_ws_drm_submit sub = drm_submit(&b, NULL, 0, 0, NULL, 0);
   agx_ws_job *job;
   FAILS(-ECANCELED, agx_ws_queue_submit_drm(d.queue, &sub, &job));

   /* The wrapper goes, the caller's VM stays (its memory still bound): a new wrapper of the
    * same VM carries a working queue. */
   driver_unwrap(&d);
   driver_wrap(&d);
   gallium_batch(&d);
   driver_ctx_fini(&d);

   ctx_fini(&peer);
   OK(agx_ws_device_destroy(peer_dev));
   OK(agx_ws_device_destroy(dev));
   printf("drm_submit: ok\n");
   return 0;
}
