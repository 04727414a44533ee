/*
 * `baton import FILE`: bulk import of profiles (CSV: one row per customer,
 * columns become traits, sent as identify calls) or historical events (JSONL:
 * one Segment call per line) through the tracking API's /v1/batch.
 *
 * Each line is validated locally with the server's own parser, so rejected
 * lines are reported with their line number and reason and never sent. Valid
 * lines go out in batches; after each acknowledged batch the position is saved
 * in FILE.import-state, so an interrupted import resumes where it stopped
 * (--restart ignores the state). Lines without a messageId get one derived
 * from the file name and line number, so a batch resent after a failure
 * carries the same ids. A progress bar shows on a terminal; a summary ends it.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "commands.h"
#include "config/config.h"
#include "ingest/segment.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/common.h"

#define MAX_LINE (1 << 20)
#define MAX_REJECTS_SHOWN 20

static const char usage_text[] =
    "usage: baton import FILE [options]\n\n"
    "Imports customer profiles (FILE.csv) or historical events (FILE.jsonl, FILE.ndjson)\n"
    "through the tracking API of a running server.\n\n"
    "  CSV    a header row, then one customer per row: a userId (or anonymousId) column,\n"
    "         every other non-empty cell becomes a trait; sent as identify calls\n"
    "  JSONL  one Segment call per line, with \"type\" (track, identify, page, screen,\n"
    "         group, alias) and the fields of that call\n\n"
    "Every line is validated before sending; rejected lines are listed with their line\n"
    "number and reason. After each acknowledged batch the position is saved in\n"
    "FILE.import-state: run the same command again to resume after a failure.\n\n"
    "Options:\n"
    "  --url URL          server address (default: $BATON_URL, the config's listen\n"
    "                     address, or http://127.0.0.1:8080)\n"
    "  --write-key KEY    source write key (default: $BATON_WRITE_KEY, the config's first\n"
    "                     source, or DATA_DIR/credentials.json)\n"
    "  --config FILE      read the listen address and write key from a server config\n"
    "  --data-dir DIR     read the write key from DIR/credentials.json (default ./baton-data)\n"
    "  --batch N          events per request (default 500, at most 2500)\n"
    "  --restart          ignore a saved position and start from the first line\n"
    "  --json             print the summary as JSON\n";

struct importer {
  char url[512];
  char key[512];
  const char *file;
  char state_path[4200];
  int is_csv;
  size_t batch_max;
  int json;
  /* progress */
  uint64_t line, taken, rejected, sent_batches;
  uint64_t file_size, offset;
  int64_t started_ms, last_draw_ms;
  int tty;
  /* rejected lines kept for the summary */
  struct buf rejects; /* JSON array body */
  uint64_t shown;
  /* the batch being built */
  struct buf batch;
  size_t batch_n;
  uint64_t batch_end_offset, batch_end_line;
  uint64_t batch_end_rejected; /* rejected lines up to batch_end_line: what a resume has counted */
  struct segment_limits lim;
};

static size_t collect(char *p, size_t size, size_t n, void *arg) {
  struct buf *b = arg;
  return buf_append(b, p, size * n) ? 0 : size * n;
}

static void draw(struct importer *im, int final) {
  if (!im->tty) return;
  int64_t now = clock_now_ms();
  if (!final && now - im->last_draw_ms < 100) return;
  im->last_draw_ms = now;
  double frac = im->file_size ? (double)im->offset / (double)im->file_size : 1.0;
  int width = 30, filled = (int)(frac * width);
  char bar[64];
  for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
  bar[width] = '\0';
  double secs = (double)(now - im->started_ms) / 1000.0;
  fprintf(stderr, "\r[%s] %3.0f%%  %llu lines  %llu taken  %llu rejected  %.0f lines/s ", bar,
          frac * 100, (unsigned long long)im->line, (unsigned long long)im->taken,
          (unsigned long long)im->rejected, secs > 0 ? (double)im->line / secs : 0.0);
  if (final) fputc('\n', stderr);
}

