/* messageId de-duplication window; see dedup.h. */
#include "engine/dedup.h"

#include <stdlib.h>
#include <string.h>

#include "util/common.h"

void dedup_init(struct dedup *d, uint64_t max, int64_t window_ms) {
  memset(d, 0, sizeof(*d));
  d->max = max ? max : 1;
  d->window_ms = window_ms;
}

void dedup_release(struct dedup *d) {
  free(d->set);
  free(d->fifo);
  memset(d, 0, sizeof(*d));
}

uint64_t dedup_hash(const char *source, size_t slen, const char *mid, size_t mlen) {
  uint64_t h = baton_hash64(mid, mlen, baton_hash64(source, slen, 0x6d657373616765ull));
  return h ? h : 1;
}

static void set_grow(struct dedup *d) {
  size_t ncap = d->set_cap ? d->set_cap * 2 : 1024;
  uint64_t *old = d->set;
  size_t ocap = d->set_cap;
  d->set = xcalloc(ncap, sizeof(*d->set));
  d->set_cap = ncap;
  for (size_t i = 0; i < ocap; i++) {
    if (!old[i]) continue;
    size_t j = old[i] & (ncap - 1);
    while (d->set[j]) j = (j + 1) & (ncap - 1);
    d->set[j] = old[i];
  }
  free(old);
}

static size_t set_find(const struct dedup *d, uint64_t h) {
  size_t mask = d->set_cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask)
    if (!d->set[i] || d->set[i] == h) return i;
}

static void set_add(struct dedup *d, uint64_t h) {
  if ((d->set_len + 1) * 4 > d->set_cap * 3) set_grow(d);
  size_t i = set_find(d, h);
  if (!d->set[i]) {
    d->set[i] = h;
    d->set_len++;
  }
}

/* Backward-shift deletion keeps probe runs intact without tombstones. */
static void set_del(struct dedup *d, uint64_t h) {
  if (!d->set_cap) return;
  size_t mask = d->set_cap - 1, i = set_find(d, h);
  if (!d->set[i]) return;
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (!d->set[j]) break;
    size_t home = d->set[j] & mask;
    if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
      d->set[i] = d->set[j];
      i = j;
    }
  }
  d->set[i] = 0;
  d->set_len--;
}

static void fifo_push(struct dedup *d, uint64_t h, int64_t t) {
  if (d->n == d->fifo_cap) {
    size_t ncap = d->fifo_cap ? d->fifo_cap * 2 : 1024;
    struct dedup_entry *nf = xmalloc(ncap * sizeof(*nf));
    for (size_t i = 0; i < d->n; i++) nf[i] = d->fifo[(d->head + i) & (d->fifo_cap - 1)];
    free(d->fifo);
    d->fifo = nf;
    d->fifo_cap = ncap;
    d->head = 0;
  }
  d->fifo[(d->head + d->n) & (d->fifo_cap - 1)] = (struct dedup_entry){h, t}; /* cap: a power of two */
  d->n++;
}

static void evict(struct dedup *d, int64_t now_ms) {
  while (d->n && (d->n >= d->max || (d->window_ms > 0 &&
                                     d->fifo[d->head].time_ms < now_ms - d->window_ms))) {
    set_del(d, d->fifo[d->head].hash);
    d->head = (d->head + 1) & (d->fifo_cap - 1);
    d->n--;
    d->first_seq++;
  }
}

/* How many entries behind the oldest dedup_check fetches the set slot of: it is evicted
   about that many checks later (one per check once the window is full), and by then the
   slot is in the cache instead of costing a miss of its own. */
#define EVICT_AHEAD 16

void dedup_prefetch(const struct dedup *d, uint64_t h) {
  if (d->set_cap) __builtin_prefetch(&d->set[h & (d->set_cap - 1)]);
}

int dedup_check(struct dedup *d, uint64_t h, int64_t now_ms) {
  evict(d, now_ms);
  if (d->n > EVICT_AHEAD)
    __builtin_prefetch(&d->set[d->fifo[(d->head + EVICT_AHEAD) & (d->fifo_cap - 1)].hash &
                               (d->set_cap - 1)], 1);
  if (d->set_cap && d->set[set_find(d, h)] == h) return 1;
  set_add(d, h);
  fifo_push(d, h, now_ms);
  return 0;
}

void dedup_load(struct dedup *d, uint64_t seq, uint64_t h, int64_t time_ms) {
  if (!d->n) d->first_seq = seq;
  set_add(d, h);
  fifo_push(d, h, time_ms);
}

const struct dedup_entry *dedup_at(const struct dedup *d, uint64_t seq) {
  if (seq < d->first_seq || seq >= d->first_seq + d->n) return NULL;
  return &d->fifo[(d->head + (seq - d->first_seq)) & (d->fifo_cap - 1)];
}
