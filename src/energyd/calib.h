/*
 * Calibration of the CPU model (docs/model.md, "Calibration"). While a measured channel covers
 * the CPU (the RAPL packages, summed; else a wall meter declared for the whole machine with
 * --host-meter), a thread fits model:cpu's idle and max watts to it (cpufit.h) over windows of at
 * least a second and keeps the fit in the state directory (CALIB_FILE, replaced atomically).
 * When a later start has only the model, calib_load() puts the stored fit on model:cpu before
 * the sampler starts, and the model says it is calibrated. While both the packages and such a
 * wall meter are measured, a second fit of the same kind learns the rest of the machine: the
 * wall meter minus the measured channels the host total adds up without it (packages, dram,
 * discrete GPUs: host_measured_parts), from the same readings and windows.
 *
 * Lifecycle: calib_open (before the privilege drop: /proc/stat), calib_load (after it, in the
 * state directory), calib_start, calib_stop (after sampler_stop, and after the attribution that
 * feeds it stopped: writes the fit), calib_free.
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
#define CALIB_FILE_VERSION 2                /* 2 adds "rest"; version 1 files are read too */
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
	char against[8];        /* "rapl" (CPU packages), "wall" (the whole machine) or "rest" */
	char fitted_to[CALIB_CHANNELS_MAX][CHANNEL_ID_MAX]; /* "rest": the wall meter */
	int n_fitted_to;                                    /* 0: no fit */
	/* "rest" only: the channels subtracted from the wall meter. */
	char subtracted[CALIB_CHANNELS_MAX][CHANNEL_ID_MAX];
	int n_subtracted;
};

/* A reading of /proc/stat and the fitted channels' energy at the same instant. */
struct calib_point {
	double t; /* the sampler's clock */
	uint64_t busy, total;
	double uj;
	double rest_uj; /* the wall meter's energy minus the subtracted channels' */
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
	int rest_wall; /* the whole-machine wall meter in the set when the rest is fitted, or -1 */
	int rest_idx[CALIB_CHANNELS_MAX]; /* the channels subtracted from it */
	int n_rest_idx;
	int rest_stat_fd; /* <proc>/stat for model:rest (packages, no wall meter), else -1 */

	pthread_mutex_t lock;
	struct calib_fit cur; /* this run's fit (resumed from the file on the same channels) */
	bool cur_solved;      /* cur.r holds a fit that counts */
	struct calib_fit stored;
	bool have_stored;     /* the file as read at start, valid */
	const char *fallback; /* see calib_open */
	const char *from;     /* the fallback file stored came from, or NULL: the state directory */
	const char *state;
	char detail[320];
	struct calib_fit rest; /* this run's rest fit (n_fitted_to 0 when not fitting it) */
	bool rest_solved;
	struct calib_fit stored_rest; /* the file's rest fit (n_fitted_to 0: none) */
	const char *rest_state;
	char rest_detail[320];
	int since_save; /* windows since the file was written */
	bool saved;

	/* The thread's own (no lock): the calibration thread's, or the attribution thread's when
	 * fed. */
	bool fed; /* readings come through calib_feed: no thread */
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
 * channels; add model:rest to d->set (its own channel, outside the host total) when the stored
 * rest fit matches this start's measured channels (so before sampler_init). A missing or bad file
 * is logged and left alone. */
void calib_load(struct calib *c, struct daemon *d);
/* A fit is learnt in this run (calib_open found channels to fit to and /proc/stat). */
bool calib_fitting(const struct calib *c);
/* fed: every reading will come through calib_feed, at least one every CPUFIT_WINDOW_MIN_S (the
 * attribution's, attrib_set_system_hook); else a thread reads /proc/stat itself. */
int calib_start(struct calib *c, struct sampler *s, bool fed);
/* A reading of /proc/stat taken elsewhere: busy and total jiffies at mono_ns (the monotonic
 * clock); an attrib_system_hook. Never called with the sampler's lock or the calib lock held. */
void calib_feed(void *ctx, uint64_t mono_ns, uint64_t busy, uint64_t total);
/* Join the thread (the sampler stopped first) and write the fit when it counts. */
void calib_stop(struct calib *c);
void calib_free(struct calib *c);
/* {state, detail, file, fit, rest: {state, detail, fit}} for info and sources; c may be NULL. */
json_t *calib_json(struct calib *c);

/* calib_file.c: a fit as JSON (with_sums: the file's form, else the API's); write the CPU fit
 * f and the rest fit (NULL or n_fitted_to 0: none) to CALIB_FILE atomically; read and check a
 * stored file from fd (an open descriptor, or the -errno of opening it: -ENOENT when there is
 * none) into f and rest (n_fitted_to 0 when the file has none). 0 or -errno, with the reason
 * in err / why. */
json_t *calib_fit_json(const struct calib_fit *f, bool with_sums);
int calib_write(const struct calib_fit *f, const struct calib_fit *rest, char *err, size_t len);
int calib_read(int fd, struct calib_fit *f, struct calib_fit *rest, char *why, size_t len);
/* The file's text: parse and check it (every number in range, each fit re-solved from its sums
 * and equal to the one written; a bad rest fit makes the whole file bad). 0, or -EINVAL with
 * the reason in why. */
int calib_parse(const char *text, struct calib_fit *f, struct calib_fit *rest, char *why,
                size_t len);

#endif
