/*
 * Event log benchmark: N threads each append batches of records with
 * evlog_append (waiting for durability, fsync on) for a fixed time, then
 * it prints throughput (records/s, MB/s of payload), fsyncs/s, mean records
 * per fsync (how well group commit batches) and the p50/p99 latency of one
 * append call. It is a client of lib/evlog only; the log lives in a fresh
 * directory under /tmp (or -D) that is removed at the end.
 *
 *   scripts/build.sh build && build/bench/evlog/bench_evlog
 *   build/bench/evlog/bench_evlog -t 8 -b 100 -s 400 -d 5 [-n] [-D dir]
 *
 *   -t threads (8)  -b records per append (100)  -s record bytes (400)
 *   -d seconds (5)  -n no fsync (no_sync=1)  -D log directory (kept afterwards)
 *   -P segments created as needed instead of prepared zero-filled (no_prealloc=1)
 *   -g a background writer on the same file system, like a checkpoint of a
 *      growing store: at the idle I/O priority, it writes 4 KB pages into a
 *      file, every other one past its end and the others at random earlier
 *      offsets, 60,000 pages (234 MB) then fdatasync, pausing 300 ms between
 *      rounds. Compare the append latency with and without -P under it.
 */
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "evlog/evlog.h"
#include "evlog/evlog_int.h"
#include "util/clock.h"
#include "util/common.h"

#define MAX_SAMPLES (1u << 20)

struct bench {
  struct evlog *log;
  int batch;
  size_t rec_bytes;
  int64_t end_ns;
  atomic_int failed;
};

struct worker {
  struct bench *b;
  pthread_t th;
  uint64_t *lat_ns; /* one sample per append call */
  size_t n_lat;
  uint64_t records;
};

static void *worker_main(void *arg) {
  struct worker *w = arg;
  struct bench *b = w->b;
  char *payload = xmalloc(b->rec_bytes * (size_t)b->batch);
  struct evlog_rec *recs = xmalloc(sizeof(*recs) * (size_t)b->batch);
  for (int i = 0; i < b->batch; i++) {
    char *p = payload + b->rec_bytes * (size_t)i;
    for (size_t k = 0; k < b->rec_bytes; k++) p[k] = (char)('a' + (k + (size_t)i) % 26);
    recs[i] = (struct evlog_rec){p, b->rec_bytes};
  }
  for (;;) {
    int64_t t0 = clock_mono_ns();
    if (t0 >= b->end_ns) break;
    int rc = evlog_append(b->log, recs, (size_t)b->batch, NULL);
    if (rc < 0) {
      fprintf(stderr, "append failed: %s\n", baton_strerror(rc));
      atomic_store(&b->failed, 1);
      break;
    }
    if (w->n_lat < MAX_SAMPLES) w->lat_ns[w->n_lat++] = (uint64_t)(clock_mono_ns() - t0);
    w->records += (uint64_t)b->batch;
  }
  free(recs);
  free(payload);
  return NULL;
}

struct grower {
  const char *path;
  atomic_int stop;
  uint64_t rounds, pages;
};

