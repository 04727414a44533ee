/* The stored timeline as chains in log order (store.h, tlog): paging across stored, queued
   and merged chains, a restart, a cursor taken from another customer, and a store written in
   the old layout (one row per profile key and order) moved over when it is opened. Sliced
   checkpoints (rows staged, then moved) killed at each point where the store is half written:
   the next start finishes or drops what they left, and the state is the same as without the
   crash. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/fixture.h"
#include "store/store.h"
#include "tmpdir_fixture.h"
#include "util/jlog.h"

static int setup(void **state) { return tmpdir_setup(state, "timeline", "store"); }

static struct engine *open_engine(struct sink *s, struct store *st) {
  struct engine_options o = {.sink = collect, .sink_arg = s, .recent_events = 3, .store = st};
  struct engine *e;
  assert_int_equal(engine_open(&o, &e), 0);
  return e;
}

/* Every page of id's timeline (limit per page), concatenated; *n gets the entries seen. */
static char *all_pages(struct engine *e, const char *by, const char *id, size_t limit,
                       size_t *n) {
  struct buf all;
  buf_init(&all, 0);
  unsigned long long cursor = 0;
  *n = 0;
  for (int pages = 0;; pages++) {
    assert_true(pages < 100);
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(engine_profile_events_json(e, by, id, limit, cursor, &b), 0);
    buf_append(&all, b.ptr, b.len);
    for (const char *p = b.ptr; (p = strstr(p, "\"type\":")); p++) (*n)++;
    const char *next = strstr(b.ptr, "\"next\":\"");
    cursor = next ? strtoull(next + 8, NULL, 10) : 0;
    buf_release(&b);
    if (!cursor) break;
  }
  return buf_steal(&all, NULL);
}

/* The "n" values of the events on a page set, newest first, as a string like "9,8,3,". */
static void ns(const char *pages, char *out, size_t cap) {
  out[0] = '\0';
  for (const char *p = pages; (p = strstr(p, "\"n\":")); p += 4)
    snprintf(out + strlen(out), cap - strlen(out), "%d,", atoi(p + 4));
}

struct world {
  struct recs r;
  size_t lsn;
};

static void track(struct engine *e, struct world *w, const char *uid, const char *aid, int n) {
  char json[200];
  snprintf(json, sizeof(json),
           "{\"type\":\"track\",\"userId\":\"%s\",\"anonymousId\":\"%s\",\"event\":\"E\",\"n\":%d}",
           uid, aid, n);
  w->r.n = 0;
  add_event_ids(&w->r, EV_TRACK, uid, aid, "E", T0 + n, json);
  assert_int_equal(engine_apply(e, ++w->lsn, w->r.data[0].ptr, w->r.data[0].len), 0);
  recs_release(&w->r);
}

/* How build() writes its checkpoints. */
static int (*checkpoint)(struct engine *e) = engine_checkpoint;

/* ann (a user) and bee (an anonymous visitor) each have events, some stored and some not,
   when an identify merges them; more come after. Paging sees each once, newest first. */
static struct engine *build(struct store *st, struct sink *s, struct world *w) {
  struct engine *e = open_engine(s, st);
  track(e, w, "ann", "", 1);
  track(e, w, "", "bee", 2);
  track(e, w, "ann", "", 3);
  track(e, w, "", "cat", 4);
  assert_int_equal(checkpoint(e), 0);
  track(e, w, "", "bee", 5);
  track(e, w, "ann", "", 6);
  /* the merge: bee's chain (one stored entry, one queued) joins ann's */
  w->r.n = 0;
  add_event_ids(&w->r, EV_IDENTIFY, "ann", "bee", "", T0 + 7,
                "{\"type\":\"identify\",\"userId\":\"ann\",\"anonymousId\":\"bee\",\"n\":7}");
  assert_int_equal(engine_apply(e, ++w->lsn, w->r.data[0].ptr, w->r.data[0].len), 0);
  recs_release(&w->r);
  track(e, w, "ann", "", 8);
  track(e, w, "", "cat", 9);
  assert_int_equal(checkpoint(e), 0);
  track(e, w, "ann", "bee", 10);
  track(e, w, "ann", "", 11); /* 10 and 11 stay queued */
  return e;
}

