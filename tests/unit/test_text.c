/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of text.c: hex ids, base64url, ids, roles, endpoints, UTF-8 and time. */
#include "unit.h"

#include "text.h"

static void test_msgid_hex(void **state)
{
    (void)state;
    uint8_t id[LIAISON_MSGID_BYTES], back[LIAISON_MSGID_BYTES];
    char hex[TEXT_MSGID_HEX];

    for (size_t i = 0; i < sizeof id; i++)
        id[i] = (uint8_t)(0xf0 + i * 7);
    text_msgid_to_hex(id, hex);
    assert_string_equal(hex, "f0f7fe050c131a21282f363d444b5259");
    assert_int_equal(text_msgid_from_hex(hex, back), 0);
    assert_memory_equal(id, back, sizeof id);
    /* Either case on input. */
    assert_int_equal(text_msgid_from_hex("F0F7FE050C131A21282F363D444B5259", back), 0);
    assert_memory_equal(id, back, sizeof id);

    memset(back, 0xaa, sizeof back);
    assert_int_equal(text_msgid_from_hex("f0f7fe050c131a21282f363d444b525", back), -1);   /* 31 */
    assert_int_equal(text_msgid_from_hex("f0f7fe050c131a21282f363d444b52590", back), -1); /* 33 */
    assert_int_equal(text_msgid_from_hex("g0f7fe050c131a21282f363d444b5259", back), -1);
    assert_int_equal(text_msgid_from_hex(" 0f7fe050c131a21282f363d444b5259", back), -1);
    assert_int_equal(text_msgid_from_hex("", back), -1);
    assert_int_equal(text_msgid_from_hex(NULL, back), -1);
    /* Failure leaves the output untouched. */
    for (size_t i = 0; i < sizeof back; i++)
        assert_int_equal(back[i], 0xaa);
}

static void test_valid_id(void **state)
{
    (void)state;
    char id64[65], id65[66];
    memset(id64, 'a', 64);
    id64[64] = '\0';
    memset(id65, 'a', 65);
    id65[65] = '\0';

    assert_true(text_valid_id("a"));
    assert_true(text_valid_id("0"));
    assert_true(text_valid_id("dr.okafor"));
    assert_true(text_valid_id("clinic-3_north.pharmacy"));
    assert_true(text_valid_id(id64));
    assert_false(text_valid_id(id65));
    assert_false(text_valid_id(""));
    assert_false(text_valid_id(NULL));
    assert_false(text_valid_id("-a"));
    assert_false(text_valid_id(".a"));
    assert_false(text_valid_id("_a"));
    assert_false(text_valid_id("Alice"));
    assert_false(text_valid_id("a b"));
    assert_false(text_valid_id("a/b"));
    assert_false(text_valid_id("a:b"));
    assert_false(text_valid_id("caf\xc3\xa9"));
    assert_false(text_valid_id("a\n"));
}

static void test_roles(void **state)
{
    (void)state;
    const char *ok[] = {"therapist", "psychiatrist", "pcp", "pharmacist", "nurse", "case-manager", "auditor"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_true(text_valid_role(ok[i]));
        assert_non_null(strstr(text_roles(), ok[i]));
    }
    assert_false(text_valid_role("doctor"));
    assert_false(text_valid_role("Therapist"));
    assert_false(text_valid_role("nurse "));
    assert_false(text_valid_role(""));
    assert_false(text_valid_role(NULL));
    assert_string_equal(text_roles(), "therapist, psychiatrist, pcp, pharmacist, nurse, case-manager, auditor");
}