static void reject(struct importer *im, uint64_t line, const char *reason) {
  im->rejected++;
  if (im->rejects.len) buf_putc(&im->rejects, ',');
  buf_printf(&im->rejects, "{\"line\":%llu,\"reason\":", (unsigned long long)line);
  buf_json_str(&im->rejects, reason, strlen(reason));
  buf_putc(&im->rejects, '}');
  if (!im->json && im->shown++ < MAX_REJECTS_SHOWN) {
    if (im->tty) fputc('\r', stderr);
    fprintf(stderr, "%s:%llu: rejected: %s\n", im->file, (unsigned long long)line, reason);
  }
}

static int save_state(struct importer *im) {
  char tmp[4300];
  snprintf(tmp, sizeof(tmp), "%s.tmp", im->state_path);
  FILE *f = fopen(tmp, "w");
  if (!f) return -1;
  struct stat st;
  stat(im->file, &st);
  fprintf(f,
          "{\"file_size\":%llu,\"file_mtime\":%lld,\"offset\":%llu,\"line\":%llu,\"taken\":%llu,"
          "\"rejected\":%llu}\n",
          (unsigned long long)st.st_size, (long long)st.st_mtime,
          (unsigned long long)im->batch_end_offset, (unsigned long long)im->batch_end_line,
          (unsigned long long)im->taken, (unsigned long long)im->batch_end_rejected);
  int ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
  fclose(f);
  return ok && rename(tmp, im->state_path) == 0 ? 0 : -1;
}

/* Sends the pending batch, retrying while the server asks to (429, 5xx, no connection). */
static int flush(struct importer *im) {
  if (!im->batch_n) return 0;
  buf_puts(&im->batch, "]}");
  CURL *h = curl_easy_init();
  char url[700];
  snprintf(url, sizeof(url), "%s/v1/batch", im->url);
  struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
  int rc = -1;
  for (int attempt = 0; attempt < 8; attempt++) {
    struct buf resp;
    buf_init(&resp, 1 << 20);
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_USERNAME, im->key);
    curl_easy_setopt(h, CURLOPT_PASSWORD, "");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, im->batch.ptr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)im->batch.len);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    if (cc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status == 200) {
      buf_release(&resp);
      rc = 0;
      break;
    }
    int retry = cc != CURLE_OK || status == 429 || status >= 500;
    if (!retry) {
      fprintf(stderr, "%sbaton import: the server refused a batch ending at line %llu (HTTP %ld): %s\n",
              im->tty ? "\n" : "", (unsigned long long)im->batch_end_line, status,
              resp.ptr ? resp.ptr : "");
      buf_release(&resp);
      break;
    }
    buf_release(&resp);
    if (attempt == 7) {
      fprintf(stderr, "%sbaton import: giving up after 8 attempts: %s\n", im->tty ? "\n" : "",
              cc != CURLE_OK ? curl_easy_strerror(cc) : "the server keeps answering busy");
      break;
    }
    usleep((useconds_t)(200000u << attempt)); /* 0.2 s, 0.4 s, ... 12.8 s */
  }
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  if (rc) return rc;
  im->taken += im->batch_n;
  im->sent_batches++;
  im->offset = im->batch_end_offset;
  if (save_state(im))
    fprintf(stderr, "baton import: warning: cannot save the position in %s: %s\n", im->state_path,
            strerror(errno));
  buf_clear(&im->batch);
  im->batch_n = 0;
  return 0;
}

