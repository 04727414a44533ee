/*
 * The HTTP front door: the Segment tracking API for sources and the admin API
 * for operators. Event-loop threads (cfg->http_threads) each run a
 * libmicrohttpd daemon (epoll) on one shared listening socket; complete
 * ingest requests are parsed on the loop when small, or go to a pool of
 * workers that validate them in full, and are appended to the event log as
 * one batch without waiting; the connection stays suspended until the log's
 * group commit has made the batch durable, and only then is it answered 200.
 * Only a connection's own loop calls libmicrohttpd for it (a connection is
 * resumed after the handler that suspended it has returned). Admin requests need a Bearer admin key with the right scope.
 * See docs/api.md and docs/architecture.md.
 */
#ifndef BATON_INGEST_SERVER_H
#define BATON_INGEST_SERVER_H

#include "channels/delivery.h"
#include "config/config.h"
#include "engine/engine.h"
#include "evlog/evlog.h"

struct baton_server;

struct server_deps {
  const struct baton_config *cfg;
  struct evlog *log;
  struct engine *engine;
  struct delivery *delivery; /* for /v1/stats; may be NULL */
};

/*
 * Binds cfg->listen_host:listen_port (port 0: any free port) and starts
 * serving. Logs a "listening" line with the actual port. Returns 0 or
 * BATON_EIO (cannot bind; logged) / BATON_EINVAL (bad address).
 */
int server_start(const struct server_deps *deps, struct baton_server **out);

/* The port actually bound. */
int server_port(struct baton_server *s);

/*
 * Stops accepting connections, lets requests in flight finish (up to
 * drain_ms), then closes every connection and frees s.
 */
void server_stop(struct baton_server *s, int drain_ms);

#endif
