import { type CryptoKey, type JWTPayload, jwtVerify, SignJWT, decodeProtectedHeader } from "jose";
import type { Config } from "../config";
import type { Db } from "../db";
import { AuthError } from "../errors";
import { loadSigningKeys, type SigningKey } from "./keys";

export type TeamClaim = { id: string; role: string };
export type AccessClaims = {
  sub: string;
  sid: string;
  roles: string[];
  amr: string[];
  team?: TeamClaim;
  iat: number;
  exp: number;
};

const ACCESS_TYP = "at+jwt";
const FORBIDDEN_HEADERS = ["jku", "jwk", "x5u", "x5c", "crit"];

const invalidToken = () => new AuthError(401, "INVALID_TOKEN", "The access token is invalid or has expired");

/** Signs and verifies access tokens; `alg` is pinned to the configured one and `typ` to access tokens. */
export class AccessTokens {
  private keys: SigningKey[] = [];
  private secret?: Uint8Array;
  private lastReload = 0;

  constructor(
    private readonly config: Config,
    private readonly db: Db,
    private readonly now: () => Date,
  ) {}

  async init() {
    if (this.config.JWT_ALG === "HS256") this.secret = new TextEncoder().encode(this.config.JWT_SECRET);
    else this.keys = await loadSigningKeys(this.db);
  }

  jwks() {
    return { keys: this.keys.map((k) => k.publicJwk) };
  }

  async sign(claims: Omit<AccessClaims, "iat" | "exp">): Promise<string> {
    const iat = Math.floor(this.now().getTime() / 1000);
    const payload: JWTPayload = { sid: claims.sid, roles: claims.roles, amr: claims.amr };
    if (claims.team) payload.team = claims.team;
    const jwt = new SignJWT(payload)
      .setSubject(claims.sub)
      .setIssuer(this.config.issuer)
      .setAudience(this.config.audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.config.ACCESS_TOKEN_TTL_S);
    if (this.secret) return jwt.setProtectedHeader({ alg: "HS256", typ: ACCESS_TYP }).sign(this.secret);
    const key = this.keys[0];
    if (!key) throw new Error("no signing key");
    return jwt.setProtectedHeader({ alg: "EdDSA", kid: key.kid, typ: ACCESS_TYP }).sign(key.privateKey);
  }

  private async keyFor(kid: unknown): Promise<CryptoKey | undefined> {
    if (typeof kid !== "string") return undefined;
    let key = this.keys.find((k) => k.kid === kid);
    // A key published by another instance after we started: reload, at most every 10 s.
    if (!key && Date.now() - this.lastReload > 10_000) {
      this.lastReload = Date.now();
      this.keys = await loadSigningKeys(this.db);
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
        currentDate: this.now(),
        requiredClaims: ["sub", "exp", "iat"],
      });
      if (typeof payload.sid !== "string" || !Array.isArray(payload.roles) || !Array.isArray(payload.amr)) throw invalidToken();
      return payload as unknown as AccessClaims;
    } catch {
      throw invalidToken();
    }
  }
}

