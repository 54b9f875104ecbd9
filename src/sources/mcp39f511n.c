/*
 * The Microchip MCP39F511N power monitor (the ADM00706 demonstration board: a dual wall socket
 * with a USB CDC-ACM port, /dev/ttyACM*, USB id 04d8:00dd). Each socket is a channel,
 * mcp:<dev>:1 and mcp:<dev>:2, of kind "wall": it measures everything plugged into it. When a
 * channel feeds this machine, --host-meter names it and it becomes the host total.
 *
 * I/O is non-blocking with a deadline: one transaction reads System Status and the active power
 * of both channels (28 bytes from 0x0002 to 0x001D), which the two channels share within a tick.
 * Any garbage before a reply is skipped (mcp_reply_scan), stale input is drained before each
 * command, and a device that disappears (EIO or hang-up on unplug) is closed and reopened on a
 * later read. A failed transaction fails the read: the sampler keeps the counter, marks the channel
 * degraded with our error text and retries with backoff.
 *
 * The meter reports power only; the sampler integrates it (trapezoid over monotonic time). The
 * device's import energy accumulators are not used: they count only once accumulation is
 * enabled by a register write, and energyd never writes to the meter.
 *
 * Scaling (DS20005473, see mcp_proto.h): each channel has its own Range register (0x00AE for
 * socket 1, 0x00BE for socket 2), read at open and after every reconnect (a replugged meter may
 * have been recalibrated). One count is 10 mW x 2^(power range - 19). A range that cannot be
 * read or lies outside 12..26 gives the factory 10 mW, and `sources` says so.
 *
 * Sign: the active power register is a magnitude; System Status bit 4 (socket 1) / bit 6
 * (socket 2) is 1 for import (the socket's load draws power) and 0 for export (power flows back
 * into the mains through the socket: a generator, or a meter wired the wrong way round). Our
 * counters are import energy: what the load consumed, never decreasing. An export reading
 * counts as 0 W for the counter and is counted in the channel's description, so a reversed
 * meter shows up as "N export readings" rather than as silent zeros or negative joules.
 */
#define _GNU_SOURCE
#include "source.h"
#include "mcp_proto.h"
#include "energy_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define MCP_DEVICES_MAX  8
#define MCP_TIMEOUT_MS   100 /* a reply takes about 2 ms at 115200 baud; USB and load add more */
#define MCP_NAK_GRACE_MS 5   /* after a NAK, how long a valid reply may still arrive */
#define MCP_USB_VENDOR   "04d8"
#define MCP_USB_PRODUCT  "00dd"

struct mcp_device {
	char path[512];
	char name[48]; /* basename, for channel ids */
	int fd;
	int refs; /* channels using the device (two per meter) */
	/* Per socket: nanowatts per count in use, and the power range byte read (-1: unreadable).
	 * Written on the sampler thread at (re)connect, read by describe() on the API thread. */
	_Atomic uint64_t nw_per_count[2];
	atomic_int power_range[2];
	atomic_uint export_reads[2]; /* readings whose sign bit said export (counted as 0 W) */
	/* The last transaction, shared by the two channels within a tick. */
	unsigned seq;
	int rc;            /* 0 or the -errno of the last transaction */
	uint32_t power[2]; /* active power per socket, in counts */
	uint16_t status;   /* the system status register */
	char error[CHANNEL_ERROR_MAX];
};

struct mcp_priv {
	struct mcp_device *dev;
	int index;         /* 0 or 1 */
	unsigned seen_seq; /* the transaction this channel consumed last */
};

