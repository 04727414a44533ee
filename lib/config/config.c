/* Configuration defaults and YAML loading; see config.h. */
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "util/clock.h"
#include "util/common.h"
#include "util/jlog.h"

void baton_config_defaults(struct baton_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->listen_host = xstrdup("127.0.0.1");
  cfg->listen_port = 8080;
  cfg->data_dir = xstrdup("./baton-data");
  cfg->log_level = JLOG_INFO;
  cfg->max_body_bytes = 512 * 1024;
  cfg->max_event_bytes = 32 * 1024;
  cfg->max_batch_events = 2500;
  cfg->max_engine_lag = 1000000;
  cfg->max_connections = 1024;
  cfg->checkpoint_interval_ms = 2000;
  cfg->recent_events = 20;
  cfg->dedup_max = 2000000;
  cfg->dedup_window_ms = 24LL * 3600 * 1000;
  cfg->delivery_max_attempts = 5;
  cfg->delivery_timeout_ms = 10000;
  cfg->delivery_backoff_ms = 1000;
  cfg->delivery_concurrency = 64;
  cfg->external_ids = xcalloc(2, sizeof(char *));
  cfg->external_ids[0] = xstrdup("email");
  cfg->external_ids[1] = xstrdup("phone");
  cfg->n_external_ids = 2;
}

void baton_config_release(struct baton_config *cfg) {
  free(cfg->listen_host);
  free(cfg->data_dir);
  free(cfg->journeys_dir);
  for (size_t i = 0; i < cfg->n_sources; i++) {
    free(cfg->sources[i].name);
    free(cfg->sources[i].write_key);
  }
  free(cfg->sources);
  for (size_t i = 0; i < cfg->n_admin_keys; i++) {
    free(cfg->admin_keys[i].name);
    free(cfg->admin_keys[i].key);
  }
  free(cfg->admin_keys);
  for (size_t i = 0; i < cfg->n_external_ids; i++) free(cfg->external_ids[i]);
  free(cfg->external_ids);
  for (size_t i = 0; i < cfg->n_aggregates; i++) {
    free(cfg->aggregates[i].name);
    free(cfg->aggregates[i].event);
    free(cfg->aggregates[i].property);
  }
  free(cfg->aggregates);
  memset(cfg, 0, sizeof(*cfg));
}

void baton_config_add_source(struct baton_config *cfg, const char *name, const char *key) {
  cfg->sources = xrealloc(cfg->sources, (cfg->n_sources + 1) * sizeof(*cfg->sources));
  cfg->sources[cfg->n_sources].name = xstrdup(name);
  cfg->sources[cfg->n_sources].write_key = xstrdup(key);
  cfg->n_sources++;
}

void baton_config_add_admin_key(struct baton_config *cfg, const char *name, const char *key,
                                unsigned scopes) {
  cfg->admin_keys = xrealloc(cfg->admin_keys, (cfg->n_admin_keys + 1) * sizeof(*cfg->admin_keys));
  cfg->admin_keys[cfg->n_admin_keys].name = xstrdup(name);
  cfg->admin_keys[cfg->n_admin_keys].key = xstrdup(key);
  cfg->admin_keys[cfg->n_admin_keys].scopes = scopes;
  cfg->n_admin_keys++;
}

unsigned baton_scope_parse(const char *name) {
  static const struct {
    const char *name;
    unsigned bits;
  } scopes[] = {
      {"admin", BATON_SCOPE_ADMIN},
      {"profiles:read", BATON_SCOPE_PROFILES_READ},
      {"journeys:read", BATON_SCOPE_JOURNEYS_READ},
      {"journeys:write", BATON_SCOPE_JOURNEYS_WRITE | BATON_SCOPE_JOURNEYS_READ},
      {"profiles:write", BATON_SCOPE_PROFILES_WRITE | BATON_SCOPE_PROFILES_READ},
      {"profiles:delete", BATON_SCOPE_PROFILES_DELETE},
  };
  for (size_t i = 0; i < ARRAY_SIZE(scopes); i++)
    if (!strcmp(name, scopes[i].name)) return scopes[i].bits;
  return 0;
}

