/* MCP39F511N frames and replies (see mcp_proto.h). */
#include "mcp_proto.h"

#include <string.h>

uint8_t mcp_checksum(const uint8_t *bytes, size_t n)
{
	unsigned sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += bytes[i];
	return (uint8_t)sum;
}

size_t mcp_frame_read(uint16_t addr, uint8_t n, uint8_t *out)
{
	out[0] = MCP_HEADER;
	out[1] = 8;
	out[2] = MCP_SET_PTR;
	out[3] = (uint8_t)(addr >> 8);
	out[4] = (uint8_t)addr;
	out[5] = MCP_READ;
	out[6] = n;
	out[7] = mcp_checksum(out, 7);
	return 8;
}

size_t mcp_frame_write(uint16_t addr, const uint8_t *data, uint8_t n, uint8_t *out)
{
	if (n > MCP_DATA_MAX)
		return 0;
	size_t len = 8u + n;
	out[0] = MCP_HEADER;
	out[1] = (uint8_t)len;
	out[2] = MCP_SET_PTR;
	out[3] = (uint8_t)(addr >> 8);
	out[4] = (uint8_t)addr;
	out[5] = MCP_WRITE;
	out[6] = n;
	memcpy(out + 7, data, n);
	out[len - 1] = mcp_checksum(out, len - 1);
	return len;
}

void mcp_reply_scan(const uint8_t *buf, size_t len, uint8_t n, struct mcp_scan *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == MCP_NAK || buf[i] == MCP_CSFAIL) {
			out->nak = buf[i];
			out->garbage++;
			continue;
		}
		if (buf[i] != MCP_ACK) {
			out->garbage++;
			continue;
		}
		if (n == 0) { /* a write: the bare ACK is the whole reply */
			out->found = 1;
			out->data_off = i + 1;
			return;
		}
		if (i + 1 >= len)
			return; /* the length byte has not arrived yet */
		if (buf[i + 1] != (uint8_t)(n + 3)) {
			out->bad_frames++;
			out->garbage++;
			continue;
		}
		if (i + (size_t)n + 3 > len)
			return; /* a plausible reply, still arriving */
		if (mcp_checksum(buf + i, (size_t)n + 2) != buf[i + n + 2]) {
			out->bad_frames++;
			out->garbage++;
			continue;
		}
		out->found = 1;
		out->data_off = i + 2;
		return;
	}
}

uint64_t mcp_nw_per_count(unsigned power_range)
{
	if (power_range < MCP_RANGE_P_MIN || power_range > MCP_RANGE_P_MAX)
		return 0;
	/* 10 mW = 1e7 nW at 19; at 12 (the smallest we accept) 1e7 / 2^7 = 78125 nW, exact. */
	uint64_t nw = 10000000ull;
	if (power_range >= MCP_FACTORY_RANGE_P)
		return nw << (power_range - MCP_FACTORY_RANGE_P);
	return nw >> (MCP_FACTORY_RANGE_P - power_range);
}
