/*
 * CEL values: list and map layouts and their builders, equality and ordering
 * with CEL's numeric semantics (int, uint and double compare by value),
 * map lookup, conversion from JSON, and formatting as a CEL literal that
 * evaluates back to an equal value of the same type. Operators and
 * functions live in vm.c and builtins.c.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr_int.h"

static const char *const kind_names[] = {
#define EXPR_KIND_NAME(name, cel) cel,
    EXPR_KIND_LIST(EXPR_KIND_NAME)
#undef EXPR_KIND_NAME
};

const char *baton_expr_kind_name(enum expr_kind k) {
  return (unsigned)k < EXPR_N_KINDS ? kind_names[k] : "unknown";
}

/* ---- Lists and maps ------------------------------------------------------ */

struct expr_list *list_alloc(struct expr_arena *a, size_t cap) {
  if (cap > UINT32_MAX / sizeof(struct expr_value)) return NULL;
  struct expr_list *l = arena_alloc(a, sizeof(*l) + cap * sizeof(struct expr_value));
  if (!l) return NULL;
  l->len = 0;
  l->cap = (uint32_t)cap;
  return l;
}

/* The tags follow the entries in the same block, unset: map_seal (or
 * baton_expr_map_new and _set) computes them from the keys, and every map
 * is sealed before anything reads it. */
struct expr_map *map_alloc(struct expr_arena *a, size_t n) {
  if (n > UINT32_MAX / (sizeof(struct expr_map_entry) + sizeof(uint64_t))) return NULL;
  struct expr_map *m =
      arena_alloc(a, sizeof(*m) + n * (sizeof(struct expr_map_entry) + sizeof(uint64_t)));
  if (!m) return NULL;
  m->len = (uint32_t)n;
  m->index_cap = 0;
  m->index = NULL;
  m->tags = (uint64_t *)(m->entries + n);
  return m;
}

size_t baton_expr_list_len(const struct expr_list *l) { return l->len; }
struct expr_value baton_expr_list_get(const struct expr_list *l, size_t i) {
  return l->items[i];
}
size_t baton_expr_map_len(const struct expr_map *m) { return m->len; }

void baton_expr_map_entry(const struct expr_map *m, size_t i, struct expr_value *key,
                          struct expr_value *val) {
  *key = m->entries[i].key;
  *val = m->entries[i].val;
}

int baton_expr_map_find(const struct expr_map *m, const char *key, size_t len,
                        struct expr_value *val) {
  const struct expr_map_entry *e = map_lookup_str(m, key, len);
  if (!e) return 0;
  *val = e->val;
  return 1;
}

struct expr_value baton_expr_list_new(struct expr_arena *a, size_t n, struct expr_value **items) {
  struct expr_list *l = list_alloc(a, n);
  if (!l) {
    *items = NULL;
    return expr_error_oom(0);
  }
  l->len = (uint32_t)n;
  for (size_t i = 0; i < n; i++) l->items[i] = baton_expr_null();
  *items = l->items;
  struct expr_value v = {.kind = EXPR_LIST, .v.list = l};
  return v;
}

struct expr_value baton_expr_map_new(struct expr_arena *a, size_t n) {
  struct expr_map *m = map_alloc(a, n);
  if (!m) return expr_error_oom(0);
  for (size_t i = 0; i < n; i++) {
    m->entries[i].key = m->entries[i].val = baton_expr_null();
    m->tags[i] = KEY_TAG_NONE;
  }
  struct expr_value v = {.kind = EXPR_MAP, .v.map = m};
  return v;
}

void baton_expr_map_set(struct expr_value map, size_t i, struct expr_value key,
                        struct expr_value val) {
  struct expr_map *m = (struct expr_map *)map.v.map;
  m->entries[i].key = key;
  m->entries[i].val = val;
  m->tags[i] = key_tag(&key);
}

int baton_expr_map_seal(struct expr_arena *a, struct expr_value map) {
  if (map.kind != EXPR_MAP) return BATON_EINVAL;
  return map_seal(a, (struct expr_map *)map.v.map);
}

