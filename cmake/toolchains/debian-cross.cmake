# Shared body of the Debian cross toolchain files (aarch64.cmake,
# armhf.cmake): Debian's cross toolchain and multiarch -dev packages
# (scripts/cross.sh installs them), programs run under qemu-user. The file
# that includes this one sets:
#
#   EDGELOG_CROSS_PROCESSOR  CMAKE_SYSTEM_PROCESSOR (aarch64, arm)
#   EDGELOG_CROSS_TRIPLE     the multiarch triple (aarch64-linux-gnu, ...)
#   EDGELOG_CROSS_QEMU       the qemu-user program (qemu-aarch64-static, ...)
#
# Programs and tests run through /usr/bin/${EDGELOG_CROSS_QEMU}
# (CMAKE_CROSSCOMPILING_EMULATOR); the test programs that start other
# programs (the sink, the demo, the CLI tests) need binfmt_misc to know qemu
# too (scripts/cross.sh binfmt).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${EDGELOG_CROSS_PROCESSOR})
set(CMAKE_LIBRARY_ARCHITECTURE ${EDGELOG_CROSS_TRIPLE})
set(CMAKE_C_COMPILER ${EDGELOG_CROSS_TRIPLE}-gcc)
# Not enabled by the project: the header self-test (tests/) compiles
# <edgelog.h> as C++ with it.
set(CMAKE_CXX_COMPILER ${EDGELOG_CROSS_TRIPLE}-g++)
# No -L: the target's loader and libc are the multiarch ones in this root
# (libc6:ARCH), the same the binaries were linked against; the cross
# toolchain's copy under /usr/TRIPLE is another build and crashes Check.
set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/${EDGELOG_CROSS_QEMU})
# Multiarch: the target's libraries live in /usr/lib/TRIPLE of this root,
# found by the cross compiler; pkg-config must look only there.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${EDGELOG_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
