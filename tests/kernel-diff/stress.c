// SPDX-License-Identifier: GPL-2.0
/*
 * Concurrency stress for agx_synctest (run in the guest via run.sh):
 * 4 threads attach / signal / arm timeouts / export sync_files / wait on one
 * DRM file, and keep opening secondary files that are closed with pending
 * fences and racing timers.  Usage: stress [seconds, default 5].
 * Build: gcc -static -O2 -pthread -D__user= -I<uapi>/drm -Imodule stress.c
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <drm.h>
#include <linux/sync_file.h>
#include "agx_synctest_uapi.h"

#define NODE "/dev/dri/renderD128"
#define NOBJ 8
static int gfd;
static uint32_t objs[NOBJ];
static uint64_t pts[NOBJ];
static pthread_mutex_t ptlock = PTHREAD_MUTEX_INITIALIZER;
static volatile uint64_t pool[64];
static volatile int stop;
static long counts[8];

static int64_t now_ns(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec * 1000000000ll + ts.tv_nsec; }
static int xi(int fd, unsigned long r, void *a) { return ioctl(fd, r, a) ? -errno : 0; }

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
	while (!stop) {
		int op = rand_r(&seed) % 7, k = rand_r(&seed) % NOBJ, slot = rand_r(&seed) % 64;
		if (op == 0 || op == 1) {
			struct drm_agx_synctest_attach_fence a = { .handle = objs[k] };
			if (k & 1) { pthread_mutex_lock(&ptlock); a.point = ++pts[k]; pthread_mutex_unlock(&ptlock); }
			if (!xi(gfd, DRM_IOCTL_AGX_SYNCTEST_ATTACH_FENCE, &a)) { pool[slot] = a.fence_id; counts[0]++; }
		} else if (op == 2) {
			struct drm_agx_synctest_signal_fence s = { .fence_id = pool[slot], .error = -(rand_r(&seed) % 3) * 5 };
			if (!xi(gfd, DRM_IOCTL_AGX_SYNCTEST_SIGNAL_FENCE, &s)) counts[1]++;
		} else if (op == 3) {
			struct drm_agx_synctest_timeout_fence t = { .fence_id = pool[slot], .delay_ms = rand_r(&seed) % 3 };
			if (!xi(gfd, DRM_IOCTL_AGX_SYNCTEST_TIMEOUT_FENCE, &t)) counts[2]++;
		} else if (op == 4) {
			struct drm_syncobj_handle h = { .handle = objs[k], .flags = DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE, .fd = -1 };
			if (!xi(gfd, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &h)) {
				struct sync_fence_info fi[4]; struct sync_file_info info = { .num_fences = 4, .sync_fence_info = (uintptr_t)fi };
				xi(h.fd, SYNC_IOC_FILE_INFO, &info); close(h.fd); counts[3]++;
			}
		} else if (op == 5) {
			uint64_t p = pts[k] ? pts[k] : 0;
			struct drm_syncobj_timeline_wait w = { .handles = (uintptr_t)&objs[k], .points = (uintptr_t)&p, .count_handles = 1, .timeout_nsec = now_ns() + 1000000 };
			xi(gfd, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &w); counts[4]++;
		} else {
			/* secondary file closed with pending fences and racing timers */
			int fd2 = open(NODE, O_RDWR);
			struct drm_syncobj_create c = { 0 };
			xi(fd2, DRM_IOCTL_SYNCOBJ_CREATE, &c);
			for (int i = 0; i < 4; i++) {
				struct drm_agx_synctest_attach_fence a = { .handle = c.handle, .point = i & 1 ? i + 1 : 0 };
				if (!xi(fd2, DRM_IOCTL_AGX_SYNCTEST_ATTACH_FENCE, &a)) {
					struct drm_agx_synctest_timeout_fence t = { .fence_id = a.fence_id, .delay_ms = rand_r(&seed) % 2 };
					xi(fd2, DRM_IOCTL_AGX_SYNCTEST_TIMEOUT_FENCE, &t);
				}
			}
			struct drm_syncobj_handle h = { .handle = c.handle, .flags = DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE, .fd = -1 };
			xi(fd2, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &h);
			if (rand_r(&seed) & 1) usleep(rand_r(&seed) % 1500);
			close(fd2);
			struct sync_file_info info = { 0 };
			xi(h.fd, SYNC_IOC_FILE_INFO, &info);
			if (info.status == 0) { printf("BUG: fence pending after close\n"); exit(2); }
			close(h.fd); counts[5]++;
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 5;
	pthread_t th[4];
	gfd = open(NODE, O_RDWR);
	for (int i = 0; i < NOBJ; i++) { struct drm_syncobj_create c = { 0 }; xi(gfd, DRM_IOCTL_SYNCOBJ_CREATE, &c); objs[i] = c.handle; }
	for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i);
	sleep(secs); stop = 1;
	for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
	printf("attach %ld signal %ld timeout %ld export %ld wait %ld closefd %ld\n", counts[0], counts[1], counts[2], counts[3], counts[4], counts[5]);
	return 0;
}
