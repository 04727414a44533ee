/* Protobuf text format reader for the conformance runner; see textproto.h. */
#include "textproto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"

struct tp {
  const char *s;
  size_t n, i;
  char *err;
  size_t errlen;
};

static void skip_ws(struct tp *p) {
  for (;;) {
    while (p->i < p->n && strchr(" \t\r\n,;", p->s[p->i])) p->i++;
    if (p->i < p->n && p->s[p->i] == '#') {
      while (p->i < p->n && p->s[p->i] != '\n') p->i++;
      continue;
    }
    return;
  }
}

static int fail(struct tp *p, const char *msg) {
  int line = 1;
  for (size_t k = 0; k < p->i && k < p->n; k++) line += p->s[k] == '\n';
  snprintf(p->err, p->errlen, "line %d: %s", line, msg);
  return -1;
}

/* Appends the decoded contents of one quoted string at p->i to out. */
static int read_string(struct tp *p, char **out, size_t *len, size_t *cap) {
  char q = p->s[p->i++];
  while (p->i < p->n && p->s[p->i] != q) {
    if (*len + 8 >= *cap) {
      *cap = *cap * 2 + 64;
      *out = xrealloc(*out, *cap);
    }
    char c = p->s[p->i++];
    if (c != '\\') {
      (*out)[(*len)++] = c;
      continue;
    }
    if (p->i >= p->n) return fail(p, "bad escape");
    c = p->s[p->i++];
    switch (c) {
      case 'n':
        (*out)[(*len)++] = '\n';
        break;
      case 't':
        (*out)[(*len)++] = '\t';
        break;
      case 'r':
        (*out)[(*len)++] = '\r';
        break;
      case 'a':
        (*out)[(*len)++] = '\a';
        break;
      case 'b':
        (*out)[(*len)++] = '\b';
        break;
      case 'f':
        (*out)[(*len)++] = '\f';
        break;
      case 'v':
        (*out)[(*len)++] = '\v';
        break;
      case 'x': {
        unsigned v = 0;
        int k = 0;
        while (k < 2 && p->i < p->n && strchr("0123456789abcdefABCDEF", p->s[p->i])) {
          char h = p->s[p->i++];
          v = v * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 32) - 'a' + 10);
          k++;
        }
        (*out)[(*len)++] = (char)v;
        break;
      }
      case 'u':
      case 'U': {
        unsigned v = 0;
        for (int k = 0; k < (c == 'u' ? 4 : 8) && p->i < p->n; k++) {
          char h = p->s[p->i++];
          v = v * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 32) - 'a' + 10);
        }
        char *o = *out + *len;
        if (v < 0x80) {
          o[0] = (char)v, *len += 1;
        } else if (v < 0x800) {
          o[0] = (char)(0xC0 | (v >> 6)), o[1] = (char)(0x80 | (v & 0x3F)), *len += 2;
        } else if (v < 0x10000) {
          o[0] = (char)(0xE0 | (v >> 12)), o[1] = (char)(0x80 | ((v >> 6) & 0x3F));
          o[2] = (char)(0x80 | (v & 0x3F)), *len += 3;
        } else {
          o[0] = (char)(0xF0 | (v >> 18)), o[1] = (char)(0x80 | ((v >> 12) & 0x3F));
          o[2] = (char)(0x80 | ((v >> 6) & 0x3F)), o[3] = (char)(0x80 | (v & 0x3F)), *len += 4;
        }
        break;
      }
      default:
        if (c >= '0' && c <= '7') {
          unsigned v = (unsigned)(c - '0');
          for (int k = 0; k < 2 && p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '7'; k++)
            v = v * 8 + (unsigned)(p->s[p->i++] - '0');
          (*out)[(*len)++] = (char)v;
        } else {
          (*out)[(*len)++] = c; /* \\ \" \' \? */
        }
    }
  }
  if (p->i >= p->n) return fail(p, "unterminated string");
  p->i++;
  return 0;
}

static int parse_fields(struct tp *p, struct tp_node *msg, char close);

