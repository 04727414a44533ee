/* Unit tests for the timer heap: ordering, ties, removal, heap invariant. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "engine/timerq.h"

static int heap_ok(const struct timerq *q) {
  for (size_t i = 1; i < q->len; i++) {
    const struct timer *c = q->heap[i], *p = q->heap[(i - 1) / 2];
    if (c->due < p->due || (c->due == p->due && c->seq < p->seq)) return 0;
    if (c->idx != i) return 0;
  }
  return 1;
}

static void test_order_and_ties(void **state) {
  (void)state;
  struct timerq q;
  timerq_init(&q);
  struct timer t[6];
  int64_t due[6] = {50, 10, 30, 10, 20, 10};
  for (int i = 0; i < 6; i++) {
    timer_init(&t[i]);
    timerq_push(&q, &t[i], due[i], (uint64_t)(100 - i)); /* later pushes get smaller seq */
  }
  assert_true(heap_ok(&q));
  assert_null(timerq_pop_due(&q, 9));
  /* due 10: seqs 99 (t1), 97 (t3), 95 (t5) -> t5, t3, t1 */
  assert_ptr_equal(timerq_pop_due(&q, 10), &t[5]);
  assert_ptr_equal(timerq_pop_due(&q, 10), &t[3]);
  assert_ptr_equal(timerq_pop_due(&q, 10), &t[1]);
  assert_null(timerq_pop_due(&q, 10));
  assert_ptr_equal(timerq_pop_due(&q, 100), &t[4]);
  assert_ptr_equal(timerq_pop_due(&q, 100), &t[2]);
  assert_ptr_equal(timerq_pop_due(&q, 100), &t[0]);
  assert_int_equal(q.len, 0);
  assert_false(timer_armed(&t[0]));
  timerq_release(&q);
}

static void test_random_remove(void **state) {
  (void)state;
  enum { N = 5000 };
  struct timerq q;
  timerq_init(&q);
  struct timer *t = calloc(N, sizeof(*t));
  srand(7);
  for (int i = 0; i < N; i++) {
    timer_init(&t[i]);
    timerq_push(&q, &t[i], rand() % 1000, (uint64_t)i);
  }
  for (int i = 0; i < N; i += 3) timerq_remove(&q, &t[i]);
  timerq_remove(&q, &t[0]); /* removing an idle timer is a no-op */
  assert_true(heap_ok(&q));
  int64_t last_due = -1;
  uint64_t last_seq = 0;
  size_t popped = 0;
  struct timer *x;
  while ((x = timerq_pop_due(&q, 1000))) {
    assert_true(x->due > last_due || (x->due == last_due && x->seq > last_seq));
    assert_int_not_equal((x - t) % 3, 0);
    last_due = x->due;
    last_seq = x->seq;
    popped++;
  }
  assert_int_equal(popped, N - (N + 2) / 3);
  free(t);
  timerq_release(&q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_order_and_ties),
      cmocka_unit_test(test_random_remove),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