/* build() on a new store in the fixture's directory. */
static struct engine *build_in(struct fixture *f, struct store **st, struct sink *s,
                               struct world *w) {
  assert_int_equal(store_open(f->dir, 1 << 26, st), 0);
  return build(*st, s, w);
}

/* build_in(), then everything stored. */
static struct engine *build_stored(struct fixture *f, struct store **st, struct sink *s,
                                   struct world *w) {
  struct engine *e = build_in(f, st, s, w);
  assert_int_equal(engine_checkpoint(e), 0);
  return e;
}

static void test_chains_paging_and_restart(void **state) {
  struct store *st;
  struct sink s = {0};
  struct world w = {0};
  struct engine *e = build_in(*state, &st, &s, &w);
  char got[256];
  for (size_t limit = 1; limit <= 4; limit++) {
    size_t n;
    char *pages = all_pages(e, NULL, "ann", limit, &n);
    ns(pages, got, sizeof(got));
    /* the merge itself is on the timeline too (a decision, without "n") */
    assert_string_equal(got, "11,10,8,7,6,5,3,2,1,");
    assert_int_equal(n, 10);
    free(pages);
  }
  size_t n;
  char *before = all_pages(e, "anonymousId", "bee", 2, &n);
  char *cat = all_pages(e, "anonymousId", "cat", 2, &n);
  ns(cat, got, sizeof(got));
  assert_string_equal(got, "9,4,");

  /* A cursor from ann's timeline given for cat: a bound on cat's, never ann's entries. */
  struct buf b;
  buf_init(&b, 0);
  assert_int_equal(engine_profile_events_json(e, NULL, "ann", 2, 0, &b), 0);
  const char *next = strstr(b.ptr, "\"next\":\"");
  assert_non_null(next);
  unsigned long long ann_cursor = strtoull(next + 8, NULL, 10);
  buf_clear(&b);
  assert_int_equal(engine_profile_events_json(e, "anonymousId", "cat", 5, ann_cursor, &b), 0);
  ns(b.ptr, got, sizeof(got));
  assert_string_equal(got, "9,4,");
  buf_release(&b);

  /* After a restart (everything stored, the recent rings read back from the chains). */
  assert_int_equal(engine_checkpoint(e), 0);
  engine_close(e);
  e = open_engine(&s, st);
  char *after = all_pages(e, "anonymousId", "bee", 2, &n);
  assert_string_equal(before, after);
  free(after);
  char *prof = NULL;
  buf_init(&b, 0);
  assert_int_equal(engine_profile_json(e, NULL, "ann", &b), 0);
  prof = buf_steal(&b, NULL);
  ns(prof, got, sizeof(got)); /* the 3 most recent events kept in memory */
  assert_string_equal(got, "11,10,8,");
  free(prof);
  free(before);
  free(cat);
  engine_close(e);
  store_close(st);
  sink_clear(&s);
}

/* ---- a store in the old layout, made from a new one ---- */

static uint32_t rd32(const char **p) {
  uint32_t v;
  memcpy(&v, *p, 4);
  *p += 4;
  return v;
}
static uint64_t rd64(const char **p) {
  uint64_t v;
  memcpy(&v, *p, 8);
  *p += 8;
  return v;
}
static void copy_str(const char **p, struct buf *out, char *key, size_t cap) {
  const char *at = *p;
  uint32_t n = rd32(p);
  if (n != UINT32_MAX) *p += n;
  buf_append(out, at, (size_t)(*p - at));
  if (key) snprintf(key, cap, "%.*s", (int)n, at + 4);
}

/* Writes chain (head) of key under the old timeline keys: key, NUL, order with 0x8000 for
   an entry kept out of the recent ring. */
static void old_chain(MDB_txn *txn, struct store *st, const char *key, uint64_t ord) {
  while (ord) {
    unsigned char kb[8];
    for (int i = 0; i < 8; i++) kb[i] = (unsigned char)(ord >> (56 - 8 * i));
    MDB_val k = {8, kb}, v;
    assert_int_equal(mdb_get(txn, st->tlog, &k, &v), 0);
    uint64_t prev;
    memcpy(&prev, v.mv_data, 8);
    /* the old order had the flag in bit 15 (the test's orders are small) */
    assert_true(ord >> 1 < 0x8000);
    uint64_t old = ord >> 1 | (ord & 1 ? 0x8000 : 0);
    char ok[300];
    size_t kn = strlen(key);
    memcpy(ok, key, kn + 1);
    for (int i = 0; i < 8; i++) ok[kn + 1 + i] = (char)(old >> (56 - 8 * i));
    MDB_val k2 = {kn + 9, ok}, v2 = {v.mv_size - 16, (char *)v.mv_data + 16};
    assert_int_equal(mdb_put(txn, st->timeline, &k2, &v2, 0), 0);
    ord = prev;
  }
}

