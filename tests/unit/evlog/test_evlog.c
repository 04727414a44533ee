/*
 * Unit tests for lib/evlog: appends and reads, group commit under many
 * threads, reopening, torn and corrupt segments, segment roll-over,
 * retention, back-pressure, I/O failures and a SIGKILL crash test. Each test
 * gets a fresh directory under /tmp (made in setup, removed in teardown).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evlog/evlog.h"
#include "evlog/evlog_int.h"
#include "util/clock.h"
#include "util/common.h"
#include "../tmpdir_fixture.h"
#include "util/jlog.h"

static int setup(void **state) { return tmpdir_setup(state, "evlog", "log"); }
static int teardown(void **state) { return tmpdir_teardown(state); }

/* ---- record contents: a deterministic function of an id ---- */

#define MAX_TEST_REC 600

static size_t rec_len(uint64_t id, size_t max) {
  return 1 + (size_t)(baton_hash64(&id, sizeof(id), 7) % max);
}

static size_t rec_fill(uint64_t id, unsigned char *buf, size_t max) {
  size_t len = rec_len(id, max);
  for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(id * 131 + i * 7 + (id >> 32));
  memcpy(buf, &id, MIN(len, sizeof(id)));
  return len;
}

/* Asserts e holds exactly the record made from id. */
static void rec_check(uint64_t id, const void *data, size_t len, size_t max) {
  unsigned char want[MAX_TEST_REC + 8];
  size_t wlen = rec_fill(id, want, max);
  assert_int_equal(len, wlen);
  assert_memory_equal(data, want, len);
}

static struct evlog *open_log(const char *dir, const struct evlog_options *base) {
  struct evlog_options o = base ? *base : (struct evlog_options){0};
  o.dir = dir;
  struct evlog *log = NULL;
  assert_int_equal(evlog_open(&o, &log), 0);
  assert_non_null(log);
  return log;
}

/* Appends record id synchronously and returns its LSN. */
static uint64_t append_id(struct evlog *log, uint64_t id, size_t max) {
  unsigned char buf[MAX_TEST_REC + 8];
  struct evlog_rec r = {buf, rec_fill(id, buf, max)};
  uint64_t lsn = 0;
  assert_int_equal(evlog_append(log, &r, 1, &lsn), 0);
  return lsn;
}

/* Reads [from, durable), asserting the record at LSN l is made from id l + delta; returns the count. */
static uint64_t read_check(struct evlog *log, uint64_t from, int64_t delta, size_t max) {
  struct evlog_reader *r;
  assert_int_equal(evlog_reader_open(log, from, &r), 0);
  struct evlog_entry e;
  uint64_t want = from, n = 0;
  int rc;
  while ((rc = evlog_reader_next(r, &e)) == 1) {
    assert_int_equal(e.lsn, want);
    rec_check((uint64_t)((int64_t)e.lsn + delta), e.data, e.len, max);
    want++;
    n++;
  }
  assert_int_equal(rc, 0);
  assert_int_equal(want, evlog_durable_lsn(log));
  evlog_reader_close(r);
  return n;
}

static void seg_path(const char *dir, uint64_t first_lsn, char *out, size_t cap) {
  char name[EVLOG_NAME_MAX];
  evlog_seg_name(first_lsn, name);
  snprintf(out, cap, "%s/%s", dir, name);
}

static int count_segs(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    if (strstr(de->d_name, ".seg")) n++;
  closedir(d);
  return n;
}

static off_t file_size(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return st.st_size;
}

/* ---- basic appends and reads ---- */

static void test_append_read_sync(void **state) {
  struct fixture *f = *state;
  struct evlog *log = open_log(f->dir, &(struct evlog_options){0});
  assert_int_equal(evlog_durable_lsn(log), 1);
  assert_int_equal(evlog_first_lsn(log), 1);
  for (uint64_t id = 0; id < 10; id++) assert_int_equal(append_id(log, id, 300), id + 1);
  /* One batch of five records gets five consecutive LSNs. */
  unsigned char bufs[5][MAX_TEST_REC];
  struct evlog_rec recs[5];
  for (int i = 0; i < 5; i++) recs[i] = (struct evlog_rec){bufs[i], rec_fill(10 + (uint64_t)i, bufs[i], 300)};
  uint64_t first = 0;
  assert_int_equal(evlog_append(log, recs, 5, &first), 0);
  assert_int_equal(first, 11);
  assert_int_equal(evlog_durable_lsn(log), 16);
  assert_int_equal(read_check(log, 1, -1, 300), 15);
  assert_int_equal(read_check(log, 16, -1, 300), 0);
  /* A zero-length record is refused: an all-zero record header marks where a preallocated
     segment's records end. Nothing is appended. */
  struct evlog_rec empty = {"", 0};
  assert_int_equal(evlog_append(log, &empty, 1, &first), BATON_EINVAL);
  assert_int_equal(evlog_durable_lsn(log), 16);
  evlog_close(log);
}

struct cb_log {
  pthread_mutex_t mu;
  uint64_t lsns[4096];
  int status[4096];
  size_t n;
};

static void record_cb(void *arg, uint64_t first_lsn, int status) {
  struct cb_log *c = arg;
  pthread_mutex_lock(&c->mu);
  assert_true(c->n < ARRAY_SIZE(c->lsns));
  c->lsns[c->n] = first_lsn;
  c->status[c->n] = status;
  c->n++;
  pthread_mutex_unlock(&c->mu);
}

static void test_append_async(void **state) {
  struct fixture *f = *state;
  struct evlog *log = open_log(f->dir, &(struct evlog_options){0});
  struct cb_log c = {.mu = PTHREAD_MUTEX_INITIALIZER};
  uint64_t id = 0;
  for (int i = 0; i < 200; i++) {
    unsigned char bufs[3][MAX_TEST_REC];
    struct evlog_rec recs[3];
    size_t n = 1 + (size_t)i % 3;
    for (size_t k = 0; k < n; k++) recs[k] = (struct evlog_rec){bufs[k], rec_fill(id++, bufs[k], 500)};
    assert_int_equal(evlog_append_async(log, recs, n, record_cb, &c), 0);
  }
  assert_int_equal(evlog_wait(log, id, 10000), 0);
  assert_int_equal(evlog_durable_lsn(log), id + 1);
  /* Callbacks ran once per append, in append order, with the LSN of each append's first record. */
  pthread_mutex_lock(&c.mu);
  assert_int_equal(c.n, 200);
  uint64_t want = 1;
  for (size_t i = 0; i < c.n; i++) {
    assert_int_equal(c.status[i], 0);
    assert_int_equal(c.lsns[i], want);
    want += 1 + i % 3;
  }
  pthread_mutex_unlock(&c.mu);
  assert_int_equal(read_check(log, 1, -1, 500), id);
  evlog_close(log);
}

