// SPDX-License-Identifier: GPL-2.0-only
// End to end: every malformed suite and command line of
// harness/testdata/malformed/ makes the real binary exit 2 with a message that
// names the file:line:column or the option, before anything boots, and puts
// nothing raw on the terminal. Wall times are printed, never asserted.
#include "core/files.h"
#include "core/text.h"
#include "e2e/e2e_support.h"
#include "proc/process_runner.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fmt/core.h>
#include <fstream>
#include <gtest/gtest.h>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace probegate {
namespace {

namespace fs = std::filesystem;

const fs::path k_dir = PROBEGATE_TESTDATA "/malformed";

// A bug the table marks as known (reported, not fixed yet) and how it shows.
struct Known {
  enum class Symptom { accepted, crash, raw_control, no_line, says };
  Symptom symptom = Symptom::accepted;
  std::string text; // says:"TEXT"
  std::string note;
};

// One malformed input: the arguments after `probegate`, the fragment the
// message must hold, and what the table says about it.
struct Entry {
  std::string name; // for the test's name
  std::string label;
  std::vector<std::string> args;
  std::string fragment;
  bool needs_index = false;
  bool as_nobody = false; // run through setpriv: root reads any file
  std::optional<Known> known;
};

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos)
    return {};
  const auto last = s.find_last_not_of(" \t");
  return std::string(s.substr(first, last - first + 1));
}

std::vector<std::string> split(const std::string& s, std::string_view separator) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t at; (at = s.find(separator, start)) != std::string::npos;
       start = at + separator.size())
    out.push_back(s.substr(start, at - start));
  out.push_back(s.substr(start));
  return out;
}

// \e -> ESC, \xNN -> the byte, \s -> space, "" -> the empty argument.
std::string unescape(const std::string& token) {
  if (token == "\"\"")
    return {};
  std::string out;
  for (size_t i = 0; i < token.size(); ++i) {
    if (token[i] == '\\' && i + 1 < token.size()) {
      if (token[i + 1] == 'e') {
        out += '\x1b';
        ++i;
        continue;
      }
      if (token[i + 1] == 's') {
        out += ' ';
        ++i;
        continue;
      }
      if (token[i + 1] == 'x' && i + 3 < token.size()) {
        out += static_cast<char>(std::stoi(token.substr(i + 2, 2), nullptr, 16));
        i += 3;
        continue;
      }
    }
    out += token[i];
  }
  return out;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t at = 0; (at = s.find(from, at)) != std::string::npos; at += to.size())
    s.replace(at, from.size(), to);
  return s;
}

