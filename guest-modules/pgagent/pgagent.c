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

#include <linux/acpi.h>
#include <linux/hrtimer.h>
#include <linux/io.h>
#include <linux/kernel.h>
#include <linux/mc146818rtc.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/proc_fs.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include <asm/apicdef.h>
#include <asm/fixmap.h>
#include <asm/msr.h>

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

/*
 * The local APIC timer: the tick, which the guest keeps armed while the agent
 * runs. Read and written directly (xAPIC through its page, x2APIC through
 * MSRs), with no kernel symbol the module could lack on some line;
 * rdmsr()/wrmsr() take two halves on every line, where the 64-bit names
 * were renamed (rdmsrl became rdmsrq).
 */
struct lapic_timer {
	bool x2apic;
	bool armed;
	u32 mode;       /* the LVT entry's timer mode bits */
	u32 lvtt;       /* periodic: the LVT entry, unmasked again after */
	u32 count;      /* oneshot: the current count when disarmed */
	u32 lo, hi;     /* TSC-deadline: the deadline when disarmed */
};

static u32 lapic_read(const struct lapic_timer *t, u32 reg)
{
	u32 lo, hi;

	if (t->x2apic) {
		rdmsr(APIC_BASE_MSR + (reg >> 4), lo, hi);
		return lo;
	}
	return readl((void __iomem *)(fix_to_virt(FIX_APIC_BASE) + reg));
}

static void lapic_write(const struct lapic_timer *t, u32 reg, u32 value)
{
	if (t->x2apic)
		wrmsr(APIC_BASE_MSR + (reg >> 4), value, 0);
	else
		writel(value, (void __iomem *)(fix_to_virt(FIX_APIC_BASE) + reg));
}

#define LVTT_MODE (3 << 17)

/*
 * Disarms the timer and remembers what was left of it. With no guest
 * timer armed, QEMU has no deadline to move its clock on to at the stop
 * (docs/FACTS.md "Saving and restoring a guest"). Interrupts are off.
 */
static void lapic_timer_disarm(struct lapic_timer *t)
{
	u32 lo, hi, lvtt;

	rdmsr(MSR_IA32_APICBASE, lo, hi);
	t->x2apic = lo & X2APIC_ENABLE;
	lvtt = lapic_read(t, APIC_LVTT);
	t->armed = false;
	if (lvtt & APIC_LVT_MASKED)
		return;
	t->mode = lvtt & LVTT_MODE;
	if (t->mode == APIC_LVT_TIMER_TSCDEADLINE) {
		rdmsr(MSR_IA32_TSC_DEADLINE, t->lo, t->hi);
		t->armed = t->lo || t->hi;
		if (t->armed)
			wrmsr(MSR_IA32_TSC_DEADLINE, 0, 0);
	} else if (t->mode == APIC_LVT_TIMER_ONESHOT) {
		t->count = lapic_read(t, APIC_TMCCT);
		t->armed = t->count != 0;
		if (t->armed)
			lapic_write(t, APIC_TMICT, 0);
	} else if (t->mode == APIC_LVT_TIMER_PERIODIC) {
		/*
		 * A periodic tick (a kernel without NO_HZ): masked, QEMU
		 * arms nothing; unmasked, it goes on from its first load, in
		 * phase (QEMU's apic_next_timer()).
		 */
		t->lvtt = lvtt;
		t->armed = true;
		lapic_write(t, APIC_LVTT, lvtt | APIC_LVT_MASKED);
	}
}

/* Arms it again with what was left: both paths run the same instructions. */
static void lapic_timer_rearm(const struct lapic_timer *t)
{
	if (!t->armed)
		return;
	if (t->mode == APIC_LVT_TIMER_TSCDEADLINE)
		wrmsr(MSR_IA32_TSC_DEADLINE, t->lo, t->hi);
	else if (t->mode == APIC_LVT_TIMER_ONESHOT)
		lapic_write(t, APIC_TMICT, t->count);
	else
		lapic_write(t, APIC_LVTT, t->lvtt);
}

static const char *lapic_timer_name(const struct lapic_timer *t)
{
	if (!t->armed)
		return "not armed";
	return t->mode == APIC_LVT_TIMER_TSCDEADLINE ? "tsc-deadline"
	       : t->mode == APIC_LVT_TIMER_ONESHOT   ? "oneshot"
						     : "periodic";
}

/*
 * The RTC's update timer, armed in QEMU for the next alarm (a guest day
 * away) once the update flag is set. Holding its dividers in reset
 * deletes it (QEMU's check_update_timer()); releasing them restarts the
 * clock half a second later, the same in every path.
 */