/* Validates one call (JSON object) and adds it to the batch. */
static int add_event(struct importer *im, cJSON *ev, uint64_t line, uint64_t end_offset) {
  if (!cJSON_GetObjectItemCaseSensitive(ev, "messageId")) {
    char mid[96], base[64];
    const char *slash = strrchr(im->file, '/');
    snprintf(base, sizeof(base), "%s", slash ? slash + 1 : im->file);
    snprintf(mid, sizeof(mid), "import-%016llx-%llu",
             (unsigned long long)baton_hash64(base, strlen(base), 7), (unsigned long long)line);
    cJSON_AddStringToObject(ev, "messageId", mid);
  }
  char *text = cJSON_PrintUnformatted(ev);
  /* The server's parser decides: the same checks, the same messages. */
  struct segment_out out;
  struct segment_error err;
  segment_out_init(&out);
  struct buf wrapped;
  buf_init(&wrapped, 0);
  buf_printf(&wrapped, "{\"batch\":[%s]}", text);
  int rc = segment_parse(wrapped.ptr, wrapped.len, SEG_BATCH, &im->lim, clock_now_ms(), "import", 1,
                         &out, &err);
  buf_release(&wrapped);
  segment_out_release(&out);
  if (rc) {
    /* The message names fields as in a batch ("batch[0].userId"): drop that prefix. */
    char reason[320];
    size_t k = 0;
    for (const char *m = err.msg; *m && k + 1 < sizeof(reason);) {
      if (!strncmp(m, "batch[0].", 9)) {
        m += 9;
        continue;
      }
      reason[k++] = *m++;
    }
    reason[k] = '\0';
    free(text);
    reject(im, line, reason);
    return 0;
  }
  if (im->batch_n == im->batch_max || im->batch.len + strlen(text) > 400 * 1024) {
    if (flush(im)) {
      free(text);
      return -1;
    }
  }
  if (!im->batch_n) buf_puts(&im->batch, "{\"batch\":[");
  else buf_putc(&im->batch, ',');
  buf_puts(&im->batch, text);
  free(text);
  im->batch_n++;
  im->batch_end_offset = end_offset;
  im->batch_end_line = line;
  /* Lines rejected after this one are read again by a resume, so they must
     not be in the saved count (they were, and a resume counted them twice). */
  im->batch_end_rejected = im->rejected;
  return 0;
}

/* ---- CSV (RFC 4180: quoted fields, "" escapes, newlines inside quotes) ---- */

struct csv_row {
  char **cells;
  size_t n, cap;
};

static void row_clear(struct csv_row *r) {
  for (size_t i = 0; i < r->n; i++) free(r->cells[i]);
  r->n = 0;
}

/* Reads one record; returns 1, 0 at end of file, -1 on a malformed record. *lines
   counts the physical lines consumed. */
static int csv_read(FILE *f, struct csv_row *row, uint64_t *lines) {
  row_clear(row);
  struct buf cell;
  buf_init(&cell, MAX_LINE);
  int c, quoted = 0, any = 0, after_quote = 0;
  for (;;) {
    c = fgetc(f);
    if (c == EOF) {
      if (quoted) {
        buf_release(&cell);
        return -1;
      }
      if (!any) {
        buf_release(&cell);
        return 0;
      }
      break;
    }
    any = 1;
    if (quoted) {
      if (c == '"') {
        int d = fgetc(f);
        if (d == '"') {
          buf_putc(&cell, '"');
        } else {
          quoted = 0;
          after_quote = 1;
          if (d != EOF) ungetc(d, f);
        }
      } else {
        if (c == '\n') (*lines)++;
        if (buf_putc(&cell, (char)c)) {
          buf_release(&cell);
          return -1;
        }
      }
      continue;
    }
    if (c == '"' && cell.len == 0 && !after_quote) {
      quoted = 1;
      continue;
    }
    if (c == ',' || c == '\n') {
      if (row->n == row->cap) {
        row->cap = row->cap ? row->cap * 2 : 16;
        row->cells = xrealloc(row->cells, row->cap * sizeof(*row->cells));
      }
      size_t n = cell.len;
      if (c == '\n' && n && cell.ptr[n - 1] == '\r') n--;
      row->cells[row->n++] = xstrndup(cell.ptr ? cell.ptr : "", n);
      buf_clear(&cell);
      after_quote = 0;
      if (c == '\n') {
        (*lines)++;
        buf_release(&cell);
        return 1;
      }
      continue;
    }
    if (after_quote && c != '\r') { /* text after a closing quote */
      buf_release(&cell);
      while (c != EOF && c != '\n') c = fgetc(f);
      (*lines)++;
      return -1;
    }
    if (buf_putc(&cell, (char)c)) {
      buf_release(&cell);
      return -1;
    }
  }
  if (row->n == row->cap) {
    row->cap = row->cap ? row->cap * 2 : 16;
    row->cells = xrealloc(row->cells, row->cap * sizeof(*row->cells));
  }
  size_t n = cell.len;
  if (n && cell.ptr[n - 1] == '\r') n--;
  row->cells[row->n++] = xstrndup(cell.ptr ? cell.ptr : "", n);
  (*lines)++;
  buf_release(&cell);
  return 1;
}

