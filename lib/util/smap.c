/* Open-addressing string map; see smap.h. */
#include "util/smap.h"

#include <stdlib.h>
#include <string.h>

#include "util/common.h"

static inline uint64_t key_hash(const char *k, size_t n) {
  uint64_t h = baton_hash64(k, n, 0x5bd1e995);
  return h ? h : 1;
}

void smap_init(struct smap *m) { memset(m, 0, sizeof(*m)); }

void smap_release(struct smap *m) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].hash) free(m->slots[i].key);
  free(m->slots);
  memset(m, 0, sizeof(*m));
}

static struct smap_slot *find(const struct smap *m, const char *k, size_t n, uint64_t h) {
  if (!m->cap) return NULL;
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    struct smap_slot *s = &m->slots[i];
    if (!s->hash) return NULL;
    if (s->hash == h && s->key_len == n && !memcmp(s->key, k, n)) return s;
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
  m->slots = xcalloc(ncap, sizeof(*m->slots));
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
  s->key = xstrndup(key, key_len);
  s->key_len = key_len;
  s->val = NULL;
  m->len++;
  if (inserted) *inserted = 1;
  return &s->val;
}

void *smap_del(struct smap *m, const char *key, size_t key_len) {
  struct smap_slot *s = find(m, key, key_len, key_hash(key, key_len));
  if (!s) return NULL;
  void *val = s->val;
  free(s->key);
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