static int parse_field(struct tp *p, struct tp_node **out) {
  size_t start = p->i;
  struct tp_node *n = xcalloc(1, sizeof(*n));
  *out = n;
  n->src_off = start;
  if (p->s[p->i] == '[') {
    size_t e = p->i;
    while (e < p->n && p->s[e] != ']') e++;
    if (e >= p->n) return fail(p, "unterminated extension name");
    n->name = xstrndup(p->s + p->i + 1, e - p->i - 1);
    p->i = e + 1;
  } else {
    size_t e = p->i;
    while (e < p->n && (strchr("_.", p->s[e]) || (p->s[e] >= 'a' && p->s[e] <= 'z') ||
                        (p->s[e] >= 'A' && p->s[e] <= 'Z') || (p->s[e] >= '0' && p->s[e] <= '9')))
      e++;
    if (e == p->i) return fail(p, "expected a field name");
    n->name = xstrndup(p->s + p->i, e - p->i);
    p->i = e;
  }
  skip_ws(p);
  bool colon = false;
  if (p->i < p->n && p->s[p->i] == ':') {
    p->i++;
    colon = true;
    skip_ws(p);
  }
  if (p->i >= p->n) return fail(p, "unexpected end");
  char c = p->s[p->i];
  if (c == '{' || c == '<') {
    p->i++;
    int rc = parse_fields(p, n, c == '{' ? '}' : '>');
    n->src_end = p->i;
    return rc;
  }
  if (!colon) return fail(p, "expected ':'");
  if (c == '"' || c == '\'') {
    size_t len = 0, cap = 64;
    char *buf = xmalloc(cap);
    while (p->i < p->n && (p->s[p->i] == '"' || p->s[p->i] == '\'')) {
      if (read_string(p, &buf, &len, &cap)) {
        free(buf);
        return -1;
      }
      /* Adjacent strings concatenate, across whitespace and comments. */
      size_t save = p->i;
      while (p->i < p->n && strchr(" \t\r\n", p->s[p->i])) p->i++;
      if (p->i < p->n && p->s[p->i] == '#') {
        skip_ws(p);
      }
      if (!(p->i < p->n && (p->s[p->i] == '"' || p->s[p->i] == '\''))) p->i = save;
    }
    buf[len] = 0;
    n->scalar = buf;
    n->scalar_len = len;
    n->is_string = 1;
  } else {
    size_t e = p->i;
    while (e < p->n && !strchr(" \t\r\n,;}>#", p->s[e])) e++;
    n->scalar = xstrndup(p->s + p->i, e - p->i);
    n->scalar_len = e - p->i;
    p->i = e;
  }
  n->src_end = p->i;
  return 0;
}

static int parse_fields(struct tp *p, struct tp_node *msg, char close) {
  struct tp_node **tail = &msg->child;
  for (;;) {
    skip_ws(p);
    if (p->i >= p->n) {
      if (close) return fail(p, "unexpected end of input");
      return 0;
    }
    if (close && p->s[p->i] == close) {
      p->i++;
      return 0;
    }
    struct tp_node *f = NULL;
    int rc = parse_field(p, &f);
    *tail = f;
    tail = &f->next;
    if (rc) return rc;
  }
}

struct tp_node *tp_parse(const char *text, size_t len, char *err, size_t errlen) {
  struct tp p = {text, len, 0, err, errlen};
  struct tp_node *root = xcalloc(1, sizeof(*root));
  if (parse_fields(&p, root, 0)) {
    tp_free(root);
    return NULL;
  }
  return root;
}

void tp_free(struct tp_node *n) {
  while (n) {
    struct tp_node *next = n->next;
    tp_free(n->child);
    free(n->name);
    free(n->scalar);
    free(n);
    n = next;
  }
}

struct tp_node *tp_get(const struct tp_node *msg, const char *name) {
  for (struct tp_node *c = msg ? msg->child : NULL; c; c = c->next)
    if (!strcmp(c->name, name)) return c;
  return NULL;
}

struct tp_node *tp_next_named(const struct tp_node *n, const char *name) {
  for (struct tp_node *c = n->next; c; c = c->next)
    if (!strcmp(c->name, name)) return c;
  return NULL;
}
