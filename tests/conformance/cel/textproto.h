/*
 * A small reader for protobuf text format, enough for the CEL conformance
 * files: fields with scalar values (strings with C escapes and adjacent
 * concatenation, numbers, identifiers) or nested messages ({...} or <...>),
 * extension names in brackets, # comments. It builds a tree; it knows
 * nothing of the schema.
 */
#ifndef BATON_TESTS_TEXTPROTO_H
#define BATON_TESTS_TEXTPROTO_H

#include <stddef.h>

struct tp_node {
  char *name;
  char *scalar;      /* decoded string or token text; NULL for a message */
  size_t scalar_len;
  int is_string;     /* the scalar was a quoted string */
  struct tp_node *child, *next; /* first child; next sibling */
  size_t src_off, src_end;      /* the node's text in the file */
};

/* Parses text; returns the root (a message holding the top-level fields) or
 * NULL with a message in err. */
struct tp_node *tp_parse(const char *text, size_t len, char *err, size_t errlen);
void tp_free(struct tp_node *n);
/* The first child named name, or NULL; tp_next_named continues after n. */
struct tp_node *tp_get(const struct tp_node *msg, const char *name);
struct tp_node *tp_next_named(const struct tp_node *n, const char *name);

#endif
