#include "text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 table 3-7), or 0. */
static size_t utf8_seq_len(const unsigned char *s)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t n;
	unsigned char lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0; /* no overlong forms */
		else if (c == 0xED)
			hi = 0x9F; /* no surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F; /* nothing above U+10FFFF */
	} else
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < n; k++)
		if (s[k] < 0x80 || s[k] > 0xBF)
			return 0;
	return n;
}

char *text_utf8(char *dst, size_t cap, const char *src)
{
	static const char replacement[] = "\xEF\xBF\xBD";
	size_t o = 0;
	if (!cap)
		return dst;
	for (const unsigned char *p = (const unsigned char *)src; *p;) {
		size_t n = utf8_seq_len(p);
		const char *from = n ? (const char *)p : replacement;
		size_t len = n ? n : 3;
		if (o + len >= cap)
			break;
		memcpy(dst + o, from, len);
		o += len;
		p += n ? n : 1;
	}
	dst[o] = '\0';
	return dst;
}

json_t *text_json(const char *s)
{
	if (!s)
		return json_null();
	json_t *j = json_string(s);
	if (j)
		return j;
	size_t cap = strlen(s) * 3 + 1; /* each byte at most becomes U+FFFD */
	char *buf = malloc(cap);
	if (!buf)
		return NULL;
	j = json_string(text_utf8(buf, cap, s));
	free(buf);
	return j;
}
