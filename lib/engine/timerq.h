/*
 * A timer queue: a binary min-heap of timers ordered by (due, seq). Timers are
 * embedded in their owner's struct (libuv style) and carry their heap index,
 * so cancelling is O(log n) without a search. seq breaks ties so that timers
 * due at the same millisecond fire in a deterministic order (the engine
 * derives seq from log positions, so a replay fires them identically).
 */
#ifndef BATON_ENGINE_TIMERQ_H
#define BATON_ENGINE_TIMERQ_H

#include <stddef.h>
#include <stdint.h>

struct timer {
  int64_t due;  /* ms since the epoch, engine clock */
  uint64_t seq; /* tie-break; unique per timer */
  size_t idx;   /* position in the heap, or TIMER_IDLE */
};

#define TIMER_IDLE ((size_t)-1)

struct timerq {
  struct timer **heap;
  size_t len, cap;
};

void timerq_init(struct timerq *q);
void timerq_release(struct timerq *q);
static inline void timer_init(struct timer *t) { t->idx = TIMER_IDLE; }
static inline int timer_armed(const struct timer *t) { return t->idx != TIMER_IDLE; }

/* Arms t at (due, seq); t must not be armed. O(log n). */
void timerq_push(struct timerq *q, struct timer *t, int64_t due, uint64_t seq);
/* Disarms t if armed. O(log n). */
void timerq_remove(struct timerq *q, struct timer *t);
/* Earliest timer, or NULL. */
static inline struct timer *timerq_peek(const struct timerq *q) {
  return q->len ? q->heap[0] : NULL;
}
/* Removes and returns the earliest timer if its due <= now, else NULL. */
struct timer *timerq_pop_due(struct timerq *q, int64_t now);

#endif
