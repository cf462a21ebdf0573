/*
 * eng_repair.c - edgelog_repair: put a damaged directory back in order.
 */
#include <edgelog.h>

#include "eng_internal.h"

int edgelog_repair(const char *dir, edgelog_repair_report *report)
{
	(void)dir;
	(void)report;
	return eng_tls_error(EDGELOG_ESTATE, "edgelog_repair: not built yet");
}