struct expr_value baton_expr_string_copy(struct expr_arena *a, const char *s, size_t len) {
  char *p = arena_alloc(a, len + 1);
  if (!p) return expr_error_oom(0);
  memcpy(p, s, len);
  p[len] = 0;
  return baton_expr_string(p, len);
}

static bool key_kind_ok(int k) {
  return k == EXPR_INT || k == EXPR_UINT || k == EXPR_BOOL || k == EXPR_STRING;
}

/*
 * Small maps are scanned (fewer than MAP_INDEX_MIN entries: a scan beats
 * hashing); larger ones get an open-addressing index over their string keys.
 * Repeated keys are found by the scan for small maps and by the index plus
 * a scan of the non-string keys for large ones, so sealing is O(n) for maps
 * of strings.
 */
int map_seal(struct expr_arena *a, struct expr_map *m) {
  size_t n_other = 0;
  for (uint32_t i = 0; i < m->len; i++) {
    if (!key_kind_ok(m->entries[i].key.kind)) return BATON_ETYPE;
    if (m->entries[i].key.kind != EXPR_STRING) n_other++;
    m->tags[i] = key_tag(&m->entries[i].key);
  }
  if (m->len < MAP_INDEX_MIN) {
    for (uint32_t i = 1; i < m->len; i++)
      for (uint32_t j = 0; j < i; j++)
        if (value_equal(m->entries[i].key, m->entries[j].key)) return BATON_EEXIST;
    return 0;
  }
  uint32_t cap = 16;
  while (cap < m->len * 2) cap <<= 1;
  struct map_slot *idx = arena_alloc(a, cap * sizeof(*idx));
  if (!idx) return BATON_ETOOBIG;
  memset(idx, 0, cap * sizeof(*idx));
  for (uint32_t i = 0; i < m->len; i++) {
    const struct expr_value *k = &m->entries[i].key;
    if (k->kind != EXPR_STRING) continue;
    uint32_t hash = key_hash(k->v.s, k->aux), h = hash & (cap - 1);
    while (idx[h].entry) {
      const struct expr_value *o = &m->entries[idx[h].entry - 1].key;
      if (o->aux == k->aux && !memcmp(o->v.s, k->v.s, k->aux)) return BATON_EEXIST;
      h = (h + 1) & (cap - 1);
    }
    idx[h].hash = hash;
    idx[h].entry = i + 1;
  }
  if (n_other > 1) {
    for (uint32_t i = 0; i < m->len; i++) {
      if (m->entries[i].key.kind == EXPR_STRING) continue;
      for (uint32_t j = 0; j < i; j++)
        if (m->entries[j].key.kind != EXPR_STRING &&
            value_equal(m->entries[i].key, m->entries[j].key))
          return BATON_EEXIST;
    }
  }
  m->index = idx;
  m->index_cap = cap;
  return 0;
}

const struct expr_map_entry *map_lookup_str(const struct expr_map *m, const char *s, size_t n) {
  return map_find_h(m, s, (uint32_t)n, m->index ? key_hash(s, n) : 0);
}

const struct expr_map_entry *map_find_miss(const struct expr_map *m, const char *s, uint32_t n,
                                           uint32_t h, uint16_t *hint) {
  const struct expr_map_entry *e = map_find_h(m, s, n, h);
  if (e && e - m->entries <= UINT16_MAX)
    __atomic_store_n(hint, (uint16_t)(e - m->entries), __ATOMIC_RELAXED);
  return e;
}

const struct expr_map_entry *map_lookup(const struct expr_map *m, struct expr_value key) {
  if (key.kind == EXPR_STRING) return map_lookup_str(m, key.v.s, key.aux);
  for (uint32_t i = 0; i < m->len; i++)
    if (m->entries[i].key.kind != EXPR_STRING && value_equal(m->entries[i].key, key))
      return &m->entries[i];
  return NULL;
}

/* ---- Equality and ordering ----------------------------------------------- */

static bool is_num(int k) { return k == EXPR_INT || k == EXPR_UINT || k == EXPR_DOUBLE; }

/*
 * CEL compares an int or uint with a double by converting it to double (the
 * conformance suite pins this: dyn(9223372036854775807) < 9223372036854775808.0
 * is false), so the comparison is lossy above 2^53 by design.
 */