static void make_old_layout(struct store *st) {
  MDB_txn *txn = store_begin(st, 0);
  MDB_cursor *cur;
  mdb_cursor_open(txn, st->profiles, &cur);
  MDB_val k, v;
  struct buf rows;
  buf_init(&rows, 0);
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    const char *p = v.mv_data, *end = p + v.mv_size;
    assert_memory_equal(p, "P2", 2);
    p += 2;
    struct buf row;
    buf_init(&row, 0);
    buf_append(&row, "P1", 2);
    char key[256];
    copy_str(&p, &row, key, sizeof(key));
    uint32_t n = rd32(&p);
    buf_append(&row, &n, 4);
    for (uint32_t i = 0; i < n; i++) copy_str(&p, &row, NULL, 0);
    uint32_t m = rd32(&p);
    buf_append(&row, &m, 4);
    for (uint32_t i = 0; i < m; i++) {
      char mkey[256];
      copy_str(&p, &row, mkey, sizeof(mkey));
      uint64_t head = rd64(&p);
      rd64(&p);
      old_chain(txn, st, mkey, head);
    }
    uint64_t head = rd64(&p);
    rd64(&p);
    old_chain(txn, st, key, head);
    buf_append(&row, p, (size_t)(end - p));
    /* kept aside: rows are put back once the cursor is done */
    uint32_t kl = (uint32_t)k.mv_size, rl = (uint32_t)row.len;
    buf_append(&rows, &kl, 4);
    buf_append(&rows, k.mv_data, kl);
    buf_append(&rows, &rl, 4);
    buf_append(&rows, row.ptr, rl);
    buf_release(&row);
  }
  mdb_cursor_close(cur);
  for (const char *p = rows.ptr; p < rows.ptr + rows.len;) {
    uint32_t kl = rd32(&p);
    MDB_val rk = {kl, (void *)p};
    p += kl;
    uint32_t rl = rd32(&p);
    MDB_val rv = {rl, (void *)p};
    p += rl;
    assert_int_equal(mdb_put(txn, st->profiles, &rk, &rv, 0), 0);
  }
  buf_release(&rows);
  assert_int_equal(mdb_drop(txn, st->tlog, 0), 0);
  /* and the meta keys the old layout's versions never wrote */
  static const char *const newer[] = {"timeline_seq", "dedup_end", "bounds_lsn"};
  for (size_t i = 0; i < ARRAY_SIZE(newer); i++) {
    MDB_val mk = {strlen(newer[i]), (void *)newer[i]};
    assert_int_equal(mdb_del(txn, st->meta, &mk, NULL), 0);
  }
  assert_int_equal(mdb_txn_commit(txn), 0);
}

static size_t entries(struct store *st, MDB_dbi dbi) {
  MDB_txn *txn = store_begin(st, 1);
  MDB_stat s;
  assert_int_equal(mdb_stat(txn, dbi, &s), 0);
  mdb_txn_abort(txn);
  return s.ms_entries;
}

static uint64_t meta_u64(struct store *st, const char *key) {
  MDB_txn *txn = store_begin(st, 1);
  uint64_t v = 0;
  store_get_u64(txn, st, key, &v);
  mdb_txn_abort(txn);
  return v;
}

