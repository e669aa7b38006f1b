// SPDX-License-Identifier: GPL-2.0-only
#include "drivers/cli_docs.h"

#include "spec/options.h"

#include <fmt/format.h>
#include <functional>

namespace probegate::drivers {

namespace {

bool visible(const CLI::App* app) {
  return !app->get_group().empty();
}

// Text for roff: backslashes escaped, a line never starting as a request.
std::string roff(std::string_view text) {
  std::string out;
  bool line_start = true;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\''))
      out += "\\&";
    if (c == '\\')
      out += "\\e";
    else if (c == '-')
      out += "\\-";
    else
      out += c;
    line_start = c == '\n';
  }
  return out;
}

std::vector<const CLI::App*> subcommands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* a) { return visible(a); });
}

std::vector<const CLI::Option*> options(const CLI::App& app) {
  return app.get_options(
      [&](const CLI::Option* o) { return o != app.get_help_ptr() && !o->get_group().empty(); });
}

std::string option_names(const CLI::Option* o) {
  if (o->get_positional())
    return fmt::format("\\fI{}\\fR", roff(o->get_name(true)));
  std::string out;
  for (const auto& s : o->get_snames())
    out += fmt::format("{}\\fB\\-{}\\fR", out.empty() ? "" : ", ", s);
  for (const auto& l : o->get_lnames())
    out += fmt::format("{}\\fB\\-\\-{}\\fR", out.empty() ? "" : ", ", roff(l));
  if (o->get_items_expected_max() > 0 && !o->get_type_name().empty())
    out += fmt::format(" \\fI{}\\fR", roff(o->get_type_name()));
  return out;
}

void man_command(const CLI::App& app, const std::string& path, std::string& out) {
  std::string usage = path;
  for (const auto* o : options(app))
    if (o->get_positional())
      usage +=
          fmt::format(" {}", o->get_required() ? o->get_name(true) : "[" + o->get_name(true) + "]");
  if (!subcommands(app).empty())
    usage += " COMMAND";
  out += fmt::format(".SS \"{}\"\n{}\n", roff(usage), roff(app.get_description()));
  for (const auto* o : options(app)) {
    out += fmt::format(".TP\n{}\n{}", option_names(o), roff(o->get_description()));
    if (!o->get_default_str().empty())
      out += fmt::format(" (default: {})", roff(o->get_default_str()));
    out += "\n";
  }
  for (const auto* sub : subcommands(app))
    man_command(*sub, path + " " + sub->get_name(), out);
}

// The words an option takes, where they are few: the run options' choices.
std::vector<std::string> choices(const CLI::Option* o) {
  for (const auto& def : spec::run_options()) {
    if (o->get_lnames().empty() || "--" + o->get_lnames().front() != def.flag)
      continue;
    if (def.type == spec::OptionType::choice)
      return {def.words.begin(), def.words.end()};
    if (def.type == spec::OptionType::yes_no && !def.cli_switch)
      return {"yes", "no"};
  }
  return {};
}

void bash_cases(const CLI::App& app, const std::string& path, std::string& out) {
  std::string words;
  for (const auto* sub : subcommands(app))
    words += sub->get_name() + " ";
  std::string values; // options that take a value: their completions
  for (const auto* o : options(app)) {
    if (o->get_positional())
      continue;
    for (const auto& l : o->get_lnames())
      words += "--" + l + " ";
    for (const auto& s : o->get_snames())
      words += "-" + s + " ";
    if (o->get_items_expected_max() == 0 || o->get_lnames().empty())
      continue;
    const std::string flag = "--" + o->get_lnames().front();
    std::string reply;
    if (const auto c = choices(o); !c.empty())
      reply = fmt::format("COMPREPLY=($(compgen -W '{}' -- \"$cur\"))", fmt::join(c, " "));
    else if (flag == "--kernel" || flag == "--kernels")
      reply = "COMPREPLY=($(compgen -W \"$(probegate kernels list --offline 2>/dev/null | "
              "grep -o 'debian:[^ ]*' | sort -u)\" -- \"$cur\"))";
    else if (flag == "--results" || flag == "--out" || flag == "--source" ||
             flag == "--build-dir" || flag == "--resume")
      reply = "COMPREPLY=($(compgen -d -- \"$cur\"))";
    else if (flag == "--durations" || flag == "--fragment")
      reply = "COMPREPLY=($(compgen -f -- \"$cur\"))";
    else
      reply = "COMPREPLY=()";
    values += fmt::format("        {}) {}; return ;;\n", flag, reply);
  }
  std::string positional = "COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))";
  if (path == "run" || path == "parse")
    positional =
        "COMPREPLY=($(compgen -W \"$words\" -- \"$cur\") $(compgen -f -X '!*.@(yaml|yml|log)' "
        "-- \"$cur\") $(compgen -d -- \"$cur\"))";
  else if (path == "merge" || path == "report")
    positional = "COMPREPLY=($(compgen -W \"$words\" -- \"$cur\") $(compgen -d -- \"$cur\"))";
  out += fmt::format("    '{}')\n      words='{}'\n      case $prev in\n{}      esac\n      "
                     "[[ $cur == -* ]] && {{ COMPREPLY=($(compgen -W \"$words\" -- \"$cur\")); "
                     "return; }}\n      {}\n      ;;\n",
                     path, words, values, positional);
  for (const auto* sub : subcommands(app))
    bash_cases(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), out);
}

} // namespace

