/* Open-addressing string map; see smap.h. */
#include "util/smap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"

static inline uint64_t key_hash(const char *k, size_t n) {
  uint64_t h = baton_hash64(k, n, 0x5bd1e995);
  return h ? h : 1;
}

_Static_assert(sizeof(struct smap_slot) == 64, "a slot is one cache line");

/* cap zeroed slots on a cache-line boundary; aborts when out of memory, as xcalloc does. */
static struct smap_slot *slots_new(size_t cap) {
  void *p;
  if (posix_memalign(&p, 64, cap * sizeof(struct smap_slot))) {
    fprintf(stderr, "%s:%d: out of memory (%zu bytes)\n", __FILE__, __LINE__,
            cap * sizeof(struct smap_slot));
    abort();
  }
  return memset(p, 0, cap * sizeof(struct smap_slot));
}

static void key_free(struct smap_slot *s) {
  if (s->key_len >= SMAP_KEY_INLINE) free(s->key.ptr);
}

void smap_init(struct smap *m) { memset(m, 0, sizeof(*m)); }

void smap_release(struct smap *m) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].hash) key_free(&m->slots[i]);
  free(m->slots);
  memset(m, 0, sizeof(*m));
}

static struct smap_slot *find(const struct smap *m, const char *k, size_t n, uint64_t h) {
  if (!m->cap) return NULL;
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    struct smap_slot *s = &m->slots[i];
    if (!s->hash) return NULL;
    if (s->hash == h && s->key_len == n && !memcmp(smap_slot_key(s), k, n)) return s;
  }
}

void *smap_get(const struct smap *m, const char *key, size_t key_len) {
  struct smap_slot *s = find(m, key, key_len, key_hash(key, key_len));
  return s ? s->val : NULL;
}

static void grow(struct smap *m) {
  size_t ncap = m->cap ? m->cap * 2 : 16;
  struct smap_slot *old = m->slots;
  size_t ocap = m->cap;
  m->slots = slots_new(ncap);
  m->cap = ncap;
  for (size_t i = 0; i < ocap; i++) {
    if (!old[i].hash) continue;
    size_t j = old[i].hash & (ncap - 1);
    while (m->slots[j].hash) j = (j + 1) & (ncap - 1);
    m->slots[j] = old[i];
  }
  free(old);
}

void **smap_upsert(struct smap *m, const char *key, size_t key_len, int *inserted) {
  uint64_t h = key_hash(key, key_len);
  struct smap_slot *s = find(m, key, key_len, h);
  if (s) {
    if (inserted) *inserted = 0;
    return &s->val;
  }
  if ((m->len + 1) * 8 > m->cap * 7) grow(m);
  size_t mask = m->cap - 1, i = h & mask;
  while (m->slots[i].hash) i = (i + 1) & mask;
  s = &m->slots[i];
  s->hash = h;
  s->key_len = (uint32_t)key_len;
  if (key_len < SMAP_KEY_INLINE) {
    memcpy(s->key.in, key, key_len);
    s->key.in[key_len] = '\0';
  } else {
    s->key.ptr = xstrndup(key, key_len);
  }
  s->val = NULL;
  m->len++;
  if (inserted) *inserted = 1;
  return &s->val;
}

void *smap_del(struct smap *m, const char *key, size_t key_len) {
  struct smap_slot *s = find(m, key, key_len, key_hash(key, key_len));
  if (!s) return NULL;
  void *val = s->val;
  key_free(s);
  size_t mask = m->cap - 1, i = (size_t)(s - m->slots), j = i;
  /* Backward-shift: move later entries of the probe run into the hole. */
  for (;;) {
    j = (j + 1) & mask;
    if (!m->slots[j].hash) break;
    size_t home = m->slots[j].hash & mask;
    /* Entry j may move to i only if its home is not in (i, j] cyclically. */
    if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
      m->slots[i] = m->slots[j];
      i = j;
    }
  }
  memset(&m->slots[i], 0, sizeof(m->slots[i]));
  m->len--;
  return val;
}

int smap_next(const struct smap *m, size_t *iter, const struct smap_slot **slot) {
  while (*iter < m->cap) {
    const struct smap_slot *s = &m->slots[(*iter)++];
    if (s->hash) {
      *slot = s;
      return 1;
    }
  }
  return 0;
}
