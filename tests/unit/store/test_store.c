/*
 * Unit tests for lib/store's slicer: a paced long write commits a slice at a
 * time (about STORE_SLICE_BYTES each) and rests after each; lost to a SIGKILL,
 * exactly the rows of the slices it committed are there, in order, and the
 * rest is as the last commit left it. Not paced, it is one transaction: killed
 * before its commit, it leaves nothing. Each test gets a fresh directory under
 * /tmp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "util/common.h"
#include "../tmpdir_fixture.h"

#define N_OLD 20000 /* rows committed first */
#define N_NEW 40000 /* rows the long write adds */
#define VAL_BYTES 300
#define ROW_BYTES (STORE_PUT_BYTES + VAL_BYTES)
/* rows in one slice: the slicer commits at the put that makes it full */
#define SLICE_ROWS ((STORE_SLICE_BYTES + ROW_BYTES - 1) / ROW_BYTES)

static int setup(void **state) { return tmpdir_setup(state, "store", "store"); }
static int teardown(void **state) { return tmpdir_teardown(state); }

static void key_of(int i, char *k) { snprintf(k, 16, "k%08d", i); }

static void val_of(int i, char gen, char *v) {
  memset(v, gen, VAL_BYTES);
  snprintf(v, 16, "%08d", i); /* the NUL lands inside the value: fine, it is bytes */
}

/* Puts rows [from, to) of generation gen through the slicer. */
static void put_rows(struct store_slicer *s, int from, int to, char gen) {
  char k[16], v[VAL_BYTES];
  for (int i = from; i < to; i++) {
    key_of(i, k);
    val_of(i, gen, v);
    MDB_val mk = {strlen(k), k}, mv = {VAL_BYTES, v};
    assert_int_equal(mdb_put(s->txn, s->st->timeline, &mk, &mv, 0), 0);
    assert_int_equal(store_slice_add(s, ROW_BYTES), 0);
  }
}

/* Rows [0, n_new) hold generation 'b', [n_new, N_OLD) generation 'a', and no other row is
   there. */
static void check_rows(const char *dir, int n_new) {
  struct store *st;
  assert_int_equal(store_open(dir, 1 << 30, &st), 0);
  MDB_txn *txn = store_begin(st, 1);
  char k[16], v[VAL_BYTES];
  int n = MAX(n_new, N_OLD);
  for (int i = 0; i < n; i++) {
    key_of(i, k);
    val_of(i, i < n_new ? 'b' : 'a', v);
    MDB_val mk = {strlen(k), k}, mv;
    assert_int_equal(mdb_get(txn, st->timeline, &mk, &mv), 0);
    assert_int_equal(mv.mv_size, VAL_BYTES);
    assert_memory_equal(mv.mv_data, v, VAL_BYTES);
  }
  MDB_stat ms;
  assert_int_equal(mdb_stat(txn, st->timeline, &ms), 0);
  assert_int_equal(ms.ms_entries, (size_t)n);
  mdb_txn_abort(txn);
  store_close(st);
}

static void commit_old(const char *dir) {
  struct store *st;
  assert_int_equal(store_open(dir, 1 << 30, &st), 0);
  struct store_slicer s;
  store_slice_begin(&s, st, 0);
  put_rows(&s, 0, N_OLD, 'a');
  assert_int_equal(s.commits, 0);
  assert_int_equal(store_slice_commit(&s, 0), 0);
  assert_null(s.txn);
  store_close(st);
}

/* A child rewrites every row and adds more through the slicer, then is killed before its last
   commit: paced, the rows of its committed slices are there and the rest is as before;
   not paced, nothing of it is. */
static void kill_midway(const char *dir, int paced) {
  commit_old(dir);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct store *st;
    if (store_open(dir, 1 << 30, &st)) _exit(2);
    struct store_slicer s;
    store_slice_begin(&s, st, paced);
    put_rows(&s, 0, N_OLD + N_NEW, 'b');
    unsigned want = paced ? (N_OLD + N_NEW) / SLICE_ROWS : 0;
    if (s.commits != want) _exit(5);
    if (paced && (s.rested_ns <= 0 || s.commit_ns <= 0)) _exit(4);
    raise(SIGKILL);
    _exit(3);
  }
  int ws;
  assert_int_equal(waitpid(pid, &ws, 0), pid);
  assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
  check_rows(dir, paced ? (N_OLD + N_NEW) / SLICE_ROWS * SLICE_ROWS : 0);
}

static void test_paced_then_kill(void **state) { kill_midway(((struct fixture *)*state)->dir, 1); }
static void test_unpaced_then_kill(void **state) {
  kill_midway(((struct fixture *)*state)->dir, 0);
}

/* Paced to the end and committed: all of it is there after reopening, and the store takes
   transactions after it. */
static void test_paced_then_commit(void **state) {
  struct fixture *f = *state;
  commit_old(f->dir);
  struct store *st;
  assert_int_equal(store_open(f->dir, 1 << 30, &st), 0);
  struct store_slicer s;
  store_slice_begin(&s, st, 1);
  put_rows(&s, 0, N_OLD + N_NEW, 'b');
  assert_int_equal(s.commits, (N_OLD + N_NEW) / SLICE_ROWS);
  assert_int_equal(store_slice_commit(&s, 0), 0);
  assert_int_equal(s.commits, (N_OLD + N_NEW) / SLICE_ROWS + 1);
  store_close(st);
  check_rows(f->dir, N_OLD + N_NEW);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_paced_then_kill, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unpaced_then_kill, setup, teardown),
      cmocka_unit_test_setup_teardown(test_paced_then_commit, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
