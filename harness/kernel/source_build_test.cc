// SPDX-License-Identifier: GPL-2.0-only
#include "core/files.h"
#include "kernel/source_build.h"

#include <algorithm>
#include <gtest/gtest.h>

namespace probegate::kernel {
namespace {

namespace fs = std::filesystem;

TEST(SourceBuild, PackageOrDirectory) {
  EXPECT_TRUE(is_source_package("linux-source-6.1"));
  EXPECT_TRUE(is_source_package("linux-source-6.12"));
  EXPECT_FALSE(is_source_package("linux-source"));
  EXPECT_FALSE(is_source_package("/usr/src/linux-source-6.1"));
  EXPECT_FALSE(is_source_package("linux-source-6.1.tar.xz"));
}

TEST(SourceBuild, OptionsSetToY) {
  EXPECT_EQ(options_set_y("# comment\nCONFIG_PCI=y\nCONFIG_FOO=m\n# CONFIG_BAR is not set\n"
                          "  CONFIG_SMP=y  \nCONFIG_LOCALVERSION=\"-x\"\nCONFIG_YES=yes\n"),
            (std::vector<std::string>{"CONFIG_PCI", "CONFIG_SMP"}));
}

TEST(SourceBuild, DroppedOptionsNameTheirFragment) {
  const std::vector<Fragment> fragments{
      {"kernel-configs/probegate-guest.config", "CONFIG_PCI=y\nCONFIG_PVH=y\nCONFIG_SMP=y\n"},
      {"mine.config", "CONFIG_NOPE=y\n"},
  };
  const std::string config = "CONFIG_PCI=y\n# CONFIG_PVH is not set\nCONFIG_SMP=y\n";
  const auto dropped = dropped_options(fragments, config);
  ASSERT_EQ(dropped.size(), 2u);
  EXPECT_EQ(dropped[0], "CONFIG_PVH=y (kernel-configs/probegate-guest.config): the final .config "
                        "has '# CONFIG_PVH is not set'");
  EXPECT_EQ(dropped[1], "CONFIG_NOPE=y (mine.config): the final .config has no such option");
  EXPECT_TRUE(
      dropped_options(fragments, "CONFIG_PCI=y\nCONFIG_PVH=y\nCONFIG_SMP=y\nCONFIG_NOPE=y\n")
          .empty());
}

TEST(SourceBuild, ALaterFragmentMayWithdrawAnOption) {
  const std::vector<Fragment> fragments{
      {"ours", "CONFIG_SMP=y\nCONFIG_PCI=y\nCONFIG_NET=y\n"},
      {"yours", "# CONFIG_SMP is not set\nCONFIG_PCI=m\n"},
      {"later", "CONFIG_NET=y\n"},
  };
  const auto dropped = dropped_options(fragments, "CONFIG_PCI=m\n");
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_NE(dropped[0].find("CONFIG_NET=y (later)"), std::string::npos) << dropped[0];
}

TEST(SourceBuild, ListingIdentityIgnoresOrderButNotStamps) {
  std::vector<FileStamp> files{{"Makefile", 10, 1}, {"kernel/fork.c", 20, 2}};
  const auto a = listing_identity(files);
  std::ranges::reverse(files);
  EXPECT_EQ(listing_identity(files), a);
  files[0].mtime_ns = 3;
  EXPECT_NE(listing_identity(files), a);
}

TEST(SourceBuild, KeyCoversEveryInput) {
  const std::vector<Fragment> ours{{"ours", "CONFIG_PCI=y\n"}};
  const auto key = build_key("package linux-source-6.1_6.1.192-2", ours, false, "");
  EXPECT_EQ(key, build_key("package linux-source-6.1_6.1.192-2", {{"renamed", "CONFIG_PCI=y\n"}},
                           false, ""))
      << "contents count, not names";
  EXPECT_NE(key, build_key("package linux-source-6.1_6.1.193-1", ours, false, ""));
  EXPECT_NE(key, build_key("package linux-source-6.1_6.1.192-2", {{"ours", "CONFIG_PCI=m\n"}},
                           false, ""));
  const auto builtin = build_key("package linux-source-6.1_6.1.192-2", ours, true, "aaaa");
  EXPECT_NE(key, builtin);
  EXPECT_NE(builtin, build_key("package linux-source-6.1_6.1.192-2", ours, true, "bbbb"));
}

TEST(SourceBuild, HooksSlowprobeIntoDriversMisc) {
  EXPECT_EQ(hook_misc_makefile("obj-y += a.o"), "obj-y += a.o\nobj-$(CONFIG_SLOWPROBE)\t\t+= "
                                                "slowprobe/\n");
  auto kconfig = hook_misc_kconfig("menu \"Misc devices\"\nsource \"x/Kconfig\"\nendmenu\n");
  ASSERT_TRUE(kconfig);
  EXPECT_EQ(*kconfig, "menu \"Misc devices\"\nsource \"x/Kconfig\"\nsource "
                      "\"drivers/misc/slowprobe/Kconfig\"\nendmenu\n");
  EXPECT_FALSE(hook_misc_kconfig("config X\n"));
}

// Runs nothing; answers like the real programs would and makes the files
// they would make, so the builder's whole flow runs without a compiler.
class ScriptedRunner final : public proc::ProcessRunner {
public:
  std::function<void(const core::Command&)> on_make_config; // after olddefconfig
  std::vector<core::Command> commands;
  // The main make's output: three kbuild steps among make's own lines.
  std::vector<std::string> build_lines{"make[1]: Entering directory '/b'", "  CC      init/main.o",
                                       "  CC [M]  drivers/misc/x.o", "  LD      vmlinux",
                                       "Kernel: arch/x86/boot/bzImage is ready  (#1)"};

