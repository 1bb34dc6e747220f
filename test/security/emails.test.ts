import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestServer, type TestServer } from "../support/server";

/** Checklist: one canonical form of an email for uniqueness and lookup; anything but one plain address refused. */
const PASSWORD = "plum-kettle-orbit-93";
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer();
});
afterAll(async () => {
  await server.close();
});

const tag = () => crypto.randomUUID().slice(0, 8);

describe("canonical form", () => {
  test('register " Ada@Example.COM " then login "ada@example.com": one account, stored lower-case and trimmed', async () => {
    const local = `Ada-${tag()}`;
    const reg = await server.request("POST", "/auth/register", { body: { email: ` ${local}@Example.COM `, password: PASSWORD } });
    expect(reg.status).toBe(201);
    expect(reg.body.user.email).toBe(`${local.toLowerCase()}@example.com`);
    const login = await server.request("POST", "/auth/login", { body: { email: `${local.toLowerCase()}@example.com`, password: PASSWORD } });
    expect(login.status).toBe(200);
    expect(login.body.user.id).toBe(reg.body.user.id);
  });

  test("the NFC and NFD forms of an accented address are one account, stored in NFC", async () => {
    const nfc = `Jos\u00e9-${tag()}@Caf\u00e9.example`.normalize("NFC");
    const nfd = nfc.normalize("NFD");
    expect(nfd).not.toBe(nfc);
    const reg = await server.request("POST", "/auth/register", { body: { email: nfd, password: PASSWORD } });
    expect(reg.status).toBe(201);
    expect(reg.body.user.email).toBe(nfc.toLowerCase());
    const login = await server.request("POST", "/auth/login", { body: { email: nfc.toUpperCase(), password: PASSWORD } });
    expect(login.status).toBe(200);
    expect(login.body.user.id).toBe(reg.body.user.id);
    const again = await server.request("POST", "/auth/register", { body: { email: nfc, password: PASSWORD } });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe("EMAIL_TAKEN");
  });

  test("an internationalised domain is one address in Unicode and in punycode; other scripts work whole", async () => {
    const local = `ada-${tag()}`;
    const reg = await server.request("POST", "/auth/register", { body: { email: `${local}@xn--bcher-kva.example`, password: PASSWORD } });
    expect(reg.status).toBe(201);
    expect(reg.body.user.email).toBe(`${local}@b\u00fccher.example`);
    const login = await server.request("POST", "/auth/login", { body: { email: `${local}@B\u00dcCHER.example`, password: PASSWORD } });
    expect(login.body.user.id).toBe(reg.body.user.id);
    // Digits only beside the Cyrillic letters: the hex of tag() is Latin, and mixing the two is refused.
    const cyrillic = `\u0430\u0434\u0430-${String(Math.random()).slice(2, 10)}@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444`;
    expect((await server.request("POST", "/auth/register", { body: { email: cyrillic, password: PASSWORD } })).status).toBe(201);
  });

  test("look-alikes that mix Latin with Cyrillic or Greek, and invisible characters, are refused", async () => {
    const refused = [
      `j\u043es\u0435-${tag()}@example.com`, // Cyrillic о and е among Latin letters
      `\u03b1da-${tag()}@example.com`, // Greek α
      `ada-${tag()}@ex\u0430mple.com`, // Cyrillic а in the domain
      `ada\u200b-${tag()}@example.com`, // zero-width space
      `ada-${tag()}@exa\u200dmple.com`, // zero-width joiner in the domain
      `ada\u202e-${tag()}@example.com`, // right-to-left override
      `ada-${tag()}@xn--bcher-.example`, // a broken A-label
    ];
    for (const email of refused) {
      const res = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("VALIDATION_ERROR");
    }
  });

  test("a differently-cased email is taken: uniqueness uses the canonical form", async () => {
    const local = `case-${tag()}`;
    expect((await server.request("POST", "/auth/register", { body: { email: `${local}@example.com`, password: PASSWORD } })).status).toBe(201);
    const again = await server.request("POST", "/auth/register", { body: { email: `  ${local.toUpperCase()}@EXAMPLE.com`, password: PASSWORD } });
    expect(again.status).toBe(409);
  });
});

const HOSTILE = [
  "a@x.com,b@y.com",
  "a@x.com;b@y.com",
  "a@x.com b@y.com",
  "<a@x.com>, b@y.com",
  '"a b"@x.com',
  '"victim@y.com"@x.com',
  "a@x.com\r\nBcc: b@y.com",
  "a@x.com\nb@y.com",
  "a\r@x.com",
  "a＠x.com",
  "a﹫x.com",
  "a@x.com\u0000",
  "a@x\u2024com",
  "a@x．com",
  "a@@x.com",
  "a@x.com@y.com",
];

describe("refused addresses, so a mail only ever goes to the one stored address", () => {
  for (const email of HOSTILE) {
    test(`${JSON.stringify(email)} is refused by register, code request, forgot-password and resend, and no mail leaves`, async () => {
      server.mailer.clear();
      const calls = [
        server.request("POST", "/auth/register", { body: { email, password: PASSWORD } }),
        server.request("POST", "/auth/code/request", { body: { email } }),
        server.request("POST", "/auth/password/forgot", { body: { email } }),
        server.request("POST", "/auth/email/verify/resend", { body: { email } }),
        server.request("POST", "/auth/login", { body: { email, password: PASSWORD } }),
      ];
      for (const res of await Promise.all(calls)) {
        expect(res.status).toBe(400);
        expect(res.body.code).toBe("VALIDATION_ERROR");
      }
      await Bun.sleep(0);
      expect(server.mailer.outbox).toEqual([]);
    });
  }

  test("every mail sent goes to exactly the stored canonical address", async () => {
    server.mailer.clear();
    const local = `Mix-${tag()}`;
    const canonical = `${local.toLowerCase()}@example.com`;
    await server.request("POST", "/auth/register", { body: { email: ` ${local}@EXAMPLE.com`, password: PASSWORD } });
    await server.request("POST", "/auth/password/forgot", { body: { email: `${local.toUpperCase()}@example.com ` } });
    await server.request("POST", "/auth/code/request", { body: { email: `\t${local}@Example.com` } });
    await server.mailTo(canonical, /token=/);
    expect(server.mailer.outbox.length).toBe(2);
    for (const mail of server.mailer.outbox) expect(mail.to).toBe(canonical);
  });
});
