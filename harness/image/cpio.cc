// SPDX-License-Identifier: GPL-2.0-only
#include "image/cpio.h"

#include "core/files.h"

#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <array>
#include <fnmatch.h>
#include <memory>
#include <sys/stat.h>

namespace probegate::image {

namespace fs = std::filesystem;

namespace {

struct WriteCloser {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ReadCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct EntryCloser {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

la_ssize_t append_to_string(archive*, void* client, const void* buffer, size_t length) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

mode_t file_type(CpioEntry::Type type) {
  switch (type) {
  case CpioEntry::Type::file:
    return AE_IFREG;
  case CpioEntry::Type::dir:
    return AE_IFDIR;
  case CpioEntry::Type::symlink:
    return AE_IFLNK;
  case CpioEntry::Type::chardev:
    return AE_IFCHR;
  }
  return AE_IFREG;
}

} // namespace

core::Result<std::string> write_cpio(const std::vector<CpioEntry>& entries) {
  std::string out;
  std::unique_ptr<archive, WriteCloser> a(archive_write_new());
  archive_write_set_format_cpio_newc(a.get());
  archive_write_add_filter_none(a.get());
  archive_write_set_bytes_per_block(a.get(), 0); // no block padding: just the archive
  if (archive_write_open(a.get(), &out, nullptr, append_to_string, nullptr) != ARCHIVE_OK)
    return core::infra_error("libarchive: {}", archive_error_string(a.get()));
  std::int64_t ino = 1;
  for (const auto& e : entries) {
    std::unique_ptr<archive_entry, EntryCloser> entry(archive_entry_new());
    archive_entry_set_pathname(entry.get(), e.path.c_str());
    archive_entry_set_filetype(entry.get(), file_type(e.type));
    archive_entry_set_perm(entry.get(), e.mode & 07777);
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    archive_entry_set_mtime(entry.get(), 0, 0);
    archive_entry_set_nlink(entry.get(), e.type == CpioEntry::Type::dir ? 2 : 1);
    archive_entry_set_ino64(entry.get(), ino++);
    archive_entry_set_size(entry.get(), 0);
    if (e.type == CpioEntry::Type::file)
      archive_entry_set_size(entry.get(), static_cast<la_int64_t>(e.data.size()));
    if (e.type == CpioEntry::Type::symlink)
      archive_entry_set_symlink(entry.get(), e.target.c_str());
    if (e.type == CpioEntry::Type::chardev) {
      archive_entry_set_rdevmajor(entry.get(), e.dev_major);
      archive_entry_set_rdevminor(entry.get(), e.dev_minor);
    }
    if (archive_write_header(a.get(), entry.get()) != ARCHIVE_OK)
      return core::infra_error("libarchive: {}: {}", e.path, archive_error_string(a.get()));
    if (e.type == CpioEntry::Type::file && !e.data.empty() &&
        archive_write_data(a.get(), e.data.data(), e.data.size()) < 0)
      return core::infra_error("libarchive: {}: {}", e.path, archive_error_string(a.get()));
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK)
    return core::infra_error("libarchive: {}", archive_error_string(a.get()));
  out.resize((out.size() + 3) / 4 * 4, '\0');
  return out;
}

core::Result<std::vector<CpioEntry>> entries_from_tree(const fs::path& root,
                                                       const std::vector<std::string>& excludes) {
  std::vector<CpioEntry> out;
  std::error_code ec;
  auto excluded = [&](const std::string& rel) {
    return std::ranges::any_of(excludes, [&](const std::string& glob) {
      return ::fnmatch(glob.c_str(), rel.c_str(), 0) == 0;
    });
  };
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  if (ec)
    return core::infra_error("cannot read {}: {}", root.string(), ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec)
      return core::infra_error("cannot read {}: {}", root.string(), ec.message());
    const fs::path& p = it->path();
    const std::string rel = p.lexically_relative(root).string();
    if (excluded(rel)) {
      if (it->is_directory() && !it->is_symlink())
        it.disable_recursion_pending();
      continue;
    }
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0)
      return core::infra_error("cannot stat {}", p.string());
    CpioEntry e;
    e.path = rel;
    e.mode = st.st_mode & 07777;
    if (S_ISLNK(st.st_mode)) {
      e.type = CpioEntry::Type::symlink;
      e.target = fs::read_symlink(p, ec).string();
    } else if (S_ISDIR(st.st_mode)) {
      e.type = CpioEntry::Type::dir;
    } else if (S_ISREG(st.st_mode)) {
      auto data = core::read_file(p);
      if (!data)
        return std::unexpected(data.error());
      e.data = std::move(*data);
    } else {
      continue; // sockets, fifos: nothing a package ships that we need
    }
    out.push_back(std::move(e));
  }
  std::ranges::sort(out, {}, &CpioEntry::path);
  return out;
}

core::Result<std::vector<std::string>> list_cpio(std::string_view bytes) {
  std::vector<std::string> names;
  std::unique_ptr<archive, ReadCloser> a(archive_read_new());
  archive_read_support_format_cpio(a.get());
  if (archive_read_open_memory(a.get(), bytes.data(), bytes.size()) != ARCHIVE_OK)
    return core::infra_error("libarchive: {}", archive_error_string(a.get()));
  archive_entry* entry = nullptr;
  int r = ARCHIVE_OK;
  while ((r = archive_read_next_header(a.get(), &entry)) == ARCHIVE_OK)
    names.emplace_back(archive_entry_pathname(entry));
  if (r != ARCHIVE_EOF)
    return core::infra_error("libarchive: {}", archive_error_string(a.get()));
  return names;
}

} // namespace probegate::image
