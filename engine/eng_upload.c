/*
 * eng_upload.c - the engine's side of the uploader: when to call it, and
 * what its outcome changes (the cursor, the counters, the connection state).
 *
 * Only durable records are sent (seq <= the writer's synced seq): a record
 * the cloud has seen can then never vanish in a power cut and have its seq
 * handed to a different record. The uploader runs without the engine's
 * mutex; the ack it reports is applied under the mutex, then the cursor is
 * stored (fdatasync) before the next batch, so a crash can only make
 * records be sent again, never skipped.
 *
 * Offers: eng_upload_init, eng_upload_work, eng_upload_drain,
 * eng_upload_free (eng_internal.h). State: eng_upload. Calls eng_sync.c
 * (syncs, cursor stores) and the uploader module (upl.h).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "eng_internal.h"
#include "upl.h"

int eng_upload_init(edgelog *log, seg_err *e)
{
	upl_conf c;

	if (!log->conf.endpoint)
		return 0;
	memset(&c, 0, sizeof(c));
	c.endpoint = log->conf.endpoint;
	c.device_id = log->conf.device_id;
	c.format = log->conf.format;
	c.gzip = log->conf.compression == EDGELOG_COMPRESSION_GZIP;
	c.data_string = log->conf.data_encoding == EDGELOG_DATA_STRING;
	c.poison_tries = log->conf.poison_tries;
	c.batch_size = log->conf.batch_size;
	c.batch_timeout_ms = log->conf.batch_timeout_ms;
	c.max_batch_records = log->conf.upload_max_records;
	if (c.max_batch_records < c.batch_size)
		c.max_batch_records = c.batch_size;
	c.max_batch_bytes = (size_t)log->conf.upload_max_kb * 1024;
	c.auth_token = log->conf.auth_token;
	c.ca_file = log->conf.ca_file;
	c.client_cert = log->conf.client_cert;
	c.client_key = log->conf.client_key;
	c.retry_base_ms = log->conf.retry_base_ms;
	c.retry_max_ms = log->conf.retry_max_ms;
	/* A Retry-After is honoured up to ten times the longest backoff (10
	 * minutes by default): a server's "come back tomorrow" must not park
	 * a device's uploads for a day. */
	c.retry_after_cap_ms = log->conf.retry_max_ms > 429496729u ? 0xffffffffu :
								     log->conf.retry_max_ms * 10;
	c.http_timeout_ms = log->conf.http_timeout_ms;
	c.connect_timeout_ms = log->conf.http_timeout_ms < 10000 ? log->conf.http_timeout_ms :
								   10000;
	return upl_create(&log->upload.up, &c, log->vfs, log->segdir, log->faileddir, e);
}

void eng_upload_free(edgelog *log)
{
	upl_destroy(log->upload.up);
	log->upload.up = NULL;
}

/* Apply one step's outcome (mu held). Returns 1 if the cursor moved. */
static int apply(edgelog *log, const upl_result *r)
{
	int64_t now = log->vfs->mono_ms(log->vfs);
	int moved = 0;

	if (r->corrupt)
		log->cur.corrupt += r->corrupt;
	if (r->success) {
		if (!log->upload.connected && log->upload.in_outage)
			eng_log(&log->conf, EDGELOG_LOG_INFO, "upload: %s reachable again",
				log->conf.endpoint);
		log->upload.connected = 1;
		log->cur.last_success_at = eng_success_time(log);
		log->upload.retry_at_mono = 0;
		if (log->upload.in_outage)
			log->cur.recovered += r->delivered;
	}
	if (r->failure) {
		if (log->upload.connected || !log->upload.in_outage)
			eng_log(&log->conf, EDGELOG_LOG_WARN, "upload: %s; records stay buffered",
				r->error);
		log->upload.connected = 0;
		log->upload.in_outage = 1;
		log->upload.retry_at_mono = r->retry_at_ms;
	}
	if (r->error[0]) {
		snprintf(log->upload.upl_error, sizeof(log->upload.upl_error), "%s", r->error);
		log->upload.upl_error_at = log->vfs->now_ms(log->vfs) / 1000;
	}
	if (r->poisoned) {
		log->upload.poisoned += r->poisoned;
		eng_log(&log->conf, EDGELOG_LOG_WARN,
			"upload: %llu record(s) dead-lettered as poison, moved to %s: %s",
			(unsigned long long)r->poisoned, log->faileddir, r->error);
	}
	if (r->handled_seq > log->cur.acked_seq) {
		uint64_t last = log->w.next_seq - 1;
		uint64_t h = r->handled_seq < last ? r->handled_seq : last;
		log->cur.sent += r->delivered;
		log->cur.failed += r->dead;
		if (r->dead > r->poisoned)
			eng_log(&log->conf, EDGELOG_LOG_WARN,
				"upload: %llu record(s) refused for good, moved to %s: %s",
				(unsigned long long)(r->dead - r->poisoned), log->faileddir,
				r->error);
		log->cur.acked_seq = h;
		if (log->first_seq <= h)
			log->first_seq = h + 1;
		moved = 1;
		/* Status needs the oldest pending record's time: the uploader
		 * holds it, no need to read the log for it. */
		if (r->next_ts_ms) {
			log->oldest_for_acked = h + 1;
			log->oldest_ts_ms = r->next_ts_ms;
		}
	}
	if (log->cur.acked_seq >= log->w.next_seq - 1 && log->upload.in_outage && !r->failure)
		log->upload.in_outage = 0; /* backlog drained: the outage is over */
	if (r->wait_ms > 0)
		log->upload.upl_next_mono = now + r->wait_ms;
	else
		log->upload.upl_next_mono = 0;
	return moved;
}

