// SPDX-License-Identifier: GPL-2.0-only
#include "pool/hosts.h"

#include "core/files.h"
#include "core/text.h"
#include "suite/located.h"
#include "vm/libvirt.h"

#include <fmt/ranges.h>
#include <regex>
#include <set>

namespace probegate::pool {

namespace {

using suite::Located;

const std::vector<std::string> k_host_keys{"uri", "name", "slots", "labels", "pool", "pool_dir"};
constexpr int k_max_slots = 64;

// The name a host goes by when its entry gives none: its URI's host[:port],
// or "local".
std::string default_name(const std::string& uri) {
  static const std::regex authority(R"(^[a-z0-9+]+://(?:[^@/]*@)?([^/?#]*))");
  std::smatch m;
  std::string name = std::regex_search(uri, m, authority) ? m[1].str() : "";
  std::ranges::replace(name, ':', '_');
  return name.empty() ? "local" : name;
}

bool plain_name(std::string_view name) {
  static const std::regex form(R"(^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$)");
  return std::regex_match(name.begin(), name.end(), form);
}

core::Result<std::string> scalar(const YAML::Node& node, const Located& loc, std::string_view key,
                                 std::string_view must) {
  if (!node.IsScalar())
    return loc.error(node.Mark(), "'{}' must be {}", key, must);
  return node.Scalar();
}

core::Result<Host> parse_host(const YAML::Node& entry, const Located& loc) {
  if (!entry.IsMap())
    return loc.error(entry.Mark(), "each host is a map with a 'uri' (and {}), not a {}",
                     fmt::join(std::vector(k_host_keys.begin() + 1, k_host_keys.end()), ", "),
                     entry.IsSequence() ? "list" : "plain value");
  Host host;
  host.where = loc.at(entry.Mark());
  std::set<std::string> seen;
  bool named = false;
  for (const auto& item : entry) {
    if (!item.first.IsScalar())
      return loc.error(item.first.Mark(), "a host's keys are plain words ({})",
                       fmt::join(k_host_keys, ", "));
    const std::string key = item.first.Scalar();
    const YAML::Node& value = item.second;
    if (!seen.insert(key).second)
      return loc.error(item.first.Mark(), "'{}' is given twice for this host; keep one", key);
    if (key == "uri") {
      auto uri = scalar(value, loc, key, "a libvirt URI, e.g. qemu+tcp://HOST/system");
      if (!uri)
        return std::unexpected(uri.error());
      if (auto ok = vm::check_libvirt_uri(*uri, "'uri'"); !ok)
        return loc.error(value.Mark(), "{}", ok.error().message);
      if (uri->starts_with("qemu:///embed"))
        return loc.error(value.Mark(),
                         "a pool host is a libvirt daemon (qemu:///system, qemu+tcp://HOST/system, "
                         "qemu+ssh://USER@HOST/system); the embedded driver is what --backend "
                         "libvirt uses without --hosts");
      host.uri = *uri;
    } else if (key == "name") {
      auto name = scalar(value, loc, key, "a short name");
      if (!name)
        return std::unexpected(name.error());
      if (!plain_name(*name))
        return loc.error(value.Mark(),
                         "'name' must be letters, digits, '.', '_' or '-' (at most 63), not '{}'",
                         core::printable(*name));
      host.name = *name;
      named = true;
    } else if (key == "slots") {
      auto text =
          scalar(value, loc, key, fmt::format("a number of cases at once, 1 to {}", k_max_slots));
      if (!text)
        return std::unexpected(text.error());
      static const std::regex digits(R"(^[0-9]{1,3}$)");
      const int slots = std::regex_match(*text, digits) ? std::stoi(*text) : 0;
      if (slots < 1 || slots > k_max_slots)
        return loc.error(value.Mark(),
                         "'slots' must be a number of cases at once, 1 to {}, not "
                         "'{}'",
                         k_max_slots, core::printable(*text));
      host.slots = slots;
    } else if (key == "labels") {
      if (!value.IsMap())
        return loc.error(value.Mark(), "'labels' must be a map of plain values, e.g. "
                                       "{{kvm: true, rack: b2}}");
      for (const auto& label : value) {
        if (!label.first.IsScalar() || !label.second.IsScalar())
          return loc.error(label.first.Mark(), "'labels' must be a map of plain values, e.g. "
                                               "{{kvm: true, rack: b2}}");
        host.labels[label.first.Scalar()] = label.second.Scalar();
      }
      if (auto kvm = host.labels.find("kvm");
          kvm != host.labels.end() && kvm->second != "true" && kvm->second != "false")
        return loc.error(value.Mark(), "label 'kvm' must be true or false, not '{}'",
                         core::printable(kvm->second));
    } else if (key == "pool") {
      auto pool = scalar(value, loc, key, "a storage pool name");
      if (!pool)
        return std::unexpected(pool.error());
      if (!plain_name(*pool))
        return loc.error(value.Mark(),
                         "'pool' must be a storage pool name (letters, digits, "
                         "'.', '_', '-'), not '{}'",
                         core::printable(*pool));
      host.storage_pool = *pool;
    } else if (key == "pool_dir") {
      auto dir = scalar(value, loc, key, "an absolute directory on that host");
      if (!dir)
        return std::unexpected(dir.error());
      if (!dir->starts_with('/') || dir->find_first_of("'\"<>&\n") != std::string::npos)
        return loc.error(value.Mark(),
                         "'pool_dir' must be an absolute directory on that host, "
                         "not '{}'",
                         core::printable(*dir));
      host.pool_dir = *dir;
    } else {
      return loc.error(item.first.Mark(), "unknown key '{}' for a host; allowed: {}",
                       core::printable(key), fmt::join(k_host_keys, ", "));
    }
  }
  if (host.uri.empty())
    return loc.error(entry.Mark(), "this host has no 'uri' (e.g. uri: qemu+tcp://HOST/system)");
  if (!named)
    host.name = default_name(host.uri);
  return host;
}

} // namespace

bool Host::kvm() const {
  auto found = labels.find("kvm");
  return found != labels.end() && found->second == "true";
}

bool can_run(const Host& host, std::string_view accel) {
  return accel != "kvm" || host.kvm();
}

core::Result<std::vector<Host>> parse_hosts(std::string_view text, std::string_view file) {
  const Located loc{std::string(file)};
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return loc.error(e.mark, "not valid YAML: {}", e.msg);
  }
  const auto shape = "a hosts file is a map with one key, 'hosts', and a list of hosts under it";
  if (!root.IsMap())
    return loc.error(root.Mark(), "{}", shape);
  std::vector<Host> hosts;
  try {
    YAML::Node list;
    YAML::Mark key = root.Mark();
    for (const auto& item : root) {
      if (!item.first.IsScalar() || item.first.Scalar() != "hosts")
        return loc.error(item.first.Mark(), "{}; '{}' is not allowed", shape,
                         item.first.IsScalar() ? core::printable(item.first.Scalar()) : "?");
      list = item.second;
      key = item.first.Mark();
    }
    if (!list.IsSequence() || list.size() == 0)
      return loc.error(list.IsDefined() && !list.IsNull() ? list.Mark() : key,
                       "'hosts' must be a non-empty list of hosts, each with a 'uri'");
    std::map<std::string, std::string> names, uris; // -> where first given
    for (const auto& entry : list) {
      auto host = parse_host(entry, loc);
      if (!host)
        return std::unexpected(host.error());
      if (auto [it, fresh] = uris.emplace(host->uri, host->where); !fresh)
        return loc.error(entry.Mark(),
                         "URI {} is listed twice (first at {}): give it more 'slots' instead",
                         vm::redact_uri(host->uri), it->second);
      if (auto [it, fresh] = names.emplace(host->name, host->where); !fresh)
        return loc.error(entry.Mark(),
                         "host name '{}' is taken (by {}): give this host a 'name' of its own",
                         host->name, it->second);
      hosts.push_back(std::move(*host));
    }
  } catch (const YAML::Exception& e) {
    return loc.error(e.mark, "{}", e.msg);
  }
  return hosts;
}

core::Result<std::vector<Host>> load_hosts(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    return core::usage_error("hosts file {} does not exist or is not a file (--hosts)",
                             file.string());
  if (std::filesystem::file_size(file, ec) > 1 << 20)
    return core::usage_error("hosts file {} is larger than 1 MiB; that is no hosts file",
                             file.string());
  auto text = core::read_file(file);
  if (!text)
    return std::unexpected(text.error());
  return parse_hosts(*text, file.string());
}

} // namespace probegate::pool