static int import_csv(struct importer *im, FILE *f, uint64_t skip_to_line) {
  struct csv_row header = {0}, row = {0};
  uint64_t lines = 0;
  int rc = csv_read(f, &header, &lines);
  if (rc <= 0) {
    fprintf(stderr, "baton import: %s: the header row is missing or malformed\n", im->file);
    return -1;
  }
  int uid_col = -1, aid_col = -1;
  for (size_t i = 0; i < header.n; i++) {
    if (!strcmp(header.cells[i], "userId") || !strcmp(header.cells[i], "user_id")) uid_col = (int)i;
    if (!strcmp(header.cells[i], "anonymousId") || !strcmp(header.cells[i], "anonymous_id"))
      aid_col = (int)i;
  }
  if (uid_col < 0 && aid_col < 0) {
    fprintf(stderr, "baton import: %s:1: the header needs a userId (or anonymousId) column\n",
            im->file);
    row_clear(&header);
    free(header.cells);
    return -1;
  }
  int ret = 0;
  for (;;) {
    uint64_t first = lines + 1;
    rc = csv_read(f, &row, &lines);
    if (rc == 0) break;
    im->line = lines;
    im->offset = (uint64_t)ftell(f);
    if (first <= skip_to_line) continue; /* imported before the interruption */
    if (rc < 0) {
      reject(im, first, "malformed CSV (an unterminated quote or text after a closing quote)");
      continue;
    }
    if (row.n == 1 && !row.cells[0][0]) continue; /* blank line */
    if (row.n != header.n) {
      char why[96];
      snprintf(why, sizeof(why), "%zu cells where the header has %zu", row.n, header.n);
      reject(im, first, why);
      continue;
    }
    cJSON *ev = cJSON_CreateObject(), *traits = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", "identify");
    if (uid_col >= 0 && row.cells[uid_col][0])
      cJSON_AddStringToObject(ev, "userId", row.cells[uid_col]);
    if (aid_col >= 0 && row.cells[aid_col][0])
      cJSON_AddStringToObject(ev, "anonymousId", row.cells[aid_col]);
    for (size_t i = 0; i < row.n; i++)
      if ((int)i != uid_col && (int)i != aid_col && row.cells[i][0] && header.cells[i][0])
        cJSON_AddStringToObject(traits, header.cells[i], row.cells[i]);
    cJSON_AddItemToObject(ev, "traits", traits);
    int a = add_event(im, ev, first, im->offset);
    cJSON_Delete(ev);
    draw(im, 0);
    if (a) {
      ret = -1;
      break;
    }
  }
  row_clear(&header);
  free(header.cells);
  row_clear(&row);
  free(row.cells);
  return ret;
}

/* Checks the line as sent, with the server's parser on the endpoint of its type:
   cJSON alone would turn 1e400 into null and cut a string at \u0000, and the
   line re-printed from its tree would no longer show either. Returns 0 if the
   line may go on (an unknown type is left to add_event to report). */