static void test_close_drains(void **state) {
  struct fixture *f = *state;
  struct evlog *log = open_log(f->dir, &(struct evlog_options){0});
  struct cb_log c = {.mu = PTHREAD_MUTEX_INITIALIZER};
  evlog_test_pause(log, 1); /* everything is still pending when close starts */
  for (uint64_t id = 0; id < 300; id++) {
    unsigned char buf[MAX_TEST_REC];
    struct evlog_rec r = {buf, rec_fill(id, buf, 200)};
    assert_int_equal(evlog_append_async(log, &r, 1, record_cb, &c), 0);
  }
  evlog_close(log);
  assert_int_equal(c.n, 300);
  for (size_t i = 0; i < c.n; i++) {
    assert_int_equal(c.status[i], 0);
    assert_int_equal(c.lsns[i], i + 1);
  }
  log = open_log(f->dir, NULL);
  assert_int_equal(evlog_durable_lsn(log), 301);
  assert_int_equal(read_check(log, 1, -1, 200), 300);
  evlog_close(log);
}

static void test_reopen_continues(void **state) {
  struct fixture *f = *state;
  struct evlog *log = open_log(f->dir, NULL);
  for (uint64_t id = 0; id < 20; id++) append_id(log, id, 100);
  evlog_close(log);
  log = open_log(f->dir, NULL);
  assert_int_equal(evlog_durable_lsn(log), 21);
  assert_int_equal(append_id(log, 20, 100), 21);
  assert_int_equal(read_check(log, 1, -1, 100), 21);
  evlog_close(log);
  /* A second open of the same directory in the meantime is refused. */
  log = open_log(f->dir, NULL);
  struct evlog *other = NULL;
  jlog_set_level(JLOG_ERROR + 1); /* the error line is expected */
  assert_int_equal(evlog_open(&(struct evlog_options){.dir = f->dir}, &other), BATON_EIO);
  jlog_set_level(JLOG_INFO);
  assert_null(other);
  evlog_close(log);
}

/* ---- many threads ---- */

#define N_THREADS 8
#define PER_THREAD 150

struct writer_arg {
  struct evlog *log;
  uint64_t thread;
};

static void *writer_thread(void *p) {
  struct writer_arg *a = p;
  for (uint64_t seq = 0; seq < PER_THREAD;) {
    unsigned char bufs[3][MAX_TEST_REC];
    struct evlog_rec recs[3];
    size_t n = 1 + seq % 3;
    if (seq + n > PER_THREAD) n = PER_THREAD - seq;
    for (size_t k = 0; k < n; k++) {
      uint64_t id = a->thread << 32 | (seq + k);
      recs[k] = (struct evlog_rec){bufs[k], rec_fill(id, bufs[k], 400)};
    }
    if (evlog_append(a->log, recs, n, NULL) != 0) abort();
    seq += n;
  }
  return NULL;
}

static void test_many_threads(void **state) {
  struct fixture *f = *state;
  struct evlog *log = open_log(f->dir, &(struct evlog_options){.segment_bytes = 64 * 1024});
  pthread_t th[N_THREADS];
  struct writer_arg args[N_THREADS];
  for (uint64_t t = 0; t < N_THREADS; t++) {
    args[t] = (struct writer_arg){log, t};
    assert_int_equal(pthread_create(&th[t], NULL, writer_thread, &args[t]), 0);
  }
  for (int t = 0; t < N_THREADS; t++) pthread_join(th[t], NULL);
  assert_int_equal(evlog_durable_lsn(log), N_THREADS * PER_THREAD + 1);

  /* Every record exactly once, in LSN order, each thread's records in its own order. */
  uint64_t next_seq[N_THREADS] = {0};
  struct evlog_reader *r;
  struct evlog_entry e;
  assert_int_equal(evlog_reader_open(log, 1, &r), 0);
  uint64_t want = 1;
  int rc;
  while ((rc = evlog_reader_next(r, &e)) == 1) {
    assert_int_equal(e.lsn, want++);
    uint64_t id = 0;
    /* The id is in the first bytes; records shorter than 8 bytes are matched by trying each thread. */
    if (e.len >= 8) {
      memcpy(&id, e.data, 8);
    } else {
      int found = 0;
      for (uint64_t t = 0; t < N_THREADS && !found; t++) {
        id = t << 32 | next_seq[t];
        unsigned char buf[MAX_TEST_REC];
        size_t len = rec_fill(id, buf, 400);
        found = len == e.len && !memcmp(buf, e.data, len);
      }
      assert_true(found);
    }
    uint64_t t = id >> 32, seq = id & 0xffffffffu;
    assert_true(t < N_THREADS);
    assert_int_equal(seq, next_seq[t]);
    next_seq[t]++;
    rec_check(id, e.data, e.len, 400);
  }
  assert_int_equal(rc, 0);
  evlog_reader_close(r);
  for (int t = 0; t < N_THREADS; t++) assert_int_equal(next_seq[t], PER_THREAD);

  /* Group commit: eight threads waiting on fsync share batches. */
  struct evlog_stats st;
  evlog_get_stats(log, &st);
  assert_int_equal(st.records, N_THREADS * PER_THREAD);
  assert_true(st.batches < st.appends);
  assert_true(st.syncs <= st.batches + st.segments_created);
  evlog_close(log);
}

struct one_append {
  struct evlog *log;
  uint64_t id;
};

static void *async_one(void *p) {
  struct one_append *a = p;
  unsigned char buf[MAX_TEST_REC];
  struct evlog_rec r = {buf, rec_fill(a->id, buf, 100)};
  if (evlog_append(a->log, &r, 1, NULL) != 0) abort();
  return NULL;
}

