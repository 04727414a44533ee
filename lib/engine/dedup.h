/*
 * messageId de-duplication: a window of recently seen (source, messageId)
 * pairs, as 64-bit hashes in an open-addressing set plus a FIFO that evicts
 * the oldest once the window holds more than max ids or ids older than
 * window_ms (by the engine's clock). Part of the engine's deterministic state:
 * checkpoints persist it incrementally (new entries appended, evicted ones
 * deleted), so replay makes the same decisions.
 *
 * A false positive needs two different ids with the same 64-bit hash inside
 * one window: about 1 in 10^13 per event at 2 million ids.
 */
#ifndef BATON_ENGINE_DEDUP_H
#define BATON_ENGINE_DEDUP_H

#include <stddef.h>
#include <stdint.h>

struct dedup_entry {
  uint64_t hash;
  int64_t time_ms;
};

struct dedup {
  uint64_t *set;    /* 0: empty */
  size_t set_cap, set_len;
  struct dedup_entry *fifo;
  size_t fifo_cap, head, n;
  uint64_t first_seq; /* sequence number of fifo[head] */
  uint64_t max;
  int64_t window_ms;
};

void dedup_init(struct dedup *d, uint64_t max, int64_t window_ms);
void dedup_release(struct dedup *d);

/* Hash of one (source, messageId) pair (never 0). */
uint64_t dedup_hash(const char *source, size_t slen, const char *mid, size_t mlen);

/* Starts fetching the set slot dedup_check(d, h, ...) reads first (no effect on the window). */
void dedup_prefetch(const struct dedup *d, uint64_t h);

/* Returns 1 if h is in the window (a duplicate), else adds it and returns 0.
   Evicts what the window no longer holds first. */
int dedup_check(struct dedup *d, uint64_t h, int64_t now_ms);

/* Adds an entry as loaded from a checkpoint (in sequence order). */
void dedup_load(struct dedup *d, uint64_t seq, uint64_t h, int64_t time_ms);

/* The entry with sequence number seq, or NULL if it is not in the window. */
const struct dedup_entry *dedup_at(const struct dedup *d, uint64_t seq);

/* One past the newest entry's sequence number. */
static inline uint64_t dedup_end(const struct dedup *d) { return d->first_seq + d->n; }

#endif
