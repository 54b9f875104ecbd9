/*
 * The MCP39F511N serial protocol (Microchip DS20005473, section 4): frames and replies, no I/O.
 *
 * A command frame is 0xA5, the frame length, a list of instructions, and a checksum: the sum of
 * all preceding bytes modulo 256. We send one "set address pointer" (0x41 addr_hi addr_lo)
 * followed by one register read (0x4E n) or write (0x4D n data...). The device answers a read
 * with 0x06 (ACK), n + 3, the n data bytes and a checksum over the ACK, length and data; a write
 * with a bare 0x06. It answers 0x15 (NAK) to a command it cannot execute and 0x51 (CSFAIL) to a
 * frame whose checksum is wrong.
 */
#ifndef ENERGY_MCP_PROTO_H
#define ENERGY_MCP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define MCP_HEADER  0xA5
#define MCP_ACK     0x06
#define MCP_NAK     0x15
#define MCP_CSFAIL  0x51
#define MCP_SET_PTR 0x41
#define MCP_READ    0x4E
#define MCP_WRITE   0x4D

#define MCP_DATA_MAX  32 /* largest register block we read or write */
#define MCP_FRAME_MAX (MCP_DATA_MAX + 8)

/* Registers (little-endian). */
#define MCP_REG_ACTIVE_POWER_1 0x0016 /* u32, both channels read as one 8-byte block */
#define MCP_REG_ACTIVE_POWER_2 0x001A
/* u32; bits 23:16: decimal places of the power outputs. This address and encoding follow our
 * reading of the register map and have not been checked on a physical meter: when the field is
 * implausible (> 6) or the read fails, energyd falls back to the factory 10 mW per count and
 * says so in the channel's description. */
#define MCP_REG_RANGE 0x009C

/* Watts per count of the active power registers at the factory range: 10 mW. */
#define MCP_FACTORY_POWER_DECIMALS 2

uint8_t mcp_checksum(const uint8_t *bytes, size_t n);
/* Build a read of n bytes at addr into out (MCP_FRAME_MAX bytes); returns the frame length. */
size_t mcp_frame_read(uint16_t addr, uint8_t n, uint8_t *out);
/* Build a write of n data bytes at addr; returns the frame length, 0 if n is too large. */
size_t mcp_frame_write(uint16_t addr, const uint8_t *data, uint8_t n, uint8_t *out);

/* What mcp_reply_scan found in the bytes received so far. */
struct mcp_scan {
	int found; /* 1: a valid reply; data at buf + data_off (n bytes for a read) */
	size_t data_off;
	size_t garbage; /* bytes that were not part of a valid reply */
	int nak;        /* MCP_NAK or MCP_CSFAIL when such a byte was seen, else 0 */
	int bad_frames; /* ACK-led candidates rejected for length or checksum */
};

/*
 * Look for the reply to a read of n bytes (n = 0: the bare ACK of a write) in buf[0..len),
 * skipping garbage: an ACK whose length or checksum does not fit is taken as noise and the scan
 * resumes at the next byte, so a reply is found behind any amount of garbage. NAK and CSFAIL
 * bytes are noted; the caller decides whether more bytes may still bring a valid reply.
 */
void mcp_reply_scan(const uint8_t *buf, size_t len, uint8_t n, struct mcp_scan *out);

static inline uint32_t mcp_le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

#endif
