/* MCP39F511N frames, checksums and reply scanning (mcp_proto.c), with literal bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include "mcp_proto.h"

/* One count is 10 mW x 2^(range - 19) (DS20005473 Range register); implausible ranges: 0. */
static void test_power_range_scaling(void **state)
{
	(void)state;
	assert_int_equal(mcp_nw_per_count(19), 10000000);   /* factory: 10 mW */
	assert_int_equal(mcp_nw_per_count(17), 2500000);    /* 2.5 mW */
	assert_int_equal(mcp_nw_per_count(20), 20000000);   /* 20 mW */
	assert_int_equal(mcp_nw_per_count(12), 78125);      /* smallest accepted */
	assert_int_equal(mcp_nw_per_count(26), 1280000000); /* largest accepted */
	assert_int_equal(mcp_nw_per_count(11), 0);
	assert_int_equal(mcp_nw_per_count(27), 0);
	assert_int_equal(mcp_nw_per_count(0), 0);
	assert_int_equal(mcp_nw_per_count(255), 0);
}

static void test_read_frame(void **state)
{
	(void)state;
	uint8_t f[MCP_FRAME_MAX];
	size_t n = mcp_frame_read(0x0016, 8, f);
	/* 0xA5 0x08 0x41 0x00 0x16 0x4E 0x08, checksum 0x5A (0x15A mod 256). */
	const uint8_t want[] = {0xA5, 0x08, 0x41, 0x00, 0x16, 0x4E, 0x08, 0x5A};
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(f, want, sizeof(want));
}

static void test_write_frame(void **state)
{
	(void)state;
	uint8_t f[MCP_FRAME_MAX];
	const uint8_t data[] = {0x01, 0x00};
	size_t n = mcp_frame_write(0x00A8, data, 2, f);
	const uint8_t want[] = {0xA5, 0x0A, 0x41, 0x00, 0xA8, 0x4D, 0x02, 0x01, 0x00, 0xE8};
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(f, want, sizeof(want));
	uint8_t big[MCP_DATA_MAX + 1] = {0};
	assert_int_equal(mcp_frame_write(0, big, sizeof(big), f), 0);
}

static void test_reply_found_behind_garbage(void **state)
{
	(void)state;
	/* Noise with ACK bytes whose lengths do not fit, then ACK, 7, 4 data bytes, checksum. */
	uint8_t r[] = {0xFF, 0x06, 0x02, 0x13, 0x06, 0x07, 0x01,
	               0x06, 0x07, 0x39, 0x30, 0x00, 0x00, 0x00};
	r[sizeof(r) - 1] = mcp_checksum(r + 7, 6);
	struct mcp_scan s;
	mcp_reply_scan(r, sizeof(r), 4, &s);
	assert_int_equal(s.found, 1);
	assert_int_equal(s.data_off, 9);
	assert_int_equal(mcp_le32(r + s.data_off), 12345);
	assert_int_equal(s.garbage, 7);
	assert_int_equal(s.bad_frames, 2); /* 06 02: wrong length; 06 07 01...: wrong checksum */
}

static void test_reply_incomplete_and_bad_checksum(void **state)
{
	(void)state;
	uint8_t r[] = {0x06, 0x07, 0x01, 0x02, 0x03, 0x04, 0x00};
	r[6] = mcp_checksum(r, 6);
	struct mcp_scan s;
	mcp_reply_scan(r, 4, 4, &s); /* still arriving */
	assert_int_equal(s.found, 0);
	assert_int_equal(s.bad_frames, 0);
	mcp_reply_scan(r, sizeof(r), 4, &s);
	assert_int_equal(s.found, 1);
	r[6]++;
	mcp_reply_scan(r, sizeof(r), 4, &s);
	assert_int_equal(s.found, 0);
	assert_int_equal(s.bad_frames, 1);
}

static void test_nak_csfail_and_write_ack(void **state)
{
	(void)state;
	struct mcp_scan s;
	const uint8_t nak[] = {0x15};
	mcp_reply_scan(nak, 1, 8, &s);
	assert_int_equal(s.found, 0);
	assert_int_equal(s.nak, MCP_NAK);
	const uint8_t csfail[] = {0x00, 0x51};
	mcp_reply_scan(csfail, 2, 8, &s);
	assert_int_equal(s.nak, MCP_CSFAIL);
	const uint8_t ack[] = {0x00, 0x06};
	mcp_reply_scan(ack, 2, 0, &s); /* a write is answered with a bare ACK */
	assert_int_equal(s.found, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_power_range_scaling),
	    cmocka_unit_test(test_read_frame),
	    cmocka_unit_test(test_write_frame),
	    cmocka_unit_test(test_reply_found_behind_garbage),
	    cmocka_unit_test(test_reply_incomplete_and_bad_checksum),
	    cmocka_unit_test(test_nak_csfail_and_write_ack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
