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

/*
 * Registers (little-endian), from the register map of the datasheet (Microchip DS20005473,
 * "MCP39F511N Dual-Channel, Single-Phase Power-Monitoring IC with Calculation": the register
 * list of section 6 and the System Status and Range register descriptions). The datasheet's
 * own text was not at hand when this was written; the addresses and encodings below are those
 * of the public reader code that cites its sections: the jkairys MCP39F511N library (register
 * list with section numbers, Range 1/2 at 0x00AE/0x00BE read as V/I/P bytes, System Status sign
 * bits 4-7 with the datasheet's quadrant wording "1 = Q1, Q4 (positive)"). The klebol library's
 * map is the single-channel MCP39F511's (active power at 0x0012), and another reader puts the
 * sign bits at 0-3 with 1 = negative; we follow the quadrant wording, which is the datasheet's.
 * Check against the datasheet when a physical meter is at hand:
 *
 * - System Status (0x0002, b16): bit 4 SIGN_PA_CH1 and bit 6 SIGN_PA_CH2 give the sign of each
 *   channel's active power, 1 = positive (import, quadrants I and IV), 0 = negative (export,
 *   quadrants II and III). The active power registers hold the magnitude only ("Signed Active
 *   and Reactive Power Outputs" means magnitude + these sign bits).
 * - Active Power 1 / 2 (0x0016 / 0x001A, u32): magnitude in counts of the power range below.
 * - Range 1 / Range 2 (0x00AE / 0x00BE, 4 bytes each): byte 0 the voltage range, byte 1 the
 *   current range, byte 2 the power range, byte 3 reserved. Each is a number of right shifts of
 *   the internal accumulation before it reaches the output register, so one active-power count
 *   is 10 mW x 2^(power range - 19): the factory calibration (18 / 12 / 19) gives 10 mW. The
 *   0x009C word our reader used before is the divisor digits register, not a range.
 */
#define MCP_REG_SYSTEM_STATUS  0x0002
#define MCP_STATUS_SIGN_PA_CH1 0x0010
#define MCP_STATUS_SIGN_PA_CH2 0x0040
#define MCP_REG_ACTIVE_POWER_1 0x0016
#define MCP_REG_ACTIVE_POWER_2 0x001A
/* One read from System Status to the end of Active Power 2: status, V, f, PF1/2, I1/2, P1/2. */
#define MCP_BLOCK_ADDR       MCP_REG_SYSTEM_STATUS
#define MCP_BLOCK_LEN        (MCP_REG_ACTIVE_POWER_2 + 4 - MCP_REG_SYSTEM_STATUS)
#define MCP_REG_RANGE_1      0x00AE
#define MCP_REG_RANGE_2      0x00BE
#define MCP_RANGE_POWER_BYTE 2
#define MCP_FACTORY_RANGE_V  18
#define MCP_FACTORY_RANGE_I  12
#define MCP_FACTORY_RANGE_P  19
/* Power ranges we believe: 12 (0.078 mW per count) to 26 (1.28 W per count). The factory 19
 * sits in the middle; a value outside is a bad read or a misconfigured meter, and the channel
 * then reports at the factory scaling with a note in `sources`. */
#define MCP_RANGE_P_MIN 12
#define MCP_RANGE_P_MAX 26

/* Nanowatts per active-power count for a power range (10 mW at 19); 0 outside the plausible
 * range. */
uint64_t mcp_nw_per_count(unsigned power_range);

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

static inline uint16_t mcp_le16(const uint8_t *b)
{
	return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t mcp_le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

#endif
