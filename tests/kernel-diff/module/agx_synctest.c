// SPDX-License-Identifier: GPL-2.0
/*
 * agx_synctest - a minimal DRM driver for differential tests of DRM sync
 * objects on a real kernel.
 *
 * The driver has no hardware and no GEM.  It exposes the core syncobj ioctls
 * (DRIVER_SYNCOBJ | DRIVER_SYNCOBJ_TIMELINE) plus three private ioctls that
 * let userspace play "the GPU": attach a fresh unsignalled dma_fence to a
 * syncobj (binary or timeline point), and later signal it, optionally with an
 * error, or let a timer signal it with -ETIMEDOUT.  Every fence a file still
 * owns is signalled with -ECANCELED when the file is closed.
 *
 * Fence ownership: each fence lives in its creator's per-file table
 * (an xarray, id -> fence, holding one reference).  Exactly one party removes
 * ("claims") a fence from the table and signals it: SIGNAL_FENCE, the timeout
 * work, or postclose.  An armed timeout holds its own reference.  Each fence
 * also pins the module, since its ops live here and fences can outlive the
 * file (syncobjs shared with other files, exported sync_files).
 *
 * Each fence gets its own fence context: fences of one context must signal in
 * seqno order, and userspace may signal ours in any order.
 */

#include <linux/dma-fence.h>
#include <linux/dma-fence-chain.h>
#include <linux/err.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/slab.h>
#include <linux/version.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include <drm/drm_drv.h>
#include <drm/drm_file.h>
#include <drm/drm_ioctl.h>
#include <drm/drm_syncobj.h>

#include "agx_synctest_uapi.h"

#define DRIVER_NAME "agx_synctest"

struct ast_device {
	struct drm_device drm;
};

struct ast_file {
	/* fence_id -> struct ast_fence *; the table owns one fence reference */
	struct xarray fences;
	u32 next_id;		/* cyclic id allocation, protected by xa_lock */
};

struct ast_fence {
	struct dma_fence base;	/* must stay first: freed by dma_fence_free() */
	spinlock_t lock;
	struct ast_file *owner;
	u32 id;
	bool timer_armed;	/* set under owner->fences' xa_lock */
	struct delayed_work timeout;
};

static struct workqueue_struct *ast_wq;
static struct platform_device *ast_pdev;

static const char *ast_fence_get_driver_name(struct dma_fence *f)
{
	return DRIVER_NAME;
}

static const char *ast_fence_get_timeline_name(struct dma_fence *f)
{
	return "synctest";
}

static void ast_fence_release(struct dma_fence *f)
{
	dma_fence_free(f);
	module_put(THIS_MODULE);
}

static const struct dma_fence_ops ast_fence_ops = {
	.get_driver_name = ast_fence_get_driver_name,
	.get_timeline_name = ast_fence_get_timeline_name,
	.release = ast_fence_release,
};

/* Signal @f with @error (0 or negative errno) unless already signalled. */
static void ast_fence_complete(struct ast_fence *f, int error)
{
	unsigned long flags;

	spin_lock_irqsave(&f->lock, flags);
	if (!test_bit(DMA_FENCE_FLAG_SIGNALED_BIT, &f->base.flags)) {
		if (error)
			dma_fence_set_error(&f->base, error);
		dma_fence_signal_locked(&f->base);
	}
	spin_unlock_irqrestore(&f->lock, flags);
}

static void ast_fence_timeout_work(struct work_struct *work)
{
	struct ast_fence *f = container_of(to_delayed_work(work),
					   struct ast_fence, timeout);
	struct xarray *xa = &f->owner->fences;
	bool claimed;

	/*
	 * If someone else claimed the fence first, they wait for this work
	 * (cancel_delayed_work_sync) before the table can go away.
	 */
	xa_lock(xa);
	claimed = xa_load(xa, f->id) == f;
	if (claimed)
		__xa_erase(xa, f->id);
	xa_unlock(xa);

	if (claimed) {
		ast_fence_complete(f, -ETIMEDOUT);
		dma_fence_put(&f->base);	/* the table's reference */
	}
	dma_fence_put(&f->base);		/* the timer's reference */
}

/* Called after @f was claimed from the table: drop a still pending timer. */
static void ast_fence_disarm(struct ast_fence *f)
{
	if (f->timer_armed && cancel_delayed_work_sync(&f->timeout))
		dma_fence_put(&f->base);
}

