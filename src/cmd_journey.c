/*
 * `baton journey`: a client of the admin API for journeys. `publish`
 * validates each file locally (so errors show file, line and column without a
 * round trip) and PUTs it to /v1/journeys/{id}; `list` and `show` read them.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "commands.h"
#include "config/config.h"
#include "journey/journey.h"
#include "util/buf.h"
#include "util/common.h"

static const char usage_text[] =
    "usage: baton journey publish FILE... [options]\n"
    "       baton journey list [--json] [options]\n"
    "       baton journey show ID [options]\n\n"
    "Publishes and reads journeys through the admin API of a running server.\n"
    "  publish  validate each YAML or JSON journey file and publish it as a new version\n"
    "           (publishing an unchanged file keeps the current version)\n"
    "  list     list published journeys: id, version, customers active, trigger\n"
    "  show     print one journey as JSON: its source and per-version figures\n\n"
    "Options:\n"
    "  --url URL          server address (default: $BATON_URL, the config's listen\n"
    "                     address, or http://127.0.0.1:8080)\n"
    "  --admin-key KEY    admin key (default: $BATON_ADMIN_KEY, the config's first\n"
    "                     admin key, or DATA_DIR/credentials.json)\n"
    "  --config FILE      read the listen address and admin key from a server config\n"
    "  --data-dir DIR     read the admin key from DIR/credentials.json (default ./baton-data)\n"
    "  --json             print the server's JSON answer as it is\n";

struct client {
  char url[512];
  char key[512];
  int json;
};

static size_t collect(char *p, size_t size, size_t n, void *arg) {
  struct buf *b = arg;
  return buf_append(b, p, size * n) ? 0 : size * n;
}

/* Performs one request; returns the HTTP status (0 on a transport error). */
static long request(const struct client *c, const char *method, const char *path,
                    const char *body, size_t len, struct buf *out) {
  CURL *h = curl_easy_init();
  char url[1024], auth[600];
  snprintf(url, sizeof(url), "%s%s", c->url, path);
  snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->key);
  struct curl_slist *hdrs = curl_slist_append(NULL, auth);
  hdrs = curl_slist_append(hdrs, "Content-Type: application/yaml");
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
  if (body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  }
  long status = 0;
  CURLcode rc = curl_easy_perform(h);
  if (rc == CURLE_OK)
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  else
    fprintf(stderr, "baton journey: cannot reach %s: %s\n", c->url, curl_easy_strerror(rc));
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  return status;
}

static void print_error(long status, const struct buf *b) {
  cJSON *j = cJSON_ParseWithLength(b->ptr ? b->ptr : "", b->len);
  const cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
  fprintf(stderr, "baton journey: server answered %ld: %s\n", status,
          cJSON_IsString(e) ? e->valuestring : (b->ptr ? b->ptr : ""));
  cJSON_Delete(j);
}

static int publish(struct client *c, const char *file) {
  char *text;
  size_t len;
  int rc = baton_read_file(file, JOURNEY_MAX_SOURCE, &text, &len);
  if (rc) {
    fprintf(stderr, "baton journey: cannot read %s: %s\n", file,
            rc == BATON_ETOOBIG ? "file over 256 KiB" : "no such file or not readable");
    return 1;
  }
  struct journey_def *def;
  struct yerr err;
  char msg[1024];
  if (journey_parse(text, len, file, NULL, &def, &err)) {
    fprintf(stderr, "%s\n", yerr_format(&err, msg, sizeof(msg)));
    free(text);
    return 1;
  }
  char path[160];
  snprintf(path, sizeof(path), "/v1/journeys/%s", def->id);
  struct buf out;
  buf_init(&out, 1 << 20);
  long status = request(c, "PUT", path, text, len, &out);
  free(text);
  int ret = 0;
  if (status == 200) {
    cJSON *j = cJSON_ParseWithLength(out.ptr, out.len);
    const cJSON *v = j ? cJSON_GetObjectItemCaseSensitive(j, "version") : NULL;
    if (c->json)
      printf("%s\n", out.ptr);
    else
      printf("published %s version %d\n", def->id, cJSON_IsNumber(v) ? v->valueint : 0);
    cJSON_Delete(j);
  } else {
    if (status) print_error(status, &out);
    ret = 1;
  }
  journey_free(def);
  buf_release(&out);
  return ret;
}

