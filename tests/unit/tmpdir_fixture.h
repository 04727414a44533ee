/*
 * A cmocka fixture for tests that need files: a fresh directory under /tmp
 * (root), the name of a subdirectory inside it for the code under test to
 * create (dir), and teardown removing all of it.
 */
#ifndef BATON_TESTS_TMPDIR_FIXTURE_H
#define BATON_TESTS_TMPDIR_FIXTURE_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "util/common.h"

struct fixture {
  char root[64]; /* mkdtemp directory, removed in teardown */
  char dir[96];  /* root/<sub>: what the test's code creates */
};

/* *state = a fixture with root /tmp/baton-<name>-XXXXXX and dir root/<sub>. */
static inline int tmpdir_setup(void **state, const char *name, const char *sub) {
  struct fixture *f = xcalloc(1, sizeof(*f));
  snprintf(f->root, sizeof(f->root), "/tmp/baton-%s-XXXXXX", name);
  if (!mkdtemp(f->root)) {
    free(f);
    return -1;
  }
  snprintf(f->dir, sizeof(f->dir), "%s/%s", f->root, sub);
  *state = f;
  return 0;
}

static inline int tmpdir_rm_one(const char *path, const struct stat *sb, int flag,
                                struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static inline int tmpdir_teardown(void **state) {
  struct fixture *f = *state;
  nftw(f->root, tmpdir_rm_one, 8, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

#endif