int eng_upload_work(edgelog *log, int flush)
{
	upl_result r;
	uint64_t acked, limit, last;
	int rc;

	if (!log->upload.up)
		return 0;
	acked = log->cur.acked_seq;
	last = log->w.next_seq - 1;
	if (acked >= last)
		return 0;
	/* Not before the uploader asked to be called again: after a backoff
	 * always; while a partial batch waits for its timeout, unless a full
	 * batch has come meanwhile. */
	if (!flush && log->upload.upl_next_mono &&
	    log->vfs->mono_ms(log->vfs) < log->upload.upl_next_mono &&
	    (log->upload.retry_at_mono || last - acked < log->conf.batch_size))
		return 0;
	/* Make what is waiting durable before it leaves the device. Under
	 * sync=interval this is usually done already. */
	if (log->w.synced_seq < last && !log->sync.syncing &&
	    (log->conf.sync != EDGELOG_SYNC_INTERVAL || flush ||
	     last - log->w.synced_seq >= log->conf.batch_size))
		eng_lead_sync(log);
	limit = log->w.synced_seq < last ? log->w.synced_seq : last;
	if (limit <= acked)
		return 0;
	pthread_mutex_unlock(&log->mu);
	rc = upl_step(log->upload.up, acked, limit, flush, &log->upload.abort_upload, &r);
	pthread_mutex_lock(&log->mu);
	if (rc && !r.error[0])
		snprintf(r.error, sizeof(r.error), "upload: %s", edgelog_strerror(rc));
	if (apply(log, &r)) {
		pthread_mutex_unlock(&log->mu);
		eng_store_cursor(log);
		pthread_mutex_lock(&log->mu);
	}
	return r.requests > 0 || r.handled_seq > 0;
}

void eng_upload_drain(edgelog *log)
{
	int64_t deadline;

	if (!log->upload.up)
		return;
	deadline = log->vfs->mono_ms(log->vfs) + log->conf.close_grace_ms;
	pthread_mutex_lock(&log->mu);
	while (log->cur.acked_seq < log->w.next_seq - 1) {
		int64_t now = log->vfs->mono_ms(log->vfs);
		if (now >= deadline)
			break;
		if (log->upload.retry_at_mono && log->upload.upl_next_mono > now) {
			/* Backing off: wait, but not past the grace period. A
			 * partial batch waiting for batch_timeout_ms is not a
			 * reason to wait: closing sends it now. */
			int64_t until = log->upload.upl_next_mono < deadline ?
						log->upload.upl_next_mono :
						deadline;
			pthread_mutex_unlock(&log->mu);
			while (log->vfs->mono_ms(log->vfs) < until) {
				struct timespec ts = {0, 10 * 1000000};
				nanosleep(&ts, NULL);
			}
			pthread_mutex_lock(&log->mu);
			continue;
		}
		if (!eng_upload_work(log, 1) && log->upload.upl_next_mono <= now)
			break; /* nothing more can be sent */
	}
	if (log->cur.acked_seq < log->w.next_seq - 1)
		eng_log(&log->conf, EDGELOG_LOG_INFO,
			"close: %llu record(s) not yet delivered stay buffered for the next run",
			(unsigned long long)(log->w.next_seq - 1 - log->cur.acked_seq));
	pthread_mutex_unlock(&log->mu);
}