static int cmp_double_int(double d, int64_t i) {
  double x = (double)i;
  return (d > x) - (d < x);
}

static int cmp_double_uint(double d, uint64_t u) {
  double x = (double)u;
  return (d > x) - (d < x);
}

/* Numeric comparison across int, uint and double; returns 2 if NaN is involved. */
static int num_cmp(struct expr_value a, struct expr_value b) {
  switch (a.kind * 16 + b.kind) {
    case EXPR_INT * 16 + EXPR_INT:
      return (a.v.i > b.v.i) - (a.v.i < b.v.i);
    case EXPR_UINT * 16 + EXPR_UINT:
      return (a.v.u > b.v.u) - (a.v.u < b.v.u);
    case EXPR_DOUBLE * 16 + EXPR_DOUBLE:
      if (isnan(a.v.d) || isnan(b.v.d)) return 2;
      return (a.v.d > b.v.d) - (a.v.d < b.v.d);
    case EXPR_INT * 16 + EXPR_UINT:
      if (a.v.i < 0) return -1;
      return ((uint64_t)a.v.i > b.v.u) - ((uint64_t)a.v.i < b.v.u);
    case EXPR_UINT * 16 + EXPR_INT:
      if (b.v.i < 0) return 1;
      return (a.v.u > (uint64_t)b.v.i) - (a.v.u < (uint64_t)b.v.i);
    case EXPR_DOUBLE * 16 + EXPR_INT:
      return isnan(a.v.d) ? 2 : cmp_double_int(a.v.d, b.v.i);
    case EXPR_INT * 16 + EXPR_DOUBLE:
      return isnan(b.v.d) ? 2 : -cmp_double_int(b.v.d, a.v.i);
    case EXPR_DOUBLE * 16 + EXPR_UINT:
      return isnan(a.v.d) ? 2 : cmp_double_uint(a.v.d, b.v.u);
    case EXPR_UINT * 16 + EXPR_DOUBLE:
      return isnan(b.v.d) ? 2 : -cmp_double_uint(b.v.d, a.v.u);
  }
  return 2;
}

static int bytes_cmp(const char *a, size_t an, const char *b, size_t bn) {
  int c = memcmp(a, b, MIN(an, bn));
  if (c) return c < 0 ? -1 : 1;
  return (an > bn) - (an < bn);
}

bool value_equal(struct expr_value a, struct expr_value b) {
  if (a.kind != b.kind) {
    if (is_num(a.kind) && is_num(b.kind)) return num_cmp(a, b) == 0;
    return false;
  }
  switch (a.kind) {
    case EXPR_NULL:
      return true;
    case EXPR_BOOL:
      return a.v.b == b.v.b;
    case EXPR_INT:
    case EXPR_UINT:
    case EXPR_DOUBLE:
      return num_cmp(a, b) == 0;
    case EXPR_STRING:
    case EXPR_BYTES:
      return a.aux == b.aux && !memcmp(a.v.s, b.v.s, a.aux);
    case EXPR_TIMESTAMP:
    case EXPR_DURATION:
      return a.v.sec == b.v.sec && a.aux == b.aux;
    case EXPR_TYPE:
      return a.v.type == b.v.type;
    case EXPR_LIST:
      if (a.v.list->len != b.v.list->len) return false;
      for (uint32_t i = 0; i < a.v.list->len; i++)
        if (!value_equal(a.v.list->items[i], b.v.list->items[i])) return false;
      return true;
    case EXPR_MAP:
      if (a.v.map->len != b.v.map->len) return false;
      for (uint32_t i = 0; i < a.v.map->len; i++) {
        const struct expr_map_entry *e = map_lookup(b.v.map, a.v.map->entries[i].key);
        if (!e || !value_equal(a.v.map->entries[i].val, e->val)) return false;
      }
      return true;
    case EXPR_ERROR:
      return false;
  }
  return false;
}

bool baton_expr_value_equal(struct expr_value a, struct expr_value b) { return value_equal(a, b); }

