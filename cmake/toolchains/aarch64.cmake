# Cross build for Debian arm64 (aarch64-linux-gnu) with Debian's cross toolchain and
# multiarch -dev packages (scripts/cross.sh installs them), run under
# qemu-user:
#
#   cmake -S . -B build/aarch64 --toolchain cmake/toolchains/aarch64.cmake
#
# Programs and tests run through qemu-aarch64-static (CMAKE_CROSSCOMPILING_EMULATOR);
# the test programs that start other programs (the sink, the demo, the CLI
# tests) need binfmt_misc to know qemu too (scripts/cross.sh binfmt).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
# Not enabled by the project: the header self-test (tests/) compiles
# <edgelog.h> as C++ with it.
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# No -L: the target's loader and libc are the multiarch ones in this root
# (libc6:ARCH), the same the binaries were linked against; the cross
# toolchain's copy under /usr/TRIPLE is another build and crashes Check.
set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/qemu-aarch64-static)
# Multiarch: the target's libraries live in /usr/lib/aarch64-linux-gnu of this
# root, found by the cross compiler; pkg-config must look only there.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