/* Appends that arrive while the writer is busy go to disk together, with one fdatasync. */
static void test_group_commit_batches(void **state) {
  struct fixture *f = *state;
  struct evlog *log = open_log(f->dir, NULL);
  append_id(log, 1000, 100);
  struct evlog_stats before, after;
  evlog_get_stats(log, &before);
  evlog_test_pause(log, 1);
  pthread_t th[N_THREADS];
  struct one_append a[N_THREADS];
  for (int t = 0; t < N_THREADS; t++) {
    a[t] = (struct one_append){log, (uint64_t)t};
    assert_int_equal(pthread_create(&th[t], NULL, async_one, &a[t]), 0);
  }
  /* Wait until all eight appends are pending (accepted, not yet written). */
  for (;;) {
    pthread_mutex_lock(&log->mu);
    size_t n = log->pending.n_pend;
    pthread_mutex_unlock(&log->mu);
    if (n == N_THREADS) break;
    usleep(1000);
  }
  evlog_test_pause(log, 0);
  for (int t = 0; t < N_THREADS; t++) pthread_join(th[t], NULL);
  evlog_get_stats(log, &after);
  assert_int_equal(after.batches - before.batches, 1);
  assert_int_equal(after.syncs - before.syncs, 1);
  assert_int_equal(after.appends - before.appends, N_THREADS);
  evlog_close(log);
}

static void noop_cb(void *arg, uint64_t first_lsn, int status) {
  (void)arg, (void)first_lsn;
  assert_int_equal(status, 0);
}

/* One batch spanning three segments: one write and one fdatasync per segment, none split. */
static void test_batch_across_segments(void **state) {
  struct fixture *f = *state;
  struct evlog *log = open_log(f->dir, &(struct evlog_options){.segment_bytes = 1024});
  struct evlog_stats before, after;
  evlog_get_stats(log, &before);
  evlog_test_pause(log, 1);
  char buf[300];
  memset(buf, 's', sizeof(buf));
  struct evlog_rec r = {buf, sizeof(buf)};
  for (int i = 0; i < 10; i++) assert_int_equal(evlog_append_async(log, &r, 1, noop_cb, NULL), 0);
  evlog_test_pause(log, 0);
  assert_int_equal(evlog_wait(log, 10, 10000), 0);
  evlog_get_stats(log, &after);
  assert_int_equal(after.batches - before.batches, 1);
  /* 16 + 4 * 308 passes 1024: segments of 4, 4 and 2 records. */
  assert_int_equal(after.segments_created - before.segments_created, 2);
  assert_int_equal(after.syncs - before.syncs, 3);
  assert_int_equal(log->n_segs, 3);
  assert_int_equal(log->segs[1].first_lsn, 5);
  assert_int_equal(log->segs[2].first_lsn, 9);
  assert_int_equal(log->segs[0].bytes, 16 + 4 * 308);
  evlog_close(log);
}

/* ---- torn tails and corruption ---- */

/* Writes n records with ids 0..n-1 (max length max) and returns the byte offset of each. */
static void fill_log(const char *dir, const struct evlog_options *o, uint64_t n, size_t max,
                     uint64_t *offsets) {
  struct evlog *log = open_log(dir, o);
  uint64_t off = EVLOG_HDR_BYTES;
  for (uint64_t id = 0; id < n; id++) {
    if (offsets) offsets[id] = off;
    off += EVLOG_REC_HDR + rec_len(id, max);
    append_id(log, id, max);
  }
  evlog_close(log);
}

static void truncate_to(const char *path, off_t size, const char *garbage, size_t glen) {
  assert_int_equal(truncate(path, size), 0);
  int fd = open(path, O_WRONLY | O_APPEND);
  assert_true(fd >= 0);
  if (glen) assert_int_equal(write(fd, garbage, glen), (ssize_t)glen);
  close(fd);
}

static void test_torn_tail(void **state) {
  struct fixture *f = *state;
  enum { N = 10 };
  uint64_t offs[N];
  char path[160];
  seg_path(f->dir, 1, path, sizeof(path));
  /* Cut positions inside the last record: in its length, its CRC, its payload, one short. */
  const size_t last_len = rec_len(N - 1, 300);
  const size_t cuts[] = {1, 3, 4, 7, 8, 9, 8 + last_len / 2, 8 + last_len - 1};
  jlog_set_level(JLOG_ERROR); /* the torn-tail warnings are expected here */
  for (size_t c = 0; c < ARRAY_SIZE(cuts); c++) {
    for (int garbage = 0; garbage < 2; garbage++) {
      teardown(state);
      setup(state);
      f = *state;
      seg_path(f->dir, 1, path, sizeof(path));
      fill_log(f->dir, NULL, N, 300, offs);
      assert_int_equal(file_size(path), offs[N - 1] + 8 + last_len);
      truncate_to(path, (off_t)(offs[N - 1] + cuts[c]), "\x55\xaa\x13\x37garbage!", garbage ? 12 : 0);
      struct evlog *log = open_log(f->dir, NULL);
      assert_int_equal(evlog_durable_lsn(log), N); /* the last record (LSN N) is gone */
      assert_int_equal(file_size(path), offs[N - 1]);
      assert_int_equal(read_check(log, 1, -1, 300), N - 1);
      assert_int_equal(append_id(log, N - 1, 300), N);
      evlog_close(log);
      log = open_log(f->dir, NULL);
      assert_int_equal(evlog_durable_lsn(log), N + 1);
      assert_int_equal(read_check(log, 1, -1, 300), N);
      evlog_close(log);
    }
  }
  /* Zero bytes after the last complete record (a preallocated segment's unused part): every
     record stays, the zeros stay, and appends go on over them. */
  teardown(state);
  setup(state);
  f = *state;
  seg_path(f->dir, 1, path, sizeof(path));
  fill_log(f->dir, NULL, N, 300, offs);
  off_t full = file_size(path);
  static const char zeros[4096];
  truncate_to(path, full, zeros, sizeof(zeros));
  struct evlog *log = open_log(f->dir, NULL);
  assert_int_equal(evlog_durable_lsn(log), N + 1);
  assert_int_equal(file_size(path), full + (off_t)sizeof(zeros));
  assert_int_equal(read_check(log, 1, -1, 300), N);
  assert_int_equal(append_id(log, N, 300), N + 1);
  evlog_close(log);
  log = open_log(f->dir, NULL);
  assert_int_equal(evlog_durable_lsn(log), N + 2);
  assert_int_equal(read_check(log, 1, -1, 300), N + 1);
  evlog_close(log);
  /* Zeros, then something else: a torn write. It goes, from the first zero on. */
  truncate_to(path, file_size(path), "\x55", 1);
  log = open_log(f->dir, NULL);
  assert_int_equal(evlog_durable_lsn(log), N + 2);
  assert_int_equal(read_check(log, 1, -1, 300), N + 1);
  assert_true(file_size(path) < full + (off_t)sizeof(zeros));
  evlog_close(log);
  jlog_set_level(JLOG_INFO);
}