static void test_old_layout_moved_over(void **state) {
  struct store *st;
  struct sink s = {0};
  struct world w = {0};
  struct engine *e = build_stored(*state, &st, &s, &w);
  size_t n_ann, n_cat;
  char *ann = all_pages(e, NULL, "ann", 3, &n_ann);
  char *cat = all_pages(e, "anonymousId", "cat", 3, &n_cat);
  struct buf b;
  buf_init(&b, 0);
  assert_int_equal(engine_profile_json(e, NULL, "ann", &b), 0);
  char *prof = buf_steal(&b, NULL);
  engine_close(e);
  size_t stored = entries(st, st->tlog);
  assert_int_equal(stored, n_ann + n_cat);

  make_old_layout(st);
  assert_int_equal(entries(st, st->timeline), stored);
  assert_int_equal(entries(st, st->tlog), 0);

  /* Opened: moved over, the same pages and cursors, the same profile. */
  e = open_engine(&s, st);
  assert_int_equal(entries(st, st->timeline), 0);
  assert_int_equal(entries(st, st->tlog), stored);
  size_t n;
  char *ann2 = all_pages(e, NULL, "ann", 3, &n);
  char *cat2 = all_pages(e, "anonymousId", "cat", 3, &n);
  assert_string_equal(ann, ann2);
  assert_string_equal(cat, cat2);
  buf_init(&b, 0);
  assert_int_equal(engine_profile_json(e, NULL, "ann", &b), 0);
  char *prof2 = buf_steal(&b, NULL);
  assert_string_equal(prof, prof2);
  /* and it goes on: new events chain after the moved ones, across another restart */
  track(e, &w, "ann", "", 12);
  assert_int_equal(engine_checkpoint(e), 0);
  engine_close(e);
  e = open_engine(&s, st);
  char got[256];
  char *ann3 = all_pages(e, NULL, "ann", 4, &n);
  ns(ann3, got, sizeof(got));
  assert_string_equal(got, "12,11,10,8,7,6,5,3,2,1,");
  /* Deleting ann now removes every moved entry of both chains. */
  w.r.n = 0;
  add_profile_op(&w.r, POP_DELETE, "ann", "", T0 + 20, "{}");
  assert_int_equal(engine_apply(e, ++w.lsn, w.r.data[0].ptr, w.r.data[0].len), 0);
  recs_release(&w.r);
  assert_int_equal(engine_checkpoint(e), 0);
  assert_int_equal(entries(st, st->tlog), n_cat);
  /* the log's copies go up to the deletion, and the store keeps that for a restart */
  assert_int_equal(meta_u64(st, "purge_lsn"), w.lsn + 1);
  assert_int_equal(rows_with(st, st->tlog, "\"userId\":\"ann\""), 0);
  assert_int_equal(rows_with(st, st->tlog, "\"anonymousId\":\"bee\""), 0);
  free(ann3);
  free(ann);
  free(ann2);
  free(cat);
  free(cat2);
  free(prof);
  free(prof2);
  engine_close(e);
  store_close(st);
  sink_clear(&s);
}

/* ---- sliced checkpoints killed halfway ---- */

/* What a restarted engine shows: ann's and cat's pages and ann's profile. */
static char *state_of(struct engine *e) {
  size_t n;
  char *ann = all_pages(e, NULL, "ann", 2, &n), *cat = all_pages(e, "anonymousId", "cat", 2, &n);
  struct buf b;
  buf_init(&b, 0);
  buf_printf(&b, "%s\n%s\n", ann, cat);
  assert_int_equal(engine_profile_json(e, NULL, "ann", &b), 0);
  free(ann);
  free(cat);
  return buf_steal(&b, NULL);
}

/* tlog entries at or above the stored timeline_seq: those of no committed checkpoint. */
static size_t uncommitted_entries(struct store *st) {
  uint64_t seq = meta_u64(st, "timeline_seq");
  MDB_txn *txn = store_begin(st, 1);
  MDB_cursor *cur;
  mdb_cursor_open(txn, st->tlog, &cur);
  unsigned char kb[8];
  for (int i = 0; i < 8; i++) kb[i] = (unsigned char)((seq << 1) >> (56 - 8 * i));
  MDB_val k = {8, kb}, v;
  size_t n = 0;
  for (int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); r == 0;
       r = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    n++;
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return n;
}

static void kill_now(const char *point) {
  const char *want = getenv("BATON_TEST_KILL_AT");
  if (want && !strcmp(point, want)) raise(SIGKILL);
}

/* build() with sliced checkpoints, then one more that is killed at point (or, first, its
   first checkpoint killed, on a new store); the next start must give the state of a run
   without the crash (ref). */
