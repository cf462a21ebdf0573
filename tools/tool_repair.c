/* tool_repair.c - `edgelog repair`. */
#include "tool.h"

int tool_repair(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return tool_fail("repair", TOOL_USAGE, "not built yet");
}