int baton_config_set_listen(struct baton_config *cfg, const char *addr) {
  const char *colon = strrchr(addr, ':');
  if (!colon || colon == addr) return BATON_EINVAL;
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 0 || port > 65535 || end == colon + 1) return BATON_EINVAL;
  free(cfg->listen_host);
  const char *h = addr;
  size_t n = (size_t)(colon - addr);
  if (h[0] == '[' && n >= 2 && h[n - 1] == ']') { /* [::1]:8080 */
    h++;
    n -= 2;
  }
  cfg->listen_host = xstrndup(h, n);
  cfg->listen_port = (int)port;
  return 0;
}

int baton_read_file(const char *path, size_t max, char **out, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return BATON_EIO;
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    close(fd);
    errno = EISDIR;
    return BATON_EIO;
  }
  if ((size_t)st.st_size > max) {
    close(fd);
    return BATON_ETOOBIG;
  }
  char *p = xmalloc((size_t)st.st_size + 1);
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, p + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd);
  p[got] = '\0';
  *out = p;
  if (len) *len = got;
  return 0;
}

static int get_size(struct fy_node *n, const char *file, const char *what, size_t lo, size_t hi,
                    size_t *out, struct yerr *err) {
  const char *s = yaml_str(n);
  char *end;
  errno = 0;
  unsigned long long v = s ? strtoull(s, &end, 10) : 0;
  if (!s || !*s || *end || errno || v < lo || v > hi)
    return yaml_fail(err, file, n, "%s: expected an integer from %zu to %zu", what, lo, hi);
  *out = (size_t)v;
  return 0;
}

static int get_duration(struct fy_node *n, const char *file, const char *what, int64_t *out,
                        struct yerr *err) {
  const char *s = yaml_str(n);
  if (!s || clock_parse_duration(s, out) || *out <= 0)
    return yaml_fail(err, file, n, "%s: expected a positive duration such as 500ms, 2s, 5m, 1h",
                     what);
  return 0;
}

static int get_string(struct fy_node *n, const char *file, const char *what, char **out,
                      struct yerr *err) {
  const char *s = yaml_str(n);
  if (!s || !*s) return yaml_fail(err, file, n, "%s: expected a non-empty string", what);
  free(*out);
  *out = xstrdup(s);
  return 0;
}

static int load_sources(struct fy_node *seq, const char *file, struct baton_config *cfg,
                        struct yerr *err) {
  static const char *const keys[] = {"name", "write_key", NULL};
  if (!fy_node_is_sequence(seq)) return yaml_fail(err, file, seq, "sources: expected a list");
  void *it = NULL;
  struct fy_node *item;
  while ((item = fy_node_sequence_iterate(seq, &it))) {
    if (!fy_node_is_mapping(item))
      return yaml_fail(err, file, item, "sources: each source is a mapping with name, write_key");
    if (yaml_check_keys(item, keys, file, "sources", err)) return BATON_EINVAL;
    const char *name = yaml_str(yaml_get(item, "name"));
    const char *key = yaml_str(yaml_get(item, "write_key"));
    if (!name || !*name) return yaml_fail(err, file, item, "sources: missing name");
    if (!key || strlen(key) < 8)
      return yaml_fail(err, file, item, "sources.%s: write_key must have at least 8 characters",
                       name);
    for (size_t i = 0; i < cfg->n_sources; i++)
      if (!strcmp(cfg->sources[i].write_key, key))
        return yaml_fail(err, file, item, "sources.%s: write_key is used twice", name);
    baton_config_add_source(cfg, name, key);
  }
  return 0;
}

