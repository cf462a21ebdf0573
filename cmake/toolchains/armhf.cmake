# Cross build for Debian armhf (arm-linux-gnueabihf) with Debian's cross toolchain and
# multiarch -dev packages (scripts/cross.sh installs them), run under
# qemu-user:
#
#   cmake -S . -B build/armhf --toolchain cmake/toolchains/armhf.cmake
#
# Programs and tests run through qemu-arm-static (CMAKE_CROSSCOMPILING_EMULATOR);
# the test programs that start other programs (the sink, the demo, the CLI
# tests) need binfmt_misc to know qemu too (scripts/cross.sh binfmt).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_LIBRARY_ARCHITECTURE arm-linux-gnueabihf)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
# Not enabled by the project: the header self-test (tests/) compiles
# <edgelog.h> as C++ with it.
set(CMAKE_CXX_COMPILER arm-linux-gnueabihf-g++)
# No -L: the target's loader and libc are the multiarch ones in this root
# (libc6:ARCH), the same the binaries were linked against; the cross
# toolchain's copy under /usr/TRIPLE is another build and crashes Check.
set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/qemu-arm-static)
# Multiarch: the target's libraries live in /usr/lib/arm-linux-gnueabihf of this
# root, found by the cross compiler; pkg-config must look only there.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/arm-linux-gnueabihf/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
