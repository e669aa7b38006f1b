// SPDX-License-Identifier: GPL-2.0-only
/*
 * pgagent: the kernel half of probegate's guest agent (images/init).
 *
 * /proc/probegate-pause   Writing to it writes the pvpanic port: QEMU stops the
 *                         guest there when it boots one to save it (and
 *                         ignores the write otherwise), then sleeps to the next
 *                         whole 10 ms at least 10 ms later.
 * /proc/probegate-config  The bytes of QEMU's fw_cfg file opt/probegate/run.cpio,
 *                         read through the fw_cfg I/O ports on the first read
 *                         (after the pause: fw_cfg is not part of a saved
 *                         state, so each restore passes its own case's files).
 *                         Empty when QEMU has no such file.
 * /proc/probegate-sync    Writing N blocks the writer until CLOCK_MONOTONIC
 *                         reaches N nanoseconds (an absolute timer, no slack),
 *                         so that everything after it starts at the same
 *                         guest time whatever ran before: a fresh boot and a
 *                         restored one then share udevd's timer phase.
 *
 * x86 only (the fw_cfg I/O ports of QEMU's pc and q35 machines).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/hrtimer.h>
#include <linux/io.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/proc_fs.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#define FW_CFG_PORT_SEL 0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_FILE_DIR 0x19
#define FW_CFG_MAX_FILE (64 << 20)
#define PVPANIC_PORT 0x505
#define PVPANIC_PANICKED 1

static char *file = "opt/probegate/run.cpio";
module_param(file, charp, 0444);
MODULE_PARM_DESC(file, "The fw_cfg file /proc/probegate-config serves");

static DEFINE_MUTEX(config_lock);
static bool config_read;
static void *config;
static size_t config_size;

/* Selecting an entry rewinds it; reads then go on from where they stopped. */
static void fw_cfg_select(u16 key)
{
	outw(key, FW_CFG_PORT_SEL);
}

static void fw_cfg_read(void *buf, size_t len)
{
	insb(FW_CFG_PORT_DATA, buf, len);
}

/* The entry of `name` in the file directory, or 0 (with *size 0). */
static u16 fw_cfg_find(const char *name, u32 *size)
{
	struct {
		__be32 size;
		__be16 select;
		__be16 reserved;
		char name[56];
	} entry;
	__be32 count;
	u32 i, n;

	*size = 0;
	fw_cfg_select(FW_CFG_FILE_DIR);
	fw_cfg_read(&count, sizeof(count));
	n = be32_to_cpu(count);
	for (i = 0; i < n; i++) {
		fw_cfg_read(&entry, sizeof(entry));
		entry.name[sizeof(entry.name) - 1] = '\0';
		if (!strcmp(entry.name, name)) {
			*size = be32_to_cpu(entry.size);
			return be16_to_cpu(entry.select);
		}
	}
	return 0;
}

static int read_config(void)
{
	char signature[4];
	u32 size;
	u16 key;

	fw_cfg_select(FW_CFG_SIGNATURE);
	fw_cfg_read(signature, sizeof(signature));
	if (memcmp(signature, "QEMU", 4))
		return 0; /* no fw_cfg: an empty config */
	key = fw_cfg_find(file, &size);
	if (!key || !size)
		return 0;
	if (size > FW_CFG_MAX_FILE) {
		pr_err("fw_cfg file %s is %u bytes, more than %d\n", file, size, FW_CFG_MAX_FILE);
		return -EFBIG;
	}
	config = vmalloc(size);
	if (!config)
		return -ENOMEM;
	fw_cfg_select(key);
	fw_cfg_read(config, size);
	config_size = size;
	return 0;
}

static ssize_t config_proc_read(struct file *f, char __user *buf, size_t len, loff_t *pos)
{
	ssize_t ret = 0;

	mutex_lock(&config_lock);
	if (!config_read) {
		ret = read_config();
		config_read = true;
	}
	if (!ret)
		ret = simple_read_from_buffer(buf, len, pos, config, config_size);
	mutex_unlock(&config_lock);
	return ret;
}

/* Sleeps until CLOCK_MONOTONIC reaches `target` (an absolute timer, no slack). */
static int sleep_until(ktime_t target)
{
	while (ktime_before(ktime_get(), target)) {
		set_current_state(TASK_INTERRUPTIBLE);
		schedule_hrtimeout_range(&target, 0, HRTIMER_MODE_ABS);
		if (signal_pending(current))
			return -EINTR;
	}
	return 0;
}

static ssize_t pause_proc_write(struct file *f, const char __user *buf, size_t len, loff_t *pos)
{
	ktime_t before, stopped, resume;
	int err;

	/*
	 * QEMU 7.2 may move its virtual clock on to the next timer while the
	 * guest stops, or not (a race in QEMU:
	 * docs/FACTS.md "Saving and restoring a guest"). Sleeping right after
	 * the write to a time fixed before it starts both cases, and a boot
	 * that never stopped, again at one instant.
	 */
	before = ktime_get();
	resume = ktime_add_ms(before, 10);
	resume = ns_to_ktime(roundup(ktime_to_ns(resume), 10 * NSEC_PER_MSEC));
	outb(PVPANIC_PANICKED, PVPANIC_PORT);
	stopped = ktime_get();
	err = sleep_until(resume);
	if (err)
		return err;
	pr_info("pause point: the clock moved %lld ns at the stop\n",
		ktime_to_ns(ktime_sub(stopped, before)));
	return len;
}

static ssize_t sync_proc_write(struct file *f, const char __user *buf, size_t len, loff_t *pos)
{
	unsigned long long target_ns;
	ktime_t target;
	int err;

	err = kstrtoull_from_user(buf, len, 10, &target_ns);
	if (err)
		return err;
	target = ns_to_ktime(target_ns);
	if (ktime_after(ktime_get(), target)) {
		pr_warn("sync late: past %llu ns already\n", target_ns);
		return len;
	}
	err = sleep_until(target);
	return err ? err : len;
}

static const struct proc_ops config_ops = {
	.proc_read = config_proc_read,
	.proc_lseek = default_llseek,
};

static const struct proc_ops sync_ops = {
	.proc_write = sync_proc_write,
};

static const struct proc_ops pause_ops = {
	.proc_write = pause_proc_write,
};

static void remove_entries(void)
{
	remove_proc_entry("probegate-pause", NULL);
	remove_proc_entry("probegate-sync", NULL);
	remove_proc_entry("probegate-config", NULL);
}

static int __init pgagent_init(void)
{
	if (!proc_create("probegate-config", 0400, NULL, &config_ops) ||
	    !proc_create("probegate-sync", 0200, NULL, &sync_ops) ||
	    !proc_create("probegate-pause", 0200, NULL, &pause_ops)) {
		remove_entries();
		return -ENOMEM;
	}
	return 0;
}
module_init(pgagent_init);

static void __exit pgagent_exit(void)
{
	remove_entries();
	vfree(config);
}
module_exit(pgagent_exit);

MODULE_DESCRIPTION("probegate: a pause point, a case's files from fw_cfg, a clock to start on");
MODULE_LICENSE("GPL");