static void crash_at(struct fixture *f, const char *point, int first, const char *ref) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct store *st;
    struct sink s = {0};
    struct world w = {0};
    setenv("BATON_TEST_KILL_AT", point, 1);
    if (first) engine_checkpoint_hook = kill_now;
    struct engine *e = build_in(f, &st, &s, &w);
    engine_checkpoint_hook = kill_now;
    engine_checkpoint_sliced(e);
    _exit(3); /* not killed: the test fails below */
  }
  int ws;
  assert_int_equal(waitpid(pid, &ws, 0), pid);
  assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
  struct store *st;
  assert_int_equal(store_open(f->dir, 1 << 26, &st), 0);
  /* Left half written: slices of the killed checkpoint are in the store (on a new store, the
     bounds were stored by the first slice). */
  int stored = !strcmp(point, "stored");
  assert_true(entries(st, st->stage) > 0);
  assert_int_equal(meta_u64(st, "staged"), stored);
  assert_int_equal(meta_u64(st, "applied_lsn"), first ? 0 : stored ? 11 : 9);
  if (!stored) {
    assert_true(uncommitted_entries(st) > 0);
    assert_true(entries(st, st->dedup) > meta_u64(st, "dedup_end"));
  }
  struct sink s = {0};
  struct engine *e = open_engine(&s, st);
  assert_int_equal(entries(st, st->stage), 0);
  assert_int_equal(meta_u64(st, "staged"), 0);
  assert_int_equal(uncommitted_entries(st), 0);
  assert_int_equal(entries(st, st->dedup), meta_u64(st, "dedup_end"));
  if (first) {
    /* Nothing was stored: the whole run again (a replay of the log from its start). */
    assert_int_equal(entries(st, st->tlog), 0);
    assert_int_equal(entries(st, st->profiles), 0);
    engine_close(e);
    struct world w = {0};
    e = build(st, &s, &w);
    assert_int_equal(engine_checkpoint_sliced(e), 0);
    engine_close(e);
    e = open_engine(&s, st);
  } else if (!stored) {
    /* Dropped: the log after LSN 9 is applied again, as a restart replays it (a de-duplication
       entry left by the killed checkpoint would drop these two as duplicates). */
    struct world w = {.lsn = 9};
    track(e, &w, "ann", "bee", 10);
    track(e, &w, "ann", "", 11);
    assert_int_equal(engine_checkpoint_sliced(e), 0);
    engine_close(e);
    e = open_engine(&s, st);
  }
  char *got = state_of(e);
  assert_string_equal(got, ref);
  free(got);
  engine_close(e);
  store_close(st);
  sink_clear(&s);
}

static void test_sliced_checkpoint_crashes(void **state) {
  struct fixture *f = *state;
  size_t saved = store_slice_bytes;
  store_slice_bytes = 1; /* a commit after every row and entry */
  checkpoint = engine_checkpoint_sliced;
  /* The run without a crash. */
  struct store *st;
  struct sink s = {0};
  struct world w = {0};
  struct engine *e = build_in(f, &st, &s, &w);
  assert_int_equal(engine_checkpoint_sliced(e), 0);
  assert_int_equal(entries(st, st->stage), 0);
  engine_close(e);
  e = open_engine(&s, st);
  char *ref = state_of(e);
  char got[256];
  ns(ref, got, sizeof(got));
  assert_string_equal(got, "11,10,8,7,6,5,3,2,1,9,4,11,10,8,");
  engine_close(e);
  store_close(st);
  sink_clear(&s);
  static const struct {
    const char *point;
    int first;
  } cases[] = {{"staged", 0}, {"stored", 0}, {"staged", 1}};
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    tmpdir_teardown(state);
    assert_int_equal(setup(state), 0);
    crash_at(*state, cases[i].point, cases[i].first, ref);
  }
  free(ref);
  checkpoint = engine_checkpoint;
  store_slice_bytes = saved;
}

/* bee is merged into ann, ann is deleted, and bee comes back, all before one checkpoint: it
   holds the merged-away bee's delete and the new bee's put under one key, and the new row
   stays (sliced and in one transaction). */
