/*
 * Latency histograms for /v1/stats: power-of-two buckets of microseconds,
 * recorded with relaxed atomics so any thread may add and any thread may read
 * without a lock (a reader may see one call counted in n and not yet in its
 * bucket; the figures are for operators, not for accounting).
 *
 * Bucket i counts calls that took under 2^i microseconds and at least
 * 2^(i-1) (bucket 0: under 1 microsecond); the last bucket also takes every
 * longer call. 24 buckets reach 8.4 seconds.
 */
#ifndef BATON_UTIL_LATHIST_H
#define BATON_UTIL_LATHIST_H

#include <stdatomic.h>
#include <stdint.h>

#include "util/buf.h"

#define LATHIST_BUCKETS 24

struct lathist {
  _Atomic uint64_t n, total_ns, max_ns;
  _Atomic uint64_t bucket[LATHIST_BUCKETS];
};

/* A copy that is no longer changing. */
struct lathist_snap {
  uint64_t n, total_ns, max_ns;
  uint64_t bucket[LATHIST_BUCKETS];
};

/* Counts one call that took ns nanoseconds (negative counts as 0). */
void lathist_add(struct lathist *h, int64_t ns);
void lathist_read(const struct lathist *h, struct lathist_snap *out);
/* The bucket a call of ns nanoseconds goes to. */
int lathist_bucket(int64_t ns);
/* Appends "name":{"calls":N,"ms":total,"max_ms":M,"hist_us":[b0,...,b23]}. */
void lathist_json(struct buf *b, const char *name, const struct lathist_snap *s);

#endif
