/*
 * eng_json_off.c - the engine built without JSON input
 * (-DEDGELOG_WITH_JSON=OFF, the firmware profile): edgelog_append_json()
 * refuses, stores nothing and says which option leaves it out.
 */
#include "eng_internal.h"

int edgelog_append_json(edgelog *log, const char *json, size_t len, uint64_t *seq)
{
	(void)json;
	(void)len;
	(void)seq;
	if (!log)
		return EDGELOG_EINVAL;
	return eng_set_msg(log, EDGELOG_ENOTSUP,
			   "JSON input is not built into this edgelog (EDGELOG_WITH_JSON=OFF): "
			   "append msgpack with edgelog_append");
}
