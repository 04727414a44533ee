/*
 * Unit tests for lib/template: the public API's promises (errors with line
 * and column, strict mode, HTML escaping, output cap, Baton's filters, the
 * customer's time zone, content blocks, concurrent renders of one compiled
 * template) and the language cases the golden suite does not cover. The
 * golden suite itself runs in tests/conformance/liquid.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "template/template.h"
#include "template/template_int.h"
#include "util/buf.h"
#include "util/common.h"

struct blocks {
  const char *names[8];
  struct baton_template *t[8];
  size_t n;
};

static int lookup(void *ud, const char *name, size_t len, const struct baton_template **out) {
  struct blocks *b = ud;
  for (size_t i = 0; b && i < b->n; i++)
    if (strlen(b->names[i]) == len && !memcmp(b->names[i], name, len)) {
      *out = b->t[i];
      return 0;
    }
  return BATON_ENOENT;
}

static int track(void *ud, const char *url, size_t len, const char *label, struct buf *out) {
  (void)ud;
  return buf_printf(out, "https://t.baton.example/c?l=%s&u=%.*s", label, (int)len, url);
}

struct run {
  int rc;
  char out[4096];
  char err[512];
};

/* Compiles and renders src with data (JSON text) and options; fills r. */
static struct run render_opts(const char *src, const char *data, const struct template_options *opt,
                              size_t cap, const char *zone, struct blocks *blocks) {
  struct run r = {0};
  struct baton_template *t;
  struct template_error err = {0};
  r.rc = baton_template_compile(src, strlen(src), opt, &t, &err);
  if (r.rc) {
    baton_template_error_format(&err, r.err, sizeof(r.err));
    return r;
  }
  cJSON *vars = data ? cJSON_Parse(data) : NULL;
  assert_true(!data || vars);
  struct buf out;
  buf_init(&out, cap);
  struct template_env env = {.vars = vars, .time_zone = zone, .lookup = lookup, .ud = blocks,
                                   .track_link = track, .now_ms = 1782907200000 /* 2026-07-01T12:00Z */};
  r.rc = baton_template_render(t, &env, &out, &err);
  if (r.rc) baton_template_error_format(&err, r.err, sizeof(r.err));
  snprintf(r.out, sizeof(r.out), "%s", out.ptr ? out.ptr : "");
  buf_release(&out);
  cJSON_Delete(vars);
  baton_template_free(t);
  return r;
}

static struct run render(const char *src, const char *data) {
  return render_opts(src, data, NULL, 0, NULL, NULL);
}

#define ASSERT_RENDERS(src, data, want)                  \
  do {                                                   \
    struct run r_ = render((src), (data));               \
    if (r_.rc) fail_msg("%s: %s", (src), r_.err);        \
    assert_string_equal(r_.out, (want));                 \
  } while (0)

#define ASSERT_FAILS(src, data, code, msg)               \
  do {                                                   \
    struct run r_ = render((src), (data));               \
    assert_int_equal(r_.rc, (code));                     \
    assert_string_equal(r_.err, (msg));                  \
  } while (0)

