/*
 * eng_upload_off.c - the engine built without the uploader
 * (-DEDGELOG_WITH_UPLOADER=OFF: no libcurl). It buffers only; another
 * process ships the records. Asking for an endpoint is a configuration
 * error, not a silent no-op.
 *
 * Offers the same four eng_upload_* calls as eng_upload.c.
 */
#include "eng_internal.h"

int eng_upload_init(edgelog *log, seg_err *e)
{
	if (log->conf.endpoint)
		return seg_fail(e, EDGELOG_ECONFIG,
				"config field endpoint: this edgelog was built without the "
				"uploader (EDGELOG_WITH_UPLOADER=OFF)");
	return 0;
}

int eng_upload_work(edgelog *log, int flush)
{
	(void)log;
	(void)flush;
	return 0;
}

void eng_upload_drain(edgelog *log)
{
	(void)log;
}

void eng_upload_free(edgelog *log)
{
	(void)log;
}