std::string test_name(std::string_view text) {
  std::string out;
  for (char c : text)
    out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

// "needs-index", "known: SYMPTOM note" columns.
void read_flags(Entry& e, const std::vector<std::string>& columns, size_t from) {
  for (size_t i = from; i < columns.size(); ++i) {
    const std::string column = trim(columns[i]);
    if (column == "needs-index") {
      e.needs_index = true;
      continue;
    }
    if (!column.starts_with("known:")) {
      ADD_FAILURE() << "unknown column '" << column << "' in the entry " << e.label;
      continue;
    }
    Known k;
    std::string rest = trim(column.substr(6));
    const std::string word = rest.substr(0, rest.find_first_of(" :"));
    if (word == "accepted")
      k.symptom = Known::Symptom::accepted;
    else if (word == "crash")
      k.symptom = Known::Symptom::crash;
    else if (word == "raw-control")
      k.symptom = Known::Symptom::raw_control;
    else if (word == "no-line")
      k.symptom = Known::Symptom::no_line;
    else if (word == "says")
      k.symptom = Known::Symptom::says;
    else
      ADD_FAILURE() << "unknown symptom '" << word << "' in the entry " << e.label;
    rest = rest.substr(word.size());
    if (k.symptom == Known::Symptom::says) {
      const auto open = rest.find('"');
      const auto close = rest.find('"', open + 1);
      if (open != 1 || close == std::string::npos)
        ADD_FAILURE() << "says: needs a quoted text in the entry " << e.label;
      else {
        k.text = rest.substr(open + 1, close - open - 1);
        rest = rest.substr(close + 1);
      }
    }
    k.note = trim(rest);
    e.known = k;
  }
}

std::vector<std::string> table_lines(const fs::path& file) {
  std::vector<std::string> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (!trim(line).empty() && !line.starts_with("#"))
      out.push_back(line);
  return out;
}

// suites.txt: FILE | fragment [| flags...]; {file} is FILE's path.
std::vector<Entry> suite_entries() {
  std::vector<Entry> out;
  for (const auto& line : table_lines(k_dir / "suites.txt")) {
    const auto columns = split(line, " | ");
    Entry e;
    const std::string file = trim(columns[0]);
    const std::string path = (k_dir / file).string();
    e.name = "suite_" + test_name(fs::path(file).stem().string());
    e.label = file;
    e.args = {"run", path};
    e.fragment = columns.size() > 1 ? replace_all(trim(columns[1]), "{file}", path) : "";
    read_flags(e, columns, 2);
    out.push_back(std::move(e));
  }
  return out;
}

// options.txt: ARGS | fragment [| flags...].
std::vector<Entry> option_entries() {
  std::vector<Entry> out;
  int n = 0;
  for (const auto& line : table_lines(k_dir / "options.txt")) {
    const auto columns = split(line, " | ");
    Entry e;
    e.label = trim(columns[0]);
    e.name = fmt::format("option_{:02}_{}", ++n, test_name(e.label.substr(0, 40)));
    std::istringstream words(e.label);
    for (std::string word; words >> word;)
      e.args.push_back(unescape(replace_all(replace_all(word, "{dir}", k_dir.string()), "{suites}",
                                            std::string(PROBEGATE_SOURCE_DIR) + "/suites")));
    e.fragment = columns.size() > 1 ? trim(columns[1]) : "";
    read_flags(e, columns, 2);
    out.push_back(std::move(e));
  }
  return out;
}

// Inputs that cannot be committed: made by the test in its own directory.
std::vector<Entry> generated_entries() {
  std::vector<Entry> out;
  auto add = [&](std::string name, std::string file, std::string fragment) {
    Entry e;
    e.name = "generated_" + name;
    e.label = "(generated) " + name;
    e.args = {"run", "{tmp}/" + file};
    e.fragment = std::move(fragment);
    out.push_back(std::move(e));
  };
  add("larger_than_1_MiB", "huge.yaml", "{tmp}/huge.yaml is larger than 1 MiB");
  add("directory", "a-directory.yaml", "{tmp}/a-directory.yaml does not exist or is not a file");
  add("fifo", "a-fifo.yaml", "{tmp}/a-fifo.yaml does not exist or is not a file");
  add("dangling_symlink", "dangling.yaml", "{tmp}/dangling.yaml does not exist or is not a file");
  add("nested_100000_deep", "deep.yaml", "{tmp}/deep.yaml:1:");
  add("unreadable", "unreadable.yaml", "cannot read {tmp}/unreadable.yaml");
  out.back().as_nobody = true;
  return out;
}

std::vector<Entry> all_entries() {
  auto out = suite_entries();
  for (auto* more : {option_entries, generated_entries})
    for (auto& e : more())
      out.push_back(std::move(e));
  return out;
}

std::string visible(std::string_view text) {
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    out += c == '\n' || (c >= 0x20 && c < 0x7f) ? std::string(1, ch) : fmt::format("\\x{:02x}", c);
  }
  return out;
}

struct Ran {
  int exit_code = -1;
  int signal = 0;
  bool timed_out = false;
  std::string output; // stdout and stderr, one '\n' per line
  double seconds = 0;
};

Ran run_probegate(const std::vector<std::string>& args, bool as_nobody) {
  auto runner = proc::make_process_runner();
  core::Command command;
  if (as_nobody)
    command.argv = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"};
  command.argv.push_back(PROBEGATE_BINARY);
  command.argv.insert(command.argv.end(), args.begin(), args.end());
  command.timeout = std::chrono::seconds(120); // a hang shows as timed_out, not as a stuck test
  Ran out;
  const auto started = std::chrono::steady_clock::now();
  auto ran = runner->run(command, [&](std::string_view line) {
    out.output.append(line).push_back('\n');
    return proc::LineAction::keep_going;
  });
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (ran) {
    out.exit_code = ran->exit_code;
    out.signal = ran->signal;
    out.timed_out = ran->timed_out;
  } else {
    out.output += ran.error().message;
  }
  return out;
}

// Why the Debian package index is not there to resolve kernels, or "".
const std::string& no_index_reason() {
  static const std::string reason = [] {
    const Ran listed = run_probegate({"kernels", "list", "--offline"}, false);
    if (listed.exit_code != 0 || listed.output.find("no saved index") != std::string::npos ||
        listed.output.find("debian:6.1 ") == std::string::npos)
      return "no saved Debian package index (`probegate kernels list` needs network once): " +
             listed.output;
    return std::string();
  }();
  return reason;
}

