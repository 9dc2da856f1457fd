/* read_file(path, &len): a whole file, malloc'd (the caller frees it); exits the test program if
   it cannot be read. Shared by the C test programs. */
#ifndef SWIFTGRPC_TEST_READ_FILE_H
#define SWIFTGRPC_TEST_READ_FILE_H

#include <stdio.h>
#include <stdlib.h>

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) { fprintf(stderr, "cannot read %s\n", path); exit(2); }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (!buf) { fprintf(stderr, "out of memory reading %s\n", path); exit(2); }
  *len = fread(buf, 1, (size_t)n, f);
  fclose(f);
  return buf;
}

#endif
