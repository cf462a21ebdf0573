# Cross build for Debian arm64 (aarch64-linux-gnu), run under
# qemu-aarch64-static; the body is debian-cross.cmake:
#
#   cmake -S . -B build/aarch64 --toolchain cmake/toolchains/aarch64.cmake
set(EDGELOG_CROSS_PROCESSOR aarch64)
set(EDGELOG_CROSS_TRIPLE aarch64-linux-gnu)
set(EDGELOG_CROSS_QEMU qemu-aarch64-static)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