static int list(struct client *c) {
  struct buf out;
  buf_init(&out, 64 << 20);
  long status = request(c, "GET", "/v1/journeys", NULL, 0, &out);
  if (status != 200) {
    if (status) print_error(status, &out);
    buf_release(&out);
    return 1;
  }
  if (c->json) {
    printf("%s\n", out.ptr);
    buf_release(&out);
    return 0;
  }
  cJSON *arr = cJSON_ParseWithLength(out.ptr, out.len);
  printf("%-24s %7s %8s %8s  %s\n", "ID", "VERSION", "ACTIVE", "ENTERED", "TRIGGER");
  const cJSON *j;
  cJSON_ArrayForEach(j, arr) {
    const cJSON *versions = cJSON_GetObjectItemCaseSensitive(j, "versions");
    double active = 0, entered = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, versions) {
      active += cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(v, "active"));
      entered += cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(v, "entered"));
    }
    const cJSON *trig = cJSON_GetObjectItemCaseSensitive(j, "trigger");
    printf("%-24s %7d %8.0f %8.0f  event %s\n",
           cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "id")),
           (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "version")), active,
           entered, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(trig, "event")));
  }
  cJSON_Delete(arr);
  buf_release(&out);
  return 0;
}

static int show(struct client *c, const char *id) {
  char path[160];
  if (!journey_id_valid(id)) {
    fprintf(stderr, "baton journey: '%s' is not a valid journey id\n", id);
    return 1;
  }
  snprintf(path, sizeof(path), "/v1/journeys/%s", id);
  struct buf out;
  buf_init(&out, 64 << 20);
  long status = request(c, "GET", path, NULL, 0, &out);
  if (status != 200) {
    if (status) print_error(status, &out);
    buf_release(&out);
    return 1;
  }
  printf("%s\n", out.ptr);
  buf_release(&out);
  return 0;
}

int cmd_journey(int argc, char **argv) {
  if (argc < 2 || cmd_wants_help(argc, argv)) {
    fputs(usage_text, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *sub = argv[1];
  const char *url = NULL, *key = NULL, *config = NULL, *data_dir = NULL;
  struct client c = {0};
  const char *args[256];
  int n_args = 0;
  for (int i = 2; i < argc; i++) {
    const char **dst = !strcmp(argv[i], "--url")         ? &url
                       : !strcmp(argv[i], "--admin-key") ? &key
                       : !strcmp(argv[i], "--config")    ? &config
                       : !strcmp(argv[i], "--data-dir")  ? &data_dir
                                                         : NULL;
    if (!strcmp(argv[i], "--json")) {
      c.json = 1;
    } else if (dst) {
      if (i + 1 >= argc) {
        fprintf(stderr, "baton journey: %s needs a value\n", argv[i]);
        return 2;
      }
      *dst = argv[++i];
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "baton journey: unknown option '%s'\n", argv[i]);
      return 2;
    } else if (n_args < 256) {
      args[n_args++] = argv[i];
    }
  }
  int is_publish = !strcmp(sub, "publish"), is_list = !strcmp(sub, "list"),
      is_show = !strcmp(sub, "show");
  if (!is_publish && !is_list && !is_show) {
    fprintf(stderr, "baton journey: unknown subcommand '%s'\n\n%s", sub, usage_text);
    return 2;
  }
  if ((is_publish && n_args < 1) || (is_show && n_args != 1) || (is_list && n_args)) {
    fputs(usage_text, stderr);
    return 2;
  }
  struct client_target target;
  if (client_resolve("journey", CLIENT_ADMIN_KEY,
                     is_publish ? BATON_SCOPE_JOURNEYS_WRITE : BATON_SCOPE_JOURNEYS_READ, url, key,
                     config, data_dir, &target))
    return 1;
  snprintf(c.url, sizeof(c.url), "%s", target.url);
  snprintf(c.key, sizeof(c.key), "%s", target.key);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int ret = 0;
  if (is_publish)
    for (int i = 0; i < n_args; i++) ret |= publish(&c, args[i]);
  else if (is_list)
    ret = list(&c);
  else
    ret = show(&c, args[0]);
  curl_global_cleanup();
  return ret;
}
