/* Per-thread bump arena for cJSON during a request's parse; see jarena.h. */
#include "util/jarena.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "util/common.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ALIGN 16
#define FIRST_CHUNK_BYTES ((size_t)64 << 10)

struct chunk {
  struct chunk *next; /* older chunks of this scope */
  size_t cap, used;   /* bytes after the header */
};
#define HDR_BYTES ((sizeof(struct chunk) + ALIGN - 1) & ~(size_t)(ALIGN - 1))

static int installed;
static pthread_key_t exit_key; /* its destructor frees a thread's chunks when the thread ends */
static __thread struct chunk *tl_chunk; /* the newest; older ones chained behind */
static __thread int tl_active;

static char *chunk_mem(struct chunk *c) { return (char *)c + HDR_BYTES; }

static struct chunk *chunk_new(size_t cap, struct chunk *next) {
  struct chunk *c = xmalloc(HDR_BYTES + cap);
  if (!next) pthread_setspecific(exit_key, c); /* non-NULL, so the destructor runs */
  c->next = next;
  c->cap = cap;
  c->used = 0;
  POISON(chunk_mem(c), cap);
  return c;
}

static int in_arena(const void *p) {
  for (struct chunk *c = tl_chunk; c; c = c->next) {
    const char *m = chunk_mem(c);
    if ((const char *)p >= m && (const char *)p < m + c->cap) return 1;
  }
  return 0;
}

static void *arena_malloc(size_t n) {
  if (!tl_active) return malloc(n);
  size_t need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
  if (need < n) return NULL;
  struct chunk *c = tl_chunk;
  if (!c || c->cap - c->used < need) {
    size_t cap = c ? 2 * c->cap : FIRST_CHUNK_BYTES;
    if (cap < need) cap = need;
    c = tl_chunk = chunk_new(cap, c);
  }
  void *p = chunk_mem(c) + c->used;
  c->used += need;
  UNPOISON(p, n);
  return p;
}

static void arena_free(void *p) {
  if (!p) return;
  if (tl_active && in_arena(p)) return; /* released with the scope */
  free(p);
}

static void free_chunks(void) {
  for (struct chunk *c = tl_chunk, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  tl_chunk = NULL;
}

static void on_thread_exit(void *unused) {
  (void)unused;
  free_chunks(); /* thread-local storage is still there while key destructors run */
}

void jarena_install(void) {
  pthread_key_create(&exit_key, on_thread_exit);
  cJSON_Hooks h = {arena_malloc, arena_free};
  cJSON_InitHooks(&h);
  installed = 1;
}

void jarena_begin(void) {
  if (!installed) return;
  tl_active = 1;
}

void jarena_end(void) {
  if (!tl_active) return;
  tl_active = 0;
  struct chunk *c = tl_chunk;
  if (c && !c->next && c->cap <= JARENA_KEEP_BYTES) { /* one chunk was enough: keep it */
    POISON(chunk_mem(c), c->used);
    c->used = 0;
    return;
  }
  /* It took several chunks (or one too large to keep): the next scope starts with one chunk as
     large as this one needed, within the cap. */
  size_t need = 0;
  for (; c; c = c->next) need += c->used;
  free_chunks();
  size_t cap = need + need / 4;
  if (cap < FIRST_CHUNK_BYTES) cap = FIRST_CHUNK_BYTES;
  if (cap <= JARENA_KEEP_BYTES) tl_chunk = chunk_new(cap, NULL);
}
