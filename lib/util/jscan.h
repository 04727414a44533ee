/*
 * A scanner over JSON text that builds no tree: where a value, an object's
 * members and an array's elements begin and end, and the first top-level
 * member with a given key. It is meant for text that a JSON parser has
 * already accepted (ingest checks every body with cJSON first) or that Baton
 * wrote itself. It never reads outside [p, end) and says when it cannot
 * follow the text (NULL or -1), but it does not validate what it skips: a
 * bad escape, a bad number or a mismatched bracket goes unnoticed.
 */
#ifndef BATON_UTIL_JSCAN_H
#define BATON_UTIL_JSCAN_H

#include <stddef.h>
#include <string.h>

static inline int jscan_is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Returns the first byte at or after p that is not JSON whitespace, or end. */
static inline const char *jscan_ws(const char *p, const char *end) {
  while (p < end && jscan_is_ws(*p)) p++;
  return p;
}

/*
 * p points at a string's opening quote. Returns the byte after its closing
 * quote, or NULL if the string does not end before end. A quote is the
 * closing one when an even number of backslashes precedes it: escapes are
 * pairs, so that is the rule every JSON reader applies. Reads the string
 * with memchr, not byte by byte.
 */
static inline const char *jscan_string(const char *p, const char *end) {
  const char *q = p + 1;
  for (;;) {
    const char *e = memchr(q, '"', (size_t)(end - q));
    if (!e) return NULL;
    const char *b = e;
    while (b > q && b[-1] == '\\') b--; /* q - 1 is a quote, never a backslash */
    if ((e - b) % 2 == 0) return e + 1;
    q = e + 1;
  }
}

/* p points at the first byte of a value. Returns the byte after it, or NULL. */
const char *jscan_value(const char *p, const char *end);

/*
 * Steps to an object's next key: *p starts just after the '{' or after the
 * previous member's value. Returns 1 with [*key, *key + *key_len) the key's
 * text between its quotes (escapes as written) and *p at the value, 0 at the
 * closing '}' (*p then points after it), or -1 if the text cannot be
 * followed. The caller moves *p past the value, e.g. with jscan_value.
 */
int jscan_next_key(const char **p, const char *end, const char **key, size_t *key_len);

/* One member of an object, as text. */
struct jscan_member {
  const char *key; /* between the key's quotes, escapes as written */
  size_t key_len;
  const char *val; /* the value, without the whitespace around it */
  size_t val_len;
};

/*
 * Steps through an object's members: *p starts just after the '{' and moves
 * past one member per call. Returns 1 with *m filled, 0 at the closing '}'
 * (*p then points after it), or -1 if the text cannot be followed.
 */
int jscan_next_member(const char **p, const char *end, struct jscan_member *m);

/* The same for an array's elements: *p starts just after the '['. */
int jscan_next_element(const char **p, const char *end, const char **val, size_t *val_len);

/*
 * Finds the value of the first top-level member named key in the object
 * json, as cJSON_GetObjectItemCaseSensitive would, without building a tree:
 * 1 with [*val, *val + *vlen) the value's text, 0 if there is no such member,
 * -1 if json is not an object this scanner can follow, or if a key before
 * the match holds an escape (it might spell key: the caller then parses the
 * whole text). Reads each byte at most twice.
 */
int jscan_top_member(const char *json, size_t len, const char *key, const char **val,
                     size_t *vlen);

#endif
