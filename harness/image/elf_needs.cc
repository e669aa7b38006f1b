// SPDX-License-Identifier: GPL-2.0-only
#include "image/elf_needs.h"

#include <cstring>
#include <elf.h>
#include <nlohmann/json.hpp>

namespace probegate::image {

namespace {

// systemd's dlopen metadata (https://uapi-group.org/specifications/specs/elf_dlopen_metadata/):
// owner "FDO", this type, a JSON array of {"soname": [...], ...} as payload.
constexpr std::uint32_t k_note_dlopen = 0x407c0c0a;

// Copies a T out of the image at `offset` if it fits (the image need not be aligned).
template <typename T> std::optional<T> at(std::string_view bytes, std::uint64_t offset) {
  if (offset > bytes.size() || bytes.size() - offset < sizeof(T))
    return std::nullopt;
  T out;
  std::memcpy(&out, bytes.data() + offset, sizeof(T));
  return out;
}

// A NUL-terminated string at `offset`, bounded by the image.
std::optional<std::string> string_at(std::string_view bytes, std::uint64_t offset) {
  if (offset >= bytes.size())
    return std::nullopt;
  const auto end = bytes.find('\0', offset);
  if (end == std::string_view::npos)
    return std::nullopt;
  return std::string(bytes.substr(offset, end - offset));
}

std::vector<std::string> split_path(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    const auto colon = list.find(':');
    if (auto part = list.substr(0, colon); !part.empty())
      out.emplace_back(part);
    if (colon == std::string_view::npos)
      break;
    list.remove_prefix(colon + 1);
  }
  return out;
}

void read_dlopen_payload(std::string_view desc, ElfNeeds& out) {
  if (const auto nul = desc.find('\0'); nul != std::string_view::npos)
    desc = desc.substr(0, nul);
  const auto json = nlohmann::json::parse(desc, nullptr, false);
  if (!json.is_array()) // metadata only: a malformed note is ignored, not fatal
    return;
  for (const auto& entry : json) {
    if (!entry.is_object() || !entry.contains("soname") || !entry["soname"].is_array())
      continue;
    std::vector<std::string> names;
    for (const auto& name : entry["soname"])
      if (name.is_string())
        names.push_back(name.get<std::string>());
    if (!names.empty())
      out.dlopen.push_back(std::move(names));
  }
}

// Walks the notes of one SHT_NOTE section or PT_NOTE segment.
void read_notes(std::string_view bytes, std::uint64_t offset, std::uint64_t size,
                std::uint64_t align, ElfNeeds& out) {
  if (offset > bytes.size() || size > bytes.size() - offset)
    return;
  align = align == 8 ? 8 : 4;
  auto pad = [&](std::uint64_t n) { return (n + align - 1) / align * align; };
  const std::string_view notes = bytes.substr(offset, size);
  std::uint64_t pos = 0;
  while (auto note = at<Elf64_Nhdr>(notes, pos)) {
    const std::uint64_t name_at = pos + sizeof(Elf64_Nhdr);
    const std::uint64_t desc_at = name_at + pad(note->n_namesz);
    if (desc_at > notes.size() || note->n_descsz > notes.size() - desc_at)
      return;
    const auto name = notes.substr(name_at, note->n_namesz);
    if (note->n_type == k_note_dlopen && name == std::string_view("FDO\0", 4))
      read_dlopen_payload(notes.substr(desc_at, note->n_descsz), out);
    pos = desc_at + pad(note->n_descsz);
  }
}

} // namespace