static void flip_byte(const char *path, off_t at) {
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  unsigned char b;
  assert_int_equal(pread(fd, &b, 1, at), 1);
  b ^= 0x40;
  assert_int_equal(pwrite(fd, &b, 1, at), 1);
  close(fd);
}

static void test_flipped_byte_last_segment(void **state) {
  enum { N = 12 };
  /* Flip a payload byte of the last record, then of record 7: it and all after it go. */
  const uint64_t victims[] = {N - 1, 6};
  for (size_t v = 0; v < ARRAY_SIZE(victims); v++) {
    teardown(state);
    setup(state);
    struct fixture *f = *state;
    uint64_t offs[N], id = victims[v];
    char path[160];
    seg_path(f->dir, 1, path, sizeof(path));
    fill_log(f->dir, NULL, N, 300, offs);
    flip_byte(path, (off_t)(offs[id] + EVLOG_REC_HDR + rec_len(id, 300) / 2));
    jlog_set_level(JLOG_ERROR);
    struct evlog *log = open_log(f->dir, NULL);
    jlog_set_level(JLOG_INFO);
    assert_int_equal(evlog_durable_lsn(log), id + 1);
    assert_int_equal(file_size(path), offs[id]);
    assert_int_equal(read_check(log, 1, -1, 300), id);
    assert_int_equal(append_id(log, id, 300), id + 1);
    assert_int_equal(read_check(log, 1, -1, 300), id + 1);
    evlog_close(log);
  }
}

/* A crash while creating a segment leaves it empty or with an unwritten (zero) header. */
static void test_empty_last_segment(void **state) {
  struct fixture *f = *state;
  for (int kind = 0; kind < 3; kind++) {
    teardown(state);
    setup(state);
    f = *state;
    fill_log(f->dir, NULL, 5, 100, NULL);
    char path[160];
    seg_path(f->dir, 6, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    static const char zeros[EVLOG_HDR_BYTES];
    if (kind == 1) assert_int_equal(write(fd, zeros, sizeof(zeros)), sizeof(zeros));
    if (kind == 2) assert_int_equal(write(fd, "BATONSG1", 8), 8); /* half a header */
    close(fd);
    jlog_set_level(JLOG_ERROR);
    struct evlog *log = open_log(f->dir, NULL);
    jlog_set_level(JLOG_INFO);
    assert_int_equal(log->n_segs, 2);
    assert_int_equal(file_size(path), EVLOG_HDR_BYTES);
    assert_int_equal(evlog_durable_lsn(log), 6);
    assert_int_equal(append_id(log, 5, 100), 6);
    assert_int_equal(read_check(log, 1, -1, 100), 6);
    evlog_close(log);
  }
  /* A last segment whose header is wrong (not just unwritten) is not guessed at. */
  char path[160];
  seg_path(f->dir, 7, path, sizeof(path));
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "BATONSG1\x09\0\0\0\0\0\0\0", 16), 16); /* first LSN 9, not 7 */
  close(fd);
  struct evlog *log = NULL;
  jlog_set_level(JLOG_ERROR + 1);
  assert_int_equal(evlog_open(&(struct evlog_options){.dir = f->dir}, &log), BATON_ECORRUPT);
  jlog_set_level(JLOG_INFO);
  assert_null(log);
}

static void test_corrupt_non_last_segment(void **state) {
  struct fixture *f = *state;
  struct evlog_options o = {.segment_bytes = 1024};
  fill_log(f->dir, &o, 60, 200, NULL);
  assert_true(count_segs(f->dir) >= 3);
  char path[160];
  seg_path(f->dir, 1, path, sizeof(path));
  flip_byte(path, EVLOG_HDR_BYTES + EVLOG_REC_HDR + 0); /* first payload byte of record 1 */
  struct evlog *log = NULL;
  jlog_set_level(JLOG_ERROR + 1); /* the error is expected */
  o.dir = f->dir;
  assert_int_equal(evlog_open(&o, &log), BATON_ECORRUPT);
  assert_null(log);
  flip_byte(path, EVLOG_HDR_BYTES + EVLOG_REC_HDR + 0); /* repaired: opens again */
  assert_int_equal(evlog_open(&o, &log), 0);
  evlog_close(log);
  /* A cut in the middle of a non-last segment is corruption, not a torn tail. */
  off_t size = file_size(path);
  truncate_to(path, size - 3, NULL, 0);
  assert_int_equal(evlog_open(&o, &log), BATON_ECORRUPT);
  truncate_to(path, size - 3, "xyz", 3);
  assert_int_equal(evlog_open(&o, &log), BATON_ECORRUPT);
  jlog_set_level(JLOG_INFO);
}

static void test_gap_between_segments(void **state) {
  struct fixture *f = *state;
  struct evlog_options o = {.segment_bytes = 1024};
  fill_log(f->dir, &o, 60, 200, NULL);
  /* Find the second segment and delete it. */
  struct evlog *log = open_log(f->dir, &o);
  assert_true(log->n_segs >= 3);
  uint64_t second = log->segs[1].first_lsn;
  evlog_close(log);
  char path[160];
  seg_path(f->dir, second, path, sizeof(path));
  assert_int_equal(remove(path), 0);
  jlog_set_level(JLOG_ERROR + 1);
  o.dir = f->dir;
  log = NULL;
  assert_int_equal(evlog_open(&o, &log), BATON_ECORRUPT);
  jlog_set_level(JLOG_INFO);
}

/* ---- segments, readers, retention ---- */