static int load_admin_keys(struct fy_node *seq, const char *file, struct baton_config *cfg,
                           struct yerr *err) {
  static const char *const keys[] = {"name", "key", "scopes", NULL};
  if (!fy_node_is_sequence(seq)) return yaml_fail(err, file, seq, "admin_keys: expected a list");
  void *it = NULL;
  struct fy_node *item;
  while ((item = fy_node_sequence_iterate(seq, &it))) {
    if (!fy_node_is_mapping(item))
      return yaml_fail(err, file, item, "admin_keys: each key is a mapping with key, scopes");
    if (yaml_check_keys(item, keys, file, "admin_keys", err)) return BATON_EINVAL;
    const char *key = yaml_str(yaml_get(item, "key"));
    const char *name = yaml_str(yaml_get(item, "name"));
    if (!key || strlen(key) < 8)
      return yaml_fail(err, file, item, "admin_keys: key must have at least 8 characters");
    struct fy_node *sc = yaml_get(item, "scopes");
    unsigned scopes = 0;
    if (!sc || !fy_node_is_sequence(sc))
      return yaml_fail(err, file, sc ? sc : item,
                       "admin_keys: scopes must be a list (admin, profiles:read, profiles:write, "
                       "profiles:delete, journeys:read, journeys:write)");
    void *it2 = NULL;
    struct fy_node *s;
    while ((s = fy_node_sequence_iterate(sc, &it2))) {
      const char *sname = yaml_str(s);
      unsigned bits = sname ? baton_scope_parse(sname) : 0;
      if (!bits)
        return yaml_fail(err, file, s,
                         "admin_keys: unknown scope '%s' (expected admin, profiles:read, "
                         "profiles:write, profiles:delete, journeys:read, journeys:write)",
                         sname ? sname : "?");
      scopes |= bits;
    }
    baton_config_add_admin_key(cfg, name ? name : "key", key, scopes);
  }
  return 0;
}

static int aggregate_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 64) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) return 0;
  return 1;
}

static int load_aggregates(struct fy_node *seq, const char *file, struct baton_config *cfg,
                           struct yerr *err) {
  static const char *const keys[] = {"name", "event", "kind", "property", "window", NULL};
  if (!fy_node_is_sequence(seq)) return yaml_fail(err, file, seq, "aggregates: expected a list");
  if (fy_node_sequence_item_count(seq) > AGG_MAX_DEFS)
    return yaml_fail(err, file, seq, "aggregates: at most %d", AGG_MAX_DEFS);
  void *it = NULL;
  struct fy_node *item;
  while ((item = fy_node_sequence_iterate(seq, &it))) {
    if (!fy_node_is_mapping(item))
      return yaml_fail(err, file, item, "aggregates: each is a mapping with name, event, kind");
    if (yaml_check_keys(item, keys, file, "aggregates", err)) return BATON_EINVAL;
    const char *name = yaml_str(yaml_get(item, "name"));
    if (!name || !aggregate_name_ok(name))
      return yaml_fail(err, file, yaml_get(item, "name") ? yaml_get(item, "name") : item,
                       "aggregates: name is required: 1-64 characters of a-z, 0-9, _");
    for (size_t i = 0; i < cfg->n_aggregates; i++)
      if (!strcmp(cfg->aggregates[i].name, name))
        return yaml_fail(err, file, item, "aggregates.%s: the name is used twice", name);
    const char *event = yaml_str(yaml_get(item, "event"));
    if (!event || !*event || strlen(event) > 256)
      return yaml_fail(err, file, item, "aggregates.%s.event: required, an event name or \"*\"",
                       name);
    enum agg_kind kind = AGG_COUNT;
    struct fy_node *kn = yaml_get(item, "kind");
    if (kn && (!yaml_str(kn) || agg_kind_parse(yaml_str(kn), &kind)))
      return yaml_fail(err, file, kn,
                       "aggregates.%s.kind: expected count, sum, min, max, first or last", name);
    struct fy_node *pn = yaml_get(item, "property");
    const char *prop = yaml_str(pn);
    if (pn && (!prop || !*prop || strlen(prop) > 200))
      return yaml_fail(err, file, pn, "aggregates.%s.property: a property name or dot path",
                       name);
    if (!prop && (kind == AGG_SUM || kind == AGG_MIN || kind == AGG_MAX))
      return yaml_fail(err, file, item, "aggregates.%s.property: required for %s", name,
                       agg_kind_name(kind));
    if (prop && kind == AGG_COUNT)
      return yaml_fail(err, file, pn, "aggregates.%s.property: count takes no property", name);
    int64_t window = 0;
    struct fy_node *wn = yaml_get(item, "window");
    if (wn) {
      const char *ws = yaml_str(wn);
      if (kind == AGG_FIRST || kind == AGG_LAST)
        return yaml_fail(err, file, wn, "aggregates.%s.window: first and last are over all time",
                         name);
      if (!ws || clock_parse_duration(ws, &window) || window < 60000 ||
          window > 366LL * 86400000)
        return yaml_fail(err, file, wn, "aggregates.%s.window: a duration from 1m to 366d", name);
    }
    cfg->aggregates = xrealloc(cfg->aggregates, (cfg->n_aggregates + 1) * sizeof(*cfg->aggregates));
    struct agg_def *d = &cfg->aggregates[cfg->n_aggregates++];
    d->name = xstrdup(name);
    d->event = xstrdup(event);
    d->property = prop ? xstrdup(prop) : NULL;
    d->kind = kind;
    d->window_ms = window;
  }
  return 0;
}

