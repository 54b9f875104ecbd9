/* The streaming JSON writer of the large answers (jsonw.h). */
#include "jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSONW_RESERVE_DEFAULT 4096

void jsonw_init(struct jsonw *w, size_t reserve, size_t max_bytes)
{
	*w = (struct jsonw){.max_bytes = max_bytes};
	size_t cap = reserve ? reserve : JSONW_RESERVE_DEFAULT;
	if (cap > max_bytes)
		cap = max_bytes;
	w->buf = cap ? malloc(cap) : NULL;
	if (!w->buf) {
		w->failed = true;
		return;
	}
	w->cap = cap;
	w->buf[0] = '\0';
}

void jsonw_free(struct jsonw *w)
{
	free(w->buf);
	*w = (struct jsonw){.failed = true};
}

char *jsonw_finish(struct jsonw *w)
{
	char *out = NULL;
	if (!w->failed && w->depth == 0 && w->len > 0) {
		w->buf[w->len] = '\0';
		out = w->buf;
		w->buf = NULL;
	}
	jsonw_free(w);
	return out;
}

/* Room for n more bytes and the NUL: the buffer doubles, up to max_bytes. */
static bool reserve(struct jsonw *w, size_t n)
{
	if (w->failed)
		return false;
	if (n >= w->max_bytes - w->len) {
		w->failed = true;
		return false;
	}
	if (w->len + n + 1 <= w->cap)
		return true;
	size_t cap = w->cap * 2 > w->len + n + 1 ? w->cap * 2 : w->len + n + 1;
	if (cap > w->max_bytes)
		cap = w->max_bytes;
	char *nb = realloc(w->buf, cap);
	if (!nb) {
		w->failed = true;
		return false;
	}
	w->buf = nb;
	w->cap = cap;
	return true;
}

/* Before a value or a key: the comma after the previous member, and room for n bytes. */
static bool begin_item(struct jsonw *w, size_t n)
{
	if (!reserve(w, n + 1))
		return false;
	if (w->after_key)
		w->after_key = false;
	else if (w->depth > 0 && w->has_items[w->depth - 1])
		w->buf[w->len++] = ',';
	if (w->depth > 0)
		w->has_items[w->depth - 1] = true;
	return true;
}

static void put(struct jsonw *w, const char *s, size_t n)
{
	if (begin_item(w, n)) {
		memcpy(w->buf + w->len, s, n);
		w->len += n;
	}
}

static void open_nested(struct jsonw *w, char c)
{
	if (w->depth >= JSONW_DEPTH_MAX) {
		w->failed = true;
		return;
	}
	put(w, &c, 1);
	if (!w->failed)
		w->has_items[w->depth++] = false;
}

static void close_nested(struct jsonw *w, char c)
{
	if (w->depth == 0 || w->after_key) {
		w->failed = true;
		return;
	}
	if (reserve(w, 1)) {
		w->buf[w->len++] = c;
		w->depth--;
	}
}

void jsonw_object_begin(struct jsonw *w)
{
	open_nested(w, '{');
}

void jsonw_object_end(struct jsonw *w)
{
	close_nested(w, '}');
}

void jsonw_array_begin(struct jsonw *w)
{
	open_nested(w, '[');
}

void jsonw_array_end(struct jsonw *w)
{
	close_nested(w, ']');
}

void jsonw_null(struct jsonw *w)
{
	put(w, "null", 4);
}

void jsonw_bool(struct jsonw *w, bool v)
{
	put(w, v ? "true" : "false", v ? 4 : 5);
}

