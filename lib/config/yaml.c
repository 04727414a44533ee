/* libfyaml helpers with positioned errors; see yaml.h. */
#include "config/yaml.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/common.h"

const char *yerr_format(const struct yerr *e, char *out, size_t cap) {
  if (e->file[0] && e->line)
    snprintf(out, cap, "%s:%d:%d: %s", e->file, e->line, e->col, e->msg);
  else if (e->file[0])
    snprintf(out, cap, "%s: %s", e->file, e->msg);
  else
    snprintf(out, cap, "%s", e->msg);
  return out;
}

static void set_file(struct yerr *err, const char *file) {
  snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
}

struct fy_document *yaml_parse(const char *text, size_t len, const char *file, struct yerr *err) {
  memset(err, 0, sizeof(*err));
  set_file(err, file);
  struct fy_diag_cfg dcfg;
  fy_diag_cfg_default(&dcfg);
  dcfg.fp = NULL;
  dcfg.output_fn = NULL;
  struct fy_diag *diag = fy_diag_create(&dcfg);
  fy_diag_set_collect_errors(diag, true);
  struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET | FYPCF_DEFAULT_PARSE, .diag = diag};
  struct fy_document *doc = fy_document_build_from_string(&cfg, text, len);
  if (!doc || !fy_document_root(doc)) {
    void *it = NULL;
    struct fy_diag_error *de = fy_diag_errors_iterate(diag, &it);
    if (de) {
      err->line = de->line; /* libfyaml's collected errors are 1-based already */
      err->col = de->column;
      snprintf(err->msg, sizeof(err->msg), "invalid YAML: %s", de->msg);
    } else {
      snprintf(err->msg, sizeof(err->msg), doc ? "empty document" : "invalid YAML");
    }
    if (doc) fy_document_destroy(doc);
    doc = NULL;
  }
  fy_diag_destroy(diag);
  return doc;
}

void yaml_node_pos(struct fy_node *node, int *line, int *col) {
  *line = *col = 0;
  if (!node) return;
  struct fy_token *t = NULL;
  if (fy_node_is_scalar(node)) {
    t = fy_node_get_scalar_token(node);
  } else if (fy_node_is_mapping(node)) {
    void *it = NULL;
    struct fy_node_pair *p = fy_node_mapping_iterate(node, &it);
    if (p && fy_node_pair_key(p) && fy_node_is_scalar(fy_node_pair_key(p)))
      t = fy_node_get_scalar_token(fy_node_pair_key(p));
  } else if (fy_node_is_sequence(node)) {
    void *it = NULL;
    struct fy_node *c = fy_node_sequence_iterate(node, &it);
    if (c) {
      yaml_node_pos(c, line, col);
      return;
    }
  }
  if (t) {
    const struct fy_mark *m = fy_token_start_mark(t);
    if (m) {
      *line = m->line + 1;
      *col = m->column + 1;
    }
  }
}

int yaml_fail(struct yerr *err, const char *file, struct fy_node *node, const char *fmt, ...) {
  set_file(err, file);
  yaml_node_pos(node, &err->line, &err->col);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
  va_end(ap);
  return BATON_EINVAL;
}

const char *yaml_str(struct fy_node *node) {
  if (!node || !fy_node_is_scalar(node)) return NULL;
  return fy_node_get_scalar0(node);
}

struct fy_node *yaml_get_key(struct fy_node *map, const char *key) {
  void *it = NULL;
  struct fy_node_pair *p;
  if (!map || !fy_node_is_mapping(map)) return NULL;
  while ((p = fy_node_mapping_iterate(map, &it))) {
    const char *k = yaml_str(fy_node_pair_key(p));
    if (k && !strcmp(k, key)) return fy_node_pair_key(p);
  }
  return NULL;
}

struct fy_node *yaml_get(struct fy_node *map, const char *key) {
  if (!map || !fy_node_is_mapping(map)) return NULL;
  return fy_node_mapping_lookup_by_string(map, key, strlen(key));
}

int yaml_check_keys(struct fy_node *map, const char *const *allowed, const char *file,
                    const char *where, struct yerr *err) {
  void *it = NULL;
  struct fy_node_pair *p;
  while ((p = fy_node_mapping_iterate(map, &it))) {
    struct fy_node *k = fy_node_pair_key(p);
    const char *name = yaml_str(k);
    int ok = 0;
    for (size_t i = 0; name && allowed[i]; i++)
      if (!strcmp(name, allowed[i])) ok = 1;
    if (!ok) {
      char list[256] = "";
      for (size_t i = 0; allowed[i]; i++) {
        if (i) strncat(list, ", ", sizeof(list) - strlen(list) - 1);
        strncat(list, allowed[i], sizeof(list) - strlen(list) - 1);
      }
      return yaml_fail(err, file, k, "%s: unknown field '%s' (expected one of: %s)", where,
                       name ? name : "?", list);
    }
  }
  return 0;
}
