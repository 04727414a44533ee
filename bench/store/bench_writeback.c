/*
 * bench_writeback: how long the event log's fdatasync waits while a large
 * checkpoint-sized LMDB transaction is written on the same disk, committed in
 * one go or written back in steps (store_pace).
 *
 * A store is filled with ROWS rows of ~600 bytes. Then rounds alternate
 * between the two modes: a writer thread (at the idle I/O priority class, as
 * the engine's checkpoint writer runs) rewrites UPDATE random rows in key
 * order in one transaction, while the main thread plays the event log: every
 * 1 ms it appends 14 KB (20,000 events/s of 700 bytes) to a file and
 * fdatasyncs it. The fdatasync latencies taken while the transaction runs
 * are reported per mode, with the transaction's own duration.
 *
 * With -p the log file is written with zeros beforehand and then written over
 * in place (as a log with preallocated segments would be), so its fdatasync
 * changes no metadata and needs no journal commit.
 *
 * Usage: bench_writeback [-p] [-d DIR] [-n ROWS] [-u UPDATE] [-r ROUNDS] [-s STEP_MB]
 *   defaults: DIR a new directory under /tmp (removed), ROWS 600000,
 *   UPDATE 300000 (about 200 MB of rows), ROUNDS 3 per mode, STEP_MB 8.
 */
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "store/store.h"
#include "util/clock.h"
#include "util/common.h"

#define VAL_BYTES 600
#define LOG_CHUNK (14 * 1024)
#define PREALLOC_BYTES ((off_t)LOG_CHUNK * 16384) /* 224 MiB */

static size_t n_rows = 600000, n_update = 300000, step_mb = 8;
static int rounds = 3, prealloc;
static struct store *st;

struct round {
  size_t step_bytes; /* SIZE_MAX: one commit */
  atomic_int running;
  int64_t took_ns;
  unsigned steps;
};

static void key_of(size_t i, char *k) { snprintf(k, 16, "p%010zu", i); }

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

static void put_all(size_t *ids, size_t n, size_t step_bytes, unsigned gen, unsigned *steps) {
  char k[16], v[VAL_BYTES];
  struct store_pacer pc;
  store_pacer_init(&pc, st, step_bytes);
  MDB_txn *txn = store_begin(st, 0);
  for (size_t i = 0; i < n; i++) {
    key_of(ids[i], k);
    memset(v, 'a' + (int)(gen % 26), sizeof(v));
    memcpy(v, &ids[i], sizeof(ids[i]));
    MDB_val mk = {strlen(k), k}, mv = {sizeof(v), v};
    if (mdb_put(txn, st->timeline, &mk, &mv, 0) || store_pace(&pc, mk.mv_size + mv.mv_size)) {
      fprintf(stderr, "put failed\n");
      exit(1);
    }
  }
  if (store_commit(txn)) exit(1);
  if (steps) *steps = pc.steps;
}