static void test_basics(void **state) {
  (void)state;
  const char *data = "{\"profile\":{\"first_name\":\"ada\",\"tier\":\"gold\",\"points\":1234,"
                     "\"tags\":[\"vip\",\"eu\"]},\"event\":{\"name\":\"cart_abandoned\"}}";
  ASSERT_RENDERS("Hi {{ profile.first_name | capitalize }}!", data, "Hi Ada!");
  ASSERT_RENDERS("{% if profile.tier == 'gold' and profile.points > 1000 %}G{% else %}N{% endif %}", data,
                 "G");
  ASSERT_RENDERS("{% for t in profile.tags reversed %}{{ forloop.index }}{{ t }}{% endfor %}", data,
                 "1eu2vip");
  ASSERT_RENDERS("{{ profile.missing | default: 'friend' }}", data, "friend");
  ASSERT_RENDERS("{{ profile.tags | json }}", data, "[\"vip\",\"eu\"]");
  ASSERT_RENDERS("{%- assign n = profile.points | divided_by: 10 -%} {{ n }}", data, "123");
  ASSERT_RENDERS("{% case event.name %}{% when 'cart_abandoned' %}cart{% else %}other{% endcase %}",
                 data, "cart");
  ASSERT_RENDERS("{% liquid\n assign x = 3\n echo x | times: 2\n%}", NULL, "6");
  ASSERT_RENDERS("{{ 10 | minus: 0.5 }} {{ 7 | modulo: -3 }} {{ -7 | divided_by: 2 }}", NULL,
                 "9.5 -2 -4");
  ASSERT_RENDERS("{{ 1e2 }}", NULL, "");
  ASSERT_RENDERS("{{ 9223372036854775807 }} {{ 99999999999999999999 }}", NULL,
                 "9223372036854775807 1.0e+20"); /* "1e2" is an identifier in Liquid, not a number */
  /* Floats print as Ruby's Float#to_s: shortest round-trip digits, exponent from 1e16 and below 1e-4. */
  ASSERT_RENDERS("{{ 100.0 }} {{ -0.5 }} {{ 0.00001 | times: 1.0 }} {{ 123456789012345680.0 }} "
                 "{{ 2.857142857142857 }}",
                 NULL, "100.0 -0.5 1.0e-05 1.2345678901234568e+17 2.857142857142857");
  /* Decimal results, as the golden suite expects (liquidjs: 0.30000000000000004). */
  ASSERT_RENDERS("{{ 0.1 | plus: 0.2 }} {{ 19.99 | times: 3 }} {{ 1 | divided_by: 3.0 }}", NULL,
                 "0.3 59.97 0.3333333333333333");
}

static void test_errors_have_positions(void **state) {
  (void)state;
  ASSERT_FAILS("line one\n  {% if x %}", NULL, BATON_EPARSE, "template:2:3: tag 'if' was never closed");
  ASSERT_FAILS("a\nb {{ x | }}", NULL, BATON_EPARSE, "template:2:10: expected a filter name after '|'");
  /* Columns count characters, not bytes. */
  ASSERT_FAILS("héllo {% nosuch %}", NULL, BATON_EPARSE, "template:1:7: unknown tag 'nosuch'");
}

