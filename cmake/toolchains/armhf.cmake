# Cross build for Debian armhf (arm-linux-gnueabihf), run under
# qemu-arm-static; the body is debian-cross.cmake:
#
#   cmake -S . -B build/armhf --toolchain cmake/toolchains/armhf.cmake
set(EDGELOG_CROSS_PROCESSOR arm)
set(EDGELOG_CROSS_TRIPLE arm-linux-gnueabihf)
set(EDGELOG_CROSS_QEMU qemu-arm-static)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