static void *writer(void *arg) {
  struct round *r = arg;
  syscall(SYS_ioprio_set, 1, (int)gettid(), 3 << 13); /* idle class, as the checkpoint writer */
  size_t *ids = xmalloc(n_update * sizeof(*ids));
  for (size_t i = 0; i < n_update; i++) ids[i] = (size_t)random() % n_rows;
  qsort(ids, n_update, sizeof(*ids), cmp_size);
  int64_t t0 = clock_mono_ns();
  put_all(ids, n_update, r->step_bytes, (unsigned)random(), &r->steps);
  r->took_ns = clock_mono_ns() - t0;
  free(ids);
  atomic_store(&r->running, 0);
  return NULL;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

int main(int argc, char **argv) {
  const char *dir = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "d:n:u:r:s:p")) != -1) {
    switch (opt) {
    case 'd': dir = optarg; break;
    case 'n': n_rows = strtoull(optarg, NULL, 10); break;
    case 'u': n_update = strtoull(optarg, NULL, 10); break;
    case 'r': rounds = atoi(optarg); break;
    case 's': step_mb = strtoull(optarg, NULL, 10); break;
    case 'p': prealloc = 1; break;
    default:
      fprintf(stderr, "usage: bench_writeback [-p] [-d DIR] [-n ROWS] [-u UPDATE] [-r ROUNDS] [-s STEP_MB]\n");
      return 2;
    }
  }
  char tmp[] = "/tmp/baton-bench-writeback-XXXXXX", sdir[512], logp[512];
  if (!dir && !(dir = mkdtemp(tmp))) return 1;
  snprintf(sdir, sizeof(sdir), "%s/store", dir);
  snprintf(logp, sizeof(logp), "%s/log", dir);
  if (store_open(sdir, 64ull << 30, &st)) return 1;
  size_t *ids = xmalloc(n_rows * sizeof(*ids));
  for (size_t i = 0; i < n_rows; i++) ids[i] = i;
  int64_t t0 = clock_mono_ns();
  put_all(ids, n_rows, (size_t)step_mb << 20, 0, NULL);
  free(ids);
  printf("filled %zu rows of %d bytes in %.1f s; each round rewrites %zu random rows in one "
         "transaction\n",
         n_rows, VAL_BYTES, (double)(clock_mono_ns() - t0) / 1e9, n_update);

  int lfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | (prealloc ? 0 : O_APPEND), 0644);
  if (lfd < 0) return 1;
  static char chunk[LOG_CHUNK];
  if (prealloc) { /* -p: the log file written with zeros beforehand, then overwritten */
    memset(chunk, 0, sizeof(chunk));
    for (off_t o = 0; o < PREALLOC_BYTES; o += LOG_CHUNK)
      if (pwrite(lfd, chunk, LOG_CHUNK, o) != LOG_CHUNK) return 1;
    if (fdatasync(lfd)) return 1;
  }
  memset(chunk, 'x', sizeof(chunk));
  off_t log_off = 0;
  size_t cap = 1 << 20;
  int64_t *lat[2] = {xmalloc(cap * sizeof(int64_t)), xmalloc(cap * sizeof(int64_t))};
  size_t n_lat[2] = {0, 0};
  int64_t took[2] = {0, 0};
  unsigned steps[2] = {0, 0};
  const char *names[2] = {"one commit", "steps"};
  for (int i = 0; i < 2 * rounds; i++) {
    int m = i % 2;
    struct round r = {m ? (size_t)step_mb << 20 : SIZE_MAX, 1, 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, writer, &r);
    while (atomic_load(&r.running)) {
      int64_t a = clock_mono_ns();
      ssize_t w = prealloc ? pwrite(lfd, chunk, sizeof(chunk), log_off % PREALLOC_BYTES)
                           : write(lfd, chunk, sizeof(chunk));
      log_off += LOG_CHUNK;
      if (w != (ssize_t)sizeof(chunk) || fdatasync(lfd)) return 1;
      int64_t b = clock_mono_ns();
      if (n_lat[m] < cap) lat[m][n_lat[m]++] = b - a;
      if (b - a < 1000000) usleep((useconds_t)((1000000 - (b - a)) / 1000));
    }
    pthread_join(th, NULL);
    took[m] += r.took_ns;
    steps[m] += r.steps;
    if (!prealloc && ftruncate(lfd, 0)) return 1;
    sleep(1); /* let the disk settle between rounds */
  }
  printf("log fdatasync latency while the transaction runs (ms), %d rounds each, interleaved:\n",
         rounds);
  printf("%-12s %8s %8s %8s %8s %8s %8s %14s %8s\n", "mode", "samples", "p50", "p90", "p99", "p99.9",
         "max", "txn s (mean)", "steps");
  for (int m = 0; m < 2; m++) {
    int64_t *v = lat[m];
    size_t n = n_lat[m];
    if (!n) continue;
    qsort(v, n, sizeof(*v), cmp_i64);
#define PCT(q) ((double)v[(size_t)((double)(n - 1) * (q))] / 1e6)
    printf("%-12s %8zu %8.2f %8.2f %8.2f %8.2f %8.2f %14.2f %8u\n", names[m], n, PCT(0.5), PCT(0.9),
           PCT(0.99), PCT(0.999), (double)v[n - 1] / 1e6, (double)took[m] / 1e9 / rounds,
           steps[m] / (unsigned)rounds);
  }
  close(lfd);
  store_close(st);
  if (dir == tmp) nftw(tmp, rm_one, 8, FTW_DEPTH | FTW_PHYS);
  return 0;
}
