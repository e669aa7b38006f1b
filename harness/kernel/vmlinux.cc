// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/vmlinux.h"

#include <archive.h>
#include <archive_entry.h>
#include <array>
#include <memory>

namespace probegate::kernel {

namespace {

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};

// Decompresses one stream starting at `data` with libarchive's raw reader;
// empty when it is not a stream libarchive understands.
std::string decompress(std::string_view data) {
  std::unique_ptr<archive, ArchiveCloser> a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  if (archive_read_open_memory(a.get(), data.data(), data.size()) != ARCHIVE_OK)
    return {};
  archive_entry* entry = nullptr;
  if (archive_read_next_header(a.get(), &entry) != ARCHIVE_OK)
    return {};
  std::string out;
  std::array<char, 1 << 16> buffer{};
  for (;;) {
    const la_ssize_t n = archive_read_data(a.get(), buffer.data(), buffer.size());
    if (n < 0)
      break; // trailing bytes after the stream: keep what was decoded
    if (n == 0)
      break;
    out.append(buffer.data(), static_cast<size_t>(n));
  }
  return out;
}

} // namespace

core::Result<std::string> extract_vmlinux(std::string_view bzimage) {
  static constexpr std::array<std::string_view, 3> k_magics{
      std::string_view("\xFD\x37\x7A\x58\x5A\x00", 6), // xz
      std::string_view("\x28\xB5\x2F\xFD", 4),         // zstd
      std::string_view("\x1F\x8B\x08", 3),             // gzip
  };
  for (const auto magic : k_magics) {
    for (size_t pos = bzimage.find(magic); pos != std::string_view::npos;
         pos = bzimage.find(magic, pos + 1)) {
      std::string elf = decompress(bzimage.substr(pos));
      if (elf.size() > 4 && elf.starts_with("\x7F"
                                            "ELF"))
        return elf;
    }
  }
  return core::infra_error("no xz, zstd or gzip stream holding an ELF image was found in the "
                           "kernel image ({} bytes): is it a bzImage?",
                           bzimage.size());
}

} // namespace probegate::kernel
