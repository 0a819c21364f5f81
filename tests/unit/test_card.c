/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of card.c: round trip, tampering, whitespace and every field check. */
#include "unit.h"

#include "card.h"
#include "text.h"
#include "wire.pb-c.h"

static const char *const b64_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static card_t sample_card(const keys_t *k)
{
    card_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.id, sizeof c.id, "dr.okafor");
    snprintf(c.name, sizeof c.name, "Dr. Ngozi Okafor \xe2\x80\x94 Psychiatrie");
    snprintf(c.role, sizeof c.role, "psychiatrist");
    snprintf(c.org, sizeof c.org, "Northside Community Mental Health");
    snprintf(c.endpoint, sizeof c.endpoint, "tcp://liaison.northside.example:7701");
    memcpy(c.sign_pk, k->sign_pk, 32);
    memcpy(c.enc_pk, k->enc_pk, 32);
    memcpy(c.transport_pk, k->transport_pk, 32);
    c.created_ms = 1709210096000ull;
    return c;
}

static void assert_cards_equal(const card_t *a, const card_t *b)
{
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->role, b->role);
    assert_string_equal(a->org, b->org);
    assert_string_equal(a->endpoint, b->endpoint);
    assert_memory_equal(a->sign_pk, b->sign_pk, 32);
    assert_memory_equal(a->enc_pk, b->enc_pk, 32);
    assert_memory_equal(a->transport_pk, b->transport_pk, 32);
    assert_int_equal(a->created_ms, b->created_ms);
}

/* What a test card builder may vary, to produce cards card_encode would refuse. */
typedef struct spec {
    uint32_t version;
    const char *id, *name, *role, *org, *endpoint;
    size_t sign_pk_len, enc_pk_len, transport_pk_len;
    size_t sig_len;
    const keys_t *signer;     /* NULL: the card's own keys */
    int flip_body_after_sign; /* alter one body byte after signing */
    int body_unknown_field;   /* append field 15 to the body before signing */
} spec_t;

static spec_t good_spec(void)
{
    return (spec_t){1, "dr.okafor", "Dr. Okafor", "psychiatrist", "Northside", "tcp://h:1", 32, 32, 32, 64, NULL, 0, 0};
}

/* Builds card text independently of card_encode, straight from the wire format spec. */
static char *build_card(const keys_t *k, const spec_t *s)
{
    uint8_t pad[80] = {0};
    Liaison__Wire__CardBody cb = LIAISON__WIRE__CARD_BODY__INIT;
    cb.version = s->version;
    cb.id = (char *)s->id;
    cb.name = (char *)s->name;
    cb.role = (char *)s->role;
    cb.org = (char *)s->org;
    cb.endpoint = (char *)s->endpoint;
    uint8_t pks[3][40];
    memset(pks, 0, sizeof pks);
    memcpy(pks[0], k->sign_pk, 32);
    memcpy(pks[1], k->enc_pk, 32);
    memcpy(pks[2], k->transport_pk, 32);
    cb.sign_pk = (ProtobufCBinaryData){s->sign_pk_len, pks[0]};
    cb.enc_pk = (ProtobufCBinaryData){s->enc_pk_len, pks[1]};
    cb.transport_pk = (ProtobufCBinaryData){s->transport_pk_len, pks[2]};
    cb.created_ms = 42;
    size_t blen = liaison__wire__card_body__get_packed_size(&cb);
    uint8_t *body = malloc(blen + 2);
    assert_non_null(body);
    liaison__wire__card_body__pack(&cb, body);
    if (s->body_unknown_field) {
        body[blen++] = 0x78; /* field 15, varint */
        body[blen++] = 0x01;
    }
    uint8_t *msg = malloc(sizeof "liaison-v1/card" + blen);
    memcpy(msg, "liaison-v1/card", sizeof "liaison-v1/card");   /* includes the 0x00 */
    memcpy(msg + sizeof "liaison-v1/card", body, blen);
    uint8_t sig[64];
    const keys_t *signer = s->signer ? s->signer : k;
    assert_int_equal(crypto_sign_detached(sig, NULL, msg, sizeof "liaison-v1/card" + blen, signer->sign_sk), 0);
    if (s->flip_body_after_sign)
        body[blen / 2] ^= 0x01;
    Liaison__Wire__Card card = LIAISON__WIRE__CARD__INIT;
    card.body = (ProtobufCBinaryData){blen, body};
    memcpy(pad, sig, 64);
    card.signature = (ProtobufCBinaryData){s->sig_len, pad};
    size_t clen = liaison__wire__card__get_packed_size(&card);
    uint8_t *cbytes = malloc(clen);
    liaison__wire__card__pack(&card, cbytes);
    char *b64 = text_b64_encode(cbytes, clen);
    char *text = NULL;
    assert_true(asprintf(&text, "%s%s", CARD_PREFIX, b64) > 0);
    free(b64);
    free(cbytes);
    free(msg);
    free(body);
    return text;
}

