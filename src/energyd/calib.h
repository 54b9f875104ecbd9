/*
 * Calibration of the CPU model (docs/model.md, "Calibration"). While a measured channel covers
 * the CPU (the RAPL packages, summed; else a wall meter declared for the whole machine with
 * --host-meter), a thread fits model:cpu's idle and max watts to it (cpufit.h) over windows of at
 * least a second and keeps the fit in the state directory (CALIB_FILE, replaced atomically).
 * When a later start has only the model, calib_load() puts the stored fit on model:cpu before
 * the sampler starts, and the model says it is calibrated.
 *
 * Lifecycle: calib_open (before the privilege drop: /proc/stat), calib_load (after it, in the
 * state directory), calib_start, calib_stop (after sampler_stop: writes the fit), calib_free.
 * Thread safety: the calib lock guards the fit and its status; calib_json takes it. It is
 * never taken with the sampler's lock held, nor the other way round.
 */
#ifndef ENERGY_CALIB_H
#define ENERGY_CALIB_H

#include "cpufit.h"
#include "sampler.h"
#include "source.h"
#include "threads.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#define CALIB_FILE         "cpu-model.json" /* in the state directory */
#define CALIB_FILE_MAX     65536            /* a longer file is not a fit: ignored */
#define CALIB_CHANNELS_MAX 8                /* packages summed for the fit */
#define CALIB_SAVE_EVERY   60               /* windows between writes while fitting */
#define CALIB_PATH_MAX     512
/* The system service's fit: energyd started by a user falls back on it (--model-fit). */
#define CALIB_SYSTEM_FILE "/var/lib/energyd/" CALIB_FILE

struct daemon;

/* One fit as the file holds it. */
struct calib_fit {
	struct cpufit_sums sums;
	struct cpufit_result r; /* solved from sums */
	char fitted_at[32];     /* the last window's end, ISO 8601 UTC */
	char against[8];        /* "rapl" (CPU packages) or "wall" (the whole machine) */
	char fitted_to[CALIB_CHANNELS_MAX][CHANNEL_ID_MAX];
	int n_fitted_to;
};

/* A reading of /proc/stat and the fitted channels' energy at the same instant. */
struct calib_point {
	double t; /* the sampler's clock */
	uint64_t busy, total;
	double uj;
};

struct calib {
	struct sampler *sampler;
	int stat_fd;     /* <proc>/stat, -1 when not fitting */
	int fallback_fd; /* the fallback fit, or the -errno of opening it */
	char stat_path[520];
	int idx[CALIB_CHANNELS_MAX]; /* the fitted channels in the sampler's set */
	int n_idx;
	const char *against;
	const char *state_dir;

	pthread_mutex_t lock;
	struct calib_fit cur; /* this run's fit (resumed from the file on the same channels) */
	bool cur_solved;      /* cur.r holds a fit that counts */
	struct calib_fit stored;
	bool have_stored;     /* the file as read at start, valid */
	const char *fallback; /* see calib_open */
	const char *from;     /* the fallback file stored came from, or NULL: the state directory */
	const char *state;
	char detail[320];
	int since_save; /* windows since the file was written */
	bool saved;

	/* The thread's own (no lock). */
	struct threads_worker worker;
	struct calib_point p0, pending;
	bool have_p0, have_pending;
};

/* Choose the channels to fit to and open <proc_root>/stat (before the privilege drop); without
 * them, open fallback (an absolute path, or NULL: a stored fit to read when the state directory
 * has none; the system service's, for energyd started by a user; never written). Never fails:
 * without a channel or /proc/stat there is nothing to fit, which calib_json says. */
void calib_open(struct calib *c, const char *proc_root, const struct channel_set *set,
                const char *fallback);
/* Read CALIB_FILE in the current directory (the state directory), else the fallback; put a
 * valid fit on model:cpu when that channel runs, or resume it when fitting to the same
 * channels. A missing or bad file is logged and left alone. */
void calib_load(struct calib *c, struct daemon *d);
int calib_start(struct calib *c, struct sampler *s);
/* Join the thread (the sampler stopped first) and write the fit when it counts. */
void calib_stop(struct calib *c);
void calib_free(struct calib *c);
/* {state, detail, file, fit} for info and sources; c may be NULL. */
json_t *calib_json(struct calib *c);

/* calib_file.c: the fit as JSON (with_sums: the file's form, else the API's); write it to
 * CALIB_FILE atomically; read and check a stored fit from fd (an open descriptor, or the
 * -errno of opening it: -ENOENT when there is none). 0 or -errno, with the reason in err / why.
 */
json_t *calib_fit_json(const struct calib_fit *f, bool with_sums);
int calib_write(const struct calib_fit *f, char *err, size_t len);
int calib_read(int fd, struct calib_fit *f, char *why, size_t len);
/* The file's text: parse and check it (every number in range, the fit re-solved from the sums
 * and equal to the one written). 0, or -EINVAL with the reason in why. */
int calib_parse(const char *text, struct calib_fit *f, char *why, size_t len);

#endif
