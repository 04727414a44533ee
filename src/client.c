/* Server address and key resolution for the CLI's client commands; see client.h. */
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "util/common.h"

int client_resolve(const char *cmd, enum client_key_kind kind, unsigned scopes, const char *url,
                   const char *key, const char *config, const char *data_dir,
                   struct client_target *t) {
  struct baton_config cfg;
  baton_config_defaults(&cfg);
  if (data_dir) {
    free(cfg.data_dir);
    cfg.data_dir = xstrdup(data_dir);
  }
  struct yerr err;
  char msg[1024];
  if (config && baton_config_load(config, &cfg, &err)) {
    fprintf(stderr, "baton %s: %s\n", cmd, yerr_format(&err, msg, sizeof(msg)));
    baton_config_release(&cfg);
    return -1;
  }
  if (!url) url = getenv("BATON_URL");
  if (!key) key = getenv(kind == CLIENT_ADMIN_KEY ? "BATON_ADMIN_KEY" : "BATON_WRITE_KEY");
  if (url) {
    snprintf(t->url, sizeof(t->url), "%s", url);
  } else {
    const char *host = !strcmp(cfg.listen_host, "0.0.0.0") ? "127.0.0.1" : cfg.listen_host;
    int v6 = strchr(host, ':') != NULL;
    snprintf(t->url, sizeof(t->url), "http://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "",
             cfg.listen_port);
  }
  size_t n = strlen(t->url);
  while (n && t->url[n - 1] == '/') t->url[--n] = '\0';
  if (!key && kind == CLIENT_ADMIN_KEY)
    for (size_t i = 0; i < cfg.n_admin_keys && !key; i++)
      if ((cfg.admin_keys[i].scopes & scopes) == scopes) key = cfg.admin_keys[i].key;
  if (!key && kind == CLIENT_WRITE_KEY && cfg.n_sources) key = cfg.sources[0].write_key;
  if (!key && !cfg.n_admin_keys && !cfg.n_sources) {
    /* The credentials a server without configured keys generated in its data dir. */
    char path[4096];
    int created = 0;
    snprintf(path, sizeof(path), "%s/credentials.json", cfg.data_dir);
    if (access(path, R_OK) == 0 && !baton_config_ensure_credentials(&cfg, &created, &err))
      key = kind == CLIENT_ADMIN_KEY ? cfg.admin_keys[0].key : cfg.sources[0].write_key;
  }
  if (!key) {
    fprintf(stderr, "baton %s: no %s key: pass --%s, set %s, or use --config or --data-dir\n",
            cmd, kind == CLIENT_ADMIN_KEY ? "admin" : "write",
            kind == CLIENT_ADMIN_KEY ? "admin-key" : "write-key",
            kind == CLIENT_ADMIN_KEY ? "BATON_ADMIN_KEY" : "BATON_WRITE_KEY");
    baton_config_release(&cfg);
    return -1;
  }
  snprintf(t->key, sizeof(t->key), "%s", key);
  baton_config_release(&cfg);
  return 0;
}
