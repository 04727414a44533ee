/*
 * Unit tests for lib/store: a write transaction paced by store_pace (its
 * pages sent to the disk in steps while it runs) and then lost to a SIGKILL
 * before its commit leaves the store exactly as the last commit left it;
 * paced and committed, it is all there after reopening. Each test gets a
 * fresh directory under /tmp.
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
#define N_NEW 40000 /* rows the second transaction adds */
#define VAL_BYTES 300
/* the write-back steps a paced transaction of all the rows takes */
#define PACE_STEPS ((N_OLD + N_NEW) * (STORE_PUT_BYTES + VAL_BYTES) / STORE_PACE_BYTES)

static int setup(void **state) { return tmpdir_setup(state, "store", "store"); }
static int teardown(void **state) { return tmpdir_teardown(state); }

static void key_of(int i, char *k) { snprintf(k, 16, "k%08d", i); }

static void val_of(int i, char gen, char *v) {
  memset(v, gen, VAL_BYTES);
  snprintf(v, 16, "%08d", i); /* the NUL lands inside the value: fine, it is bytes */
}

/* Puts rows [from, to) of generation gen, paced when pc is not NULL. */
static void put_rows(struct store *st, MDB_txn *txn, int from, int to, char gen,
                     struct store_pacer *pc) {
  char k[16], v[VAL_BYTES];
  for (int i = from; i < to; i++) {
    key_of(i, k);
    val_of(i, gen, v);
    MDB_val mk = {strlen(k), k}, mv = {VAL_BYTES, v};
    assert_int_equal(mdb_put(txn, st->timeline, &mk, &mv, 0), 0);
    if (pc) store_pace(pc, STORE_PUT_BYTES + VAL_BYTES);
  }
}

/* Every row of [from, to) holds generation gen; rows from `absent` on are not there. */
static void check_rows(const char *dir, int n, char gen, int absent_from, int absent_to) {
  struct store *st;
  assert_int_equal(store_open(dir, 1 << 30, &st), 0);
  MDB_txn *txn = store_begin(st, 1);
  char k[16], v[VAL_BYTES];
  for (int i = 0; i < n; i++) {
    key_of(i, k);
    val_of(i, gen, v);
    MDB_val mk = {strlen(k), k}, mv;
    assert_int_equal(mdb_get(txn, st->timeline, &mk, &mv), 0);
    assert_int_equal(mv.mv_size, VAL_BYTES);
    assert_memory_equal(mv.mv_data, v, VAL_BYTES);
  }
  for (int i = absent_from; i < absent_to; i++) {
    key_of(i, k);
    MDB_val mk = {strlen(k), k}, mv;
    assert_int_equal(mdb_get(txn, st->timeline, &mk, &mv), MDB_NOTFOUND);
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
  MDB_txn *txn = store_begin(st, 0);
  put_rows(st, txn, 0, N_OLD, 'a', NULL);
  assert_int_equal(store_commit(txn), 0);
  store_close(st);
}

/* A child rewrites every row and adds more, paced, and is killed before its commit: the pages
   it wrote are in the file, and none of them counts. */
static void test_paced_then_kill(void **state) {
  struct fixture *f = *state;
  commit_old(f->dir);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct store *st;
    char path[128];
    struct stat before, after;
    snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
    if (store_open(f->dir, 1 << 30, &st) || stat(path, &before)) _exit(2);
    MDB_txn *txn = store_begin(st, 0);
    struct store_pacer pc;
    store_pacer_init(&pc, st);
    put_rows(st, txn, 0, N_OLD + N_NEW, 'b', &pc);
    /* PACE_STEPS steps, each waited for: the uncommitted pages did reach the file (it is
       sparse: its blocks are allocated as they are written back). */
    if (pc.steps < PACE_STEPS) _exit(5);
    if (stat(path, &after) || after.st_blocks < before.st_blocks + (N_NEW * VAL_BYTES) / 512) _exit(4);
    raise(SIGKILL);
    _exit(3);
  }
  int ws;
  assert_int_equal(waitpid(pid, &ws, 0), pid);
  assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
  check_rows(f->dir, N_OLD, 'a', N_OLD, N_OLD + N_NEW);

  /* The store takes new transactions over the abandoned pages. */
  struct store *st;
  assert_int_equal(store_open(f->dir, 1 << 30, &st), 0);
  MDB_txn *txn = store_begin(st, 0);
  struct store_pacer pc;
  store_pacer_init(&pc, st);
  put_rows(st, txn, 0, N_OLD + N_NEW, 'c', &pc);
  assert_int_equal(store_commit(txn), 0);
  store_close(st);
  check_rows(f->dir, N_OLD + N_NEW, 'c', 0, 0);
}

/* Paced and committed: all of it is there after reopening; a pacer that is off (a checkpoint
   written while callers wait) takes no steps. */
static void test_paced_then_commit(void **state) {
  struct fixture *f = *state;
  commit_old(f->dir);
  struct store *st;
  assert_int_equal(store_open(f->dir, 1 << 30, &st), 0);
  MDB_txn *txn = store_begin(st, 0);
  struct store_pacer pc, off;
  store_pacer_init(&pc, st);
  store_pacer_init(&off, NULL);
  put_rows(st, txn, 0, N_OLD + N_NEW, 'b', &pc);
  for (int i = 0; i < 10; i++) store_pace(&off, STORE_PACE_BYTES);
  assert_int_equal(off.steps, 0);
  assert_true(pc.steps >= PACE_STEPS);
  assert_true(pc.written_ns > 0);
  assert_int_equal(store_commit(txn), 0);
  store_close(st);
  check_rows(f->dir, N_OLD + N_NEW, 'b', 0, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_paced_then_kill, setup, teardown),
      cmocka_unit_test_setup_teardown(test_paced_then_commit, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
