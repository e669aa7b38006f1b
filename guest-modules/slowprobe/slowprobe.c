// SPDX-License-Identifier: GPL-2.0-only
/*
 * slowprobe: a PCI driver for QEMU's edu device (1234:11e8) whose probe is
 * slow on purpose, to test what happens when udev's event timeout kills the
 * worker that is loading it. See docs/PROTOCOL.md for the log lines the
 * probegate host parses; keep them stable.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/device.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/kthread.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

static unsigned int delay_ms;
module_param(delay_ms, uint, 0444);
MODULE_PARM_DESC(delay_ms, "How long each probe sleeps (uninterruptibly), in ms");

static bool use_kthread = true;
module_param_named(kthread, use_kthread, bool, 0444);
MODULE_PARM_DESC(kthread, "After the delay, start a kernel thread as threaded-IRQ drivers do");

static bool kill_check = true;
module_param(kill_check, bool, 0444);
MODULE_PARM_DESC(kill_check,
		 "With kthread: fail with -EINTR when a fatal signal is pending, as kthread_create() "
		 "does, instead of relying on losing its race (newer kernels often win it)");

static int probe_type;
module_param(probe_type, int, 0444);
MODULE_PARM_DESC(probe_type, "0 default, 1 PROBE_PREFER_ASYNCHRONOUS, 2 PROBE_FORCE_SYNCHRONOUS");

static DEFINE_IDA(slowprobe_ida);

struct slowprobe {
	struct miscdevice misc;
	int index;
	char name[32];
};

static const struct file_operations slowprobe_fops = {
	.owner = THIS_MODULE,
};

/* Sleeps until told to stop, so kthread_stop() always finds it alive. */
static int slowprobe_thread(void *unused)
{
	set_current_state(TASK_INTERRUPTIBLE);
	while (!kthread_should_stop()) {
		schedule();
		set_current_state(TASK_INTERRUPTIBLE);
	}
	__set_current_state(TASK_RUNNING);
	return 0;
}

/*
 * Does what a driver with a threaded IRQ does in probe: start a kthread.
 * kthread_create() returns -EINTR when the caller (udev's worker, inside
 * init_module()) has been sent SIGKILL, but only if it loses a race that
 * newer kernels usually win; kill_check makes the outcome deterministic,
 * as a real driver's killable wait would. The thread has no work: it is
 * stopped at once, so nothing outlives the probe.
 */
static int slowprobe_start_thread(struct pci_dev *pdev)
{
	struct task_struct *task;

	if (kill_check && fatal_signal_pending(current))
		return -EINTR;
	task = kthread_run(slowprobe_thread, NULL, "slowprobe/%s", pci_name(pdev));
	if (IS_ERR(task))
		return PTR_ERR(task);
	kthread_stop(task);
	return 0;
}

static int slowprobe_create(struct pci_dev *pdev, struct slowprobe **out)
{
	struct slowprobe *sp;
	int ret;

	sp = kzalloc(sizeof(*sp), GFP_KERNEL);
	if (!sp)
		return -ENOMEM;
	sp->index = ida_alloc(&slowprobe_ida, GFP_KERNEL);
	if (sp->index < 0) {
		ret = sp->index;
		goto free;
	}
	snprintf(sp->name, sizeof(sp->name), "slowprobe%d", sp->index);
	sp->misc.minor = MISC_DYNAMIC_MINOR;
	sp->misc.name = sp->name;
	sp->misc.fops = &slowprobe_fops;
	sp->misc.parent = &pdev->dev;
	ret = misc_register(&sp->misc);
	if (ret)
		goto release_index;
	*out = sp;
	return 0;

release_index:
	ida_free(&slowprobe_ida, sp->index);
free:
	kfree(sp);
	return ret;
}

static int slowprobe_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct slowprobe *sp = NULL;
	int ret = 0;

	dev_info(&pdev->dev, "probe start pid=%d comm=%s delay_ms=%u\n", task_pid_nr(current),
		 current->comm, delay_ms);
	if (delay_ms)
		msleep(delay_ms); /* uninterruptible: the whole delay, killed or not */
	if (use_kthread)
		ret = slowprobe_start_thread(pdev);
	if (!ret)
		ret = slowprobe_create(pdev, &sp);
	if (!ret)
		pci_set_drvdata(pdev, sp);
	dev_info(&pdev->dev, "probe end result=%d misc=%s\n", ret, sp ? sp->name : "-");
	return ret;
}

static void slowprobe_remove(struct pci_dev *pdev)
{
	struct slowprobe *sp = pci_get_drvdata(pdev);

	if (!sp)
		return;
	misc_deregister(&sp->misc);
	ida_free(&slowprobe_ida, sp->index);
	kfree(sp);
}

static const struct pci_device_id slowprobe_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) }, /* QEMU edu */
	{}
};
MODULE_DEVICE_TABLE(pci, slowprobe_ids);

static struct pci_driver slowprobe_driver = {
	.name = "slowprobe",
	.id_table = slowprobe_ids,
	.probe = slowprobe_probe,
	.remove = slowprobe_remove,
};

static int __init slowprobe_init(void)
{
	int ret;

	/* current is the task inside init_module(): for udev, its worker. */
	pr_info("init start pid=%d comm=%s\n", task_pid_nr(current), current->comm);
	switch (probe_type) {
	case 0:
		slowprobe_driver.driver.probe_type = PROBE_DEFAULT_STRATEGY;
		break;
	case 1:
		slowprobe_driver.driver.probe_type = PROBE_PREFER_ASYNCHRONOUS;
		break;
	case 2:
		slowprobe_driver.driver.probe_type = PROBE_FORCE_SYNCHRONOUS;
		break;
	default:
		pr_info("init done pid=%d ret=%d\n", task_pid_nr(current), -EINVAL);
		return -EINVAL;
	}
	ret = pci_register_driver(&slowprobe_driver);
#ifdef MODULE
	/*
	 * Whether the loader returns from init_module() now (async_probe
	 * requested: it does not wait for the async probes) or only once they
	 * end: the host needs it to tell a kill inside init_module() from one
	 * after it, in a worker that went on with its event.
	 */
	pr_info("init done pid=%d ret=%d async_requested=%d\n", task_pid_nr(current), ret,
		THIS_MODULE->async_probe_requested ? 1 : 0);
#else
	pr_info("init done pid=%d ret=%d\n", task_pid_nr(current), ret);
#endif
	return ret;
}

static void __exit slowprobe_exit(void)
{
	pci_unregister_driver(&slowprobe_driver);
	ida_destroy(&slowprobe_ida);
}

module_init(slowprobe_init);
module_exit(slowprobe_exit);

MODULE_DESCRIPTION("Slow-probing PCI driver for QEMU's edu device (probegate test module)");
MODULE_LICENSE("GPL");
