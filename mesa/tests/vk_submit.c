/*
 * vk_submit: records and submits render passes and compute dispatches on the first Vulkan
 * device (meant for honeykrisp through VK_ICD_FILENAMES), hundreds of submissions, waiting on
 * every one, then checks what the GPU wrote. Prints one JSON line: what was submitted, which
 * call returned what, whether the device was lost, and the results.
 *
 *   vk_submit [--submissions N] [--in-flight K] [--size S|WxH] [--render-only] [--no-readback]
 *             [--duration SEC] [--stale-depth S] [--lost-on-masked] [--check-results]
 *
 * --size: the render target is S x S or W x H (default 64): bigger passes cost more GPU time.
 * --render-only: every submission is a render pass (no dispatch); --no-readback: render passes
 * are not followed by a copy to the host buffer (a compute job on honeykrisp). Together they
 * make every job a clear-and-store pass, which a driver can describe as restartable.
 * --duration: stop submitting after SEC seconds even if N is not reached.
 * --stale-depth S gives the render pass a depth attachment (D32_SFLOAT, cleared and stored)
 * whose memory is exportable, exported once (so the driver frees it at once when asked, instead
 * of keeping it in a cache), and, before submission S (from 1), after waiting for the queue to
 * go idle, freed while the framebuffer still uses it: the deliberate bug of a program that
 * frees memory its later render passes still use (a stale buffer). What the GPU and the driver
 * make of those passes is what the run shows.
 *
 * "submit_cpu_ns": the mean CPU time of the calling thread inside vkQueueSubmit (the driver's
 * submit path, not time blocked on the device).
 *
 * When the device is lost and supports VK_EXT_device_fault, the summary carries the fault
 * report: description, the guilt vendor info, the faulting address.
 *
 * When the device offers VK_KHR_device_fault, the program enables it with
 * deviceFaultReportMasked and reads vkGetDeviceFaultReportsKHR (timeout 0) after every fence
 * wait and at the end. The summary counts what came ("khr_*"): entries, masked faults (groups
 * with a replay count, the application told nothing), their fewest, most and total replays, and
 * the device-losing group (DEVICE_LOST on its last entry): the OR of its flags, its guilt,
 * its address. --lost-on-masked also enables deviceFaultDeviceLostOnMasked (when offered): a
 * fault the driver would mask loses the device instead.
 *
 * Exit: 0 every call succeeded (and, with --check-results, the results are right); 1 a call
 * failed or a result is wrong (the summary says which); 2 bad usage or no device.
 *
 * Results are only meaningful on a GPU that executes the work: on Mesa's noop drm-shim and on
 * the simulator's opaque jobs memory is left as it was, so the summary reports them without
 * failing unless --check-results is given.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vulkan/vulkan.h>

#include "fill.comp.h"
#include "tri.frag.h"
#include "tri.vert.h"

static unsigned W = 64, H = 64;
#define ELEMS 256
#define TIMEOUT_NS 10000000000ull /* every wait is bounded: 10 s */
#define MAX_SLOTS 16

/* --- what happened ------------------------------------------------------------------------ */

static struct {
   unsigned calls_failed;
   char first_call[64];
   int first_result;
   bool device_lost;
   char lost_call[64];
} err;

static int
check(const char *call, VkResult r)
{
   if (r == VK_SUCCESS)
      return 0;
   if (!err.calls_failed++) {
      snprintf(err.first_call, sizeof(err.first_call), "%s", call);
      err.first_result = r;
   }
   if (r == VK_ERROR_DEVICE_LOST && !err.device_lost) {
      err.device_lost = true;
      snprintf(err.lost_call, sizeof(err.lost_call), "%s", call);
   }
   fprintf(stderr, "vk_submit: %s returned %d\n", call, r);
   return -1;
}

#define VK(call) check(#call, (call))
#define VK_OR(call, label)                                                                 \
   do {                                                                                    \
      if (VK(call))                                                                        \
         goto label;                                                                       \
   } while (0)

/* --- the fault report (VK_EXT_device_fault) ---------------------------------------------- */

static struct {
   bool supported, queried;
   char description[VK_MAX_DESCRIPTION_SIZE];
   const char *guilt;
   bool has_address;
   uint64_t address;
   const char *access;
} fault = {.guilt = ""};

static void
query_fault(VkDevice dev)
{
   PFN_vkGetDeviceFaultInfoEXT get =
      (PFN_vkGetDeviceFaultInfoEXT)vkGetDeviceProcAddr(dev, "vkGetDeviceFaultInfoEXT");
   if (!fault.supported || !get)
      return;
   VkDeviceFaultCountsEXT counts = {.sType = VK_STRUCTURE_TYPE_DEVICE_FAULT_COUNTS_EXT};
   if (get(dev, &counts, NULL) != VK_SUCCESS)
      return;
   VkDeviceFaultAddressInfoEXT addrs[8];
   VkDeviceFaultVendorInfoEXT vendor[8];
   counts.addressInfoCount = counts.addressInfoCount > 8 ? 8 : counts.addressInfoCount;
   counts.vendorInfoCount = counts.vendorInfoCount > 8 ? 8 : counts.vendorInfoCount;
   VkDeviceFaultInfoEXT info = {
      .sType = VK_STRUCTURE_TYPE_DEVICE_FAULT_INFO_EXT,
      .pAddressInfos = addrs,
      .pVendorInfos = vendor,
   };
   VkResult r = get(dev, &counts, &info);
   if (r != VK_SUCCESS && r != VK_INCOMPLETE)
      return;
   fault.queried = true;
   snprintf(fault.description, sizeof(fault.description), "%s", info.description);
   /* Strip what would need escaping in the JSON summary. */
   for (char *c = fault.description; *c; c++) {
      if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
         *c = ' ';
   }
   for (uint32_t i = 0; i < counts.addressInfoCount; i++) {
      if (addrs[i].addressType == VK_DEVICE_FAULT_ADDRESS_TYPE_READ_INVALID_EXT ||
          addrs[i].addressType == VK_DEVICE_FAULT_ADDRESS_TYPE_WRITE_INVALID_EXT) {
         fault.has_address = true;
         fault.address = addrs[i].reportedAddress;
         fault.access =
            addrs[i].addressType == VK_DEVICE_FAULT_ADDRESS_TYPE_WRITE_INVALID_EXT ? "write"
                                                                                   : "read";
         break;
      }
   }
   /* agx-winsys' vendor info 1 is the guilt: 0 guilty, 1 innocent, 2 unknown. */
   for (uint32_t i = 0; i < counts.vendorInfoCount; i++) {
      if (vendor[i].vendorFaultCode == 1) {
         static const char *const names[] = {"guilty", "innocent", "unknown"};
         fault.guilt = vendor[i].vendorFaultData < 3 ? names[vendor[i].vendorFaultData] : "?";
      }
   }
}

