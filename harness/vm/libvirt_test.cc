// SPDX-License-Identifier: GPL-2.0-only
#include "vm/libvirt.h"

#include <fmt/core.h>
#include <gtest/gtest.h>
#include <unistd.h>

namespace probegate::vm {
namespace {

TEST(LibvirtUri, TakesTheQemuDriversUris) {
  for (const char* uri :
       {"qemu:///system", "qemu:///session", "qemu+tcp://127.0.0.2/system",
        "qemu+tcp://lab-3:16509/system", "qemu+ssh://ci@lab-3/system?keyfile=/k",
        "qemu+unix:///system?socket=/run/x/sock", "qemu:///embed?root=/var/cache/x"})
    EXPECT_TRUE(check_libvirt_uri(uri, "--connect")) << uri;
}

TEST(LibvirtUri, RefusesTyposWithTheOptionNamed) {
  const std::pair<const char*, const char*> bad[] = {
      {"qemu+tpc://h/system", "unknown transport 'tpc'"},
      {"qemu://h/sytem", "/system, /session or /embed, not /sytem"},
      {"xen:///system", "must be a libvirt QEMU URI"},
      {"qemu:/system", "must be a libvirt QEMU URI"},
      {"qemu:///embed", "with a root"},
      {"qemu+tcp://h/embed?root=/x", "with a root"},
  };
  for (const auto& [uri, why] : bad) {
    const auto checked = check_libvirt_uri(uri, "connect");
    ASSERT_FALSE(checked) << uri;
    EXPECT_EQ(checked.error().kind, core::ErrorKind::usage);
    EXPECT_NE(checked.error().message.find(why), std::string::npos) << checked.error().message;
    EXPECT_TRUE(checked.error().message.starts_with("connect must be ")) << checked.error().message;
  }
}

TEST(LibvirtUri, RedactsCredentials) {
  EXPECT_EQ(redact_uri("qemu+tcp://alice:s3cret@lab/system"), "qemu+tcp://lab/system");
  EXPECT_EQ(redact_uri("qemu+ssh://ci@lab:22/system?keyfile=/k"),
            "qemu+ssh://lab:22/system?keyfile=/k");
  EXPECT_EQ(redact_uri("qemu:///system"), "qemu:///system");
  EXPECT_EQ(redact_uri("qemu:///embed?root=/a@b"), "qemu:///embed?root=/a@b");
}

VmSpec two_devices() {
  VmSpec spec;
  spec.kernel = "/k/vmlinux";
  spec.initrd = "/r/initramfs.img";
  spec.cmdline = "console=ttyS0 panic=-1 x=<&>";
  spec.edu_devices = 2;
  spec.config_file = "/run/a,b/run.cpio";
  return spec;
}

size_t count(const std::string& text, std::string_view what) {
  size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

// The domain carries the machine qemu_argv() boots: what libvirt models in
// its own elements, the rest as QEMU arguments, every text escaped.
TEST(DomainXml, IsTheQemuBackendsMachine) {
  const auto xml = domain_xml(two_devices(), "probegate-h-1-1-a<b");
  EXPECT_NE(xml.find("<domain type='qemu'"), std::string::npos);
  EXPECT_NE(xml.find("<name>probegate-h-1-1-a&lt;b</name>"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<memory unit='MiB'>256</memory>"), std::string::npos);
  EXPECT_NE(xml.find("<type arch='x86_64' machine='pc'>hvm</type>"), std::string::npos);
  EXPECT_NE(xml.find("<loader type='rom'>/usr/share/qemu/qboot.rom</loader>"), std::string::npos);
  EXPECT_NE(xml.find("<cmdline>console=ttyS0 panic=-1 x=&lt;&amp;&gt;</cmdline>"),
            std::string::npos);
  EXPECT_NE(xml.find("<clock offset='absolute' start='1735689600'><timer name='rtc' "
                     "track='guest'/></clock>"),
            std::string::npos);
  EXPECT_NE(xml.find("<qemu:arg value='shift=0,sleep=off'/>"), std::string::npos);
  EXPECT_EQ(count(xml, "<qemu:arg value='edu'/>"), 2U);
  EXPECT_NE(xml.find("<qemu:arg value='panic=none'/>"), std::string::npos);
  EXPECT_NE(xml.find("<qemu:arg value='name=opt/probegate/run.cpio,file=/run/a,,b/run.cpio'/>"),
            std::string::npos)
      << xml;
  // A guest panic notification (the agent's pause point) leaves it running.
  EXPECT_NE(xml.find("<on_crash>preserve</on_crash>"), std::string::npos);
  // Nothing of libvirt's defaults the qemu backend's guest lacks.
  EXPECT_NE(xml.find("<controller type='usb' model='none'/>"), std::string::npos);
  EXPECT_NE(xml.find("<memballoon model='none'/>"), std::string::npos);
}

TEST(DomainXml, KvmHasNoVirtualClock) {
  auto spec = two_devices();
  spec.accel = Accel::kvm;
  spec.clock = Clock::real_time;
  const auto xml = domain_xml(spec, "d");
  EXPECT_NE(xml.find("<domain type='kvm'"), std::string::npos);
  EXPECT_EQ(xml.find("icount"), std::string::npos);
  EXPECT_NE(xml.find("<clock offset='utc'/>"), std::string::npos);
}

TEST(DomainName, NamesHostPidAndCase) {
  const auto a = domain_name("knobs/none async");
  const auto b = domain_name("knobs/none async");
  EXPECT_TRUE(a.starts_with("probegate-")) << a;
  EXPECT_NE(a.find(fmt::format("-{}-", ::getpid())), std::string::npos) << a;
  EXPECT_TRUE(a.ends_with("-knobs_none_async")) << a;
  EXPECT_NE(a, b); // repeats of one case run side by side
}

} // namespace
} // namespace probegate::vm
