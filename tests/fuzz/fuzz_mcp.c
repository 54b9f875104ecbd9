/*
 * The MCP39F511N reply scanner on whatever a serial line may deliver. The first byte is the
 * length of the register read the reply answers (0: the bare ACK of a write), the rest the bytes
 * received. A reply found must lie inside the buffer with its checksum; the data it points to is
 * read so that ASan sees any out-of-bounds offset.
 */
#include "mcp_proto.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t n = data[0] % (MCP_DATA_MAX + 1);
	const uint8_t *buf = data + 1;
	size_t len = size - 1;
	struct mcp_scan s;
	mcp_reply_scan(buf, len, n, &s);
	if (s.found) {
		if (n == 0) {
			if (s.data_off > len || s.data_off == 0 || buf[s.data_off - 1] != MCP_ACK)
				abort();
		} else {
			/* ACK, length, n data bytes, checksum */
			if (s.data_off < 2 || s.data_off + n + 1 > len)
				abort();
			const uint8_t *reply = buf + s.data_off - 2;
			if (reply[0] != MCP_ACK || reply[1] != n + 3 ||
			    mcp_checksum(reply, n + 2u) != reply[n + 2])
				abort();
		}
	}
	if (s.garbage > len)
		abort();
	/* The frame builders with the same bytes as address and data. */
	uint8_t frame[MCP_FRAME_MAX];
	uint16_t addr = len >= 2 ? (uint16_t)(buf[0] | buf[1] << 8) : 0;
	size_t flen = mcp_frame_read(addr, n, frame);
	if (flen > MCP_FRAME_MAX || mcp_checksum(frame, flen - 1) != frame[flen - 1])
		abort();
	uint8_t wn = len > MCP_DATA_MAX + 4 ? MCP_DATA_MAX + 4 : (uint8_t)len;
	flen = mcp_frame_write(addr, buf, wn, frame);
	if (flen > MCP_FRAME_MAX || (flen && mcp_checksum(frame, flen - 1) != frame[flen - 1]))
		abort();
	return 0;
}