static int load_doc(struct fy_node *root, const char *file, struct baton_config *cfg,
                    struct yerr *err) {
  static const char *const top[] = {"listen", "data_dir", "journeys_dir", "sources",
                                    "admin_keys", "log_level", "limits", "engine", "delivery",
                                    "identity", "aggregates", "http_threads", NULL};
  static const char *const limits[] = {"max_body_bytes", "max_event_bytes", "max_batch_events",
                                       "max_connections", "max_engine_lag", NULL};
  static const char *const engine[] = {"checkpoint_interval", "recent_events", "unsafe_no_fsync",
                                       "dedup_window", "dedup_max", "log_preallocate", NULL};
  static const char *const delivery[] = {"max_attempts", "timeout", "backoff", "concurrency",
                                         NULL};
  if (!fy_node_is_mapping(root)) return yaml_fail(err, file, root, "expected a mapping");
  if (yaml_check_keys(root, top, file, "config", err)) return BATON_EINVAL;
  struct fy_node *n;
  if ((n = yaml_get(root, "listen"))) {
    const char *s = yaml_str(n);
    if (!s || baton_config_set_listen(cfg, s))
      return yaml_fail(err, file, n, "listen: expected host:port, e.g. 127.0.0.1:8080");
  }
  if ((n = yaml_get(root, "data_dir")) && get_string(n, file, "data_dir", &cfg->data_dir, err))
    return BATON_EINVAL;
  if ((n = yaml_get(root, "journeys_dir")) &&
      get_string(n, file, "journeys_dir", &cfg->journeys_dir, err))
    return BATON_EINVAL;
  if ((n = yaml_get(root, "log_level"))) {
    enum jlog_level lvl;
    const char *s = yaml_str(n);
    if (!s || jlog_parse_level(s, &lvl))
      return yaml_fail(err, file, n, "log_level: expected debug, info, warn or error");
    cfg->log_level = (int)lvl;
  }
  if ((n = yaml_get(root, "http_threads"))) {
    size_t t;
    if (get_size(n, file, "http_threads", 0, 64, &t, err)) return BATON_EINVAL;
    cfg->http_threads = (int)t;
  }
  if ((n = yaml_get(root, "sources")) && load_sources(n, file, cfg, err)) return BATON_EINVAL;
  if ((n = yaml_get(root, "admin_keys")) && load_admin_keys(n, file, cfg, err))
    return BATON_EINVAL;
  struct fy_node *sec;
  size_t v;
  if ((sec = yaml_get(root, "limits"))) {
    if (!fy_node_is_mapping(sec)) return yaml_fail(err, file, sec, "limits: expected a mapping");
    if (yaml_check_keys(sec, limits, file, "limits", err)) return BATON_EINVAL;
    if ((n = yaml_get(sec, "max_body_bytes"))) {
      if (get_size(n, file, "limits.max_body_bytes", 1024, 64u << 20, &cfg->max_body_bytes, err))
        return BATON_EINVAL;
    }
    if ((n = yaml_get(sec, "max_event_bytes"))) {
      if (get_size(n, file, "limits.max_event_bytes", 256, 1u << 20, &cfg->max_event_bytes, err))
        return BATON_EINVAL;
    }
    if ((n = yaml_get(sec, "max_batch_events"))) {
      if (get_size(n, file, "limits.max_batch_events", 1, 100000, &cfg->max_batch_events, err))
        return BATON_EINVAL;
    }
    if ((n = yaml_get(sec, "max_engine_lag"))) {
      if (get_size(n, file, "limits.max_engine_lag", 1000, 1000000000, &v, err))
        return BATON_EINVAL;
      cfg->max_engine_lag = v;
    }
    if ((n = yaml_get(sec, "max_connections"))) {
      if (get_size(n, file, "limits.max_connections", 16, 10000, &v, err)) return BATON_EINVAL;
      cfg->max_connections = (int)v;
    }
  }
  if ((sec = yaml_get(root, "engine"))) {
    if (!fy_node_is_mapping(sec)) return yaml_fail(err, file, sec, "engine: expected a mapping");
    if (yaml_check_keys(sec, engine, file, "engine", err)) return BATON_EINVAL;
    if ((n = yaml_get(sec, "checkpoint_interval")) &&
        get_duration(n, file, "engine.checkpoint_interval", &cfg->checkpoint_interval_ms, err))
      return BATON_EINVAL;
    if ((n = yaml_get(sec, "recent_events")) &&
        get_size(n, file, "engine.recent_events", 0, 10000, &cfg->recent_events, err))
      return BATON_EINVAL;
    if ((n = yaml_get(sec, "dedup_window")) &&
        get_duration(n, file, "engine.dedup_window", &cfg->dedup_window_ms, err))
      return BATON_EINVAL;
    if ((n = yaml_get(sec, "dedup_max"))) {
      if (get_size(n, file, "engine.dedup_max", 1, 100000000, &v, err)) return BATON_EINVAL;
      cfg->dedup_max = v;
    }
    if ((n = yaml_get(sec, "unsafe_no_fsync"))) {
      const char *s = yaml_str(n);
      if (!s || (strcmp(s, "true") && strcmp(s, "false")))
        return yaml_fail(err, file, n, "engine.unsafe_no_fsync: expected true or false");
      cfg->unsafe_no_fsync = !strcmp(s, "true");
    }
    if ((n = yaml_get(sec, "log_preallocate"))) {
      const char *s = yaml_str(n);
      if (!s || (strcmp(s, "true") && strcmp(s, "false")))
        return yaml_fail(err, file, n, "engine.log_preallocate: expected true or false");
      cfg->no_log_prealloc = !strcmp(s, "false");
    }
  }
  if ((n = yaml_get(root, "aggregates")) && load_aggregates(n, file, cfg, err)) return BATON_EINVAL;
  if ((sec = yaml_get(root, "identity"))) {
    static const char *const identity[] = {"external_ids", NULL};
    if (!fy_node_is_mapping(sec))
      return yaml_fail(err, file, sec, "identity: expected a mapping");
    if (yaml_check_keys(sec, identity, file, "identity", err)) return BATON_EINVAL;
    if ((n = yaml_get(sec, "external_ids"))) {
      if (!fy_node_is_sequence(n) || fy_node_sequence_item_count(n) > 32)
        return yaml_fail(err, file, n, "identity.external_ids: expected a list of at most 32 trait names");
      for (size_t i = 0; i < cfg->n_external_ids; i++) free(cfg->external_ids[i]);
      cfg->n_external_ids = 0;
      cfg->external_ids = xrealloc(cfg->external_ids, 32 * sizeof(char *));
      void *it = NULL;
      struct fy_node *t;
      while ((t = fy_node_sequence_iterate(n, &it))) {
        const char *name = yaml_str(t);
        int ok = name && *name && strlen(name) <= 64 && !strchr(name, ':');
        if (!ok)
          return yaml_fail(err, file, t,
                           "identity.external_ids: a trait name of 1-64 characters without ':'");
        cfg->external_ids[cfg->n_external_ids++] = xstrdup(name);
      }
    }
  }
  if ((sec = yaml_get(root, "delivery"))) {
    if (!fy_node_is_mapping(sec))
      return yaml_fail(err, file, sec, "delivery: expected a mapping");
    if (yaml_check_keys(sec, delivery, file, "delivery", err)) return BATON_EINVAL;
    if ((n = yaml_get(sec, "max_attempts"))) {
      if (get_size(n, file, "delivery.max_attempts", 1, 100, &v, err)) return BATON_EINVAL;
      cfg->delivery_max_attempts = (int)v;
    }
    if ((n = yaml_get(sec, "concurrency"))) {
      if (get_size(n, file, "delivery.concurrency", 1, 4096, &v, err)) return BATON_EINVAL;
      cfg->delivery_concurrency = (int)v;
    }
    if ((n = yaml_get(sec, "timeout")) &&
        get_duration(n, file, "delivery.timeout", &cfg->delivery_timeout_ms, err))
      return BATON_EINVAL;
    if ((n = yaml_get(sec, "backoff")) &&
        get_duration(n, file, "delivery.backoff", &cfg->delivery_backoff_ms, err))
      return BATON_EINVAL;
  }
  return 0;
}

