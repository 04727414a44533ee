/*
 * Thin helpers over libfyaml for Baton's YAML (and JSON) inputs: parse a
 * document with libfyaml's diagnostics collected rather than printed, and
 * report validation errors as values with file, line and column (1-based),
 * so every loader says "journey.yaml:12:7: wait.duration: ..." the same way.
 */
#ifndef BATON_CONFIG_YAML_H
#define BATON_CONFIG_YAML_H

#include <libfyaml.h>
#include <stddef.h>

struct yerr {
  char file[256];
  int line, col; /* 1-based; 0 when unknown */
  char msg[512];
};

/* Formats e as "file:line:col: msg" (or without the parts that are unknown). */
const char *yerr_format(const struct yerr *e, char *out, size_t cap);

/*
 * Parses text (YAML 1.2, which includes JSON) into a document. Returns the
 * document (free with fy_document_destroy) or NULL with *err filled. The
 * document refers to text without copying it: text must outlive it.
 */
struct fy_document *yaml_parse(const char *text, size_t len, const char *file, struct yerr *err);

/* Fills *err with node's position and the printf-style message; returns BATON_EINVAL. */
int yaml_fail(struct yerr *err, const char *file, struct fy_node *node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Node position, 1-based (0, 0 if unknown). */
void yaml_node_pos(struct fy_node *node, int *line, int *col);

/* The scalar text of node as a NUL-terminated string, or NULL if node is not a scalar. */
const char *yaml_str(struct fy_node *node);

/* The value under key in mapping node, or NULL (also when node is not a mapping). */
struct fy_node *yaml_get(struct fy_node *map, const char *key);

/* The key node itself (for error positions when the value has none, e.g. []). */
struct fy_node *yaml_get_key(struct fy_node *map, const char *key);

/*
 * Checks that every key of mapping node is one of the NULL-terminated allowed
 * list; returns 0 or fails with "unknown field 'x' (expected one of ...)".
 */
int yaml_check_keys(struct fy_node *map, const char *const *allowed, const char *file,
                    const char *where, struct yerr *err);

#endif
