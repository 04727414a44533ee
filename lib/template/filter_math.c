/*
 * Math filters. Operands go through Ruby Liquid's to_number (strings with a
 * dot are floats, others integer prefixes, anything else 0); integer
 * arithmetic stays integer (division and modulo floor, as in Ruby) and
 * switches to float on overflow. Division or modulo by zero fails the render.
 */
#include <math.h>

#include "template/template_int.h"
#include "util/common.h"

static double f_of(const struct value *v) { return v->type == VAL_INT ? (double)v->i : v->f; }

enum { OP_PLUS, OP_MINUS, OP_TIMES, OP_DIV, OP_MOD };

/*
 * Decimal places of the shortest decimal that reads back as f (2.25 -> 2), or
 * -1 when there is none short enough. k / 10^d is correctly rounded, so it
 * equals f exactly when f's shortest form has at most d decimals; f * 10^d
 * is within rounding of k below 2^52. At most 16 multiplications, no printf.
 */
static int decimals(double f) {
  double a = fabs(f), p = 1;
  if (!(a < 1e15)) return -1;
  for (int d = 0; d <= 15; d++, p *= 10)
    if (round(a * p) / p == a) return d;
  return -1;
}

/*
 * The golden suite computes with decimals, not binary floats: "10.1" minus
 * "2.2" is 7.9, 10.1 modulo 7.0 is 3.1. Sums, differences and remainders have
 * at most the operands' decimal places, products their sum; rounding the
 * binary result there gives the decimal answer whenever the operands are
 * what they print as. Quotients are left alone (they are not exact anyway).
 */
static double decimal_round(double res, double a, double b, int op) {
  int da = decimals(a), db = decimals(b);
  if (da < 0 || db < 0 || op == OP_DIV) return res;
  int d = op == OP_TIMES ? da + db : MAX(da, db);
  if (d > 15 || !isfinite(res) || fabs(res) >= 1e15) return res;
  double m = pow(10, d), r = round(res * m) / m;
  return isfinite(r) ? r : res;
}
static int arith(struct rctx *r, const struct value *in, const struct value *arg, int op,
                 struct value *out) {
  struct value x = value_to_num(in), y = value_to_num(arg);
  if (x.type == VAL_INT && y.type == VAL_INT) {
    int64_t res;
    bool ovf = false;
    switch (op) {
    case OP_PLUS: ovf = __builtin_add_overflow(x.i, y.i, &res); break;
    case OP_MINUS: ovf = __builtin_sub_overflow(x.i, y.i, &res); break;
    case OP_TIMES: ovf = __builtin_mul_overflow(x.i, y.i, &res); break;
    case OP_DIV:
    case OP_MOD:
      if (y.i == 0) return filter_fail(r, BATON_ERANGE, "divided by 0");
      if (x.i == INT64_MIN && y.i == -1) {
        ovf = true;
        break;
      }
      res = op == OP_DIV ? x.i / y.i : x.i % y.i;
      /* Ruby floors: adjust C's truncation when the signs differ. */
      if (op == OP_DIV && (x.i % y.i != 0) && ((x.i < 0) != (y.i < 0))) res--;
      if (op == OP_MOD && res != 0 && ((res < 0) != (y.i < 0))) res += y.i;
      break;
    }
    if (!ovf) {
      *out = value_int(res);
      return 0;
    }
  }
  double a = f_of(&x), b = f_of(&y), res = 0;
  switch (op) {
  case OP_PLUS: res = a + b; break;
  case OP_MINUS: res = a - b; break;
  case OP_TIMES: res = a * b; break;
  case OP_DIV:
    if (b == 0) return filter_fail(r, BATON_ERANGE, "divided by 0");
    res = a / b;
    break;
  case OP_MOD:
    if (b == 0) return filter_fail(r, BATON_ERANGE, "divided by 0");
    res = fmod(a, b);
    if (res != 0 && ((res < 0) != (b < 0))) res += b;
    break;
  }
  *out = value_float(decimal_round(res, a, b, op));
  return 0;
}

int f_plus(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return arith(r, in, farg(a, 0), OP_PLUS, out);
}
int f_minus(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return arith(r, in, farg(a, 0), OP_MINUS, out);
}
int f_times(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return arith(r, in, farg(a, 0), OP_TIMES, out);
}
int f_divided_by(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return arith(r, in, farg(a, 0), OP_DIV, out);
}
int f_modulo(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return arith(r, in, farg(a, 0), OP_MOD, out);
}

int f_abs(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value x = value_to_num(in);
  if (x.type == VAL_INT && x.i != INT64_MIN)
    *out = value_int(x.i < 0 ? -x.i : x.i);
  else
    *out = value_float(fabs(f_of(&x)));
  return 0;
}

static struct value to_int_or_float(double d) {
  if (isfinite(d) && fabs(d) < 9.2e18) return value_int((int64_t)d);
  return value_float(d);
}
int f_ceil(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value x = value_to_num(in);
  *out = x.type == VAL_INT ? x : to_int_or_float(ceil(x.f));
  return 0;
}
int f_floor(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value x = value_to_num(in);
  *out = x.type == VAL_INT ? x : to_int_or_float(floor(x.f));
  return 0;
}
int f_round(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  struct value x = value_to_num(in);
  int64_t digits = 0;
  if (a->n) {
    struct value d = value_to_num(farg(a, 0));
    digits = d.type == VAL_INT ? d.i : double_to_i64(d.f);
  }
  if (x.type == VAL_INT) {
    *out = x;
    return 0;
  }
  if (digits < 0) {
    double m = pow(10, (double)(digits < -18 ? 18 : -digits));
    *out = to_int_or_float(round(x.f / m) * m);
    return 0;
  }
  if (digits == 0) {
    *out = to_int_or_float(round(x.f));
    return 0;
  }
  if (digits > 15) {
    *out = x;
    return 0;
  }
  double m = pow(10, (double)digits);
  *out = value_float(round(x.f * m) / m);
  return 0;
}

static int bound(struct rctx *r, const struct value *in, const struct value *arg, bool least,
                 struct value *out) {
  struct value x = value_to_num(in), y = value_to_num(arg);
  double a = f_of(&x), b = f_of(&y);
  if (least)
    *out = a < b ? y : x;
  else
    *out = a > b ? y : x;
  return 0;
}
int f_at_least(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return bound(r, in, farg(a, 0), true, out);
}
int f_at_most(struct rctx *r, const struct value *in, const struct fargs *a, struct value *out) {
  return bound(r, in, farg(a, 0), false, out);
}