static void expect_refused(const char *text, const char *needle)
{
    card_t out;
    char err[512] = "";
    if (card_decode(text, &out, err, sizeof err) == 0)
        fail_msg("card accepted (expected an error mentioning '%s')", needle);
    if (strncmp(err, "card: ", 6) != 0 || !strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_roundtrip(void **state)
{
    (void)state;
    char err[512] = "";
    keys_t *k = keys_generate();
    card_t c = sample_card(k), d;
    char *text = card_encode(&c, k, err, sizeof err);
    if (!text)
        fail_msg("card_encode: %s", err);
    assert_true(strncmp(text, CARD_PREFIX, strlen(CARD_PREFIX)) == 0);
    assert_null(strpbrk(text, " \t\r\n="));
    assert_true(strlen(text) <= LIAISON_MAX_CARD_TEXT);
    memset(&d, 0x55, sizeof d);
    if (card_decode(text, &d, err, sizeof err) != 0)
        fail_msg("card_decode: %s", err);
    assert_cards_equal(&c, &d);
    assert_int_equal(card_same_keys(&c, &d), 1);

    /* Empty org is allowed. */
    c.org[0] = '\0';
    free(text);
    text = card_encode(&c, k, err, sizeof err);
    assert_non_null(text);
    assert_int_equal(card_decode(text, &d, err, sizeof err), 0);
    assert_string_equal(d.org, "");

    /* Largest fields still fit in the text limit. */
    memset(c.id, 'z', LIAISON_MAX_ID);
    c.id[LIAISON_MAX_ID] = '\0';
    memset(c.name, 'n', LIAISON_MAX_NAME);
    c.name[LIAISON_MAX_NAME] = '\0';
    memset(c.org, 'o', LIAISON_MAX_NAME);
    c.org[LIAISON_MAX_NAME] = '\0';
    memcpy(c.endpoint, "ipc://", 6);
    memset(c.endpoint + 6, 'e', LIAISON_MAX_ENDPOINT - 6);
    c.endpoint[LIAISON_MAX_ENDPOINT] = '\0';
    snprintf(c.role, sizeof c.role, "case-manager");
    c.created_ms = UINT64_MAX;
    free(text);
    text = card_encode(&c, k, err, sizeof err);
    if (!text)
        fail_msg("card_encode (max fields): %s", err);
    assert_int_equal(card_decode(text, &d, err, sizeof err), 0);
    assert_cards_equal(&c, &d);
    free(text);
    keys_destroy(&k);
}

static void test_independent_encoding_accepted(void **state)
{
    (void)state;
    keys_t *k = keys_generate();
    spec_t s = good_spec();
    char *text = build_card(k, &s);
    card_t d;
    char err[512] = "";
    if (card_decode(text, &d, err, sizeof err) != 0)
        fail_msg("hand-built card refused: %s", err);
    assert_string_equal(d.id, "dr.okafor");
    assert_int_equal(d.created_ms, 42);
    free(text);
    keys_destroy(&k);
}

static void test_encode_refuses(void **state)
{
    (void)state;
    char err[512] = "";
    keys_t *k = keys_generate();
    keys_t *other = keys_generate();
    card_t c = sample_card(k), bad;

    bad = c;
    snprintf(bad.role, sizeof bad.role, "doctor");
    assert_null(card_encode(&bad, k, err, sizeof err));
    assert_non_null(strstr(err, "role 'doctor' is not one of therapist, psychiatrist"));
    bad = c;
    snprintf(bad.id, sizeof bad.id, "Dr.Okafor");
    assert_null(card_encode(&bad, k, err, sizeof err));
    assert_non_null(strstr(err, "id 'Dr.Okafor'"));
    bad = c;
    bad.name[0] = '\0';
    assert_null(card_encode(&bad, k, err, sizeof err));
    assert_non_null(strstr(err, "name"));
    bad = c;
    snprintf(bad.name, sizeof bad.name, "two\nlines");
    assert_null(card_encode(&bad, k, err, sizeof err));
    assert_non_null(strstr(err, "name"));
    bad = c;
    snprintf(bad.endpoint, sizeof bad.endpoint, "http://x");
    assert_null(card_encode(&bad, k, err, sizeof err));
    assert_non_null(strstr(err, "endpoint"));
    /* Keys that are not the signer's: all three, or any single one. */
    assert_null(card_encode(&c, other, err, sizeof err));
    assert_non_null(strstr(err, "keys"));
    for (int which = 0; which < 3; which++) {
        bad = c;
        memcpy(which == 0 ? bad.sign_pk : which == 1 ? bad.enc_pk : bad.transport_pk,
               which == 0 ? other->sign_pk : which == 1 ? other->enc_pk : other->transport_pk, 32);
        err[0] = '\0';
        assert_null(card_encode(&bad, k, err, sizeof err));
        assert_non_null(strstr(err, "keys"));
    }
    keys_destroy(&k);
    keys_destroy(&other);
}

/* A name or org with a bidirectional control reads as something else on screen: no
 * card of ours carries one, and none is added (a stored one stays readable). Arabic
 * and Hebrew letters, which need none, are taken. */
static void test_direction_controls_refused(void **state)
{
    (void)state;
    char err[512] = "", why[256];
    keys_t *k = keys_generate();
    card_t c = sample_card(k), bad;
    static const char *const controls[] = {"\xd8\x9c", "\xe2\x80\x8e", "\xe2\x80\x8f", "\xe2\x80\xaa",
                                           "\xe2\x80\xae", "\xe2\x81\xa6", "\xe2\x81\xa9"};
    static const char *const shown[] = {"U+061C", "U+200E", "U+200F", "U+202A", "U+202E", "U+2066", "U+2069"};
    for (size_t i = 0; i < sizeof controls / sizeof controls[0]; i++) {
        bad = c;
        snprintf(bad.name, sizeof bad.name, "Dr. %srotkafO", controls[i]);
        assert_null(card_encode(&bad, k, err, sizeof err));
        assert_non_null(strstr(err, "card: name holds the invisible direction control"));
        assert_non_null(strstr(err, shown[i]));
        assert_non_null(card_add_problem(&bad, why, sizeof why));
        assert_non_null(strstr(why, shown[i]));
        bad = c;
        snprintf(bad.org, sizeof bad.org, "Clinic %s", controls[i]);
        assert_null(card_encode(&bad, k, err, sizeof err));
        assert_non_null(strstr(err, "card: org holds"));
        assert_non_null(strstr(card_add_problem(&bad, why, sizeof why), "its org holds"));
    }
    bad = c;
    snprintf(bad.name, sizeof bad.name, "\xd7\x93\xd7\xa0\xd7\x94 \xd9\x84\xd9\x8a\xd9\x84\xd9\x89"); /* Hebrew, Arabic */
    snprintf(bad.org, sizeof bad.org, "\xe2\x80\x94 \xe2\x80\xa6"); /* U+2014, U+2026: neighbours, not controls */
    char *text = card_encode(&bad, k, err, sizeof err);
    assert_non_null(text);
    assert_null(card_add_problem(&bad, why, sizeof why));
    free(text);
    assert_null(card_add_problem(&c, why, sizeof why));
    bad = c;
    snprintf(bad.endpoint, sizeof bad.endpoint, "tcp://*:7000");
    assert_non_null(card_add_problem(&bad, why, sizeof why));
    assert_non_null(strstr(why, "endpoint"));
    keys_destroy(&k);
}

static void test_every_char_changed_is_refused(void **state)
{
    (void)state;
    char err[512] = "";
    keys_t *k = keys_generate();
    card_t c = sample_card(k), d;
    char *text = card_encode(&c, k, err, sizeof err);
    assert_non_null(text);
    size_t n = strlen(text);
    size_t tried = 0;
    for (size_t i = 0; i < n; i++) {
        char orig = text[i];
        for (size_t a = 0; a < 64; a++) {
            if (b64_alphabet[a] == orig)
                continue;
            text[i] = b64_alphabet[a];
            if (card_decode(text, &d, err, sizeof err) == 0)
                fail_msg("card with char %zu changed from '%c' to '%c' was accepted", i, orig, text[i]);
            tried++;
        }
        /* ...and a few non-alphabet characters. */
        static const char others[] = {'=', '+', '/', '.', '\x01', '\x7f'};
        for (size_t a = 0; a < sizeof others; a++) {
            text[i] = others[a];
            assert_int_equal(card_decode(text, &d, err, sizeof err), -1);
        }
        text[i] = orig;
    }
    assert_true(tried > 60 * n);
    /* Dropping a character, or appending one, is refused too. */
    for (size_t i = 0; i < n; i += 7) {
        char *cut = strdup(text);
        memmove(cut + i, cut + i + 1, n - i);
        assert_int_equal(card_decode(cut, &d, err, sizeof err), -1);
        free(cut);
    }
    char *longer = NULL;
    assert_true(asprintf(&longer, "%sA", text) > 0);
    assert_int_equal(card_decode(longer, &d, err, sizeof err), -1);
    free(longer);
    /* The untouched text still decodes: the loop really restored each character. */
    assert_int_equal(card_decode(text, &d, err, sizeof err), 0);
    free(text);
    keys_destroy(&k);
}

static void test_whitespace_accepted(void **state)
{
    (void)state;
    char err[512] = "";
    keys_t *k = keys_generate();
    card_t c = sample_card(k), d;
    char *text = card_encode(&c, k, err, sizeof err);
    assert_non_null(text);
    size_t n = strlen(text);

    /* Wrapped at 64 columns with CRLF, indented, with a break inside the prefix. */
    char *wrapped = malloc(4 * n + 64);
    size_t w = 0;
    w += (size_t)sprintf(wrapped, "  \t\n");
    for (size_t i = 0; i < n; i++) {
        if (i == 7)
            wrapped[w++] = '\n';
        if (i > 0 && i % 64 == 0) {
            memcpy(wrapped + w, "\r\n    ", 6);
            w += 6;
        }
        wrapped[w++] = text[i];
    }
    memcpy(wrapped + w, " \n\n", 4);
    if (card_decode(wrapped, &d, err, sizeof err) != 0)
        fail_msg("wrapped card refused: %s", err);
    assert_cards_equal(&c, &d);

    /* A space between every character. */
    char *spaced = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        spaced[2 * i] = text[i];
        spaced[2 * i + 1] = ' ';
    }
    spaced[2 * n] = '\0';
    assert_int_equal(card_decode(spaced, &d, err, sizeof err), 0);
    assert_cards_equal(&c, &d);

    free(spaced);
    free(wrapped);
    free(text);
    keys_destroy(&k);
}

static void test_fields_named_in_errors(void **state)
{
    (void)state;
    keys_t *k = keys_generate();
    keys_t *other = keys_generate();
    char long_name[LIAISON_MAX_NAME + 2];
    memset(long_name, 'x', LIAISON_MAX_NAME + 1);
    long_name[LIAISON_MAX_NAME + 1] = '\0';
    struct { spec_t s; const char *needle; } cases[] = {
        {good_spec(), NULL},
        {good_spec(), "role 'doctor' is not one of therapist, psychiatrist, pcp, pharmacist, nurse, case-manager, auditor"},
        {good_spec(), "role '?[31mnurse'"},
        {good_spec(), "id 'Dr.Okafor'"},
        {good_spec(), "id ''"},
        {good_spec(), "id '-x'"},
        {good_spec(), "name"},
        {good_spec(), "name"},
        {good_spec(), "name"},
        {good_spec(), "org"},
        {good_spec(), "endpoint"},
        {good_spec(), "endpoint"},
        {good_spec(), "sign_pk is 31 bytes"},
        {good_spec(), "enc_pk is 33 bytes"},
        {good_spec(), "transport_pk is 0 bytes"},
        {good_spec(), "signature is 63 bytes"},
        {good_spec(), "version 2"},
        {good_spec(), "version 0"},
        {good_spec(), "signature does not verify (the card was altered or damaged in transit; ask for it again)"},
        {good_spec(), "signature does not verify"},
        {good_spec(), "canonical"},
    };
    size_t i = 1;
    cases[i++].s.role = "doctor";
    cases[i++].s.role = "\x1b[31mnurse";
    cases[i++].s.id = "Dr.Okafor";
    cases[i++].s.id = "";
    cases[i++].s.id = "-x";
    cases[i++].s.name = "";
    cases[i++].s.name = "Dr.\nOkafor";
    cases[i++].s.name = long_name;
    cases[i++].s.org = long_name;
    cases[i++].s.endpoint = "http://h:1";
    cases[i++].s.endpoint = "tcp://h :1";
    cases[i++].s.sign_pk_len = 31;
    cases[i++].s.enc_pk_len = 33;
    cases[i++].s.transport_pk_len = 0;
    cases[i++].s.sig_len = 63;
    cases[i++].s.version = 2;
    cases[i++].s.version = 0;
    cases[i++].s.signer = other;
    cases[i++].s.flip_body_after_sign = 1;
    cases[i++].s.body_unknown_field = 1;
    assert_int_equal(i, sizeof cases / sizeof cases[0]);

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = build_card(k, &cases[i].s);
        if (cases[i].needle) {
            expect_refused(text, cases[i].needle);
        } else {
            card_t d;
            char err[512];
            assert_int_equal(card_decode(text, &d, err, sizeof err), 0);
        }
        free(text);
    }
    keys_destroy(&k);
    keys_destroy(&other);
}