  core::Result<proc::ProcessResult> run(const core::Command& command,
                                        const proc::LineSink& sink) override {
    commands.push_back(command);
    proc::ProcessResult result;
    result.exit_code = 0;
    const auto& argv = command.argv;
    const auto has = [&](std::string_view word) {
      return std::ranges::find(argv, word) != argv.end();
    };
    if (argv[0] == "git") {
      result.exit_code = 128; // not a git checkout
    } else if (argv[0] == "cp") {
      std::error_code ec;
      fs::copy(argv[2], argv[3], fs::copy_options::recursive, ec);
      result.exit_code = ec ? 1 : 0;
    } else if (argv[0] == "make") {
      const fs::path build = std::string(*std::ranges::find_if(argv, [](auto& a) {
                               return a.starts_with("O=");
                             })).substr(2);
      if (has("tinyconfig")) {
        (void)core::write_file_atomic(build / ".config", "# tiny\n");
      } else if (has("olddefconfig")) {
        on_make_config(command);
      } else if (has("vmlinux")) {
        (void)core::write_file_atomic(build / "vmlinux", "\x7f"
                                                         "ELF");
        (void)core::write_file_atomic(build / "arch/x86/boot/bzImage", "bz");
        (void)core::write_file_atomic(build / "include/config/kernel.release", "6.1.192\n");
        // What the real runner does: every line to the sink and the log.
        std::string log;
        for (const auto& line : build_lines) {
          log += line + "\n";
          if (sink)
            sink(line);
        }
        if (!command.log_path.empty())
          (void)core::write_file_atomic(command.log_path, log);
      }
    }
    return result;
  }
};

class SourceBuilderTest : public ::testing::Test {
protected:
  void SetUp() override {
    auto tmp = core::TempDir::create(::testing::TempDir(), "source-build-");
    ASSERT_TRUE(tmp);
    m_tmp.emplace(std::move(*tmp));
    m_source = m_tmp->path() / "linux";
    for (const auto* file : {"Makefile", "scripts/kconfig/merge_config.sh"})
      ASSERT_TRUE(core::write_file_atomic(m_source / file, "# file\n"));
    ASSERT_TRUE(core::write_file_atomic(m_source / "drivers/misc/Makefile", "obj-y += misc.o\n"));
    ASSERT_TRUE(core::write_file_atomic(m_source / "drivers/misc/Kconfig",
                                        "menu \"Misc devices\"\nendmenu\n"));
    m_runner.on_make_config = [&](const core::Command& command) {
      const auto o =
          std::ranges::find_if(command.argv, [](const auto& a) { return a.starts_with("O="); });
      (void)core::write_file_atomic(fs::path(o->substr(2)) / ".config", m_final_config);
    };
  }