static void test_endpoint(void **state)
{
    (void)state;
    char long_ep[LIAISON_MAX_ENDPOINT + 2];

    assert_true(text_valid_endpoint("tcp://clinic.example.org:7701"));
    assert_true(text_valid_endpoint("tcp://[::1]:7701"));
    assert_true(text_valid_endpoint("ipc:///run/liaison/peer.sock"));
    assert_false(text_valid_endpoint("tcp://"));
    assert_false(text_valid_endpoint("udp://host:1"));
    assert_false(text_valid_endpoint("inproc://x"));
    assert_false(text_valid_endpoint("TCP://host:1"));
    assert_false(text_valid_endpoint("tcp://host name:1"));
    assert_false(text_valid_endpoint("tcp://host:1\n"));
    assert_false(text_valid_endpoint("tcp://h\x7f"));
    assert_false(text_valid_endpoint("tcp://h\xc3\xa9"));
    assert_false(text_valid_endpoint(""));
    assert_false(text_valid_endpoint(NULL));

    /* 256 bytes: tcp:// + a 245-byte host name of 63-byte labels + :7701 */
    memset(long_ep, 'h', sizeof long_ep);
    memcpy(long_ep, "tcp://", 6);
    long_ep[6 + 63] = long_ep[6 + 127] = long_ep[6 + 191] = '.';
    memcpy(long_ep + LIAISON_MAX_ENDPOINT - 5, ":7701", 6);
    assert_true(text_valid_endpoint(long_ep));          /* exactly 256 */
    memcpy(long_ep + LIAISON_MAX_ENDPOINT - 5, "h:7701", 7);
    assert_false(text_valid_endpoint(long_ep));         /* 257 */
}