static int mcp_open_tty(const char *path)
{
	int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct termios t;
	if (tcgetattr(fd, &t) < 0) {
		int e = errno;
		close(fd);
		return e == ENOTTY ? -ENOTTY : -e;
	}
	cfmakeraw(&t);
	cfsetispeed(&t, B115200);
	cfsetospeed(&t, B115200);
	t.c_cflag &= ~(tcflag_t)(CSTOPB | PARENB | CRTSCTS | CSIZE);
	t.c_cflag |= CS8 | CLOCAL | CREAD;
	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSANOW, &t) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static void mcp_disconnect(struct mcp_device *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

static int remaining_ms(uint64_t deadline_ns)
{
	uint64_t now = energy_monotonic_ns();
	return now >= deadline_ns ? 0 : (int)((deadline_ns - now) / 1000000u) + 1;
}

/*
 * One command and its reply: the n bytes read at addr land in data. Returns 0 or a negative
 * errno with d->error explaining; -ENODEV means the device went away (closed, reopened later).
 */
static int mcp_transact(struct mcp_device *d, uint16_t addr, uint8_t n, uint8_t *data)
{
	uint8_t frame[MCP_FRAME_MAX], buf[256];
	size_t flen = mcp_frame_read(addr, n, frame), got = 0;

	/* Drop whatever is left from an earlier, failed exchange. */
	ssize_t r;
	while ((r = read(d->fd, buf, sizeof(buf))) > 0)
		;
	if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		goto gone;
	uint64_t deadline = energy_monotonic_ns() + MCP_TIMEOUT_MS * 1000000ull;
	size_t sent = 0;
	while (sent < flen) {
		ssize_t w = write(d->fd, frame + sent, flen - sent);
		if (w > 0) {
			sent += (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			goto gone;
		struct pollfd p = {.fd = d->fd, .events = POLLOUT};
		if (poll(&p, 1, remaining_ms(deadline)) <= 0) {
			snprintf(d->error, sizeof(d->error), "%s: write timed out after %d ms",
			         d->path, MCP_TIMEOUT_MS);
			return -ETIMEDOUT;
		}
	}
	struct mcp_scan scan = {0};
	for (;;) {
		struct pollfd p = {.fd = d->fd, .events = POLLIN};
		int wait = remaining_ms(deadline);
		int pr = wait > 0 ? poll(&p, 1, wait) : 0;
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr > 0 && (p.revents & POLLIN)) {
			ssize_t k = read(d->fd, buf + got, sizeof(buf) - got);
			if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				continue;
			if (k <= 0) {
				if (k == 0)
					errno = EIO;
				goto gone;
			}
			got += (size_t)k;
			mcp_reply_scan(buf, got, n, &scan);
			if (scan.found) {
				memcpy(data, buf + scan.data_off, n);
				return 0;
			}
			/* A NAK or CSFAIL ends the exchange unless a reply follows at once. */
			if (scan.nak && remaining_ms(deadline) > MCP_NAK_GRACE_MS)
				deadline = energy_monotonic_ns() + MCP_NAK_GRACE_MS * 1000000ull;
			if (got == sizeof(buf)) /* a flood of noise: give up on this exchange */
				break;
			continue;
		}
		if (pr > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)))
			goto gone;
		break; /* deadline */
	}
	if (scan.nak == MCP_NAK) {
		snprintf(d->error, sizeof(d->error),
		         "%s: the meter answered NAK (0x15) to reading %u bytes at 0x%04X", d->path,
		         n, addr);
		return -EPROTO;
	}
	if (scan.nak == MCP_CSFAIL) {
		snprintf(d->error, sizeof(d->error),
		         "%s: the meter answered CSFAIL (0x51): our frame arrived corrupted",
		         d->path);
		return -EPROTO;
	}
	if (got == 0) {
		snprintf(d->error, sizeof(d->error), "%s: no answer within %d ms (silent meter)",
		         d->path, MCP_TIMEOUT_MS);
		return -ETIMEDOUT;
	}
	snprintf(d->error, sizeof(d->error),
	         "%s: no valid reply in %zu byte(s) received (%d with a bad length or checksum); "
	         "resynchronising",
	         d->path, got, scan.bad_frames);
	return -EBADMSG;
gone:
	snprintf(d->error, sizeof(d->error), "%s: device lost (%s): unplugged? reconnecting",
	         d->path, errno ? strerror(errno) : "end of file");
	mcp_disconnect(d);
	return -ENODEV;
}

/*
 * Each socket's power range from its Range register; the factory scaling when it cannot be read
 * or is implausible (describe() tells which).
 */
static void mcp_read_ranges(struct mcp_device *d)
{
	static const uint16_t reg[2] = {MCP_REG_RANGE_1, MCP_REG_RANGE_2};
	for (int k = 0; k < 2 && d->fd >= 0; k++) {
		uint8_t data[4];
		int range = -1;
		if (mcp_transact(d, reg[k], 4, data) == 0)
			range = data[MCP_RANGE_POWER_BYTE];
		uint64_t nw = range >= 0 ? mcp_nw_per_count((unsigned)range) : 0;
		atomic_store(&d->power_range[k], range);
		atomic_store(&d->nw_per_count[k], nw ? nw : mcp_nw_per_count(MCP_FACTORY_RANGE_P));
	}
}

