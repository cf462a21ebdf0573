#!/usr/bin/env python3
"""An inference service in the old client's shape, logging through edgelog.

The container image's example (docker-compose.yml's `inference` service):
it reads the old client's variables (CLOUD_LOGGING_ENDPOINT, BUFFER_DB_PATH,
EDGE_DEVICE_ID, BUFFER_MAX_SIZE_MB, BUFFER_CLEANUP_DAYS), makes
PREDICTIONS_PER_SECOND predictions a second (default 20) from a stand-in
model, PREDICTION_COUNT of them (default 0: forever; after the last one it
keeps running so the engine delivers the backlog), prints the status every
STATUS_EVERY_SECONDS (default 30), and shuts down cleanly on SIGTERM.
Each prediction carries "n", its number in this run, so a receiver can
tally them.
"""

import asyncio
import logging
import os
import random
import signal
import time
import uuid

from edgelog import BufferMonitor, EnhancedAsyncLoggingClient


def fake_model(n: int) -> dict:
    """Stands in for the real detector: a prediction shaped like
    shared/data/prediction.json."""
    score = random.random()
    return {
        "model": {"name": "yolov8n", "version": "2.3.1"},
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "ts_ns": time.time_ns(),
        "request_id": str(uuid.uuid4()),
        "label": random.choice(["person", "dog", "car", "bicycle"]),
        "confidence": round(score, 4),
        "latency_ms": round(random.uniform(5, 12), 3),
        "bbox": [round(random.random() * 0.5, 3) for _ in range(4)],
        "n": n,
    }


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    rate = float(os.getenv("PREDICTIONS_PER_SECOND", "20"))
    count = int(os.getenv("PREDICTION_COUNT", "0"))
    every = float(os.getenv("STATUS_EVERY_SECONDS", "30"))
    client = EnhancedAsyncLoggingClient(
        api_endpoint=os.getenv("CLOUD_LOGGING_ENDPOINT"),
        buffer_db_path=os.getenv("BUFFER_DB_PATH", "/data/prediction_buffer.db"),
        edge_device_id=os.getenv("EDGE_DEVICE_ID"),
    )
    await client.start()
    monitor = BufferMonitor(client.buffer_manager, client)
    await monitor.start(interval_seconds=every)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("inference: logging to %s (%s)" % (client.buffer_dir, client.api_endpoint), flush=True)
    n = 0
    next_at = time.monotonic()
    while not stop.is_set():
        if count and n >= count:
            await asyncio.wait_for(stop.wait(), timeout=None)
            break
        await client.log_prediction(fake_model(n))
        n += 1
        next_at += 1.0 / rate
        delay = next_at - time.monotonic()
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass
    await monitor.stop()
    st = await client.get_buffer_status()
    print("inference: stopping after %d predictions (pending %d, sent %d)"
          % (n, st["pending"], st["sent"]), flush=True)
    await client.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
