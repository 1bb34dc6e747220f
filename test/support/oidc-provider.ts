import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose";
import Provider from "oidc-provider";

/** A person known to the test identity provider. */
export type IdpAccount = {
  sub: string;
  email?: string;
  email_verified?: boolean;
  given_name?: string;
  family_name?: string;
  name?: string;
};

export type TestIdp = {
  issuer: string;
  clientId: string;
  clientSecret: string;
  addAccount(account: IdpAccount): IdpAccount;
  /**
   * Drives a browser through the provider: GET the authorization URL, log in as `sub` and consent over the
   * provider's interaction pages, following redirects with a cookie jar until the provider sends the browser
   * to `redirectPrefix` (our callback); returns that URL, carrying `code` and `state`.
   */
  authorize(authorizationUrl: string, sub: string, redirectPrefix: string): Promise<URL>;
  /** Signs an ID token with the provider's own key, for tests of what our verifier accepts. */
  signIdToken(claims: JWTPayload, opts?: { key?: "provider" | "foreign"; expiresAt?: number }): Promise<string>;
  close(): Promise<void>;
};

function readBody(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    let data = "";
    req.on("data", (chunk: Buffer) => {
      data += chunk.toString("utf8");
    });
    req.on("end", () => resolve(new URLSearchParams(data)));
    req.on("error", reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** A cookie jar just good enough for one host: name -> value, expired cookies dropped. */
class CookieJar {
  private readonly cookies = new Map<string, string>();

  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";");
      const eq = pair?.indexOf("=") ?? -1;
      if (!pair || eq < 0) continue;
      const name = pair.slice(0, eq).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(eq + 1).trim());
    }
  }

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  }
}

/**
 * A real OpenID Connect provider (panva's `oidc-provider`) on 127.0.0.1, port 0, with one confidential client
 * registered for `redirectUri`, PKCE required and the development interactions off: login and consent are the
 * small JSON interaction endpoints below, driven by `authorize`.
 */
export async function startTestIdp(redirectUri: string): Promise<TestIdp> {
  const accounts = new Map<string, IdpAccount>();
  const providerKeys = await generateKeyPair("RS256", { extractable: true });
  const foreignKeys = await generateKeyPair("RS256", { extractable: true });
  const privateJwk: JWK = { ...(await exportJWK(providerKeys.privateKey)), kid: "test-idp", alg: "RS256", use: "sig" };
  const clientId = "auth-server";
  const clientSecret = "a-long-enough-client-secret-for-the-test-idp";

  let provider: Provider | undefined;
  const server: Server = createServer(async (req, res) => {
    if (!provider) return sendJson(res, 503, { error: "starting" });
    const match = /^\/interaction\/([^/]+)(\/(login|confirm))?$/.exec(req.url?.split("?")[0] ?? "");
    if (!match) return provider.callback()(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      if (req.method === "GET") return sendJson(res, 200, { uid: details.uid, prompt: details.prompt.name });
      if (match[3] === "login") {
        const sub = (await readBody(req)).get("login") ?? "";
        if (!accounts.has(sub)) return sendJson(res, 400, { error: "unknown account" });
        return provider.interactionFinished(req, res, { login: { accountId: sub } }, { mergeWithLastSubmission: false });
      }
      const accountId = details.session?.accountId;
      const clientIdOfFlow = String(details.params.client_id);
      if (!accountId) return sendJson(res, 400, { error: "not logged in" });
      const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId, clientId: clientIdOfFlow });
      if (!grant) return sendJson(res, 400, { error: "grant gone" });
      grant.addOIDCScope(String(details.params.scope));
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    } catch (error) {
      return sendJson(res, 400, { error: error instanceof Error ? error.message : String(error) });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    jwks: { keys: [privateJwk] },
    cookies: { keys: ["test-idp-cookie-key"] },
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name", "given_name", "family_name"] },
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    // Explicit lifetimes, which also keeps the library from printing a notice for each default it uses.
    ttl: { AuthorizationCode: 60, Interaction: 600, Session: 600, Grant: 600, AccessToken: 600, IdToken: 600 },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return { accountId: sub, claims: async () => ({ ...account }) };
    },
  });

  return {
    issuer,
    clientId,
    clientSecret,
    addAccount(account) {
      accounts.set(account.sub, account);
      return account;
    },
    async authorize(authorizationUrl, sub, redirectPrefix) {
      const jar = new CookieJar();
      const go = async (url: string, init: RequestInit = {}) => {
        const response = await fetch(url, { ...init, redirect: "manual", headers: { ...init.headers, cookie: jar.header() } });
        jar.store(response);
        return response;
      };
      let response = await go(authorizationUrl);
      for (let hop = 0; hop < 12; hop++) {
        const location = response.headers.get("location");
        if (!location) throw new Error(`the provider stopped at ${response.status}: ${await response.text()}`);
        const next = new URL(location, issuer);
        if (next.toString().startsWith(redirectPrefix)) return next;
        await response.body?.cancel();
        const interaction = /^\/interaction\/([^/]+)$/.exec(next.pathname);
        if (!interaction) {
          response = await go(next.toString());
          continue;
        }
        const { prompt } = (await (await go(next.toString())).json()) as { prompt: string };
        const action = prompt === "login" ? "login" : "confirm";
        response = await go(`${next.toString()}/${action}`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams(action === "login" ? { login: sub } : {}).toString(),
        });
      }
      throw new Error("too many redirects at the provider");
    },
    async signIdToken(claims, opts = {}) {
      const key = opts.key === "foreign" ? foreignKeys.privateKey : providerKeys.privateKey;
      return new SignJWT(claims)
        .setProtectedHeader({ alg: "RS256", kid: "test-idp" })
        .setIssuedAt()
        .setExpirationTime(opts.expiresAt ?? "5m")
        .sign(key);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
