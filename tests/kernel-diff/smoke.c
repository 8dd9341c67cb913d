// SPDX-License-Identifier: GPL-2.0
/*
 * Smoke test for the agx_synctest DRM driver, run inside the QEMU guest.
 * Prints one line per observation; exits 0 only if every check passed.
 *
 * Build (run.sh does this):
 *   gcc -static -O2 -D__user= -I<linux-headers>/include/uapi/drm \
 *       -Imodule smoke.c -o smoke
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <drm.h>
#include <linux/sync_file.h>

#include "agx_synctest_uapi.h"

#define NODE "/dev/dri/renderD128"

static int failures;

static int xioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do
		r = ioctl(fd, req, arg);
	while (r == -1 && (errno == EINTR || errno == EAGAIN));
	return r == -1 ? -errno : 0;
}

#define CHECK(name, got, want)                                              \
	do {                                                                \
		long long g_ = (long long)(got), w_ = (long long)(want);    \
		printf("%-52s got %lld want %lld: %s\n", name, g_, w_,      \
		       g_ == w_ ? "ok" : "FAIL");                           \
		if (g_ != w_)                                               \
			failures++;                                         \
	} while (0)

#define SHOW(name, val) printf("%-52s = %lld (observed)\n", name, (long long)(val))

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static uint32_t syncobj_create(int fd, uint32_t flags)
{
	struct drm_syncobj_create c = { .flags = flags };
	int r = xioctl(fd, DRM_IOCTL_SYNCOBJ_CREATE, &c);

	if (r) {
		printf("SYNCOBJ_CREATE failed: %d\n", r);
		failures++;
	}
	return c.handle;
}

static int attach(int fd, uint32_t handle, uint64_t point, uint64_t *id)
{
	struct drm_agx_synctest_attach_fence a = { .handle = handle, .point = point };
	int r = xioctl(fd, DRM_IOCTL_AGX_SYNCTEST_ATTACH_FENCE, &a);

	*id = a.fence_id;
	return r;
}

static int signal_fence(int fd, uint64_t id, int32_t error)
{
	struct drm_agx_synctest_signal_fence s = { .fence_id = id, .error = error };

	return xioctl(fd, DRM_IOCTL_AGX_SYNCTEST_SIGNAL_FENCE, &s);
}

static int wait_one(int fd, uint32_t handle, int64_t rel_timeout_ns, uint32_t flags)
{
	struct drm_syncobj_wait w = {
		.handles = (uintptr_t)&handle,
		.count_handles = 1,
		.timeout_nsec = now_ns() + rel_timeout_ns,
		.flags = flags,
	};

	return xioctl(fd, DRM_IOCTL_SYNCOBJ_WAIT, &w);
}

static int timeline_wait(int fd, uint32_t handle, uint64_t point,
			 int64_t rel_timeout_ns, uint32_t flags)
{
	struct drm_syncobj_timeline_wait w = {
		.handles = (uintptr_t)&handle,
		.points = (uintptr_t)&point,
		.count_handles = 1,
		.timeout_nsec = now_ns() + rel_timeout_ns,
		.flags = flags,
	};

	return xioctl(fd, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &w);
}

static uint64_t query(int fd, uint32_t handle, uint32_t flags, int *err)
{
	uint64_t point = ~0ull;
	struct drm_syncobj_timeline_array q = {
		.handles = (uintptr_t)&handle,
		.points = (uintptr_t)&point,
		.count_handles = 1,
		.flags = flags,
	};

	*err = xioctl(fd, DRM_IOCTL_SYNCOBJ_QUERY, &q);
	return point;
}

static int export_sync_file(int fd, uint32_t handle)
{
	struct drm_syncobj_handle h = {
		.handle = handle,
		.flags = DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE,
		.fd = -1,
	};
	int r = xioctl(fd, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &h);

	return r ? r : h.fd;
}

/* Overall status via FILE_INFO with num_fences = 0 (the kernel's fast path). */
static int sync_file_status(int sfd)
{
	struct sync_file_info info = { 0 };
	int r = xioctl(sfd, SYNC_IOC_FILE_INFO, &info);

	return r ? 1000 + r : info.status;
}

