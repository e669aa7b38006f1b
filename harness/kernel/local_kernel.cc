// SPDX-License-Identifier: GPL-2.0-only
#include "kernel/local_kernel.h"

namespace probegate::kernel {

core::Result<KernelArtifact> fetch_local_kernel(const KernelRef& ref, proc::ProcessRunner&,
                                                const std::filesystem::path&,
                                                const std::function<void(std::string_view)>&) {
  return core::usage_error("kernel ref '{}': file: and tree: kernels are not supported yet; "
                           "use debian:<line> or debian:<abi>",
                           ref.text);
}

} // namespace probegate::kernel
