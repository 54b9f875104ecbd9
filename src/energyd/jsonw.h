/*
 * A streaming JSON writer for the large answers of the API (history, longterm): values go
 * straight into one growing buffer, with no tree in between. The output is byte for byte what
 * jansson's json_dumps(JSON_COMPACT | JSON_REAL_PRECISION(16)) gives for the same values: reals
 * with 16 significant digits and always a '.' or an exponent, objects in the order written,
 * strings escaped the same way. Non-finite reals are written as null (JSON has no NaN).
 *
 * The buffer grows up to max_bytes, the bound of one answer: past it (or when memory runs out)
 * the writer fails, every later call does nothing, and jsonw_finish returns NULL. Not
 * thread-safe: one writer per request.
 */
#ifndef ENERGY_JSONW_H
#define ENERGY_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONW_DEPTH_MAX 32 /* nesting deeper than this fails the writer */
#define JSONW_REAL_MAX  32 /* bytes of the longest real jsonw_format_real writes, with its NUL */

struct jsonw {
	char *buf;
	size_t len, cap;
	size_t max_bytes; /* the answer's bound (the NUL included) */
	bool failed;      /* over max_bytes, out of memory or nesting too deep */
	int depth;
	bool after_key;                  /* a key was written: the value follows without a comma */
	bool has_items[JSONW_DEPTH_MAX]; /* the open object or array has a member already */
};

/* A writer whose buffer starts at reserve bytes (0: a small default) and never passes
 * max_bytes. */
void jsonw_init(struct jsonw *w, size_t reserve, size_t max_bytes);
/* The NUL-terminated JSON text (malloc'd, the caller frees it), or NULL when the writer failed
 * or the document is not closed; the writer is empty afterwards either way. */
char *jsonw_finish(struct jsonw *w);
/* Drop what was written (after a failure, or to give up). */
void jsonw_free(struct jsonw *w);

void jsonw_object_begin(struct jsonw *w);
void jsonw_object_end(struct jsonw *w);
void jsonw_array_begin(struct jsonw *w);
void jsonw_array_end(struct jsonw *w);
/* A member's name inside an object; its value comes next. */
void jsonw_key(struct jsonw *w, const char *key);

/* A real (16 significant digits), or null when v is NaN or infinite. */
void jsonw_real(struct jsonw *w, double v);
void jsonw_int(struct jsonw *w, int64_t v);
void jsonw_bool(struct jsonw *w, bool v);
void jsonw_null(struct jsonw *w);
/* A string (UTF-8; a byte that is not valid UTF-8 is written as U+FFFD); NULL writes null. */
void jsonw_string(struct jsonw *w, const char *s);

/* Format a finite v as jansson does with JSON_REAL_PRECISION(16) ("%.16g", then ".0" when it
 * has neither '.' nor 'e', and the exponent without '+' or leading zeros). Exact: the digits are
 * those of the correctly rounded decimal, as printf's. Returns the length written into out. */
int jsonw_format_real(char out[JSONW_REAL_MAX], double v);

#endif