/* FILE_INFO with a fence array: overall status and first fence's status. */
static int sync_file_status_full(int sfd, int *nfences, int *first_status,
				 char *driver_name)
{
	struct sync_fence_info fi[8];
	struct sync_file_info info = { 0 };
	int r = xioctl(sfd, SYNC_IOC_FILE_INFO, &info);

	if (r)
		return 1000 + r;
	*nfences = info.num_fences;
	if (info.num_fences > 8)
		info.num_fences = 8;
	memset(fi, 0, sizeof(fi));
	info.sync_fence_info = (uintptr_t)fi;
	r = xioctl(sfd, SYNC_IOC_FILE_INFO, &info);
	if (r)
		return 1000 + r;
	*first_status = fi[0].status;
	if (driver_name)
		snprintf(driver_name, 32, "%s", fi[0].driver_name);
	return info.status;
}

int main(void)
{
	char name[64] = { 0 }, drv[32];
	struct drm_version ver = { .name = name, .name_len = sizeof(name) - 1 };
	struct drm_get_cap cap;
	uint64_t id, id1, id3, idx;
	int fd, r, sfd, n, first, err;
	uint32_t a, b, c, d, e;
	int64_t t0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = open(NODE, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("open %s: %s\n", NODE, strerror(errno));
		return 1;
	}
	r = xioctl(fd, DRM_IOCTL_VERSION, &ver);
	printf("driver name: %s (ret %d)\n", name, r);
	CHECK("VERSION name == agx_synctest", strcmp(name, "agx_synctest"), 0);

	cap = (struct drm_get_cap){ .capability = DRM_CAP_SYNCOBJ };
	r = xioctl(fd, DRM_IOCTL_GET_CAP, &cap);
	CHECK("GET_CAP SYNCOBJ", r ? r : (long long)cap.value, 1);
	cap = (struct drm_get_cap){ .capability = DRM_CAP_SYNCOBJ_TIMELINE };
	r = xioctl(fd, DRM_IOCTL_GET_CAP, &cap);
	CHECK("GET_CAP SYNCOBJ_TIMELINE", r ? r : (long long)cap.value, 1);

	/* --- binary syncobj, fence signalled with -EIO ------------------- */
	printf("# binary syncobj, fence error -EIO\n");
	a = syncobj_create(fd, 0);
	CHECK("WAIT on empty syncobj", wait_one(fd, a, 0, 0), -EINVAL);
	CHECK("ATTACH_FENCE point 0", attach(fd, a, 0, &id), 0);
	CHECK("ATTACH_FENCE fence_id != 0", id != 0, 1);
	CHECK("WAIT pending (timeout 10ms)", wait_one(fd, a, 10000000, 0), -ETIME);
	sfd = export_sync_file(fd, a);
	CHECK("HANDLE_TO_FD EXPORT_SYNC_FILE ok", sfd >= 0, 1);
	CHECK("FILE_INFO status while pending", sync_file_status(sfd), 0);
	CHECK("SIGNAL_FENCE -EIO", signal_fence(fd, id, -EIO), 0);
	CHECK("SYNCOBJ_WAIT after -EIO", wait_one(fd, a, 0, 0), 0);
	CHECK("FILE_INFO status (num_fences=0)", sync_file_status(sfd), -EIO);
	r = sync_file_status_full(sfd, &n, &first, drv);
	CHECK("FILE_INFO status (with fence array)", r, -EIO);
	CHECK("FILE_INFO num_fences", n, 1);
	CHECK("FILE_INFO fence[0].status", first, -EIO);
	CHECK("FILE_INFO fence[0].driver_name", strcmp(drv, "agx_synctest"), 0);
	close(sfd);
	CHECK("SIGNAL_FENCE same id again", signal_fence(fd, id, 0), -EINVAL);
	CHECK("SIGNAL_FENCE unknown id", signal_fence(fd, 999999, 0), -EINVAL);
	CHECK("ATTACH_FENCE bad handle", attach(fd, 0xdead, 0, &idx), -ENOENT);
	CHECK("ATTACH_FENCE to a (second fence)", attach(fd, a, 0, &idx), 0);
	CHECK("SIGNAL_FENCE positive error", signal_fence(fd, idx, 5), -EINVAL);
	CHECK("SIGNAL_FENCE error 0", signal_fence(fd, idx, 0), 0);
	sfd = export_sync_file(fd, a);
	CHECK("FILE_INFO after replace + ok signal", sync_file_status(sfd), 1);
	close(sfd);

	/* --- timeline syncobj --------------------------------------------- */
	printf("# timeline syncobj, points 1 and 3\n");
	b = syncobj_create(fd, 0);
	CHECK("QUERY empty timeline", query(fd, b, 0, &err), 0);
	CHECK("ATTACH_FENCE point 1", attach(fd, b, 1, &id1), 0);
	CHECK("ATTACH_FENCE point 3", attach(fd, b, 3, &id3), 0);
	CHECK("QUERY with 1,3 pending", query(fd, b, 0, &err), 0);
	CHECK("QUERY LAST_SUBMITTED", query(fd, b, DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED, &err), 3);
	CHECK("TIMELINE_WAIT point 1 pending", timeline_wait(fd, b, 1, 10000000, 0), -ETIME);
	CHECK("TIMELINE_WAIT point 5 WAIT_AVAILABLE", timeline_wait(fd, b, 5, 10000000,
	      DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE), -ETIME);
	CHECK("TIMELINE_WAIT point 3 WAIT_AVAILABLE", timeline_wait(fd, b, 3, 10000000,
	      DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE), 0);
	CHECK("SIGNAL_FENCE point 1 ok", signal_fence(fd, id1, 0), 0);
	CHECK("QUERY after point 1", query(fd, b, 0, &err), 1);
	CHECK("TIMELINE_WAIT point 1", timeline_wait(fd, b, 1, 0, 0), 0);
	CHECK("TIMELINE_WAIT point 2 (not a point, <= 3)", timeline_wait(fd, b, 2, 10000000, 0), -ETIME);
	CHECK("SIGNAL_FENCE point 3 -EIO", signal_fence(fd, id3, -EIO), 0);
	CHECK("QUERY after point 3", query(fd, b, 0, &err), 3);
	CHECK("TIMELINE_WAIT point 3 after -EIO", timeline_wait(fd, b, 3, 0, 0), 0);
	c = syncobj_create(fd, 0);
	{
		struct drm_syncobj_transfer t = {
			.src_handle = b, .src_point = 3, .dst_handle = c, .dst_point = 0,
		};
		CHECK("TRANSFER point 3 -> binary", xioctl(fd, DRM_IOCTL_SYNCOBJ_TRANSFER, &t), 0);
	}
	sfd = export_sync_file(fd, c);
	SHOW("FILE_INFO of transferred point 3 (num_fences=0)", sync_file_status(sfd));
	r = sync_file_status_full(sfd, &n, &first, NULL);
	SHOW("FILE_INFO of transferred point 3 (fence array)", r);
	SHOW("  num_fences", n);
	SHOW("  fence[0].status", first);
	close(sfd);
	sfd = export_sync_file(fd, b);
	SHOW("FILE_INFO of timeline syncobj head (num_fences=0)", sync_file_status(sfd));
	r = sync_file_status_full(sfd, &n, &first, NULL);
	SHOW("FILE_INFO of timeline syncobj head (fence array)", r);
	SHOW("  num_fences", n);
	close(sfd);
	{
		uint64_t pt = 2;
		struct drm_syncobj_timeline_array s = {
			.handles = (uintptr_t)&b, .points = (uintptr_t)&pt, .count_handles = 1,
		};
		CHECK("TIMELINE_SIGNAL lower point 2", xioctl(fd, DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, &s), 0);
		CHECK("QUERY after lower signal", query(fd, b, 0, &err), 3);
		pt = 7;
		CHECK("TIMELINE_SIGNAL point 7", xioctl(fd, DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, &s), 0);
		CHECK("QUERY after signal 7", query(fd, b, 0, &err), 7);
	}
	{
		struct drm_syncobj_array ra = { .handles = (uintptr_t)&b, .count_handles = 1 };
		CHECK("RESET timeline", xioctl(fd, DRM_IOCTL_SYNCOBJ_RESET, &ra), 0);
		CHECK("QUERY after RESET", query(fd, b, 0, &err), 0);
	}

	/* --- pending earlier point hides a later error -------------------- */
	printf("# timeline: pending point 1, point 2 failed\n");
	e = syncobj_create(fd, 0);
	CHECK("ATTACH_FENCE point 1", attach(fd, e, 1, &id1), 0);
	CHECK("ATTACH_FENCE point 2", attach(fd, e, 2, &id3), 0);
	CHECK("SIGNAL_FENCE point 2 -EIO", signal_fence(fd, id3, -EIO), 0);
	CHECK("QUERY (point 1 pending)", query(fd, e, 0, &err), 0);
	CHECK("TIMELINE_WAIT point 2 (point 1 pending)", timeline_wait(fd, e, 2, 10000000, 0), -ETIME);
	sfd = export_sync_file(fd, e);
	SHOW("FILE_INFO head, point 1 pending (num_fences=0)", sync_file_status(sfd));
	r = sync_file_status_full(sfd, &n, &first, NULL);
	SHOW("FILE_INFO head, point 1 pending (fence array)", r);
	SHOW("  num_fences", n);
	SHOW("  fence[0].status", first);
	CHECK("SIGNAL_FENCE point 1 ok", signal_fence(fd, id1, 0), 0);
	CHECK("QUERY (both signalled)", query(fd, e, 0, &err), 2);
	SHOW("FILE_INFO same sync_file now (num_fences=0)", sync_file_status(sfd));
	r = sync_file_status_full(sfd, &n, &first, NULL);
	SHOW("FILE_INFO same sync_file now (fence array)", r);
	close(sfd);

	/* --- TIMEOUT_FENCE -------------------------------------------------- */
	printf("# timeout fence\n");
	d = syncobj_create(fd, 0);
	CHECK("ATTACH_FENCE", attach(fd, d, 0, &id), 0);
	{
		struct drm_agx_synctest_timeout_fence t = { .fence_id = id, .delay_ms = 50 };
		CHECK("TIMEOUT_FENCE 50ms", xioctl(fd, DRM_IOCTL_AGX_SYNCTEST_TIMEOUT_FENCE, &t), 0);
		CHECK("TIMEOUT_FENCE again", xioctl(fd, DRM_IOCTL_AGX_SYNCTEST_TIMEOUT_FENCE, &t), -EBUSY);
	}
	t0 = now_ns();
	CHECK("WAIT (5s limit) for timed-out fence", wait_one(fd, d, 5000000000ll, 0), 0);
	printf("timeout fence signalled after %lld ms\n", (long long)((now_ns() - t0) / 1000000));
	sfd = export_sync_file(fd, d);
	CHECK("FILE_INFO status after timeout", sync_file_status(sfd), -ETIMEDOUT);
	close(sfd);
	CHECK("SIGNAL_FENCE after timeout", signal_fence(fd, id, 0), -EINVAL);
	CHECK("ATTACH_FENCE (timer then signal)", attach(fd, d, 0, &id), 0);
	{
		struct drm_agx_synctest_timeout_fence t = { .fence_id = id, .delay_ms = 60000 };
		CHECK("TIMEOUT_FENCE 60s", xioctl(fd, DRM_IOCTL_AGX_SYNCTEST_TIMEOUT_FENCE, &t), 0);
	}
	CHECK("SIGNAL_FENCE before timer", signal_fence(fd, id, -ENODATA), 0);
	sfd = export_sync_file(fd, d);
	CHECK("FILE_INFO status (signal beat the timer)", sync_file_status(sfd), -ENODATA);
	close(sfd);

	/* --- close signals leftovers with -ECANCELED ------------------------ */
	printf("# close with pending fences\n");
	{
		int fd2 = open(NODE, O_RDWR | O_CLOEXEC);
		uint32_t h = syncobj_create(fd2, 0), h2 = syncobj_create(fd2, 0);
		int sfd2;

		CHECK("ATTACH_FENCE on second fd", attach(fd2, h, 0, &id), 0);
		CHECK("ATTACH_FENCE with armed timer", attach(fd2, h2, 0, &idx), 0);
		{
			struct drm_agx_synctest_timeout_fence t = { .fence_id = idx, .delay_ms = 60000 };
			CHECK("TIMEOUT_FENCE 60s", xioctl(fd2, DRM_IOCTL_AGX_SYNCTEST_TIMEOUT_FENCE, &t), 0);
		}
		CHECK("SIGNAL_FENCE id of another file", signal_fence(fd, id, 0), -EINVAL);
		sfd = export_sync_file(fd2, h);
		sfd2 = export_sync_file(fd2, h2);
		CHECK("FILE_INFO before close", sync_file_status(sfd), 0);
		close(fd2);
		CHECK("FILE_INFO after close", sync_file_status(sfd), -ECANCELED);
		CHECK("FILE_INFO after close (timer armed)", sync_file_status(sfd2), -ECANCELED);
		close(sfd);
		close(sfd2);
	}

	/* Leave a pending fence on fd: closing at exit must cancel it. */
	CHECK("ATTACH_FENCE left pending at exit", attach(fd, a, 0, &id), 0);
	printf("smoke: %d failure(s)\n", failures);
	return failures ? 1 : 0;
}
