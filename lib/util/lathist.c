#include "util/lathist.h"

int lathist_bucket(int64_t ns) {
  if (ns < 1000) return 0;
  uint64_t us = (uint64_t)ns / 1000; /* >= 1: bucket is 1 + floor(log2(us)) */
  int i = 64 - __builtin_clzll(us);
  return i < LATHIST_BUCKETS - 1 ? i : LATHIST_BUCKETS - 1;
}

void lathist_add(struct lathist *h, int64_t ns) {
  if (ns < 0) ns = 0;
  atomic_fetch_add_explicit(&h->n, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->total_ns, (uint64_t)ns, memory_order_relaxed);
  uint64_t m = atomic_load_explicit(&h->max_ns, memory_order_relaxed);
  while ((uint64_t)ns > m &&
         !atomic_compare_exchange_weak_explicit(&h->max_ns, &m, (uint64_t)ns, memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
  atomic_fetch_add_explicit(&h->bucket[lathist_bucket(ns)], 1, memory_order_relaxed);
}

void lathist_read(const struct lathist *h, struct lathist_snap *out) {
  out->n = atomic_load_explicit(&h->n, memory_order_relaxed);
  out->total_ns = atomic_load_explicit(&h->total_ns, memory_order_relaxed);
  out->max_ns = atomic_load_explicit(&h->max_ns, memory_order_relaxed);
  for (int i = 0; i < LATHIST_BUCKETS; i++)
    out->bucket[i] = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
}

void lathist_json(struct buf *b, const char *name, const struct lathist_snap *s) {
  buf_printf(b, "\"%s\":{\"calls\":%llu,\"ms\":%.3f,\"max_ms\":%.3f,\"hist_us\":[", name,
             (unsigned long long)s->n, (double)s->total_ns / 1e6, (double)s->max_ns / 1e6);
  for (int i = 0; i < LATHIST_BUCKETS; i++)
    buf_printf(b, "%s%llu", i ? "," : "", (unsigned long long)s->bucket[i]);
  buf_putc(b, ']');
  buf_putc(b, '}');
}