int value_compare(struct expr_value a, struct expr_value b, int *cmp) {
  if (is_num(a.kind) && is_num(b.kind)) {
    int c = num_cmp(a, b);
    if (c == 2) return 1;
    *cmp = c;
    return 0;
  }
  if (a.kind != b.kind) return -1;
  switch (a.kind) {
    case EXPR_BOOL:
      *cmp = (a.v.b > b.v.b) - (a.v.b < b.v.b);
      return 0;
    case EXPR_STRING:
    case EXPR_BYTES:
      *cmp = bytes_cmp(a.v.s, a.aux, b.v.s, b.aux);
      return 0;
    case EXPR_TIMESTAMP:
    case EXPR_DURATION:
      if (a.v.sec != b.v.sec)
        *cmp = a.v.sec < b.v.sec ? -1 : 1;
      else
        *cmp = (a.aux > b.aux) - (a.aux < b.aux);
      return 0;
  }
  return -1;
}

/* ---- UTF-8 --------------------------------------------------------------- */

size_t utf8_count(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80) n++;
  return n;
}

/* ---- JSON ---------------------------------------------------------------- */

static int from_json(struct expr_arena *a, const cJSON *j, struct expr_value *out, int depth) {
  if (depth > 256) return BATON_ETOOBIG;
  if (cJSON_IsNull(j)) {
    *out = baton_expr_null();
  } else if (cJSON_IsBool(j)) {
    *out = baton_expr_bool(cJSON_IsTrue(j));
  } else if (cJSON_IsNumber(j)) {
    /* cJSON keeps only the double, so "integer" means a whole value that
     * int64 and double both hold exactly (|v| <= 2^53). */
    double d = j->valuedouble;
    if (d == floor(d) && fabs(d) <= 9007199254740992.0)
      *out = baton_expr_int((int64_t)d);
    else
      *out = baton_expr_double(d);
  } else if (cJSON_IsString(j)) {
    size_t n = strlen(j->valuestring);
    if (!baton_utf8_valid(j->valuestring, n)) return BATON_EINVAL;
    *out = baton_expr_string_copy(a, j->valuestring, n);
    if (out->kind == EXPR_ERROR) return BATON_ETOOBIG;
  } else if (cJSON_IsArray(j)) {
    size_t n = (size_t)cJSON_GetArraySize(j);
    struct expr_list *l = list_alloc(a, n);
    if (!l) return BATON_ETOOBIG;
    const cJSON *c;
    cJSON_ArrayForEach(c, j) {
      int rc = from_json(a, c, &l->items[l->len], depth + 1);
      if (rc) return rc;
      l->len++;
    }
    out->kind = EXPR_LIST;
    out->aux = 0;
    out->v.list = l;
  } else if (cJSON_IsObject(j)) {
    size_t n = (size_t)cJSON_GetArraySize(j);
    struct expr_map *m = map_alloc(a, n);
    if (!m) return BATON_ETOOBIG;
    size_t i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, j) {
      size_t kn = strlen(c->string);
      if (!baton_utf8_valid(c->string, kn)) return BATON_EINVAL;
      m->entries[i].key = baton_expr_string_copy(a, c->string, kn);
      if (m->entries[i].key.kind == EXPR_ERROR) return BATON_ETOOBIG;
      int rc = from_json(a, c, &m->entries[i].val, depth + 1);
      if (rc) return rc;
      i++;
    }
    /* JSON objects may repeat a key; cJSON keeps both, we keep the last. */
    int rc = map_seal(a, m);
    if (rc == BATON_EEXIST) {
      size_t w = 0;
      for (size_t r = 0; r < n; r++) {
        bool later = false;
        for (size_t q = r + 1; q < n && !later; q++)
          later = value_equal(m->entries[r].key, m->entries[q].key);
        if (!later) m->entries[w++] = m->entries[r];
      }
      m->len = (uint32_t)w;
      rc = map_seal(a, m);
    }
    if (rc) return rc == BATON_ETYPE ? BATON_EINVAL : rc;
    out->kind = EXPR_MAP;
    out->aux = 0;
    out->v.map = m;
  } else {
    return BATON_EINVAL;
  }
  return 0;
}

int baton_expr_value_from_json(struct expr_arena *a, const cJSON *json, struct expr_value *out) {
  return from_json(a, json, out, 0);
}

