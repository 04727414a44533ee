/* Paced write-back; see writeback.h. */
#include "util/writeback.h"

#include <errno.h>
#include <fcntl.h>

#include "util/clock.h"

int writeback_step(int fd, off_t off, off_t len, int64_t *busy_ns, int64_t *rested_ns) {
  int64_t t0 = clock_mono_ns();
  if (sync_file_range(fd, off, len,
                      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                          SYNC_FILE_RANGE_WAIT_AFTER) < 0)
    return -1;
  int64_t took = clock_mono_ns() - t0;
  if (busy_ns) *busy_ns += took;
  took = clock_rest_ns(took, WRITEBACK_MAX_REST_NS);
  if (rested_ns) *rested_ns += took;
  return 0;
}