  core::Result<fs::path> build(SourceBuildRequest request) {
    SourceBuilder builder(m_runner, m_tmp->path() / "cache", PROBEGATE_SOURCE_DIR,
                          [&](std::string_view line) { m_progress.emplace_back(line); });
    return builder.build(request);
  }

  // Every =y of kernel-configs/, as a Kconfig that kept them all would write.
  std::string all_kept() {
    std::string config;
    for (const auto& entry : fs::directory_iterator(PROBEGATE_SOURCE_DIR "/kernel-configs"))
      for (const auto& option : options_set_y(*core::read_file(entry.path())))
        config += option + "=y\n";
    return config;
  }

  std::optional<core::TempDir> m_tmp;
  fs::path m_source;
  ScriptedRunner m_runner;
  std::string m_final_config;
  std::vector<std::string> m_progress;
};

TEST_F(SourceBuilderTest, BuildsOnceThenReusesTheEntry) {
  m_final_config = all_kept();
  auto built = build({m_source.string(), {}, false});
  ASSERT_TRUE(built) << built.error().message;
  EXPECT_EQ(built->filename(), "build");
  EXPECT_EQ(built->parent_path().parent_path(), m_tmp->path() / "cache" / "builds");
  EXPECT_TRUE(fs::exists(built->parent_path() / "complete.json"));
  // The stages, in order, all out of tree.
  std::vector<std::string> stages;
  for (const auto& c : m_runner.commands)
    stages.push_back(c.argv[0] == "make" ? "make " + c.argv.back() : c.argv[0]);
  EXPECT_EQ(stages, (std::vector<std::string>{"git", "make tinyconfig", "sh", "make olddefconfig",
                                              "make modules"}));
  const auto& merge = m_runner.commands[2].argv;
  EXPECT_EQ(merge[1], (m_source / "scripts/kconfig/merge_config.sh").string());
  EXPECT_EQ(merge.back(), PROBEGATE_SOURCE_DIR "/kernel-configs/probegate-guest.config");
  const auto& make = m_runner.commands[4].argv;
  EXPECT_EQ(make[2], m_source.string());
  EXPECT_EQ(make[3], "O=" + built->string());
  EXPECT_EQ(make[4], "CC=gcc-12");
  EXPECT_FALSE(m_runner.commands[4].log_path.empty());

  m_runner.commands.clear();
  auto again = build({m_source.string(), {}, false});
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *built);
  ASSERT_EQ(m_runner.commands.size(), 1u) << "only the source identity is asked again";