static void test_rollover_and_readers(void **state) {
  struct fixture *f = *state;
  struct evlog_options o = {.segment_bytes = 512, .no_sync = 1};
  enum { N = 300 };
  fill_log(f->dir, &o, N, 150, NULL);
  struct evlog *log = open_log(f->dir, &o);
  assert_true(log->n_segs > 10);
  assert_int_equal(count_segs(f->dir), (int)log->n_segs);
  /* Each sealed segment holds whole records and ends where the next begins; none much over size. */
  for (size_t i = 0; i + 1 < log->n_segs; i++) {
    assert_int_equal(log->segs[i].end_lsn, log->segs[i + 1].first_lsn);
    assert_true(log->segs[i].bytes < 512 + EVLOG_REC_HDR + 150);
    char path[160];
    seg_path(f->dir, log->segs[i].first_lsn, path, sizeof(path));
    assert_int_equal(file_size(path), log->segs[i].bytes);
  }
  assert_int_equal(read_check(log, 1, -1, 150), N);
  /* Readers from every LSN, including segment starts and the durable end. */
  for (uint64_t from = 1; from <= N + 1; from++) assert_int_equal(read_check(log, from, -1, 150), N + 1 - from);
  struct evlog_reader *r = NULL;
  assert_int_equal(evlog_reader_open(log, N + 2, &r), BATON_ERANGE);
  assert_int_equal(evlog_reader_open(log, 0, &r), BATON_EINVAL);
  /* A reader at the end picks up new records as they become durable, across new segments. */
  assert_int_equal(evlog_reader_open(log, N + 1, &r), 0);
  struct evlog_entry e;
  assert_int_equal(evlog_reader_next(r, &e), 0);
  for (uint64_t id = N; id < N + 40; id++) {
    append_id(log, id, 150);
    assert_int_equal(evlog_reader_next(r, &e), 1);
    assert_int_equal(e.lsn, id + 1);
    rec_check(id, e.data, e.len, 150);
    assert_int_equal(evlog_reader_next(r, &e), 0);
  }
  evlog_reader_close(r);
  evlog_close(log);
}

struct tail_arg {
  struct evlog *log;
  uint64_t until; /* stop after reading this many records */
  uint64_t read;
  int err;
};

static void *tail_thread(void *p) {
  struct tail_arg *a = p;
  struct evlog_reader *r;
  if (evlog_reader_open(a->log, 1, &r) != 0) {
    a->err = 1;
    return NULL;
  }
  struct evlog_entry e;
  while (a->read < a->until) {
    int rc = evlog_reader_next(r, &e);
    if (rc < 0) {
      a->err = rc;
      break;
    }
    if (rc == 0) {
      evlog_wait(a->log, a->read + 1, 100);
      continue;
    }
    if (e.lsn != a->read + 1) {
      a->err = 2;
      break;
    }
    unsigned char want[MAX_TEST_REC];
    uint64_t id;
    if (e.len >= 8) {
      memcpy(&id, e.data, 8);
      size_t len = rec_fill(id, want, 400);
      if (len != e.len || memcmp(want, e.data, len)) {
        a->err = 3;
        break;
      }
    }
    a->read++;
  }
  evlog_reader_close(r);
  return NULL;
}

/* A reader tails the log while eight threads append and segments roll. */
static void test_reader_concurrent_with_writer(void **state) {
  struct fixture *f = *state;
  struct evlog *log = open_log(f->dir, &(struct evlog_options){.segment_bytes = 8192, .no_sync = 1});
  struct tail_arg ta = {log, N_THREADS * PER_THREAD, 0, 0};
  pthread_t tail;
  assert_int_equal(pthread_create(&tail, NULL, tail_thread, &ta), 0);
  pthread_t th[N_THREADS];
  struct writer_arg args[N_THREADS];
  for (uint64_t t = 0; t < N_THREADS; t++) {
    args[t] = (struct writer_arg){log, t};
    assert_int_equal(pthread_create(&th[t], NULL, writer_thread, &args[t]), 0);
  }
  for (int t = 0; t < N_THREADS; t++) pthread_join(th[t], NULL);
  pthread_join(tail, NULL);
  assert_int_equal(ta.err, 0);
  assert_int_equal(ta.read, N_THREADS * PER_THREAD);
  assert_true(log->n_segs > 5);
  evlog_close(log);
}

static void test_checkpoint_retention(void **state) {
  struct fixture *f = *state;
  struct evlog_options o = {.segment_bytes = 1024, .no_sync = 1, .retain_bytes = 3000};
  enum { N = 200 };
  fill_log(f->dir, &o, N, 200, NULL);
  struct evlog *log = open_log(f->dir, &o);
  size_t n0 = log->n_segs;
  assert_true(n0 > 10);
  struct evlog_seg before[64];
  assert_true(n0 <= ARRAY_SIZE(before));
  memcpy(before, log->segs, n0 * sizeof(*before));

  /* Nothing is covered by a checkpoint at LSN 1. */
  assert_int_equal(evlog_checkpoint(log, 1), 0);
  assert_int_equal(log->n_segs, n0);

  /* Checkpoint in the middle of segment k: segments 0..k-1 are wholly below it. */
  size_t k = n0 / 2;
  uint64_t ckpt = before[k].first_lsn + 1;
  assert_int_equal(evlog_checkpoint(log, ckpt), 0);
  /* Expected: drop the oldest while the rest of segments 0..k-1 still hold >= 3000 bytes. */
  uint64_t below = 0;
  for (size_t i = 0; i < k; i++) below += before[i].bytes;
  size_t dropped = 0;
  while (below - before[dropped].bytes >= 3000) below -= before[dropped++].bytes;
  assert_true(dropped > 0);
  assert_int_equal(log->n_segs, n0 - dropped);
  assert_int_equal(count_segs(f->dir), (int)(n0 - dropped));
  assert_int_equal(evlog_first_lsn(log), before[dropped].first_lsn);
  uint64_t kept = 0;
  for (size_t i = dropped; i < k; i++) kept += before[i].bytes;
  assert_true(kept >= 3000);

  struct evlog_reader *r = NULL;
  assert_int_equal(evlog_reader_open(log, 1, &r), BATON_ENOENT);
  assert_int_equal(evlog_reader_open(log, evlog_first_lsn(log) - 1, &r), BATON_ENOENT);
  uint64_t first = evlog_first_lsn(log);
  assert_int_equal(read_check(log, first, -1, 200), N + 1 - first);

  /* A checkpoint at the end never deletes the active segment. */
  assert_int_equal(evlog_checkpoint(log, evlog_durable_lsn(log)), 0);
  assert_true(log->n_segs >= 1);
  assert_int_equal(log->segs[log->n_segs - 1].end_lsn, 0);
  evlog_close(log);

  /* Deletions survive a reopen, and a reopened tiny retention deletes down to one sealed segment. */
  o.retain_bytes = 1;
  log = open_log(f->dir, &o);
  assert_true(evlog_first_lsn(log) > first);
  assert_int_equal(evlog_checkpoint(log, evlog_durable_lsn(log)), 0);
  assert_int_equal(log->n_segs, 2); /* the newest sealed one (>= 1 byte kept) and the active one */
  assert_int_equal(count_segs(f->dir), 2);
  first = evlog_first_lsn(log);
  assert_int_equal(read_check(log, first, -1, 200), N + 1 - first);
  assert_int_equal(append_id(log, N, 200), N + 1);
  evlog_close(log);
}

