/* Node lifecycle: start and stop every subsystem in order; see node.h. */
#include "node/node.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "channels/delivery.h"
#include "engine/engine.h"
#include "engine/record.h"
#include "evlog/evlog.h"
#include "ingest/server.h"
#include "journey/journey.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/common.h"
#include "util/jlog.h"

struct baton_node {
  const struct baton_config *cfg;
  int lock_fd;
  struct evlog *log;
  struct store *store;
  struct delivery *delivery;
  struct engine *engine;
  struct baton_server *server;
};

static void sink(void *arg, struct outmsg *m) { delivery_submit(arg, m); }
static void cancel(void *arg, const char *const *ids, size_t n) { delivery_cancel(arg, ids, n); }

static int lock_data_dir(const char *dir, int *fd_out) {
  if (mkdir(dir, 0700) && errno != EEXIST) {
    jlog(JLOG_ERROR, "cannot create data directory", "error", strerror(errno));
    return BATON_EIO;
  }
  char path[4096];
  snprintf(path, sizeof(path), "%s/LOCK", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    jlog(JLOG_ERROR, "cannot open lock file", "error", strerror(errno));
    return BATON_EIO;
  }
  if (flock(fd, LOCK_EX | LOCK_NB)) {
    jlog(JLOG_ERROR, "the data directory is in use by another baton process", "data_dir", dir);
    close(fd);
    return BATON_EBUSY;
  }
  *fd_out = fd;
  return 0;
}

static int publish_file(struct baton_node *n, const char *path, const char *fname) {
  char *text;
  size_t len;
  int rc = baton_read_file(path, JOURNEY_MAX_SOURCE, &text, &len);
  if (rc) {
    jlog(JLOG_ERROR, "cannot read journey file", "file", path);
    return BATON_EINVAL;
  }
  char id[128];
  snprintf(id, sizeof(id), "%s", fname);
  char *dot = strrchr(id, '.');
  if (dot) *dot = '\0';
  struct journey_def *def;
  struct yerr err;
  /* The file's own id wins; the file name is the fallback. */
  rc = journey_parse(text, len, path, NULL, &def, &err);
  if (rc && journey_id_valid(id)) rc = journey_parse(text, len, path, id, &def, &err);
  if (rc) {
    char msg[900];
    jlog(JLOG_ERROR, "invalid journey", "error", yerr_format(&err, msg, sizeof(msg)));
    free(text);
    return BATON_EINVAL;
  }
  struct buf rec;
  buf_init(&rec, 0);
  struct rec_journey jr = {.op = JOP_PUBLISH,
                           .time_ms = clock_now_ms(),
                           .id = {def->id, (uint32_t)strlen(def->id)},
                           .source = {text, (uint32_t)len}};
  rec_journey_encode(&rec, &jr);
  struct evlog_rec lr = {rec.ptr, rec.len};
  uint64_t lsn;
  rc = evlog_append(n->log, &lr, 1, &lsn);
  buf_release(&rec);
  if (!rc) rc = engine_wait_applied(n->engine, lsn, 10000);
  if (!rc) {
    struct jlog_line l;
    jlog_begin(&l, JLOG_INFO, "journey file loaded");
    jlog_str(&l, "file", path);
    jlog_str(&l, "journey", def->id);
    jlog_u64(&l, "version", engine_journey_version(n->engine, def->id));
    jlog_end(&l);
  }
  journey_free(def);
  free(text);
  return rc;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int baton_node_publish_dir(struct baton_node *n, const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    jlog(JLOG_ERROR, "cannot open journeys_dir", "dir", dir);
    return BATON_EINVAL;
  }
  char **names = NULL;
  size_t count = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    const char *ext = strrchr(de->d_name, '.');
    if (de->d_name[0] == '.' || !ext) continue;
    if (strcmp(ext, ".yaml") && strcmp(ext, ".yml") && strcmp(ext, ".json")) continue;
    names = xrealloc(names, (count + 1) * sizeof(*names));
    names[count++] = xstrdup(de->d_name);
  }
  closedir(d);
  qsort(names, count, sizeof(*names), cmp_str);
  int rc = 0;
  for (size_t i = 0; i < count; i++) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    if (!rc) rc = publish_file(n, path, names[i]);
    free(names[i]);
  }
  free(names);
  return rc;
}