/* The scaling sentence for `sources`. */
static void mcp_range_text(const struct mcp_device *d, int k, char *buf, size_t len)
{
	int range = atomic_load(&d->power_range[k]);
	double w = (double)atomic_load(&d->nw_per_count[k]) / 1e9;
	if (range < 0)
		snprintf(buf, len,
		         "range register 0x%04X unreadable: factory scaling %g W per count assumed",
		         k ? MCP_REG_RANGE_2 : MCP_REG_RANGE_1, w);
	else if (!mcp_nw_per_count((unsigned)range))
		snprintf(buf, len,
		         "power range %d in register 0x%04X is outside the plausible %d..%d: "
		         "factory scaling %g W per count assumed",
		         range, k ? MCP_REG_RANGE_2 : MCP_REG_RANGE_1, MCP_RANGE_P_MIN,
		         MCP_RANGE_P_MAX, w);
	else
		snprintf(buf, len, "power range %d: %g W per count (range register 0x%04X)", range,
		         w, k ? MCP_REG_RANGE_2 : MCP_REG_RANGE_1);
}

static int mcp_connect(struct mcp_device *d)
{
	int fd = mcp_open_tty(d->path);
	if (fd < 0) {
		snprintf(d->error, sizeof(d->error), "cannot open %s: %s%s", d->path, strerror(-fd),
		         fd == -EACCES ? " (add energyd's user to the dialout group, or run it as "
		                         "root)"
		         : fd == -ENOENT ? " (unplugged?)"
		                         : "");
		return fd;
	}
	d->fd = fd;
	mcp_read_ranges(d);
	return d->fd >= 0 ? 0 : -ENODEV;
}

/* ---- discovery ---------------------------------------------------------------------------- */

/* ttyACM* devices whose USB device is 04d8:00dd, as paths under dev_root. */
static int mcp_autodetect(const struct source_config *cfg, char paths[][512], int max)
{
	char base[560];
	snprintf(base, sizeof(base), "%s/class/tty", cfg->sysfs_root);
	DIR *dir = opendir(base);
	if (!dir)
		return 0;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(dir)) && n < max) {
		if (strncmp(de->d_name, "ttyACM", 6) != 0)
			continue;
		char path[900], vendor[16], product[16];
		/* class/tty/ttyACMn/device is the USB interface; its parent the USB device. */
		snprintf(path, sizeof(path), "%s/%s/device/../idVendor", base, de->d_name);
		if (source_read_text(path, vendor, sizeof(vendor)) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/device/../idProduct", base, de->d_name);
		if (source_read_text(path, product, sizeof(product)) < 0)
			continue;
		if (strcmp(vendor, MCP_USB_VENDOR) || strcmp(product, MCP_USB_PRODUCT))
			continue;
		snprintf(paths[n++], 512, "%s/%s", cfg->dev_root, de->d_name);
	}
	closedir(dir);
	return n;
}

static int mcp_device_list(const struct source_config *cfg, char paths[][512])
{
	int n = 0;
	for (int i = 0; i < cfg->n_mcp && n < MCP_DEVICES_MAX; i++)
		snprintf(paths[n++], 512, "%s", cfg->mcp_devices[i]);
	if (n == 0)
		n = mcp_autodetect(cfg, paths, MCP_DEVICES_MAX);
	return n;
}

static int mcp_probe(const struct source_config *cfg, struct family_report *r)
{
	char paths[MCP_DEVICES_MAX][512];
	int n = mcp_device_list(cfg, paths);
	if (n == 0) {
		r->status = FAMILY_ABSENT;
		snprintf(
		    r->detail, sizeof(r->detail),
		    "no MCP39F511N wall meter: no USB device %s:%s among %s/class/tty/ttyACM*; "
		    "plug it in (cdc_acm driver) or name it with --mcp /dev/ttyACM0",
		    MCP_USB_VENDOR, MCP_USB_PRODUCT, cfg->sysfs_root);
		return 0;
	}
	r->status = FAMILY_FOUND;
	snprintf(r->detail, sizeof(r->detail), "%d meter(s)%s", n,
	         cfg->n_mcp ? " given with --mcp" : " found by USB id 04d8:00dd");
	return 2 * n;
}

