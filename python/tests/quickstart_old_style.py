"""A service written against the old client's quick start, with only its
imports changed to edgelog. test_compat.py runs it against the reference
sink; it reads its settings from the old environment variables."""

import asyncio
import json
import os
import random
import sys
import time

from edgelog import (  # was: the old client's modules
    BufferMonitor,
    EnhancedAsyncLoggingClient,
    export_buffer_statistics,
    repair_buffer_database,
    reset_failed_predictions,
)

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200


async def main() -> None:
    client = EnhancedAsyncLoggingClient(
        api_endpoint=os.getenv("CLOUD_LOGGING_ENDPOINT"),
        buffer_db_path=os.getenv("BUFFER_DB_PATH", "/data/prediction_buffer.db"),
        edge_device_id=os.getenv("EDGE_DEVICE_ID", "edge-device-001"),
        max_buffer_size_mb=int(os.getenv("BUFFER_MAX_SIZE_MB", "500")),
        cleanup_after_days=int(os.getenv("BUFFER_CLEANUP_DAYS", "7")),
        batch_size=50,
        batch_timeout_seconds=0.2,
    )
    await client.start()

    monitor = BufferMonitor(client.buffer_manager, client)
    await monitor.start(interval_seconds=0.5)

    for i in range(N):
        prediction = {
            "model_name": "yolov8n",
            "model_version": "2.3.1",
            "input_hash": "%08x" % i,
            "prediction": {"label": random.choice(["person", "dog"]), "confidence": 0.9},
            "latency_ms": 7.6,
            "timestamp": time.time(),
            "n": i,
        }
        await client.log_prediction(prediction)

    status = await client.get_buffer_status()
    print("Pending: %d, Sent: %d, Failed: %d, Connected: %s"
          % (status["pending"], status["sent"], status["failed"], status["is_connected"]))

    # Wait for the uploads, as a service that runs for a while would.
    for _ in range(600):
        status = await client.get_buffer_status()
        if status["pending"] == 0:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.2)  # let the monitor tick at least once more
    await monitor.print_status()
    full = await monitor.get_full_status()
    print("FULL " + json.dumps({k: full[k] for k in ("pending", "sent", "failed", "running")}))

    client.buffer_manager.cleanup(force=True)
    stats = client.buffer_manager.get_stats()
    print("STATS " + json.dumps({"sent": stats["sent"], "size_mb": round(stats["size_mb"], 3)}))

    await monitor.stop()
    await client.shutdown()

    path = os.getenv("BUFFER_DB_PATH", "/data/prediction_buffer.db")
    export_buffer_statistics(path, sys.argv[2] if len(sys.argv) > 2 else "stats.json")
    print("RESET %d" % reset_failed_predictions(path))
    print("REPAIR " + json.dumps(repair_buffer_database(path)["records"]))


if __name__ == "__main__":
    asyncio.run(main())
