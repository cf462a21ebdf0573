/* tool_run.c - `edgelog run`: the agent. */
#include "tool.h"

int tool_run(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return tool_fail("run", TOOL_USAGE, "not built yet");
}