core::Result<std::optional<ElfNeeds>> read_elf_needs(std::string_view bytes) {
  if (!bytes.starts_with(ELFMAG))
    return std::optional<ElfNeeds>();
  if (bytes.size() < EI_NIDENT || bytes[EI_CLASS] != ELFCLASS64 || bytes[EI_DATA] != ELFDATA2LSB)
    return core::infra_error("not a 64-bit little-endian ELF file");
  const auto header = at<Elf64_Ehdr>(bytes, 0);
  if (!header)
    return core::infra_error("truncated ELF header");
  ElfNeeds out;
  out.shared_object = header->e_type == ET_DYN;

  std::vector<Elf64_Phdr> segments;
  if (header->e_phentsize != sizeof(Elf64_Phdr) && header->e_phnum != 0)
    return core::infra_error("unexpected program header size {}", header->e_phentsize);
  for (std::uint64_t i = 0; i < header->e_phnum; ++i) {
    auto ph = at<Elf64_Phdr>(bytes, header->e_phoff + i * sizeof(Elf64_Phdr));
    if (!ph)
      return core::infra_error("program header {} is outside the file", i);
    segments.push_back(*ph);
  }
  // A virtual address (as DT_STRTAB holds) -> file offset, through PT_LOAD.
  auto file_offset = [&](std::uint64_t vaddr) -> std::optional<std::uint64_t> {
    for (const auto& ph : segments)
      if (ph.p_type == PT_LOAD && vaddr >= ph.p_vaddr && vaddr - ph.p_vaddr < ph.p_filesz)
        return vaddr - ph.p_vaddr + ph.p_offset;
    return std::nullopt;
  };

  const Elf64_Phdr* dynamic = nullptr;
  for (const auto& ph : segments) {
    if (ph.p_type == PT_INTERP) {
      auto interp = string_at(bytes, ph.p_offset);
      if (!interp)
        return core::infra_error("PT_INTERP is outside the file");
      out.interp = std::move(*interp);
    } else if (ph.p_type == PT_DYNAMIC) {
      dynamic = &ph;
    }
  }

  if (dynamic) {
    std::optional<std::uint64_t> strtab;
    std::vector<std::uint64_t> needed;
    std::optional<std::uint64_t> runpath, rpath;
    for (std::uint64_t pos = 0; pos + sizeof(Elf64_Dyn) <= dynamic->p_filesz;
         pos += sizeof(Elf64_Dyn)) {
      auto dyn = at<Elf64_Dyn>(bytes, dynamic->p_offset + pos);
      if (!dyn)
        return core::infra_error("the dynamic section is outside the file");
      if (dyn->d_tag == DT_NULL)
        break;
      switch (dyn->d_tag) {
      case DT_STRTAB:
        strtab = dyn->d_un.d_ptr;
        break;
      case DT_NEEDED:
        needed.push_back(dyn->d_un.d_val);
        break;
      case DT_RUNPATH:
        runpath = dyn->d_un.d_val;
        break;
      case DT_RPATH:
        rpath = dyn->d_un.d_val;
        break;
      default:
        break;
      }
    }
    const auto strings = strtab ? file_offset(*strtab) : std::nullopt;
    if ((!needed.empty() || runpath || rpath) && !strings)
      return core::infra_error("DT_STRTAB is missing or outside every PT_LOAD segment");
    auto str = [&](std::uint64_t index) -> core::Result<std::string> {
      auto s = string_at(bytes, *strings + index);
      if (!s)
        return core::infra_error("a dynamic string is outside the file");
      return *s;
    };
    for (const auto index : needed) {
      auto name = str(index);
      if (!name)
        return std::unexpected(name.error());
      out.needed.push_back(std::move(*name));
    }
    // ld.so ignores DT_RPATH when DT_RUNPATH is present.
    if (const auto path = runpath ? runpath : rpath) {
      auto list = str(*path);
      if (!list)
        return std::unexpected(list.error());
      out.runpath = split_path(*list);
    }
  }

  // Notes: from the section headers where there are any (strip keeps
  // them), else from the PT_NOTE segments.
  bool sections = false;
  if (header->e_shnum != 0 && header->e_shentsize == sizeof(Elf64_Shdr)) {
    for (std::uint64_t i = 0; i < header->e_shnum; ++i) {
      auto sh = at<Elf64_Shdr>(bytes, header->e_shoff + i * sizeof(Elf64_Shdr));
      if (!sh)
        break;
      sections = true;
      if (sh->sh_type == SHT_NOTE)
        read_notes(bytes, sh->sh_offset, sh->sh_size, sh->sh_addralign, out);
    }
  }
  if (!sections)
    for (const auto& ph : segments)
      if (ph.p_type == PT_NOTE)
        read_notes(bytes, ph.p_offset, ph.p_filesz, ph.p_align, out);
  return std::optional<ElfNeeds>(std::move(out));
}

} // namespace probegate::image
