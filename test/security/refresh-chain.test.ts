import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { decodeJwt } from "jose";
import { sha256 } from "../../src/crypto";
import { sessions } from "../../src/db/schema";
import type { AuthHooks } from "../../src/hooks";
import { createTestServer, type TestServer } from "../support/server";
import { createSignedInUser, movableClock } from "../support/users";

/**
 * Checklist: the refresh token chain kept in the session row. A token is <session id 22><secret 43><tag 22><generation>;
 * only the live generation rotates, an older one of the session's own is theft, and anything the server did not issue
 * is refused before it touches the session (or its rate limit).
 */
const clock = movableClock();
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({ AUTH_PLUGINS: "teams", RATE_LIMIT_REFRESH_SESSION: "5/60" }, { clock });
});
afterAll(async () => {
  await server.close();
});

const refresh = (refreshToken: string) => server.request("POST", "/auth/refresh", { body: { refreshToken } });
const sessionRow = async (sid: string) => (await server.ctx.db.select().from(sessions).where(eq(sessions.id, sid)))[0]!;
const sidOf = (accessToken: string) => decodeJwt(accessToken).sid as string;
/** The token with one character at `index` replaced by another of the alphabet. */
const flip = (token: string, index: number) => token.slice(0, index) + (token[index] === "A" ? "B" : "A") + token.slice(index + 1);

