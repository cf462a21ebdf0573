/* tool_status.c - `edgelog status`, `export-stats`, `metrics`. */
#include "tool.h"

int tool_status(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return tool_fail("status", TOOL_USAGE, "not built yet");
}

int tool_export_stats(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return tool_fail("export-stats", TOOL_USAGE, "not built yet");
}

int tool_metrics(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return tool_fail("metrics", TOOL_USAGE, "not built yet");
}
