/*
 * tool_internal_include.c - what a tool must not do: include a module's
 * header. Compiled at test time with the include directories the tools
 * get (tests/CMakeLists.txt, test tools_see_only_the_public_header): the
 * public header is found, the segments header is not.
 */
#include <edgelog.h>

#include "seg_format.h"
