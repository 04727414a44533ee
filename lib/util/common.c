/* Error messages, aborting allocators, hashing and UTF-8 validation. */
#include "util/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *baton_strerror(int err) {
  switch (err) {
    case 0: return "success";
#define BATON_ERR_CASE(name, val, msg) case val: return msg;
    BATON_ERRNO_MAP(BATON_ERR_CASE)
#undef BATON_ERR_CASE
  }
  return "unknown error";
}

static void oom(size_t n, const char *file, int line) {
  fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory\",\"bytes\":%zu,\"at\":\"%s:%d\"}\n",
          n, file, line);
  abort();
}

void *baton_xmalloc_(size_t n, const char *file, int line) {
  void *p = malloc(n ? n : 1);
  if (!p) oom(n, file, line);
  return p;
}

void *baton_xcalloc_(size_t n, size_t size, const char *file, int line) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) oom(n * size, file, line);
  return p;
}

void *baton_xrealloc_(void *p, size_t n, const char *file, int line) {
  void *q = realloc(p, n ? n : 1);
  if (!q) oom(n, file, line);
  return q;
}

char *baton_xstrdup_(const char *s, const char *file, int line) {
  return baton_xstrndup_(s, strlen(s), file, line);
}

char *baton_xstrndup_(const char *s, size_t n, const char *file, int line) {
  char *p = baton_xmalloc_(n + 1, file, line);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

/* wyhash-style mixing: fast on short keys, good enough distribution for tables. */
static inline uint64_t mix(uint64_t a, uint64_t b) {
  __uint128_t r = (__uint128_t)a * b;
  return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t rd64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static inline uint64_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

uint64_t baton_hash64(const void *key, size_t len, uint64_t seed) {
  const uint8_t *p = key;
  const uint64_t s0 = 0xa0761d6478bd642full, s1 = 0xe7037ed1a0b428dbull,
                 s2 = 0x8ebc6af09c88c6e3ull;
  uint64_t a, b;
  seed ^= s0;
  if (len <= 16) {
    if (len >= 4) {
      a = (rd32(p) << 32) | rd32(p + ((len >> 3) << 2));
      b = (rd32(p + len - 4) << 32) | rd32(p + len - 4 - ((len >> 3) << 2));
    } else if (len > 0) {
      a = ((uint64_t)p[0] << 16) | ((uint64_t)p[len >> 1] << 8) | p[len - 1];
      b = 0;
    } else {
      a = b = 0;
    }
  } else {
    size_t i = len;
    while (i > 16) {
      seed = mix(rd64(p) ^ s1, rd64(p + 8) ^ seed);
      p += 16;
      i -= 16;
    }
    a = rd64(p + i - 16);
    b = rd64(p + i - 8);
  }
  return mix(s1 ^ len, mix(a ^ s1, b ^ seed) ^ s2);
}

bool baton_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  while (p < end) {
    unsigned c = *p;
    if (c < 0x80) {
      p++;
      continue;
    }
    size_t n;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if ((size_t)(end - p) < n + 1) return false;
    for (size_t i = 1; i <= n; i++) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    p += n + 1;
  }
  return true;
}