struct Timing {
  std::string label;
  double seconds;
};
std::mutex g_timings_lock;
std::vector<Timing> g_timings;

// Prints the wall time of every input after the run; 5 s is the target.
class TimingReport final : public ::testing::Environment {
public:
  void TearDown() override {
    std::lock_guard guard(g_timings_lock);
    if (g_timings.empty())
      return;
    std::ranges::sort(g_timings,
                      [](const auto& a, const auto& b) { return a.seconds > b.seconds; });
    double total = 0;
    int over = 0;
    for (const auto& t : g_timings) {
      total += t.seconds;
      over += t.seconds >= 5 ? 1 : 0;
    }
    fmt::print("malformed inputs: {} run, {:.2f} s in all, slowest {:.2f} s, median {:.3f} s, "
               "{} took 5 s or more\n",
               g_timings.size(), total, g_timings.front().seconds,
               g_timings[g_timings.size() / 2].seconds, over);
    for (size_t i = 0; i < g_timings.size() && (i < 5 || g_timings[i].seconds >= 5); ++i)
      fmt::print("  {:7.3f} s  {}\n", g_timings[i].seconds, visible(g_timings[i].label));
  }
};
const auto* const g_timing_report = ::testing::AddGlobalTestEnvironment(new TimingReport);

// gtest prints a failing test's parameter: its table line, not its bytes.
void PrintTo(const Entry& e, std::ostream* out) {
  *out << visible(e.label);
}

class Malformed : public ::testing::TestWithParam<Entry> {
protected:
  void SetUp() override {
    auto tmp = core::TempDir::create(fs::temp_directory_path(), "probegate-malformed-");
    ASSERT_TRUE(tmp);
    m_tmp.emplace(std::move(*tmp));
    // Traversable by the unprivileged user of the unreadable-file case.
    ::chmod(m_tmp->path().c_str(), 0755);
  }

  // The generated inputs, made where {tmp} points.
  void make_generated(const std::string& name) {
    const fs::path dir = m_tmp->path();
    if (name == "larger_than_1_MiB") {
      std::string text = "# SPDX-License-Identifier: GPL-2.0-only\ncases:\n  - id: a\n";
      while (text.size() <= (1u << 20))
        text += "# padding padding padding padding padding padding padding padding padding\n";
      ASSERT_TRUE(core::write_file_atomic(dir / "huge.yaml", text));
    } else if (name == "directory") {
      fs::create_directory(dir / "a-directory.yaml");
    } else if (name == "fifo") {
      ASSERT_EQ(::mkfifo((dir / "a-fifo.yaml").c_str(), 0644), 0);
    } else if (name == "dangling_symlink") {
      fs::create_symlink(dir / "nowhere.yaml", dir / "dangling.yaml");
    } else if (name == "nested_100000_deep") {
      ASSERT_TRUE(core::write_file_atomic(dir / "deep.yaml", "cases: " + std::string(100000, '[') +
                                                                 std::string(100000, ']')));
    } else if (name == "unreadable") {
      ASSERT_TRUE(core::write_file_atomic(dir / "unreadable.yaml", "cases:\n  - id: a\n"));
      fs::permissions(dir / "unreadable.yaml", fs::perms::none);
    }
  }

  std::optional<core::TempDir> m_tmp;
};

