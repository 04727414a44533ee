/* Journey parsing and validation; see journey.h and docs/journeys.md. */
#include "journey/journey.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "expr/expr.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/common.h"

const char *journey_step_type_name(enum journey_step_type t) {
  switch (t) {
    case JSTEP_WAIT: return "wait";
    case JSTEP_WEBHOOK: return "webhook";
    case JSTEP_EXIT: return "exit";
    case JSTEP_BRANCH: return "branch";
  }
  return "?";
}

int journey_id_valid(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > 64 || !isalnum((unsigned char)id[0])) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)id[i]) && id[i] != '_' && id[i] != '-' && id[i] != '.') return 0;
  return 1;
}

void journey_free(struct journey_def *j) {
  if (!j) return;
  for (size_t i = 0; i < j->n_steps; i++) {
    struct journey_step *s = &j->steps[i];
    free(s->id);
    free(s->url);
    free(s->condition);
    if (s->cond) baton_expr_program_free(s->cond);
    for (size_t h = 0; h < s->n_headers; h++) {
      free(s->headers[h].name);
      free(s->headers[h].value);
    }
    free(s->headers);
  }
  free(j->steps);
  free(j->id);
  free(j->name);
  free(j->trigger_event);
  free(j->source);
  free(j);
}

int journey_step_index(const struct journey_def *j, const char *id) {
  for (size_t i = 0; i < j->n_steps; i++)
    if (!strcmp(j->steps[i].id, id)) return (int)i;
  return -1;
}

static int header_name_ok(const char *s) {
  if (!*s || strlen(s) > 128) return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_') return 0;
  return 1;
}

static int header_value_ok(const char *s) {
  if (strlen(s) > 4096) return 0;
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f) return 0;
  return 1;
}

/* The environment conditions compile against: profile, event, context. */
static struct expr_env *cond_env;
static pthread_once_t cond_env_once = PTHREAD_ONCE_INIT;
static void cond_env_init(void) { cond_env = baton_expr_env_new_default(); }

static int parse_step(struct fy_node *n, size_t idx, const char *file, struct journey_step *s,
                      struct yerr *err) {
  static const char *const keys[] = {"id",      "type", "next", "duration", "url",
                                     "headers", "condition", "then", "else", NULL};
  char where[96];
  if (!fy_node_is_mapping(n))
    return yaml_fail(err, file, n, "steps[%zu]: expected a mapping with id and type", idx);
  const char *id = yaml_str(yaml_get(n, "id"));
  if (!id || !journey_id_valid(id))
    return yaml_fail(err, file, yaml_get(n, "id") ? yaml_get(n, "id") : n,
                     "steps[%zu].id: required, 1-64 characters of letters, digits, _ . -", idx);
  s->id = xstrdup(id);
  snprintf(where, sizeof(where), "steps.%s", id);
  if (yaml_check_keys(n, keys, file, where, err)) return BATON_EINVAL;
  struct fy_node *tn = yaml_get(n, "type");
  const char *type = yaml_str(tn);
  if (!type) return yaml_fail(err, file, n, "%s.type: required (wait, webhook or exit)", where);
  if (!strcmp(type, "wait")) {
    s->type = JSTEP_WAIT;
    struct fy_node *d = yaml_get(n, "duration");
    const char *ds = yaml_str(d);
    if (!ds) return yaml_fail(err, file, n, "%s.duration: required for a wait step", where);
    if (clock_parse_duration(ds, &s->wait_ms) || s->wait_ms <= 0 ||
        s->wait_ms > JOURNEY_MAX_WAIT_MS)
      return yaml_fail(err, file, d,
                       "%s.duration: '%s' is not a duration from 1ms to 366d (e.g. 30s, 2h, 3d)",
                       where, ds);
  } else if (!strcmp(type, "webhook")) {
    s->type = JSTEP_WEBHOOK;
    struct fy_node *u = yaml_get(n, "url");
    const char *url = yaml_str(u);
    if (!url) return yaml_fail(err, file, n, "%s.url: required for a webhook step", where);
    if ((strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) || strlen(url) > 2048 ||
        strchr(url, ' ') || strlen(url) < 10)
      return yaml_fail(err, file, u, "%s.url: expected an http:// or https:// URL", where);
    s->url = xstrdup(url);
    struct fy_node *h = yaml_get(n, "headers");
    if (h) {
      if (!fy_node_is_mapping(h))
        return yaml_fail(err, file, h, "%s.headers: expected a mapping of name: value", where);
      void *it = NULL;
      struct fy_node_pair *p;
      while ((p = fy_node_mapping_iterate(h, &it))) {
        const char *hn = yaml_str(fy_node_pair_key(p));
        const char *hv = yaml_str(fy_node_pair_value(p));
        if (!hn || !header_name_ok(hn))
          return yaml_fail(err, file, fy_node_pair_key(p), "%s.headers: invalid header name",
                           where);
        if (!hv || !header_value_ok(hv))
          return yaml_fail(err, file, fy_node_pair_value(p),
                           "%s.headers.%s: expected a string without control characters", where,
                           hn);
        s->headers = xrealloc(s->headers, (s->n_headers + 1) * sizeof(*s->headers));
        s->headers[s->n_headers].name = xstrdup(hn);
        s->headers[s->n_headers].value = xstrdup(hv);
        s->n_headers++;
      }
    }
  } else if (!strcmp(type, "exit")) {
    s->type = JSTEP_EXIT;
  } else if (!strcmp(type, "branch")) {
    s->type = JSTEP_BRANCH;
    struct fy_node *cn = yaml_get(n, "condition");
    const char *src = yaml_str(cn);
    if (!src || !*src)
      return yaml_fail(err, file, cn ? cn : n,
                       "%s.condition: required for a branch step, a condition such as "
                       "'openCases(\"billing_dispute\") == 0'",
                       where);
    if (!yaml_get(n, "then") && !yaml_get(n, "else"))
      return yaml_fail(err, file, n, "%s: a branch step needs then, else, or both", where);
    pthread_once(&cond_env_once, cond_env_init);
    struct expr_diag diag;
    if (baton_expr_compile(cond_env, src, strlen(src), 0, &s->cond, &diag)) {
      s->cond = NULL;
      return yaml_fail(err, file, cn, "%s.condition: %s (at column %u of the condition)", where,
                       diag.msg, diag.col);
    }
    s->condition = xstrdup(src);
  } else {
    return yaml_fail(err, file, tn,
                     "%s.type: unknown step type '%s' (expected wait, webhook, branch, exit)",
                     where, type);
  }
  if (s->type != JSTEP_BRANCH &&
      (yaml_get(n, "condition") || yaml_get(n, "then") || yaml_get(n, "else")))
    return yaml_fail(err, file, n, "%s: only branch steps take condition, then and else", where);
  if (s->type == JSTEP_BRANCH && yaml_get(n, "next"))
    return yaml_fail(err, file, yaml_get(n, "next"),
                     "%s.next: a branch step goes to then or else, not next", where);
  if (s->type != JSTEP_WAIT && yaml_get(n, "duration"))
    return yaml_fail(err, file, yaml_get(n, "duration"),
                     "%s.duration: only wait steps take a duration", where);
  if (s->type != JSTEP_WEBHOOK && (yaml_get(n, "url") || yaml_get(n, "headers")))
    return yaml_fail(err, file, yaml_get(n, "url") ? yaml_get(n, "url") : yaml_get(n, "headers"),
                     "%s: only webhook steps take url and headers", where);
  return 0;
}

