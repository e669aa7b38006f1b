// SPDX-License-Identifier: GPL-2.0-only
/*
 * pgfault: faults injected into a probegate guest on purpose, to prove the
 * host tells them apart (`probegate boot --inject-fault`, issue 7). It is a
 * module of its own so that its Oops is one outside the test module.
 *
 *   what=panic  panic() from module init: the kernel stops.
 *   what=oops   a NULL pointer write from module init: an Oops, after which
 *               the kernel goes on (insmod is killed).
 *   what=hang   module init never returns: insmod, and the guest agent
 *               waiting for it, hang until the agent's own deadline.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/module.h>
#include <linux/string.h>

static char *what = "";
module_param(what, charp, 0444);
MODULE_PARM_DESC(what, "The fault to inject: panic, oops or hang");

/* A module parameter, so the compiler cannot see that it is NULL. */
static unsigned long target;
module_param(target, ulong, 0444);
MODULE_PARM_DESC(target, "The address what=oops writes to (0)");

static int __init pgfault_init(void)
{
	pr_info("injecting what=%s\n", what);
	if (!strcmp(what, "panic"))
		panic("pgfault: injected panic");
	if (!strcmp(what, "oops")) {
		*(volatile unsigned long *)target = 1;
		return 0;
	}
	if (!strcmp(what, "hang")) {
		for (;;)
			ssleep(3600);
	}
	pr_err("unknown fault '%s'\n", what);
	return -EINVAL;
}
module_init(pgfault_init);

MODULE_DESCRIPTION("probegate: faults injected into the guest on purpose");
MODULE_LICENSE("GPL");