void jsonw_int(struct jsonw *w, int64_t v)
{
	char tmp[24];
	int n = 0;
	/* Digits from the end, on the magnitude as unsigned (INT64_MIN has no positive twin). */
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	do {
		tmp[sizeof(tmp) - 1 - n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[sizeof(tmp) - 1 - n++] = '-';
	put(w, tmp + sizeof(tmp) - n, (size_t)n);
}

void jsonw_real(struct jsonw *w, double v)
{
	if (!isfinite(v)) {
		jsonw_null(w);
		return;
	}
	/* With room for the longest real and its comma already there (the usual case: the history
	 * reserves its answer's size), straight into the buffer: begin_item then grows nothing and
	 * fails nothing, as with the real's own length. */
	if (!w->failed && w->cap - w->len > JSONW_REAL_MAX + 2 &&
	    w->max_bytes - w->len > JSONW_REAL_MAX + 2) {
		begin_item(w, JSONW_REAL_MAX);
		w->len += (size_t)jsonw_format_real(w->buf + w->len, v);
		return;
	}
	char tmp[JSONW_REAL_MAX];
	int n = jsonw_format_real(tmp, v);
	put(w, tmp, (size_t)n);
}

/* ---- strings ---------------------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at s (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF), or 0 when it is not one. */
static int utf8_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	int n = s[0] >= 0xC2 && s[0] <= 0xDF   ? 2
	        : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
	        : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4
	                                       : 0;
	for (int k = 1; k < n; k++)
		if ((s[k] & 0xC0) != 0x80)
			return 0;
	if ((n == 3 && s[0] == 0xE0 && s[1] < 0xA0) || (n == 3 && s[0] == 0xED && s[1] >= 0xA0) ||
	    (n == 4 && s[0] == 0xF0 && s[1] < 0x90) || (n == 4 && s[0] == 0xF4 && s[1] >= 0x90))
		return 0;
	return n;
}

/* The escape of byte c as jansson writes it, or NULL when c goes as it is. */
static const char *escape_of(unsigned char c, char seq[8])
{
	switch (c) {
	case '\\':
		return "\\\\";
	case '"':
		return "\\\"";
	case '\b':
		return "\\b";
	case '\f':
		return "\\f";
	case '\n':
		return "\\n";
	case '\r':
		return "\\r";
	case '\t':
		return "\\t";
	default:
		if (c >= 0x20)
			return NULL;
		snprintf(seq, 8, "\\u%04X", c);
		return seq;
	}
}

void jsonw_string(struct jsonw *w, const char *s)
{
	if (!s) {
		jsonw_null(w);
		return;
	}
	/* Every byte becomes at most 6 ("\u001F"); U+FFFD for a bad byte is 3. */
	size_t n = strlen(s);
	if (n > (SIZE_MAX - 2) / 6 || !begin_item(w, 6 * n + 2))
		return;
	char *o = w->buf + w->len;
	*o++ = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		char seq[8];
		const char *e = escape_of(*p, seq);
		int len = e ? 1 : utf8_len(p);
		if (e) {
			size_t el = strlen(e);
			memcpy(o, e, el);
			o += el;
		} else if (len == 0) {
			memcpy(o, "\xEF\xBF\xBD", 3);
			o += 3;
			len = 1;
		} else {
			memcpy(o, p, (size_t)len);
			o += len;
		}
		p += len;
	}
	*o++ = '"';
	w->len = (size_t)(o - w->buf);
}

void jsonw_key(struct jsonw *w, const char *key)
{
	if (w->depth == 0 || w->after_key) {
		w->failed = true;
		return;
	}
	jsonw_string(w, key);
	if (reserve(w, 1)) {
		w->buf[w->len++] = ':';
		w->after_key = true;
	}
}

/* ---- reals ------------------------------------------------------------------------------ */

/* jansson's dtostr after printf: ".0" when neither '.' nor 'e', no '+' or leading zeros in the
 * exponent. */
static int format_slow(char out[JSONW_REAL_MAX], double v)
{
	char tmp[JSONW_REAL_MAX];
	int n = snprintf(tmp, sizeof(tmp), "%.16g", v);
	char *e = strchr(tmp, 'e');
	if (!e && !strchr(tmp, '.')) {
		memcpy(tmp + n, ".0", 3);
		n += 2;
	}
	if (e) {
		char *start = e + 1, *end;
		if (*start == '+')
			memmove(start, start + 1, strlen(start)); /* "e+05" -> "e05" */
		else if (*start == '-')
			start++;
		for (end = start; *end == '0' && end[1]; end++)
			;
		memmove(start, end, strlen(end) + 1);
		n = (int)strlen(tmp);
	}
	memcpy(out, tmp, (size_t)n + 1);
	return n;
}

/* The 8 digits of x < 10^8 into out[0..7]: two halves of 4, each two pairs, so that the
 * divisions (multiplications once compiled) do not wait on one another. */
static void digits8(char *out, uint32_t x)
{
	static const char pairs[] =
	    "00010203040506070809101112131415161718192021222324252627282930313233"
	    "34353637383940414243444546474849505152535455565758596061626364656667"
	    "6869707172737475767778798081828384858687888990919293949596979899";
	uint32_t hi = x / 10000, lo = x % 10000;
	memcpy(out, pairs + 2 * (hi / 100), 2);
	memcpy(out + 2, pairs + 2 * (hi % 100), 2);
	memcpy(out + 4, pairs + 2 * (lo / 100), 2);
	memcpy(out + 6, pairs + 2 * (lo % 100), 2);
}

/*
 * %g's layout of the 16 digits d (10^15 <= d < 10^16) times 10^(e10 - 15): fixed notation when
 * -4 <= e10 < 16, else d.ddde[-]X; trailing zeros dropped, as printf does without '#'. The
 * digits go with copies of a fixed 16 bytes (no call to memcpy for a few bytes), of which the
 * text keeps what it needs: each stays within out's JSONW_REAL_MAX bytes (the text itself is at
 * most 24 and its NUL).
 */