int baton_config_load(const char *path, struct baton_config *cfg, struct yerr *err) {
  memset(err, 0, sizeof(*err));
  size_t plen = strlen(path);
  memcpy(err->file, path, MIN(plen, sizeof(err->file) - 1));
  err->file[MIN(plen, sizeof(err->file) - 1)] = '\0';
  char *text;
  size_t len;
  int rc = baton_read_file(path, 1 << 20, &text, &len);
  if (rc) {
    snprintf(err->msg, sizeof(err->msg), "cannot read: %s",
             rc == BATON_ETOOBIG ? "file over 1 MiB" : strerror(errno));
    return BATON_EIO;
  }
  struct fy_document *doc = yaml_parse(text, len, path, err);
  if (!doc) {
    free(text);
    return BATON_EINVAL;
  }
  rc = load_doc(fy_document_root(doc), path, cfg, err);
  fy_document_destroy(doc);
  free(text); /* only now: the document points into the text */
  return rc;
}

static void random_key(const char *prefix, char *out, size_t cap) {
  unsigned char raw[16];
  FILE *f = fopen("/dev/urandom", "rb");
  if (!f || fread(raw, 1, sizeof(raw), f) != sizeof(raw)) abort();
  fclose(f);
  size_t n = (size_t)snprintf(out, cap, "%s", prefix);
  for (size_t i = 0; i < sizeof(raw) && n + 2 < cap; i++)
    n += (size_t)snprintf(out + n, cap - n, "%02x", raw[i]);
}

