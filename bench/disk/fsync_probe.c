/*
 * fsync probe: how long does an event-log-like fdatasync take on this disk,
 * alone and beside the other things a Baton server does to the machine?
 * It links no Baton code: it measures the disk and the machine, so that the
 * event log's figures (bench/ingest) can be read against them.
 *
 * The probe appends -s bytes to a file and fdatasyncs, then sleeps -g
 * microseconds, for -d seconds, and prints the fdatasync count, how many took
 * 8, 16, 32 and 64 ms or more, the longest, and "stall time": the sum over
 * fdatasyncs of the part above 10 ms, as a share of the run. A request that
 * waits for a commit waits that long, so with stall time over 1% no server
 * can answer 99% of durable requests within 10 ms on this disk.
 *
 * Beside it, optionally:
 *   -w MB/s  a background writer rewriting random 4 KB pages of a 2 GiB file
 *            (what a store checkpoint does to the disk) at that rate;
 *   -c N     N threads spinning on the CPU (what a busy server does).
 *   -m sync  the background writer fdatasyncs every 2 s (one large flush, as
 *            an LMDB commit does), or
 *   -m step  it pushes each 1 MB it writes to the disk before going on
 *            (sync_file_range; its data reaches the disk in small steps).
 *
 *   scripts/build.sh build && build/bench/disk/fsync_probe
 *   build/bench/disk/fsync_probe -d 20 -w 20 -m sync    # beside a checkpoint-like writer
 *   build/bench/disk/fsync_probe -d 20 -c 2             # beside two busy CPUs
 *
 * -r N: instead, a group-commit log writer, the least any durable server does: N appends
 * of -s bytes a second arrive on schedule (open loop), one thread writes all that arrived
 * with one pwrite and one fdatasync, then acknowledges them; it prints the acknowledgement
 * latency from each append's scheduled arrival (p50 ... max, and the share within 10 ms).
 * No HTTP, no engine, no store: if this misses a latency target, no server can meet it on
 * this disk with a durable acknowledgement.
 *   build/bench/disk/fsync_probe -r 20000 -s 700 -d 30
 *   -z: the log file is written with zeros first (and fdatasynced), as the event log's spare
 *   segments are (lib/evlog/evlog_prep.c), instead of posix_fallocate. On ext4, fallocate leaves
 *   the blocks "unwritten", and each fdatasync that writes into them also writes the extent
 *   tree; measured here, that is most of the probe's stalls (p99 15-16 ms against 10.5-11 ms).
 *   build/bench/disk/fsync_probe -r 20000 -s 700 -d 30 -z
 *   -D dir: where the files go (default: the current directory; they are removed)
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BG_FILE_BYTES ((off_t)2 << 30)
#define PAGE 4096
#define STEP_BYTES (1 << 20)

static struct {
  int seconds, gap_us, size, cpus, rate, zero;
  double write_mbps;
  const char *mode, *dir;
} opt = {.seconds = 20, .gap_us = 100, .size = 2048, .mode = "sync", .dir = "."};

static atomic_int stop;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *spinner(void *arg) {
  (void)arg;
  volatile uint64_t x = 0;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) x++;
  return NULL;
}

static void *writer(void *arg) {
  const char *path = arg;
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ftruncate(fd, BG_FILE_BYTES) < 0) {
    perror(path);
    exit(1);
  }
  unsigned char page[PAGE];
  memset(page, 0x5a, sizeof(page));
  uint64_t rng = 0x9e3779b97f4a7c15u;
  int step = !strcmp(opt.mode, "step");
  int64_t t0 = now_ns(), last_sync = t0;
  double written = 0;
  while (!atomic_load(&stop)) {
    double due = (double)(now_ns() - t0) / 1e9 * opt.write_mbps * 1e6;
    if (written >= due) {
      usleep(1000);
      continue;
    }
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    off_t off = (off_t)(rng % (uint64_t)(BG_FILE_BYTES / PAGE)) * PAGE;
    if (pwrite(fd, page, PAGE, off) != PAGE) {
      perror("pwrite");
      exit(1);
    }
    written += PAGE;
    if (step && (uint64_t)written % STEP_BYTES == 0)
      sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    if (now_ns() - last_sync >= 2000000000) {
      fdatasync(fd);
      last_sync = now_ns();
    }
  }
  close(fd);
  unlink(path);
  return NULL;
}

/* ---- -r: the group-commit writer ---- */

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int64_t *due;   /* scheduled arrival of each append */
  long arrived;   /* appends that have arrived */
  int64_t *lat;   /* acknowledgement latency of each */
  long acked;
  int done;
} gc = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void *gc_writer(void *arg) {
  int fd = *(int *)arg;
  char *buf = malloc((size_t)opt.size * 65536);
  memset(buf, 'x', (size_t)opt.size * 65536);
  off_t off = 0;
  for (;;) {
    pthread_mutex_lock(&gc.mu);
    while (gc.acked == gc.arrived && !gc.done) pthread_cond_wait(&gc.cv, &gc.mu);
    long from = gc.acked, to = gc.arrived;
    pthread_mutex_unlock(&gc.mu);
    if (from == to) break;
    for (long i = from; i < to; i += 65536) {
      size_t n = (size_t)(to - i < 65536 ? to - i : 65536) * (size_t)opt.size;
      if (pwrite(fd, buf, n, off) != (ssize_t)n) {
        perror("log write");
        exit(1);
      }
      off += (off_t)n;
    }
    if (fdatasync(fd) < 0) {
      perror("fdatasync");
      exit(1);
    }
    int64_t t = now_ns();
    for (long i = from; i < to; i++) gc.lat[i] = t - gc.due[i];
    pthread_mutex_lock(&gc.mu);
    gc.acked = to;
    pthread_mutex_unlock(&gc.mu);
  }
  free(buf);
  return NULL;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int group_commit(int fd) {
  long total = (long)opt.rate * opt.seconds;
  gc.due = malloc((size_t)total * sizeof(int64_t));
  gc.lat = malloc((size_t)total * sizeof(int64_t));
  if (!gc.due || !gc.lat) return 1;
  pthread_t w;
  pthread_create(&w, NULL, gc_writer, &fd);
  /* Arrivals are registered every 100 us (sleeping between), each with its scheduled time. */
  int64_t t0 = now_ns();
  double gap = 1e9 / opt.rate;
  long next = 0;
  while (next < total) {
    int64_t now = now_ns();
    long upto = (long)((double)(now - t0) / gap) + 1;
    if (upto > total) upto = total;
    pthread_mutex_lock(&gc.mu);
    for (; next < upto; next++) gc.due[next] = t0 + (int64_t)(next * gap);
    gc.arrived = next;
    pthread_cond_signal(&gc.cv);
    pthread_mutex_unlock(&gc.mu);
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
  }
  pthread_mutex_lock(&gc.mu);
  gc.done = 1;
  pthread_cond_signal(&gc.cv);
  pthread_mutex_unlock(&gc.mu);
  pthread_join(w, NULL);
  qsort(gc.lat, (size_t)total, sizeof(int64_t), cmp_i64);
  long within = 0;
  for (long i = 0; i < total; i++) within += gc.lat[i] <= 10000000;
  printf("fsync_probe group commit: %d appends/s of %d B for %d s, one writer (pwrite + "
         "fdatasync, then acknowledge) into a file %s; background writer %.0f MB/s (%s), "
         "%d busy CPUs\n",
         opt.rate, opt.size, opt.seconds, opt.zero ? "written with zeros" : "fallocated",
         opt.write_mbps, opt.write_mbps > 0 ? opt.mode : "none", opt.cpus);
  printf("  acknowledged after p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f ms; within 10 ms: "
         "%.2f%%\n",
         gc.lat[total / 2] / 1e6, gc.lat[total * 9 / 10] / 1e6, gc.lat[total * 99 / 100] / 1e6,
         gc.lat[total * 999 / 1000] / 1e6, gc.lat[total - 1] / 1e6, 100.0 * within / total);
  free(gc.due);
  free(gc.lat);
  return 0;
}

static void usage(void) {
  fprintf(stderr, "usage: fsync_probe [-d seconds (20)] [-g gap us (100)] [-s bytes (2048)]\n"
                  "                   [-w MB/s] [-m sync|step] [-c cpus] [-D dir] [-r appends/s]"
                  " [-z]\n");
  exit(2);
}

int main(int argc, char **argv) {
  int c;
  while ((c = getopt(argc, argv, "d:g:s:w:m:c:D:r:z")) != -1) {
    switch (c) {
    case 'd': opt.seconds = atoi(optarg); break;
    case 'g': opt.gap_us = atoi(optarg); break;
    case 's': opt.size = atoi(optarg); break;
    case 'w': opt.write_mbps = atof(optarg); break;
    case 'm': opt.mode = optarg; break;
    case 'c': opt.cpus = atoi(optarg); break;
    case 'D': opt.dir = optarg; break;
    case 'r': opt.rate = atoi(optarg); break;
    case 'z': opt.zero = 1; break;
    default: usage();
    }
  }
  if (opt.seconds < 1 || opt.size < 1 || opt.size > (1 << 20) || opt.gap_us < 0 ||
      opt.cpus < 0 || opt.cpus > 64 || opt.write_mbps < 0 || opt.rate < 0 || opt.rate > 10000000 ||
      (strcmp(opt.mode, "sync") && strcmp(opt.mode, "step")))
    usage();
  char log_path[4096], bg_path[4096];
  snprintf(log_path, sizeof(log_path), "%s/fsync_probe.%d.log", opt.dir, (int)getpid());
  snprintf(bg_path, sizeof(bg_path), "%s/fsync_probe.%d.bg", opt.dir, (int)getpid());
  pthread_t bg, spin[64];
  if (opt.write_mbps > 0) pthread_create(&bg, NULL, writer, bg_path);
  for (int i = 0; i < opt.cpus; i++) pthread_create(&spin[i], NULL, spinner, NULL);

  int fd = open(log_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    perror(log_path);
    return 1;
  }
  if (opt.rate) {
    /* The log file gets its blocks first, as the event log's preallocated segments have
       (with -z, written with zeros, as they are). */
    off_t want = (off_t)opt.rate * opt.seconds * opt.size + (1 << 20);
    static char zeros[1 << 16];
    int bad = 0;
    if (opt.zero) {
      for (off_t off = 0; off < want && !bad; off += (off_t)sizeof(zeros))
        bad = pwrite(fd, zeros, sizeof(zeros), off) != (ssize_t)sizeof(zeros);
    } else {
      bad = posix_fallocate(fd, 0, want) != 0;
    }
    if (bad || fdatasync(fd) < 0) {
      perror(log_path);
      return 1;
    }
    int rc = group_commit(fd);
    atomic_store(&stop, 1);
    if (opt.write_mbps > 0) pthread_join(bg, NULL);
    for (int i = 0; i < opt.cpus; i++) pthread_join(spin[i], NULL);
    close(fd);
    unlink(log_path);
    return rc;
  }
  char *buf = malloc((size_t)opt.size);
  memset(buf, 'x', (size_t)opt.size);
  int64_t end = now_ns() + (int64_t)opt.seconds * 1000000000, stall = 0, longest = 0;
  long n = 0, over[4] = {0};
  off_t off = 0;
  while (now_ns() < end) {
    int64_t t = now_ns();
    if (pwrite(fd, buf, (size_t)opt.size, off) != opt.size || fdatasync(fd) < 0) {
      perror("log write");
      return 1;
    }
    off += opt.size;
    int64_t d = now_ns() - t;
    n++;
    for (int i = 0; i < 4; i++)
      if (d >= (int64_t)(8000000 << i)) over[i]++;
    if (d > longest) longest = d;
    if (d > 10000000) stall += d - 10000000;
    if (opt.gap_us) usleep((useconds_t)opt.gap_us);
  }
  atomic_store(&stop, 1);
  if (opt.write_mbps > 0) pthread_join(bg, NULL);
  for (int i = 0; i < opt.cpus; i++) pthread_join(spin[i], NULL);
  close(fd);
  unlink(log_path);
  printf("fsync_probe %d s, %d B + fdatasync every %d us; background writer %.0f MB/s (%s), %d busy "
         "CPUs\n", opt.seconds, opt.size, opt.gap_us, opt.write_mbps,
         opt.write_mbps > 0 ? opt.mode : "none", opt.cpus);
  printf("  %ld fdatasyncs (%.0f/s); >= 8 ms: %ld, >= 16: %ld, >= 32: %ld, >= 64: %ld; longest "
         "%.1f ms; stall time over 10 ms: %.2f%% of the run\n",
         n, (double)n / opt.seconds, over[0], over[1], over[2], over[3], (double)longest / 1e6,
         (double)stall / 1e7 / opt.seconds);
  free(buf);
  return 0;
}
