/*
 * The HTTP front door (libmicrohttpd, epoll, a thread pool): the Segment
 * tracking API for sources and the admin API for operators. Ingest requests
 * are validated in full, appended to the event log as one batch, and answered
 * 200 only once that batch is durable; the connection is suspended meanwhile,
 * so a handful of threads carry thousands of waiting requests. Admin requests
 * need a Bearer admin key with the right scope. See docs/api.md.
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