int baton_config_ensure_credentials(struct baton_config *cfg, int *created, struct yerr *err) {
  memset(err, 0, sizeof(*err));
  *created = 0;
  if (cfg->n_sources && cfg->n_admin_keys) return 0;
  char path[4096];
  snprintf(path, sizeof(path), "%s/credentials.json", cfg->data_dir);
  size_t plen = strlen(path);
  memcpy(err->file, path, MIN(plen, sizeof(err->file) - 1));
  err->file[MIN(plen, sizeof(err->file) - 1)] = '\0';
  char *text;
  size_t len;
  int rc = baton_read_file(path, 1 << 20, &text, &len);
  if (rc == 0) {
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *wk = j ? cJSON_GetObjectItemCaseSensitive(j, "write_key") : NULL;
    const cJSON *ak = j ? cJSON_GetObjectItemCaseSensitive(j, "admin_key") : NULL;
    if (!cJSON_IsString(wk) || !cJSON_IsString(ak)) {
      cJSON_Delete(j);
      snprintf(err->msg, sizeof(err->msg), "expected {\"write_key\": ..., \"admin_key\": ...}");
      return BATON_ECORRUPT;
    }
    if (!cfg->n_sources) baton_config_add_source(cfg, "default", wk->valuestring);
    if (!cfg->n_admin_keys) baton_config_add_admin_key(cfg, "default", ak->valuestring,
                                                       BATON_SCOPE_ADMIN);
    cJSON_Delete(j);
    return 0;
  }
  if (errno != ENOENT) {
    snprintf(err->msg, sizeof(err->msg), "cannot read: %s", strerror(errno));
    return BATON_EIO;
  }
  char wk[64], ak[64];
  random_key("wk_", wk, sizeof(wk));
  random_key("ak_", ak, sizeof(ak));
  char tmp[4200];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    snprintf(err->msg, sizeof(err->msg), "cannot create: %s", strerror(errno));
    return BATON_EIO;
  }
  char body[256];
  int n = snprintf(body, sizeof(body), "{\"write_key\": \"%s\", \"admin_key\": \"%s\"}\n", wk, ak);
  int ok = write(fd, body, (size_t)n) == n && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp, path)) {
    snprintf(err->msg, sizeof(err->msg), "cannot write: %s", strerror(errno));
    unlink(tmp);
    return BATON_EIO;
  }
  if (!cfg->n_sources) baton_config_add_source(cfg, "default", wk);
  if (!cfg->n_admin_keys) baton_config_add_admin_key(cfg, "default", ak, BATON_SCOPE_ADMIN);
  *created = 1;
  return 0;
}
