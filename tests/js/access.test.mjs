// The pages' checks of access rules as people type them (static/js/access.js): lists of
// networks and countries, the recipient's address and the mailed code. They only catch typing
// mistakes early; the server decides (tests/web/test_access.py). Run with `node --test tests/js/`.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  CODE_RESEND_MS,
  MAX_NETWORKS,
  badCountries,
  badNetworks,
  looksLikeEmail,
  looksLikeNetwork,
  normaliseCountries,
  normaliseOtp,
  resendWait,
  splitList,
  splitRecipients,
} from "../../src/burnlink/web/static/js/access.js";

test("lists split on lines, commas, semicolons and spaces, without empty entries", () => {
  assert.deepEqual(splitList("203.0.113.0/24\n 2001:db8::/32 ,, 10.0.0.1;\r\n"), [
    "203.0.113.0/24",
    "2001:db8::/32",
    "10.0.0.1",
  ]);
  assert.deepEqual(splitList("de, fr"), ["de", "fr"]);
  assert.deepEqual(splitList(""), []);
  assert.deepEqual(splitList(" \n, "), []);
  assert.deepEqual(splitList(undefined), []);
});

test("recipients split on lines and commas only, trimmed, kept as typed", () => {
  assert.deepEqual(splitRecipients("Alice@Example.com\r\n group:ops team ,, domain:example.com\n"), [
    "Alice@Example.com",
    "group:ops team",
    "domain:example.com",
  ]);
  assert.deepEqual(splitRecipients("not an entry"), ["not an entry"]);
  assert.deepEqual(splitRecipients(" \n, "), []);
  assert.deepEqual(splitRecipients(undefined), []);
});

test("country codes need two letters; they are upper-cased once each", () => {
  assert.deepEqual(badCountries(["DE", "fr", "Germany", "D", "D1", "ÄÖ"]), [
    "Germany",
    "D",
    "D1",
    "ÄÖ",
  ]);
  assert.deepEqual(badCountries([]), []);
  assert.deepEqual(normaliseCountries(["de", "FR", "De"]), ["DE", "FR"]);
});

test("networks: IPv4 and IPv6 addresses and CIDRs, as Python's ip_network takes them", () => {
  const good = [
    "203.0.113.7",
    "203.0.113.0/24",
    "0.0.0.0/0",
    "10.0.0.0/255.0.0.0",
    "2001:db8::/32",
    "2001:db8::1",
    "::1",
    "::",
    "::/0",
    "::ffff:192.0.2.1",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:192.0.2.1/128",
    "FE80::1",
  ];
  const bad = [
    "not-an-ip",
    "10.0.0.300",
    "10.0.0.0/33",
    "1.2.3.4/8/9",
    "1.2.3",
    "2001:db8::/129",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    "12345::",
    "example.com",
    "10.0.0.0/",
    "",
  ];
  for (const entry of good) assert.equal(looksLikeNetwork(entry), true, entry);
  for (const entry of bad) assert.equal(looksLikeNetwork(entry), false, entry);
  assert.deepEqual(badNetworks(["203.0.113.0/24", "x", "::1"]), ["x"]);
  assert.equal(MAX_NETWORKS, 50);
});

test("addresses: one @ and a dotted domain", () => {
  for (const address of ["bob@example.com", "Bob.Smith+tag@mail.example.co.uk"]) {
    assert.equal(looksLikeEmail(address), true, address);
  }
  for (const address of ["bob", "bob@", "@example.com", "bob@example", "a b@example.com"]) {
    assert.equal(looksLikeEmail(address), false, address);
  }
  assert.equal(looksLikeEmail(`${"a".repeat(65)}@example.com`), false);
});

test("codes: six digits, spaces and dashes as people paste them", () => {
  assert.equal(normaliseOtp("123456"), "123456");
  assert.equal(normaliseOtp(" 123 456 "), "123456");
  assert.equal(normaliseOtp("123-456"), "123456");
  assert.equal(normaliseOtp("12345"), null);
  assert.equal(normaliseOtp("1234567"), null);
  assert.equal(normaliseOtp("12a456"), null);
  assert.equal(normaliseOtp("١٢٣٤٥٦"), null); // only ASCII digits reach the server
  assert.equal(normaliseOtp(""), null);
});

test("a new code can be asked for a minute after the last one", () => {
  const sent = 1_000_000;
  assert.equal(resendWait(null, sent), 0);
  assert.equal(resendWait(sent, sent), CODE_RESEND_MS / 1000);
  assert.equal(resendWait(sent, sent + 59_001), 1);
  assert.equal(resendWait(sent, sent + CODE_RESEND_MS), 0);
  assert.equal(resendWait(sent, sent + 10 * CODE_RESEND_MS), 0);
});