static void test_bad_text(void **state)
{
    (void)state;
    char err[512] = "";
    card_t d;
    expect_refused("", "liaison-card-v1:");
    expect_refused("liaison-card-v2:AAAA", "liaison-card-v1:");
    expect_refused("AAAA", "liaison-card-v1:");
    expect_refused("liaison-card-v1:", "no card data");
    expect_refused("liaison-card-v1: \n ", "no card data");
    expect_refused("liaison-card-v1:Zm9v=", "base64url");
    expect_refused("liaison-card-v1:Zm9vYmFy", "cannot decode");

    char *huge = malloc(LIAISON_MAX_CARD_TEXT + 100);
    memcpy(huge, CARD_PREFIX, strlen(CARD_PREFIX));
    memset(huge + strlen(CARD_PREFIX), 'A', LIAISON_MAX_CARD_TEXT + 99 - strlen(CARD_PREFIX));
    huge[LIAISON_MAX_CARD_TEXT + 99] = '\0';
    expect_refused(huge, "longer than");
    free(huge);
    assert_int_equal(card_decode(NULL, &d, err, sizeof err), -1);
}

static void test_same_keys(void **state)
{
    (void)state;
    keys_t *k = keys_generate();
    card_t a = sample_card(k), b = a;
    assert_int_equal(card_same_keys(&a, &b), 1);
    snprintf(b.name, sizeof b.name, "Someone else");     /* display data does not matter */
    assert_int_equal(card_same_keys(&a, &b), 1);
    for (int which = 0; which < 3; which++) {
        b = a;
        uint8_t *key = which == 0 ? b.sign_pk : which == 1 ? b.enc_pk : b.transport_pk;
        key[31] ^= 0x80;
        assert_int_equal(card_same_keys(&a, &b), 0);
    }
    keys_destroy(&k);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_independent_encoding_accepted),
        cmocka_unit_test(test_encode_refuses),
        cmocka_unit_test(test_direction_controls_refused),
        cmocka_unit_test(test_every_char_changed_is_refused),
        cmocka_unit_test(test_whitespace_accepted),
        cmocka_unit_test(test_fields_named_in_errors),
        cmocka_unit_test(test_bad_text),
        cmocka_unit_test(test_same_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