/* --- every fault report (VK_KHR_device_fault) -------------------------------------------- */

#ifndef VK_KHR_device_fault
/* Older headers (Debian's 1.3.239) predate it: the registry's definitions. */
#define VK_KHR_device_fault 1
#define VK_KHR_DEVICE_FAULT_EXTENSION_NAME "VK_KHR_device_fault"
#define VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FAULT_FEATURES_KHR ((VkStructureType)1000573000)
#define VK_STRUCTURE_TYPE_DEVICE_FAULT_INFO_KHR ((VkStructureType)1000573002)
#define VK_DEVICE_FAULT_FLAG_DEVICE_LOST_KHR 0x1
#define VK_DEVICE_FAULT_FLAG_MEMORY_ADDRESS_KHR 0x2
#define VK_DEVICE_FAULT_FLAG_VENDOR_KHR 0x8
#define VK_DEVICE_FAULT_FLAG_WATCHDOG_TIMEOUT_KHR 0x10
#define VK_DEVICE_FAULT_FLAG_OVERFLOW_KHR 0x20
typedef struct VkPhysicalDeviceFaultFeaturesKHR {
   VkStructureType sType;
   void *pNext;
   VkBool32 deviceFault;
   VkBool32 deviceFaultVendorBinary;
   VkBool32 deviceFaultReportMasked;
   VkBool32 deviceFaultDeviceLostOnMasked;
} VkPhysicalDeviceFaultFeaturesKHR;
typedef struct VkDeviceFaultInfoKHR {
   VkStructureType sType;
   void *pNext;
   VkFlags flags;
   uint64_t groupId;
   char description[VK_MAX_DESCRIPTION_SIZE];
   VkDeviceFaultAddressInfoEXT faultAddressInfo;
   VkDeviceFaultAddressInfoEXT instructionAddressInfo;
   VkDeviceFaultVendorInfoEXT vendorInfo;
} VkDeviceFaultInfoKHR;
typedef VkResult(VKAPI_PTR *PFN_vkGetDeviceFaultReportsKHR)(VkDevice device, uint64_t timeout,
                                                            uint32_t *pFaultCounts,
                                                            VkDeviceFaultInfoKHR *pFaultInfo);
#endif

/* agx-winsys' vendor info codes: 1 guilt (0 guilty, 1 innocent, 2 unknown), 6 replays. */
#define VENDOR_GUILT 1
#define VENDOR_REPLAYS 6

static const char *
guilt_name(uint64_t code)
{
   static const char *const names[] = {"guilty", "innocent", "unknown"};
   return code < 3 ? names[code] : "?";
}

static struct {
   bool supported, masked_enabled, lost_on_masked;
   PFN_vkGetDeviceFaultReportsKHR get;
   unsigned calls, entries, overflows, masked;
   uint64_t min_replays, max_replays, replays;
   /* the group being read */
   uint64_t group;
   uint32_t group_flags;
   const char *group_guilt;
   bool group_has_address;
   uint64_t group_address;
   /* the device-losing group */
   bool lost;
   uint32_t lost_flags;
   const char *lost_guilt;
   bool lost_has_address;
   uint64_t lost_address;
   VkResult bad_result;
} khr = {.group_guilt = "", .lost_guilt = ""};

static void
khr_entry(const VkDeviceFaultInfoKHR *e)
{
   khr.entries++;
   if (e->groupId != khr.group) {
      khr.group = e->groupId;
      khr.group_flags = 0;
      khr.group_guilt = "";
      khr.group_has_address = false;
   }
   khr.group_flags |= e->flags;
   if (e->flags & VK_DEVICE_FAULT_FLAG_OVERFLOW_KHR)
      khr.overflows++;
   if (e->flags & VK_DEVICE_FAULT_FLAG_MEMORY_ADDRESS_KHR) {
      khr.group_has_address = true;
      khr.group_address = e->faultAddressInfo.reportedAddress;
   }
   if (e->flags & VK_DEVICE_FAULT_FLAG_VENDOR_KHR) {
      uint64_t data = e->vendorInfo.vendorFaultData;
      if (e->vendorInfo.vendorFaultCode == VENDOR_GUILT)
         khr.group_guilt = guilt_name(data);
      if (e->vendorInfo.vendorFaultCode == VENDOR_REPLAYS) {
         if (!khr.masked || data < khr.min_replays)
            khr.min_replays = data;
         if (data > khr.max_replays)
            khr.max_replays = data;
         khr.replays += data;
         khr.masked++;
      }
   }
   if (e->flags & VK_DEVICE_FAULT_FLAG_DEVICE_LOST_KHR) {
      khr.lost = true;
      khr.lost_flags = khr.group_flags;
      khr.lost_guilt = khr.group_guilt;
      khr.lost_has_address = khr.group_has_address;
      khr.lost_address = khr.group_address;
   }
}

