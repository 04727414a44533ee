/*
 * The lexer: turns CEL source into tokens, decoding numeric literals and
 * string/bytes literals (quotes, triple quotes, raw and bytes prefixes,
 * every CEL escape) into the arena. It knows nothing of grammar; reserved
 * words are identifiers here and the parser decides where they may appear.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr_int.h"

static const char *const tok_names[] = {
#define TOK_NAME(name, text) text,
    TOKEN_LIST(TOK_NAME)
#undef TOK_NAME
};

const char *token_name(enum tok_kind k) { return tok_names[k]; }

static int lex_error(struct lexer *lx, struct token *t, uint32_t pos, const char *msg) {
  diag_set(lx->diag, lx->src, lx->len, pos, "%s", msg);
  t->kind = TOK_ERROR;
  t->pos = pos;
  return TOK_ERROR;
}

static bool is_ident_start(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static size_t utf8_put(char *out, uint32_t cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/*
 * Scans a quoted literal starting at the quote. The decoded contents are
 * never longer than the source text, so one arena piece of that size holds
 * them. Escapes in a string give code points (UTF-8 encoded); \x and octal
 * escapes in bytes give single bytes.
 */
static int lex_string(struct lexer *lx, struct token *t, uint32_t start, bool raw, bool bytes) {
  const char *s = lx->src;
  size_t n = lx->len, i = lx->pos;
  char q = s[i];
  bool triple = i + 2 < n && s[i + 1] == q && s[i + 2] == q;
  i += triple ? 3 : 1;
  char *out = arena_alloc(lx->arena, n - i + 1);
  if (!out) return lex_error(lx, t, start, "expression too large");
  size_t o = 0;
  for (;;) {
    if (i >= n) return lex_error(lx, t, start, "unterminated string literal");
    char c = s[i];
    if (c == q && (!triple || (i + 2 < n && s[i + 1] == q && s[i + 2] == q))) {
      i += triple ? 3 : 1;
      break;
    }
    if (!triple && (c == '\n' || c == '\r'))
      return lex_error(lx, t, (uint32_t)i, "newline in string literal");
    if (c != '\\' || raw) {
      out[o++] = c;
      i++;
      continue;
    }
    uint32_t epos = (uint32_t)i;
    if (++i >= n) return lex_error(lx, t, epos, "unterminated string literal");
    c = s[i++];
    switch (c) {
      case 'a':
        out[o++] = '\a';
        break;
      case 'b':
        out[o++] = '\b';
        break;
      case 'f':
        out[o++] = '\f';
        break;
      case 'n':
        out[o++] = '\n';
        break;
      case 'r':
        out[o++] = '\r';
        break;
      case 't':
        out[o++] = '\t';
        break;
      case 'v':
        out[o++] = '\v';
        break;
      case '\\':
      case '\'':
      case '"':
      case '`':
      case '?':
        out[o++] = c;
        break;
      case 'x':
      case 'X':
      case 'u':
      case 'U': {
        int digits = (c == 'x' || c == 'X') ? 2 : c == 'u' ? 4 : 8;
        if (bytes && (c == 'u' || c == 'U'))
          return lex_error(lx, t, epos, "unicode escape in bytes literal");
        uint32_t v = 0;
        for (int k = 0; k < digits; k++) {
          int h = i < n ? hexval((unsigned char)s[i]) : -1;
          if (h < 0) return lex_error(lx, t, epos, "invalid escape sequence");
          v = v * 16 + (uint32_t)h;
          i++;
        }
        if (bytes) {
          out[o++] = (char)v;
        } else {
          if (v > 0x10FFFF || (v >= 0xD800 && v < 0xE000))
            return lex_error(lx, t, epos, "invalid code point in escape sequence");
          o += utf8_put(out + o, v);
        }
        break;
      }
      case '0':
      case '1':
      case '2':
      case '3': {
        uint32_t v = (uint32_t)(c - '0');
        for (int k = 0; k < 2; k++) {
          if (i >= n || s[i] < '0' || s[i] > '7')
            return lex_error(lx, t, epos, "invalid octal escape sequence");
          v = v * 8 + (uint32_t)(s[i++] - '0');
        }
        if (bytes)
          out[o++] = (char)v;
        else
          o += utf8_put(out + o, v);
        break;
      }
      default:
        return lex_error(lx, t, epos, "invalid escape sequence");
    }
  }
  if (!bytes && !baton_utf8_valid(out, o))
    return lex_error(lx, t, start, "string literal is not valid UTF-8");
  out[o] = 0;
  lx->pos = i;
  t->kind = bytes ? TOK_BYTES : TOK_STRING;
  t->str = out;
  t->str_len = o;
  t->len = (uint32_t)(i - start);
  return t->kind;
}