/* ---- Formatting as a CEL literal ----------------------------------------- */

size_t double_shortest(double d, char *out) {
  /* The fewest significant digits that read back as the same double, in
   * fixed notation for magnitudes people write that way (1e-4 to 1e16). */
  int prec = 1;
  for (; prec <= 17; prec++) {
    snprintf(out, 40, "%.*g", prec, d);
    if (strtod(out, NULL) == d) break;
  }
  if (strchr(out, 'e') && d != 0) {
    int e10 = (int)floor(log10(fabs(d)));
    if (e10 >= -4 && e10 < 16) snprintf(out, 40, "%.*f", MAX(0, prec - 1 - e10), d);
  }
  return strlen(out);
}

static int format_double(struct buf *b, double d) {
  if (isnan(d)) return buf_puts(b, "double(\"NaN\")");
  if (isinf(d)) return buf_puts(b, d > 0 ? "double(\"Infinity\")" : "double(\"-Infinity\")");
  char tmp[48];
  double_shortest(d, tmp);
  if (!strpbrk(tmp, ".eEn")) strcat(tmp, ".0");
  return buf_puts(b, tmp);
}

static int format_string(struct buf *b, const char *s, size_t n, bool bytes) {
  int rc = buf_puts(b, bytes ? "b\"" : "\"");
  for (size_t i = 0; i < n && !rc; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
      case '"':
        rc = buf_puts(b, "\\\"");
        break;
      case '\\':
        rc = buf_puts(b, "\\\\");
        break;
      case '\n':
        rc = buf_puts(b, "\\n");
        break;
      case '\r':
        rc = buf_puts(b, "\\r");
        break;
      case '\t':
        rc = buf_puts(b, "\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7f || (bytes && c >= 0x80))
          rc = buf_printf(b, "\\x%02x", c);
        else
          rc = buf_putc(b, (char)c);
    }
  }
  return rc ? rc : buf_putc(b, '"');
}

int baton_expr_value_format(struct buf *b, struct expr_value v) {
  char tmp[48];
  int rc = 0;
  switch (v.kind) {
    case EXPR_NULL:
      return buf_puts(b, "null");
    case EXPR_BOOL:
      return buf_puts(b, v.v.b ? "true" : "false");
    case EXPR_INT:
      return buf_printf(b, "%lld", (long long)v.v.i);
    case EXPR_UINT:
      return buf_printf(b, "%lluu", (unsigned long long)v.v.u);
    case EXPR_DOUBLE:
      return format_double(b, v.v.d);
    case EXPR_STRING:
      return format_string(b, v.v.s, v.aux, false);
    case EXPR_BYTES:
      return format_string(b, v.v.s, v.aux, true);
    case EXPR_TIMESTAMP:
      ts_format(v.v.sec, (int32_t)v.aux, tmp);
      return buf_printf(b, "timestamp(\"%s\")", tmp);
    case EXPR_DURATION:
      dur_format(v.v.sec, (int32_t)v.aux, tmp);
      return buf_printf(b, "duration(\"%s\")", tmp);
    case EXPR_TYPE:
      return buf_puts(b, baton_expr_kind_name((int)v.v.type));
    case EXPR_ERROR:
      return buf_puts(b, v.v.err->msg);
    case EXPR_LIST:
      rc = buf_putc(b, '[');
      for (uint32_t i = 0; i < v.v.list->len && !rc; i++) {
        if (i) rc = buf_puts(b, ", ");
        if (!rc) rc = baton_expr_value_format(b, v.v.list->items[i]);
      }
      return rc ? rc : buf_putc(b, ']');
    case EXPR_MAP:
      rc = buf_putc(b, '{');
      for (uint32_t i = 0; i < v.v.map->len && !rc; i++) {
        if (i) rc = buf_puts(b, ", ");
        if (!rc) rc = baton_expr_value_format(b, v.v.map->entries[i].key);
        if (!rc) rc = buf_puts(b, ": ");
        if (!rc) rc = baton_expr_value_format(b, v.v.map->entries[i].val);
      }
      return rc ? rc : buf_putc(b, '}');
  }
  return BATON_EINVAL;
}
