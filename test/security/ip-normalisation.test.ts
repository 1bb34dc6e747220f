import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ipKey } from "../../src/ip";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";

/**
 * Checklist: per-IP limits count clients, not spellings of addresses. Every address of one IPv6 /64 is one client
 * (a subscriber holds a whole /64 and can pick any of its 2^64 addresses), and an IPv4 address written as IPv4-mapped
 * IPv6 (`::ffff:192.0.2.1`) is that IPv4 address. One function, `ipKey`, keys every per-IP limit.
 */
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({
    TRUST_PROXY: true,
    RATE_LIMIT_LOGIN_IP: "3/60",
    RATE_LIMIT_EMAIL_CHECK_IP: "3/60",
    RATE_LIMIT_ANONYMOUS_IP: "3/60",
    RATE_LIMIT_SIGNUP_IP: "3/600",
  });
});
afterAll(async () => {
  await server.close();
});

const login = (ip: string) =>
  server.request("POST", "/auth/login", { body: { email: uniqueEmail("ip"), password: "not-a-password-1" }, headers: { "x-forwarded-for": ip } });
let subnet = 0;
/** A /64 no other test uses. */
const freshPrefix = () => `2001:db8:${(++subnet).toString(16)}:${Math.floor(Math.random() * 0xffff).toString(16)}`;

describe("per-IP limits", () => {
  test("login: four addresses of one IPv6 /64 are one client; the fourth attempt is 429", async () => {
    const prefix = freshPrefix();
    const statuses = [];
    for (const host of ["::1", "::2", ":ffff:0:0:3", ":1234:5678:9abc:def0"]) statuses.push((await login(`${prefix}${host}`)).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
    // Another /64 is another client.
    expect((await login(`${freshPrefix()}::1`)).status).toBe(401);
  });

  test("login: the IPv4-mapped spelling counts as the IPv4 address, in either notation, with or without brackets", async () => {
    const statuses = [];
    for (const ip of ["192.0.2.77", "::ffff:192.0.2.77", "::FFFF:C000:024D", "[::ffff:192.0.2.77]:443"]) statuses.push((await login(ip)).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
  });

  test("email check, guest sign-up and the other per-IP limits key the same way", async () => {
    const prefix = freshPrefix();
    const check = (host: string) =>
      server.request("POST", "/auth/email/check", { body: { email: uniqueEmail("c") }, headers: { "x-forwarded-for": `${prefix}${host}` } });
    expect([(await check("::a")).status, (await check("::b")).status, (await check("::c")).status, (await check("::d")).status]).toEqual([
      200, 200, 200, 429,
    ]);
    const guest = (ip: string) => server.request("POST", "/auth/anonymous", { headers: { "x-forwarded-for": ip } });
    const statuses = [];
    for (const ip of ["198.51.100.201", "::ffff:198.51.100.201", "::ffff:c633:64c9", "198.51.100.201"]) statuses.push((await guest(ip)).status);
    expect(statuses).toEqual([201, 201, 201, 429]);
  });
});

describe("ipKey", () => {
  test("IPv4 as itself, IPv4-mapped as IPv4, IPv6 by its /64; brackets, ports and zones dropped", () => {
    expect(ipKey("192.0.2.1")).toBe("192.0.2.1");
    expect(ipKey("::ffff:192.0.2.1")).toBe("192.0.2.1");
    expect(ipKey("::ffff:c000:201")).toBe("192.0.2.1");
    expect(ipKey("[::ffff:192.0.2.1]:8443")).toBe("192.0.2.1");
    expect(ipKey("192.0.2.1:8080")).toBe("192.0.2.1");
    expect(ipKey("2001:db8:1:2:3:4:5:6")).toBe(ipKey("2001:0DB8:0001:0002::9"));
    expect(ipKey("2001:db8:1:2::1")).not.toBe(ipKey("2001:db8:1:3::1"));
    expect(ipKey("fe80::1%eth0")).toBe(ipKey("fe80::2"));
    expect(ipKey("unknown")).toBe("unknown");
  });
});
