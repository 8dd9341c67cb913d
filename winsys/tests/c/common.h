/*
 * Helpers of the C ABI tests: checks that print the failing expression and the library's last
 * error, and a "context" (VM, queue, a read-write data arena and a read-only code arena for the
 * simulator's command streams), as a Gallium context or a Vulkan queue would hold.
 */
#ifndef AGX_WS_TEST_COMMON_H
#define AGX_WS_TEST_COMMON_H

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agx_winsys.h"

#define SEC (10ull * 1000 * 1000 * 1000)

#define CHECK(cond)                                                                   \
   do {                                                                               \
      if (!(cond)) {                                                                  \
         fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__,     \
                 __LINE__, #cond, agx_ws_last_error());                               \
         exit(1);                                                                     \
      }                                                                               \
   } while (0)

/* A call that must succeed. */
#define OK(call)                                                                      \
   do {                                                                               \
      int ok_r_ = (call);                                                             \
      if (ok_r_ != 0) {                                                               \
         fprintf(stderr, "%s:%d: %s returned %d (%s): %s\n", __FILE__, __LINE__,      \
                 #call, ok_r_, strerror(ok_r_ < 0 ? -ok_r_ : 0), agx_ws_last_error()); \
         exit(1);                                                                     \
      }                                                                               \
   } while (0)

/* A call that must fail with exactly `err` (a negative errno). */
#define FAILS(err, call)                                                              \
   do {                                                                               \
      int fails_r_ = (call);                                                          \
      if (fails_r_ != (err)) {                                                        \
         fprintf(stderr, "%s:%d: %s returned %d, expected %d (%s)\n", __FILE__,       \
                 __LINE__, #call, fails_r_, (err), #err);                             \
         exit(1);                                                                     \
      }                                                                               \
   } while (0)

struct ctx {
   agx_ws_device *dev;
   agx_ws_vm *vm;
   agx_ws_queue *queue;
   agx_ws_bo *data, *code;
   uint64_t data_va, code_va, data_size, code_size, data_next, code_next;
   uint8_t *data_map, *code_map;
};

static inline void
ctx_init(struct ctx *c, agx_ws_device *dev, uint64_t data_size)
{
   memset(c, 0, sizeof(*c));
   c->dev = dev;
   OK(agx_ws_vm_create(dev, &c->vm));
   OK(agx_ws_queue_create(c->vm, AGX_WS_PRIORITY_MEDIUM, &c->queue));
   void *map;
   OK(agx_ws_bo_create(dev, data_size, AGX_WS_BO_WRITEBACK, NULL, &c->data));
   OK(agx_ws_bo_map(c->data, &map, &c->data_size));
   c->data_map = map;
   OK(agx_ws_vm_bind(c->vm, c->data, AGX_WS_ACCESS_READ | AGX_WS_ACCESS_WRITE,
                     AGX_WS_VA_GENERAL, &c->data_va));
   OK(agx_ws_bo_create(dev, 1 << 20, AGX_WS_BO_WRITEBACK, NULL, &c->code));
   OK(agx_ws_bo_map(c->code, &map, &c->code_size));
   c->code_map = map;
   OK(agx_ws_vm_bind(c->vm, c->code, AGX_WS_ACCESS_READ, AGX_WS_VA_GENERAL, &c->code_va));
}

static inline void
ctx_fini(struct ctx *c)
{
   OK(agx_ws_queue_destroy(c->queue));
   OK(agx_ws_bo_destroy(c->data));
   OK(agx_ws_bo_destroy(c->code));
   OK(agx_ws_vm_destroy(c->vm));
   memset(c, 0, sizeof(*c));
}

/* `len` bytes of data memory, 64-byte aligned: its GPU VA. */
static inline uint64_t
ctx_alloc(struct ctx *c, uint64_t len)
{
   uint64_t off = (c->data_next + 63) & ~63ull;
   CHECK(off + len <= c->data_size);
   c->data_next = off + len;
   return c->data_va + off;
}

/* The CPU address of data memory at GPU VA `va`. */
static inline uint8_t *
ctx_cpu(struct ctx *c, uint64_t va)
{
   CHECK(va >= c->data_va && va < c->data_va + c->data_size);
   return c->data_map + (va - c->data_va);
}

#ifdef AGX_WS_SIM /* the helpers below drive the simulated GPU's command language */

/* Writes the stream into code memory (and destroys it); returns its GPU VA and size. */
static inline uint64_t
ctx_stream(struct ctx *c, agx_ws_sim_stream *s, uint64_t *size)
{
   uint64_t need, written;
   OK(agx_ws_sim_stream_get_size(s, &need));
   uint64_t off = (c->code_next + 63) & ~63ull;
   CHECK(off + need <= c->code_size);
   OK(agx_ws_sim_stream_write(s, c->code_map + off, c->code_size - off, &written));
   CHECK(written == need);
   c->code_next = off + need;
   OK(agx_ws_sim_stream_destroy(s));
   if (size)
      *size = need;
   return c->code_va + off;
}

static inline struct agx_ws_render_desc
render_desc(uint64_t stream_va, const struct agx_ws_render_access *access)
{
   struct agx_ws_render_desc d;
   memset(&d, 0, sizeof(d));
   d.struct_size = sizeof(d);
   d.width_px = 64;
   d.height_px = 64;
   d.layers = 1;
   d.samples = 1;
   d.utile_width_px = 16;
   d.utile_height_px = 16;
   d.sample_size_bytes = 4;
   d.vdm_ctrl_stream_base = stream_va;
   d.access = access;
   return d;
}

/* A render pass running stream `s` (destroyed), described by `access` (may be NULL), submitted
 * alone; returns the job. */
static inline agx_ws_job *
submit_render(struct ctx *c, agx_ws_sim_stream *s, const struct agx_ws_render_access *access,
              const struct agx_ws_range *attachment)
{
   struct agx_ws_render_desc d = render_desc(ctx_stream(c, s, NULL), access);
   if (attachment) {
      d.fragment_attachment_count = 1;
      d.fragment_attachments = attachment;
   }
   agx_ws_cmdbuf *cb;
   agx_ws_job *job;
   OK(agx_ws_cmdbuf_create(c->dev, &cb));
   uint32_t index = 99;
   OK(agx_ws_cmdbuf_add_render(cb, &d, &index));
   CHECK(index == 0);
   OK(agx_ws_queue_submit(c->queue, cb, NULL, &job));
   OK(agx_ws_cmdbuf_destroy(cb));
   return job;
}

/* A clear pass (load CLEAR, store STORE: restartable) filling `len` bytes at `dst` with
 * `pattern`, after `spin_ns` of GPU time; submitted alone, returns the job. */
static inline agx_ws_job *
submit_clear_after(struct ctx *c, uint64_t dst, uint64_t len, uint32_t pattern, uint64_t spin_ns)
{
   agx_ws_sim_stream *s;
   OK(agx_ws_sim_stream_create(&s));
   if (spin_ns)
      OK(agx_ws_sim_stream_spin(s, spin_ns));
   OK(agx_ws_sim_stream_fill(s, dst, len, pattern));
   struct agx_ws_color_attachment color = {
      .range = {dst, len},
      .load = AGX_WS_LOAD_OP_CLEAR,
      .store = AGX_WS_STORE_OP_STORE,
   };
   struct agx_ws_render_access access = {
      .struct_size = sizeof(access),
      .color_count = 1,
      .colors = &color,
   };
   struct agx_ws_range att = {dst, len};
   return submit_render(c, s, &access, &att);
}

static inline agx_ws_job *
submit_clear(struct ctx *c, uint64_t dst, uint64_t len, uint32_t pattern)
{
   return submit_clear_after(c, dst, len, pattern, 0);
}

static inline struct agx_ws_job_outcome
wait_job(agx_ws_job *job)
{
   struct agx_ws_job_outcome o;
   memset(&o, 0xab, sizeof(o));
   o.struct_size = sizeof(o);
   OK(agx_ws_job_wait(job, SEC, &o));
   return o;
}

static inline int
all_bytes(const uint8_t *p, uint64_t len, uint8_t v)
{
   for (uint64_t i = 0; i < len; i++)
      if (p[i] != v)
         return 0;
   return 1;
}

#endif /* AGX_WS_SIM */

#endif