describe("refresh token chain", () => {
  test("the row keeps only the sha256 of the live secret; the token itself is nowhere in it", async () => {
    const { tokens } = await createSignedInUser(server);
    const row = await sessionRow(sidOf(tokens.accessToken));
    expect(row.refreshGen).toBe(0);
    expect(row.refreshHash).toBe(sha256(tokens.refreshToken.slice(22, 65)));
    expect(JSON.stringify(row)).not.toContain(tokens.refreshToken.slice(22, 65));
    const next = await refresh(tokens.refreshToken);
    expect(next.status).toBe(200);
    const rotated = await sessionRow(sidOf(tokens.accessToken));
    expect(rotated.refreshGen).toBe(1);
    expect(rotated.refreshHash).toBe(sha256(next.body.refreshToken.slice(22, 65)));
    // The successor is kept sealed for the grace window, never in the clear.
    expect(rotated.refreshSealedNext).toBeString();
    expect(JSON.stringify(rotated)).not.toContain(next.body.refreshToken.slice(22, 65));
  });

  test("a token two generations old is still recognised as the session's own: theft, the session dies", async () => {
    const { user, tokens } = await createSignedInUser(server);
    const second = await refresh(tokens.refreshToken);
    clock.advance(1);
    const third = await refresh(second.body.refreshToken);
    expect(third.status).toBe(200);
    const reuse = await refresh(tokens.refreshToken);
    expect(reuse.status).toBe(401);
    expect(reuse.body.code).toBe("REFRESH_TOKEN_REUSED");
    expect((await refresh(third.body.refreshToken)).status).toBe(401);
    expect((await server.request("GET", "/auth/me", { token: third.body.accessToken })).status).toBe(401);
    const events = await server.ctx.audit.listForUser(user.id, { limit: 10 });
    expect(events.map((e) => e.type)).toContain("refresh_reuse");
  });

  test("refreshes in flight together rotate as one batch, and each keeps its own outcome", async () => {
    // 24 sessions refreshed at once, among them a theft (a token two generations old), a replay within the grace
    // window, and one token presented twice in the same batch.
    const fresh = await Promise.all(Array.from({ length: 24 }, () => createSignedInUser(server)));
    const stolen = await createSignedInUser(server);
    const stolenNext = await refresh(stolen.tokens.refreshToken);
    clock.advance(1);
    const stolenLive = await refresh(stolenNext.body.refreshToken);
    const replayed = await createSignedInUser(server);
    const replayedNext = await refresh(replayed.tokens.refreshToken);
    // The odd ones first and in the middle, so that an answer matched to the wrong presentation shows.
    const twice = fresh[0]!.tokens.refreshToken;
    const presented = [
      stolen.tokens.refreshToken,
      ...fresh.slice(0, 12).map((f) => f.tokens.refreshToken),
      replayed.tokens.refreshToken,
      twice,
      ...fresh.slice(12).map((f) => f.tokens.refreshToken),
    ];
    const answers = await Promise.all(presented.map((token) => refresh(token)));
    const [theft, replay, again] = [answers[0]!, answers[13]!, answers[14]!];
    const ok = [...answers.slice(1, 13), ...answers.slice(15)];

    expect(ok.map((a) => a.status)).toEqual(Array(24).fill(200));
    // Each session its own successor, bound to its own session and user.
    expect(new Set(ok.map((a) => a.body.refreshToken)).size).toBe(24);
    for (const [i, answer] of ok.entries()) {
      expect(sidOf(answer.body.accessToken)).toBe(sidOf(fresh[i]!.tokens.accessToken));
      expect(decodeJwt(answer.body.accessToken).sub).toBe(fresh[i]!.user.id);
      expect((await sessionRow(sidOf(answer.body.accessToken))).refreshGen).toBe(1);
    }
    // The same token twice in one batch: one rotation, both get its successor.
    expect(again.status).toBe(200);
    expect(again.body.refreshToken).toBe(ok[0]!.body.refreshToken);
    // The theft ends its own session, and only it.
    expect(theft.status).toBe(401);
    expect(theft.body.code).toBe("REFRESH_TOKEN_REUSED");
    expect((await refresh(stolenLive.body.refreshToken)).status).toBe(401);
    // The replay within the grace window gets the successor already issued, not a new one.
    expect(replay.status).toBe(200);
    expect(replay.body.refreshToken).toBe(replayedNext.body.refreshToken);

    // Every successor works next, and rotates once more.
    const next = await Promise.all(ok.map((a) => refresh(a.body.refreshToken)));
    expect(next.map((a) => a.status)).toEqual(Array(24).fill(200));
    for (const answer of next) expect((await sessionRow(sidOf(answer.body.accessToken))).refreshGen).toBe(2);
  });

  test("a tampered token is refused and harms nothing: not the session, not its rate limit", async () => {
    const { tokens } = await createSignedInUser(server);
    const token = tokens.refreshToken;
    const tampered = [
      flip(token, 3), // session id
      flip(token, 30), // secret
      flip(token, 70), // tag
      `${token.slice(0, -1)}${token.endsWith("0") ? "1" : "0"}`, // generation
      `${token}0`,
      token.slice(0, -1),
      token.replace(/.$/, "Z"),
    ];
    // More forgeries than the session's limit of 5 a minute: none of them counts against it.
    for (const forged of tampered) {
      const res = await refresh(forged);
      expect(res.status).toBe(401);
      expect(res.body.code).toBe("INVALID_REFRESH_TOKEN");
    }
    const row = await sessionRow(sidOf(tokens.accessToken));
    expect(row.revokedAt).toBeNull();
    expect(row.refreshGen).toBe(0);
    expect((await refresh(token)).status).toBe(200);
  });

  test("another session's id under this session's secret and tag is refused", async () => {
    const a = await createSignedInUser(server);
    const b = await createSignedInUser(server);
    const spliced = b.tokens.refreshToken.slice(0, 22) + a.tokens.refreshToken.slice(22);
    expect((await refresh(spliced)).status).toBe(401);
    expect((await refresh(a.tokens.refreshToken)).status).toBe(200);
    expect((await refresh(b.tokens.refreshToken)).status).toBe(200);
  });

  test("after a reissue (team switch) the replaced token gets no replay, and is theft after the grace window", async () => {
    const { tokens } = await createSignedInUser(server);
    const team = await server.request("POST", "/auth/teams", { token: tokens.accessToken, body: { name: "Chain" } });
    expect(team.status).toBe(201);
    const switched = await server.request("POST", "/auth/teams/switch", { token: tokens.accessToken, body: { teamId: team.body.id } });
    expect(switched.status).toBe(200);
    const early = await refresh(tokens.refreshToken);
    expect(early.status).toBe(401);
    expect(early.body.code).toBe("INVALID_REFRESH_TOKEN");
    expect((await server.request("GET", "/auth/me", { token: switched.body.accessToken })).status).toBe(200);
    clock.advance(11);
    const late = await refresh(tokens.refreshToken);
    expect(late.body.code).toBe("REFRESH_TOKEN_REUSED");
    expect((await refresh(switched.body.refreshToken)).status).toBe(401);
  });

  test("an expired refresh token is refused, and the session is not ended by it", async () => {
    const local = movableClock();
    const s = await createTestServer({ AUTH_PLUGINS: "", REFRESH_TOKEN_TTL_S: 600, SESSION_IDLE_TIMEOUT_S: 3600 }, { clock: local });
    try {
      const { tokens } = await createSignedInUser(s);
      local.advance(601);
      const res = await s.request("POST", "/auth/refresh", { body: { refreshToken: tokens.refreshToken } });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe("INVALID_REFRESH_TOKEN");
      const [row] = await s.ctx.db.select().from(sessions).where(eq(sessions.id, sidOf(tokens.accessToken)));
      expect(row!.revokedAt).toBeNull();
    } finally {
      await s.close();
    }
  });
});