/* Every cycle in the step graph must pass through a wait, or a customer would
   loop forever within one event. Depth-first search over the non-wait steps
   (a branch has two successors); returns a step on such a cycle, or -1. */
static int dfs_cycle(const struct journey_def *j, int at, unsigned char *mark) {
  if (at < 0 || j->steps[at].type == JSTEP_WAIT) return -1;
  if (mark[at] == 1) return at; /* on the current path: a cycle */
  if (mark[at] == 2) return -1;
  mark[at] = 1;
  const struct journey_step *s = &j->steps[at];
  int succ[2] = {s->type == JSTEP_BRANCH ? s->then_step : s->next,
                 s->type == JSTEP_BRANCH ? s->else_step : -1};
  for (int k = 0; k < 2; k++) {
    int c = dfs_cycle(j, succ[k], mark);
    if (c >= 0) return c;
  }
  mark[at] = 2;
  return -1;
}

static int find_instant_cycle(const struct journey_def *j) {
  unsigned char *mark = xcalloc(j->n_steps, 1);
  int c = -1;
  for (size_t i = 0; i < j->n_steps && c < 0; i++) c = dfs_cycle(j, (int)i, mark);
  free(mark);
  return c;
}

static int parse_doc(struct fy_node *root, const char *file, const char *expect_id,
                     struct journey_def *j, struct yerr *err) {
  static const char *const keys[] = {"id", "name", "trigger", "reentry", "steps", NULL};
  if (!fy_node_is_mapping(root))
    return yaml_fail(err, file, root, "a journey is a mapping with id, trigger and steps");
  if (yaml_check_keys(root, keys, file, "journey", err)) return BATON_EINVAL;
  struct fy_node *idn = yaml_get(root, "id");
  const char *id = yaml_str(idn);
  if (idn && (!id || !journey_id_valid(id)))
    return yaml_fail(err, file, idn, "id: 1-64 characters of letters, digits, _ . -");
  if (!id && !expect_id) return yaml_fail(err, file, root, "id: required");
  if (id && expect_id && strcmp(id, expect_id))
    return yaml_fail(err, file, idn, "id: '%s' does not match the id in the URL ('%s')", id,
                     expect_id);
  j->id = xstrdup(id ? id : expect_id);
  if (!journey_id_valid(j->id)) return yaml_fail(err, file, root, "id: invalid journey id");
  const char *name = yaml_str(yaml_get(root, "name"));
  j->name = xstrdup(name ? name : j->id);
  struct fy_node *tr = yaml_get(root, "trigger");
  if (!tr) return yaml_fail(err, file, root, "trigger: required (trigger: {event: NAME})");
  static const char *const tkeys[] = {"event", NULL};
  if (!fy_node_is_mapping(tr))
    return yaml_fail(err, file, tr, "trigger: expected a mapping such as {event: Signed Up}");
  if (yaml_check_keys(tr, tkeys, file, "trigger", err)) return BATON_EINVAL;
  const char *ev = yaml_str(yaml_get(tr, "event"));
  if (!ev || !*ev || strlen(ev) > 256)
    return yaml_fail(err, file, tr, "trigger.event: required, an event name of 1-256 characters");
  j->trigger_event = xstrdup(ev);
  struct fy_node *re = yaml_get(root, "reentry");
  if (re) {
    const char *r = yaml_str(re);
    if (r && !strcmp(r, "after_exit"))
      j->reentry = JREENTRY_AFTER_EXIT;
    else if (r && !strcmp(r, "never"))
      j->reentry = JREENTRY_NEVER;
    else
      return yaml_fail(err, file, re, "reentry: expected after_exit or never");
  }
  struct fy_node *steps = yaml_get(root, "steps");
  if (!steps || !fy_node_is_sequence(steps) || fy_node_sequence_item_count(steps) == 0)
    return yaml_fail(err, file, steps ? yaml_get_key(root, "steps") : root,
                     "steps: required, a non-empty list");
  int count = fy_node_sequence_item_count(steps);
  if (count > JOURNEY_MAX_STEPS)
    return yaml_fail(err, file, steps, "steps: at most %d steps", JOURNEY_MAX_STEPS);
  j->steps = xcalloc((size_t)count, sizeof(*j->steps));
  void *it = NULL;
  struct fy_node *sn;
  while ((sn = fy_node_sequence_iterate(steps, &it))) {
    if (parse_step(sn, j->n_steps, file, &j->steps[j->n_steps], err)) {
      j->n_steps++; /* so journey_free releases the partly filled step */
      return BATON_EINVAL;
    }
    j->n_steps++;
    for (size_t k = 0; k + 1 < j->n_steps; k++)
      if (!strcmp(j->steps[k].id, j->steps[j->n_steps - 1].id))
        return yaml_fail(err, file, yaml_get(sn, "id"), "steps.%s: duplicate step id",
                         j->steps[k].id);
  }
  /* Resolve next links in a second pass: a step may name one defined after it. */
  it = NULL;
  for (size_t i = 0; (sn = fy_node_sequence_iterate(steps, &it)); i++) {
    struct journey_step *s = &j->steps[i];
    struct fy_node *nx = yaml_get(sn, "next");
    if (s->type == JSTEP_EXIT) {
      if (nx) return yaml_fail(err, file, nx, "steps.%s.next: an exit step has no next", s->id);
      s->next = -1;
      continue;
    }
    int follow = i + 1 < j->n_steps ? (int)i + 1 : -1;
    if (s->type == JSTEP_BRANCH) {
      const char *names[2] = {"then", "else"};
      int *dst[2] = {&s->then_step, &s->else_step};
      for (int k = 0; k < 2; k++) {
        struct fy_node *tn = yaml_get(sn, names[k]);
        const char *target = yaml_str(tn);
        *dst[k] = tn ? (target ? journey_step_index(j, target) : -1) : follow;
        if (tn && *dst[k] < 0)
          return yaml_fail(err, file, tn, "steps.%s.%s: no step has id '%s'", s->id, names[k],
                           target ? target : "?");
      }
      s->next = follow;
      continue;
    }
    if (!nx) {
      s->next = follow;
      continue;
    }
    const char *target = yaml_str(nx);
    s->next = target ? journey_step_index(j, target) : -1;
    if (s->next < 0)
      return yaml_fail(err, file, nx, "steps.%s.next: no step has id '%s'", s->id,
                       target ? target : "?");
  }
  int c = find_instant_cycle(j);
  if (c >= 0)
    return yaml_fail(err, file, steps,
                     "steps.%s: its next links form a loop without a wait step", j->steps[c].id);
  return 0;
}

int journey_parse(const char *text, size_t len, const char *file, const char *expect_id,
                  struct journey_def **out, struct yerr *err) {
  memset(err, 0, sizeof(*err));
  snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
  if (len > JOURNEY_MAX_SOURCE) {
    snprintf(err->msg, sizeof(err->msg), "journey source is over %d bytes", JOURNEY_MAX_SOURCE);
    return BATON_ETOOBIG;
  }
  if (!baton_utf8_valid(text, len) || memchr(text, '\0', len)) {
    snprintf(err->msg, sizeof(err->msg), "journey source is not valid UTF-8 text");
    return BATON_EINVAL;
  }
  struct fy_document *doc = yaml_parse(text, len, file, err);
  if (!doc) return BATON_EINVAL;
  struct journey_def *j = xcalloc(1, sizeof(*j));
  int rc = parse_doc(fy_document_root(doc), file, expect_id, j, err);
  fy_document_destroy(doc);
  if (rc) {
    journey_free(j);
    return rc;
  }
  j->source = xstrndup(text, len);
  j->source_len = len;
  *out = j;
  return 0;
}