static int ast_ioctl_attach_fence(struct drm_device *dev, void *data,
				  struct drm_file *file)
{
	struct drm_agx_synctest_attach_fence *args = data;
	struct ast_file *af = file->driver_priv;
	struct dma_fence_chain *chain = NULL;
	struct drm_syncobj *syncobj;
	struct ast_fence *f;
	int ret;

	if (args->flags)
		return -EINVAL;

	syncobj = drm_syncobj_find(file, args->handle);
	if (!syncobj)
		return -ENOENT;

	if (args->point) {
		chain = dma_fence_chain_alloc();
		if (!chain) {
			ret = -ENOMEM;
			goto out_syncobj;
		}
	}

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f) {
		ret = -ENOMEM;
		goto out_chain;
	}
	__module_get(THIS_MODULE);	/* dropped in ast_fence_release() */
	spin_lock_init(&f->lock);
	f->owner = af;
	INIT_DELAYED_WORK(&f->timeout, ast_fence_timeout_work);
	dma_fence_init(&f->base, &ast_fence_ops, &f->lock,
		       dma_fence_context_alloc(1), 1);

	/* Our local reference keeps @f alive if another thread signals it
	 * by id before we are done; the table gets a reference of its own. */
	dma_fence_get(&f->base);
	ret = xa_alloc_cyclic(&af->fences, &f->id, f, XA_LIMIT(1, U32_MAX),
			      &af->next_id, GFP_KERNEL);
	if (ret < 0) {
		dma_fence_put(&f->base);
		dma_fence_put(&f->base);
		goto out_chain;
	}

	if (chain)
		drm_syncobj_add_point(syncobj, chain, &f->base, args->point);
	else
		drm_syncobj_replace_fence(syncobj, &f->base);
	chain = NULL;	/* consumed by drm_syncobj_add_point() */

	args->fence_id = f->id;
	dma_fence_put(&f->base);
	ret = 0;

out_chain:
	dma_fence_chain_free(chain);
out_syncobj:
	drm_syncobj_put(syncobj);
	return ret;
}

static int ast_ioctl_signal_fence(struct drm_device *dev, void *data,
				  struct drm_file *file)
{
	struct drm_agx_synctest_signal_fence *args = data;
	struct ast_file *af = file->driver_priv;
	struct ast_fence *f;

	if (args->pad || args->error > 0 || args->error < -MAX_ERRNO)
		return -EINVAL;
	if (!args->fence_id || args->fence_id > U32_MAX)
		return -EINVAL;

	f = xa_erase(&af->fences, args->fence_id);
	if (!f)
		return -EINVAL;

	ast_fence_complete(f, args->error);
	ast_fence_disarm(f);
	dma_fence_put(&f->base);	/* the table's reference */
	return 0;
}

static int ast_ioctl_timeout_fence(struct drm_device *dev, void *data,
				   struct drm_file *file)
{
	struct drm_agx_synctest_timeout_fence *args = data;
	struct ast_file *af = file->driver_priv;
	struct ast_fence *f;
	int ret = 0;

	if (args->pad || !args->fence_id || args->fence_id > U32_MAX)
		return -EINVAL;

	/* Holding xa_lock keeps @f in the table (and alive) while arming. */
	xa_lock(&af->fences);
	f = xa_load(&af->fences, args->fence_id);
	if (!f) {
		ret = -EINVAL;
	} else if (f->timer_armed) {
		ret = -EBUSY;
	} else {
		f->timer_armed = true;
		dma_fence_get(&f->base);	/* the timer's reference */
		queue_delayed_work(ast_wq, &f->timeout,
				   msecs_to_jiffies(args->delay_ms));
	}
	xa_unlock(&af->fences);
	return ret;
}

static int ast_open(struct drm_device *dev, struct drm_file *file)
{
	struct ast_file *af;

	af = kzalloc(sizeof(*af), GFP_KERNEL);
	if (!af)
		return -ENOMEM;
	xa_init_flags(&af->fences, XA_FLAGS_ALLOC1);
	file->driver_priv = af;
	return 0;
}