static void test_error_texts(void **state) {
  (void)state;
  /* Exact texts: what a journey author sees at publish time. */
  struct { const char *src, *err; } cases[] = {
      {"{{ x | }}", "template:1:8: expected a filter name after '|'"},
      {"{% nosuch %}", "template:1:1: unknown tag 'nosuch'"},
      {"{% endif %}", "template:1:1: unexpected 'endif'"},
      {"x\n{{ a + 1 }}", "template:2:6: unexpected character '+'"},
      {"{% for x in %}{% endfor %}", "template:1:12: expected a value"},
      {"{{ 'abc }}", "template:1:4: string literal was not closed"},
      {"{{ x ", "template:1:1: output '{{' was not closed"},
      {"{% assign = 1 %}", "template:1:11: expected a variable name after assign"},
      {"{{ 1 | divided_by: 0 }}", "template:1:8: divided by 0"},
      {"{% if 'a' < 1 %}{% endif %}", "template:1:11: cannot compare a string with a number"},
      {"{{ x | truncate: 1, 2, 3 }}", "template:1:8: filter 'truncate' takes 0 to 2 arguments, not 3"},
      {"{% render 'nope' %}", "template:1:1: no content block named 'nope'"},
      {"{% liquid raw %}", "template:1:11: 'raw' cannot be used in a liquid tag"},
      {"{% liquid\necho 1\ndoc %}", "template:3:1: 'doc' cannot be used in a liquid tag"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    struct run r = render(cases[i].src, NULL);
    if (!r.rc) fail_msg("%s: expected an error, got \"%s\"", cases[i].src, r.out);
    assert_string_equal(r.err, cases[i].err);
  }
}

static void test_strict_mode(void **state) {
  (void)state;
  struct template_options strict = {.name = "welcome.liquid", .strict = true};
  struct run r = render_opts("Hi {{ profile.name }}{% assign x = 1 %}{{ x }}{% for i in (1..2) %}{{ i }}"
                             "{{ forloop.index }}{% endfor %}",
                             "{\"profile\":{\"name\":\"A\"}}", &strict, 0, NULL, NULL);
  assert_int_equal(r.rc, 0);
  assert_string_equal(r.out, "Hi A11122");
  r = render_opts("Hello\n  {{ profle.name }}", NULL, &strict, 0, NULL, NULL);
  assert_int_equal(r.rc, BATON_EPARSE);
  assert_string_equal(r.err, "welcome.liquid:2:6: unknown variable 'profle'");
  r = render_opts("{{ profile.name | upcsae }}", NULL, &strict, 0, NULL, NULL);
  assert_int_equal(r.rc, BATON_EPARSE);
  assert_string_equal(r.err, "welcome.liquid:1:19: unknown filter 'upcsae'");
  /* Lax mode renders the same templates: unknown names are nil, unknown filters pass through. */
  ASSERT_RENDERS("[{{ profle.name }}][{{ 'a' | upcsae }}]", NULL, "[][a]");
  const char *const globals[] = {"shop"};
  struct template_options custom = {.strict = true, .globals = globals, .n_globals = 1};
  r = render_opts("{{ shop.name }}", "{\"shop\":{\"name\":\"S\"}}", &custom, 0, NULL, NULL);
  assert_int_equal(r.rc, 0);
  assert_string_equal(r.out, "S");
  r = render_opts("{{ profile.name }}", NULL, &custom, 0, NULL, NULL);
  assert_int_equal(r.rc, BATON_EPARSE);
}

static void test_html_escaping(void **state) {
  (void)state;
  struct template_options email = {.html_escape = true};
  const char *data = "{\"profile\":{\"name\":\"<b>Tom & 'Jerry'</b>\"}}";
  struct run r = render_opts("<p>{{ profile.name }}</p>", data, &email, 0, NULL, NULL);
  assert_string_equal(r.out, "<p>&lt;b&gt;Tom &amp; &#39;Jerry&#39;&lt;/b&gt;</p>");
  /* Already escaped values are not escaped twice; raw and autoescape false opt out. */
  r = render_opts("{{ profile.name | escape }}|{{ profile.name | raw }}|"
                  "{% autoescape false %}{{ profile.name }}{% endautoescape %}|{{ '<' }}",
                  data, &email, 0, NULL, NULL);
  assert_string_equal(r.out, "&lt;b&gt;Tom &amp; &#39;Jerry&#39;&lt;/b&gt;|<b>Tom & 'Jerry'</b>|"
                             "<b>Tom & 'Jerry'</b>|&lt;");
  /* Without the option (SMS, push) nothing is escaped. */
  ASSERT_RENDERS("{{ profile.name }}", data, "<b>Tom & 'Jerry'</b>");
}

static void test_output_cap(void **state) {
  (void)state;
  struct run r = render_opts("{% for i in (1..100) %}0123456789{% endfor %}", NULL, NULL, 64, NULL, NULL);
  assert_int_equal(r.rc, BATON_ETOOBIG);
  assert_string_equal(r.err, "template:1:24: output is over the cap of 64 bytes");
  assert_int_equal(strlen(r.out), 60); /* the output so far stays under the cap */
  r = render_opts("{% for i in (1..6) %}0123456789{% endfor %}", NULL, NULL, 60, NULL, NULL);
  assert_int_equal(r.rc, 0);
  /* Work is bounded too: doubling a string in a loop stops at the cap. */
  r = render_opts("{% assign s = 'ab' %}{% for i in (1..64) %}{% assign s = s | append: s %}{% endfor %}",
                  NULL, NULL, 4096, NULL, NULL);
  assert_int_equal(r.rc, BATON_ETOOBIG);
  r = render_opts("{% for i in (1..999999) %}{% for j in (1..999999) %}{% endfor %}{% endfor %}", NULL,
                  NULL, 0, NULL, NULL);
  assert_int_equal(r.rc, BATON_ETOOBIG);
}

static void test_baton_filters(void **state) {
  (void)state;
  ASSERT_RENDERS("{{ 1234.5 | money: 'EUR' }} {{ 1234567 | money }} {{ 99.999 | money: 'jpy' }} "
                 "{{ -5 | money: 'SEK' }} {{ 3 | money: 'XYZ' }}",
                 NULL, "€1,234.50 $1,234,567.00 ¥100 -5.00 kr 3.00 XYZ");
  /* Half away from zero on the amount as written, not on its binary value (printf says 2.67). */
  ASSERT_RENDERS("{{ 2.675 | money }} {{ -0.001 | money }} {{ 999999.995 | money }}", NULL,
                 "$2.68 $0.00 $1,000,000.00");
  ASSERT_RENDERS("{{ 1 | pluralize: 'item', 'items' }} {{ 3 | pluralize: 'item', 'items' }} "
                 "{{ 0 | pluralize: 'item', 'items' }}",
                 NULL, "item items items");
  ASSERT_RENDERS("{{ 'https://shop.example/cart' | track_link: 'cart' }}", NULL,
                 "https://t.baton.example/c?l=cart&u=https://shop.example/cart");
  ASSERT_FAILS("{{ 1 | money: 'EURO' }}", NULL, BATON_EINVAL,
               "template:1:8: money expects a 3-letter currency code");
}

static void test_dates_and_zones(void **state) {
  (void)state;
  const char *data = "{\"event\":{\"at\":\"2026-07-01T12:00:00Z\",\"ts\":1782907200}}";
  struct run r = render_opts("{{ event.at | date: '%Y-%m-%d %H:%M %Z %z' }}", data, NULL, 0, "Europe/Paris", NULL);
  assert_int_equal(r.rc, 0);
  assert_string_equal(r.out, "2026-07-01 14:00 CEST +0200");
  r = render_opts("{{ event.ts | date: '%a %-d %b %H:%M', 'America/New_York' }}", data, NULL, 0,
                  "Europe/Paris", NULL);
  assert_string_equal(r.out, "Wed 1 Jul 08:00");
  r = render_opts("{{ 'now' | date: '%s' }} {{ event.at | date: '%H:%M' }}", data, NULL, 0, NULL, NULL);
  assert_string_equal(r.out, "1782907200 12:00");
  r = render_opts("{{ 'not a date' | date: '%Y' }}", data, NULL, 0, NULL, NULL);
  assert_string_equal(r.out, "not a date");
  r = render_opts("{{ event.at | date: '%Y', 'Mars/Olympus' }}", data, NULL, 0, NULL, NULL);
  assert_int_equal(r.rc, BATON_EINVAL);
}

static void test_content_blocks(void **state) {
  (void)state;
  struct blocks b = {.n = 2, .names = {"footer", "item"}};
  const char *footer = "-- {{ message.unsubscribe_url }}";
  const char *item = "{{ item.name }}x{{ qty }};";
  assert_int_equal(baton_template_compile(footer, strlen(footer), NULL, &b.t[0], NULL), 0);
  assert_int_equal(baton_template_compile(item, strlen(item), NULL, &b.t[1], NULL), 0);
  const char *data = "{\"message\":{\"unsubscribe_url\":\"https://u\"},\"cart\":[{\"name\":\"a\"},{\"name\":\"b\"}]}";
  struct run r = render_opts("{% render 'item' for cart, qty: 2 %}{% render 'footer' %}", data, NULL, 0, NULL, &b);
  assert_int_equal(r.rc, 0);
  assert_string_equal(r.out, "ax2;bx2;-- https://u");
  /* An error inside a block points into the block, by its name. */
  struct blocks bad = {.n = 1, .names = {"footer"}};
  const char *bad_src = "ok\n{{ 1 | divided_by: 0 }}";
  struct template_options bad_opt = {.name = "footer.liquid"};
  assert_int_equal(baton_template_compile(bad_src, strlen(bad_src), &bad_opt, &bad.t[0], NULL), 0);
  r = render_opts("Hi {% render 'footer' %}", NULL, NULL, 0, NULL, &bad);
  assert_int_equal(r.rc, BATON_ERANGE);
  assert_string_equal(r.err, "footer.liquid:2:8: divided by 0");
  assert_string_equal(r.out, "Hi ok\n");
  baton_template_free(bad.t[0]);
  /* Recursion is bounded. */
  const char *self = "{% include 'self' %}";
  struct blocks loop = {.n = 1, .names = {"self"}};
  assert_int_equal(baton_template_compile(self, strlen(self), NULL, &loop.t[0], NULL), 0);
  r = render_opts(self, NULL, NULL, 0, NULL, &loop);
  assert_int_equal(r.rc, BATON_ETOOBIG);
  baton_template_free(loop.t[0]);
  baton_template_free(b.t[0]);
  baton_template_free(b.t[1]);
}

static void test_filter_table_sorted(void **state) {
  (void)state;
  /* filter_find is a binary search: every entry of filter_list.h must be findable. */
  const char *names[] = {
#define FILTER_DECL(name, fn, lo, hi) #name,
#include "template/filter_list.h"
#undef FILTER_DECL
  };
  for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
    const struct filter_def *d = filter_find(names[i], strlen(names[i]));
    assert_non_null(d);
    assert_string_equal(d->name, names[i]);
    if (i) assert_true(strcmp(names[i - 1], names[i]) < 0);
  }
  assert_null(filter_find("nosuch", 6));
}

