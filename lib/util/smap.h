/*
 * A hash map from byte-string keys to pointers: open addressing, linear
 * probing, backward-shift deletion (no tombstones), power-of-two capacity kept
 * at most 7/8 full. The map copies keys (short ones into the slot itself; keys
 * are under 4 GiB); values are the caller's. Not thread-safe: each map belongs
 * to one thread or is guarded by its owner.
 */
#ifndef BATON_UTIL_SMAP_H
#define BATON_UTIL_SMAP_H

#include <stddef.h>
#include <stdint.h>

/* Slots are one 64-byte cache line each: a key shorter than SMAP_KEY_INLINE
   bytes is kept in its slot, so a lookup that finds it reads one line and no
   separate string (the engine's identity index is probed for every event). */
#define SMAP_KEY_INLINE 40

struct smap_slot {
  uint64_t hash; /* 0 marks an empty slot (real hashes are forced non-zero) */
  void *val;
  union {
    char in[SMAP_KEY_INLINE]; /* key_len < SMAP_KEY_INLINE: the key and a NUL */
    char *ptr;                /* else: a NUL-terminated copy owned by the map */
  } key;
  uint32_t key_len;
};

/* The slot's key (NUL-terminated); valid until the map is next changed. */
static inline const char *smap_slot_key(const struct smap_slot *s) {
  return s->key_len < SMAP_KEY_INLINE ? s->key.in : s->key.ptr;
}

struct smap {
  struct smap_slot *slots;
  size_t cap;  /* power of two, or 0 */
  size_t len;  /* live entries */
};

void smap_init(struct smap *m);
/* Frees the map's slots and key copies; values are not touched. */
void smap_release(struct smap *m);
/* Returns the value for key, or NULL. */
void *smap_get(const struct smap *m, const char *key, size_t key_len);
/*
 * Returns a pointer to the value cell for key, inserting it with value NULL
 * if it is absent (*inserted tells which). The pointer is valid until the next
 * insertion or deletion.
 */
void **smap_upsert(struct smap *m, const char *key, size_t key_len, int *inserted);
/* Removes key; returns its value, or NULL if it was absent. */
void *smap_del(struct smap *m, const char *key, size_t key_len);

/* Iteration: for (size_t i = 0; smap_next(m, &i, &slot);) visits every entry once. */
int smap_next(const struct smap *m, size_t *iter, const struct smap_slot **slot);

#endif
