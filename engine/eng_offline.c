/*
 * eng_offline.c - the offline helpers: status of a directory, export,
 * requeue of dead letters.
 */
#include <edgelog.h>

#include "eng_internal.h"

int edgelog_status_dir(const char *dir, edgelog_status *st, int *live)
{
	(void)dir;
	(void)st;
	(void)live;
	return eng_tls_error(EDGELOG_ESTATE, "edgelog_status_dir: not built yet");
}

int edgelog_export_stats(const char *dir, const char *out_path)
{
	(void)dir;
	(void)out_path;
	return eng_tls_error(EDGELOG_ESTATE, "edgelog_export_stats: not built yet");
}

int edgelog_requeue_failed(const char *dir)
{
	(void)dir;
	return eng_tls_error(EDGELOG_ESTATE, "edgelog_requeue_failed: not built yet");
}