  // A touched source file is a new source.
  ASSERT_TRUE(core::write_file_atomic(m_source / "Makefile", "# changed\n"));
  auto changed = build({m_source.string(), {}, false});
  ASSERT_TRUE(changed);
  EXPECT_NE(*changed, *built);
}

TEST_F(SourceBuilderTest, DroppedOptionIsAUsageErrorNamingTheFragment) {
  const fs::path mine = m_tmp->path() / "mine.config";
  ASSERT_TRUE(core::write_file_atomic(mine, "CONFIG_WANTED=y\n"));
  m_final_config = all_kept();
  auto built = build({m_source.string(), {mine}, false});
  ASSERT_FALSE(built);
  EXPECT_EQ(built.error().kind, core::ErrorKind::usage);
  EXPECT_NE(built.error().message.find("CONFIG_WANTED=y (" + mine.string() + ")"),
            std::string::npos)
      << built.error().message;
  EXPECT_EQ(m_runner.commands[2].argv.back(), mine.string()) << "the user's fragment goes last";
}

TEST_F(SourceBuilderTest, BuiltinSlowprobeBuildsFromACopy) {
  m_final_config = all_kept() + "CONFIG_SLOWPROBE=y\n";
  auto built = build({m_source.string(), {}, true});
  ASSERT_TRUE(built) << built.error().message;
  const fs::path copy = built->parent_path() / "src";
  EXPECT_EQ(*core::read_file(m_source / "drivers/misc/Makefile"), "obj-y += misc.o\n")
      << "the user's tree is never written to";
  EXPECT_NE(core::read_file(copy / "drivers/misc/Makefile")->find("slowprobe/"), std::string::npos);
  EXPECT_NE(core::read_file(copy / "drivers/misc/Kconfig")->find("drivers/misc/slowprobe/Kconfig"),
            std::string::npos);
  EXPECT_TRUE(fs::exists(copy / "drivers/misc/slowprobe/slowprobe.c"));
  EXPECT_NE(core::read_file(copy / "drivers/misc/slowprobe/Kconfig")->find("depends on PCI"),
            std::string::npos);
  const auto cp =
      std::ranges::find_if(m_runner.commands, [](const auto& c) { return c.argv[0] == "cp"; });
  ASSERT_NE(cp, m_runner.commands.end());
  EXPECT_EQ(cp->argv[1], "-al");
  const auto make = std::ranges::find_if(m_runner.commands,
                                         [](const auto& c) { return c.argv.back() == "modules"; });
  EXPECT_EQ((*make).argv[2], copy.string());
  const auto merge =
      std::ranges::find_if(m_runner.commands, [](const auto& c) { return c.argv[0] == "sh"; });
  EXPECT_EQ(merge->argv.back(), (built->parent_path() / "slowprobe.config").string());

  // Kconfig dropped the symbol: an error naming --builtin-slowprobe.
  m_final_config = all_kept();
  ASSERT_TRUE(core::write_file_atomic(m_source / "Makefile", "# another source\n"));
  auto dropped = build({m_source.string(), {}, true});
  ASSERT_FALSE(dropped);
  EXPECT_NE(dropped.error().message.find("CONFIG_SLOWPROBE=y (--builtin-slowprobe)"),
            std::string::npos)
      << dropped.error().message;
}

TEST_F(SourceBuilderTest, IncrementalBuildUsesTheCallersDirEveryTime) {
  m_final_config = all_kept();
  const fs::path dir = m_tmp->path() / "bisect-build";
  SourceBuilder builder(m_runner, m_tmp->path() / "cache", PROBEGATE_SOURCE_DIR,
                        [](std::string_view) {});
  for (int i = 0; i < 2; ++i) {
    m_runner.commands.clear();
    auto built = builder.build_incremental(m_source, dir, {});
    ASSERT_TRUE(built) << built.error().message;
    EXPECT_EQ(*built, dir);
    ASSERT_EQ(m_runner.commands.size(), 4u) << "config and make again: make decides what is new";
    EXPECT_EQ(m_runner.commands.back().argv[3], "O=" + dir.string());
    EXPECT_EQ(m_runner.commands.back().argv[2], m_source.string());
  }
  EXPECT_FALSE(fs::exists(m_tmp->path() / "cache" / "builds"));
}

TEST(SourceBuild, KbuildStepsAreItsQuietLines) {
  for (const auto* step :
       {"  CC      init/main.o", "  CC [M]  drivers/misc/slowprobe/slowprobe.o",
        "  HOSTCC  scripts/basic/fixdep", "  LD      vmlinux", "  AR      built-in.a",
        "  MODPOST Module.symvers", "  OBJCOPY arch/x86/boot/setup.bin"})
    EXPECT_TRUE(kbuild_step(step)) << step;
  for (const auto* other :
       {"make[1]: Entering directory '/b'", "Kernel: arch/x86/boot/bzImage is ready  (#1)", "",
        "  CC", "  cc      init/main.o", "CC      init/main.o", "  C       x", "  CC [M]  ",
        "#\n# configuration written to .config", "  2       x"})
    EXPECT_FALSE(kbuild_step(other)) << other;
}

TEST_F(SourceBuilderTest, TheEtaOfABuildComesFromTheLastBuildOfTheSameSource) {
  m_final_config = all_kept();
  std::vector<std::string> drawn;
  core::LiveOutput live{.enabled = true,
                        .draw = [&](std::string_view line) { drawn.emplace_back(line); },
                        .now = [] { return std::chrono::steady_clock::time_point{}; },
                        .columns = [] { return 200; }};
  auto build_live = [&](std::vector<fs::path> fragments) {
    drawn.clear();
    SourceBuilder builder(
        m_runner, m_tmp->path() / "cache", PROBEGATE_SOURCE_DIR, [](std::string_view) {}, live);
    return builder.build({m_source.string(), std::move(fragments), false});
  };
  auto contains = [&](std::string_view text) {
    return std::ranges::any_of(drawn, [&](const auto& d) { return d.find(text) != d.npos; });
  };
  ASSERT_TRUE(build_live({}));
  // The clock stands still: only the first draw of each make is due.
  EXPECT_TRUE(contains("probegate: building linux: 1 step, 0s"))
      << "no earlier build: steps, no ETA";
  EXPECT_FALSE(contains("eta"));
  const fs::path mine = m_tmp->path() / "mine.config";
  ASSERT_TRUE(core::write_file_atomic(mine, "# nothing more\n"));
  ASSERT_TRUE(build_live({mine})) << "another entry of the same source dir";
  EXPECT_TRUE(contains(": 1/~3 steps (33%)")) << "the first build's log held 3 steps";
  EXPECT_EQ(drawn.back(), "") << "the line is cleared after the build";
}

TEST_F(SourceBuilderTest, BadSourcesAreUsageErrors) {
  auto missing = build({(m_tmp->path() / "nope").string(), {}, false});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, core::ErrorKind::usage);