TEST_P(Malformed, Exits2BeforeAnythingBoots) {
  Entry e = GetParam();
  const std::string tmp = m_tmp->path().string();
  if (e.name.starts_with("generated_"))
    make_generated(e.name.substr(10));
  if (e.needs_index && !no_index_reason().empty())
    PROBEGATE_E2E_SKIP() << no_index_reason();
  if (e.as_nobody && ::geteuid() == 0 && !fs::exists("/usr/bin/setpriv"))
    PROBEGATE_E2E_SKIP() << "root reads a mode-000 file, and setpriv (util-linux) is missing";
  e.as_nobody = e.as_nobody && ::geteuid() == 0;
  for (auto& a : e.args)
    a = replace_all(a, "{tmp}", tmp);
  e.fragment = replace_all(e.fragment, "{tmp}", tmp);
  if (e.args[0] == "boot" || e.args[0] == "run" || e.args[0] == "bisect")
    e.args.insert(e.args.end(), {"--results", tmp + "/results"});
  // A suite that is wrongly accepted stops at the filter: no kernel fetch, no boot.
  const bool stop_at_filter =
      e.args[0] == "run" && e.known && e.known->symptom == Known::Symptom::accepted;
  if (stop_at_filter)
    e.args.insert(e.args.end(), {"--filter", "probegate-malformed-no-such-case"});

  const Ran ran = run_probegate(e.args, e.as_nobody);
  {
    std::lock_guard guard(g_timings_lock);
    g_timings.push_back({e.label, ran.seconds});
  }
  fmt::print("{:.3f} s, exit {}{}: {}\n", ran.seconds, ran.exit_code,
             ran.signal ? fmt::format(" (signal {})", ran.signal) : "", visible(ran.output));

  // Never, known bug or not: a boot, a hang.
  EXPECT_EQ(ran.output.find("booting"), std::string::npos) << "something booted";
  EXPECT_FALSE(ran.timed_out) << "probegate hung for 120 s";

  const size_t unsafe = core::first_unsafe_byte(ran.output);
  const bool fragment = ran.output.find(e.fragment) != std::string::npos;
  const bool clean = ran.signal == 0 && ran.exit_code == 2 && fragment &&
                     unsafe == std::string::npos && ran.output.find(":0:0:") == std::string::npos &&
                     !fs::exists(fs::path(tmp) / "results");
  if (!e.known) {
    EXPECT_EQ(ran.signal, 0) << "probegate died of a signal";
    EXPECT_EQ(ran.exit_code, 2) << visible(ran.output);
    EXPECT_TRUE(fragment) << "expected '" << visible(e.fragment) << "' in:\n"
                          << visible(ran.output);
    EXPECT_EQ(unsafe, std::string::npos)
        << "raw control byte or invalid UTF-8 at " << unsafe << ":\n"
        << visible(ran.output);
    EXPECT_EQ(ran.output.find(":0:0:"), std::string::npos) << "no real line:\n"
                                                           << visible(ran.output);
    EXPECT_FALSE(fs::exists(fs::path(tmp) / "results")) << "bad input wrote results";
    return;
  }
  // A known bug must still show as the table says (a test that could fail
  // both ways); once fixed, its entry becomes a normal one.
  const auto& k = *e.known;
  bool shows = false;
  switch (k.symptom) {
  case Known::Symptom::accepted:
    shows = stop_at_filter
                ? ran.exit_code == 2 && ran.output.find("matches none of the") != std::string::npos
                : ran.signal == 0 && ran.exit_code == 0;
    break;
  case Known::Symptom::crash:
    shows = ran.signal != 0;
    break;
  case Known::Symptom::raw_control:
    shows = ran.exit_code == 2 && unsafe != std::string::npos;
    break;
  case Known::Symptom::no_line:
    shows = ran.exit_code == 2 && !fragment;
    break;
  case Known::Symptom::says:
    shows = ran.exit_code == 2 && ran.output.find(k.text) != std::string::npos;
    break;
  }
  EXPECT_TRUE(shows) << e.label << " no longer shows its known bug (" << k.note << "); "
                     << (clean ? "it exits 2 cleanly now: drop its 'known:' column"
                               : "and it is not clean either")
                     << ":\n"
                     << visible(ran.output);
  if (k.symptom != Known::Symptom::raw_control) {
    EXPECT_EQ(unsafe, std::string::npos) << visible(ran.output);
  }
  if (shows)
    fmt::print("known bug (issue 7): {}: {}\n", visible(e.label), k.note);
}

std::string entry_name(const ::testing::TestParamInfo<Entry>& param) {
  return param.param.name;
}

INSTANTIATE_TEST_SUITE_P(Inputs, Malformed, ::testing::ValuesIn(all_entries()), entry_name);

TEST(MalformedCorpus, HoldsAtLeastFiftyInputsAndEverySuiteFileIsListed) {
  const auto entries = all_entries();
  EXPECT_GE(entries.size(), 50u);
  std::vector<std::string> listed;
  for (const auto& e : suite_entries())
    listed.push_back(e.label);
  for (const auto& file : fs::directory_iterator(k_dir)) {
    if (file.path().extension() == ".yaml") {
      EXPECT_NE(std::ranges::find(listed, file.path().filename().string()), listed.end())
          << file.path() << " is in no line of suites.txt";
    }
  }
  for (const auto& e : suite_entries())
    EXPECT_TRUE(fs::exists(k_dir / e.label)) << e.label << " is listed but missing";
}

} // namespace
} // namespace probegate