static void ast_postclose(struct drm_device *dev, struct drm_file *file)
{
	struct ast_file *af = file->driver_priv;
	struct ast_fence *f;
	unsigned long id;

	/* No ioctl can run any more; only timeout works may race with us. */
	xa_for_each(&af->fences, id, f) {
		if (xa_erase(&af->fences, id) != f)
			continue;	/* claimed by its timer meanwhile */
		ast_fence_complete(f, -ECANCELED);
		ast_fence_disarm(f);
		dma_fence_put(&f->base);
	}
	xa_destroy(&af->fences);
	kfree(af);
}

static const struct drm_ioctl_desc ast_ioctls[] = {
	DRM_IOCTL_DEF_DRV(AGX_SYNCTEST_ATTACH_FENCE, ast_ioctl_attach_fence,
			  DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(AGX_SYNCTEST_SIGNAL_FENCE, ast_ioctl_signal_fence,
			  DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(AGX_SYNCTEST_TIMEOUT_FENCE, ast_ioctl_timeout_fence,
			  DRM_RENDER_ALLOW),
};

static const struct file_operations ast_fops = {
	.owner = THIS_MODULE,
	.open = drm_open,
	.release = drm_release,
	.unlocked_ioctl = drm_ioctl,
	.compat_ioctl = drm_compat_ioctl,
	.poll = drm_poll,
	.read = drm_read,
	.llseek = noop_llseek,
#ifdef FOP_UNSIGNED_OFFSET
	/* drm_open_helper() refuses (WARN + EINVAL) DRM fops without it since 6.12. */
	.fop_flags = FOP_UNSIGNED_OFFSET,
#endif
};

static const struct drm_driver ast_drm_driver = {
	.driver_features = DRIVER_RENDER | DRIVER_SYNCOBJ |
			   DRIVER_SYNCOBJ_TIMELINE,
	.open = ast_open,
	.postclose = ast_postclose,
	.ioctls = ast_ioctls,
	.num_ioctls = ARRAY_SIZE(ast_ioctls),
	.fops = &ast_fops,
	.name = DRIVER_NAME,
	.desc = "DRM syncobj test driver",
	.date = "20250101",
	.major = 1,
	.minor = 0,
};

static int ast_probe(struct platform_device *pdev)
{
	struct ast_device *adev;
	int ret;

	adev = devm_drm_dev_alloc(&pdev->dev, &ast_drm_driver,
				  struct ast_device, drm);
	if (IS_ERR(adev))
		return PTR_ERR(adev);

	ret = drm_dev_register(&adev->drm, 0);
	if (ret)
		return ret;

	platform_set_drvdata(pdev, adev);
	return 0;
}

static void ast_unregister(struct platform_device *pdev)
{
	struct ast_device *adev = platform_get_drvdata(pdev);

	drm_dev_unregister(&adev->drm);
}

/* platform_driver.remove returns void since 6.11. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
static void ast_remove(struct platform_device *pdev)
{
	ast_unregister(pdev);
}
#else
static int ast_remove(struct platform_device *pdev)
{
	ast_unregister(pdev);
	return 0;
}
#endif

static struct platform_driver ast_platform_driver = {
	.probe = ast_probe,
	.remove = ast_remove,
	.driver = {
		.name = DRIVER_NAME,
	},
};

static int __init ast_init(void)
{
	int ret;

	ast_wq = alloc_workqueue(DRIVER_NAME, 0, 0);
	if (!ast_wq)
		return -ENOMEM;

	ret = platform_driver_register(&ast_platform_driver);
	if (ret)
		goto err_wq;

	ast_pdev = platform_device_register_simple(DRIVER_NAME,
						   PLATFORM_DEVID_NONE, NULL, 0);
	if (IS_ERR(ast_pdev)) {
		ret = PTR_ERR(ast_pdev);
		goto err_driver;
	}
	if (!platform_get_drvdata(ast_pdev)) {	/* probe failed */
		ret = -ENODEV;
		goto err_device;
	}
	return 0;

err_device:
	platform_device_unregister(ast_pdev);
err_driver:
	platform_driver_unregister(&ast_platform_driver);
err_wq:
	destroy_workqueue(ast_wq);
	return ret;
}

static void __exit ast_exit(void)
{
	platform_device_unregister(ast_pdev);
	platform_driver_unregister(&ast_platform_driver);
	destroy_workqueue(ast_wq);
}

module_init(ast_init);
module_exit(ast_exit);

MODULE_DESCRIPTION("DRM sync object test driver");
MODULE_LICENSE("GPL");