  auto not_kernel = build({m_tmp->path().string(), {}, false});
  ASSERT_FALSE(not_kernel);
  EXPECT_EQ(not_kernel.error().kind, core::ErrorKind::usage);
  EXPECT_NE(not_kernel.error().message.find("not a kernel source tree"), std::string::npos);

  ASSERT_TRUE(core::write_file_atomic(m_source / ".config", "CONFIG_X=y\n"));
  auto dirty = build({m_source.string(), {}, false});
  ASSERT_FALSE(dirty);
  EXPECT_EQ(dirty.error().kind, core::ErrorKind::usage);
  EXPECT_NE(dirty.error().message.find("make mrproper"), std::string::npos);

  auto unknown = build({"linux-source-0.1", {}, false});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().kind, core::ErrorKind::usage);
  EXPECT_NE(unknown.error().message.find("no package linux-source-0.1"), std::string::npos)
      << unknown.error().message;
  std::erase_if(m_runner.commands, [](const auto& c) { return c.argv[0] == "apt-cache"; });

  fs::remove(m_source / ".config");
  auto no_fragment = build({m_source.string(), {m_tmp->path() / "missing.config"}, false});
  ASSERT_FALSE(no_fragment);
  EXPECT_EQ(no_fragment.error().kind, core::ErrorKind::usage);
  EXPECT_NE(no_fragment.error().message.find("--fragment"), std::string::npos);
  EXPECT_TRUE(
      m_runner.commands.empty() ||
      std::ranges::all_of(m_runner.commands, [](const auto& c) { return c.argv[0] == "git"; }))
      << "nothing is built for bad input";
}

} // namespace
} // namespace probegate::kernel