/* tcp://HOST:PORT with a real port; a bind address is an IP address or '*'. */
static void test_endpoint_host_port(void **state)
{
    (void)state;
    static const char *both[] = {"tcp://127.0.0.1:7912", "tcp://0.0.0.0:1", "tcp://[::1]:65535", "tcp://[::]:7701",
                                 "tcp://[fe80::1]:7701", "ipc:///run/liaison/peer.sock"};
    for (size_t i = 0; i < sizeof both / sizeof both[0]; i++) {
        assert_true(text_valid_endpoint(both[i]));
        assert_true(text_valid_bind_endpoint(both[i]));
    }
    static const char *dial_only[] = {"tcp://localhost:7912", "tcp://okafor.clinic.example:7701", "tcp://clinic_b.internal:7982",
                                      "tcp://okafor.clinic.example.:7701", "tcp://a-b.c9:7"};
    for (size_t i = 0; i < sizeof dial_only / sizeof dial_only[0]; i++) {
        assert_true(text_valid_endpoint(dial_only[i]));
        assert_false(text_valid_bind_endpoint(dial_only[i]));
        assert_non_null(strstr(text_endpoint_problem(dial_only[i], true), "not a host name"));
    }
    assert_true(text_valid_bind_endpoint("tcp://*:7701"));
    assert_false(text_valid_endpoint("tcp://*:7701"));
    static const struct {
        const char *ep, *why;
    } bad[] = {
        {"tcp://127.0.0.1:99999", "port"}, {"tcp://127.0.0.1:65536", "port"}, {"tcp://127.0.0.1:0", "port"},
        {"tcp://127.0.0.1:07912", "leading zeros"}, {"tcp://127.0.0.1:00", "1 to 65535"}, {"tcp://127.0.0.1:79x2", "port"}, {"tcp://127.0.0.1:", "port"},
        {"tcp://127.0.0.1:+79", "port"},   {"tcp://127.0.0.1", "port is missing"}, {"tcp://localhost", "port is missing"},
        {"tcp://:7701", "host is missing"}, {"tcp://::1:7701", "brackets"}, {"tcp://[::1]", "port is missing"},
        {"tcp://[::1:7701", "']'"},        {"tcp://[nothost]:7701", "IPv6"}, {"tcp://[]:7701", "IPv6"},
        {"tcp://127.0.0.256:7701", "host"}, {"tcp://1.2.3:7701", "host"}, {"tcp://-bad.example:7701", "host"},
        {"tcp://bad-.example:7701", "host"}, {"tcp://a..b:7701", "host"}, {"tcp://a/b:7701", "host"},
        {"tcp://010.0.0.1:7701", "host"},   {"udp://h:1", "tcp://HOST:PORT"}, {"ipc://", "path"}, {"", "empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *dial = text_endpoint_problem(bad[i].ep, false), *bind = text_endpoint_problem(bad[i].ep, true);
        if (!dial || !bind || !strstr(dial, bad[i].why))
            fail_msg("'%s': %s / %s, expected '%s'", bad[i].ep, dial ? dial : "accepted", bind ? bind : "accepted",
                     bad[i].why);
    }
}

/* Cards are decoded with the lenient rule (what cards were made with before the strict
 * one), new cards are made and added under the strict one. */
static void test_plausible_endpoint(void **state)
{
    (void)state;
    static const char *ok[] = {"tcp://127.0.0.1:7701", "tcp://old-host:07701", "tcp://x", "ipc:///run/l.sock"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_true(text_plausible_endpoint(ok[i]));
    assert_false(text_valid_endpoint("tcp://old-host:07701"));
    static const char *bad[] = {"", "tcp://", "http://x:1", "tcp://a b:1", "tcp://\x1b[31m:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(text_plausible_endpoint(bad[i]));
    assert_false(text_plausible_endpoint(NULL));
}

/* text_check_utf8 decides as text_valid_utf8 and names the problem and its line. */
static void test_utf8_reasons(void **state)
{
    (void)state;
    char why[96];
    assert_true(text_check_utf8("one\ntwo", 100, true, why, sizeof why));
    assert_false(text_check_utf8("one\r\ntwo", 100, true, why, sizeof why));
    assert_string_equal(why, "contains a carriage return (0x0d) at line 1: lines end with LF alone");
    assert_false(text_check_utf8("a\nb\nc\x1b[0m", 100, true, why, sizeof why));
    assert_string_equal(why, "contains a control character (0x1b) at line 3");
    assert_false(text_check_utf8("a\n\xc3\x28", 100, true, why, sizeof why));
    assert_string_equal(why, "is not valid UTF-8 (byte 0xc3 at line 2)");
    assert_false(text_check_utf8("abc", 2, true, why, sizeof why));
    assert_string_equal(why, "is longer than 2 bytes");
    assert_false(text_check_utf8("a\tb", 100, false, why, sizeof why));
    assert_string_equal(why, "must be a single line without tabs (it contains a tab)");
    assert_false(text_check_utf8("a\xc2\x85", 100, false, why, sizeof why));
    assert_string_equal(why, "contains a control character (0x85)");
}

/* The eight-bytes-at-a-time path for printable ASCII must decide exactly as the byte
 * by byte one: one odd byte (or a two-byte character) at every position and alignment
 * of strings up to 40 bytes, in both modes. */
static void test_utf8_every_position(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        bool single, multi;
    } odd[] = {
        {"\x01", false, false}, {"\x1f", false, false}, {"\t", false, true},  {"\n", false, true},
        {"\r", false, false},   {"\x7f", false, false}, {"\x80", false, false}, {"\xff", false, false},
        {"\xc3\xa9", true, true}, {"\xc2\x85", false, false}, /* U+0085 is a C1 control */
        {" ", true, true},       {"~", true, true},       {"\xe6\x97", false, false},
    };
    char buf[64];
    for (size_t k = 0; k < sizeof odd / sizeof odd[0]; k++) {
        size_t olen = strlen(odd[k].bytes);
        for (size_t len = olen; len <= 40; len++) {
            for (size_t at = 0; at + olen <= len; at++) {
                for (size_t off = 0; off < 8; off++) {
                    char *s = buf + off; /* every alignment */
                    memset(s, 'a' + (int)(len % 26), len);
                    memcpy(s + at, odd[k].bytes, olen);
                    s[len] = '\0';
                    char why[96];
                    if (text_valid_utf8(s, 128, false) != odd[k].single ||
                        text_valid_utf8(s, 128, true) != odd[k].multi ||
                        text_check_utf8(s, 128, false, why, sizeof why) != odd[k].single ||
                        text_check_utf8(s, 128, true, why, sizeof why) != odd[k].multi)
                        fail_msg("odd byte %zu at %zu of %zu (alignment %zu) misjudged", k, at, len, off);
                }
            }
        }
    }
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(text_valid_utf8("", 10, false));
    assert_true(text_valid_utf8("Dr. Ngozi Okafor", 128, false));
    assert_true(text_valid_utf8("h\xc3\xa9llo", 128, false));              /* é */
    assert_true(text_valid_utf8("\xe6\x97\xa5\xe6\x9c\xac", 128, false));   /* 日本 */
    assert_true(text_valid_utf8("\xf0\x9f\x98\x80", 128, false));           /* U+1F600 */
    assert_true(text_valid_utf8("\xf4\x8f\xbf\xbf", 128, false));           /* U+10FFFF */
    assert_true(text_valid_utf8("\xed\x9f\xbf", 128, false));               /* U+D7FF */
    assert_true(text_valid_utf8("\xee\x80\x80", 128, false));               /* U+E000 */

    /* Overlong encodings. */
    assert_false(text_valid_utf8("\xc0\xaf", 128, true));
    assert_false(text_valid_utf8("\xc1\xbf", 128, true));
    assert_false(text_valid_utf8("\xe0\x80\xaf", 128, true));
    assert_false(text_valid_utf8("\xe0\x9f\xbf", 128, true));
    assert_false(text_valid_utf8("\xf0\x80\x80\xaf", 128, true));
    assert_false(text_valid_utf8("\xf0\x8f\xbf\xbf", 128, true));
    /* Surrogates, beyond U+10FFFF, invalid lead bytes, truncation, stray continuation. */
    assert_false(text_valid_utf8("\xed\xa0\x80", 128, true));
    assert_false(text_valid_utf8("\xed\xbf\xbf", 128, true));
    assert_false(text_valid_utf8("\xf4\x90\x80\x80", 128, true));
    assert_false(text_valid_utf8("\xf5\x80\x80\x80", 128, true));
    assert_false(text_valid_utf8("\xff", 128, true));
    assert_false(text_valid_utf8("\xe6\x97", 128, true));
    assert_false(text_valid_utf8("a\xe6\x97" "b", 128, true));
    assert_false(text_valid_utf8("\x80", 128, true));
    assert_false(text_valid_utf8("\xc3\xa9\xa9", 128, true));

    /* Control characters: single line allows none; multiline allows tab and newline only. */
    assert_false(text_valid_utf8("a\tb", 128, false));
    assert_false(text_valid_utf8("a\nb", 128, false));
    assert_true(text_valid_utf8("a\tb\nc\n", 128, true));
    assert_false(text_valid_utf8("a\r\nb", 128, true));
    assert_false(text_valid_utf8("a\rb", 128, false));
    assert_false(text_valid_utf8("\x1b[31mred", 128, true));
    assert_false(text_valid_utf8("a\x7f", 128, true));
    assert_false(text_valid_utf8("a\x01", 128, true));
    assert_false(text_valid_utf8("a\xc2\x85" "b", 128, true));  /* U+0085 NEL, a C1 control */
    assert_false(text_valid_utf8("a\xc2\x9b" "b", 128, true));  /* U+009B CSI */
    assert_true(text_valid_utf8("a\xc2\xa0" "b", 128, true));   /* U+00A0 is not a control */

    /* Length in bytes. */
    assert_true(text_valid_utf8("abcd", 4, false));
    assert_false(text_valid_utf8("abcde", 4, false));
    assert_false(text_valid_utf8("abc\xc3\xa9", 4, false));   /* 5 bytes */
    assert_false(text_valid_utf8(NULL, 4, false));
}

static void test_b64_vectors(void **state)
{
    (void)state;
    static const struct { const char *bin; size_t len; const char *b64; } v[] = {
        {"", 0, ""}, {"f", 1, "Zg"}, {"fo", 2, "Zm8"}, {"foo", 3, "Zm9v"},
        {"foob", 4, "Zm9vYg"}, {"fooba", 5, "Zm9vYmE"}, {"foobar", 6, "Zm9vYmFy"},
        {"\xfb\xff", 2, "-_8"}, {"\xfb\xef\xbe", 3, "----"}, {"\xff\xff\xff", 3, "____"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char *enc = text_b64_encode((const uint8_t *)v[i].bin, v[i].len);
        assert_non_null(enc);
        assert_string_equal(enc, v[i].b64);
        free(enc);
        uint8_t *dec = NULL;
        size_t dec_len = 99;
        assert_int_equal(text_b64_decode(v[i].b64, 100, &dec, &dec_len), 0);
        assert_non_null(dec);
        assert_int_equal(dec_len, v[i].len);
        assert_memory_equal(dec, v[i].bin, v[i].len);
        free(dec);
    }
}

static void test_b64_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[200];
    for (size_t len = 0; len <= sizeof buf; len++) {
        randombytes_buf(buf, len);
        char *enc = text_b64_encode(buf, len);
        assert_non_null(enc);
        assert_int_equal(strlen(enc), (len * 4 + 2) / 3);
        uint8_t *dec = NULL;
        size_t dec_len = 0;
        assert_int_equal(text_b64_decode(enc, len, &dec, &dec_len), 0);
        assert_int_equal(dec_len, len);
        assert_memory_equal(dec, buf, len);
        free(dec);
        if (len > 0) {   /* one byte under the limit: refused */
            dec = (uint8_t *)1;
            assert_int_equal(text_b64_decode(enc, len - 1, &dec, &dec_len), -1);
            assert_null(dec);
        }
        free(enc);
    }
}

static void test_b64_decode_edges(void **state)
{
    (void)state;
    static const char *good_ws[] = {"Zm9v YmFy", " Zm9vYmFy", "Zm9vYmFy\n", "Z\nm\r\n9\tv\vY\fm F y", "\n\n Zm9v\n YmFy \n"};
    static const char *bad[] = {
        "Zm9vYmE=",    /* padding */
        "Zm9vYg==",
        "Zm9v+mFy",    /* standard alphabet */
        "Zm9v/mFy",
        "Zh",          /* non-zero trailing bits: a second encoding of "f" */
        "Zm8",         /* ok: "fo" (control) */
        "Zm9",         /* non-zero trailing bits */
        "Zm9vY",       /* 1 mod 4 digits */
        "Z",
        "Zm9v.mFy",
        "Zm9v\x01mFy",
        "Zm9v\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof good_ws / sizeof good_ws[0]; i++) {
        uint8_t *dec = NULL;
        size_t dec_len = 0;
        assert_int_equal(text_b64_decode(good_ws[i], 6, &dec, &dec_len), 0);
        assert_int_equal(dec_len, 6);
        assert_memory_equal(dec, "foobar", 6);
        free(dec);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *dec = (uint8_t *)1;
        size_t dec_len = 0;
        int rc = text_b64_decode(bad[i], 100, &dec, &dec_len);
        if (strcmp(bad[i], "Zm8") == 0) {    /* control: the one valid entry */
            assert_int_equal(rc, 0);
            free(dec);
            continue;
        }
        if (rc == 0)
            fail_msg("accepted bad base64 '%s'", bad[i]);
        assert_null(dec);
    }
    /* Whitespace only and empty: zero bytes. */
    uint8_t *dec = NULL;
    size_t dec_len = 99;
    assert_int_equal(text_b64_decode(" \n\t", 0, &dec, &dec_len), 0);
    assert_int_equal(dec_len, 0);
    free(dec);
    assert_int_equal(text_b64_decode(NULL, 10, &dec, &dec_len), -1);
    assert_null(dec);
    /* The limit counts decoded bytes, not characters with whitespace. */
    assert_int_equal(text_b64_decode("Zm9v    \n\n\n   YmFy", 6, &dec, &dec_len), 0);
    free(dec);
}

static void test_time_format(void **state)
{
    (void)state;
    char buf[32];
    text_time_utc(0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    text_time_utc(1700000000123ull, buf, sizeof buf);
    assert_string_equal(buf, "2023-11-14T22:13:20Z");
    text_time_utc(1709210096999ull, buf, 21);            /* exactly big enough */
    assert_string_equal(buf, "2024-02-29T12:34:56Z");
    text_time_utc(1709210096999ull, buf, 20);            /* too small: empty, not truncated */
    assert_string_equal(buf, "");
}

static void test_time_parse(void **state)
{
    (void)state;
    static const struct { const char *s; uint64_t ms; } ok[] = {
        {"2024-02-29", 1709164800000ull},
        {"2024-02-29T12:34Z", 1709210040000ull},
        {"2024-02-29T12:34:56Z", 1709210096000ull},
        {"2000-01-01", 946684800000ull},
        {"1970-01-01", 0},
        {"9999-12-31T23:59:59Z", 253402300799000ull},
        {"0", 0},
        {"1700000000123", 1700000000123ull},
        {"1709164800", 1709164800ull},    /* ten digits are a number of ms, not a date */
        {"18446744073709551615", UINT64_MAX},
    };
    static const char *bad[] = {
        "", "2023-02-29", "2024-02-30", "2024-04-31", "2024-13-01", "2024-00-10", "2024-01-00",
        "2024-01-32", "2024-01-01T24:00Z", "2024-01-01T12:60Z", "2024-01-01T12:34:60Z",
        "2024-01-01T12:34", "2024-01-01Z", "2024-01-01T12Z", "2024-1-01", "2024-01-1",
        "1969-12-31", " 2024-01-01", "2024-01-01 ", "2024-01-01T12:34:56+01:00",
        "2024-01-01t12:34Z", "+2024-01-01", "-5", "12a", "18446744073709551616", "1e9", " 5",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t ms = 12345;
        if (text_parse_time(ok[i].s, &ms) != 0)
            fail_msg("refused '%s'", ok[i].s);
        assert_int_equal(ms, ok[i].ms);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ms = 0;
        if (text_parse_time(bad[i], &ms) == 0)
            fail_msg("accepted '%s' as %llu", bad[i], (unsigned long long)ms);
    }
    uint64_t ms = 0;
    assert_int_equal(text_parse_time(NULL, &ms), -1);

    /* Format and parse agree. */
    char buf[32];
    text_time_utc(1709210096000ull, buf, sizeof buf);
    assert_int_equal(text_parse_time(buf, &ms), 0);
    assert_int_equal(ms, 1709210096000ull);
}

static void test_printable(void **state)
{
    (void)state;
    char out[16];
    text_printable(out, sizeof out, "plain text");
    assert_string_equal(out, "plain text");
    /* A newline that would start a forged log line, an ANSI escape, DEL, C1 and UTF-8 bytes. */
    text_printable(out, sizeof out, "a\nb\r\x1b[31m\x7f\xc2\x9b\xc3\xa9");
    assert_string_equal(out, "a?b??[31m?????");
    /* Bounded: at most sizeof out - 1 bytes, always terminated. */
    text_printable(out, sizeof out, "0123456789abcdefghij");
    assert_string_equal(out, "0123456789abcde");
    text_printable(out, 1, "x");
    assert_string_equal(out, "");
    text_printable(out, sizeof out, NULL);
    assert_string_equal(out, "");
}

/* Strings that leave the node in protobuf string fields (audit entries, errors) are
 * made valid single-line UTF-8, keeping every valid character and cutting only between
 * characters. */
static void test_clean_line(void **state)
{
    (void)state;
    char out[16];
    assert_true(text_clean_line(out, sizeof out, "caf\xc3\xa9 ok"));
    assert_string_equal(out, "caf\xc3\xa9 ok");
    /* A lone 0xff, a cut two-byte sequence, an overlong '/', a surrogate, a newline, a
     * tab, DEL and a C1 control each become one '?'. */
    assert_false(text_clean_line(out, sizeof out, "b\xff" "b\xc3"));
    assert_string_equal(out, "b?b?");
    assert_false(text_clean_line(out, sizeof out, "\xc0\xaf\xed\xa0\x80\n\t\x7f\xc2\x9b"));
    assert_string_equal(out, "?????????");
    assert_true(text_valid_utf8(out, 100, false));
    /* Bounded, and never cut inside a character: 14 bytes then a 2-byte character that
     * does not fit in the 15 left. */
    assert_false(text_clean_line(out, sizeof out, "abcdefghijklmn\xc3\xa9"));
    assert_string_equal(out, "abcdefghijklmn");
    /* In place. */
    char in[] = "x\xfe\xc3\xa9\x01" "y";
    assert_false(text_clean_line(in, sizeof in, in));
    assert_string_equal(in, "x?\xc3\xa9?" "y");
    assert_true(text_clean_line(out, 1, "x") == false);
    assert_string_equal(out, "");
    assert_true(text_clean_line(out, sizeof out, NULL));
    assert_string_equal(out, "");
}

/* text_visible's output gathered into one string. */
typedef struct {
    char buf[256];
    size_t n, calls;
} shown_t;

static void gather(void *ctx, const char *p, size_t len)
{
    shown_t *sh = ctx;
    assert_true(sh->n + len < sizeof sh->buf);
    memcpy(sh->buf + sh->n, p, len);
    sh->n += len;
    sh->buf[sh->n] = '\0';
    sh->calls++;
}

static const char *visible(shown_t *sh, const char *s)
{
    memset(sh, 0, sizeof *sh);
    assert_int_equal(text_visible(s, strlen(s), true, gather, sh), strlen(s));
    return sh->buf;
}

/* Bidirectional controls and control characters reach a person by name; everything else,
 * tab, newline and other non-ASCII text included, as it is. */
static void test_visible(void **state)
{
    (void)state;
    shown_t sh;
    assert_string_equal(visible(&sh, "sertraline 50 mg\n\tdaily, caf\xc3\xa9"), "sertraline 50 mg\n\tdaily, caf\xc3\xa9");
    assert_int_equal(sh.calls, 1);
    /* RLO ... PDF around a dose (U+202E, U+202C), LRI/PDI (U+2066, U+2069), LRM, RLM, ALM. */
    assert_string_equal(visible(&sh, "dose \xe2\x80\xae" "05\xe2\x80\xac mg"), "dose <U+202E>05<U+202C> mg");
    assert_string_equal(visible(&sh, "\xe2\x81\xa6x\xe2\x81\xa9\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c"),
                        "<U+2066>x<U+2069><U+200E><U+200F><U+061C>");
    assert_string_equal(visible(&sh, "\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xad\xe2\x81\xa7\xe2\x81\xa8"),
                        "<U+202A><U+202B><U+202D><U+2067><U+2068>");
    /* Neighbours that are not controls stay: U+2029 is shown, U+202F (narrow no-break space) too. */
    assert_string_equal(visible(&sh, "\xe2\x80\xa9\xe2\x80\xaf"), "\xe2\x80\xa9\xe2\x80\xaf");
    /* ESC, CR, DEL, C1 CSI; a lone 0xff, an overlong '/' and a cut sequence at the end. */
    assert_string_equal(visible(&sh, "\x1b[2J\r\x7f\xc2\x9b"), "<U+001B>[2J<U+000D><U+007F><U+009B>");
    assert_string_equal(visible(&sh, "a\xff\xc0\xaf" "b\xe2\x80"), "a<0xFF><0xC0><0xAF>b<0xE2><0x80>");
    assert_true(text_shown_by_name(0x202e) && text_shown_by_name(0x1b) && text_shown_by_name(0x85));
    assert_false(text_shown_by_name('\n') || text_shown_by_name('\t') || text_shown_by_name(0xe9) ||
                 text_shown_by_name(0x200d));
    /* A stream in pieces: a sequence cut by the end of a piece is left for the next. */
    const char *rlo = "x\xe2\x80\xae";
    memset(&sh, 0, sizeof sh);
    assert_int_equal(text_visible(rlo, 2, false, gather, &sh), 1);
    assert_int_equal(text_visible(rlo, 3, false, gather, &sh), 1);
    assert_string_equal(sh.buf, "xx");
    memset(&sh, 0, sizeof sh);
    assert_int_equal(text_visible(rlo + 1, 3, false, gather, &sh), 3);
    assert_string_equal(sh.buf, "<U+202E>");
    /* Not a prefix of any character: shown at once, not held. */
    memset(&sh, 0, sizeof sh);
    assert_int_equal(text_visible("\xe2" "a", 2, false, gather, &sh), 2);
    assert_string_equal(sh.buf, "<0xE2>a");
}

static void test_edit_distance(void **state)
{
    (void)state;
    assert_int_equal(text_edit_distance("dr.okafor", "dr.okafor", 2), 0);
    assert_int_equal(text_edit_distance("dr.okafr", "dr.okafor", 2), 1);   /* a letter left out */
    assert_int_equal(text_edit_distance("dr.okafro", "dr.okafor", 2), 1);  /* two swapped: one edit */
    assert_int_equal(text_edit_distance("dr.okafir", "dr.okafor", 2), 1);  /* one changed */
    assert_int_equal(text_edit_distance("dr.okafoor", "dr.okafor", 2), 1); /* one added */
    assert_int_equal(text_edit_distance("dr.oakfr", "dr.okafor", 2), 2);
    assert_int_equal(text_edit_distance("sned", "send", 2), 1);
    assert_int_equal(text_edit_distance("medchange", "med-change", 2), 1);
    assert_int_equal(text_edit_distance("", "ab", 2), 2);
    assert_int_equal(text_edit_distance("ab", "", 2), 2);
    /* Over the limit: limit + 1, however far. */
    assert_int_equal(text_edit_distance("rx.chen", "dr.okafor", 2), 3);
    assert_int_equal(text_edit_distance("abc", "xyz", 1), 2);
    assert_int_equal(text_edit_distance("a", "abcd", 2), 3);
    /* Restricted Damerau: a swapped pair is not edited again ("ca" -> "abc" is 3, not 2). */
    assert_int_equal(text_edit_distance("ca", "abc", 5), 3);
    /* Longer than TEXT_EDIT_MAX: not compared. */
    char long1[TEXT_EDIT_MAX + 2];
    memset(long1, 'a', sizeof long1 - 1);
    long1[sizeof long1 - 1] = 0;
    assert_int_equal(text_edit_distance(long1, long1, 2), 3);
    long1[TEXT_EDIT_MAX] = 0;
    assert_int_equal(text_edit_distance(long1, long1, 2), 0);
}

/* A value a refused request typed is masked in what the audit log keeps: the whole
 * value, quotes or colons in it included; an apostrophe inside a word is no quote. */
static void test_mask_quoted(void **state)
{
    (void)state;
    const struct {
        const char *in, *out;
    } cases[] = {
        {"'MRN-0042' is not a valid node id", "'?' is not a valid node id"},
        {"'O'Brien' is not a valid node id", "'?' is not a valid node id"},
        {"'smith 'john' is not a valid node id", "'?' is not a valid node id"},
        {"'MRN:0042' is not a valid node id", "'?' is not a valid node id"},
        {"peer 'nobody' is not in the directory (see: liaison peer list)",
         "peer '?' is not in the directory (see: liaison peer list)"},
        {"this node's id and the open's salt", "this node's id and the open's salt"},
        {"the value 'x", "the value '?'"}, /* unclosed: the rest is masked */
        {"no quote at all", "no quote at all"},
        {"''", "'?'"},
        {"peer 'a' and 'b'", "peer '?'"},
    };
    char out[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        text_mask_quoted(out, sizeof out, cases[i].in);
        assert_string_equal(out, cases[i].out);
    }
    char small[4];
    text_mask_quoted(small, sizeof small, "'abcdef' x"); /* cut, terminated */
    assert_string_equal(small, "'?'");
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msgid_hex),     cmocka_unit_test(test_valid_id),
        cmocka_unit_test(test_roles),         cmocka_unit_test(test_endpoint),
        cmocka_unit_test(test_endpoint_host_port), cmocka_unit_test(test_plausible_endpoint),
        cmocka_unit_test(test_utf8_reasons),
        cmocka_unit_test(test_utf8),          cmocka_unit_test(test_utf8_every_position),          cmocka_unit_test(test_b64_vectors),
        cmocka_unit_test(test_b64_roundtrip), cmocka_unit_test(test_b64_decode_edges),
        cmocka_unit_test(test_time_format),   cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_printable), cmocka_unit_test(test_clean_line), cmocka_unit_test(test_visible),
        cmocka_unit_test(test_edit_distance), cmocka_unit_test(test_mask_quoted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
