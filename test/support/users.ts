import type { UserRow } from "../../src/db/schema";
import type { TokenResponse } from "../../src/sessions/service";
import { type TestServer, uniqueEmail } from "./server";

/** A verified user made directly in the database and signed in, for tests that are not about sign-up. */
export async function createSignedInUser(
  server: TestServer,
  fields: Partial<UserRow> = {},
  meta: { ip: string | null; userAgent: string | null } = { ip: "203.0.113.7", userAgent: "test-agent" },
): Promise<{ user: UserRow; tokens: TokenResponse }> {
  const user = await server.ctx.users.create({ email: uniqueEmail(), emailVerified: true, ...fields });
  const tokens = await server.ctx.sessions.create(user, { amr: ["pwd"], meta });
  return { user, tokens };
}

/** A clock tests can move forward, instead of sleeping. */
export function movableClock(start = Date.now()) {
  let offset = 0;
  return {
    now: () => new Date(start + offset + (Date.now() - start)),
    advance(seconds: number) {
      offset += seconds * 1000;
    },
  };
}