struct thread_arg {
  const struct baton_template *t;
  const cJSON *vars;
  const char *want;
  int bad;
};

static void *render_many(void *p) {
  struct thread_arg *a = p;
  struct buf out;
  buf_init(&out, 1 << 16);
  for (int i = 0; i < 2000; i++) {
    buf_clear(&out);
    struct template_env env = {.vars = a->vars};
    if (baton_template_render(a->t, &env, &out, NULL) || strcmp(out.ptr, a->want)) a->bad++;
  }
  buf_release(&out);
  return NULL;
}

static void test_concurrent_renders(void **state) {
  (void)state;
  const char *src = "{% assign total = 0 %}{% for i in items %}{% assign total = total | plus: i %}"
                    "{% cycle 'a', 'b' %}{% increment n %}{% endfor %}={{ total }}";
  struct baton_template *t;
  assert_int_equal(baton_template_compile(src, strlen(src), NULL, &t, NULL), 0);
  cJSON *v1 = cJSON_Parse("{\"items\":[1,2,3]}"), *v2 = cJSON_Parse("{\"items\":[10,20]}");
  struct thread_arg args[4] = {{t, v1, "a0b1a2=6", 0}, {t, v2, "a0b1=30", 0}, {t, v1, "a0b1a2=6", 0},
                               {t, v2, "a0b1=30", 0}};
  pthread_t th[4];
  for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, render_many, &args[i]);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < 4; i++) assert_int_equal(args[i].bad, 0);
  cJSON_Delete(v1), cJSON_Delete(v2);
  baton_template_free(t);
}

