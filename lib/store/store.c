/* LMDB environment and named databases; see store.h. */
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/common.h"
#include "util/jlog.h"
#include "util/clock.h"

int store_fail(const char *what, int mdb_rc) {
  struct jlog_line l;
  jlog_begin(&l, JLOG_ERROR, "store error");
  jlog_str(&l, "op", what);
  jlog_str(&l, "error", mdb_strerror(mdb_rc));
  jlog_end(&l);
  return BATON_ESTORE;
}

int store_open(const char *dir, uint64_t map_bytes, struct store **out) {
  if (mkdir(dir, 0700) && errno != EEXIST) {
    jlog(JLOG_ERROR, "cannot create store directory", "error", strerror(errno));
    return BATON_ESTORE;
  }
  struct store *st = xcalloc(1, sizeof(*st));
  int rc = mdb_env_create(&st->env);
  if (rc) {
    free(st);
    return store_fail("env_create", rc);
  }
  mdb_env_set_maxdbs(st->env, 16);
  mdb_env_set_maxreaders(st->env, 512);
  mdb_env_set_mapsize(st->env, map_bytes ? map_bytes : (64ull << 30));
  /* MDB_WRITEMAP: a write transaction changes its pages in the map itself (no copies in
     malloc'ed pages written with pwrite at the commit); the commit sends them all to the disk at
     once, so long writes go in slices (store_slicer). The file is then as large as the map
     (sparse: only written pages take space).
     MDB_NORDAHEAD (the map advised MADV_RANDOM): without it, a fault on the map reads ahead and
     the page cache keeps the file in large folios, and a checkpoint that changes one 4 KB page
     of a folio writes the whole folio back; a checkpoint of 231,000 profiles wrote 6.0 GB that
     way, and one of 222,000 writes 0.9 GB with it (docs/PERFORMANCE.md). The price: a start
     with nothing of the store in the page cache reads it a page at a time. */
  rc = mdb_env_open(st->env, dir, MDB_NOTLS | MDB_WRITEMAP | MDB_NORDAHEAD, 0600);
  if (rc) goto fail;
  MDB_txn *txn;
  rc = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (rc) goto fail;
  struct {
    const char *name;
    MDB_dbi *dbi;
  } dbs[] = {{"meta", &st->meta},         {"profiles", &st->profiles},
             {"timeline", &st->timeline}, {"tlog", &st->tlog},
             {"journeys", &st->journeys},
             {"outbox", &st->outbox},     {"deliveries", &st->deliveries},
             {"dedup", &st->dedup},       {"suppressed", &st->suppressed},
             {"jstats", &st->jstats},     {"stage", &st->stage}};
  for (size_t i = 0; i < ARRAY_SIZE(dbs); i++) {
    rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
    if (rc) {
      mdb_txn_abort(txn);
      goto fail;
    }
  }
  rc = mdb_txn_commit(txn);
  if (rc) goto fail;
  *out = st;
  return 0;
fail:
  mdb_env_close(st->env);
  free(st);
  return store_fail("open", rc);
}

void store_close(struct store *st) {
  if (!st) return;
  mdb_env_close(st->env);
  free(st);
}

MDB_txn *store_begin(struct store *st, int read_only) {
  MDB_txn *txn;
  int rc = mdb_txn_begin(st->env, NULL, read_only ? MDB_RDONLY : 0, &txn);
  if (rc) {
    store_fail("txn_begin", rc);
    abort();
  }
  return txn;
}

int store_commit(MDB_txn *txn) {
  int rc = mdb_txn_commit(txn);
  return rc ? store_fail("commit", rc) : 0;
}

int store_get_u64(MDB_txn *txn, struct store *st, const char *key, uint64_t *out) {
  MDB_val k = {strlen(key), (void *)key}, v;
  int rc = mdb_get(txn, st->meta, &k, &v);
  if (rc == MDB_NOTFOUND) return BATON_ENOENT;
  if (rc) return store_fail("get", rc);
  if (v.mv_size != 8) return BATON_ECORRUPT;
  memcpy(out, v.mv_data, 8);
  return 0;
}

