/* Unit tests for configuration loading: the example file, every section, and positioned errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/config.h"
#include "util/common.h"

static char path[64];

static void write_config(const char *text) {
  snprintf(path, sizeof(path), "/tmp/baton-cfg-%d.yaml", (int)getpid());
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void test_example(void **state) {
  (void)state;
  char p[4096];
  const char *src = getenv("BATON_SOURCE_DIR");
  snprintf(p, sizeof(p), "%s/examples/baton.yaml", src ? src : ".");
  struct baton_config cfg;
  struct yerr err;
  baton_config_defaults(&cfg);
  assert_int_equal(baton_config_load(p, &cfg, &err), 0);
  assert_string_equal(cfg.listen_host, "127.0.0.1");
  assert_int_equal(cfg.listen_port, 8080);
  assert_int_equal(cfg.n_sources, 1);
  assert_string_equal(cfg.sources[0].write_key, "wk_example");
  assert_int_equal(cfg.n_admin_keys, 1);
  assert_int_equal(cfg.admin_keys[0].scopes, BATON_SCOPE_ADMIN);
  assert_string_equal(cfg.journeys_dir, "examples/journeys");
  baton_config_release(&cfg);
}

static void test_all_sections(void **state) {
  (void)state;
  write_config("listen: '[::1]:9000'\n"
               "data_dir: /tmp/x\n"
               "sources:\n  - {name: web, write_key: wk_12345678}\n  - {name: app, write_key: wk_abcdefgh}\n"
               "admin_keys:\n  - {key: ak_12345678, scopes: [profiles:read, journeys:write]}\n"
               "limits: {max_body_bytes: 2048, max_event_bytes: 1024, max_batch_events: 10,"
               " max_connections: 300, max_engine_lag: 5000}\n"
               "engine: {checkpoint_interval: 500ms, recent_events: 7, unsafe_no_fsync: true,"
               " log_preallocate: false}\n"
               "identity: {external_ids: [email, crm_id]}\n"
               "http_threads: 3\n"
               "delivery: {max_attempts: 3, timeout: 2s, backoff: 100ms, concurrency: 8}\n");
  struct baton_config cfg;
  struct yerr err;
  baton_config_defaults(&cfg);
  assert_int_equal(baton_config_load(path, &cfg, &err), 0);
  assert_string_equal(cfg.listen_host, "::1");
  assert_int_equal(cfg.listen_port, 9000);
  assert_int_equal(cfg.n_sources, 2);
  assert_int_equal(cfg.admin_keys[0].scopes, BATON_SCOPE_PROFILES_READ |
                                                 BATON_SCOPE_JOURNEYS_WRITE |
                                                 BATON_SCOPE_JOURNEYS_READ);
  assert_int_equal(cfg.max_body_bytes, 2048);
  assert_int_equal(cfg.max_engine_lag, 5000);
  assert_int_equal(cfg.max_connections, 300);
  assert_int_equal(cfg.http_threads, 3);
  assert_int_equal(cfg.checkpoint_interval_ms, 500);
  assert_int_equal(cfg.recent_events, 7);
  assert_int_equal(cfg.unsafe_no_fsync, 1);
  assert_int_equal(cfg.no_log_prealloc, 1);
  assert_int_equal(cfg.n_external_ids, 2);
  assert_string_equal(cfg.external_ids[1], "crm_id");
  assert_int_equal(cfg.delivery_max_attempts, 3);
  assert_int_equal(cfg.delivery_backoff_ms, 100);
  baton_config_release(&cfg);
  unlink(path);
}

static void expect_error(const char *text, const char *want) {
  write_config(text);
  struct baton_config cfg;
  struct yerr err;
  baton_config_defaults(&cfg);
  assert_int_not_equal(baton_config_load(path, &cfg, &err), 0);
  char got[1024], full[1100];
  yerr_format(&err, got, sizeof(got));
  snprintf(full, sizeof(full), "%s:%s", path, want);
  if (strcmp(got, full)) {
    print_error("expected %s\n     got %s\n", full, got);
    fail();
  }
  baton_config_release(&cfg);
  unlink(path);
}

static void test_errors(void **state) {
  (void)state;
  expect_error("bogus: 1\n",
               "1:1: config: unknown field 'bogus' (expected one of: listen, data_dir, "
               "journeys_dir, sources, admin_keys, log_level, limits, engine, delivery, identity, "
               "aggregates, http_threads)");
  expect_error("http_threads: 65\n", "1:15: http_threads: expected an integer from 0 to 64");
  expect_error("listen: nowhere\n", "1:9: listen: expected host:port, e.g. 127.0.0.1:8080");
  expect_error("sources:\n  - {name: web, write_key: short}\n",
               "2:6: sources.web: write_key must have at least 8 characters");
  expect_error("admin_keys:\n  - {key: ak_12345678, scopes: [root]}\n",
               "2:33: admin_keys: unknown scope 'root' (expected admin, profiles:read, "
               "profiles:write, profiles:delete, journeys:read, journeys:write)");
  expect_error("limits: {max_body_bytes: 10}\n",
               "1:26: limits.max_body_bytes: expected an integer from 1024 to 67108864");
  expect_error("engine: {checkpoint_interval: often}\n",
               "1:31: engine.checkpoint_interval: expected a positive duration such as 500ms, "
               "2s, 5m, 1h");
  expect_error("log_level: loud\n", "1:12: log_level: expected debug, info, warn or error");
  expect_error("engine: {log_preallocate: yes}\n",
               "1:27: engine.log_preallocate: expected true or false");
  expect_error("aggregates:\n  - {name: rev, event: E, kind: sum}\n",
               "2:6: aggregates.rev.property: required for sum");
  expect_error("aggregates:\n  - {name: x, event: E, kind: last, property: p, window: 7d}\n",
               "2:58: aggregates.x.window: first and last are over all time");
  expect_error("aggregates:\n  - {name: Bad-Name, event: E}\n",
               "2:12: aggregates: name is required: 1-64 characters of a-z, 0-9, _");
  expect_error("sources:\n  - {name: a, write_key: wk_same_key}\n  - {name: b, write_key: "
               "wk_same_key}\n",
               "3:6: sources.b: write_key is used twice");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_example),
      cmocka_unit_test(test_all_sections),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
