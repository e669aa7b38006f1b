# SPDX-License-Identifier: GPL-2.0-only
# `make install` layout and the .deb (CPack): /usr/bin/probegate, the guest
# sources and images under /usr/share/probegate (core::data_root() finds
# them beside the binary), the man page and the shell completions, all made
# by the built binary from its own command line.
include(GNUInstallDirs)

set(PROBEGATE_DOCS_DIR ${CMAKE_CURRENT_BINARY_DIR}/generated)
add_custom_command(
  OUTPUT ${PROBEGATE_DOCS_DIR}/probegate.1.gz ${PROBEGATE_DOCS_DIR}/probegate.bash
         ${PROBEGATE_DOCS_DIR}/_probegate
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PROBEGATE_DOCS_DIR}
  COMMAND sh -c "$<TARGET_FILE:probegate> man | gzip -9n > ${PROBEGATE_DOCS_DIR}/probegate.1.gz"
  COMMAND sh -c "$<TARGET_FILE:probegate> completion bash > ${PROBEGATE_DOCS_DIR}/probegate.bash"
  COMMAND sh -c "$<TARGET_FILE:probegate> completion zsh > ${PROBEGATE_DOCS_DIR}/_probegate"
  DEPENDS probegate
  COMMENT "probegate man, completion bash and zsh"
  VERBATIM)
add_custom_target(probegate_docs ALL DEPENDS ${PROBEGATE_DOCS_DIR}/probegate.1.gz)

install(TARGETS probegate RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY guest-modules images suites kernel-configs
  DESTINATION ${CMAKE_INSTALL_DATADIR}/probegate USE_SOURCE_PERMISSIONS)
install(FILES ${PROBEGATE_DOCS_DIR}/probegate.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROBEGATE_DOCS_DIR}/probegate.bash
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME probegate)
install(FILES ${PROBEGATE_DOCS_DIR}/_probegate
  DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/probegate RENAME copyright)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME probegate)
set(CPACK_PACKAGE_CONTACT "probegate developers <probegate@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "boots real kernels in QEMU and catches probes killed by udev's event timeout")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON) # RelWithDebInfo: the debug info stays in the build tree
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
# The libraries the binary links, found by dpkg-shlibdeps; then what it runs:
# QEMU, apt and dpkg for kernels and user spaces, kbuild for guest modules,
# gcc and libc6-dev for the agent's static images/pgwitness.c.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
  "qemu-system-x86, qemu-system-data, apt, dpkg, kmod, make, gcc, libc6-dev, bc, flex, bison, libelf-dev, xz-utils, zstd")
include(CPack)