int baton_node_start(const struct baton_config *cfg, struct baton_node **out) {
  struct baton_node *n = xcalloc(1, sizeof(*n));
  n->cfg = cfg;
  n->lock_fd = -1;
  char path[4096];
  int rc = lock_data_dir(cfg->data_dir, &n->lock_fd);
  if (rc) goto fail;
  snprintf(path, sizeof(path), "%s/log", cfg->data_dir);
  struct evlog_options lo = {.dir = path, .no_sync = cfg->unsafe_no_fsync,
                             .no_prealloc = cfg->no_log_prealloc};
  rc = evlog_open(&lo, &n->log);
  if (rc) {
    jlog(JLOG_ERROR, "cannot open the event log", "error", baton_strerror(rc));
    goto fail;
  }
  snprintf(path, sizeof(path), "%s/store", cfg->data_dir);
  rc = store_compact_if_pending(path);
  if (!rc) rc = store_open(path, 0, &n->store);
  if (rc) goto fail;
  struct delivery_options dopt = {.max_attempts = cfg->delivery_max_attempts,
                                  .timeout_ms = cfg->delivery_timeout_ms,
                                  .backoff_ms = cfg->delivery_backoff_ms,
                                  .concurrency = cfg->delivery_concurrency};
  rc = delivery_start(&dopt, n->store, &n->delivery);
  if (rc) goto fail;
  struct engine_options eo = {.log = n->log,
                              .store = n->store,
                              .sink = sink,
                              .sink_arg = n->delivery,
                              .cancel = cancel,
                              .recent_events = cfg->recent_events,
                              .checkpoint_interval_ms = cfg->checkpoint_interval_ms,
                              .external_ids = (const char *const *)cfg->external_ids,
                              .n_external_ids = cfg->n_external_ids,
                              .dedup_max = cfg->dedup_max,
                              .dedup_window_ms = cfg->dedup_window_ms,
                              .aggregates = cfg->aggregates,
                              .n_aggregates = cfg->n_aggregates};
  rc = engine_open(&eo, &n->engine);
  if (rc) {
    jlog(JLOG_ERROR, "cannot load the checkpoint", "error", baton_strerror(rc));
    goto fail;
  }
  int64_t t0 = clock_mono_ns();
  rc = engine_start(n->engine);
  if (rc) goto fail;
  struct engine_stats es;
  engine_get_stats(n->engine, &es);
  struct jlog_line l;
  jlog_begin(&l, JLOG_INFO, "engine ready");
  jlog_u64(&l, "applied_lsn", es.applied_lsn);
  jlog_u64(&l, "profiles", es.profiles);
  jlog_u64(&l, "timers", es.timers);
  jlog_f64(&l, "replay_ms", (double)(clock_mono_ns() - t0) / 1e6);
  jlog_end(&l);
  if (cfg->journeys_dir && (rc = baton_node_publish_dir(n, cfg->journeys_dir))) goto fail;
  struct server_deps deps = {.cfg = cfg, .log = n->log, .engine = n->engine,
                             .delivery = n->delivery};
  rc = server_start(&deps, &n->server);
  if (rc) goto fail;
  *out = n;
  return 0;
fail:
  baton_node_stop(n);
  return rc;
}

int baton_node_port(struct baton_node *n) { return server_port(n->server); }

void baton_node_stop(struct baton_node *n) {
  if (!n) return;
  if (n->server) server_stop(n->server, 10000);
  if (n->engine) {
    engine_stop(n->engine);
    engine_close(n->engine);
  }
  if (n->delivery) delivery_stop(n->delivery);
  if (n->log) evlog_close(n->log);
  if (n->store) {
    store_close(n->store);
    char path[4096];
    snprintf(path, sizeof(path), "%s/store", n->cfg->data_dir);
    store_compact_if_pending(path); /* a deletion's bytes leave the disk now */
  }
  if (n->lock_fd >= 0) close(n->lock_fd);
  free(n);
}
