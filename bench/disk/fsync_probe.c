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
  int seconds, gap_us, size, cpus;
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

static void usage(void) {
  fprintf(stderr, "usage: fsync_probe [-d seconds (20)] [-g gap us (100)] [-s bytes (2048)]\n"
                  "                   [-w MB/s] [-m sync|step] [-c cpus] [-D dir]\n");
  exit(2);
}

int main(int argc, char **argv) {
  int c;
  while ((c = getopt(argc, argv, "d:g:s:w:m:c:D:")) != -1) {
    switch (c) {
    case 'd': opt.seconds = atoi(optarg); break;
    case 'g': opt.gap_us = atoi(optarg); break;
    case 's': opt.size = atoi(optarg); break;
    case 'w': opt.write_mbps = atof(optarg); break;
    case 'm': opt.mode = optarg; break;
    case 'c': opt.cpus = atoi(optarg); break;
    case 'D': opt.dir = optarg; break;
    default: usage();
    }
  }
  if (opt.seconds < 1 || opt.size < 1 || opt.size > (1 << 20) || opt.gap_us < 0 ||
      opt.cpus < 0 || opt.cpus > 64 || opt.write_mbps < 0 ||
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
