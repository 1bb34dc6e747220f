import { timingSafeEqual } from "node:crypto";

/**
 * A refresh token names its session and its place in the session's chain, and carries a secret:
 *
 *   <session id: 22 chars><secret: 43 chars><tag: 22 chars><generation: base36>
 *
 * - The secret is 256 fresh random bits at every rotation; only its sha256 is stored (`sessions.refresh_hash`).
 * - The tag is a MAC, under a server secret, of the other three parts. A token the server never issued is refused
 *   before any lookup (and before it can count against a session's rate limit), and a token of an old generation
 *   can still be recognised as this session's own, so its reuse is caught as theft with no row kept per token.
 *
 * A session's live token is its generation `refresh_gen`; rotating it is one update of the session's row (batched with
 * the other rotations in flight, src/sessions/refresh.ts).
 */
export type RefreshToken = { sessionId: string; gen: number; secret: string };

const ID_LEN = 22;
const SECRET_LEN = 43;
const TAG_LEN = 22;
const HEAD_LEN = ID_LEN + SECRET_LEN + TAG_LEN;
const B64URL = /^[A-Za-z0-9_-]+$/;
const GEN = /^[0-9a-z]{1,6}$/;
/** The largest generation a Postgres integer holds. */
const MAX_GEN = 2_147_483_647;

function tag(key: Buffer, sessionId: string, gen: number, secret: string): Buffer {
  // Bun's hasher: HMAC-SHA256 as node:crypto computes it, at half its cost (it runs twice per refresh).
  return new Bun.CryptoHasher("sha256", key).update(`${sessionId}\0${gen}\0${secret}`).digest().subarray(0, 16);
}

function idToBase64(sessionId: string): string {
  return Buffer.from(sessionId.replaceAll("-", ""), "hex").toString("base64url");
}

function idFromBase64(encoded: string): string {
  const hex = Buffer.from(encoded, "base64url").toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function formatRefreshToken(key: Buffer, token: RefreshToken): string {
  const id = idToBase64(token.sessionId);
  return `${id}${token.secret}${tag(key, token.sessionId, token.gen, token.secret).toString("base64url")}${token.gen.toString(36)}`;
}

/** The parts of a token this server issued; undefined for anything else (malformed, forged, another server's). */
export function parseRefreshToken(key: Buffer, value: string): RefreshToken | undefined {
  if (value.length <= HEAD_LEN || value.length > HEAD_LEN + 6) return undefined;
  const head = value.slice(0, HEAD_LEN);
  const genText = value.slice(HEAD_LEN);
  if (!B64URL.test(head) || !GEN.test(genText)) return undefined;
  const gen = Number.parseInt(genText, 36);
  if (gen > MAX_GEN || gen.toString(36) !== genText) return undefined;
  const sessionId = idFromBase64(value.slice(0, ID_LEN));
  const secret = value.slice(ID_LEN, ID_LEN + SECRET_LEN);
  const tagText = value.slice(ID_LEN + SECRET_LEN, HEAD_LEN);
  const presented = Buffer.from(tagText, "base64url");
  if (presented.length !== 16 || !timingSafeEqual(presented, tag(key, sessionId, gen, secret))) return undefined;
  // One spelling per token: base64url's last character has spare bits that decode alike.
  if (idToBase64(sessionId) !== value.slice(0, ID_LEN) || presented.toString("base64url") !== tagText) return undefined;
  return { sessionId, gen, secret };
}
