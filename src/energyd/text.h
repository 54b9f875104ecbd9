/*
 * Text that reaches JSON. jansson refuses strings that are not valid UTF-8, and much of what
 * energyd shows comes from elsewhere (process names, cgroup paths, provider answers, query
 * parameters), so every such string passes through here first.
 */
#ifndef ENERGY_TEXT_H
#define ENERGY_TEXT_H

#include <stddef.h>

#include <jansson.h>

/* Copy src into dst (cap bytes, always NUL-terminated) as valid UTF-8: every byte that does not
 * start a well-formed sequence (overlong forms, surrogates and code points above U+10FFFF
 * included) becomes U+FFFD; a sequence that would not fit is cut whole. Returns dst. */
char *text_utf8(char *dst, size_t cap, const char *src);
/* A JSON string of s made valid as above (s may be any bytes); NULL only when out of memory. */
json_t *text_json(const char *s);

#endif
