/* Binary min-heap of embedded timers; see timerq.h. */
#include "engine/timerq.h"

#include <assert.h>
#include <stdlib.h>

#include "util/common.h"

void timerq_init(struct timerq *q) {
  q->heap = NULL;
  q->len = q->cap = 0;
}

void timerq_release(struct timerq *q) {
  for (size_t i = 0; i < q->len; i++) q->heap[i]->idx = TIMER_IDLE;
  free(q->heap);
  timerq_init(q);
}

static inline int before(const struct timer *a, const struct timer *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static inline void place(struct timerq *q, size_t i, struct timer *t) {
  q->heap[i] = t;
  t->idx = i;
}

static void sift_up(struct timerq *q, size_t i) {
  struct timer *t = q->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(t, q->heap[parent])) break;
    place(q, i, q->heap[parent]);
    i = parent;
  }
  place(q, i, t);
}

static void sift_down(struct timerq *q, size_t i) {
  struct timer *t = q->heap[i];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const struct timer *best = t;
    if (l < q->len && before(q->heap[l], best)) {
      m = l;
      best = q->heap[l];
    }
    if (r < q->len && before(q->heap[r], best)) m = r;
    if (m == i) break;
    place(q, i, q->heap[m]);
    i = m;
  }
  place(q, i, t);
}

void timerq_push(struct timerq *q, struct timer *t, int64_t due, uint64_t seq) {
  assert(!timer_armed(t));
  if (q->len == q->cap) {
    q->cap = q->cap ? q->cap * 2 : 64;
    q->heap = xrealloc(q->heap, q->cap * sizeof(*q->heap));
  }
  t->due = due;
  t->seq = seq;
  place(q, q->len++, t);
  sift_up(q, t->idx);
}

void timerq_remove(struct timerq *q, struct timer *t) {
  if (!timer_armed(t)) return;
  size_t i = t->idx;
  struct timer *last = q->heap[--q->len];
  t->idx = TIMER_IDLE;
  if (last == t) return;
  place(q, i, last);
  /* The moved timer may need to go either way. */
  if (i > 0 && before(last, q->heap[(i - 1) / 2]))
    sift_up(q, i);
  else
    sift_down(q, i);
}

struct timer *timerq_pop_due(struct timerq *q, int64_t now) {
  if (!q->len || q->heap[0]->due > now) return NULL;
  struct timer *t = q->heap[0];
  timerq_remove(q, t);
  return t;
}
