/*
 * Bump allocation for the template module: the compiled tree lives in one
 * arena owned by the template, and each render's scratch (filter results,
 * assigned values) in another freed when the render returns. Not a general
 * allocator: nothing is freed individually.
 */
#include <stdlib.h>
#include <string.h>

#include "template/template_int.h"
#include "util/common.h"

struct arena_chunk {
  struct arena_chunk *next;
  size_t size;
  _Alignas(16) unsigned char data[];
};

/*
 * Chunks start small and double (1 KiB .. 64 KiB), so a compiled SMS template
 * holds about a kilobyte and waste stays under half of what is used.
 */
#define ARENA_FIRST_CHUNK 1024
#define ARENA_MAX_CHUNK 65536

void tpl_arena_init(struct arena *a) {
  a->head = a->first = NULL;
  a->used = a->size = a->total = 0;
}

void tpl_arena_init_buf(struct arena *a, void *mem, size_t size) {
  tpl_arena_init(a);
  if (size < sizeof(struct arena_chunk) + 64) return;
  struct arena_chunk *c = mem;
  c->next = NULL;
  c->size = size - sizeof(*c);
  a->head = a->first = c;
  a->size = c->size;
}

void tpl_arena_release(struct arena *a) {
  struct arena_chunk *c = a->head;
  while (c) {
    struct arena_chunk *next = c->next;
    if (c != a->first) free(c); /* the caller's memory from tpl_arena_init_buf */
    c = next;
  }
  tpl_arena_init(a);
}

void *tpl_arena_alloc(struct arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  a->total += n;
  if (!a->head || a->size - a->used < n) {
    size_t chunk = a->size ? MIN(a->size * 2, ARENA_MAX_CHUNK) : ARENA_FIRST_CHUNK;
    if (chunk < ARENA_FIRST_CHUNK) chunk = ARENA_FIRST_CHUNK;
    /* A request bigger than half a chunk gets a chunk of its own, so waste stays bounded. */
    size_t size = n > chunk / 2 ? n : chunk;
    struct arena_chunk *c = xmalloc(sizeof(*c) + size);
    c->size = size;
    if (a->head && size == n && a->size - a->used >= chunk / 4) {
      /* Keep filling the current chunk: link the big one behind it. */
      c->next = a->head->next;
      a->head->next = c;
      memset(c->data, 0, n);
      return c->data;
    }
    c->next = a->head;
    a->head = c;
    a->size = size;
    a->used = 0;
  }
  void *p = a->head->data + a->used;
  a->used += n;
  memset(p, 0, n);
  return p;
}

char *tpl_arena_strndup(struct arena *a, const char *s, size_t n) {
  char *p = tpl_arena_alloc(a, n + 1);
  if (n) memcpy(p, s, n);
  p[n] = 0;
  return p;
}
