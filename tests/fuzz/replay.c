/*
 * replay.c - main() for a fuzz target built without libFuzzer: runs every
 * file named on the command line, and every file in every directory named
 * (sorted by name, not recursive), through LLVMFuzzerTestOneInput once.
 * Exit 0 if all ran (an invariant that fails aborts), 2 on a bad argument
 * or an unreadable file, 1 if a directory held no input at all.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t got;
		if (n == cap) {
			uint8_t *nb;
			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap);
			if (!nb) {
				fprintf(stderr, "replay: %s: out of memory\n", path);
				exit(2);
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		if (!got)
			break;
		n += got;
	}
	fclose(f);
	/* A copy of exactly n bytes, so ASan sees reads past the end. */
	{
		uint8_t *exact = malloc(n ? n : 1);
		if (!exact)
			exit(2);
		memcpy(exact, buf, n);
		free(buf);
		LLVMFuzzerTestOneInput(exact, n);
		free(exact);
	}
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	int i, ran = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		struct stat sb;
		if (stat(argv[i], &sb)) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 2;
		}
		if (S_ISDIR(sb.st_mode)) {
			DIR *d = opendir(argv[i]);
			struct dirent *de;
			char **names = NULL;
			size_t n = 0, cap = 0, k;
			if (!d) {
				fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
				return 2;
			}
			while ((de = readdir(d))) {
				if (de->d_name[0] == '.')
					continue;
				if (n == cap) {
					cap = cap ? cap * 2 : 64;
					names = realloc(names, cap * sizeof(*names));
					if (!names)
						return 2;
				}
				names[n++] = strdup(de->d_name);
			}
			closedir(d);
			qsort(names, n, sizeof(*names), by_name);
			for (k = 0; k < n; k++) {
				char path[8192];
				snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]);
				if (run_file(path))
					return 2;
				ran++;
				free(names[k]);
			}
			free(names);
		} else {
			if (run_file(argv[i]))
				return 2;
			ran++;
		}
	}
	printf("replay: %d input(s) ran, every invariant held\n", ran);
	return ran ? 0 : 1;
}