static int check_raw_line(struct importer *im, const char *line, size_t n, const cJSON *ev,
                          uint64_t no) {
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
  char path[64];
  if (!cJSON_IsString(type) || strlen(type->valuestring) > 16) return 0;
  snprintf(path, sizeof(path), "/v1/%s", type->valuestring);
  enum segment_endpoint ep = segment_endpoint_for_path(path);
  if (!ep || ep == SEG_BATCH) return 0;
  struct segment_out out;
  struct segment_error err;
  segment_out_init(&out);
  int rc = segment_parse(line, n, ep, &im->lim, clock_now_ms(), "import", 1, &out, &err);
  segment_out_release(&out);
  if (rc) reject(im, no, err.msg);
  return rc;
}

static int import_jsonl(struct importer *im, FILE *f, uint64_t skip_to_line) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  uint64_t no = 0;
  int ret = 0;
  while ((n = getline(&line, &cap, f)) >= 0) {
    no++;
    im->line = no;
    im->offset = (uint64_t)ftell(f);
    if (no <= skip_to_line) continue;
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    const char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (!*p) continue;
    if ((size_t)n > MAX_LINE) {
      reject(im, no, "line longer than 1 MiB");
      continue;
    }
    if (!baton_utf8_valid(line, (size_t)n)) {
      reject(im, no, "not valid UTF-8");
      continue;
    }
    cJSON *ev = cJSON_ParseWithLength(line, (size_t)n);
    if (!cJSON_IsObject(ev)) {
      reject(im, no, ev ? "not a JSON object" : "not valid JSON");
      cJSON_Delete(ev);
      continue;
    }
    if (check_raw_line(im, line, (size_t)n, ev, no)) {
      cJSON_Delete(ev);
      continue;
    }
    int a = add_event(im, ev, no, im->offset);
    cJSON_Delete(ev);
    draw(im, 0);
    if (a) {
      ret = -1;
      break;
    }
  }
  free(line);
  return ret;
}