static void test_back_after_delete(void **state) {
  struct fixture *f = *state;
  for (int sliced = 0; sliced < 2; sliced++) {
    char dir[160];
    snprintf(dir, sizeof(dir), "%s/back%d", f->root, sliced);
    struct store *st;
    assert_int_equal(store_open(dir, 1 << 26, &st), 0);
    struct sink s = {0};
    struct world w = {0};
    struct engine *e = open_engine(&s, st);
    track(e, &w, "ann", "", 1);
    track(e, &w, "", "bee", 2);
    assert_int_equal(engine_checkpoint(e), 0);
    w.r.n = 0;
    add_event_ids(&w.r, EV_IDENTIFY, "ann", "bee", "", T0 + 3,
                  "{\"type\":\"identify\",\"userId\":\"ann\",\"anonymousId\":\"bee\",\"n\":3}");
    add_profile_op(&w.r, POP_DELETE, "ann", "", T0 + 4, "{}");
    for (size_t i = 0; i < w.r.n; i++)
      assert_int_equal(engine_apply(e, ++w.lsn, w.r.data[i].ptr, w.r.data[i].len), 0);
    recs_release(&w.r);
    track(e, &w, "", "bee", 5);
    assert_int_equal((sliced ? engine_checkpoint_sliced : engine_checkpoint)(e), 0);
    engine_close(e);
    e = open_engine(&s, st);
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(engine_profile_json(e, "anonymousId", "bee", &b), 0);
    assert_non_null(strstr(b.ptr, "\"n\":5"));
    assert_null(strstr(b.ptr, "\"n\":2"));
    buf_clear(&b);
    assert_int_not_equal(engine_profile_json(e, NULL, "ann", &b), 0);
    buf_release(&b);
    engine_close(e);
    store_close(st);
    sink_clear(&s);
  }
}

/* An older version checkpointed after this one (applied_lsn moved, the bounds did not, and
   a stage was left): the stage is dropped and the bounds are taken from the tables again, so
   nothing stored is dropped as if it were a killed checkpoint's. */
static void test_stale_bounds(void **state) {
  struct store *st;
  struct sink s = {0};
  struct world w = {0};
  struct engine *e = build_stored(*state, &st, &s, &w);
  char *before = state_of(e);
  engine_close(e);
  size_t n_dedup = entries(st, st->dedup), n_tl = entries(st, st->tlog);
  assert_true(n_dedup > 2 && n_tl > 2);
  MDB_txn *txn = store_begin(st, 0);
  assert_int_equal(store_put_u64(txn, st, "dedup_end", 1), 0);
  assert_int_equal(store_put_u64(txn, st, "timeline_seq", 1), 0);
  assert_int_equal(store_put_u64(txn, st, "staged", 1), 0);
  uint64_t applied = meta_u64(st, "applied_lsn");
  assert_int_equal(store_put_u64(txn, st, "applied_lsn", applied + 1), 0);
  unsigned char kb[8] = {0};
  const char row[] = "\x00\x00\x05\x00\x00\x00zzzzz"; /* a put of profile "zzzzz", no value */
  MDB_val k = {8, kb}, v = {sizeof(row) - 1, (void *)row};
  assert_int_equal(mdb_put(txn, st->stage, &k, &v, 0), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  e = open_engine(&s, st);
  assert_int_equal(entries(st, st->dedup), n_dedup);
  assert_int_equal(entries(st, st->tlog), n_tl);
  assert_int_equal(entries(st, st->stage), 0);
  assert_int_equal(meta_u64(st, "staged"), 0);
  assert_int_equal(meta_u64(st, "bounds_lsn"), applied + 1);
  assert_int_equal(meta_u64(st, "dedup_end"), n_dedup);
  char *after = state_of(e);
  assert_string_equal(before, after);
  free(before);
  free(after);
  engine_close(e);
  store_close(st);
  sink_clear(&s);
}

int main(void) {
  jlog_set_level(JLOG_WARN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_chains_paging_and_restart, setup, tmpdir_teardown),
      cmocka_unit_test_setup_teardown(test_old_layout_moved_over, setup, tmpdir_teardown),
      cmocka_unit_test_setup_teardown(test_sliced_checkpoint_crashes, setup, tmpdir_teardown),
      cmocka_unit_test_setup_teardown(test_back_after_delete, setup, tmpdir_teardown),
      cmocka_unit_test_setup_teardown(test_stale_bounds, setup, tmpdir_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
