/*
 * seg.h - what the segments module shows the modules above it (engine,
 * uploader, compactor): the one header they include. Inside segments/ each
 * file includes only the parts it uses.
 *
 *   seg_err.h      error codes and messages        seg_vfs.h     the I/O seam
 *   seg_format.h   header and frame codec          seg_durable.h durable writes
 *   seg_writer.h   the appending writer            seg_reader.h  reading frames
 *   seg_scan.h     frame walk and resynchronising  seg_dir.h     segment files
 *   seg_cursor.h   the cursor file and gaps        seg_lost.h    lost ranges
 *   seg_json.h     msgpack -> JSON, byte buffers   seg_mpack.h   msgpack writer
 *   seg_mpsplit.h  where msgpack objects end
 */
#ifndef SEG_H
#define SEG_H

#include "seg_cursor.h"
#include "seg_dir.h"
#include "seg_durable.h"
#include "seg_err.h"
#include "seg_format.h"
#include "seg_json.h"
#include "seg_lost.h"
#include "seg_mpack.h"
#include "seg_mpsplit.h"
#include "seg_reader.h"
#include "seg_scan.h"
#include "seg_vfs.h"
#include "seg_writer.h"

#endif