/* Takes every report there is now (VK_INCOMPLETE: more to take). */
static void
drain_fault_reports(VkDevice dev)
{
   if (!khr.get)
      return;
   for (;;) {
      VkDeviceFaultInfoKHR infos[16];
      for (unsigned i = 0; i < 16; i++)
         infos[i] = (VkDeviceFaultInfoKHR){.sType = VK_STRUCTURE_TYPE_DEVICE_FAULT_INFO_KHR};
      uint32_t n = 16;
      VkResult r = khr.get(dev, 0, &n, infos);
      khr.calls++;
      if (r != VK_SUCCESS && r != VK_INCOMPLETE && r != VK_TIMEOUT) {
         khr.bad_result = r;
         return;
      }
      for (uint32_t i = 0; i < n && r != VK_TIMEOUT; i++)
         khr_entry(&infos[i]);
      if (r != VK_INCOMPLETE)
         return;
   }
}

/* CPU time of the calling thread (not the time it spends blocked), in ns */
static uint64_t
thread_cpu_ns(void)
{
   struct timespec t;
   clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
   return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec;
}

static double
now_s(void)
{
   struct timespec t;
   clock_gettime(CLOCK_MONOTONIC, &t);
   return t.tv_sec + t.tv_nsec / 1e9;
}

/* --- setup -------------------------------------------------------------------------------- */

struct buffer {
   VkBuffer buf;
   VkDeviceMemory mem;
   void *map;
};

static VkPhysicalDevice pdev;
static VkDevice dev;

static int
memory_type(uint32_t bits, VkMemoryPropertyFlags want)
{
   VkPhysicalDeviceMemoryProperties p;
   vkGetPhysicalDeviceMemoryProperties(pdev, &p);
   for (uint32_t i = 0; i < p.memoryTypeCount; i++) {
      if ((bits & (1u << i)) && (p.memoryTypes[i].propertyFlags & want) == want)
         return (int)i;
   }
   return -1;
}

static int
bind_memory(VkMemoryRequirements req, VkMemoryPropertyFlags want, VkDeviceMemory *mem)
{
   int type = memory_type(req.memoryTypeBits, want);
   if (type < 0)
      return check("(no memory type with the wanted flags)", VK_ERROR_FEATURE_NOT_PRESENT);
   VkMemoryAllocateInfo ai = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
      .allocationSize = req.size,
      .memoryTypeIndex = (uint32_t)type,
   };
   return VK(vkAllocateMemory(dev, &ai, NULL, mem));
}

static int
host_buffer(VkDeviceSize size, VkBufferUsageFlags usage, struct buffer *b)
{
   VkBufferCreateInfo bi = {
      .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
      .size = size,
      .usage = usage,
   };
   if (VK(vkCreateBuffer(dev, &bi, NULL, &b->buf)))
      return -1;
   VkMemoryRequirements req;
   vkGetBufferMemoryRequirements(dev, b->buf, &req);
   if (bind_memory(req, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                   &b->mem) ||
       VK(vkBindBufferMemory(dev, b->buf, b->mem, 0)) ||
       VK(vkMapMemory(dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map)))
      return -1;
   memset(b->map, 0xcd, size);
   return 0;
}

static VkShaderModule
shader(const uint32_t *code, size_t size)
{
   VkShaderModuleCreateInfo ci = {
      .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
      .codeSize = size,
      .pCode = code,
   };
   VkShaderModule m = VK_NULL_HANDLE;
   VK(vkCreateShaderModule(dev, &ci, NULL, &m));
   return m;
}

