/*
 * The bump allocator behind evaluation scratch, compiled constants and
 * caller-built values (struct expr_arena). Memory is handed out in 16-byte
 * aligned pieces from a chain of blocks; nothing is freed individually. A
 * reset keeps the first block so a context reused for many evaluations stops
 * touching the heap once its first block is big enough (it is grown to the
 * largest size a run needed). Every arena has a byte cap: past it,
 * arena_alloc returns NULL and callers turn that into an error value.
 */
#include <stdlib.h>
#include <string.h>

#include "expr/expr_int.h"

#define ARENA_DEFAULT_MAX (64u << 20)
#define ARENA_MIN_BLOCK 4096

static struct arena_block *block_new(size_t cap) {
  struct arena_block *b = xmalloc(sizeof(*b) + cap);
  b->next = NULL;
  b->cap = cap;
  b->used = 0;
  return b;
}

void arena_init(struct expr_arena *a, size_t max, size_t first_cap) {
  memset(a, 0, sizeof(*a));
  a->max = max ? max : ARENA_DEFAULT_MAX;
  if (first_cap) {
    a->first = a->head = block_new(first_cap);
    a->total = first_cap;
  }
}

void arena_release(struct expr_arena *a) {
  struct arena_block *b = a->head;
  while (b) {
    struct arena_block *next = b->next;
    free(b);
    b = next;
  }
  a->head = a->first = NULL;
  a->total = 0;
}

void *arena_alloc(struct expr_arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  struct arena_block *b = a->head;
  if (likely(b && b->cap - b->used >= n)) {
    void *p = b->data + b->used;
    b->used += n;
    return p;
  }
  size_t cap = MAX(n, b ? b->cap * 2 : (size_t)ARENA_MIN_BLOCK);
  if (a->total + cap > a->max) {
    cap = n;
    if (a->total + cap > a->max) {
      a->failed = true;
      return NULL;
    }
  }
  struct arena_block *nb = block_new(cap);
  a->n_blocks_made++;
  /* Blocks chain newest first; the oldest (first) stays at the tail. */
  nb->next = b;
  a->head = nb;
  if (!a->first) a->first = nb;
  a->total += cap;
  nb->used = n;
  return nb->data;
}

/*
 * Keeps one block: if the run needed more than the first block, the blocks
 * are replaced by one block as big as everything used, so the next run of
 * the same shape fits without allocating.
 */
void baton_expr_arena_reset(struct expr_arena *a) {
  if (!a->head) return;
  if (a->head == a->first) {
    a->first->used = 0;
    a->failed = false;
    return;
  }
  size_t need = 0;
  for (struct arena_block *b = a->head; b; b = b->next) need += b->cap;
  arena_release(a);
  if (need > a->max) need = a->max;
  a->first = a->head = block_new(need);
  a->n_blocks_made++;
  a->total = need;
  a->failed = false;
}

struct expr_arena *baton_expr_arena_new(size_t max) {
  struct expr_arena *a = xmalloc(sizeof(*a));
  arena_init(a, max, 0);
  return a;
}

void baton_expr_arena_free(struct expr_arena *a) {
  if (!a) return;
  arena_release(a);
  free(a);
}
