/*
 * Segment preparation: a thread keeps one spare segment file ready, written
 * with zeros to segment_bytes and fdatasynced, so that the segment the log
 * rolls to already has its blocks allocated and written. An fdatasync after
 * appending to such a file only writes the new data and flushes the disk's
 * cache: the file's size and block map do not change, so ext4 commits no
 * journal transaction for it, and the acknowledgement does not wait behind
 * whatever else that transaction has to write first (in data=ordered mode,
 * other files' newly allocated data, such as the store's growing checkpoint
 * file). PostgreSQL zero-fills its WAL segments for the same reason.
 *
 * The spare is EVLOG_SPARE_NAME in the log directory; the writer takes it at a
 * roll (header written, fdatasync, rename to "<first lsn>.seg", directory
 * fsync) and the preparer makes the next one. If there is no spare at a roll
 * (the disk was too slow, or full), the writer creates a plain segment as
 * before, which then grows as it is written. A spare left by an earlier
 * process is deleted at open: it may never have reached the disk whole.
 * Writing zeros costs one more sequential write of each segment, at the
 * lowest best-effort I/O priority.
 */
#include "evlog/evlog_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/common.h"
#include "util/jlog.h"
#include "util/writeback.h"

#define ZERO_WRITE 16384
#define STEP_BYTES ((size_t)1 << 20)

/*
 * Writes the spare: zeros to segment_bytes, then fdatasync. Returns 0 or -1 (errno set).
 * ZERO_WRITE bytes per write: the page cache sizes its folios by the writes that create them,
 * and a group commit then writes every folio its records touched. With 1 MB writes each commit
 * wrote 1 MB; with 4 KB writes (and a sync every 4 MB) the zeros took 77 ms of CPU per 64 MB
 * segment against 21 and batch ingest lost 15-35% (docs/PERFORMANCE.md); 16 KB writes with a
 * sync every 16 MB cost nothing measurable there, and a commit writes 16 KB or 32 KB.
 * Every STEP_BYTES the zeros are sent to the disk (sync_file_range, no cache flush) and the
 * preparer then rests as long as that took: the disk never holds more than a step of them
 * ahead of the log's own fdatasync, whose cache flush waits for all of it, and the log's
 * writes find the disk idle half the time. One fdatasync at the end makes the spare durable.
 * (With an fdatasync every 16 MB instead, the log's single-event p99 was 27-37 ms against
 * 17-18 ms without preallocation, docs/PERFORMANCE.md; bench/disk/fsync_probe shows the same
 * bytes written in 1 MB steps disturbing a log's fdatasync several times less.)
 */
static int make_spare(struct evlog *log) {
  int fd = openat(log->dir_fd, EVLOG_SPARE_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  static const char zero[ZERO_WRITE];
  int rc = 0;
  for (size_t off = 0; !rc && off < log->segment_bytes;) {
    size_t n = MIN(ZERO_WRITE, log->segment_bytes - off);
    ssize_t w = pwrite(fd, zero, n, (off_t)off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = EIO;
      rc = -1;
      break;
    }
    off += (size_t)w;
    if (off % STEP_BYTES) continue;
    if (writeback_step(fd, (off_t)(off - STEP_BYTES), (off_t)STEP_BYTES, NULL, NULL) < 0) {
      rc = -1;
      break;
    }
    pthread_mutex_lock(&log->mu);
    int closing = log->closing;
    pthread_mutex_unlock(&log->mu);
    if (closing) {
      errno = ECANCELED;
      rc = -1;
    }
  }
  if (!rc && fdatasync(fd) < 0) rc = -1;
  int e = errno;
  close(fd);
  if (rc) unlinkat(log->dir_fd, EVLOG_SPARE_NAME, 0);
  errno = e;
  return rc;
}

static void *prep_main(void *arg) {
  struct evlog *log = arg;
  /* Best effort, lowest level: the zeros go after the log's own writes and fsyncs. */
  syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, (int)gettid(),
          (2 << 13) | 7 /* IOPRIO_CLASS_BE, level 7 */);
  pthread_mutex_lock(&log->mu);
  for (;;) {
    while (!log->closing && !(log->spare_wanted && !log->spare_ready))
      pthread_cond_wait(&log->prep_cv, &log->mu);
    if (log->closing) break;
    log->spare_wanted = 0;
    log->prep_busy = 1;
    pthread_mutex_unlock(&log->mu);
    int rc = make_spare(log);
    int err = errno;
    pthread_mutex_lock(&log->mu);
    log->prep_busy = 0;
    if (rc == 0) {
      log->spare_ready = 1;
    } else if (!log->closing) {
      /* Not fatal: the next roll creates a plain segment and asks again. */
      struct jlog_line l;
      jlog_begin(&l, JLOG_WARN, "event log: cannot prepare the next segment");
      jlog_str(&l, "error", strerror(err));
      jlog_end(&l);
    }
  }
  pthread_mutex_unlock(&log->mu);
  return NULL;
}

void evlog_prep_start(struct evlog *log) {
  unlinkat(log->dir_fd, EVLOG_SPARE_NAME, 0); /* an earlier process's, maybe never synced */
  if (!log->prealloc) return;
  log->spare_wanted = 1;
  if (pthread_create(&log->prep, NULL, prep_main, log) == 0) {
    pthread_setname_np(log->prep, "baton-logprep");
    log->prep_running = 1;
  }
}

void evlog_prep_stop(struct evlog *log) {
  if (log->prep_running) {
    pthread_mutex_lock(&log->mu);
    pthread_cond_signal(&log->prep_cv);
    pthread_mutex_unlock(&log->mu);
    pthread_join(log->prep, NULL);
    log->prep_running = 0;
  }
}

/* Asks the preparer for the next spare; log->mu held. Only once the last one is renamed (or
   gone), and not while one is being made: making one truncates EVLOG_SPARE_NAME first. */
static void want_spare_locked(struct evlog *log) {
  if (log->prep_running && !log->prep_busy) {
    log->spare_wanted = 1;
    pthread_cond_signal(&log->prep_cv);
  }
}

static void want_spare(struct evlog *log) {
  pthread_mutex_lock(&log->mu);
  want_spare_locked(log);
  pthread_mutex_unlock(&log->mu);
}

int evlog_prep_take(struct evlog *log, uint64_t first_lsn) {
  pthread_mutex_lock(&log->mu);
  int ready = log->spare_ready;
  log->spare_ready = 0;
  if (!ready) want_spare_locked(log); /* the last attempt failed, or one is on its way */
  pthread_mutex_unlock(&log->mu);
  if (!ready) return -1;
  int fd = openat(log->dir_fd, EVLOG_SPARE_NAME, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    want_spare(log);
    return -1;
  }
  unsigned char hdr[EVLOG_HDR_BYTES];
  evlog_seg_header(first_lsn, hdr);
  char name[EVLOG_NAME_MAX];
  evlog_seg_name(first_lsn, name);
  /* The header, then the name: a crash in between leaves a spare, deleted at the next open. */
  if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) || fdatasync(fd) < 0 ||
      renameat(log->dir_fd, EVLOG_SPARE_NAME, log->dir_fd, name) < 0 || fsync(log->dir_fd) < 0) {
    close(fd);
    unlinkat(log->dir_fd, EVLOG_SPARE_NAME, 0);
    want_spare(log);
    return -1;
  }
  pthread_mutex_lock(&log->mu);
  log->stats.segments_preallocated++;
  pthread_mutex_unlock(&log->mu);
  want_spare(log);
  return fd;
}
