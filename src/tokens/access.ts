import { createHmac, sign as signBytes } from "node:crypto";
import { type CryptoKey, decodeProtectedHeader, jwtVerify } from "jose";
import type { Config } from "../config";
import type { Db } from "../db";
import { coreError } from "../errors";
import { ensureSigningKey } from "./keys";
import { KEY_RELOAD_MS, loadKeyRing, type RingKey, signingKeyAt } from "./rotation";
import type { Clock } from "../clock";

export type TeamClaim = { id: string; role: string };
/** The admin acting as the user (RFC 8693 `act`), on impersonation tokens only. */
export type ActorClaim = { sub: string };
export type AccessClaims = {
  sub: string;
  sid: string;
  roles: string[];
  amr: string[];
  team?: TeamClaim;
  /** When the session last proved a factor (OIDC `auth_time`, seconds); step-up routes need it recent. */
  auth_time: number;
  /** The admin acting as `sub`, on impersonation tokens only. */
  act?: ActorClaim;
  iat: number;
  exp: number;
};

const ACCESS_TYP = "at+jwt";
const FORBIDDEN_HEADERS = ["jku", "jwk", "x5u", "x5c", "crit"];

/** Signs the `header.payload` input of a JWS; built once per signing key. */
type Signer = { kid?: string; header: string; sign(input: string): Buffer };

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

const invalidToken = () => coreError("INVALID_TOKEN");

/** Signs and verifies access tokens; `alg` is pinned to the configured one and `typ` to access tokens. */
export class AccessTokens {
  private keys: RingKey[] = [];
  private secret?: Uint8Array;
  private signer?: Signer;
  private lastReload = 0;

  constructor(
    private readonly config: Config,
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async init() {
    if (this.config.JWT_ALG === "HS256") this.secret = new TextEncoder().encode(this.config.JWT_SECRET);
    else {
      await ensureSigningKey(this.db);
      await this.reloadKeys();
    }
  }

  /** The ring (src/tokens/rotation.ts): the keys that sign or still verify, rotated in and out by `keys rotate`. */
  private async reloadKeys(): Promise<void> {
    const now = this.clock.now();
    this.lastReload = now.getTime();
    this.keys = await loadKeyRing(this.db, this.config, now);
  }

  jwks() {
    return { keys: this.keys.map((k) => k.publicJwk) };
  }

  /**
   * Signs an access token. jose verifies them (where the pitfalls are), but signing is done here with node:crypto's
   * synchronous Ed25519 and HMAC: a third of the cost of WebCrypto's, and it runs on every sign-in and refresh.
   * `issuedAt` (default: now) lets a token be issued again byte for byte: EdDSA and HS256 signatures are deterministic.
   * `lifetimeS` (default ACCESS_TOKEN_TTL_S) is for impersonation tokens, which live by their own setting.
   */
  async sign(
    claims: Omit<AccessClaims, "iat" | "exp">,
    issuedAt: Date = this.clock.now(),
    lifetimeS = this.config.ACCESS_TOKEN_TTL_S,
    extra?: Record<string, unknown>,
  ): Promise<string> {
    const iat = Math.floor(issuedAt.getTime() / 1000);
    // Extra claims (the library's accessTokenClaims hook) never carry a reserved name: src/hooks.ts refuses those.
    const payload: Record<string, unknown> = { ...extra, sid: claims.sid, roles: claims.roles, amr: claims.amr };
    if (claims.team) payload.team = claims.team;
    payload.auth_time = claims.auth_time;
    if (claims.act) payload.act = { sub: claims.act.sub };
    payload.sub = claims.sub;
    payload.iss = this.config.issuer;
    payload.aud = this.config.audience;
    payload.iat = iat;
    payload.exp = iat + lifetimeS;
    const signer = this.currentSigner();
    const input = `${signer.header}.${base64url(payload)}`;
    return `${input}.${signer.sign(input).toString("base64url")}`;
  }

  private currentSigner(): Signer {
    if (this.secret) {
      const secret = this.secret;
      this.signer ??= { header: base64url({ alg: "HS256", typ: ACCESS_TYP }), sign: (input) => createHmac("sha256", secret).update(input).digest() };
      return this.signer;
    }
    const now = this.clock.now();
    // Every instance learns of a rotated key within KEY_RELOAD_MS, well before it starts signing.
    if (now.getTime() - this.lastReload > KEY_RELOAD_MS) this.reloadKeys().catch(() => {});
    const key = signingKeyAt(this.keys, now);
    if (!key) throw new Error("no signing key");
    if (this.signer?.kid !== key.kid) {
      const { signingKey } = key;
      this.signer = { kid: key.kid, header: base64url({ alg: "EdDSA", kid: key.kid, typ: ACCESS_TYP }), sign: (input) => signBytes(null, Buffer.from(input), signingKey) };
    }
    return this.signer;
  }

  private async keyFor(kid: unknown): Promise<CryptoKey | undefined> {
    if (typeof kid !== "string") return undefined;
    let key = this.keys.find((k) => k.kid === kid);
    // A key published by another instance after we started: reload, at most every 10 s.
    if (!key && this.clock.now().getTime() - this.lastReload > 10_000) {
      await this.reloadKeys();
      key = this.keys.find((k) => k.kid === kid);
    }
    return key?.publicKey;
  }

  async verify(token: string): Promise<AccessClaims> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw invalidToken();
    }
    if (header.alg !== this.config.JWT_ALG || header.typ !== ACCESS_TYP) throw invalidToken();
    if (FORBIDDEN_HEADERS.some((h) => h in header)) throw invalidToken();
    const key = this.secret ?? (await this.keyFor(header.kid));
    if (!key) throw invalidToken();
    try {
      const { payload } = await jwtVerify(token, key, {
        algorithms: [this.config.JWT_ALG],
        issuer: this.config.issuer,
        audience: this.config.audience,
        typ: ACCESS_TYP,
        currentDate: this.clock.now(),
        requiredClaims: ["sub", "exp", "iat"],
      });
      if (typeof payload.sid !== "string" || !Array.isArray(payload.roles) || !Array.isArray(payload.amr)) throw invalidToken();
      if (payload.act !== undefined && typeof (payload.act as { sub?: unknown } | null)?.sub !== "string") throw invalidToken();
      // A token from before auth_time existed proves no recent factor: it counts as proven at the epoch.
      if (typeof payload.auth_time !== "number") payload.auth_time = 0;
      return payload as unknown as AccessClaims;
    } catch {
      throw invalidToken();
    }
  }
}

