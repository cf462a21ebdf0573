/*
 * tool.h - the subcommands of the edgelog program. Each returns the exit
 * code: 0 success, 1 the operation found a problem, 2 usage or config.
 */
#ifndef TOOL_H
#define TOOL_H

#define TOOL_OK 0
#define TOOL_PROBLEM 1
#define TOOL_USAGE 2

int tool_dump(int argc, char **argv);
int tool_demo(int argc, char **argv);
int tool_sink(int argc, char **argv);
int tool_tail(int argc, char **argv);
int tool_run(int argc, char **argv);
int tool_repair(int argc, char **argv);
int tool_status(int argc, char **argv);
int tool_export_stats(int argc, char **argv);
int tool_metrics(int argc, char **argv);
int tool_requeue_failed(int argc, char **argv);
int tool_cleanup(int argc, char **argv);

/* Print "edgelog CMD: message" to stderr; returns code. */
int tool_fail(const char *cmd, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parse a whole decimal number for option `opt`; 0 or -1 after printing
 * a usage error naming the option. */
int tool_parse_u64(const char *cmd, const char *opt, const char *s, unsigned long long *out);

/* ---- printing records (tool_print.c): dump and tail agree ---- */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <edgelog.h>

/* ms since the epoch as "2026-11-28T21:03:04.123Z". */
void tool_fmt_time(int64_t ms, char *out, size_t n);
/* device_id for --json: arg, $EDGELOG_DEVICE_ID, $EDGE_DEVICE_ID, the id
 * stored in the directory holding path (DIR/meta.json), the host name (the
 * last two written into host). */
const char *tool_device_id(const char *arg, const char *path, char *host, size_t n);
/* Width the table's lines are cut to (0: whole): set by dump and tail
 * from tool_terminal_width (the terminal's columns when fd is one and
 * full is 0; else 0). */
extern size_t tool_table_width;
size_t tool_terminal_width(int fd, int full);
/* ---- a growable byte buffer (tool_bytes.c) ---- */
/* Bytes gathered from input (a line, a msgpack object), text being made;
 * a NUL follows the bytes once any were put. */
typedef struct tool_bytes {
	char *p;
	size_t len, cap;
	int oom; /* an append failed for lack of memory (nothing appended) */
} tool_bytes;
/* Room for n more bytes: 0, or -1 (oom set). */
int tool_bytes_reserve(tool_bytes *b, size_t n);
void tool_bytes_put(tool_bytes *b, const void *s, size_t n);
void tool_bytes_puts(tool_bytes *b, const char *s);
void tool_bytes_printf(tool_bytes *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tool_bytes_free(tool_bytes *b);
/* Append rec as JSON (edgelog_record_json: the wire envelope with device,
 * else its data alone). 0; -1 (nothing appended) if rec->data is not one
 * msgpack object; -2 out of memory. */
int tool_bytes_json(tool_bytes *b, const edgelog_record *rec, const char *device);
/* Append s (n bytes, any content) as a JSON string literal, escaped as the
 * library escapes strings (invalid UTF-8 becomes U+FFFD). 0, or -2 out of
 * memory. */
int tool_bytes_json_string(tool_bytes *b, const char *s, size_t n);

/* The table's header line. */
/* Print the table's header line to out (0, or -1 when the write failed). */
int tool_table_header(FILE *out);
/* rec's line, malloc'd into *line (*len bytes, newline included): the wire
 * envelope {"device_id","seq","ts","data"} with json, else a table row
 * ending in state. 0; -1 (nothing made) if the record is not valid
 * msgpack; -2 out of memory. */
int tool_record_line(char **line, size_t *len, const edgelog_record *rec, int json,
		     const char *device, const char *state);
/* Print rec's line to stdout (dump and tail). 0; 1 when rec is not valid
 * msgpack (said on stderr, "edgelog CMD: SEGMENT offset N: record is not
 * valid msgpack"; nothing printed); -1 out of memory; -2 the write to
 * stdout failed (errno says why). */
int tool_print_record(const char *cmd, const edgelog_record *rec, int json, const char *device,
		      const char *state);

/* Arguments of the directory commands: --dir D (or --dir=D), one
 * positional DIR (or, with pos, one positional argument into *pos), -h /
 * --help, and flag (e.g. "--json"; NULL: none) setting *flag_set. Returns
 * 0, -1 after printing the help, or the exit code of a usage error. */
int tool_dir_args(const char *cmd, const char *usage, int argc, char **argv, const char *flag,
		  int *flag_set, const char **dir, const char **pos);

/* An argument that no option of cmd took: -h or --help (usage on stdout:
 * returns TOOL_OK), an unknown option (usage on stderr, then "edgelog CMD:
 * unknown option 'A'": TOOL_USAGE), or the one positional argument, named
 * `what` in messages ("PATH", "DIR"), into *pos (a second one: "more than
 * one WHAT ('P', 'A')", TOOL_USAGE). -1 when the caller goes on. */
int tool_other_arg(const char *cmd, const char *usage, const char *what, const char *a,
		   const char **pos);

/* The buffer directory for a command: arg if set, else the environment's
 * (EDGELOG_DIR, BUFFER_DB_PATH), else ./edgelog-data. cfg receives the
 * environment's configuration. NULL after printing the error for an
 * invalid environment variable. */
const char *tool_resolve_dir(const char *cmd, const char *arg, edgelog_config *cfg);
/* 1 if dir is a directory; else prints "CMD: DIR: no such directory". */
int tool_dir_exists(const char *cmd, const char *dir);
/* tool_resolve_dir, then tool_dir_exists: the directory, or NULL after
 * printing why not (the caller exits with TOOL_USAGE). */
const char *tool_existing_dir(const char *cmd, const char *arg, edgelog_config *cfg);

#endif
