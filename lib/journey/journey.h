/*
 * Journey definitions: parsing and validating a journey written in YAML (or
 * JSON) into an immutable struct the engine runs. This module knows nothing
 * of customers or time; versions and runs belong to the engine. The format is
 * documented in docs/journeys.md.
 *
 * A journey has a trigger (an event name), a re-entry rule and a list of
 * steps. Each step runs its action and goes to its `next` step (by id), or by
 * default to the step after it; the end of the list exits the journey.
 */
#ifndef BATON_JOURNEY_JOURNEY_H
#define BATON_JOURNEY_JOURNEY_H

#include <stddef.h>
#include <stdint.h>

#include "config/yaml.h"

#define JOURNEY_MAX_SOURCE (256 * 1024)
#define JOURNEY_MAX_STEPS 1000
#define JOURNEY_MAX_WAIT_MS (366LL * 86400 * 1000)

enum journey_step_type { JSTEP_WAIT, JSTEP_WEBHOOK, JSTEP_EXIT, JSTEP_BRANCH };

struct expr_program;

/* How a customer who was in this journey may enter it again. */
enum journey_reentry {
  JREENTRY_AFTER_EXIT, /* not while in it; again once they have left (default) */
  JREENTRY_NEVER,      /* once per customer, ever */
};

struct journey_header {
  char *name;
  char *value;
};

struct journey_step {
  char *id;
  enum journey_step_type type;
  int next;         /* index of the next step, or -1 to exit */
  int64_t wait_ms;  /* JSTEP_WAIT */
  char *url;        /* JSTEP_WEBHOOK: http:// or https:// */
  struct journey_header *headers; /* JSTEP_WEBHOOK: extra request headers */
  size_t n_headers;
  char *condition;                /* JSTEP_BRANCH: the CEL source */
  struct expr_program *cond;      /* JSTEP_BRANCH: compiled once, at publication */
  int then_step, else_step;       /* JSTEP_BRANCH: where true / false lead (-1: exit) */
};

struct journey_def {
  char *id;
  char *name;
  char *trigger_event;
  enum journey_reentry reentry;
  struct journey_step *steps;
  size_t n_steps;
  char *source;       /* the text it was parsed from (NUL-terminated) */
  size_t source_len;
};

/*
 * Parses and validates a journey. file names the source in errors. If
 * expect_id is not NULL the journey's id must equal it, or the id may be left
 * out and is taken from expect_id. Returns 0 and *out (free with journey_free),
 * BATON_ETOOBIG (over JOURNEY_MAX_SOURCE) or BATON_EINVAL with *err giving
 * file, line, column and a message naming the field.
 */
int journey_parse(const char *text, size_t len, const char *file, const char *expect_id,
                  struct journey_def **out, struct yerr *err);

void journey_free(struct journey_def *j);

/* Returns the index of the step with this id, or -1. */
int journey_step_index(const struct journey_def *j, const char *id);

/* Journey ids: 1-64 characters of [A-Za-z0-9_.-], starting with a letter or digit. */
int journey_id_valid(const char *id);

const char *journey_step_type_name(enum journey_step_type t);

#endif
