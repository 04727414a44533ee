/*
 * Journey functions: the part of the language that asks the engine about
 * the customer through struct expr_host — event counts and sums in a window,
 * the last value of an event property, segment and journey membership, open
 * cases, and the time now and in the customer's own time zone. This file
 * checks arguments and turns host answers into values; it holds no data.
 */
#include <string.h>

#include "expr/expr_int.h"

static struct expr_value unavailable(struct vm *vm, int fn, uint32_t pos) {
  return expr_error_new(vm->arena, pos, "%s() is not available here (no journey data)",
                        builtins[fn].name);
}

struct expr_value journey_host_failed(struct expr_arena *a, int fn, int rc, uint32_t pos) {
  return expr_error_new(a, pos, "%s() failed: %s", builtins[fn].name, baton_strerror(rc));
}

/* The window [now - d, now] in ms; returns false for a negative duration. */
static bool window(struct vm *vm, struct expr_value d, int64_t *since, int64_t *until) {
  int64_t now = vm_now_ms(vm);
  *until = now + 1;
  if (d.kind == EXPR_NULL) {
    *since = INT64_MIN;
    return true;
  }
  if (d.v.sec < 0) return false;
  int64_t ms = d.v.sec * 1000 + d.aux / 1000000;
  *since = now - ms;
  return true;
}

static struct expr_value local_field(struct vm *vm, int fn, uint32_t pos) {
  const char *zone = vm->host && vm->host->time_zone ? vm->host->time_zone(vm->hctx) : NULL;
  struct expr_value now = baton_expr_timestamp_ms(vm_now_ms(vm));
  int64_t ls;
  if (ts_local(vm, now, zone, zone ? strlen(zone) : 0, &ls))
    return expr_error_new(vm->arena, pos, "unknown time zone \"%s\"", zone);
  int64_t days = ls >= 0 ? ls / 86400 : (ls - 86399) / 86400, rem = ls - days * 86400;
  if (fn == FN_LOCAL_HOUR) return baton_expr_int(rem / 3600);
  if (fn == FN_LOCAL_MINUTE) return baton_expr_int(rem / 60 % 60);
  return baton_expr_int(((days % 7) + 11) % 7);
}

void journey_call(struct vm *vm, int fn, const struct expr_value *args, int n, uint32_t pos,
                  struct expr_value *out) {
  const struct expr_host *h = vm->host;
  int rc;
  /* Argument kinds: the first is always a string name/id. */
  bool ok = true;
  switch (fn) {
    case FN_NOW:
    case FN_LOCAL_HOUR:
    case FN_LOCAL_MINUTE:
    case FN_LOCAL_WEEKDAY:
      ok = n == 0;
      break;
    case FN_COUNT:
      ok = args[0].kind == EXPR_STRING && (n == 1 || args[1].kind == EXPR_DURATION);
      break;
    case FN_SUM:
      ok = args[0].kind == EXPR_STRING && args[1].kind == EXPR_STRING &&
           (n == 2 || args[2].kind == EXPR_DURATION);
      break;
    case FN_LAST:
      ok = args[0].kind == EXPR_STRING && args[1].kind == EXPR_STRING;
      break;
    case FN_IN_SEGMENT:
    case FN_IN_JOURNEY:
    case FN_OPEN_CASES:
      ok = args[0].kind == EXPR_STRING;
      break;
    default:
      ok = false;
  }
  if (!ok) {
    *out = expr_error_overload(vm->arena, pos, builtins[fn].name, args, n);
    return;
  }
  switch (fn) {
    case FN_NOW:
      *out = baton_expr_timestamp_ms(vm_now_ms(vm));
      return;
    case FN_LOCAL_HOUR:
    case FN_LOCAL_MINUTE:
    case FN_LOCAL_WEEKDAY:
      *out = local_field(vm, fn, pos);
      return;
    case FN_COUNT: {
      if (!h || !h->count_events) break;
      int64_t since, until, c = 0;
      if (!window(vm, n == 2 ? args[1] : baton_expr_null(), &since, &until)) goto negative;
      if ((rc = h->count_events(vm->hctx, args[0].v.s, args[0].aux, since, until, &c))) goto failed;
      *out = baton_expr_int(c);
      return;
    }
    case FN_SUM: {
      if (!h || !h->sum_events) break;
      int64_t since, until;
      double s = 0;
      if (!window(vm, n == 3 ? args[2] : baton_expr_null(), &since, &until)) goto negative;
      if ((rc = h->sum_events(vm->hctx, args[0].v.s, args[0].aux, args[1].v.s, args[1].aux, since,
                              until, &s)))
        goto failed;
      *out = baton_expr_double(s);
      return;
    }
    case FN_LAST: {
      if (!h || !h->last_value) break;
      struct expr_value v;
      rc = h->last_value(vm->hctx, args[0].v.s, args[0].aux, args[1].v.s, args[1].aux, vm->arena,
                         &v);
      if (rc == BATON_ENOENT) {
        *out = baton_expr_null();
        return;
      }
      if (rc) goto failed;
      *out = v;
      return;
    }
    case FN_IN_SEGMENT:
    case FN_IN_JOURNEY: {
      int (*cb)(void *, const char *, size_t, bool *) =
          fn == FN_IN_SEGMENT ? (h ? h->in_segment : NULL) : (h ? h->in_journey : NULL);
      if (!cb) break;
      bool b = false;
      if ((rc = cb(vm->hctx, args[0].v.s, args[0].aux, &b))) goto failed;
      *out = baton_expr_bool(b);
      return;
    }
    case FN_OPEN_CASES: {
      if (!h || !h->open_cases) break;
      int64_t c = 0;
      if ((rc = h->open_cases(vm->hctx, args[0].v.s, args[0].aux, &c))) goto failed;
      *out = baton_expr_int(c);
      return;
    }
  }
  *out = unavailable(vm, fn, pos);
  return;
negative:
  *out = expr_error_new(vm->arena, pos, "%s(): the window must not be negative", builtins[fn].name);
  return;
failed:
  *out = journey_host_failed(vm->arena, fn, rc, pos);
}
