/*
 * `baton serve`: runs a node until SIGTERM or SIGINT, then stops it cleanly
 * (no new requests, in-flight ones finish, the engine applies the rest of
 * the log and writes a checkpoint) and exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "config/config.h"
#include "node/node.h"
#include "util/common.h"
#include "util/jlog.h"

static const char usage_text[] =
    "usage: baton serve [--config FILE] [--listen HOST:PORT] [--data-dir DIR]\n"
    "                   [--journeys DIR] [--log-level LEVEL]\n\n"
    "Runs Baton: the Segment-compatible tracking API, the admin API, the journey\n"
    "engine and message delivery, on an embedded store in the data directory.\n\n"
    "  --config FILE      YAML configuration (see docs/configuration.md)\n"
    "  --listen HOST:PORT address to listen on (default 127.0.0.1:8080; port 0: any free port)\n"
    "  --data-dir DIR     where the event log and store live (default ./baton-data)\n"
    "  --journeys DIR     publish every journey file in DIR at start (unchanged ones keep their\n"
    "                     version)\n"
    "  --log-level LEVEL  debug, info, warn or error (default info)\n\n"
    "Without sources and admin keys in the config, a write key and an admin key are\n"
    "created on first start, stored in DIR/credentials.json and printed once.\n"
    "Logs are JSON lines on stderr. SIGTERM or SIGINT stops the server cleanly.\n";

int cmd_serve(int argc, char **argv) {
  if (cmd_wants_help(argc, argv)) {
    fputs(usage_text, stdout);
    return 0;
  }
  const char *config = NULL, *listen = NULL, *data_dir = NULL, *journeys = NULL, *level = NULL;
  for (int i = 1; i < argc; i++) {
    const char **dst = !strcmp(argv[i], "--config")      ? &config
                       : !strcmp(argv[i], "--listen")    ? &listen
                       : !strcmp(argv[i], "--data-dir")  ? &data_dir
                       : !strcmp(argv[i], "--journeys")  ? &journeys
                       : !strcmp(argv[i], "--log-level") ? &level
                                                         : NULL;
    if (!dst || i + 1 >= argc) {
      fprintf(stderr, "baton serve: unknown or incomplete option '%s'\n\n%s", argv[i], usage_text);
      return 2;
    }
    *dst = argv[++i];
  }
  struct baton_config cfg;
  baton_config_defaults(&cfg);
  struct yerr err;
  char msg[1024];
  if (config && baton_config_load(config, &cfg, &err)) {
    fprintf(stderr, "baton serve: %s\n", yerr_format(&err, msg, sizeof(msg)));
    baton_config_release(&cfg);
    return 1;
  }
  if (listen && baton_config_set_listen(&cfg, listen)) {
    fprintf(stderr, "baton serve: --listen: expected HOST:PORT, got '%s'\n", listen);
    baton_config_release(&cfg);
    return 2;
  }
  if (data_dir) {
    free(cfg.data_dir);
    cfg.data_dir = xstrdup(data_dir);
  }
  if (journeys) {
    free(cfg.journeys_dir);
    cfg.journeys_dir = xstrdup(journeys);
  }
  if (level) {
    enum jlog_level lvl;
    if (jlog_parse_level(level, &lvl)) {
      fprintf(stderr, "baton serve: --log-level: expected debug, info, warn or error\n");
      baton_config_release(&cfg);
      return 2;
    }
    cfg.log_level = (int)lvl;
  }
  jlog_set_level((enum jlog_level)cfg.log_level);
  mkdir(cfg.data_dir, 0700);
  int created;
  if (baton_config_ensure_credentials(&cfg, &created, &err)) {
    fprintf(stderr, "baton serve: %s\n", yerr_format(&err, msg, sizeof(msg)));
    baton_config_release(&cfg);
    return 1;
  }
  if (created) {
    printf("Created credentials in %s/credentials.json (shown only this once):\n"
           "  write key: %s\n  admin key: %s\n",
           cfg.data_dir, cfg.sources[0].write_key, cfg.admin_keys[0].key);
    fflush(stdout);
  }
  /* Block the stop signals in every thread; this one waits for them. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  struct baton_node *node;
  int rc = baton_node_start(&cfg, &node);
  if (rc) {
    fprintf(stderr, "baton serve: cannot start: %s (see the log lines above)\n",
            baton_strerror(rc));
    baton_config_release(&cfg);
    return 1;
  }
  int sig = 0;
  sigwait(&set, &sig);
  jlog(JLOG_INFO, "stopping", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  baton_node_stop(node);
  jlog(JLOG_INFO, "stopped", NULL, NULL);
  baton_config_release(&cfg);
  return 0;
}
