/*
 * The Microchip MCP39F511N power monitor (the ADM00706 demonstration board: a dual wall socket
 * with a USB CDC-ACM port, /dev/ttyACM*, USB id 04d8:00dd). Each socket is a channel,
 * mcp:<dev>:1 and mcp:<dev>:2, of kind "wall": it measures everything plugged into it. When a
 * channel feeds this machine, --host-meter names it and it becomes the host total.
 *
 * I/O is non-blocking with a deadline: one transaction reads the active power of both channels
 * (8 bytes at 0x0016), which the two channels share within a tick. Any garbage before a reply is
 * skipped (mcp_reply_scan), stale input is drained before each command, and a device that
 * disappears (EIO or hang-up on unplug) is closed and reopened on a later read. A failed
 * transaction fails the read: the sampler keeps the counter, marks the channel degraded with our
 * error text and retries with backoff.
 *
 * The meter reports power only; the sampler integrates it (trapezoid over monotonic time). The
 * device's import energy accumulators are not used: they count only once accumulation is
 * enabled by a register write, and energyd never writes to the meter.
 */
#define _GNU_SOURCE
#include "source.h"
#include "mcp_proto.h"
#include "energy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <poll.h>
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
	int refs;
	uint64_t uw_per_count;
	char range_note[128];
	/* The last transaction, shared by the two channels within a tick. */
	unsigned seq;
	int rc;
	uint32_t power[2];
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
 * Watts per count from the Range register, the factory 10 mW when it cannot be read. The note
 * for `sources` is written only at open (the API thread reads it; reconnects happen on the
 * sampler thread).
 */
static void mcp_read_range(struct mcp_device *d, bool note)
{
	uint8_t data[4];
	char text[sizeof(d->range_note)];
	d->uw_per_count = 10000;
	unsigned decimals = 0;
	if (mcp_transact(d, MCP_REG_RANGE, 4, data) < 0) {
		snprintf(text, sizeof(text),
		         "range register unreadable: factory 10 mW per count assumed");
	} else if ((decimals = (mcp_le32(data) >> 16) & 0xff) > 6) {
		snprintf(text, sizeof(text),
		         "range register power field %u implausible: factory 10 mW assumed",
		         decimals);
	} else {
		d->uw_per_count = 1;
		for (unsigned i = decimals; i < 6; i++)
			d->uw_per_count *= 10;
		snprintf(text, sizeof(text), "%g W per count (range register)",
		         (double)d->uw_per_count / 1e6);
	}
	if (note)
		memcpy(d->range_note, text, sizeof(text));
}

static int mcp_connect(struct mcp_device *d, bool initial)
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
	mcp_read_range(d, initial);
	return 0;
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
		int rc = mcp_connect(d, true);
		if (rc == 0)
			opened++;
		denied += rc == -EACCES || rc == -EPERM;
		size_t used = strlen(r->detail);
		snprintf(r->detail + used, sizeof(r->detail) - used, "; %s: %s", d->path,
		         rc == 0 ? d->range_note : d->error);
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
		uint8_t data[8];
		d->error[0] = '\0';
		d->rc = d->fd >= 0 ? 0 : mcp_connect(d, false);
		if (d->rc == 0)
			d->rc = mcp_transact(d, MCP_REG_ACTIVE_POWER_1, 8, data);
		if (d->rc == 0) {
			d->power[0] = mcp_le32(data);
			d->power[1] = mcp_le32(data + 4);
		}
		d->seq++;
	}
	p->seen_seq = d->seq;
	if (d->rc < 0) {
		snprintf(ch->read_error, sizeof(ch->read_error), "%s", d->error);
		return d->rc;
	}
	*value = (uint64_t)d->power[p->index] * d->uw_per_count;
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
	snprintf(buf, len, "active power %d at 0x%04X of %s, %s, integrated over time%s",
	         p->index + 1, p->index ? MCP_REG_ACTIVE_POWER_2 : MCP_REG_ACTIVE_POWER_1,
	         p->dev->path, p->dev->range_note[0] ? p->dev->range_note : "10 mW per count",
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