/*
 * The examples in docs/templates.md run here: a ```liquid block followed by
 * "renders" and a ```text block must render exactly that text (final newline
 * of each block excluded), with the data of the last <!-- data: --> comment.
 */
static void test_doc_examples(void **state) {
  (void)state;
  const char *root = getenv("BATON_SOURCE_DIR");
  char path[4096];
  snprintf(path, sizeof(path), "%s/docs/templates.md", root ? root : ".");
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s (set BATON_SOURCE_DIR)", path);
  static char doc[1 << 17];
  size_t n = fread(doc, 1, sizeof(doc) - 1, f);
  fclose(f);
  doc[n] = 0;
  int examples = 0;
  char data[2048] = "";
  for (const char *p = doc; (p = strstr(p, "```liquid\n"));) {
    const char *d = doc, *prev = NULL;
    while ((d = strstr(d, "<!-- data: ")) && d < p) prev = d, d++;
    if (prev) {
      const char *e = strstr(prev, " -->");
      snprintf(data, sizeof(data), "%.*s", (int)(e - prev - 11), prev + 11);
    }
    const char *src = p + 10, *src_end = strstr(src, "\n```\n");
    assert_non_null(src_end);
    const char *want = src_end + 5;
    if (strncmp(want, "renders\n```text\n", 16)) {
      p = src_end;
      continue;
    }
    want += 16;
    const char *want_end = strstr(want, "\n```");
    char tpl[2048], expect[2048];
    snprintf(tpl, sizeof(tpl), "%.*s", (int)(src_end - src), src);
    snprintf(expect, sizeof(expect), "%.*s", (int)(want_end - want), want);
    struct run r = render_opts(tpl, *data ? data : NULL, NULL, 0, "Europe/Paris", NULL);
    if (r.rc) fail_msg("docs example failed: %s\n%s", r.err, tpl);
    if (strcmp(r.out, expect)) fail_msg("docs example:\n%s\nrenders\n%s\nnot\n%s", tpl, r.out, expect);
    examples++;
    p = want_end;
  }
  assert_true(examples >= 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_basics),
      cmocka_unit_test(test_errors_have_positions),
      cmocka_unit_test(test_error_texts),
      cmocka_unit_test(test_strict_mode),
      cmocka_unit_test(test_html_escaping),
      cmocka_unit_test(test_output_cap),
      cmocka_unit_test(test_baton_filters),
      cmocka_unit_test(test_dates_and_zones),
      cmocka_unit_test(test_content_blocks),
      cmocka_unit_test(test_filter_table_sorted),
      cmocka_unit_test(test_concurrent_renders),
      cmocka_unit_test(test_doc_examples),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
