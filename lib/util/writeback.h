/*
 * Paced write-back: sending a file's dirty pages to the disk a step at a time,
 * so that a large write never sits whole in the disk's queue ahead of the
 * event log's fdatasync (whose flush of the disk's cache waits for everything
 * written before it). Used for the log's spare segment and store checkpoints.
 */
#ifndef BATON_UTIL_WRITEBACK_H
#define BATON_UTIL_WRITEBACK_H

#include <stdint.h>
#include <sys/types.h>

/* Longest rest after one step. */
#define WRITEBACK_MAX_REST_NS (100 * 1000000LL)

/*
 * Writes back the dirty pages of [off, off + len) of fd (len 0: to the end of
 * the file) and waits for them, without flushing the disk's cache
 * (sync_file_range), then rests as long as that took, at most
 * WRITEBACK_MAX_REST_NS: the disk is left idle at least half the time.
 * Adds the time spent writing to *busy_ns and resting to *rested_ns (either
 * may be NULL). Returns 0, or -1 with errno set (nothing rested).
 */
int writeback_step(int fd, off_t off, off_t len, int64_t *busy_ns, int64_t *rested_ns);

#endif
