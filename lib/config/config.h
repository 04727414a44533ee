/*
 * The server configuration: defaults, loading from a YAML file with
 * positioned errors, and the credential types (sources with write keys,
 * admin keys with scopes). See docs/configuration.md for every field.
 */
#ifndef BATON_CONFIG_CONFIG_H
#define BATON_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "config/yaml.h"
#include "engine/aggregate.h"

/* Admin key scopes (a key's scopes are a bit set). */
enum {
  BATON_SCOPE_PROFILES_READ = 1u << 0,
  BATON_SCOPE_JOURNEYS_READ = 1u << 1,
  BATON_SCOPE_JOURNEYS_WRITE = 1u << 2,
  BATON_SCOPE_PROFILES_WRITE = 1u << 3, /* notes and cases from other departments */
  BATON_SCOPE_PROFILES_DELETE = 1u << 4, /* erasure requests */
  BATON_SCOPE_ADMIN = 0xffffu, /* every scope */
};

struct baton_source {
  char *name;
  char *write_key;
};

struct baton_admin_key {
  char *name;
  char *key;
  unsigned scopes;
};

struct baton_config {
  char *listen_host;
  int listen_port;
  char *data_dir;
  char *journeys_dir;  /* YAML journeys published at start; NULL: none */
  struct baton_source *sources;
  size_t n_sources;
  struct baton_admin_key *admin_keys;
  size_t n_admin_keys;
  int log_level;       /* enum jlog_level */
  int http_threads;    /* HTTP event loops; 0: one per CPU online (at most 16) */
  /* limits */
  size_t max_body_bytes;
  size_t max_event_bytes;
  size_t max_batch_events;
  int max_connections; /* HTTP connections at once */
  uint64_t max_engine_lag; /* records durable but not yet applied before ingest answers 429 */
  /* engine */
  int64_t checkpoint_interval_ms;
  size_t recent_events;
  int unsafe_no_fsync; /* benchmarks only: acknowledgements are then NOT durable */
  int no_log_prealloc; /* engine.log_preallocate: false (segments created as they are needed) */
  uint64_t dedup_max;       /* messageIds remembered for de-duplication */
  int64_t dedup_window_ms;  /* ... for at most this long */
  /* identity */
  char **external_ids; /* identify traits that identify a customer; default email, phone */
  size_t n_external_ids;
  /* computed aggregates (docs/aggregates.md) */
  struct agg_def *aggregates;
  size_t n_aggregates;
  /* delivery */
  int delivery_max_attempts;
  int64_t delivery_timeout_ms;
  int64_t delivery_backoff_ms;
  int delivery_concurrency;
};

/* Fills cfg with the documented defaults (listen 127.0.0.1:8080, ./baton-data, ...). */
void baton_config_defaults(struct baton_config *cfg);

/*
 * Loads path over the defaults. Returns 0, or BATON_EIO (cannot read; *err
 * says why) or BATON_EINVAL (*err has file, line, column and message).
 */
int baton_config_load(const char *path, struct baton_config *cfg, struct yerr *err);

/* Parses "host:port" into cfg's listen fields; returns 0 or BATON_EINVAL. */
int baton_config_set_listen(struct baton_config *cfg, const char *addr);

void baton_config_release(struct baton_config *cfg);

/* Adds a source / admin key (copies the strings). */
void baton_config_add_source(struct baton_config *cfg, const char *name, const char *key);
void baton_config_add_admin_key(struct baton_config *cfg, const char *name, const char *key,
                                unsigned scopes);

/* Parses one scope name ("admin", "profiles:read", ...); returns its bits or 0 if unknown. */
unsigned baton_scope_parse(const char *name);

/* Reads a whole file (at most max bytes) into a NUL-terminated heap string. */
int baton_read_file(const char *path, size_t max, char **out, size_t *len);

/*
 * Makes sure cfg has a source and an admin key. If the config named neither,
 * loads them from <data_dir>/credentials.json, creating that file (mode 0600)
 * with a random write key and a random admin key (scope admin) on first use;
 * *created is then 1 so the caller can show them once. Returns 0 or
 * BATON_EIO / BATON_ECORRUPT (message in *err).
 */
int baton_config_ensure_credentials(struct baton_config *cfg, int *created, struct yerr *err);

#endif