static void *grower_main(void *arg) {
  struct grower *g = arg;
  syscall(SYS_ioprio_set, 1, (int)gettid(), 3 << 13); /* idle class, as the checkpoint writer */
  int fd = open(g->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return NULL;
  char page[4096];
  memset(page, 7, sizeof(page));
  uint64_t end = 0, seed = 88172645463325252ull;
  while (!atomic_load(&g->stop)) {
    usleep(300000);
    for (int i = 0; i < 60000 && !atomic_load(&g->stop); i++) {
      uint64_t at;
      if (i % 2 || end == 0) {
        at = end++;
      } else {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        at = seed % end;
      }
      if (pwrite(fd, page, sizeof(page), (off_t)(at * sizeof(page))) < 0) break;
      g->pages++;
    }
    if (fdatasync(fd) < 0) break;
    g->rounds++;
  }
  close(fd);
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static void usage(void) {
  fprintf(stderr, "usage: bench_evlog [-t threads] [-b batch] [-s bytes] [-d seconds] [-n] [-P] [-g] "
                  "[-D dir]\n");
  exit(2);
}

int main(int argc, char **argv) {
  int threads = 8, batch = 100, seconds = 5, no_sync = 0, no_prealloc = 0, grow = 0, opt;
  size_t rec_bytes = 400;
  const char *dir_arg = NULL;
  while ((opt = getopt(argc, argv, "t:b:s:d:nPgD:")) != -1) {
    switch (opt) {
      case 't': threads = atoi(optarg); break;
      case 'b': batch = atoi(optarg); break;
      case 's': rec_bytes = (size_t)atol(optarg); break;
      case 'd': seconds = atoi(optarg); break;
      case 'n': no_sync = 1; break;
      case 'P': no_prealloc = 1; break;
      case 'g': grow = 1; break;
      case 'D': dir_arg = optarg; break;
      default: usage();
    }
  }
  if (threads < 1 || batch < 1 || seconds < 1 || rec_bytes > (1u << 20)) usage();

  char root[64] = "";
  char dir[128];
  if (dir_arg) {
    snprintf(dir, sizeof(dir), "%s", dir_arg);
  } else {
    snprintf(root, sizeof(root), "/tmp/bench-evlog-XXXXXX");
    if (!mkdtemp(root)) {
      perror("cannot create a directory under /tmp");
      return 1;
    }
    snprintf(dir, sizeof(dir), "%s/log", root);
  }
  struct evlog_options o = {.dir = dir, .no_sync = no_sync, .no_prealloc = no_prealloc};
  struct bench b = {.batch = batch, .rec_bytes = rec_bytes};
  int rc = evlog_open(&o, &b.log);
  if (rc < 0) {
    fprintf(stderr, "cannot open event log %s: %s\n", dir, baton_strerror(rc));
    return 1;
  }

  /* The first segment is never prepared (the log creates it at open): start on a prepared one. */
  if (!no_prealloc && !no_sync) {
    for (int i = 0; i < 10000; i++) {
      pthread_mutex_lock(&b.log->mu);
      int ready = b.log->spare_ready;
      pthread_mutex_unlock(&b.log->mu);
      if (ready) break;
      usleep(1000);
    }
    evlog_purge(b.log, 0); /* seals the active segment at the next append */
  }
  char gpath[160];
  snprintf(gpath, sizeof(gpath), "%s/../grow.tmp", dir);
  struct grower g = {.path = gpath};
  pthread_t gth;
  if (grow) pthread_create(&gth, NULL, grower_main, &g);
  struct worker *w = xcalloc((size_t)threads, sizeof(*w));
  int64_t start = clock_mono_ns();
  b.end_ns = start + (int64_t)seconds * 1000000000LL;
  for (int i = 0; i < threads; i++) {
    w[i].b = &b;
    w[i].lat_ns = xmalloc(MAX_SAMPLES * sizeof(uint64_t));
    pthread_create(&w[i].th, NULL, worker_main, &w[i]);
  }
  uint64_t records = 0;
  size_t n_lat = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(w[i].th, NULL);
    records += w[i].records;
    n_lat += w[i].n_lat;
  }
  double secs = (double)(clock_mono_ns() - start) / 1e9;
  if (grow) {
    atomic_store(&g.stop, 1);
    pthread_join(gth, NULL);
    unlink(gpath);
  }
  struct evlog_stats st;
  evlog_get_stats(b.log, &st);
  evlog_close(b.log);

  uint64_t *all = xmalloc((n_lat ? n_lat : 1) * sizeof(uint64_t));
  size_t k = 0;
  for (int i = 0; i < threads; i++) {
    memcpy(all + k, w[i].lat_ns, w[i].n_lat * sizeof(uint64_t));
    k += w[i].n_lat;
    free(w[i].lat_ns);
  }
  qsort(all, n_lat ? n_lat : 0, sizeof(uint64_t), cmp_u64);
  double p50 = n_lat ? (double)all[n_lat / 2] / 1e3 : 0;
  double p99 = n_lat ? (double)all[(n_lat * 99) / 100] / 1e3 : 0;
  double p999 = n_lat ? (double)all[(n_lat * 999) / 1000] / 1e3 : 0;
  double pmax = n_lat ? (double)all[n_lat - 1] / 1e3 : 0;

  printf("threads %d, %d records of %zu bytes per append, fsync %s, segments %s, %.1f s\n",
         threads, batch, rec_bytes, no_sync ? "off" : "on",
         no_sync || no_prealloc ? "created as needed" : "prepared zero-filled", secs);
  if (grow)
    printf("background writer  %llu rounds, %llu pages of 4 KB\n", (unsigned long long)g.rounds,
           (unsigned long long)g.pages);
  printf("segments           %llu created, %llu of them prepared\n",
         (unsigned long long)st.segments_created, (unsigned long long)st.segments_preallocated);
  printf("records/s          %.0f\n", (double)records / secs);
  printf("MB/s (payload)     %.1f\n", (double)records * (double)rec_bytes / secs / 1e6);
  printf("fsyncs/s           %.0f\n", (double)st.syncs / secs);
  printf("batches/s          %.0f\n", (double)st.batches / secs);
  if (st.syncs)
    printf("records per fsync  %.1f\n", (double)st.records / (double)st.syncs);
  else
    printf("records per fsync  n/a (no fsync)\n");
  printf("appends per batch  %.2f\n", st.batches ? (double)st.appends / (double)st.batches : 0.0);
  double p90 = n_lat ? (double)all[(n_lat * 9) / 10] / 1e3 : 0;
  printf("append latency     p50 %.0f us, p90 %.0f us, p99 %.0f us, p99.9 %.0f us, max %.0f us\n",
         p50, p90, p99, p999, pmax);

  free(all);
  free(w);
  if (root[0]) nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
  return atomic_load(&b.failed) ? 1 : 0;
}