static int layout(char out[JSONW_REAL_MAX], bool negative, uint64_t d, int e10)
{
	char dig[32];
	digits8(dig, (uint32_t)(d / 100000000));
	digits8(dig + 8, (uint32_t)(d % 100000000));
	memset(dig + 16, '0', 16);
	int nd = 16;
	while (nd > 1 && dig[nd - 1] == '0')
		nd--;
	char *o = out;
	*o = '-';
	o += negative;
	if (e10 < -4 || e10 >= 16) {
		o[0] = dig[0];
		o[1] = '.';
		memcpy(o + 2, dig + 1, 16);
		o += nd > 1 ? nd + 1 : 1;
		*o++ = 'e';
		int x = e10;
		*o = '-';
		o += x < 0;
		x = x < 0 ? -x : x;
		if (x >= 100)
			*o++ = (char)('0' + x / 100);
		if (x >= 10)
			*o++ = (char)('0' + x / 10 % 10);
		*o++ = (char)('0' + x % 10);
	} else if (e10 >= 0) {
		memcpy(o, dig, 16);
		o += e10 + 1;
		*o++ = '.';
		/* The fraction's digits, or "0" for an integral value (jansson's ".0"): dig is
		 * padded with zeros. */
		if (e10 <= 13) /* from out + e10 + 3 at most */
			memcpy(o, dig + e10 + 1, 16);
		else
			memcpy(o, dig + e10 + 1, 2);
		o += nd > e10 + 1 ? nd - e10 - 1 : 1;
	} else {
		memcpy(o, "0.000000", 8);
		o += 1 - e10; /* "0." and -e10 - 1 zeros */
		memcpy(o, dig, 16);
		o += nd;
	}
	*o = '\0';
	return (int)(o - out);
}

#ifdef __SIZEOF_INT128__
typedef unsigned __int128 u128;
/* 10^0 .. 10^22: each exact as a double (5^22 < 2^53), so exact here. */
static const u128 pow10_u128[] = {
    (u128)1e0,  (u128)1e1,  (u128)1e2,  (u128)1e3,  (u128)1e4,  (u128)1e5,  (u128)1e6,  (u128)1e7,
    (u128)1e8,  (u128)1e9,  (u128)1e10, (u128)1e11, (u128)1e12, (u128)1e13, (u128)1e14, (u128)1e15,
    (u128)1e16, (u128)1e17, (u128)1e18, (u128)1e19, (u128)1e20, (u128)1e21, (u128)1e22};
#define POW10_MAX 22
#endif

/* floor(x * log10(2)) for |x| < 1100, in integers (78913 / 2^18 is log10(2) to 6 digits). */
static int floor_log10_pow2(int x)
{
	return x >= 0 ? (x * 78913) >> 18 : -((-x * 78913 + (1 << 18) - 1) >> 18);
}

/*
 * The 16 digits of |v| without printf, exactly: |v| = m * 2^e (m the 53-bit significand), so
 * |v| * 10^s = m * 10^s / 2^-e, an integer product (below 2^128 for s <= 22) and a shift whose
 * remainder gives the rounding (half to even, as printf). Covers 1e-7 <= |v| < 2^53 (s from 0
 * to 22, e <= 0): the times and watts of the API; -1 elsewhere, and printf decides.
 */
static int format_fast(char out[JSONW_REAL_MAX], double v)
{
#ifdef __SIZEOF_INT128__
	uint64_t bits;
	memcpy(&bits, &v, sizeof(bits));
	int biased = (int)(bits >> 52 & 0x7FF);
	if (biased == 0 || biased == 0x7FF)
		return -1; /* subnormal, or not finite */
	uint64_t m = (bits & ((1ULL << 52) - 1)) | 1ULL << 52;
	int sh = 1075 - biased; /* |v| = m / 2^sh */
	if (sh < 0 || sh > 127)
		return -1;
	/* |v| lies in [2^(biased-1023), 2^(biased-1022)): its decimal exponent is this or one more.
	 */
	int e10 = floor_log10_pow2(biased - 1023);
	for (int tries = 0; tries < 3; tries++) {
		int s = 15 - e10;
		if (s < 0 || s > POW10_MAX)
			return -1;
		u128 p = (u128)m * pow10_u128[s];
		u128 q = p >> sh;
		if (q < (u128)1e15) {
			e10--;
			continue;
		}
		if (q >= (u128)1e16) {
			e10++;
			continue;
		}
		uint64_t d = (uint64_t)q;
		if (sh > 0) {
			u128 rem = p - (q << sh), half = (u128)1 << (sh - 1);
			d += rem > half || (rem == half && (d & 1));
		}
		if (d == 10000000000000000ULL) {
			d /= 10;
			e10++;
		}
		return layout(out, v < 0, d, e10);
	}
#else
	(void)out;
	(void)v;
#endif
	return -1;
}

int jsonw_format_real(char out[JSONW_REAL_MAX], double v)
{
	if (v == 0) {
		memcpy(out, signbit(v) ? "-0.0" : "0.0", signbit(v) ? 5 : 4);
		return signbit(v) ? 4 : 3;
	}
	int n = format_fast(out, v);
	return n >= 0 ? n : format_slow(out, v);
}
