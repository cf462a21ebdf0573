/* tool_admin.c - `edgelog requeue-failed`, `edgelog cleanup`. */
#include "tool.h"

int tool_requeue_failed(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return tool_fail("requeue-failed", TOOL_USAGE, "not built yet");
}

int tool_cleanup(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return tool_fail("cleanup", TOOL_USAGE, "not built yet");
}
