/*
 * Measure two phases of a program with libenergy's meter: one second of sleep, then about half a
 * second of busy computation. Prints one line per phase and channel:
 *
 *   PHASE CHANNEL JOULES WATTS measured|estimated
 *
 * Build: part of the meson build (build/measure). Run with energyd running, or point
 * ENERGYD_SOCKET (or the first argument) at its socket.
 */
#include "energy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static double spin(double seconds)
{
	double x = 0;
	uint64_t end = energy_monotonic_ns() + (uint64_t)(seconds * 1e9);
	while (energy_monotonic_ns() < end)
		for (int i = 1; i < 1000; i++)
			x += sqrt((double)i);
	return x;
}

int main(int argc, char **argv)
{
	struct energy_client *client;
	struct energy_meter *meter;
	int rc = energy_client_open(argc > 1 ? argv[1] : NULL, &client);
	if (rc < 0) {
		fprintf(stderr, "measure: bad energyd address: %s\n", strerror(-rc));
		return 1;
	}
	if (!energy_client_ping(client)) {
		fprintf(stderr, "measure: no energyd answers at %s\n",
		        energy_client_address(client));
		energy_client_close(client);
		return 1;
	}
	energy_meter_new(client, &meter);
	energy_meter_start(meter, "sleep");
	sleep(1);
	energy_meter_record(meter, "compute");
	double sink = spin(0.5);
	rc = energy_meter_stop(meter);
	if (rc < 0) {
		fprintf(stderr, "measure: energyd could not report the energy: %s\n",
		        strerror(-rc));
		return 1;
	}
	for (size_t i = 0; i < energy_meter_count(meter); i++) {
		const struct energy_sample *s = energy_meter_sample(meter, i);
		printf("%s duration %.6f\n", s->tag, s->duration_s);
		for (int c = 0; c < s->energy.n_channels; c++) {
			const struct energy_channel_reading *r = &s->energy.channels[c];
			printf("%s %s %.6f %.3f %s\n", s->tag, r->id, r->joules, r->watts,
			       r->measured ? "measured" : "estimated");
		}
		printf("%s host %.6f %.3f %s (%s)\n", s->tag, s->energy.host_joules,
		       s->energy.host_watts, s->energy.host_measured ? "measured" : "estimated",
		       s->energy.host_coverage);
	}
	energy_meter_free(meter);
	energy_client_close(client);
	return sink < 0; /* keep the computation */
}
