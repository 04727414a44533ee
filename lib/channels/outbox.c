/* Outgoing message ids and (de)serialisation; see outbox.h. */
#include "channels/outbox.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"

void outmsg_make_id(char id[OUTMSG_ID_LEN + 1], const char *customer, const char *journey_id,
                    uint32_t version, const char *step_id, uint32_t entry_no) {
  /* SHA-256 over NUL-separated fields, first 128 bits in hex. */
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  char num[32];
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  EVP_DigestUpdate(ctx, customer, strlen(customer) + 1);
  EVP_DigestUpdate(ctx, journey_id, strlen(journey_id) + 1);
  int n = snprintf(num, sizeof(num), "%u", version);
  EVP_DigestUpdate(ctx, num, (size_t)n + 1);
  EVP_DigestUpdate(ctx, step_id, strlen(step_id) + 1);
  n = snprintf(num, sizeof(num), "%u", entry_no);
  EVP_DigestUpdate(ctx, num, (size_t)n + 1);
  EVP_DigestFinal_ex(ctx, md, &mdlen);
  EVP_MD_CTX_free(ctx);
  static const char hex[] = "0123456789abcdef";
  memcpy(id, "msg_", 4);
  for (int i = 0; i < 16; i++) {
    id[4 + 2 * i] = hex[md[i] >> 4];
    id[5 + 2 * i] = hex[md[i] & 15];
  }
  id[OUTMSG_ID_LEN] = '\0';
}

void outmsg_free(struct outmsg *m) {
  if (!m) return;
  free(m->customer);
  free(m->journey_id);
  free(m->step_id);
  free(m->url);
  free(m->headers);
  free(m->body);
  free(m);
}

static int put_str(struct buf *b, const char *s, size_t n) {
  uint32_t len = s ? (uint32_t)n : UINT32_MAX;
  int rc = buf_append(b, &len, 4);
  return rc || !s ? rc : buf_append(b, s, n);
}

int outmsg_encode(const struct outmsg *m, struct buf *b) {
  int rc = buf_append(b, "OM1", 3);
  if (!rc) rc = buf_append(b, m->id, OUTMSG_ID_LEN);
  if (!rc) rc = put_str(b, m->customer, strlen(m->customer));
  if (!rc) rc = put_str(b, m->journey_id, strlen(m->journey_id));
  if (!rc) rc = buf_append(b, &m->version, 4);
  if (!rc) rc = put_str(b, m->step_id, strlen(m->step_id));
  if (!rc) rc = put_str(b, m->url, strlen(m->url));
  if (!rc) rc = put_str(b, m->headers, m->headers ? strlen(m->headers) : 0);
  if (!rc) rc = put_str(b, m->body, m->body_len);
  if (!rc) rc = buf_append(b, &m->created_ms, 8);
  return rc;
}

struct rd {
  const char *p, *end;
  int bad;
};

static char *get_str(struct rd *r, size_t *lenp) {
  uint32_t n;
  if (r->end - r->p < 4) {
    r->bad = 1;
    return NULL;
  }
  memcpy(&n, r->p, 4);
  r->p += 4;
  if (n == UINT32_MAX) return NULL;
  if ((size_t)(r->end - r->p) < n) {
    r->bad = 1;
    return NULL;
  }
  char *s = xstrndup(r->p, n);
  r->p += n;
  if (lenp) *lenp = n;
  return s;
}

struct outmsg *outmsg_decode(const void *data, size_t len) {
  struct rd r = {data, (const char *)data + len, 0};
  if (len < 3 + OUTMSG_ID_LEN || memcmp(r.p, "OM1", 3)) return NULL;
  struct outmsg *m = xcalloc(1, sizeof(*m));
  memcpy(m->id, r.p + 3, OUTMSG_ID_LEN);
  r.p += 3 + OUTMSG_ID_LEN;
  m->customer = get_str(&r, NULL);
  m->journey_id = get_str(&r, NULL);
  if (r.end - r.p >= 4) {
    memcpy(&m->version, r.p, 4);
    r.p += 4;
  } else {
    r.bad = 1;
  }
  m->step_id = get_str(&r, NULL);
  m->url = get_str(&r, NULL);
  m->headers = get_str(&r, NULL);
  m->body = get_str(&r, &m->body_len);
  if (r.end - r.p == 8)
    memcpy(&m->created_ms, r.p, 8);
  else
    r.bad = 1;
  if (r.bad || !m->customer || !m->journey_id || !m->step_id || !m->url || !m->body) {
    outmsg_free(m);
    return NULL;
  }
  return m;
}