int
main(int argc, char **argv)
{
   unsigned submissions = 300, in_flight = 4, stale_depth = 0;
   bool check_results = false, render_only = false, readback_copy = true;
   bool lost_on_masked = false;
   double duration = 0;
   for (int i = 1; i < argc; i++) {
      if (!strcmp(argv[i], "--submissions") && i + 1 < argc)
         submissions = (unsigned)strtoul(argv[++i], NULL, 0);
      else if (!strcmp(argv[i], "--in-flight") && i + 1 < argc)
         in_flight = (unsigned)strtoul(argv[++i], NULL, 0);
      else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
         const char *arg = argv[++i];
         if (sscanf(arg, "%ux%u", &W, &H) != 2)
            W = H = (unsigned)strtoul(arg, NULL, 0);
      }
      else if (!strcmp(argv[i], "--duration") && i + 1 < argc)
         duration = strtod(argv[++i], NULL);
      else if (!strcmp(argv[i], "--render-only"))
         render_only = true;
      else if (!strcmp(argv[i], "--no-readback"))
         readback_copy = false;
      else if (!strcmp(argv[i], "--stale-depth") && i + 1 < argc)
         stale_depth = (unsigned)strtoul(argv[++i], NULL, 0);
      else if (!strcmp(argv[i], "--lost-on-masked"))
         lost_on_masked = true;
      else if (!strcmp(argv[i], "--check-results"))
         check_results = true;
      else {
         fprintf(stderr,
                 "usage: %s [--submissions N] [--in-flight K] [--size S|WxH] [--render-only] "
                 "[--no-readback] [--duration SEC] [--stale-depth S] [--lost-on-masked] "
                 "[--check-results]\n",
                 argv[0]);
         return 2;
      }
   }
   if (!submissions || !in_flight || in_flight > MAX_SLOTS || W < 2 || H < 2 || W > 4096 ||
       H > 4096 || stale_depth > submissions) {
      fprintf(stderr, "vk_submit: need N >= 1, 1 <= K <= %d, 2 <= W, H <= 4096, S <= N\n",
              MAX_SLOTS);
      return 2;
   }
   double start = now_s();

   VkApplicationInfo app = {
      .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
      .pApplicationName = "agx-winsys vk_submit",
      .apiVersion = VK_API_VERSION_1_2,
   };
   VkInstanceCreateInfo ici = {
      .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
      .pApplicationInfo = &app,
   };
   VkInstance inst;
   if (VK(vkCreateInstance(&ici, NULL, &inst)))
      return 2;
   uint32_t n = 1;
   VkResult r = vkEnumeratePhysicalDevices(inst, &n, &pdev);
   if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || n == 0) {
      fprintf(stderr, "vk_submit: no Vulkan device (%d)\n", r);
      return 2;
   }
   VkPhysicalDeviceDriverProperties drv = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES,
   };
   VkPhysicalDeviceProperties2 props = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
      .pNext = &drv,
   };
   vkGetPhysicalDeviceProperties2(pdev, &props);

   /* One queue that does graphics and compute. */
   uint32_t nq = 0;
   vkGetPhysicalDeviceQueueFamilyProperties(pdev, &nq, NULL);
   VkQueueFamilyProperties qf[8];
   nq = nq > 8 ? 8 : nq;
   vkGetPhysicalDeviceQueueFamilyProperties(pdev, &nq, qf);
   uint32_t family = UINT32_MAX;
   for (uint32_t i = 0; i < nq; i++) {
      if ((qf[i].queueFlags & (VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT)) ==
          (VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT)) {
         family = i;
         break;
      }
   }
   if (family == UINT32_MAX) {
      fprintf(stderr, "vk_submit: no graphics+compute queue\n");
      return 2;
   }
   float prio = 1.0f;
   VkDeviceQueueCreateInfo qci = {
      .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
      .queueFamilyIndex = family,
      .queueCount = 1,
      .pQueuePriorities = &prio,
   };
   /* The fault report, when the driver offers it. */
   uint32_t next = 0;
   vkEnumerateDeviceExtensionProperties(pdev, NULL, &next, NULL);
   VkExtensionProperties *exts = calloc(next ? next : 1, sizeof(*exts));
   vkEnumerateDeviceExtensionProperties(pdev, NULL, &next, exts);
   for (uint32_t i = 0; i < next; i++) {
      fault.supported |= !strcmp(exts[i].extensionName, VK_EXT_DEVICE_FAULT_EXTENSION_NAME);
      khr.supported |= !strcmp(exts[i].extensionName, VK_KHR_DEVICE_FAULT_EXTENSION_NAME);
   }
   free(exts);
   VkPhysicalDeviceFaultFeaturesKHR fk = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FAULT_FEATURES_KHR,
   };
   if (khr.supported) {
      VkPhysicalDeviceFeatures2 f2 = {
         .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
         .pNext = &fk,
      };
      vkGetPhysicalDeviceFeatures2(pdev, &f2);
      khr.masked_enabled = fk.deviceFaultReportMasked;
      khr.lost_on_masked = lost_on_masked && fk.deviceFaultDeviceLostOnMasked;
      fk = (VkPhysicalDeviceFaultFeaturesKHR){
         .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FAULT_FEATURES_KHR,
         .deviceFault = VK_TRUE,
         .deviceFaultReportMasked = khr.masked_enabled,
         .deviceFaultDeviceLostOnMasked = khr.lost_on_masked,
      };
   }
   VkPhysicalDeviceFaultFeaturesEXT ff = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FAULT_FEATURES_EXT,
      .pNext = khr.supported ? &fk : NULL,
      .deviceFault = VK_TRUE,
   };
   VkPhysicalDeviceVulkan12Features f12 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
      .pNext = fault.supported ? (void *)&ff : khr.supported ? (void *)&fk : NULL,
      .timelineSemaphore = VK_TRUE,
   };
   const char *dev_exts[3];
   uint32_t dev_ext_count = 0;
   if (fault.supported)
      dev_exts[dev_ext_count++] = VK_EXT_DEVICE_FAULT_EXTENSION_NAME;
   if (khr.supported)
      dev_exts[dev_ext_count++] = VK_KHR_DEVICE_FAULT_EXTENSION_NAME;
   if (stale_depth)
      dev_exts[dev_ext_count++] = VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME;
   VkDeviceCreateInfo dci = {
      .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
      .pNext = &f12,
      .queueCreateInfoCount = 1,
      .pQueueCreateInfos = &qci,
      .enabledExtensionCount = dev_ext_count,
      .ppEnabledExtensionNames = dev_exts,
   };
   if (VK(vkCreateDevice(pdev, &dci, NULL, &dev)))
      return 2;
   VkQueue queue;
   vkGetDeviceQueue(dev, family, 0, &queue);
   if (khr.supported)
      khr.get = (PFN_vkGetDeviceFaultReportsKHR)vkGetDeviceProcAddr(dev,
                                                                     "vkGetDeviceFaultReportsKHR");

   unsigned renders = 0, dispatches = 0, submitted = 0, waits = 0, last_seed = 0;
   /* CPU time spent in vkQueueSubmit: the driver's submit path (and the kernel's, here the
    * render node's client side), not the time blocked on the device */
   uint64_t submit_cpu_ns = 0;
   bool have_compute = false, have_render = false;

   /* --- resources ------------------------------------------------------------------------ */
   VkImageCreateInfo imci = {
      .sType = VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO,
      .imageType = VK_IMAGE_TYPE_2D,
      .format = VK_FORMAT_R8G8B8A8_UNORM,
      .extent = {W, H, 1},
      .mipLevels = 1,
      .arrayLayers = 1,
      .samples = VK_SAMPLE_COUNT_1_BIT,
      .tiling = VK_IMAGE_TILING_OPTIMAL,
      .usage = VK_IMAGE_USAGE_COLOR_ATTACHMENT_BIT | VK_IMAGE_USAGE_TRANSFER_SRC_BIT,
   };
   /* Null until created: a failure jumps to the summary with the rest still null. */
   VkImage image = VK_NULL_HANDLE, depth = VK_NULL_HANDLE;
   VkDeviceMemory image_mem = VK_NULL_HANDLE, depth_mem = VK_NULL_HANDLE;
   VkImageView view = VK_NULL_HANDLE, depth_view = VK_NULL_HANDLE;
   unsigned depth_freed_at = 0;
   VkRenderPass pass = VK_NULL_HANDLE;
   VkFramebuffer fb = VK_NULL_HANDLE;
   VkPipelineLayout gfx_layout = VK_NULL_HANDLE, cs_layout = VK_NULL_HANDLE;
   VkPipeline gfx = VK_NULL_HANDLE, cs = VK_NULL_HANDLE;
   VkShaderModule vs = VK_NULL_HANDLE, fs = VK_NULL_HANDLE, csm = VK_NULL_HANDLE;
   VkDescriptorSetLayout dsl = VK_NULL_HANDLE;
   VkDescriptorPool dpool = VK_NULL_HANDLE;
   VkDescriptorSet dset = VK_NULL_HANDLE;
   VkCommandPool pool = VK_NULL_HANDLE;
   VkCommandBuffer cmd[MAX_SLOTS] = {0};
   VkFence fence[MAX_SLOTS] = {0};
   bool slot_busy[MAX_SLOTS] = {0};
   VkSemaphore timeline = VK_NULL_HANDLE;
   struct buffer ssbo = {0}, readback = {0};

   VK_OR(vkCreateImage(dev, &imci, NULL, &image), out);
   VkMemoryRequirements ireq;
   vkGetImageMemoryRequirements(dev, image, &ireq);
   if (bind_memory(ireq, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, &image_mem))
      goto out;
   VK_OR(vkBindImageMemory(dev, image, image_mem, 0), out);
   VkImageViewCreateInfo vci = {
      .sType = VK_STRUCTURE_TYPE_IMAGE_VIEW_CREATE_INFO,
      .image = image,
      .viewType = VK_IMAGE_VIEW_TYPE_2D,
      .format = imci.format,
      .subresourceRange = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1},
   };
   VK_OR(vkCreateImageView(dev, &vci, NULL, &view), out);
   if (stale_depth) {
      VkExternalMemoryImageCreateInfo emi = {
         .sType = VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_IMAGE_CREATE_INFO,
         .handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT,
      };
      VkImageCreateInfo dci2 = imci;
      dci2.pNext = &emi;
      dci2.format = VK_FORMAT_D32_SFLOAT;
      dci2.usage = VK_IMAGE_USAGE_DEPTH_STENCIL_ATTACHMENT_BIT;
      VK_OR(vkCreateImage(dev, &dci2, NULL, &depth), out);
      VkMemoryRequirements dreq;
      vkGetImageMemoryRequirements(dev, depth, &dreq);
      int type = memory_type(dreq.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
      VkExportMemoryAllocateInfo export = {
         .sType = VK_STRUCTURE_TYPE_EXPORT_MEMORY_ALLOCATE_INFO,
         .handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT,
      };
      VkMemoryAllocateInfo dai = {
         .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
         .pNext = &export,
         .allocationSize = dreq.size,
         .memoryTypeIndex = (uint32_t)(type < 0 ? 0 : type),
      };
      VK_OR(vkAllocateMemory(dev, &dai, NULL, &depth_mem), out);
      VK_OR(vkBindImageMemory(dev, depth, depth_mem, 0), out);
      PFN_vkGetMemoryFdKHR get_fd =
         (PFN_vkGetMemoryFdKHR)vkGetDeviceProcAddr(dev, "vkGetMemoryFdKHR");
      VkMemoryGetFdInfoKHR gfi = {
         .sType = VK_STRUCTURE_TYPE_MEMORY_GET_FD_INFO_KHR,
         .memory = depth_mem,
         .handleType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT,
      };
      int fd = -1;
      if (!get_fd)
         VK_OR(VK_ERROR_EXTENSION_NOT_PRESENT, out);
      VK_OR(get_fd(dev, &gfi, &fd), out);
      close(fd);
      VkImageViewCreateInfo dvci = vci;
      dvci.image = depth;
      dvci.format = VK_FORMAT_D32_SFLOAT;
      dvci.subresourceRange.aspectMask = VK_IMAGE_ASPECT_DEPTH_BIT;
      VK_OR(vkCreateImageView(dev, &dvci, NULL, &depth_view), out);
   }
   if (host_buffer(ELEMS * 4, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, &ssbo) ||
       host_buffer(W * H * 4, VK_BUFFER_USAGE_TRANSFER_DST_BIT, &readback))
      goto out;

   /* Colour, and (--stale-depth) depth: both cleared and stored. */
   VkAttachmentDescription atts[2] = {{
      .format = imci.format,
      .samples = VK_SAMPLE_COUNT_1_BIT,
      .loadOp = VK_ATTACHMENT_LOAD_OP_CLEAR,
      .storeOp = VK_ATTACHMENT_STORE_OP_STORE,
      .stencilLoadOp = VK_ATTACHMENT_LOAD_OP_DONT_CARE,
      .stencilStoreOp = VK_ATTACHMENT_STORE_OP_DONT_CARE,
      .initialLayout = VK_IMAGE_LAYOUT_UNDEFINED,
      .finalLayout = VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL,
   }};
   atts[1] = atts[0];
   atts[1].format = VK_FORMAT_D32_SFLOAT;
   atts[1].finalLayout = VK_IMAGE_LAYOUT_DEPTH_STENCIL_ATTACHMENT_OPTIMAL;
   VkAttachmentReference aref = {0, VK_IMAGE_LAYOUT_COLOR_ATTACHMENT_OPTIMAL};
   VkAttachmentReference dref = {1, VK_IMAGE_LAYOUT_DEPTH_STENCIL_ATTACHMENT_OPTIMAL};
   VkSubpassDescription sub = {
      .pipelineBindPoint = VK_PIPELINE_BIND_POINT_GRAPHICS,
      .colorAttachmentCount = 1,
      .pColorAttachments = &aref,
      .pDepthStencilAttachment = stale_depth ? &dref : NULL,
   };
   VkSubpassDependency dep = {
      .srcSubpass = 0,
      .dstSubpass = VK_SUBPASS_EXTERNAL,
      .srcStageMask = VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT,
      .dstStageMask = VK_PIPELINE_STAGE_TRANSFER_BIT,
      .srcAccessMask = VK_ACCESS_COLOR_ATTACHMENT_WRITE_BIT,
      .dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT,
   };
   VkRenderPassCreateInfo rpci = {
      .sType = VK_STRUCTURE_TYPE_RENDER_PASS_CREATE_INFO,
      .attachmentCount = stale_depth ? 2 : 1,
      .pAttachments = atts,
      .subpassCount = 1,
      .pSubpasses = &sub,
      .dependencyCount = 1,
      .pDependencies = &dep,
   };
   VK_OR(vkCreateRenderPass(dev, &rpci, NULL, &pass), out);
   VkFramebufferCreateInfo fbci = {
      .sType = VK_STRUCTURE_TYPE_FRAMEBUFFER_CREATE_INFO,
      .renderPass = pass,
      .attachmentCount = stale_depth ? 2 : 1,
      .pAttachments = (VkImageView[]){view, depth_view},
      .width = W,
      .height = H,
      .layers = 1,
   };
   VK_OR(vkCreateFramebuffer(dev, &fbci, NULL, &fb), out);

   /* --- pipelines ------------------------------------------------------------------------ */
   VkPipelineLayoutCreateInfo plci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
   VK_OR(vkCreatePipelineLayout(dev, &plci, NULL, &gfx_layout), out);
   vs = shader(tri_vert, sizeof(tri_vert));
   fs = shader(tri_frag, sizeof(tri_frag));
   csm = shader(fill_comp, sizeof(fill_comp));
   if (!vs || !fs || !csm)
      goto out;
   VkPipelineShaderStageCreateInfo stages[2] = {
      {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, NULL, 0, VK_SHADER_STAGE_VERTEX_BIT,
       vs, "main", NULL},
      {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, NULL, 0,
       VK_SHADER_STAGE_FRAGMENT_BIT, fs, "main", NULL},
   };
   VkPipelineVertexInputStateCreateInfo vi = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_VERTEX_INPUT_STATE_CREATE_INFO,
   };
   VkPipelineInputAssemblyStateCreateInfo ia = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_INPUT_ASSEMBLY_STATE_CREATE_INFO,
      .topology = VK_PRIMITIVE_TOPOLOGY_TRIANGLE_LIST,
   };
   VkViewport vp = {0, 0, (float)W, (float)H, 0, 1};
   VkRect2D sc = {{0, 0}, {W, H}};
   VkPipelineViewportStateCreateInfo vps = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_VIEWPORT_STATE_CREATE_INFO,
      .viewportCount = 1,
      .pViewports = &vp,
      .scissorCount = 1,
      .pScissors = &sc,
   };
   VkPipelineRasterizationStateCreateInfo rs = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_RASTERIZATION_STATE_CREATE_INFO,
      .polygonMode = VK_POLYGON_MODE_FILL,
      .cullMode = VK_CULL_MODE_NONE,
      .lineWidth = 1.0f,
   };
   VkPipelineMultisampleStateCreateInfo ms = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_MULTISAMPLE_STATE_CREATE_INFO,
      .rasterizationSamples = VK_SAMPLE_COUNT_1_BIT,
   };
   VkPipelineColorBlendAttachmentState cba = {.colorWriteMask = 0xf};
   VkPipelineColorBlendStateCreateInfo cb = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_COLOR_BLEND_STATE_CREATE_INFO,
      .attachmentCount = 1,
      .pAttachments = &cba,
   };
   VkPipelineDepthStencilStateCreateInfo dss = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_DEPTH_STENCIL_STATE_CREATE_INFO,
   };
   VkGraphicsPipelineCreateInfo gpci = {
      .sType = VK_STRUCTURE_TYPE_GRAPHICS_PIPELINE_CREATE_INFO,
      .stageCount = 2,
      .pStages = stages,
      .pVertexInputState = &vi,
      .pInputAssemblyState = &ia,
      .pViewportState = &vps,
      .pRasterizationState = &rs,
      .pMultisampleState = &ms,
      .pColorBlendState = &cb,
      .pDepthStencilState = &dss,
      .layout = gfx_layout,
      .renderPass = pass,
   };
   VK_OR(vkCreateGraphicsPipelines(dev, VK_NULL_HANDLE, 1, &gpci, NULL, &gfx), out);

   VkDescriptorSetLayoutBinding b0 = {0, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1,
                                      VK_SHADER_STAGE_COMPUTE_BIT, NULL};
   VkDescriptorSetLayoutCreateInfo dslci = {
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
      .bindingCount = 1,
      .pBindings = &b0,
   };
   VK_OR(vkCreateDescriptorSetLayout(dev, &dslci, NULL, &dsl), out);
   VkPushConstantRange pcr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, 4};
   VkPipelineLayoutCreateInfo cplci = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
      .setLayoutCount = 1,
      .pSetLayouts = &dsl,
      .pushConstantRangeCount = 1,
      .pPushConstantRanges = &pcr,
   };
   VK_OR(vkCreatePipelineLayout(dev, &cplci, NULL, &cs_layout), out);
   VkComputePipelineCreateInfo cpci = {
      .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
      .stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, NULL, 0,
                VK_SHADER_STAGE_COMPUTE_BIT, csm, "main", NULL},
      .layout = cs_layout,
   };
   VK_OR(vkCreateComputePipelines(dev, VK_NULL_HANDLE, 1, &cpci, NULL, &cs), out);
   VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1};
   VkDescriptorPoolCreateInfo dpci = {
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
      .maxSets = 1,
      .poolSizeCount = 1,
      .pPoolSizes = &ps,
   };
   VK_OR(vkCreateDescriptorPool(dev, &dpci, NULL, &dpool), out);
   VkDescriptorSetAllocateInfo dsai = {
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
      .descriptorPool = dpool,
      .descriptorSetCount = 1,
      .pSetLayouts = &dsl,
   };
   VK_OR(vkAllocateDescriptorSets(dev, &dsai, &dset), out);
   VkDescriptorBufferInfo dbi = {ssbo.buf, 0, VK_WHOLE_SIZE};
   VkWriteDescriptorSet wds = {
      .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
      .dstSet = dset,
      .descriptorCount = 1,
      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      .pBufferInfo = &dbi,
   };
   vkUpdateDescriptorSets(dev, 1, &wds, 0, NULL);

   /* --- command buffers, fences, a timeline ---------------------------------------------- */
   VkCommandPoolCreateInfo cpoolci = {
      .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
      .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
      .queueFamilyIndex = family,
   };
   VK_OR(vkCreateCommandPool(dev, &cpoolci, NULL, &pool), out);
   VkCommandBufferAllocateInfo cbai = {
      .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
      .commandPool = pool,
      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
      .commandBufferCount = in_flight,
   };
   VK_OR(vkAllocateCommandBuffers(dev, &cbai, cmd), out);
   for (unsigned i = 0; i < in_flight; i++) {
      VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
      VK_OR(vkCreateFence(dev, &fci, NULL, &fence[i]), out);
   }
   VkSemaphoreTypeCreateInfo stci = {
      .sType = VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO,
      .semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE,
   };
   VkSemaphoreCreateInfo sci = {.sType = VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO, .pNext = &stci};
   VK_OR(vkCreateSemaphore(dev, &sci, NULL, &timeline), out);

   /* --- the loop: even submissions render, odd ones dispatch ----------------------------- */
   for (unsigned i = 0; i < submissions; i++) {
      if (duration > 0 && now_s() - start >= duration)
         break;
      unsigned s = i % in_flight;
      if (slot_busy[s]) {
         waits++;
         VK_OR(vkWaitForFences(dev, 1, &fence[s], VK_TRUE, TIMEOUT_NS), out);
         VK_OR(vkResetFences(dev, 1, &fence[s]), out);
         slot_busy[s] = false;
         drain_fault_reports(dev);
      }
      if (stale_depth && i + 1 == stale_depth) {
         /* The bug: free the depth buffer's memory while the framebuffer still uses it (after
          * the work so far is done, so only the passes from here on use a stale buffer). */
         waits++;
         VK_OR(vkQueueWaitIdle(queue), out);
         vkFreeMemory(dev, depth_mem, NULL);
         depth_mem = VK_NULL_HANDLE;
         depth_freed_at = i + 1;
      }
      VkCommandBufferBeginInfo cbbi = {
         .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
         .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
      };
      VK_OR(vkResetCommandBuffer(cmd[s], 0), out);
      VK_OR(vkBeginCommandBuffer(cmd[s], &cbbi), out);
      bool render = render_only || (i % 2) == 0;
      if (render) {
         VkClearValue clear[2] = {{.color = {.float32 = {1.0f, 0.0f, 0.0f, 1.0f}}},
                                  {.depthStencil = {1.0f, 0}}};
         VkRenderPassBeginInfo rpbi = {
            .sType = VK_STRUCTURE_TYPE_RENDER_PASS_BEGIN_INFO,
            .renderPass = pass,
            .framebuffer = fb,
            .renderArea = {{0, 0}, {W, H}},
            .clearValueCount = stale_depth ? 2 : 1,
            .pClearValues = clear,
         };
         vkCmdBeginRenderPass(cmd[s], &rpbi, VK_SUBPASS_CONTENTS_INLINE);
         vkCmdBindPipeline(cmd[s], VK_PIPELINE_BIND_POINT_GRAPHICS, gfx);
         vkCmdDraw(cmd[s], 3, 1, 0, 0);
         vkCmdEndRenderPass(cmd[s]);
         if (readback_copy) {
            VkBufferImageCopy region = {
               .imageSubresource = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1},
               .imageExtent = {W, H, 1},
            };
            vkCmdCopyImageToBuffer(cmd[s], image, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL,
                                   readback.buf, 1, &region);
         }
         renders++;
      } else {
         uint32_t seed = i;
         vkCmdBindPipeline(cmd[s], VK_PIPELINE_BIND_POINT_COMPUTE, cs);
         vkCmdBindDescriptorSets(cmd[s], VK_PIPELINE_BIND_POINT_COMPUTE, cs_layout, 0, 1, &dset,
                                 0, NULL);
         vkCmdPushConstants(cmd[s], cs_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, 4, &seed);
         vkCmdDispatch(cmd[s], ELEMS / 64, 1, 1);
         dispatches++;
      }
      VkMemoryBarrier mb = {
         .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
         .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
         .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
      };
      vkCmdPipelineBarrier(cmd[s],
                           VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                           VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
      VK_OR(vkEndCommandBuffer(cmd[s]), out);
      uint64_t point = i + 1;
      VkTimelineSemaphoreSubmitInfo tssi = {
         .sType = VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO,
         .signalSemaphoreValueCount = 1,
         .pSignalSemaphoreValues = &point,
      };
      VkSubmitInfo si = {
         .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
         .pNext = &tssi,
         .commandBufferCount = 1,
         .pCommandBuffers = &cmd[s],
         .signalSemaphoreCount = 1,
         .pSignalSemaphores = &timeline,
      };
      uint64_t cpu0 = thread_cpu_ns();
      VkResult sr = vkQueueSubmit(queue, 1, &si, fence[s]);
      submit_cpu_ns += thread_cpu_ns() - cpu0;
      if (check("vkQueueSubmit", sr))
         goto out;
      slot_busy[s] = true;
      submitted++;
      if (render)
         have_render = true;
      else {
         have_compute = true;
         last_seed = i;
      }
   }
   if (submitted) {
      uint64_t last = submitted;
      VkSemaphoreWaitInfo swi = {
         .sType = VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO,
         .semaphoreCount = 1,
         .pSemaphores = &timeline,
         .pValues = &last,
      };
      waits++;
      VK_OR(vkWaitSemaphores(dev, &swi, TIMEOUT_NS), out);
      for (unsigned s = 0; s < in_flight; s++) {
         if (slot_busy[s]) {
            waits++;
            VK_OR(vkWaitForFences(dev, 1, &fence[s], VK_TRUE, TIMEOUT_NS), out);
            slot_busy[s] = false;
         }
      }
      VK_OR(vkQueueWaitIdle(queue), out);
   }

