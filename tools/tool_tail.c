/* tool_tail.c - `edgelog tail` / `segtail`: last N records, then follow. */
#include "tool.h"

int tool_tail(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return tool_fail("tail", TOOL_USAGE, "not built yet");
}
