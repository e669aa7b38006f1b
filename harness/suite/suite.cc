// SPDX-License-Identifier: GPL-2.0-only
#include "suite/suite.h"

#include "core/files.h"
#include "spec/options.h"
#include "suite/located.h"

#include <algorithm>
#include <fmt/ranges.h>
#include <fnmatch.h>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

namespace probegate::suite {

namespace {

using Values = std::vector<std::pair<std::string, YAML::Mark>>; // a scalar, or a list's items
using Options = std::map<std::string, Values>;                  // key -> values

const std::vector<std::string> k_top_keys{"suite", "description", "defaults", "matrix", "cases"};
const std::vector<std::string> k_case_extra_keys{"id", "skip", "description", "by_kernel"};

// The key node of `key` in `map` (for a place to point at).
YAML::Mark key_mark(const YAML::Node& map, std::string_view key) {
  for (const auto& item : map)
    if (item.first.IsScalar() && item.first.Scalar() == key)
      return item.first.Mark();
  return map.Mark();
}

// A plain value (a word or a number) for `what` in `map`; `must` says what
// it must be. yaml-cpp's own "bad conversion" says neither.
core::Result<std::string> plain(const YAML::Node& map, const Located& loc, std::string_view what,
                                std::string_view must) {
  const YAML::Node node = map[std::string(what)];
  // An empty value has no place of its own (yaml-cpp marks the next token).
  if (node.IsNull())
    return loc.error(key_mark(map, what), "'{}' has no value: it must be {}", what, must);
  if (!node.IsScalar())
    return loc.error(node.Mark(), "'{}' must be {}, not a {}", what, must,
                     node.IsSequence() ? "list" : "map");
  return node.Scalar();
}

// The keys of a map, each a plain word and each once (yaml-cpp would keep
// the last of two silently).
core::Result<std::vector<std::string>> keys_of(const YAML::Node& map, const Located& loc) {
  std::vector<std::string> keys;
  std::map<std::string, YAML::Mark> seen;
  for (const auto& item : map) {
    if (!item.first.IsScalar())
      return loc.error(item.first.Mark(), "keys are plain words (like devices or id), not a {}",
                       item.first.IsSequence() ? "list" : "map");
    const std::string key = item.first.Scalar();
    if (auto [it, fresh] = seen.emplace(key, item.first.Mark()); !fresh)
      return loc.error(item.first.Mark(), "'{}' is given twice (first at {}); keep one", key,
                       loc.at(it->second));
    keys.push_back(key);
  }
  return keys;
}

// Where a second YAML document starts, if there is one. Not YAML::LoadAll:
// on some malformed streams it never returns (found by the suite fuzzer);
// the parser is asked for two documents at most.
std::optional<YAML::Mark> second_document(std::string_view text) {
  struct Starts final : YAML::EventHandler {
    std::optional<YAML::Mark> start;
    void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
  };
  try {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    Starts first, second;
    if (!parser.HandleNextDocument(first) || !parser.HandleNextDocument(second))
      return std::nullopt;
    return second.start;
  } catch (const YAML::Exception& e) {
    return e.mark; // the first document parsed (YAML::Load did): a broken second one
  }
}

bool is_option(const std::string& key) {
  const spec::OptionDef* option = spec::find_option(key);
  return option && option->in_suite;
}

// Reads a map of run options; list values become several values.
core::Result<Options> read_options(const YAML::Node& map, const Located& loc,
                                   const std::vector<std::string>& extra_keys) {
  Options out;
  if (!map.IsMap())
    return loc.error(map.Mark(), "expected a map of run options");
  if (auto keys = keys_of(map, loc); !keys)
    return std::unexpected(keys.error());
  for (const auto& item : map) {
    const auto key = item.first.Scalar();
    if (std::ranges::find(extra_keys, key) != extra_keys.end())
      continue;
    if (!is_option(key))
      return loc.error(item.first.Mark(), "unknown key '{}'; allowed: {}", key,
                       fmt::join(spec::option_keys(), ", "));
    const YAML::Node& value = item.second;
    Values values;
    if (value.IsScalar()) {
      values.emplace_back(value.Scalar(), value.Mark());
    } else if (value.IsSequence() && value.size() > 0) {
      for (const auto& v : value) {
        if (!v.IsScalar())
          return loc.error(v.Mark(), "'{}' lists must hold plain values", key);
        values.emplace_back(v.Scalar(), v.Mark());
      }
    } else {
      return loc.error(value.Mark(), "'{}' must be a value or a non-empty list of values", key);
    }
    out[key] = std::move(values);
  }
  return out;
}

std::string safe(std::string_view text) {
  std::string out;
  for (char c : text)
    out +=
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ? c : '-';
  return out;
}

// The id segment a list-valued option adds: "dev2", "timeout180", "async-module-param".
std::string segment(const std::string& key, const std::string& value) {
  const std::string out = safe(std::string(spec::find_option(key)->id_prefix) + value);
  // "." or ".." would be a path step out of the case directory (fuzzer).
  return out == "." || out == ".." ? "_" + out : out;
}

} // namespace

core::Result<Suite> parse_suite(std::string_view text, std::string_view file) {
  const Located loc{std::string(file)};
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::DeepRecursion& e) {
    return loc.error(e.mark, "the YAML nests too deep (a suite needs three levels or so)");
  } catch (const YAML::Exception& e) {
    return loc.error(e.mark, "not valid YAML: {}", e.msg);
  }
  if (!root.IsMap())
    return loc.error(root.Mark(), "a suite is a map with the keys {}", fmt::join(k_top_keys, ", "));
  if (auto second = second_document(text))
    return loc.error(*second, "a suite file holds one YAML document; this is a second one (after "
                              "'---'): make it a suite of its own");
  Suite suite;
  suite.name = std::filesystem::path(file).stem().string();
  Options defaults, matrix;
  YAML::Node cases;
  bool has_cases = false; // a default YAML::Node is a defined null, so keep a flag
  try {
    if (auto keys = keys_of(root, loc); !keys)
      return std::unexpected(keys.error());
    for (const auto& item : root) {
      const auto key = item.first.Scalar();
      if (key == "suite") {
        auto name = plain(root, loc, "suite", "the suite's name, e.g. smoke");
        if (!name)
          return std::unexpected(name.error());
        suite.name = *name;
        if (suite.name.empty() || safe(suite.name) != suite.name || suite.name == "." ||
            suite.name == "..")
          return loc.error(item.second.Mark(),
                           "suite name '{}' may hold only letters, digits, "
                           "'.', '-' and '_'",
                           suite.name);
      } else if (key == "description") {
        auto description = plain(root, loc, "description", "one line of text");
        if (!description)
          return std::unexpected(description.error());
        suite.description = *description;
      } else if (key == "defaults" || key == "matrix") {
        auto options = read_options(item.second, loc, {});
        if (!options)
          return std::unexpected(options.error());
        (key == "defaults" ? defaults : matrix) = std::move(*options);
      } else if (key == "cases") {
        if (!item.second.IsSequence())
          return loc.error(item.second.Mark(), "'cases' must be a list of maps");
        cases = item.second;
        has_cases = true;
      } else {
        return loc.error(item.first.Mark(), "unknown key '{}'; allowed: {}", key,
                         fmt::join(k_top_keys, ", "));
      }
    }

    // No explicit cases: one implicit case made of defaults and matrix.
    std::vector<YAML::Node> case_nodes;
    if (has_cases)
      for (const auto& c : cases)
        case_nodes.push_back(c);
    else
      case_nodes.emplace_back(YAML::NodeType::Map);

    std::map<std::string, std::string> seen; // id -> where
    for (const auto& node : case_nodes) {
      // The implicit case has no place of its own: the document's.
      const YAML::Mark mark = has_cases ? node.Mark() : root.Mark();
      if (!node.IsMap())
        return loc.error(node.Mark(), "each case is a map with an 'id' and run options");
      if (auto keys = keys_of(node, loc); !keys)
        return std::unexpected(keys.error());
      std::string id;
      std::optional<std::string> skip;
      if (node["id"]) {
        auto given = plain(node, loc, "id", "a word of letters, digits, '.', '-' and '_'");
        if (!given)
          return std::unexpected(given.error());
        id = *given;
        if (id.empty() || safe(id) != id || id == "." || id == "..")
          return loc.error(node["id"].Mark(),
                           "case id '{}' may hold only letters, digits, '.', "
                           "'-' and '_'",
                           id);
      } else if (has_cases) {
        return loc.error(node.Mark(), "this case has no 'id'");
      }
      if (node["skip"]) {
        auto why = plain(node, loc, "skip", "the reason the case is skipped");
        if (!why)
          return std::unexpected(why.error());
        skip = *why;
      }
      auto own = read_options(node, loc, k_case_extra_keys);
      if (!own)
        return std::unexpected(own.error());
      // by_kernel: {<kernel ref>: {option: value}}: what differs on one kernel.
      std::map<std::string, std::pair<Options, YAML::Mark>> by_kernel;
      if (const auto& per = node["by_kernel"]) {
        if (!per.IsMap())
          return loc.error(per.Mark(), "by_kernel maps a kernel ref to the options that differ "
                                       "on it, e.g. by_kernel: {{debian:5.10: {{expect_skip: "
                                       "yes}}}}");
        if (auto keys = keys_of(per, loc); !keys)
          return std::unexpected(keys.error());
        for (const auto& item : per) {
          auto options = read_options(item.second, loc, {});
          if (!options)
            return std::unexpected(options.error());
          for (const auto& [key, values] : *options) {
            if (!spec::find_option(key)->by_kernel)
              return loc.error(key_mark(item.second, key), "by_kernel cannot set '{}'", key);
            if (values.size() != 1)
              return loc.error(values[1].second, "by_kernel values must be single values");
          }
          by_kernel[item.first.Scalar()] = {std::move(*options), item.first.Mark()};
        }
      }
      std::set<std::string> kernels_used;
      Options merged = defaults;
      for (auto& [k, v] : matrix)
        merged[k] = v;
      for (auto& [k, v] : *own)
        merged[k] = v;

      // Cross product over the list-valued options, in option_keys() order.
      std::vector<std::string> keys;
      for (const auto& k : spec::option_keys())
        if (merged.contains(k))
          keys.push_back(k);
      size_t combinations = 1;
      for (const auto& k : keys) {
        combinations *= merged[k].size();
        if (combinations + suite.cases.size() > k_max_cases)
          return loc.error(mark, "the suite expands to more than {} cases; split it", k_max_cases);
      }
      for (size_t n = 0; n < combinations; ++n) {
        spec::RunSpec run;
        std::string expansion;
        std::string row_expansion; // without the kernel: the row of the knob x kernel table
        size_t rest = n;           // mixed-radix digits, the last key changing fastest
        std::vector<size_t> index(keys.size());
        std::string kernel_where = loc.at(mark);
        for (size_t i = keys.size(); i-- > 0;) {
          index[i] = rest % merged[keys[i]].size();
          rest /= merged[keys[i]].size();
        }
        for (size_t i = 0; i < keys.size(); ++i) {
          const auto& [value, value_mark] = merged[keys[i]][index[i]];
          if (auto set = spec::apply_option(run, keys[i], value); !set)
            return loc.error(value_mark, "{}", set.error().message);
          if (keys[i] == "kernel")
            kernel_where = loc.at(value_mark);
          if (merged[keys[i]].size() > 1) {
            expansion += (expansion.empty() ? "" : "-") + segment(keys[i], value);
            if (keys[i] != "kernel")
              row_expansion += (row_expansion.empty() ? "" : "-") + segment(keys[i], value);
          }
        }
        kernels_used.insert(run.kernel);
        if (auto it = by_kernel.find(run.kernel); it != by_kernel.end())
          for (const auto& [key, values] : it->second.first)
            if (auto set = spec::apply_option(run, key, values[0].first); !set)
              return loc.error(values[0].second, "{}", set.error().message);
        Case c;
        c.id = suite.name;
        if (!id.empty())
          c.id += "/" + id;
        c.row = c.id;
        if (!expansion.empty())
          c.id += "/" + expansion;
        if (!row_expansion.empty())
          c.row += "/" + row_expansion;
        c.where = loc.at(mark);
        c.kernel_where = kernel_where;
        c.skip = skip;
        run.name = c.id;
        if (auto resolved = spec::check_capacity(run); !resolved)
          return core::usage_error("{}: case {}: {}", c.where, c.id, resolved.error().message);
        if (auto valid = spec::validate(run); !valid)
          return core::usage_error("{}: case {}: {}", c.where, c.id, valid.error().message);
        c.spec = std::move(run);
        if (auto [it, fresh] = seen.emplace(c.id, c.where); !fresh)
          return core::usage_error("{}: case id '{}' is already used at {}; ids must be unique",
                                   c.where, c.id, it->second);
        suite.cases.push_back(std::move(c));
      }
      for (const auto& [ref, options] : by_kernel)
        if (!kernels_used.contains(ref))
          return loc.error(options.second, "by_kernel: '{}' is none of this case's kernels ({})",
                           ref, fmt::join(kernels_used, ", "));
    }
  } catch (const YAML::Exception& e) {
    return loc.error(e.mark, "{}", e.msg);
  }
  if (suite.cases.empty())
    return loc.error(root.Mark(), "the suite has no cases");
  return suite;
}

core::Result<Suite> load_suite(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    return core::usage_error("suite {} does not exist or is not a file", file.string());
  if (std::filesystem::file_size(file, ec) > 1 << 20)
    return core::usage_error("suite {} is larger than 1 MiB; that is no suite", file.string());
  auto text = core::read_file(file);
  if (!text)
    return std::unexpected(text.error());
  return parse_suite(*text, file.string());
}

std::vector<Case> filter_cases(const std::vector<Case>& cases, std::string_view glob) {
  if (glob.empty())
    return cases;
  const std::string pattern(glob);
  std::vector<Case> out;
  for (const auto& c : cases)
    if (::fnmatch(pattern.c_str(), c.id.c_str(), 0) == 0)
      out.push_back(c);
  return out;
}

} // namespace probegate::suite