std::string man_page(const CLI::App& app) {
  std::string out = fmt::format(
      ".\\\" SPDX-License-Identifier: GPL-2.0-only\n"
      ".\\\" Made by `probegate man` from the command line's own definition.\n"
      ".TH PROBEGATE 1 \"\" \"probegate {}\" \"User Commands\"\n"
      ".ad l\n"
      ".SH NAME\nprobegate \\- {}\n"
      ".SH SYNOPSIS\n.B probegate\n[\\fB\\-v\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]\n"
      ".SH DESCRIPTION\n"
      "probegate boots real Linux kernels in QEMU, with a test driver whose probe is slow, "
      "and judges whether udev's event timeout killed the module load: the devices never "
      "appear, and with a storage driver the machine does not boot. Each command below lists "
      "its options; the run options are the keys of a suite case too, with _ for \\-.\n"
      ".SH OPTIONS\n",
      PROBEGATE_VERSION, roff(app.get_description().substr(app.get_description().find(':') + 2)));
  for (const auto* o : options(app))
    out += fmt::format(".TP\n{}\n{}\n", option_names(o), roff(o->get_description()));
  out += ".SH COMMANDS\n";
  for (const auto* sub : subcommands(app))
    man_command(*sub, "probegate " + sub->get_name(), out);
  out += ".SH EXIT STATUS\n"
         ".TP\n0\nevery verdict passed (or skipped)\n"
         ".TP\n1\na verdict failed, crashed or was flaky (under `bisect\\-run`, the commit is "
         "bad)\n"
         ".TP\n2\nbad input: a malformed suite, an unknown kernel or option, a missing file, "
         "an impossible combination; results already written are kept\n"
         ".TP\n3\ninfrastructure trouble (QEMU, a download, a lost shard), never a kernel "
         "failure\n"
         ".TP\n130\ninterrupted\n"
         ".SH ENVIRONMENT\n"
         ".TP\nPROBEGATE_CACHE\nthe cache (default: $XDG_CACHE_HOME/probegate, else "
         "~/.cache/probegate)\n"
         ".TP\nCI\nunder CI=true an end\\-to\\-end test that cannot run fails\n"
         ".TP\nCI_NODE_INDEX, CI_NODE_TOTAL\nread by \\fB\\-\\-shard auto\\fR\n"
         ".SH FILES\n"
         "Each session directory holds summary.json, junit.xml, report.html and one "
         "directory per run with result.json and console.log.\n"
         ".SH SEE ALSO\n\\fBqemu\\-system\\-x86_64\\fR(1), \\fBsystemd\\-udevd\\fR(8), "
         "\\fBgit\\-bisect\\fR(1)\n";
  return out;
}

std::string bash_completion(const CLI::App& app) {
  std::string cases;
  bash_cases(app, "", cases);
  return fmt::format(
      "# SPDX-License-Identifier: GPL-2.0-only\n"
      "# bash completion for probegate, made by `probegate completion bash`.\n"
      "_probegate() {{\n"
      "  local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}\n"
      "  local path='' words i w\n"
      "  # The subcommand path so far: the words that are subcommands.\n"
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "    w=${{COMP_WORDS[i]}}\n"
      "    case \"${{path:+$path }}$w\" in\n"
      "{}"
      "    esac\n"
      "  done\n"
      "  shopt -s extglob\n"
      "  case $path in\n"
      "{}"
      "  esac\n"
      "}}\n"
      "complete -F _probegate probegate\n",
      [&] {
        std::string known;
        std::function<void(const CLI::App&, const std::string&)> walk = [&](const CLI::App& a,
                                                                            const std::string& p) {
          for (const auto* sub : subcommands(a)) {
            const std::string next = p.empty() ? sub->get_name() : p + " " + sub->get_name();
            known += fmt::format("      '{}') path='{}' ;;\n", next, next);
            walk(*sub, next);
          }
        };
        walk(app, "");
        return known;
      }(),
      cases);
}

std::string zsh_completion(const CLI::App& app) {
  return "#compdef probegate\n"
         "# SPDX-License-Identifier: GPL-2.0-only\n"
         "# zsh completion for probegate, made by `probegate completion zsh`: the bash\n"
         "# completion through bashcompinit.\n"
         "autoload -U +X bashcompinit && bashcompinit\n" +
         bash_completion(app);
}

} // namespace probegate::drivers