describe("RATE_LIMIT_REFRESH_SESSION, counted on the session's row", () => {
  test("rotations and replays each count; once over, 429 with Retry-After and nothing rotates; a new window after it", async () => {
    const local = movableClock();
    const s = await createTestServer({ AUTH_PLUGINS: "", RATE_LIMIT_REFRESH_SESSION: "4/60" }, { clock: local });
    const again = (refreshToken: string) => s.request("POST", "/auth/refresh", { body: { refreshToken } });
    try {
      const { tokens } = await createSignedInUser(s);
      const sid = sidOf(tokens.accessToken);
      const first = await again(tokens.refreshToken);
      // A replay within the grace window: answered, and counted.
      const replay = await again(tokens.refreshToken);
      expect([first.status, replay.status]).toEqual([200, 200]);
      expect(replay.body.refreshToken).toBe(first.body.refreshToken);
      const second = await again(first.body.refreshToken);
      const third = await again(second.body.refreshToken);
      expect([second.status, third.status]).toEqual([200, 200]);
      local.advance(30);
      const limited = await again(third.body.refreshToken);
      expect(limited.status).toBe(429);
      expect(limited.body.code).toBe("RATE_LIMITED");
      expect(Number(limited.headers.get("retry-after"))).toBeWithin(29, 32);
      // Past the limit, presentations are refused with a read: the row is no longer written, however many come.
      for (const token of [third.body.refreshToken, tokens.refreshToken, first.body.refreshToken]) expect((await again(token)).status).toBe(429);
      const [row] = await s.ctx.db.select().from(sessions).where(eq(sessions.id, sid));
      expect([row!.refreshGen, row!.refreshWindowHits, row!.revokedAt]).toEqual([3, 4, null]);
      // The refused token was not spent: once the window is over, it rotates, and a new window counts it.
      local.advance(31);
      const later = await again(third.body.refreshToken);
      expect(later.status).toBe(200);
      const [after] = await s.ctx.db.select().from(sessions).where(eq(sessions.id, sid));
      expect([after!.refreshGen, after!.refreshWindowHits]).toEqual([4, 1]);
    } finally {
      await s.close();
    }
  });

  test("with a claims hook, a presentation over the limit gets 429 and the hook is not asked", async () => {
    let asked = 0;
    const hooks: AuthHooks = {
      async accessTokenClaims() {
        asked++;
        return { plan: "pro" };
      },
    };
    const s = await createTestServer({ AUTH_PLUGINS: "", RATE_LIMIT_REFRESH_SESSION: "1/60" }, { hooks });
    try {
      const { tokens } = await createSignedInUser(s);
      const before = asked;
      const first = await s.request("POST", "/auth/refresh", { body: { refreshToken: tokens.refreshToken } });
      expect(first.status).toBe(200);
      expect(decodeJwt(first.body.accessToken).plan).toBe("pro");
      expect(asked).toBe(before + 1);
      const limited = await s.request("POST", "/auth/refresh", { body: { refreshToken: first.body.refreshToken } });
      expect(limited.status).toBe(429);
      expect(asked).toBe(before + 1);
    } finally {
      await s.close();
    }
  });
});
