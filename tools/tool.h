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

/* The buffer directory for a command: arg if set, else the environment's
 * (EDGELOG_DIR, BUFFER_DB_PATH), else ./edgelog-data. cfg receives the
 * environment's configuration. NULL after printing the error for an
 * invalid environment variable. */
struct edgelog_config;
const char *tool_resolve_dir(const char *cmd, const char *arg, struct edgelog_config *cfg);
/* 1 if dir is a directory; else prints "CMD: DIR: no such directory". */
int tool_dir_exists(const char *cmd, const char *dir);

#endif