/* A reader keeps reading a segment deleted under it (its file stays open). */
static void test_retention_under_reader(void **state) {
  struct fixture *f = *state;
  struct evlog_options o = {.segment_bytes = 1024, .no_sync = 1, .retain_bytes = 1};
  fill_log(f->dir, &o, 100, 200, NULL);
  struct evlog *log = open_log(f->dir, &o);
  struct evlog_reader *r;
  assert_int_equal(evlog_reader_open(log, 1, &r), 0);
  struct evlog_entry e;
  assert_int_equal(evlog_reader_next(r, &e), 1);
  assert_true(log->n_segs > 3);
  uint64_t end0 = log->segs[0].end_lsn;
  assert_int_equal(evlog_checkpoint(log, evlog_durable_lsn(log)), 0);
  assert_true(evlog_first_lsn(log) > 1);
  /* It finishes the open segment, then finds the next one gone. */
  int rc;
  uint64_t n = 1;
  while ((rc = evlog_reader_next(r, &e)) == 1) {
    assert_int_equal(e.lsn, n + 1);
    rec_check(n, e.data, e.len, 200);
    n++;
  }
  assert_int_equal(rc, BATON_ENOENT);
  assert_int_equal(n + 1, end0); /* it stopped at the end of the segment it had open */
  evlog_reader_close(r);
  evlog_close(log);
}

/* Damage that appears after open is caught by the reader's CRC check. */
static void test_reader_detects_corruption(void **state) {
  struct fixture *f = *state;
  struct evlog_options o = {.segment_bytes = 1024, .no_sync = 1};
  uint64_t offs[40];
  fill_log(f->dir, &o, 5, 200, offs);
  struct evlog *log = open_log(f->dir, &o);
  char path[160];
  seg_path(f->dir, 1, path, sizeof(path));
  flip_byte(path, (off_t)(offs[3] + EVLOG_REC_HDR)); /* record 4's first payload byte */
  struct evlog_reader *r;
  assert_int_equal(evlog_reader_open(log, 1, &r), 0);
  struct evlog_entry e;
  for (uint64_t lsn = 1; lsn <= 3; lsn++) {
    assert_int_equal(evlog_reader_next(r, &e), 1);
    assert_int_equal(e.lsn, lsn);
  }
  assert_int_equal(evlog_reader_next(r, &e), BATON_ECORRUPT);
  evlog_reader_close(r);
  /* Seeking past it reads through it, so that fails too. */
  assert_int_equal(evlog_reader_open(log, 5, &r), BATON_ECORRUPT);
  evlog_close(log);
}

/* ---- limits and waits ---- */

static void test_backpressure(void **state) {
  struct fixture *f = *state;
  struct evlog *log = open_log(f->dir, &(struct evlog_options){.max_pending_bytes = 4096});
  struct cb_log c = {.mu = PTHREAD_MUTEX_INITIALIZER};
  evlog_test_pause(log, 1);
  char buf[100];
  memset(buf, 'b', sizeof(buf));
  struct evlog_rec r = {buf, sizeof(buf)};
  size_t accepted = 0;
  int rc;
  while ((rc = evlog_append_async(log, &r, 1, record_cb, &c)) == 0) accepted++;
  assert_int_equal(rc, BATON_EBUSY);
  assert_int_equal(accepted, 4096 / (EVLOG_REC_HDR + sizeof(buf)));
  assert_int_equal(evlog_durable_lsn(log), 1);
  /* A batch that could never fit is too big, not busy. */
  struct evlog_rec many[64];
  for (int i = 0; i < 64; i++) many[i] = r;
  assert_int_equal(evlog_append_async(log, many, 64, record_cb, &c), BATON_ETOOBIG);
  evlog_test_pause(log, 0);
  assert_int_equal(evlog_wait(log, accepted, 10000), 0);
  assert_int_equal(evlog_durable_lsn(log), accepted + 1);
  /* Once durable, the bytes no longer count: appends are accepted again. */
  uint64_t lsn;
  assert_int_equal(evlog_append(log, &r, 1, &lsn), 0);
  assert_int_equal(lsn, accepted + 1);
  evlog_close(log);
  assert_int_equal(c.n, accepted);
  for (size_t i = 0; i < c.n; i++) assert_int_equal(c.status[i], 0);
}

static void test_limits(void **state) {
  struct fixture *f = *state;
  struct evlog *log = open_log(f->dir, &(struct evlog_options){.max_record_bytes = 100, .no_sync = 1});
  char buf[101] = {0};
  struct evlog_rec ok = {buf, 100}, big = {buf, 101};
  assert_int_equal(evlog_append(log, &big, 1, NULL), BATON_ETOOBIG);
  struct evlog_rec mixed[2] = {ok, big};
  assert_int_equal(evlog_append(log, mixed, 2, NULL), BATON_ETOOBIG);
  assert_int_equal(evlog_append(log, &ok, 0, NULL), BATON_EINVAL);
  uint64_t lsn;
  assert_int_equal(evlog_append(log, &ok, 1, &lsn), 0);
  assert_int_equal(lsn, 1); /* refused appends used no LSN */
  evlog_close(log);
}

struct waker {
  struct evlog *log;
  int rc;
};

static void *wait_forever(void *p) {
  struct waker *w = p;
  w->rc = evlog_wait(w->log, 1000, -1);
  return NULL;
}

/* evlog_close releases waiters with BATON_ECLOSED and frees the log only after they left. */
static void test_wait_during_close(void **state) {
  struct fixture *f = *state;
  struct evlog *log = open_log(f->dir, &(struct evlog_options){.no_sync = 1});
  struct waker w[3];
  pthread_t th[3];
  for (int i = 0; i < 3; i++) {
    w[i] = (struct waker){log, 1};
    assert_int_equal(pthread_create(&th[i], NULL, wait_forever, &w[i]), 0);
  }
  for (;;) { /* all three are waiting */
    pthread_mutex_lock(&log->mu);
    size_t n = log->n_waiters;
    pthread_mutex_unlock(&log->mu);
    if (n == 3) break;
    usleep(1000);
  }
  evlog_close(log);
  for (int i = 0; i < 3; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(w[i].rc, BATON_ECLOSED);
  }
}