static int lex_number(struct lexer *lx, struct token *t, uint32_t start) {
  const char *s = lx->src;
  size_t n = lx->len, i = lx->pos;
  bool is_double = false;
  if (s[i] == '0' && i + 1 < n && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
    i += 2;
    size_t d0 = i;
    while (i < n && hexval((unsigned char)s[i]) >= 0) i++;
    if (i == d0) return lex_error(lx, t, start, "invalid hex literal");
  } else {
    while (i < n && is_digit(s[i])) i++;
    if (i + 1 < n && s[i] == '.' && is_digit(s[i + 1])) {
      is_double = true;
      i++;
      while (i < n && is_digit(s[i])) i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
      size_t j = i + 1;
      if (j < n && (s[j] == '+' || s[j] == '-')) j++;
      if (j < n && is_digit(s[j])) {
        is_double = true;
        i = j;
        while (i < n && is_digit(s[i])) i++;
      }
    }
  }
  char tmp[128];
  size_t len = i - lx->pos;
  if (len >= sizeof(tmp)) return lex_error(lx, t, start, "numeric literal too long");
  memcpy(tmp, s + lx->pos, len);
  tmp[len] = 0;
  errno = 0;
  if (is_double) {
    t->kind = TOK_DOUBLE;
    t->num.d = strtod(tmp, NULL);
  } else {
    bool u = i < n && (s[i] == 'u' || s[i] == 'U');
    unsigned long long v = strtoull(tmp, NULL, 0);
    if (errno == ERANGE) return lex_error(lx, t, start, "integer literal out of range");
    if (u) i++;
    t->kind = u ? TOK_UINT : TOK_INT;
    /* INT keeps the magnitude: the parser accepts 9223372036854775808 only
     * under a unary minus. */
    t->num.u = v;
  }
  if (i < n && (is_ident_start((unsigned char)s[i]) || s[i] == '.') && !(s[i] == '.' && !is_double))
    return lex_error(lx, t, start, "invalid numeric literal");
  lx->pos = i;
  t->len = (uint32_t)(i - start);
  return t->kind;
}

