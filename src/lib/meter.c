/*
 * The meter: tagged segments of time whose energy energyd reports after the fact. While running
 * it only reads clocks, so measuring a short function costs two clock reads; stop() does the
 * HTTP requests, one per segment.
 */
#define _GNU_SOURCE
#include "energy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct energy_meter {
	struct energy_client *client;
	bool running; /* between energy_meter_start and _stop */
	struct energy_sample *samples;
	size_t n, cap;             /* samples kept, and room */
	uint64_t segment_start_ns; /* monotonic start of the running segment */
};

int energy_meter_new(struct energy_client *c, struct energy_meter **out)
{
	struct energy_meter *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->client = c;
	*out = m;
	return 0;
}

void energy_meter_free(struct energy_meter *m)
{
	if (m) {
		free(m->samples);
		free(m);
	}
}

static int meter_open_segment(struct energy_meter *m, const char *tag)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 8;
		struct energy_sample *s = realloc(m->samples, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		m->samples = s;
		m->cap = cap;
	}
	struct energy_sample *s = &m->samples[m->n++];
	memset(s, 0, sizeof(*s));
	snprintf(s->tag, sizeof(s->tag), "%s", tag ? tag : "");
	s->timestamp = energy_wall_time();
	m->segment_start_ns = energy_monotonic_ns();
	return 0;
}

static void meter_close_segment(struct energy_meter *m)
{
	struct energy_sample *s = &m->samples[m->n - 1];
	s->duration_s = (double)(energy_monotonic_ns() - m->segment_start_ns) / 1e9;
}

int energy_meter_start(struct energy_meter *m, const char *tag)
{
	if (m->running)
		return -EALREADY;
	m->n = 0;
	int rc = meter_open_segment(m, tag);
	if (rc == 0)
		m->running = true;
	return rc;
}

int energy_meter_record(struct energy_meter *m, const char *tag)
{
	if (!m->running)
		return -EINVAL;
	meter_close_segment(m);
	return meter_open_segment(m, tag);
}

int energy_meter_stop(struct energy_meter *m)
{
	if (!m->running)
		return -EINVAL;
	meter_close_segment(m);
	m->running = false;
	for (size_t i = 0; i < m->n; i++) {
		struct energy_sample *s = &m->samples[i];
		int rc = energy_between(m->client, s->timestamp, s->timestamp + s->duration_s,
		                        &s->energy);
		if (rc < 0)
			return rc;
	}
	return 0;
}

size_t energy_meter_count(const struct energy_meter *m)
{
	return m->running ? 0 : m->n;
}

const struct energy_sample *energy_meter_sample(const struct energy_meter *m, size_t i)
{
	return !m->running && i < m->n ? &m->samples[i] : NULL;
}