static void test_wait(void **state) {
  struct fixture *f = *state;
  struct evlog *log = open_log(f->dir, &(struct evlog_options){.no_sync = 1});
  append_id(log, 0, 10);
  assert_int_equal(evlog_wait(log, 1, 0), 0);
  assert_int_equal(evlog_wait(log, 1, -1), 0);
  int64_t t0 = clock_mono_ns();
  assert_int_equal(evlog_wait(log, 2, 60), BATON_EBUSY);
  int64_t waited_ms = (clock_mono_ns() - t0) / 1000000;
  assert_true(waited_ms >= 55);
  assert_int_equal(evlog_wait(log, 2, 0), BATON_EBUSY);
  /* evlog_wake releases a waiter that would otherwise wait forever. */
  struct waker w = {log, 1};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, wait_forever, &w), 0);
  usleep(20000);
  evlog_wake(log);
  pthread_join(th, NULL);
  assert_int_equal(w.rc, BATON_EBUSY);
  evlog_close(log);
}

/* ---- I/O failures ---- */

static void test_io_failure(void **state) {
  struct fixture *f = *state;
  for (int what = 0; what < 2; what++) {
    struct evlog *log = open_log(f->dir, NULL);
    uint64_t base = evlog_durable_lsn(log);
    append_id(log, base - 1, 100);
    struct cb_log c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    evlog_test_fail_next(log, what);
    jlog_set_level(JLOG_ERROR + 1); /* the error line is expected */
    unsigned char buf[MAX_TEST_REC];
    struct evlog_rec r = {buf, rec_fill(base, buf, 100)};
    assert_int_equal(evlog_append_async(log, &r, 1, record_cb, &c), 0);
    assert_int_equal(evlog_wait(log, base + 1, 10000), BATON_EIO);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.status[0], BATON_EIO);
    assert_int_equal(evlog_durable_lsn(log), base + 1);
    /* Sticky: the log never claims anything durable again. */
    assert_int_equal(evlog_append(log, &r, 1, NULL), BATON_EIO);
    assert_int_equal(evlog_append_async(log, &r, 1, record_cb, &c), BATON_EIO);
    assert_int_equal(evlog_durable_lsn(log), base + 1);
    jlog_set_level(JLOG_INFO);
    evlog_close(log);
    /* Reopened, the log works; the failed write never reached the file, the failed
       sync's record did (an unacknowledged record may survive). */
    log = open_log(f->dir, NULL);
    assert_int_equal(evlog_durable_lsn(log), what == 0 ? base + 1 : base + 2);
    evlog_close(log);
  }
}

/* ---- crash ---- */

struct ack {
  uint64_t first_lsn, first_id, n;
};

#define CRASH_THREADS 4

struct crash_arg {
  struct evlog *log;
  int fd;
  uint64_t thread;
};

/* Appends batches of 1-4 records and reports each acknowledged one on the pipe (atomic writes). */
static void *crash_appender(void *p) {
  struct crash_arg *a = p;
  for (uint64_t seq = 0, iter = 0;; iter++) {
    unsigned char bufs[4][MAX_TEST_REC];
    struct evlog_rec recs[4];
    uint64_t n = 1 + iter % 4, id = a->thread << 32 | seq;
    for (uint64_t k = 0; k < n; k++) recs[k] = (struct evlog_rec){bufs[k], rec_fill(id + k, bufs[k], 600)};
    struct ack ack = {0, id, n};
    if (evlog_append(a->log, recs, n, &ack.first_lsn)) _exit(3);
    if (write(a->fd, &ack, sizeof(ack)) != sizeof(ack)) _exit(4);
    seq += n;
  }
  return NULL;
}

static void crash_child(const char *dir, int fd) {
  struct evlog_options o = {.dir = dir, .segment_bytes = 256 * 1024};
  struct evlog *log;
  if (evlog_open(&o, &log)) _exit(2);
  pthread_t th[CRASH_THREADS];
  struct crash_arg args[CRASH_THREADS];
  for (uint64_t t = 0; t < CRASH_THREADS; t++) {
    args[t] = (struct crash_arg){log, fd, t};
    if (pthread_create(&th[t], NULL, crash_appender, &args[t])) _exit(5);
  }
  for (;;) pause(); /* until SIGKILL */
}

/*
 * SIGKILL a process appending from four threads mid-stream, then reopen: every
 * acknowledged record is there with its contents, and everything the log
 * holds reads back with valid CRCs.
 */
/* Bytes this process has caused to be written to storage so far (/proc/self/io). */
/* A field of /proc/self/io (write_bytes: bytes sent to the disk; rchar: bytes read by read and
   pread, from the page cache or not), or -1. */
static long long proc_io(const char *field) {
  FILE *fp = fopen("/proc/self/io", "r");
  long long v = -1;
  char line[256], name[64];
  long long n;
  while (fp && fgets(line, sizeof(line), fp))
    if (sscanf(line, "%63[^:]: %lld", name, &n) == 2 && !strcmp(name, field)) {
      v = n;
      break;
    }
  if (fp) fclose(fp);
  return v;
}

static long long proc_write_bytes(void) { return proc_io("write_bytes"); }

/* Waits (up to 5 s) until the preparer has a spare segment ready. */
static void wait_spare(struct evlog *log) {
  for (int i = 0; i < 5000; i++) {
    pthread_mutex_lock(&log->mu);
    int ready = log->spare_ready;
    pthread_mutex_unlock(&log->mu);
    if (ready) return;
    usleep(1000);
  }
  fail_msg("no spare segment after 5 s");
}

/* Segments prepared ahead: rolls take the zero-filled spare, so the active segment's size does
   not change while records are appended to it; a sealed one is cut to its records; everything
   reads back, before and after reopening; a reopened log goes on over the zeros. */