static u8 rtc_stop(void)
{
	u8 reg_a;

	spin_lock(&rtc_lock);
	reg_a = CMOS_READ(RTC_REG_A);
	CMOS_WRITE((reg_a & 0x0f) | 0x60, RTC_REG_A);
	spin_unlock(&rtc_lock);
	return reg_a & 0x7f;
}

static void rtc_start(u8 reg_a)
{
	spin_lock(&rtc_lock);
	CMOS_WRITE(reg_a, RTC_REG_A);
	spin_unlock(&rtc_lock);
}

/*
 * The HPET's comparators: QEMU arms a timer for each one whose interrupt is
 * on. Turning the interrupt off deletes it; turning it on again re-arms it
 * for the same comparator value. Comparators whose interrupt is off are
 * left alone: halting the whole HPET instead made QEMU re-arm those too,
 * for good (docs/FACTS.md "Saving and restoring a guest").
 * Mapped once, from the ACPI table's address.
 */
#define HPET_REG_ID 0x000
#define HPET_REG_TN_CFG(n) (0x100 + 0x20 * (n))
#define HPET_REG_TN_INT_ENB 0x004
#define HPET_REG_MAX_TIMERS 32

static void __iomem *hpet;

static void hpet_map(void)
{
	struct acpi_table_header *header;
	u64 address;

	if (acpi_disabled || ACPI_FAILURE(acpi_get_table(ACPI_SIG_HPET, 0, &header)))
		return;
	address = ((struct acpi_table_hpet *)header)->address.address;
	acpi_put_table(header);
	if (address)
		hpet = ioremap(address, 1024);
}

/* Turns off every comparator interrupt that is on; returns which were. */
static u32 hpet_hold(void)
{
	u32 held = 0, cfg;
	int n, timers;

	if (!hpet)
		return 0;
	timers = min_t(int, ((readl(hpet + HPET_REG_ID) >> 8) & 0x1f) + 1, HPET_REG_MAX_TIMERS);
	for (n = 0; n < timers; n++) {
		cfg = readl(hpet + HPET_REG_TN_CFG(n));
		if (cfg & HPET_REG_TN_INT_ENB) {
			writel(cfg & ~HPET_REG_TN_INT_ENB, hpet + HPET_REG_TN_CFG(n));
			held |= BIT(n);
		}
	}
	return held;
}

static void hpet_release(u32 held)
{
	int n;

	for (n = 0; n < HPET_REG_MAX_TIMERS; n++)
		if (held & BIT(n))
			writel(readl(hpet + HPET_REG_TN_CFG(n)) | HPET_REG_TN_INT_ENB,
			       hpet + HPET_REG_TN_CFG(n));
}

static ssize_t pause_proc_write(struct file *f, const char __user *buf, size_t len, loff_t *pos)
{
	struct lapic_timer timer;
	ktime_t before, stopped, resume;
	unsigned long flags;
	u32 hpet_held;
	u8 reg_a;
	int err;

	/*
	 * QEMU 7.2 may move its virtual clock on to the next guest timer
	 * while the guest stops, or not (a race in QEMU:
	 * docs/FACTS.md "Saving and restoring a guest"). With the guest's
	 * timers stopped around the write there is none to move to. The
	 * sleep right after it, to a time fixed before it, starts a boot that
	 * stopped and one that did not at one instant, whatever happened.
	 */
	before = ktime_get();
	resume = ktime_add_ms(before, 10);
	resume = ns_to_ktime(roundup(ktime_to_ns(resume), 10 * NSEC_PER_MSEC));
	local_irq_save(flags);
	reg_a = rtc_stop();
	hpet_held = hpet_hold();
	lapic_timer_disarm(&timer);
	outb(PVPANIC_PANICKED, PVPANIC_PORT);
	lapic_timer_rearm(&timer);
	hpet_release(hpet_held);
	rtc_start(reg_a);
	local_irq_restore(flags);
	stopped = ktime_get();
	err = sleep_until(resume);
	if (err)
		return err;
	pr_info("pause point: the clock moved %lld ns at the stop (lapic timer %s, hpet comparators held %#x)\n",
		ktime_to_ns(ktime_sub(stopped, before)),
		lapic_timer_name(&timer),
		hpet_held);
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
	hpet_map();
	return 0;
}
module_init(pgagent_init);

static void __exit pgagent_exit(void)
{
	remove_entries();
	vfree(config);
	if (hpet)
		iounmap(hpet);
}
module_exit(pgagent_exit);

MODULE_DESCRIPTION("probegate: a pause point, a case's files from fw_cfg, a clock to start on");
MODULE_LICENSE("GPL");
