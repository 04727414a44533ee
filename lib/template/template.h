/*
 * Liquid templates for personalised messages (capability C6): email subject
 * and body, SMS, push, webhook bodies, in-app cards and task text. A template
 * is compiled once, when a journey is published, into an immutable resolved
 * tree; rendering it many times, from any number of threads at once, never
 * re-parses the source. Data comes in as one cJSON object whose members are
 * the top-level variables (profile, event, journey, message, offer). Output
 * goes to a capped struct buf, so no template can produce more than the cap.
 *
 * This header is the whole public surface; template_int.h is the module's own.
 * The language as implemented is documented in docs/templates.md.
 */
#ifndef BATON_TEMPLATE_TEMPLATE_H
#define BATON_TEMPLATE_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "util/buf.h"

/* A compiled template: opaque and immutable once baton_template_compile returns. */
struct baton_template;

/*
 * An error meant for people: what went wrong and where. line and col are
 * 1-based positions in the template named file, in characters (0 when there is
 * no position, e.g. a source over the size limit). code is the BATON_E* value
 * the call returned.
 */
struct template_error {
  int code;
  char file[64];
  int line;
  int col;
  char msg[192];
};

/*
 * Formats err as "file:line:col: msg" (or "file: msg" without a position)
 * into out (size bytes, always NUL-terminated). Returns out.
 */
char *baton_template_error_format(const struct template_error *err, char *out, size_t size);

struct template_options {
  /* Name used in error messages ("welcome.liquid"); NULL means "template". */
  const char *name;
  /*
   * Strict mode, used at publish time: a template that names a top-level
   * variable that is neither in globals nor bound by the template itself
   * (assign, capture, for, increment, ...), or a filter Baton does not know,
   * is rejected with the position of the name.
   */
  bool strict;
  /*
   * Top-level variables a strict template may name. NULL means Baton's
   * defaults: profile, event, journey, message, offer.
   */
  const char *const *globals;
  size_t n_globals;
  /*
   * HTML-escape the result of every {{ }} and echo (email bodies). A value
   * that went through escape, escape_once or raw, and text inside
   * {% autoescape false %} ... {% endautoescape %}, is written as is.
   */
  bool html_escape;
};

/*
 * Compiles src[0, len) (need not be NUL-terminated; the template keeps its
 * own copy). opt may be NULL for defaults (lax, no escaping). On success
 * returns 0 and *out, which the caller frees with baton_template_free. On
 * failure returns BATON_EPARSE (syntax error, unknown tag, or in strict mode
 * an unknown variable or filter) or BATON_ETOOBIG (source over 1 MiB or
 * nesting deeper than 100 blocks), fills *err if err is not NULL, and leaves
 * *out NULL. Thread-safe: compiles share nothing.
 */
int baton_template_compile(const char *src, size_t len, const struct template_options *opt,
                           struct baton_template **out, struct template_error *err);

/* Frees a compiled template (NULL is allowed). No render may be using it. */
void baton_template_free(struct baton_template *t);

/*
 * Looks up a content block by name for {% render %} and {% include %}. On
 * success sets *out to a compiled template that stays valid and unchanged
 * until the render that asked for it returns, and returns 0; returns
 * BATON_ENOENT if there is no such block. Called from the rendering thread.
 */
typedef int (*baton_template_lookup_fn)(void *ud, const char *name, size_t len,
                                        const struct baton_template **out);

/*
 * Rewrites a link for click tracking (the track_link filter). Appends the
 * tracked URL for url[0, len) to out (a capped buffer; the filter hands over
 * a fresh one) and returns 0, or a negative BATON_E* code that fails the
 * render. label is the filter's optional argument ("" if none).
 */
typedef int (*baton_template_link_fn)(void *ud, const char *url, size_t len, const char *label,
                                      struct buf *out);

/* Everything one render needs besides the template. Zero it, then set fields. */
struct template_env {
  const cJSON *vars;           /* object of top-level variables; NULL means none */
  const char *time_zone;       /* zone for the date filter; NULL means UTC */
  int64_t now_ms;              /* the instant "now" and "today" mean; 0 means the clock */
  baton_template_lookup_fn lookup; /* NULL: render/include fail with "not found" */
  baton_template_link_fn track_link; /* NULL: track_link returns the URL unchanged */
  void *ud;                    /* passed to lookup and track_link */
};

/*
 * Renders t with env, appending to out. The cap of the output is out's own
 * max (set with buf_init): a render that would pass it stops and returns
 * BATON_ETOOBIG. Returns 0, or a negative code with *err filled (if not NULL):
 * BATON_ETOOBIG (output cap, or more than 1,000,000 loop iterations or
 * include depth over 64), BATON_ETYPE (e.g. comparing a string with a
 * number, a filter given the wrong type), BATON_ERANGE (division by zero),
 * BATON_ENOENT (missing content block), or what a callback returned. On error
 * out holds the output so far. t is only read, so any number of threads may
 * render the same template at once; env->vars must not change meanwhile.
 */
int baton_template_render(const struct baton_template *t, const struct template_env *env,
                          struct buf *out, struct template_error *err);

#endif