static void test_preallocated_segments(void **state) {
  struct fixture *f = *state;
  struct evlog_options o = {.segment_bytes = 64 * 1024};
  struct evlog *log = open_log(f->dir, &o);
  uint64_t id = 0;
  for (int seg = 0; seg < 4; seg++) {
    wait_spare(log);
    /* Fill the active segment past segment_bytes, so the next append rolls. */
    uint64_t first = log->segs[log->n_segs - 1].first_lsn;
    while (log->n_segs == (size_t)seg + 1) append_id(log, id++, 500);
    assert_int_equal(log->segs[seg].first_lsn, first);
  }
  struct evlog_stats st;
  evlog_get_stats(log, &st);
  assert_true(st.segments_preallocated >= 4);
  /* The active segment came from a spare: its file is segment_bytes long while its records
     take less, and appending changes neither. */
  uint64_t active = log->segs[log->n_segs - 1].first_lsn;
  char path[160];
  seg_path(f->dir, active, path, sizeof(path));
  assert_int_equal(file_size(path), 64 * 1024);
  wait_spare(log); /* the preparer is done writing: what is written now is the records' */
  long long wb0 = proc_write_bytes();
  for (int i = 0; i < 20; i++) append_id(log, id++, 500);
  long long wb1 = proc_write_bytes();
  assert_int_equal(file_size(path), 64 * 1024);
  /* Each append wrote a folio or two of the spare (16 KB each), not a large one around it (when
     the spare was written 1 MB at a time, each append wrote 1 MB). */
  if (wb0 >= 0) assert_true(wb1 - wb0 <= 20 * 16 * 1024);
  assert_true(log->active_size < 64 * 1024);
  /* Sealed segments hold exactly their records. */
  for (size_t i = 0; i + 1 < log->n_segs; i++) {
    seg_path(f->dir, log->segs[i].first_lsn, path, sizeof(path));
    assert_int_equal((uint64_t)file_size(path), log->segs[i].bytes);
  }
  assert_int_equal(read_check(log, 1, -1, 500), id);
  /* A reader that follows the active segment as it grows reads the records, not the zeros
     after them (which fill a prepared segment to its full size). */
  struct evlog_reader *rd;
  struct evlog_entry e;
  assert_int_equal(evlog_reader_open(log, evlog_durable_lsn(log), &rd), 0);
  size_t n_segs = log->n_segs;
  long long rc0 = proc_io("rchar");
  for (int i = 0; i < 40 && log->n_segs == n_segs; i++) {
    append_id(log, id++, 500);
    assert_int_equal(evlog_reader_next(rd, &e), 1);
    assert_int_equal(e.lsn, id);
    assert_int_equal(evlog_reader_next(rd, &e), 0);
  }
  long long rc1 = proc_io("rchar");
  /* Each new durable LSN reads one record of at most 500 bytes (when the reader filled its
     buffer from the file, it read the rest of the 64 KiB file each time: over 1 MB in all). */
  if (rc0 >= 0) assert_true(rc1 - rc0 <= 40 * 1024);
  evlog_reader_close(rd);
  evlog_close(log);
  /* The spare left behind is not a segment, and goes at the next open. */
  log = open_log(f->dir, &o);
  assert_int_equal(evlog_durable_lsn(log), id + 1);
  assert_int_equal(read_check(log, 1, -1, 500), id);
  for (int i = 0; i < 30; i++) append_id(log, id++, 500);
  assert_int_equal(read_check(log, 1, -1, 500), id);
  evlog_close(log);
  log = open_log(f->dir, &o);
  assert_int_equal(evlog_durable_lsn(log), id + 1);
  assert_int_equal(read_check(log, 1, -1, 500), id);
  evlog_close(log);
  /* Without preallocation nothing is prepared. */
  o.no_prealloc = 1;
  log = open_log(f->dir, &o);
  for (int i = 0; i < 300; i++) append_id(log, id++, 500);
  evlog_get_stats(log, &st);
  assert_int_equal(st.segments_preallocated, 0);
  assert_true(st.segments_created > 0);
  assert_int_equal(read_check(log, 1, -1, 500), id);
  evlog_close(log);
}

static void test_crash_sigkill(void **state) {
  struct fixture *f = *state;
  for (int round = 0; round < 3; round++) {
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(p[0]);
      crash_child(f->dir, p[1]);
    }
    close(p[1]);
    enum { MAX_ACKS = 200000 };
    struct ack *acks = xmalloc(sizeof(*acks) * MAX_ACKS);
    size_t n_acks = 0;
    int64_t start = clock_mono_ns();
    int killed = 0;
    for (;;) {
      if (!killed && (clock_mono_ns() - start > (100 + 50 * round) * 1000000LL || n_acks > 20000)) {
        kill(pid, SIGKILL);
        killed = 1;
      }
      struct ack a;
      ssize_t got = read(p[0], &a, sizeof(a));
      if (got == 0) break; /* the child is dead and everything it acknowledged is read */
      if (got < 0 && errno == EINTR) continue;
      assert_int_equal(got, sizeof(a));
      assert_true(n_acks < MAX_ACKS);
      acks[n_acks++] = a;
    }
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_true(n_acks > 0);

    jlog_set_level(JLOG_ERROR); /* a torn-tail warning is possible */
    struct evlog *log = open_log(f->dir, &(struct evlog_options){.segment_bytes = 256 * 1024});
    jlog_set_level(JLOG_INFO);
    uint64_t durable = evlog_durable_lsn(log);
    /* Read the whole log (CRC-checked) into memory, indexed by LSN. */
    struct evlog_entry *all = xcalloc(durable, sizeof(*all));
    struct evlog_reader *r;
    struct evlog_entry e;
    assert_int_equal(evlog_reader_open(log, 1, &r), 0);
    int rc;
    uint64_t want = 1;
    while ((rc = evlog_reader_next(r, &e)) == 1) {
      assert_int_equal(e.lsn, want++);
      void *copy = xmalloc(e.len + 1);
      memcpy(copy, e.data, e.len);
      all[e.lsn] = (struct evlog_entry){e.lsn, copy, e.len};
    }
    assert_int_equal(rc, 0);
    assert_int_equal(want, durable);
    evlog_reader_close(r);
    for (size_t i = 0; i < n_acks; i++) {
      assert_true(acks[i].first_lsn + acks[i].n <= durable);
      for (uint64_t k = 0; k < acks[i].n; k++) {
        const struct evlog_entry *x = &all[acks[i].first_lsn + k];
        rec_check(acks[i].first_id + k, x->data, x->len, 600);
      }
    }
    for (uint64_t l = 1; l < durable; l++) free((void *)all[l].data);
    free(all);
    evlog_close(log);
    free(acks);
    teardown(state);
    setup(state);
    f = *state;
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_append_read_sync, setup, teardown),
      cmocka_unit_test_setup_teardown(test_append_async, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_drains, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reopen_continues, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_threads, setup, teardown),
      cmocka_unit_test_setup_teardown(test_group_commit_batches, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batch_across_segments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
      cmocka_unit_test_setup_teardown(test_flipped_byte_last_segment, setup, teardown),
      cmocka_unit_test_setup_teardown(test_empty_last_segment, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_non_last_segment, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gap_between_segments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rollover_and_readers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reader_concurrent_with_writer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_checkpoint_retention, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retention_under_reader, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reader_detects_corruption, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wait, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wait_during_close, setup, teardown),
      cmocka_unit_test_setup_teardown(test_io_failure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_preallocated_segments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_sigkill, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
