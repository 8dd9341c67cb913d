/*
 * A Vulkan-style flow: a VkDevice's work faults (guilty); the device is lost for ever (every
 * later status, wait and submit keeps returning VK_ERROR_DEVICE_LOST), and
 * vkGetDeviceFaultInfoEXT's report names the faulting address and access type;
 * vkGetDeviceFaultReportsKHR's log has the fault once, as one DEVICE_LOST group with the
 * address (MEMORY_ADDRESS), and nothing after it.
 */
#include "common.h"

#define VK_SUCCESS 0
#define VK_TIMEOUT 2
#define VK_ERROR_DEVICE_LOST (-4)

static const uint64_t HOLE = 0x10000000000ull; /* agx_sim::config::UNMAPPED_VA: never mapped */

static int32_t
check_status(agx_ws_vk_device *vk)
{
   int32_t r = 99;
   OK(agx_ws_vk_device_check_status(vk, &r));
   return r;
}

int
main(void)
{
   agx_ws_device *dev;
   agx_ws_vk_device *vk;
   OK(agx_ws_device_open("sim", &dev));
   OK(agx_ws_vk_device_create(&vk));
   struct ctx c;
   ctx_init(&c, dev, 1 << 20);
   uint64_t submission = 0;
   int32_t r;

   /* Submission 1 completes. */
   agx_ws_job *ok_job = submit_clear(&c, ctx_alloc(&c, 256), 256, 0x01010101);
   OK(agx_ws_vk_device_wait_job(vk, ok_job, ++submission, SEC, &r));
   CHECK(r == VK_SUCCESS);
   CHECK(check_status(vk) == VK_SUCCESS);
   struct agx_ws_fault_counts counts = {.struct_size = sizeof(counts)};
   OK(agx_ws_vk_device_get_fault_info(vk, &counts, NULL));
   CHECK(counts.address_info_count == 0 && counts.vendor_info_count == 0);

   /* Submission 2 writes to an unmapped address. */
   agx_ws_sim_stream *s;
   OK(agx_ws_sim_stream_create(&s));
   OK(agx_ws_sim_stream_store(s, HOLE + 8, 1));
   struct agx_ws_render_access access = {.struct_size = sizeof(access)};
   struct agx_ws_render_desc d = render_desc(ctx_stream(&c, s, NULL), &access);
   agx_ws_cmdbuf *cb;
   agx_ws_job *bad_job;
   OK(agx_ws_cmdbuf_create(dev, &cb));
   OK(agx_ws_cmdbuf_add_render(cb, &d, NULL));
   OK(agx_ws_queue_submit(c.queue, cb, NULL, &bad_job));
   ++submission;
   OK(agx_ws_vk_device_wait_job(vk, bad_job, submission, SEC, &r));
   CHECK(r == VK_ERROR_DEVICE_LOST);
   struct agx_ws_job_outcome o = wait_job(bad_job);
   CHECK(o.status == AGX_WS_JOB_FAULTED && o.guilt == AGX_WS_GUILT_GUILTY);
   CHECK(o.has_fault && o.fault.kind == AGX_WS_FAULT_UNMAPPED && o.fault.write);
   CHECK(o.fault.has_address && o.fault.address == HOLE + 8);
   CHECK(o.vk_result == VK_ERROR_DEVICE_LOST);

   /* The job's out-fence carries the error, as a sync_file shows it. */
   int fd = -1;
   int32_t st = 0;
   OK(agx_ws_job_export_sync_file(bad_job, &fd));
   OK(agx_ws_sync_file_status(dev, fd, &st));
   CHECK(st == -EIO);
   close(fd);

   /* Sticky: every later query keeps returning lost. */
   for (int i = 0; i < 3; i++)
      CHECK(check_status(vk) == VK_ERROR_DEVICE_LOST);
   OK(agx_ws_vk_device_wait_job(vk, ok_job, 1, 0, &r));
   CHECK(r == VK_ERROR_DEVICE_LOST);
   /* The banned queue refuses the next submit: lost too. */
   agx_ws_job *refused = NULL;
   int err = agx_ws_queue_submit(c.queue, cb, NULL, &refused);
   CHECK(err == -ECANCELED && refused == NULL);
   OK(agx_ws_vk_device_observe_submit_error(vk, err, ++submission, &r));
   CHECK(r == VK_ERROR_DEVICE_LOST);
   /* Even work that runs fine elsewhere on the device reports lost. */
   struct ctx fresh;
   ctx_init(&fresh, dev, 1 << 20);
   agx_ws_job *later = submit_clear(&fresh, ctx_alloc(&fresh, 64), 64, 0x05050505);
   OK(agx_ws_vk_device_wait_job(vk, later, ++submission, SEC, &r));
   CHECK(r == VK_ERROR_DEVICE_LOST);
   CHECK(wait_job(later).status == AGX_WS_JOB_COMPLETE);
   CHECK(check_status(vk) == VK_ERROR_DEVICE_LOST);

   /* VK_EXT_device_fault, two calls; the first fault's report is kept. */
   OK(agx_ws_vk_device_get_fault_info(vk, &counts, NULL));
   CHECK(counts.address_info_count == 1);
   CHECK(counts.vendor_info_count >= 4);
   CHECK(counts.vendor_binary_size == 0);
   struct agx_ws_fault_address_info addr[4];
   struct agx_ws_fault_vendor_info vendor[8];
   struct agx_ws_fault_info info = {
      .struct_size = sizeof(info),
      .address_infos = addr,
      .vendor_infos = vendor,
   };
   struct agx_ws_fault_counts short_counts = {
      .struct_size = sizeof(short_counts),
      .address_info_count = 1,
      .vendor_info_count = 2,
   };
   CHECK(agx_ws_vk_device_get_fault_info(vk, &short_counts, &info) == AGX_WS_INCOMPLETE);
   CHECK(short_counts.address_info_count == 1 && short_counts.vendor_info_count == 2);
   uint32_t nvendor = counts.vendor_info_count;
   CHECK(nvendor <= 8);
   OK(agx_ws_vk_device_get_fault_info(vk, &counts, &info));
   CHECK(counts.vendor_info_count == nvendor);
   CHECK(strstr(info.description, "guilty") != NULL);
   CHECK(strstr(info.description, "0x10000000008") != NULL);
   CHECK(strstr(info.description, "submission 2") != NULL);
   CHECK(addr[0].address_type == AGX_WS_FAULT_ADDRESS_WRITE_INVALID);
   CHECK(addr[0].reported_address == HOLE + 8);
   CHECK(addr[0].address_precision == 4096);
   int saw_guilt = 0, saw_submission = 0, saw_unit = 0;
   for (uint32_t i = 0; i < nvendor; i++) {
      CHECK(vendor[i].description[0] != '\0');
      if (vendor[i].vendor_fault_code == 1)
         saw_guilt = vendor[i].vendor_fault_data == 0; /* guilty */
      if (vendor[i].vendor_fault_code == 3)
         saw_submission = vendor[i].vendor_fault_data == 2;
      if (vendor[i].vendor_fault_code == 2)
         saw_unit = vendor[i].vendor_fault_data == AGX_WS_UNIT_FRAGMENT;
   }
   CHECK(saw_guilt && saw_submission && saw_unit);

   /* VK_KHR_device_fault: the log holds the fault once, one group, DEVICE_LOST last. */
   struct agx_ws_fault_report_counts rc = {.struct_size = sizeof(rc)};
   OK(agx_ws_vk_device_get_fault_reports(vk, 0, &rc, NULL));
   CHECK(rc.report_count >= 2 && rc.report_count <= 8 && rc.lost == 1);
   struct agx_ws_fault_report reports[8];
   memset(reports, 0, sizeof(reports));
   rc.report_count = 8;
   OK(agx_ws_vk_device_get_fault_reports(vk, 0, &rc, reports));
   CHECK(rc.reports_left == 0);
   for (uint32_t i = 0; i < rc.report_count; i++) {
      CHECK(reports[i].group_id == 1);
      CHECK(!(reports[i].flags & AGX_WS_FAULT_REPORT_DEVICE_LOST) == (i + 1 < rc.report_count));
      CHECK(strstr(reports[i].description, "submission 2") != NULL);
   }
   CHECK(reports[0].flags & AGX_WS_FAULT_REPORT_MEMORY_ADDRESS);
   CHECK(reports[0].fault_address_info.reported_address == HOLE + 8);
   CHECK(reports[0].fault_address_info.address_type == AGX_WS_FAULT_ADDRESS_WRITE_INVALID);
   /* Read once: nothing more, at once, on a lost device. */
   rc.report_count = 8;
   CHECK(agx_ws_vk_device_get_fault_reports(vk, AGX_WS_TIMEOUT_INFINITE, &rc, reports) ==
         -ETIME);
   CHECK(rc.report_count == 0 && rc.lost == 1);

   OK(agx_ws_job_destroy(ok_job));
   OK(agx_ws_job_destroy(bad_job));
   OK(agx_ws_job_destroy(later));
   OK(agx_ws_cmdbuf_destroy(cb));
   ctx_fini(&fresh);
   ctx_fini(&c);
   OK(agx_ws_vk_device_destroy(vk));
   OK(agx_ws_device_destroy(dev));
   printf("vulkan_lost: ok\n");
   return 0;
}