int lexer_next(struct lexer *lx, struct token *t) {
  const char *s = lx->src;
  size_t n = lx->len;
  memset(t, 0, sizeof(*t));
  for (;;) {
    while (lx->pos < n && (s[lx->pos] == ' ' || s[lx->pos] == '\t' || s[lx->pos] == '\n' ||
                           s[lx->pos] == '\r' || s[lx->pos] == '\f'))
      lx->pos++;
    if (lx->pos + 1 < n && s[lx->pos] == '/' && s[lx->pos + 1] == '/') {
      while (lx->pos < n && s[lx->pos] != '\n') lx->pos++;
      continue;
    }
    break;
  }
  uint32_t start = (uint32_t)lx->pos;
  t->pos = start;
  t->len = 1;
  if (lx->pos >= n) {
    t->kind = TOK_EOF;
    t->len = 0;
    return TOK_EOF;
  }
  char c = s[lx->pos];
  char c1 = lx->pos + 1 < n ? s[lx->pos + 1] : 0;
  /* String prefixes: r, b, rb, br in either case. */
  if (is_ident_start((unsigned char)c)) {
    size_t i = lx->pos;
    bool raw = false, bytes = false;
    for (int k = 0; k < 2 && i < n; k++) {
      if ((s[i] == 'r' || s[i] == 'R') && !raw) {
        raw = true;
        i++;
      } else if ((s[i] == 'b' || s[i] == 'B') && !bytes) {
        bytes = true;
        i++;
      } else {
        break;
      }
    }
    if ((raw || bytes) && i < n && (s[i] == '"' || s[i] == '\'')) {
      lx->pos = i;
      return lex_string(lx, t, start, raw, bytes);
    }
    i = lx->pos;
    while (i < n && (is_ident_start((unsigned char)s[i]) || is_digit(s[i]))) i++;
    t->len = (uint32_t)(i - lx->pos);
    t->str = s + lx->pos;
    t->str_len = t->len;
    lx->pos = i;
    if (t->len == 4 && !memcmp(t->str, "true", 4)) return t->kind = TOK_TRUE;
    if (t->len == 5 && !memcmp(t->str, "false", 5)) return t->kind = TOK_FALSE;
    if (t->len == 4 && !memcmp(t->str, "null", 4)) return t->kind = TOK_NULL;
    if (t->len == 2 && !memcmp(t->str, "in", 2)) return t->kind = TOK_IN;
    return t->kind = TOK_IDENT;
  }
  if (is_digit(c) || (c == '.' && is_digit(c1))) return lex_number(lx, t, start);
  if (c == '"' || c == '\'') return lex_string(lx, t, start, false, false);
  if (c == '`') {
    /* A quoted field name: a.`b-c` */
    size_t i = lx->pos + 1;
    while (i < n && s[i] != '`' && s[i] != '\n') i++;
    if (i >= n || s[i] != '`' || i == lx->pos + 1)
      return lex_error(lx, t, start, "unterminated quoted identifier");
    t->kind = TOK_IDENT;
    t->str = s + lx->pos + 1;
    t->str_len = i - lx->pos - 1;
    t->len = (uint32_t)(i + 1 - lx->pos);
    t->num.u = 1; /* marks a quoted name: only valid after '.' */
    lx->pos = i + 1;
    return TOK_IDENT;
  }
  enum tok_kind k;
  int two = 0;
  switch (c) {
    case '(':
      k = TOK_LPAREN;
      break;
    case ')':
      k = TOK_RPAREN;
      break;
    case '[':
      k = TOK_LBRACKET;
      break;
    case ']':
      k = TOK_RBRACKET;
      break;
    case '{':
      k = TOK_LBRACE;
      break;
    case '}':
      k = TOK_RBRACE;
      break;
    case '.':
      k = TOK_DOT;
      break;
    case ',':
      k = TOK_COMMA;
      break;
    case ':':
      k = TOK_COLON;
      break;
    case '?':
      k = TOK_QUESTION;
      break;
    case '+':
      k = TOK_PLUS;
      break;
    case '-':
      k = TOK_MINUS;
      break;
    case '*':
      k = TOK_STAR;
      break;
    case '/':
      k = TOK_SLASH;
      break;
    case '%':
      k = TOK_PERCENT;
      break;
    case '|':
      if (c1 != '|') return lex_error(lx, t, start, "unexpected character '|'");
      k = TOK_OROR, two = 1;
      break;
    case '&':
      if (c1 != '&') return lex_error(lx, t, start, "unexpected character '&'");
      k = TOK_ANDAND, two = 1;
      break;
    case '=':
      if (c1 != '=') return lex_error(lx, t, start, "unexpected character '='");
      k = TOK_EQ, two = 1;
      break;
    case '!':
      if (c1 == '=')
        k = TOK_NE, two = 1;
      else
        k = TOK_BANG;
      break;
    case '<':
      if (c1 == '=')
        k = TOK_LE, two = 1;
      else
        k = TOK_LT;
      break;
    case '>':
      if (c1 == '=')
        k = TOK_GE, two = 1;
      else
        k = TOK_GT;
      break;
    default:
      if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
        diag_set(lx->diag, s, n, start, "unexpected character '%c'", c);
      else
        diag_set(lx->diag, s, n, start, "unexpected character 0x%02x", (unsigned char)c);
      t->kind = TOK_ERROR;
      return TOK_ERROR;
  }
  lx->pos += 1 + (size_t)two;
  t->len = 1 + (uint32_t)two;
  return t->kind = k;
}