out:;
   /* --- results -------------------------------------------------------------------------- */
   const char *compute_result = "none", *render_result = "none";
   if (have_compute && !err.calls_failed) {
      const uint32_t *d = ssbo.map;
      compute_result = "ok";
      for (uint32_t j = 0; j < ELEMS; j++) {
         if (d[j] != 3 * j + last_seed) {
            compute_result = "wrong";
            break;
         }
      }
   }
   if (have_render && !err.calls_failed && readback_copy) {
      const uint8_t *px = readback.map;
      const uint8_t *centre = px + ((H / 2) * W + W / 2) * 4, *corner = px;
      bool ok = centre[0] == 0 && centre[1] == 255 && corner[0] == 255 && corner[1] == 0;
      render_result = ok ? "ok" : "wrong";
   }
   bool results_ok = (!have_compute || !strcmp(compute_result, "ok")) &&
                     (!have_render || !readback_copy || !strcmp(render_result, "ok"));
   if (err.device_lost)
      query_fault(dev);
   drain_fault_reports(dev);

   char addr[32] = "", khr_addr[32] = "";
   if (fault.has_address)
      snprintf(addr, sizeof(addr), "0x%" PRIx64, fault.address);
   if (khr.lost_has_address)
      snprintf(khr_addr, sizeof(khr_addr), "0x%" PRIx64, khr.lost_address);
   printf("{\"program\":\"vk_submit\",\"device\":\"%s\",\"driver\":\"%s\","
          "\"submissions\":%u,\"render_passes\":%u,\"dispatches\":%u,\"waits\":%u,"
          "\"calls_failed\":%u,\"first_failed_call\":\"%s\",\"first_failed_result\":%d,"
          "\"device_lost\":%s,\"lost_at\":\"%s\","
          "\"compute_result\":\"%s\",\"render_result\":\"%s\",\"depth_freed_before\":%u,"
          "\"size\":\"%ux%u\",\"seconds\":%.3f,\"submit_cpu_ns\":%.0f,\"fault_ext\":%s,"
          "\"fault_reported\":%s,\"fault_description\":\"%s\",\"fault_guilt\":\"%s\","
          "\"fault_address\":\"%s\",\"fault_access\":\"%s\","
          "\"khr_fault\":%s,\"khr_masked_enabled\":%s,\"khr_lost_on_masked\":%s,"
          "\"khr_calls\":%u,\"khr_bad_result\":%d,"
          "\"khr_entries\":%u,\"khr_overflows\":%u,\"khr_masked\":%u,"
          "\"khr_masked_min_replays\":%" PRIu64 ",\"khr_masked_max_replays\":%" PRIu64 ","
          "\"khr_masked_replays\":%" PRIu64 ","
          "\"khr_lost\":%s,\"khr_lost_flags\":%u,\"khr_lost_guilt\":\"%s\","
          "\"khr_lost_address\":\"%s\"}\n",
          props.properties.deviceName, drv.driverName, submitted, renders, dispatches, waits,
          err.calls_failed, err.first_call, err.first_result,
          err.device_lost ? "true" : "false", err.lost_call, compute_result, render_result,
          depth_freed_at, W, H, now_s() - start,
          submitted ? (double)submit_cpu_ns / submitted : 0.0,
          fault.supported ? "true" : "false", fault.queried ? "true" : "false",
          fault.description, fault.guilt, addr, fault.has_address ? fault.access : "",
          khr.supported ? "true" : "false", khr.masked_enabled ? "true" : "false",
          khr.lost_on_masked ? "true" : "false", khr.calls,
          khr.bad_result, khr.entries, khr.overflows, khr.masked, khr.min_replays,
          khr.max_replays, khr.replays, khr.lost ? "true" : "false", khr.lost_flags, khr.lost_guilt,
          khr_addr);
   fflush(stdout);

   /* Teardown only when the device is usable: a lost device's objects are the driver's
    * problem, and this program reports rather than cleans up after one. */
   if (!err.calls_failed) {
      vkDeviceWaitIdle(dev);
      vkDestroySemaphore(dev, timeline, NULL);
      for (unsigned i = 0; i < in_flight; i++)
         vkDestroyFence(dev, fence[i], NULL);
      vkDestroyCommandPool(dev, pool, NULL);
      vkDestroyDescriptorPool(dev, dpool, NULL);
      vkDestroyPipeline(dev, cs, NULL);
      vkDestroyPipeline(dev, gfx, NULL);
      vkDestroyPipelineLayout(dev, cs_layout, NULL);
      vkDestroyPipelineLayout(dev, gfx_layout, NULL);
      vkDestroyDescriptorSetLayout(dev, dsl, NULL);
      vkDestroyShaderModule(dev, vs, NULL);
      vkDestroyShaderModule(dev, fs, NULL);
      vkDestroyShaderModule(dev, csm, NULL);
      vkDestroyFramebuffer(dev, fb, NULL);
      vkDestroyRenderPass(dev, pass, NULL);
      vkDestroyImageView(dev, view, NULL);
      vkDestroyImageView(dev, depth_view, NULL);
      vkDestroyImage(dev, depth, NULL);
      vkFreeMemory(dev, depth_mem, NULL);
      vkDestroyImage(dev, image, NULL);
      vkFreeMemory(dev, image_mem, NULL);
      vkDestroyBuffer(dev, ssbo.buf, NULL);
      vkFreeMemory(dev, ssbo.mem, NULL);
      vkDestroyBuffer(dev, readback.buf, NULL);
      vkFreeMemory(dev, readback.mem, NULL);
      vkDestroyDevice(dev, NULL);
      vkDestroyInstance(inst, NULL);
   }
   if (err.calls_failed)
      return 1;
   return check_results && !results_ok ? 1 : 0;
}