int cmd_import(int argc, char **argv) {
  if (argc < 2 || cmd_wants_help(argc, argv)) {
    fputs(usage_text, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  struct importer im = {0};
  const char *url = NULL, *key = NULL, *config = NULL, *data_dir = NULL;
  int restart = 0;
  im.batch_max = 500;
  for (int i = 1; i < argc; i++) {
    const char **dst = !strcmp(argv[i], "--url")         ? &url
                       : !strcmp(argv[i], "--write-key") ? &key
                       : !strcmp(argv[i], "--config")    ? &config
                       : !strcmp(argv[i], "--data-dir")  ? &data_dir
                                                         : NULL;
    if (dst) {
      if (i + 1 >= argc) {
        fprintf(stderr, "baton import: %s needs a value\n", argv[i]);
        return 2;
      }
      *dst = argv[++i];
    } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
      char *end;
      unsigned long v = strtoul(argv[++i], &end, 10);
      if (*end || v < 1 || v > 2500) {
        fprintf(stderr, "baton import: --batch takes 1 to 2500\n");
        return 2;
      }
      im.batch_max = v;
    } else if (!strcmp(argv[i], "--restart")) {
      restart = 1;
    } else if (!strcmp(argv[i], "--json")) {
      im.json = 1;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "baton import: unknown option '%s'\n", argv[i]);
      return 2;
    } else if (!im.file) {
      im.file = argv[i];
    } else {
      fprintf(stderr, "baton import: one file at a time\n");
      return 2;
    }
  }
  if (!im.file) {
    fputs(usage_text, stderr);
    return 2;
  }
  const char *ext = strrchr(im.file, '.');
  if (ext && !strcmp(ext, ".csv")) {
    im.is_csv = 1;
  } else if (!ext || (strcmp(ext, ".jsonl") && strcmp(ext, ".ndjson"))) {
    fprintf(stderr, "baton import: %s: expected a .csv, .jsonl or .ndjson file\n", im.file);
    return 2;
  }
  struct client_target target;
  if (client_resolve("import", CLIENT_WRITE_KEY, 0, url, key, config, data_dir, &target)) return 1;
  snprintf(im.url, sizeof(im.url), "%s", target.url);
  snprintf(im.key, sizeof(im.key), "%s", target.key);
  FILE *f = fopen(im.file, "rb");
  if (!f) {
    fprintf(stderr, "baton import: cannot open %s: %s\n", im.file, strerror(errno));
    return 1;
  }
  struct stat st;
  fstat(fileno(f), &st);
  im.file_size = (uint64_t)st.st_size;
  snprintf(im.state_path, sizeof(im.state_path), "%s.import-state", im.file);
  uint64_t skip_to_line = 0;
  char *state_text;
  size_t state_len;
  if (!restart && baton_read_file(im.state_path, 4096, &state_text, &state_len) == 0) {
    cJSON *s = cJSON_Parse(state_text);
    free(state_text);
    double size = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s, "file_size"));
    double mtime = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s, "file_mtime"));
    if (s && size == (double)st.st_size && mtime == (double)st.st_mtime) {
      skip_to_line = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s, "line"));
      im.taken = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s, "taken"));
      im.rejected = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s, "rejected"));
      im.batch_end_rejected = im.rejected;
      im.batch_end_line = skip_to_line;
      im.batch_end_offset =
          (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s, "offset"));
      fprintf(stderr, "baton import: resuming %s after line %llu (%llu taken before)\n", im.file,
              (unsigned long long)skip_to_line, (unsigned long long)im.taken);
    } else {
      fprintf(stderr, "baton import: %s changed since the saved position; starting over\n",
              im.file);
    }
    cJSON_Delete(s);
  }
  im.lim.max_event_bytes = 32 * 1024;
  im.lim.max_batch_events = 2500;
  buf_init(&im.batch, 0);
  buf_init(&im.rejects, 0);
  im.tty = isatty(2) && !im.json;
  im.started_ms = clock_now_ms();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc = im.is_csv ? import_csv(&im, f, skip_to_line) : import_jsonl(&im, f, skip_to_line);
  if (!rc) rc = flush(&im);
  fclose(f);
  curl_global_cleanup();
  if (!rc) im.offset = im.file_size;
  draw(&im, 1);
  if (!rc) unlink(im.state_path); /* complete: nothing to resume */
  double secs = (double)(clock_now_ms() - im.started_ms) / 1000.0;
  if (im.json) {
    printf("{\"file\":");
    struct buf b;
    buf_init(&b, 0);
    buf_json_str(&b, im.file, strlen(im.file));
    printf("%s,\"complete\":%s,\"lines\":%llu,\"taken\":%llu,\"rejected\":%llu,\"seconds\":%.3f,"
           "\"rejects\":[%s]}\n",
           b.ptr, rc ? "false" : "true", (unsigned long long)im.line,
           (unsigned long long)im.taken, (unsigned long long)im.rejected, secs,
           im.rejects.ptr ? im.rejects.ptr : "");
    buf_release(&b);
  } else {
    printf("%s: %llu lines, %llu taken, %llu rejected in %.1f s%s\n", im.file,
           (unsigned long long)im.line, (unsigned long long)im.taken,
           (unsigned long long)im.rejected, secs,
           rc ? " — stopped; run the same command again to resume" : "");
    if (im.shown > MAX_REJECTS_SHOWN)
      printf("(%llu more rejected lines not shown; use --json for all)\n",
             (unsigned long long)(im.shown - MAX_REJECTS_SHOWN));
  }
  buf_release(&im.batch);
  buf_release(&im.rejects);
  return rc ? 1 : im.rejected ? 3 : 0;
}
