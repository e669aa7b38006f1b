// SPDX-License-Identifier: GPL-2.0-only
//
// pgwitness: the agent's second witness of a failed udev worker
// (docs/FACTS.md "The second witness: UDEV_WORKER_* properties"). From
// udev 251 on, udevd sends an event whose worker failed out again on its
// monitor group with UDEV_WORKER_FAILED=1 and how the worker ended. This
// program listens on that group and prints those events only, as
// `udevadm monitor --udev --property` would print them: one KEY=value line
// per property, then an empty line.
//
// It replaces `udevadm monitor`, which woke, parsed and printed line by line
// (one write(2) each) every one of the ~400 events of the coldplug: about
// 26 ms of guest time of each case, and under TCG a sixth of a restored
// case's wall time (docs/MEASUREMENTS.md "The agent's second witness").
// Here each event costs one recv(2) and a search.
//
// SIGTERM ends it after it has read what is already queued, without
// waiting: once `udevadm settle` has returned, udevd has sent every failed
// event (it does so before it drops the event from its queue), so nothing
// is lost to the race between the shell's kill and this process reading.
//
// The host builds it (static, so that it runs on any Debian user space)
// into the agent's base layer.

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// systemd's monitor_netlink_header (src/libsystemd/sd-device/
// device-monitor-private.h): "libudev\0", a magic, the header's size, then
// where the NUL-separated KEY=value properties start.
enum {
  k_udev_group = 2, // MONITOR_GROUP_UDEV
  k_properties_off_at = 16,
  k_header_min = 40,
};

static int g_fd = -1;

// From here on a recv(2) returns at once when nothing is queued: a signal
// that comes just before the loop blocks again cannot be missed.
static void on_term(int sig) {
  (void)sig;
  (void)fcntl(g_fd, F_SETFL, O_NONBLOCK);
}

// Prints the event if its worker failed; returns 0 unless stdout fails.
static int witness(const char* buf, size_t len) {
  static const char key[] = "UDEV_WORKER_FAILED=1";
  unsigned off = 0;
  if (len < k_header_min || memcmp(buf, "libudev", 8) != 0)
    return 0;
  memcpy(&off, buf + k_properties_off_at, sizeof off);
  if (off >= len)
    return 0;
  int failed = 0;
  for (const char* p = buf + off; p < buf + len; p += strlen(p) + 1)
    if (strcmp(p, key) == 0)
      failed = 1;
  if (!failed)
    return 0;
  for (const char* p = buf + off; p < buf + len; p += strlen(p) + 1)
    if (*p != '\0' && printf("%s\n", p) < 0)
      return -1;
  return printf("\n") < 0 || fflush(stdout) != 0 ? -1 : 0;
}

int main(void) {
  const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
  struct sockaddr_nl addr = {.nl_family = AF_NETLINK, .nl_groups = k_udev_group};
  if (fd < 0 || bind(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
    perror("pgwitness: udev's monitor socket");
    return 1;
  }
  // A failed event comes seconds after the coldplug's burst; room for that
  // burst keeps the socket from overflowing before then (udevadm monitor
  // asks for as much).
  int size = 128 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);

  g_fd = fd;
  struct sigaction term = {.sa_handler = on_term}; // no SA_RESTART: recv returns EINTR
  sigaction(SIGTERM, &term, NULL);

  static char buf[1 << 16];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN) // after SIGTERM, all read
        return 0;
      if (errno == ENOBUFS) {
        // Events were dropped (not seen with the buffer above): said on
        // the console, where the run's console.log keeps it.
        fprintf(stderr, "pgwitness: udev's monitor socket overflowed; events were lost\n");
        continue;
      }
      perror("pgwitness: recv");
      return 1;
    }
    buf[n] = '\0';
    if (witness(buf, (size_t)n) != 0)
      return 1;
  }
}
