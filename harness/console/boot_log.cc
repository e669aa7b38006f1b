// SPDX-License-Identifier: GPL-2.0-only
#include "console/boot_log.h"

#include "core/text.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

namespace probegate::console {

namespace {

bool contains(std::string_view text, std::string_view what) {
  return text.find(what) != std::string_view::npos;
}

int to_int(const std::string& s) {
  int v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// "[   12.345678] text" -> (12.345678, "text"); lines without a stamp keep t empty.
std::pair<std::optional<double>, std::string_view> split_stamp(std::string_view line) {
  if (line.size() < 3 || line.front() != '[')
    return {std::nullopt, line};
  const auto close = line.find(']');
  if (close == std::string_view::npos)
    return {std::nullopt, line};
  auto stamp = line.substr(1, close - 1);
  while (!stamp.empty() && stamp.front() == ' ')
    stamp.remove_prefix(1);
  double t = 0;
  const auto [ptr, ec] = std::from_chars(stamp.data(), stamp.data() + stamp.size(), t);
  if (ec != std::errc() || ptr != stamp.data() + stamp.size())
    return {std::nullopt, line};
  auto rest = line.substr(close + 1);
  if (!rest.empty() && rest.front() == ' ')
    rest.remove_prefix(1);
  return {t, rest};
}

std::map<std::string, std::string> key_values(std::string_view text) {
  std::map<std::string, std::string> out;
  std::istringstream in{std::string(text)};
  std::string word;
  while (in >> word) {
    if (const auto eq = word.find('='); eq != std::string::npos && eq > 0)
      out[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return out;
}

} // namespace

const AgentFact* BootLog::fact(std::string_view event) const {
  for (const auto& f : facts)
    if (f.event == event)
      return &f;
  return nullptr;
}

bool ConsoleParser::full(size_t records) {
  if (records < k_max_records)
    return false;
  ++m_log.dropped_records;
  return true;
}

void ConsoleParser::feed(std::string_view raw) {
  static const std::regex probe_start(R"(^slowprobe (\S+): probe start (.*)$)");
  static const std::regex probe_end(R"(^slowprobe (\S+): probe end (.*)$)");
  static const std::regex failed_61(R"((\S+): probe of (\S+) failed with error (-?\d+))");
  static const std::regex failed_612(
      R"(^(\S+) (\S+): probe with driver (\S+) failed with error (-?\d+))");
  static const std::regex worker(
      R"((?:(\S+): )?Worker \[(\d+)\] processing SEQNUM=(\d+) (is taking a long time|killed))");
  static const std::regex terminated(R"((?:(\S+): )?Worker \[(\d+)\] terminated by signal (\d+))");
  static const std::regex worker_failed(R"((?:(\S+): )?Worker \[(\d+)\] failed)");

  ++m_log.lines;
  auto [t, text] = split_stamp(raw);
  if (t)
    m_log.last_time_s = t;
  // std::regex recurses once per character: a guest's 30 KB line overflows
  // the stack (found by the console fuzzer). Real kernel lines stop at 1 KiB
  // (printk's LOG_LINE_MAX); longer ones are matched on their first 2 KiB.
  constexpr size_t k_max_matched = 2048;
  const std::string line(text.substr(0, k_max_matched));
  std::smatch m;

  if (line.starts_with("probegate: ")) {
    auto fields = key_values(std::string_view(line).substr(11));
    AgentFact fact{t, fields["event"], {}};
    fields.erase("event");
    fact.fields = std::move(fields);
    if (fact.event == "userspace" && fact.fields.contains("udev") && !m_log.udev_version) {
      if (const auto version = core::parse_int(fact.fields.at("udev")); version && *version > 0)
        m_log.udev_version = version;
    }
    if (full(m_log.facts.size()))
      return;
    m_log.facts.push_back(std::move(fact));
    return;
  }
  if (line.starts_with("slowprobe")) {
    if (line.starts_with("slowprobe: init start ")) {
      auto kv = key_values(std::string_view(line).substr(22));
      m_log.loader_pid = to_int(kv["pid"]);
      m_log.module_init_start_s = t;
      return;
    }
    if (line.starts_with("slowprobe: init done ")) {
      auto kv = key_values(std::string_view(line).substr(21));
      m_log.module_init_done_s = t;
      m_log.module_init_ret = to_int(kv["ret"]);
      if (kv.contains("async_requested"))
        m_log.module_async_requested = kv["async_requested"] == "1";
      return;
    }
    if (std::regex_search(line, m, probe_start)) {
      if (!m_log.probes.contains(m[1]) && full(m_log.probes.size()))
        return;
      auto& probe = m_log.probes[m[1]];
      auto kv = key_values(m[2].str());
      probe.device = m[1];
      probe.pid = to_int(kv["pid"]);
      probe.comm = kv["comm"];
      probe.start_s = t;
      return;
    }
    if (std::regex_search(line, m, probe_end)) {
      if (!m_log.probes.contains(m[1]) && full(m_log.probes.size()))
        return;
      auto& probe = m_log.probes[m[1]];
      auto kv = key_values(m[2].str());
      probe.device = m[1];
      probe.end_s = t;
      probe.result = to_int(kv["result"]);
      probe.misc = kv["misc"] == "-" ? "" : kv["misc"];
      return;
    }
  }
  if (contains(line, "failed with error") && !full(m_log.kernel_probe_failures.size())) {
    if (std::regex_search(line, m, failed_612) && m[1] == m[3]) {
      m_log.kernel_probe_failures[m[2]] = to_int(m[4]);
      return;
    }
    if (std::regex_search(line, m, failed_61)) {
      m_log.kernel_probe_failures[m[2]] = to_int(m[3]);
      return;
    }
  }
  if (contains(line, "Worker [")) {
    UdevWorkerLine w;
    w.t_s = t;
    if (std::regex_search(line, m, worker)) {
      w.kind = m[4] == "killed" ? UdevWorkerLine::Kind::killed : UdevWorkerLine::Kind::slow;
      w.device = m[1];
      w.worker_pid = to_int(m[2]);
      w.seqnum = to_int(m[3]);
    } else if (std::regex_search(line, m, terminated)) {
      w.kind = UdevWorkerLine::Kind::terminated;
      w.device = m[1];
      w.worker_pid = to_int(m[2]);
      w.signal = to_int(m[3]);
    } else if (std::regex_search(line, m, worker_failed)) {
      w.kind = UdevWorkerLine::Kind::failed;
      w.device = m[1];
      w.worker_pid = to_int(m[2]);
    } else {
      return;
    }
    // systemd-udevd prefixes "systemd-udevd[pid]: " which is not a device.
    if (w.device.find("systemd-udevd") == 0 || w.device.ends_with("]:"))
      w.device.clear();
    if (!full(m_log.udev.size()))
      m_log.udev.push_back(std::move(w));
    return;
  }
  if (line.starts_with("systemd[1]: ")) {
    feed_systemd(std::string_view(line).substr(12), t.value_or(0));
    return;
  }
  if (line.starts_with("Linux version ")) {
    ++m_log.banners;
    if (m_log.linux_version.empty())
      m_log.linux_version = line.substr(14, line.find(' ', 14) - 14);
    return;
  }
  if (contains(line, "Kernel panic - not syncing")) {
    if (!m_log.panic)
      m_log.panic = line;
    return;
  }
  if (contains(line, "Initramfs unpacking failed")) {
    m_log.initramfs_error = line;
    return;
  }
  if (m_log.oops && !m_log.oops_rip && line.starts_with("RIP: 0010:")) {
    m_log.oops_rip = line.substr(10);
    return;
  }
  if (!m_log.oops && (line.starts_with("Oops:") || contains(line, "BUG: ") ||
                      contains(line, "general protection fault") ||
                      contains(line, "------------[ cut here ]------------")))
    m_log.oops = line;
}

namespace {

// "initrd.target - Initrd Default Target." -> "initrd.target";
// "Initrd Default Target." -> "Initrd Default Target".
std::string unit_of(std::string_view text) {
  if (const auto dash = text.find(" - "); dash != std::string_view::npos)
    text = text.substr(0, dash);
  while (text.ends_with('.'))
    text.remove_suffix(1);
  return std::string(text);
}

} // namespace

void ConsoleParser::feed_systemd(std::string_view text, double t) {
  auto record = [&](std::vector<std::pair<std::string, double>>& into, std::string_view rest) {
    if (!full(into.size()))
      into.emplace_back(unit_of(rest), t);
  };
  if (text.starts_with("systemd ") && contains(text, " running in system mode")) {
    if (!m_log.systemd_version) {
      int version = 0;
      const auto digits = text.substr(8);
      const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), version);
      if (ec == std::errc() && version > 0)
        m_log.systemd_version = version;
    }
  } else if (text.starts_with("Reached target ")) {
    record(m_log.systemd_reached, text.substr(15));
  } else if (text.starts_with("Timed out waiting for device ")) {
    record(m_log.systemd_device_timeouts, text.substr(29));
  } else if (text.starts_with("Dependency failed for ")) {
    record(m_log.systemd_dependency_failed, text.substr(22));
  } else if (!m_log.systemd_emergency_s && (text.starts_with("Starting emergency.service") ||
                                            text.starts_with("Starting Emergency Shell") ||
                                            text.starts_with("Starting probegate emergency") ||
                                            contains(text, "You are in emergency mode"))) {
    m_log.systemd_emergency_s = t;
  }
}

BootLog parse_console(std::string_view text) {
  ConsoleParser parser;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    parser.feed(line);
    if (nl == std::string_view::npos)
      break;
    text.remove_prefix(nl + 1);
  }
  return parser.take();
}

core::Result<BootLog> parse_console_file(const std::filesystem::path& path) {
  constexpr size_t k_max_line = 64 * 1024; // as proc/boost_process_runner.cc
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return core::usage_error("cannot read {}: {}", path.string(), std::strerror(errno));
  ConsoleParser parser;
  std::string line;
  auto finish = [&] {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    parser.feed(line);
    line.clear();
  };
  std::vector<char> buf(64 * 1024);
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) {
      const char c = buf[static_cast<size_t>(i)];
      if (c == '\n' || line.size() >= k_max_line)
        finish();
      if (c != '\n')
        line += c;
    }
  }
  if (in.bad())
    return core::usage_error("cannot read {}: {}", path.string(), std::strerror(errno));
  if (!line.empty())
    finish();
  return parser.take();
}

} // namespace probegate::console