int store_put_u64(MDB_txn *txn, struct store *st, const char *key, uint64_t val) {
  MDB_val k = {strlen(key), (void *)key}, v = {8, &val};
  int rc = mdb_put(txn, st->meta, &k, &v, 0);
  return rc ? store_fail("put", rc) : 0;
}

/* Longest rest after one slice. */
#define SLICE_MAX_REST_NS (100 * 1000000LL)

void store_slice_begin(struct store_slicer *s, struct store *st, int paced) {
  *s = (struct store_slicer){.st = st, .paced = paced};
  s->txn = store_begin(st, 0);
}

size_t store_slice_bytes = STORE_SLICE_BYTES;

int store_slice_full(const struct store_slicer *s) {
  return s->paced && s->bytes >= store_slice_bytes;
}

int store_slice_add(struct store_slicer *s, size_t n) {
  s->bytes += n;
  return store_slice_full(s) ? store_slice_commit(s, 1) : 0;
}

int store_slice_commit(struct store_slicer *s, int more) {
  int64_t t0 = clock_mono_ns();
  int rc = store_commit(s->txn);
  s->txn = NULL;
  int64_t took = clock_mono_ns() - t0;
  s->commit_ns += took;
  s->last_commit_ns = took;
  s->commits++;
  s->bytes = 0;
  if (rc) return rc;
  if (s->paced && more && !(s->hurry && atomic_load(s->hurry))) {
    /* The disk is left to everyone else at least as long as this commit kept it busy. */
    s->rested_ns += clock_rest_ns(took, SLICE_MAX_REST_NS);
  }
  if (more) s->txn = store_begin(s->st, 0);
  return 0;
}

void store_slice_abort(struct store_slicer *s) {
  if (s->txn) mdb_txn_abort(s->txn);
  s->txn = NULL;
}

int store_compact_if_pending(const char *dir) {
  struct store *st;
  struct stat sb;
  char path[4096], tmp[4096];
  snprintf(path, sizeof(path), "%s/data.mdb", dir);
  if (stat(path, &sb)) return 0; /* no store yet */
  if (store_open(dir, 0, &st)) return BATON_ESTORE;
  MDB_txn *txn = store_begin(st, 1);
  uint64_t pending = 0;
  store_get_u64(txn, st, "compact_pending", &pending);
  mdb_txn_abort(txn);
  if (!pending) {
    store_close(st);
    return 0;
  }
  snprintf(tmp, sizeof(tmp), "%s/compact.tmp", dir);
  char tmpfile[4200];
  snprintf(tmpfile, sizeof(tmpfile), "%s/data.mdb", tmp);
  unlink(tmpfile);
  rmdir(tmp);
  if (mkdir(tmp, 0700)) {
    store_close(st);
    jlog(JLOG_ERROR, "cannot compact the store", "error", strerror(errno));
    return BATON_ESTORE;
  }
  int rc = mdb_env_copy2(st->env, tmp, MDB_CP_COMPACT);
  store_close(st);
  if (rc) {
    unlink(tmpfile);
    rmdir(tmp);
    return store_fail("compact", rc);
  }
  if (rename(tmpfile, path)) {
    jlog(JLOG_ERROR, "cannot replace the store with its compacted copy", "error", strerror(errno));
    unlink(tmpfile);
    rmdir(tmp);
    return BATON_ESTORE;
  }
  rmdir(tmp);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  if (store_open(dir, 0, &st)) return BATON_ESTORE;
  txn = store_begin(st, 0);
  MDB_val k = {15, (void *)"compact_pending"};
  mdb_del(txn, st->meta, &k, NULL);
  rc = store_commit(txn);
  store_close(st);
  jlog(JLOG_INFO, "store compacted after a deletion", NULL, NULL);
  return rc;
}
