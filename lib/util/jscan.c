/* A tree-less scanner over JSON text; see jscan.h. */
#include "util/jscan.h"

#include <string.h>

const char *jscan_value(const char *p, const char *end) {
  if (p >= end) return NULL;
  if (*p == '"') return jscan_string(p, end);
  if (*p != '{' && *p != '[') { /* a number or a literal: up to the next delimiter */
    const char *s = p;
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ':' && !jscan_is_ws(*p)) p++;
    return p > s ? p : NULL;
  }
  size_t depth = 0;
  while (p < end) {
    char c = *p;
    if (c == '"') {
      if (!(p = jscan_string(p, end))) return NULL;
      continue;
    }
    if (c == '{' || c == '[') {
      depth++;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return p + 1;
    }
    p++;
  }
  return NULL;
}

int jscan_next_key(const char **pp, const char *end, const char **key, size_t *key_len) {
  const char *p = jscan_ws(*pp, end);
  if (p < end && *p == ',') p = jscan_ws(p + 1, end);
  if (p >= end) return -1;
  if (*p == '}') {
    *pp = p + 1;
    return 0;
  }
  if (*p != '"') return -1;
  const char *k = p;
  if (!(p = jscan_string(p, end))) return -1;
  *key = k + 1;
  *key_len = (size_t)(p - 1 - *key);
  p = jscan_ws(p, end);
  if (p >= end || *p != ':') return -1;
  *pp = jscan_ws(p + 1, end);
  return 1;
}

int jscan_next_member(const char **pp, const char *end, struct jscan_member *m) {
  int rc = jscan_next_key(pp, end, &m->key, &m->key_len);
  if (rc != 1) return rc;
  const char *v = *pp, *p = jscan_value(v, end);
  if (!p) return -1;
  m->val = v;
  m->val_len = (size_t)(p - v);
  *pp = p;
  return 1;
}

int jscan_next_element(const char **pp, const char *end, const char **val, size_t *val_len) {
  const char *p = jscan_ws(*pp, end);
  if (p < end && *p == ',') p = jscan_ws(p + 1, end);
  if (p >= end) return -1;
  if (*p == ']') {
    *pp = p + 1;
    return 0;
  }
  const char *v = p;
  if (!(p = jscan_value(p, end))) return -1;
  *val = v;
  *val_len = (size_t)(p - v);
  *pp = p;
  return 1;
}

int jscan_top_member(const char *json, size_t len, const char *key, const char **val,
                     size_t *vlen) {
  const char *end = json + len, *p = jscan_ws(json, end);
  size_t klen = strlen(key);
  if (p >= end || *p++ != '{') return -1;
  struct jscan_member m;
  int rc;
  while ((rc = jscan_next_member(&p, end, &m)) == 1) {
    if (memchr(m.key, '\\', m.key_len)) return -1; /* escaped keys: let cJSON decide */
    if (m.key_len == klen && !memcmp(m.key, key, klen)) {
      *val = m.val;
      *vlen = m.val_len;
      return 1;
    }
  }
  return rc;
}
