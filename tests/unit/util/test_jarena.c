/*
 * Unit tests for util/jarena: cJSON trees parsed and deleted inside a scope
 * come from the thread's arena (the same memory again in the next scope);
 * trees from before the scope may be deleted inside it; bodies needing
 * several chunks (over the kept size) work and are released; threads have
 * arenas of their own. Under ASan the arena's free space is poisoned, so a
 * node used after its scope would be reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/jarena.h"

/* {"batch":[{"i":0,"s":"..."},...]} with n members */
static char *doc(int n) {
  struct buf b;
  buf_init(&b, 0);
  buf_puts(&b, "{\"batch\":[");
  for (int i = 0; i < n; i++)
    buf_printf(&b, "%s{\"i\":%d,\"s\":\"value number %d\",\"nested\":{\"a\":[1,2,3]}}", i ? "," : "",
               i, i);
  buf_puts(&b, "]}");
  return buf_steal(&b, NULL);
}

static void check(const cJSON *root, int n) {
  const cJSON *batch = cJSON_GetObjectItemCaseSensitive(root, "batch");
  assert_int_equal(cJSON_GetArraySize(batch), n);
  int i = 0;
  char want[64];
  for (const cJSON *e = batch->child; e; e = e->next, i++) {
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(e, "i")->valuedouble, i);
    snprintf(want, sizeof(want), "value number %d", i);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "s")->valuestring, want);
  }
}

static void test_scopes_reuse_the_arena(void **state) {
  (void)state;
  char *text = doc(100);
  cJSON *first = NULL;
  for (int round = 0; round < 50; round++) {
    jarena_begin();
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    check(root, 100);
    /* From the second scope on (the first sizes the chunk), the same memory each time. */
    if (round == 1) first = root;
    if (round > 1) assert_ptr_equal(root, first);
    char *printed = cJSON_PrintUnformatted(root); /* printed and freed inside: fine */
    assert_non_null(printed);
    cJSON_free(printed);
    cJSON_Delete(root);
    jarena_end();
  }
  free(text);
}

static void test_tree_from_before_the_scope(void **state) {
  (void)state;
  char *text = doc(10);
  cJSON *outside = cJSON_Parse(text); /* malloc'd */
  jarena_begin();
  cJSON *inside = cJSON_Parse(text);
  check(inside, 10);
  cJSON_Delete(outside); /* passed to free() */
  cJSON_Delete(inside);
  jarena_end();
  /* And one made outside after the scope lives on. */
  cJSON *after = cJSON_Parse(text);
  jarena_begin();
  jarena_end();
  check(after, 10);
  cJSON_Delete(after);
  free(text);
}

static void test_large_bodies_take_more_chunks(void **state) {
  (void)state;
  int sizes[] = {20000, 10, 50000, 100, 20000};
  for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
    char *text = doc(sizes[k]); /* 20,000 members: several MB of nodes, over the kept size */
    jarena_begin();
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    check(root, sizes[k]);
    cJSON_Delete(root);
    jarena_end();
    free(text);
  }
}

static void *thread_main(void *arg) {
  char *text = arg;
  for (int round = 0; round < 200; round++) {
    jarena_begin();
    cJSON *root = cJSON_Parse(text);
    check(root, 300);
    cJSON_Delete(root);
    jarena_end();
  }
  return NULL;
}

static void test_threads_have_their_own(void **state) {
  (void)state;
  char *text = doc(300);
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, thread_main, text);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  free(text);
}

int main(void) {
  jarena_install();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scopes_reuse_the_arena),
      cmocka_unit_test(test_tree_from_before_the_scope),
      cmocka_unit_test(test_large_bodies_take_more_chunks),
      cmocka_unit_test(test_threads_have_their_own),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
