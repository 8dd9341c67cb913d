/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * agx_synctest: uAPI of a minimal DRM test driver whose only job is to let
 * userspace create, attach and signal dma_fences on DRM sync objects, so that
 * the kernel's drm_syncobj / sync_file behaviour can be observed on a real
 * kernel.  Driver name reported by DRM_IOCTL_VERSION: "agx_synctest".
 *
 * All structs use fixed-size types with explicit padding; padding and
 * reserved fields must be zero.
 */
#ifndef AGX_SYNCTEST_UAPI_H
#define AGX_SYNCTEST_UAPI_H

#ifdef __KERNEL__
#include <drm/drm.h>
#else
#include <linux/ioctl.h>
#include <linux/types.h>
#ifndef DRM_IOCTL_BASE
#define DRM_IOCTL_BASE 'd'
#endif
#ifndef DRM_COMMAND_BASE
#define DRM_COMMAND_BASE 0x40
#endif
#ifndef DRM_IOW
#define DRM_IOW(nr, type) _IOW(DRM_IOCTL_BASE, nr, type)
#endif
#ifndef DRM_IOWR
#define DRM_IOWR(nr, type) _IOWR(DRM_IOCTL_BASE, nr, type)
#endif
#endif

#if defined(__cplusplus)
extern "C" {
#endif

#define DRM_AGX_SYNCTEST_ATTACH_FENCE	0x00
#define DRM_AGX_SYNCTEST_SIGNAL_FENCE	0x01
#define DRM_AGX_SYNCTEST_TIMEOUT_FENCE	0x02

/*
 * ATTACH_FENCE: create a new unsignalled dma_fence and attach it to the
 * sync object @handle.  @point == 0: the fence replaces the syncobj's fence
 * (binary semantics, also allowed on a timeline syncobj).  @point != 0: the
 * fence is added as timeline point @point (wrapped in a dma_fence_chain).
 * @flags must be 0.  On success @fence_id (> 0) names the fence for
 * SIGNAL_FENCE / TIMEOUT_FENCE; ids are per open file and not reused until
 * the 32-bit id space wraps.
 * Errors: ENOENT unknown handle, EINVAL flags != 0, ENOMEM.
 */
struct drm_agx_synctest_attach_fence {
	__u32 handle;		/* in: syncobj handle */
	__u32 flags;		/* in: must be 0 */
	__u64 point;		/* in: 0 = binary replace, else timeline point */
	__u64 fence_id;		/* out */
};

/*
 * SIGNAL_FENCE: signal fence @fence_id.  @error == 0 signals success;
 * @error < 0 (a negative errno, >= -4095) is set as the fence error first
 * (dma_fence_set_error) and then the fence is signalled.  The id is removed.
 * Errors: EINVAL unknown id (including a fence already signalled by its
 * timeout), error > 0 or < -4095, pad != 0.
 */
struct drm_agx_synctest_signal_fence {
	__u64 fence_id;
	__s32 error;
	__u32 pad;
};

/*
 * TIMEOUT_FENCE: arm a timer; after @delay_ms the fence is signalled with
 * -ETIMEDOUT (unless signalled earlier), and its id is removed.
 * Errors: EINVAL unknown id / pad != 0, EBUSY timer already armed.
 */
struct drm_agx_synctest_timeout_fence {
	__u64 fence_id;
	__u32 delay_ms;
	__u32 pad;
};

/* Closing the DRM file signals every fence it still owns with -ECANCELED. */

#define DRM_IOCTL_AGX_SYNCTEST_ATTACH_FENCE \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_AGX_SYNCTEST_ATTACH_FENCE, \
		 struct drm_agx_synctest_attach_fence)
#define DRM_IOCTL_AGX_SYNCTEST_SIGNAL_FENCE \
	DRM_IOW(DRM_COMMAND_BASE + DRM_AGX_SYNCTEST_SIGNAL_FENCE, \
		struct drm_agx_synctest_signal_fence)
#define DRM_IOCTL_AGX_SYNCTEST_TIMEOUT_FENCE \
	DRM_IOW(DRM_COMMAND_BASE + DRM_AGX_SYNCTEST_TIMEOUT_FENCE, \
		struct drm_agx_synctest_timeout_fence)

#if defined(__cplusplus)
}
#endif

#endif /* AGX_SYNCTEST_UAPI_H */