static int mcp_open(const struct source_config *cfg, struct channel_set *set,
                    struct family_report *r)
{
	char paths[MCP_DEVICES_MAX][512];
	int n = mcp_device_list(cfg, paths);
	int added = 0, opened = 0, denied = 0;
	for (int i = 0; i < n; i++) {
		struct mcp_device *d = calloc(1, sizeof(*d));
		if (!d)
			return added ? added : -ENOMEM;
		d->fd = -1;
		snprintf(d->path, sizeof(d->path), "%s", paths[i]);
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "%s", paths[i]);
		snprintf(d->name, sizeof(d->name), "%s", basename(tmp));
		for (int k = 0; k < 2; k++) {
			atomic_init(&d->power_range[k], -1);
			atomic_init(&d->nw_per_count[k], mcp_nw_per_count(MCP_FACTORY_RANGE_P));
			atomic_init(&d->export_reads[k], 0);
		}
		int rc = mcp_connect(d);
		char note[2][160] = {"", ""};
		for (int k = 0; k < 2 && rc == 0; k++)
			mcp_range_text(d, k, note[k], sizeof(note[k]));
		if (rc == 0)
			opened++;
		denied += rc == -EACCES || rc == -EPERM;
		if (rc == 0)
			family_report_add(r, "; %s: socket 1 %s; socket 2 %s", d->path, note[0],
			                  note[1]);
		else
			family_report_add(r, "; %s: %s", d->path, d->error);
		/* A meter named with --mcp gets its channels even while it is unplugged: they stay
		 * degraded until it answers. */
		for (int k = 0; k < 2; k++) {
			char id[CHANNEL_ID_MAX];
			snprintf(id, sizeof(id), "mcp:%s:%d", d->name, k + 1);
			struct mcp_priv *p = calloc(1, sizeof(*p));
			struct channel *ch = p ? channel_set_add(set, id) : NULL;
			if (!ch) {
				free(p);
				continue;
			}
			p->dev = d;
			p->index = k;
			d->refs++;
			ch->priv = p;
			ch->kind = CHANNEL_WALL;
			ch->reading = READING_POWER_UW;
			snprintf(ch->label, sizeof(ch->label),
			         "Wall socket %d of the MCP39F511N on %s", k + 1, d->name);
			added++;
		}
		if (d->refs == 0) {
			mcp_disconnect(d);
			free(d);
		}
	}
	if (opened == 0 && added > 0)
		r->status = denied ? FAMILY_DENIED : FAMILY_ERROR;
	return added;
}

static int mcp_read(struct channel *ch, uint64_t *value)
{
	struct mcp_priv *p = ch->priv;
	struct mcp_device *d = p->dev;
	if (p->seen_seq == d->seq) {
		/* This channel has used the last transaction: make a new one. */
		uint8_t data[MCP_BLOCK_LEN];
		d->error[0] = '\0';
		d->rc = d->fd >= 0 ? 0 : mcp_connect(d);
		if (d->rc == 0)
			d->rc = mcp_transact(d, MCP_BLOCK_ADDR, MCP_BLOCK_LEN, data);
		if (d->rc == 0) {
			d->status = mcp_le16(data);
			d->power[0] = mcp_le32(data + (MCP_REG_ACTIVE_POWER_1 - MCP_BLOCK_ADDR));
			d->power[1] = mcp_le32(data + (MCP_REG_ACTIVE_POWER_2 - MCP_BLOCK_ADDR));
		}
		d->seq++;
	}
	p->seen_seq = d->seq;
	if (d->rc < 0) {
		snprintf(ch->read_error, sizeof(ch->read_error), "%s", d->error);
		return d->rc;
	}
	static const uint16_t sign_bit[2] = {MCP_STATUS_SIGN_PA_CH1, MCP_STATUS_SIGN_PA_CH2};
	if (!(d->status & sign_bit[p->index])) {
		/* Export: our counter counts consumed energy only (see the top of this file). */
		atomic_fetch_add(&d->export_reads[p->index], 1);
		*value = 0;
		return 0;
	}
	*value = (uint64_t)d->power[p->index] * atomic_load(&d->nw_per_count[p->index]) / 1000u;
	return 0;
}

static void mcp_close(struct channel *ch)
{
	struct mcp_priv *p = ch->priv;
	if (!p)
		return;
	if (--p->dev->refs == 0) {
		mcp_disconnect(p->dev);
		free(p->dev);
	}
	free(p);
	ch->priv = NULL;
}

static void mcp_describe(const struct channel *ch, char *buf, size_t len)
{
	const struct mcp_priv *p = ch->priv;
	char range[192], exports[96] = "";
	mcp_range_text(p->dev, p->index, range, sizeof(range));
	unsigned ex = atomic_load(&p->dev->export_reads[p->index]);
	if (ex)
		snprintf(exports, sizeof(exports),
		         "; %u export reading(s) (power flowing back) counted as 0 W", ex);
	snprintf(buf, len, "active power %d at 0x%04X of %s, %s, integrated over time%s%s",
	         p->index + 1, p->index ? MCP_REG_ACTIVE_POWER_2 : MCP_REG_ACTIVE_POWER_1,
	         p->dev->path, range, exports,
	         ch->host_meter ? "; declared the host meter (--host-meter)" : "");
}

const struct source_family mcp_family = {
    .name = "mcp",
    .probe = mcp_probe,
    .open = mcp_open,
    .read = mcp_read,
    .close = mcp_close,
    .describe = mcp_describe,
};
